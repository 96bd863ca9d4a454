"""The control connection: reads command lines (Telnet IAC sequences removed, a length limit enforced) and sends
replies. Bytes are kept as they come: names that are not UTF-8 survive through surrogate escapes."""

from __future__ import annotations

import select
import socket

from ..reply import Reply

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
TOO_LONG = object()     # read_line() result for a line longer than the limit (the line is discarded)


class ControlChannel:
    """Line reader/writer on a connected socket (or a pair of fds for inetd mode)."""

    def __init__(self, sock: socket.socket, max_line: int = 4103):
        self.sock = sock
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self.closed = False
        self.bytes_out = 0                      # raw reply bytes sent, for the logs (%O)

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> bool:
        """A complete line is already buffered."""
        return b"\n" in self._buf

    def wait(self, timeout: float | None) -> bool:
        """True when a line (or EOF) can be read without blocking for longer than `timeout`."""
        if self.pending():
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def read_line(self) -> str | None | object:
        """One command line without CRLF; None at EOF; TOO_LONG for an over-long line."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                if self._discarding:
                    self._discarding = False
                    return TOO_LONG
                return strip_telnet(raw).rstrip(b"\r").decode("utf-8", "surrogateescape")
            if len(self._buf) > self.max_line:
                self._buf.clear()
                self._discarding = True
            try:
                chunk = self.sock.recv(4096)
            except (ConnectionError, OSError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self._buf += chunk

    def unread(self, line: str) -> None:
        """Put a command line back in front of the buffer: ABOR/QUIT read during a transfer are answered by the
        command loop after the transfer's own reply (net/data.py)."""
        self._buf[:0] = line.encode("utf-8", "surrogateescape") + b"\r\n"

    def send(self, reply: Reply) -> None:
        data = reply.format()
        try:
            self.sock.sendall(data)
            self.bytes_out += len(data)
        except OSError:
            self.closed = True


def strip_telnet(raw: bytes) -> bytes:
    """Remove Telnet commands (IAC IP, IAC DM before ABOR, option negotiation); IAC IAC is a literal 255."""
    if IAC not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b != IAC:
            out.append(b)
            i += 1
            continue
        if i + 1 >= n:
            break
        op = raw[i + 1]
        if op == IAC:
            out.append(IAC)
            i += 2
        elif op in (DO, DONT, WILL, WONT):
            i += 3
        elif op == SB:
            end = raw.find(bytes([IAC, SE]), i + 2)
            i = n if end < 0 else end + 2
        else:
            i += 2
    return bytes(out)
