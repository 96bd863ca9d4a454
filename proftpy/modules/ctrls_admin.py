"""mod_ctrls_admin: the administrator's ftpdctl actions — status, kick, restart, shutdown, debug, trace.

They run in the master (see modules/ctrls.py); access is decided by AdminControlsACLs (nobody by default) and
AdminControlsEngine (on, off, or the list of actions that are on). Sessions are found through the scoreboard,
and only pids that are children of this master are ever signalled.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time

from .. import __version__, trace
from ..config.registry import SERVER, Directive, Merge
from ..config.types import Custom, parse_bool
from ..ctrls import Action, ActionAcl, CtrlsError, CtrlsRequest
from ..log import NOTICE, set_threshold
from ..module import MasterView, Module
from ..scoreboard import format_uptime
from . import scoreboard


NAME = "mod_ctrls_admin.c"
log = logging.getLogger("proftpy")
ACTIONS = ("debug", "kick", "restart", "shutdown", "status", "trace")


def _engine(args: list[str]):
    if len(args) != 1:
        raise ValueError("expected on|off|action[,action...]")
    try:
        return parse_bool(args[0])
    except ValueError:
        names = frozenset(a.strip().lower() for a in args[0].split(",") if a.strip())
        unknown = names - set(ACTIONS)
        if unknown:
            raise ValueError(f"unknown action(s): {', '.join(sorted(unknown))}") from None
        return names


directives = (
    Directive("AdminControlsEngine", Custom(_engine, "on|off|actions"), SERVER, True, Merge.SERVER,
              "Turn the admin actions on or off, or name the ones that are on."),
    Directive("AdminControlsACLs", Custom(ActionAcl.parse, "actions|all allow|deny user|group list"), SERVER,
              None, Merge.SERVER, "Who may use the admin actions; default: nobody.", repeat=True),
)


@dataclasses.dataclass
class Graceful:
    deadline: float | None          # monotonic time to stop waiting, or None: wait for the last session


@dataclasses.dataclass
class AdminState:
    """The master's: a graceful shutdown under way."""

    graceful: Graceful | None = None


# -- actions --------------------------------------------------------------------------------------------------
def status(master: MasterView, req: CtrlsRequest) -> list[str]:
    entries = scoreboard.sessions(master)
    authenticating = sum(1 for e in entries if not e.authenticated)
    n = len(master.children)
    graceful = master.state.get(AdminState).graceful
    state = "shutting down (graceful)" if graceful else "accepting connections"
    lines = [f"proftpy {__version__} standalone, pid {os.getpid()}, up for "
             f"{format_uptime(int(master.started), time.time())}, {state}",
             f"{n} session{'s' if n != 1 else ''}"
             + (f" ({authenticating} authenticating)" if entries else "")
             + (f", {len(master.idle)} idle" if master.idle else "")]    # pre-forked children (no sessions)
    bound = {(host, port) for host, port in master.listeners}
    for server in master.config.servers:
        port = server.get("Port")
        if not port:
            continue
        up = any(p == port for _, p in bound)
        addrs = ", ".join(f"{a}#{port}" for a in server.addresses) or f"*#{port}"
        lines.append(f"server '{server.name}' {addrs}: {'UP' if up else 'DOWN'}")
    return lines


