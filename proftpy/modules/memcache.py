"""mod_memcache: where memcached is (MemcacheEngine, MemcacheServers, MemcacheTimeouts, MemcacheLog, MemcacheOptions,
MemcacheReplicas, MemcacheConnectFailures), for the modules that use it (mod_ban's `BanCache memcache`). The link
is MemcacheLink below (a CacheLink, as bancache.py's RedisLink) over proftpy/net/memcache.py (memcached's binary
protocol, which ProFTPD's libmemcached speaks).

What proftpy does not do is refused when the configuration is read, with the reason: several servers (libmemcached
spreads keys over them with its own consistent hashing, which proftpy does not reproduce: nodes would look for a
ban on different servers), replicas (they need several servers), `MemcacheOptions NoBinaryProtocol` (mod_ban's
keys end with a NUL byte, which the text protocol cannot carry: ProFTPD's own bans fail with it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..bancache import CacheDown, CacheLink
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Path, parse_int
from ..module import Module
from ..net.memcache import MAX_KEY, MemcacheError, Memcached
from .redis import host_port

NAME = "mod_memcache.c"
DEFAULT_PORT = 11211


def parse_servers(args: list[str]) -> tuple:
    """`host[:port]`, `[v6]:port` or `/path.sock`: one server (the list may be comma-separated, as ProFTPD's)."""
    words = [w for arg in args for w in arg.split(",") if w.strip()]
    if not words:
        raise ValueError("wrong number of parameters")
    if len(words) > 1:
        raise ValueError("proftpy talks to one memcached server (ProFTPD's libmemcached spreads keys over several "
                         "with its own hashing, which proftpy does not reproduce)")
    word = words[0].strip()
    if word.startswith("/"):
        return (None, 0, word)
    if word.count(":") == 2 and not word.startswith("["):       # host:port:weight (libmemcached's form)
        word = word.rsplit(":", 1)[0]
    try:
        host, port = host_port(word, DEFAULT_PORT)
    except ValueError:
        raise ValueError("unable to parse server parameters") from None
    return (host, port, None)


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
        raise ValueError("replicas need several memcached servers, which proftpy does not support")
    return count


def _failures(args: list[str]) -> int:
    if len(args) != 1 or not args[0].isdigit():
        raise ValueError(f"bad connect failures parameter: {' '.join(args)}")
    return parse_int(args[0], 0)


directives = (
    Directive("MemcacheEngine", Flag, SVG, False, Merge.SERVER, "Let modules use memcached (mod_ban's BanCache "
              "memcache)."),
    Directive("MemcacheServers", Custom(parse_servers, "host[:port]|[v6]:port|/socket"), SVG, None, Merge.SERVER,
              "The memcached server (one: several are refused)."),
    Directive("MemcacheTimeouts", Custom(_timeouts, "connect-millis read-millis write-millis [retry-secs]"), SVG,
              (0.5, 0.5), Merge.SERVER,
              "Longest wait for a connection and for an answer; a client never waits longer for memcached."),
    Directive("MemcacheOptions", Custom(_options, "NoRandomReplicaReads"), SVG, frozenset(), Merge.SERVER,
              "NoRandomReplicaReads (no effect with one server); NoBinaryProtocol is refused."),
    Directive("MemcacheReplicas", Custom(_replicas, "0"), SVG, 0, Merge.SERVER,
              "Accepted as 0 only (replicas need several servers)."),
    Directive("MemcacheConnectFailures", Custom(_failures, "count"), SVG, 0, Merge.SERVER,
              "Accepted for compatibility: a node leaves a failed memcached alone for 2 s after each failure."),
    Directive("MemcacheLog", Path(none_ok=True), SVG, None, Merge.SERVER,
              "Accepted for compatibility: mod_ban's messages about memcached go to BanLog and the SystemLog."),
)


@dataclasses.dataclass(frozen=True)
class MemcacheSettings:
    """`MemcacheServers host[:port]|/path.sock` (one server) and `MemcacheTimeouts connect read write`."""

    host: str | None
    port: int
    path: str | None = None
    connect_timeout: float = 0.5
    io_timeout: float = 0.5

    def describe(self) -> str:
        return self.path or (f"[{self.host}]:{self.port}" if ":" in (self.host or "") else f"{self.host}:{self.port}")


class MemcacheLink(CacheLink):
    """BanCache memcache: memcached's binary protocol, as ProFTPD's libmemcached speaks it: the same keys and JSON
    values as with Redis (proftpy/bancache.py), flags 0, the ban's absolute expiry as the expiration (which
    memcached reads as a Unix time: the entry goes when the ban ends)."""

    kind = "memcached"
    errors = (MemcacheError, OSError)

    def _connect(self) -> Memcached:
        s = self.settings
        return Memcached(s.host, s.port, s.path, s.connect_timeout, s.io_timeout)

    def _run(self, op: str, *args: Any) -> Any:
        mc = self._client
        if len(args[0]) > MAX_KEY:          # (a very long user name) memcached cannot hold it; nor can ProFTPD's
            if op == "count":
                raise CacheDown("key too long for memcached")
            return None
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
    host, port, path = found
    return MemcacheSettings(host, port, path, connect, io)


MODULE = Module(NAME, directives=directives)
