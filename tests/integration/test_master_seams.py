"""The master's seams, driven through a real Master (forked from the test) whose modules are the built-in ones plus
a test module using every seam: a pre-step reading a `PX <ip> <port>` line off the raw connection, a veto, channel
handlers in the master (a socket handed to the session, an fd handed back, notices pushed), a notice handler in
the session, and listeners on the master's events. Real clients, real sockets, real processes."""

from __future__ import annotations

import ftplib
import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field

import psutil
import pytest

from conftest import AUTH_CONFIG, BASE_CONFIG, Daemon, fill, fork_master, free_port, make_users, wait_until
from proftpy.dispatch import Command
from proftpy.module import ChannelHandler, Listener, Module, ModuleSet, PreStep, Veto
from proftpy.modules import MODULES
from proftpy.net.channel import answer, close_fds
from proftpy.reply import Reply

HEADER_MAX = 100


# -- the test module -----------------------------------------------------------------------------------------------
@dataclass
class Notices:
    """A session's: the master's notices it got."""

    texts: list[str] = field(default_factory=list)


def seam_module(events_path, header_timeout: float | None, watched: int = 0) -> Module:
    def record(name):
        def listener(**data):
            shown = {k: (v.remote if k == "connection" else v.message if k == "veto" else v)
                     for k, v in data.items() if k in ("connection", "veto", "pid", "status")}
            with open(events_path, "a") as f:
                f.write(json.dumps({"event": name, **shown}) + "\n")
        return Listener(name, listener)

    # pre-step: "PX <ip> <port>\r\n" before anything else
    def timeout(master, conn):
        return header_timeout

    def parse(master, conn, data, eof):
        if not b"PX ".startswith(data[:3]):
            return Veto(f"seam: bad header from {conn.remote[0]}", "seam.bad-header")
        end = data.find(b"\r\n")
        if end < 0:
            if eof or len(data) > HEADER_MAX:
                return Veto(f"seam: header cut short from {conn.remote[0]}")
            return None
        _, ip, port = data[:end].decode().split()
        conn.remote = (ip, int(port))
        conn.notes["seam.header"] = data[:end].decode()
        return end + 2

    def expired(master, conn):
        return Veto(f"seam: no header from {conn.remote[0]} in time", "seam.header-timeout")

    def veto(master, conn):
        if conn.remote[0] == "10.9.9.9":
            return Veto(f"seam: {conn.remote[0]} refused", "seam.refused")
        return None

    # the master's side of the channel
    def connect_for(master, child, message, fds):
        sock = socket.create_connection(("127.0.0.1", message["port"]), timeout=5)
        master.tell(child, answer(message, {"type": "seam.connected"}), [sock.fileno()])
        sock.close()

    def read_fd(master, child, message, fds):
        text = os.read(fds[0], 100).decode()
        close_fds(fds)
        master.tell(child, answer(message, {"type": "seam.read", "text": text}))

    def notify_me(master, child, message, fds):
        master.tell(child, {"type": "seam.notice", "text": "before"})
        master.tell(child, answer(message, {"type": "seam.ok"}))
        master.tell(child, {"type": "seam.notice", "text": "after"})

    def bye_later(master, child, message, fds):
        master.tell(child, answer(message, {"type": "seam.ok"}))
        master.tell(child, {"type": "seam.bye"})

    # the session's side
    def noticed(session, message, fds):
        session.state.get(Notices).texts.append(message["text"])

    def bye(session, message, fds):
        session.reply(421, "the master says goodbye")
        session.end("told by the master")

    def xbye(session, req):
        session.channel.request({"type": "seam.bye-later"})
        return Reply(200, "waiting")

    def xwho(session, req):
        return Reply(200, f"{session.remote_addr}:{session.remote_port} {session.notes.get('seam.header')}")

    def xsock(session, req):
        got, fds = session.channel.request({"type": "seam.connect", "port": int(req.arg)})
        with socket.socket(fileno=fds[0]) as sock:
            sock.sendall(f"hello from session {os.getpid()}".encode())
            return Reply(200, f"sent to {sock.getpeername()[1]}")

    def xfd(session, req):
        r, w = os.pipe()
        os.write(w, b"from the session")
        os.close(w)
        got, _ = session.channel.request({"type": "seam.read-fd"}, [r])
        os.close(r)
        return Reply(200, f"master read: {got['text']}")

    def xnotice(session, req):
        session.channel.request({"type": "seam.notify-me"})
        return Reply(200, "asked")

    def xnotices(session, req):
        return Reply(200, " ".join(session.state.get(Notices).texts))

    def xbad(session, req):
        sock = session.channel.sock
        sock.send(b"garbage")
        sock.send(b"{" + b" " * 70000 + b"}")
        session.channel.send({"type": "seam.nobody"})
        return Reply(200, "sent")

    def watch_many(master):
        """Fill the master's low descriptors with sockets it watches (as a busy master fills them with
        channels): what it accepts next gets numbers past 1024."""
        for _ in range(watched // 2):
            for end in socket.socketpair():
                master.watch(end, lambda: None)

    commands = tuple(Command(name, fn, needs_login=False, limit=False)
                     for name, fn in (("XWHO", xwho), ("XSOCK", xsock), ("XFD", xfd), ("XNOTICE", xnotice),
                                      ("XNOTICES", xnotices), ("XBAD", xbad), ("XBYE", xbye)))
    return Module(
        "mod_seam_test.c", commands=commands, prestep=PreStep(timeout, parse, expired, peek=HEADER_MAX + 1),
        veto=veto,
        channel_handlers=(ChannelHandler("seam.connect", connect_for), ChannelHandler("seam.read-fd", read_fd),
                          ChannelHandler("seam.notify-me", notify_me), ChannelHandler("seam.bye-later", bye_later)),
        notice_handlers=(ChannelHandler("seam.notice", noticed), ChannelHandler("seam.bye", bye)), master_init=watch_many if watched else None,
        master_events=tuple(record(name) for name in (
            "core.connection-refused", "core.max-instances", "core.child-spawned", "core.child-exited",
            "core.reloaded", "seam.bad-header", "seam.refused", "seam.header-timeout")))


# -- a Master running the built-in modules and the test module --------------------------------------------------------
@dataclass
class SeamDaemon(Daemon):
    def events(self) -> list[dict]:
        path = self.dir / "events.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def raw(self, header: bytes = b"") -> socket.socket:
        s = socket.create_connection((self.host, self.port), timeout=5)
        if header:
            s.sendall(header)
        return s

    def ftp(self, header: bytes) -> ftplib.FTP:
        ftp = ftplib.FTP(timeout=5)
        ftp.sock = self.raw(header)
        ftp.af = ftp.sock.family
        ftp.file = ftp.sock.makefile("r", encoding=ftp.encoding)
        ftp.welcome = ftp.getresp()
        return ftp


@pytest.fixture
def seam_master(tmp_path):
    pids = []

    def start(config: str = "", header_timeout: float | None = 0.5, watched: int = 0) -> SeamDaemon:
        d = SeamDaemon(dir=tmp_path, port=free_port(), conf=tmp_path / "proftpy.conf")
        d.users = make_users(tmp_path)
        os.chmod(tmp_path, 0o755)
        text = config + "\nSyslogLevel info\n" + BASE_CONFIG + AUTH_CONFIG     # sessions' lines name the client
        d.conf.write_text(fill(text, dict(port=d.port, dir=tmp_path, host="127.0.0.1", ipv6="off")))
        loaded = ModuleSet(MODULES + [seam_module(tmp_path / "events.log", header_timeout, watched)])
        pids.append(fork_master(d, loaded))
        return d

    yield start
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


def closed_silently(s: socket.socket, within: float = 5) -> bool:
    s.settimeout(within)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def assert_refused(d: SeamDaemon, header: bytes, line: str) -> None:
    """The master closes the connection without a word and logs `line`."""
    with d.raw(header) as s:
        assert closed_silently(s)
    assert wait_until(lambda: line in d.log())


# -- the pre-step ----------------------------------------------------------------------------------------------------
def test_a_header_in_pieces_rewrites_the_client_address_the_session_sees(seam_master):
    d = seam_master()
    s = d.raw(b"PX 10.")
    time.sleep(0.1)
    s.sendall(b"1.2.3 45")
    time.sleep(0.1)
    s.sendall(b"67\r")
    time.sleep(0.1)
    s.sendall(b"\n")
    f = s.makefile("rwb")
    assert f.readline() == b"220 ProFTPD Server (proftpy test) [127.0.0.1]\r\n"
    f.write(b"XWHO\r\n")
    f.flush()
    assert f.readline() == b"200 10.1.2.3:4567 PX 10.1.2.3 4567\r\n"
    s.close()
    assert "(10.1.2.3[10.1.2.3])" in d.log()            # the SystemLog names the rewritten client


def test_the_bytes_after_the_header_stay_for_the_session(seam_master):
    """Only the header is consumed: what follows it in the same packet (here a command; with implicit TLS the
    ClientHello) reaches the session."""
    d = seam_master()
    with d.raw(b"PX 10.1.2.3 4567\r\nXWHO\r\nQUIT\r\n") as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        assert f.readline() == b"200 10.1.2.3:4567 PX 10.1.2.3 4567\r\n"
        assert f.readline() == b"221 Goodbye.\r\n"


def test_a_header_that_never_completes_is_closed_at_the_timeout(seam_master):
    d = seam_master(header_timeout=0.5)
    s = d.raw(b"PX 10.1.2")
    started = time.monotonic()
    assert closed_silently(s)
    assert 0.4 < time.monotonic() - started < 3
    assert "seam: no header from 127.0.0.1 in time" in d.log()
    assert {"event": "seam.header-timeout", "connection": ["127.0.0.1", s.getsockname()[1]],
            "veto": "seam: no header from 127.0.0.1 in time"} in d.events()
    s.close()


def test_a_refused_header_is_closed_silently_and_logged(seam_master):
    d = seam_master()
    assert_refused(d, b"GET / HTTP/1.0\r\n", "seam: bad header from 127.0.0.1")
    names = [e["event"] for e in d.events()]
    assert names == ["seam.bad-header", "core.connection-refused"]


def test_a_client_that_leaves_mid_header_is_closed(seam_master):
    d = seam_master(header_timeout=30)
    s = d.raw(b"PX 10.1")
    s.shutdown(socket.SHUT_WR)
    assert closed_silently(s, within=5)
    s.close()
    assert wait_until(lambda: "seam: header cut short from 127.0.0.1" in d.log())


def test_the_master_serves_others_while_a_header_is_awaited(seam_master):
    d = seam_master(header_timeout=10)
    slow = d.raw(b"PX 1")
    started = time.monotonic()
    with d.raw(b"PX 10.0.0.1 1\r\n") as s:
        assert s.makefile("rb").readline().startswith(b"220 ")
    assert time.monotonic() - started < 1
    slow.sendall(b"0.0.0.2 2\r\nXWHO\r\n")
    f = slow.makefile("rb")
    assert f.readline().startswith(b"220 ")
    assert f.readline() == b"200 10.0.0.2:2 PX 10.0.0.2 2\r\n"
    slow.close()


def test_a_step_that_does_not_apply_reads_nothing(seam_master):
    d = seam_master(header_timeout=None)
    with d.raw() as s:
        f = s.makefile("rwb")
        assert f.readline().startswith(b"220 ")
        f.write(b"XWHO\r\n")
        f.flush()
        assert f.readline() == f"200 127.0.0.1:{s.getsockname()[1]} None\r\n".encode()


# -- vetoes and the master's events ------------------------------------------------------------------------------------
def test_vetoes_see_the_address_the_pre_step_wrote(seam_master):
    d = seam_master()
    assert_refused(d, b"PX 10.9.9.9 99\r\n", "seam: 10.9.9.9 refused")
    assert d.events()[-2:] == [
        {"event": "seam.refused", "connection": ["10.9.9.9", 99], "veto": "seam: 10.9.9.9 refused"},
        {"event": "core.connection-refused", "connection": ["10.9.9.9", 99], "veto": "seam: 10.9.9.9 refused"}]
    assert not psutil.Process(d.master_pid).children()      # refused before any fork


def test_max_instances_is_a_veto_with_proftpds_event(seam_master):
    d = seam_master("MaxInstances 1\n")
    first = d.ftp(b"PX 10.0.0.1 1\r\n")
    line = "MaxInstances reached, refused connection from 10.0.0.2"
    assert_refused(d, b"PX 10.0.0.2 2\r\n", line)
    refused = [e for e in d.events() if e.get("veto") == line]
    assert [e["event"] for e in refused] == ["core.max-instances", "core.connection-refused"]
    first.close()


def test_spawn_exit_and_reload_are_master_events(seam_master):
    d = seam_master()
    ftp = d.ftp(b"PX 10.0.0.7 7\r\n")
    assert wait_until(lambda: psutil.Process(d.master_pid).children())
    (child,) = psutil.Process(d.master_pid).children()
    ftp.quit()
    assert wait_until(lambda: any(e["event"] == "core.child-exited" for e in d.events()))
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: any(e["event"] == "core.reloaded" for e in d.events()))
    events = [e for e in d.events() if e["event"].startswith("core.")]
    assert events == [{"event": "core.child-spawned", "pid": child.pid, "connection": ["10.0.0.7", 7]},
                      {"event": "core.child-exited", "pid": child.pid, "status": 0},
                      {"event": "core.reloaded"}]


