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
