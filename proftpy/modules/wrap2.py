"""mod_wrap2: tcpwrappers-like access tables without libwrap (ProFTPD's contrib/mod_wrap2, 1.3.8), with the
`file:` and `builtin:` sources (wrap2_file.py), the `sql:` one (wrap2_sql.py) and the `redis:` one (wrap2_redis.py);
each declares a `TableSource`.

Where the check is made, as for mod_wrap (wrap.py): in the master at accept when WrapTables is all there is (no
WrapUserTables/WrapGroupTables, no `~`/`%U` in a source, no `sql:` or `redis:` table) and no DNS name is needed;
otherwise in the session, before PASS, as ProFTPD: WrapUserTables whose user OR expression holds (`*` is anyone, `!` negates), else WrapGroupTables
whose group AND expression holds, else WrapTables. A refused client gets `530 <WrapDenyMsg>` (or `Access denied`)
and is disconnected; an allowed one gets WrapAllowMsg as the last line of its 230 reply. `WrapOptions
CheckOnConnect` checks WrapTables when the session starts (then `%u` in WrapDenyMsg is "unknown"); `CheckAllNames`
lets name patterns match every name of the client's address. The decisions go to WrapLog, in ProFTPD's words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..access import expr as exprs
from ..access import hostsaccess as ha
from ..config.registry import SVG, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Options, Path, Str, Text
from ..dispatch import POST_CMD, PRE_CMD, Hook, Request
from ..module import Listener, MasterView, Module, Veto
from ..net.connection import Connection
from ..reply import Reply
from .auth import group_names
from .ident import ident_of
from .modlog import ModuleLog
from . import wrap2_file, wrap2_redis, wrap2_sql
from .wrap import (DENIED_EVENT, Files, Opening, Who, client_text, files_parsers, host_tables, master_request,
                   session_request, who_is_logging_in)

if TYPE_CHECKING:
    from ..config.tree import Context, Server
    from ..session import Session

NAME = "mod_wrap2.c"
TAG = "mod_wrap2/2.0.7"         # ProFTPD 1.3.8's mod_wrap2, as its WrapLog lines name it
OPTIONS = ("CheckOnConnect", "CheckAllNames")
log = logging.getLogger("proftpy")


SOURCES = {source.kind: source for source in (*wrap2_file.SOURCES, wrap2_sql.SOURCE, wrap2_redis.SOURCE)}


def source(word: str) -> str:
    """A directive's `type:info` word, checked by its source."""
    kind, sep, info = word.partition(":")
    if not sep:
        raise ValueError(f"bad table parameter: '{word}'")
    if kind not in SOURCES:
        raise ValueError(f"unsupported table source type: '{kind}'")
    SOURCES[kind].check(info)
    return word


def open_table(word: str, opening: Opening) -> ha.Table | None:
    """The table a (checked) word names, for this check (None: no table)."""
    kind, _, info = word.partition(":")
    return SOURCES[kind].open(info, opening)


def _at_accept(files: Files) -> bool:
    return all(SOURCES[word.partition(":")[0]].at_accept for word in (files.allow, files.deny))


_tables, _named_tables = files_parsers(source, "an allow table and a deny table (type:info)")


directives = (
    Directive("WrapEngine", Flag, SVG, False, Merge.SERVER, "Check the Wrap*Tables at all."),
    Directive("WrapTables", Custom(_tables, "allow-table deny-table (file:/path, builtin:all, sql:/query, "
                                   "redis:/list|set:key)"), SVGA, None, Merge.DOWN,
              "The allow and deny tables for every client (`sql:` a named query, `redis:` a Redis list or set)."),
    Directive("WrapUserTables", Custom(_named_tables, "user-OR-expression allow-table deny-table"), SVGA, None,
              Merge.MULTI, "Tables for the users the OR expression names (`*` anyone, `!` negates); first.",
              repeat=True),
    Directive("WrapGroupTables", Custom(_named_tables, "group-AND-expression allow-table deny-table"), SVGA, None,
              Merge.MULTI, "Tables for members of all the groups the expression names; after WrapUserTables.",
              repeat=True),
    Directive("WrapServiceName", Str("name"), SVG, "proftpd", Merge.SERVER, "The daemon name the tables list."),
    Directive("WrapLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_wrap2's own log file (`none`: none)."),
    Directive("WrapOptions", Options(OPTIONS, "WrapOption"), SVG, frozenset(), Merge.SERVER,
              "CheckOnConnect: check WrapTables at connect; CheckAllNames: every DNS name of the client counts.",
              repeat=True),
    Directive("WrapDenyMsg", Text, SVGA, None, Merge.DOWN, "530 text for a refused client (%u = user)."),
    Directive("WrapAllowMsg", Text, SVGA, None, Merge.DOWN, "Line added to the 230 reply of an allowed client."),
)


