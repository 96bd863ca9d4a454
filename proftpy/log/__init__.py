"""Logging: the daemon's SystemLog (this file), TransferLog (xferlog) and ExtendedLog/LogFormat (later modules)."""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import sys

LEVELS = {"emerg": logging.CRITICAL, "alert": logging.CRITICAL, "crit": logging.CRITICAL, "error": logging.ERROR,
          "warn": logging.WARNING, "notice": logging.INFO, "info": logging.INFO, "debug": logging.DEBUG}


class _Format(logging.Formatter):
    """ProFTPD's SystemLog line: `YYYY-MM-DD HH:MM:SS,mmm host proftpy[pid] ident: message`."""

    def __init__(self) -> None:
        super().__init__()
        self.host = socket.gethostname().split(".")[0]

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%d %H:%M:%S") + f",{int(record.msecs):03d}"
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{stamp} {self.host} proftpy[{os.getpid()}]: {text}"


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
    logger.setLevel(logging.DEBUG if debug else LEVELS.get(level, logging.INFO))
    logger.propagate = False
    fmt = _Format()
    handlers: list[logging.Handler] = []
    if system_log == "syslog":
        try:
            h: logging.Handler = logging.handlers.SysLogHandler(
                "/dev/log", facility=logging.handlers.SysLogHandler.facility_names.get(facility, 3))
            h.setFormatter(logging.Formatter("proftpy[%(process)d]: %(message)s"))
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
