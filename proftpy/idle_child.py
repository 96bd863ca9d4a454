"""An idle child of the pre-fork pool (prefork.py has the sizes and the hand-over message): what it does while it
waits for the master to hand it a connection. It runs niced so its setup does not slow the sessions starting
meanwhile, warms up once quiet (copies ahead the pages a session's start would copy on the client's time), and turns
the HANDOVER message back into a Connection. The master's side (forking, handing over, retiring) is in master.py."""

from __future__ import annotations

import logging
import os
import select
import socket
from typing import Any, Callable

from . import precopy, prefork
from .config.tree import Config
from .module import ModuleSet, States
from .net import inet
from .net.channel import BadMessage, Channel, ChannelClosed, close_fds
from .net.connection import Connection
from .session import Session

log = logging.getLogger("proftpy")
IDLE_NICENESS = 10      # added to an idle child's niceness until it is handed a connection
WARM_AFTER = 0.05       # seconds an idle child waits for a connection before it warms up (warm_up)
WARM_SERVERS = 16       # servers (vhosts) whose session start an idle child rehearses, at most


def unnice(pid: int) -> None:
    """Give an idle child the master's priority back before it is handed a connection (it runs niced: see
    `yield_cpu`); only root may, and only root's idle children are niced."""
    if os.geteuid() == 0:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0))
        except OSError:
            pass            # gone already: the hand-over fails and tells why


def readable(channel: Channel, timeout: float) -> bool:
    return bool(select.select([channel.sock], [], [], timeout)[0])


def warm_up(config: Config, loaded: ModuleSet, shared: States, serve: Callable[..., None],
            interrupted: Callable[[], bool]) -> None:
    """In an idle child: copy now the pages a session's start would copy after the client connected (each a page
    fault on the client's time; docs/performance.md): run the part of a session's start that has no effect
    outside this process (the Session object, its event wiring, configuration lookups, the greeting) on a
    throwaway socket pair, once per server, then walk what the modules' session start may use (precopy.py),
    until `interrupted()` (a connection came). It costs about as much CPU as a session's start, so it runs only in
    an idle child that waited WARM_AFTER seconds for a connection: under a stream of connections, idle children
    are taken as they come and skip it (they still save the client the fork)."""
    a, b = socket.socketpair()
    try:
        for server in config.servers[:WARM_SERVERS]:
            conn = Connection(a, ("127.0.0.1", 21), ("127.0.0.1", 1))
            session = Session(conn, server, config, loaded, shared, None)
            session.events.add_all(loaded.session_wiring(config))
            session.conf("TimeoutIdle")
            loaded.rehearse(session)
            loaded.greeting(session).format()
    finally:
        a.close()
        b.close()
    rehearse_handover()
    roots: list[Any] = [Session, serve, wait_for_connection, Channel.recv]   # serve: master.serve_connection
    for mod in loaded.modules:
        roots += [mod.transport, mod.session_init, mod.greeting] + [lsn.handler for lsn in mod.listeners]
    precopy.copy_ahead(roots, interrupted)


def yield_cpu() -> int | None:
    """An idle child's setup runs niced (IDLE_NICENESS more), so that it does not slow down the sessions starting
    meanwhile; returns the priority to restore at the hand-over, or None when it could not be restored (only
    root may lower its niceness again: without root the child keeps the master's)."""
    if os.geteuid() != 0:
        return None
    priority = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, min(19, priority + IDLE_NICENESS))
    return priority


def wait_for_connection(channel: Channel) -> Connection | None:
    """In an idle child: block until the master hands over a connection; None when the channel ends first."""
    while True:
        try:
            got = channel.recv(timeout=None)
        except ChannelClosed:
            return None
        except BadMessage as e:
            log.warning("idle child: channel message refused: %s", e)
            continue
        if got is None:
            continue
        conn = connection_of(*got)
        if conn is not None:
            return conn


def connection_of(message: dict, fds: list[int]) -> Connection | None:
    """The connection a HANDOVER message brings; None (its descriptors closed, a warning logged) for any other
    message or a malformed one."""
    if message["type"] == prefork.HANDOVER and len(fds) == 1:
        try:
            local, remote, sock_local, sock_remote = prefork.addresses(message)
        except ValueError as e:
            log.warning("idle child: bad hand-over message (%s), connection closed", e)
            close_fds(fds)
            return None
        sock = socket.socket(fileno=fds[0])
        return Connection(inet.low_fd(sock), local, remote, message["notes"], sock_local, sock_remote)
    log.warning("idle child: unexpected %r message, ignored", message["type"])
    close_fds(fds)
    return None


def rehearse_handover() -> None:
    """Hand this process a HANDOVER over a channel of its own and take it apart as `wait_for_connection` does: the
    pages that decoding touches (the json module's among them, which precopy does not walk) are copied now, not
    between the client's connect and its greeting (some 20 page faults, 0.2 ms: docs/performance.md)."""
    ours, theirs = Channel.pair()
    a, b = socket.socketpair()
    try:
        addr = ("127.0.0.1", 21)
        ours.send(prefork.handover_message(addr, addr, addr, addr, {}), [a.fileno()])
        got = theirs.recv(timeout=1.0)
        conn = connection_of(*got) if got is not None else None
        if conn is not None:
            conn.close()
    finally:
        ours.close()
        theirs.close()
        a.close()
        b.close()
