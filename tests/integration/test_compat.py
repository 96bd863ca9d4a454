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
    # a start of 2^63 or more: ProFTPD's text (unsigned), then refused as past the end (ProFTPD sends a byte)
    huge = "RANG 99999999999999999999 99999999999999999999"
    assert ftp.sendcmd(huge) == "350 Transferring byte range of 1 byte starting from 18446744073709551615"
    assert error_reply(ftp, "RETR f.txt") == "554 RANG: invalid f.txt argument"
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


# -- paths: symbolic links, `~`, leading spaces, big offsets ------------------------------------------------------
def _links(d) -> None:
    home = d.home("alice")
    (home / "dir").mkdir()
    (home / "dir" / "inner.txt").write_bytes(b"inner\n")
    (home / "file.txt").write_bytes(b"hello\n")
    for name, target in (("abs-dir", "/dir"), ("abs-file", "/file.txt"), ("dir/up-file", "../file.txt"),
                         ("dangling", "nothere"), ("loop", "loop"), ("escape", "/../../../etc"),
                         ("to-create", "/made.txt")):
        os.symlink(target, home / name)
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), d.uid("alice"), d.users["alice"][1])


def _check_links(ftp: ftplib.FTP) -> None:
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("SIZE abs-file") == "213 6"
    assert ftp.sendcmd("SIZE dir/up-file") == "213 6"
    assert _retr(ftp, "abs-file")[1] == b"hello\n"
    assert error_reply(ftp, "RETR dangling") == "550 dangling: Not a regular file"
    assert error_reply(ftp, "RETR loop") == "550 loop: Not a regular file"
    assert error_reply(ftp, "CWD loop") == "550 loop: No such file or directory"
    assert error_reply(ftp, "CWD escape") == "550 escape: No such file or directory"
    ftp.cwd("abs-dir")
    assert ftp.pwd() == "/dir"                                   # ShowSymlinks on: the link resolved
    ftp.cwd("/")
    assert ftp.storbinary("STOR abs-dir/in.txt", io.BytesIO(b"x")).startswith("226")
    assert ftp.sendcmd("SIZE dir/in.txt") == "213 1"
    assert error_reply(ftp, "STOR to-create") == "550 to-create: Overwrite permission denied"


def test_symlinks_inside_the_root_under_chroot(ftpd):
    d = ftpd("DefaultRoot ~")
    _links(d)
    ftp = d.login()
    _check_links(ftp)
    ftp.quit()


def test_symlinks_inside_the_root_in_the_userland_jail(tmp_path, reachable_homes):
    """Started by an ordinary user: fs.py resolves `/dir` inside the jail as the kernel does under chroot."""
    from tests.conftest import (AUTH_CONFIG, BASE_CONFIG, IS_ROOT, Daemon, daemon_as_user, fill, free_port,
                                make_users)
    if not IS_ROOT:
        pytest.skip("needs root to start the daemon as another user")
    uid = 2397
    d = Daemon(dir=tmp_path, port=free_port(), conf=tmp_path / "proftpy.conf")
    users = make_users(tmp_path)
    d.users = {name: (uid, uid, home) for name, (_, _, home) in users.items()}
    for path in [tmp_path, tmp_path / "home", tmp_path / "ftpd.passwd", tmp_path / "ftpd.group",
                 *(u[2] for u in users.values())]:
        os.chown(path, uid, uid)
    d.conf.write_text(fill("DefaultRoot ~\n" + BASE_CONFIG + AUTH_CONFIG,
                           dict(port=d.port, dir=tmp_path, host="127.0.0.1", ipv6="off")))
    _links(d)
    with daemon_as_user(d, uid):
        ftp = d.login()
        _check_links(ftp)
        ftp.quit()


def test_stor_through_a_dangling_link_creates_its_target_with_allowoverwrite(ftpd):
    d = ftpd("DefaultRoot ~\nAllowOverwrite on")
    _links(d)
    ftp = d.login()
    assert ftp.storbinary("STOR to-create", io.BytesIO(b"made")).startswith("226")
    assert (d.home("alice") / "made.txt").read_bytes() == b"made"
    assert os.path.islink(d.home("alice") / "to-create")
    ftp.quit()


