"""The `stream` strategy over a real TLS connection on loopback: a data connection prepared by PASV, wrapped in TLS
by `DataState.wrap` (as PROT P will), run by `transfer.run` with a session whose control channel is one end of a
socketpair. Files are larger than the socket buffers in both directions, so the strategy meets SSLWantWrite and
SSLWantRead; peers that send close_notify and peers that just close are both served."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from proftpy import transfer
from proftpy.dispatch import Request
from proftpy.events import EventBus
from proftpy.module import States
from proftpy.net.control import ControlChannel
from proftpy.transfer.plain import Plain
from proftpy.transfer.strategy import pick
from proftpy.transfer.stream import Stream

SIZE = 8 << 20                # far above the 64 KiB socket buffers below
BUFFER = 64 << 10
VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


class Session:
    """What the transfer engine uses of a session."""

    def __init__(self, ctrl: socket.socket, **conf):
        self.ctrl = ControlChannel(ctrl)
        self.state = States()
        self.events = EventBus()
        self.local_addr = self.remote_addr = "127.0.0.1"
        self.socket_local = self.socket_peer = "127.0.0.1"
        self.conn_class = None
        self.settings = {"SocketOptions": {"rcvbuf": BUFFER, "sndbuf": BUFFER}, "TimeoutStalled": 10,
                         "DefaultTransferMode": "binary", "PassivePorts": None,
                         "AllowForeignAddress": False, "TCPNoDelay": {"ctrl": True, "data": True}, "QoSOptions": None,
                         **conf}
        self.closing = False

    def conf(self, name, path=None):
        return self.settings[name]

    def send(self, reply) -> None:
        self.ctrl.send(reply.format())

    def end(self, reason: str) -> None:
        self.closing = True

    def reset_timer(self, name: str) -> None:
        pass


class Rig:
    """A session with a passive listener whose connections are wrapped in TLS, and a client thread."""

    def __init__(self, tls, version: ssl.TLSVersion | None = None, **conf):
        self.ctrl, self.ctrl_peer = socket.socketpair()
        self.session = Session(self.ctrl, **conf)
        server_ctx = tls.server(version)

        def wrap(sock: socket.socket) -> ssl.SSLSocket:
            sock.settimeout(10)
            wrapped = server_ctx.wrap_socket(sock, server_side=True)
            wrapped.setblocking(False)
            return wrapped

        transfer.state(self.session).wrap.append(wrap)
        self.port = transfer.listen_passive(self.session).getsockname()[1]
        self.client_ctx = tls.client(version)
        self.result: dict = {}
        self.thread: threading.Thread | None = None

    def client(self, action) -> None:
        """Run `action(tls_socket)` in a thread once the data connection is up."""

        def run() -> None:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
            raw.settimeout(20)
            raw.connect(("127.0.0.1", self.port))
            conn = self.client_ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
            try:
                action(conn)
            except Exception as e:          # reported by the test, not lost in the thread
                self.result["error"] = e
            finally:
                conn.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def run(self, name: str, body, **kw):
        reply, moved, status = transfer.run(self.session, Request(name, "file"), "Opening data connection", body,
                                            **kw)
        return reply, moved, status

    def join(self) -> dict:
        self.thread.join(20)
        assert not self.thread.is_alive()
        assert "error" not in self.result, self.result["error"]
        return self.result

    def replies(self) -> bytes:
        self.ctrl_peer.setblocking(False)
        try:
            return self.ctrl_peer.recv(65536)
        except BlockingIOError:
            return b""


def receive_all(result: dict, hold: threading.Event | None = None):
    """The client side of a download: read slowly at first (the server meets full buffers), then to the end. With
    `suppress_ragged_eofs=False` an empty read means close_notify arrived; a bare close would raise."""

    def action(conn: ssl.SSLSocket) -> None:
        time.sleep(0.3)
        chunks = []
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            chunks.append(data)
        result["data"] = b"".join(chunks)
        result["close_notify"] = True
        if hold is not None:
            hold.wait(10)           # never answers the close_notify while the server finishes

    return action


def store(rig: Rig, path, **kw):
    """The server side of an upload into `path`: (reply, transfer, status)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        return rig.run("STOR", lambda t: t.receive_to(fd, False), **kw)
    finally:
        os.close(fd)


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(SIZE))
    fd = os.open(path, os.O_RDWR)
    yield path, fd
    os.close(fd)


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_download_sends_every_byte_then_close_notify_without_waiting_for_the_answer(tls, big_file, version):
    path, fd = big_file
    rig = Rig(tls, version)
    hold = threading.Event()
    rig.client(receive_all(rig.result, hold))
    started = time.monotonic()
    reply, moved, status = rig.run("RETR", lambda t: t.send_file(fd, 0, False), size=SIZE)
    elapsed = time.monotonic() - started
    hold.set()
    result = rig.join()
    assert (reply.code, reply.text, status) == (226, "Transfer complete", "success")
    assert moved.strategy.name == "stream" and moved.bytes == SIZE
    assert result["close_notify"] and result["data"] == path.read_bytes()
    assert elapsed < 8                  # the peer held its answer to close_notify for 10 s: not waited for
    assert rig.replies() == b"150 Opening data connection\r\n"


