"""mod_quotatab_sql: the `sql:` source of QuotaLimitTable and QuotaTallyTable, over mod_sql's named queries (SQLite).

    QuotaLimitTable sql:/<select>
    QuotaTallyTable sql:/<select>/<update>/<insert>

Each name is an SQLNamedQuery, run through mod_sql (modules/sql.py `lookup`/`change`: its connection, its bound
parameters, its handling of a database error), with the arguments ProFTPD 1.3.8's module passes:

- the SELECTs get `%{0}` the name looked up (empty for the `all` record) and `%{1}` its type (`user`, `group`,
  `class`, `all`); the limit SELECT returns name, quota type, per-session (`true`/`false`), limit type
  (`hard`/`soft`), bytes in/out/xfer and files in/out/xfer available; the tally SELECT returns name, quota type and
  bytes/files in/out/xfer used. The first row counts; a row of another type, or of another name (an empty name
  matches any), is no record;
- the UPDATE gets the changes, not the totals (so that sessions counting at once add up): `%{0}`..`%{2}` bytes
  in/out/xfer (`%f`), `%{3}`..`%{5}` files (`%d`), `%{6}` the name, `%{7}` the type;
- the INSERT makes the tally record a login needs: `%{0}` name, `%{1}` type, then the six zero counts.

ProFTPD pastes the name and type into its INSERT already quoted (`'alice'`); proftpy binds every value as a
parameter, so `%{0}` and `'%{0}'` both give the name. With QuotaLock, reads hold a shared lock on that file and
writes an exclusive one, as ProFTPD's (which gives up on a busy lock where proftpy waits for it).
"""

from __future__ import annotations

import fcntl
import re
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterator

from .. import quotatab as qt
from ..auth.sql import atol as sql_atol
from ..module import Module
from . import sql

if TYPE_CHECKING:
    from ..session import Session

TYPE_NAMES = {value: word for word, value in qt.TYPE_WORDS.items()}
COUNTS = ("bytes_in", "bytes_out", "bytes_xfer", "files_in", "files_out", "files_xfer")
LIMIT_VALUES, TALLY_VALUES = 10, 8          # the columns each SELECT returns
FLOAT = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _parse(info: str, kind: str) -> tuple[str, ...]:
    """`/select` (limit) or `/select/update/insert` (tally): the named queries' names."""
    _, slash, rest = info.partition("/")
    names = (rest,) if kind == "limit" else tuple(rest.split("/", 2))
    if not slash or len(names) != (1 if kind == "limit" else 3) or not all(names):
        raise ValueError(f"badly formatted source info '{info}': expected sql:/SELECT-query" if kind == "limit" else
                         f"badly formatted source info '{info}': expected sql:/SELECT-query/UPDATE-query/INSERT-query")
    return names


def _open(session: "Session", names: tuple[str, ...], kind: str, lock_fd: int | None,
          log: Callable[[str], None]) -> "SqlTable | None":
    """The table, once its named queries are known to be defined (ProFTPD's check when a session opens it)."""
    defined = sql.queries(session.server)
    for name in names:
        if name not in defined:
            log(f"error: unable to resolve SQLNamedQuery name '{name}'")
            return None
    return SqlTable(session, kind, names, lock_fd, log)


# -- values as ProFTPD reads them ----------------------------------------------------------------------------------
def atof(text: str | None) -> float:
    """C's atof: the number at the start of the text, 0.0 without one; NULL is -1.0 (mod_quotatab_sql's)."""
    if text is None:
        return -1.0
    number = FLOAT.match(text)
    return float(number.group()) if number else 0.0


def atol(text: str | None) -> int:
    """C's atol (auth/sql.py) stored in an unsigned 32-bit count."""
    return sql_atol(text) & qt.UINT_MAX


