"""mod_wrap: TCP wrappers' hosts.allow/hosts.deny (TCPAccessFiles and the per-user and per-group files), and what
mod_wrap2 shares with it: the client as the tables see it, the master's veto and the log line's client text.

Where the check is made:

* In the master, at accept (`refuse`, a Module veto), when the server's tables do not depend on the user (no
  TCPUserAccessFiles/TCPGroupAccessFiles, no `~/` path) and the answer needs no DNS name (UseReverseDNS off, or
  only address patterns met): a refused host costs an accept and a close, no fork. The line ProFTPD logs is
  logged; the client gets no reply (tcpd's behaviour; ProFTPD answers `530 Access denied` to its PASS).
* In the session, before PASS (ProFTPD's place: PRE_CMD PASS), always: the per-user files first (their user
  expression is an AND list, `!` negates), then the per-group files, then TCPAccessFiles. Refused: `530
  <AccessDenyMsg>` (or `Access denied`), and the client may try again, as with ProFTPD's mod_wrap.

The tables are read at every check (a `portsentry` adding a line is obeyed at once), with the hosts_access(5)
language of access/hostsaccess.py. The client's host name is looked up only when a pattern needs it, only with
UseReverseDNS on (off: the name is "unknown"), double-reverse checked ("paranoid" when the name does not map back;
such clients are refused before the tables, as ProFTPD's mod_wrap does with libwrap's PARANOID build).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..access import expr as exprs
from ..access import hostsaccess as ha
from ..config.registry import SVG, SVGA, Directive, Merge
from ..config.types import Custom, Str
from ..dispatch import PRE_CMD, Hook, Request
from ..log import LEVELS
from ..module import MasterView, Module, Veto
from ..net.connection import Connection
from ..reply import Reply
from .auth import group_names, resolve_alias

if TYPE_CHECKING:
    from ..auth import Account
    from ..config.tree import Context, Server
    from ..session import Session

NAME = "mod_wrap.c"
TAG = "mod_wrap/1.2.4"          # ProFTPD 1.3.8's mod_wrap, as its log lines name it
DENIED_EVENT = "mod_wrap.connection-denied"
log = logging.getLogger("proftpy")


# -- directive values ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Files:
    """An allow and a deny table (mod_wrap2: `type:info` sources), for the users or groups `names` says."""

    allow: str
    deny: str
    names: tuple[str, ...] = ()


def _path(word: str) -> str:
    if not word.startswith(("/", "~")):
        raise ValueError(f"'{word}' must start with \"/\" or \"~\"")
    return word


def files_parsers(check: Callable[[str], str], what: str
                  ) -> tuple[Callable[[list[str]], Files], Callable[[list[str]], Files]]:
    """The parsers of `allow deny` and of `expression allow deny` (the user/group lines), each file checked by
    `check`; `what` names the pair in their errors. Shared with mod_wrap2 (its tables)."""
    def plain(args: list[str]) -> Files:
        if len(args) != 2:
            raise ValueError(f"expected {what}")
        return Files(check(args[0]), check(args[1]))

    def named(args: list[str]) -> Files:
        if len(args) != 3:
            raise ValueError(f"expected an expression, {what}")
        return Files(check(args[1]), check(args[2]), exprs.terms(args[:1]))
    return plain, named


_files, _named_files = files_parsers(_path, "an allow file and a deny file")


def _levels(args: list[str]) -> tuple[str, str]:
    if len(args) != 2 or any(a.lower() not in LEVELS for a in args):
        raise ValueError(f"expected allow and deny levels, each one of {'/'.join(LEVELS)}")
    return args[0].lower(), args[1].lower()


def levels(ctx) -> tuple[int, int]:
    """TCPAccessSyslogLevels as logging levels: (allowed, refused)."""
    allow, deny = ctx.get("TCPAccessSyslogLevels")
    return LEVELS[allow], LEVELS[deny]


directives = (
    Directive("TCPAccessFiles", Custom(_files, "allow-file deny-file"), SVGA, None, Merge.DOWN,
              "hosts.allow/hosts.deny-format files checked before PASS (`~/` paths: in the user's home)."),
    Directive("TCPUserAccessFiles", Custom(_named_files, "user-expression allow-file deny-file"), SVG, None,
              Merge.SERVER, "Files for the users the AND expression names (`!user` negates), before the others.",
              repeat=True),
    Directive("TCPGroupAccessFiles", Custom(_named_files, "group-expression allow-file deny-file"), SVG, None,
              Merge.SERVER, "Files for members of all the groups the expression names.", repeat=True),
    Directive("TCPAccessSyslogLevels", Custom(_levels, "allow-level deny-level"), SVGA, ("info", "warn"),
              Merge.DOWN, "SystemLog levels of the allowed and refused lines."),
    Directive("TCPServiceName", Str("name"), SVG, "proftpd", Merge.SERVER, "The daemon name the tables list."),
)


# -- shared with mod_wrap2 -----------------------------------------------------------------------------------------
def lookup_for(reverse_dns: bool) -> Callable[[str], str]:
    """How a host's name is found: double-reverse DNS with UseReverseDNS on, else "unknown"."""
    return ha.resolve_name if reverse_dns else _unknown


