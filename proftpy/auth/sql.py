"""mod_sql: users and groups from an SQL database, and the statements SQLNamedQuery declares, with ProFTPD 1.3.8's
rules (contrib/mod_sql.c).

Three parts, none of which knows a session:

- `Database`: one connection (SQLConnectInfo, read by `parse_connect_info`) made by the SQLBackend's `Driver`:
  SQLite's (auth/sql_sqlite.py) or PostgreSQL's (auth/sql_postgres.py); opened in the session before its chroot,
  kept open. The SQL proftpy writes itself (the lookups below) is plain enough for every engine.
- `bind`: a statement template (LogFormat variables, `%{0}` arguments) turned into SQL with `?` parameters. Where
  ProFTPD pastes an escaped value into the text, proftpy binds it: a quoted literal holding variables becomes one
  parameter, a variable outside quotes another, so nothing a client sends is ever read as SQL.
- `SqlBackend`: an AuthOrder backend (`mod_sql.c`): SQLUserInfo/SQLGroupInfo lookups (table columns or
  `custom:/` named queries), SQLUserWhereClause/SQLGroupWhereClause, SQLMinID, SQLDefaultUID/GID/Homedir,
  SQLNegativeCache, and the SQLAuthTypes password checks: mod_sql's (Crypt, Plaintext, Empty, OpenSSL) and
  mod_sql_passwd's (proftpy/auth/sql_passwd.py), with the salts each login hashes with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from proftpy.auth import MAX_ID, Account, Group
from proftpy.auth import sql_passwd
from proftpy.auth.crypt import crypt_verify
from proftpy.auth.sql_passwd import MOD_SQL_PASSWD, Context, Salts
from proftpy.log import logformat

log = logging.getLogger("proftpy.auth.sql")

MOD_SQL = "mod_sql.c"
VERSION = "mod_sql/4.5"
MIN_ID = 999                    # SQLMinUserUID/SQLMinUserGID by default
DEFAULT_ID = 65533              # SQLDefaultUID/SQLDefaultGID by default
NULL_PASSWORD = "\0"            # a NULL password column: no SQLAuthType accepts it (no client password has a NUL)
QUERY_KINDS = ("SELECT", "INSERT", "UPDATE", "FREEFORM")
# what a variable without a value gives in a statement, where mod_sql's differs from mod_log's
SQL_DEFAULTS = {"b": "0.0", "T": "0.0"}
SQL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class SqlError(Exception):
    """The database refused (missing, locked, not a database, bad statement): ProFTPD's backend error."""


# -- statements ----------------------------------------------------------------------------------------------------
def compile_statement(text: str) -> list[logformat.Token]:
    """An SQLNamedQuery/SQLShowInfo/where-clause text as LogFormat tokens; `%{name}` stays a ("custom", name)."""
    return logformat.compile_format(text, custom=True)


NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?")


def _param(text: str) -> str | int | float:
    """A value outside quotes: a plain number (`12`, `-3`, `1.500000`) is bound as one, as it reads in the SQL text
    ProFTPD writes."""
    number = NUMBER.fullmatch(text)
    if number is None:
        return text
    return float(text) if number.group(1) else int(text)


def bind(tokens: Sequence[logformat.Token], resolve: Callable[[tuple[str, str]], str]) -> tuple[str, list]:
    """(SQL with `?` placeholders, parameters) for a statement template; `resolve(token)` gives a variable's text.

    `'...%u...'` (a quoted SQL literal with variables in it) becomes one `?` bound to the literal's text with the
    values put in; a variable outside quotes becomes a `?` of its own; literals without variables stay as written.
    """
    items: list[Any] = []
    for tok in tokens:
        if isinstance(tok, str):
            items.extend(tok)
        else:
            items.append(tok)
    sql: list[str] = []
    params: list = []
    i, n = 0, len(items)
    while i < n:
        item = items[i]
        if isinstance(item, tuple):
            sql.append("?")
            params.append(_param(resolve(item)))
            i += 1
            continue
        if item != "'":
            sql.append(item)
            i += 1
            continue
        j, text, raw, variables = i + 1, [], ["'"], False
        while j < n:
            x = items[j]
            if isinstance(x, tuple):
                variables = True
                text.append(resolve(x))
            elif x == "'" and j + 1 < n and items[j + 1] == "'":
                text.append("'")
                raw.append("''")
                j += 1
            elif x == "'":
                break
            else:
                text.append(x)
                raw.append(x)
            j += 1
        if variables:
            sql.append("?")
            params.append("".join(text))
        else:
            sql.append("".join(raw) + ("'" if j < n else ""))
        i = j + 1
    return "".join(sql), params


