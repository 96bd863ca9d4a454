"""mod_sftp_sql: mod_sftp's `sql:` key store, over mod_sql's named queries (SQLite).

    SQLNamedQuery user-keys SELECT "key FROM sftpuserkeys WHERE name = '%{0}'"
    SQLNamedQuery host-keys SELECT "key FROM sftphostkeys WHERE host = '%{0}'"
    SFTPAuthorizedUserKeys sql:/user-keys
    SFTPAuthorizedHostKeys sql:/host-keys

The SELECT (run by mod_sql: modules/sql.py `lookup`) gets `%{0}`: the user name the client sent (blanks around it
stripped), or for a host key the host name the client sent (`%U` is the user in both). Every value of every row is
read as ProFTPD 1.3.8 reads it: the RFC 4716 keys in it (several per value may follow one another), else the value
as the bare base64 of a key on one line; proftpy also reads OpenSSH's one-line `type base64 [comment]` form (ProFTPD
does not).
A NULL value ends the reading there (ProFTPD refuses the rest). mod_sql off here (no SQLConnectInfo, SQLEngine off),
a name no SQLNamedQuery defines or a query that fails leave the store out (an SFTPLog line); a database error is
mod_sql's (the session ends unless `SQLOptions NoDisconnectOnError`).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Callable

from ..module import Module
from ..net.ssh import keys as sshkeys
from . import sql
from .sftp_state import Keys, Lookup

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_sftp_sql.c"
VERSION = "mod_sftp_sql/0.4"


def check(info: str, holds: str) -> None:
    """`sql:/name`: the name of a SELECT SQLNamedQuery."""
    if not info.startswith("/") or len(info) < 2 or "/" in info[1:]:
        raise ValueError(f"badly formatted store info '{info}': expected sql:/named-query")


def value_keys(value: str) -> Keys:
    """The keys of one value: its RFC 4716 blocks, else the bare base64 of one key on one line (ProFTPD decodes the
    value as one line: base64 wrapped over lines is no key), else OpenSSH's `type base64 [comment]` lines."""
    if sshkeys.RFC4716_BEGIN in value:
        return sshkeys.rfc4716_keys(value)
    text = value.strip()
    if text and not any(c.isspace() for c in text):
        try:
            return [(base64.b64decode(text, validate=True), None)]
        except (binascii.Error, ValueError):
            return []
    return [key for line in value.splitlines() if len(line.split()) > 1
            for key in sshkeys.stored_keys(" ".join(line.split()[:2]))]


def keys(session: "Session", info: str, lookup: Lookup, log: Callable[[str], None]) -> Keys | None:
    name = info[1:]
    if name not in sql.queries(session.server):
        log(f"unable to resolve SQLNamedQuery '{name}'")
        return None
    values = sql.lookup(session, name, ((lookup.host if lookup.host is not None else lookup.user).strip(),))
    if values is None:
        log(f"error processing SQLNamedQuery '{name}'")
        return None
    if not values:
        log(f"SQLNamedQuery '{name}' returned zero results")
        return None
    log(f"SQLNamedQuery '{name}' returned {len(values)} {'row' if len(values) == 1 else 'rows'}")
    found: Keys = []
    for i, value in enumerate(values, 1):
        if value is None:
            log(f"SQLNamedQuery '{name}' returned NULL data")
            break
        got = value_keys(value)
        if not got:
            log(f"no key found in SQL data (row {i}) from SQLNamedQuery '{name}'")
        found += got
    return found


MODULE = Module(NAME)
