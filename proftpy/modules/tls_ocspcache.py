"""TLSStaplingCache's stores (ProFTPD's mod_tls_fscache, mod_tls_shmcache, mod_tls_redis, mod_tls_memcache): where
a stapled OCSP response waits for the next handshake, keyed by the certificate's SHA1 fingerprint (hex). Each
store has `get` ((DER, age in seconds), OSError when there is none), `add`, `delete`; what `ftpdctl tls ocspcache`
says of it is `info` and `clear`. Their keys and values are ProFTPD's, so ProFTPD nodes share them:

    fs:        DIR/<fingerprint>.der, the DER; its age the file's modification time
    redis:     b"mod_tls_redis.ocsp." + {"fingerprint":"<hex>"} + b"\\0"  ->  {"expires":<time stored>,"response":
               "<base64 DER>","response_len":N} + b"\\0", no TTL
    memcache:  b"mod_tls_memcache.ocsp." + the same key -> the same JSON, no expiration, flags 0
    shm:       the file ocsptable.py describes, mapped by the master before it forks (ProFTPD's is a SysV
               segment: not shared with a ProFTPD node)

"expires" holds the time the response was stored, whatever its name says: mod_tls computes the age from it and
decides itself when a response is stale (tls_stapling.py). A response over 4 KiB (ProFTPD's
TLS_MAX_OCSP_RESPONSE_SIZE) stays in the process that fetched it (shm:, redis:, memcache:), as ProFTPD's.
redis: and memcache: keep mod_tls_redis's and mod_tls_memcache's counters in the cache itself
(`<prefix>cache_hits`...), so any node's `info` shows them."""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import stat
import tempfile
import time
from typing import Iterator

from .. import filelock
from ..config.errors import ConfigError
from ..net import ocsp
from ..ocsptable import MAX_DATA, OcspTable, OcspTableError

MAX_SHARED = MAX_DATA       # ProFTPD's TLS_MAX_OCSP_RESPONSE_SIZE: a longer DER stays in the process
# the counters (after the prefix) mod_tls_redis and mod_tls_memcache keep, and what `info` calls them
STATS = (("cache_hits", "Cache lifetime hits"), ("cache_misses", "Cache lifetime misses"),
         ("cache_stores", "Cache lifetime responses stored"), ("cache_deletes", "Cache lifetime responses deleted"),
         ("cache_errors", "Cache lifetime errors handling responses in cache"),
         ("cache_exceeds", "Cache lifetime responses exceeding max entry size"),
         ("cache_max_resp_len", "Largest response exceeding max entry size"))


def _missing() -> OSError:
    return OSError(errno.ENOENT, os.strerror(errno.ENOENT))


