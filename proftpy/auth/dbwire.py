"""What proftpy's database clients (auth/pgsql.py, auth/mysql.py) share: one stream socket to the server, every
wait on it bounded by the timeout, a lost or silent server turned into the client's error marked `broken`."""

from __future__ import annotations

import socket
from typing import Any, Callable


class Wire:
    """The socket of one client connection. A client names its exception (`error(message, broken=True)`) and the
    words of its messages (`connect_failed`, `send_failed`, `recv_failed`, `closed`)."""

    error: Callable[..., Exception] = Exception
    connect_failed = "could not connect to server"
    send_failed = "could not send data to server"
    recv_failed = "no answer from server"
    closed = "server closed the connection unexpectedly"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.sock: Any = None
        self._buf = b""

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
            raise self.error(f"{self.connect_failed}: {reason(e)}", broken=True) from None
        self.sock = sock

    def set_timeout(self, timeout: float) -> None:
        self.timeout = timeout
        if self.sock is not None:
            self.sock.settimeout(timeout)

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.lost()
            raise self.error(f"{self.send_failed}: {reason(e)}", broken=True) from None

    def recv_exact(self, size: int) -> bytes:
        while len(self._buf) < size:
            try:
                chunk = self.sock.recv(max(65536, size - len(self._buf)))
            except OSError as e:
                self.lost()
                raise self.error(f"{self.recv_failed}: {reason(e)}", broken=True) from None
            if not chunk:
                self.lost()
                raise self.error(self.closed, broken=True)
            self._buf += chunk
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def lost(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._buf = b""


def reason(e: BaseException) -> str:
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
