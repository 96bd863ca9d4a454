"""Access control: `<Limit>` contents, `<Class>`, `.ftpaccess`, hiding, path filters and the Max* limits.

Directives are declared here for the ProFTPD module that owns them: Allow/Deny/Order/`<Limit>` contents,
classes, filters and MaxCommandRate are mod_core.c; MaxClients* / MaxHostsPerUser / MaxConnectionsPerHost are
mod_auth.c; MaxTransfersPer* are mod_xfer.c. The logic lives in proftpy/access/ and proftpy/net/; this module
wires it into the session:

* session_init: the client's DNS name (UseReverseDNS), its class, `<Limit LOGIN>` at connect (a denied client is
  disconnected without a reply, as ProFTPD does), MaxConnectionsPerHost, and the `.ftpaccess` lookup.
* `session.state["login_allowed"]` (called by mod_auth at PASS) and a POST_CMD PASS hook for the Max* limits.
* a PRE_CMD hook for every command: MaxCommandRate, AllowFilter/DenyFilter, `<Limit>`s at the command's path,
  DenyAll in `<Directory>`, IgnoreHidden, PathAllowFilter/PathDenyFilter and MaxTransfersPer*.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from ..access import classes as classes_
from ..access import connlimits, dirs, limits
from ..access.limits import Who
from ..access.expr import parse_condition
from ..config.registry import (ALL_DIRS, ANON, CLASS, DIR, FTPACCESS, LIMIT, SVG, SVGA, Directive, Merge)
from ..config.types import Choice, Custom, Flag, parse_int
from ..dispatch import POST_CMD, PRE_CMD, Cmd, Hook
from ..fs import FsError
from ..log import NOTICE
from ..net.netaddr import Resolver
from ..reply import Reply

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_core.c"
log = logging.getLogger("proftpy")
STATE = dirs.STATE

# Commands <Limit> never applies to (ProFTPD checks none of these through dir_check).
UNLIMITED = frozenset({"USER", "PASS", "ACCT", "REIN", "QUIT", "NOOP", "SYST", "FEAT", "HELP", "TYPE", "MODE",
                       "STRU", "ABOR", "AUTH", "PBSZ", "PROT", "CCC", "HOST", "CLNT", "OPTS", "ALLO"})
# Denial replies that are not `550 <arg>: Permission denied`.
DENIAL = {"PASV": (501, "{cmd}: Operation not permitted"), "EPSV": (501, "{cmd}: Operation not permitted"),
          "PORT": (501, "{cmd}: Operation not permitted"), "EPRT": (501, "{cmd}: Operation not permitted"),
          "PWD": (550, "{cmd}: Permission denied"), "XPWD": (550, "{cmd}: Permission denied"),
          "CDUP": (550, "{cmd}: Permission denied"), "XCUP": (550, "{cmd}: Permission denied"),
          "RANG": (552, "{cmd}: Operation not permitted")}
PATH_FILTERED = frozenset({"STOR", "STOU", "APPE", "MKD", "XMKD", "RNTO", "SITE_CPTO", "SITE_MKDIR"})
SITE_GROUPS = {"CHMOD": "WRITE", "CHGRP": "WRITE", "CPTO": "WRITE", "MKDIR": "WRITE", "RMDIR": "WRITE",
               "SYMLINK": "WRITE", "UTIME": "WRITE", "CPFR": "READ", "COPY": "WRITE"}
MAX_DIRECTIVES = ("MaxClients", "MaxClientsPerHost", "MaxClientsPerUser", "MaxClientsPerClass", "MaxHostsPerUser",
                  "MaxConnectionsPerHost", "MaxTransfersPerHost", "MaxTransfersPerUser")


# -- directive argument types --------------------------------------------------------------------------------------
def _max_n(args: list[str]) -> tuple[int, str | None] | None:
    """`n|none [message]`; 0 and none mean no limit."""
    if not 1 <= len(args) <= 2:
        raise ValueError("expected a number or 'none', and an optional message")
    if args[0].lower() == "none":
        return None
    n = parse_int(args[0], 0)
    return (n, args[1] if len(args) == 2 else None) if n else None


def _max_per_class(args: list[str]) -> tuple[str, int, str | None]:
    if not 2 <= len(args) <= 3:
        raise ValueError("expected class name, number and an optional message")
    return args[0], parse_int(args[1], 1), (args[2] if len(args) == 3 else None)


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

directives = [
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
    Directive("MaxClients", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Logged-in clients per server (`530` + disconnect).", module="mod_auth.c"),
    Directive("MaxClientsPerHost", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Logged-in clients per client address.", module="mod_auth.c"),
    Directive("MaxClientsPerUser", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Logged-in sessions per user.", module="mod_auth.c"),
    Directive("MaxClientsPerClass", Custom(_max_per_class, "class number [message]"), SVG, None, Merge.SERVER,
              "Sessions per connection class.", module="mod_auth.c", repeat=True),
    Directive("MaxHostsPerUser", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Client hosts per user.", module="mod_auth.c"),
    Directive("MaxConnectionsPerHost", Custom(_max_n, "number|none [message]"), SVG, None, Merge.SERVER,
              "Connections (logged in or not) per client address, checked at connect.", module="mod_auth.c"),
    Directive("MaxTransfersPerHost", Custom(connlimits.parse_transfer_limit, "cmd[,cmd] count [message]"),
              ALL_DIRS, None, Merge.DOWN, "Simultaneous transfers per client address (`451`).",
              module="mod_xfer.c", repeat=True),
    Directive("MaxTransfersPerUser", Custom(connlimits.parse_transfer_limit, "cmd[,cmd] count [message]"),
              ALL_DIRS, None, Merge.DOWN, "Simultaneous transfers per user (`451`).",
              module="mod_xfer.c", repeat=True),
]


# -- session setup -------------------------------------------------------------------------------------------------
def _st(session: "Session") -> dict:
    return dirs.state(session)


def session_init(session: "Session") -> None:
    st = _st(session)
    resolver = Resolver()
    st["client"] = client = resolver.client(session.remote_addr, session.config.main.get("UseReverseDNS"))
    session.remote_name = client.name
    session.local_name = resolver.client(session.local_addr, client.reverse_dns).name
    classes = classes_.from_sections(session.config.classes)
    cls = classes_.match_class(classes, client)
    session.conn_class = cls.name if cls is not None else None
    session.state["ftpaccess"] = dirs.ftpaccess_lookup(session)
    session.state["login_allowed"] = login_allowed
    session.events.on("core.chroot", lambda session, root, **_: st.__setitem__("chroot", root))
    rate = session.server.get("MaxCommandRate")
    if rate:
        st["rate"] = connlimits.CommandRate(*rate)
    decision = limits.login_at_connect(session.server.section, Who(client, conn_class=session.conn_class))
    if not decision.allowed:
        log.warning("Connection from %s [%s] denied (%s%s)", client.name, client.ip, decision.reason,
                    f" at {decision.where}" if decision.where else "")
        session.end("Blocked by <Limit LOGIN>")
        return
    st["scoreboard"] = _open_scoreboard(session)
    if st["scoreboard"] is not None:
        refusal = connlimits.check_connect(_entries(session), _server_key(session), client.ip,
                                           session.server.get("MaxConnectionsPerHost"))
        if refusal is not None:
            _refuse(session, refusal)


def _uses_max_limits(session: "Session") -> bool:
    sections = [session.server.section]
    while sections:
        s = sections.pop()
        if any(s.first(name) for name in MAX_DIRECTIVES):
            return True
        sections.extend(s.sections)
    return False


def _open_scoreboard(session: "Session"):
    """The scoreboard to count from: the master's, else the file opened read-only now (before any chroot)."""
    if not _uses_max_limits(session):
        return None
    shared = session.services.get("scoreboard")
    if shared is not None and hasattr(shared, "entries"):
        return shared
    from ..scoreboard import Scoreboard, ScoreboardError, is_disabled
    path = session.config.main.get("ScoreboardFile")
    if not path or is_disabled(path):
        log.warning("Max* limits are configured but ScoreboardFile is off: they cannot be enforced")
        return None
    try:
        return Scoreboard.open(path, readonly=True)
    except ScoreboardError as e:
        log.warning("cannot read the scoreboard for Max* limits: %s", e)
        return None


