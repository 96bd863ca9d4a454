"""mod_shaper: the daemon's download and upload rates (ShaperAll) shared out among the logged-in sessions by their
shares, through the ShaperTable (proftpy/shapertable.py) that the master creates and every session inherits.

- After a successful PASS, with ShaperEngine on where the session logged in, a ShaperTable and both overall
  rates configured, the session adds its record (ShaperSession's priority and share adjustments), every rate is
  computed again, and the session tells the master (`mod_shaper.changed`), which sends SIGUSR2 to the other
  shaped sessions (a session that dropped root may not signal another user's). At exit the session takes its
  record out the same way; the master takes out the record of a session that died without doing so.
- On SIGUSR2 a session reads its record and hands its rates to the transfer engine (`DataState.shaping`): the
  next RETR/STOR/STOU/APPE paces at the session's rate when the shaper's priority is above the rank of the
  TransferRate line that applies (xfer.py `rate_for`), and a running one changes pace at once (ProFTPD keeps a
  running transfer at the rate it began with).
- `ftpdctl shaper all|info|sess` (ShaperControlsACLs) read and rewrite the table in the master, which then
  signals the sessions.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING, Any

from .. import transfer
from ..config.registry import SERVER, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Path
from ..ctrls import Action, ActionAcl, CtrlsRequest, Response
from ..dispatch import POST_CMD, Hook, Request
from ..module import ChannelHandler, Child, Listener, MasterView, Module
from ..shapertable import (NO_PRIORITY, SETTINGS, Entry, Refused, ShaperTable, ShaperTableError, Table, atoi,
                           setting)
from ..transfer.datastate import Shaping
from . import scoreboard
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_shaper.c"
VERSION = "mod_shaper/0.6.6"
CHANGED = "mod_shaper.changed"
log = logging.getLogger("proftpy")


# -- directives --------------------------------------------------------------------------------------------------
def _pairs(args: list[str], most: int) -> list[tuple[str, str]]:
    if len(args) < 2 or len(args) > most or len(args) % 2:
        raise ValueError("wrong number of parameters")
    return [(args[i], args[i + 1]) for i in range(0, len(args), 2)]


def _shaper_all(args: list[str]) -> tuple[tuple[str, Any], ...]:
    """`ShaperAll [priority n] [rate r] [downrate r] [uprate r] [shares n] [downshares n] [upshares n]`, ProFTPD's
    checks and texts; the (setting, value) pairs in order (later lines and words win)."""
    out: list[tuple[str, Any]] = []
    for word, text in _pairs(args, 14):
        try:
            out.append((word, setting(word, text)))
        except KeyError:
            raise ValueError(f"unknown option: '{word}'") from None
        except Refused as e:
            raise ValueError(f"invalid {word} parameter" if e.value is None
                             else f"{word} must be greater than {SETTINGS[word][1]:g}") from None
    return tuple(out)


def _shaper_session(args: list[str]) -> tuple[int, int, int]:
    """`ShaperSession [priority n] [shares +|-n] [downshares +|-n] [upshares +|-n]` -> (priority or -1, down
    adjustment, up adjustment)."""
    prio, down, up = NO_PRIORITY, 0, 0
    for word, value in _pairs(args, 8):
        if word in ("shares", "downshares", "upshares"):
            if value[:1] not in ("+", "-"):
                raise ValueError(f"{word} parameter must start with '+' or '-'")
            if word != "upshares":
                down = atoi(value)
            if word != "downshares":
                up = atoi(value)
        elif word == "priority":
            prio = atoi(value)
            if prio < 0:
                raise ValueError("priority must be greater than 0")
        else:
            raise ValueError(f"unknown option: '{word}'")
    return prio, down, up


_acl = ActionAcl.parser({"all", "info", "sess"}, "shaper action")

directives = (
    Directive("ShaperEngine", Flag, SVGA, False, Merge.DOWN,
              "Shape this server's sessions (read where the session logs in: `<Anonymous>`, mod_ifsession blocks)."),
    Directive("ShaperAll", Custom(_shaper_all, "[priority n] [rate|downrate|uprate KB/s] "
                                              "[shares|downshares|upshares n]"), SERVER, None, Merge.SERVER, "The daemon's overall rates in KiB/s, default shares (5) and priority (10) "
              "of a shaped session; both a download and an upload rate are needed.", repeat=True),
    Directive("ShaperSession", Custom(_shaper_session, "[priority n] [shares|downshares|upshares +n|-n]"), SVGA,
              None, Merge.DOWN, "This session's priority and its shares above or below the default."),
    Directive("ShaperTable", Path(), SERVER, None, Merge.SERVER,
              "The file the sessions share their rates through (required; created by the daemon, removed at stop)."),
    Directive("ShaperLog", Path(none_ok=True), SERVER, None, Merge.SERVER, "mod_shaper's own log file."),
    Directive("ShaperControlsACLs", Custom(_acl, "all|info|sess allow|deny user|group list"), SERVER, None,
              Merge.SERVER, "Who may use ftpdctl's shaper all/info/sess; default: nobody.", repeat=True),
)


def configured(config) -> Table:
    """The overall settings the configuration gives (ShaperAll lines, in order, over ProFTPD's defaults)."""
    table = Table()
    for p in config.main.section.all("ShaperAll"):
        for word, value in p.value:
            table.set(word, value)
    return table


# -- the master --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ShaperMaster:
    table: ShaperTable | None = None
    log: ModuleLog = dataclasses.field(default_factory=lambda: ModuleLog(VERSION))
    scrubbing: bool = False             # the core.child-exited listener is in place


def _open(st: ShaperMaster, config) -> None:
    """Open ShaperLog and the table (again after a reload: a new path)."""
    st.log.open(config.main.get("ShaperLog"))
    path = config.main.get("ShaperTable")
    if st.table is not None and st.table.path != path:
        st.table.close()
        st.table = None
    if path is None:
        st.log.write("no ShaperTable configured")
        return
    if st.table is None:
        try:
            st.table = ShaperTable.open(path, configured(config))
        except (ShaperTableError, OSError) as e:
            st.log.write(str(e))
            log.warning("%s: %s", VERSION, e)


def master_init(master: MasterView) -> None:
    """Open the table; a reaped session's record goes (registered on the master's bus here, because the
    listener needs this master: a declared Listener gets the event's data only)."""
    _open(master.state.get(ShaperMaster), master.config)
    _scrub(master)
    st = master.state.get(ShaperMaster)
    if not st.scrubbing:
        st.scrubbing = True
        master.events.on("core.child-exited", lambda pid, child=None, **_: child and _scrub(master, {pid}))


def master_reload(master: MasterView) -> None:
    """A new ShaperTable path is opened; the table itself keeps its settings (ProFTPD's: ShaperAll of the new
    configuration applies once the daemon has been stopped, or through `ftpdctl shaper all`)."""
    _open(master.state.get(ShaperMaster), master.config)
    _scrub(master)


def master_stop(master: MasterView) -> None:
    """The table goes with the daemon (ProFTPD unlinks it at shutdown)."""
    st = master.state.get(ShaperMaster)
    if st.table is not None:
        try:
            os.unlink(st.table.path)
        except OSError:
            pass            # already gone
        st.table.close()
        st.table = None
    st.log.close()


def _signal_sessions(master: MasterView, table: Table, exclude: int = 0) -> None:
    """SIGUSR2 to every shaped session of ours but `exclude`: they read their new rates."""
    for e in table.sessions:
        if e.pid != exclude and e.pid in master.children:
            try:
                os.kill(e.pid, signal.SIGUSR2)
            except ProcessLookupError:
                pass        # exited meanwhile: its record goes when it is reaped


def _scrub(master: MasterView, pids: set[int] | None = None) -> None:
    """Take out the records of sessions that are gone (`pids`, or any that is not one of our children) and tell
    the others their new rates."""
    st = master.state.get(ShaperMaster)
    if st.table is None:
        return
    try:
        if pids is not None and not any(st.table.read().find(pid) for pid in pids):
            return
        with st.table.edit() as table:
            gone = [e.pid for e in table.sessions
                    if (e.pid in pids if pids is not None else e.pid not in master.children)]
            if not gone:
                raise _Unchanged
            table.sessions = [e for e in table.sessions if e.pid not in gone]
    except _Unchanged:
        return
    except (ShaperTableError, OSError) as e:
        st.log.write(f"error scrubbing ShaperTable: {e}")
        return
    for pid in gone:
        st.log.write(f"removed dead session (pid {pid}) from ShaperTable")
    _signal_sessions(master, table)


class _Unchanged(Exception):
    """Leaves `ShaperTable.edit` without writing."""


def _on_changed(master: MasterView, child: Child, message: dict, fds: list[int]) -> None:
    """A session came or went: the other shaped sessions read their new rates. Nothing of the message is read."""
    for fd in fds:
        os.close(fd)
    st = master.state.get(ShaperMaster)
    if st.table is None:
        return
    try:
        table = st.table.read()
    except (ShaperTableError, OSError) as e:
        st.log.write(f"error reading ShaperTable: {e}")
        return
    _signal_sessions(master, table, exclude=child.pid)


# -- the session -------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SessionShaper:
    table: ShaperTable | None = None        # set while the session is shaped
    editing: bool = False                   # the session is rewriting the table: a signal waits for the end
    missed: bool = False


def _log(session: "Session", text: str) -> None:
    session.shared.get(ShaperMaster).log.write(text)


def _login(session: "Session", request: Request) -> None:
    """POST_CMD PASS: shape the session (ProFTPD's shaper_post_pass, with its log lines)."""
    if not session.conf("ShaperEngine"):
        return
    shared = session.shared.get(ShaperMaster)
    if session.config.main.get("ShaperTable") is None:
        _log(session, "ShaperTable not configured, disabling ShaperEngine")
        return
    if shared.table is None:
        _log(session, "ShaperTable not open, disabling ShaperEngine")
        return
    overall = configured(session.config)
    if overall.downrate < 0 or overall.uprate < 0:
        _log(session, "overall rates negative or not configured, disabling ShaperEngine")
        return
    prio, down, up = session.conf("ShaperSession") or (NO_PRIORITY, 0, 0)
    st = session.state.get(SessionShaper)
    st.table = shared.table
    signal.signal(signal.SIGUSR2, lambda signum, frame: _on_signal(session))
    pid = os.getpid()
    if _edit(session, lambda t: t.sessions.append(Entry(pid, t.prio if prio == NO_PRIORITY else prio, down, up))):
        _tell_master(session)


def _edit(session: "Session", change) -> bool:
    """Change the table under its lock, then take this session's new rates; False (logged) when it failed."""
    st = session.state.get(SessionShaper)
    st.editing = True
    try:
        with st.table.edit() as table:
            change(table)
    except (ShaperTableError, OSError) as e:
        _log(session, f"error updating ShaperTable: {e}")
        return False
    finally:
        st.editing = False
    _take(session, table)
    if st.missed:
        st.missed = False
        _on_signal(session)
    return True


def _tell_master(session: "Session") -> None:
    """The other shaped sessions must read their new rates: the master signals them (a session that dropped
    root may not); without a master (inetd) the session signals those it may."""
    if session.channel is not None:
        from ..net.channel import ChannelError
        try:
            session.channel.send({"type": CHANGED})
        except ChannelError as e:
            _log(session, f"error telling the master: {e}")
        return
    table = session.state.get(SessionShaper).table.peek()
    for e in table.sessions if table is not None else ():
        if e.pid != os.getpid():
            try:
                os.kill(e.pid, signal.SIGUSR2)
            except OSError:
                pass        # another user's session, or gone


def _on_signal(session: "Session") -> None:
    """SIGUSR2, between two bytecodes of the session: read the table without a lock (the session may hold it)."""
    st = session.state.get(SessionShaper)
    if st.table is None:
        return
    if st.editing:
        st.missed = True
        return
    table = st.table.peek()
    if table is None:
        _log(session, f"received signal, no updates for pid {os.getpid()}")
        return
    _take(session, table)


def _take(session: "Session", table: Table) -> None:
    """This session's record -> the transfer engine's rates, and the running transfer's pace if they govern it."""
    me = table.find(os.getpid())
    if me is None:
        return
    _log(session, f"received prio {me.prio}, rate {me.downrate:3.2f} down, {me.uprate:3.2f} up")
    data = transfer.state(session)
    governs = data.shaping.governs if data.shaping is not None else False
    data.shaping = Shaping(me.prio, max(me.downrate, 0.0) * 1024.0, max(me.uprate, 0.0) * 1024.0, governs)
    running = data.transfer
    if running is not None and governs:
        bps = data.shaping.rate(running.cmd.name)
        running.set_rate((bps, 0) if bps > 0 else None)


def _exit(session: "Session", **_: Any) -> None:
    st = session.state.get(SessionShaper)
    if st.table is None:
        return
    pid = os.getpid()
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if _edit(session, lambda t: t.sessions.__setitem__(slice(None), [e for e in t.sessions if e.pid != pid])):
        _tell_master(session)
    st.table = None


def session_init(session: "Session") -> None:
    """inetd mode: no master opened the table; the session does, while it may (before login)."""
    if session.channel is None and session.config.main.get("ShaperTable") is not None:
        _open(session.shared.get(ShaperMaster), session.config)


# -- ftpdctl shaper all|info|sess --------------------------------------------------------------------------------
def shaper_action(master: MasterView, req: CtrlsRequest) -> Response | list[str]:
    if not req.args:
        return Response.error("shaper: missing required parameters")
    what = req.args[0]
    handler = {"all": _ctl_all, "info": _ctl_info, "sess": _ctl_sess}.get(what)
    if handler is None:
        return Response.error(f"unknown shaper action: '{what}'")
    if master.state.get(ShaperMaster).table is None:
        return Response.error("error handling request")
    return handler(master, req.args[1:])


def _ctl_info(master: MasterView, args: list[str]) -> Response | list[str]:
    try:
        return master.state.get(ShaperMaster).table.read().info()
    except (ShaperTableError, OSError) as e:
        master.state.get(ShaperMaster).log.write(f"error refreshing ShaperTable: {e}")
        return Response.error("error handling request")


def _apply_all(table: Table, word: str, text: str) -> str:
    """One `shaper all` setting applied to `table`: its response line; ValueError with the refusal."""
    try:
        value = setting(word, text)
    except KeyError:
        raise ValueError(f"unknown shaper all option '{word}'") from None
    except Refused as e:
        least = SETTINGS[word][1]
        if e.value is None:
            raise ValueError(f"invalid {word} value ({text})") from None
        if isinstance(least, float):
            raise ValueError(f"{word} must be greater than 0 ({e.value:3.2f})") from None
        raise ValueError(f"{word} ({e.value}) must be greater than {least}") from None
    table.set(word, value)
    if word == "rate":
        return f"overall rates ({table.downrate:3.2f} down, {table.uprate:3.2f} up) set"
    if word == "shares":
        return f"default shares ({table.downshares} down, {table.upshares} up) set"
    shown = f"{value:3.2f}" if isinstance(value, float) else value
    return f"{'overall' if isinstance(value, float) else 'default'} {word} ({shown}) set"


def _ctl_all(master: MasterView, args: list[str]) -> Response:
    if len(args) < 2 or len(args) > 14 or len(args) % 2:
        return Response.error("wrong number of parameters")
    st = master.state.get(ShaperMaster)
    lines: list[str] = []
    try:
        with st.table.edit() as table:
            failed = False
            for i in range(0, len(args), 2):
                try:
                    lines.append(_apply_all(table, args[i], args[i + 1]))
                except ValueError as e:
                    lines.append(str(e))
                    failed = True
            if failed:
                raise _Unchanged
    except _Unchanged:
        return Response(-1, lines)
    except (ShaperTableError, OSError) as e:
        st.log.write(f"error write-locking ShaperTable: {e}")
        return Response(-1, lines + ["error handling request"])
    _signal_sessions(master, table)
    return Response(0, lines)


def _sess_options(args: list[str]) -> tuple[int, int, int, list[str], bool]:
    """`shaper sess`'s options -> (priority, down, up, response lines, ok); ValueError for a refusal that ends the
    request at once (a share count without its sign), with the lines so far."""
    prio, down, up, lines, ok = NO_PRIORITY, 0, 0, [], True
    for i in range(2, len(args), 2):
        word, value = args[i], args[i + 1]
        if word in ("shares", "downshares", "upshares"):
            if value[:1] not in ("+", "-"):
                raise ValueError(lines + [f"{word} ({value}) must start with '+' or '-'"])
            incr = atoi(value)
            if incr == 0:
                lines.append(f"{word} cannot be 0")
                ok = False
                continue
            sign = "+" if incr > 0 else ""
            if word == "shares":
                down = up = incr
                lines.append(f"adjusted session downshares and upshares by {sign}{incr}")
            else:
                down, up = (incr, up) if word == "downshares" else (down, incr)
                lines.append(f"adjusted session {word} by {sign}{incr}")
        elif word == "priority":
            prio = atoi(value)
            if prio < 0:
                lines.append(f"priority ({prio}) must be greater than 0")
                ok = False
                continue
            lines.append(f"set session priority to {prio}")
        else:
            lines.append(f"unknown shaper session option '{word}'")
            ok = False
    return prio, down, up, lines, ok


def _address(name: str) -> str | None:
    try:
        return socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)[0][4][0]
    except (OSError, UnicodeError):
        return None