def sql_value(tok: tuple[str, str], rec: logformat.Record) -> str:
    """A LogFormat variable as mod_sql resolves it (its own defaults, and `%t` as `2024-01-02 03:04:05 +0000`)."""
    name, arg = tok
    if name == "time" and not arg:
        arg = SQL_TIME_FORMAT
    if name == "t":
        name, arg = "time", SQL_TIME_FORMAT
    return logformat.value(name, arg, rec, SQL_DEFAULTS)


def resolver(rec: logformat.Record, args: Sequence[str] = ()) -> Callable[[tuple[str, str]], str]:
    """A statement's variables: LogFormat's from `rec`, `%{n}` the n-th of `args` (SqlError past the end)."""
    def resolve(tok: tuple[str, str]) -> str:
        if tok[0] != "custom":
            return sql_value(tok, rec)
        if tok[1].isdigit() and int(tok[1]) < len(args):
            return args[int(tok[1])]
        raise SqlError("malformed reference %{" + tok[1] + "} in query")
    return resolve


def escape(text: str) -> str:
    """mod_sql_sqlite's escaping (`'` doubled), left out for text already quoted (mod_sql's heuristic): what
    SQLShowInfo's lines show of each value."""
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'" and "'" not in text[1:-1]:
        return text
    return text.replace("'", "''")


@dataclass(frozen=True)
class NamedQuery:
    """One SQLNamedQuery: `kind` SELECT/INSERT/UPDATE/FREEFORM, its template, the table of INSERT/UPDATE."""

    name: str
    kind: str
    tokens: tuple
    table: str | None = None

    def statement(self, resolve: Callable[[tuple[str, str]], str]) -> tuple[str, list]:
        body, params = bind(self.tokens, resolve)
        if self.kind == "SELECT":
            return "SELECT " + body, params
        if self.kind == "INSERT":
            return f"INSERT INTO {self.table} VALUES ({body})", params
        if self.kind == "UPDATE":
            return f"UPDATE {self.table} SET {body}", params
        return body, params


def parse_named_query(args: list[str]) -> NamedQuery:
    """`SQLNamedQuery name SELECT|FREEFORM "query" [conn]` / `name INSERT|UPDATE "query" table [conn]`."""
    if len(args) < 3:
        raise ValueError("requires at least 3 parameters")
    name, kind, text = args[0], args[1].upper(), args[2]
    if kind not in QUERY_KINDS:
        raise ValueError("type must be SELECT, INSERT, UPDATE, or FREEFORM")
    table = None
    rest = args[3:]
    if kind in ("INSERT", "UPDATE"):
        if not rest:
            raise ValueError(f"expected '{kind}' query-string table-name")
        table, rest = rest[0], rest[1:]
    if len(rest) > 1:
        raise ValueError("too many parameters")
    if rest and rest[0] != "default":
        raise ValueError(f"named connection '{rest[0]}' is not implemented (SQLNamedConnectInfo): proftpy has one "
                         "connection, SQLConnectInfo's")
    return NamedQuery(name, kind, tuple(compile_statement(text)), table)


# -- the connection ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectInfo:
    """SQLConnectInfo, read lexically: `/path` (a file), `db`, `db@host`, `db@host:port`, then user, password,
    policy, and 1.3.8's `ssl-cert:` `ssl-key:` `ssl-ca:` `ssl-ciphers:` words. Which forms a backend can use is
    the backend's question (`Driver.unusable`)."""

    database: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    policy: str = ""
    ssl: tuple[tuple[str, str], ...] = ()       # (option, value): ("cert", "/etc/..."), ("ca", ...)

    @property
    def path(self) -> str:
        return self.database

    def ssl_option(self, name: str) -> str | None:
        return next((v for k, v in self.ssl if k == name), None)


SSL_OPTIONS = ("cert", "key", "ca", "ciphers")