def _server_key(session: "Session") -> str:
    return connlimits.server_key(session.local_addr, session.local_port)


def _entries(session: "Session") -> list:
    """Scoreboard entries with this session's own slot as it is now (added when the slot is not there yet)."""
    from ..scoreboard import NONE_USER, Entry, ScoreboardError
    sb = _st(session).get("scoreboard")
    if sb is None:
        return []
    try:
        entries = [e for e in sb.entries() if e.pid != os.getpid()]
    except (ScoreboardError, OSError) as e:
        log.warning("cannot read the scoreboard: %s", e)
        entries = []
    now = int(time.time())
    me = Entry(slot=-1, pid=os.getpid(), uid=os.geteuid(), gid=os.getegid(),
               user=session.user if session.authenticated and session.user else NONE_USER,
               server_port=session.server.get("Port"), server_addr=_server_key(session),
               server_label=session.server.name or "", client_addr=session.remote_addr,
               client_name=session.remote_name, class_=session.conn_class or "", protocol="ftp", cwd="",
               cmd="", cmd_arg="", begin_idle=now, begin_session=int(session.started), xfer_size=0, xfer_done=0,
               xfer_len=0, xfer_elapsed_ms=0)
    return entries + [me]


def _refuse(session: "Session", refusal: connlimits.Refusal) -> Reply:
    """Say why, tell mod_ban, and end the session (ProFTPD: 530 + disconnect)."""
    log.log(NOTICE, "Connection refused (%s)", refusal.directive)
    session.send(Reply(refusal.code, refusal.text))
    session.events.emit(refusal.event, session=session)
    session.end(f"Denied by {refusal.directive}")
    return Reply(refusal.code, refusal.text)


