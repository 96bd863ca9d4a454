"""Logging: the daemon's SystemLog (this file), TransferLog (xferlog) and ExtendedLog/LogFormat (later modules)."""

from __future__ import annotations

import logging
import os
import socket
import sys

NOTICE = 25        # syslog's notice, between INFO and WARNING: ProFTPD's default SyslogLevel
logging.addLevelName(NOTICE, "NOTICE")

LEVELS = {"emerg": logging.CRITICAL, "alert": logging.CRITICAL, "crit": logging.CRITICAL, "error": logging.ERROR,
          "warn": logging.WARNING, "notice": NOTICE, "info": logging.INFO, "debug": logging.DEBUG}


class LineOptions:
    """LogOptions for this process's SystemLog lines: ProFTPD's fields, on or off (the master's from the server
    config, a session's from its server; `set_line_options`)."""

    timestamp = True
    hostname = True
    vhost = True                # the server's name before the client's
    label = "proftpy"           # RoleBasedProcessLabels: "daemon" or "session"


LOG_OPTIONS_DEFAULT = frozenset(("Timestamp", "Hostname", "VirtualHost"))


class Threshold:
    """The lowest level this process writes to the SystemLog: its SyslogLevel (the master's from the server config,
    a session's from its server, as ProFTPD reads its main_server's, which in a session is the vhost), or everything
    under `-d` (ftpdctl's `debug level` changes that in the master); `set_threshold`."""

    syslog = "notice"
    debug = 0
    level = NOTICE                  # the two above as a logging level
    capture: logging.Handler | None = None   # mod_log_forensic's (`capture`): it gets records of every level, so
                                    # the logger lets all through and the session's handlers keep this threshold


def set_line_options(options: frozenset[str], role: str) -> None:
    """Apply LogOptions (the enabled ones) in a process of `role` ("daemon" or "session")."""
    LineOptions.timestamp = "Timestamp" in options
    LineOptions.hostname = "Hostname" in options
    LineOptions.vhost = "VirtualHost" in options
    LineOptions.label = role if "RoleBasedProcessLabels" in options else "proftpy"


class SessionOrigin(logging.Filter):
    """Put on the SystemLog handlers of a session child (`tag_session`): every record it writes carries ProFTPD's
    `<server> (<client name>[<client ip>])`, read from the session when the line is written (the client's name is
    known only once UseReverseDNS has been applied); without LogOptions' VirtualHost, the client's part only."""

    def __init__(self, session) -> None:
        super().__init__()
        self.session = session

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag the record; False for a record below the threshold, which only mod_log_forensic's capture lets
        reach the handlers (it calls this for the tag alone)."""
        s = self.session
        client = f"({s.remote_name}[{s.remote_addr}])"
        record.origin = f"{s.local_name} {client}" if LineOptions.vhost else client
        return Threshold.capture is None or record.levelno >= Threshold.level


def tag_session(session) -> None:
    """From now on this process's SystemLog lines are the session's (see SessionOrigin), at its server's
    SyslogLevel (a server chosen later, by HOST or TLS SNI, is mod_log's to apply). A handler that replaces one
    of these later (ServerLog) takes over its filters."""
    origin = SessionOrigin(session)
    for handler in logging.getLogger("proftpy").handlers:
        handler.addFilter(origin)
    set_threshold(session.server.get("SyslogLevel"))


def set_threshold(syslog: str | None = None, debug: int | None = None) -> None:
    """Change this process's SystemLog threshold (see Threshold); the part not given stays."""
    if syslog is not None:
        Threshold.syslog = syslog
    if debug is not None:
        Threshold.debug = debug
    Threshold.level = logging.DEBUG if Threshold.debug else LEVELS[Threshold.syslog]
    logger, level = logging.getLogger("proftpy"), logging.DEBUG if Threshold.capture else Threshold.level
    if logger.level != level:           # setLevel clears every logger's cache: a session at the master's level
        logger.setLevel(level)          # writes none of those pages


def capture(handler: logging.Handler | None) -> None:
    """mod_log_forensic: `handler` gets every record of this session, whatever its level (None: stop); the
    SystemLog, ServerLog and stderr handlers still write only those at the threshold (SessionOrigin)."""
    logger = logging.getLogger("proftpy")
    if Threshold.capture is not None:
        logger.removeHandler(Threshold.capture)
    Threshold.capture = handler
    if handler is not None:
        logger.addHandler(handler)
    set_threshold()


class SystemLogFormat(logging.Formatter):
    """ProFTPD's SystemLog line: `YYYY-MM-DD HH:MM:SS,mmm host proftpy[pid] <server> (<client>[<ip>]): message` for
    a session, `... proftpy[pid]: message` for the master; LogOptions leave out the time, the host name, the
    server's name, or label the process `daemon`/`session` (LineOptions)."""

    def __init__(self) -> None:
        super().__init__()
        self.host = socket.gethostname().split(".")[0]

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        head = f"{LineOptions.label}[{os.getpid()}]"
        origin = getattr(record, "origin", None)
        if origin:
            head += " " + origin
        if LineOptions.hostname:
            head = f"{self.host} {head}"
        if LineOptions.timestamp:
            head = self.formatTime(record, "%Y-%m-%d %H:%M:%S") + f",{int(record.msecs):03d} {head}"
        return f"{head}: {text}"


class _SyslogFormat(logging.Formatter):
    """ProFTPD's syslog message: `proftpy[pid]: <server> (<client>[<ip>]) - message` for a session."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        origin = getattr(record, "origin", None)
        return f"proftpy[{os.getpid()}]: {origin} - {text}" if origin else f"proftpy[{os.getpid()}]: {text}"


# Our line format carries the pid itself; these LogRecord lookups cost time in every session child.
logging.logMultiprocessing = False
logging.logThreads = False


def setup(system_log: str | None, level: str = "notice", debug: int = 0, stderr: bool = False,
          facility: str = "daemon") -> None:
    """Route the "proftpy" logger to SystemLog (a file), syslog, or nowhere (`none`), plus stderr with -n."""
    logger = logging.getLogger("proftpy")
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    set_threshold(level, debug)
    logger.propagate = False
    fmt = SystemLogFormat()
    handlers: list[logging.Handler] = []
    if system_log == "syslog":
        from logging.handlers import SysLogHandler     # SystemLog syslog only; loaded before any session
        try:
            h: logging.Handler = SysLogHandler("/dev/log", facility=SysLogHandler.facility_names.get(facility, 3))
            h.priority_map = dict(h.priority_map, NOTICE="notice")
            h.setFormatter(_SyslogFormat())
            handlers.append(h)
        except OSError:
            pass        # no syslog socket (containers, tests): stderr below still reports with -n
    elif system_log:
        h = logging.FileHandler(system_log)
        h.setFormatter(fmt)
        handlers.append(h)
    if stderr:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(fmt)
        handlers.append(h)
    for h in handlers:
        logger.addHandler(h)
    if not handlers:
        logger.addHandler(logging.NullHandler())
