"""mod_ban: bans of hosts, users, user@hosts and classes, made by hand (`ftpdctl ban`) or automatically when an
event happens often enough (BanOnEvent), kept in the BanTable (proftpy/bantable.py) and, with `BanCache redis`,
shared with other nodes (proftpy/bancache.py).

This file is the session's side and the directives: the BanOnEvent counters, host and class bans at connect,
user and user@host bans at PASS (where ProFTPD checks them). The master's side (the table's life, the veto that
refuses a banned host before any fork, ftpdctl's ban/permit, the Redis writer) is modules/ban_master.py.

Events counted (ProFTPD's table, reference proftpd.md §6), each emitted by the module that owns it with the
session in its data: see EVENTS. Any other BanOnEvent name is a user-defined event: it is listened to on the
session's bus and on the master's (where the event's `connection` names the host).
"""
from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import re
import socket
import time
from typing import TYPE_CHECKING, Any

from .. import bancache
from ..bancache import CacheDown, CachedBan, CacheLink, RedisLink
from ..bantable import (CLASS, EVENT_SLOTS, HOST, TEXT, TYPE_TEXT, USER, USER_HOST, Ban, BanTable, BanTableError,
                        EventEntry)
from ..config.registry import GLOBAL, SERVER, SVG, Directive, Merge
from ..config.types import Custom, Flag, Options, Path, Text
from ..ctrls import ActionAcl
from ..dispatch import POST_CMD, PRE_CMD, Hook, Request
from ..log import NOTICE
from ..module import Listener, Module
from ..reply import Reply
from . import memcache as mod_memcache
from . import redis as mod_redis

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_ban.c"
VERSION = "mod_ban/0.8"
log = logging.getLogger("proftpy")


@dataclasses.dataclass(frozen=True)
class Event:
    """One BanOnEvent event of ProFTPD's table: its number, the event it listens to, what it bans."""

    name: str
    number: int
    listens: str | None          # None: LoginRate (POST_CMD PASS, no event)
    bans: int


EVENTS = {e.name.lower(): e for e in (
    Event("AnonRejectPasswords", 1, "mod_auth.anon-reject-passwords", HOST),
    Event("MaxClientsPerClass", 2, "mod_auth.max-clients-per-class", CLASS),
    Event("MaxClientsPerHost", 3, "mod_auth.max-clients-per-host", HOST),
    Event("MaxClientsPerUser", 4, "mod_auth.max-clients-per-user", USER),
    Event("MaxHostsPerUser", 5, "mod_auth.max-hosts-per-user", USER),
    Event("MaxLoginAttempts", 6, "mod_auth.max-login-attempts", HOST),
    Event("TimeoutIdle", 7, "core.timeout-idle", HOST),
    Event("TimeoutNoTransfer", 8, "core.timeout-no-transfer", HOST),
    Event("MaxConnectionsPerHost", 9, "mod_auth.max-connections-per-host", HOST),
    Event("ClientConnectRate", 10, "mod_ban.client-connect-rate", HOST),
    Event("TimeoutLogin", 11, "core.timeout-login", HOST),
    Event("LoginRate", 12, None, USER),
    Event("MaxCommandRate", 13, "core.max-command-rate", HOST),
    Event("UnhandledCommand", 14, "core.unhandled-command", HOST),
    Event("TLSHandshake", 15, "mod_tls.ctrl-handshake", HOST),
    Event("RootLogin", 16, "mod_auth.root-login", HOST),
    Event("BadProtocol", 18, "core.bad-protocol", HOST),
    Event("EmptyPassword", 19, "mod_auth.empty-password", HOST),
    Event("MaxLoginAttemptsFromUser", 20, "mod_auth.max-login-attempts", USER_HOST),
)}
USER_DEFINED = 17
EVENT_NAMES = {e.number: e.name for e in EVENTS.values()} | {USER_DEFINED: "(user-defined)"}


