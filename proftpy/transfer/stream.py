"""The `stream` strategy: any socket-like object with send/recv_into, the bytes passing through user space. TLS
sockets (ssl.SSLSocket) and MODE Z's zlib stream (deflate.py, over either) use it, which is why:

- `ssl.SSLWantReadError`/`SSLWantWriteError` are not BlockingIOError: either may come from either direction (a
  send may need to read a key update, a receive may need to write), and the next wait is for what was wanted;
- the TLS library may hold bytes the kernel no longer reports (decrypted ones, and whole records read ahead): an
  upload polls the descriptor only after a read said it would block, or it would sleep on data it already has;
- a write is retried with the very same bytes after SSLWantWriteError, and writes are large (STREAM_CHUNK): each
  one is a TLS record train and a system call or more;
- the end of a transfer is `unwrap()`: our close_notify is sent (waiting, within TimeoutStalled, until the socket
  takes it), the peer's answer is not waited for; a peer that just closes is tolerated the same way. A transfer
  that ends early sends one too, if the socket takes it at once (`close`: OpenSSL would forget the session).

This module is imported only when a non-plain socket shows up (strategy.pick), so a plain session never loads ssl.
"""

from __future__ import annotations

import logging
import select
import ssl

from ..net.tls import close_notify
from .ascii import AsciiDecoder
from .base import RECV_BUFFER, Strategy, decode, flush, write_all
from .errors import closed, net_error

log = logging.getLogger("proftpy")

STREAM_CHUNK = 256 << 10      # bytes handed to one send()
POLLIN, POLLOUT = select.POLLIN, select.POLLOUT


class Stream(Strategy):
    name = "stream"

    def send(self, data: bytes | memoryview) -> None:
        t, sock = self.transfer, self.sock
        view = memoryview(data)
        chunk = t.chunk(STREAM_CHUNK)
        want = POLLOUT
        while view:
            t.wait(want)
            try:
                n = sock.send(view[:chunk])         # the same bytes again after a want-write
            except OSError as e:
                want = _blocked(e, POLLOUT)
                continue
            want = POLLOUT
            view = view[n:]
            t.moved(n)

    def receive_to(self, fd: int, ascii: bool) -> None:
        """Fill the buffer record by record until the socket has no more, then write it: one write per buffer,
        not per TLS record."""
        t, sock = self.transfer, self.sock
        buf = bytearray(t.chunk(RECV_BUFFER))
        view = memoryview(buf)
        size = len(buf)
        decoder = AsciiDecoder() if ascii else None
        blocked: int | None = None
        ended = False
        while not ended:
            if blocked is not None:                 # only a read that would block waits: the TLS library may
                t.wait(blocked)                     # hold records already read from the socket (read-ahead)
            blocked = None
            got = 0
            while got < size:
                try:
                    n = sock.recv_into(view[got:])
                except OSError as e:
                    blocked = _blocked(e, POLLIN)
                    break
                if n == 0:                          # close_notify, or a peer that just closed
                    ended = True
                    break
                got += n
            if got:
                t.bytes += got
                write_all(t, fd, decode(t, decoder, bytes(view[:got])) if decoder else view[:got])
                t.pace()
        if decoder:
            write_all(t, fd, flush(t, decoder))

    def finish(self) -> None:
        """End the stream: MODE Z's last block, then our close_notify. Its answer is not waited for: many clients
        close without one."""
        unwrap = getattr(self.sock, "unwrap", None)
        while unwrap is not None:
            try:
                unwrap()
                return
            except (ssl.SSLWantWriteError, BlockingIOError):
                self.transfer.wait(POLLOUT)
            except ssl.SSLWantReadError:
                return                              # ours went out; the peer's is not waited for
            except OSError as e:                    # the peer is gone already: nothing left to tell it
                log.debug("data connection TLS shutdown: %s", e)
                return


    def close(self) -> None:
        """A transfer that ended early (ABOR, a lost client, a stall) still says close_notify if the socket takes
        it at once: OpenSSL forgets the session of a TLS connection freed without one, and the next data
        connection of this FTP session could then not resume the control session."""
        close_notify(self.sock)
        self.sock.close()


def _blocked(e: OSError, blocked: int) -> int:
    """What to wait for before trying again when `e` says the socket would block (`blocked`: the call's own
    direction); anything else ends the transfer. A broken TLS stream is a closed data connection to the client,
    the library's words go to the log only."""
    if isinstance(e, ssl.SSLWantReadError):
        return POLLIN
    if isinstance(e, ssl.SSLWantWriteError):
        return POLLOUT
    if isinstance(e, (BlockingIOError, InterruptedError)):
        return blocked
    if isinstance(e, ssl.SSLError):
        log.info("data connection TLS error: %s", e.reason or e)
        raise closed() from None
    raise net_error(e) from None
