"""How a transfer ends early, and which reply an OSError becomes: `425` when no data connection could be made,
`426` when the network failed or the client aborted, `451`/`552` when the local file did."""

from __future__ import annotations

import errno
import os

from ..reply import FtpError, Reply

ABORTED = "Transfer aborted. Data connection closed."
NETWORK_ERRORS = (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ECONNABORTED,
                  errno.ENOTCONN, errno.ENETUNREACH)


class Stop(Exception):
    """Ends a transfer early; `reply` is the transfer command's final reply, `status` goes to the notes."""

    def __init__(self, reply: Reply, status: str):
        super().__init__(reply.text)
        self.reply = reply
        self.status = status


def _text(e: OSError) -> str:
    return e.strerror or os.strerror(e.errno or errno.EIO)


def unable(e: OSError | str) -> FtpError:
    """`425 Unable to build data connection: <why>`."""
    return FtpError(425, f"Unable to build data connection: {e if isinstance(e, str) else _text(e)}")


def aborted(status: str) -> Stop:
    return Stop(Reply(426, ABORTED), status)


def net_error(e: OSError) -> Stop:
    """The data connection failed: a lost client is `426 ... Data connection closed.`, anything else says why."""
    if e.errno in NETWORK_ERRORS:
        return aborted("failed")
    return Stop(Reply(426, f"Transfer aborted. {_text(e)}"), "failed")


def local_error(e: OSError) -> Stop:
    """Reading or writing the file failed: `552` when the disk or quota is full, else `451`."""
    code = 552 if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else 451
    return Stop(Reply(code, f"Transfer aborted. {_text(e)}"), "failed")
