"""mod_core's process bookkeeping: the scoreboard (created by the master, one slot per session) and what the
master tells systemd (STATUS= with the session count, WATCHDOG=1 when the unit sets WatchdogSec).

Master: `master_init` creates the ScoreboardFile (fatal when that fails, as in ProFTPD) and shares it through
`master.services["scoreboard"]`, so every forked session inherits the open fds — a session that has chrooted and
dropped root still writes its slot without opening anything. `master_tick` scrubs dead pids every
ScoreboardScrub seconds, `master_reload` on SIGHUP, `master_stop` removes the file.

Session: the slot is claimed in `session_init` (refused without a slot unless `ScoreboardOptions
AllowMissingEntry`), the command is recorded in PRE_CMD and set back to idle in LOG_CMD, the user and directory
after login and CWD, transfer progress through `session.state["transfer_observer"]` (called by net/data.py's
Transfer), and the slot is released at `core.exit`. Directives live in modules/core.py.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from .. import scoreboard as sbm
from ..dispatch import LOG_CMD, LOG_CMD_ERR, PRE_CMD, Cmd, Hook
from ..reply import Reply

if TYPE_CHECKING:
    from ..master import Master
    from ..session import Session

NAME = "mod_core.c"
log = logging.getLogger("proftpy")

SERVICE = "scoreboard"                 # master.services key: the open Scoreboard, or None when disabled
SLOT_KEY = "scoreboard_slot"           # session.state key: this session's Slot
MAX_INITIAL_SLOTS = 4096
PROGRESS_EVERY = 0.1                   # seconds between two progress writes of one transfer


@dataclasses.dataclass
class MasterState:
    last_scrub: float
    last_status: str = ""
    last_watchdog: float = 0.0


def _mstate(master: "Master") -> MasterState:
    return master.services.setdefault("mod_scoreboard", MasterState(time.monotonic()))


# -- master ---------------------------------------------------------------------------------------------------
def scoreboard_path(config) -> str | None:
    path = config.main.get("ScoreboardFile")
    return None if path is None or sbm.is_disabled(path) else path


def master_init(master: "Master") -> None:
    path = scoreboard_path(master.config)
    _mstate(master)
    if path is None:
        master.services[SERVICE] = None
        log.info("scoreboarding disabled (ScoreboardFile %s)", master.config.main.get("ScoreboardFile"))
        return
    main = master.config.main
    slots = min(max(sbm.DEFAULT_SLOTS, main.get("MaxInstances") or 0), MAX_INITIAL_SLOTS)
    try:
        master.services[SERVICE] = sbm.Scoreboard.create(path, main.get("ScoreboardMutex"),
                                                         master_pid=os.getpid(), master_start=int(master.started),
                                                         slots=slots)
    except sbm.ScoreboardError as e:
        log.critical("fatal: unable to create the scoreboard: %s", e)
        raise SystemExit(f"proftpy: unable to create the scoreboard: {e}") from None


def master_tick(master: "Master") -> None:
    st = _mstate(master)
    sb = master.services.get(SERVICE)
    every = master.config.main.get("ScoreboardScrub")
    now = time.monotonic()
    if sb is not None and every and now - st.last_scrub >= every:
        st.last_scrub = now
        _scrub(sb)
    status = f"STATUS={master.status()}"
    if status != st.last_status:
        st.last_status = status
        master.notify(status)
    interval = watchdog_interval()
    if interval is not None and now - st.last_watchdog >= interval:
        st.last_watchdog = now
        master.notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Half of WatchdogSec (systemd passes WATCHDOG_USEC, and WATCHDOG_PID when meant for one process)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec), 0) / 2e6
    except ValueError:
        return None


def master_reload(master: "Master") -> None:
    sb = master.services.get(SERVICE)
    if sb is not None:
        _scrub(sb)
    path = scoreboard_path(master.config)
    if (path or None) != (sb.path if sb else None):
        log.warning("ScoreboardFile changes take effect at the next restart (still using %s)",
                    sb.path if sb else "none")


def master_stop(master: "Master") -> None:
    """Remove the files (only if they are still the ones this master created): the tools then say the server
    is not running instead of showing stale sessions."""
    sb = master.services.pop(SERVICE, None)
    if sb is None:
        return
    try:
        sb.remove()
    except OSError as e:
        log.warning("cannot remove the scoreboard %s: %s", sb.path, e.strerror)
        sb.close()


def _scrub(sb: sbm.Scoreboard) -> None:
    try:
        n = sb.scrub()
    except (OSError, sbm.ScoreboardError) as e:
        log.error("scoreboard scrub failed: %s", e)
        return
    if n:
        log.info("scoreboard scrub: cleared %d slot%s of exited sessions", n, "s" if n != 1 else "")


def sessions(master: "Master") -> list[sbm.Entry]:
    """The master's view of its sessions (ftpdctl kick/status): slots whose pid is one of our children."""
    sb = master.services.get(SERVICE)
    if sb is None:
        return []
    return [e for e in sb.entries() if e.pid in master.children]


