"""ProFTPD's `user|group|class expression` conditions on TransferRate, TimeoutSession and HideFiles, with alice and
bob logged in to the real daemon: the same configuration line applies to one of them and not to the other."""

from __future__ import annotations

import ftplib
import io
import os
import time

import pytest

from conftest import IS_ROOT, PASSWORDS, TEST_UID_BASE

MIB = 1 << 20


@pytest.fixture
def groups(tmp_path):
    """An AuthGroupFile where alice is in `staff` and both are in `ftpusers`; config lines to use it."""
    path = tmp_path / "cond.group"
    gid = TEST_UID_BASE if IS_ROOT else os.getgid()
    path.write_text(f"ftpusers:x:{gid}:alice,bob\nstaff:x:2400:alice\n")
    os.chmod(path, 0o600)
    return "AuthGroupFile {dir}/cond.group\n"


def retr_seconds(ftp: ftplib.FTP, name: str) -> float:
    got = io.BytesIO()
    start = time.monotonic()
    ftp.retrbinary(f"RETR {name}", got.write)
    took = time.monotonic() - start
    assert got.tell() == MIB
    return took


# -- TransferRate ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("condition", ["user carol,!bob", "group staff"])
def test_transfer_rate_applies_to_alice_only(ftpd, groups, condition):
    d = ftpd(groups + "DefaultRoot ~\nTransferRate RETR 512 " + condition + "\n")
    for user in ("alice", "bob"):
        (d.home(user) / "big.bin").write_bytes(b"x" * MIB)
    with d.login("alice") as alice, d.login("bob") as bob:
        # 1 MiB at 512 KiB/s: about 2 s for alice; loopback speed for bob
        assert retr_seconds(bob, "big.bin") < 1.0
        assert retr_seconds(alice, "big.bin") >= 1.5


def test_transfer_rate_most_specific_context_wins(ftpd, groups):
    # the <Directory> line for alice beats the server-wide line; bob gets the server-wide one
    d = ftpd(groups + "DefaultRoot ~\nTransferRate RETR 512\n"
             "<Directory {home}>\n  TransferRate RETR 1000000 user alice\n</Directory>\n")
    for user in ("alice", "bob"):
        (d.home(user) / "big.bin").write_bytes(b"x" * MIB)
    with d.login("alice") as alice, d.login("bob") as bob:
        assert retr_seconds(alice, "big.bin") < 1.0
        assert retr_seconds(bob, "big.bin") >= 1.5


def test_transfer_rate_bad_condition_is_a_config_error(ftpd):
    with pytest.raises(RuntimeError) as e:
        ftpd("TransferRate RETR 100 host alice\n")
    assert "unknown classifier 'host'" in str(e.value)


# -- TimeoutSession ----------------------------------------------------------------------------------------------
def wait_reply(ftp: ftplib.FTP, limit: float) -> tuple[str, float]:
    """The next line the server sends on its own, and after how long."""
    ftp.sock.settimeout(limit)
    start = time.monotonic()
    line = ftp.file.readline().rstrip("\r\n")
    return line, time.monotonic() - start


def bob_from_second_address(d) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=10, source_address=("127.0.0.2", 0))
    ftp.connect(d.host, d.port)
    ftp.login("bob", PASSWORDS["bob"])
    return ftp


@pytest.mark.parametrize("condition", ["user alice", "group staff,ftpusers", "class local"])
def test_session_timeout_ends_alice_not_bob(ftpd, groups, condition):
    d = ftpd(groups + "<Class local>\n  From 127.0.0.1\n</Class>\n"
             "TimeoutSession 2 " + condition + "\nTimeoutSession 600 user bob\n")
    # bob logs in first: a timeout meant for alice only would end his session before hers
    with bob_from_second_address(d) as bob, d.login("alice") as alice:
        line, after = wait_reply(alice, 6)
        assert line == "421 Session Timeout (2 seconds): closing control connection"
        assert 1.5 <= after < 5
        assert alice.file.readline() == ""              # and the connection is closed
        assert bob.sendcmd("NOOP") == "200 NOOP command successful"


def test_session_timeout_bad_classifier_is_a_config_error(ftpd):
    with pytest.raises(RuntimeError) as e:
        ftpd("TimeoutSession 60 host alice\n")
    assert "unknown classifier 'host'" in str(e.value)


# -- HideFiles ---------------------------------------------------------------------------------------------------
def listings(ftp: ftplib.FTP) -> tuple[list[str], str, list[str]]:
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    return ftp.nlst(), "\n".join(lines), [name for name, _ in ftp.mlsd()]


@pytest.mark.parametrize("condition, hidden_from", [
    ("user alice", "alice"),
    ("user !alice", "bob"),
    ("group ftpusers,!staff", "bob"),
])
def test_hidefiles_hides_from_one_user_only(ftpd, groups, condition, hidden_from):
    d = ftpd(groups + "DefaultRoot ~\n<Directory {home}>\n  HideFiles ^secret\\. " + condition + "\n</Directory>\n")
    for user in ("alice", "bob"):
        (d.home(user) / "secret.txt").write_text("s")
        (d.home(user) / "plain.txt").write_text("p")
    for user in ("alice", "bob"):
        with d.login(user) as ftp:
            nlst, lst, mlsd = listings(ftp)
            assert "plain.txt" in nlst and "plain.txt" in lst and "plain.txt" in mlsd
            shown = user != hidden_from
            assert ("secret.txt" in nlst, "secret.txt" in lst, "secret.txt" in mlsd) == (shown,) * 3, user


def test_hidefiles_none_for_one_user_undoes_the_parent_line(ftpd, groups):
    d = ftpd(groups + "DefaultRoot ~\n<Directory {home}>\n  HideFiles ^secret\\.\n</Directory>\n"
             "<Directory {home}/alice>\n  HideFiles none user alice\n</Directory>\n")
    for user in ("alice", "bob"):
        (d.home(user) / "secret.txt").write_text("s")
        (d.home(user) / "plain.txt").write_text("p")
    with d.login("alice") as alice, d.login("bob") as bob:
        assert sorted(alice.nlst()) == ["plain.txt", "secret.txt"]
        assert bob.nlst() == ["plain.txt"]
