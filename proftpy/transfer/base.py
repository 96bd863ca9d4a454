"""What every byte-moving strategy shares (see strategy.py): its place beside the Transfer it works for, file
reads for sending block by block (ASCII mode, or where sendfile(2) cannot serve), full writes to the file.

A strategy moves bytes only; what it needs of the transfer it works for (engine.Transfer) is `Paced`.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from .ascii import AsciiDecoder, AsciiEncoder
from .errors import local_error, short_write

FILE_CHUNK = 256 << 10        # read size for downloads that are not sendfile'd, and for listings
RECV_BUFFER = 1 << 20         # upload buffer


class Paced(Protocol):
    """The transfer as a strategy sees it (engine.Transfer)."""

    bytes: int
    ascii_extra: int        # CRs ASCII mode added (downloads) or took away (uploads): not the file's bytes

    def wait(self, event: int, timeout_ms: int | None = None) -> bool:
        """Until the data socket is ready for `event` (select.POLLIN/POLLOUT); the control connection is answered
        meanwhile, and ABOR or a stall raise errors.Stop."""

    def moved(self, n: int) -> None:
        """`n` more bytes went over the data connection (`bytes += n`, then `pace()`)."""

    def pace(self) -> None:
        """After a chunk: tell the listeners, sleep as TransferRate wants."""

    def chunk(self, default: int) -> int:
        """Bytes to move at once (less under TransferRate)."""

    def to_file(self, n: int) -> None:
        """`n` more bytes are about to be written to the file; raises errors.Stop when they may not be."""

    def wrote(self, n: int) -> None:
        """`n` more bytes went into the file; raises errors.Stop when no more may follow."""


class Strategy:
    """Moves bytes between a file and one data socket. Subclasses give `send` and `receive_to`, and may
    specialise the rest."""

    name = ""

    def __init__(self, transfer: Paced, sock: Any):
        self.transfer = transfer
        self.sock = sock

    def send(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def receive_to(self, fd: int, ascii: bool) -> None:
        """Write everything the client sends to `fd` until it ends the data connection."""
        raise NotImplementedError

    def send_file(self, fd: int, offset: int, ascii: bool, sendfile: bool) -> None:
        """Send a file from `offset` to its end (`sendfile`: UseSendfile allows the kernel to do it)."""
        self.send_blocks(fd, offset, ascii)

    def send_blocks(self, fd: int, offset: int, ascii: bool) -> None:
        """pread + send, CRLF conversion in ASCII mode."""
        encoder = AsciiEncoder() if ascii else None
        while True:
            try:
                block = os.pread(fd, FILE_CHUNK, offset)
            except OSError as e:
                raise local_error(e) from None
            if not block:
                return
            offset += len(block)
            if encoder:
                wire = encoder.feed(block)
                self.transfer.ascii_extra += len(wire) - len(block)
                block = wire
            self.send(block)

    def finish(self) -> None:
        """Every byte went through: end the stream the way its protocol wants (nothing to do on plain TCP)."""

    def close(self) -> None:
        self.sock.close()


def decode(t: Paced, decoder: AsciiDecoder, data: bytes) -> bytes:
    """An ASCII upload's bytes as the file gets them; the CRs taken away are counted (ProFTPD logs file bytes)."""
    out = decoder.feed(data)
    t.ascii_extra += len(data) - len(out)
    return out


def flush(t: Paced, decoder: AsciiDecoder) -> bytes:
    """The end of an ASCII upload: a CR held back at the last block's end goes to the file after all."""
    out = decoder.flush()
    t.ascii_extra -= len(out)
    return out


def write_all(t: Paced, fd: int, data: bytes | memoryview) -> None:
    """Write one chunk of an upload. A chunk that fails after part of it went in (a short write, then the device
    is full) is ProFTPD's I/O error (451), one that fails at once says why (452 for a full device)."""
    t.to_file(len(data))
    view = memoryview(data)
    partial = False
    while view:
        try:
            n = os.write(fd, view)
        except OSError as e:
            raise (short_write() if partial else local_error(e)) from None
        view = view[n:]
        partial = True
    t.wrote(len(data))
