"""One transfer over a connected data socket: `150 <opening>`, the body (a file or a listing, moved by the
strategy strategy.pick chose), then `226 Transfer complete`, or the reply of what ended it early (425 from the
connection, 426 for ABOR/QUIT/a lost client/a stall, 451/552 for the file). While data flows the control
connection is answered (watch.py), TransferRate paces the bytes and TimeoutStalled bounds every wait; modules hear
`core.transfer-begin`, `core.transfer-progress` (after every chunk) and `core.transfer-end`, each with
`session=` and `transfer=`.

Modules call `run(session, cmd, opening, body)` (RETR/STOR/STOU/APPE in mod_xfer) and `send_lines(session, cmd,
lines)` (LIST, NLST, MLSD).
"""

from __future__ import annotations

import errno
import logging
import select
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .. import trace
from ..net import POLL_MAX_MS, poll_ms
from ..reply import FtpError, Reply
from .base import FILE_CHUNK
from .connection import connect_data, secure
from .datastate import state
from .errors import Stop, abort_reply, aborted
from .strategy import pick
from .watch import interrupted

if TYPE_CHECKING:
    from ..dispatch import Request
    from ..net.charset import Charset
    from ..session import Session

log = logging.getLogger("proftpy")

TRANSFER_COMPLETE = "Transfer complete"


