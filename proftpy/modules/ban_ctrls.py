"""mod_ban's ftpdctl actions, in the master: `ban user|host|class|user@host [-s addr#port] NAME...`, `ban info
[-v] [-e]`, `permit ... NAME...|*`, with ProFTPD's texts (reference proftpd.md §6). Beyond ProFTPD, a ban or a
permit made here reaches Redis too (through modules/ban_master.py's writer)."""
from __future__ import annotations

import fcntl
import logging
import socket
import time

from ..bantable import BAN_SLOTS, CLASS, HOST, TEXT, TYPE_OF_TEXT, USER, USER_HOST, Ban
from ..ctrls import Action, CtrlsError, CtrlsRequest
from ..log import NOTICE
from ..module import MasterView, Module
from . import ban
from .ban import VERSION, BanState, ban_log, strtime
from .ban_master import _expired, kick, publish, unpublish

log = logging.getLogger("proftpy")


def _parse(req: CtrlsRequest, optstring: str) -> tuple[dict[str, str | bool], list[str]]:
    """GNU getopt over the words after the first one (options may follow names)."""
    opts: dict[str, str | bool] = {}
    names: list[str] = []
    words = list(req.args[1:])
    while words:
        w = words.pop(0)
        if w == "--":
            names += words
            break
        if w.startswith("-") and len(w) > 1:
            letter = w[1]
            if letter not in optstring.replace(":", ""):
                if ":" not in optstring:            # ban info's own options: ProFTPD names the action
                    raise CtrlsError(f"unsupported parameter: '{req.args[0]}'")
                raise CtrlsError(f"unsupported option: '{letter}'")
            if f"{letter}:" in optstring:
                value = w[2:] or (words.pop(0) if words else "")
                if not value:
                    raise CtrlsError(f"-{letter} requires server address")
                opts[letter] = value
            else:
                for ch in w[1:]:
                    if ch not in optstring:
                        raise CtrlsError(f"unsupported parameter: '{req.args[0]}'")
                    opts[ch] = True
        else:
            names.append(w)
    return opts, names


def _resolve(name: str) -> str | None:
    """A host name or address as the IP address bans are keyed by (numeric first: no DNS for an address)."""
    for flags in (socket.AI_NUMERICHOST, 0):
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM, 0, flags)
        except (OSError, UnicodeError):
            continue
        if infos:
            from ..net.connection import plain_ip
            return plain_ip(infos[0][4][0])
    return None


def _keyed(kind: int, names: list[str]) -> list[tuple[str, str | None]]:
    """(given, the name bans are keyed by) for each name: a host as its IP address (None when it does not
    resolve), any other name as given. Resolved before the table is locked: no DNS lookup under its lock."""
    return [(given, _resolve(given) if kind == HOST else given) for given in names]


def _where(server) -> str:
    """A server's first address and port, as ProFTPD names a vhost: `addr#port`."""
    addr = server.addresses[0] if server.addresses else "0.0.0.0"
    return f"{addr}#{server.get('Port')}"


def _sid_of(master: MasterView, text: str) -> int:
    """`-s addr#port` (port 21 by default) -> that server's id."""
    addr, _, port_text = text.partition("#")
    port = int(port_text) if port_text.isdigit() else (21 if not port_text else -1)
    ip = _resolve(addr) if addr else None
    if ip is not None and port > 0:
        for server in master.config.servers:
            if server.get("Port") == port and ip in server.addresses:
                return master.config.sid(server)
    raise CtrlsError(f"no such server '{addr}#{port if port >= 0 else port_text}'")


def _server(master: MasterView, sid: int):
    return master.config.servers[sid - 1] if 0 < sid <= len(master.config.servers) else None


def _ready(master: MasterView, req: CtrlsRequest) -> BanState:
    state = master.state.get(BanState)
    if not req.args:
        raise CtrlsError("missing parameters")
    if state.table is None or not ban.engine_on_anywhere(master.config):
        raise CtrlsError(f"{VERSION} not enabled")
    return state


def ban_action(master: MasterView, req: CtrlsRequest) -> list[str]:
    """ftpdctl ban user|host|class|user@host [-s addr#port] NAME... | ban info [-v] [-e]."""
    state = _ready(master, req)
    kind_text = req.args[0]
    if kind_text == "info":
        opts, _ = _parse(req, "ev")
        return info(master, state, bool(opts.get("v")), bool(opts.get("e")))
    kind = TYPE_OF_TEXT.get(kind_text)
    if kind is None:
        raise CtrlsError(f"unknown ban action requested: '{kind_text}'")
    opts, names = _parse(req, "s:")
    sid = _sid_of(master, str(opts["s"])) if "s" in opts else 0
    if not names:
        raise CtrlsError("missing parameters")
    lines = []
    reason = f"requested by '{req.peer.user}' on {strtime(time.time())}"
    for given, name in _keyed(kind, names):
        if name is None:
            lines.append(f"ban: unknown host '{given}'")
            continue
        if len(name) >= TEXT:
            lines.append(f"ban: name too long: '{given[:40]}...'")
            continue
        new = Ban(kind, name, sid, 0, reason, "", int(time.time()))
        with state.table.locked(fcntl.LOCK_EX):
            current = [b for b in state.table._bans() if b.applies(sid, time.time())]
            if any((b.type, b.name) == (kind, name) for b in current):
                lines.append(f"{kind_text} {given} already banned")
                continue
            added = len(current) < BAN_SLOTS and state.table.add_ban(new)
        if not added:
            lines.append(f"maximum list size reached, unable to ban {kind_text} '{given}'")
            continue
        ban_log(state, f"added '{given}' to banned {_plural(kind)} list")
        log.log(NOTICE, "%s: ftpdctl ban %s %s by %s", VERSION, kind_text, name, req.peer.describe())
        lines.append(f"{kind_text} {given} banned")
        state.refresh(force=True)
        kick(master, kind, name)
        publish(master, new, _server(master, sid) or master.config.main)
    return lines


