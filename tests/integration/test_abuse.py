"""The abuse suite: hostile clients against the real daemon.

Every attack checks what the attacker gets back (code, and text where ProFTPD defines it), and — through the
`healthy` check that runs after each test — that the daemon did not suffer: the master still accepts a new login,
no traceback reached the SystemLog, and nothing outside the session root was read or written. Most attacks run on one
shared daemon (root: kernel chroot with DefaultRoot ~); the path attacks run again on a daemon started by an
ordinary user, where fs.py's userland jail stands in for chroot(2)."""

from __future__ import annotations

import ctypes
import ftplib
import os
import re
import select
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from conftest import (AUTH_CONFIG, BASE_CONFIG, IS_ROOT, PASSWORDS, Daemon, daemon_as_user, fill, free_port,
                      make_users, start_daemon)
from proftpy.net.inet import ipv6_available

LIMIT = 4103                    # CommandBufferSize default: a command line, CRLF included, may have this many bytes
SECRET = b"outside the root\n"
SHARED_CONFIG = """\
DefaultRoot ~
AllowOverwrite on
TimeoutStalled 3
TimeoutNoTransfer 60
SocketOptions sndbuf 16384
"""


# -- a raw control connection ------------------------------------------------------------------------------------
class Raw:
    """A control connection that sends exactly the bytes given and reads replies as bytes."""

    def __init__(self, d: Daemon, timeout: float = 10, greet: bool = True):
        self.sock = socket.create_connection((d.host, d.port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply() if greet else None

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self) -> bytes:
        got = self.file.readline(1 << 20)
        if not got:
            raise EOFError("control connection closed")
        return got

    def reply(self) -> bytes:
        """One whole reply (multi-line ones included), CRLFs kept out, lines joined with LF."""
        first = self.line()
        lines = [first.rstrip(b"\r\n")]
        if first[3:4] == b"-":
            end = first[:3] + b" "
            while True:
                nxt = self.line()
                lines.append(nxt.rstrip(b"\r\n"))
                if nxt.startswith(end):
                    break
        return b"\n".join(lines)

    def cmd(self, line: bytes | str) -> bytes:
        self.send((line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def login(self, user: str = "alice") -> "Raw":
        assert self.cmd(f"USER {user}").startswith(b"331 ")
        assert self.cmd(f"PASS {PASSWORDS[user]}").startswith(b"230 ")
        return self

    def pasv(self) -> tuple[str, int]:
        reply = self.cmd("PASV").decode()
        assert reply.startswith("227 "), reply
        return ftplib.parse227(reply)

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> "Raw":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def expect(raw: Raw, line: bytes | str, code: int | bytes) -> bytes:
    got = raw.cmd(line)
    if isinstance(code, int):
        assert got[:4] == b"%d " % code, (line[:80], got[:300])
    else:
        assert got == code, (line[:80], got[:300])
    return got


def alive(raw: Raw) -> None:
    assert raw.cmd("NOOP") == b"200 NOOP command successful"


def data_connect(addr: tuple[str, int]) -> socket.socket:
    return socket.create_connection(addr, timeout=10)


def read_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while chunk := sock.recv(65536):
        out += chunk
    return bytes(out)


def session_children(d: Daemon) -> list[psutil.Process]:
    try:
        return psutil.Process(d.master_pid).children()
    except psutil.NoSuchProcess:
        return []


def wait_sessions_gone(d: Daemon, timeout: float = 10) -> None:
    """All session children ended (the master reaped them)."""
    deadline = time.monotonic() + timeout
    while session_children(d):
        assert time.monotonic() < deadline, f"sessions still running: {session_children(d)}"
        time.sleep(0.05)


def own(d: Daemon, path: Path, user: str = "alice") -> Path:
    """Give a file or directory made by the test to the session's user (it runs as that user); a missing path
    becomes a directory."""
    if not path.exists() and not path.is_symlink():
        path.mkdir()
    if IS_ROOT and d.users:
        uid, gid, _ = d.users[user]
        os.lchown(path, uid, gid)
    return path


# -- the daemons -------------------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple]:
    """Everything under `root`: names, sizes, contents, mtimes (to prove nothing was touched)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            content = p.read_bytes() if p.is_file() and not p.is_symlink() else None
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


def make_outside(base: Path, uid: int, gid: int) -> Path:
    """A directory next to the homes, owned by the session's uid: only the jail keeps the client out of it."""
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "sub").mkdir()
    for p in (outside, outside / "secret.txt", outside / "sub"):
        os.chown(p, uid, gid)
    return outside


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """The shared daemon (the suite's user: root → kernel chroot; otherwise fs.py's jail)."""
    base = tmp_path_factory.mktemp("abuse")
    d = Daemon(dir=base, port=free_port(), conf=base / "proftpy.conf")
    d.users = make_users(base)
    os.chmod(base, 0o755)
    d.outside = make_outside(base, *d.users["alice"][:2])
    d.conf.write_text(fill(SHARED_CONFIG + BASE_CONFIG + AUTH_CONFIG,
                           dict(port=d.port, dir=base, host="127.0.0.1", ipv6="off", home=base / "home")))
    start_daemon(d)
    yield d
    d.stop()


DEV_UID = 2398          # an ordinary user who starts the daemon (not one of the FTP users)


@pytest.fixture(scope="module")
def jail():
    """proftpy started by an ordinary user with DefaultRoot ~: no kernel chroot, fs.py is the jail. The outside
    directory belongs to that same user, so the kernel would let the session write there."""
    if not IS_ROOT:
        pytest.skip("needs root to start the daemon as another user")
    # Not under pytest's base directory: pytest runs started meanwhile (other checkouts) reset it to 0700.
    base = Path(tempfile.mkdtemp(prefix="proftpy-abuse-"))
    users = make_users(base)
    for path in [base / "ftpd.passwd", base / "ftpd.group", base, base / "home", *(u[2] for u in users.values())]:
        os.chown(path, DEV_UID, DEV_UID)
    d = Daemon(dir=base, port=free_port(), conf=base / "proftpy.conf", users={
        name: (DEV_UID, DEV_UID, home) for name, (_, _, home) in users.items()})
    d.outside = make_outside(base, DEV_UID, DEV_UID)
    d.conf.write_text(fill(SHARED_CONFIG + BASE_CONFIG + AUTH_CONFIG,
                           dict(port=d.port, dir=base, host="127.0.0.1", ipv6="off", home=base / "home")))
    try:
        with daemon_as_user(d, DEV_UID):
            yield d
    finally:
        shutil.rmtree(base)


def check_healthy(d: Daemon, log_from: int, outside_before: dict) -> None:
    """What every attack must leave intact: the master, the log, the world outside the root."""
    new_log = d.log()[log_from:]
    assert "Traceback" not in new_log and "internal error" not in new_log, new_log[-3000:]
    ftp = d.login("bob", timeout=10)
    assert ftp.voidcmd("NOOP") == "200 NOOP command successful"
    ftp.quit()
    assert snapshot(d.outside) == outside_before


@pytest.fixture
def d(srv):
    """The shared daemon, checked healthy after the test."""
    start, before = len(srv.log()), snapshot(srv.outside)
    yield srv
    check_healthy(srv, start, before)


@pytest.fixture
def jd(jail):
    start, before = len(jail.log()), snapshot(jail.outside)
    yield jail
    check_healthy(jail, start, before)


@pytest.fixture
def fresh(ftpd):
    """A daemon of the test's own (for configurations the shared one does not have), checked healthy after."""
    started = []

    def start(config: str = "", host: str = "127.0.0.1") -> Daemon:
        daemon = ftpd(config + SHARED_CONFIG, host=host)          # the first line of a directive wins
        daemon.outside = make_outside(daemon.dir, *daemon.users["alice"][:2])
        started.append((daemon, snapshot(daemon.outside)))
        return daemon
    yield start
    for daemon, before in started:
        check_healthy(daemon, 0, before)


@pytest.fixture
def home(d, request):
    """An empty directory of the test's own in alice's home (the shared daemon keeps its files between tests);
    returns (real path, client path)."""
    name = request.node.name.replace("[", "_").replace("]", "")[:100]
    real = d.home("alice") / name
    real.mkdir()
    own(d, real)
    return real, "/" + name


# == the control connection ======================================================================================
def test_64k_line_without_crlf_is_refused_and_the_session_goes_on(d):
    with Raw(d) as raw:
        raw.send(b"A" * 65536)
        time.sleep(0.1)
        raw.send(b"\r\n")
        assert raw.reply() == b"500 Command line too long"
        alive(raw)
        raw.login()
        raw.send(b"SIZE " + b"x" * 65536 + b"\r\nNOOP\r\n")       # one send, the next command right behind
        assert raw.reply() == b"500 Command line too long"
        alive(raw)


@pytest.mark.parametrize("split", [False, True], ids=["one-send", "byte-chunks"])
def test_line_of_exactly_the_limit_and_one_more(d, split):
    """CommandBufferSize counts the line with its CRLF (ProFTPD: 4103 bytes by default)."""
    with Raw(d) as raw:
        raw.login()
        for extra, want in ((0, b"550 "), (1, b"500 Command line too long")):
            line = b"CWD " + b"d" * (LIMIT - 2 - 4 + extra) + b"\r\n"
            assert len(line) == LIMIT + extra
            if split:
                for i in range(0, len(line), 1000):
                    raw.send(line[i:i + 1000])
                    time.sleep(0.005)
            else:
                raw.send(line)
            got = raw.reply()
            assert got.startswith(want), got[:100]
        alive(raw)


def test_ten_thousand_pipelined_noops(d):
    with Raw(d, timeout=30) as raw:
        count = 10_000
        sender = threading.Thread(target=raw.send, args=(b"NOOP\r\n" * count,))
        sender.start()
        replies = [raw.line() for _ in range(count)]
        sender.join()
        assert set(replies) == {b"200 NOOP command successful\r\n"}
        alive(raw)


def test_bare_lf_ends_a_line_and_bare_cr_stays_inside_it(d):
    with Raw(d) as raw:
        raw.send(b"NOOP\n")
        assert raw.reply() == b"200 NOOP command successful"
        raw.send(b"NOOP\rSYST\r\n")               # a lone CR is not a line end: one unknown verb
        got = raw.line()                          # echoed as CR NUL (RFC 2640), so the reply stays one line
        assert got == b"500 NOOP\r\0SYST not understood\r\n"
        raw.send(b"SYST\r\r\n")
        assert raw.reply() == b"215 UNIX Type: L8"
        alive(raw)


def test_nul_in_a_command_and_in_a_path(d, home):
    real, virt = home
    with Raw(d) as raw:
        expect(raw, b"NO\0OP", 501)
        raw.login()
        expect(raw, f"CWD {virt}", 250)
        expect(raw, b"MKD a\0b", 501)
        expect(raw, b"STOR x\0/../../etc/passwd", 501)
        alive(raw)
    assert list(real.iterdir()) == []


def test_names_that_are_not_utf8_round_trip(d, home):
    """Any byte but NUL, CR and LF may be in a name; 0xFF travels as IAC IAC on the control connection."""
    real, virt = home
    name = b"caf\xe9-\xfe\x80\xc3("            # Latin-1 and sequences that are never UTF-8
    (real / os.fsdecode(b"old-\xff.txt")).write_bytes(b"latin")
    with Raw(d) as raw:
        raw.login()
        expect(raw, f"CWD {virt}", 250)
        got = expect(raw, b"MKD " + name, 257)
        assert name in got
        expect(raw, b"CWD " + name, 250)
        expect(raw, b"CDUP", 250)
        raw.cmd("TYPE I")
        addr = raw.pasv()
        raw.send(b"NLST\r\n")
        with data_connect(addr) as conn:
            assert raw.reply().startswith(b"150 ")
            listing = read_all(conn)
        assert raw.reply() == b"226 Transfer complete"
        assert set(listing.split(b"\r\n")) >= {name, b"old-\xff.txt"}
        addr = raw.pasv()
        raw.send(b"RETR old-\xff\xff.txt\r\n")
        with data_connect(addr) as conn:
            assert raw.reply().startswith(b"150 ")
            assert read_all(conn) == b"latin"
        assert raw.reply() == b"226 Transfer complete"
        expect(raw, b"SIZE " + name + b"/nothing", 550)
        expect(raw, b"RMD " + name, 250)
        expect(raw, b"MKD cr\r\0lf", b'257 "' + virt.encode() + b'/cr\r\0lf" - Directory successfully created')
        expect(raw, b"RMD cr\r\0lf", 250)
        expect(raw, b"USER \xfe", b"501 Reauthentication not supported")
    assert sorted(os.listdir(os.fsencode(real))) == [b"old-\xff.txt"]


def test_non_utf8_user_name_and_password(d):
    with Raw(d) as raw:
        got = expect(raw, b"USER \xc3\x28\xfe", 331)
        assert b"\xc3\x28\xfe" in got
        expect(raw, b"PASS \xfe\xfd\xff\xff", b"530 Login incorrect.")
        expect(raw, b"USER alice", 331)
        expect(raw, b"PASS \xfe" + PASSWORDS["alice"].encode(), b"530 Login incorrect.")
        alive(raw)


def test_telnet_sequences_are_handled_as_proftpd(d, home):
    real, virt = home
    IAC, IP, DM, WILL, WONT, DO, DONT, SB, SE, NOP = 255, 244, 242, 251, 252, 253, 254, 250, 240, 241
    with Raw(d) as raw:
        raw.send(bytes([IAC, IP, IAC, DM]) + b"NOOP\r\n")             # what ftplib sends before ABOR
        assert raw.reply() == b"200 NOOP command successful"
        raw.send(b"NO" + bytes([IAC, WILL, 1]) + b"OP\r\n")            # option negotiation mid-verb: refused
        assert raw.reply() == bytes([IAC, DONT, 1]) + b"200 NOOP command successful"
        raw.send(bytes([IAC, DO, 3, IAC, WONT, 5, IAC, DONT, 6]) + b"SYST\r\n")
        assert raw.reply() == bytes([IAC, WONT, 3, IAC, DONT, 5, IAC, WONT, 6]) + b"215 UNIX Type: L8"
        raw.send(b"NOOP" + bytes([IAC, WILL]) + b"\r\n")              # the option byte is the CR
        assert raw.reply() == bytes([IAC, DONT, 13]) + b"200 NOOP command successful"
        raw.send(bytes([IAC, SB, 24, 1, IAC, SE]) + b"NOOP\r\n")      # not a command ProFTPD knows: kept
        assert raw.reply().startswith(b"500 ")
        raw.send(b"NOOP" + bytes([IAC]) + b"\r\n")                    # a lone IAC at the end is kept
        assert raw.reply().startswith(b"500 ")
        raw.login()
        expect(raw, f"CWD {virt}", 250)
        expect(raw, b"MKD a" + bytes([IAC, IAC]) + b"b", 257)           # IAC IAC is one 0xFF byte
        expect(raw, b"MKD bad" + bytes([IAC]), 257)                     # IAC + CR: the IAC stays
        expect(raw, b"MKD n" + bytes([IAC, NOP]) + b"p", 257)           # IAC NOP: both bytes stay
        raw.send(bytes([IAC, IP, IAC, DM]) + b"ABOR\r\n")
        assert raw.reply() == b"226 Abort successful"
        alive(raw)
    assert sorted(os.listdir(os.fsencode(real))) == [b"a\xffb", b"bad\xff", b"n\xff\xf1p"]


def test_verbs_in_any_case_and_blank_lines(d):
    with Raw(d) as raw:
        expect(raw, "noop", b"200 NOOP command successful")
        expect(raw, "NoOp", b"200 NOOP command successful")
        expect(raw, "user alice", 331)
        expect(raw, f"pAsS {PASSWORDS['alice']}", 230)
        expect(raw, "pwd", b'257 "/" is the current directory')
        expect(raw, "", b"500 Invalid command: try being more creative")
        expect(raw, "      ", b"500 Invalid command: try being more creative")
        expect(raw, "\t", 500)
        expect(raw, "NOOP   ", 200)
        expect(raw, "XYZZY plugh", b"500 XYZZY not understood")
        expect(raw, "SITE", 500)
        alive(raw)


def test_commands_before_login(d):
    with Raw(d) as raw:
        for line in ("RETR /etc/passwd", "LIST /", "STOR x", "CWD /", "PASV", "PORT 127,0,0,1,4,1", "SITE CHMOD 777 /",
                     "DELE x", "MLST /"):
            expect(raw, line, b"530 Please login with USER and PASS")
        expect(raw, f"PASS {PASSWORDS['alice']}", b"503 Login with USER first")
        alive(raw)


def test_huge_user_and_argument_fields(d):
    with Raw(d) as raw:
        expect(raw, "USER " + "u" * 4000, 331)
        expect(raw, "PASS " + "p" * 4000, b"530 Login incorrect.")
        raw.login()
        expect(raw, "SIZE " + "\u00e9" * 2000, 550)             # multi-byte text cut for the scoreboard
        expect(raw, "TYPE " + "A " * 1000, 500)
        expect(raw, "MODE " + "S" * 3000, 501)
        alive(raw)


# == active and passive data connections =========================================================================
@pytest.mark.parametrize("line,code", [
    ("PORT 127,0,0,1,256,1", 501), ("PORT 127,0,0,1,4,-1", 501), ("PORT -127,0,0,1,4,1", 501),
    ("PORT 127,0,0,1,4", 501), ("PORT 127,0,0,1,4,1,1", 501), ("PORT 127,0,0,1,,4", 501), ("PORT ,,,,,", 501),
    ("PORT 127,0,0,1,4,1x", 501), ("PORT 127.0.0.1.4.1", 501), ("PORT 0x7f,0,0,1,4,1", 501),
    ("PORT 127,0,0,1,\u0664,1", 501),                        # an Arabic-Indic digit is not a number here
    ("PORT " + "9" * 1000 + ",0,0,1,4,1", 501), ("PORT 127, 0,0,1,4,1", 501), ("PORT 127,0,0,1,+4,1", 501),
    ("PORT 127,0,0,1,0,22", b"500 Illegal PORT command"),   # FTP bounce to a low port
    ("PORT 127,0,0,1,0,1", b"500 Illegal PORT command"),
    ("PORT 127,0,0,2,200,1", b"500 Illegal PORT command"),  # another address
    ("PORT 10,0,0,1,200,1", b"500 Illegal PORT command"),
    ("EPRT |1|127.0.0.1|22|", b"500 Illegal EPRT command"),
    ("EPRT |1|127.0.0.2|5000|", b"500 Illegal EPRT command"),
    ("EPRT |2|::1|5000|", (500, 522)),                      # IPv6 to an IPv4-only server: refused either way
    ("EPRT |2|::ffff:127.0.0.1|5000|", (500, 522)),
    ("EPRT |1|127.0.0.1|0|", 500), ("EPRT |1|127.0.0.1|65536|", 500), ("EPRT |1|127.0.0.1|-1|", 501),
    ("EPRT |1|127.0.0.1|99999|", 500), ("EPRT |1|127.0.0.1|" + "9" * 30 + "|", 501),
    ("EPRT |3|127.0.0.1|5000|", b"522 Network protocol not supported, use (1)"),
    ("EPRT ||||", 522), ("EPRT |", 501), ("EPRT x", 501), ("EPRT |1|127.0.0.1|5000", 501),
    ("EPRT !1!127.0.0.1!5000!", None), ("EPRT |1|127.0.0.1|5000|extra|", 501),
    ("EPRT |1|127.0.0.256|5000|", 501), ("EPRT |1| 127.0.0.1|5000|", 501),
    ("EPSV 3", b"522 Network protocol not supported, use (1)"), ("EPSV 2", 522),
    ("EPSV garbage", 501), ("EPSV -1", 501), ("EPSV 1 1", 501),
])
def test_bad_port_eprt_epsv(d, line, code):
    with Raw(d) as raw:
        raw.login()
        got = raw.cmd(line)
        if code is None:                          # any delimiter is allowed (RFC 2428): a valid command
            assert got == b"200 EPRT command successful"
        elif isinstance(code, tuple):
            assert int(got[:3]) in code, got
        elif isinstance(code, int):
            assert got[:4] == b"%d " % code, got
        else:
            assert got == code
        alive(raw)


def test_epsv_variants_and_epsv_all(d):
    with Raw(d) as raw:
        raw.login()
        assert raw.cmd("EPSV").startswith(b"229 Entering Extended Passive Mode (|||")
        assert raw.cmd("EPSV 1").startswith(b"229 ")
        assert raw.cmd("epsv all") == b"200 EPSV ALL command successful"
        assert raw.cmd("PASV") == b"500 Illegal PASV command, EPSV ALL in effect"
        assert raw.cmd("PORT 127,0,0,1,4,1") == b"500 Illegal PORT command, EPSV ALL in effect"
        assert raw.cmd("EPRT |1|127.0.0.1|5000|") == b"500 Illegal EPRT command, EPSV ALL in effect"
        assert raw.cmd("EPSV").startswith(b"229 ")
        alive(raw)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def my_session(d: Daemon, raw: Raw) -> int:
    """The session child serving `raw` (found by its control connection's port)."""
    port = raw.sock.getsockname()[1]
    for child in session_children(d):
        try:
            if any(c.raddr and c.raddr[1] == port for c in child.net_connections(kind="tcp")):
                return child.pid
        except psutil.Error:
            continue
    raise AssertionError("session process not found")


def test_500_pasv_in_a_row_keep_the_fd_count_bounded(d):
    with Raw(d) as raw:
        raw.login()
        raw.pasv()
        pid = my_session(d, raw)
        before = open_fds(pid)
        raw.send(b"PASV\r\nEPSV\r\n" * 250)
        replies = [raw.reply() for _ in range(500)]
        assert all(r.startswith((b"227 ", b"229 ")) for r in replies)
        assert open_fds(pid) <= before
        listening = [c for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        assert len(listening) == 1                    # only the last one
        assert raw.cmd("ABOR") == b"226 Abort successful"
        assert open_fds(pid) == before - 1
        alive(raw)


def test_port_stealing_from_another_address_is_refused(d, home):
    real, virt = home
    (real / "f.bin").write_bytes(b"mine" * 1000)
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        addr = raw.pasv()
        thieves = []
        for _ in range(3):                         # connected before the transfer command even comes
            thief = socket.socket()
            thief.bind(("127.0.0.2", 0))
            thief.settimeout(5)
            thief.connect(addr)
            thieves.append(thief)
        raw.send(f"RETR {virt}/f.bin\r\n".encode())
        time.sleep(0.2)
        with data_connect(addr) as conn:
            assert raw.reply().startswith(b"150 ")
            assert read_all(conn) == b"mine" * 1000
        assert raw.reply() == b"226 Transfer complete"
        for thief in thieves:
            try:
                assert thief.recv(100) == b""          # closed without a byte of the file
            except ConnectionResetError:
                pass
            thief.close()
        alive(raw)


def test_connect_to_pasv_port_then_close_at_once(d, home):
    real, virt = home
    (real / "f.bin").write_bytes(os.urandom(3 << 20))
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        addr = raw.pasv()
        data_connect(addr).close()                 # nothing sent, closed before the command
        got = raw.cmd(f"RETR {virt}/f.bin")
        assert got.startswith(b"150 "), got
        assert raw.reply() in (b"226 Transfer complete", b"426 Transfer aborted. Data connection closed")
        addr = raw.pasv()
        data_connect(addr).close()
        assert raw.cmd(f"STOR {virt}/empty.bin").startswith(b"150 ")
        assert raw.reply() == b"226 Transfer complete"
        assert (real / "empty.bin").read_bytes() == b""
        addr = raw.pasv()
        with data_connect(addr):                    # connected, then the client changes its mind
            raw.pasv()
        alive(raw)


def test_data_connection_never_made_is_bounded(fresh):
    """PASV, then RETR without ever connecting: the session gives up (425) instead of waiting forever."""
    d = fresh("TimeoutStalled 1\n")
    (d.home("alice") / "f.txt").write_bytes(b"x")
    with Raw(d) as raw:
        raw.login()
        raw.pasv()
        start = time.monotonic()
        got = raw.cmd("RETR f.txt")
        assert got.startswith(b"425 Unable to build data connection: "), got
        assert time.monotonic() - start < 5
        alive(raw)


def test_retr_then_close_the_data_socket_mid_transfer(d, home):
    real, virt = home
    (real / "big.bin").write_bytes(os.urandom(8 << 20))
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        addr = raw.pasv()
        raw.send(f"RETR {virt}/big.bin\r\n".encode())
        conn = data_connect(addr)
        assert raw.reply().startswith(b"150 ")
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST
        conn.close()
        assert raw.reply() == b"426 Transfer aborted. Data connection closed"      # ProFTPD's: no full stop
        alive(raw)


@pytest.mark.parametrize("config", ["DeleteAbortedStores on\n", "HiddenStores on\n", ""],
                         ids=["delete-aborted", "hidden-stores", "keep-partial"])
def test_reset_upload_never_damages_another_file(fresh, config):
    d = fresh(config)
    home = d.home("alice")
    keep = os.urandom(100_000)
    (home / "other.bin").write_bytes(keep)
    (home / "target.bin").write_bytes(keep)
    own(d, home / "other.bin")
    own(d, home / "target.bin")
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        for name in ("new.bin", "target.bin"):
            addr = raw.pasv()
            raw.send(f"STOR {name}\r\n".encode())
            conn = data_connect(addr)
            assert raw.reply().startswith(b"150 ")
            conn.sendall(os.urandom(200_000))
            time.sleep(0.1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            assert raw.reply() == b"426 Transfer aborted. Data connection closed"
        alive(raw)
    assert (home / "other.bin").read_bytes() == keep
    names = sorted(os.listdir(home))
    if "Hidden" in config:
        assert (home / "target.bin").read_bytes() == keep      # the old file stays until an upload completes
        assert names == ["other.bin", "target.bin"]
    elif "Delete" in config:
        assert names == ["other.bin"]
    else:
        assert names == ["new.bin", "other.bin", "target.bin"]


def test_upload_through_a_closed_control_connection(d, home):
    """The client drops the control connection mid-upload: the session ends, nothing else is touched."""
    real, virt = home
    raw = Raw(d).login()
    raw.cmd("TYPE I")
    addr = raw.pasv()
    raw.send(f"STOR {virt}/up.bin\r\n".encode())
    conn = data_connect(addr)
    assert raw.reply().startswith(b"150 ")
    conn.sendall(b"x" * 100_000)
    raw.close()
    time.sleep(0.2)
    conn.close()
    wait_sessions_gone(d)


# == REST ========================================================================================================
@pytest.mark.parametrize("arg,reply", [
    ("-1", b"501 REST requires a value greater than or equal to 0"),
    ("abc", b"501 REST requires a value greater than or equal to 0"),
    ("1.5", b"501 REST requires a value greater than or equal to 0"),
    ("\u00b2", b"501 REST requires a value greater than or equal to 0"),        # '²' is a digit to str.isdigit()
    ("\u0661\u0662", b"501 REST requires a value greater than or equal to 0"),
    ("+-5", b"501 REST requires a value greater than or equal to 0"),
    ("0x10", b"501 REST requires a value greater than or equal to 0"),
    # ProFTPD reads the number with strtoull(3): too big saturates at 2^64-1 instead of being refused
    ("9" * 4000, b"350 Restarting at 18446744073709551615. Send STORE or RETRIEVE to initiate transfer"),
    ("99999999999999999999999", b"350 Restarting at 18446744073709551615. Send STORE or RETRIEVE to initiate transfer"),
    ("+5", b"350 Restarting at 5. Send STORE or RETRIEVE to initiate transfer"),
    ("5 6", b"500 'REST 5 6' not understood"),
])
def test_bad_rest_values(d, arg, reply):
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        assert raw.cmd(f"REST {arg}") == reply
        alive(raw)


def test_rest_beyond_the_end_of_the_file(d, home):
    real, virt = home
    (real / "small.txt").write_bytes(b"12345")
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        assert raw.cmd("REST 1000").startswith(b"350 ")
        raw.pasv()
        assert raw.cmd(f"RETR {virt}/small.txt") == f"554 REST: invalid {virt}/small.txt argument".encode()
        assert raw.cmd("REST 9223372036854775807").startswith(b"350 ")
        raw.pasv()
        assert raw.cmd(f"RETR {virt}/small.txt").startswith(b"554 ")
        assert raw.cmd("REST 5").startswith(b"350 ")            # exactly the end: an empty transfer
        addr = raw.pasv()
        raw.send(f"RETR {virt}/small.txt\r\n".encode())
        with data_connect(addr) as conn:
            assert raw.reply().startswith(b"150 ")
            assert read_all(conn) == b""
        assert raw.reply() == b"226 Transfer complete"
        alive(raw)


# == paths: the root is a wall ===================================================================================
def plant(d: Daemon, real: Path) -> None:
    """Traps inside the user's directory: links out of the root, loops, a directory."""
    outside = d.outside
    for name, target in (("abs-out", str(outside)), ("abs-secret", str(outside / "secret.txt")),
                         ("rel-out", os.path.relpath(outside, real)),
                         ("rel-secret", os.path.relpath(outside / "secret.txt", real)),
                         ("dangling-out", str(outside / "new.txt")), ("etc", "/etc"), ("proc", "/proc"),
                         ("loop", "loop"), ("ping", "pong"), ("pong", "ping"), ("dot", ".")):
        os.symlink(target, real / name)
        own(d, real / name)
    own(d, real / "adir")
    (real / "file.txt").write_bytes(b"inside\n")
    own(d, real / "file.txt")
    for i in range(45):                                   # more links in a row than any resolver follows
        os.symlink(f"chain{i + 1}" if i < 44 else "file.txt", real / f"chain{i}")
        own(d, real / f"chain{i}")


PATH_ATTACKS = [
    # (command, expected reply code): nothing may reach the outside directory or /etc of the host
    ("RETR ../../../../../../etc/passwd", 550), ("RETR /etc/passwd", 550), ("RETR abs-secret", 550),
    ("RETR rel-secret", 550), ("RETR abs-out/secret.txt", 550), ("RETR rel-out/secret.txt", 550),
    ("RETR etc/passwd", 550), ("RETR proc/self/environ", 550), ("RETR ..\\..\\etc\\passwd", 550),
    ("RETR %2e%2e/%2e%2e/etc/passwd", 550), ("RETR ....//....//etc/passwd", 550),
    ("SIZE abs-secret", 550), ("MDTM rel-secret", 550), ("MLST abs-out/secret.txt", 550),
    ("MLST /proc/self/status", 550), ("MLST proc/self/status", 550), ("MLST ../../../../proc/1/environ", 550),
    ("CWD abs-out", 550), ("CWD rel-out", 550), ("CWD loop", 550), ("CWD ping", 550),
    ("RETR chain0", 550), ("SIZE chain0", 550), ("RETR chain3", 550), ("CWD dot/dot/dot/dot/loop", 550),
    ("STOR abs-out/new.txt", 550), ("STOR rel-out/new.txt", 550), ("STOR dangling-out", 550),
    ("STOR abs-secret", 550), ("APPE rel-secret", 550), ("STOR ../../../outside/new.txt", 550),
    ("MKD abs-out/newdir", 550), ("MKD rel-out/newdir", 550), ("MKD ../../outside/newdir", 550),
    ("RMD abs-out/sub", 550), ("RMD rel-out/sub", 550), ("DELE abs-out/secret.txt", 550),
    ("DELE rel-out/secret.txt", 550), ("DELE ..", 550), ("DELE /", 550), ("DELE .", 550),
    ("RMD /", 550), ("RMD ..", 550),
    ("SITE CHMOD 777 abs-secret", 550), ("SITE CHMOD 777 rel-out/secret.txt", 550),
    ("SITE CHMOD 777 ../../outside", 550),
    ("SITE COPY abs-out/secret.txt got.txt", 550), ("SITE COPY rel-out/secret.txt got.txt", 550),
    ("SITE COPY /etc/passwd got.txt", 550), ("SITE COPY proc/self/environ got.txt", 550),
    ("SITE COPY file.txt abs-out/new.txt", 550), ("SITE COPY file.txt ../../../outside/new.txt", 550),
    ("SITE COPY file.txt dangling-out", 550), ("SITE COPY . inside", 550), ("SITE COPY adir adir/again", 550),
    ("SITE CPFR abs-secret", 550), ("SITE CPFR ../../../../etc/passwd", 550),
    ("MKD " + "n" * 300, 550), ("MKD " + "/".join(["p" * 200] * 20), 550), ("CWD " + "a/" * 2040, 550),
    ("STOR " + "n" * 256, 550), ("RNFR " + "n" * 300, 550),
]


def run_path_attacks(d: Daemon, real: Path, virt: str) -> None:
    plant(d, real)
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        expect(raw, f"CWD {virt}", 250)
        for line, code in PATH_ATTACKS:
            if line.startswith(("RETR", "STOR", "APPE")):
                raw.pasv()
            got = raw.cmd(line)
            if got.startswith(b"150 "):                # it must never get this far
                raise AssertionError(f"{line} opened a transfer")
            assert got[:4] == b"%d " % code, (line[:60], got[:200])
        # RNFR/RNTO: nothing leaves the root, nothing overwrites a directory
        expect(raw, "RNFR file.txt", 350)
        got = raw.cmd("RNTO ../../../outside/stolen.txt")
        assert got.startswith(b"550 "), got
        expect(raw, "RNFR file.txt", 350)
        expect(raw, "RNTO abs-out/stolen.txt", 550)
        expect(raw, "RNFR file.txt", 350)
        expect(raw, "RNTO adir", 550)
        expect(raw, "RNFR abs-out", 350)               # renaming the link itself is fine ...
        expect(raw, "RNTO moved-link", 250)
        assert os.readlink(real / "moved-link") == str(d.outside)   # ... and moves only the link
        expect(raw, f"SITE COPY {virt} {virt}-copy", 200)  # a copied tree's links stay links, never followed
        copy = real.parent / f"{real.name}-copy"
        assert os.readlink(copy / "abs-secret") == str(d.outside / "secret.txt")
        assert os.readlink(copy / "loop") == "loop" and (copy / "chain44").read_bytes() == b"inside\n"
        expect(raw, "PWD", 257)
        expect(raw, "CWD /", 250)
        expect(raw, "CWD ../../../..", 250)
        assert raw.cmd("PWD") == b'257 "/" is the current directory'
        alive(raw)
    assert (real / "file.txt").read_bytes() == b"inside\n"
    assert (real / "adir").is_dir()
    assert d.home("alice").is_dir()


def test_paths_cannot_leave_the_root(d, home):
    run_path_attacks(d, *home)


def test_paths_cannot_leave_the_userland_jail(jd):
    real = own(jd, jd.home("alice") / "attacks")
    run_path_attacks(jd, real, "/attacks")


def listing(raw: Raw, line: str) -> tuple[bytes, bytes]:
    """Run a listing command over PASV: (the data, the final reply)."""
    addr = raw.pasv()
    with data_connect(addr) as conn:
        raw.send(line.encode("utf-8", "surrogateescape") + b"\r\n")
        first = raw.reply()
        if not first.startswith(b"150 "):
            return b"", first
        data = read_all(conn)
    return data, raw.reply()


def run_listing_attacks(d: Daemon, real: Path, virt: str) -> None:
    plant(d, real)
    secret = SECRET.strip()
    with Raw(d) as raw:
        raw.login()
        expect(raw, f"CWD {virt}", 250)
        for line in ("LIST -R", "LIST -laR /", "NLST -R", "LIST -R loop", "LIST abs-out", "LIST rel-out/",
                     "NLST abs-out", "NLST rel-out/*", "NLST */*", "LIST -L", "MLSD abs-out", "MLSD rel-out",
                     "STAT abs-out", "LIST ../../..", "NLST /../../../*", "LIST proc/self/"):
            if line.startswith("STAT"):
                data, final = raw.cmd(line), b""
            else:
                data, final = listing(raw, line)
            names = re.sub(rb" -> [^\r\n]*", b"", data)          # a link's own target text may name it
            assert secret not in data and not re.search(rb"(^|[ /])secret\.txt\r?$", names, re.M), (line, data)
            assert not final.startswith(b"451"), (line, final)
        alive(raw)


def test_listings_cannot_see_outside_the_root(d, home):
    run_listing_attacks(d, *home)


def test_listings_cannot_see_outside_the_userland_jail(jd):
    real = own(jd, jd.home("alice") / "listings")
    run_listing_attacks(jd, real, "/listings")


def test_store_onto_a_directory(d, home):
    real, virt = home
    (real / "adir").mkdir()
    own(d, real / "adir")
    with Raw(d) as raw:
        raw.login()
        raw.pasv()
        assert raw.cmd(f"STOR {virt}/adir") == f"550 {virt}/adir: Not a regular file".encode()
        raw.pasv()
        assert raw.cmd(f"STOR {virt}/").startswith(b"550 ")
        alive(raw)
    assert (real / "adir").is_dir() and list((real / "adir").iterdir()) == []


def test_deep_tree_and_link_loop_listing_is_bounded(d, home):
    real, virt = home
    deep = real
    for _ in range(150):
        deep = deep / "d"
    deep.mkdir(parents=True)
    os.symlink("..", real / "d" / "up")
    os.symlink(".", real / "d" / "here")
    with Raw(d) as raw:
        raw.login()
        expect(raw, f"CWD {virt}", 250)
        start = time.monotonic()
        data, final = listing(raw, "LIST -R")
        assert final == b"226 Transfer complete"
        assert time.monotonic() - start < 5
        headers = [line for line in data.split(b"\r\n") if line.endswith(b":")]
        assert 0 < len(headers) <= 150
        assert b"up/" not in data and b"here/" not in data
        alive(raw)


def test_glob_bombs(d, home):
    real, virt = home
    for a in "abcdefgh":
        for b in "abcdefgh":
            (real / a / b).mkdir(parents=True)
    with Raw(d) as raw:
        raw.login()
        expect(raw, f"CWD {virt}", 250)
        for pattern in ("*/*/*/*/*/*", "*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*", "{a,b}" * 30, "[[[[", "[]",
                        "[!", "*" * 3000, "?" * 2000 + "*", "[" + "a-" * 1000 + "]", "**/**/**", "/*/../*/../*/../*",
                        "[\\", "\\*"):
            start = time.monotonic()
            data, final = listing(raw, f"NLST {pattern}")
            assert time.monotonic() - start < 5, pattern
            assert final[:4] in (b"226 ", b"450 ", b"550 "), (pattern, final)
        data, final = listing(raw, "NLST */*")
        assert final == b"226 Transfer complete" and len(data.split(b"\r\n")) == 65
        alive(raw)


# == the connection itself =======================================================================================
def test_abrupt_closes_at_every_stage(d, home):
    real, virt = home
    (real / "big.bin").write_bytes(b"\0" * (8 << 20))
    for _ in range(5):
        socket.create_connection((d.host, d.port)).close()                # during the banner
        s = socket.create_connection((d.host, d.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()                                                          # RST at once
    raw = Raw(d)
    raw.send(b"USER alice\r\nPASS ")                                      # during PASS
    raw.close()
    raw = Raw(d).login()
    raw.cmd("TYPE I")
    addr = raw.pasv()
    raw.send(f"RETR {virt}/big.bin\r\n".encode())
    conn = data_connect(addr)
    assert raw.reply().startswith(b"150 ")
    conn.recv(1000)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()                                                            # during a transfer
    conn.close()
    wait_sessions_gone(d)


def test_half_closed_control_connection(d):
    with Raw(d) as raw:
        raw.send(b"USER alice\r\nPASS " + PASSWORDS["alice"].encode() + b"\r\nPWD\r\nNOOP")
        raw.sock.shutdown(socket.SHUT_WR)
        assert raw.reply().startswith(b"331 ")
        assert raw.reply().startswith(b"230 ")
        assert raw.reply() == b'257 "/" is the current directory'
        assert raw.reply() == b"200 NOOP command successful"                # the last line had no CRLF
        with pytest.raises(EOFError):
            raw.reply()
    wait_sessions_gone(d)


def test_client_that_never_reads_a_transfer_is_ended_by_timeout_stalled(d, home):
    real, virt = home
    for i in range(2000):
        (real / f"{i:05d}-{'x' * 100}").touch()
    raw = Raw(d).login()
    addr = raw.pasv()
    conn = socket.socket()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)              # a zero window soon
    conn.connect(addr)
    raw.send(f"LIST {virt}\r\n".encode())
    assert raw.reply().startswith(b"150 ")
    start = time.monotonic()
    raw.sock.settimeout(10)
    rest = b""
    while chunk := raw.sock.recv(4096):                                    # the session ends (TimeoutStalled 3)
        rest += chunk
    assert 2 < time.monotonic() - start < 8
    conn.close()
    raw.close()
    assert "stall timeout" in d.log()


def test_client_that_never_reads_replies_is_ended(fresh):
    """Commands pipelined without ever reading a reply: the replies fill the socket; after TimeoutIdle of no
    progress the session gives up instead of blocking forever."""
    d = fresh("TimeoutIdle 2\n")
    raw = Raw(d)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.sock.setblocking(False)
    deadline = time.monotonic() + 3
    sent = 0
    while time.monotonic() < deadline:
        try:
            sent += raw.sock.send(b"HELP\r\n" * 1000)
        except BlockingIOError:
            select.select([], [raw.sock], [], 0.2)
        except ConnectionError:
            break                                      # the session gave up on us
    wait_sessions_gone(d, timeout=8)
    assert "client read no reply for 2 seconds" in d.log()
    raw.close()


def test_fifty_idle_connections_are_ended_by_timeout_login(fresh):
    d = fresh("TimeoutLogin 1\n")
    socks = [Raw(d, timeout=15) for _ in range(50)]
    start = time.monotonic()
    for s in socks:
        assert s.reply() == b"421 Login timeout (1 second): closing control connection"
        with pytest.raises(EOFError):
            s.reply()
        s.close()
    assert time.monotonic() - start < 10
    wait_sessions_gone(d)


def test_the_root_itself_cannot_be_removed_or_renamed(jd):
    """Under chroot(2) `/` cannot be removed or renamed (EBUSY); the userland jail must not allow it either, even
    when the home directory is empty."""
    home = jd.home("bob")
    assert list(home.iterdir()) == []
    with Raw(jd) as raw:
        raw.login("bob")
        for line in ("RMD /", "RMD .", "RMD ..", "RMD /.."):
            expect(raw, line, f"550 {line[4:]}: Device or resource busy".encode())
        expect(raw, "DELE /", b"550 /: Is a directory")
        expect(raw, "RNFR /", b"550 /: Device or resource busy")
        expect(raw, "MKD sub", 257)
        expect(raw, "RNFR sub", 350)
        expect(raw, "RNTO /", 550)
        expect(raw, "RMD sub", 250)
        alive(raw)
    assert home.is_dir()


def test_half_a_line_then_silence_is_ended_by_timeout_idle(fresh):
    d = fresh("TimeoutIdle 1\n")
    with Raw(d) as raw:
        raw.send(b"NOO")
        start = time.monotonic()
        with pytest.raises(EOFError):
            raw.reply()
        assert time.monotonic() - start < 5
    wait_sessions_gone(d)
    assert "no end of line for 1 seconds" in d.log()


def test_command_flood_during_a_transfer(fresh):
    d = fresh("TransferRate RETR 256\n")                      # 256 KiB/s: the download lasts about a second
    (d.home("alice") / "f.bin").write_bytes(os.urandom(256 << 10))
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        addr = raw.pasv()
        with data_connect(addr) as conn:
            raw.send(b"RETR f.bin\r\n")
            assert raw.reply().startswith(b"150 ")
            raw.send(b"NOOP\r\n" * 300 + b"RNFR f.bin\r\n" + b"X" * 5000 + b"\r\n")
            received = read_all(conn)
        replies = []
        while not replies or not replies[-1].startswith(b"226 "):
            replies.append(raw.reply())
        assert len(received) == 256 << 10
        assert replies.count(b"200 NOOP: data transfer in progress") == 300
        assert b"450 RNFR: data transfer in progress" in replies
        assert b"500 Command line too long" in replies
        alive(raw)
    assert (d.home("alice") / "f.bin").exists()


def free_port_pair() -> int:
    """Two consecutive free ports (the first is returned)."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            lo = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", lo + 1))
            except OSError:
                continue
            return lo
    raise AssertionError("no two consecutive free ports")


def test_passive_range_exhausted_by_clients_gives_425(fresh):
    lo = free_port_pair()
    d = fresh(f"PassivePorts {lo} {lo + 1}\n")
    hogs = [Raw(d).login() for _ in range(2)]
    try:
        ports = {hog.pasv()[1] for hog in hogs}
        assert ports == {lo, lo + 1}
        with Raw(d) as raw:
            raw.login()
            assert raw.cmd("PASV") == \
                f"425 Unable to build data connection: no free port in PassivePorts range {lo}-{lo + 1}".encode()
            assert raw.cmd("EPSV").startswith(b"425 ")
            assert hogs[0].cmd("ABOR") == b"226 Abort successful"       # the hog's unused listener is closed
            assert raw.pasv()[1] in ports
            alive(raw)
    finally:
        for hog in hogs:
            hog.close()


def test_early_data_connections_leave_no_descriptors(d, home):
    real, virt = home
    (real / "f.txt").write_bytes(b"x" * 100)
    with Raw(d) as raw:
        raw.login()
        alive(raw)
        pid = my_session(d, raw)
        before = open_fds(pid)
        for _ in range(20):
            data, final = listing(raw, f"NLST {virt}")               # connects before the command
            assert final == b"226 Transfer complete"
            addr = raw.pasv()
            with data_connect(addr):                                  # connected, then never used
                time.sleep(0.01)
            raw.cmd("EPSV")
            assert raw.cmd("ABOR") == b"226 Abort successful"
        assert open_fds(pid) == before
        alive(raw)


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_session_cannot_bounce(fresh):
    d = fresh(host="::1")
    with Raw(d) as raw:
        raw.login()
        for line in ("PORT 127,0,0,1,200,1", "EPRT |1|127.0.0.1|5000|", "EPRT |2|::2|5000|", "EPRT |2|::1|21|"):
            got = raw.cmd(line)
            assert got[:4] == b"500 ", (line, got)
        assert raw.cmd("EPSV").startswith(b"229 ")
        assert raw.cmd("EPRT |2|::1|5000|") == b"200 EPRT command successful"
        alive(raw)


def test_fifo_never_blocks_the_session(d, home):
    """A FIFO planted in the user's tree (FTP cannot make one, a local user can): no transfer may hang on it."""
    real, virt = home
    os.mkfifo(real / "fifo")
    own(d, real / "fifo")
    with Raw(d) as raw:
        raw.login()
        raw.cmd("TYPE I")
        raw.pasv()
        assert raw.cmd(f"RETR {virt}/fifo") == f"550 {virt}/fifo: Not a regular file".encode()
        raw.pasv()
        assert raw.cmd(f"STOR {virt}/fifo") == f"550 {virt}/fifo: No such device or address".encode()
        alive(raw)


# == the jail's open: no window between resolving and opening ====================================================
@pytest.mark.parametrize("link", ["absolute", "relative"])
@pytest.mark.parametrize("mode", ["write", "read"])
def test_jail_open_stays_inside_after_a_directory_is_swapped_for_a_link(tmp_path, link, mode):
    """Another session of the same account replaces a directory with a symbolic link between fs.resolve() and the
    open: FS.open resolves inside the root again (openat2 RESOLVE_IN_ROOT), so the link cannot lead outside."""
    from proftpy.fs import FS
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (outside / "f.txt").write_bytes(SECRET)
    (root / "d" / "f.txt").write_bytes(b"inside")
    fs = FS(str(root))
    path = fs.resolve("d/new.txt" if mode == "write" else "d/f.txt")
    (root / "d" / "f.txt").unlink()
    (root / "d").rmdir()
    os.symlink(str(outside) if link == "absolute" else os.path.relpath(outside, root), root / "d")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL if mode == "write" else os.O_RDONLY
    with pytest.raises(FileNotFoundError):
        os.close(fs.open(path.real, flags))
    assert sorted(os.listdir(outside)) == ["f.txt"]


# == the jail's tree operations: the same swap, made while the session is inside the command ==================
class SyscallGate:
    """ptrace(2) on a session process: the first time it enters one of `syscalls`, run `action` (the session waits
    in the kernel meanwhile, before the syscall has looked at its path), then let it go. Deterministic: the swap
    lands exactly between what the handler resolved and what the kernel does with it."""

    SEIZE, INTERRUPT, SYSCALL, DETACH, GET_SYSCALL_INFO = 0x4206, 0x4207, 24, 17, 0x420E
    O_TRACESYSGOOD, EVENT_STOP, WALL, ENTRY = 1, 128, 0x40000000, 1

    class Info(ctypes.Structure):
        _fields_ = [("op", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3), ("arch", ctypes.c_uint32),
                    ("ip", ctypes.c_uint64), ("sp", ctypes.c_uint64), ("nr", ctypes.c_uint64),
                    ("args", ctypes.c_uint64 * 6)]

    def __init__(self, pid: int, syscalls: set[int], action):
        self.pid, self.syscalls, self.action, self.fired = pid, syscalls, action, False
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.restype = ctypes.c_long
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self._ptrace(self.SEIZE, None, self.O_TRACESYSGOOD)
        self._ptrace(self.INTERRUPT)
        self._wait(time.monotonic() + 10)               # the interrupt stop
        self._ptrace(self.SYSCALL)

    def _ptrace(self, request: int, addr=None, data: int = 0) -> None:
        if self.libc.ptrace(request, self.pid, addr, ctypes.c_void_p(data)) < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"ptrace {request:#x}: {os.strerror(err)}")

    def _wait(self, deadline: float) -> int:
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG | self.WALL)
            if pid:
                assert os.WIFSTOPPED(status), f"session ended while traced ({status:#x})"
                return status
            assert time.monotonic() < deadline, "the session never made the awaited system call"
            time.sleep(0.0002)

    def run(self, timeout: float = 10) -> None:
        """Follow the session until the gate fires (then detach), or fail after `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                status = self._wait(deadline)
                sig = os.WSTOPSIG(status)
                if sig == signal.SIGTRAP | 0x80:                    # a system call stop
                    info = self.Info()
                    self.libc.ptrace(self.GET_SYSCALL_INFO, self.pid, ctypes.c_void_p(ctypes.sizeof(info)),
                                     ctypes.cast(ctypes.byref(info), ctypes.c_void_p))
                    if info.op == self.ENTRY and info.nr in self.syscalls:
                        self.action()
                        self.fired = True
                        return
                    self._ptrace(self.SYSCALL)
                elif status >> 16 == self.EVENT_STOP:              # group stop / interrupt: not a signal
                    self._ptrace(self.SYSCALL)
                else:
                    self._ptrace(self.SYSCALL, None, sig)           # a real signal: deliver it
        finally:
            self._ptrace(self.DETACH)


# x86_64 numbers: the calls that act on a path (what the old code reached the kernel with), and openat2 (what
# fs.py opens the parent directory with, before acting relative to it)
ACT_SYSCALLS = {83, 258,                    # mkdir mkdirat
                84, 87, 263,                # rmdir unlink unlinkat
                82, 264, 316,               # rename renameat renameat2
                90, 268, 452,               # chmod fchmodat fchmodat2
                92, 94, 260,                # chown lchown fchownat
                132, 235, 261, 280,         # utime utimes futimesat utimensat
                88, 266}                    # symlink symlinkat
OPENAT2 = 437

SWAP_COMMANDS = [
    # (commands before the swap, the command during which `d` becomes a link to the outside)
    ([], "MKD d/new"),
    ([], "XMKD d/new"),
    ([], "RMD d/sub"),
    ([], "XRMD d/sub"),
    ([], "DELE d/secret.txt"),
    (["RNFR d/secret.txt"], "RNTO d/renamed.txt"),
    ([], "MFMT 20000101000000 d/secret.txt"),
    ([], "MFF UNIX.mode=0600; d/secret.txt"),
    ([], "SITE CHMOD 600 d/secret.txt"),
    ([], f"SITE CHGRP {DEV_UID} d/secret.txt"),
    ([], "SITE UTIME 200001010000 d/secret.txt"),
    ([], "SITE MKDIR d/new"),
    ([], "SITE RMDIR d/sub"),
    ([], "SITE SYMLINK /file.txt d/link"),
]


def tree_state(root: Path) -> dict[str, tuple]:
    """Like snapshot(), with owners and the link text: a chgrp or a new link shows too."""
    out = {".": (root.lstat().st_mode, root.lstat().st_mtime_ns)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            content = p.read_bytes() if p.is_file() and not p.is_symlink() else None
            link = os.readlink(p) if p.is_symlink() else None
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                                             content, link)
    return out


def link_swapper(top: Path, outside: Path):
    """What the second session does: `top/d` is moved away and becomes a link to `outside`."""

    def swap() -> None:
        (top / "d").rename(top / "d.moved")
        os.symlink(str(outside), top / "d")

    return swap


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers of x86_64")
@pytest.mark.parametrize("moment", ["before-open", "before-act"])
@pytest.mark.parametrize("before,line", SWAP_COMMANDS, ids=[" ".join(c[1].split()[:2]) for c in SWAP_COMMANDS])
def test_jail_commands_stay_inside_when_a_directory_is_swapped_mid_command(jd, before, line, moment):
    """A second session of the same account swaps directory `d` for a link to a directory outside the root while
    the command runs, after the handler resolved its path: at the first openat2 (fs.py opening the parent) or at
    the first call acting on a path. The kernel resolves inside the root (the link leads nowhere: 550) or acts
    relative to the directory fd opened before the swap (inside the root, in the moved directory): never outside."""
    case = re.sub(r"\W+", "-", f"{' '.join(line.split()[:2])}-{moment}").lower()
    top = own(jd, jd.home("alice") / f"swap-{case}")
    outside = jd.dir / f"outside-{case}"
    for base in (top / "d", outside):
        base.mkdir()
        (base / "sub").mkdir()
        (base / "secret.txt").write_bytes(b"inside\n" if base != outside else SECRET)
        os.utime(base / "secret.txt", (1e9, 1e9))
        for p in (base, base / "sub", base / "secret.txt"):
            os.chown(p, DEV_UID, 0)             # group 0: a SITE CHGRP to the user's own group shows
    (jd.home("alice") / "file.txt").write_bytes(b"x")
    own(jd, jd.home("alice") / "file.txt")
    before_outside = tree_state(outside)

    swap = link_swapper(top, outside)
    with Raw(jd) as raw:
        raw.login()
        expect(raw, f"CWD /swap-{case}", 250)
        for first in before:
            expect(raw, first, 350)
        gate = SyscallGate(my_session(jd, raw), ACT_SYSCALLS | ({OPENAT2} if moment == "before-open" else set()),
                           swap)
        raw.send(line + "\r\n")
        gate.run()
        reply = raw.reply()
        assert gate.fired
        alive(raw)
    assert tree_state(outside) == before_outside, reply
    assert reply[:1] in (b"2", b"5") and b"Traceback" not in reply, reply
    if moment == "before-act":
        # the parent directory was open already: the command did its work there, inside the root
        assert reply[:1] == b"2", reply


OPENAT = 257
LISTING_SWAPS = ["LIST d", "LIST -la d", "NLST d", "MLSD d"]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers of x86_64")
@pytest.mark.parametrize("line", LISTING_SWAPS)
def test_jail_listings_stay_inside_when_a_directory_is_swapped_mid_listing(jd, line):
    """Reads go through the same door: the swap lands at the first open the listing makes (the plain open of a
    path that os.scandir would do, or fs.py's openat2 inside the root), and no name from outside is listed."""
    case = re.sub(r"\W+", "-", line).lower()
    top = own(jd, jd.home("alice") / f"lswap-{case}")
    own(jd, top / "d")
    (top / "d" / "inside.txt").write_bytes(b"inside\n")
    outside = jd.dir / f"outside-lswap-{case}"
    outside.mkdir()
    (outside / "only-outside.txt").write_bytes(SECRET)

    swap = link_swapper(top, outside)
    with Raw(jd) as raw:
        raw.login()
        expect(raw, f"CWD /lswap-{case}", 250)
        with data_connect(raw.pasv()) as conn:
            gate = SyscallGate(my_session(jd, raw), {OPENAT, OPENAT2}, swap)
            raw.send(line + "\r\n")
            gate.run()
            first = raw.reply()
            data = read_all(conn) if first.startswith(b"150 ") else b""
        final = raw.reply() if first.startswith(b"150 ") else first
        assert gate.fired
        alive(raw)
    assert b"only-outside" not in data and SECRET not in data, (line, data)
    assert final[:1] in (b"2", b"4", b"5") and b"Traceback" not in final, final
