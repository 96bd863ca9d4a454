"""ftpshut: schedule (or with -R cancel) a shutdown by writing ProFTPD's shutdown message file.

ftpshut [ -R ] [ -l min ] [ -d min ] time [ warning-message ... ]
The file is /etc/shutmsg as in ProFTPD; set PROFTPY_SHUTMSG to use another path (tests, non-root setups).
"""
from __future__ import annotations

import sys
import time
from typing import Callable

from proftpy import shutmsg
from proftpy.tools import common

USAGE = "usage: ftpshut [ -R ] [ -l min ] [ -d min ] time [ warning-message ... ]\n"
HELP = USAGE + f"""
  time      now, +N (minutes from now), HHMM or HH (a time already past means tomorrow)
  -l min    refuse new connections this many minutes before (default {shutmsg.DEFAULT_DENY_MINUTES})
  -d min    disconnect existing sessions this many minutes before (default {shutmsg.DEFAULT_DISCONNECT_MINUTES})
  -R        remove the shutdown file: cancel a scheduled shutdown
  message   default "{shutmsg.DEFAULT_MESSAGE}"; cookies %s %r %d %C %L %R %T %U %V
  file      {shutmsg.DEFAULT_PATH}, or $PROFTPY_SHUTMSG when set
"""


def _minutes(opt: str, val: str) -> int:
    if not val.strip().isdigit():
        raise common.ToolError(f"{opt} requires a numeric argument, not '{val}'")
    return int(val)


def _main(argv: list[str] | None, clock: Callable[[], float]) -> int:
    # POSIX-style parsing: options end at the time argument, so message words may start with '-'.
    opts, args = common.parse_options(argv, "Rhl:d:", [], gnu=False)
    deny, disc, remove = shutmsg.DEFAULT_DENY_MINUTES, shutmsg.DEFAULT_DISCONNECT_MINUTES, False
    for opt, val in opts:
        if opt == "-h":
            sys.stdout.write(HELP)
            return 0
        if opt == "-R":
            remove = True
        elif opt == "-l":
            deny = _minutes(opt, val)
        elif opt == "-d":
            disc = _minutes(opt, val)
    path = shutmsg.default_path()
    try:
        if remove:
            shutmsg.remove(path)
            return 0
        if not args:
            raise common.ToolError("missing time argument; " + USAGE.strip())
        when = shutmsg.parse_when(args[0], clock())
        message = " ".join(args[1:]) or shutmsg.DEFAULT_MESSAGE
        shutmsg.write(path, when, deny, disc, message)
    except shutmsg.ShutmsgError as e:
        raise common.ToolError(str(e)) from None
    except OSError as e:
        raise common.ToolError(f"{e.filename or path}: {e.strerror}") from None
    return 0


def main(argv: list[str] | None = None, *, clock: Callable[[], float] = time.time) -> int:
    return common.run("ftpshut", lambda: _main(argv, clock))


if __name__ == "__main__":
    sys.exit(main())
