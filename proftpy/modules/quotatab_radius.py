"""mod_quotatab_radius: `QuotaLimitTable radius:`, the user's limit from mod_radius's RadiusQuotaInfo (its values,
or the Access-Accept's Vendor-Specific attributes that its `$(attribute-id:default)` forms name), as ProFTPD 1.3.8's
contrib/mod_quotatab_radius.c reads them. A limit source only: the tally stays in a `file:` or `sql:` table.

Only user limits: a group, class or `all` lookup is logged as an error and finds nothing. A login RADIUS did not
accept with RadiusQuotaInfo (an Access-Reject, no RadiusQuotaInfo) has no limit here ("error retrieving RADIUS quota
attributes"); a login no server answered has RadiusQuotaInfo's own values, as ProFTPD's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .. import quotatab as qt
from ..module import Module
from . import radius
from .quotatab_sql import atof, atol

if TYPE_CHECKING:
    from ..session import Session


def _parse(info: str, kind: str) -> str:
    if kind != "limit":
        raise ValueError("'radius:' is a QuotaLimitTable source only (mod_quotatab_radius); keep the tally in a "
                         "file: or sql: table")
    return info


def _open(session: "Session", info: str, kind: str, lock_fd: int | None,
          log: Callable[[str], None]) -> "RadiusTable":
    return RadiusTable(session, log)


class RadiusTable:
    """The limit table: one record, the session user's, made from what mod_radius holds for this login."""

    def __init__(self, session: "Session", log: Callable[[str], None]) -> None:
        self.session, self.log = session, log

    def find(self, name: str | None, quota_type: int) -> tuple[tuple[str, int], qt.Limit] | None:
        if quota_type != qt.USER:
            self.log("error: mod_quotatab_radius only supports user quotas")
            return None
        values = radius.quota_values(self.session, name or "")
        if values is None:
            self.log("error retrieving RADIUS quota attributes")
            return None
        limit = limit_of(values, self.log)
        return (limit.name, qt.USER), limit

    def close(self) -> None:
        pass


def limit_of(values: list[str], log: Callable[[str], None]) -> qt.Limit:
    """ProFTPD's radiustab_lookup: name, per-session (`true`/`false`), limit type (`hard`/`soft`), bytes in/out/xfer
    (atof), files in/out/xfer (atoi)."""
    name, per_session, limit_type, *numbers = values
    per = {"true": True, "false": False}.get(per_session.lower(), False)
    kind = qt.LIMIT_WORDS.get(limit_type.lower())
    if kind is None:
        log(f"warning: unknown RADIUS quota limit type '{limit_type}', using soft")
        kind = qt.SOFT
    return qt.Limit(name, qt.USER, per, kind, *(atof(v) for v in numbers[:3]), *(atol(v) for v in numbers[3:]))


SOURCE = qt.Source("radius", _parse, _open)
MODULE = Module("mod_quotatab_radius.c")
