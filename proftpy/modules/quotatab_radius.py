"""mod_quotatab_radius: `QuotaLimitTable radius:`, the user's limit from mod_radius's RadiusQuotaInfo (its values,
or the Access-Accept's Vendor-Specific attributes that its `$(attribute-id:default)` forms name), as ProFTPD 1.3.8's
contrib/mod_quotatab_radius.c reads them. A limit source only: the tally stays in a `file:` or `sql:` table.

Only user limits: a group, class or `all` lookup is logged as an error and finds nothing. A login RADIUS did not
accept with RadiusQuotaInfo (an Access-Reject, no RadiusQuotaInfo) has no limit here ("error retrieving RADIUS quota
attributes"); a login no server answered has RadiusQuotaInfo's own values, as ProFTPD's.
"""

from __future__ import annotations

from typing import Callable

from .. import quotatab as qt
from ..module import Module
from . import radius
from .quotatab_user import UserLimitTable, source, user_limit


class RadiusTable(UserLimitTable):
    """The limit table: one record, the session user's, made from what mod_radius holds for this login."""

    module = "mod_quotatab_radius"

    def values(self, name: str) -> list[str] | None:
        values = radius.quota_values(self.session, name)
        if values is None:
            self.log("error retrieving RADIUS quota attributes")
        return values

    def limit(self, values: list[str]) -> qt.Limit:
        return limit_of(values, self.log)


def limit_of(values: list[str], log: Callable[[str], None]) -> qt.Limit:
    """ProFTPD's radiustab_lookup: name, per-session (`true`/`false`), limit type (`hard`/`soft`), bytes in/out/xfer
    (atof), files in/out/xfer (atoi)."""
    per_session, limit_type = values[1:3]
    kind = qt.LIMIT_WORDS.get(limit_type.lower())
    if kind is None:
        log(f"warning: unknown RADIUS quota limit type '{limit_type}', using soft")
        kind = qt.SOFT
    return user_limit(values, {"true": True, "false": False}.get(per_session.lower(), False), kind)


SOURCE = source("radius", RadiusTable, "'radius:' is a QuotaLimitTable source only (mod_quotatab_radius); keep "
                "the tally in a file: or sql: table")
MODULE = Module("mod_quotatab_radius.c")