# -- directives ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rule:
    """One BanOnEvent line."""

    event: Event | None         # None: a user-defined event
    listens: str | None         # the event name listened to
    count: int
    window: int                 # seconds
    lifetime: int               # seconds the ban lasts
    message: str | None = None

    @property
    def number(self) -> int:
        return self.event.number if self.event else USER_DEFINED

    @property
    def label(self) -> str:
        return self.event.name if self.event else EVENT_NAMES[USER_DEFINED]

    @property
    def bans(self) -> int:
        return self.event.bans if self.event else HOST


_HMS = re.compile(r"^(\d{1,2}):(\d{1,2}):(\d{1,2})$")


def parse_hms(text: str) -> int | None:
    """ProFTPD's `hh:mm:ss` (each part one or two digits)."""
    m = _HMS.match(text)
    return None if m is None else int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])


def parse_rule(args: list[str]) -> Rule:
    """`event N/hh:mm:ss hh:mm:ss ["message"]`, with ProFTPD's error texts."""
    if len(args) < 3:
        raise ValueError("missing parameters (expected event freq duration [message])")
    if len(args) > 4:
        raise ValueError(f"too many parameters: '{args[4]}' (quote the message)")
    name, freq, duration = args[:3]
    count_text, slash, window_text = freq.partition("/")
    if not slash:
        raise ValueError(f"badly formatted freq parameter: '{freq}'")
    if not count_text.isdigit() or int(count_text) < 1:
        raise ValueError("freq occurrences must be greater than 0")
    window = parse_hms(window_text)
    if window is None:
        raise ValueError(f"badly formatted freq parameter: '{freq}'")
    if window == 0:
        raise ValueError("freq parameter cannot be '00:00:00'")
    lifetime = parse_hms(duration)
    if lifetime is None:
        raise ValueError(f"badly formatted duration parameter: '{duration}'")
    if lifetime == 0:
        raise ValueError("duration parameter cannot be '00:00:00'")
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"bad event name '{name}'")
    event = EVENTS.get(name.lower())
    return Rule(event, event.listens if event else name, int(count_text), window, lifetime,
                args[3][:TEXT - 1] if len(args) == 4 else None)