def parse_connect_info(args: list[str]) -> ConnectInfo:
    if not 1 <= len(args) <= 8:
        raise ValueError("requires 1 to 8 parameters; check the mod_sql docs")
    ssl: list[tuple[str, str]] = []
    positional: list[str] = []
    for word in args[1:]:
        key, colon, value = word.partition(":")
        if colon and key.lower().startswith("ssl-") and key.lower()[4:] in SSL_OPTIONS:
            if not value:
                raise ValueError(f"'{word}' has no value")
            ssl.append((key.lower()[4:], value))
        elif colon and key.lower().startswith("ssl-"):
            raise ValueError(f"unknown SQLConnectInfo option '{key}:' (ssl-cert:, ssl-key:, ssl-ca:, ssl-ciphers:)")
        else:
            positional.append(word)
    if len(positional) > 3:
        raise ValueError("too many parameters: info [user [password [policy]]] [ssl-...:value]")
    info = args[0]
    database, host, port = info, None, None
    if "@" in info and not info.startswith("/"):
        database, _, host = info.partition("@")
        if host.count(":") == 1:
            host, _, digits = host.partition(":")
            if not digits.isdigit() or not 0 < int(digits) < 65536:
                raise ValueError(f"'{info}': the port must be a number from 1 to 65535")
            port = int(digits)
        if not database or not host:
            raise ValueError(f"'{info}' is not database@host[:port]")
    positional += [None] * (3 - len(positional))         # type: ignore[list-item]
    return ConnectInfo(database, host, port, positional[0], positional[1], positional[2] or "", tuple(ssl))


