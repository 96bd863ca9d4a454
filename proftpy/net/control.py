"""The control connection: reads command lines (Telnet commands handled as ProFTPD does, a length limit enforced)
and sends replies. Bytes are kept as they come: names that are not UTF-8 survive through surrogate escapes.

Hostile input is bounded here: a line longer than CommandBufferSize (its CRLF included, as ProFTPD counts) is
discarded whole and reported as TOO_LONG, however it arrives. A client that stops reading replies, or sends half a
line and stops, holds the session for at most its send timeout (TimeoutIdle). A CR inside a line travels as CR NUL
both ways (RFC 2640). While the session waits for a command, other descriptors can be serviced (`watch`: the
passive listener, so that port thieves are turned away at once).

The transport can be swapped (`swap`: AUTH TLS wraps the socket). Whatever the client sent before the swap and is
still buffered is dropped then, so a command pipelined behind `AUTH TLS` never runs (the STARTTLS command
injection class of bugs); bytes the new transport holds decrypted count as waiting input."""

from __future__ import annotations

import logging
import os
import re
import select
import socket
import time
from typing import Any, Callable

from .. import trace
from .charset import Charset

log = logging.getLogger("proftpy")

IAC, DONT, DO, WONT, WILL, SB, SE, IP, DM = 255, 254, 253, 252, 251, 250, 240, 244, 242
TOO_LONG = object()     # read_line() result for a line longer than the limit (the line is discarded)
_LONE_CR = re.compile(rb"\r(?!\n)")


