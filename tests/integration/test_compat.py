"""Behaviours where proftpy follows ProFTPD 1.3.8 to the letter (issue 17; scripts/compare_proftpd.py shows each
against Debian's ProFTPD): RANG, <Limit> on every command ProFTPD lets it refuse, paths through symbolic links,
argument whitespace, `CWD ~`, Display variables."""

from __future__ import annotations

import ftplib
import io
import os

import pytest

from tests.conftest import error_reply, make_file


def _retr(ftp: ftplib.FTP, name: str) -> tuple[str, bytes]:
    out = io.BytesIO()
    final = ftp.retrbinary(f"RETR {name}", out.write)
    return final, out.getvalue()


# -- RANG ------------------------------------------------------------------------------------------------------------
def test_rang_sends_the_inclusive_byte_range_once(ftpd):
    d = ftpd("DefaultRoot ~")
    make_file(d, "f.txt", b"hello world\nsecond line\n")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("RANG 6 10") == "350 Transferring byte range of 5 bytes starting from 6"
    assert _retr(ftp, "f.txt")[1] == b"world"
    assert _retr(ftp, "f.txt")[1] == b"hello world\nsecond line\n"      # the range was used up
    assert ftp.sendcmd("RANG 3 3") == "350 Transferring byte range of 1 byte starting from 3"
    assert ftp.sendcmd("REST 2") .startswith("350 Restarting at 2")         # REST replaces RANG
    assert _retr(ftp, "f.txt")[1] == b"llo world\nsecond line\n"
    ftp.quit()


def test_rang_refusals_as_proftpd(ftpd):
    d = ftpd("DefaultRoot ~")
    make_file(d, "f.txt", b"0123456789")
    ftp = d.login()
    assert error_reply(ftp, "RANG 0 4") == "551 RANG: Transfer ranges not allowed in ASCII mode"
    ftp.voidcmd("TYPE I")
    assert error_reply(ftp, "RANG 1") == "500 'RANG 1' not understood"
    assert error_reply(ftp, "RANG a b") == "501 RANG requires a value greater than or equal to 0"
    assert error_reply(ftp, "RANG 5 2") == "501 RANG start must be less than end"
    assert error_reply(ftp, "RANG 0 18446744073709551616") == "501 RANG start must be less than end"
    assert ftp.sendcmd("RANG 1 0") == "350 Reset byte transfer range"
    ftp.sendcmd("RANG 8 20")
    assert error_reply(ftp, "RETR f.txt").startswith("554 f.txt: invalid RANG argument")
    ftp.sendcmd("RANG 0 1")
    assert error_reply(ftp, "STOU") == "550 STOU incompatible with RANG"
    ftp.quit()


def test_rang_upload_must_bring_exactly_its_length(ftpd):
    d = ftpd("DefaultRoot ~")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    ftp.sendcmd("RANG 0 3")
    assert ftp.storbinary("STOR exact.bin", io.BytesIO(b"abcd")).startswith("226")
    ftp.sendcmd("RANG 0 9")
    with pytest.raises(ftplib.error_temp, match="426 Transfer aborted. Operation not permitted"):
        ftp.storbinary("STOR short.bin", io.BytesIO(b"abcd"))
    assert (d.home("alice") / "exact.bin").read_bytes() == b"abcd"
    ftp.quit()


def test_help_and_feat_list_rang(ftpd):
    ftp = ftpd().connect()
    assert ftp.sendcmd("HELP RANG") == "214 Syntax: RANG <sp> start-point <sp> end-point"
    assert " RANG    " in ftp.sendcmd("HELP") and "RANG*" not in ftp.sendcmd("HELP")
    assert " RANG STREAM" in ftp.sendcmd("FEAT")
    ftp.quit()


# -- <Limit> on every command ProFTPD lets it refuse ---------------------------------------------------------------
def _deny(*names: str) -> str:
    return f"<Limit {' '.join(names)}>\n  DenyAll\n</Limit>\n"


def test_limit_refuses_noop_help_feat_host_before_login(ftpd):
    ftp = ftpd(_deny("NOOP", "HELP", "FEAT", "HOST", "SYST", "CLNT")).connect()
    assert error_reply(ftp, "NOOP") == "550 Operation not permitted"
    assert error_reply(ftp, "HELP") == "501 HELP: Permission denied"
    assert error_reply(ftp, "FEAT") == "550 FEAT: Operation not permitted"
    assert error_reply(ftp, "HOST 127.0.0.1") == "504 127.0.0.1: Permission denied"
    assert ftp.sendcmd("SYST") == "215 UNIX Type: L8"          # never refused, as in ProFTPD
    assert ftp.sendcmd("CLNT x") == "200 OK"
    ftp.quit()


def test_limit_replies_per_command_after_login(ftpd):
    d = ftpd("DefaultRoot ~\n" + _deny("DELE", "RNFR", "MFMT", "MLST", "STAT", "CWD", "CDUP", "STOU", "SIZE",
                                         "REST", "CSID", "SMNT"))
    make_file(d, "f.txt", b"data")
    ftp = d.login()
    assert error_reply(ftp, "DELE f.txt") == "550 f.txt: Operation not permitted"
    assert error_reply(ftp, "RNFR f.txt") == "550 f.txt: Operation not permitted"
    assert error_reply(ftp, "MFMT 20200101000000 f.txt") == "550 Unable to handle command"
    assert error_reply(ftp, "MLST f.txt") == "550 Unable to handle command"
    assert error_reply(ftp, "STAT") == "500 STAT: Operation not permitted"
    assert ftp.sendcmd("STAT f.txt") == "213-Status of f.txt:\n213 End of status"
    assert error_reply(ftp, "CWD /") == "550 /: No such file or directory"
    assert error_reply(ftp, "CDUP") == "550 ..: No such file or directory"
    assert error_reply(ftp, "SIZE f.txt") == "550 SIZE not allowed in ASCII mode"
    ftp.voidcmd("TYPE I")
    assert error_reply(ftp, "SIZE f.txt") == "550 f.txt: Operation not permitted"
    assert error_reply(ftp, "STOU").startswith("550 ftp")
    assert error_reply(ftp, "STOU").endswith(": Operation not permitted")
    assert ftp.sendcmd("REST 0").startswith("350")             # REST, CSID and SMNT are never refused
    assert ftp.sendcmd("CSID name=x").startswith("200")
    assert error_reply(ftp, "SMNT x") == "502 SMNT command not implemented"
    ftp.quit()


