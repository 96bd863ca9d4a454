"""Test clients for the PROXY protocol and the pooled passive ports: an ftplib client that sends a PROXY header
(as a load balancer would) before reading the greeting, and that can bind its control and data connections to a
source address of 127.0.0.0/8 (each test client its own address)."""

from __future__ import annotations

import ftplib
import socket
import time
from typing import Callable

from proftpy.net.proxy import build_v1, build_v2


class ProxiedFTP(ftplib.FTP):
    """`header(sock) -> bytes` is sent right after connecting (None: no header); `source` is the local address
    the control and the passive data connections are made from."""

    def __init__(self, header: Callable[[socket.socket], bytes] | bytes | None = None, source: str | None = None,
                 timeout: float = 10):
        super().__init__(timeout=timeout)
        self.header = header
        self.source = source

    def connect(self, host: str = "", port: int = 0, timeout: float = -999, source_address=None) -> str:
        self.host, self.port = host, port
        self.source_address = (self.source, 0) if self.source else None
        self.sock = socket.create_connection((host, port), self.timeout, source_address=self.source_address)
        self.af = self.sock.family
        if self.header is not None:
            self.sock.sendall(self.header(self.sock) if callable(self.header) else self.header)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def v1_as(client: tuple[str, int]) -> Callable[[socket.socket], bytes]:
    """A version-1 header naming `client` as the source and the real destination."""
    return lambda sock: build_v1(client, sock.getpeername()[:2])


def v2_as(client: tuple[str, int], destination: tuple[str, int] | None = None,
          tlvs=()) -> Callable[[socket.socket], bytes]:
    """A version-2 header naming `client` (and `destination`, else the real one: same family as the client)."""
    return lambda sock: build_v2(client, destination or sock.getpeername()[:2], tlvs)


def closed_without_reply(host: str, port: int, data: bytes, source: str | None = None,
                         timeout: float = 10.0) -> tuple[bytes, float]:
    """Send `data` and read until the server closes: (what it sent, seconds until the close)."""
    start = time.monotonic()
    with socket.create_connection((host, port), timeout, source_address=(source, 0) if source else None) as s:
        if data:
            s.sendall(data)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass        # closed with unread bytes in its buffer: a reset is a close without a reply too
    return got, time.monotonic() - start