# -- who is asking -------------------------------------------------------------------------------------------------
def _group_names(session: "Session", account) -> tuple[str, ...]:
    from .auth import auth_chain
    chain = auth_chain(session.server)
    names = []
    primary = chain.getgrgid(account.gid)
    if primary is not None:
        names.append(primary.name)
    for g in chain.groups_for(account):
        if g.name not in names:
            names.append(g.name)
    return tuple(names)


def who(session: "Session", arg: str | None = None) -> Who:
    st = _st(session)
    groups = None
    if session.authenticated and getattr(session, "account", None) is not None:
        groups = st.get("groups")
        if groups is None:
            try:
                groups = st["groups"] = _group_names(session, session.account)
            except Exception as e:          # a backend failing: no group rule can match, say why
                log.warning("cannot list the groups of %s: %s", session.user, e)
                groups = st["groups"] = ()
    user = session.user if session.authenticated else None
    return Who(st["client"], user, groups, session.conn_class, arg)


def login_allowed(session: "Session", user: str | None = None, groups: tuple[str, ...] | None = None) -> bool:
    """`<Limit LOGIN>` at PASS: every LOGIN limit of the server (or of the `<Anonymous>` block in
    `session.anon`) must not deny. mod_auth calls this before it logs the user in; user and groups default to
    the pending login."""
    if user is None:
        user, groups = _pending_login(session)
    section = session.anon if session.anon is not None else session.server.section
    decision = limits.login_at_pass(section, Who(_st(session)["client"], user, groups, session.conn_class))
    if not decision.allowed:
        log.debug("%s: Limit access denies login (%s)", user, decision.where or decision.reason)
    return decision.allowed


