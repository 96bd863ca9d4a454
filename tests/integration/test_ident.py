"""mod_ident against the real daemon: a real identd (Debian's oidentd, run by the test in the foreground on
127.0.0.113:113) names the client's user in ExtendedLog's %l, the mod_ident note, the TransferLog and Display
files; no identd, an identd that never answers, one that floods, one that hides the user: the session goes on, its
greeting no later than IdentLookupTimeout, `UNKNOWN` where ProFTPD writes it; IdentLookups off asks no one.

Port 113 needs root, so each identd listens on a loopback address of its own (127.0.0.113, .114...) and the
client connects from that address: the daemon asks the identd at the client's address, as it must."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, make_file, refused_config, wait_until

OIDENTD = shutil.which("oidentd") or ("/usr/sbin/oidentd" if os.path.exists("/usr/sbin/oidentd") else None)
needs_root = pytest.mark.skipif(not IS_ROOT, reason="an identd listens on port 113: root only")

OIDENTD_ADDR = "127.0.0.113"
NO_IDENTD_ADDR = "127.0.0.115"          # nothing listens on its port 113: refused at once
FORMAT = 'LogFormat identfmt "%a %l [%{note:mod_ident.rfc1413-ident}] %u %m"\n'


def ident_config(extra: str = "") -> str:
    return (extra + FORMAT + "DefaultRoot ~\nExtendedLog {dir}/ident.log ALL identfmt\nTransferLog {dir}/xfer.log\n"
            "DisplayConnect {dir}/connect.msg\n")


class Oidentd:
    """Debian's oidentd in the foreground on OIDENTD_ADDR:113, with an empty configuration (plain lookups)."""

    def __init__(self, base: Path):
        conf = base / "oidentd.conf"
        conf.write_text("")
        self.proc = subprocess.Popen([OIDENTD, "-i", "-S", "-a", OIDENTD_ADDR, "-p", "113", "-C", str(conf),
                                      "-t", "5", "-l", "20"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_until(lambda: _listening(OIDENTD_ADDR) or self.proc.poll() is not None, 10) or \
                self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
            self.stop()
            pytest.skip(f"oidentd did not start on {OIDENTD_ADDR}:113: {err}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _listening(addr: str) -> bool:
    try:
        socket.create_connection((addr, 113), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def oidentd(tmp_path_factory):
    if OIDENTD is None:
        pytest.skip("oidentd is not installed (scripts/install-deps.sh)")
    d = Oidentd(tmp_path_factory.mktemp("oidentd"))
    yield d
    d.stop()


class FakeIdentd:
    """A scripted identd on addr:113 in a thread: `answer(request)` gives the bytes to send (None: stay silent
    until the test ends); `connections` counts who asked."""

    def __init__(self, addr: str, answer):
        self.answer = answer
        self.sock = socket.create_server((addr, 113))
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    reply = self.answer(conn.recv(100))
                    if reply is None:
                        self.stopping.wait(15)
                    else:
                        conn.sendall(reply)
                except OSError:
                    pass                # the daemon gave up on it: that is what the tests look at

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def fake_identd():
    made: list[FakeIdentd] = []

    def make(addr: str, answer) -> FakeIdentd:
        made.append(FakeIdentd(addr, answer))
        return made[-1]
    yield make
    for f in made:
        f.stop()


def session(d, source: str, login: bool = True) -> tuple[str, float]:
    """Connect from `source`, (log in and download a file,) quit; the greeting and how long it took to come."""
    ftp = ftplib.FTP(timeout=20)
    start = time.monotonic()
    ftp.connect(d.host, d.port, source_address=(source, 0))
    took = time.monotonic() - start
    welcome = ftp.getwelcome()
    if login:
        ftp.login("alice", "alice-secret")
        ftp.retrbinary("RETR f.txt", io.BytesIO().write)
    ftp.quit()
    return welcome, took


def logged(d, name: str, lines: int) -> list[str]:
    path = d.dir / name
    assert wait_until(lambda: path.exists() and len(path.read_text().splitlines()) >= lines), name
    return path.read_text().splitlines()


def started(ftpd, extra: str = ""):
    d = ftpd(ident_config(extra))
    (d.dir / "connect.msg").write_text("ident=%u\n")
    make_file(d, "f.txt")
    return d


CLIENT_AS_NOBODY = """
import ftplib, io, sys
ftp = ftplib.FTP(timeout=20)
ftp.connect(sys.argv[1], int(sys.argv[2]), source_address=(sys.argv[3], 0))
print(ftp.getwelcome())
ftp.login("alice", "alice-secret")
ftp.retrbinary("RETR f.txt", io.BytesIO().write)
ftp.quit()
"""


@needs_root
def test_oidentd_names_the_clients_owner(ftpd, oidentd):
    """A client run by `nobody`: oidentd finds the connection's owner; every place ProFTPD shows it says so."""
    d = started(ftpd, "IdentLookups on\n")
    out = subprocess.run(["/usr/bin/python3", "-c", CLIENT_AS_NOBODY, d.host, str(d.port), OIDENTD_ADDR],
                         user="nobody", group="nogroup", capture_output=True, text=True, timeout=30, cwd="/")
    assert out.returncode == 0, out.stderr
    assert "ident=nobody" in out.stdout                  # DisplayConnect's %u
    lines = logged(d, "ident.log", 4)
    assert lines[0] == f"{OIDENTD_ADDR} nobody [nobody] - USER"
    assert f"{OIDENTD_ADDR} nobody [nobody] alice RETR" in lines
    xfer = logged(d, "xfer.log", 1)[0].split()
    assert xfer[-3:] == ["1", "nobody", "c"]            # authentication method 1 (RFC 1413), the user id


@needs_root
def test_no_identd_is_unknown(ftpd):
    d = started(ftpd, "IdentLookups on\n")
    welcome, took = session(d, NO_IDENTD_ADDR)
    assert "ident=UNKNOWN" in welcome and took < 2
    assert logged(d, "ident.log", 1)[0] == f"{NO_IDENTD_ADDR} UNKNOWN [UNKNOWN] - USER"
    assert logged(d, "xfer.log", 1)[0].split()[-3:] == ["1", "*", "c"]


@needs_root
def test_lookups_off_ask_no_one(ftpd, fake_identd):
    fake = fake_identd("127.0.0.114", lambda req: b"1, 2 : USERID : UNIX : mallory\r\n")
    d = started(ftpd)
    welcome, _ = session(d, "127.0.0.114")
    assert "ident=UNKNOWN" in welcome
    assert logged(d, "ident.log", 1)[0] == "127.0.0.114 UNKNOWN [] - USER"
    assert logged(d, "xfer.log", 1)[0].split()[-3:] == ["0", "*", "c"]
    assert fake.connections == 0


@needs_root
def test_silent_identd_delays_the_greeting_by_the_timeout_only(ftpd, fake_identd):
    fake_identd("127.0.0.114", lambda req: None)
    d = started(ftpd, "IdentLookups on\nIdentLookupTimeout 1\n")
    welcome, took = session(d, "127.0.0.114")
    assert "ident=UNKNOWN" in welcome
    assert 0.9 < took < 3
    assert logged(d, "ident.log", 1)[0] == "127.0.0.114 UNKNOWN [UNKNOWN] - USER"


@needs_root
@pytest.mark.parametrize("answer, name", [
    (b"1, 2 : USERID : UNIX : " + b"A" * 2_000_000, "A" * (255 - len("1, 2 : USERID : UNIX : "))),
    (b"\x00\xff\x80 junk \r\n", "UNKNOWN"),
    (b"1, 2 : ERROR : HIDDEN-USER\r\n", "HIDDEN-USER"),
    (b"1, 2 : USERID : UNIX : b\xc3\xb6b \t\r\n", "bb"),        # ProFTPD drops the bytes with the high bit set
])
def test_odd_answers_never_hurt_the_session(ftpd, fake_identd, answer, name):
    fake_identd("127.0.0.114", lambda req: answer)
    d = started(ftpd, "IdentLookups on\nIdentLookupTimeout 2\n")
    welcome, took = session(d, "127.0.0.114")
    assert took < 2.5
    assert f"ident={name}" in welcome
    assert logged(d, "ident.log", 1)[0] == f"127.0.0.114 {name} [{name}] - USER"
    assert "Traceback" not in d.log()


def test_config_errors(tmp_path):
    assert "t.conf:2:" in refused_config(tmp_path, "IdentLookupTimeout 0")
    assert "t.conf:2:" in refused_config(tmp_path, "IdentLookups maybe")


@needs_root
def test_wrap2_user_at_host_patterns_see_the_ident_name(ftpd, fake_identd, tmp_path):
    """mod_wrap2 takes the RFC 1413 name as the client's user (before the one sent with USER), as ProFTPD."""
    fake_identd("127.0.0.114", lambda req: b"1, 2 : USERID : UNIX : mallory\r\n")
    (tmp_path / "w.allow").write_text("")
    (tmp_path / "w.deny").write_text("ALL: mallory@127.0.0.114\n")
    d = started(ftpd, f"IdentLookups on\nWrapEngine on\nWrapTables file:{tmp_path}/w.allow "
                      f"file:{tmp_path}/w.deny\nWrapLog {tmp_path}/wrap.log\n")
    ftp = ftplib.FTP(timeout=10)
    ftp.connect(d.host, d.port, source_address=("127.0.0.114", 0))
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp.login("alice", "alice-secret")
    ftp.close()
    assert "refused connection from mallory@127.0.0.114" in (tmp_path / "wrap.log").read_text()
    session(d, "127.0.0.1")                         # another client (no identd there: UNKNOWN) logs in
