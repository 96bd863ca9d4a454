"""mod_quotatab_ldap: `QuotaLimitTable ldap:`, the user's limit from the ftpQuota attribute of the user's LDAP entry
(or of the profile entry its ftpQuotaProfileDN names, or LDAPDefaultQuota), as ProFTPD 1.3.8's
contrib/mod_quotatab_ldap.c reads what mod_ldap's `ldap_quota_lookup` hook returns. A limit source only: the tally
stays in a `file:` or `sql:` table.

The value's layout is ProFTPD's: `per-session,limit-type,bytes-in,bytes-out,bytes-xfer,files-in,files-out,files-xfer`
(`false,hard,10485760,0,0,0,0,0`); any other count of fields is no limit ("LDAP search returned wrong number of
elements"). Only user limits: a group, class or `all` lookup is logged as an error and finds nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .. import quotatab as qt
from ..module import Module
from . import ldap
from .quotatab_sql import atof, atol

if TYPE_CHECKING:
    from ..session import Session


def _parse(info: str, kind: str) -> str:
    if kind != "limit":
        raise ValueError("unsupported table source type: 'ldap' (mod_quotatab_ldap's ldap: is a QuotaLimitTable "
                         "source only: keep the tally in a file: or sql: table)")
    return info


def _open(session: "Session", info: str, kind: str, lock_fd: int | None,
          log: Callable[[str], None]) -> "LdapTable":
    return LdapTable(session, log)


class LdapTable:
    """The limit table: one record, the session user's, looked up through the session's mod_ldap backend."""

    def __init__(self, session: "Session", log: Callable[[str], None]) -> None:
        self.session, self.log = session, log

    def find(self, name: str | None, quota_type: int) -> tuple[tuple[str, int], qt.Limit] | None:
        if quota_type != qt.USER:
            self.log("error: mod_quotatab_ldap only supports user quotas")
            return None
        backend = ldap.session_backend(self.session)
        values = backend.quota(name or "") if backend is not None else None
        if values is None:
            self.log("error performing LDAP search")
            return None
        if len(values) != 9:
            self.log("LDAP search returned wrong number of elements")
            return None
        limit = limit_of(values)
        return (limit.name, qt.USER), limit

    def close(self) -> None:
        pass


def limit_of(values: list[str]) -> qt.Limit:
    """ProFTPD's ldaptab_lookup: name, per-session (`true`; anything else is off), limit type (`hard`; anything
    else counts as soft), bytes in/out/xfer (atof), files in/out/xfer (atoi)."""
    name, per_session, limit_type, *numbers = values
    per = per_session.lower() == "true"
    kind = qt.HARD if limit_type.lower() == "hard" else qt.SOFT
    return qt.Limit(name, qt.USER, per, kind, *(atof(v) for v in numbers[:3]), *(atol(v) for v in numbers[3:]))


SOURCE = qt.Source("ldap", _parse, _open)
MODULE = Module("mod_quotatab_ldap.c")
