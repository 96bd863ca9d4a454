"""TLSSessionCache's external caches (ProFTPD's mod_tls_shmcache, mod_tls_redis, mod_tls_memcache): TLS sessions
shared by every session process, so a client that reconnects (a new process) resumes the session another made.

Each session process has OpenSSL's own cache too (the control session lives there, and the data connections
resume it from there: tls_data.py). OpenSSL asks the external cache for a session ID its own cache does not know
and hands it every new session (net/openssl.py `SessionStore`), during control handshakes only: a data handshake
pauses the store, since the only session it may resume is the control connection's. A session OpenSSL drops (it
expired, or a connection that used it failed) is dropped from the external cache too, as ProFTPD's.

Keys and values as ProFTPD's modules write them:

    shm:       the file tlscachetable.py describes (ProFTPD's is a SysV segment: not shared with it)
    redis:     b"mod_tls_redis.sessions." + {"id":"<hex>"} + b"\\0"  ->  {"expires":N,"data":"<base64 DER>",
               "data_len":N} + b"\\0", with a TTL of the session's remaining life (ProFTPD: its expiry time)
    memcache:  with `memcache:/json`, b"mod_tls_memcache.sessions." + the same key  ->  the same JSON; without
               it ProFTPD's tpl images (proftpy/tpl.py): the key's `s` the id in hex, the value `S(uic#)`:
               expires, the DER's length and a 10 KiB array holding it (ProFTPD leaves the rest of the array
               as it found its memory; proftpy writes zeros); the expiry as memcached's absolute expiration

A session whose DER is longer than 10 KiB (ProFTPD's TLS_MAX_SSL_SESSION_SIZE) stays in the process's own cache
and TLSLog says so. A cache that is down costs a log line (once per process) and a full handshake, never a
failure.

Statistics, as mod_tls_redis and mod_tls_memcache keep them: in the cache itself, so that `ftpdctl tls sesscache
info` on any node shows the cluster's counts (`STATS`, each key the module's prefix + its name, e.g.
b"mod_tls_redis.sessions.cache_hits"): counters memcached and Redis increment (decimal text, no expiry; a ProFTPD
memcache counter, 4 binary bytes that memcached cannot increment, is rewritten as text: net/memcache.py).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import struct
import time
from typing import TYPE_CHECKING, Any, Callable

from ..bancache import CacheDown, ProcessDown, RedisLink, json_text
from ..config.errors import ConfigError
from ..net.openssl import SessionStore
from ..tlscachetable import MAX_DATA, CacheTableError, SessionTable
from ..tpl import MAGIC as TPL_MAGIC, fields as tpl_fields, image as tpl_image, string as tpl_string

if TYPE_CHECKING:
    from ..config.tree import Config, Server
    from .tls_directives import SessionCache

log = logging.getLogger("proftpy")

REDIS_PREFIX = b"mod_tls_redis.sessions."
MEMCACHE_PREFIX = b"mod_tls_memcache.sessions."


TPL_KEY, TPL_VALUE = b"s", b"S(uic#)"        # mod_tls_memcache's tpl formats (without /json)

# the statistics keys (after the prefix) and what `ftpdctl tls sesscache info` calls them, in ProFTPD's order
STATS = (("cache_hits", "Cache lifetime hits"), ("cache_misses", "Cache lifetime misses"),
         ("cache_stores", "Cache lifetime sessions stored"), ("cache_deletes", "Cache lifetime sessions deleted"),
         ("cache_errors", "Cache lifetime errors handling sessions in cache"),
         ("cache_exceeds", "Cache lifetime sessions exceeding max entry size"),
         ("cache_max_sess_len", "Largest session exceeding max entry size"))


def key_of(prefix: bytes, sid: bytes, tpl: bool = False) -> bytes:
    if tpl:
        return prefix + tpl_image(TPL_KEY, tpl_string(binascii.hexlify(sid).decode()))
    return prefix + json_text([("id", binascii.hexlify(sid).decode())]).encode() + b"\0"


def encode(der: bytes, expires: int, tpl: bool = False) -> bytes:
    if tpl:
        body = struct.pack("<Ii", expires, len(der)) + der.ljust(MAX_DATA, b"\0")
        return tpl_image(TPL_VALUE, body, arrays=(MAX_DATA,), flags=0)
    return json_text([("expires", expires), ("data", base64.b64encode(der).decode()),
                      ("data_len", len(der))]).encode() + b"\0"


def decode(raw: bytes) -> tuple[bytes, int]:
    """(DER, expires) from a cache value, ProFTPD's JSON or tpl image; ValueError when it is neither."""
    if raw.startswith(TPL_MAGIC):
        expires, size, data = tpl_fields(raw, TPL_VALUE)
        if not 0 < size <= len(data):
            raise ValueError(f"session data of {size} bytes in an array of {len(data)}")
        return data[:size], expires
    try:
        obj = json.loads(raw.rstrip(b"\0").decode("utf-8"))
        expires, data, size = obj["expires"], obj["data"], obj["data_len"]
        der = base64.b64decode(data, validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, binascii.Error):
        raise ValueError("not a session cache entry") from None
    if not isinstance(expires, (int, float)) or size != len(der):
        raise ValueError("not a session cache entry")
    return der, int(expires)