def _pending_login(session: "Session") -> tuple[str | None, tuple[str, ...] | None]:
    from . import auth
    arg = session.state.get(auth.NAME, {}).get("user_arg")
    if arg is None:
        return None, None
    real, _anon = auth.resolve_alias(session, arg)
    account = auth.auth_chain(session.server).lookup(real)
    if account is None:
        return real, None
    try:
        return account.name, _group_names(session, account)
    except Exception as e:
        log.warning("cannot list the groups of %s: %s", real, e)
        return account.name, ()


# -- PASS: Max* ----------------------------------------------------------------------------------------------------
def login_limits(session: "Session") -> connlimits.LoginLimits:
    ctx = session.context()
    per_class = {}
    for p in session.server.section.all("MaxClientsPerClass"):
        name, n, msg = p.value
        per_class.setdefault(name, (n, msg))
    return connlimits.LoginLimits(ctx.get("MaxClients"), ctx.get("MaxClientsPerHost"),
                                  ctx.get("MaxClientsPerUser"), ctx.get("MaxHostsPerUser"), per_class)


def login_refusal(session: "Session") -> connlimits.Refusal | None:
    """The Max* limit a just-authenticated session exceeds, if any."""
    if _st(session).get("scoreboard") is None:
        return None
    lims = login_limits(session)
    if not lims.any():
        return None
    counts = connlimits.count_login(_entries(session), _server_key(session), session.remote_addr,
                                    session.user or "", session.anon is not None, session.conn_class)
    return connlimits.check_login(counts, lims, session.conn_class)


def post_pass(session: "Session", cmd: Cmd) -> None:
    """ProFTPD counts at POST_CMD PASS and sends 530 before its queued 230 is flushed: the client sees only the
    530. Here the 230 reply object is still unsent, so it is turned into the 530."""
    if not session.authenticated or cmd.reply is None or cmd.reply.code != 230:
        return None
    refusal = login_refusal(session)
    if refusal is None:
        return None
    log.log(NOTICE, "Connection refused (%s)", refusal.directive)
    cmd.reply.code, cmd.reply.text, cmd.reply.lines = refusal.code, refusal.text, []
    session.events.emit(refusal.event, session=session)
    session.end(f"Denied by {refusal.directive}")
    return None


# -- every command -------------------------------------------------------------------------------------------------
def _limit_name_and_group(session: "Session", cmd: Cmd) -> tuple[str, str | None, bool]:
    row = session.dispatcher.commands.get(cmd.name)
    if cmd.name == "SITE":
        sub = cmd.arg.strip().partition(" ")[0].upper()
        site_row = session.dispatcher.commands.get(f"SITE {sub}")
        group = site_row.group if site_row is not None and site_row.group else SITE_GROUPS.get(sub)
        return f"SITE_{sub}", group, True
    return cmd.name, (row.group if row else None), (row.limited if row else True)


def _denied(cmd: Cmd, limit_name: str, decision: limits.Decision) -> Reply:
    log.info("%s denied by %s%s", cmd.display, decision.reason,
             f" ({decision.where})" if decision.where else "")
    what = cmd.arg if cmd.arg else cmd.name
    if decision.hidden:
        return Reply(550, f"{what}: No such file or directory")
    code, text = DENIAL.get(cmd.name, (550, "{arg}: Permission denied"))
    return Reply(code, text.format(cmd=cmd.name, arg=what))


def directory_rule(ctx) -> limits.Decision | None:
    """DenyAll/AllowAll placed directly in a `<Directory>`/`<Anonymous>`/.ftpaccess: the innermost wins."""
    for section in ctx.chain:
        for p in section.params:
            if p.directive.key in ("denyall", "allowall"):
                return limits.Decision(p.directive.key == "allowall", p, None,
                                       f"{p.name} in {section.describe()}")
    return None


def check_command(session: "Session", cmd: Cmd, limit_name: str, group: str | None, limited: bool,
                  target: dirs.Target | None, hidden: bool = False) -> limits.Decision:
    """The whole decision for one command at one place (used by the hook and by `proftpy check-access`)."""
    ctx = session.context(target.real if target is not None else None)
    rule = directory_rule(ctx) if target is not None else None
    if rule is not None and not rule.allowed:
        return rule
    return limits.check_command(ctx.limits(), limit_name, group, limited, who(session, cmd.arg), hidden)


