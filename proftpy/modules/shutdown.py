"""Ending sessions from outside: ftpshut's shutdown file, and the signals the master sends to a session.

- New connections after the deny time get `500 FTP server shut down (<msg>) -- please try again later`
  (checked in session_init, before chroot, so the file is still readable); after the disconnect time (when it
  comes first: `-l` shorter than `-d`) they get the 421 below at once.
- At the disconnect time the master (master_tick, about every second) sends SIGUSR1 to each session once; the
  session answers `421 FTP server shutting down - <msg>` and ends. A chrooted session cannot read /etc/shutmsg,
  so the master copies the file's text into an anonymous memory file (memfd) created before any fork, which every
  session inherits (`ShutdownMaster.memfd`).
- SIGTERM (ftpdctl kick, master stop) ends a session quietly, as ProFTPD's does.

How a signal reaches the command loop without polling: the handler only marks the session as ending and shuts
down the read side of the control socket, which makes the loop's select (or a transfer's poll) return at once
and read end-of-file. A session that does not get there within HARD_EXIT seconds (stuck writing to a client
that does not read) is ended by the kernel (SIGALRM, default action).
"""
from __future__ import annotations

import _signal
import dataclasses
import logging
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from .. import shutmsg
from ..log import NOTICE
from ..module import Listener, MasterView, Module
from ..reply import Reply

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_core.c"
log = logging.getLogger("proftpy")

HARD_EXIT = 10                   # seconds a signalled session may take to say goodbye


@dataclasses.dataclass
class ShutdownMaster:
    """The master's (sessions inherit it): the memfd holding the shutdown file's text, and what was seen."""

    memfd: int | None = None
    seen: tuple | None = None                      # (ino, mtime_ns, size) of the file last read
    state: shutmsg.ShutdownState | None = None
    signalled: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class ShutdownSession:
    signal: int | None = None                      # the signal that ends this session


# -- master ---------------------------------------------------------------------------------------------------
def master_init(master: MasterView) -> None:
    """Children inherit SIGUSR1 ignored until their session_init installs the handler, so a child the master
    signals while it is still starting is not killed (session_init then reads the file and ends it itself)."""
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    st = master.state.get(ShutdownMaster)
    try:
        st.memfd = os.memfd_create("proftpy-shutmsg", os.MFD_CLOEXEC)
    except (OSError, AttributeError) as e:
        log.warning("no memfd for the shutdown message (%s): chrooted sessions will get a generic text", e)
    master_tick(master)


def master_tick(master: MasterView) -> None:
    st = master.state.get(ShutdownMaster)
    path = shutmsg.default_path()
    try:
        info = os.stat(path)
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
    except FileNotFoundError:
        key = None
    except OSError as e:
        key = ("error", e.errno)
    if key != st.seen:
        st.seen = key
        _load(st, path)
    if st.state is None:
        return
    if time.time() >= st.state.disconnect_at:
        targets = [pid for pid in master.children if pid not in st.signalled]
        if targets:
            log.log(NOTICE, "shutdown: disconnecting %d session%s (%s)", len(targets),
                     "s" if len(targets) != 1 else "", path)
        for pid in targets:
            st.signalled.add(pid)
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass            # exited meanwhile: reaping will notice
        st.signalled &= set(master.children)


def _load(st: ShutdownMaster, path: str) -> None:
    """Read (or forget) the shutdown file; copy its text to the memfd the sessions read."""
    try:
        st.state = shutmsg.check(path)
    except shutmsg.ShutmsgError as e:
        log.error("ignoring the shutdown file: %s", e)
        st.state = None
    text = b""
    if st.state is not None:
        try:
            with open(path, "rb") as f:
                text = f.read(64 * 1024)
        except OSError:
            text = b""
        log.log(NOTICE, "shutdown scheduled for %s (new connections refused from %s, sessions disconnected at %s)",
                 shutmsg.format_time(st.state.shutdown_at), shutmsg.format_time(st.state.deny_at),
                 shutmsg.format_time(st.state.disconnect_at))
    else:
        st.signalled.clear()
    if st.memfd is not None:
        os.ftruncate(st.memfd, 0)
        os.pwrite(st.memfd, text, 0)


def master_stop(master: MasterView) -> None:
    st = master.state.get(ShutdownMaster)
    if st.memfd is not None:
        os.close(st.memfd)
        st.memfd = None


# -- session --------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    for sig in (signal.SIGUSR1, signal.SIGTERM):     # the C function: signal.signal turns the old handler into
        _signal.signal(sig, lambda signum, frame: _on_signal(session, signum))    # an enum member (cold code)
    try:
        state = shutmsg.check()
    except shutmsg.ShutmsgError as e:
        log.error("ignoring the shutdown file: %s", e)
        return
    if state is None:
        return
    text = state.expanded(**_cookies(session))
    if state.denying:
        log.log(NOTICE, "connection refused (%s) from %s [%s]", text, session.remote_name, session.remote_addr)
        session.send(Reply(500, shutmsg.DENY_REPLY.format(text)))
        session.end("server shut down")
    elif state.disconnecting:        # -l shorter than -d: admitted, but the master would end it at once
        session.send(Reply(421, shutmsg.DISCONNECT_REPLY.format(text)))
        session.end("server shutting down")


def rehearse(session: "Session") -> None:
    """An idle child's warm-up: read the shutdown file as session_init does (a broken one is reported by each
    session's own start, not here)."""
    try:
        shutmsg.check()
    except shutmsg.ShutmsgError:
        return


def _cookies(session: "Session") -> dict[str, str]:
    fs = session.fs
    return {"cwd": fs.cwd if fs is not None else "", "local": session.local_addr, "remote": session.remote_name,
            "user": session.user or "", "server_name": session.server.name}


def _on_signal(session: "Session", signum: int) -> None:
    """Runs between two bytecodes of the session: never send from here (a reply may be half written)."""
    session.state.get(ShutdownSession).signal = signum
    if signum == signal.SIGUSR1:
        session.end("server shutting down")
    else:
        session.end("terminated by signal", cause="signal")
    try:
        session.ctrl.sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass                    # already closed: the loop is ending anyway
    signal.setitimer(signal.ITIMER_REAL, HARD_EXIT)


def _exiting(session: "Session", **_: Any) -> None:
    if session.state.get(ShutdownSession).signal != signal.SIGUSR1:
        return
    state = _current_state(session)
    text = state.expanded(**_cookies(session)) if state is not None else ""
    session.send(Reply(421, shutmsg.DISCONNECT_REPLY.format(text)))


def _current_state(session: "Session") -> shutmsg.ShutdownState | None:
    """The master's copy (works after chroot); the file itself when there is no master (inetd)."""
    fd = session.shared.get(ShutdownMaster).memfd
    if fd is not None:
        try:
            raw = os.pread(fd, 64 * 1024, 0)
            if raw:
                return shutmsg.parse(raw.decode("utf-8", "replace"), time.time())
        except (OSError, shutmsg.ShutmsgError) as e:
            log.warning("cannot read the shutdown message: %s", e)
    try:
        return shutmsg.check()
    except shutmsg.ShutmsgError:
        return None


MODULE = Module(NAME, session_init=session_init, rehearse=rehearse,
                listeners=(Listener("core.exit", _exiting),),
                master_init=master_init, master_tick=master_tick, master_stop=master_stop)
