"""PassivePortPool (proftpy's own directive, part of mod_xfer): the master listens on every port of PassivePorts
from the start, and PASV/EPSV reserve one of them for the client instead of binding a fresh one.

Why: binding a port per PASV costs system calls on every transfer, and a client that sends PASV a thousand times
and never connects holds ports of a narrow firewall range for everybody. In the pool a reservation is keyed by
(client address, port) (net/switchboard.py): different clients share port numbers, and a client can only use up
the ports of its own address (its further PASV get 425). Port stealing finds nothing: a connection is handed to
the session whose key holds its source address, and a connection nobody reserved is closed and logged.

The master's side is here: the listeners (in the master's epoll loop), the channel handlers for
`mod_xfer.passive-reserve` / `mod_xfer.passive-release` and the hand-over (`mod_xfer.passive-accepted`, the socket
passed with SCM_RIGHTS); the session's side and the message fields are in transfer/pool.py. A session has one
pending reservation; it ends with its data connection, the next PASV/EPSV (or PORT, ABOR, a refused transfer), or
the session: the scavenger ends the reservations of every reaped child (`core.child-exited`), so a session killed
with SIGKILL leaves nothing behind.

Listeners: with SocketBindTight on, each port on each address of the servers (vhosts) that pool; otherwise each
port on the wildcard address (`::`, both families, when UseIPv6 is on). Each listening socket is one descriptor of
the master: a range of N ports costs N descriptors per address (the master raises its RLIMIT_NOFILE soft limit
when it must). PASV/EPSV replies keep MasqueradeAddress and per-vhost ranges as without the pool.
"""

from __future__ import annotations

import logging
import random
import resource
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag
from ..log import NOTICE
from ..module import ChannelHandler, Child, MasterView, Module
from ..net import inet
from ..net.channel import answer, close_fds
from ..net.connection import plain_ip
from ..net.switchboard import Switchboard
from ..transfer import pool

NAME = "mod_xfer.c"
log = logging.getLogger("proftpy")
BATCH = 64                  # connections accepted per wake-up of one pool port
FD_HEADROOM = 1024          # descriptors the master keeps for everything else (channels, connections, logs)

directives = (
    Directive("PassivePortPool", Flag, SVG, False, Merge.SERVER,
              "proftpy's own: the master listens on every PassivePorts port from the start and PASV/EPSV reserve "
              "one for the client (keyed by client address and port) instead of binding one per PASV."),
)


@dataclass
class PoolState:
    """The master's pool: its listening sockets, the ranges they serve, the reservations."""

    board: Switchboard = field(default_factory=Switchboard)
    listeners: dict[tuple[str, int], socket.socket] = field(default_factory=dict)
    ranges: set[tuple[int, int]] = field(default_factory=set)
    unexpected: int = 0                 # unreserved connections closed since the last log line
    logged: float = 0.0
    scavenging: bool = False            # the core.child-exited listener is in place


# -- which sockets ---------------------------------------------------------------------------------------------------
def wanted(master: MasterView) -> tuple[set[tuple[str, int]], set[tuple[int, int]]]:
    """The (address, port) pairs the pool listens on, and the PassivePorts ranges it serves."""
    config = master.config
    tight = config.main.get("SocketBindTight")
    wildcard = inet.WILDCARD_V6 if any(h == inet.WILDCARD_V6 for h, _ in master.listeners) else inet.WILDCARD_V4
    keys: set[tuple[str, int]] = set()
    ranges: set[tuple[int, int]] = set()
    for server in config.servers:
        ports = server.get("PassivePorts")
        if not server.get("PassivePortPool") or ports is None or not server.get("Port"):
            continue
        ranges.add(ports)
        for host in (server.addresses if tight else [wildcard]):
            keys.update((host, p) for p in range(ports[0], ports[1] + 1))
    return keys, ranges


