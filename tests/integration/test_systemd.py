"""systemd integration: the sd_notify datagrams the master sends (READY, STATUS, WATCHDOG, RELOADING, STOPPING),
checked on a Unix datagram socket the test owns, and the shipped unit file."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "conf" / "proftpy.service"


class Notifications:
    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.seen: list[str] = []

    def wait(self, state: str, timeout: float = 10.0) -> str:
        """The first datagram (after those already consumed) holding `state`, e.g. "READY=1"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.seen.append(msg)
            if state in msg.split("\n"):
                return msg
        raise AssertionError(f"no {state} within {timeout} s; got {self.seen}")

    def status(self, text: str, timeout: float = 10.0) -> None:
        self.wait(f"STATUS={text}", timeout)


@pytest.fixture
def notify(tmp_path, monkeypatch):
    n = Notifications(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield n
    n.sock.close()


def test_sd_notify_lifecycle(ftpd, notify):
    d = ftpd()
    ready = notify.wait("READY=1")
    assert "STATUS=0 sessions" in ready.split("\n")
    notify.wait("WATCHDOG=1", 3)
    t0 = time.monotonic()
    notify.wait("WATCHDOG=1", 3)              # WatchdogSec 1 s: pinged about every half second (each tick)
    assert time.monotonic() - t0 < 2.5
    ftp = d.login("alice")
    notify.status("1 session")
    os.kill(d.master_pid, signal.SIGHUP)
    notify.wait("RELOADING=1")
    notify.wait("READY=1")
    ftp.quit()
    notify.status("0 sessions")
    d.stop()
    notify.wait("STOPPING=1")


def test_no_watchdog_without_watchdog_usec(ftpd, notify, monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC")
    ftpd()
    notify.wait("READY=1")
    time.sleep(2.2)
    try:
        while True:
            notify.seen.append(notify.sock.recv(4096).decode())
    except TimeoutError:
        pass
    assert not any("WATCHDOG=1" in m for m in notify.seen)


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(UNIT)
    return cp


def test_unit_is_notify_type_and_reloads_with_hup():
    svc = _unit()["Service"]
    assert svc["Type"] == "notify"
    assert " -n" in svc["ExecStart"]
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert "WatchdogSec" in svc


def test_unit_hardening_still_allows_chroot_and_setuid():
    svc = _unit()["Service"]
    assert "NoNewPrivileges" not in svc               # it would bind the master; sessions set it themselves
    caps = set(svc["CapabilityBoundingSet"].split())
    assert {"CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT", "CAP_NET_BIND_SERVICE", "CAP_CHOWN",
            "CAP_DAC_READ_SEARCH", "CAP_KILL"} <= caps
    assert svc["ProtectSystem"] == "full" and svc["PrivateTmp"] == "yes"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    # verify also checks that ExecStart exists: point it at a binary that does
    text = UNIT.read_text().replace("/usr/local/bin/proftpy", "/bin/true")
    (tmp_path / "proftpy.service").write_text(text)
    res = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "proftpy.service")], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "proftpy.service" not in res.stderr, res.stderr
