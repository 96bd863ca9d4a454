"""ftpwho: who is connected, in ProFTPD's ftpwho formats (default, -o oneline, -o compat, -o json).

Scripts parse this output, so the lines follow utils/ftpwho.c's printf formats exactly, including the
"proftpd"-era wording; render() is a pure function of the scoreboard contents and the time.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

from proftpy import who
from proftpy.scoreboard import Entry, Header
from proftpy.tools import common

USAGE = """usage: ftpwho [options]
  --config, -c
    specify full path to proftpy configuration file
  --file, -f
    specify full path to scoreboard file
  --help, -h
    display ftpwho usage
  --outform, -o
    specify an output format: compat, oneline or json
  --server, -S
    show sessions of the named server (ServerName) only
  --verbose, -v
    display additional information for each connection
"""
OUTFORMS = ("compat", "oneline", "json")


def _details(e: Entry, with_cwd: bool) -> list[str]:
    """The -v items before class, in ProFTPD's order."""
    items = []
    if e.client_addr:
        items.append(f"client: {e.client_name} [{e.client_addr}]")
    if e.server_addr:
        items.append(f"server: {e.server_addr} ({e.server_label})")
    if e.protocol:
        items.append(f"protocol: {e.protocol}")
    if with_cwd and e.cwd:
        items.append(f"location: {e.cwd}")
    return items


def _verbose_tail(e: Entry, oneline: bool, lead: str, with_cwd: bool) -> str:
    """ProFTPD prints each item with a separator before and a newline after, then class with none after."""
    sep, end = (" ", "") if oneline else ("\t", "\n")
    out = []
    for n, item in enumerate(_details(e, with_cwd)):
        out.append(f"{lead if n == 0 else sep}{item}{end}")
    if e.class_:
        out.append(f"{lead if not out else sep}class: {e.class_}")
    return "".join(out)


def _line(e: Entry, now: float, verbose: bool, oneline: bool) -> str:
    session_age = common.format_age(e.begin_session, now)
    if not e.authenticated:
        s = f"{e.pid:5d} {e.user:<8} [{session_age:>6}] (authenticating)"
        if verbose:
            s += _verbose_tail(e, oneline, " " if oneline else "\n\t", with_cwd=False)
        return s + "\n"
    if e.idle:
        s = f"{e.pid:5d} {e.user:<8} [{session_age:>6}] {common.format_age(e.begin_idle, now):>6} {e.cmd}"
        if verbose and not oneline:
            s += "\n"
    else:
        if e.downloading:
            pct = common.percent_complete(e.xfer_size, e.xfer_done)
            s = f"{e.pid:5d} {e.user:<8} [{session_age:>6}] ({pct:>3}%) {e.cmd} {e.cmd_arg}"
        else:
            s = f"{e.pid:5d} {e.user:<8} [{session_age:>6}] (n/a) {e.cmd} {e.cmd_arg}"
        if verbose:
            rate = common.kbps(e.xfer_len, e.xfer_elapsed_ms)
            s += f" KB/s: {rate:3.2f}" if oneline else f"\n\tKB/s: {rate:3.2f}\n"
    if verbose:
        s += _verbose_tail(e, oneline, " " if oneline else "\t", with_cwd=True)
    return s + "\n"


def _compat_line(e: Entry, now: float, verbose: bool) -> str:
    age = common.format_age(e.begin_idle, now)
    if (e.downloading or e.uploading) and e.xfer_size > 0:
        pct = f"({common.percent_complete(e.xfer_size, e.xfer_done)}%)" if e.downloading else "(n/a)"
        s = f"{e.pid:5d} {age:<6} {pct} {e.cmd} {e.cmd_arg}\n"
    else:
        s = f"{e.pid:5d} {age:<6} {e.cmd} {e.cmd_arg}\n"
    if verbose:
        if e.client_addr:
            s += f"             (host: {e.client_name} [{e.client_addr}])\n"
        if e.protocol:
            s += f"              (protocol: {e.protocol})\n"
        if e.cwd:
            s += f"              (cwd: {e.cwd})\n"
        if e.class_:
            s += f"              (class: {e.class_})\n"
    return s


def render(header: Header, entries: list[Entry], now: float, *, outform: str = "", verbose: bool = False,
           server: str | None = None) -> str:
    """The whole ftpwho output for these scoreboard contents at time `now`."""
    entries = common.server_filter(entries, server)
    if outform == "json":
        return who.render_json(header, entries)
    if header.standalone:
        out = [f"standalone FTP daemon [{header.master_pid}], up for "
               f"{common.format_uptime(header.master_start, now)}\n"]
    else:
        out = ["inetd FTP daemon:\n"]
    if server is not None:
        out.append(f"ProFTPD Server '{server}'\n")
    for e in entries:
        if outform == "compat":
            out.append(_compat_line(e, now, verbose))
        else:
            out.append(_line(e, now, verbose, oneline=outform == "oneline"))
    if entries:
        for name, n in common.class_counts(entries):
            out.append(f"Service class {name:<20} - {n:3d} user{'s' if n > 1 else ''}\n")
    else:
        out.append("no users connected\n")
    return "".join(out)


def _main(argv: list[str] | None, clock: Callable[[], float]) -> int:
    opts, args = common.parse_options(argv, common.SCOREBOARD_SHORT + "o:v",
                                      common.SCOREBOARD_LONG + ["outform=", "verbose"])
    shared, rest = common.scoreboard_reader_options(opts, args)
    if shared["help"]:
        sys.stdout.write(USAGE)
        return 0
    outform, verbose = "", False
    for opt, val in rest:
        if opt in ("-o", "--outform"):
            if val not in OUTFORMS:
                raise common.ToolError(f"unknown outform value: '{val}' (use compat, oneline or json)")
            outform = val
        elif opt in ("-v", "--verbose"):
            verbose = True
    header, entries = common.read_scoreboard(common.scoreboard_path(shared["file"], shared["config"]))
    sys.stdout.write(render(header, entries, clock(), outform=outform, verbose=verbose,
                            server=shared["server"]))
    return 0


def main(argv: list[str] | None = None, *, clock: Callable[[], float] = time.time) -> int:
    return common.run("ftpwho", lambda: _main(argv, clock))


if __name__ == "__main__":
    sys.exit(main())
