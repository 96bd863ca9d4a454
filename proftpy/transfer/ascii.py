"""ASCII mode's line endings (TYPE A): CRLF on the wire, the file's own LF on disk. Pure and stateful across blocks,
so a CR LF split between two reads converts the same as a whole one."""

from __future__ import annotations


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
