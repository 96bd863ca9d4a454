"""Free loopback ports for the servers the tests start.

A port is asked of the kernel (a bind to port 0) and closed again, so another process could get the same number
before the server binds it. Two guards: a port is never returned twice in one run (the kernel may give a
just-closed port again), and under pytest-xdist each worker only hands out the numbers of its own residue
(`port // 2 % workers == worker`: Linux gives bind() even ports and connect() odd ones, so the port itself would
leave a second worker nothing), so two workers never start servers on the same port."""

from __future__ import annotations

import os
import socket

_GIVEN: set[tuple[int, int]] = set()
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
_INDEX = int(_WORKER) if _WORKER.isdigit() else 0
_COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A TCP (or, with `kind=socket.SOCK_DGRAM`, UDP) port of `host` free now and not handed out before."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(10_000):
        with socket.socket(family, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port // 2 % _COUNT == _INDEX and (kind, port) not in _GIVEN:
            _GIVEN.add((kind, port))
            return port
    raise RuntimeError("no free port left for this worker")
