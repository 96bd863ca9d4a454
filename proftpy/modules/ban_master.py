"""mod_ban in the master: the BanTable's life (made at start, kept across HUP, removed at a clean stop), the veto
that refuses a banned host at accept (an accept and a close, no fork), ending the sessions a new ban covers, and
the cache writer (Redis, memcached). ftpdctl's `ban` and `permit` are modules/ban_ctrls.py.

Why a writer thread: the master's loop must never wait on the cache. Bans made with ftpdctl (which ProFTPD's master
never writes to its cache) and the bans sessions could not write while the cache was down are queued to one small
thread per cache server, which writes them within its timeouts, keeps them while the cache is down and writes them
when it is back. The thread only ever touches its queue and its own short-lived cache connection, so a fork
while it runs leaves the session nothing it could trip on.
"""
from __future__ import annotations

import fcntl
import logging
import os
import queue
import signal
import socket
import threading
import time
from typing import Any

from .. import bancache
from ..bancache import CacheDown
from ..bantable import CLASS, HOST, TYPE_TEXT, USER, USER_HOST, Ban, BanTable, BanTableError
from ..module import ChannelHandler, Child, MasterView, Module, Veto
from ..net.connection import Connection
from . import ban, scoreboard
from .ban import VERSION, BanState, ban_log

log = logging.getLogger("proftpy")
EXPIRE_EVERY = 60.0             # ProFTPD's BAN_TIMER_INTERVAL
REFRESH_EVERY = 1.0             # the veto re-reads the table at least this often (a writer killed mid-change)
REMOTE_MEMO = 5.0               # seconds the master refuses a host a session found banned in Redis
QUEUE_MAX = 1024


# -- the table -------------------------------------------------------------------------------------------------
def master_init(master: MasterView) -> None:
    state = master.state.get(BanState)
    if not ban.engine_on_anywhere(master.config):
        return
    path = master.config.main.get("BanTable")
    if not path:
        log.critical("%s: missing required BanTable configuration", VERSION)
        raise SystemExit(f"proftpy: {VERSION}: missing required BanTable configuration")
    try:
        state.table = BanTable.open_or_create(path)
    except BanTableError as e:
        log.critical("%s: %s", VERSION, e)
        raise SystemExit(f"proftpy: {VERSION}: {e}") from None
    _open_log(master, state)
    state.refresh(force=True)
    _listen(master, state)
    state.writer = {}
    _expired(master)


def _listen(master: MasterView, state: BanState) -> None:
    """User-defined BanOnEvent names on the master's bus too (once per name; the rules are looked up when the
    event comes, so a HUP that changes them is followed)."""
    for rule in ban.rules(master.config):
        if rule.event is None and rule.listens not in state.master_listening:
            state.master_listening.add(rule.listens)
            master.events.on(rule.listens, lambda _n=rule.listens, **data: _master_events(master, _n, **data))


def _open_log(master: MasterView, state: BanState) -> None:
    path = master.config.main.get("BanLog")
    if state.log_fd is not None:
        os.close(state.log_fd)
        state.log_fd = None
    if path:
        try:
            state.log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                   0o640)
        except OSError as e:
            log.warning("%s: unable to open BanLog '%s': %s", VERSION, path, e.strerror)


def master_tick(master: MasterView) -> None:
    state = master.state.get(BanState)
    if state.table is None:
        return
    now = time.monotonic()
    if now - state.read_at >= REFRESH_EVERY:
        state.refresh(force=True)
    if now - state.expired_at >= EXPIRE_EVERY:
        state.expired_at = now
        _expired(master)
    wall = time.time()
    for key in [k for k, (until, _) in state.remote.items() if until <= wall]:
        del state.remote[key]