def record(values: list, kind: str, name: str | None, quota_type: int,
           log: Callable[[str], None], query: str) -> qt.Limit | qt.Tally | None:
    """The limit or tally record in a SELECT's values (all rows' values one after another), or None: too few
    values, another quota type, another name."""
    wanted = LIMIT_VALUES if kind == "limit" else TALLY_VALUES
    if len(values) < wanted:
        if values:
            log(f"error: SQLNamedQuery '{query}' returned incorrect number of values ({len(values)})")
        return None
    if len(values) > wanted:
        log(f"warning: SQLNamedQuery '{query}' returned more values than expected ({len(values)})")
    row_name, type_word = values[0] or "", values[1] or ""
    row_type = qt.TYPE_WORDS.get(type_word.lower())
    if row_type is None:
        log(f"warning: SQLNamedQuery '{query}' returned unknown/unsupported quota type ('{type_word}')")
    if row_type != quota_type or (quota_type != qt.ALL and row_name and name is not None and row_name != name):
        return None
    counts = values[wanted - 6:wanted]
    numbers = [atof(v) for v in counts[:3]] + [atol(v) for v in counts[3:]]
    if kind == "tally":
        return qt.Tally(row_name, row_type, *numbers)
    per_session = _word(values[2], {"false": False, "true": True}, False, log,
                        f"SQLNamedQuery '{query}' returned unknown/unsupported quota per-session value")
    limit_type = _word(values[3], qt.LIMIT_WORDS, 0, log,
                       f"SQLNamedQuery '{query}' returned unknown/unsupported quota limit type")
    return qt.Limit(row_name, row_type, per_session, limit_type, *numbers)


def _word(text: str | None, words: dict, default, log: Callable[[str], None], what: str):
    value = words.get((text or "").lower())
    if value is None:
        log(f"warning: {what} ('{text}')")
        return default
    return value


# -- the table -------------------------------------------------------------------------------------------------------
class SqlTable:
    """A limit table (one SELECT) or a tally table (SELECT, UPDATE, INSERT) in the session's mod_sql database. A
    record's key is its (name, quota type)."""

    def __init__(self, session: "Session", kind: str, names: tuple[str, ...], lock_fd: int | None,
                 log: Callable[[str], None]) -> None:
        self.session, self.kind, self.names, self.lock_fd, self.log = session, kind, names, lock_fd, log

    def find(self, name: str | None, quota_type: int) -> tuple[tuple[str, int], qt.Record] | None:
        values = sql.lookup(self.session, self.names[0], ((name or "").strip(), TYPE_NAMES[quota_type]))
        if values is None:
            self.log(f"error processing NamedQuery '{self.names[0]}'")
            return None
        found = record(values, self.kind, name, quota_type, self.log, self.names[0])
        return ((found.name, found.quota_type), found) if found is not None else None

    def find_or_add(self, tally: qt.Tally) -> tuple[tuple[str, int], qt.Tally, bool]:
        found = self.find(tally.name if tally.quota_type != qt.ALL else None, tally.quota_type)
        if found is not None:
            return found[0], found[1], False
        with self._locked(exclusive=True):
            args = (tally.name.strip(), TYPE_NAMES[tally.quota_type], *(_text(tally, c) for c in COUNTS))
            if not sql.change(self.session, self.names[2], args):
                raise OSError(f"error executing NamedQuery '{self.names[2]}'")
        return (tally.name, tally.quota_type), tally, True

    def fetch(self, key: tuple[str, int]) -> qt.Tally | None:
        with self._locked(exclusive=False):
            found = self.find(*key)
        return found[1] if found is not None else None

    def update(self, key: tuple[str, int], tally: qt.Tally, limit: qt.Limit, deltas: dict[str, float]) -> qt.Tally:
        """The tally read again, the deltas counted, and the UPDATE sent with the deltas (where the limit limits;
        0 elsewhere). A failed UPDATE is logged; the session's copy keeps the count, as ProFTPD's does."""
        with self._locked(exclusive=True):
            found = self.find(*key)
            new = found[1] if found is not None else replace(tally)
            new.add(limit, **deltas)
            counted = dict.fromkeys(COUNTS, 0) | limit.limited(**deltas)
            args = [f"{counted[c]:f}" for c in COUNTS[:3]] + [str(int(counted[c])) for c in COUNTS[3:]]
            if not sql.change(self.session, self.names[1], (*args, key[0].strip(), TYPE_NAMES[key[1]])):
                self.log(f"error: unable to update tally entry: error executing NamedQuery '{self.names[1]}'")
        return new

    def close(self) -> None:
        pass

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """QuotaLock, when there is one, for the span of a read or a write."""
        if self.lock_fd is None:
            yield
            return
        fcntl.lockf(self.lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)


def _text(tally: qt.Tally, count: str) -> str:
    value = getattr(tally, count)
    return f"{value:f}" if count.startswith("bytes") else str(value)


SOURCE = qt.Source("sql", _parse, _open)
MODULE = Module("mod_quotatab_sql.c")
