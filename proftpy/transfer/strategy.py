"""Which strategy moves the bytes of a data connection, decided in one place (`pick`), per socket:

- `plain` (plain.py): a kernel TCP socket — sendfile(2) and splice(2), the fast path;
- `ktls` (ktls.py): a TLS socket whose sending side the kernel took over — sendfile(2) again, the kernel encrypts;
- `stream` (stream.py): any other socket-like object with send/recv_into — TLS in user space.
"""

from __future__ import annotations

import socket
from typing import Any

from .base import Strategy
from .plain import Plain


def pick(sock: Any) -> type[Strategy]:
    """The strategy for a connected data socket."""
    if type(sock) is socket.socket:
        return Plain
    # Ask the kernel about this very socket, never the build or the configuration: it may refuse a cipher or a
    # version for one connection and take it for the next.
    from ..net.tls import kernel_tx
    if kernel_tx(sock):
        from .ktls import Ktls
        return Ktls
    from .stream import Stream
    return Stream
