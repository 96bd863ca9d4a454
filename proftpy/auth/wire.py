"""The socket of proftpy's own network clients (auth/pgsql.py, auth/mysql.py, auth/ldap_proto.py): one stream
connection whose every wait is bounded, either by the client's timeout per wait (the database clients) or by a
deadline per operation (LDAP), and whose failures become the client's own exceptions, the socket closed."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import ssl                  # loaded only when a connection is TLS: a plain session never loads ssl

# what failed, as Wire.failure() is told (LATE: a deadline passed before the wait began)
CONNECT, SEND, RECV, EOF, GONE, TLS, LATE = "connect", "send", "recv", "eof", "gone", "tls", "late"


class Wire:
    """One client connection. A client names its exception (`error(message, broken=True)`) and the words of its
    messages (`connect_failed`, `send_failed`, `recv_failed`, `closed`, `gone`, `tls_failed`), or says it all in
    `failure()`. `deadline` (time.monotonic()) bounds a call; without one each wait gets `timeout`."""

    error: Callable[..., Exception] = Exception
    connect_failed = "could not connect to server"
    send_failed = "could not send data to server"
    recv_failed = "no answer from server"
    closed = "server closed the connection unexpectedly"
    gone = "no connection to the server"
    tls_failed = "SSL error"

    def __init__(self, timeout: float, sock: Any = None) -> None:
        self.timeout = timeout
        self.sock: Any = sock
        self.buf = bytearray()

    def failure(self, what: str, e: BaseException | None = None) -> Exception:
        """The exception for `what` failed (CONNECT, SEND, RECV, TLS, LATE: with the OSError; EOF, GONE)."""
        text = {CONNECT: self.connect_failed, SEND: self.send_failed, RECV: self.recv_failed, EOF: self.closed,
                GONE: self.gone, TLS: self.tls_failed, LATE: self.recv_failed}[what]
        return self.error(f"{text}: {reason(e)}" if e is not None else text, broken=True)

    def open_socket(self, address: tuple | str) -> None:
        """Connect to `address`: a resolved (family, sockaddr), or a Unix socket path."""
        family = socket.AF_UNIX if isinstance(address, str) else address[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(address if isinstance(address, str) else address[1])
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            sock.close()
            raise self.failure(CONNECT, e) from None
        self.sock = sock

    def set_timeout(self, timeout: float) -> None:
        self.timeout = timeout
        if self.sock is not None:
            self.sock.settimeout(timeout)

    def _bound(self, deadline: float | None) -> None:
        """The socket's wait, up to `deadline` (a timeout when it has passed); None: the timeout already set."""
        if self.sock is None:
            raise self.failure(GONE)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.lost()
                raise self.failure(LATE, TimeoutError())
            self.sock.settimeout(left)

    def wrap(self, context: ssl.SSLContext, hostname: str | None, deadline: float | None = None) -> None:
        """The TLS handshake on the connection (the client's exception, the socket closed, when it fails)."""
        import ssl
        self._bound(deadline)
        try:
            self.sock = context.wrap_socket(self.sock, server_hostname=hostname or None)
        except (ssl.SSLError, OSError) as e:
            self.lost()
            raise self.failure(TLS, e) from None

    def send(self, data: bytes, deadline: float | None = None) -> None:
        self._bound(deadline)
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.lost()
            raise self.failure(SEND, e) from None

    def fill(self, want: int = 65536, deadline: float | None = None) -> None:
        """One read into `buf`: the client's exception when nothing came (silence, the end of the stream)."""
        self._bound(deadline)
        try:
            chunk = self.sock.recv(want)
        except OSError as e:
            self.lost()
            raise self.failure(RECV, e) from None
        if not chunk:
            self.lost()
            raise self.failure(EOF)
        self.buf += chunk

    def recv_exact(self, size: int, deadline: float | None = None) -> bytes:
        while len(self.buf) < size:
            self.fill(max(65536, size - len(self.buf)), deadline)
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def lost(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass                # nothing left to release
            self.sock = None
        self.buf.clear()


def reason(e: BaseException | None) -> str:
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    return getattr(e, "strerror", None) or str(e)


def resolve(host: str, port: int, error: Callable[[str], Exception]) -> list[tuple]:
    """Each address `host` resolves to (now: after a chroot names no longer resolve); `error(why)` when none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise error(e.strerror) from None
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]