def pre_any(session: "Session", cmd: Cmd) -> Reply | None:
    st = _st(session)
    rate = st.get("rate")
    if rate is not None:
        delay = rate.delay()
        if delay:
            session.events.emit("core.max-command-rate", session=session)
            log.log(NOTICE, "MaxCommandRate (%d cmds/%d secs) exceeded, injecting processing delay of %d ms",
                     rate.count, rate.interval, int(delay * 1000))
            time.sleep(delay)
    limit_name, group, limited = _limit_name_and_group(session, cmd)
    path = dirs.path_argument(cmd.name, cmd.arg)
    target = None
    if path is not None and session.authenticated and session.fs is not None:
        try:
            target = dirs.target(session, cmd.name, path[1])
        except FsError:
            return None                       # the command itself answers with the same error
    ctx = session.context(target.real if target is not None else None)
    reply = _arg_filters(ctx, cmd)
    if reply is not None:
        return reply
    if cmd.name in UNLIMITED or cmd.name == "SITE" or not session.authenticated:
        return None                           # mod_site checks each SITE_* itself (limits.allowed)
    hidden = False
    if target is not None and any(lim.first("IgnoreHidden") for _, lim in ctx.limits()):
        real = session.fs.resolve(path[1]).real if path[1] else target.real
        hidden = dirs.path_is_hidden(session, real)
    decision = check_command(session, cmd, limit_name, group, limited, target, hidden)
    if not decision.allowed:
        return _denied(cmd, limit_name, decision)
    if limit_name in PATH_FILTERED and path is not None:
        reply = _path_filters(ctx, cmd, path[1])
        if reply is not None:
            return reply
    if cmd.name in connlimits.TRANSFER_COMMANDS:
        return _transfer_limits(session, ctx, cmd)
    return None


def _arg_filters(ctx, cmd: Cmd) -> Reply | None:
    if not cmd.arg:
        return None
    allow, deny = ctx.get("AllowFilter"), ctx.get("DenyFilter")
    if (allow is not None and not allow.search(cmd.arg)) or (deny is not None and deny.search(cmd.arg)):
        log.log(NOTICE, "'%s' denied by %s", cmd.display, "AllowFilter" if allow is not None else "DenyFilter")
        return Reply(550, f"{cmd.arg}: Forbidden command argument")
    return None


def _path_filters(ctx, cmd: Cmd, path: str) -> Reply | None:
    allow, deny = ctx.get("PathAllowFilter"), ctx.get("PathDenyFilter")
    if (allow is not None and not allow.search(path)) or (deny is not None and deny.search(path)):
        return Reply(550, f"{cmd.arg}: Forbidden filename")
    return None


def _transfer_limits(session: "Session", ctx, cmd: Cmd) -> Reply | None:
    per_host, per_user = ctx.all("MaxTransfersPerHost"), ctx.all("MaxTransfersPerUser")
    if not per_host and not per_user:
        return None
    refusal = connlimits.check_transfer(_entries(session), _server_key(session), cmd.name, session.remote_addr,
                                        session.user, per_host, per_user, self_pid=os.getpid())
    if refusal is None:
        return None
    session.events.emit(refusal.event, session=session)
    log.log(NOTICE, "%s exceeded for %s from %s", refusal.directive, cmd.name, session.remote_addr)
    return Reply(refusal.code, refusal.text)


# -- for other modules ---------------------------------------------------------------------------------------------
def hidden(session: "Session", real_dir: str, name: str) -> bool:
    """For listings (mod_ls): whether `name` in `real_dir` is hidden from this session."""
    return dirs.hidden(session, real_dir, name)


hooks = [Hook(PRE_CMD, "*", pre_any), Hook(POST_CMD, "PASS", post_pass)]