class Database:
    """One connection to SQLConnectInfo's database, as a backend makes it (SQLite's file, a PostgreSQL server...).
    Opened in the session before its chroot, kept open; `query` runs one statement with `?` parameters bound and
    gives its rows as text (NULL as None), or raises SqlError. `version` names the backend in log lines."""

    version = ""
    warm_check = True           # the master's start checks it (a network server is checked by `proftpy -t` only:
                                # the master must not wait on one)

    def __init__(self) -> None:
        self.journal: Callable[[str], None] | None = None     # each statement, for SQLLogFile

    @property
    def opened(self) -> bool:
        raise NotImplementedError

    def open(self) -> Any:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence = ()) -> list[tuple[str | None, ...]]:
        raise NotImplementedError

    def check(self) -> str | None:
        """Why the database cannot be used, else None (`proftpy -t`, the auth chain's warm-up)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _journal(self, sql: str, params: Sequence) -> None:
        log.debug("%s: query \"%s\" %s", self.version, sql, list(params) if params else "")
        if self.journal is not None:
            self.journal(f"query \"{sql}\"")


@dataclass(frozen=True)
class Driver:
    """One SQLBackend: its name in the directive, the module that stands for it (`<IfModule>`, LoadModule), how
    it makes a Database of a ConnectInfo, and why it cannot use one (the SQLConnectInfo error), else None."""

    name: str
    module: str
    version: str
    make: Callable[[ConnectInfo, frozenset[str]], Database]    # (SQLConnectInfo, SQLOptions) -> a Database
    unusable: Callable[[ConnectInfo], str | None]


# -- passwords -----------------------------------------------------------------------------------------------------
def _bytes(text: str | bytes) -> bytes:
    return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)


def check_crypt(password: bytes, stored: str, ctx: Context) -> bool:
    return bool(stored) and crypt_verify(password, stored)


def check_plaintext(password: bytes, stored: str, ctx: Context) -> bool:
    return bool(stored) and hmac.compare_digest(password, _bytes(stored))


def check_empty(password: bytes, stored: str, ctx: Context) -> bool:
    return stored == ""


def check_openssl(password: bytes, stored: str, ctx: Context) -> bool:
    """`{digest}base64(digest(password))`, the digest named as OpenSSL names it (md5, sha1, sha256...)."""
    if not stored.startswith("{") or "}" not in stored:
        return False
    name, _, value = stored[1:].partition("}")
    try:
        digest = hashlib.new(name.lower(), password).digest()
    except (ValueError, TypeError):
        log.debug("%s: no such digest '%s' supported", VERSION, name)
        return False
    return hmac.compare_digest(base64.b64encode(digest), _bytes(value))


@dataclass(frozen=True)
class AuthType:
    """One SQLAuthType: its name (any case in SQLAuthTypes), the module that registers it, and its check
    `check(password, stored column, context) -> bool`."""

    name: str
    check: Callable[[bytes, str, Context], bool]
    module: str = MOD_SQL
    available: Callable[[], bool] = lambda: True        # argon2: only with libsodium


AUTH_TYPES = {t.name.lower(): t for t in (
    AuthType("Crypt", check_crypt),
    AuthType("Plaintext", check_plaintext),
    AuthType("Empty", check_empty),
    AuthType("OpenSSL", check_openssl),
    AuthType("bcrypt", sql_passwd.check_bcrypt, MOD_SQL_PASSWD),
    AuthType("md5", sql_passwd.digest_check("md5"), MOD_SQL_PASSWD),
    AuthType("sha1", sql_passwd.digest_check("sha1"), MOD_SQL_PASSWD),
    AuthType("sha256", sql_passwd.digest_check("sha256"), MOD_SQL_PASSWD),
    AuthType("sha512", sql_passwd.digest_check("sha512"), MOD_SQL_PASSWD),
    AuthType("pbkdf2", sql_passwd.check_pbkdf2, MOD_SQL_PASSWD),
    AuthType("scrypt", sql_passwd.check_scrypt, MOD_SQL_PASSWD),
    AuthType("argon2", sql_passwd.check_argon2, MOD_SQL_PASSWD, lambda: sql_passwd.sodium() is not None),
)}


def parse_auth_types(words: list[str]) -> tuple[str, ...]:
    """`SQLAuthTypes Crypt Plaintext md5 ...` -> the canonical names, in order."""
    if not words:
        raise ValueError("expected at least one SQLAuthType")
    out = []
    for word in words:
        auth_type = AUTH_TYPES.get(word.lower())
        if auth_type is None:
            raise ValueError(f"unknown SQLAuthType '{word}'")
        if not auth_type.available():
            raise ValueError(f"unknown SQLAuthType '{word}': proftpy computes {auth_type.name} with libsodium "
                             "(as ProFTPD's mod_sql_passwd does), and libsodium was not found")
        out.append(auth_type.name)
    return tuple(out)


def password_ok(types: Sequence[str], password: str | bytes, stored: str, ctx: Context | None = None) -> bool:
    """Whether one of the SQLAuthTypes, tried in order, accepts `password` for the stored column."""
    if stored == NULL_PASSWORD:
        return False
    ctx = ctx or Context()
    return any(AUTH_TYPES[t.lower()].check(_bytes(password), stored, ctx) for t in types)


# -- users and groups ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserInfo:
    """SQLUserInfo: the table and its columns (None: a NULL column, not read), or `custom:/` named queries."""

    table: str = "users"
    name: str = "userid"
    passwd: str = "passwd"
    uid: str | None = "uid"
    gid: str | None = "gid"
    home: str | None = "homedir"
    shell: str | None = "shell"
    by_name: str | None = None          # custom:/name[/by-id[/all-names[/all-users]]]
    by_id: str | None = None

    def columns(self) -> str:
        return ", ".join(c for c in (self.name, self.passwd, self.uid, self.gid, self.home, self.shell) if c)


@dataclass(frozen=True)
class GroupInfo:
    """SQLGroupInfo: the table and its columns, or `custom:/by-name/by-id/members[/...]` named queries."""

    table: str = "groups"
    name: str = "groupname"
    gid: str = "gid"
    members: str = "members"
    by_name: str | None = None
    by_id: str | None = None
    members_query: str | None = None


def _custom(value: str, least: int) -> list[str]:
    if not value.startswith("custom:/"):
        raise ValueError("badly formatted parameter")
    names = value[len("custom:/"):].split("/")
    if len(names) < least or not all(names):
        raise ValueError("badly formatted parameter")
    return names


def parse_user_info(args: list[str]) -> UserInfo:
    """`SQLUserInfo table name passwd uid gid home shell` (uid...shell may be NULL) | `custom:/query[/...]`."""
    if len(args) == 1:
        names = _custom(args[0], 1)
        return UserInfo(by_name=names[0], by_id=names[1] if len(names) > 1 else None)
    if len(args) != 7:
        raise ValueError("missing parameters")

    def column(word: str) -> str | None:
        return None if word.lower() == "null" else word
    return UserInfo(args[0], args[1], args[2], *(column(w) for w in args[3:]))


def parse_group_info(args: list[str]) -> GroupInfo:
    """`SQLGroupInfo table name gid members` | `custom:/by-name/by-id/members[/...]`."""
    if len(args) == 1:
        names = _custom(args[0], 3)
        return GroupInfo(by_name=names[0], by_id=names[1], members_query=names[2])
    if len(args) != 4:
        raise ValueError("missing parameters")
    return GroupInfo(*args)


@dataclass(frozen=True)
class Settings:
    """What the backend needs of a server's mod_sql directives."""

    users: bool = True
    groups: bool = True
    user_info: UserInfo = UserInfo()
    group_info: GroupInfo = GroupInfo()
    user_where: tuple | None = None
    group_where: tuple | None = None
    auth_types: tuple[str, ...] = ()
    min_uid: int = MIN_ID
    min_gid: int = MIN_ID
    default_uid: int = DEFAULT_ID
    default_gid: int = DEFAULT_ID
    default_home: str | None = None
    negative_cache: bool = False
    normalized_groups: bool = False
    queries: dict = field(default_factory=dict)     # name -> NamedQuery
    passwd: sql_passwd.PasswdConfig = sql_passwd.PasswdConfig()     # mod_sql_passwd's SQLPassword* directives