class FsCache:
    """`fs:/path=DIR` (mod_tls_fscache): one file per certificate, written by the session with the privileges it
    has in that handshake, through a temporary file renamed into place."""

    kind = "fs"

    def __init__(self, path: str):
        self.path = path

    def _file(self, fingerprint: str) -> str:
        return os.path.join(self.path, f"{fingerprint}.der")

    def get(self, fingerprint: str) -> tuple[bytes, int]:
        with open(self._file(fingerprint), "rb") as f:
            st = os.fstat(f.fileno())
            return f.read(ocsp.MAX_RESPONSE), max(0, int(time.time() - st.st_mtime))

    def add(self, fingerprint: str, der: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path)
        try:
            os.write(fd, der)
            os.close(fd)
            fd = -1
            os.rename(tmp, self._file(fingerprint))
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def delete(self, fingerprint: str) -> None:
        os.unlink(self._file(fingerprint))

    def names(self) -> list[str]:
        """The fingerprints of the responses held (OSError when the directory cannot be read)."""
        return sorted(n[:-4] for n in os.listdir(self.path) if n.endswith(".der"))

    def clear(self) -> int:
        """Delete every response; how many were deleted."""
        n = 0
        for fingerprint in self.names():
            try:
                self.delete(fingerprint)
                n += 1
            except OSError:
                pass                # gone meanwhile (another process cleared it)
        return n

    def info(self) -> list[str]:
        """ProFTPD's first line; then the count (ProFTPD 1.3.8 says 0 whatever it holds; proftpy counts)."""
        return ["Filesystem (fs) OCSP response cache provided by mod_tls_fscache/0.0", "",
                f"Current OCSP responses cached: {len(self.names())}"]

    def remove(self) -> int:
        return 0                    # ProFTPD's mod_tls_fscache leaves the directory and what it holds

    def check(self) -> str | None:
        """Why the cache cannot be used (None: it can)."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            return f"cannot use '{self.path}': {e.strerror}"
        if not stat.S_ISDIR(st.st_mode):
            return f"'{self.path}' is not a directory"
        if st.st_mode & stat.S_IWOTH:
            return f"'{self.path}' is world-writable (ProFTPD's sessions then ignore the cache)"
        return None


class LinkCache:
    """redis: and memcache:, over mod_ban's links (bancache.CacheLink: every call bounded by the server's timeouts,
    a server that is down logged once per process). A DER longer than MAX_SHARED is kept by this process only
    (`large`), as ProFTPD's modules keep it."""

    def __init__(self, kind: str, link, prefix: bytes, provider: str):
        from ..bancache import ProcessDown
        self.kind, self.link, self.prefix, self.provider = kind, link, prefix, provider
        self.large: dict[str, tuple[bytes, int]] = {}
        link.state = ProcessDown()
        link.keeping = "OCSP responses are asked of the responder until it is back"
        link.sharing = "OCSP responses are shared again"

    def _key(self, fingerprint: str) -> bytes:
        from ..bancache import json_text
        return self.prefix + json_text([("fingerprint", fingerprint)]).encode() + b"\0"

    def _call(self, op: str, *args):
        from ..bancache import CacheDown
        try:
            return getattr(self.link, op)(*args)
        except CacheDown as e:
            raise OSError(errno.EIO, str(e)) from None

    def get(self, fingerprint: str) -> tuple[bytes, int]:
        if fingerprint in self.large:
            der, stored = self.large[fingerprint]
            return der, max(0, int(time.time()) - stored)
        raw = self._call("get", self._key(fingerprint))
        if raw is None:
            raise _missing()
        try:
            value = json.loads(raw.rstrip(b"\0"))
            der = base64.b64decode(value["response"], validate=True)
            stored = int(value["expires"])
        except (ValueError, KeyError, TypeError):
            self._count("cache_errors")
            self._count("cache_misses")
            raise OSError(errno.EINVAL, "badly formatted cache entry") from None
        self._count("cache_hits")
        return der, max(0, int(time.time()) - stored)

    def add(self, fingerprint: str, der: bytes) -> None:
        from ..bancache import json_text
        now = int(time.time())
        if len(der) > MAX_SHARED:
            self.large[fingerprint] = (der, now)
            self._count("cache_exceeds")
            return
        value = json_text([("expires", now), ("response", base64.b64encode(der).decode()),
                           ("response_len", len(der))]).encode() + b"\0"
        self._call("put", self._key(fingerprint), value, 0)
        self._count("cache_stores")

    def delete(self, fingerprint: str) -> None:
        if self.large.pop(fingerprint, None) is not None:
            return
        self._call("delete", self._key(fingerprint))
        self._count("cache_deletes")

    def _count(self, name: str) -> None:
        try:
            self._call("count", self.prefix + name.encode(), 0)
        except OSError:
            pass                    # a statistic lost, as ProFTPD loses it (the link has logged the failure)

    def info(self) -> list[str]:
        """ProFTPD's lines: the provider, the servers, each counter the cache holds (asked through a link of its
        own: the master's children must not inherit a connection)."""
        from ..bancache import CacheDown
        from .tls_cache import link_statistics
        lines = [self.provider, "",
                 f"{'Redis server' if self.kind == 'redis' else 'Memcache servers'}: {self.link.describe()}"]
        try:
            return lines + [f"{desc}: {n}" for desc, n in link_statistics(self.link, self.prefix, STATS)]
        except CacheDown as e:
            return lines + [f"Statistics unavailable: {e}"]

    def clear(self) -> int:
        """What ProFTPD's modules clear: this process's large responses (the shared ones stay until replaced)."""
        n = len(self.large)
        self.large.clear()
        return n

    def remove(self) -> int:
        return self.clear()


def redis_cache(settings) -> LinkCache:
    from .tls_cache import StatsRedisLink
    return LinkCache("redis", StatsRedisLink(settings), b"mod_tls_redis.ocsp.",
                     "Redis OCSP response cache provided by mod_tls_redis/0.1")


def memcache_cache(settings) -> LinkCache:
    from .memcache import MemcacheLink
    return LinkCache("memcache", MemcacheLink(settings), b"mod_tls_memcache.ocsp.",
                     "Memcache OCSP response cache provided by mod_tls_memcache/0.2")