class ControlChannel:
    """Line reader/writer on a connected socket (or a socket-like transport with the same calls)."""

    def __init__(self, sock: socket.socket, max_line: int = 4103):
        self.sock: Any = sock                   # the transport: a socket, or a TLS socket after `swap`
        self._plain = type(sock) is socket.socket      # plain TCP, read and written directly: see _recv
        self._transport_pending: Callable[[], int] | None = None   # None: a plain socket holds nothing unseen
        self.max_line = max_line                # bytes a command line may have, its CRLF included
        self._buf = bytearray()
        self._discarding = False
        self._watched: dict[int, Callable[[], None]] = {}
        self.closed = False
        self._send_failed = False               # a reply could not be sent: do not block on the next one
        self.bytes_out = 0                      # raw reply bytes sent, for the logs (%O)
        self.charset: Charset | None = None     # UseEncoding's conversion while it is on (None: UTF-8 as it is)

    def fileno(self) -> int:
        return self.sock.fileno()

    def set_send_timeout(self, seconds: float | None) -> None:
        """A client that reads no reply for this long is disconnected (None: wait for ever)."""
        self.sock.settimeout(seconds or None)

    def watch(self, fd: int, callback: Callable[[], None]) -> None:
        """Run `callback` whenever `fd` is readable while `wait` waits for a command."""
        self._watched[fd] = callback

    def unwatch(self, fd: int) -> None:
        self._watched.pop(fd, None)

    def swap(self, transport: Any, pending: Callable[[], int] = lambda: 0) -> int:
        """Carry on over `transport` (same fd, e.g. the socket wrapped in TLS); `pending()` tells how many bytes
        it holds ready to read. Buffered input from before the swap is dropped: returns how many bytes."""
        dropped = len(self._buf)
        self._buf.clear()
        self._discarding = False
        self.sock = transport
        self._plain = False
        self._transport_pending = pending
        return dropped

    def pending(self) -> bool:
        """A complete line is already buffered, or the transport holds bytes a select() would not report."""
        return b"\n" in self._buf or (self._transport_pending is not None and self._transport_pending() > 0)

    def wait(self, timeout: float | None) -> bool:
        """True when a line (or EOF) can be read without blocking for longer than `timeout`."""
        if self.pending():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.sock, *self._watched], [], [], left)
            if self.sock in ready:
                return True
            if not ready:
                return False
            for fd in ready:
                callback = self._watched.get(fd)
                if callback is not None:
                    callback()

    def read_line(self) -> str | None | object:
        """One command line without CRLF; None at EOF; TOO_LONG for an over-long line. A last line that the
        client ended with EOF instead of CRLF is still returned (ProFTPD runs it too)."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                return self._line(raw)
            if len(self._buf) > self.max_line and len(strip_telnet(bytes(self._buf))) > self.max_line:
                self._buf.clear()               # keep discarding until the line's end
                self._discarding = True
            try:
                chunk = self._recv()
            except TimeoutError:
                log.warning("no end of line for %d seconds: closing control connection", self.sock.gettimeout())
                self.closed = True
                return None
            except OSError:
                chunk = b""
            if trace.on: trace.msg("netio", 7, "read %d bytes from control stream fd %d", len(chunk), self.sock.fileno())
            if not chunk:
                if self._buf and not self._discarding:
                    raw = bytes(self._buf)
                    self._buf.clear()
                    return self._line(raw)
                self.closed = True
                return None
            self._buf += chunk

    def _line(self, raw: bytes) -> str | object:
        if self._discarding:
            self._discarding = False
            return TOO_LONG
        line = raw
        if IAC in raw:                          # (most lines hold no Telnet command: no call for them)
            line, answers = parse_telnet(raw)
            if answers:
                self._send_raw(answers)         # IAC DONT/WONT x go out before the command's reply (ProFTPD)
        line = line.rstrip(b"\r")
        if len(line) + 2 > self.max_line:
            return TOO_LONG
        # RFC 2640: a CR inside a path name travels as CR NUL.
        line = line.replace(b"\r\0", b"\r")
        return line.decode("utf-8", "surrogateescape") if self.charset is None else self.charset.from_client(line)

    def unread(self, line: str) -> None:
        """Put a command line back in front of the buffer: ABOR/QUIT read during a transfer are answered by the
        command loop after the transfer's own reply (transfer/watch.py)."""
        raw = line.encode("utf-8", "surrogateescape")
        self._buf[:0] = (raw if self.charset is None else self.charset.to_client(raw)) + b"\r\n"

    def send(self, data: bytes) -> None:
        """Send formatted reply bytes."""
        if self.charset is not None:
            data = self.charset.to_client(data)
        if data.count(b"\r") != data.count(b"\r\n"):
            data = _LONE_CR.sub(b"\r\0", data)      # RFC 2640: a CR inside a reply line never ends it
        self._send_raw(data)

    def _send_raw(self, data: bytes) -> None:
        if self._send_failed:
            return
        try:
            self._send_all(data)
            self.bytes_out += len(data)
        except TimeoutError:
            log.warning("client read no reply for %d seconds: closing control connection", self.sock.gettimeout())
            self.closed = self._send_failed = True
        except OSError:
            self.closed = self._send_failed = True

    # A socket with a timeout polls before every call (the socket module's way of keeping the timeout), and
    # wait() has just seen the control socket readable: a plain socket is read and written directly first, and
    # only when that would block through the socket, which then waits with the timeout. Two system calls fewer
    # per command. (fileno() each time: -1 once the socket is closed, never a number reused since.)
    def _recv(self) -> bytes:
        if self._plain:
            try:
                return os.read(self.sock.fileno(), 4096)
            except BlockingIOError:
                pass
        return self.sock.recv(4096)

    def _send_all(self, data: bytes) -> None:
        if self._plain:
            try:
                sent = os.write(self.sock.fileno(), data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        self.sock.sendall(data)


def strip_telnet(raw: bytes) -> bytes:
    """The command bytes of `raw` with Telnet commands handled (see `parse_telnet`)."""
    return parse_telnet(raw)[0] if IAC in raw else raw


def parse_telnet(raw: bytes) -> tuple[bytes, bytes]:
    """ProFTPD's Telnet handling of a command line (src/netio.c): returns (command bytes, bytes to answer).

    IAC IAC is one 0xFF byte; IAC IP and IAC DM (sent before ABOR) are removed; option negotiation is refused:
    IAC WILL/WONT x is answered IAC DONT x, IAC DO/DONT x is answered IAC WONT x, and removed. IAC followed by any
    other byte (NOP, SB, SE, a letter...) is not a command ProFTPD knows: both bytes stay in the line, so
    `MKD bad<IAC>` makes `bad\xff`. A lone IAC at the end of the line stays too; a WILL/WONT/DO/DONT without its
    option byte is dropped."""
    if IAC not in raw:
        return raw, b""
    out = bytearray()
    answers = bytearray()
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b != IAC:
            out.append(b)
            i += 1
            continue
        if i + 1 >= n:
            out.append(IAC)
            break
        op = raw[i + 1]
        if op == IAC:
            out.append(IAC)
            i += 2
        elif op in (WILL, WONT, DO, DONT):
            if i + 2 < n:
                answers += bytes([IAC, DONT if op in (WILL, WONT) else WONT, raw[i + 2]])
            i += 3
        elif op in (IP, DM):
            i += 2
        else:
            out += bytes([IAC, op])
            i += 2
    return bytes(out), bytes(answers)
