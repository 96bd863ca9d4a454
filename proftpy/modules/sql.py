"""mod_sql: users and groups from an SQL database (AuthOrder's `mod_sql.c`), SQLLog statements after commands,
SQLShowInfo lines in replies, SQLRatioStats counters.

The database work itself is in proftpy/auth/sql.py. Here: the directives, the backend each server offers the auth
chain, and what a session does: its database opened before the chroot (as ProFTPD's sessions open theirs), the
LogFormat facts its statements read, the hooks that run SQLLog/SQLShowInfo, and a database error's consequence
(ProFTPD's: log it and end the session without a reply, unless `SQLOptions NoDisconnectOnError` or the SQLLog line's
IGNORE_ERRORS). The database is the SQLBackend's (`DRIVERS`, one row per backend: auth/sql_sqlite.py...); an
SQLConnectInfo that backend cannot use is refused when the configuration loads (`validate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from .. import privs
from ..auth import MAX_ID
from ..auth import sql_mysql, sql_postgres, sql_sqlite
from ..auth.sql import (DEFAULT_ID, MIN_ID, MOD_SQL, VERSION, Database, Driver, GroupInfo, NamedQuery, Settings,
                        SqlBackend, SqlError, UserInfo, bind, compile_statement, escape, parse_auth_types,
                        parse_connect_info, parse_group_info, parse_named_query, parse_user_info, resolver, sql_value)
from ..config.errors import ConfigError
from ..config.registry import SVG, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Options, Str, Text, bool_word, parse_bool, parse_int
from ..dispatch import LOG_CMD, LOG_CMD_ERR, POST_CMD, POST_CMD_ERR, PRE_CMD, Hook, Request
from ..module import ANY, Listener, Module
from . import sql_passwd
from .log import record
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

ENGINE_AUTH, ENGINE_LOG = 1, 2
DRIVERS: dict[str, Driver] = {d.name: d for d in (sql_sqlite.DRIVER, sql_postgres.DRIVER, sql_mysql.DRIVER)}
DEFAULT_BACKEND = "sqlite3"         # without SQLBackend and without a backend's LoadModule line
NOT_IMPLEMENTED = ("odbc",)
ALL_COMMANDS = "*"


# -- directives ----------------------------------------------------------------------------------------------------
def _engine(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("expected on|off|auth|log")
    word = args[0].lower()
    if word in ("auth", "log"):
        return ENGINE_AUTH if word == "auth" else ENGINE_LOG
    try:
        return ENGINE_AUTH | ENGINE_LOG if parse_bool(word) else 0
    except ValueError:
        raise ValueError(f"unknown SQLEngine parameter '{args[0]}'") from None


def _backend(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("expected one backend name")
    name = args[0].lower()
    if name in NOT_IMPLEMENTED:
        raise ValueError(f"the '{args[0]}' backend is not implemented: proftpy has mod_sql's "
                         f"{', '.join(DRIVERS)} backends")
    if name not in DRIVERS:
        raise ValueError(f"unknown SQL backend '{args[0]}' (proftpy has {', '.join(DRIVERS)})")
    return name


def _authenticate(args: list[str]) -> frozenset[str]:
    """`SQLAuthenticate on|off | users groups userset[fast] groupset[fast]` -> the parts switched on."""
    if not 1 <= len(args) <= 4:
        raise ValueError("requires 1 to 4 parameters; check the mod_sql docs")
    if len(args) == 1 and args[0].lower() in ("on", "off"):
        return frozenset(("users", "groups", "userset", "groupset")) if args[0].lower() == "on" else frozenset()
    parts: set[str] = set()
    for word in args:
        low = word.lower()
        part = next((p for p in ("groupset", "userset", "groups", "users") if low.startswith(p)), None)
        if part is None or low not in (part, part + "fast" if part.endswith("set") else part + "*"):
            raise ValueError("unknown argument")
        if part in parts:
            raise ValueError(f"{part} already set")
        parts.add(part)
    if ("groupset" in parts and "groups" not in parts) or ("userset" in parts and "users" not in parts):
        raise ValueError("groupset and userset have no meaning without a corresponding groups or users argument.")
    return frozenset(parts)


def _id(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("expected one ID")
    try:
        return parse_int(args[0], 0, MAX_ID)
    except ValueError:
        raise ValueError(f"invalid UID value '{args[0]}'") from None


@dataclass(frozen=True)
class LogRule:
    """One SQLLog line: the commands (upper case; `*` any, `ERR_X` a failed X) and the named query to run."""

    commands: frozenset[str]
    query: str
    ignore_errors: bool = False


def _commands(text: str) -> frozenset[str]:
    return frozenset(w.upper() for w in text.replace(",", " ").split())


def _log(args: list[str]) -> LogRule:
    if not 2 <= len(args) <= 3:
        raise ValueError("expected cmdlist query-name [IGNORE_ERRORS]")
    return LogRule(_commands(args[0]), args[1], len(args) == 3 and args[2].upper() == "IGNORE_ERRORS")


@dataclass(frozen=True)
class ShowRule:
    """One SQLShowInfo line: the commands, the reply code, and the text (with `%{query}` results)."""

    commands: frozenset[str]
    code: str
    tokens: tuple


def _show_info(args: list[str]) -> ShowRule:
    if len(args) != 3:
        raise ValueError("expected cmdlist numeric format-string")
    return ShowRule(_commands(args[0]), args[1], tuple(compile_statement(args[2])))


def _columns(defaults: tuple[str, str, str, str]):
    """`on|off` or four column names (SQLRatioStats: files stored, files retrieved, bytes stored, bytes retrieved;
    SQLRatios: mod_ratio's four): the columns, or None when off."""
    def parse(args: list[str]) -> tuple[str, ...] | None:
        if len(args) == 4:
            return tuple(args)
        if len(args) == 1 and bool_word(args[0]) is not None:
            return defaults if bool_word(args[0]) else None
        raise ValueError("requires a boolean or 4 field names: " + " ".join(defaults))
    return parse


_ratio_stats = _columns(("fstor", "fretr", "bstor", "bretr"))
_ratios = _columns(("frate", "fcred", "brate", "bcred"))


EVENT_ALIASES = {
    "maxclientsperclass": "mod_auth.max-clients-per-class", "maxclientsperhost": "mod_auth.max-clients-per-host",
    "maxclientsperuser": "mod_auth.max-clients-per-user", "maxcommandrate": "core.max-command-rate",
    "maxconnectionsperhost": "mod_auth.max-connections-per-host", "maxhostsperuser": "mod_auth.max-hosts-per-user",
    "maxloginattempts": "mod_auth.max-login-attempts", "rootlogin": "mod_auth.root-login",
    "timeoutidle": "core.timeout-idle", "timeoutlogin": "core.timeout-login",
    "timeoutnotransfer": "core.timeout-no-transfer", "timeoutstalled": "core.timeout-stalled",
    "userbanned": "mod_ban.ban-user", "hostbanned": "mod_ban.ban-host", "classbanned": "mod_ban.ban-class"}


def _log_on_event(args: list[str]) -> tuple[str, LogRule]:
    """`SQLLogOnEvent event query-name [IGNORE_ERRORS]` -> (the event's name, its rule)."""
    if not 2 <= len(args) <= 3:
        raise ValueError("expected event query-name [IGNORE_ERRORS]")
    event = EVENT_ALIASES.get(args[0].lower(), args[0])
    return event, LogRule(frozenset(("EVENT",)), args[1], len(args) == 3 and args[2].upper() == "IGNORE_ERRORS")


def _not_implemented(name: str, why: str):
    def refuse(args: list[str]) -> None:
        raise ValueError(f"{name} is not implemented by proftpy ({why})")
    return refuse


def _keep_alive(args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise ValueError("wrong number of parameters")
    return parse_int(args[0], 0)


directives = (
    Directive("SQLEngine", Custom(_engine, "on|off|auth|log"), SVGA, ENGINE_AUTH | ENGINE_LOG, Merge.DOWN,
              "What mod_sql does: `auth` (users and groups), `log` (SQLLog, SQLShowInfo), both (`on`) or nothing."),
    Directive("SQLBackend", Custom(_backend, "|".join(DRIVERS)), SVG, None, Merge.SERVER,
              "The database driver; without it, the backend module LoadModule loads last, else sqlite3 (ODBC is "
              "refused: not implemented)."),
    Directive("SQLConnectInfo", Custom(parse_connect_info, "/path/to/db|db[@host[:port]] [user [password [policy]]] "
                                       "[ssl-cert:|ssl-key:|ssl-ca:|ssl-ciphers:value]"), SVG, None, Merge.SERVER,
              "The database: an SQLite file, or a server's database; without it mod_sql is off."),
    Directive("SQLAuthenticate", Custom(_authenticate, "on|off | users groups userset[fast] groupset[fast]"), SVG,
              frozenset(("users", "groups", "userset", "groupset")), Merge.SERVER,
              "Which lookups mod_sql answers: `users` (passwd), `groups` (group); the *set words are accepted."),
    Directive("SQLAuthTypes", Custom(parse_auth_types, "Crypt|Plaintext|Empty|OpenSSL|md5|sha1|sha256|sha512|..."),
              SVG, (), Merge.SERVER, "How a stored password is checked, tried in order: crypt(3), clear text, empty, "
              "`{digest}base64`, and mod_sql_passwd's digests (SQLPasswordEngine)."),
    Directive("SQLUserInfo", Custom(parse_user_info, "table user passwd uid gid homedir shell | custom:/query"),
              SVG, UserInfo(), Merge.SERVER,
              "The users table and its columns (uid...shell may be NULL), or named queries (`%{0}`: the name)."),
    Directive("SQLGroupInfo", Custom(parse_group_info, "table group gid members | custom:/by-name/by-id/members"),
              SVG, GroupInfo(), Merge.SERVER, "The groups table and its columns (members: comma-separated names)."),
    Directive("SQLUserWhereClause", Text, SVG, None, Merge.SERVER, "SQL added (AND) to every user lookup."),
    Directive("SQLGroupWhereClause", Text, SVG, None, Merge.SERVER, "SQL added (AND) to every group lookup."),
    Directive("SQLMinID", Custom(_id, "id"), SVG, None, Merge.SERVER,
              "Both SQLMinUserUID and SQLMinUserGID."),
    Directive("SQLMinUserUID", Custom(_id, "uid"), SVG, MIN_ID, Merge.SERVER,
              "A user's UID below this becomes SQLDefaultUID."),
    Directive("SQLMinUserGID", Custom(_id, "gid"), SVG, MIN_ID, Merge.SERVER,
              "A user's GID below this becomes SQLDefaultGID."),
    Directive("SQLDefaultUID", Custom(_id, "uid"), SVG, DEFAULT_ID, Merge.SERVER,
              "UID of users whose UID is NULL, unreadable or too low."),
    Directive("SQLDefaultGID", Custom(_id, "gid"), SVG, DEFAULT_ID, Merge.SERVER,
              "GID of users whose GID is NULL, unreadable or too low."),
    Directive("SQLDefaultHomedir", Text, SVG, None, Merge.SERVER,
              "Home of users whose home column is NULL or empty (or not configured)."),
    Directive("SQLNegativeCache", Flag, SVG, False, Merge.SERVER,
              "Remember, for the session, the names the database does not know."),
    Directive("SQLOptions", Options(("NoDisconnectOnError", "UseNormalizedGroupSchema", "NoReconnect",
                                     "IgnoreConfigFile"), "SQLOption", nocase=True), SVG, frozenset(), Merge.SERVER,
              "NoDisconnectOnError: a database error does not end the session; UseNormalizedGroupSchema: one member "
              "per groups row; NoReconnect: a server's closed connection is not replaced; IgnoreConfigFile: no "
              "effect.", repeat=True),
    Directive("SQLNamedQuery", Custom(parse_named_query, "name SELECT|INSERT|UPDATE|FREEFORM query [table]"), SVG,
              None, Merge.SERVER, "A statement with LogFormat variables, for SQLLog, SQLShowInfo, custom:/ lookups.",
              repeat=True),
    Directive("SQLLog", Custom(_log, "cmd[,cmd...]|* query-name [IGNORE_ERRORS]"), SVG, None, Merge.SERVER,
              "Run an INSERT/UPDATE/FREEFORM named query after these commands (`ERR_X`: after a failed X; `EXIT`: "
              "at the end of the session).", repeat=True),
    Directive("SQLShowInfo", Custom(_show_info, "cmd[,cmd...]|* code text"), SVG, None, Merge.SERVER,
              "Add a line to these commands' replies; `%{query}` is the first value a SELECT named query returns.",
              repeat=True),
    Directive("SQLLogFile", Custom(lambda a: None if Str()(a).lower() == "none" else Str()(a), "path|none"), SVG,
              None, Merge.SERVER, "mod_sql's own log: the statements run and the database errors."),
    Directive("SQLRatioStats", Custom(_ratio_stats, "on|off | fstor fretr bstor bretr"), SVG, None, Merge.SERVER,
              "Count files and bytes stored/retrieved in these users-table columns after each STOR and RETR."),
    Directive("SQLRatios", Custom(_ratios, "on|off | frate fcred brate bcred"), SVG, None, Merge.SERVER,
              "Accepted for compatibility: proftpy's mod_ratio reads its ratios from the configuration, not SQL."),
    Directive("SQLKeepAlive", Custom(_keep_alive, "seconds [statement]"), SVG, None, Merge.SERVER,
              "Accepted for compatibility: a connection the server closed while idle is replaced before the next "
              "statement instead."),
    Directive("SQLUserPrimaryKey", Text, SVG, None, Merge.SERVER,
              "Accepted for compatibility: the note it sets is for modules proftpy does not have."),
    Directive("SQLGroupPrimaryKey", Text, SVG, None, Merge.SERVER,
              "Accepted for compatibility: the note it sets is for modules proftpy does not have."),
    Directive("SQLNamedConnectInfo", Custom(_not_implemented("SQLNamedConnectInfo", "one connection: SQLConnectInfo"),
                                            "name backend info ..."), SVG, None, Merge.SERVER,
              "Not implemented: refused when the configuration loads."),
    Directive("SQLLogOnEvent", Custom(_log_on_event, "event query-name [IGNORE_ERRORS]"), SVG, None, Merge.SERVER,
              "Run an INSERT/UPDATE/FREEFORM named query when the session emits an event (ProFTPD's names: "
              "`MaxLoginAttempts`, `TimeoutIdle`... or a raw one such as `mod_auth.authenticated`).", repeat=True),
)


# -- settings and backend --------------------------------------------------------------------------------------------
def queries(server) -> dict[str, NamedQuery]:
    """The server's SQLNamedQuery lines by name (a later line of the same name wins, as ProFTPD finds the last)."""
    return {p.value.name: p.value for p in server.section.all("SQLNamedQuery")}


def settings(server) -> Settings:
    """A server's mod_sql directives as the backend reads them (resolved once per configured server)."""
    return server.base.cached(_settings)


def _settings(server) -> Settings:
    parts = server.get("SQLAuthenticate")
    engine = server.get("SQLEngine")
    min_id = server.get("SQLMinID")
    user_info = server.get("SQLUserInfo")
    default_home = server.get("SQLDefaultHomedir")
    users = "users" in parts and bool(engine & ENGINE_AUTH)
    if users and user_info.by_name is None and user_info.home is None and default_home is None:
        log.warning("%s: warning: no homedir field and no default specified. User authentication is OFF", VERSION)
        users = False
    where = server.get("SQLUserWhereClause")
    gwhere = server.get("SQLGroupWhereClause")
    return Settings(
        users=users, groups="groups" in parts and bool(engine & ENGINE_AUTH),
        user_info=user_info, group_info=server.get("SQLGroupInfo"),
        user_where=tuple(compile_statement(where)) if where else None,
        group_where=tuple(compile_statement(gwhere)) if gwhere else None,
        auth_types=server.get("SQLAuthTypes"),
        min_uid=min_id if min_id is not None else server.get("SQLMinUserUID"),
        min_gid=min_id if min_id is not None else server.get("SQLMinUserGID"),
        default_uid=server.get("SQLDefaultUID"), default_gid=server.get("SQLDefaultGID"),
        default_home=default_home, negative_cache=server.get("SQLNegativeCache"),
        normalized_groups=any("UseNormalizedGroupSchema" in p.value for p in server.section.all("SQLOptions")),
        queries=queries(server), passwd=sql_passwd.config(server))


def driver(server) -> Driver:
    """The server's SQLBackend: as named; else, as ProFTPD (one backend module loaded: that one; several: the last
    registered), the backend whose module the last backend LoadModule line loads; else sqlite3."""
    name = server.get("SQLBackend")
    if name is not None:
        return DRIVERS[name]
    root = server.section
    while root.parent is not None:
        root = root.parent
    by_module = {d.module: d for d in DRIVERS.values()}
    loaded = [by_module[p.value] for p in root.all("LoadModule") if p.value in by_module]
    return loaded[-1] if loaded else DRIVERS[DEFAULT_BACKEND]


def validate(config) -> None:
    """At load (start, reload, `-t`): an SQLConnectInfo its backend cannot use is an error naming its line."""
    for server in config.servers:
        p = server.context().param("SQLConnectInfo")
        if p is None:
            continue
        why = driver(server).unusable(p.value)
        if why:
            raise ConfigError(f"SQLConnectInfo: {why}", p.where)


def database(server) -> Database | None:
    """The server's database (one object per configured server, opened by each session that uses it)."""
    return server.base.cached(_database)


def _database(server) -> Database | None:
    info = server.get("SQLConnectInfo")
    options = frozenset(o for p in server.section.all("SQLOptions") for o in p.value)
    return driver(server).make(info, options) if info is not None else None


def backend(server) -> SqlBackend | None:
    """AuthOrder's `mod_sql.c`: None (not offered) without SQLConnectInfo, as ProFTPD's "mod_sql is OFF"."""
    db = database(server)
    return SqlBackend(settings(server), db) if db is not None else None


def _configured(config) -> bool:
    return config.sets("SQLConnectInfo")


# -- session -----------------------------------------------------------------------------------------------------------
@dataclass
class SqlState:
    db: Database | None = None
    backend: SqlBackend | None = None
    current: Request | None = None      # the command being handled (what statements' variables describe)
    hung_up: bool = False               # a database error ends the session: the reply is withheld
    logfile: ModuleLog | None = None


def _state(session: "Session") -> SqlState:
    return session.state.get(SqlState)


def _options(session: "Session") -> frozenset[str]:
    return frozenset(o for p in session.server.section.all("SQLOptions") for o in p.value)


def db_error(session: "Session", error: SqlError, ignore: bool = False) -> None:
    """ProFTPD's check_response: the error in the SystemLog (and SQLLogFile), then the session ends without a reply
    unless IGNORE_ERRORS or `SQLOptions NoDisconnectOnError`."""
    st = _state(session)
    version = st.db.version if st.db is not None else ""
    log.error("%s: unrecoverable backend error: (%s) %s", VERSION, version, error)
    log.error("%s: check the SQLLogFile for more details", VERSION)
    if st.logfile is not None:
        st.logfile.write(f"error: '{version}'")
        st.logfile.write(f"message: '{error}'")
    session.events.emit("mod_sql.db.error", session=session, message=str(error))
    if ignore or "NoDisconnectOnError" in _options(session):
        return
    st.hung_up = True
    session.end("Database error")


def session_init(session: "Session") -> None:
    server = session.server
    st = _state(session)
    st.db = database(server)
    if st.db is None:
        return
    path = server.get("SQLLogFile")
    if path is not None:
        st.logfile = ModuleLog(VERSION)
        with privs.default_privs().root():
            st.logfile.open(path)
        st.db.journal = st.logfile.write
    _bind(session)


def _bind(session: "Session", **_: Any) -> None:
    """The server's mod_sql backend (in the session's auth chain) reads this session's facts and reports its
    errors here; again after HOST chose another server (core.session-reinit)."""
    st = _state(session)
    for b, _ in session.auth.entries if session.auth is not None else ():
        if isinstance(b, SqlBackend):
            st.backend = b
            b.facts = lambda: _facts(session)
            b.on_error = lambda e: db_error(session, e)


def _facts(session: "Session"):
    st = _state(session)
    return record(session, st.current or Request("", ""))


def _open_before_chroot(session: "Session", **_: Any) -> None:
    """core.chroot: the database is opened now, while its path is reachable, and kept open after the chroot."""
    st = _state(session)
    if st.db is None or not _engine_of(session):
        return
    try:
        st.db.open()
    except SqlError as e:
        db_error(session, e)


def _engine_of(session: "Session") -> int:
    return session.context().get("SQLEngine") if session.authenticated else session.server.get("SQLEngine")


def _remember(session: "Session", req: Request) -> None:
    if not req.during_transfer:
        _state(session).current = req


def run_named(session: "Session", name: str, kinds: tuple[str, ...], req: Request,
              ignore: bool = False, args: Sequence[str] = ()) -> list[tuple] | None:
    """Run a named query of one of `kinds` for `req` (`%{0}`, `%{1}`... being `args`); the rows, or None (not
    found, other kind, error)."""
    st = _state(session)
    query = queries(session.server).get(name)
    if query is None:
        log.debug("%s: named query '%s' cannot be found", VERSION, name)
        return None
    if query.kind not in kinds:
        log.debug("%s: named query '%s' is not of type %s", VERSION, name, "/".join(kinds))
        return None
    try:
        sql, params = query.statement(resolver(record(session, req), args))
        return st.db.query(sql, params)
    except SqlError as e:
        db_error(session, e, ignore)
        return None


def lookup(session: "Session", name: str, args: Sequence[str]) -> list | None:
    """mod_sql's `sql_lookup` hook, for other modules (mod_quotatab_sql, mod_wrap2_sql): a SELECT or FREEFORM named
    query with `%{0}`... as `args`; the values of all its rows, one after another, or None (no such query, mod_sql
    off, a database error: handled as mod_sql handles its own)."""
    rows = _hooked(session, name, ("SELECT", "FREEFORM"), args)
    return None if rows is None else [value for row in rows for value in row]


def change(session: "Session", name: str, args: Sequence[str]) -> bool:
    """mod_sql's `sql_change` hook: an INSERT, UPDATE or FREEFORM named query with `%{0}`... as `args`; whether it
    ran."""
    return _hooked(session, name, ("INSERT", "UPDATE", "FREEFORM"), args) is not None


def _hooked(session: "Session", name: str, kinds: tuple[str, ...], args: Sequence[str]) -> list[tuple] | None:
    st = _state(session)
    if st.db is None or st.hung_up or not _engine_of(session):
        return None
    return run_named(session, name, kinds, st.current or Request("", ""), args=args)


def _log_rules(session: "Session", name: str) -> list[LogRule]:
    """SQLLog lines for a command: those naming it first, then the `*` ones (ProFTPD's order)."""
    rules = [p.value for p in session.server.section.all("SQLLog")]
    return [r for r in rules if name in r.commands] + [r for r in rules if ALL_COMMANDS in r.commands]


def _log_cmd(session: "Session", req: Request) -> None:
    if session.closing and _state(session).hung_up or not _engine_of(session) & ENGINE_LOG or req.name == "EXIT":
        return
    for rule in _log_rules(session, req.name):
        run_named(session, rule.query, ("INSERT", "UPDATE", "FREEFORM"), req, rule.ignore_errors)


def _log_cmd_err(session: "Session", req: Request) -> None:
    if session.closing and _state(session).hung_up or not _engine_of(session) & ENGINE_LOG:
        return
    rules = [p.value for p in session.server.section.all("SQLLog")]
    for rule in [r for r in rules if "ERR_" + req.name in r.commands] + [r for r in rules if "ERR_*" in r.commands]:
        run_named(session, rule.query, ("INSERT", "UPDATE", "FREEFORM"), req, rule.ignore_errors)


def _exit(session: "Session", **_: Any) -> None:
    """core.exit: `SQLLog EXIT` statements (errors ignored: the session ends anyway)."""
    st = _state(session)
    if st.db is None or not _engine_of(session) or st.hung_up:
        return
    for rule in [r for r in (p.value for p in session.server.section.all("SQLLog")) if "EXIT" in r.commands]:
        run_named(session, rule.query, ("INSERT", "UPDATE", "FREEFORM"), Request("EXIT", ""), True)
    if st.logfile is not None:
        st.logfile.close()


def _on_event(name: str, data: dict) -> None:
    """Any session event: the SQLLogOnEvent statements of that event (the command they see is `EVENT`)."""
    session = data.get("session")
    if session is None or _state(session).db is None or _state(session).hung_up:
        return
    rules = [rule for event, rule in (p.value for p in session.server.section.all("SQLLogOnEvent")) if event == name]
    if rules and _engine_of(session) & ENGINE_LOG:
        for rule in rules:
            run_named(session, rule.query, ("INSERT", "UPDATE", "FREEFORM"), Request("EVENT", ""), rule.ignore_errors)


def _show_text(session: "Session", rule: ShowRule, req: Request) -> str | None:
    """An SQLShowInfo line: values as mod_sql resolves them (quotes doubled, as its escaping leaves them); None
    when a `%{query}` gives no row, NULL or `null`, or fails."""
    rec = record(session, req)
    parts = []
    for tok in rule.tokens:
        if isinstance(tok, str):
            parts.append(tok)
        elif tok[0] == "custom":
            rows = run_named(session, tok[1], ("SELECT", "FREEFORM"), req)
            if not rows or not rows[0] or rows[0][0] is None or rows[0][0].lower() == "null":
                return None
            parts.append(escape(rows[0][0]))
        else:
            parts.append(escape(sql_value(tok, rec)))
    return "".join(parts)


def _show(session: "Session", req: Request, prefix: str) -> None:
    st = _state(session)
    if st.hung_up:
        req.reply = None
        return
    if req.reply is None or not _engine_of(session) & ENGINE_LOG:
        return
    rules = [p.value for p in session.server.section.all("SQLShowInfo")]
    texts = []
    for rule in [r for r in rules if prefix + req.name in r.commands] + [r for r in rules if prefix + "*" in
                                                                             r.commands]:
        text = _show_text(session, rule, req)
        if st.hung_up:
            req.reply = None
            return
        if text:
            texts.append(text)
    if texts and req.name == "PASS" and not prefix:
        for text in reversed(texts):            # ahead of mod_auth's 230 text and DisplayLogin's lines
            req.reply.lead(text)
        return
    for text in texts:
        req.reply.add_line(text)


def _show_hook(session: "Session", req: Request) -> None:
    _show(session, req, "")


def _show_err_hook(session: "Session", req: Request) -> None:
    _show(session, req, "ERR_")


def _ratio_stats_hook(session: "Session", req: Request) -> None:
    """POST_CMD RETR/STOR with SQLRatioStats: the user's row counts one more file and the bytes moved."""
    columns = session.server.get("SQLRatioStats")
    st = _state(session)
    if columns is None or st.db is None or not _engine_of(session):
        return
    xfer = req.notes.get("xfer") or {}
    size = int(xfer.get("bytes") or 0)
    fstor, fretr, bstor, bretr = columns
    files_in, files_out = (1, 0) if req.name == "STOR" else (0, 1)
    bytes_in, bytes_out = (size, 0) if req.name == "STOR" else (0, size)
    info = settings(session.server).user_info
    sql = (f"UPDATE {info.table} SET {fstor} = {fstor} + ?, {fretr} = {fretr} + ?, {bstor} = {bstor} + ?, "
           f"{bretr} = {bretr} + ? WHERE ({info.name} = ?)")
    params = [files_in, files_out, bytes_in, bytes_out, session.user_arg or session.user or ""]
    where = settings(session.server).user_where
    try:
        if where:
            rec = record(session, req)
            clause, more = bind(where, lambda tok: sql_value(tok, rec))
            sql += f" AND (({clause}))"
            params += more
        st.db.query(sql, params)
    except SqlError as e:
        db_error(session, e)


def problems(config) -> list[tuple[str, bool]]:
    """`proftpy -t`: a database that cannot be opened (a warning: ProFTPD starts, its logins fail)."""
    out = []
    for server in config.servers:
        db = database(server)
        problem = db.check() if db is not None else None
        if problem and (problem, False) not in out:
            out.append((problem, False))
    return out


MODULE = Module(MOD_SQL, directives=directives, auth_backend=backend, session_init=session_init,
                session_active=_configured, check=problems, validate=validate,
                hooks=(Hook(PRE_CMD, "*", _remember, early=True, active=_configured),
                       Hook(POST_CMD, "*", _show_hook, active=_configured),
                       Hook(POST_CMD_ERR, "*", _show_err_hook, active=_configured),
                       Hook(POST_CMD, "RETR", _ratio_stats_hook, active=lambda c: c.sets("SQLRatioStats")),
                       Hook(POST_CMD, "STOR", _ratio_stats_hook, active=lambda c: c.sets("SQLRatioStats")),
                       Hook(LOG_CMD, "*", _log_cmd, active=_configured),
                       Hook(LOG_CMD_ERR, "*", _log_cmd_err, active=_configured)),
                listeners=(Listener("core.chroot", _open_before_chroot, _configured),
                           Listener("core.session-reinit", _bind, _configured),
                           Listener("core.exit", _exit, _configured),
                           Listener(ANY, _on_event, lambda c: c.sets("SQLLogOnEvent"))))
