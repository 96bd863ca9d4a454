"""The `proftpy` command line, compatible with proftpd's: -c -n -q -t -d -D -4 -6 -V -v -l.

Without -n the daemon binds its listeners, detaches, writes PidFile and only then lets the command return, so init
scripts and test harnesses written for proftpd can drive it unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import PROFTPD_COMPAT, __version__, log as syslog_setup, modules
from .config import DEFAULT_CONFIGS, default_config
from .config.errors import ConfigError
from .master import Options, load_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="proftpy", description="ProFTPD-compatible FTP daemon.")
    p.add_argument("-c", "--config", metavar="FILE", help="configuration file (default: %s)" % DEFAULT_CONFIGS[0])
    p.add_argument("-n", "--nodaemon", action="store_true", help="stay in the foreground, log to stderr")
    p.add_argument("-q", "--quiet", action="store_true", help="quiet: no stderr logging with -n")
    p.add_argument("-t", "--configtest", action="store_true", help="check the configuration syntax and exit")
    p.add_argument("-d", "--debug", type=int, default=0, metavar="LEVEL", help="debug level 0-10")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME", help="define NAME for <IfDefine>")
    p.add_argument("-4", "--ipv4", action="store_true", help="IPv4 only (UseIPv6 off)")
    p.add_argument("-6", "--ipv6", action="store_true", help="enable IPv6 (UseIPv6 on)")
    p.add_argument("-V", "--settings", action="store_true", help="print compile-time settings and exit")
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    p.add_argument("-l", "--list", action="store_true", help="list built-in modules and exit")
    return p


def _emit(text: str) -> int:
    """Print for a reader that may stop early (`proftpy -l | head -3`): then quietly, as C programs end."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())    # nothing left to flush at exit
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "check-access" in argv:                  # `proftpy [-c FILE] check-access ...`: the global -c carries over
        from .check_access import main as check_access
        at = argv.index("check-access")
        before = parser().parse_args(argv[:at])
        return check_access((["-c", before.config] if before.config else []) + argv[at + 1:])
    args = parser().parse_args(argv)
    if args.version:
        return _emit(f"proftpy Version {__version__} (compatible with ProFTPD {PROFTPD_COMPAT})")
    if args.list:
        return _emit("\n".join(["Compiled-in modules:"] + [f"  {name}" for name in modules.loaded().names()]))
    if args.settings:
        return _emit(settings_text())
    opts = Options(config_path=os.path.abspath(args.config or default_config()),
                   defines=frozenset(args.define), ipv6=False if args.ipv4 else (True if args.ipv6 else None),
                   foreground=args.nodaemon, debug=args.debug)
    try:
        config = load_config(opts)
    except ConfigError as e:
        print(f"proftpy: {e}" if e.where is None else str(e), file=sys.stderr)
        return 1
    if args.configtest:
        for warning in config.warnings:
            print(warning, file=sys.stderr)
        print("Checking syntax of configuration file")
        problems = modules.loaded().check(config)
        for message, fatal in problems:
            print(f"{'error' if fatal else 'warning'}: {message}", file=sys.stderr)
        if any(fatal for _, fatal in problems):
            return 1
        print("Syntax OK")
        return 0
    main_server = config.main
    syslog_setup.setup(main_server.get("SystemLog"), main_server.get("SyslogLevel"), args.debug,
                       stderr=args.nodaemon and not args.quiet, facility=main_server.get("SyslogFacility"))
    from .runtime import run_daemon
    return run_daemon(config, opts, inetd=main_server.get("ServerType") == "inetd")


def settings_text() -> str:
    import platform
    from .net.inet import ipv6_available
    feats = [("IPv6", ipv6_available()), ("Sendfile", hasattr(os, "sendfile")), ("Shadow file", True),
             ("Controls", "mod_ctrls.c" in modules.loaded().names()),
             ("SSL", "mod_tls.c" in modules.loaded().names()), ("curses", _has("curses")),
             ("Trace", True), ("Redis", False), ("NLS", False), ("Largefile", True)]
    lines = ["Compile-time Settings:", f"  Version: {__version__} (ProFTPD {PROFTPD_COMPAT} compatible)",
             f"  Platform: {platform.system().upper()} [{platform.release()} {platform.machine()}]",
             f"  Python: {platform.python_version()}", "", "  Files:", "    Configuration File:",
             f"      {default_config()}", "    Pid File:", "      /var/run/proftpy.pid", "    Scoreboard File:",
             "      /var/run/proftpy/proftpy.scoreboard", "", "  Features:"]
    lines += [f"    {'+' if on else '-'} {name} support" for name, on in feats]
    return "\n".join(lines)


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