class ExternalCache(SessionStore):
    """The cache of one configuration: its lifetime, where its log lines go (`on_log`: the session's TLSLog,
    set when a session starts; the SystemLog until then)."""

    kind = "external"

    def __init__(self, lifetime: int):
        self.lifetime = lifetime
        self.on_log: Callable[[str], None] | None = None
        self._reported = False

    def note(self, message: str) -> None:
        if self.on_log is not None:
            self.on_log(message)
        else:
            log.info("TLS: %s", message)

    def failed(self, what: str, e: BaseException) -> None:
        """TLSLog each time; the SystemLog once per process (a cache that is down is not a line per handshake)."""
        message = f"error {what} '{self.kind}' cache: {e}"
        if not self._reported:
            self._reported = True
            log.warning("TLS: %s (handshakes go on without it)", message)
        self.note(message)

    def too_big(self, der: bytes) -> None:
        self.note(f"{self.kind}: length of serialized SSL session data ({len(der)}) exceeds maximum size "
                  f"({MAX_DATA}), unable to add to shared {self.kind}, keeping it in this process only")

    def open(self) -> None:
        """In the master, before any fork (the shm file)."""

    def close(self) -> None:
        pass

    def same(self, other: "ExternalCache") -> bool:
        return False


class ShmCache(ExternalCache):
    kind = "shm"

    def __init__(self, lifetime: int, path: str, size: int):
        super().__init__(lifetime)
        self.path, self.size = path, size
        self.table: SessionTable | None = None

    def open(self) -> None:
        if self.table is None:
            self.table = SessionTable.open(self.path, self.size)

    def close(self) -> None:
        if self.table is not None:
            self.table.close()
            self.table = None

    def same(self, other: ExternalCache) -> bool:
        """`other` (the cache before a reload) is this file, still open (not removed by ftpdctl)."""
        return isinstance(other, ShmCache) and other.table is not None and \
            (other.path, other.size) == (self.path, self.size)

    def add(self, sid: bytes, der: bytes, expires: int) -> None:
        if self.table is not None and not self.table.add(sid, der, expires, int(time.time())) and \
                len(der) > MAX_DATA:
            self.too_big(der)

    def get(self, sid: bytes) -> bytes | None:
        return self.table.get(sid, int(time.time())) if self.table is not None else None

    def delete(self, sid: bytes) -> None:
        if self.table is not None:
            self.table.delete(sid)


class LinkCache(ExternalCache):
    """redis: and memcache:, over mod_ban's links (bancache.CacheLink): every call bounded by the server's
    timeouts, no retries, a lost server logged once per process and left alone for 2 s."""

    def __init__(self, lifetime: int, kind: str, link, prefix: bytes, relative_ttl: bool, tpl: bool = False):
        super().__init__(lifetime)
        self.kind, self.link, self.prefix, self.relative_ttl = kind, link, prefix, relative_ttl
        self.tpl = tpl                  # memcache: without /json: ProFTPD's tpl images
        link.state = ProcessDown()
        link.keeping = "TLS sessions are kept in each process only until it is back"
        link.sharing = "TLS sessions are shared again"

    def add(self, sid: bytes, der: bytes, expires: int) -> None:
        if len(der) > MAX_DATA:
            self.too_big(der)
            self.count("cache_exceeds")
            self._largest(len(der))
            return
        ttl = max(1, expires - int(time.time())) if self.relative_ttl else expires
        try:
            self.link.put(key_of(self.prefix, sid, self.tpl), encode(der, expires, self.tpl), ttl)
        except CacheDown as e:            # the link has told the SystemLog
            self.note(f"error adding session to '{self.kind}' cache: {e}")
            return
        self.count("cache_stores")

    def get(self, sid: bytes) -> bytes | None:
        try:
            raw = self.link.get(key_of(self.prefix, sid, self.tpl))
        except CacheDown as e:            # the link has told the SystemLog
            self.note(f"error getting session from '{self.kind}' cache: {e}")
            return None
        der = self._usable(raw)
        self.count("cache_hits" if der is not None else "cache_misses")
        return der

    def _usable(self, raw: bytes | None) -> bytes | None:
        """The DER of a cache value that holds a session still valid (a bad value counts as an error too)."""
        if raw is None:
            return None
        try:
            der, expires = decode(raw)
        except ValueError as e:
            self.note(f"{self.kind}: ignoring cached session data: {e}")
            self.count("cache_errors")
            return None
        if expires <= time.time():
            self.note(f"{self.kind}: ignoring expired cached session data (expires {expires} <= now "
                      f"{int(time.time())})")
            return None
        return der

    def delete(self, sid: bytes) -> None:
        try:
            self.link.delete(key_of(self.prefix, sid, self.tpl))
        except CacheDown as e:            # the link has told the SystemLog
            self.note(f"error removing session from '{self.kind}' cache: {e}")
            return
        self.count("cache_deletes")

    def count(self, name: str) -> None:
        """One more of a statistic, in the cache (no expiry); a cache that is down loses it, as ProFTPD's."""
        try:
            self.link.count(self.prefix + name.encode(), 0)
        except CacheDown as e:
            self.note(f"error incrementing '{name}' value: {e}")

    def _largest(self, size: int) -> None:
        """cache_max_sess_len: the largest session too big for the cache (ProFTPD means to keep it, and racy as
        ProFTPD's: a get, then a set)."""
        key = self.prefix + b"cache_max_sess_len"
        try:
            if size > (stat_value(self.link.get(key)) or 0):
                self.link.put(key, str(size).encode(), 0)
        except CacheDown as e:
            self.note(f"error setting 'cache_max_sess_len' value: {e}")

    def statistics(self) -> list[tuple[str, int]]:
        """(description, count) of each statistic the cache holds, asked through a link of its own (the master's
        `tls sesscache info`: its children must not inherit a connection). Raises CacheDown."""
        return link_statistics(self.link, self.prefix, STATS)

    def close(self) -> None:
        self.link.close()


