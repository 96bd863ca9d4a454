"""What the user-limit sources share (mod_quotatab_ldap's `ldap:`, mod_quotatab_radius's `radius:`): a
QuotaLimitTable source only (the tally stays in a `file:` or `sql:` table) whose one record is the session user's,
made of the nine values another module looked up for the login: the name, per-session, the limit type, bytes
in/out/xfer (atof) and files in/out/xfer (atoi). A group, class or `all` lookup is logged as an error and finds
nothing, as in ProFTPD's two modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .. import quotatab as qt
from .quotatab_sql import atof, atol

if TYPE_CHECKING:
    from ..session import Session


class UserLimitTable:
    """The limit table of one source: `values(name)` is the user's record (None after logging why not), `limit`
    reads it; `module` names the source in the log."""

    module = ""

    def __init__(self, session: "Session", log: Callable[[str], None]) -> None:
        self.session, self.log = session, log

    @classmethod
    def open(cls, session: "Session", info: str, kind: str, lock_fd: int | None,
             log: Callable[[str], None]) -> "UserLimitTable":
        return cls(session, log)

    def values(self, name: str) -> list[str] | None:
        raise NotImplementedError

    def limit(self, values: list[str]) -> qt.Limit:
        raise NotImplementedError

    def find(self, name: str | None, quota_type: int) -> tuple[tuple[str, int], qt.Limit] | None:
        if quota_type != qt.USER:
            self.log(f"error: {self.module} only supports user quotas")
            return None
        values = self.values(name or "")
        if values is None:
            return None
        limit = self.limit(values)
        return (limit.name, qt.USER), limit

    def close(self) -> None:
        pass


def source(kind: str, table: type[UserLimitTable], refusal: str) -> qt.Source:
    """The `kind:` source: refused (`refusal`) as a QuotaTallyTable."""
    def parse(info: str, table_kind: str) -> str:
        if table_kind != "limit":
            raise ValueError(refusal)
        return info
    return qt.Source(kind, parse, table.open)


def user_limit(values: list[str], per_session: bool, limit_type: int) -> qt.Limit:
    """The record from its nine values, per-session and the limit type as the source read them."""
    name, _, _, *numbers = values
    return qt.Limit(name, qt.USER, per_session, limit_type, *(atof(v) for v in numbers[:3]),
                    *(atol(v) for v in numbers[3:]))
