"""The shared ban cache (BanCache redis, BanCache memcache): ProFTPD's keys and JSON values, and the links to Redis
and memcached (`CacheLink`: get, put, delete, count) that never make anyone wait past their timeouts.

Keys and values are byte for byte what ProFTPD's mod_ban writes (reference modules.md §3b), so a ban written here
stops a client at a ProFTPD node sharing the Redis or memcached server, and the other way round:

    key    b"mod_ban." + {"ban_type_id":2,"ban_name":"10.0.0.7"} + b"\\0"
    value  {"version":2,"update_ts":...,"ip_addr":"...","port":2121,"ban_type":"host ban","ban_name":"10.0.0.7",
            "ban_reason":"...","ban_message":"...","expires_ts":...,"server_id":1} + b"\\0"

written with Redis's `SETEX key <expires_ts> value` (ProFTPD passes the absolute expiry as the TTL: readers check
`expires_ts`), or `SET` for a ban that never expires; with memcached's binary SET (flags 0, the absolute expiry as
the expiration, which memcached takes for a Unix time; ProFTPD's libmemcached adds the same `mod_ban.` prefix).
The JSON text is ccan-json's (ProFTPD's library): compact, members in that order, numbers as `%.16g`, control
characters below 0x1F as `\\uXXXX` (upper-case hex), other characters as they are.

memcached without `BanCacheOptions UseJSON` (ProFTPD's default there; Redis always uses JSON) holds ProFTPD's
binary TPL images instead (troydhanson's tpl library, as ProFTPD 1.3.8 packs them, little-endian, NULL strings
allowed):

    key    b"mod_ban." + b"tpl" 0x02 <u32 size> b"vs\\0" <u16 type> <u32 len+1> name
    value  b"tpl" 0x02 <u32 size> b"S(iusiisssui)\\0" <i32 version> <u32 update_ts> ip_addr <i32 port> <i32 type>
           name reason message <u32 expires_ts> <i32 server_id>      (each string as <u32 len+1> bytes; 0: NULL)

Beyond ProFTPD (BanCacheOptions ShareEventCounts): BanOnEvent counters live in the cache too, under
`proftpy.mod_ban.event.` + {"event":...,"sid":...,"source":...}, counted with INCR (memcached: INCREMENT with an
initial value) and expiring with the rule's window, so failures spread over several nodes still reach the
threshold.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import struct
import time
from typing import Any

from .tpl import MAGIC as TPL_MAGIC, fields as tpl_fields, image as tpl_image, string as tpl_string
from .bantable import CLASS, HOST, USER, USER_HOST
from .log import NOTICE

log = logging.getLogger("proftpy")

PREFIX = b"mod_ban."
COUNT_PREFIX = b"proftpy.mod_ban.event."
VALUE_VERSION = 2
JSON_TYPES = {USER: "user ban", USER_HOST: "user@host ban", HOST: "host ban", CLASS: "class ban"}
TYPES_OF_JSON = {v: k for k, v in JSON_TYPES.items()}
DOWN_BACKOFF = 2.0          # seconds a node leaves a failed Redis alone before the next try


# -- ccan-json's text ------------------------------------------------------------------------------------------
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _jstr(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x1F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _jnum(n: float) -> str:
    if isinstance(n, int) or (isinstance(n, float) and n.is_integer() and abs(n) < 1e16):
        return str(int(n))
    text = "%.16g" % n
    return text if math.isfinite(n) else "null"


def _jval(v: Any) -> str:
    if isinstance(v, str):
        return _jstr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, dict):
        return json_text(list(v.items()))
    if isinstance(v, list):
        return "[" + ",".join(_jval(x) for x in v) + "]"
    return _jnum(v)


def json_text(members: list[tuple[str, Any]]) -> str:
    """A JSON object as ccan-json writes it (no spaces, members in the given order)."""
    return "{" + ",".join(f"{_jstr(k)}:{_jval(v)}" for k, v in members) + "}"


def ban_key(ban_type: int, name: str, tpl: bool = False) -> bytes:
    if tpl:
        return PREFIX + tpl_image(TPL_KEY, struct.pack("<H", ban_type) + tpl_string(name))
    return PREFIX + json_text([("ban_type_id", ban_type), ("ban_name", name)]).encode("utf-8") + b"\0"


TPL_KEY, TPL_VALUE = b"vs", b"S(iusiisssui)"      # mod_ban's tpl formats (memcache without UseJSON)


@dataclasses.dataclass(frozen=True)
class CachedBan:
    """One value of the cache."""

    ip_addr: str
    port: int
    type: int
    name: str
    reason: str
    message: str
    expires: int                # Unix seconds, 0 = never
    sid: int
    update_ts: int = 0

    def encode(self, tpl: bool = False) -> bytes:
        update_ts = self.update_ts or int(time.time())
        if tpl:
            body = (struct.pack("<iI", VALUE_VERSION, update_ts) + tpl_string(self.ip_addr)
                    + struct.pack("<ii", self.port, self.type) + tpl_string(self.name) + tpl_string(self.reason)
                    + tpl_string(self.message) + struct.pack("<Ii", self.expires, self.sid))
            return tpl_image(TPL_VALUE, body)
        return json_text([("version", VALUE_VERSION), ("update_ts", update_ts),
                          ("ip_addr", self.ip_addr), ("port", self.port), ("ban_type", JSON_TYPES[self.type]),
                          ("ban_name", self.name), ("ban_reason", self.reason), ("ban_message", self.message),
                          ("expires_ts", self.expires), ("server_id", self.sid)]).encode("utf-8") + b"\0"


def decode(raw: bytes) -> CachedBan:
    """A cache value, ProFTPD's JSON or tpl image; raises ValueError (with the reason, for the log line) when it is
    neither."""
    if raw.startswith(TPL_MAGIC):
        return _checked(*_decode_tpl(raw))
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")

    def field(name: str, kind: type) -> Any:
        value = obj.get(name)
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"missing or non-numeric '{name}'")
            return int(value)
        if not isinstance(value, str):
            raise ValueError(f"missing or non-text '{name}'")
        return value

    version = field("version", int)
    if version != VALUE_VERSION:
        raise ValueError(f"unsupported version {obj.get('version')!r}")
    kind = TYPES_OF_JSON.get(field("ban_type", str))
    if kind is None:
        raise ValueError(f"unknown ban_type {obj.get('ban_type')!r}")
    return _checked(version, CachedBan(
        field("ip_addr", str), field("port", int), kind, field("ban_name", str), field("ban_reason", str),
        field("ban_message", str), field("expires_ts", int), field("server_id", int), field("update_ts", int)))


def _decode_tpl(raw: bytes) -> tuple[int, CachedBan]:
    version, update_ts, ip_addr, port, kind, name, reason, message, expires, sid = tpl_fields(raw, TPL_VALUE)
    if kind not in JSON_TYPES:
        raise ValueError(f"unknown ban type {kind}")
    return version, CachedBan(ip_addr or "", port, kind, name or "", reason or "", message or "", expires, sid,
                              update_ts)


def _checked(version: int, entry: CachedBan) -> CachedBan:
    if version != VALUE_VERSION:
        raise ValueError(f"unsupported version {version!r}")
    if not 0 < entry.port <= 65535:
        raise ValueError(f"invalid port {entry.port}")
    if entry.sid <= 0:
        raise ValueError(f"invalid server ID {entry.sid}")
    return entry


def count_key(event: str, sid: int, source: str) -> bytes:
    return COUNT_PREFIX + json_text([("event", event), ("sid", sid), ("source", source)]).encode("utf-8")


# -- settings (mod_redis's directives, resolved for one server) -------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RedisServer:
    """`RedisServer host:port|[v6]:port|/path.sock [user] [password] [db] [ssl:...]`."""

    host: str | None
    port: int
    path: str | None = None             # a Unix socket
    username: str | None = None
    password: str | None = None
    db: int = 0
    ssl: bool = False
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None

    def describe(self) -> str:
        return self.path or (f"[{self.host}]:{self.port}" if ":" in (self.host or "") else f"{self.host}:{self.port}")


@dataclasses.dataclass(frozen=True)
class RedisSentinel:
    """`RedisSentinel host[:port] ... [master NAME]`."""

    addresses: tuple[tuple[str, int], ...]
    master: str | None = None


@dataclasses.dataclass(frozen=True)
class RedisSettings:
    server: RedisServer | None
    sentinel: RedisSentinel | None = None
    connect_timeout: float = 0.5        # RedisTimeouts, in seconds
    io_timeout: float = 0.5
    reconnect: bool = True              # RedisOptions NoReconnect: False
    log_path: str | None = None         # RedisLog

    def describe(self) -> str:
        return self.server.describe() if self.server else "sentinel"


class CacheDown(Exception):
    """The cache (Redis, memcached) could not be asked (down, slow, refused); the caller goes on with its local
    table."""


class ProcessDown:
    """A link's memory of a failure for this process only (CacheLink's `state` where no shared table keeps it)."""

    def __init__(self):
        self.since = 0

    def redis_down_since(self) -> int:
        return self.since

    def set_redis_down(self, since: int) -> int:
        before, self.since = self.since, since
        return before


class CacheLink:
    """One process's connection to the ban cache, made on first use: `get`, `put`, `delete`, `count`, each
    bounded by the cache's timeouts (no retries); a failure raises CacheDown. `state` is where the node keeps the
    time the cache was first seen failing (the BanTable header), so that only the first process to see the loss
    logs it, and for DOWN_BACKOFF seconds after a failure no process of the node waits on the cache again.
    RedisLink and MemcacheLink say how each operation is carried out (`_run`)."""

    kind = "cache"
    errors: tuple[type[BaseException], ...] = (OSError,)
    keeping = "bans are kept in the local BanTable until it is back"     # what the loss means (the log line)
    sharing = "bans are shared again"

    def __init__(self, settings: Any, state: Any = None, on_log=None):
        self.settings = settings
        self.state = state                  # has redis_down_since() and set_redis_down(since)
        self.on_log = on_log                # fn(message): BanLog lines
        self._client: Any = None
        self._failed = False                # this process saw a failure (with NoReconnect: for good)

    # the operations mod_ban needs
    def get(self, key: bytes) -> bytes | None:
        return self._call("get", key)

    def put(self, key: bytes, value: bytes, expires: int) -> None:
        """Store a value; `expires` is the ban's absolute expiry (0: never), passed on as ProFTPD passes it."""
        self._call("put", key, value, expires)

    def delete(self, key: bytes) -> None:
        self._call("delete", key)

    def count(self, key: bytes, window: int) -> int:
        """Add 1 to a counter that starts with its first increment and lasts `window` seconds (ShareEventCounts)."""
        return int(self._call("count", key, window))

    def push(self, key: bytes, value: bytes) -> None:
        """Append to a list (Redis's RPUSH: mod_redis's RedisLogOnCommand/RedisLogOnEvent)."""
        self._call("push", key, value)

    def _run(self, op: str, *args: Any) -> Any:
        raise NotImplementedError

    def _connect(self) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        return self.settings.describe()

    def _note(self, message: str) -> None:
        if self.on_log is not None:
            self.on_log(message)

    def _call(self, op: str, *args: Any) -> Any:
        if self._failed and not getattr(self.settings, "reconnect", True):
            raise CacheDown(f"{self.kind} connection lost (NoReconnect)")
        if self.state is not None:
            since = self.state.redis_down_since()
            if since and time.time() - since < DOWN_BACKOFF:
                raise CacheDown(f"{self.kind} unreachable (recently failed)")
        try:
            if self._client is None:
                self._client = self._connect()
            result = self._run(op, *args)
        except self.errors as e:
            self._lost(e)
            raise CacheDown(str(e) or type(e).__name__) from None
        if self._failed or (self.state is not None and self.state.redis_down_since()):
            self._back()
        return result

    def _lost(self, e: BaseException) -> None:
        self._failed = True
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass            # the connection is broken already; nothing else to release
        before = self.state.set_redis_down(int(time.time())) if self.state is not None else 0
        if not before:
            target = self.describe()
            log.error("%s %s unreachable (%s): %s", self.kind, target, e or type(e).__name__, self.keeping)
            self._note(f"error talking to {self.kind} {target}: {e or type(e).__name__}")

    def _back(self) -> None:
        self._failed = False
        before = self.state.set_redis_down(0) if self.state is not None else 1
        if before:
            log.log(NOTICE, "%s reachable again: %s", self.kind, self.sharing)
            self._note(f"{self.kind} reachable again")

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass            # closing a broken link: nothing left to do
            self._client = None


