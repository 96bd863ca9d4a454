"""ftptop: a live, top-like view of the sessions (curses), or plain text with -b.

Two views as in ProFTPD: REG (what each session is doing) and XFER (transfer rates), `t` toggles, `q` quits.
Everything that decides what is shown is a pure function (status, filters, rows, screen); curses only paints.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from typing import Callable

from proftpy.scoreboard import Entry, Header
from proftpy.tools import common

VERSION = "ftptop/1.0"
REG, XFER = "reg", "xfer"
MAX_DELAY = 15
USAGE = """usage: ftptop [options]

\t-A      \t\tshow only authenticating sessions
\t-a      \t\tignore authenticating sessions
\t-b      \t\tbatch mode: plain text on stdout, no curses
\t-D      \t\tshow only downloading sessions
\t-d <num>\t\trefresh delay in seconds (0-15, default 2)
\t-c <file>\t\tread the ScoreboardFile setting from this config
\t-f <file>\t\tscoreboard file to use
\t-h      \t\tdisplays this message
\t-I      \t\tshow only idle sessions
\t-i      \t\tignores idle sessions
\t-n <num>\t\tstop after this many refreshes
\t-S <name>\t\tshow only sessions of this ServerName
\t-U      \t\tshow only uploading sessions
\t-V      \t\tshows version

  Use the 't' key to toggle between "regular" and "transfer speed"
  display modes. Use the 'q' key to quit.
"""

# Widths of ProFTPD's columns; the last column (command argument / %DONE) takes what the screen has left.
USER_W, REG_CLIENT_W, XFER_CLIENT_W = 8, 20, 44
REG_HEADER_FIXED = 5 + 1 + 1 + 1 + 8 + 1 + 20 + 1 + 15 + 1 + 4 + 1
REG_ROW_FIXED = 5 + 1 + 1 + 1 + USER_W + 1 + REG_CLIENT_W + 1 + 15 + 1 + 6 + 1 + 4 + 1
XFER_FIXED = 5 + 1 + 1 + 1 + USER_W + 1 + XFER_CLIENT_W + 1 + 10 + 1

LIST_CMDS = frozenset({"LIST", "NLST", "MLST", "MLSD", "READDIR"})
# Categories the filters select on: I idle, D download, U upload, A authenticating, B busy with anything else.
ALL_KINDS = frozenset("IDUAB")


@dataclasses.dataclass(frozen=True)
class Filters:
    """-D -U -I -A select kinds (together: their union); -i -a drop kinds; -S keeps one ServerName."""
    kinds: frozenset[str] = ALL_KINDS
    server: str | None = None

    def shows(self, e: Entry) -> bool:
        return kind(e) in self.kinds and (self.server is None or e.server_label == self.server)


@dataclasses.dataclass(frozen=True)
class Summary:
    total: int
    downloading: int
    uploading: int
    idle: int


def status(e: Entry) -> str:
    """The S column: I idle, D download, U upload, L listing, A anything else (and not logged in)."""
    if not e.authenticated:
        return "A"
    if e.idle:
        return "I"
    if e.downloading:
        return "D"
    if e.uploading:
        return "U"
    if e.cmd in LIST_CMDS:
        return "L"
    return "A"


def kind(e: Entry) -> str:
    if not e.authenticated:
        return "A"
    s = status(e)
    return s if s in "IDU" else "B"


def summarize(entries: list[Entry], server: str | None) -> Summary:
    entries = common.server_filter(entries, server)
    st = [status(e) for e in entries]
    return Summary(len(entries), st.count("D"), st.count("U"), st.count("I"))


def _cut(text: str, width: int) -> str:
    """printf's %-*.*s: pad or truncate to exactly `width` characters."""
    return f"{text[:max(width, 0)]:<{max(width, 0)}}"


def reg_row(e: Entry, now: float, width: int) -> str:
    cmd, arg = (e.cmd, e.cmd_arg) if e.authenticated else ("(authenticating)", "")
    return (f"{e.pid:<5d} {status(e)} {_cut(e.user, USER_W)} {_cut(e.client_addr, REG_CLIENT_W)} "
            f"{e.server_addr:<15} {_cut(common.format_age(e.begin_session, now), 6)} {cmd:>4} "
            f"{_cut(arg, width - REG_ROW_FIXED - max(len(cmd) - 4, 0))}")


def xfer_row(e: Entry, width: int) -> str:
    done = common.percent_complete(e.xfer_size, e.xfer_done) if status(e) == "D" else "(n/a)"
    return (f"{e.pid:<5d} {status(e)} {_cut(e.user, USER_W)} {_cut(e.client_addr, XFER_CLIENT_W)} "
            f"{common.kbps(e.xfer_len, e.xfer_elapsed_ms):<10.2f} {_cut(done, width - XFER_FIXED)}")


def header_row(view: str, width: int) -> str:
    if view == XFER:
        return f"{'PID':<5} S {'USER':<8} {'CLIENT':<44} {'KB/s':<10} {_cut('%DONE', width - XFER_FIXED)}"
    return (f"{'PID':<5} S {'USER':<8} {'CLIENT':<20} {'SERVER':<15} {'TIME':<4} "
            f"{_cut('COMMAND', width - REG_HEADER_FIXED)}")


def rows(entries: list[Entry], now: float, view: str, filters: Filters, width: int) -> list[str]:
    """The table body: REG shows every selected session, XFER only those moving data."""
    shown = [e for e in entries if filters.shows(e)]
    if view == XFER:
        return [xfer_row(e, width) for e in shown if status(e) in "DU"]
    return [reg_row(e, now, width) for e in shown]