def _ctl_sess(master: MasterView, args: list[str]) -> Response:
    if len(args) < 4 or len(args) > 6 or len(args) % 2:
        return Response.error("wrong number of parameters")
    try:
        prio, down, up, lines, ok = _sess_options(args)
    except ValueError as e:
        return Response(-1, e.args[0])
    if not ok:
        return Response(-1, lines)
    kind, name = args[0], args[1]
    if kind == "host":
        addr = _address(name)
        if addr is None:
            return Response(-1, lines + [f"error resolving '{name}': {os.strerror(errno.ENOENT)}"])
        pids = [e.pid for e in scoreboard.sessions(master) if e.client_addr == addr]
    elif kind in ("user", "class"):
        pids = [e.pid for e in scoreboard.sessions(master) if (e.user if kind == "user" else e.class_) == name]
    else:
        return Response(-1, lines + [f"unknown shaper session target type: '{kind}'"])
    st = master.state.get(ShaperMaster)
    adjusted = False
    try:
        with st.table.edit() as table:
            for pid in pids:
                if table.adjust(pid, prio, down, up):
                    adjusted = True
                    continue
                why = os.strerror(errno.EINVAL if table.find(pid) else errno.ENOENT)
                st.log.write(f"error adjusting pid {pid}: {why}")
                lines.append(f"error adjusting pid {pid}: {why}")
    except (ShaperTableError, OSError) as e:
        st.log.write(f"error updating ShaperTable: {e}")
        return Response(-1, lines + ["error handling request"])
    if adjusted:
        _signal_sessions(master, table)
        lines.append("sessions adjusted")
    return Response(0, lines)


def _engine_somewhere(config) -> bool:
    """Whether any section switches ShaperEngine on: elsewhere the session hooks are left out (no cost)."""
    return config.sets("ShaperEngine")


hooks = (Hook(POST_CMD, "PASS", _login, active=_engine_somewhere),)

MODULE = Module(NAME, directives=directives, hooks=hooks, session_init=session_init,
                session_active=_engine_somewhere, listeners=(Listener("core.exit", _exit, _engine_somewhere),),
                master_init=master_init, master_reload=master_reload, master_stop=master_stop,
                channel_handlers=(ChannelHandler(CHANGED, _on_changed),),
                ctrls_actions=(Action("shaper", shaper_action, acl="ShaperControlsACLs",
                                      help="tune mod_shaper settings", acl_by_arg=True),))
