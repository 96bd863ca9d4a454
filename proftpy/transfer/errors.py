"""How a transfer ends early, and which reply an OSError becomes, as ProFTPD 1.3.8's pr_data_abort() words it:
`425` when no data connection could be made; `426 ... Data connection closed.` for ABOR (the lingering abort's
text), `426 ... Data connection closed` (no full stop) when the client closed or reset the data connection; for
the local file `452` (device full), `552` (quota, file size limit), `451` (the rest, a short write included: ProFTPD
calls it an I/O error), `450 ... Link to file server lost` (stale NFS and the like)."""

from __future__ import annotations

import errno
import os

from ..reply import FtpError, Reply

ABORTED = "Transfer aborted. Data connection closed."      # ABOR (and QUIT) during a transfer
NETWORK_ERRORS = (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ECONNABORTED,
                  errno.ENOTCONN, errno.ENETUNREACH)
# pr_data_abort(): errno -> (code, text instead of strerror, or None)
_CLOSED = (426, "Data connection closed")
_LOST = (450, "Link to file server lost")
_ABORT_REPLIES: dict[int, tuple[int, str | None]] = {
    0: _CLOSED, errno.ECONNABORTED: _CLOSED, errno.ECONNRESET: _CLOSED, errno.EPIPE: _CLOSED,
    errno.ENXIO: (451, "Unexpected streams hangup"),
    errno.EAGAIN: (451, "Insufficient memory or file locked"), errno.ENOMEM: (451, "Insufficient memory or file locked"),
    errno.ETXTBSY: (451, None), errno.EBUSY: (451, None),
    errno.ENOSPC: (452, None),
    errno.EDQUOT: (552, None), errno.EFBIG: (552, None),
    **{e: (451, None) for e in (errno.ECOMM, errno.EDEADLK, errno.ENOSR, errno.EPROTO, errno.ETIME, errno.EIO,
                                errno.EFAULT, errno.ESPIPE)},
    **{e: _LOST for e in (errno.EREMCHG, errno.ESTALE, errno.ENOLINK, errno.ENOLCK, errno.ENETRESET,
                          errno.ETIMEDOUT)},
}


class Stop(Exception):
    """Ends a transfer early; `reply` is the transfer command's final reply (None: the session ends without one),
    `status` goes to the notes."""

    def __init__(self, reply: Reply | None, status: str):
        super().__init__(reply.text if reply is not None else status)
        self.reply = reply
        self.status = status


def _text(e: OSError) -> str:
    return e.strerror or os.strerror(e.errno or errno.EIO)


def unable(e: OSError | str) -> FtpError:
    """`425 Unable to build data connection: <why>`."""
    return FtpError(425, f"Unable to build data connection: {e if isinstance(e, str) else _text(e)}")


def aborted(status: str) -> Stop:
    """ABOR or QUIT ended the transfer (or the session is ending): `426 Transfer aborted. Data connection closed.`"""
    return Stop(Reply(426, ABORTED), status)


def abort_reply(err: int) -> Reply:
    """pr_data_abort()'s reply for an errno: `<code> Transfer aborted. <why>`."""
    code, text = _ABORT_REPLIES.get(err, (426, None))
    return Reply(code, f"Transfer aborted. {text or os.strerror(err)}")


def closed() -> Stop:
    """The client closed the data connection before the end: `426 Transfer aborted. Data connection closed`."""
    return Stop(abort_reply(0), "failed")


def net_error(e: OSError) -> Stop:
    """The data connection failed: a closed or reset one is `426 ... Data connection closed`, anything else says
    why."""
    return Stop(abort_reply(e.errno or 0), "failed")


def local_error(e: OSError) -> Stop:
    """Reading or writing the file failed: `452` when the device is full, `552` for a quota or the file size
    limit, else mostly `451` (see _ABORT_REPLIES)."""
    return Stop(abort_reply(e.errno or errno.EIO), "failed")


def short_write() -> Stop:
    """A write to the file took only part of its bytes (the device filled up mid-write): ProFTPD gives up with EIO,
    `451 Transfer aborted. Input/output error`."""
    return local_error(OSError(errno.EIO, os.strerror(errno.EIO)))
