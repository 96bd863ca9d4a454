"""mod_ifsession: <IfUser> <IfGroup> <IfClass> <IfAuthenticated> against the real daemon, each behaviour as
Debian's ProFTPD 1.3.8 shows it (scripts/compare_proftpd.py, ifsess-* scenarios)."""

from __future__ import annotations

import ftplib
import io
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import PASSWORDS, REPO, error_reply, make_file, wait_until

LOCAL = "<Class local>\n  From 127.0.0.1\n</Class>\n"


def stor(ftp: ftplib.FTP, name: str, data: bytes = b"x") -> str:
    return ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def test_ifuser_applies_to_the_named_user_only(ftpd):
    d = ftpd("DefaultRoot ~\n<IfUser alice>\n  AllowOverwrite on\n</IfUser>\n")
    for user in ("alice", "bob"):
        make_file(d, "f.txt", user=user)
    alice = d.login("alice")
    assert stor(alice, "f.txt").startswith("226")
    bob = d.login("bob")
    with pytest.raises(ftplib.error_perm, match="^550 f.txt: Overwrite permission denied$"):
        stor(bob, "f.txt")
    alice.quit()
    bob.quit()


def test_ifgroup_limit_and_negated_ifuser(ftpd):
    d = ftpd("DefaultRoot ~\n<IfGroup ftpusers>\n  <Limit MKD>\n    DenyAll\n  </Limit>\n</IfGroup>\n"
             "<IfUser !alice>\n  <Limit STOR>\n    DenyAll\n  </Limit>\n</IfUser>\n")
    alice = d.login("alice")
    assert error_reply(alice, "MKD new") == "550 new: Permission denied"      # alice and bob are in ftpusers
    assert stor(alice, "up.txt").startswith("226")
    bob = d.login("bob")
    with pytest.raises(ftplib.error_perm, match="^550 up.txt: Operation not permitted$"):
        stor(bob, "up.txt")
    alice.quit()
    bob.quit()


def test_ifclass_defaultroot_applies_ifuser_defaultroot_does_not(ftpd):
    d = ftpd(LOCAL + "<IfClass local>\n  DefaultRoot ~/sub\n</IfClass>\n<IfUser bob>\n  DefaultRoot ~/sub\n"
             "</IfUser>\nDefaultRoot ~\n")
    for user in ("alice", "bob"):
        os.mkdir(d.home(user) / "sub")
        make_file(d, "sub/inside.txt", user=user)
        make_file(d, "outside.txt", user=user)
    alice = d.login("alice")
    assert alice.nlst() == ["inside.txt"]            # <IfClass> was merged at connect, before the chroot
    alice.quit()


def test_ifuser_defaultroot_is_too_late(ftpd):
    d = ftpd("<IfUser alice>\n  DefaultRoot ~/sub\n</IfUser>\nDefaultRoot ~\n")
    os.mkdir(d.home("alice") / "sub")
    make_file(d, "outside.txt")
    alice = d.login("alice")
    assert sorted(alice.nlst()) == ["outside.txt", "sub"]     # mod_auth used DefaultRoot before the merge
    alice.quit()


def test_ifuser_maxclients_is_counted_at_login(ftpd):
    d = ftpd("DefaultRoot ~\n<IfUser alice>\n  MaxClients 1\n</IfUser>\n")
    first = d.login("alice")
    second = d.connect()
    second.sendcmd("USER alice")
    with pytest.raises(ftplib.error_perm,
                       match=r"^530 Sorry, the maximum number of allowed clients \(1\) are already connected.$"):
        second.sendcmd("PASS " + PASSWORDS["alice"])
    d.login("bob").quit()
    first.quit()


def test_merged_limit_login_ends_the_session_without_its_230(ftpd):
    d = ftpd("SyslogLevel info\nDefaultRoot ~\n<IfUser alice>\n  <Limit LOGIN>\n    DenyAll\n  </Limit>\n</IfUser>\n")
    ftp = d.connect()
    ftp.sendcmd("USER alice")
    with pytest.raises((EOFError, ConnectionError)):
        ftp.sendcmd("PASS " + PASSWORDS["alice"])
    assert "USER alice: Limit access denies login." in d.log()
    d.login("bob").quit()
    assert wait_until(lambda: "USER bob: Login successful." in d.log())
    assert "USER alice: Login successful." not in d.log()          # the login did not stand: not logged as one


def test_ifuser_displaylogin_and_ifauthenticated(ftpd):
    d = ftpd("DefaultRoot ~\n<IfAuthenticated>\n  DisplayLogin all.msg\n</IfAuthenticated>\n"
             "<IfUser alice>\n  TimesGMT off\n  DisplayLogin alice.msg\n</IfUser>\n")
    make_file(d, "alice.msg", b"hello alice\n")
    for user in ("alice", "bob"):
        make_file(d, "all.msg", b"hello %U\n", user=user)
    # ProFTPD 1.3.8: merging <IfAuthenticated>'s DisplayLogin removed it from the <IfUser> section still waiting
    for user in ("alice", "bob"):
        ftp = d.connect()
        assert ftp.login(user, PASSWORDS[user]) == f"230-hello {user}\n230 User {user} logged in"
        ftp.quit()


def test_an_ifuser_directive_no_earlier_section_sets(ftpd):
    d = ftpd("DefaultRoot ~\n<IfClass local>\n  DisplayLogin class.msg\n</IfClass>\n" + LOCAL
             + "<IfUser alice>\n  DisplayChdir here.msg\n  DisplayLogin alice.msg\n</IfUser>\n")
    make_file(d, "class.msg", b"class wins\n")
    os.mkdir(d.home("alice") / "sub")
    make_file(d, "sub/here.msg", b"in %C\n")
    ftp = d.connect()
    assert ftp.login("alice", PASSWORDS["alice"]) == "230-class wins\n230 User alice logged in"
    assert ftp.cwd("sub") == "250-in /sub\n250 CWD command successful"
    ftp.quit()


def test_ifuser_transferrate_paces_that_user(ftpd):
    d = ftpd("DefaultRoot ~\n<IfUser alice>\n  TransferRate RETR 64\n</IfUser>\n")
    make_file(d, "big.bin", b"\0" * 96 * 1024)
    make_file(d, "big.bin", b"\0" * 96 * 1024, user="bob")
    alice = d.login("alice")
    started = time.monotonic()
    alice.retrbinary("RETR big.bin", lambda b: None)
    assert time.monotonic() - started >= 1.0            # 96 KiB at 64 KiB/s: 1.5 s
    alice.quit()


def test_proftpy_lists_the_module_and_ifmodule_sees_it(ftpd):
    out = subprocess.run([sys.executable, "-m", "proftpy", "-l"], capture_output=True, text=True, cwd=REPO)
    assert "  mod_ifsession.c" in out.stdout.splitlines()
    d = ftpd("DefaultRoot ~\n<IfModule mod_ifsession.c>\n  <IfUser alice>\n    AllowOverwrite on\n"
             "  </IfUser>\n</IfModule>\n")
    make_file(d, "f.txt")
    assert stor(d.login("alice"), "f.txt").startswith("226")