class RedisLink(CacheLink):
    """BanCache redis: redis-py, with RedisTimeouts on every call. A ban is written with SETEX and its absolute
    expiry as the TTL, as ProFTPD writes it (SET for a ban that never expires)."""

    kind = "Redis"

    def __init__(self, settings: RedisSettings, state: Any = None, on_log=None):
        super().__init__(settings, state, on_log)
        redis = settle_redis()
        self.errors = (redis.RedisError, OSError)

    def _connect(self):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        s = self.settings
        kw: dict[str, Any] = dict(socket_connect_timeout=s.connect_timeout, socket_timeout=s.io_timeout,
                                  retry=Retry(NoBackoff(), 0), retry_on_error=[], health_check_interval=0,
                                  single_connection_client=True)
        srv = s.server
        if srv is not None:
            kw.update(username=srv.username, password=srv.password, db=srv.db)
            if srv.ssl:
                kw.update(ssl=True, ssl_ca_certs=srv.ssl_ca, ssl_certfile=srv.ssl_cert, ssl_keyfile=srv.ssl_key)
        if s.sentinel is not None:
            from redis.sentinel import Sentinel
            sentinel = Sentinel(list(s.sentinel.addresses), socket_timeout=s.io_timeout,
                                socket_connect_timeout=s.connect_timeout, retry=Retry(NoBackoff(), 0))
            name = s.sentinel.master or _first_master(sentinel)
            kw.pop("single_connection_client")
            return sentinel.master_for(name, **kw)
        if srv is None:
            raise CacheDown("no RedisServer configured")
        if srv.path:
            return redis.Redis(unix_socket_path=srv.path, **kw)
        return redis.Redis(host=srv.host, port=srv.port, **kw)

    def members(self, key: bytes, as_set: bool) -> list[bytes]:
        """A list's items (LRANGE 0 -1) or a set's members (SMEMBERS), as mod_wrap2_redis reads its tables."""
        return list(self._call("smembers" if as_set else "lrange", key))

    def _run(self, op: str, *args: Any) -> Any:
        run = self._client.execute_command
        if op == "get":
            return run("GET", *args)
        if op == "lrange":
            return run("LRANGE", args[0], 0, -1)
        if op == "smembers":
            return run("SMEMBERS", args[0])
        if op == "put":
            key, value, expires = args
            return run("SETEX", key, expires, value) if expires else run("SET", key, value)
        if op == "delete":
            return run("DEL", *args)
        if op == "push":
            return run("RPUSH", *args)
        key, window = args
        count = int(run("INCR", key))
        if count == 1:
            run("EXPIRE", key, window)
        return count