def test_download_in_ascii_mode_converts_line_ends(tls, tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(b"line\n" * 200_000)            # 1 MB
    fd = os.open(path, os.O_RDONLY)
    try:
        rig = Rig(tls)
        rig.client(receive_all(rig.result))
        reply, moved, _ = rig.run("RETR", lambda t: t.send_file(fd, 0, True))
    finally:
        os.close(fd)
    assert reply.code == 226
    assert rig.join()["data"] == b"line\r\n" * 200_000


def close_notify(conn: ssl.SSLSocket) -> bool:
    """close_notify, then wait for the server's own: it must come."""
    conn.unwrap()
    return True


def bare_close(conn: ssl.SSLSocket) -> bool:
    """A FIN without close_notify (clients do this), then read whatever the server still says until it closes."""
    raw = socket.socket(fileno=os.dup(conn.fileno()))
    raw.shutdown(socket.SHUT_WR)
    raw.settimeout(10)
    while raw.recv(65536):
        pass
    raw.close()
    return True


@pytest.mark.parametrize("ending", [close_notify, bare_close], ids=["close_notify", "bare-close"])
@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_upload_ends_with_close_notify_or_a_bare_close(tls, tmp_path, version, ending):
    data = os.urandom(SIZE)
    rig = Rig(tls, version)

    def send(conn: ssl.SSLSocket) -> None:
        conn.sendall(data)
        rig.result["ended"] = ending(conn)

    rig.client(send)
    reply, moved, status = store(rig, tmp_path / "up.bin")
    assert rig.join()["ended"]
    assert (reply.code, status, moved.bytes) == (226, "success", SIZE)
    assert (tmp_path / "up.bin").read_bytes() == data


def test_bytes_held_decrypted_are_read_before_the_socket_is_polled(tls, tmp_path):
    """Under TransferRate the upload buffer is 4 KiB, smaller than the 16000-byte TLS record the client sends: the
    rest of the record waits inside the TLS library, not in the kernel. The server must take it without waiting
    for the socket to become readable again (it would not: the client sends nothing more until it sees it all)."""
    record = os.urandom(16000)
    target = tmp_path / "up.bin"
    rig = Rig(tls)

    def send(conn: ssl.SSLSocket) -> None:
        conn.sendall(record)                    # one write, one record
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and target.stat().st_size < len(record):
            time.sleep(0.01)
        rig.result["seen"] = target.stat().st_size
        conn.unwrap()

    rig.client(send)
    reply, moved, _ = store(rig, target, rate=(40960.0, 1 << 40))
    assert moved.chunk(1 << 20) == 4096
    assert rig.join()["seen"] == len(record)
    assert reply.code == 226 and target.read_bytes() == record


def test_abor_during_a_tls_download(tls, big_file):
    """The control connection is answered while the stream strategy waits for a client that reads nothing."""
    _, fd = big_file
    rig = Rig(tls)
    release = threading.Event()

    def stall(conn: ssl.SSLSocket) -> None:
        release.wait(10)

    rig.client(stall)
    threading.Timer(0.5, lambda: rig.ctrl_peer.sendall(b"NOOP\r\nABOR\r\n")).start()
    reply, moved, status = rig.run("RETR", lambda t: t.send_file(fd, 0, False))
    release.set()
    rig.join()
    assert (reply.code, reply.text, status) == (426, "Transfer aborted. Data connection closed.", "cancelled")
    assert 0 < moved.bytes < SIZE
    assert rig.replies() == b"150 Opening data connection\r\n200 NOOP: data transfer in progress\r\n"
    assert rig.session.ctrl.read_line() == "ABOR"          # put back for the command loop


def test_pick_plain_for_a_kernel_socket_stream_for_anything_else(tls):
    a, b = socket.socketpair()
    with a, b:
        assert pick(a) is Plain
        wrapped = tls.client().wrap_socket(socket.socket(), server_hostname="localhost",
                                           do_handshake_on_connect=False)
        with wrapped:
            assert pick(wrapped) is Stream

        class Wrapper:                          # any socket-like object: send/recv_into/fileno
            def __init__(self, sock):
                self.sock = sock

            def fileno(self):
                return self.sock.fileno()

        assert pick(Wrapper(a)) is Stream


def test_a_plain_session_never_loads_ssl():
    """ssl costs a session memory: only a TLS data connection (the stream strategy) may bring it in."""
    code = ("import sys, proftpy.modules, proftpy.session, proftpy.transfer, proftpy.transfer.strategy\n"
            "assert 'ssl' not in sys.modules, 'ssl imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