def test_limited_listings_are_empty_and_nlst_is_450(ftpd):
    d = ftpd("DefaultRoot ~\n" + _deny("LIST", "NLST"))
    make_file(d, "f.txt", b"data")
    ftp = d.login()
    lines: list[str] = []
    assert ftp.retrlines("LIST", lines.append) == "226 Transfer complete" and lines == []
    with pytest.raises(ftplib.error_temp, match="^450 /: No such file or directory$"):
        ftp.nlst()
    with pytest.raises(ftplib.error_temp, match="^450 f.txt: No such file or directory$"):
        ftp.nlst("f.txt")
    ftp.quit()


def test_rnto_refused_checks_the_rnfr_first(ftpd):
    d = ftpd("DefaultRoot ~\n" + _deny("RNTO"))
    make_file(d, "f.txt")
    ftp = d.login()
    assert error_reply(ftp, "RNTO g.txt") == "503 Bad sequence of commands"
    ftp.sendcmd("RNFR f.txt")
    assert error_reply(ftp, "RNTO g.txt") == "550 g.txt: Operation not permitted"
    ftp.quit()


def test_limit_all_leaves_out_what_proftpd_leaves_out(ftpd):
    ftp = ftpd("DefaultRoot ~\n" + _deny("ALL")).login()
    assert ftp.sendcmd("PASV").startswith("227")
    assert ftp.sendcmd("SITE HELP").startswith("214")
    assert ftp.sendcmd("OPTS UTF8 ON").startswith("200")
    assert error_reply(ftp, "NOOP") == "550 Operation not permitted"
    ftp.quit()


def test_the_last_limit_in_a_set_is_consulted_first(ftpd):
    d = ftpd("DefaultRoot ~\n<Limit STOR>\n  DenyAll\n</Limit>\n<Limit STOR>\n  AllowAll\n</Limit>\n")
    ftp = d.login()
    assert ftp.storbinary("STOR up.txt", io.BytesIO(b"x")).startswith("226")
    ftp.quit()


def test_a_later_glob_directory_applies_over_an_exact_one(ftpd):
    d = ftpd("DefaultRoot ~\n"
             "<Directory {home}/alice/dir>\n  <Limit WRITE>\n    DenyAll\n  </Limit>\n</Directory>\n"
             "<Directory {home}/alice/d*>\n  <Limit WRITE>\n    AllowAll\n  </Limit>\n</Directory>\n"
             "<Directory {home}/alice/other>\n  <Limit WRITE>\n    DenyAll\n  </Limit>\n</Directory>\n")
    for name in ("dir", "other"):
        os.mkdir(d.home("alice") / name)
        os.chown(d.home("alice") / name, d.uid("alice"), d.users["alice"][1])
    ftp = d.login()
    assert ftp.mkd("dir/new") == "/dir/new"
    assert error_reply(ftp, "MKD other/new") == "550 other/new: Permission denied"
    ftp.quit()


def test_denyall_in_a_directory_answers_eacces_and_refuses_new_names_too(ftpd):
    d = ftpd("DefaultRoot ~\n<Directory {home}/alice/closed>\n  DenyAll\n</Directory>\n")
    closed = d.home("alice") / "closed"
    closed.mkdir()
    os.chown(closed, d.uid("alice"), d.users["alice"][1])
    make_file(d, "closed/f.txt")
    ftp = d.login()
    assert error_reply(ftp, "DELE closed/f.txt") == "550 closed/f.txt: Permission denied"
    with pytest.raises(ftplib.error_perm, match="^550 closed/new.txt: Permission denied$"):
        ftp.storbinary("STOR closed/new.txt", io.BytesIO(b"x"))     # ProFTPD would let it create the file
    assert not (closed / "new.txt").exists()
    ftp.quit()


# -- RNFR / RNTO sequences -------------------------------------------------------------------------------------------
def test_a_command_between_rnfr_and_rnto_is_refused_and_the_rnfr_stays(ftpd):
    d = ftpd("DefaultRoot ~")
    make_file(d, "f.txt")
    ftp = d.login()
    ftp.sendcmd("RNFR f.txt")
    assert error_reply(ftp, "PWD") == "501 Bad sequence of commands"
    assert error_reply(ftp, "RNFR other") == "501 Bad sequence of commands"
    assert error_reply(ftp, "TYPE I") == "501 Bad sequence of commands"
    assert ftp.sendcmd("NOOP").startswith("200")                 # NOOP, HELP, STAT and QUIT may come between
    assert ftp.sendcmd("STAT").startswith("211")
    assert ftp.sendcmd("RNTO g.txt") == "250 Rename successful"
    assert ftp.sendcmd("PWD").startswith("257")
    assert error_reply(ftp, "RNTO h.txt") == "503 Bad sequence of commands"
    ftp.quit()
    assert (d.home("alice") / "g.txt").exists()
