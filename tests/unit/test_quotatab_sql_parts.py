"""mod_quotatab_sql's pure parts: a SELECT's values read as ProFTPD's module reads them."""

from __future__ import annotations

from proftpy import quotatab as qt
from proftpy.modules.quotatab_sql import atof, atol, record

LIMIT_ROW = ["alice", "user", "false", "hard", "100", "0", "-1", "3", "0", "0"]


def read(values, kind="limit", name="alice", quota_type=qt.USER):
    said: list[str] = []
    return record(values, kind, name, quota_type, said.append, "q"), said


def test_numbers_are_read_as_c_reads_them():
    assert [atof(t) for t in ("1024", "1.5e3", " 12abc", "abc", "", None)] == [1024.0, 1500.0, 12.0, 0.0, 0.0, -1.0]
    assert [atol(t) for t in ("7", "7.9", "-1", "x", None, "4294967296")] == [7, 7, 4294967295, 0, 0, 0]


def test_a_limit_row_becomes_a_limit():
    assert read(LIMIT_ROW) == (qt.Limit("alice", qt.USER, False, qt.HARD, 100.0, 0.0, -1.0, 3, 0, 0), [])
    soft = ["", "ALL", "TRUE", "Soft"] + LIMIT_ROW[4:]
    assert read(soft, name=None, quota_type=qt.ALL)[0] == qt.Limit("", qt.ALL, True, qt.SOFT, 100.0, 0.0, -1.0, 3)


def test_a_tally_row_becomes_a_tally():
    row = ["bob", "group", "10.5", None, "0", "2", "0", "0"]
    assert read(row, "tally", "bob", qt.GROUP) == (qt.Tally("bob", qt.GROUP, 10.5, -1.0, 0.0, 2, 0, 0), [])


def test_a_row_of_another_type_or_name_is_no_record():
    assert read(LIMIT_ROW, quota_type=qt.GROUP) == (None, [])
    assert read(LIMIT_ROW, name="bob") == (None, [])
    assert read([""] + LIMIT_ROW[1:], name="bob")[0].name == ""        # an empty name matches anyone


def test_odd_rows_are_logged():
    assert read(LIMIT_ROW[:4]) == (None, ["error: SQLNamedQuery 'q' returned incorrect number of values (4)"])
    assert read([]) == (None, [])
    limit, said = read(LIMIT_ROW[:2] + ["maybe", "firm"] + LIMIT_ROW[4:] + LIMIT_ROW)
    assert (limit.per_session, limit.limit_type) == (False, 0)
    assert said == ["warning: SQLNamedQuery 'q' returned more values than expected (20)",
                    "warning: SQLNamedQuery 'q' returned unknown/unsupported quota per-session value ('maybe')",
                    "warning: SQLNamedQuery 'q' returned unknown/unsupported quota limit type ('firm')"]
    assert read(["alice", "person"] + LIMIT_ROW[2:])[1] == [
        "warning: SQLNamedQuery 'q' returned unknown/unsupported quota type ('person')"]
