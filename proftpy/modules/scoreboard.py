"""mod_core's process bookkeeping: the scoreboard (created by the master, one slot per session) and what the
master tells systemd (STATUS= with the session count, WATCHDOG=1 when the unit sets WatchdogSec).

Master: `master_init` creates the ScoreboardFile (fatal when that fails, as in ProFTPD) and keeps it in the
master's `BoardState`, which every forked session inherits (`session.shared`) with the open fds — a session that
has chrooted and dropped root still writes its slot without opening anything. `master_tick` scrubs dead pids every
ScoreboardScrub seconds, `master_reload` on SIGHUP, `master_stop` removes the file.

Session: the slot is claimed in `session_init` (refused without a slot unless `ScoreboardOptions
AllowMissingEntry`), the command is recorded in PRE_CMD and set back to idle IDLE_AFTER seconds after LOG_CMD
unless another command came meanwhile (a client's next command usually does: one slot write per command instead
of two), the user and directory after login and CWD, the protocol when it changes (`core.protocol`: ftps after
AUTH TLS), transfer progress on the `core.transfer` events, and the slot is released at `core.exit`. Directives
live in modules/core.py.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from .. import scoreboard as sbm
from ..dispatch import LOG_CMD, LOG_CMD_ERR, PRE_CMD, Hook, Request
from ..module import Listener, MasterView, Module
from ..reply import Reply

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_core.c"
log = logging.getLogger("proftpy")

MAX_INITIAL_SLOTS = 4096
PROGRESS_EVERY = 0.1                   # seconds between two progress writes of one transfer


@dataclasses.dataclass
class BoardState:
    """The master's: the open scoreboard (None: disabled), inherited by every session."""

    board: sbm.Scoreboard | None = None
    opened: bool = False                # master_init ran (or an inetd session opened the file itself)
    last_scrub: float = dataclasses.field(default_factory=time.monotonic)
    last_status: str = ""
    last_watchdog: float = 0.0


@dataclasses.dataclass
class SlotState:
    """A session's: its slot, and the bookkeeping of its writes."""

    slot: sbm.Slot | None = None
    failed: bool = False                # a write failed (logged once)
    progress_at: float = 0.0            # transfer seconds at the last progress write
    done_at: float = 0.0                # when the last command ended: the idle time ftpwho shows counts from it
    idle_timer: Any = None              # the session's IDLE_TIMER, made once and re-armed after each command


def shared_board(session: "Session") -> sbm.Scoreboard | None:
    """The master's open scoreboard, for modules that count sessions (None without one)."""
    return session.shared.get(BoardState).board


# -- master ---------------------------------------------------------------------------------------------------
def scoreboard_path(config) -> str | None:
    path = config.main.get("ScoreboardFile")
    return None if path is None or sbm.is_disabled(path) else path


def master_init(master: MasterView) -> None:
    path = scoreboard_path(master.config)
    st = master.state.get(BoardState)
    st.opened = True
    if path is None:
        log.info("scoreboarding disabled (ScoreboardFile %s)", master.config.main.get("ScoreboardFile"))
        return
    main = master.config.main
    slots = min(max(sbm.DEFAULT_SLOTS, main.get("MaxInstances") or 0), MAX_INITIAL_SLOTS)
    try:
        st.board = sbm.Scoreboard.create(path, main.get("ScoreboardMutex"),
                                                         master_pid=os.getpid(), master_start=int(master.started),
                                                         slots=slots)
    except sbm.ScoreboardError as e:
        log.critical("fatal: unable to create the scoreboard: %s", e)
        raise SystemExit(f"proftpy: unable to create the scoreboard: {e}") from None


def master_tick(master: MasterView) -> None:
    st = master.state.get(BoardState)
    sb = st.board
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


def master_reload(master: MasterView) -> None:
    sb = master.state.get(BoardState).board
    if sb is not None:
        _scrub(sb)
    path = scoreboard_path(master.config)
    if (path or None) != (sb.path if sb else None):
        log.warning("ScoreboardFile changes take effect at the next restart (still using %s)",
                    sb.path if sb else "none")


def master_stop(master: MasterView) -> None:
    """Remove the files (only if they are still the ones this master created): the tools then say the server
    is not running instead of showing stale sessions."""
    st = master.state.get(BoardState)
    sb, st.board = st.board, None
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


def sessions(master: MasterView) -> list[sbm.Entry]:
    """The master's view of its sessions (ftpdctl kick/status): slots whose pid is one of our children."""
    sb = master.state.get(BoardState).board
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
    shared = session.shared.get(BoardState)
    try:
        if not shared.opened:               # inetd mode: no master made it
            shared.board, shared.opened = _open_for_inetd(session), True
        sb = shared.board
        if sb is None:
            return
        slot = sb.claim(os.getpid(), **_first_fields(session))
    except (OSError, sbm.ScoreboardError) as e:
        if "AllowMissingEntry" in (session.conf("ScoreboardOptions") or []):
            log.warning("continuing without a scoreboard slot (AllowMissingEntry): %s", e)
            return
        log.error("unable to add scoreboard entry, refusing the connection: %s", e)
        session.send(Reply(421, "Service not available, closing control connection"))
        session.end("no scoreboard slot")
        return
    session.state.get(SlotState).slot = slot