def _cache(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if args[0].lower() not in ("redis", "memcache"):
        raise ValueError(f"unsupported BanCache driver '{args[0]}' (proftpy has redis and memcache)")
    return args[0].lower()


def cache_settings(server) -> Any:
    """The cache a server shares its bans through (RedisSettings, MemcacheSettings), or None."""
    driver = server.get("BanCache")
    if driver == "redis":
        return mod_redis.settings_for(server)
    if driver == "memcache":
        return mod_memcache.settings_for(server)
    return None


def cache_tpl(server) -> bool:
    """ProFTPD's memcache values are tpl images unless `BanCacheOptions UseJSON` (Redis's are always JSON)."""
    return server.get("BanCache") == "memcache" and "UseJSON" not in server.get("BanCacheOptions")


def link_for(settings: Any, state: Any = None, on_log=None) -> CacheLink:
    """The link for a server's cache settings (cache_settings)."""
    cls = mod_memcache.MemcacheLink if isinstance(settings, mod_memcache.MemcacheSettings) else RedisLink
    return cls(settings, state, on_log)


_acl = ActionAcl.parser({"ban", "permit", "all"})

SHARE_COUNTS = "ShareEventCounts"

directives = (
    Directive("BanEngine", Flag, SVG, False, Merge.SERVER, "Enforce bans and count BanOnEvent events."),
    Directive("BanTable", Path(), SERVER, None, Merge.SERVER,
              "File holding the bans and event counters (shared memory, `docs/ban.md`); required."),
    Directive("BanLog", Path(none_ok=True), SERVER | GLOBAL, None, Merge.SERVER, "File for mod_ban's messages."),
    Directive("BanMessage", Text, SERVER | GLOBAL, None, Merge.SERVER,
              "Sent (as `530`) to a banned client: %a address, %c class, %u user."),
    Directive("BanOnEvent", Custom(parse_rule, 'event count/hh:mm:ss hh:mm:ss ["message"]'), SERVER | GLOBAL, None,
              Merge.SERVER, "Ban when an event happens `count` times within the window, for the duration "
              "(ProFTPD's event names, or any event name).", repeat=True),
    Directive("BanOptions", Options(("MatchAnyServer",), "BanOption"), SVG,
              frozenset(), Merge.SERVER, "MatchAnyServer: an automatic ban applies to every server."),
    Directive("BanControlsACLs", Custom(_acl, "ban|permit|all allow|deny user|group list"), SERVER, None,
              Merge.SERVER, "Who may use ftpdctl's ban and permit; default: nobody.", repeat=True),
    Directive("BanCache", Custom(_cache, "redis|memcache"), SVG, None, Merge.SERVER,
              "Share bans through Redis (mod_redis's RedisServer) or memcached (mod_memcache's MemcacheServers), "
              "in ProFTPD's keys and values, as its nodes do."),
    Directive("BanCacheOptions", Options(("MatchServer", "UseJSON", SHARE_COUNTS), "BanCacheOption"), SVG,
              frozenset(), Merge.SERVER,
              "MatchServer: ignore cached bans made for another address/port; UseJSON: JSON values in memcached "
              "(else ProFTPD's binary tpl images; Redis always has JSON); ShareEventCounts (proftpy): count BanOnEvent events in the cache, across "
              "nodes."),
)


def rules(config) -> tuple[Rule, ...]:
    """BanOnEvent lines (server config and <Global>, as ProFTPD: they apply to every server); read once per
    configuration."""
    return config.cached(_read_rules)


def rules_for(config, event: str | None) -> tuple[Rule, ...]:
    """The rules counting one of mod_ban's own events (`rule.event.name`), in file order; None: the rules of
    user-defined events."""
    return config.cached(_rules_by_event).get(event, ())


def _read_rules(config) -> tuple[Rule, ...]:
    return tuple(p.value for p in config.main.section.all("BanOnEvent"))


def _rules_by_event(config) -> dict[str | None, tuple[Rule, ...]]:
    by: dict[str | None, list[Rule]] = {}
    for rule in rules(config):
        by.setdefault(rule.event.name if rule.event is not None else None, []).append(rule)
    return {name: tuple(found) for name, found in by.items()}


def prepare(config) -> None:
    """In the master, before any fork: the rules and each server's BanEngine, so that sessions share them."""
    rules_for(config, None)
    for server in config.servers:
        engine_for(config, server)


def engine_on_anywhere(config) -> bool:
    return any(engine_for(config, s) for s in config.servers)


def engine_for(config, server) -> bool:
    """BanEngine for a server: its own line, else the server config's (ProFTPD's `BanEngine on` at the top
    covers the <VirtualHost>s; one of them may say off). Read once per server."""
    return server.cached(_engine_of, config)


def _engine_of(server, config) -> bool:
    own = server.section.first("BanEngine")
    return bool(own.value if own is not None else config.main.get("BanEngine"))


# -- the master's state, inherited by every session ------------------------------------------------------------
@dataclasses.dataclass
class BanState:
    """The open BanTable (None: mod_ban is off) and the bans as last read: the veto and the sessions look bans
    up here, re-reading the table only when its generation changed."""

    table: BanTable | None = None
    generation: int = -1
    bans: dict[tuple[int, str], list[Ban]] = dataclasses.field(default_factory=dict)
    read_at: float = 0.0
    remote: dict[tuple[int, str, int], tuple[float, str]] = dataclasses.field(default_factory=dict)
    expired_at: float = 0.0             # the master's last expiry pass
    master_listening: set = dataclasses.field(default_factory=set)    # user-defined names on the master's bus
    writer: Any = None                  # ban_master.CacheWriter by cache settings, in the master
    log_fd: int | None = None           # BanLog

    def refresh(self, force: bool = False) -> None:
        table = self.table
        if table is None:
            return
        gen = table.generation()
        if gen != self.generation or force:
            gen, bans = table.bans()
            by_key: dict[tuple[int, str], list[Ban]] = {}
            for b in bans:
                by_key.setdefault((b.type, b.name), []).append(b)
            self.generation, self.bans, self.read_at = gen, by_key, time.monotonic()

    def find(self, kind: int, name: str, sid: int) -> Ban | None:
        """A ban in force for this server (refreshed first)."""
        self.refresh()
        now = time.time()
        for b in self.bans.get((kind, name), ()):
            if b.applies(sid, now):
                return b
        return None


def ban_log(state: BanState, message: str) -> None:
    """A BanLog line (ProFTPD's pr_log_writefile shape); the fd is opened by the master, as root."""
    if state.log_fd is None:
        return
    try:
        os.write(state.log_fd, bancache.pid_line(VERSION, message).encode("utf-8", "replace"))
    except OSError:
        pass            # a full or vanished log must not stop a ban


# -- session state ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SessionBan:
    sid: int = 0
    link: CacheLink | None = None       # BanCache: this session's link to Redis or memcached (made on first use)
    match_server: bool = False
    share_counts: bool = False
    tpl: bool = False                   # the cache's keys and values are tpl images (memcache without UseJSON)
    connected: bool = False             # mod_ban.client-connect-rate was generated


def _shared(session: "Session") -> BanState:
    return session.shared.get(BanState)


def _engine(session: "Session") -> bool:
    return engine_for(session.config, session.server) and _shared(session).table is not None


def session_init(session: "Session") -> None:
    """ProFTPD's ban_sess_init: the server's cache settings, host then class bans, then the connect-rate event."""
    st = session.state.get(SessionBan)
    st.sid = session.config.sid(session.server)
    state = _shared(session)
    if state.table is None and session.channel is None and engine_for(session.config, session.server):
        _open_for_inetd(session, state)         # no master made the table
    if not _engine(session):
        return
    settings = cache_settings(session.server) if session.server.get("BanCache") else None
    if settings is not None:
        opts = session.server.get("BanCacheOptions")
        st.link = link_for(settings, state.table, lambda m: ban_log(state, m))
        st.match_server, st.share_counts = "MatchServer" in opts, SHARE_COUNTS in opts
        st.tpl = cache_tpl(session.server)
    for rule in rules_for(session.config, None):    # user-defined events: only known once configured
        session.events.on(rule.listens, lambda _r=rule, **data: _user_defined(_r, **data))
    found = _banned(session, HOST, session.remote_addr)
    if found is not None:
        ban_log(state, f"login from host '{session.remote_addr}' denied due to host ban")
        log.log(NOTICE, "%s: Login denied: host '%s' banned", VERSION, session.remote_addr)
        _refuse(session, HOST, session.remote_addr, "(none)", found)
        return
    if session.conn_class is not None:
        found = _banned(session, CLASS, session.conn_class)
        if found is not None:
            ban_log(state, f"login from class '{session.conn_class}' denied due to class ban")
            log.log(NOTICE, "%s: Login denied: class '%s' banned", VERSION, session.conn_class)
            _refuse(session, CLASS, session.conn_class, "(none)", found)
            return
    if not st.connected:
        st.connected = True
        session.events.emit("mod_ban.client-connect-rate", session=session)


def rehearse(session: "Session") -> None:
    """An idle child's warm-up: the host-ban lookup of session_init (the table read when it changed), without
    acting on what it finds."""
    if _engine(session):
        _shared(session).find(HOST, session.remote_addr, session.config.sid(session.server))


def _open_for_inetd(session: "Session", state: BanState) -> None:
    path = session.config.main.get("BanTable")
    if not path:
        log.warning("%s: missing required BanTable configuration", VERSION)
        return
    try:
        state.table = BanTable.open_or_create(path)
    except BanTableError as e:
        log.warning("%s: %s", VERSION, e)


def _banned(session: "Session", kind: int, name: str) -> str | None:
    """The ban's own message ("" for none) when `name` is banned here (local table, then the cache)."""
    st = session.state.get(SessionBan)
    local = _shared(session).find(kind, name, st.sid)
    if local is not None:
        return local.message
    cached = _cached(session, kind, name)
    return None if cached is None else cached.message


def _cached(session: "Session", kind: int, name: str) -> CachedBan | None:
    """ProFTPD's cache lookup on a local miss: expired entries are deleted, MatchServer ignores other servers'."""
    st = session.state.get(SessionBan)
    if st.link is None:
        return None
    state = _shared(session)
    key = bancache.ban_key(kind, name, st.tpl)
    try:
        raw = st.link.get(key)
    except CacheDown:
        return None
    if raw is None:
        return None
    try:
        entry = bancache.decode(raw)
    except ValueError as e:
        log.warning("%s: ignoring the %s value of %s '%s': %s", VERSION, st.link.kind, TYPE_TEXT[kind], name, e)
        ban_log(state, f"unable to decode cache entry for name {name}, type {kind}: {e}")
        return None
    if entry.expires and entry.expires <= time.time():
        try:
            st.link.delete(key)
        except CacheDown:
            pass        # the next reader deletes it
        return None
    # ProFTPD 1.3.8 writes the port in network byte order: its entries match our port swapped
    ports = (session.local_port, int.from_bytes(session.local_port.to_bytes(2, "big"), "little"))
    if st.match_server and (entry.ip_addr != session.local_addr or entry.port not in ports):
        ban_log(state, f"BanCacheOption MatchServer: cache entry IP address '{entry.ip_addr}' port "
                       f"{entry.port} does not match vhost {session.local_addr}#{session.local_port}, "
                       "ignoring entry")
        return None
    ban_log(state, f"found cache entry for name {name}, type {kind}: ip_addr {entry.ip_addr}, port "
                   f"{entry.port}, reason {entry.reason}, sid {entry.sid}")
    if kind == HOST:        # the master refuses this host at accept for a while (ban_master.REMOTE_MEMO)
        tell_master(session, {"type": "mod_ban.remote-ban", "name": name, "expires": entry.expires,
                              "message": entry.message})
    return entry


def tell_master(session: "Session", message: dict) -> None:
    """A notice to the master; a full or closed channel only costs the master's help (the ban is in force)."""
    if session.channel is None:
        return
    from ..net.channel import ChannelError
    try:
        session.channel.send(message)
    except ChannelError as e:
        log.warning("%s: cannot tell the master (%s): %s", VERSION, message["type"], e)


def _refuse(session: "Session", kind: int, name: str, user: str, rule_message: str) -> None:
    session.events.emit("mod_ban.login-denied", session=session, ban_type=kind, ban_name=name)
    send_message(session, user, rule_message or None)
    disconnect(session)


def disconnect(session: "Session") -> None:
    """ProFTPD's pr_session_disconnect: nothing more reaches the client (a reply the command would still
    send is dropped), and the session ends."""
    try:
        session.ctrl.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass            # the client is gone already
    session.end("banned")


def expand(message: str, session: "Session", user: str) -> str:
    """BanMessage's %c (class or "(none)"), %a (client address), %u (user or "(none)")."""
    return (message.replace("%c", session.conn_class or "(none)").replace("%a", session.remote_addr)
            .replace("%u", user))


def send_message(session: "Session", user: str, rule_message: str | None) -> None:
    """The rule's message, else BanMessage, as a 530 reply; nothing when neither is set (ProFTPD's
    ban_send_message)."""
    message = rule_message or session.config.main.get("BanMessage")
    if message:
        session.reply(530, expand(message, session, user))


# -- PASS ------------------------------------------------------------------------------------------------------
def pre_pass(session: "Session", cmd: Request) -> Reply | None:
    """User and user@host bans, checked before the password is (ProFTPD's ban_pre_pass)."""
    user = session.user_arg
    if user is None or not _engine(session):
        return None
    for kind, name in ((USER, user), (USER_HOST, f"{user}@{session.remote_addr}")):
        found = _banned(session, kind, name)
        if found is not None:
            log.log(NOTICE, "%s: Login denied: %s '%s' banned", VERSION, TYPE_TEXT[kind], name)
            session.events.emit("mod_ban.login-denied", session=session, ban_type=kind, ban_name=name)
            send_message(session, user, found or None)
            return Reply(530, "Login incorrect.")
    return None


def post_pass(session: "Session", cmd: Request) -> None:
    """LoginRate: a successful login is the event (no event is emitted for it)."""
    if not session.authenticated or not session.user:
        return None
    for rule in rules_for(session.config, "LoginRate"):
        handle(session, rule, session.user)
    return None


# -- counting --------------------------------------------------------------------------------------------------
def _source(rule: Rule, session: "Session", data: dict) -> str | None:
    kind = rule.bans
    if kind == HOST:
        return session.remote_addr
    if kind == CLASS:
        return session.conn_class
    if kind == USER:
        return session.user or session.user_arg
    user = data.get("user") or session.user_arg
    return f"{user}@{session.remote_addr}" if user else None


def _listener(name: str):
    def listen(session: "Session" = None, **data: Any) -> None:
        if session is None:
            return
        for rule in rules_for(session.config, name):
            source = _source(rule, session, data)
            if source:
                handle(session, rule, source)
    return listen


def _user_defined(rule: Rule, session: "Session" = None, **data: Any) -> None:
    if session is not None:
        handle(session, rule, session.remote_addr)


def handle(session: "Session", rule: Rule, source: str) -> None:
    """ProFTPD's ban_handle_event: count; at the threshold, ban (unless a ban exists), tell the client, end the
    session, and let the master end the other sessions the ban covers."""
    if not _engine(session):
        return
    st = session.state.get(SessionBan)
    state = _shared(session)
    sid = ban_sid(session.server, st.sid)
    shared_count = _count_in_redis(session, rule, sid, source) if st.share_counts else None
    ban = count_event(state, rule, st.sid, sid, source, shared_count)
    if ban is None:
        return
    _publish(session, ban)
    ban_log(state, f"{rule.label} autoban threshold reached, ending session")
    session.events.emit("mod_ban.ban.client-disconnected", session=session,
                        ban=f"{TYPE_TEXT[ban.type].upper()}:{rule.label}")
    user = "(none)"
    if ban.type == USER:
        user = source
    elif ban.type == USER_HOST:
        user = source.partition("@")[0]
    tell_master(session, {"type": "mod_ban.banned", "ban_type": ban.type, "name": ban.name})
    send_message(session, user, None)
    disconnect(session)


def count_event(state: BanState, rule: Rule, event_sid: int, ban_sid: int, source: str,
                shared_count: int | None = None) -> Ban | None:
    """Count one occurrence in the table (under its lock); the new Ban when this one reached the threshold and
    no ban existed yet. `shared_count`: the count Redis keeps for the cluster (ShareEventCounts)."""
    table = state.table
    now = int(time.time())
    name = rule.listens if rule.event is None else ""
    with table.locked(fcntl.LOCK_EX):
        entry = None
        used = set()                    # the slots still in use once the expired entries are cleared
        for e in table._events():
            if e.expired(now):
                table.clear_event(e.slot)
                ban_log(state, f"ban event {EVENT_NAMES.get(e.type, '?')} entry '{e.source}' has expired "
                               f"({now - e.start - e.window} seconds ago)")
                continue
            used.add(e.slot)
            if (e.type, e.sid, e.source, e.name) == (rule.number, event_sid, source, name):
                entry = e
        if entry is None:
            slot = next((i for i in range(EVENT_SLOTS) if i not in used), None)
            if slot is None:
                ban_log(state, f"maximum number of ban event slots ({len(used)}) already in use")
                return None
            entry = EventEntry(rule.number, event_sid, source, 0, rule.count, now, rule.window, rule.lifetime,
                               name, slot)
            ban_log(state, f"added ban event for {rule.label}")
        count = min(entry.count + 1, entry.max)
        if shared_count is not None:
            count = min(max(count, shared_count), entry.max)
        entry = dataclasses.replace(entry, count=count)
        table.write_event(entry, entry.slot)
        if count < entry.max:
            return None
        kind = rule.bans
        existing = [b for b in table._bans() if (b.type, b.name) == (kind, source) and b.applies(ban_sid, now)]
        if existing:
            ban_log(state, f"updated count for {rule.label} event entry: {count} curr, {entry.max} max")
            return None
        ban = Ban(kind, source, ban_sid, now + rule.lifetime, f"{rule.label} autoban at {strtime(now)}",
                  rule.message or "", now)
        if not table.add_ban(ban):
            ban_log(state, f"error adding {rule.label}-triggered autoban for {TYPE_TEXT[kind]} '{source}': "
                           "no free slot")
            return None
    ban_log(state, f"added {rule.label}-triggered autoban for {TYPE_TEXT[kind]} '{source}'")
    log.log(NOTICE, "%s: %s autoban for %s '%s' (%d seconds)", VERSION, rule.label, TYPE_TEXT[kind], source,
            rule.lifetime)
    return ban


def ban_sid(server, sid: int) -> int:
    """The server id an automatic ban is made for: 0 (every server) with `BanOptions MatchAnyServer`."""
    return 0 if "MatchAnyServer" in server.get("BanOptions") else sid


def _count_in_redis(session: "Session", rule: Rule, sid: int, source: str) -> int | None:
    """ShareEventCounts: INCR the cluster's counter (its window starts with the first occurrence)."""
    st = session.state.get(SessionBan)
    key = bancache.count_key(rule.listens or rule.label, sid, source)
    try:
        return st.link.count(key, rule.window)
    except (CacheDown, ValueError):
        return None


def cached_value(ban: Ban, ip_addr: str, port: int, sid: int) -> CachedBan:
    return CachedBan(ip_addr, port, ban.type, ban.name, ban.reason, ban.message, ban.expires, sid or 1)


def _publish(session: "Session", ban: Ban) -> None:
    """A new ban goes to Redis (ProFTPD: the session's local address and port); if Redis cannot take it now,
    the master's writer keeps it until it can."""
    st = session.state.get(SessionBan)
    if st.link is None:
        return
    value = cached_value(ban, session.local_addr, session.local_port, st.sid)
    key = bancache.ban_key(ban.type, ban.name, st.tpl)
    try:
        st.link.put(key, value.encode(st.tpl), ban.expires)
        ban_log(_shared(session), f"cache entry added for name {ban.name}, type {ban.type}, sid {ban.sid}")
    except CacheDown:
        tell_master(session, {"type": "mod_ban.cache-retry", "ban_type": ban.type, "name": ban.name,
                              "local": [session.local_addr, session.local_port]})


def strtime(t: float) -> str:
    """ProFTPD's pr_strtime3 (local time): `Sun Jan 05 14:03:09 2025`."""
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(t))


listeners = tuple(Listener(e.listens, _listener(e.name)) for e in EVENTS.values() if e.listens)
hooks = (Hook(PRE_CMD, "PASS", pre_pass), Hook(POST_CMD, "PASS", post_pass))

MODULE = Module(NAME, directives=directives, listeners=listeners, hooks=hooks, session_init=session_init,
                rehearse=rehearse)
