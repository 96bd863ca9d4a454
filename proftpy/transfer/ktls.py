"""The `ktls` strategy: a TLS socket whose sending side the kernel took over (kernel TLS: the `tls` module,
OpenSSL built with it, a cipher the kernel knows). Downloads then go by sendfile(2) under TCP_CORK as on a plain
socket, the kernel encrypting each record; everything else (uploads, listings, ASCII mode, the close_notify) goes
through the TLS library as in `stream`, which works the same on such a socket.

strategy.pick chooses it only after asking the kernel about that very socket (net.tls.kernel_tx): sendfile(2)
onto a socket whose TLS runs in user space would put plaintext into the encrypted stream.
"""

from __future__ import annotations

from .plain import corked, sendfile_all
from .stream import Stream


class Ktls(Stream):
    name = "ktls"

    def send_file(self, fd: int, offset: int, ascii: bool, sendfile: bool) -> None:
        if ascii or not sendfile:
            self.send_blocks(fd, offset, ascii)
            return
        with corked(self.sock):
            sendfile_all(self.transfer, self.sock.fileno(), fd, offset)
