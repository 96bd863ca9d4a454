"""mod_redis: where Redis is (RedisEngine, RedisServer, RedisSentinel, RedisTimeouts, RedisOptions, RedisLog), for
the modules that use it (mod_ban's `BanCache redis`, TLSSessionCache `redis:`, mod_wrap2's `redis:` tables). The
client is redis-py; the link itself is proftpy/bancache.py (`RedisLink`): every call bounded by RedisTimeouts, no retries, a lost Redis logged once.
"""
from __future__ import annotations

from ..bancache import RedisSentinel, RedisServer, RedisSettings, settle_redis
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Options, Path, parse_bool
from ..module import Module

NAME = "mod_redis.c"
DEFAULT_PORT, SENTINEL_PORT = 6379, 26379


def host_port(text: str, default: int) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, `[v6]`, `host`."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"badly formatted address '{text}'")
        port = rest[1:] if rest else str(default)
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, str(default)
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"badly formatted address '{text}'")
    return host, int(port)


def _ssl_words(words: list[str]) -> dict:
    """The `ssl:true ssl-ca:PATH ssl-cert:PATH ssl-key:PATH` words of RedisServer and RedisSentinel."""
    out: dict = {}
    for w in words:
        key, sep, value = w.partition(":")
        if key == "ssl" and sep:
            out["ssl"] = parse_bool(value)
        elif key in ("ssl-ca", "ssl-cert", "ssl-key") and sep and value:
            out[key.replace("-", "_")] = value
        else:
            raise ValueError(f"unknown parameter '{w}'")
    return out


def parse_server(args: list[str]) -> RedisServer:
    if not args:
        raise ValueError("expected host:port, [v6]:port or a socket path")
    rest = list(args[1:])
    auth: list[str | None] = []
    while rest and len(auth) < 3 and ":" not in rest[0] and not rest[0].startswith("ssl"):
        auth.append(rest.pop(0) or None)
    auth += [None] * (3 - len(auth))
    username, password, db = auth
    if db is not None and not db.isdigit():
        raise ValueError(f"database index '{db}' is not a number")
    ssl = _ssl_words(rest)
    if args[0].startswith("/"):
        return RedisServer(None, 0, path=args[0], username=username, password=password, db=int(db or 0), **ssl)
    host, port = host_port(args[0], DEFAULT_PORT)
    return RedisServer(host, port, username=username, password=password, db=int(db or 0), **ssl)


def parse_sentinel(args: list[str]) -> RedisSentinel:
    words = list(args)
    master = None
    if len(words) >= 3 and words[-2].lower() == "master":
        master = words[-1]
        words = words[:-2]
    addrs = [host_port(w, SENTINEL_PORT) for w in words if not w.startswith("ssl")]
    _ssl_words([w for w in words if w.startswith("ssl")])
    if not addrs:
        raise ValueError("expected at least one sentinel address")
    return RedisSentinel(tuple(addrs), master)


def _timeouts(args: list[str]) -> tuple[float, float]:
    if len(args) != 2:
        raise ValueError("expected connect-millis io-millis")
    out = []
    for what, word in zip(("connect", "IO"), args):
        if not word.isdigit():
            raise ValueError(f"badly formatted {what} timeout value: {word}")
        out.append(int(word) / 1000)
    return out[0], out[1]


directives = (
    Directive("RedisEngine", Flag, SVG, False, Merge.SERVER,
              "Let modules use Redis (BanCache redis, TLSSessionCache redis:, WrapTables redis:)."),
    Directive("RedisServer", Custom(parse_server, "host:port|[v6]:port|/socket [user] [password] [db] "
                                    "[ssl:on] [ssl-ca:path] [ssl-cert:path] [ssl-key:path]"), SVG, None,
              Merge.SERVER, "The Redis server (and its credentials and database index)."),
    Directive("RedisSentinel", Custom(parse_sentinel, "host[:port] ... [master name]"), SVG, None, Merge.SERVER,
              "Sentinels that tell where the Redis master is."),
    Directive("RedisTimeouts", Custom(_timeouts, "connect-millis io-millis"), SVG, (0.5, 0.5), Merge.SERVER,
              "Longest wait for a connection and for an answer; a client never waits longer for Redis."),
    Directive("RedisOptions", Options(("NoReconnect",), "RedisOption"), SVG, frozenset(), Merge.SERVER,
              "NoReconnect: a process that lost Redis does not try again."),
    Directive("RedisLog", Path(none_ok=True), SVG, None, Merge.SERVER, "File for mod_redis's messages."),
)


def settings_for(server) -> RedisSettings | None:
    """The Redis a server uses, or None (RedisEngine off, or no RedisServer/RedisSentinel)."""
    if not server.get("RedisEngine"):
        return None
    srv, sentinel = server.get("RedisServer"), server.get("RedisSentinel")
    if srv is None and sentinel is None:
        return None
    connect, io = server.get("RedisTimeouts")
    return RedisSettings(srv, sentinel, connect, io, "NoReconnect" not in server.get("RedisOptions"),
                         server.get("RedisLog"))


def preload(master) -> None:
    """master_preload: when a server uses Redis, redis-py made ready once for every session (settle_redis)."""
    if any(settings_for(s) is not None for s in master.config.servers):
        settle_redis()


MODULE = Module(NAME, directives=directives, master_preload=preload)
