"""Which strategy moves the bytes of a data connection, decided in one place (`pick`), per socket:

- `plain` (plain.py): a kernel TCP socket — sendfile(2) and splice(2), the fast path;
- `stream` (stream.py): any other socket-like object with send/recv_into — TLS in user space;
- `ktls`: not written yet; its place is marked in `pick`.
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
    # ktls goes here: a TLS socket whose record layer the kernel took over can take sendfile(2) (and splice(2))
    # as a plain one does, ending with the TLS library's close_notify. Ask the kernel about this very socket,
    # getsockopt(fd, SOL_TLS, TLS_TX) (TLS_RX for uploads), never the build or the configuration: the kernel may
    # refuse a cipher or a version for one connection and take it for the next.
    from .stream import Stream
    return Stream