class ShmCache:
    """shm: (mod_tls_shmcache): ocsptable.py's file, opened by the master (`make`) and inherited by every session.
    Responses larger than a slot stay in the process that fetched them (`large`), as ProFTPD's."""

    kind = "shm"

    def __init__(self, path: str, size: int):
        self.path, self.size = path, size
        self.table: OcspTable | None = None
        self.large: dict[str, tuple[bytes, int]] = {}

    def open(self) -> None:
        if self.table is None:
            self.table = OcspTable.open(self.path, self.size)

    def get(self, fingerprint: str) -> tuple[bytes, int]:
        if fingerprint in self.large:
            der, stored = self.large[fingerprint]
        else:
            found = self.table.get(fingerprint) if self.table is not None else None
            if found is None:
                raise _missing()
            der, stored = found
        return der, max(0, int(time.time()) - stored)

    def add(self, fingerprint: str, der: bytes) -> None:
        if self.table is None:
            raise OSError(errno.ENOENT, "cache file removed (ftpdctl tls ocspcache remove)")
        now = int(time.time())
        if not self.table.add(fingerprint, der, now):
            self.large[fingerprint] = (der, now)

    def delete(self, fingerprint: str) -> None:
        if self.large.pop(fingerprint, None) is None and self.table is not None:
            self.table.delete(fingerprint)

    def info(self) -> list[str]:
        lines = ["Shared memory (shm) OCSP response cache provided by mod_tls_shmcache/0.2", ""]
        if self.table is None:
            return lines + ["OCSP cache file removed (ftpdctl tls ocspcache remove): responses are cached by each "
                            "process until the next reload"]
        info = self.table.info()
        c = info.counters
        lines += [f"Shared memory file: {self.path}", f"Shared memory file size: {os.fstat(self.table.fd).st_size} "
                  "bytes", "", f"Max response cache size: {info.slots}", f"Current response cache size: {info.used}",
                  "", f"Cache lifetime hits: {c['hits']}", f"Cache lifetime misses: {c['misses']}", "",
                  f"Cache lifetime responses stored: {c['stored']}", f"Cache lifetime responses deleted: "
                  f"{c['deleted']}", f"Cache lifetime responses expired: {c['expired']}", "",
                  f"Cache lifetime errors handling responses in cache: {c['errors']}",
                  f"Cache lifetime responses exceeding max entry size: {c['exceeded']}"]
        if c["exceeded"]:
            lines.append(f"  Largest response exceeding max entry size: {c['exceeded_max']}")
        return lines

    def clear(self) -> int:
        self.large.clear()
        return self.table.clear() if self.table is not None else 0

    def remove(self) -> int:
        """Empty the table and delete its file (sessions forked later cache in their own process, until a
        reload opens it again), as ProFTPD's removes its segment and file."""
        n = self.clear()
        if self.table is not None:
            self.table.close()
            self.table = None
            os.unlink(self.path)
        return n


_SHM: dict[str, ShmCache] = {}          # the master's open tables by file: every server and reload shares one
_checking = False                       # `proftpy -t`: shm: files are looked at, not opened (a running daemon's is
                                        # not re-laid under its sessions)


@contextlib.contextmanager
def checking() -> Iterator[None]:
    """While the configuration is only checked: make() opens no shm: file."""
    global _checking
    _checking = True
    try:
        yield
    finally:
        _checking = False


def _shm(server, spec, reopen: bool) -> ShmCache:
    """The file's table, opened in this (master) process; ConfigError when it cannot be used."""
    session = server.get("TLSSessionCache")
    if session is not None and session.kind == "shm" and session.path == spec.path:
        raise ConfigError(f"TLSStaplingCache: '{spec.path}' is TLSSessionCache's file too: give each its own",
                          where(server))
    cache = _SHM.get(spec.path)
    if cache is not None and cache.size != spec.size:
        if cache.table is not None:
            raise ConfigError(f"TLSStaplingCache: '{spec.path}' is in use with another size: remove it first "
                              "(ftpdctl tls ocspcache remove) or restart", where(server))
        cache = None
    if cache is None:
        cache = _SHM[spec.path] = ShmCache(spec.path, spec.size)
    try:
        if _checking:
            filelock.check_location(spec.path, "file")
        elif reopen:
            cache.open()
    except (OcspTableError, filelock.BadLocation) as e:
        raise ConfigError(f"TLSStaplingCache: {e}", where(server)) from None
    return cache


# -- from the configuration ------------------------------------------------------------------------------------------
def where(server):
    p = server.context().param("TLSStaplingCache")
    return p.where if p is not None else server.section.where


def make(server, reopen: bool = True) -> FsCache | LinkCache | ShmCache | None:
    """The server config's TLSStaplingCache (None: none); ConfigError (at its line) when it cannot work. shm:
    is opened here (the master, before it forks) unless not `reopen` (ftpdctl: a removed file stays removed)."""
    spec = server.get("TLSStaplingCache")
    if spec is None:
        return None
    if spec.kind == "shm":
        return _shm(server, spec, reopen)
    if spec.kind in ("redis", "memcache"):
        if spec.kind == "redis":
            from .redis import settings_for
            needs, made = "RedisEngine on and a RedisServer (or RedisSentinel)", redis_cache
        else:
            from .memcache import settings_for
            needs, made = "MemcacheEngine on and MemcacheServers", memcache_cache
        settings = settings_for(server)
        if settings is None:
            raise ConfigError(f"TLSStaplingCache: {spec.kind}: needs {needs} in the server config", where(server))
        return made(settings)
    cache = FsCache(spec.path)
    problem = cache.check()
    if problem is not None:
        raise ConfigError(f"TLSStaplingCache: {problem}", where(server))
    return cache
