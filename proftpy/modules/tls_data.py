"""PROT P: the data connection's TLS, put on after the `150` (transfer.DataState.wrap), as ProFTPD does.

The client must resume *this* control connection's TLS session (ProFTPD's default; `TLSOptions
NoSessionReuseRequired` lifts it, and so do CCC and `TLSSessionCache off`). How that is proven in Python, whose
ssl module has none of OpenSSL's ticket callbacks:

- every session child starts with its own empty session cache (the contexts are built in the master, which never
  handshakes), and a data handshake stores nothing in it (SSL_SESS_CACHE_NO_INTERNAL_STORE while it runs) and
  issues no TLSv1.3 ticket (num_tickets 0): the only resumable sessions are the control connection's;
- the resumed session's ID must be the control session's (ProFTPD's tls_compare_session_ids). With the default
  `TLSSessionTickets off` TLSv1.2 resumes by session ID and TLSv1.3 by a ticket that names the cached control
  session, one per handshake, so both compare. With `TLSSessionTickets on`, TLSv1.2 tickets carry no ID: each
  session child then encrypts its tickets with keys of its own (made at connect), so a ticket it accepts is one it
  issued;
- with an external TLSSessionCache (tls_cache.py) a control connection may resume a session another process
  made, but a data handshake never asks the external cache (nor adds to it): the control session is in this
  process's own cache, and the ID check above refuses any other.

A client that does not resume gets `150`, then `425 Unable to build data connection: Operation not permitted`,
and TLSLog says why, in ProFTPD's words.

Data connections read ahead (SSL_CTX_set_read_ahead, a 256 KiB buffer): an upload then costs one recv(2) for many
TLS records instead of two for each, the control connection never does (see net/openssl.py).

OpenSSL forgets a session after a fatal error on any connection that used it: an upload the client ends by closing
without close_notify is one to OpenSSL 3 (unexpected EOF), and the FTP session could then resume nothing any
more. Upload connections therefore take such an EOF as the end (SSL_OP_IGNORE_UNEXPECTED_EOF), as plain FTP takes
the close. Downloads do not: OpenSSL 3.0 with that option, meeting the client's EOF while it waits for the answer
to our close_notify, clears its note that ours was sent, and forgets the session the same way.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

from ..net import openssl
from ..net import tls as nettls
from ..transfer.errors import unable
from .tls_session import failure_lines, state, tls_log

if TYPE_CHECKING:
    from ..session import Session

LISTINGS = ("LIST", "MLSD", "NLST")
UPLOADS = ("APPE", "STOR", "STOU")
READ_BUFFER = 256 << 10         # a data connection reads ahead this much at once (uploads: fewer system calls)
EXPIRY_WARNING = 60             # seconds: ProFTPD warns when the control session ends this soon
REUSE_HINT = "(see the NoSessionReuseRequired TLSOptions parameter)"


def refused() -> Exception:
    return unable(os.strerror(errno.EPERM))


def wrapper(session: "Session"):
    """The DataState.wrap function of this session: the connected data socket in, its TLS socket out."""

    def wrap(sock: socket.socket) -> Any:
        st = state(session)
        if not st.prot_p:
            return sock
        if st.tls is None:                              # HOST moved the session to a server without TLS
            sock.close()
            raise refused()
        if st.sscn_client and st.command not in LISTINGS:
            return _connect(session, sock)
        return _accept(session, sock)
    return wrap


def _accept(session: "Session", sock: socket.socket) -> Any:
    st = state(session)
    ctx, native = st.tls.ctx, st.tls.native
    mode = native.set_cache_mode(openssl.SESS_CACHE_SERVER | openssl.SESS_CACHE_NO_INTERNAL_STORE) \
        if native is not None and native.cache_mode() != openssl.SESS_CACHE_OFF else None
    tickets, ctx.num_tickets = ctx.num_tickets, 0
    external = st.tls.external
    if external is not None:                # nothing to store, nothing another process made to resume
        external.paused = True
    if native is not None:
        native.set_read_ahead(True, READ_BUFFER)
    options = ctx.options
    if st.command in UPLOADS:
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    try:
        tls = nettls.handshake(sock, ctx, session.server.get("TLSTimeoutHandshake"), prepare=st.tls.prepare)
    except nettls.HandshakeError as e:
        raise _failed(session, e, "unable to accept TLS connection", "TLS negotiation failed") from None
    finally:
        ctx.num_tickets = tickets
        ctx.options = options
        if external is not None:
            external.paused = False
        if native is not None:
            native.set_read_ahead(False)
        if mode is not None:
            native.set_cache_mode(mode)
    problem = _reuse_problem(session, tls)
    if problem is not None:                 # a failed tls_accept to ProFTPD: the outcome is logged after it
        problem += "\nunable to open data connection: TLS negotiation failed"
    else:
        problem = _certificate_problem(st.ctrl, tls)
    if problem is not None:
        for line in problem.split("\n"):
            tls_log(session, line)
        nettls.close_notify(tls)
        tls.close()
        raise refused()
    if not st.logged_data:
        name, _, bits = tls.cipher()
        tls_log(session, f"{tls.version()} data connection accepted, using cipher {name} ({bits} bits"
                f"{', resumed session' if tls.session_reused else ''})")
        st.logged_data = True
    return tls


def _reuse_problem(session: "Session", tls: ssl.SSLSocket) -> str | None:
    """Why this data connection is refused for not resuming the control session (None: it did, or need not)."""
    st = state(session)
    cache = session.config.main.get("TLSSessionCache")
    cache_off = cache is not None and cache.kind == "off"
    if st.opt("NoSessionReuseRequired") or st.ccc or cache_off or st.ctrl is None:
        return None
    if not tls.session_reused:
        return f"client did not reuse TLS session, rejecting data connection {REUSE_HINT}"
    tls_log(session, "client reused TLS session for data connection")
    ctrl_session, data_session = st.ctrl.session, tls.session
    if ctrl_session is None or data_session is None:
        return "BUG: unable to determine whether client reused TLS session"
    ticket_bound = not ctrl_session.id and session.server.get("TLSSessionTickets")
    if ctrl_session.id != data_session.id and not ticket_bound:
        return f"client did not reuse TLS session from control channel, rejecting data connection {REUSE_HINT}"
    left = ctrl_session.time + ctrl_session.timeout - time.time()
    if left <= EXPIRY_WARNING:
        tls_log(session, f"control channel TLS session expires in {max(0, int(left))} secs "
                f"({ctrl_session.timeout} session cache expiration)")
        tls_log(session, "Consider using 'TLSSessionCache internal:' to increase the session cache expiration "
                "if necessary, or renegotiate the control channel TLS session")
    return None


def _certificate_problem(ctrl: Any, data: ssl.SSLSocket) -> str | None:
    """The client certificates of control and data connections, when both have one, must be the same."""
    if ctrl is None:
        return None
    a, b = ctrl.getpeercert(binary_form=True), data.getpeercert(binary_form=True)
    if a and b and a != b:
        return "unable to open data connection: control/data certificate mismatch"
    return None


def _connect(session: "Session", sock: socket.socket) -> Any:
    """SSCN ON: the other end is a server; we handshake as its client."""
    st = state(session)
    tls_log(session, "making TLS connection for data connection")
    try:
        return nettls.handshake(sock, st.tls.client_ctx, session.server.get("TLSTimeoutHandshake"),
                                server_side=False)
    except nettls.HandshakeError as e:
        raise _failed(session, e, "unable to connect using TLS connection", "TLS connection failed") from None


def _failed(session: "Session", e: "nettls.HandshakeError", what: str, outcome: str) -> Exception:
    """A data handshake that failed: closed, logged as ProFTPD does, announced; the 425 to raise."""
    e.sock.close()
    for line in failure_lines(session, e, what):
        tls_log(session, line)
    tls_log(session, f"unable to open data connection: {outcome}")
    session.events.emit("mod_tls.data-handshake-failed", session=session, reason=e.reason)
    return refused()
