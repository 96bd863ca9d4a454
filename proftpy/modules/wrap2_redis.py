"""mod_wrap2_redis: mod_wrap2's `redis:` tables, Redis lists or sets of client patterns (ProFTPD 1.3.8's
mod_wrap2_redis/0.1), read over mod_redis's settings (RedisEngine, RedisServer, RedisTimeouts...).

    WrapUserTables * redis:/list:wrap.allow.%{name} redis:/set:wrap.deny.%{name}
    WrapTables redis:/list:wrap.allow[/list:options-key] redis:/set:wrap.deny

A table is one hosts_access line for the service (WrapServiceName) whose clients are the list's items (LRANGE 0 -1)
or the set's members (SMEMBERS), an item holding commas or blanks split into several patterns, as ProFTPD does.
`%{name}` in a key is the user logging in for WrapUserTables, the user's primary group for WrapGroupTables, empty
for WrapTables (the names mod_wrap2_sql's `%{0}` gets). A missing key (Redis keeps no empty list or set), a Redis
that cannot be reached or RedisEngine off leave the table out, with ProFTPD's WrapLog lines. The options key after a
second `/` is checked for its `list:`/`set:` prefix and not read: Debian's mod_wrap2 is built without table
options. A key without the prefix is refused when the configuration loads (ProFTPD finds it at the check).

Redis tables are read by the session before PASS (or at connect with `WrapOptions CheckOnConnect`), never by the
master at accept: the master does not wait on Redis. Each session has one link, bounded by RedisTimeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..access import hostsaccess as ha
from ..bancache import CacheDown, RedisLink
from ..module import Module
from . import redis
from .wrap import Opening, TableSource
from .wrap2_sql import clients

NAME = "mod_wrap2_redis.c"
KINDS = ("list:", "set:")


def _keys(info: str) -> tuple[str, ...]:
    """`/list:clients-key[/set:options-key]` -> the keys, each with its `list:`/`set:` prefix."""
    _, slash, rest = info.partition("/")
    keys = tuple(rest.split("/", 1))
    if not slash or not keys[0]:
        raise ValueError(f"badly formatted source info '{info}': expected redis:/list|set:clients-key"
                         "[/list|set:options-key]")
    for what, key in zip(("client", "option"), keys):
        kind = key.split(":", 1)[0].lower() + ":"
        if kind not in KINDS or len(key) == len(kind):
            raise ValueError(f"{what} key '{key}' lacks required 'list:' or 'set:' prefix")
    return keys


def _check(info: str) -> None:
    _keys(info)


@dataclass
class RedisTables:
    """A session's link to the Redis its server names (made on first use, again for another server)."""

    link: RedisLink | None = None
    settings: Any = None


def _link(opening: Opening) -> RedisLink | None:
    session = opening.session
    settings = redis.settings_for(session.server)
    if settings is None:
        return None
    st = session.state.get(RedisTables)
    if st.link is None or st.settings != settings:
        if st.link is not None:
            st.link.close()
        st.link, st.settings = RedisLink(settings), settings
    return st.link


def _open(info: str, opening: Opening) -> ha.Table | None:
    if opening.session is None:
        return None
    key = _keys(info)[0]
    kind, _, key = key.partition(":")
    kind = "set" if kind.lower() == "set" else "list"
    key = key.replace("%{name}", opening.client)
    link = _link(opening)
    if link is None:
        opening.log("error: unable to open Redis connection: RedisEngine off or no RedisServer")
        return None
    try:
        items = link.members(key.encode(), kind == "set")
    except CacheDown as e:
        opening.log(f"error obtaining clients from Redis using {kind} '{key}': {e}")
        return None
    if not items:                       # (Redis keeps no empty list or set: the key is missing, as ProFTPD says)
        opening.log(f"error obtaining clients from Redis using {kind} '{key}': No such file or directory")
        return None
    words = clients([item.decode("utf-8", "replace") for item in items])
    return ha.Table(f"Redis({info})", [ha.Rule((opening.service,), words, None, 1)] if words else [], [])


SOURCE = TableSource("redis", _check, _open, at_accept=False)
MODULE = Module(NAME)
