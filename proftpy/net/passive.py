"""Passive port choice (PASV/EPSV) within PassivePorts.

The search starts at a random port of the range and tries every port once. When the whole range is busy this
raises `RangeBusy` (the client gets `425 Unable to build data connection: ...` from transfer/connection.py) — a
deliberate difference from ProFTPD, which then falls back to a kernel-chosen port that a firewall opened only for
the range would block (proftpd issues #1171, #1342, #2024). SO_REUSEADDR lets a port whose previous connections
linger in TIME_WAIT be listened on again.
"""

from __future__ import annotations

import errno
import logging
import random
import socket

log = logging.getLogger("proftpy")


class RangeBusy(OSError):
    """Every port of the PassivePorts range is taken."""

    def __init__(self, lo: int, hi: int):
        super().__init__(errno.EADDRINUSE, f"no free port in PassivePorts range {lo}-{hi}")


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
    """A listening socket on `addr` with a port from `port_range` (or any port when None). Raises OSError
    (RangeBusy when every port of the range is taken)."""
    if port_range is None:
        return _listener(addr, 0)
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
