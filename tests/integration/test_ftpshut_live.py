"""ftpshut against a running daemon: new connections refused after the deny time, existing sessions (chrooted
ones included, and one in the middle of a download) told and disconnected at the disconnect time, `-R` lifts it.
The shutdown file is named by PROFTPY_SHUTMSG (ProFTPD's /etc/shutmsg otherwise)."""

from __future__ import annotations

import ftplib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shutmsg(tmp_path, monkeypatch):
    path = tmp_path / "shutmsg"
    monkeypatch.setenv("PROFTPY_SHUTMSG", str(path))       # the daemon started by ftpd() inherits it
    return path


def ftpshut(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpshut", *args], capture_output=True, text=True,
                         timeout=30, env=env)
    assert res.returncode == 0, res.stderr


def greeting(d) -> str:
    with socket.create_connection((d.host, d.port), timeout=10) as s:
        return s.makefile("rb").readline().decode().strip()


def wait_greeting(d, prefix: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = greeting(d)
        if line.startswith(prefix) or time.monotonic() > deadline:
            return line
        time.sleep(0.1)


def test_ftpshut_now_refuses_new_logins_and_disconnects_the_rest(ftpd, shutmsg):
    d = ftpd("DefaultRoot ~")                 # chrooted sessions cannot read the shutdown file themselves
    alice, bob = d.login("alice"), d.login("bob")
    ftpshut("now", "maintenance for %U, back soon")
    for ftp, user in ((alice, "alice"), (bob, "bob")):
        line = ftp.getline()                  # unsolicited: the master signalled the session
        assert line == f"421 FTP server shutting down - maintenance for {user}, back soon"
        assert ftp.sock.recv(100) == b""
    refused = greeting(d)
    assert refused == "500 FTP server shut down (maintenance for , back soon) -- please try again later"
    with pytest.raises(ftplib.error_perm, match="500 FTP server shut down"):
        d.login("alice")
    ftpshut("-R")
    assert wait_greeting(d, "220").startswith("220 ")
    d.login("alice").quit()


def test_deny_time_refuses_new_connections_but_keeps_sessions_until_disconnect_time(ftpd, shutmsg):
    d = ftpd()
    ftp = d.login("alice")
    ftpshut("-l", "30", "-d", "5", "+10", "going down at %s")     # deny 20 min ago, disconnect in 5 min
    line = wait_greeting(d, "500")
    assert line.startswith("500 FTP server shut down (going down at ") and line.endswith(
        ") -- please try again later")
    time.sleep(1.5)                           # a few master ticks: the session must not be told anything
    assert ftp.voidcmd("NOOP").startswith("200")
    ftp.quit()


def test_shutdown_aborts_a_running_download_first(ftpd, shutmsg):
    d = ftpd("DefaultRoot ~\nTransferRate RETR 32")
    (d.home("alice") / "big.bin").write_bytes(b"x" * (4 << 20))
    if os.geteuid() == 0:
        os.chown(d.home("alice") / "big.bin", d.uid("alice"), -1)
    ftp = d.login("alice")
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    conn.recv(1000)
    ftpshut("now", "bye")
    assert ftp.getline().startswith("426 ")
    assert ftp.getline() == "421 FTP server shutting down - bye"
    conn.close()


def test_unparsable_shutdown_file_is_ignored(ftpd, shutmsg):
    d = ftpd()
    shutmsg.write_text("garbage\n")
    time.sleep(1.2)
    assert greeting(d).startswith("220 ")
    d.login("alice").quit()
    assert "ignoring the shutdown file" in d.log()
