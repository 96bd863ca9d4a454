"""ftpdctl: send one control action to a running proftpy over its ControlsSocket and print the answer.

ftpdctl [ -h ] [ -v ] [ -c config ] [ -s socket ] action [ args ... ]
Each line of the answer is printed as `ftpdctl: LINE` (as ProFTPD's ftpdctl does); the exit status is 0 when the
server did what was asked, 1 when it refused or failed, or when it could not be reached.
"""
from __future__ import annotations

import errno
import os
import sys

from proftpy import ctrls
from proftpy.tools import common

USAGE = "usage: ftpdctl [ -h ] [ -v ] [ -c config ] [ -s socket ] action [ args ... ]\n"
HELP = USAGE + f"""
  -s socket   the server's ControlsSocket (default {ctrls.DEFAULT_SOCKET})
  -c config   read ControlsSocket from this configuration file
  -v          say which socket is used
  actions     status, kick user|host|class NAME..., restart, shutdown [graceful [SECONDS]],
              debug level [N], trace info|CHANNEL:LEVEL..., help, lsctrl (and those of other modules,
              e.g. ban/permit); `ftpdctl help` lists what the server offers
"""


def scan_socket(config_path: str) -> str | None:
    """The first `ControlsSocket` line of a config (as simple as the scoreboard tools' scan)."""
    try:
        with open(config_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = line.strip().split(None, 1)
                if len(words) == 2 and words[0].lower() == "controlssocket":
                    return common._first_word(words[1])
    except OSError as e:
        raise common.ToolError(f"unable to read config {config_path}: {e.strerror}") from None
    return None


def _main(argv: list[str] | None) -> int:
    # POSIX parsing: options end at the action, so action arguments may start with '-'.
    opts, args = common.parse_options(argv, "hvc:s:", [], gnu=False)
    path, config, verbose = None, None, False
    for opt, val in opts:
        if opt == "-h":
            sys.stdout.write(HELP)
            return 0
        if opt == "-v":
            verbose = True
        elif opt == "-s":
            path = val
        elif opt == "-c":
            config = val
    if not args:
        raise common.ToolError("missing action; " + USAGE.strip())
    if path is None and config is not None:
        path = scan_socket(config)
    path = path or ctrls.DEFAULT_SOCKET
    if verbose:
        print(f"ftpdctl: contacting server using '{path}'")
    try:
        response = ctrls.call(path, args)
    except ctrls.CtrlsError as e:
        raise common.ToolError(str(e)) from None
    except TimeoutError:
        raise common.ToolError(f"{path}: no answer from the server within {ctrls.CLIENT_TIMEOUT:.0f} s") from None
    except OSError as e:
        hint = ""
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            hint = " (is proftpy running with ControlsEngine on? Name its socket with -s, or its config with -c)"
        elif e.errno == errno.EACCES and os.geteuid() != 0:
            hint = f" (running as uid {os.geteuid()}: see ControlsSocketOwner)"
        raise common.ToolError(f"{path}: {e.strerror}{hint}") from None
    for line in response.lines:
        print(f"ftpdctl: {line}")
    return 0 if response.status >= 0 else 1


def main(argv: list[str] | None = None) -> int:
    return common.run("ftpdctl", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