class Transfer:
    """One transfer over a connected data socket, watching the control connection, honouring TransferRate and
    TimeoutStalled. Use `send_file`, `send_bytes` and `receive_to`; `run` opens, finishes and closes it."""

    def __init__(self, session: "Session", cmd: "Request", sock: Any, *, what: str = "",
                 size: int | None = None, rate: tuple[float, int] | None = None, path: str = "",
                 active: bool = False):
        self.session = session
        self.cmd = cmd
        self.sock = sock
        self.what = what or cmd.arg
        self.path = path or self.what                 # the file as the client sees it (STAT, ProFTPD's xfer.path)
        self.size = size
        self.bytes = 0                                # over the data connection
        self.ascii_extra = 0                          # of those, CRs that ASCII mode added or took away
        self.active = active                          # PORT/EPRT (True) or PASV/EPSV: what STAT says
        self.started = time.monotonic()
        self.rate = rate                              # (bytes per second, free bytes) or None
        self.paced = (rate, self.started, 0)          # the rate and the (time, bytes) it counts from: one
                                                      # attribute, so a signal handler's `set_rate` is atomic
        stalled = session.conf("TimeoutStalled")
        # -1: none; one longer than poll() can wait (POLL_MAX_MS, 24.8 days) is as good as none
        self.stall_ms = int(stalled * 1000) if stalled and stalled * 1000 < POLL_MAX_MS else -1
        self.poll = select.poll()
        self.poll.register(session.ctrl.fileno(), select.POLLIN | select.POLLPRI)
        self.strategy = pick(sock)(self, sock)
        st = state(session)
        st.transfer = self
        self.offset = 0                               # REST offset of a download (send_file)
        self.room: int | None = None                  # bytes an upload's file may still take (MaxStoreFileSize)
        self.quota, st.upload_quota = st.upload_quota, None   # bytes it may write within a hard quota
        if trace.on: trace.msg("data", 6, "%s: transfer of '%s' begins (%s strategy, size %s)", cmd.name, self.what, type(self.strategy).__name__, size)
        session.events.emit("core.transfer-begin", session=session, transfer=self)

    # -- what the session and its listeners see ----------------------------------------------------------------
    @property
    def file_bytes(self) -> int:
        """The bytes on the file's side (ProFTPD's count, in logs and STAT): without ASCII mode's CRs."""
        return self.bytes - self.ascii_extra

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def progress(self) -> str:
        total = f" of {self.size}" if self.size is not None else ""
        return f"Status: {self.cmd.name} {self.what}: {self.bytes}{total} bytes transferred in " \
               f"{self.seconds:.1f} seconds"

    # -- moving: what a body calls -------------------------------------------------------------------------------
    def send_bytes(self, data: bytes | memoryview) -> None:
        self.strategy.send(data)

    def send_file(self, fd: int, offset: int, ascii: bool, sendfile: bool = True) -> None:
        """Send a file from `offset` to its end, CRLF conversion in ASCII mode; `sendfile`: UseSendfile."""
        self.offset = offset
        self.strategy.send_file(fd, offset, ascii, sendfile)

    def receive_to(self, fd: int, ascii: bool, room: int | None = None) -> None:
        """Write everything the client sends to `fd` until it closes the data connection; `room`: how many bytes
        the file may still take (MaxStoreFileSize), None for no limit."""
        self.room = room
        self.strategy.receive_to(fd, ascii)

    # -- what a strategy calls ---------------------------------------------------------------------------------
    def wait(self, event: int, timeout_ms: int | None = None) -> bool:
        """Block until the data socket is ready for `event`, handling control commands meanwhile. Returns False
        when `timeout_ms` passed (used by throttling); raises on stall."""
        fd = self.sock.fileno()
        self.poll.register(fd, event)
        try:
            while True:
                if self.session.ctrl.pending():
                    self._control()
                    continue
                wait = self.stall_ms if timeout_ms is None else timeout_ms
                events = self.poll.poll(wait)
                if not events:
                    if timeout_ms is not None:
                        return False
                    secs = self.stall_ms // 1000
                    log.warning("Data transfer stall timeout: %d second%s", secs, "s" if secs != 1 else "")
                    self.session.events.emit("core.timeout-stalled", session=self.session)
                    self.session.end("stalled")
                    raise Stop(None, "timeout")     # no reply goes out: the session just ends (ProFTPD)
                ctrl_ready = data_ready = False
                for got_fd, _ in events:
                    if got_fd == fd:
                        data_ready = True
                    else:
                        ctrl_ready = True
                if ctrl_ready:
                    self._control()
                if data_ready and timeout_ms is None:
                    return True
        finally:
            self.poll.unregister(fd)

    def moved(self, n: int) -> None:
        """`n` more bytes went over the data connection."""
        self.bytes += n
        self.pace()

    def pace(self) -> None:
        """Tell the listeners, then TransferRate: sleep (still answering the control connection) when ahead of
        the allowed rate."""
        self.session.events.emit("core.transfer-progress", session=self.session, transfer=self)
        while True:
            rate, since, before = self.paced           # again each round: `set_rate` may come meanwhile
            if rate is None:
                return
            bps, free = rate
            ahead = (self.bytes - before - free) / bps - (time.monotonic() - since)
            if ahead <= 0:
                return
            if self.session.ctrl.pending():
                self._control()
            elif self.poll.poll(poll_ms(ahead)):
                self._control()

    def set_rate(self, rate: tuple[float, int] | None) -> None:
        """A new rate for the rest of the transfer (mod_shaper, when sessions come and go): paced from now on, as
        if the transfer began here, so that neither a burst nor a long pause makes up for the time before."""
        self.rate = rate
        self.paced = (rate, time.monotonic(), self.bytes)

    def to_file(self, n: int) -> None:
        """Before `n` more bytes go into the file: the write that would take it past MaxStoreFileSize is not made,
        the upload ends with `552 Transfer aborted. File too large` (as ProFTPD's)."""
        if self.room is not None:
            self.room -= n
            if self.room < 0:
                raise Stop(abort_reply(errno.EFBIG), "failed")

    def wrote(self, n: int) -> None:
        """After `n` more bytes went into the file: past the session's hard quota (mod_quotatab) the upload ends
        with `552 Transfer aborted. Disk quota exceeded`; the chunk that crossed it stays written, as ProFTPD's
        write hook fails after its write (its POST_CMD_ERR handler then removes the file)."""
        if self.quota is not None:
            self.quota -= n
            if self.quota < 0:
                raise Stop(abort_reply(errno.EDQUOT), "failed")

    def chunk(self, default: int) -> int:
        """Bytes to move at once: `default`, or about a tenth of a second's worth under TransferRate."""
        if self.rate is None:
            return default
        return max(4096, min(default, int(self.rate[0] / 10)))

    def _control(self) -> None:
        why = interrupted(self.session, self)
        if why == "QUIT":
            raise Stop(None, "cancelled")   # QUIT's 221 is all the client hears (ProFTPD)
        if why is not None:
            raise aborted("cancelled")

    # -- the end -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        if trace.on: trace.msg("data", 6, "%s: transfer ends after %d bytes in %.3f s", self.cmd.name, self.bytes, self.seconds)
        state(self.session).transfer = None
        self.session.events.emit("core.transfer-end", session=self.session, transfer=self)
        try:
            self.strategy.close()
        except OSError as e:
            log.debug("closing data connection: %s", e.strerror)
        for name in ("idle", "noxfer"):
            self.session.reset_timer(name)


