"""mod_tls's ftpdctl action, in the master: `tls sesscache info [-v] | clear | remove` with ProFTPD's texts, for
TLSSessionCache's external caches (tls_cache.py), and `tls ocspcache info | clear | remove` for TLSStaplingCache
(tls_ocspcache.py's stores).

For shm: the master reads and changes the mapped table itself. For redis: and memcache: `info` shows the
statistics every node keeps in the cache (tls_cache.STATS), asked through a connection of its own made for it and
closed after, each request bounded by the cache's timeouts (a cache that is down: one timeout, then a line that
says so); `clear` clears what ProFTPD's modules clear: the sessions this process keeps itself, none (the entries
expire by themselves)."""
from __future__ import annotations

import os
import time

from ..bancache import CacheDown
from ..ctrls import CtrlsError, CtrlsRequest, action_allowed
from ..module import MasterView
from .tls_cache import ExternalCache, LinkCache, ShmCache

ACL = "TLSControlsACLs"
PROVIDERS = {"shm": "Shared memory (shm) SSL session cache provided by mod_tls_shmcache/0.2",
             "redis": "Redis SSL session cache provided by mod_tls_redis/0.1",
             "memcache": "Memcache SSL session cache provided by mod_tls_memcache/0.2"}


def _cache(master: MasterView) -> ExternalCache | None:
    from .tls_contexts import TlsContexts
    return master.state.get(TlsContexts).cache


def _allowed(master: MasterView, req: CtrlsRequest, action: str) -> None:
    acls = [p.value for p in master.config.main.section.all(ACL)]
    if not action_allowed(acls, action, req.peer):
        raise CtrlsError("access denied")


def tls_action(master: MasterView, req: CtrlsRequest) -> list[str]:
    if not req.args:
        raise CtrlsError("missing required parameters")
    if req.args[0] == "sesscache":
        return _sesscache(master, req, req.args[1:])
    if req.args[0] == "ocspcache":
        return _ocspcache(master, req, req.args[1:])
    raise CtrlsError(f"unknown tls action: '{req.args[0]}'")


def _what(master: MasterView, req: CtrlsRequest, args: list[str], cache: str) -> str:
    """The action of `tls sesscache|ocspcache info [-v] | clear | remove`, checked and allowed (ProFTPD's texts)."""
    if not args:
        raise CtrlsError(f"tls {cache}: missing required parameters")
    what = args[0]
    if what not in ("info", "clear", "remove"):
        raise CtrlsError(f"tls {cache}: unknown {cache} action: '{what}'")
    if what != "remove":        # not in ProFTPD's action table, whose check passes then: the cache's ACL is enough
        _allowed(master, req, what)
    if what == "info" and any(word != "-v" for word in args[1:]):
        raise CtrlsError(f"tls {cache}: unsupported parameter: '{args[1]}'")
    return what


def _sesscache(master: MasterView, req: CtrlsRequest, args: list[str]) -> list[str]:
    what = _what(master, req, args, "sesscache")
    cache = _cache(master)
    if what == "info":
        return _info(cache, "-v" in args[1:]) if cache is not None else ["No TLSSessionCache configured"]
    if cache is None:
        raise CtrlsError(f"tls sesscache: error {'clearing' if what == 'clear' else 'removing'} session cache: "
                         "Invalid argument")
    if what == "clear":
        n = cache.table.clear() if isinstance(cache, ShmCache) and cache.table is not None else 0
        return [f"tls sesscache: cleared {n} {'session' if n == 1 else 'sessions'} from '{cache.kind}' session "
                "cache"]
    if isinstance(cache, ShmCache) and cache.table is not None:
        cache.table.clear()
        path = cache.path
        cache.close()               # new sessions cache in their own process only, until the next reload
        try:
            os.unlink(path)
        except OSError as e:
            raise CtrlsError(f"tls sesscache: error removing session cache: {e.strerror}") from None
    return [f"tls sesscache: removed '{cache.kind}' session cache"]


def _ocspcache(master: MasterView, req: CtrlsRequest, args: list[str]) -> list[str]:
    """ProFTPD's texts. `info` is each store's (tls_ocspcache.py); `clear` empties what the store lets a master
    empty (fs: the directory, shm: the table; redis:, memcache: only the master's own large responses, none);
    `remove` of fs:, redis: and memcache: deletes nothing, as ProFTPD's; of shm: the file goes."""
    what = _what(master, req, args, "ocspcache")
    if master.config.main.get("TLSStaplingCache") is None:
        return ["No TLSStaplingCache configured"]
    from ..config.errors import ConfigError
    from .tls_ocspcache import make
    try:
        cache = make(master.config.main, reopen=False)
        if what == "info":
            return cache.info()
        n = cache.clear() if what == "clear" else cache.remove()
    except OSError as e:
        raise CtrlsError(f"tls ocspcache: error obtaining OCSP cache status: {e.strerror or e}") from None
    except ConfigError as e:
        raise CtrlsError(f"tls ocspcache: {e.message}") from None
    if what == "remove":
        return [f"tls sesscache: removed '{cache.kind}' OCSP cache"]
    return [f"tls ocspcache: cleared {n} {'response' if n == 1 else 'responses'} from '{cache.kind}' OCSP cache"]


def _info(cache: ExternalCache, verbose: bool) -> list[str]:
    lines = [PROVIDERS[cache.kind], ""]
    if isinstance(cache, LinkCache):
        lines.append(f"{'Redis server' if cache.kind == 'redis' else 'Memcache servers'}: {cache.link.describe()}")
        try:
            stats = cache.statistics()
        except CacheDown as e:
            return lines + [f"Statistics unavailable: {e}"]
        return lines + [f"{desc}: {n}" for desc, n in stats]
    assert isinstance(cache, ShmCache)
    if cache.table is None:
        return lines + ["Session cache file removed (ftpdctl tls sesscache remove): sessions are cached by each "
                        "process until the next reload"]
    info = cache.table.info()
    c = info.counters
    lines += [f"Shared memory file: {cache.path}", f"Shared memory file size: {os.fstat(cache.table.fd).st_size} bytes",
              "", f"Max session cache size: {info.slots}", f"Current session cache size: {info.used}", "",
              f"Cache lifetime hits: {c['hits']}", f"Cache lifetime misses: {c['misses']}", "",
              f"Cache lifetime sessions stored: {c['stored']}", f"Cache lifetime sessions deleted: {c['deleted']}",
              f"Cache lifetime sessions expired: {c['expired']}",
              f"Cache lifetime sessions evicted (cache full): {c['evicted']}", "",
              f"Cache lifetime errors handling sessions in cache: {c['errors']}",
              f"Cache lifetime sessions exceeding max entry size: {c['exceeded']}"]
    if c["exceeded"]:
        lines.append(f"  Largest session exceeding max entry size: {c['exceeded_max']}")
    if verbose:
        lines += ["", "Cached sessions:"]
        entries = cache.table.entries()
        if not entries:
            lines.append("  (none)")
        for sid, expires in entries:
            lines += ["  -----BEGIN SSL SESSION PARAMETERS-----", f"    Session ID: {sid.hex().upper()}",
                      f"    Expires: {time.strftime('%a %b %d %H:%M:%S %Y', time.localtime(expires))}",
                      "  -----END SSL SESSION PARAMETERS-----", ""]
    return lines
