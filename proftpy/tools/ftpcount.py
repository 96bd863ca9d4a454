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
    opts, args = common.parse_options(argv, "S:c:f:h", ["server=", "config=", "file=", "help"])
    file_opt = config_opt = server = None
    for opt, val in opts:
        if opt in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if opt in ("-S", "--server"):
            server = val
        elif opt in ("-c", "--config"):
            config_opt = val
        elif opt in ("-f", "--file"):
            file_opt = val
    if args:
        raise common.ToolError(f"unexpected argument '{args[0]}' (use -h for help)")
    header, entries = common.read_scoreboard(common.scoreboard_path(file_opt, config_opt))
    sys.stdout.write(render(header, entries, server))
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.run("ftpcount", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
