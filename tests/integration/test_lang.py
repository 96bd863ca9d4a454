"""mod_lang against the real daemon: UseEncoding's conversion of names between the client's character set and the
disk's (commands, replies, listings), OPTS UTF8 switching it, and LANG (raw sockets: clients that speak CP1251)."""

from __future__ import annotations

import os
import socket

import pytest

from test_abuse import Raw

BASE = "DefaultRoot ~\n"
TEST = "тест"                                    # a Cyrillic name
CP, U8 = TEST.encode("cp1251"), TEST.encode("utf-8")


def listing(raw: Raw, cmd: bytes) -> bytes:
    host, port = raw.pasv()
    with socket.create_connection((host, port), 10) as data:
        raw.send(cmd + b"\r\n")
        assert raw.reply().startswith(b"150 ")
        got = b"".join(iter(lambda: data.recv(65536), b""))
    assert raw.reply().startswith(b"226 ")
    return got


def on_disk(d) -> set[bytes]:
    return {os.fsencode(name) for name in os.listdir(d.home("alice"))}


def test_names_travel_in_the_client_charset_and_are_stored_in_utf8(ftpd):
    d = ftpd(BASE + "UseEncoding UTF-8 CP1251\n")
    (d.home("alice") / "\udcff-raw").mkdir()                         # a name that is not UTF-8 on disk
    with Raw(d) as raw:
        raw.login()
        assert raw.cmd(b"MKD " + CP) == b'257 "/' + CP + b'" - Directory successfully created'
        assert U8 in on_disk(d)
        assert raw.cmd(b"CWD " + CP).startswith(b"250 ")
        assert raw.cmd(b"PWD") == b'257 "/' + CP + b'" is the current directory'
        assert raw.cmd(b"CWD /").startswith(b"250 ")
        names = listing(raw, b"NLST").split(b"\r\n")
        assert CP in names and b"\xff-raw" in names                 # what does not convert goes as it is
        assert listing(raw, b"LIST").count(b" " + CP + b"\r\n") == 1
        assert (b" " + CP + b"\n") in raw.cmd(b"STAT .") + b"\n"
        # OPTS UTF8 ON: the client speaks UTF-8 now, names go as they are; OFF: converted again
        assert raw.cmd(b"OPTS UTF8 ON") == b"200 UTF8 set to on"
        assert raw.cmd(b"MKD " + U8 + b"2").startswith(b"257 ")
        assert U8 + b"2" in on_disk(d) and U8 in listing(raw, b"NLST").split(b"\r\n")
        assert raw.cmd(b"OPTS UTF8 OFF") == b"200 UTF8 set to off"
        assert raw.cmd(b"RMD " + CP + b"2") == b"250 RMD command successful"
        assert U8 + b"2" not in on_disk(d)


@pytest.mark.parametrize("conf, on, off", [
    ("UseEncoding off", b"451 Unable to accept OPTS UTF8", b"200 UTF8 set to off"),
    ("UseEncoding UTF-8 CP1251 strict", b"451 Unable to accept OPTS UTF8", b"200 UTF8 set to off"),
    ("UseEncoding UTF-8 CP1251\nLangOptions PreferServerEncoding", b"451 Unable to accept OPTS UTF8",
     b"200 UTF8 set to off"),
    ("", b"200 UTF8 set to on", b"200 UTF8 set to off")])
def test_opts_utf8_as_proftpd_answers_it(ftpd, conf, on, off):
    d = ftpd(BASE + conf + "\n")
    with Raw(d) as raw:
        raw.login()
        assert raw.cmd("OPTS UTF8 ON") == on
        assert raw.cmd("OPTS UTF8 OFF") == off
        if "strict" in conf:                                         # still converting
            raw.cmd(b"MKD " + CP)
            assert U8 in on_disk(d)


def test_lang_and_lang_engine_off(ftpd):
    d = ftpd(BASE)
    with Raw(d) as raw:
        assert raw.cmd("LANG") == b"200 Using default language C.UTF-8"
        assert raw.cmd("LANG C.UTF-8") == b"200 Using language C.UTF-8"
        assert raw.cmd("LANG fr") == b"504 Language fr not supported"
        assert raw.cmd("LANG a b") == b"501 Invalid number of parameters"
        feat = raw.cmd("FEAT").split(b"\n")
        assert b" LANG C.UTF-8*" in feat and b" UTF8" in feat
    d.stop()
    d = ftpd(BASE + "LangEngine off\n")
    with Raw(d) as raw:
        assert raw.cmd("LANG") == b"500 LANG not understood"
        feat = raw.cmd("FEAT").split(b"\n")
        assert not any(line.startswith((b" LANG", b" UTF8")) for line in feat)
        raw.login()
        assert raw.cmd("OPTS UTF8 ON") == b"200 UTF8 set to on"
