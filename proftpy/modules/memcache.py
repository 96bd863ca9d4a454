"""mod_memcache: where memcached is (MemcacheEngine, MemcacheServers, MemcacheTimeouts, MemcacheLog, MemcacheOptions,
MemcacheReplicas, MemcacheConnectFailures), for the modules that use it (mod_ban's `BanCache memcache`, mod_tls's
`TLSSessionCache memcache:`). The link is MemcacheLink below (a CacheLink, as bancache.py's RedisLink) over
proftpy/net/memcache.py (memcached's binary protocol, which ProFTPD's libmemcached speaks); with several servers a
key goes to the one libmemcached would choose for ProFTPD (proftpy/net/memcache_ring.py), and with MemcacheReplicas
N its copies to the N servers after it in the list, as libmemcached's NUMBER_OF_REPLICAS places them for ProFTPD.

What proftpy does not do is refused when the configuration is read, with the reason: `MemcacheOptions
NoBinaryProtocol` (mod_ban's keys end with a NUL byte, which the text protocol cannot carry: ProFTPD's own bans fail
with it).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any

from ..bancache import CacheDown, CacheLink
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Path, parse_int
from ..module import Module
from ..net.memcache import MAX_KEY, MemcacheError, Memcached
from ..net.memcache_ring import Ring
from .redis import host_port

log = logging.getLogger("proftpy.memcache")

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
    return parse_int(args[0], 0)


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
              "NoRandomReplicaReads: a read asks a key's own server first, not a random copy (no effect without "
              "replicas); NoBinaryProtocol is refused."),
    Directive("MemcacheReplicas", Custom(_replicas, "count"), SVG, 0, Merge.SERVER,
              "Copies of each key on the next servers of the list (at most as many as servers), as libmemcached "
              "places them for ProFTPD: a write and a delete go to all, a read falls back to a copy when a server "
              "cannot be reached."),
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
    replicas: int = 0                   # MemcacheReplicas, at most the number of servers (as ProFTPD caps it)
    random_reads: bool = True           # without MemcacheOptions NoRandomReplicaReads

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
        self.configured: list[Memcached | None] = list(clients)     # by configured position; None: left out
        self.full_ring = Ring(names)
        if len(clients) > 1:
            alive = [i for i, c in enumerate(clients) if _answers(c)]
            if alive:
                self.configured = [c if i in alive else None for i, c in enumerate(clients)]
                clients, names = [clients[i] for i in alive], [names[i] for i in alive]
        self.clients = clients
        self.ring = Ring(names)
        self.replicas, self.random_reads = s.replicas, s.random_reads
        self.left_out = len(clients) < len(self.configured)

    def for_key(self, key: bytes) -> Memcached:
        return self.clients[self.ring.server_for(key)]

    def copies(self, key: bytes) -> list[Memcached]:
        """Where a SET or DELETE goes: the key's server first, then its replicas."""
        return [self.clients[i] for i in self.ring.copies(key, self.replicas)]

    def readers(self, key: bytes) -> list[Memcached]:
        """Where a GET goes, in order, until one can be asked."""
        start = random.randint(0, self.replicas) if self.random_reads and self.replicas else 0
        return [self.clients[i] for i in self.ring.read_order(key, self.replicas, start)]

    def written_while_all_up(self, key: bytes, asked: list[Memcached]) -> list[Memcached]:
        """With servers left out: the servers that hold the key's copies when every configured server is up (where
        a node that saw them all wrote it), those that answer and were not asked yet."""
        found = (self.configured[i] for i in self.full_ring.copies(key, self.replicas))
        return [mc for mc in dict.fromkeys(found) if mc is not None and mc not in asked]

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
        servers = self._client
        if not servers.replicas:
            mc = servers.for_key(args[0])
            if op == "get":
                return mc.get(*args)
            if op == "put":
                key, value, expires = args
                return mc.set(key, value, expires)
            if op == "delete":
                return mc.delete(*args)
            return mc.incr(*args)
        if op == "get":
            value, asked = _first_answer(servers.readers(args[0]), args[0])
            if value is None and servers.left_out:       # a server is down: its keys moved, their copies did not
                for mc in servers.written_while_all_up(args[0], asked):
                    try:
                        value = mc.get(args[0])
                    except MemcacheError:
                        continue
                    if value is not None:
                        break
            return value
        if op == "put":
            key, value, expires = args
            first, *others = servers.copies(key)
            first.set(key, value, expires)       # the key's own server must take it; then the copies, as they can
            for mc in others:
                _quietly(mc, "SET", lambda: mc.set(key, value, expires))
            return None
        if op == "delete":
            first, *others = servers.copies(args[0])
            for mc in others:                    # every copy goes, even when the key's own server is down
                _quietly(mc, "DELETE", lambda: mc.delete(args[0]))
            return first.delete(args[0])
        return servers.for_key(args[0]).incr(*args)     # counters are not replicated (libmemcached)


def _first_answer(readers: list[Memcached], key: bytes) -> tuple[bytes | None, list[Memcached]]:
    """The answer of the first server that can be asked (a miss is an answer) and the servers asked; the last
    failure when none can be."""
    failure: MemcacheError | None = None
    for n, mc in enumerate(readers):
        try:
            return mc.get(key), readers[:n + 1]
        except MemcacheError as e:
            failure = e
    assert failure is not None
    raise failure


def _quietly(mc: Memcached, what: str, call) -> None:
    """A write to a replica: libmemcached sends it without waiting for an answer and ignores its failure."""
    try:
        call()
    except MemcacheError as e:
        log.debug("memcached %s:%s: replica %s failed: %s", mc.path or mc.host, mc.port, what, e)


def settings_for(server) -> MemcacheSettings | None:
    """The memcached a server uses, or None (MemcacheEngine off, or no MemcacheServers)."""
    if not server.get("MemcacheEngine"):
        return None
    found = server.get("MemcacheServers")
    if found is None:
        return None
    connect, io = server.get("MemcacheTimeouts")
    return MemcacheSettings(found, connect, io, min(server.get("MemcacheReplicas"), len(found)),
                            "NoRandomReplicaReads" not in server.get("MemcacheOptions"))


MODULE = Module(NAME, directives=directives)