def run(session: "Session", cmd: "Request", opening: str, body: Callable[[Transfer], None], *,
        what: str = "", size: int | None = None, rate: tuple[float, int] | None = None,
        path: str = "") -> tuple[Reply | None, Transfer | None, str]:
    """Open the data connection, announce it with `150 <opening>`, put on its TLS (PROT P), run `body(transfer)`,
    finish the stream, close.
    Returns (final reply, transfer or None when no connection was made, status success|failed|cancelled|timeout).
    A stalled transfer (TimeoutStalled) and one that QUIT ends have no final reply (the session ends without one,
    as ProFTPD's does); `cmd.notes["failed"]` tells the dispatcher it failed."""
    st = state(session)
    active = st.listener is None and st.reservation is None and st.accepted is None and st.target is not None
    try:
        sock = connect_data(session)
    except FtpError as e:
        return e.reply, None, "failed"
    session.send(Reply(150, opening))
    try:
        sock = secure(session, sock, cmd.name)
    except FtpError as e:
        return e.reply, None, "failed"
    transfer = Transfer(session, cmd, sock, what=what, size=size, rate=rate, path=path, active=active)
    try:
        body(transfer)
        transfer.strategy.finish()
    except Stop as stop:
        transfer.close()
        if stop.reply is None:
            cmd.notes["failed"] = True
            return None, transfer, stop.status
        return stop.reply, transfer, stop.status
    except BaseException:
        transfer.close()
        raise
    transfer.close()
    return Reply(226, TRANSFER_COMPLETE), transfer, "success"


def send_lines(session: "Session", cmd: "Request", lines: Iterable[str], what: str = "file list",
               mode: str = "ASCII") -> Reply | None:
    """A listing over the data connection: `150 Opening ASCII mode data connection for file list` (MLSD names
    itself and the session's mode instead), each line + CRLF, then `226 Transfer complete` (or 425/426). `lines`
    may be a generator; it is consumed while sending."""

    charset = session.ctrl.charset      # UseEncoding: names in the client's character set

    def body(transfer: Transfer) -> None:
        out: list[str] = []
        size = 0                        # characters so far: at least FILE_CHUNK bytes go out at once
        for line in lines:
            out.append(line)
            size += len(line) + 2
            if size >= FILE_CHUNK:
                transfer.send_bytes(_encode_lines(out, charset))
                out, size = [], 0
        if out:
            transfer.send_bytes(_encode_lines(out, charset))

    reply, transfer, _ = run(session, cmd, f"Opening {mode} mode data connection for {what}", body)
    cmd.notes["list_bytes"] = transfer.bytes if transfer else 0
    return reply


def _encode_lines(lines: list[str], charset: "Charset | None") -> bytes:
    """Lines + CRLF each, as the original bytes (one encode for the batch, not one per line)."""
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")
    return data if charset is None else charset.to_client(data)
