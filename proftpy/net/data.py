"""The data connection of a session, and the transfer engine that moves bytes over it.

State lives in the session's `DataState`: the transfer type, the REST offset, `EPSV ALL`, and either a
passive listener (PASV/EPSV) or an active target (PORT/EPRT). A data connection is used once: every transfer
consumes the PASV/PORT that prepared it, and a listener that is never used is closed when the next PASV/EPSV/PORT/
EPRT/ABOR comes, or when RETR/STOR/STOU/APPE is refused (ProFTPD; `drop_passive`), so a client cannot make the
session hoard sockets. A passive listener is watched while the session
waits for commands: a connection from another address (port stealing) is closed at once, so it cannot fill the
listener's backlog, and the client's own early connection is kept for the next transfer.

While data flows the control connection is watched (ProFTPD does the same): ABOR ends the transfer with `426` and is
then answered `226 Abort successful`; STAT reports progress; NOOP is answered; QUIT aborts and ends the session; any
other command gets `450 <CMD>: data transfer in progress`.

Helpers other modules call:
- `send_lines(session, cmd, lines)` — a listing (LIST/NLST/MLSD/STAT -a): `150 Opening ASCII mode data connection for
  file list`, the lines in ASCII with CRLF, returns `226 Transfer complete` or the 425/426 error reply.
- `open_data(session, cmd, ...)` + `Transfer` — what RETR/STOR use (modules/xfer.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..reply import FtpError, Reply
from . import inet, passive

if TYPE_CHECKING:
    from ..dispatch import Request
    from ..session import Session

log = logging.getLogger("proftpy")

SEND_CHUNK = 8 << 20          # most bytes one sendfile() call may move (non-blocking: what the socket takes)
RECV_BUFFER = 1 << 20         # upload buffer
FILE_CHUNK = 256 << 10        # read size for ASCII downloads and listings
ACCEPT_TIMEOUT_CAP = 60.0     # longest wait for the client to connect (or accept) a data connection
TRANSFER_COMPLETE = "Transfer complete"
ABORTED = "Transfer aborted. Data connection closed."
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
NETWORK_ERRORS = (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ECONNABORTED,
                  errno.ENOTCONN, errno.ENETUNREACH)


@dataclass
class DataState:
    """Per-session data-connection settings (ProFTPD's SF_PASSIVE/SF_PORT/SF_EPSV_ALL flags and restart_pos)."""

    ascii: bool = True                              # TYPE A (True) or TYPE I / L 8 (False)
    rest: int = 0                                   # REST offset for the next RETR/STOR
    epsv_all: bool = False
    listener: socket.socket | None = None           # PASV/EPSV
    accepted: socket.socket | None = None           # the client's connection to the listener, taken early
    target: tuple[str, int] | None = None           # PORT/EPRT (address, port)
    transfer: "Transfer | None" = None              # the transfer running now (for STAT)
    wrap: list[Callable[[socket.socket], socket.socket]] = field(default_factory=list)   # e.g. TLS (PROT P)
    ctrl: Any = None                                # the ControlChannel that watches the listener

    def reset(self) -> None:
        """Forget the prepared connection: close an unused passive listener (and a connection taken early)."""
        self.drop_passive()
        self.target = None

    def drop_passive(self) -> None:
        """Close the passive listener and a connection taken early from it; a PORT/EPRT target stays."""
        if self.listener is not None:
            if self.ctrl is not None:
                self.ctrl.unwatch(self.listener.fileno())
            self.listener.close()
            self.listener = None
        if self.accepted is not None:
            self.accepted.close()
            self.accepted = None

    @property
    def mode_name(self) -> str:
        return "ASCII" if self.ascii else "BINARY"


def state(session: "Session") -> DataState:
    st = session.state.find(DataState)
    if st is None:
        st = session.state.put(DataState(ascii=_conf(session, "DefaultTransferMode", "ascii") != "binary",
                                         ctrl=session.ctrl))
    return st


def _conf(session: "Session", name: str, default: Any, path: str | None = None) -> Any:
    """A directive declared by mod_xfer; its default when mod_xfer is not loaded (unit tests, trimmed builds)."""
    try:
        return session.conf(name, path=path)
    except KeyError:
        return default


# -- preparing the connection ------------------------------------------------------------------------------------
def listen_passive(session: "Session") -> socket.socket:
    """PASV/EPSV: a fresh listener on the control connection's local address within PassivePorts (the previous
    unused one is closed first)."""
    st = state(session)
    st.reset()
    sock = passive.bind_passive(session.local_addr, _conf(session, "PassivePorts", None))
    sock.setblocking(False)
    st.listener = sock
    session.ctrl.watch(sock.fileno(), lambda: _accept_early(session))
    return sock


def _accept_early(session: "Session") -> None:
    """The passive listener is readable while the session waits for a command: take the client's connection
    now (most clients connect before sending RETR/LIST), refuse anyone else's."""
    st = state(session)
    listener = st.listener
    while listener is not None and st.accepted is None:
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.debug("passive accept: %s", e.strerror)
            return
        if _peer_allowed(session, peer):
            st.accepted = sock
            session.ctrl.unwatch(listener.fileno())
        else:
            sock.close()


def set_target(session: "Session", addr: str, port: int) -> None:
    """PORT/EPRT: where the next data connection goes."""
    st = state(session)
    st.reset()
    st.target = (addr, port)


def foreign_allowed(session: "Session") -> bool:
    """AllowForeignAddress: on, off, or a class name (on for sessions of that class)."""
    value = _conf(session, "AllowForeignAddress", False)
    if isinstance(value, str):
        return value == session.conn_class
    return bool(value)


def _data_options(session: "Session", sock: socket.socket) -> None:
    nodelay = _conf(session, "TCPNoDelay", {"data": True})
    try:
        inet.apply_options(sock, session.server.get("SocketOptions") or {}, nodelay.get("data", True))
    except OSError as e:
        log.debug("data socket options: %s", e.strerror)


def _unable(e: OSError | str) -> FtpError:
    text = e if isinstance(e, str) else (e.strerror or os.strerror(e.errno or errno.EIO))
    return FtpError(425, f"Unable to build data connection: {text}")


def connect_data(session: "Session") -> socket.socket:
    """The connected data socket (non-blocking), from the passive listener or to the PORT target. Consumes the
    preparation. Raises FtpError(425) when no connection can be made."""
    st = state(session)
    if st.listener is not None:
        listener, st.listener = st.listener, None
        sock, st.accepted = st.accepted, None
        session.ctrl.unwatch(listener.fileno())
        try:
            if sock is None:
                sock = _accept(session, listener)
        finally:
            listener.close()
    elif st.target is not None:
        target, st.target = st.target, None
        sock = _connect(session, target)
    else:
        raise _unable("No PORT or PASV command issued first")
    try:
        _data_options(session, sock)
        sock.setblocking(False)
        for wrap in st.wrap:
            sock = wrap(sock)
    except OSError as e:
        sock.close()
        raise _unable(e) from None
    return sock


def _accept_timeout(session: "Session") -> float:
    stalled = _conf(session, "TimeoutStalled", 3600) or ACCEPT_TIMEOUT_CAP
    return float(min(stalled, ACCEPT_TIMEOUT_CAP))


def _accept(session: "Session", listener: socket.socket) -> socket.socket:
    """Accept the client's connection. A connection from another IP (port stealing) is closed and the wait goes
    on, unless AllowForeignAddress allows it. ABOR while waiting gives up."""
    deadline = time.monotonic() + _accept_timeout(session)
    listener.setblocking(False)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _unable(os.strerror(errno.ETIMEDOUT))
        if session.ctrl.pending():
            ready = [session.ctrl.sock]
        else:
            ready, _, _ = select.select([listener, session.ctrl.sock], [], [], left)
        if session.ctrl.sock in ready and _control_wants_abort(session):
            raise FtpError(426, ABORTED)
        if listener not in ready:
            continue
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            raise _unable(e) from None
        if not _peer_allowed(session, peer):
            sock.close()
            continue
        return sock


def _peer_allowed(session: "Session", peer: tuple) -> bool:
    """A passive data connection must come from the control connection's peer (no port stealing)."""
    peer_ip = _plain_ip(peer[0])
    if peer_ip == session.remote_addr or foreign_allowed(session):
        return True
    log.warning("Refused passive data connection from %s (address mismatch, control peer %s)",
                peer_ip, session.remote_addr)
    return False


def _control_wants_abort(session: "Session") -> bool:
    """A command arrived while waiting for the data connection: ABOR/QUIT are put back for the command loop and
    end the wait; others are answered as during a transfer."""
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
    _answer_during_transfer(session, name, line, None)
    return False


def _connect(session: "Session", target: tuple[str, int]) -> socket.socket:
    """Active mode: connect from the control connection's local address to the PORT/EPRT target."""
    addr, port = target
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        local = session.local_addr
        if (":" in local) == (family == socket.AF_INET6):
            sock.bind((local, 0))
        sock.settimeout(_accept_timeout(session))
        sock.connect((addr, port))
    except OSError as e:
        sock.close()
        raise _unable(e) from None
    return sock


def _plain_ip(addr: str) -> str:
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


# -- the transfer ------------------------------------------------------------------------------------------------
class _Stop(Exception):
    """Ends a transfer early; `reply` is the transfer command's final reply, `status` goes to the notes."""

    def __init__(self, reply: Reply, status: str):
        super().__init__(reply.text)
        self.reply = reply
        self.status = status


def _answer_during_transfer(session: "Session", name: str, line: str, transfer: "Transfer | None") -> None:
    if name == "STAT" and transfer is not None and not line.strip()[4:].strip():
        session.send(Reply(213, transfer.progress()))
    elif name == "NOOP":
        session.send(Reply(200, "NOOP command successful"))
    else:
        session.send(Reply(450, f"{name}: data transfer in progress"))


@contextlib.contextmanager
def _corked(sock: socket.socket) -> Iterator[None]:
    """TCP_CORK (and Nagle back on) while sendfile() streams a file, as ProFTPD does: only full segments leave,
    which loopback measured at a quarter more throughput; uncorking at the end sends the last partial one."""
    try:
        nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    except OSError:                 # not TCP (tests with socketpairs) or the peer is already gone
        yield
        return
    try:
        yield
    finally:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, nodelay)
        except OSError:
            pass                    # the connection is gone: nothing is left to flush


