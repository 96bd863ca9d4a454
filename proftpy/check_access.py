"""`proftpy check-access`: would this command be allowed, and which configuration line decides?

    proftpy check-access [-c FILE] --user U --from ADDR [--class C] [--groups G,...] CMD PATH
    proftpy check-access [-c FILE] --user U --from ADDR LOGIN

PATH is the real path on the server (as `<Directory>` sections name it), not the path a chrooted client sees.
`.ftpaccess` files on the way are read as a session would. The exit status is 0 when allowed, 1 when denied,
2 for a usage or configuration error. ProFTPD has no such tool; its users have to guess.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import sys

from . import modules
from .access import classes as classes_
from .access import dirs, limits
from .access.limits import Decision, Who, directory_rule
from .config import default_config
from .config.errors import ConfigError
from .config.parser import parse_file
from .modules.auth import build_chain
from .net.netaddr import Resolver, parse_ip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="proftpy check-access",
                                description="Show whether a command would be allowed and which rule decides.")
    p.add_argument("-c", "--config", metavar="FILE", help="configuration file")
    p.add_argument("--user", required=True, help="login name")
    p.add_argument("--from", dest="addr", required=True, metavar="ADDR", help="client IP address")
    p.add_argument("--class", dest="cls", metavar="CLASS", help="connection class (default: from <Class> rules)")
    p.add_argument("--groups", metavar="G,...", help="the user's groups (default: from the auth files)")
    p.add_argument("command", metavar="CMD", help="FTP command (STOR, RETR, CWD, SITE_CHMOD...) or LOGIN")
    p.add_argument("path", metavar="PATH", nargs="?", help="real path the command works on")
    return p


def _groups(server, user: str) -> tuple[str, ...] | None:
    """The user's groups from the configured auth backends (None when the user is unknown there)."""
    try:
        chain = build_chain(modules.loaded(), server)
        account = chain.lookup(user)
        if account is None:
            return None
        names = [g.name for g in [chain.getgrgid(account.gid)] if g is not None]
        names += [g.name for g in chain.groups_for(account) if g.name not in names]
        return tuple(names)
    except Exception as e:          # no readable auth files here: say so, go on without groups
        print(f"note: cannot look up the groups of {user}: {e}", file=sys.stderr)
        return None


def _anonymous(server, user: str):
    """The `<Anonymous>` block this login name maps to (its User, or a UserAlias for it)."""
    for anon in server.anonymous():
        anon_user = anon.get("User")
        aliases = [p.value for p in anon.all("UserAlias") + server.section.all("UserAlias")]
        if user == anon_user or any(alias == user and real == anon_user for alias, real in aliases):
            return anon
    return None


def _describe(decision: Decision) -> str:
    if decision.rule is None and decision.limit is None:
        return f"  {decision.reason}"
    lines = []
    if decision.rule is not None:
        p = decision.rule
        lines.append(f"  decided by {p.where}: {p.name} {' '.join(p.args)}".rstrip())
    if decision.limit is not None:
        lines.append(f"  in <Limit {' '.join(decision.limit.args)}> at {decision.limit.where}")
    lines.append(f"  ({decision.reason})")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if parse_ip(args.addr) is None:
        print(f"proftpy check-access: --from {args.addr}: not an IP address", file=sys.stderr)
        return 2
    try:
        config = parse_file(os.path.abspath(args.config or default_config()), modules.registry())
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    server = config.main
    client = Resolver().client(args.addr, bool(server.get("UseReverseDNS")))
    cls = args.cls
    if cls is None:
        found = classes_.match_class(classes_.from_sections(config.classes), client)
        cls = found.name if found else None
    groups = tuple(g for g in args.groups.split(",") if g) if args.groups is not None else _groups(server, args.user)
    anon = _anonymous(server, args.user)
    who = Who(client, args.user, groups, cls)
    header = (f"user {args.user} from {client.ip}" + (f" ({client.name})" if client.name != client.ip else "")
              + f", class {cls or '(none)'}, groups {','.join(groups) if groups else '(unknown)'}"
              + (f", <Anonymous {anon.args[0]}>" if anon is not None else ""))
    command = args.command.upper()
    if command == "LOGIN":
        at_connect = limits.login_at_connect(server.section, Who(client, conn_class=cls))
        at_pass = limits.login_at_pass(anon if anon is not None else server.section, who)
        print(header)
        print(f"connect: {'allowed' if at_connect.allowed else 'denied'}\n{_describe(at_connect)}")
        if at_connect.allowed:
            print(f"PASS: {'allowed' if at_pass.allowed else 'denied'}\n{_describe(at_pass)}")
        return 0 if at_connect.allowed and at_pass.allowed else 1
    if not args.path or not args.path.startswith("/"):
        print("proftpy check-access: give the absolute real PATH the command works on", file=sys.stderr)
        return 2
    path = posixpath.normpath(args.path)
    decision = decide(config, server, anon, who, command, path)
    print(header)
    print(f"{command} {path}: {'allowed' if decision.allowed else 'denied'}")
    print(_describe(decision))
    return 0 if decision.allowed else 1


def decide(config, server, anon, who: Who, command: str, path: str) -> Decision:
    """The decision for one command at one real path (what the PRE_CMD hook decides in a session)."""
    row = modules.dispatcher().row(command.replace("_", " ", 1) if command.startswith("SITE_") else command)
    group, limit_all = (row.group, row.limit_all) if row is not None else (None, True)
    where = path
    if not (row is not None and row.path is not None and row.path.exact) and not os.path.isdir(path):
        where = posixpath.dirname(path) or "/"
    home = None
    cache = dirs.FtpaccessCache(config.registry, lambda d: bool(server.context(anon, d, home).get("AllowOverride")))
    ctx = server.context(anon, where, home, cache.sections(where))
    rule = directory_rule(ctx)
    if rule is not None and not rule.allowed:
        return rule
    return limits.check_command(ctx.limits(), command, group, limit_all, who)
