"""mod_memcache: where memcached is (MemcacheEngine, MemcacheServers, MemcacheTimeouts, MemcacheLog, MemcacheOptions,
MemcacheReplicas, MemcacheConnectFailures), for the modules that use it (mod_ban's `BanCache memcache`, mod_tls's
`TLSSessionCache memcache:`). The link is MemcacheLink below (a CacheLink, as bancache.py's RedisLink) over
proftpy/net/memcache.py (memcached's binary protocol, which ProFTPD's libmemcached speaks); with several servers a
key goes to the one libmemcached would choose for ProFTPD (proftpy/net/memcache_ring.py).

What proftpy does not do is refused when the configuration is read, with the reason: replicas, `MemcacheOptions
NoBinaryProtocol` (mod_ban's keys end with a NUL byte, which the text protocol cannot carry: ProFTPD's own bans fail
with it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..bancache import CacheDown, CacheLink
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Path, parse_int
from ..module import Module
from ..net.memcache import MAX_KEY, MemcacheError, Memcached
from ..net.memcache_ring import Ring
from .redis import host_port

NAME = "mod_memcache.c"
DEFAULT_PORT = 11211


def parse_servers(args: list[str]) -> tuple:
    """`host[:port]`, `[v6]:port` or `/path.sock`, several (words or comma-separated, as ProFTPD's), in order: each
    `(host, port, path)`. A libmemcached weight (`host:port:weight`) is read and left: ProFTPD's distribution does
    not use it."""
    words = [w.strip() for arg in args for w in arg.split(",") if w.strip()]
    if not words:
        raise ValueError("wrong number of parameters")
    out = []
    for word in words:
        if word.startswith("/"):
            out.append((None, 0, word))
            continue
        if word.count(":") == 2 and not word.startswith("["):       # host:port:weight (libmemcached's form)
            word = word.rsplit(":", 1)[0]
        try:
            host, port = host_port(word, DEFAULT_PORT)
        except ValueError:
            raise ValueError(f"unable to parse server parameters '{word}'") from None
        out.append((host, port, None))
    return tuple(out)


def _timeouts(args: list[str]) -> tuple[float, float]:
    """`connect-millis read-millis write-millis [retry-secs]`: the connect timeout and the longer of read/write
    (proftpy has one I/O timeout per request)."""
    if not 3 <= len(args) <= 4:
        raise ValueError("wrong number of parameters")
    millis = []
    for what, word in zip(("connect", "read", "write", "retry"), args):
        if not word.isdigit():
            raise ValueError(f"badly formatted {what} timeout value: {word}")
        millis.append(int(word))
    return millis[0] / 1000, max(millis[1], millis[2]) / 1000


def _options(args: list[str]) -> frozenset:
    if not args:
        raise ValueError("wrong number of parameters")
    for word in args:
        if word == "NoBinaryProtocol":
            raise ValueError("NoBinaryProtocol is not supported: proftpy speaks memcached's binary protocol only "
                             "(mod_ban's keys cannot be sent in the text protocol)")
        if word != "NoRandomReplicaReads":
            raise ValueError(f"unknown MemcacheOption '{word}'")
    return frozenset(args)


def _replicas(args: list[str]) -> int:
    if len(args) != 1 or not args[0].isdigit():
        raise ValueError(f"bad replica parameter: {' '.join(args)}")
    count = parse_int(args[0], 0)
    if count:
        raise ValueError("replicas are not supported: proftpy stores each key on one memcached server")
    return count


def _failures(args: list[str]) -> int:
    if len(args) != 1 or not args[0].isdigit():
        raise ValueError(f"bad connect failures parameter: {' '.join(args)}")
    return parse_int(args[0], 0)


directives = (
    Directive("MemcacheEngine", Flag, SVG, False, Merge.SERVER, "Let modules use memcached (mod_ban's BanCache "
              "memcache)."),
    Directive("MemcacheServers", Custom(parse_servers, "host[:port]|[v6]:port|/socket ..."), SVG, None, Merge.SERVER,
              "The memcached servers; with several, each key on the one ProFTPD's libmemcached would choose."),
    Directive("MemcacheTimeouts", Custom(_timeouts, "connect-millis read-millis write-millis [retry-secs]"), SVG,
              (0.5, 0.5), Merge.SERVER,
              "Longest wait for a connection and for an answer; a client never waits longer for memcached."),
    Directive("MemcacheOptions", Custom(_options, "NoRandomReplicaReads"), SVG, frozenset(), Merge.SERVER,
              "NoRandomReplicaReads (no effect without replicas); NoBinaryProtocol is refused."),
    Directive("MemcacheReplicas", Custom(_replicas, "0"), SVG, 0, Merge.SERVER,
              "Accepted as 0 only (replicas are not supported)."),
    Directive("MemcacheConnectFailures", Custom(_failures, "count"), SVG, 0, Merge.SERVER,
              "Accepted for compatibility: a node leaves a failed memcached alone for 2 s after each failure."),
    Directive("MemcacheLog", Path(none_ok=True), SVG, None, Merge.SERVER,
              "Accepted for compatibility: mod_ban's messages about memcached go to BanLog and the SystemLog."),
)


@dataclasses.dataclass(frozen=True)
class MemcacheSettings:
    """`MemcacheServers` (each `(host, port, path)`, in order) and `MemcacheTimeouts connect read write`."""

    servers: tuple[tuple[str | None, int, str | None], ...]
    connect_timeout: float = 0.5
    io_timeout: float = 0.5

    def describe(self) -> str:
        return ", ".join(path or (f"[{host}]:{port}" if ":" in (host or "") else f"{host}:{port}")
                         for host, port, path in self.servers)


class _Servers:
    """A process's connections to its memcached servers. With several, each is pinged first and those that answer
    make the ring (as ProFTPD's sessions do when they connect: a server that is down is left out and its keys go
    to the others; all of them when none answers); the ring then chooses the server of each key."""

    def __init__(self, settings: MemcacheSettings):
        s = settings
        clients = [Memcached(host, port, path, s.connect_timeout, s.io_timeout) for host, port, path in s.servers]
        names = [(path or host or "", port) for host, port, path in s.servers]
        if len(clients) > 1:
            alive = [i for i, c in enumerate(clients) if _answers(c)]
            if alive:
                clients, names = [clients[i] for i in alive], [names[i] for i in alive]
        self.clients = clients
        self.ring = Ring(names)

    def for_key(self, key: bytes) -> Memcached:
        return self.clients[self.ring.server_for(key)]

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _answers(client: Memcached) -> bool:
    try:
        client.noop()
    except MemcacheError:
        return False
    return True


class MemcacheLink(CacheLink):
    """BanCache memcache: memcached's binary protocol, as ProFTPD's libmemcached speaks it: the same keys and JSON
    values as with Redis (proftpy/bancache.py), flags 0, the ban's absolute expiry as the expiration (which
    memcached reads as a Unix time: the entry goes when the ban ends). A server that fails makes the link down
    (for 2 s, as any failure), the others included."""

    kind = "memcached"
    errors = (MemcacheError, OSError)

    def _connect(self) -> _Servers:
        return _Servers(self.settings)

    def _run(self, op: str, *args: Any) -> Any:
        if len(args[0]) > MAX_KEY:          # (a very long user name) memcached cannot hold it; nor can ProFTPD's
            if op == "count":
                raise CacheDown("key too long for memcached")
            return None
        mc = self._client.for_key(args[0])
        if op == "get":
            return mc.get(*args)
        if op == "put":
            key, value, expires = args
            return mc.set(key, value, expires)
        if op == "delete":
            return mc.delete(*args)
        return mc.incr(*args)


def settings_for(server) -> MemcacheSettings | None:
    """The memcached a server uses, or None (MemcacheEngine off, or no MemcacheServers)."""
    if not server.get("MemcacheEngine"):
        return None
    found = server.get("MemcacheServers")
    if found is None:
        return None
    connect, io = server.get("MemcacheTimeouts")
    return MemcacheSettings(found, connect, io)


MODULE = Module(NAME, directives=directives)