# -- session --------------------------------------------------------------------------------------------------
def _open_for_inetd(session: "Session") -> sbm.Scoreboard | None:
    """inetd mode has no master: the first session creates the file, the others reuse it."""
    path = scoreboard_path(session.config)
    if path is None:
        return None
    return sbm.Scoreboard.open_or_create(path, session.config.main.get("ScoreboardMutex"))


def session_init(session: "Session") -> None:
    try:
        if SERVICE in session.services:
            sb = session.services[SERVICE]
        else:
            sb = session.services[SERVICE] = _open_for_inetd(session)
        if sb is None:
            return
        server = session.server
        slot = sb.claim(os.getpid(), server_addr=f"{session.local_addr}:{session.local_port}",
                        server_port=server.get("Port") or session.local_port, server_label=server.name,
                        client_addr=session.remote_addr, client_name=session.remote_name, protocol="ftp",
                        class_=session.conn_class or "", begin_idle=int(time.time()),
                        begin_session=int(session.started), cmd=sbm.IDLE_CMD)
    except (OSError, sbm.ScoreboardError) as e:
        if "AllowMissingEntry" in (session.conf("ScoreboardOptions") or []):
            log.warning("continuing without a scoreboard slot (AllowMissingEntry): %s", e)
            return
        log.error("unable to add scoreboard entry, refusing the connection: %s", e)
        session.send(Reply(421, "Service not available, closing control connection"))
        session.end("no scoreboard slot")
        return
    session.state[SLOT_KEY] = slot
    session.state["transfer_observer"] = _observe_transfer
    session.events.on("core.connect", _connected)
    session.events.on("mod_auth.authenticated", _logged_in)
    session.events.on("core.chdir", _changed_dir)
    session.events.on("core.exit", _exited)


def _write(session: "Session", fn: Callable[[sbm.Slot], Any]) -> None:
    """Scoreboard trouble is logged (once per session) and never reaches the client or aborts a transfer."""
    slot = session.state.get(SLOT_KEY)
    if slot is None:
        return
    try:
        fn(slot)
    except (OSError, sbm.ScoreboardError) as e:
        if not session.state.get("scoreboard_failed"):
            session.state["scoreboard_failed"] = True
            log.warning("scoreboard update failed: %s", e)


def _connected(session: "Session", **_: Any) -> None:
    """Other modules' session_init may have set the class and looked up the host name after the claim."""
    slot = session.state.get(SLOT_KEY)
    if slot is None:
        return
    values = slot.values
    wanted = {"class": session.conn_class or "", "client_name": session.remote_name}
    if any(values.get(k) != v for k, v in wanted.items()):
        _write(session, lambda s: s.update(**wanted))


def _logged_in(session: "Session", **_: Any) -> None:
    cwd = session.fs.cwd if session.fs is not None else "/"
    _write(session, lambda s: s.update(user=session.user or "", cwd=cwd))


def _changed_dir(session: "Session", path: str = "", **_: Any) -> None:
    _write(session, lambda s: s.update(cwd=path))


def _exited(session: "Session", **_: Any) -> None:
    _write(session, lambda s: s.release())
    session.state.pop(SLOT_KEY, None)


def _record_command(session: "Session", cmd: Cmd) -> None:
    arg = "" if cmd.name == "PASS" else cmd.arg
    _write(session, lambda s: s.command(cmd.name, arg))


def _back_to_idle(session: "Session", cmd: Cmd) -> None:
    _write(session, lambda s: s.idle())


def _observe_transfer(transfer: Any, phase: str) -> None:
    """net/data.py's Transfer calls this at "begin", on each "progress" step and at "end". Downloads know
    their size; `transfer.offset` is the REST offset of a RETR (the percentage counts it as done). Progress is
    written at most every PROGRESS_EVERY seconds: packing the slot for each sendfile() call cost a tenth of the
    download rate, and ftpwho/ftptop show tenths of a second at best."""
    session = transfer.session
    if phase == "begin":
        session.state["scoreboard_progress_at"] = 0.0
        _write(session, lambda s: s.begin_transfer(size=transfer.size or 0, done=0))
    elif phase == "progress":
        if transfer.seconds - session.state.get("scoreboard_progress_at", 0.0) < PROGRESS_EVERY:
            return
        session.state["scoreboard_progress_at"] = transfer.seconds
        done = getattr(transfer, "offset", 0) + transfer.bytes
        _write(session, lambda s: s.update_transfer(done, int(transfer.seconds * 1000), length=transfer.bytes))
    elif phase == "end":
        _write(session, lambda s: s.end_transfer())


hooks = [
    Hook(PRE_CMD, "*", _record_command),
    Hook(LOG_CMD, "*", _back_to_idle),
    Hook(LOG_CMD_ERR, "*", _back_to_idle),
]
