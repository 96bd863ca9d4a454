"""Passive port choice (PASV/EPSV) within PassivePorts.

The search starts at a random port of the range and tries every port once. When the whole range is busy this
raises `RangeBusy` (the client gets `425 Unable to build data connection: ...` from transfer/connection.py) — a
deliberate difference from ProFTPD, which then falls back to a kernel-chosen port that a firewall opened only for
the range would block (proftpd issues #1171, #1342, #2024). SO_REUSEADDR lets a port whose previous connections
linger in TIME_WAIT be listened on again.

Without PassivePorts the port is still one of the kernel's ephemeral range (ip_local_port_range, less
ip_local_reserved_ports), but picked at random here and bound by number, not by bind(0): the kernel's own search
passes over every port that has a socket in TIME_WAIT, and the server closes each data connection first, so on a
busy server (some 7000 passive transfers a minute) bind(0) took 1.4 ms of kernel time per PASV against 10 µs for a
port named (docs/performance.md). bind(0) stays the fallback.
"""

from __future__ import annotations

import errno
import logging
import random
import socket
from typing import NamedTuple

log = logging.getLogger("proftpy")


class RangeBusy(OSError):
    """Every port of the PassivePorts range is taken."""

    def __init__(self, lo: int, hi: int):
        super().__init__(errno.EADDRINUSE, f"no free port in PassivePorts range {lo}-{hi}")


class Ephemeral(NamedTuple):
    """The kernel's ephemeral ports: what bind(0) would choose from."""

    lo: int
    hi: int
    reserved: tuple[tuple[int, int], ...] = ()     # ip_local_reserved_ports, as ranges

    def allows(self, port: int) -> bool:
        return self.lo <= port <= self.hi and not any(a <= port <= b for a, b in self.reserved)


def read_ephemeral(range_path: str = "/proc/sys/net/ipv4/ip_local_port_range",
                   reserved_path: str = "/proc/sys/net/ipv4/ip_local_reserved_ports") -> Ephemeral:
    """The sysctls (Linux's defaults when they cannot be read: 32768-60999, nothing reserved)."""
    try:
        with open(range_path) as f:
            lo, hi = (int(w) for w in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    reserved = []
    try:
        with open(reserved_path) as f:
            text = f.read().strip()
        for part in filter(None, text.split(",")):
            a, _, b = part.partition("-")
            reserved.append((int(a), int(b or a)))
    except (OSError, ValueError):
        reserved = []
    return Ephemeral(min(lo, hi), max(lo, hi), tuple(reserved))


EPHEMERAL = read_ephemeral()    # read once, when the master (or inetd's process) starts: sessions chroot later
ANY_TRIES = 16                  # random ports tried before bind(0)


def _listener(addr: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, port))
        sock.listen(1)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def candidate_ports(lo: int, hi: int, rng: random.Random | None = None) -> list[int]:
    """Every port of [lo, hi] once, starting at a random one and wrapping around."""
    count = hi - lo + 1
    start = (rng or random).randrange(count)
    return [lo + (start + i) % count for i in range(count)]


def bind_passive(addr: str, port_range: tuple[int, int] | None, rng: random.Random | None = None) -> socket.socket:
    """A listening socket on `addr` with a port from `port_range` (or an ephemeral port when None: `bind_any`).
    Raises OSError (RangeBusy when every port of the range is taken)."""
    if port_range is None:
        return bind_any(addr, rng)
    lo, hi = port_range
    for port in candidate_ports(lo, hi, rng):
        try:
            return _listener(addr, port)
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
    log.warning("unable to find open port in PassivePorts range %d-%d (consider a larger range)", lo, hi)
    raise RangeBusy(lo, hi)


def bind_any(addr: str, rng: random.Random | None = None, ephemeral: Ephemeral | None = None) -> socket.socket:
    """A listener on an ephemeral port picked at random (see the module's docstring), else bind(0)."""
    eph = ephemeral or EPHEMERAL
    pick = (rng or random).randint
    for _ in range(ANY_TRIES):
        port = pick(eph.lo, eph.hi)
        if not eph.allows(port):
            continue
        try:
            return _listener(addr, port)
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    return _listener(addr, 0)
