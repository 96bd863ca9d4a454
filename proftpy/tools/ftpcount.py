"""ftpcount: how many sessions per connection class, in ProFTPD's ftpcount format."""
from __future__ import annotations

import sys

from proftpy.scoreboard import Entry, Header
from proftpy.tools import common

USAGE = """usage: ftpcount [options]
  --config, -c
    specify full path to proftpy configuration file
  --file, -f
    specify full path to scoreboard file
  --help, -h
    display ftpcount usage
  --server, -S
    count sessions of the named server (ServerName) only
"""


def render(header: Header, entries: list[Entry], server: str | None = None) -> str:
    entries = common.server_filter(entries, server)
    out = [f"Master proftpd process {header.master_pid}:\n" if header.standalone else "inetd FTP connections:\n"]
    if server is not None:
        out.append(f"ProFTPD Server '{server}'\n")
    if not entries:
        out.append("0 users\n")
    for name, n in common.class_counts(entries):
        out.append(f"Service class {name:<20} - {n:3d} {'users' if n > 1 else 'user'}\n")
    return "".join(out)


def _main(argv: list[str] | None) -> int:
    opts, args = common.parse_options(argv, common.SCOREBOARD_SHORT, common.SCOREBOARD_LONG)
    shared, _ = common.scoreboard_reader_options(opts, args)
    if shared["help"]:
        sys.stdout.write(USAGE)
        return 0
    header, entries = common.read_scoreboard(common.scoreboard_path(shared["file"], shared["config"]))
    sys.stdout.write(render(header, entries, shared["server"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.run("ftpcount", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