def test_tilde_names_the_home_as_proftpd_expands_it(ftpd):
    d = ftpd("DefaultRoot ~")
    _links(d)
    ftp = d.login()
    ftp.cwd("~/dir")
    assert ftp.pwd() == "/dir"
    assert error_reply(ftp, "CWD ~") == "550 ~: No such file or directory"
    assert error_reply(ftp, "CWD ~bob") == "550 ~bob: No such file or directory"
    assert ftp.mkd("~/made") == "/made"
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("SIZE ~/file.txt") == "213 6"
    assert error_reply(ftp, "MLST ~/dir") == "550 '~/dir' cannot be listed"       # mod_facts does not expand it
    ftp.quit()


def test_allowchrootsymlinks_off_refuses_a_linked_defaultroot(ftpd, tmp_path):
    os.symlink(tmp_path / "home" / "alice", tmp_path / "alice-link")
    d = ftpd(f"DefaultRoot {tmp_path}/alice-link\nAllowChrootSymlinks off")
    ftp = d.connect()
    ftp.sendcmd("USER alice")
    with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
        ftp.sendcmd("PASS alice-secret")
    with pytest.raises((EOFError, ConnectionError)):
        ftp.sendcmd("NOOP")
    assert "is a symlink (denied by AllowChrootSymlinks config)" in d.log()


def test_rest_past_4_gib_and_from_the_last_byte(ftpd):
    d = ftpd("DefaultRoot ~")
    path = make_file(d, "big.bin", b"")
    with open(path, "r+b") as f:
        f.truncate((4 << 30) + 10)
        f.seek((4 << 30) + 6)
        f.write(b"tail")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("SIZE big.bin") == f"213 {(4 << 30) + 10}"
    ftp.sendcmd(f"REST {(4 << 30) + 9}")
    out = io.BytesIO()
    conn = ftp.transfercmd("RETR big.bin")
    assert ftp.lastresp == "150"
    out.write(conn.recv(16))
    conn.close()
    assert ftp.voidresp().startswith("226") and out.getvalue() == b"l"
    ftp.sendcmd(f"REST {(4 << 30) + 10}")
    assert _retr(ftp, "big.bin") == ("226 Transfer complete", b"")
    ftp.sendcmd(f"REST {(4 << 30) + 11}")
    assert error_reply(ftp, "RETR big.bin") == "554 REST: invalid big.bin argument"
    ftp.quit()


def test_leading_spaces_of_an_argument_are_part_of_the_name(ftpd):
    d = ftpd("DefaultRoot ~")
    make_file(d, " spaced.txt", b"leading space\n")
    ftp = d.login()
    assert _retr(ftp, " spaced.txt")[1] == b"leading space\n"        # sent as `RETR  spaced.txt`
    ftp.voidcmd("TYPE I")
    assert error_reply(ftp, "SIZE spaced.txt") == "550 spaced.txt: No such file or directory"
    ftp.quit()


# -- Display files and ServerIdent -----------------------------------------------------------------------------------
def test_display_counts_sessions_and_class_as_proftpd(ftpd):
    """%N: the sessions on this server when the client connected, itself included; %y: the logged-in ones of
    its class (ProFTPD's sess_init count, used without a MaxClients* limit)."""
    d = ftpd("DefaultRoot ~\n<Class local>\n  From 127.0.0.1\n</Class>\nDisplayLogin welcome.msg\n")
    make_file(d, "welcome.msg", b"N=%N y=%y x=%x\nsecond line\n")
    first = d.login()
    second = d.connect()
    reply = second.login("alice", "alice-secret")
    assert reply.splitlines() == ["230-N=2 y=1 x=local", " second line", "230 User alice logged in"]
    first.quit()
    second.quit()


def test_display_quit_replaces_goodbye_and_serverident_names_the_address(ftpd, tmp_path):
    (tmp_path / "bye.msg").write_text("one\ntwo\nthree\n")
    d = ftpd(f'DisplayQuit {tmp_path}/bye.msg\nServerIdent on "%V (%v) ready"\n')
    ftp = d.connect()
    assert ftp.getwelcome() == "220 127.0.0.1 (proftpy test) ready"
    ftp.login("alice", "alice-secret")
    assert ftp.quit() == "221-one\n two\n221 three"
