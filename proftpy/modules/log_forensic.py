"""mod_log_forensic: keep the last ForensicLogBufferSize log messages of a session -- SystemLog (or syslog) lines
of every level, TraceLog lines whatever the Trace levels, TransferLog, ExtendedLog and module log lines -- and
write them to ForensicLogFile only when something went wrong: a failed login (`FailedLogin`), a session ended by a
module's policy (`ModuleConfig`: MaxLoad, mod_wrap2) or killed (`UntimelyDeath`: a signal, or an exception that
ended the session). Each such event is one block:

    -----BEGIN FAILED LOGIN FORENSICS-----
    Client-Address: 127.0.0.1
    Server-Address: 127.0.0.1:2121
    Elapsed: 1245
    ...header lines...
    <an empty line>
    [SystemLog:7] 2026-01-02 03:04:05,678 host proftpy[1234] server (client[127.0.0.1]): ...
    [TraceLog:5] 2026-01-02 03:04:05,679 [1234] <command:5>: received command 'PASS (hidden)'
    -----END FAILED LOGIN FORENSICS-----

With ForensicLogEngine off (the default) nothing is installed: the hooks below are left out of the sessions'
plans (`active`), and the log layer's three capture points stay None. With it on, the capture (`_Capture`) sits on
those points (log.capture, trace.set_tap, files.tap): it only appends to a bounded deque; the regular logs
write what they wrote before.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import log as systemlog
from .. import trace
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Path, parse_bool
from ..dispatch import LOG_CMD_ERR, Hook, Request
from ..log import files
from ..module import Listener, Module

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session

NAME = "mod_log_forensic.c"
VERSION = "mod_log_forensic/0.2"
LOG_MODE = 0o640
log = logging.getLogger("proftpy")

FAILED_LOGIN, MODULE_CONFIG, UNTIMELY_DEATH = "FailedLogin", "ModuleConfig", "UntimelyDeath"
CRITERIA = (FAILED_LOGIN, MODULE_CONFIG, UNTIMELY_DEATH)
DEFAULT_CRITERIA = frozenset((FAILED_LOGIN, UNTIMELY_DEATH))
MARKERS = {FAILED_LOGIN: "FAILED LOGIN", MODULE_CONFIG: "MODULE CONFIG", UNTIMELY_DEATH: "UNTIMELY DEATH"}
# ProFTPD's log types; "Unspec" is a module's own log (ExecLog, TLSLog...); "Unknown" is another name for it
LOG_TYPES = ("Unspec", "TransferLog", "syslog", "SystemLog", "ExtendedLog", "TraceLog")
DEFAULT_BUFFER = 1024
# the session end causes (Session.end_cause) and the criterion each one meets
_EXIT_CRITERIA = {"module-acl": MODULE_CONFIG, "signal": UNTIMELY_DEATH, "error": UNTIMELY_DEATH}
# syslog priorities of the logging levels (NOTICE is log's 25)
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, systemlog.NOTICE: 5, logging.INFO: 6,
             logging.DEBUG: 7}


# -- directives ----------------------------------------------------------------------------------------------------
def parse_buffer_size(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if not args[0].isdigit():
        raise ValueError(f"badly formatted number: {args[0]}")
    count = int(args[0])
    if count == 0:
        raise ValueError("size must be greater than zero")
    return count


def _words(args: list[str], names: tuple[str, ...], what: str, aliases: dict[str, str] | None = None) -> frozenset:
    """Case-insensitive words from `names` (ProFTPD's strncasecmp of the whole word)."""
    if not args:
        raise ValueError("wrong number of parameters")
    known = {n.lower(): n for n in names} | (aliases or {})
    out = set()
    for word in args:
        name = known.get(word.lower())
        if name is None:
            raise ValueError(f"unknown {what}: {word}")
        out.add(name)
    return frozenset(out)


def parse_capture(args: list[str]) -> frozenset[str]:
    return _words(args, LOG_TYPES, "log type", {"unknown": "Unspec"})


def parse_criteria(args: list[str]) -> frozenset[str]:
    return _words(args, CRITERIA, "criterion")


def parse_engine(args: list[str]) -> bool:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    try:
        return parse_bool(args[0])
    except ValueError:
        raise ValueError("expected Boolean parameter") from None


directives = (
    Directive("ForensicLogEngine", Custom(parse_engine, Flag.syntax), SVG, False, Merge.SERVER,
              "Capture the session's log messages and write them to ForensicLogFile when a criterion is met."),
    Directive("ForensicLogFile", Path(), SVG, None, Merge.SERVER,
              "File the captured messages are written to (required; opened 0640 like the other logs)."),
    Directive("ForensicLogBufferSize", Custom(parse_buffer_size, "count"), SVG, DEFAULT_BUFFER, Merge.SERVER,
              "How many of the latest log messages are kept."),
    Directive("ForensicLogCapture", Custom(parse_capture, "|".join(LOG_TYPES) + " ..."), SVG,
              frozenset(LOG_TYPES), Merge.SERVER, "The kinds of log messages captured (all by default)."),
    Directive("ForensicLogCriteria", Custom(parse_criteria, "|".join(CRITERIA) + " ..."), SVG, DEFAULT_CRITERIA,
              Merge.SERVER, "When the captured messages are written: FailedLogin, UntimelyDeath, ModuleConfig."),
)


# -- the block -----------------------------------------------------------------------------------------------------
def headers(session: "Session", user: str | None, now: float | None = None) -> list[tuple[str, str]]:
    """The block's session facts, in ProFTPD's order (UNIQUE_ID only with mod_unique_id's note)."""
    now = time.time() if now is None else now
    out = [("Client-Address", session.remote_addr), ("Server-Address", f"{session.local_addr}:{session.local_port}"),
           ("Elapsed", str(int((now - session.started) * 1000))), ("Protocol", session.protocol)]
    if user:
        out.append(("User", user))
    out += [("UID", str(os.geteuid())), ("GID", str(os.getegid()))]
    unique = session.notes.get("UNIQUE_ID")
    if unique:
        out.append(("UNIQUE_ID", unique))
    totals = session.totals
    out += [("Raw-Bytes-In", str(totals.bytes_in)), ("Raw-Bytes-Out", str(session.ctrl.bytes_out + totals.bytes_out)),
            ("Total-Bytes-In", str(totals.bytes_in)), ("Total-Bytes-Out", str(totals.bytes_out)),
            ("Total-Files-In", str(totals.files_in)), ("Total-Files-Out", str(totals.files_out))]
    return out


def entry_line(kind: str, level: int, text: str, pid: int) -> str:
    """One captured message as the block shows it: `[SystemLog:5] line`, `[syslog:7, PID n] message`."""
    if kind == "syslog":
        return f"[syslog:{level}, PID {pid}] {text}\n"
    return f"[{kind}:{level}] {text}" + ("" if text.endswith("\n") else "\n")


def block(criterion: str, head: list[tuple[str, str]], entries: list[tuple[str, int, str]], pid: int) -> str:
    """The whole block for `criterion`, every entry in order. (ProFTPD's ring walk stops one short and leaves out
    the newest entry; here the last ForensicLogBufferSize messages are all written, as its documentation says.)"""
    marker = MARKERS[criterion]
    lines = [f"-----BEGIN {marker} FORENSICS-----\n", *(f"{k}: {v}\n" for k, v in head), "\n"]
    lines += [entry_line(kind, level, text, pid) for kind, level, text in entries]
    lines.append(f"-----END {marker} FORENSICS-----\n")
    return "".join(lines)


# -- the capture ---------------------------------------------------------------------------------------------------
class _Capture(logging.Handler):
    """The SystemLog records of every level (as a logging handler), and the points of trace and log/files: each
    message becomes (kind, level, text) in a deque of ForensicLogBufferSize entries."""

    def __init__(self, size: int, kinds: frozenset[str], origin: systemlog.SessionOrigin, syslog: bool):
        super().__init__(logging.DEBUG)
        self.ring: deque[tuple[str, int, str]] = deque(maxlen=size)
        self.kinds = kinds
        self.origin = origin
        self.syslog = syslog            # SystemLog syslog (or none): the message alone, as ProFTPD's syslog type
        self.setFormatter(systemlog.SystemLogFormat())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = _PRIORITY.get(record.levelno, 7)
            if self.syslog:
                self.ring.append(("syslog", level, record.getMessage()))
            else:
                self.origin.filter(record)     # the record's `<server> (<client>[<ip>])`
                self.ring.append(("SystemLog", level, self.format(record) + "\n"))
        except Exception:
            pass                        # a message that cannot be formatted is not captured; the session goes on

    def traced(self, level: int, line: str) -> None:
        self.ring.append(("TraceLog", level, line))

    def written(self, what: str, text: str) -> None:
        kind = what.split(" ", 1)[0]
        kind = kind if kind in ("TransferLog", "ExtendedLog") else "Unspec"
        if kind in self.kinds:
            self.ring.append((kind, 0, text))


@dataclass
class ForensicState:
    fd: int | None = None
    criteria: frozenset[str] = DEFAULT_CRITERIA
    capture: _Capture | None = None
    user: str | None = None             # the name of the last failed login
    written: list[str] = field(default_factory=list)    # criteria written (tests, debugging)


def _engine_anywhere(config: "Config") -> bool:
    return config.sets("ForensicLogEngine")


def session_init(session: "Session") -> None:
    server = session.server
    if not server.get("ForensicLogEngine"):
        return
    path = server.get("ForensicLogFile")
    if path is None:
        log.debug("%s: missing required ForensicLogFile setting, disabling module", VERSION)
        return
    try:
        fd = files.open_logfile(path, bool(server.get("AllowLogSymlinks")), LOG_MODE)
    except OSError as e:
        level = logging.WARNING if isinstance(e, files.LogRefused) else systemlog.NOTICE
        log.log(level, "%s: notice: unable to open ForensicLogFile '%s': %s", VERSION, path, e.strerror or e)
        log.debug("%s: unable to open ForensicLogFile '%s', disabling module", VERSION, path)
        return
    st = session.state.get(ForensicState)
    st.fd, st.criteria = fd, server.get("ForensicLogCriteria")
    kinds = server.get("ForensicLogCapture")
    origin = next((f for h in logging.getLogger("proftpy").handlers for f in h.filters
                   if isinstance(f, systemlog.SessionOrigin)), systemlog.SessionOrigin(session))
    to_syslog = session.config.main.get("SystemLog") in ("syslog", None) and server.get("ServerLog") is None
    cap = st.capture = _Capture(server.get("ForensicLogBufferSize"), kinds, origin, to_syslog)
    if ("syslog" if to_syslog else "SystemLog") in kinds:
        systemlog.capture(cap)
    if "TraceLog" in kinds:
        trace.set_tap(cap.traced)
    if kinds & {"TransferLog", "ExtendedLog", "Unspec"}:
        files.tap = cap.written


def _stop(session: "Session") -> None:
    st = session.state.get(ForensicState)
    if st.capture is not None:
        if systemlog.Threshold.capture is st.capture:
            systemlog.capture(None)
        trace.set_tap(None)
        files.tap = None
        st.capture = None
    if st.fd is not None:
        os.close(st.fd)
        st.fd = None


def write_block(session: "Session", criterion: str) -> None:
    """Write what was captured, as one block, and start again with an empty buffer."""
    st = session.state.get(ForensicState)
    if st.fd is None or st.capture is None or criterion not in st.criteria:
        return
    try:
        entries = list(st.capture.ring)
        st.capture.ring.clear()
        text = block(criterion, headers(session, st.user or session.user or session.user_arg), entries, os.getpid())
        os.write(st.fd, text.encode("utf-8", "backslashreplace"))
        st.written.append(criterion)
    except Exception as e:              # a full disk, a message that cannot be encoded: never the session's end
        log.warning("%s: unable to write ForensicLogFile: %s", VERSION, getattr(e, "strerror", None) or e)


def _login_failed(session: "Session", user: str = "", **_: Any) -> None:
    session.state.get(ForensicState).user = user or None


def _pass_failed(session: "Session", cmd: Request | None = None, **_: Any) -> None:
    """LOG_CMD_ERR of PASS; and the PASS that exceeds MaxLoginAttempts, which ends the session without one (in
    ProFTPD this module's LOG_CMD_ERR handler runs before mod_auth's, which disconnects)."""
    write_block(session, FAILED_LOGIN)


def _exited(session: "Session", **_: Any) -> None:
    criterion = _EXIT_CRITERIA.get(session.end_cause)
    if criterion is not None:
        write_block(session, criterion)
    _stop(session)


def _reinit(session: "Session", **_: Any) -> None:
    """HOST or TLS SNI picked another server: its settings, as ProFTPD's module starts again."""
    _stop(session)
    session.state.drop(ForensicState)
    session_init(session)


MODULE = Module(NAME, directives=directives, session_init=session_init, session_active=_engine_anywhere,
                hooks=(Hook(LOG_CMD_ERR, "PASS", _pass_failed, active=_engine_anywhere),),
                listeners=(Listener("mod_auth.login-failed", _login_failed, active=_engine_anywhere),
                           Listener("mod_auth.max-login-attempts", _pass_failed, active=_engine_anywhere),
                           Listener("core.exit", _exited, active=_engine_anywhere),
                           Listener("core.session-reinit", _reinit, active=_engine_anywhere)))