def link_statistics(like, prefix: bytes, stats) -> list[tuple[str, int]]:
    """(description, count) of each of `stats` ((key after `prefix`, description)) the cache holds, asked through a
    new link to the cache `like` talks to, closed after. Raises CacheDown."""
    link = type(like)(like.settings)
    link.keeping, link.sharing = like.keeping, like.sharing
    try:
        values = [(desc, stat_value(link.get(prefix + name.encode()))) for name, desc in stats]
    finally:
        link.close()
    return [(desc, n) for desc, n in values if n is not None]


def stat_value(raw: bytes | None) -> int | None:
    """A statistic's count: memcached's and Redis's decimal text, or 1 to 8 binary bytes, little-endian (how
    ProFTPD's mod_tls_memcache makes a counter); None for none or anything else."""
    if raw is None:
        return None
    if raw.isdigit():
        return int(raw)
    return int.from_bytes(raw, "little") if 1 <= len(raw) <= 8 else None


class StatsRedisLink(RedisLink):
    """A RedisLink whose counters without a window never expire (mod_tls_redis's statistics: INCRBY, no TTL; a
    ban counter's first INCR sets its window as the TTL, which 0 would turn into a delete)."""

    def _run(self, op: str, *args: Any) -> Any:
        if op == "count" and not args[1]:
            return int(self._client.execute_command("INCRBY", args[0], 1))
        return super()._run(op, *args)


def _where(main: "Server"):
    p = main.context().param("TLSSessionCache")
    return p.where if p is not None else main.section.where


def make(config: "Config") -> ExternalCache | None:
    """The configuration's external cache (not opened yet), or None (internal:, off, none). Raises ConfigError
    for a cache whose server is not configured."""
    main = config.main
    cache: "SessionCache | None" = main.get("TLSSessionCache")
    if cache is None or not cache.external:
        return None
    from .tls_directives import DEFAULT_EXTERNAL_LIFETIME
    lifetime = cache.lifetime or DEFAULT_EXTERNAL_LIFETIME
    if cache.kind == "shm":
        return ShmCache(lifetime, cache.path, cache.size)
    if cache.kind == "redis":
        from .redis import settings_for
        settings = settings_for(main)
        if settings is None:
            raise ConfigError("TLSSessionCache: redis: needs RedisEngine on and a RedisServer (or RedisSentinel) "
                              "in the server config", _where(main))
        return LinkCache(lifetime, "redis", StatsRedisLink(settings), REDIS_PREFIX, relative_ttl=True)
    from .memcache import MemcacheLink
    from .memcache import settings_for as memcache_settings
    settings = memcache_settings(main)
    if settings is None:
        raise ConfigError("TLSSessionCache: memcache: needs MemcacheEngine on and MemcacheServers in the server "
                          "config", _where(main))
    return LinkCache(lifetime, "memcache", MemcacheLink(settings), MEMCACHE_PREFIX, relative_ttl=False,
                     tpl=not cache.json)


def open_cache(cache: ExternalCache, config: "Config") -> None:
    """Open it in the master; ConfigError (at the TLSSessionCache line) when the file cannot be used."""
    try:
        cache.open()
    except CacheTableError as e:
        raise ConfigError(f"TLSSessionCache: {e}", _where(config.main)) from None