def _enough_fds(count: int) -> None:
    """Raise the soft RLIMIT_NOFILE so the pool's sockets fit with FD_HEADROOM to spare (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < need:
            raise OSError(f"{count} pooled passive ports need {need} descriptors, the hard limit is {hard}")


def _bind(master: MasterView, st: PoolState, keys: set[tuple[str, int]]) -> list[str]:
    """Listen on the `keys` not yet listened on, stop listening on the others; returns what failed."""
    for key in [k for k in st.listeners if k not in keys]:
        sock = st.listeners.pop(key)
        master.unwatch(sock)
        sock.close()
    failed = []
    backlog = master.config.main.get("TCPBackLog")
    try:
        _enough_fds(len(keys))
    except OSError as e:
        return [f"PassivePortPool: {e.strerror or e}"]
    for host, port in sorted(keys - set(st.listeners)):
        try:
            sock = inet.bind_listener(host, port, backlog)
        except OSError as e:
            failed.append(f"PassivePortPool: cannot listen on {host} port {port}: {e.strerror}")
            continue
        st.listeners[(host, port)] = sock
        master.watch(sock, lambda s=sock, p=port: _accept(master, s, p))
    return failed


# -- the master's hooks ----------------------------------------------------------------------------------------------
def master_init(master: MasterView) -> None:
    st = master.state.get(PoolState)
    keys, st.ranges = wanted(master)
    if not keys:
        return
    failed = _bind(master, st, keys)
    if failed:
        _close(master, st)
        raise SystemExit(f"proftpy: {failed[0]}")
    _scavenger(master, st)
    log.info("PassivePortPool: listening on %d passive port(s)", len(st.listeners))


def master_reload(master: MasterView) -> None:
    st = master.state.get(PoolState)
    keys, st.ranges = wanted(master)
    for problem in _bind(master, st, keys):
        log.error("%s", problem)
    dropped = st.board.release_ports({p for _, p in st.listeners})
    if dropped:
        log.info("PassivePortPool: %d reservation(s) ended by the reload", len(dropped))
    if st.listeners:
        _scavenger(master, st)


def master_stop(master: MasterView) -> None:
    _close(master, master.state.get(PoolState))


def _close(master: MasterView, st: PoolState) -> None:
    for sock in st.listeners.values():
        master.unwatch(sock)
        sock.close()
    st.listeners.clear()


def _scavenger(master: MasterView, st: PoolState) -> None:
    """A reaped session's reservation ends (SIGKILL included). Registered on the master's bus here, once, because
    it needs this master's pool (a declared Listener gets the event's data only)."""
    if not st.scavenging:
        master.events.on("core.child-exited", lambda pid, **_: _scavenge(st, pid))
        st.scavenging = True


def _scavenge(st: PoolState, pid: int) -> None:
    if st.board.release_owner(pid) is not None:
        log.debug("PassivePortPool: reservation of ended session %d removed", pid)


# -- the pool's connections ------------------------------------------------------------------------------------------
def _accept(master: MasterView, listener: socket.socket, port: int) -> None:
    """Hand each connection to the session that reserved (its source address, this port); close the others."""
    st = master.state.get(PoolState)
    for _ in range(BATCH):
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.warning("PassivePortPool: accept on port %d failed: %s", port, e.strerror)
            return
        try:
            _hand_over(master, st, sock, plain_ip(peer[0]), peer[1], port)
        finally:
            sock.close()                # the session has its own copy now (or nobody wanted it)


def _hand_over(master: MasterView, st: PoolState, sock: socket.socket, ip: str, peer_port: int, port: int) -> None:
    res = st.board.take(ip, port)
    child = master.children.get(res.owner) if res is not None else None
    if child is None:
        _unexpected(st, ip, port)
        return
    message = {"type": pool.ACCEPTED, "reservation": res.id, "port": port, "peer": [ip, peer_port]}
    if not master.tell(child, message, [sock.fileno()]):
        log.warning("PassivePortPool: passive connection from %s to port %d lost: session %d unreachable",
                    ip, port, child.pid)


def _unexpected(st: PoolState, ip: str, port: int) -> None:
    """Logged at once, then at most once a second with a count (a scan of the range is not a log flood)."""
    st.unexpected += 1
    now = time.monotonic()
    if now - st.logged >= 1.0:
        log.log(NOTICE, "Unexpected passive data connection from %s to port %d (nothing reserved for it), "
                        "closed%s", ip, port, f" ({st.unexpected} in all)" if st.unexpected > 1 else "")
        st.unexpected, st.logged = 0, now


# -- channel handlers ------------------------------------------------------------------------------------------------
def reserve(master: MasterView, child: Child, message: dict[str, Any], fds: list[int]) -> None:
    """`mod_xfer.passive-reserve` (fields in transfer/pool.py). Everything in the message is checked: a session
    runs as its user; the client address comes from the master's own record of the session."""
    close_fds(fds)
    st = master.state.get(PoolState)
    ports, addr = message.get("ports"), message.get("address")
    if (not isinstance(ports, list) or len(ports) != 2 or not all(type(p) is int for p in ports)
            or tuple(ports) not in st.ranges or not isinstance(addr, str)):
        master.tell(child, answer(message, {"type": pool.RESERVED, "error": "no pooled passive ports here"}))
        return
    lo, hi = ports
    addr = plain_ip(addr)
    count = hi - lo + 1
    start = random.randrange(count)                # a random first port, each tried once (as net/passive.py)
    ports = (lo + (start + i) % count for i in range(count))
    usable = (p for p in ports if _listening(st, addr, p))
    client = child.remote[0]
    res = st.board.reserve(child.pid, (child.peer or client, client), usable)
    if res is None:
        log.warning("PassivePortPool: no free port in PassivePorts range %d-%d for %s (consider a larger range)",
                    lo, hi, child.peer or client)
        reply = {"type": pool.RESERVED, "error": f"no free port in PassivePorts range {lo}-{hi} for {client}"}
    else:
        reply = {"type": pool.RESERVED, "reservation": res.id, "port": res.port}
    master.tell(child, answer(message, reply))


def _listening(st: PoolState, addr: str, port: int) -> bool:
    listeners = st.listeners
    return ((addr, port) in listeners or (inet.WILDCARD_V6, port) in listeners
            or (":" not in addr and (inet.WILDCARD_V4, port) in listeners))


def release(master: MasterView, child: Child, message: dict[str, Any], fds: list[int]) -> None:
    """`mod_xfer.passive-release`: the session no longer waits for that reservation."""
    close_fds(fds)
    res_id = message.get("reservation")
    if type(res_id) is int:
        master.state.get(PoolState).board.release(child.pid, res_id)


def problems(config) -> list[tuple[str, bool]]:
    """`proftpy -t`: PassivePortPool without a range does nothing."""
    return [(f"{s.name or 'server'}: PassivePortPool on without PassivePorts: PASV/EPSV bind a port each", False)
            for s in config.servers if s.get("PassivePortPool") and s.get("PassivePorts") is None]


MODULE = Module(NAME, directives=directives, master_init=master_init, master_reload=master_reload,
                master_stop=master_stop, check=problems,
                channel_handlers=(ChannelHandler(pool.RESERVE, reserve), ChannelHandler(pool.RELEASE, release)),
                notice_handlers=(ChannelHandler(pool.ACCEPTED, pool.accepted),))