def _expired(master: MasterView) -> None:
    """ProFTPD's ban_list_expire and ban_event_list_expire, with their log lines."""
    state = master.state.get(BanState)
    table = state.table
    now = int(time.time())
    with table.locked(fcntl.LOCK_EX):
        for b in table._bans():
            if b.expires and b.expires <= now:
                ban_log(state, f"ban for {TYPE_TEXT.get(b.type, '?')} '{b.name}' has expired "
                               f"({now - b.expires} seconds ago)")
                table.clear_ban(b.slot)
        for e in table._events():
            if e.expired(now):
                table.clear_event(e.slot)
    state.refresh(force=True)


def master_reload(master: MasterView) -> None:
    """Bans survive a HUP (the table stays); a new BanTable path takes effect at the next start."""
    state = master.state.get(BanState)
    if state.table is None:
        master_init(master)
        return
    path = master.config.main.get("BanTable")
    if path and path != state.table.path:
        log.warning("%s: BanTable changes take effect at the next restart (still using %s)", VERSION,
                    state.table.path)
    _open_log(master, state)
    _listen(master, state)
    state.refresh(force=True)


def master_stop(master: MasterView) -> None:
    """A clean stop removes the table, as ProFTPD removes its shared memory."""
    state = master.state.get(BanState)
    for writer in (state.writer or {}).values():
        writer.stop()
    state.writer = {}
    table, state.table = state.table, None
    if table is not None:
        table.remove()
    if state.log_fd is not None:
        os.close(state.log_fd)
        state.log_fd = None


# -- the veto --------------------------------------------------------------------------------------------------
def veto(master: MasterView, conn: Connection) -> Veto | None:
    """A banned host is refused before any fork: its 530 message (when one is set) is written with
    MSG_DONTWAIT (a fresh socket's buffer is empty: it never blocks), then the master closes."""
    state = master.state.get(BanState)
    if state.table is None:
        return None
    server = master.config.server_for(*conn.local)
    if server is None or not ban.engine_for(master.config, server):
        return None
    ip = conn.remote[0]
    sid = master.config.sid(server)
    found = state.find(HOST, ip, sid)
    message = found.message if found is not None else None
    if found is None:
        memo = state.remote.get((HOST, ip, sid)) or state.remote.get((HOST, ip, 0))
        if memo is None or memo[0] <= time.time():
            return None
        message = memo[1]
    text = message or master.config.main.get("BanMessage")
    if text:
        if "%c" in text:            # the class is matched only when the message names it
            text = text.replace("%c", _class_of(master, ip))
        line = text.replace("%a", ip).replace("%u", "(none)")
        try:
            conn.sock.send(f"530 {line}\r\n".encode("utf-8", "replace"), socket.MSG_DONTWAIT)
        except OSError:
            pass            # the client left or does not read: the close says the rest
    ban_log(state, f"login from host '{ip}' denied due to host ban")
    return Veto(f"{VERSION}: Login denied: host '{ip}' banned", "mod_ban.host-refused")


def _class_of(master: MasterView, ip: str) -> str:
    """The client's class for BanMessage's %c, from its address alone (the master looks no name up)."""
    from ..access.classes import from_sections, match_class
    from ..net.netaddr import ClientAddr
    cls = match_class(from_sections(master.config.classes), ClientAddr.plain(ip))
    return cls.name if cls is not None else "(none)"


# -- sessions' notices -----------------------------------------------------------------------------------------
def _text(message: dict, key: str, limit: int = 255) -> str | None:
    value = message.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _ban_notice(master: MasterView, message: dict, fds: list[int]) -> tuple[BanState, int, str] | None:
    """The ban a session's notice names, with the table re-read (the notice's fds closed); None for a notice
    that names no ban, or without a table."""
    _close(fds)
    state = master.state.get(BanState)
    kind, name = message.get("ban_type"), _text(message, "name")
    if state.table is None or kind not in TYPE_TEXT or name is None:
        return None
    state.refresh(force=True)
    return state, kind, name


