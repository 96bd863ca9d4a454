"""The control connection while a data connection is awaited or open, as ProFTPD's poll_ctrl() answers it: ABOR and
QUIT end the transfer and are put back for the command loop, which answers them after the transfer's `426`; the
commands that would start or redirect a transfer, and RNFR/RNTO, get `450 <CMD>: data transfer in progress`; NOOP
gets `200 NOOP: data transfer in progress`; any other command runs as usual (STAT shows the transfer), marked
`Request.during_transfer` so that modules keeping the session's current command (the scoreboard) leave the
transfer's in place."""

from __future__ import annotations

import errno
import logging
import os
import select
import time
from typing import TYPE_CHECKING, Any, Callable

from ..dispatch import split_command
from ..reply import FtpError, Reply
from .errors import ABORTED, unable

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

# poll_ctrl()'s list: a data transfer runs already, these would start or redirect another (RFC 959 allows 450)
BUSY = frozenset("APPE LIST MLSD NLST RETR STOR STOU RNFR RNTO PORT EPRT PASV EPSV".split())


def interrupted(session: "Session", transfer: Any = None) -> str | None:
    """Read the command waiting on the control connection and answer it. What ends the transfer is returned:
    "ABOR" or "QUIT" (put back for the command loop), "EOF" (the client is gone) or "END" (a command ended the
    session); None when the transfer goes on. `transfer`: the engine.Transfer running (None while the data
    connection is awaited)."""
    line = session.ctrl.read_line()
    if line is None:
        session.end("disconnected")
        return "EOF"
    if not isinstance(line, str):
        session.send(Reply(500, "Command line too long"))
        return None
    name = split_command(line)[0].upper()
    if name in ("ABOR", "QUIT"):
        session.ctrl.unread(line)
        return name
    if name in BUSY:
        session.send(Reply(450, f"{name}: data transfer in progress"))
    elif name == "NOOP":
        session.send(Reply(200, "NOOP: data transfer in progress"))
    else:
        session.handle_line(line, during_transfer=True)
    return "END" if session.closing else None


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
