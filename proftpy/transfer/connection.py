"""Preparing and opening the data connection: a passive listener (PASV/EPSV) within PassivePorts or an active
target (PORT/EPRT), then the connected socket a transfer runs over.

A passive listener is watched while the session waits for commands: a connection from another address (port
stealing) is closed at once, so it cannot fill the listener's backlog, and the client's own early connection is kept
for the next transfer. While the session waits for the client to connect, the control connection is answered
(`watch`); ABOR gives up the wait. What cannot be made is `425 Unable to build data connection: <why>`.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from .. import trace
from ..net import inet, passive
from ..net.connection import plain_ip
from . import pool
from .datastate import state
from .errors import unable
from .watch import until_readable

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

ACCEPT_TIMEOUT_CAP = 60.0     # longest wait for the client to connect (or accept) a data connection


# -- preparing ---------------------------------------------------------------------------------------------------
def passive_port(session: "Session") -> int:
    """PASV/EPSV: the port the client is to connect to: a port of the master's pool reserved for this client
    with PassivePortPool (transfer/pool.py), else a fresh listener's. Raises FtpError(425) when no port is free."""
    if pool.enabled(session):
        state(session).reset()
        return pool.reserve(session)
    return listen_passive(session).getsockname()[1]


def listen_passive(session: "Session") -> socket.socket:
    """A fresh listener on the control socket's local address within PassivePorts (the previous unused one is
    closed first). Raises FtpError(425) when no port is free."""
    st = state(session)
    st.reset()
    sock = passive_listener(session.socket_local, session.conf("PassivePorts"))
    sock.setblocking(False)
    if trace.on: trace.msg("data", 7, "passive listener bound to %s#%d", *sock.getsockname()[:2])
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
            sock, peer = inet.accept(listener)
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
    if trace.on: trace.msg("data", 7, "active data connection will go to %s#%d", addr, port)
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
        _check_passive(st, sock)
    elif st.reservation is not None or st.accepted is not None:        # PassivePortPool
        sock, st.accepted = st.accepted, None
        if sock is None:
            sock = pool.wait(session, accept_timeout(session))
        st.reservation = None
        _check_passive(st, sock)
    elif st.target is not None:
        target, st.target = st.target, None
        sock = _connect(session, target)
    else:
        raise unable("No PORT or PASV command issued first")
    if trace.on: trace.msg("data", 5, "data connection %s#%d <-> %s#%d open", *sock.getsockname()[:2], *sock.getpeername()[:2])
    try:
        _data_options(session, sock)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise unable(e) from None
    return sock


def _check_passive(st, sock: socket.socket) -> None:
    """The module's check of a passive data connection (DataState.on_passive); a refused one is a 425."""
    if st.on_passive is None:
        return
    try:
        st.on_passive(sock)
    except OSError as e:
        sock.close()
        raise unable(e) from None


def secure(session: "Session", sock: socket.socket, command: str) -> Any:
    """The data connection of `command`, once its `150` is out, through the session's `DataState.wrap` functions
    (PROT P's TLS handshake: ProFTPD's order), then its codec (MODE Z). A wrap that fails has closed the socket and
    raises FtpError (`425`)."""
    st = state(session)
    for wrap in st.wrap:
        sock = wrap(sock)
    return sock if st.codec is None else st.codec(sock, command)


def _data_options(session: "Session", sock: socket.socket) -> None:
    """SocketOptions, TCPNoDelay and QoSOptions' dataqos, server-level directives: the session level (kept across
    commands) answers what the server says, without building the server's context again."""
    qos = session.conf("QoSOptions")                   # mod_qos
    try:
        inet.apply_options(sock, session.conf("SocketOptions"), session.conf("TCPNoDelay")["data"])
        if qos is not None:
            inet.set_tos(sock, qos.data)
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
    while True:
        until_readable(session, listener, deadline)
        try:
            sock, peer = inet.accept(listener)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            raise unable(e) from None
        if not _peer_allowed(session, peer):
            sock.close()
            continue
        return sock


def _peer_allowed(session: "Session", peer: tuple) -> bool:
    """A passive data connection must come from the control connection's peer (no port stealing): the client, or
    the proxy its control connection came through (PROXY protocol: the data connection goes through the same
    proxy, and comes from its address)."""
    peer_ip = plain_ip(peer[0])
    if peer_ip in (session.remote_addr, session.socket_peer) or foreign_allowed(session):
        if trace.on: trace.msg("data", 7, "passive data connection accepted from %s#%d", peer_ip, peer[1])
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
