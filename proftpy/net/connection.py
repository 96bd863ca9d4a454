"""An accepted control connection before any session exists: the socket and both ends' addresses.

The master makes one per accept; pre-steps (the PROXY protocol) may rewrite the addresses before the vetoes run
and the vhost is chosen; then the connection becomes a session. Addresses are canonical IP strings (a v4-mapped
IPv6 address is its IPv4 address), so IPv4 clients look the same on dual-stack listeners.
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