_LEADING_INT = re.compile(r"\s*[+-]?[0-9]+")


def atol(value: object) -> int:
    """C's atol over a column's text, as ProFTPD's modules read numbers from mod_sql: the integer at its start
    (blanks and a sign allowed), 0 without one or for NULL."""
    number = _LEADING_INT.match(str(value)) if value is not None else None
    return int(number.group()) if number else 0


def _id(text: str | None, default: int) -> int:
    if text is None or not text.strip().isdigit() or int(text) > MAX_ID:
        return default
    return int(text)


_MISS = object()


class SqlBackend:
    """The `mod_sql.c` auth module: it answers for the users and groups its database holds and declines the rest.
    A wrong password declines too (ProFTPD's mod_sql), so a later module may still know the user.

    A session sets `facts` (the LogFormat facts of the moment, for variables in where clauses and custom queries)
    and `on_error` (what a database error does: log it, and end the session unless NoDisconnectOnError)."""

    name = MOD_SQL
    declines_on_failure = True

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.uses_crypt = "Crypt" in settings.auth_types
        self.facts: Callable[[], logformat.Record] = logformat.Record
        self.on_error: Callable[[SqlError], None] = lambda e: log.error(
            "%s: unrecoverable backend error: (%s) %s", VERSION, db.version, e)
        self._users: dict[Any, Account | None] = {}
        self._groups: dict[Any, Group | None] = {}
        self.salts = Salts()            # mod_sql_passwd's; the file salt is set when the session starts

    # rows ----------------------------------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence) -> list[tuple] | None:
        try:
            return self.db.query(sql, params)
        except SqlError as e:
            self.on_error(e)
            return None

    def named(self, name: str, args: Sequence[str] = ()) -> list[tuple] | None:
        """The rows of a SELECT/FREEFORM named query, `%{0}`... being `args`; None after an error."""
        query = self.settings.queries.get(name)
        if query is None:
            log.debug("%s: no '%s' SQLNamedQuery found", VERSION, name)
            return []
        try:
            sql, params = query.statement(self.resolver(args))
        except SqlError as e:
            self.on_error(e)
            return None
        return self._rows(sql, params)

    def resolver(self, args: Sequence[str] = ()) -> Callable[[tuple[str, str]], str]:
        """Variables of a statement: LogFormat's from the session's facts, `%{n}` the n-th argument."""
        return resolver(self.facts(), args)

    def _select(self, table: str, columns: str, where: str, params: list, extra: tuple | None,
                limit: bool) -> list[tuple] | None:
        sql = f"SELECT {columns} FROM {table} WHERE ({where})"
        if extra:
            try:
                clause, more = bind(extra, self.resolver())
            except SqlError as e:
                self.on_error(e)
                return None
            sql += f" AND (({clause}))"
            params = params + more
        return self._rows(sql + (" LIMIT 1" if limit else ""), params)

    # users ---------------------------------------------------------------------------------------------------
    def user_row(self, name: str) -> tuple | None:
        info = self.settings.user_info
        if info.by_name:
            rows = self.named(info.by_name, [name])
        else:
            rows = self._select(info.table, info.columns(), f"{info.name} = ?", [name], self.settings.user_where,
                                True)
        return rows[0] if rows else None

    def _account(self, row: tuple) -> Account:
        s, info = self.settings, self.settings.user_info
        custom = info.by_name is not None
        values = iter(row)
        name, passwd = next(values, None), next(values, None)
        uid = _id(next(values, None), s.default_uid) if custom or info.uid else s.default_uid
        gid = _id(next(values, None), s.default_gid) if custom or info.gid else s.default_gid
        home = next(values, None) if custom or info.home else None
        shell = next(values, None) if custom or info.shell else None
        if home in (None, "", "NULL"):
            home = s.default_home
        if uid < s.min_uid:
            log.debug("%s: user UID %d below SQLMinUserUID %d, using SQLDefaultUID %d", VERSION, uid, s.min_uid,
                      s.default_uid)
            uid = s.default_uid
        if gid < s.min_gid:
            log.debug("%s: user GID %d below SQLMinUserGID %d, using SQLDefaultGID %d", VERSION, gid, s.min_gid,
                      s.default_gid)
            gid = s.default_gid
        return Account(name or "", NULL_PASSWORD if passwd is None else passwd, uid, gid, "", home or "",
                       shell or "", MOD_SQL)

    def _user(self, key: Any, fetch: Callable[[], tuple | None]) -> Account | None:
        found = self._users.get(key, _MISS)
        if found is not _MISS:
            return found            # type: ignore[return-value]
        row = fetch()
        account = self._account(row) if row is not None else None
        if account is not None:
            self._users[("name", account.name)] = self._users[("uid", account.uid)] = account
        elif self.settings.negative_cache:
            self._users[key] = None
        return account

    def getpwnam(self, name: str) -> Account | None:
        if not self.settings.users:
            return None
        return self._user(("name", name), lambda: self.user_row(name))

    def getpwuid(self, uid: int) -> Account | None:
        s, info = self.settings, self.settings.user_info
        if not s.users:
            return None

        def fetch() -> tuple | None:
            if info.by_name:
                if not info.by_id:
                    return None
                rows = self.named(info.by_id, [str(uid)])
            elif info.uid:
                rows = self._select(info.table, info.columns(), f"{info.uid} = ?", [uid], s.user_where, True)
            else:
                return None
            return rows[0] if rows else None
        return self._user(("uid", uid), fetch)

    def check(self, account: Account, password: str | bytes) -> bool:
        if not self.settings.auth_types:
            log.debug("%s: warning: no SQLAuthTypes configured", VERSION)
        if self.settings.passwd.engine:
            self._login_salts()
        return password_ok(self.settings.auth_types, password, account.passwd,
                           Context(self.settings.passwd, self.salts))

    def _values(self, key: str) -> list[str | None] | None:
        """The values (all rows' columns, in order) of the `sql:/query` named query for the USER name; None when
        the query is not declared or fails."""
        if key[len("sql:/"):] not in self.settings.queries:
            log.debug("%s: unable to resolve SQLNamedQuery '%s'", sql_passwd.VERSION, key[len("sql:/"):])
            return None
        rows = self.named(key[len("sql:/"):], [self.facts().orig_user or ""])
        return None if rows is None else [v for row in rows for v in row]

    def _login_salts(self) -> None:
        """mod_sql_passwd's work before PASS: the PBKDF2 parameters and the user salt of this login (a lookup that
        fails leaves the previous ones, and a failed PBKDF2 lookup skips the user salt, as in ProFTPD)."""
        cfg, salts = self.settings.passwd, self.salts
        if isinstance(cfg.pbkdf2, sql_passwd.Pbkdf2):
            salts.pbkdf2 = cfg.pbkdf2
        elif cfg.pbkdf2 is not None:
            values = self._values(cfg.pbkdf2)
            if values is None:
                return
            if len(values) != 3 or None in values:
                log.debug("%s: SQLNamedQuery '%s' returned wrong number of columns (%d)", sql_passwd.VERSION,
                          cfg.pbkdf2[5:], len(values))
            else:
                try:
                    salts.pbkdf2 = sql_passwd.pbkdf2_params(*values)        # type: ignore[arg-type]
                except ValueError as e:
                    log.debug("%s: SQLNamedQuery '%s' returned %s", sql_passwd.VERSION, cfg.pbkdf2[5:], e)
        if cfg.user_salt is None:
            return
        key, where = cfg.user_salt
        if key.lower() == "name":
            salt = _bytes(self.facts().orig_user or "") or None
        elif key.lower().startswith("sql:/"):
            values = self._values(key)
            if values is None or len(values) != 1 or values[0] is None:
                log.debug("%s: SQLNamedQuery '%s' returned wrong number of rows (%d)", sql_passwd.VERSION, key[5:],
                          len(values or ()))
                return
            salt = sql_passwd.decode(_bytes(values[0]), cfg.salt_encoding)
            if salt is None:
                log.debug("%s: error decoding salt from SQLNamedQuery '%s'", sql_passwd.VERSION, key[5:])
                return
        else:
            return                  # `uid`: accepted by the directive, never a salt (as in ProFTPD 1.3.8)
        salts.user, salts.user_where = salt, where

    def sample_hash(self) -> str | None:
        return None                 # the master never reads the database (a connection must not cross a fork)

    def warm(self) -> list[str]:
        problem = self.db.check() if self.db.warm_check else None
        return [problem] if problem else []

    # groups --------------------------------------------------------------------------------------------------
    def _group_rows(self, name: str) -> list[tuple] | None:
        info = self.settings.group_info
        if info.by_name:
            return self.named(info.by_name, [name])
        return self._select(info.table, f"{info.name}, {info.gid}, {info.members}", f"{info.name} = ?", [name],
                            self.settings.group_where, False)

    def getgrnam(self, name: str) -> Group | None:
        if not self.settings.groups:
            return None
        found = self._groups.get(("name", name), _MISS)
        if found is not _MISS:
            return found            # type: ignore[return-value]
        rows = self._group_rows(name)
        if not rows:
            if self.settings.negative_cache:
                self._groups[("name", name)] = None
            return None
        members: list[str] = []
        for row in rows:
            for member in (row[2] or "").split(",") if len(row) > 2 else ():
                if member and member not in members:
                    members.append(member)
        group = Group(rows[0][0] or name, _id(rows[0][1], MAX_ID + 1), tuple(members))
        if group.gid > MAX_ID:
            return None
        self._groups[("name", group.name)] = self._groups[("gid", group.gid)] = group
        return group

    def getgrgid(self, gid: int) -> Group | None:
        s, info = self.settings, self.settings.group_info
        if not s.groups:
            return None
        found = self._groups.get(("gid", gid), _MISS)
        if found is not _MISS:
            return found            # type: ignore[return-value]
        if info.by_id:
            rows = self.named(info.by_id, [str(gid)])
        elif info.by_name:
            return None
        else:
            rows = self._select(info.table, info.name, f"{info.gid} = ?", [gid], s.group_where, True)
        if not rows or rows[0][0] is None:
            return None
        return self.getgrnam(rows[0][0])

    def groups_for(self, name: str, primary_gid: int) -> list[Group]:
        """The user's primary group, then every group whose members column lists the user (a user the database
        does not hold has none from here)."""
        s, info = self.settings, self.settings.group_info
        if not s.groups or self.user_row(name) is None:
            return []
        out: list[Group] = []
        primary = self.getgrgid(primary_gid)
        if primary is not None:
            out.append(primary)
        if info.members_query:
            rows = self.named(info.members_query, [name])
        elif info.by_name:
            rows = []
        else:
            where = f"{info.members} = ?"
            params = [name]
            if not s.normalized_groups:
                where += f" OR {info.members} LIKE ? OR {info.members} LIKE ? OR {info.members} LIKE ?"
                params += [name + ",%", "%," + name, "%," + name + ",%"]
            rows = self._select(info.table, f"{info.name}, {info.gid}, {info.members}", where, params,
                                s.group_where, False)
        for row in rows or ():
            if len(row) < 3 or row[0] is None:
                continue
            listed = [m for m in (row[2] or "").split(",") if m]
            gid = _id(row[1], MAX_ID + 1)
            if name not in listed or gid > MAX_ID:     # LIKE's `_` and `%` match more than the name
                continue
            group = Group(row[0], gid, tuple(listed))
            if all(g.name != group.name for g in out):
                out.append(group)
        return out
