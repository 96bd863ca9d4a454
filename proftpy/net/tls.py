"""TLS on a connected socket, for the control and data connections of FTPS (nothing here knows FTP):

- `handshake`: wrap a socket and finish the TLS handshake within a deadline, with TCP_NODELAY while it runs
  (without it every handshake waits about 45 ms for Nagle and the peer's delayed ACK);
- `close_notify`: send our close_notify without waiting for the peer's. OpenSSL forgets a session whose
  connection was freed without one, so a data connection closed that way (an ABOR, a broken transfer) would make
  every later data connection of the FTP session fail to resume the control session;
- `kernel_tx`: whether the kernel took over the sending side of this very connection (kernel TLS), the only
  case where sendfile(2) onto a TLS socket is correct: onto a socket whose TLS runs in user space it would put
  plaintext into the encrypted stream.
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import time
from typing import Any, Callable

from . import poll_ms

OP_ENABLE_KTLS = getattr(ssl, "OP_ENABLE_KTLS", 1 << 3)   # SSL_OP_ENABLE_KTLS; Python 3.12 names it, 3.11 not
SOL_TLS = 282                   # linux/socket.h
TLS_TX = 1                      # linux/tls.h: getsockopt gives the TX crypto state once the kernel has it
_CRYPTO_INFO = 64               # enough for any tls12_crypto_info_* struct


class HandshakeError(Exception):
    """The handshake failed or timed out. `sock` is the connection again as a plain socket (TLS is gone from
    it), the caller's to close or to answer on; `reason` says why, in the words ProFTPD's TLSLog uses; `code` is
    OpenSSL's name for the reason of a protocol error (`PEER_DID_NOT_RETURN_A_CERTIFICATE`...), else None;
    `errors`: the lines ProFTPD's TLSLog puts after a protocol error, OpenSSL's error queue (`  (1) error:...`)."""

    def __init__(self, reason: str, sock: socket.socket, timed_out: bool = False, code: str | None = None,
                 errors: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.sock = sock
        self.timed_out = timed_out
        self.code = code
        self.errors = errors


def handshake(sock: socket.socket, ctx: ssl.SSLContext, timeout: float | None, *, server_side: bool = True,
              session: ssl.SSLSession | None = None, server_hostname: str | None = None,
              prepare: Callable[[ssl.SSLSocket], Any] | None = None) -> ssl.SSLSocket:
    """`sock` wrapped by `ctx`, its handshake done within `timeout` seconds (None or 0: no limit); `prepare` is
    given the wrapped socket before the handshake. The wrapped socket keeps `sock`'s blocking mode and timeout,
    and its TCP_NODELAY setting. Raises HandshakeError."""
    timeout_before = sock.gettimeout()
    nodelay_before = _nodelay(sock, True)
    tls = ctx.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=False, session=session,
                          server_hostname=server_hostname)
    if prepare is not None:
        prepare(tls)
    try:
        tls.setblocking(False)
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                _wait(tls, select.POLLIN, deadline)
            except ssl.SSLWantWriteError:
                _wait(tls, select.POLLOUT, deadline)
    except TimeoutError:
        raise HandshakeError(f"TLS negotiation timed out ({timeout:g} seconds)", _plain(tls, timeout_before),
                             timed_out=True) from None
    except ssl.SSLEOFError:
        raise HandshakeError("received EOF that violates protocol", _plain(tls, timeout_before)) from None
    except ssl.SSLError as e:
        raise _protocol_error(e, _plain(tls, timeout_before)) from None
    except OSError as e:
        raise HandshakeError(f"system call error: [{e.errno}] {e.strerror or e}", _plain(tls, timeout_before)) from None
    tls.settimeout(timeout_before)
    if nodelay_before is False:
        _nodelay(tls, False)
    return tls


def _protocol_error(e: ssl.SSLError, sock: socket.socket) -> HandshakeError:
    """ProFTPD's `protocol error: ` line, followed by OpenSSL's error (only the one Python's SSLError kept: the
    queue is emptied before it raises; ProFTPD numbers every entry); where OpenSSL's text cannot be found again,
    the line names the reason itself."""
    from .openssl import error_text
    text = error_text(getattr(e, "library", None), getattr(e, "reason", None))
    if text is not None:
        return HandshakeError("protocol error: ", sock, code=e.reason, errors=(f"  (1) {text}",))
    return HandshakeError(f"protocol error: {getattr(e, 'verify_message', None) or e.reason or e}", sock,
                          code=e.reason)


def _plain(tls: ssl.SSLSocket, timeout: float | None) -> socket.socket:
    """The connection under a failed handshake, as a plain socket again (the TLS state is dropped)."""
    sock = socket.socket(tls.family, tls.type, tls.proto, fileno=tls.detach())
    sock.settimeout(timeout)
    return sock


def _wait(sock: Any, event: int, deadline: float | None) -> None:
    poller = select.poll()
    poller.register(sock.fileno(), event)
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, "TLS handshake timed out")
        if poller.poll(None if left is None else poll_ms(left)):
            return


def _nodelay(sock: Any, on: bool) -> bool | None:
    """Set TCP_NODELAY; returns the setting before (None when the socket is not TCP)."""
    try:
        before = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        if before != on:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if on else 0)
        return before
    except OSError:
        return None


def close_notify(tls: Any) -> bool:
    """Send our close_notify if the socket takes it now, never waiting (for the socket or the peer's answer).
    True when it went out. Either way OpenSSL keeps the session resumable."""
    unwrap = getattr(tls, "unwrap", None)
    if unwrap is None or getattr(tls, "_sslobj", None) is None:
        return False
    try:
        tls.setblocking(False)
        unwrap()
        return True
    except ssl.SSLWantReadError:
        return True                         # ours is out; the peer's is not awaited
    except (ssl.SSLWantWriteError, ssl.SSLError, OSError):
        return False


def kernel_tx(sock: Any) -> bool:
    """True when the kernel encrypts what this socket sends (kernel TLS took over its TX side). Asked of the
    socket itself: the kernel may refuse a cipher or version for one connection and take it for the next."""
    getsockopt = getattr(sock, "getsockopt", None)
    if getsockopt is None:
        return False
    try:
        getsockopt(SOL_TLS, TLS_TX, _CRYPTO_INFO)
        return True
    except OSError:
        return False                        # no `tls` module, not offloaded, or not a TLS socket