def _first_fields(session: "Session") -> dict[str, Any]:
    server = session.server
    return dict(server_addr=f"{session.local_addr}:{session.local_port}",
                server_port=server.get("Port") or session.local_port, server_label=server.name,
                client_addr=session.remote_addr, client_name=session.remote_name, protocol=session.protocol,
                class_=session.conn_class or "", begin_idle=int(time.time()), begin_session=int(session.started),
                cmd=sbm.IDLE_CMD)


def rehearse(session: "Session") -> None:
    """An idle child's warm-up: the claim's work without claiming (Scoreboard.rehearse_claim)."""
    sb = session.shared.get(BoardState).board
    if sb is not None:
        sb.rehearse_claim(os.getpid(), **_first_fields(session))


IDLE_AFTER = 0.1        # seconds without a command before the slot says "idle"
IDLE_TIMER = "scoreboard-idle"


def _write(session: "Session", fn: Callable[..., Any], *args: Any) -> None:
    """`fn(slot, *args)`. Scoreboard trouble is logged (once per session) and never reaches the client or aborts
    a transfer."""
    st = session.state.get(SlotState)
    if st.slot is None:
        return
    try:
        fn(st.slot, *args)
    except (OSError, sbm.ScoreboardError) as e:
        if not st.failed:
            st.failed = True
            log.warning("scoreboard update failed: %s", e)


def _connected(session: "Session", **_: Any) -> None:
    """Other modules' session_init may have set the class and looked up the host name after the claim."""
    slot = session.state.get(SlotState).slot
    if slot is None:
        return
    values = slot.values
    wanted = {"class": session.conn_class or "", "client_name": session.remote_name}
    if any(values.get(k) != v for k, v in wanted.items()):
        _write(session, lambda s: s.update(**wanted))


def _protocol(session: "Session", protocol: str = "", **_: Any) -> None:
    """ftps after AUTH TLS: ftpwho and ftptop show what the session speaks now."""
    _write(session, lambda s: s.update(protocol=protocol))


def _logged_in(session: "Session", **_: Any) -> None:
    cwd = session.fs.cwd if session.fs is not None else "/"
    _write(session, lambda s: s.update(user=session.user or "", cwd=cwd))


def _changed_dir(session: "Session", path: str = "", **_: Any) -> None:
    _write(session, lambda s: s.update(cwd=path))


def _exited(session: "Session", **_: Any) -> None:
    _write(session, lambda s: s.release())
    session.state.get(SlotState).slot = None


def _record_command(session: "Session", cmd: Request) -> None:
    if cmd.during_transfer:
        return              # answered while a transfer runs: the slot keeps naming the transfer (ProFTPD)
    session.timers.pop(IDLE_TIMER, None)    # the last command's "idle" is not written: this command replaces it
    _write(session, sbm.Slot.command, cmd.name, "" if cmd.name == "PASS" else cmd.arg)


def _back_to_idle(session: "Session", cmd: Request) -> None:
    """The slot says "idle" once IDLE_AFTER seconds passed without a command (a timer of the session), counted
    from now. The timer is made once per session and put back with a new deadline after each command (three
    Python calls fewer per command than making one each time)."""
    if cmd.during_transfer:
        return
    st = session.state.get(SlotState)
    if st.slot is not None:
        st.done_at = time.time()
        timer = st.idle_timer
        if timer is None:
            session.set_timer(IDLE_TIMER, IDLE_AFTER, _write_idle)
            st.idle_timer = session.timers[IDLE_TIMER]
        else:
            timer.deadline = time.monotonic() + IDLE_AFTER      # Timer.reset() without its frame
            session.timers[IDLE_TIMER] = timer


def _write_idle(session: "Session") -> None:
    session.timers.pop(IDLE_TIMER, None)
    _write(session, sbm.Slot.idle, session.state.get(SlotState).done_at)


def _transfer_begins(session: "Session", transfer: Any, **_: Any) -> None:
    session.state.get(SlotState).progress_at = 0.0
    _write(session, sbm.Slot.begin_transfer, transfer.size or 0, 0)


def _transfer_progress(session: "Session", transfer: Any, **_: Any) -> None:
    """Downloads know their size; `transfer.offset` is the REST offset of a RETR (the percentage counts it as
    done). Progress is written at most every PROGRESS_EVERY seconds: packing the slot for each sendfile() call
    cost a tenth of the download rate, and ftpwho/ftptop show tenths of a second at best."""
    st = session.state.get(SlotState)
    if st.slot is None or transfer.seconds - st.progress_at < PROGRESS_EVERY:
        return
    st.progress_at = transfer.seconds
    done = transfer.offset + transfer.bytes
    _write(session, lambda s: s.update_transfer(done, int(transfer.seconds * 1000), length=transfer.bytes))


def _transfer_ends(session: "Session", **_: Any) -> None:
    _write(session, sbm.Slot.end_transfer)


MODULE = Module(
    NAME, session_init=session_init, rehearse=rehearse,
    hooks=(Hook(PRE_CMD, "*", _record_command), Hook(LOG_CMD, "*", _back_to_idle),
           Hook(LOG_CMD_ERR, "*", _back_to_idle)),
    listeners=(Listener("core.connect", _connected), Listener("core.protocol", _protocol),
               Listener("mod_auth.authenticated", _logged_in),
               Listener("core.chdir", _changed_dir), Listener("core.exit", _exited),
               Listener("core.transfer-begin", _transfer_begins), Listener("core.transfer-progress", _transfer_progress),
               Listener("core.transfer-end", _transfer_ends)),
    master_init=master_init, master_tick=master_tick, master_reload=master_reload, master_stop=master_stop)
