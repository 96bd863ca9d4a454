"""Logging in with USER/PASS against an AuthUserFile, as a real client does."""

import ftplib
import os

import pytest

from conftest import IS_ROOT, PASSWORDS


def test_login_and_pwd(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        assert ftp.getwelcome() == "220 ProFTPD Server (proftpy test) [127.0.0.1]"
        assert ftp.sendcmd("USER alice") == "331 Password required for alice"
        assert ftp.sendcmd("PASS " + PASSWORDS["alice"]) == "230 User alice logged in"


def test_wrong_password_gets_login_incorrect(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("alice", "wrong")


def test_unknown_user_gets_the_same_reply(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("nobody-here", "wrong")


def test_pass_before_user(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^503 Login with USER first$"):
            ftp.sendcmd("PASS x")


def test_max_login_attempts_disconnects(ftpd):
    d = ftpd("MaxLoginAttempts 2\n")
    with d.connect() as ftp:
        for _ in range(2):
            with pytest.raises(ftplib.error_perm, match="^530"):
                ftp.login("alice", "wrong")
        with pytest.raises((EOFError, ConnectionError, ftplib.error_temp)):
            ftp.sendcmd("NOOP")


def test_commands_need_login(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Please login with USER and PASS$"):
            ftp.sendcmd("PWD")


def test_access_grant_msg(ftpd):
    d = ftpd('AccessGrantMsg "Welcome, %u"\n')
    with d.connect() as ftp:
        assert ftp.login("bob", PASSWORDS["bob"]) == "230 Welcome, bob"


def test_login_timeout(ftpd):
    d = ftpd("TimeoutLogin 1\n")
    with d.connect() as ftp:
        line = ftp.getline()   # the timeout reply arrives unasked
        assert line == "421 Login timeout (1 second): closing control connection"


def test_default_root_jails_the_user(ftpd):
    d = ftpd("DefaultRoot ~\n")
    (d.home("alice") / "mine.txt").write_text("x")
    with d.login("alice") as ftp:
        assert ftp.pwd() == "/"
        ftp.cwd("..")
        assert ftp.pwd() == "/"