def _unknown(_addr: str) -> str:
    return ha.UNKNOWN


def _no_lookup(_addr: str) -> str:
    raise ha.NeedsName()


def master_request(service: str, conn: Connection, reverse_dns: bool) -> ha.Request:
    """The connection as the tables see it in the master, which never waits for DNS (NeedsName instead)."""
    lookup = _no_lookup if reverse_dns else _unknown
    return ha.Request(service, ha.Host(conn.remote[0], lookup), ha.Host(conn.local[0], lookup))


def session_request(session: "Session", service: str, user: str = ha.UNKNOWN) -> ha.Request:
    lookup = lookup_for(session.config.main.get("UseReverseDNS"))
    return ha.Request(service, ha.Host(session.remote_addr, lookup), ha.Host(session.local_addr, lookup), user)


def client_text(req: ha.Request) -> str:
    """libwrap's eval_client: `user@host` when the user is known, the host's name, else its address."""
    name = req.client.name
    host = name if name.lower() not in (ha.UNKNOWN, ha.PARANOID) else req.client.addr
    return f"{req.user}@{host}" if req.user.lower() != ha.UNKNOWN else host


def load(path: str) -> ha.Table | None:
    """A table file; its problems go to the SystemLog (libwrap's warnings)."""
    table = ha.load(path)
    if table is not None:
        for problem in table.problems:
            log.warning("%s: %s", TAG, problem)
        if table.unreadable is not None:
            log.warning("%s: cannot open %s: %s", TAG, path, table.unreadable)
    return table


def report_ignored(verdict: ha.Verdict) -> None:
    """Options of the deciding line that proftpy does not carry out (spawn, twist, ...), in the SystemLog."""
    for option in verdict.ignored:
        log.warning("%s: %s:%s: option '%s' not carried out", TAG, verdict.table, verdict.line, option)


def user_dependent(server: "Server", per_user: tuple[str, ...], tables: str) -> bool:
    """Whether the server's check needs the user: per-user/group lines, `~`/%U in a path, tables in an
    <Anonymous> block."""
    for section in server.section.walk():
        if any(section.all(name) for name in per_user):
            return True
        if section.kind == "anon" and section.all(tables):
            return True
    files = server.get(tables)
    return files is not None and any("~" in s or "%U" in s for s in (files.allow, files.deny))


@dataclass
class Who:
    """The user a PASS is for, as the tables see it."""

    name: str                       # the name after UserAlias (the real user, or the anonymous account)
    account: "Account | None"
    context: "Context"              # the <Anonymous> block's settings, or the server's


@dataclass
class Opening:
    """What mod_wrap2 opens a table for: the service name; the user logging in and the name sent with USER (None
    at connect and in the master); the session (None in the master); and the name its SQL queries get as `%{0}`
    (the user for WrapUserTables, the user's primary group for WrapGroupTables, empty for WrapTables); WrapLog."""

    service: str
    who: Who | None = None
    sent: str | None = None
    session: "Session | None" = None
    client: str = ""
    log: Callable[[str], None] = lambda line: None      # WrapLog's


@dataclass(frozen=True)
class TableSource:
    """One `type:` of mod_wrap2's tables, declared by the module that has it: `check(info)` when the configuration
    loads (ValueError: refused), `open(info, opening)` -> the table (None: an empty one) when a check needs it;
    `at_accept`: the master may read it at accept (nothing a session holds is needed)."""

    kind: str
    check: Callable[[str], None]
    open: Callable[[str, Opening], "ha.Table | None"]
    at_accept: bool = True


def who_is_logging_in(session: "Session") -> Who | None:
    sent = session.user_arg
    if sent is None:
        return None
    real, anon = resolve_alias(session, sent)
    account = session.auth.lookup(real) if session.auth is not None else None
    return Who(real, account, session.server.context(anon))