# -- the channel -------------------------------------------------------------------------------------------------------
def test_the_master_hands_a_socket_to_the_session(seam_master):
    d = seam_master()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        ftp = d.ftp(b"PX 10.0.0.1 1\r\n")
        assert ftp.sendcmd(f"XSOCK {port}") == f"200 sent to {port}"
        conn, _ = listener.accept()
        (child,) = psutil.Process(d.master_pid).children()
        assert conn.recv(100) == f"hello from session {child.pid}".encode()
        conn.close()
        ftp.close()


def test_the_session_hands_an_fd_to_the_master(seam_master):
    d = seam_master()
    ftp = d.ftp(b"PX 10.0.0.1 1\r\n")
    assert ftp.sendcmd("XFD") == "200 master read: from the session"
    assert ftp.sendcmd("XFD") == "200 master read: from the session"
    ftp.close()


def test_the_master_pushes_notices_to_a_session(seam_master):
    d = seam_master()
    ftp = d.ftp(b"PX 10.0.0.1 1\r\n")
    assert ftp.sendcmd("XNOTICE") == "200 asked"
    assert wait_until(lambda: ftp.sendcmd("XNOTICES") == "200 before after", 2)
    ftp.close()


def test_a_notice_can_end_a_session_waiting_for_a_command(seam_master):
    d = seam_master()
    ftp = d.ftp(b"PX 10.0.0.1 1\r\n")
    assert ftp.sendcmd("XBYE") == "200 waiting"
    started = time.monotonic()
    assert ftp.getline() == "421 the master says goodbye"
    with pytest.raises(EOFError):                       # and the connection is closed
        ftp.getline()
    assert time.monotonic() - started < 2
    ftp.close()