def settle_redis() -> Any:
    """redis-py, with what its clients read from the file system the first time: its modules, the idna codec (a
    connection's getaddrinfo encodes the host with it) and its version from the package metadata (read by each
    client's constructor, cached). mod_redis calls it in the master before any fork when a server uses Redis, so
    that a session can make its client, or make it again after a lost connection, inside its chroot, and does not
    pay for the quarter of a second the import takes."""
    "localhost".encode("idna")          # the codec's module, imported now
    import redis
    import redis.backoff  # noqa: F401
    import redis.retry  # noqa: F401
    import redis.sentinel  # noqa: F401
    from redis.utils import get_lib_version
    get_lib_version()
    return redis


def _first_master(sentinel) -> str:
    """RedisSentinel without `master NAME`: the first master the sentinels know, as ProFTPD does."""
    for s in sentinel.sentinels:
        try:
            masters = s.sentinel_masters()
        except Exception:
            continue
        if masters:
            return sorted(masters)[0]
    raise CacheDown("no Redis master known to the sentinels")


def pid_line(ident: str, message: str) -> str:
    """A module log line (BanLog, RedisLog) in ProFTPD's pr_log_writefile shape."""
    now = time.time()
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))},{int(now * 1000) % 1000:03d} " \
           f"{ident}[{os.getpid()}]: {message}\n"