class Transfer:
    """One transfer over a connected data socket, watching the control connection, honouring TransferRate and
    TimeoutStalled. Use `send_file`, `send_bytes` and `receive_to`; `finish()` closes and gives the final reply."""

    def __init__(self, session: "Session", cmd: "Request", sock: socket.socket, *, what: str = "",
                 size: int | None = None, rate: tuple[float, int] | None = None):
        self.session = session
        self.cmd = cmd
        self.sock = sock
        self.what = what or cmd.arg
        self.size = size
        self.bytes = 0
        self.started = time.monotonic()
        self.rate = rate                              # (bytes per second, free bytes) or None
        stalled = _conf(session, "TimeoutStalled", 3600)
        self.stall_ms = int(stalled * 1000) if stalled else -1
        self.poll = select.poll()
        self.poll.register(session.ctrl.fileno(), select.POLLIN | select.POLLPRI)
        self.plain = type(sock) is socket.socket    # sendfile only on a plain TCP socket (not TLS)
        state(session).transfer = self
        self.offset = 0                               # REST offset of a download (send_file)
        session.events.emit("core.transfer-begin", session=session, transfer=self)

    # -- progress / control ------------------------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def progress(self) -> str:
        total = f" of {self.size}" if self.size is not None else ""
        return f"Status: {self.cmd.name} {self.what}: {self.bytes}{total} bytes transferred in " \
               f"{self.seconds:.1f} seconds"

    def _control(self) -> None:
        line = self.session.ctrl.read_line()
        if line is None:
            self.session.end("disconnected")
            raise _Stop(Reply(426, ABORTED), "cancelled")
        if not isinstance(line, str):
            self.session.send(Reply(500, "Command line too long"))
            return
        name = line.strip().split(" ", 1)[0].upper()
        if name in ("ABOR", "QUIT"):
            self.session.ctrl.unread(line)       # answered by the command loop after our 426
            raise _Stop(Reply(426, ABORTED), "cancelled")
        _answer_during_transfer(self.session, name, line, self)

    def _wait(self, event: int, timeout_ms: int | None = None) -> bool:
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
                    log.warning("Data transfer stall timeout: %d seconds", secs)
                    self.session.end("stalled")
                    raise _Stop(Reply(426, ABORTED), "timeout")
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

    def _throttle(self) -> None:
        """TransferRate: sleep (while still watching the control connection) when ahead of the allowed rate."""
        self.session.events.emit("core.transfer-progress", session=self.session, transfer=self)
        if self.rate is None:
            return
        bps, free = self.rate
        counted = self.bytes - free
        if counted <= 0:
            return
        ahead = counted / bps - self.seconds
        while ahead > 0:
            if self.session.ctrl.pending():
                self._control()
            elif self.poll.poll(int(ahead * 1000) + 1):
                self._control()
            ahead = counted / bps - self.seconds

    def _chunk(self, default: int) -> int:
        if self.rate is None:
            return default
        return max(4096, min(default, int(self.rate[0] / 10)))

    def _net_error(self, e: OSError) -> _Stop:
        if e.errno in NETWORK_ERRORS:
            return _Stop(Reply(426, ABORTED), "failed")
        return _Stop(Reply(426, f"Transfer aborted. {e.strerror or os.strerror(e.errno or errno.EIO)}"),
                     "failed")

    # -- sending -----------------------------------------------------------------------------------------------
    def send_bytes(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            self._wait(select.POLLOUT)
            try:
                n = self.sock.send(view[:self._chunk(len(view))])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                raise self._net_error(e) from None
            view = view[n:]
            self.bytes += n
            self._throttle()

    def send_file(self, fd: int, offset: int, ascii: bool, sendfile: bool = True) -> None:
        """Send a file from `offset` to its end: sendfile(2) in binary mode, CRLF conversion in ASCII mode."""
        self.offset = offset
        if ascii or not self.plain or not sendfile:
            encoder = AsciiEncoder() if ascii else None
            while True:
                try:
                    block = os.pread(fd, FILE_CHUNK, offset)
                except OSError as e:
                    raise _local_error(e) from None
                if not block:
                    return
                offset += len(block)
                self.send_bytes(encoder.feed(block) if encoder else block)
        out = self.sock.fileno()
        with _corked(self.sock):
            self._sendfile(out, fd, offset)

    def _sendfile(self, out: int, fd: int, offset: int) -> None:
        while True:
            self._wait(select.POLLOUT)
            try:
                n = os.sendfile(out, fd, offset, self._chunk(SEND_CHUNK))
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                if e.errno in NETWORK_ERRORS:
                    raise self._net_error(e) from None
                raise _local_error(e) from None
            if n == 0:
                return
            offset += n
            self.bytes += n
            self._throttle()

    # -- receiving ---------------------------------------------------------------------------------------------
    def receive_to(self, fd: int, ascii: bool) -> None:
        """Write everything the client sends to `fd` until it closes the data connection. Binary uploads on a
        plain socket go socket -> pipe -> file with splice(2) (measured faster than recv_into + write, see
        docs/performance.md)."""
        # splice(2) cannot write to an O_APPEND file (EINVAL): those take the recv_into path.
        if not ascii and self.plain and hasattr(os, "splice") and not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
            self._splice_to(fd)
            return
        buf = bytearray(self._chunk(RECV_BUFFER))
        view = memoryview(buf)
        decoder = AsciiDecoder() if ascii else None
        while True:
            self._wait(select.POLLIN)
            try:
                n = self.sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                raise self._net_error(e) from None
            if n == 0:
                break
            self.bytes += n
            _write_all(fd, decoder.feed(bytes(view[:n])) if decoder else view[:n])
            self._throttle()
        if decoder:
            _write_all(fd, decoder.flush())

    def _splice_to(self, fd: int) -> None:
        r, w = os.pipe()
        try:
            try:
                fcntl.fcntl(w, F_SETPIPE_SZ, RECV_BUFFER)
            except OSError:
                pass        # the default pipe size works, only with more calls
            chunk = self._chunk(RECV_BUFFER)
            flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
            src = self.sock.fileno()
            while True:
                self._wait(select.POLLIN)
                try:
                    n = os.splice(src, w, chunk, flags=flags)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    raise self._net_error(e) from None
                if n == 0:
                    return
                self.bytes += n
                while n:
                    try:
                        n -= os.splice(r, fd, n, flags=os.SPLICE_F_MOVE)
                    except OSError as e:
                        raise _local_error(e) from None
                self._throttle()
        finally:
            os.close(r)
            os.close(w)

    # -- the end -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        state(self.session).transfer = None
        self.session.events.emit("core.transfer-end", session=self.session, transfer=self)
        try:
            self.sock.close()
        except OSError as e:
            log.debug("closing data connection: %s", e.strerror)
        for name in ("idle", "noxfer"):
            self.session.reset_timer(name)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as e:
            raise _local_error(e) from None
        view = view[n:]


def _local_error(e: OSError) -> _Stop:
    text = e.strerror or os.strerror(e.errno or errno.EIO)
    code = 552 if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else 451
    return _Stop(Reply(code, f"Transfer aborted. {text}"), "failed")


def run(session: "Session", cmd: "Request", opening: str, body: Callable[[Transfer], None], *,
        what: str = "", size: int | None = None, rate: tuple[float, int] | None = None) -> tuple[Reply, Transfer | None, str]:
    """Open the data connection, announce it with `150 <opening>`, run `body(transfer)`, close.
    Returns (final reply, transfer or None when no connection was made, status success|failed|cancelled|timeout)."""
    try:
        sock = connect_data(session)
    except FtpError as e:
        return e.reply, None, "failed"
    session.send(Reply(150, opening))
    transfer = Transfer(session, cmd, sock, what=what, size=size, rate=rate)
    try:
        body(transfer)
    except _Stop as stop:
        transfer.close()
        return stop.reply, transfer, stop.status
    except BaseException:
        transfer.close()
        raise
    transfer.close()
    return Reply(226, TRANSFER_COMPLETE), transfer, "success"


def send_lines(session: "Session", cmd: "Request", lines: Iterable[str], what: str = "file list",
               mode: str = "ASCII") -> Reply:
    """A listing over the data connection: `150 Opening ASCII mode data connection for file list` (MLSD names
    itself and the session's mode instead), each line + CRLF, then `226 Transfer complete` (or 425/426). `lines`
    may be a generator; it is consumed while sending."""

    def body(transfer: Transfer) -> None:
        out: list[bytes] = []
        size = 0
        for line in lines:
            chunk = line.encode("utf-8", "surrogateescape") + b"\r\n"
            out.append(chunk)
            size += len(chunk)
            if size >= FILE_CHUNK:
                transfer.send_bytes(b"".join(out))
                out, size = [], 0
        if out:
            transfer.send_bytes(b"".join(out))

    reply, transfer, _ = run(session, cmd, f"Opening {mode} mode data connection for {what}", body)
    cmd.notes["list_bytes"] = transfer.bytes if transfer else 0
    return reply


# -- ASCII conversion (pure, unit-tested) ------------------------------------------------------------------------
class AsciiEncoder:
    """Outgoing ASCII: a LF not already preceded by CR becomes CRLF (also across block boundaries)."""

    def __init__(self) -> None:
        self.last_cr = False

    def feed(self, data: bytes) -> bytes:
        if not data:
            return data
        lead = b""
        if self.last_cr and data[:1] == b"\n":
            lead, data = b"\n", data[1:]
        self.last_cr = data[-1:] == b"\r" if data else self.last_cr
        return lead + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class AsciiDecoder:
    """Incoming ASCII: CRLF becomes LF; a lone CR stays (ProFTPD keeps it); a CR at a block end waits for the
    next block."""

    def __init__(self) -> None:
        self.held_cr = False

    def feed(self, data: bytes) -> bytes:
        if self.held_cr:
            data = b"\r" + data
            self.held_cr = False
        if data.endswith(b"\r"):
            self.held_cr = True
            data = data[:-1]
        return data.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        if self.held_cr:
            self.held_cr = False
            return b"\r"
        return b""