def expand_home(path: str, who: Who) -> str | None:
    """`~/x` -> the user's home/x; `~name/x` -> name's home; None when there is no such home."""
    if not path.startswith("~"):
        return path
    name, _, rest = path[1:].partition("/")
    if not name:
        home = who.account.home if who.account is not None else None     # no such user: no home, no table
    else:
        home = os.path.expanduser("~" + name)                             # unchanged when there is no such user
    return None if home is None or home.startswith("~") else os.path.join(home, rest)


# -- the master's veto ---------------------------------------------------------------------------------------------
@dataclass
class HostFiles:
    """The master's: the servers whose TCPAccessFiles it checks at accept, found once per configuration (an
    accept with none configured costs nothing more)."""

    by_server: dict = field(default_factory=dict)


def host_tables(master: MasterView, tables: str, per_user: tuple[str, ...], engine: str | None = None) -> dict:
    """Server -> its `tables` directive's value, for the servers whose check needs no user."""
    return {server: server.get(tables) for server in master.config.servers
            if server.get(tables) is not None and (engine is None or server.get(engine))
            and not user_dependent(server, per_user, tables)}


def master_init(master: MasterView) -> None:
    master.state.get(HostFiles).by_server = host_tables(master, "TCPAccessFiles",
                                                        ("TCPUserAccessFiles", "TCPGroupAccessFiles"))


def refuse(master: MasterView, conn: Connection) -> Veto | None:
    """TCPAccessFiles at accept, when the answer depends on nothing the session would learn."""
    by_server = master.state.get(HostFiles).by_server
    if not by_server:
        return None
    server = master.server_for(conn.local)
    files = by_server.get(server)
    if files is None:
        return None
    req = master_request(server.get("TCPServiceName"), conn, master.config.main.get("UseReverseDNS"))
    try:
        if req.client.name == ha.PARANOID:      # (asks DNS: with UseReverseDNS on, the session decides)
            verdict = ha.Verdict(False)
        else:
            verdict = ha.check(load(files.allow), load(files.deny), req)
    except ha.NeedsName:
        return None
    report_ignored(verdict)
    if verdict.allowed:
        return None
    return Veto(f"{TAG}: refused connection from {conn.remote[0]}", DENIED_EVENT, levels(server.context())[1])


# -- the session: before PASS --------------------------------------------------------------------------------------
def _files_for(session: "Session", who: Who) -> Files | None:
    """The per-user files whose expression holds, else the per-group ones, else TCPAccessFiles."""
    ctx = who.context
    for files in ctx.all("TCPUserAccessFiles"):
        if exprs.eval_and(files.names, (who.name,)):
            log.debug("%s: matched TCPUserAccessFiles expression", TAG)
            return files
    lines = ctx.all("TCPGroupAccessFiles")
    if lines and who.account is not None:
        groups = group_names(session.auth, who.account)
        for files in lines:
            if exprs.eval_and(files.names, groups):
                log.debug("%s: matched TCPGroupAccessFiles expression", TAG)
                return files
    return ctx.get("TCPAccessFiles")


def configured(server: "Server", names: tuple[str, ...]) -> bool:
    """Whether any of the directives appears anywhere in the server (<Anonymous> blocks included)."""
    return any(section.all(name) for section in server.section.walk() for name in names)


def before_pass(session: "Session", cmd: Request) -> Reply | None:
    if session.authenticated or not configured(session.server, _DIRECTIVES):
        return None
    who = who_is_logging_in(session)
    if who is None:
        return None
    files = _files_for(session, who)
    if files is None:
        return None
    allow, deny = expand_home(files.allow, who), expand_home(files.deny, who)
    log.debug("%s: using access files: %s, %s", TAG, allow or files.allow, deny or files.deny)
    ctx = who.context
    req = session_request(session, ctx.get("TCPServiceName"))
    allow_level, deny_level = levels(ctx)
    if req.client.name == ha.PARANOID:
        verdict = ha.Verdict(False)
    else:
        verdict = ha.check(load(allow) if allow else None, load(deny) if deny else None, req)
    report_ignored(verdict)
    if verdict.allowed:
        log.log(allow_level, "%s: allowed connection from %s", TAG, client_text(req))
        return None
    log.log(deny_level, "%s: refused connection from %s", TAG, client_text(req))
    session.events.emit(DENIED_EVENT, session=session)
    text = ctx.get("AccessDenyMsg")
    return Reply(530, text.replace("%u", session.user_arg or "") if text else "Access denied")


_DIRECTIVES = ("TCPAccessFiles", "TCPUserAccessFiles", "TCPGroupAccessFiles")
MODULE = Module(NAME, directives=directives, hooks=(Hook(PRE_CMD, "PASS", before_pass),), veto=refuse,
                master_init=master_init, master_reload=master_init)