def kick(master: MasterView, req: CtrlsRequest) -> list[str]:
    """kick user|host|class NAME...: SIGTERM to the matching sessions (they close without a reply)."""
    if len(req.args) < 2 or req.args[0].lower() not in ("user", "host", "class"):
        raise req.usage("user|host|class NAME [NAME...]")
    kind, names = req.args[0].lower(), req.args[1:]
    entries = scoreboard.sessions(master)
    if master.state.get(scoreboard.BoardState).board is None:
        raise CtrlsError("kick: the scoreboard is disabled (ScoreboardFile none): sessions cannot be found")
    lines = []
    for name in names:
        hits = [e for e in entries if _matches(e, kind, name)]
        for e in hits:
            try:
                os.kill(e.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            log.log(NOTICE, "ftpdctl kick %s %s: ending session %d (%s from %s) for %s", kind, name, e.pid, e.user,
                     e.client_addr, req.peer.describe())
        lines.append(f"kicked {kind} '{name}'" if hits else f"{kind} '{name}' not connected")
    return lines


def _matches(entry, kind: str, name: str) -> bool:
    if kind == "user":
        return entry.authenticated and entry.user == name
    if kind == "host":
        return name.lower() in (entry.client_addr.lower(), entry.client_name.lower())
    return entry.class_.lower() == name.lower()


def restart(master: MasterView, req: CtrlsRequest) -> str:
    """Reload the configuration (SIGHUP's work), now, and say whether it was taken."""
    if req.args:
        raise req.usage("(no arguments)")
    before = master.config
    master.reload()
    if master.config is before:
        raise CtrlsError("restart failed: the configuration was refused (see the SystemLog)")
    return "restarted server"


def shutdown(master: MasterView, req: CtrlsRequest) -> str:
    """shutdown: stop now (sessions get SIGTERM); shutdown graceful [SECONDS]: stop accepting, stop when the
    last session ends (or after SECONDS)."""
    args = [a.lower() for a in req.args]
    if not args:
        master.running = False
        log.log(NOTICE, "ftpdctl shutdown requested by %s", req.peer.describe())
        return "shutting down"
    if args[0] != "graceful" or len(args) > 2 or (len(args) == 2 and not args[1].isdigit()):
        raise req.usage("[graceful [SECONDS]]")
    timeout = int(args[1]) if len(args) == 2 else None
    master.state.get(AdminState).graceful = Graceful(None if timeout is None else time.monotonic() + timeout)
    master.stop_accepting()
    n = len(master.children)
    log.log(NOTICE, "ftpdctl graceful shutdown requested by %s: no new connections, waiting for %d session%s",
             req.peer.describe(), n, "s" if n != 1 else "")
    return f"shutting down gracefully: waiting for {n} session{'s' if n != 1 else ''}" \
           + (f" (at most {timeout} s)" if timeout is not None else "")


def debug(master: MasterView, req: CtrlsRequest) -> str:
    """debug level [N]: the master's debug level (inherited by sessions forked from now on)."""
    if not req.args or req.args[0].lower() != "level" or len(req.args) > 2:
        raise req.usage("level [N]")
    if len(req.args) == 1:
        return f"debug level: {master.opts.debug}"
    try:
        level = int(req.args[1])
    except ValueError:
        raise CtrlsError(f"debug: invalid level '{req.args[1]}'") from None
    if not 0 <= level <= 10:
        raise CtrlsError("debug: level must be between 0 and 10")
    master.opts.debug = level
    set_threshold(debug=level)
    trace.set_debug(level)
    return f"debug level set to {level}"


def trace_action(master: MasterView, req: CtrlsRequest) -> list[str]:
    """trace CHANNEL:LEVEL ... | trace info: set trace channels in the running master (and so in the sessions it
    forks from now on), written to the TraceLog (to the SystemLog when none is configured); `DEFAULT:LEVEL`
    sets every channel, level 0 turns a channel off. A reload goes back to the configuration's Trace lines."""
    if not req.args:
        raise req.usage("info | CHANNEL:LEVEL [CHANNEL:LEVEL...]")
    if req.args == ["info"]:
        return [f"{name}: {hi if lo == 1 else f'{lo}-{hi}'}" for name, (lo, hi) in sorted(trace.levels().items())] \
            or ["no trace channels set"]
    updates = {}
    for spec in req.args:
        name, sep, level = spec.partition(":")
        if not sep or not name or not level.isdigit():
            raise CtrlsError(f"trace: bad channel spec '{spec}' (use CHANNEL:LEVEL)")
        updates[name] = int(level)
    lines = []
    for name, level in updates.items():
        trace.set_channel(name, level)
        lines.append(f"trace channel '{name}' set to level {level}")
    return lines


# -- master hooks ---------------------------------------------------------------------------------------------
def master_tick(master: MasterView) -> None:
    graceful = master.state.get(AdminState).graceful
    if graceful is None:
        return
    if not master.children:
        log.log(NOTICE, "graceful shutdown: the last session has ended")
        master.running = False
    elif graceful.deadline is not None and time.monotonic() >= graceful.deadline:
        log.log(NOTICE, "graceful shutdown: time is up, ending %d session(s)", len(master.children))
        master.running = False


def master_reload(master: MasterView) -> None:
    """A reload rebinds the listeners: during a graceful shutdown, close them again."""
    if master.state.get(AdminState).graceful:
        master.stop_accepting()


ACL = "AdminControlsACLs"
ENGINE = "AdminControlsEngine"

MODULE = Module(
    NAME, directives=directives, master_tick=master_tick, master_reload=master_reload,
    ctrls_actions=(
        Action("debug", debug, acl=ACL, engine=ENGINE, help="debug level [N]: show or set the debug level"),
        Action("kick", kick, acl=ACL, engine=ENGINE, help="kick user|host|class NAME...: end those sessions"),
        Action("restart", restart, acl=ACL, engine=ENGINE, help="reload the configuration (as SIGHUP)"),
        Action("shutdown", shutdown, acl=ACL, engine=ENGINE,
               help="shutdown [graceful [SECONDS]]: stop the server (graceful: when the sessions have ended)"),
        Action("status", status, acl=ACL, engine=ENGINE, read_only=True, help="server status and session count"),
        Action("trace", trace_action, acl=ACL, engine=ENGINE,
               help="trace info | CHANNEL:LEVEL...: trace channels (TraceLog)"),
    ))
