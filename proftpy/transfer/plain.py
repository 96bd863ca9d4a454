"""The `plain` strategy: a kernel TCP socket, so the kernel can move the bytes. Binary downloads go with
sendfile(2) under TCP_CORK, binary uploads socket -> pipe -> file with splice(2) (measured faster than recv_into +
write, see docs/performance.md); ASCII mode, UseSendfile off and O_APPEND files take pread/send and recv_into/write.
Nothing here is per chunk beyond the system calls and the Transfer's pacing: `make bench` measures this path."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
from typing import Callable, Iterator

from .ascii import AsciiDecoder
from .base import RECV_BUFFER, Paced, Strategy, decode, flush, write_all
from .errors import NETWORK_ERRORS, local_error, net_error, short_write

SEND_CHUNK = 8 << 20          # most bytes one sendfile() call may move (non-blocking: what the socket takes)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
SPLICE = hasattr(os, "splice")


class Plain(Strategy):
    name = "plain"

    def send(self, data: bytes | memoryview) -> None:
        t, sock = self.transfer, self.sock
        view = memoryview(data)
        while view:
            t.wait(select.POLLOUT)
            try:
                n = sock.send(view[:t.chunk(len(view))])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                raise net_error(e) from None
            view = view[n:]
            t.moved(n)

    def send_file(self, fd: int, offset: int, ascii: bool, sendfile: bool) -> None:
        if ascii or not sendfile:
            self.send_blocks(fd, offset, ascii)
            return
        with corked(self.sock):
            self._sendfile(fd, offset)

    def _sendfile(self, fd: int, offset: int) -> None:
        sendfile_all(self.transfer, self.sock.fileno(), fd, offset)

    def receive_to(self, fd: int, ascii: bool) -> None:
        # splice(2) cannot write to an O_APPEND file (EINVAL): those take the recv_into path.
        if not ascii and SPLICE and not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
            self._splice_to(fd)
            return
        t, sock = self.transfer, self.sock
        buf = bytearray(t.chunk(RECV_BUFFER))
        view = memoryview(buf)
        decoder = AsciiDecoder() if ascii else None
        for n in self._reads(lambda: sock.recv_into(buf)):
            write_all(t, fd, decode(t, decoder, bytes(view[:n])) if decoder else view[:n])
            t.pace()
        if decoder:
            write_all(t, fd, flush(t, decoder))

    def _reads(self, read: Callable[[], int]) -> Iterator[int]:
        """How many bytes each `read()` took off the socket (counted already), once it is readable, until the
        client closes the data connection."""
        t = self.transfer
        while True:
            t.wait(select.POLLIN)
            try:
                n = read()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                raise net_error(e) from None
            if n == 0:
                return
            t.bytes += n
            yield n

    def _splice_to(self, fd: int) -> None:
        t = self.transfer
        r, w = os.pipe()
        try:
            try:
                fcntl.fcntl(w, F_SETPIPE_SZ, RECV_BUFFER)
            except OSError:
                pass        # the default pipe size works, only with more calls
            chunk = t.chunk(RECV_BUFFER)
            flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
            src = self.sock.fileno()
            for n in self._reads(lambda: os.splice(src, w, chunk, flags=flags)):
                partial = False             # as write_all: a chunk failing half-way is ProFTPD's I/O error
                t.to_file(n)
                written = n
                while n:
                    try:
                        n -= os.splice(r, fd, n, flags=os.SPLICE_F_MOVE)
                    except OSError as e:
                        raise (short_write() if partial else local_error(e)) from None
                    partial = True
                t.wrote(written)
                t.pace()
        finally:
            os.close(r)
            os.close(w)


def sendfile_all(t: Paced, out: int, fd: int, offset: int) -> None:
    """sendfile(2) from `offset` to the end of the file, as fast as the socket `out` takes it."""
    chunk = t.chunk(SEND_CHUNK)
    while True:
        t.wait(select.POLLOUT)
        try:
            n = os.sendfile(out, fd, offset, chunk)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            if e.errno in NETWORK_ERRORS:
                raise net_error(e) from None
            raise local_error(e) from None
        if n == 0:
            return
        offset += n
        t.moved(n)


@contextlib.contextmanager
def corked(sock: socket.socket) -> Iterator[None]:
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