def test_bad_channel_messages_are_logged_and_the_master_goes_on(seam_master):
    d = seam_master()
    ftp = d.ftp(b"PX 10.0.0.1 1\r\n")
    assert ftp.sendcmd("XBAD") == "200 sent"
    assert wait_until(lambda: d.log().count("channel message refused") == 2)
    assert wait_until(lambda: "no handler for the channel message 'seam.nobody'" in d.log())
    assert "Traceback" not in d.log()
    assert ftp.sendcmd("XFD") == "200 master read: from the session"     # the channel still works
    other = d.ftp(b"PX 10.0.0.2 2\r\n")
    assert other.sendcmd("XWHO") == "200 10.0.0.2:2 PX 10.0.0.2 2"
    ftp.close()
    other.close()


def socket_fds(pid: int) -> dict[int, str]:
    """fd -> "socket:[inode]" of a process's sockets."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:"):
            out[int(fd)] = target
    return out


def test_descriptors_past_1024_are_served(seam_master):
    """The master's loop is an epoll set, not select(): channels and waiting connections may have any fd number;
    a session moves its sockets to low numbers (it waits with select())."""
    d = seam_master(watched=1100)
    slow = d.raw(b"PX 10.0.0")
    ftp = d.ftp(b"PX 10.0.0.1 1\r\n")
    assert ftp.sendcmd("XFD") == "200 master read: from the session"
    slow.sendall(b".2 2\r\nXWHO\r\n")
    f = slow.makefile("rb")
    assert f.readline().startswith(b"220 ")
    assert f.readline() == b"200 10.0.0.2:2 PX 10.0.0.2 2\r\n"
    master = psutil.Process(d.master_pid)
    assert max(socket_fds(master.pid)) > 1024
    assert all(max(socket_fds(child.pid)) < 1024 for child in master.children())
    ftp.close()
    slow.close()


def socket_inodes(pid: int) -> set[str]:
    return set(socket_fds(pid).values())


def test_sessions_keep_no_socket_of_the_master_or_of_each_other(seam_master):
    """Each child closes the master's listeners and channels, its own channel's master end and every other
    session's, right after fork: the processes share no socket at all."""
    d = seam_master()
    clients = [d.ftp(f"PX 10.0.0.{i} {i}\r\n".encode()) for i in range(1, 4)]
    master = psutil.Process(d.master_pid)
    assert wait_until(lambda: len(master.children()) == 3)
    ours = socket_inodes(master.pid)
    theirs = [socket_inodes(c.pid) for c in master.children()]
    for i, sockets in enumerate(theirs):
        assert len(sockets) == 2                            # the control connection and its channel end
        assert not sockets & ours
        assert not any(sockets & other for other in theirs[i + 1:])
    for c in clients:
        c.close()
    assert wait_until(lambda: not master.children())
    assert wait_until(lambda: len(socket_inodes(master.pid)) == len(ours) - 3)   # their channels closed at reap