def _on_banned(master: MasterView, child: Child, message: dict, fds: list[int]) -> None:
    """A session made a ban: end the other sessions it covers (ProFTPD's ban_disconnect_*: the master may signal
    them; a session that dropped root may not). Only a ban really in the table is acted on."""
    notice = _ban_notice(master, message, fds)
    if notice is None:
        return
    state, kind, name = notice
    now = time.time()
    if not any(b.expires == 0 or b.expires > now for b in state.bans.get((kind, name), ())):
        return
    kick(master, kind, name, exclude=child.pid)


def kick(master: MasterView, kind: int, name: str, exclude: int = 0) -> int:
    state = master.state.get(BanState)
    n = 0
    for e in scoreboard.sessions(master):
        if e.pid == exclude:
            continue
        user, _, host = name.partition("@")
        hit = {USER: e.authenticated and e.user == name, HOST: e.client_addr == name, CLASS: e.class_ == name,
               USER_HOST: e.authenticated and e.user == user and e.client_addr == host}[kind]
        if hit:
            try:
                os.kill(e.pid, signal.SIGTERM)
                n += 1
            except ProcessLookupError:
                continue
    if n:
        ban_log(state, f"disconnected {n} {'clients' if n != 1 else 'client'} from {TYPE_TEXT[kind]} '{name}'")
    return n


def _on_remote(master: MasterView, child: Child, message: dict, fds: list[int]) -> None:
    """A session found this host banned in Redis: refuse it at accept for REMOTE_MEMO seconds (then a session
    asks Redis again, so a permit on another node is seen)."""
    _close(fds)
    state = master.state.get(BanState)
    name, expires = _text(message, "name", 64), message.get("expires")
    if state.table is None or name is None or name != child.remote[0] or not isinstance(expires, int):
        return
    server = master.config.server_for(*child.local)
    sid = master.config.sid(server) if server is not None else 0
    until = time.time() + REMOTE_MEMO
    if expires:
        until = min(until, expires)
    state.remote[(HOST, name, sid)] = (until, _text(message, "message") or "")


def _on_retry(master: MasterView, child: Child, message: dict, fds: list[int]) -> None:
    """A session could not write its new ban to Redis: the writer keeps it until Redis is back."""
    notice = _ban_notice(master, message, fds)
    if notice is None:
        return
    state, kind, name = notice
    server = master.config.server_for(*child.local)
    for b in state.bans.get((kind, name), ()):
        if server is not None and b.applies(master.config.sid(server), time.time()):
            publish(master, b, server, child.local)


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


# -- the cache (Redis, memcached) ---------------------------------------------------------------------------
class CacheWriter:
    """One thread per cache server: writes queued bans and deletions, keeping them while the cache is down.
    A command is ("put", key, value, expires) or ("delete", key): the CacheLink method and its arguments."""

    def __init__(self, settings: Any, state: BanState):
        self.queue: queue.Queue = queue.Queue(QUEUE_MAX)
        self.link = ban.link_for(settings, state.table, lambda m: ban_log(state, m))
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"mod_ban {self.link.kind} writer", daemon=True)
        self.thread.start()

    def put(self, *command: Any) -> None:
        try:
            self.queue.put_nowait(command)
        except queue.Full:
            log.warning("%s: %s writer queue full, %s not written", VERSION, self.link.kind, command[0])

    def _run(self) -> None:
        wait = 0.5
        while not self._stop.is_set():
            try:
                command = self.queue.get(timeout=0.5)
            except queue.Empty:
                self.link.close()           # no connection kept open between batches
                continue
            while not self._stop.is_set():
                try:
                    getattr(self.link, command[0])(*command[1:])
                    wait = 0.5
                    break
                except CacheDown:
                    self._stop.wait(wait)
                    wait = min(wait * 2, 5.0)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(2.0)
        self.link.close()