def total_rate(entries: list[Entry], filters: Filters) -> str:
    """proftpy's line above the XFER table: the sum of the rates of the transfers shown."""
    rate = sum(common.kbps(e.xfer_len, e.xfer_elapsed_ms) for e in entries if filters.shows(e) and status(e) in "DU")
    return f"Total transfer rate: {rate:.2f} KB/s"


def screen(header: Header, entries: list[Entry], now: float, view: str, filters: Filters,
           width: int) -> list[str]:
    """Every line of one refresh: title, counts, blank (XFER: the total rate of the transfers shown), column
    header, rows."""
    s = summarize(entries, filters.server)
    up = f", up for {common.format_uptime(header.master_start, now)}" if header.standalone else ""
    return [f"{VERSION}: {time.ctime(now)}{up}",
            f"{s.total} Total FTP Sessions: {s.downloading} downloading, {s.uploading} uploading, {s.idle} idle",
            total_rate(entries, filters) if view == XFER else "",
            header_row(view, width),
            *rows(entries, now, view, filters, width)]


@dataclasses.dataclass
class Options:
    batch: bool = False
    delay: int = 2
    iterations: int = 0              # 0 = until q / interrupted
    filters: Filters = Filters()
    file: str | None = None
    config: str | None = None


def parse(argv: list[str] | None) -> Options | None:
    """Options, or None when -h/-V already printed what was asked."""
    opts, args = common.parse_options(argv, "AabDd:c:f:hIin:S:UV", [])
    o = Options()
    only: set[str] = set()
    dropped: set[str] = set()
    server = None
    for opt, val in opts:
        if opt == "-h":
            sys.stdout.write(USAGE)
            return None
        if opt == "-V":
            print(VERSION)
            return None
        if opt in ("-A", "-D", "-I", "-U"):
            only.add({"-A": "A", "-D": "D", "-I": "I", "-U": "U"}[opt])
        elif opt in ("-a", "-i"):
            dropped.add("A" if opt == "-a" else "I")
        elif opt == "-b":
            o.batch = True
        elif opt == "-d":
            if not val.isdigit() or int(val) > MAX_DELAY:
                raise common.ToolError(f"delay must be a whole number of seconds from 0 to {MAX_DELAY}, not '{val}'")
            o.delay = int(val)
        elif opt == "-n":
            if not val.isdigit() or int(val) < 1:
                raise common.ToolError(f"iterations must be a positive number, not '{val}'")
            o.iterations = int(val)
        elif opt == "-S":
            server = val
        elif opt == "-c":
            o.config = val
        elif opt == "-f":
            o.file = val
    if args:
        raise common.ToolError(f"unexpected argument '{args[0]}' (use -h for help)")
    o.filters = Filters(frozenset(only or ALL_KINDS) - dropped, server)
    return o


def _batch(o: Options, path: str, clock: Callable[[], float], sleep: Callable[[float], None]) -> int:
    width = shutil.get_terminal_size((80, 24)).columns
    n = 0
    while True:
        header, entries = common.read_scoreboard(path)
        if n:
            sys.stdout.write("\n")
        sys.stdout.write("\n".join(screen(header, entries, clock(), REG, o.filters, width)) + "\n")
        sys.stdout.flush()
        n += 1
        if o.iterations and n >= o.iterations:
            return 0
        sleep(o.delay)


def _paint(stdscr, lines: list[str]) -> None:
    import curses
    height, width = stdscr.getmaxyx()
    stdscr.erase()
    for y, line in enumerate(lines[:height]):
        attr = curses.A_BOLD if y < 2 else curses.A_REVERSE if y == 3 else curses.A_NORMAL
        # The bottom-right cell cannot be written without scrolling: keep one column free.
        stdscr.addnstr(y, 0, line, max(width - 1, 0), attr)
    stdscr.refresh()


def _interactive(o: Options, path: str, clock: Callable[[], float]) -> int:
    import curses

    def loop(stdscr) -> int:
        try:
            curses.curs_set(0)
        except curses.error:         # terminal without cursor control: the cursor just stays visible
            pass
        stdscr.timeout(max(o.delay * 1000, 100))
        view, n = REG, 0
        while True:
            header, entries = common.read_scoreboard(path)
            _paint(stdscr, screen(header, entries, clock(), view, o.filters, stdscr.getmaxyx()[1]))
            n += 1
            if o.iterations and n >= o.iterations:
                return 0
            key = stdscr.getch()
            if key in (ord("q"), ord("Q")):
                return 0
            if key in (ord("t"), ord("T")):
                view = XFER if view == REG else REG

    try:
        return curses.wrapper(loop)
    except curses.error as e:
        raise common.ToolError(f"cannot start the full-screen view ({e}); use -b for plain text") from None


def _main(argv: list[str] | None, clock: Callable[[], float], sleep: Callable[[float], None]) -> int:
    o = parse(argv)
    if o is None:
        return 0
    path = common.scoreboard_path(o.file, o.config)
    common.open_scoreboard(path).close()          # fail early and clearly, before curses takes the screen
    if o.batch:
        return _batch(o, path, clock, sleep)
    return _interactive(o, path, clock)


def main(argv: list[str] | None = None, *, clock: Callable[[], float] = time.time,
         sleep: Callable[[float], None] = time.sleep) -> int:
    return common.run("ftptop", lambda: _main(argv, clock, sleep))


if __name__ == "__main__":
    sys.exit(main())
