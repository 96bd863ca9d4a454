"""MODE Z (mod_deflate): the data connection as a zlib stream, over the plain or TLS socket below it.

`Deflated(sock, level)` looks like a socket to the `stream` strategy (send, recv_into, fileno, unwrap, close),
so every transfer (RETR, STOR, APPE, STOU, LIST, NLST, MLSD) goes through it unchanged, TLS included (compression
first, then encryption, as ProFTPD stacks its NetIO). Sending compresses each block and flushes it (Z_SYNC_FLUSH,
so the client can always decode what arrived) and ends with Z_FINISH; receiving takes zlib or gzip (as ProFTPD's
inflateInit2 with 15 + 32) and never holds more than one buffer of decompressed bytes, so a client's
"compression bomb" costs it the time, not the server memory. The transfer counts the file's bytes (before
compression), as xferlog wants.
"""

from __future__ import annotations

import errno
import ssl
import zlib
from typing import Any, Callable

from ..net.tls import close_notify

MEM_LEVEL, WINDOW_BITS = 8, 15                  # the MODE Z draft's zlib parameters, as ProFTPD uses them
RAW_CHUNK = 64 << 10                            # compressed bytes read at once


def would_block(e: OSError) -> bool:
    return isinstance(e, (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError))


class Deflated:
    """A data socket whose bytes are compressed on the way out and decompressed on the way in."""

    def __init__(self, sock: Any, level: int, report: Callable[["Deflated"], None] | None = None):
        self.sock = sock
        self.report = report                    # called at close with this stream: its totals and its error
        self.wire = self.plain = 0              # compressed bytes (on the wire), plain ones (the file's)
        self.error: str | None = None           # why an upload could not be decompressed
        self._z = zlib.compressobj(level, zlib.DEFLATED, WINDOW_BITS, MEM_LEVEL)
        self._unz = zlib.decompressobj(WINDOW_BITS + 32)
        self._pending = bytearray()             # compressed bytes the socket has not taken yet
        self._raw = b""                         # received compressed bytes not decompressed yet
        self._finished = False
        self._eof = False
        self._received = False                  # an upload: no zlib stream goes back at its end

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- out ---------------------------------------------------------------------------------------------------------
    def send(self, data: bytes | memoryview) -> int:
        """Take all of `data` once what an earlier call left is out (else raise as the socket does: nothing of
        `data` taken, so the caller sends the same bytes again)."""
        self._drain()
        self.plain += len(data)
        self._pending += self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)
        try:
            self._drain()
        except OSError as e:
            if not would_block(e):
                raise
        return len(data)

    def _drain(self) -> None:
        while self._pending:
            n = self.sock.send(self._pending)
            del self._pending[:n]
            self.wire += n

    def unwrap(self) -> None:
        """The end of a download: the zlib stream's end, then the layer below's (TLS close_notify). Raises as the
        socket does while it cannot take it all; call again."""
        if not self._finished and not self._received:
            self._pending += self._z.flush(zlib.Z_FINISH)
        self._finished = True
        self._drain()
        unwrap = getattr(self.sock, "unwrap", None)
        if unwrap is not None:
            unwrap()

    # -- in ----------------------------------------------------------------------------------------------------------
    def recv_into(self, buffer: Any) -> int:
        """Decompressed bytes into `buffer` (at most its size: the rest waits in zlib); 0 at the end: the stream's
        own end, or the client closing."""
        view = memoryview(buffer)
        self._received = True
        while True:
            if self._raw:
                try:
                    out = self._unz.decompress(self._raw, len(view))
                except zlib.error as e:
                    self.error = f"error inflating data: {e}"
                    raise OSError(errno.EIO, self.error) from None
                self._raw = self._unz.unconsumed_tail
                if out:
                    self.plain += len(out)
                    view[:len(out)] = out
                    return len(out)
                continue
            if self._unz.eof or self._eof:
                return 0
            raw = bytearray(RAW_CHUNK)
            n = self.sock.recv_into(raw)        # raises when it would block: the caller waits and comes back
            if n == 0:
                self._eof = True
                return 0
            self.wire += n
            self._raw = bytes(raw[:n])

    def close(self) -> None:
        close_notify(self.sock)                 # a TLS layer below keeps its session resumable
        self.sock.close()
        if self.report is not None:
            self.report(self)
            self.report = None

    @property
    def received(self) -> bool:
        """An upload (the client sent the stream)."""
        return self._received