def _writer(master: MasterView, settings: Any) -> CacheWriter:
    state = master.state.get(BanState)
    if state.writer is None:
        state.writer = {}
    writer = state.writer.get(settings)
    if writer is None:
        writer = state.writer[settings] = CacheWriter(settings, state)
    return writer


def _cache_of(server) -> Any:
    return ban.cache_settings(server)


def publish(master: MasterView, b: Ban, server, local: tuple[str, int] | None = None) -> None:
    """Queue a ban for the cache: ProFTPD's JSON, with the address and the real port of the server it is for."""
    settings = _cache_of(server)
    if settings is None:
        return
    addr = local[0] if local else (server.addresses[0] if server.addresses else "0.0.0.0")
    port = local[1] if local else server.get("Port")
    tpl = ban.cache_tpl(server)
    value = ban.cached_value(b, addr, port, master.config.sid(server)).encode(tpl)
    key = bancache.ban_key(b.type, b.name, tpl)
    _writer(master, settings).put("put", key, value, b.expires)


def unpublish(master: MasterView, kind: int, name: str) -> None:
    seen = set()
    for server in master.config.servers:
        settings = _cache_of(server)
        tpl = ban.cache_tpl(server)
        if settings is not None and (settings, tpl) not in seen:
            seen.add((settings, tpl))
            _writer(master, settings).put("delete", bancache.ban_key(kind, name, tpl))


def _master_events(master: MasterView, name: str, **data: Any) -> None:
    for rule in ban.rules(master.config):
        if rule.event is None and rule.listens == name:
            _master_event(master, rule, **data)


def _master_event(master: MasterView, rule: "ban.Rule", connection: Connection | None = None, **_: Any) -> None:
    """A user-defined BanOnEvent naming one of the master's events (e.g. core.max-connection-rate): the
    connection's host is counted."""
    state = master.state.get(BanState)
    if state.table is None or connection is None:
        return
    server = master.config.server_for(*connection.local)
    if server is None or not ban.engine_for(master.config, server):
        return
    sid = master.config.sid(server)
    b = ban.count_event(state, rule, sid, ban.ban_sid(server, sid),
                        connection.remote[0])
    if b is not None:
        state.refresh(force=True)
        publish(master, b, server, connection.local)
        kick(master, b.type, b.name)


def check(config) -> list[tuple[str, bool]]:
    """`proftpy -t`: BanEngine needs a BanTable, as ProFTPD refuses to start without one; `BanCache memcache`
    needs a memcached to talk to."""
    problems = []
    if ban.engine_on_anywhere(config) and not config.main.get("BanTable"):
        problems.append((f"{VERSION}: missing required BanTable configuration", True))
    for server in config.servers:
        if server.get("BanCache") != "memcache" or not ban.engine_for(config, server):
            continue
        where = f"server '{server.name}'" if server.name else "the main server"
        if ban.cache_settings(server) is None:
            problems.append((f"{VERSION}: BanCache memcache without MemcacheEngine on and MemcacheServers "
                             f"({where}): bans are not shared", False))
    return problems


def status(master: MasterView):
    """The status page's section: the bans in force (read in the metrics exporter)."""
    table = master.state.get(BanState).table
    if table is None:
        return None

    def rows() -> list[dict]:
        now = time.time()
        return [{"type": TYPE_TEXT[b.type], "name": b.name, "server": b.sid or "all", "reason": b.reason,
                 "expires": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.expires)) if b.expires else "never"}
                for b in table.bans()[1] if b.expires == 0 or b.expires > now]
    return rows


MODULE = Module(
    ban.NAME, check=check, master_init=master_init, master_preload=lambda master: ban.prepare(master.config),
    master_tick=master_tick, master_reload=master_reload,
    master_stop=master_stop, veto=veto, status=status,
    channel_handlers=(ChannelHandler("mod_ban.banned", _on_banned), ChannelHandler("mod_ban.remote-ban", _on_remote),
                      ChannelHandler("mod_ban.cache-retry", _on_retry)))
