"""An accepted control connection before any session exists: the socket and both ends' addresses.

The master makes one per accept; pre-steps (the PROXY protocol) may rewrite the addresses before the vetoes run
and the vhost is chosen; then the connection becomes a session. The socket's own addresses stay known
(`sock_local`, `sock_remote`): passive data connections come from the proxy and listeners bind on this host.
Addresses are canonical IP strings (a v4-mapped IPv6 address is its IPv4 address), so IPv4 clients look the same
on dual-stack listeners.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any


def plain_ip(addr: str) -> str:
    """`::ffff:1.2.3.4` -> `1.2.3.4`; anything else unchanged."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


@dataclass
class Connection:
    sock: socket.socket
    local: tuple[str, int]              # the address and port the client connected to
    remote: tuple[str, int]             # the client's address and port
    notes: dict[str, Any] = field(default_factory=dict)   # what pre-steps learned (PROXY protocol TLVs, ...)
    sock_local: tuple[str, int] | None = None   # the socket's own addresses, never rewritten (None: the same
    sock_remote: tuple[str, int] | None = None  # as local/remote when made); remote differs behind a proxy

    def __post_init__(self) -> None:
        if self.sock_local is None:
            self.sock_local = self.local
        if self.sock_remote is None:
            self.sock_remote = self.remote

    @classmethod
    def of(cls, sock: socket.socket, peer: tuple | None = None) -> "Connection":
        """Addresses from the kernel. Raises OSError when the client is already gone (getpeername fails)."""
        local = sock.getsockname()
        remote = peer if peer is not None else sock.getpeername()
        return cls(sock, (plain_ip(local[0]), local[1]), (plain_ip(remote[0]), remote[1]))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass            # already closed or reset: nothing left to release
