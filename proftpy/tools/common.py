"""What ftpwho, ftpcount and ftptop share: options, finding and opening the scoreboard, ProFTPD's formatters.

Errors reach the user as one line on stderr and exit status 1 (ToolError), never as a traceback.
"""
from __future__ import annotations

import errno
import getopt
import os
import sys
from typing import Callable, Iterable

from proftpy import scoreboard as sbm
from proftpy.config import default_config
from proftpy.scoreboard import Entry, Scoreboard, ScoreboardError, format_age, format_uptime  # noqa: F401
from proftpy.who import class_counts, kbps, percent_complete  # noqa: F401


class ToolError(Exception):
    """A message for stderr, prefixed with the program name; the tool exits 1."""


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a tool's body, turning expected failures into one stderr line and an exit status."""
    try:
        return body()
    except ToolError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:                  # `ftpwho | head`: the reader left, nothing to report
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


def parse_options(argv: list[str] | None, short: str, long: Iterable[str],
                  gnu: bool = True) -> tuple[list[tuple[str, str]], list[str]]:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if gnu:
            return getopt.gnu_getopt(argv, short, list(long))
        return getopt.getopt(argv, short, list(long))
    except getopt.GetoptError as e:
        raise ToolError(f"{e.msg} (use -h for help)") from None


SCOREBOARD_SHORT = "S:c:f:h"
SCOREBOARD_LONG = ["server=", "config=", "file=", "help"]


def scoreboard_reader_options(opts: list[tuple[str, str]], args: list[str]) -> tuple[dict, list[tuple[str, str]]]:
    """The options ftpwho and ftpcount share (-S server, -c config, -f file, -h): a dict of those (`help` is
    True when asked for), and the other options in order for the tool to read."""
    shared = {"server": None, "config": None, "file": None, "help": False}
    names = {"-S": "server", "--server": "server", "-c": "config", "--config": "config",
             "-f": "file", "--file": "file"}
    rest = []
    for opt, val in opts:
        if opt in ("-h", "--help"):
            shared["help"] = True
        elif opt in names:
            shared[names[opt]] = val
        else:
            rest.append((opt, val))
    if args and not shared["help"]:
        raise ToolError(f"unexpected argument '{args[0]}' (use -h for help)")
    return shared, rest


# -- finding the scoreboard -------------------------------------------------------------------------------
def scan_config(config_path: str) -> str | None:
    """The first `ScoreboardFile` line of a config (case-insensitive, comments skipped, quotes removed).

    Deliberately as simple as ProFTPD's utils/ scan: no Include, no <IfModule>, first match wins.
    """
    try:
        with open(config_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = line.strip().split(None, 1)
                if len(words) == 2 and words[0].lower() == "scoreboardfile":
                    return _first_word(words[1])
    except OSError as e:
        raise ToolError(f"unable to read config {config_path}: {e.strerror}") from None
    return None


def _first_word(text: str) -> str:
    """A bare word, or a double-quoted one with backslash escapes."""
    if not text.startswith('"'):
        return text.split()[0]
    out, chars = [], iter(text[1:])
    for c in chars:
        if c == '"':
            break
        out.append(next(chars, "") if c == "\\" else c)
    return "".join(out)


def scoreboard_path(file_opt: str | None, config_opt: str | None) -> str:
    """-f wins; else -c's ScoreboardFile; else the default path, falling back to the default config's setting."""
    if file_opt:
        return file_opt
    source, found = None, None
    if config_opt:
        source, found = config_opt, scan_config(config_opt)
    elif not os.path.exists(sbm.DEFAULT_PATH):
        cfg = default_config()
        if os.path.exists(cfg):
            source, found = cfg, scan_config(cfg)
    if found is not None and sbm.is_disabled(found):
        raise ToolError(f"scoreboarding is disabled (ScoreboardFile {found} in {source})")
    return found or sbm.DEFAULT_PATH


def open_scoreboard(path: str) -> Scoreboard:
    try:
        return Scoreboard.open(path, readonly=True)
    except ScoreboardError as e:
        if e.errno == errno.ENOENT:
            raise ToolError(f"{path}: No such file or directory (is proftpy running? "
                            f"Name the ScoreboardFile with -f, or its config with -c)") from None
        if e.errno == errno.EACCES and os.geteuid() != 0:
            raise ToolError(f"{e} (running as uid {os.geteuid()}: run as root or as a user "
                            f"who may read the scoreboard)") from None
        raise ToolError(str(e)) from None


def read_scoreboard(path: str) -> tuple[sbm.Header, list[Entry]]:
    sb = open_scoreboard(path)
    try:
        return sb.header, sb.entries()
    except ScoreboardError as e:
        raise ToolError(str(e)) from None
    except OSError as e:
        raise ToolError(f"unable to read scoreboard {path}: {e.strerror}") from None
    finally:
        sb.close()


def server_filter(entries: list[Entry], server: str | None) -> list[Entry]:
    """-S name: only sessions of the vhost whose ServerName is exactly `name`."""
    return entries if server is None else [e for e in entries if e.server_label == server]


# -- ProFTPD's formatters -----------------------------------------------------------------------------------
# percent_complete, kbps and class_counts live in proftpy/who.py (the status page uses them too)