def _plural(kind: int) -> str:
    return {USER: "users", HOST: "hosts", CLASS: "classes", USER_HOST: "user@hosts"}[kind]


def permit_action(master: MasterView, req: CtrlsRequest) -> list[str]:
    """ftpdctl permit user|host|class|user@host [-s addr#port] NAME...|*."""
    state = _ready(master, req)
    kind_text = req.args[0]
    opts, names = _parse(req, "s:")
    sid = _sid_of(master, str(opts["s"])) if "s" in opts else 0
    kind = TYPE_OF_TEXT.get(kind_text)
    if kind is None:
        raise CtrlsError(f"unknown ban action requested: '{kind_text}'")
    if not names:
        raise CtrlsError("missing parameters")
    _expired(master)
    _, bans = state.table.bans()
    if not bans:
        for name in names:
            if name != "*":
                unpublish(master, kind, _resolve(name) or name if kind == HOST else name)
        return ["permit request unnecessary", f"no {_plural(kind)} are banned"]
    server = _server(master, sid)
    lines = []
    keyed = _keyed(kind, names) if names[0] != "*" else []
    with state.table.locked(fcntl.LOCK_EX):
        current = state.table._bans()
        if names[0] == "*":
            for b in current:
                if b.type == kind and (sid == 0 or kind == CLASS or b.sid == sid):
                    state.table.clear_ban(b.slot)
                    unpublish(master, kind, b.name)
            lines.append(f"all {_plural(kind)} permitted")
        else:
            for given, name in keyed:
                if name is None:
                    lines.append(f"unable to resolve '{given}' to an IP address")
                    continue
                hits = [b for b in current if (b.type, b.name) == (kind, name) and (sid == 0 or b.sid == sid)]
                for b in hits:
                    state.table.clear_ban(b.slot)
                    current.remove(b)
                unpublish(master, kind, name)
                if hits:
                    where = f"banned {_plural(kind)}" if kind in (HOST, CLASS) else "ban"
                    ban_log(state, f"removed '{given}' from {where} list")
                    lines.append(f"{kind_text} '{given}' permitted")
                elif server is None:
                    lines.append(f"{kind_text} '{given}' not banned")
                else:
                    lines.append(f"{kind_text} '{given}' not banned on {_where(server)}")
    state.refresh(force=True)
    return lines


def _vhost_line(master: MasterView, sid: int) -> list[str]:
    server = _server(master, sid)
    if server is None:
        return []
    return [f"    <VirtualHost>: {server.name} ({_where(server)})"]


def info(master: MasterView, state: BanState, verbose: bool, events: bool) -> list[str]:
    """ProFTPD's `ban info` text, quirks included (a user@host list after a user list has no heading of its
    own; its entries follow the users')."""
    _expired(master)
    _, bans = state.table.bans()
    now = time.time()
    lines: list[str] = []
    if bans:
        have_user = have_host = have_class = False
        for kind in (USER, USER_HOST, HOST, CLASS):
            for b in (b for b in bans if b.type == kind):
                if kind in (USER, USER_HOST) and not have_user:
                    lines.append("Banned Users:" if kind == USER else "Banned User@Hosts:")
                    have_user = True
                elif kind == HOST and not have_host:
                    lines += ([""] if have_user else []) + ["Banned Hosts:"]
                    have_host = True
                elif kind == CLASS and not have_class:
                    lines += ([""] if have_host else []) + ["Banned Classes:"]
                    have_class = True
                lines.append(f"  {b.name}")
                if verbose:
                    lines.append(f"    Reason: {b.reason}")
                    if b.expires:
                        lines.append(f"    Expires: {strtime(b.expires)} (in {max(0, int(b.expires - now))} "
                                     "seconds)")
                    else:
                        lines.append("    Expires: never")
                    lines += _vhost_line(master, b.sid)
    else:
        lines.append("No bans")
    if events:
        lines.append("")
        entries = state.table.events()
        if entries:
            lines.append("Ban Events:")
            for e in entries:
                lines += [f"  Event: {ban.EVENT_NAMES.get(e.type, '?')}", f"  Source: {e.source}",
                          f"    Occurrences: {e.count}/{e.max}",
                          f"    Entry Expires: {max(0, int(e.start + e.window - now))} seconds"]
                lines += _vhost_line(master, e.sid)
        else:
            lines.append("No ban events")
    return lines


MODULE = Module(ban.NAME, ctrls_actions=(
    Action("ban", ban_action, acl="BanControlsACLs", help="ban a class, host, or user from using the daemon"),
    Action("permit", permit_action, acl="BanControlsACLs",
           help="allow a banned class, host or user to use the daemon")))