# -- state ---------------------------------------------------------------------------------------------------------
@dataclass
class Wrap2State:
    """A session's (or the master's): WrapLog; in the master also the servers whose WrapTables it checks at
    accept (see wrap.host_tables)."""

    log: ModuleLog = field(default_factory=lambda: ModuleLog(TAG))
    host_tables: dict = field(default_factory=dict)


def _options_of(server: "Server") -> frozenset[str]:
    return frozenset(o for p in server.section.all("WrapOptions") for o in p.value)


def _request(session: "Session", user: str) -> ha.Request:
    req = session_request(session, session.server.get("WrapServiceName"), user)
    if "CheckAllNames" in _options_of(session.server) and session.config.main.get("UseReverseDNS"):
        req.client.aliases = ha.aliases
    return req


def _decide(wlog: ModuleLog, files: Files, req: ha.Request, opening: Opening) -> ha.Verdict:
    wlog.write(f"using '{files.allow}' for allow table")
    wlog.write(f"using '{files.deny}' for deny table")
    wlog.write(f"looking under service name '{req.daemon}'")
    wlog.write("checking access rules for connection")
    allow = open_table(files.allow, opening)
    deny = open_table(files.deny, opening)
    verdict = ha.check(allow, deny, req)
    _ignored(wlog, verdict)
    return verdict


def _ignored(wlog: ModuleLog, verdict: ha.Verdict) -> None:
    for option in verdict.ignored:
        wlog.write(f"option '{option}' of {verdict.table} line {verdict.line} not carried out")


# -- the master ----------------------------------------------------------------------------------------------------
def master_init(master: MasterView) -> None:
    main = master.config.main
    st = master.state.get(Wrap2State)
    st.host_tables = {server: files for server, files in
                      host_tables(master, "WrapTables", ("WrapUserTables", "WrapGroupTables"), "WrapEngine").items()
                      if _at_accept(files) and not server.get("IdentLookups")}   # (IdentLookups: the session
                                                                                        # decides, with the name)
    if any(s.get("WrapEngine") for s in master.config.servers):
        st.log.open(main.get("WrapLog"), main.get("AllowLogSymlinks"))
    else:
        st.log.close()


def master_stop(master: MasterView) -> None:
    master.state.get(Wrap2State).log.close()


def refuse(master: MasterView, conn: Connection) -> Veto | None:
    """WrapTables at accept, when the answer depends on nothing the session would learn."""
    st = master.state.get(Wrap2State)
    if not st.host_tables:
        return None
    server = master.server_for(conn.local)
    files = st.host_tables.get(server)
    if files is None:
        return None
    req = master_request(server.get("WrapServiceName"), conn, master.config.main.get("UseReverseDNS"))
    try:
        opening = Opening(req.daemon)
        verdict = ha.check(open_table(files.allow, opening), open_table(files.deny, opening), req)
    except ha.NeedsName:
        return None
    _ignored(st.log, verdict)
    if verdict.allowed:
        return None
    st.log.write(f"refused connection from {conn.remote[0]}")
    return Veto(f"{TAG}: refused connection from {conn.remote[0]}", DENIED_EVENT, logging.INFO)


