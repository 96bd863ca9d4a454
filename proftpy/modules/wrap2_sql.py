"""mod_wrap2_sql: mod_wrap2's `sql:` tables, over mod_sql's named queries (SQLite).

    WrapUserTables user1,user2 sql:/allowed-clients sql:/denied-clients
    WrapTables sql:/allowed-clients[/options-query] sql:/denied-clients

A table is one hosts_access line for the service (WrapServiceName): its clients are what the named query (a
SELECT, run by mod_sql: modules/sql.py `lookup`) returns, every value of every row, a value holding commas or
blanks split into several patterns (`192.168.0.0/255.255.0.0`, `.example.com`, `ALL`, `EXCEPT`...). The query gets
`%{0}`: the user logging in for WrapUserTables, the user's primary group for WrapGroupTables, empty for WrapTables
(ProFTPD 1.3.8's names). A query that returns nothing makes an empty table. The options query ProFTPD accepts after
a second `/` is checked to exist and not run: Debian's mod_wrap2 is built without table options.

A name no SQLNamedQuery defines leaves that table out (logged in WrapLog, and the SystemLog warns, as ProFTPD's);
a database error is mod_sql's (the session ends unless `SQLOptions NoDisconnectOnError`). SQL tables are read by
the session before PASS, never by the master at accept.
"""

from __future__ import annotations

import logging
import re

from ..access import hostsaccess as ha
from ..module import Module
from . import sql
from .wrap import Opening, TableSource

NAME = "mod_wrap2_sql.c"
VERSION = "mod_wrap2_sql/1.0"
SEPARATORS = re.compile(r"[,\s]+")
log = logging.getLogger("proftpy")


def _names(info: str) -> tuple[str, ...]:
    """`/clients-query[/options-query]` -> the names."""
    _, slash, rest = info.partition("/")
    names = tuple(rest.split("/", 1))
    if not slash or not all(names):
        raise ValueError(f"badly formatted source info '{info}': expected sql:/clients-query[/options-query]")
    return names


def _check(info: str) -> None:
    _names(info)


def clients(values: list) -> tuple[str, ...]:
    """The client patterns in a query's values: each value, split at commas and blanks; NULLs left out."""
    return tuple(word for value in values if value is not None for word in SEPARATORS.split(value) if word)


def _open(info: str, opening: Opening) -> ha.Table | None:
    session = opening.session
    if session is None:
        return None
    names = _names(info)
    defined = sql.queries(session.server)
    for i, name in enumerate(names):
        if name not in defined:
            opening.log(f"error: unable to resolve SQLNamedQuery name '{name}'")
            if i == 0:
                log.warning("%s: no such SQLNamedQuery '%s' found, allowing connection", VERSION, name)
            return None
    values = sql.lookup(session, names[0], (opening.client,))
    if values is None:
        opening.log(f"error processing SQLNamedQuery '{names[0]}': check the mod_sql.c SQLLogFile for more details")
    elif not values:
        opening.log(f"SQLNamedQuery '{names[0]}' returned no data; see the mod_sql.c SQLLogFile for more details")
    return ha.Table(f"SQL({info})", [ha.Rule((opening.service,), clients(values), None, 1)] if values else [], [])


SOURCE = TableSource("sql", _check, _open, at_accept=False)
MODULE = Module(NAME)
