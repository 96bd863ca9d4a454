"""mod_quotatab_ldap: `QuotaLimitTable ldap:`, the user's limit from the ftpQuota attribute of the user's LDAP entry
(or of the profile entry its ftpQuotaProfileDN names, or LDAPDefaultQuota), as ProFTPD 1.3.8's
contrib/mod_quotatab_ldap.c reads what mod_ldap's `ldap_quota_lookup` hook returns. A limit source only: the tally
stays in a `file:` or `sql:` table.

The value's layout is ProFTPD's: `per-session,limit-type,bytes-in,bytes-out,bytes-xfer,files-in,files-out,files-xfer`
(`false,hard,10485760,0,0,0,0,0`); any other count of fields is no limit ("LDAP search returned wrong number of
elements"). Only user limits: a group, class or `all` lookup is logged as an error and finds nothing.
"""

from __future__ import annotations

from .. import quotatab as qt
from ..module import Module
from . import ldap
from .quotatab_user import UserLimitTable, source, user_limit


class LdapTable(UserLimitTable):
    """The limit table: one record, the session user's, looked up through the session's mod_ldap backend."""

    module = "mod_quotatab_ldap"

    def values(self, name: str) -> list[str] | None:
        backend = ldap.session_backend(self.session)
        values = backend.quota(name) if backend is not None else None
        if values is None:
            self.log("error performing LDAP search")
            return None
        if len(values) != 9:
            self.log("LDAP search returned wrong number of elements")
            return None
        return values

    def limit(self, values: list[str]) -> qt.Limit:
        return limit_of(values)


def limit_of(values: list[str]) -> qt.Limit:
    """ProFTPD's ldaptab_lookup: name, per-session (`true`; anything else is off), limit type (`hard`; anything
    else counts as soft), bytes in/out/xfer (atof), files in/out/xfer (atoi)."""
    per_session, limit_type = values[1:3]
    return user_limit(values, per_session.lower() == "true", qt.HARD if limit_type.lower() == "hard" else qt.SOFT)


SOURCE = source("ldap", LdapTable, "unsupported table source type: 'ldap' (mod_quotatab_ldap's ldap: is a "
                "QuotaLimitTable source only: keep the tally in a file: or sql: table)")
MODULE = Module("mod_quotatab_ldap.c")
