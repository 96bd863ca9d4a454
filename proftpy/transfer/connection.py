"""Preparing and opening the data connection: a passive listener (PASV/EPSV) within PassivePorts or an active
target (PORT/EPRT), then the connected socket a transfer runs over.

A passive listener is watched while the session waits for commands: a connection from another address (port
stealing) is closed at once, so it cannot fill the listener's backlog, and the client's own early connection is kept
for the next transfer. While the session waits for the client to connect, the control connection is answered
(`watch`); ABOR gives up the wait. What cannot be made is `425 Unable to build data connection: <why>`.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import time
from typing import TYPE_CHECKING, Any

from ..net import inet, passive
from ..net.connection import plain_ip
from ..reply import FtpError
from .datastate import state
from .errors import ABORTED, unable
from .watch import interrupted

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

ACCEPT_TIMEOUT_CAP = 60.0     # longest wait for the client to connect (or accept) a data connection


# -- preparing ---------------------------------------------------------------------------------------------------
def listen_passive(session: "Session") -> socket.socket:
    """PASV/EPSV: a fresh listener on the control connection's local address within PassivePorts (the previous
    unused one is closed first). Raises FtpError(425) when no port is free."""
    st = state(session)
    st.reset()
    sock = passive_listener(session.local_addr, session.conf("PassivePorts"))
    sock.setblocking(False)
    st.listener = sock
    session.ctrl.watch(sock.fileno(), lambda: _accept_early(session))
    return sock


def passive_listener(addr: str, port_range: tuple[int, int] | None) -> socket.socket:
    """net.passive's listener, or the 425 the client gets when there is none."""
    try:
        return passive.bind_passive(addr, port_range)
    except OSError as e:
        raise unable(e) from None


def _accept_early(session: "Session") -> None:
    """The passive listener is readable while the session waits for a command: take the client's connection
    now (most clients connect before sending RETR/LIST), refuse anyone else's."""
    st = state(session)
    listener = st.listener
    while listener is not None and st.accepted is None:
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.debug("passive accept: %s", e.strerror)
            return
        if _peer_allowed(session, peer):
            st.accepted = sock
            session.ctrl.unwatch(listener.fileno())
        else:
            sock.close()


def set_target(session: "Session", addr: str, port: int) -> None:
    """PORT/EPRT: where the next data connection goes."""
    st = state(session)
    st.reset()
    st.target = (addr, port)


def foreign_allowed(session: "Session") -> bool:
    """AllowForeignAddress: on, off, or a class name (on for sessions of that class)."""
    value = session.conf("AllowForeignAddress")
    if isinstance(value, str):
        return value == session.conn_class
    return bool(value)


# -- opening -----------------------------------------------------------------------------------------------------
def connect_data(session: "Session") -> socket.socket:
    """The connected data socket (non-blocking), from the passive listener or to the PORT target. Consumes the
    preparation. Raises FtpError(425) when no connection can be made, FtpError(426) when ABOR came meanwhile."""
    st = state(session)
    if st.listener is not None:
        listener, st.listener = st.listener, None
        sock, st.accepted = st.accepted, None
        session.ctrl.unwatch(listener.fileno())
        try:
            if sock is None:
                sock = _accept(session, listener)
        finally:
            listener.close()
    elif st.target is not None:
        target, st.target = st.target, None
        sock = _connect(session, target)
    else:
        raise unable("No PORT or PASV command issued first")
    try:
        _data_options(session, sock)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise unable(e) from None
    return sock


def secure(session: "Session", sock: socket.socket) -> Any:
    """The data connection, once its `150` is out, through the session's `DataState.wrap` functions (PROT P's
    TLS handshake: ProFTPD's order). A wrap that fails has closed the socket and raises FtpError (`425`)."""
    for wrap in state(session).wrap:
        sock = wrap(sock)
    return sock


def _data_options(session: "Session", sock: socket.socket) -> None:
    try:
        inet.apply_options(sock, session.server.get("SocketOptions"), session.conf("TCPNoDelay")["data"])
    except OSError as e:
        log.debug("data socket options: %s", e.strerror)


def accept_timeout(session: "Session") -> float:
    """How long the client may take to connect (or to accept): TimeoutStalled, at most a minute."""
    return float(min(session.conf("TimeoutStalled") or ACCEPT_TIMEOUT_CAP, ACCEPT_TIMEOUT_CAP))


def _accept(session: "Session", listener: socket.socket) -> socket.socket:
    """Accept the client's connection. A connection from another IP (port stealing) is closed and the wait goes
    on, unless AllowForeignAddress allows it. ABOR while waiting gives up."""
    deadline = time.monotonic() + accept_timeout(session)
    listener.setblocking(False)
    ctrl = session.ctrl
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise unable(os.strerror(errno.ETIMEDOUT))
        if ctrl.pending():
            ready = [ctrl.sock]
        else:
            ready, _, _ = select.select([listener, ctrl.sock], [], [], left)
        if ctrl.sock in ready and interrupted(session):
            raise FtpError(426, ABORTED)
        if listener not in ready:
            continue
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            raise unable(e) from None
        if not _peer_allowed(session, peer):
            sock.close()
            continue
        return sock


def _peer_allowed(session: "Session", peer: tuple) -> bool:
    """A passive data connection must come from the control connection's peer (no port stealing)."""
    peer_ip = plain_ip(peer[0])
    if peer_ip == session.remote_addr or foreign_allowed(session):
        return True
    log.warning("Refused passive data connection from %s (address mismatch, control peer %s)",
                peer_ip, session.remote_addr)
    return False


def _connect(session: "Session", target: tuple[str, int]) -> socket.socket:
    """Active mode: connect from the control connection's local address to the PORT/EPRT target."""
    addr, port = target
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        local = session.local_addr
        if (":" in local) == (family == socket.AF_INET6):
            sock.bind((local, 0))
        sock.settimeout(accept_timeout(session))
        sock.connect((addr, port))
    except OSError as e:
        sock.close()
        raise unable(e) from None
    return sock