# -- the session ---------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    server = session.server
    st = session.state.get(Wrap2State)
    if not server.get("WrapEngine"):
        st.log.close()
        return
    st.log.open(server.get("WrapLog"), server.get("AllowLogSymlinks"))
    files = server.get("WrapTables")
    if "CheckOnConnect" not in _options_of(server) or files is None:
        return
    req = _request(session, ident_of(session) or ha.UNKNOWN)
    # no session for the tables: ProFTPD's mod_sql is not ready when mod_wrap2 checks at connect (SQL tables empty)
    if not _decide(st.log, files, req, Opening(req.daemon, log=st.log.write)).allowed:
        _refused(session, st.log, req)
        session.send(Reply(530, _deny_text(server.context(), "unknown")))
        session.end("refused by mod_wrap2", cause="module-acl")
    else:
        st.log.write(f"allowed connection from {client_text(req)}")


def _deny_text(ctx: "Context", user: str) -> str:
    text = ctx.get("WrapDenyMsg")
    return text.replace("%u", user) if text else "Access denied"


def _refused(session: "Session", wlog: ModuleLog, req: ha.Request) -> None:
    wlog.write(f"refused connection from {client_text(req)}")
    session.events.emit(DENIED_EVENT, session=session)


def _tables_for(session: "Session", who: Who, wlog: ModuleLog) -> tuple[Files | None, str]:
    """The tables that apply, and the name their SQL queries get (the user's, the primary group's, or none)."""
    ctx = who.context
    for files in ctx.all("WrapUserTables"):
        if _or(files.names, (who.name,)):
            wlog.write(f"matched WrapUserTables expression for user '{who.name}'")
            return files, who.account.name
    lines = ctx.all("WrapGroupTables")
    if lines:
        groups = group_names(session.auth, who.account)
        if not groups:
            wlog.write(f"no supplemental groups found for user '{who.name}'")
        for files in lines if groups else ():
            if exprs.eval_and(files.names, groups):
                wlog.write(f"matched WrapGroupTables expression for user '{who.name}'")
                group = session.auth.getgrgid(who.account.gid)
                return files, group.name if group is not None else ""
    return ctx.get("WrapTables"), ""


def _or(names: tuple[str, ...], have: tuple[str, ...]) -> bool:
    """mod_wrap2's user OR list: `*` is anyone."""
    return any((t.lstrip("!") == "*" or t.lstrip("!") in have) != t.startswith("!") for t in names)


def before_pass(session: "Session", cmd: Request) -> Reply | None:
    if not session.server.get("WrapEngine") or session.authenticated:
        return None
    who = who_is_logging_in(session)
    if who is None:
        return None
    wlog = session.state.get(Wrap2State).log
    if who.account is None:
        wlog.write(f"unable to resolve UID for '{who.name}'")
        return None
    files, client = _tables_for(session, who, wlog)
    if files is None:
        wlog.write("no tables configured, allowing connection")
        return None
    sent = session.user_arg
    req = _request(session, ident_of(session) or sent or ha.UNKNOWN)     # ProFTPD: the RFC 1413 name first
    if _decide(wlog, files, req, Opening(req.daemon, who, sent, session, client, wlog.write)).allowed:
        wlog.write(f"allowed connection from {client_text(req)}")
        return None
    _refused(session, wlog, req)
    session.end("refused by mod_wrap2", cause="module-acl")
    return Reply(530, _deny_text(who.context, who.name))


def after_pass(session: "Session", cmd: Request) -> None:
    """WrapAllowMsg: the first line of the 230 reply (ProFTPD's mod_auth adds its text after mod_wrap2's POST_CMD)."""
    if not session.server.get("WrapEngine") or cmd.reply is None:
        return None
    text = session.context().get("WrapAllowMsg")
    if text:
        cmd.reply.lead(text.replace("%u", session.user_arg or session.user))
    return None


def _reinit(session: "Session", **_: Any) -> None:
    """HOST chose another server: its WrapLog (its tables are read at PASS)."""
    st = session.state.get(Wrap2State)
    if session.server.get("WrapEngine"):
        st.log.open(session.server.get("WrapLog"), session.server.get("AllowLogSymlinks"))
    else:
        st.log.close()


MODULE = Module(NAME, directives=directives,
                hooks=(Hook(PRE_CMD, "PASS", before_pass), Hook(POST_CMD, "PASS", after_pass)),
                listeners=(Listener("core.session-reinit", _reinit),),
                session_init=session_init, master_init=master_init, master_reload=master_init,
                master_stop=master_stop, veto=refuse)
