"""mod_delay: USER and PASS answer no faster than they usually do here (plus a random jitter), so that timing does
not tell an unknown user from a wrong password from a right one. On by default, as in ProFTPD.

The learning is in the DelayTable (proftpy/delaytable.py, made by the master, its fd inherited by every session):
PRE_CMD notes the time; POST_CMD and POST_CMD_ERR compare the command's interval with the median of the row
and sleep the difference plus jitter when it was faster (and record the interval, at most 16 per session and
row, so one client cannot poison the table: beyond that `mod_delay.max-user` / `mod_delay.max-pass`); LOG_CMD
tops the wait up to DelayOnEvent's minimum (USER, PASS, and FailedLogin for a refused PASS); `core.connect`
waits DelayOnEvent Connect's min-max before the greeting.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from typing import TYPE_CHECKING, Any

from ..config.registry import SERVER, SVG, Directive, Merge
from ..config.types import Custom, Flag, Path
from ..ctrls import Action, ActionAcl, CtrlsError, CtrlsRequest
from ..delaytable import (MAX_USER_INTERVAL_US, PASS_ROW, SESSION_VALUES, USER_ROW, DelayTable, DelayTableError,
                          jittered, padding)
from ..dispatch import LOG_CMD, LOG_CMD_ERR, POST_CMD, POST_CMD_ERR, PRE_CMD, Hook, Request
from ..module import Listener, MasterView, Module

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_delay.c"
VERSION = "mod_delay/0.8"
DEFAULT_TABLE = "/var/run/proftpy/proftpy.delay"
EVENTS = ("USER", "PASS", "FailedLogin", "Connect")
log = logging.getLogger("proftpy")
_rng = random.SystemRandom()
_MS = re.compile(r"^(\d+)(?:-(\d+))?(ms|s|sec)?$", re.I)
_MMSS = re.compile(r"^(\d{1,2}):(\d{1,2})\.(\d{1,4})$")


def parse_duration(text: str) -> tuple[int, int]:
    """DelayOnEvent's delay as (min, max) milliseconds: `mm:ss.ms`, `N`, `Nms`, `Ns`/`Nsec`, or a `min-max` range
    of those (min below max)."""
    m = _MMSS.match(text)
    if m:
        ms = int(m[1]) * 60000 + int(m[2]) * 1000 + int(m[3])
        return ms, ms
    m = _MS.match(text)
    if not m:
        raise ValueError(f"error parsing delay parameter '{text}': Invalid argument")
    scale = 1000 if m[3] and m[3].lower() in ("s", "sec") else 1
    lo = int(m[1]) * scale
    hi = int(m[2]) * scale if m[2] is not None else lo
    if m[2] is not None and lo >= hi:
        raise ValueError(f"error parsing delay parameter '{text}': Invalid argument (min must be below max)")
    if hi > 2**31 - 1:
        raise ValueError(f"error parsing delay parameter '{text}': Numerical result out of range")
    return lo, hi


def _on_event(args: list[str]) -> tuple[str, int, int]:
    if len(args) != 2:
        raise ValueError("expected event and delay (USER|PASS|FailedLogin|Connect ms|min-max)")
    if args[0] not in EVENTS:
        raise ValueError(f"unknown/unsupported event: {args[0]}")
    lo, hi = parse_duration(args[1])
    return args[0], lo, hi


_acl = ActionAcl.parser({"info", "reset", "all"}, "delay action")


directives = (
    Directive("DelayEngine", Flag, SVG, True, Merge.SERVER,
              "Make USER and PASS take their usual time (timing-attack protection); on by default."),
    Directive("DelayTable", Path(none_ok=True), SERVER, DEFAULT_TABLE, Merge.SERVER,
              "File where the usual USER/PASS times are learned; `none`: only DelayOnEvent minimums."),
    Directive("DelayOnEvent", Custom(_on_event, "USER|PASS|FailedLogin|Connect ms|min-max"), SVG, None,
              Merge.SERVER, "At least this long for the event (a range adds a random part).", repeat=True),
    Directive("DelayControlsACLs", Custom(_acl, "info|reset|all allow|deny user|group list"), SERVER, None,
              Merge.SERVER, "Who may use ftpdctl's delay info/reset; default: nobody.", repeat=True),
)


# -- the master ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class DelayState:
    table: DelayTable | None = None


def _servers(config) -> list[tuple[int, str, int]]:
    return [(config.sid(s), s.addresses[0] if s.addresses else "", s.get("Port") or 0) for s in config.servers]


def open_table(config) -> DelayTable | None:
    if not config.main.get("DelayEngine"):
        return None
    path = config.main.get("DelayTable")
    if path is None:
        return None
    try:
        return DelayTable.open_or_create(path, _servers(config))
    except (DelayTableError, OSError) as e:
        log.warning("%s: %s: login times are not learned (DelayOnEvent minimums still apply)", VERSION, e)
        return None


def master_init(master: MasterView) -> None:
    master.state.get(DelayState).table = open_table(master.config)


def master_reload(master: MasterView) -> None:
    """The server set may have changed: the table is kept if it still fits, else reset."""
    st = master.state.get(DelayState)
    if st.table is not None:
        st.table.close()
    st.table = open_table(master.config)


def master_stop(master: MasterView) -> None:
    st = master.state.get(DelayState)
    if st.table is not None:
        st.table.close()
        st.table = None


# -- the session -----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SessionDelay:
    on: bool = False
    table: DelayTable | None = None
    sid: int = 0
    started: float = 0.0            # PRE_CMD of the USER or PASS being timed
    was_authenticated: bool = False
    delayed: dict = dataclasses.field(default_factory=lambda: {"USER": 0, "PASS": 0})    # µs slept so far
    added: dict = dataclasses.field(default_factory=lambda: {"USER": 0, "PASS": 0})      # values recorded
    minimum: dict = dataclasses.field(default_factory=dict)      # event -> (min, max) µs


def session_init(session: "Session") -> None:
    st = session.state.get(SessionDelay)
    st.on = bool(session.server.get("DelayEngine"))
    if not st.on:
        return
    st.sid = session.config.sid(session.server)
    shared = session.shared.get(DelayState)
    if shared.table is None and session.channel is None:        # inetd mode: no master made it
        shared.table = open_table(session.config)
    st.table = shared.table
    for event, lo, hi in (p.value for p in session.server.section.all("DelayOnEvent")):
        st.minimum.setdefault(event, (lo * 1000, hi * 1000))


def _wait(session: "Session", us: int) -> int:
    """Sleep `us` microseconds (nothing when not positive) and say so (`mod_delay.delay`, for the metrics)."""
    if us > 0:
        time.sleep(us / 1e6)
        session.events.emit("mod_delay.delay", session=session, seconds=us / 1e6)
    return us


def _pre(session: "Session", cmd: Request) -> None:
    st = session.state.get(SessionDelay)
    if st.on:
        st.delayed[cmd.name] = 0
        st.was_authenticated = session.authenticated
        st.started = time.monotonic()


def _post(session: "Session", cmd: Request) -> None:
    """Learn this interval and wait when it was faster than the usual one."""
    st = session.state.get(SessionDelay)
    if not st.on or st.table is None or st.was_authenticated or not st.started:
        return
    interval = int((time.monotonic() - st.started) * 1e6)
    which = USER_ROW if cmd.name == "USER" else PASS_ROW
    if which == USER_ROW:
        interval = min(interval, MAX_USER_INTERVAL_US)
    row = st.table.row_index(st.sid, which)
    if row is None:
        return
    add = st.added[cmd.name] < SESSION_VALUES
    try:
        median = st.table.learn(row, session.protocol if session.protocol in ("ftp", "ftps") else "ftp",
                                interval, add)
    except OSError as e:
        log.warning("%s: unable to use DelayTable '%s': %s", VERSION, st.table.path, e.strerror)
        return
    if add:
        st.added[cmd.name] += 1
    else:
        session.events.emit("mod_delay.max-user" if which == USER_ROW else "mod_delay.max-pass", session=session)
    st.delayed[cmd.name] = _wait(session, padding(interval, median, _rng))


def _log(session: "Session", cmd: Request) -> None:
    """DelayOnEvent USER/PASS: at least that long in all (what the median wait already took counts)."""
    st = session.state.get(SessionDelay)
    if st.on and cmd.name in st.minimum:
        _wait(session, st.minimum[cmd.name][0] - st.delayed[cmd.name])


def _log_failed_pass(session: "Session", cmd: Request) -> None:
    st = session.state.get(SessionDelay)
    if not st.on:
        return
    least = max(st.minimum.get("FailedLogin", (0, 0))[0], st.minimum.get("PASS", (0, 0))[0])
    _wait(session, least - st.delayed["PASS"])


def _connected(session: "Session", **_: Any) -> None:
    """DelayOnEvent Connect: min plus a random part up to max (half of min when no range is given)."""
    st = session.state.get(SessionDelay)
    if st.on and "Connect" in st.minimum:
        lo, hi = st.minimum["Connect"]
        _wait(session, jittered(lo, hi - lo, _rng))


# -- ftpdctl delay info|reset ----------------------------------------------------------------------------------
def delay_action(master: MasterView, req: CtrlsRequest) -> list[str]:
    table = master.state.get(DelayState).table
    if not master.config.main.get("DelayTable") or not master.config.main.get("DelayEngine"):
        raise CtrlsError("delay: DelayTable disabled")
    if not req.args:
        raise CtrlsError("delay: missing required parameters")
    if table is None:
        raise CtrlsError(f"unable to open DelayTable '{master.config.main.get('DelayTable')}'")
    if req.args[0] == "info":
        return table.info()
    if req.args[0] == "reset":
        table.reset()
        return [f"DelayTable '{table.path}' reset"]
    raise CtrlsError(f"unknown delay action: '{req.args[0]}'")


def status(master: MasterView):
    """The status page's section: the table's rows that hold values (read in the metrics exporter)."""
    table = master.state.get(DelayState).table
    return table.summary if table is not None else None


hooks = tuple(Hook(phase, name, fn) for name in ("USER", "PASS")
              for phase, fn in ((PRE_CMD, _pre), (POST_CMD, _post), (POST_CMD_ERR, _post), (LOG_CMD, _log))) + (
    Hook(LOG_CMD_ERR, "USER", _log), Hook(LOG_CMD_ERR, "PASS", _log_failed_pass))

MODULE = Module(NAME, directives=directives, hooks=hooks, session_init=session_init,
                listeners=(Listener("core.connect", _connected),),
                master_init=master_init, master_reload=master_reload, master_stop=master_stop, status=status,
                ctrls_actions=(Action("delay", delay_action, acl="DelayControlsACLs", help="tune mod_delay settings",
                                      acl_by_arg=True),))
