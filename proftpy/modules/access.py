"""Access control: `<Limit>` contents, `<Class>`, `.ftpaccess`, hiding, filters and MaxCommandRate (mod_core.c's
directives; the logic lives in proftpy/access/, which knows no session). This module wires it into the session:

* session_init: the client's DNS name (UseReverseDNS), its class, `<Limit LOGIN>` at connect (a denied client is
  disconnected without a reply, as ProFTPD does), and the `.ftpaccess` reader.
* a PRE_CMD hook for every command: MaxCommandRate, AllowFilter/DenyFilter, `<Limit>`s at the command's path (the
  row says where its path is and which group it is in), DenyAll in `<Directory>`, IgnoreHidden, and
  PathAllowFilter/PathDenyFilter for the rows that create names.
* for other modules: `login_allowed` (mod_auth at PASS), `limits_allow` (mod_site at a resolved path), `hidden`
  (listings).
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import random
import stat
import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import trace
from ..access import classes as classes_
from ..access import dirs, limits
from ..access.connlimits import CommandRate
from ..access.expr import parse_condition, pick
from ..access.limits import Decision, Who, directory_rule
from ..config.registry import ALL_DIRS, ANON, CLASS, DIR, FTPACCESS, LIMIT, SVG, Directive, Merge
from ..config.types import Choice, Custom, Flag, parse_int
from ..dispatch import PRE_CMD, Command, Hook, Request
from ..fs import FsError
from ..log import NOTICE
from ..module import Module
from ..net.netaddr import Resolver
from ..reply import Reply

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_core.c"
log = logging.getLogger("proftpy")


# -- directive argument types --------------------------------------------------------------------------------------
def _command_rate(args: list[str]) -> tuple[int, int]:
    if not 1 <= len(args) <= 2:
        raise ValueError("expected count [seconds]")
    return parse_int(args[0], 1), (parse_int(args[1], 1) if len(args) == 2 else 1)


def _hide_files(args: list[str]) -> dirs.HideRule:
    """`HideFiles regex|none [user|group|class expr]`; `none` (for whom the expression names) undoes inherited
    lines."""
    if not args:
        raise ValueError("expected a regular expression or 'none'")
    regex = None if args[0].lower() == "none" else limits.parse_filter(args[:1])
    return dirs.HideRule(regex, parse_condition(args[1:]))


def _owner(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("expected one name (a leading ! inverts)")
    return args[0]


LD = LIMIT | ANON | DIR | FTPACCESS
_AND = limits.expr_parser("and")
_OR = limits.expr_parser("or")
_ACL = Custom(limits.parse_acl_line, "[from] all|none|address|network|host[,...] ...")
_FILTER = Custom(limits.parse_filter, "regex [nocase]")

directives = (
    Directive("Allow", _ACL, LIMIT, None, Merge.DOWN, "Addresses a <Limit> allows.", repeat=True),
    Directive("Deny", _ACL, LIMIT, None, Merge.DOWN, "Addresses a <Limit> denies.", repeat=True),
    Directive("AllowAll", Custom(limits.parse_allowall, ""), LD, None, Merge.DOWN,
              "Allow everyone (in a <Limit>), or every command in a <Directory>/<Anonymous>."),
    Directive("DenyAll", Custom(limits.parse_allowall, ""), LD, None, Merge.DOWN,
              "Deny everyone (in a <Limit>), or every command in a <Directory>/<Anonymous>."),
    Directive("AllowUser", Custom(_OR, "[AND|OR|regex] user[,user] ..."), LIMIT, None, Merge.DOWN,
              "Users a <Limit> allows (OR list by default; !user negates).", repeat=True),
    Directive("DenyUser", Custom(_OR, "[AND|OR|regex] user[,user] ..."), LIMIT, None, Merge.DOWN,
              "Users a <Limit> denies.", repeat=True),
    Directive("AllowGroup", Custom(_AND, "[AND|OR|regex] group[,group] ..."), LIMIT, None, Merge.DOWN,
              "Groups a <Limit> allows (AND list by default: the user must be in all).", repeat=True),
    Directive("DenyGroup", Custom(_AND, "[AND|OR|regex] group[,group] ..."), LIMIT, None, Merge.DOWN,
              "Groups a <Limit> denies (AND list by default).", repeat=True),
    Directive("AllowClass", Custom(_OR, "[AND|OR|regex] class[,class] ..."), LIMIT, None, Merge.DOWN,
              "Connection classes a <Limit> allows.", repeat=True),
    Directive("DenyClass", Custom(_OR, "[AND|OR|regex] class[,class] ..."), LIMIT, None, Merge.DOWN,
              "Connection classes a <Limit> denies.", repeat=True),
    Directive("AllowFilter", _FILTER, ALL_DIRS | LIMIT, None, Merge.DOWN,
              "Command arguments must match (else `550 <arg>: Forbidden command argument`)."),
    Directive("DenyFilter", _FILTER, ALL_DIRS | LIMIT, None, Merge.DOWN,
              "Command arguments must not match (else `550 <arg>: Forbidden command argument`)."),
    Directive("Order", Custom(limits.parse_order, "allow,deny|deny,allow"), LIMIT, "allow,deny", Merge.DOWN,
              "allow,deny: allow rules first, nothing matched = allowed; deny,allow: deny first, "
              "nothing matched = denied."),
    Directive("IgnoreHidden", Flag, LIMIT, None, Merge.DOWN,
              "Commands on hidden files answer `No such file or directory`."),
    Directive("From", Custom(classes_.parse_from, "all|none|address|network|host[,...] ..."), CLASS, None,
              Merge.DOWN, "Addresses that belong to the <Class>.", repeat=True),
    Directive("Satisfy", Choice(("any", "all")), CLASS, "any", Merge.DOWN,
              "any: one From rule suffices; all: every From rule must match."),
    Directive("HideFiles", Custom(_hide_files, "regex|none [user|group|class expr]"), ALL_DIRS, None, Merge.MULTI,
              "Names matching the regex (or not matching, with a leading !) are left out of listings; optionally "
              "only for some users, groups or classes.", repeat=True),
    Directive("HideNoAccess", Flag, ANON | DIR | FTPACCESS, False, Merge.DOWN,
              "Leave out of listings what the user cannot read."),
    Directive("HideUser", Custom(_owner, "[!]user"), ANON | DIR | FTPACCESS, None, Merge.DOWN,
              "Leave out of listings files owned by this user."),
    Directive("HideGroup", Custom(_owner, "[!]group"), ANON | DIR | FTPACCESS, None, Merge.DOWN,
              "Leave out of listings files owned by this group."),
    Directive("PathAllowFilter", _FILTER, ALL_DIRS, None, Merge.DOWN,
              "Uploaded/created names must match (else `550 <arg>: Forbidden filename`)."),
    Directive("PathDenyFilter", _FILTER, ALL_DIRS, None, Merge.DOWN,
              "Uploaded/created names must not match (else `550 <arg>: Forbidden filename`)."),
    Directive("MaxCommandRate", Custom(_command_rate, "count [seconds]"), SVG, None, Merge.SERVER,
              "Above this many commands per interval, each command is delayed."),
)


@dataclass
class AccessState:
    rate: CommandRate | None = None         # MaxCommandRate's recent commands


# -- session setup -------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    resolver = Resolver()
    client = session.client = resolver.client(session.remote_addr, session.config.main.get("UseReverseDNS"))
    session.local_name = resolver.client(session.local_addr, client.reverse_dns).name
    session.conn_class = _class_of(session, client)
    if trace.on: trace.msg("netacl", 5, "client %s [%s] is in class %s", client.name, client.ip, session.conn_class or "(none)")
    session.ftpaccess = dirs.FtpaccessCache(session.config.registry, lambda d: _override_allowed(session, d),
                                            lambda p: session.fs.from_config(p) if session.fs else p)
    rate = session.server.get("MaxCommandRate")
    if rate:
        session.state.get(AccessState).rate = CommandRate(*rate)
    decision = _login_decision(session, client, session.conn_class)
    if trace.on: _trace_decision("LOGIN (connect)", decision)
    if not decision.allowed:
        log.warning("Connection from %s [%s] denied (%s%s)", client.name, client.ip, decision.reason,
                    f" at {decision.where}" if decision.where else "")
        session.end("Blocked by <Limit LOGIN>")


def rehearse(session: "Session") -> None:
    """An idle child's warm-up: the connect-time class and <Limit LOGIN> decisions for the throwaway session's
    address, without reverse DNS and without acting on them."""
    client = Resolver().client(session.remote_addr, False)
    _login_decision(session, client, _class_of(session, client))


def _class_of(session: "Session", client) -> str | None:
    cls = classes_.match_class(classes_.from_sections(session.config.classes), client)
    return cls.name if cls is not None else None


def _login_decision(session: "Session", client, conn_class: str | None):
    return limits.login_at_connect(session.server.section, Who(client, conn_class=conn_class))


@dataclass
class OverrideCache:
    """AllowOverride by (server, anon, home, directory): the configuration does not change under a session, and
    every configuration lookup with a path asks it for each directory up to /."""
    by_dir: dict[tuple, bool] = field(default_factory=dict)


def _override_allowed(session: "Session", directory: str) -> bool:
    """AllowOverride at a configuration path: whether a `.ftpaccess` there is read."""
    cache = session.state.get(OverrideCache).by_dir
    key = (session.server, session.anon, session.home, directory)     # the objects: kept alive, ids not reused
    allowed = cache.get(key)
    if allowed is None:
        if len(cache) >= 4096:          # a long session over many directories starts again
            cache.clear()
        allowed = cache[key] = bool(session.server.context(session.anon, directory, session.home)
                                    .get("AllowOverride"))
    return allowed


# -- for other modules ---------------------------------------------------------------------------------------------
def login_allowed(session: "Session", user: str, groups: tuple[str, ...] | None) -> bool:
    """`<Limit LOGIN>` at PASS: every LOGIN limit of the server (or of the `<Anonymous>` block in
    `session.anon`) must not deny. mod_auth asks this before it logs the user in."""
    section = session.anon if session.anon is not None else session.server.section
    decision = limits.login_at_pass(section, Who(session.client, user, groups, session.conn_class))
    if trace.on: _trace_decision(f"LOGIN {user}", decision)
    if not decision.allowed:
        log.debug("%s: Limit access denies login (%s)", user, decision.where or decision.reason)
    return decision.allowed


def check_command(session: "Session", arg: str, limit_name: str, group: str | None, limit_all: bool,
                  target: dirs.Target | None, hidden: bool = False, ctx=None) -> Decision:
    """The whole decision for one command at one place (`ctx`: the session's context there, when the caller has
    it). DenyAll placed in a `<Directory>` refuses new names too (ProFTPD lets STOR and RNTO create them there: a
    difference kept on purpose, docs/access.md)."""
    if ctx is None:
        ctx = session.context(target.real if target is not None else None)
    rule = directory_rule(ctx) if target is not None else None
    if rule is not None and not rule.allowed:
        return rule
    return limits.check_command(ctx.limits(), limit_name, group, limit_all, session.who(arg), hidden)


def limits_allow(session: "Session", name: str, group: str | None, real: str) -> bool:
    """For modules that check a pseudo-command themselves (SITE_CHMOD...): the `<Limit>` verdict at a resolved
    path, as the session sees it."""
    target = dirs.Target(real, session.fs.config_path(real), "")
    row = session.dispatcher.row(name.replace("_", " "))
    return check_command(session, "", name, group, row.limit_all if row else True, target).allowed


def hidden(session: "Session", real_dir: str, name: str) -> bool:
    """Whether a directory entry is hidden from this session (HideFiles, HideNoAccess, HideUser, HideGroup)."""
    if name in (".", ".."):
        return False
    full = posixpath.join(real_dir, name)
    ctx = session.context(full)
    rule = pick(ctx.chain, "HideFiles", session.who)
    if rule is not None and rule.regex is not None and rule.regex.search(name):
        return True
    hide_user, hide_group = ctx.get("HideUser"), ctx.get("HideGroup")
    no_access = ctx.get("HideNoAccess")
    if not (hide_user or hide_group or no_access):
        return False
    try:
        st = session.fs.lstat(full)
    except OSError:
        return False
    if no_access and not session.fs.access(full, os.R_OK | (os.X_OK if stat.S_ISDIR(st.st_mode) else 0)):
        return True
    return (dirs.owner_hidden(hide_user, lambda: _owner_name(session, st.st_uid, "user"))
            or dirs.owner_hidden(hide_group, lambda: _owner_name(session, st.st_gid, "group")))


def _owner_name(session: "Session", ident: int, kind: str) -> str | None:
    try:
        rec = session.auth.getpwuid(ident) if kind == "user" else session.auth.getgrgid(ident)
    except Exception as e:            # an auth backend failing must not break a listing
        log.info("cannot map owner of a file: %s", e)
        return None
    return getattr(rec, "name", None)


def path_is_hidden(session: "Session", real: str) -> bool:
    """Whether the last component of a resolved path is hidden in its directory."""
    if real in ("/", ""):
        return False
    return hidden(session, posixpath.dirname(real) or "/", posixpath.basename(real))


# -- every command -------------------------------------------------------------------------------------------------
def _trace_decision(what: str, decision: Decision, path: str | None = None) -> None:
    """The `<Limit>` verdict and the line that decided it (what `proftpy check-access` explains), live."""
    rule = f"{decision.rule.name} {' '.join(decision.rule.args)}".strip() if decision.rule is not None else ""
    trace.msg("access", 5, "%s%s: %s by %s%s%s", what, f" at {path}" if path else "",
              "allowed" if decision.allowed else "denied", decision.reason, f": {rule}" if rule else "",
              f" ({decision.where})" if decision.where else "")


def _denied(session: "Session", cmd: Request, row: Command, decision: Decision) -> Reply:
    log.info("%s denied by %s%s", cmd.display, decision.reason,
             f" ({decision.where})" if decision.where else "")
    what = cmd.arg if cmd.arg else cmd.name
    error = os.strerror(errno.ENOENT if decision.hidden else decision.error)
    if callable(row.denied):
        return row.denied(session, cmd, error)      # (its own checks first: SIZE's ASCII mode, RNTO's RNFR)
    if decision.hidden:
        return Reply(550, f"{what}: {error}")
    code, text = row.denied
    unique = "ftp" + "".join(random.choices(string.ascii_letters + string.digits, k=6)) if "{unique" in text else ""
    return Reply(code, text.format(cmd=cmd.name, arg=what, unique=unique, error=error))


def pre_any(session: "Session", cmd: Request) -> Reply | None:
    rate = session.state.get(AccessState).rate
    if rate is not None:
        delay = rate.delay()
        if delay:
            session.events.emit("core.max-command-rate", session=session)
            log.log(NOTICE, "MaxCommandRate (%d cmds/%d secs) exceeded, injecting processing delay of %d ms",
                    rate.count, rate.interval, int(delay * 1000))
            time.sleep(delay)
    path_row, path = session.dispatcher.path_argument(cmd.name, cmd.arg)
    target = None
    if path is not None and session.authenticated and session.fs is not None:
        try:
            target = dirs.target(session.fs, path_row.path.exact, path, path_row.path.tilde)
        except FsError:
            return None                       # the command itself answers with the same error
    ctx = session.context(target.real if target is not None else None)
    if cmd.arg:
        reply = _arg_filters(session.conf if target is None else ctx.get, cmd)
        if reply is not None:
            return reply
    row = path_row if cmd.name != "SITE" else session.dispatcher.row(cmd.name)
    if not row.limit:
        return None                           # (mod_site checks each SITE_* itself: limits_allow)
    hidden_ = False
    if target is not None and any(lim.first("IgnoreHidden") for _, lim in ctx.limits()):
        real = session.fs.resolve(path).real if path else target.real
        hidden_ = path_is_hidden(session, real)
    decision = check_command(session, cmd.arg, row.limit_name, row.group, row.limit_all, target, hidden_, ctx)
    if trace.on: _trace_decision(cmd.display, decision, target.real if target is not None else None)
    if not decision.allowed:
        return _denied(session, cmd, row, decision)
    if row.path_filter and path is not None:
        return _path_filters(ctx, cmd, path)
    return None


def _arg_filters(get, cmd: Request) -> Reply | None:
    """AllowFilter/DenyFilter; `get` reads a directive at the command's place (`Session.conf` at the session
    level, whose values it keeps across commands). Asked only for a command with an argument."""
    allow, deny = get("AllowFilter"), get("DenyFilter")
    if (allow is not None and not allow.search(cmd.arg)) or (deny is not None and deny.search(cmd.arg)):
        log.log(NOTICE, "'%s' denied by %s", cmd.display, "AllowFilter" if allow is not None else "DenyFilter")
        return Reply(550, f"{cmd.arg}: Forbidden command argument")
    return None


def _path_filters(ctx, cmd: Request, path: str) -> Reply | None:
    allow, deny = ctx.get("PathAllowFilter"), ctx.get("PathDenyFilter")
    if (allow is not None and not allow.search(path)) or (deny is not None and deny.search(path)):
        return Reply(550, f"{cmd.arg}: Forbidden filename")
    return None


MODULE = Module(NAME, directives=directives, hooks=(Hook(PRE_CMD, "*", pre_any),), session_init=session_init,
                rehearse=rehearse)
