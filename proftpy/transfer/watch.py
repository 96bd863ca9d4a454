"""The control connection while a data connection is awaited or open (ProFTPD watches it too): ABOR and QUIT end
the transfer and are put back for the command loop, which answers them after the transfer's `426`; STAT reports
progress, NOOP is answered, anything else gets `450 <CMD>: data transfer in progress`."""

from __future__ import annotations

import errno
import os
import select
import time
from typing import TYPE_CHECKING, Any, Callable

from ..reply import FtpError, Reply
from .errors import ABORTED, unable

if TYPE_CHECKING:
    from ..session import Session


def interrupted(session: "Session", transfer: Any = None) -> bool:
    """Read the command waiting on the control connection and answer it; True when it ends the transfer (ABOR,
    QUIT, or the client gone). `transfer` (an engine.Transfer, or None before it starts) answers STAT."""
    line = session.ctrl.read_line()
    if line is None:
        session.end("disconnected")
        return True
    if not isinstance(line, str):
        session.send(Reply(500, "Command line too long"))
        return False
    name = line.strip().split(" ", 1)[0].upper()
    if name in ("ABOR", "QUIT"):
        session.ctrl.unread(line)
        return True
    if name == "STAT" and transfer is not None and not line.strip()[4:].strip():
        session.send(Reply(213, transfer.progress()))
    elif name == "NOOP":
        session.send(Reply(200, "NOOP command successful"))
    else:
        session.send(Reply(450, f"{name}: data transfer in progress"))
    return False


def until_readable(session: "Session", obj: Any, deadline: float, ready: Callable[[], bool] = lambda: False) -> None:
    """Wait until `obj` is readable (or `ready()` says what it brings is already buffered), answering the control
    connection meanwhile: FtpError 425 when `deadline` (time.monotonic) passes, 426 when ABOR or QUIT comes."""
    ctrl = session.ctrl
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise unable(os.strerror(errno.ETIMEDOUT))
        if ready():
            return
        if ctrl.pending():
            readable = [ctrl.sock]
        else:
            readable, _, _ = select.select([obj, ctrl.sock], [], [], left)
        if ctrl.sock in readable and interrupted(session):
            raise FtpError(426, ABORTED)
        if obj in readable:
            return
