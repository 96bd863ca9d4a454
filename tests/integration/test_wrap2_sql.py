"""mod_wrap2's SQL tables (mod_wrap2_sql over mod_sql's SQLite backend) on the real daemon: rows of allowed and
denied clients admit or refuse a login before PASS with ProFTPD's reply; the name each kind of table gives its
query; a query that is not defined; clients bound to 127.0.0.2, .3 and .4."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import IS_ROOT

from test_wrap import attempt

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="clients bound to 127.0.0.x, tables read as root")

QUERIES = """SQLConnectInfo {dir}/wrap.db
SQLAuthenticate off
SQLNamedQuery allowed SELECT "client FROM wrap_allow WHERE name = '%{0}'"
SQLNamedQuery denied SELECT "client FROM wrap_deny WHERE name = '%{0}'"
WrapEngine on
WrapLog {dir}/wrap.log
WrapDenyMsg "Refused: %u"
"""


@pytest.fixture
def tmp_path(open_tmp_path):
    return open_tmp_path


def started(ftpd, tmp_path: Path, tables: str, allow: list[tuple], deny: list[tuple]):
    """The daemon with `tables` (Wrap*Tables lines) and these (name, client) rows."""
    db = tmp_path / "wrap.db"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.executescript("CREATE TABLE wrap_allow (name TEXT, client TEXT);"
                           "CREATE TABLE wrap_deny (name TEXT, client TEXT);")
        conn.executemany("INSERT INTO wrap_allow VALUES (?, ?)", allow)
        conn.executemany("INSERT INTO wrap_deny VALUES (?, ?)", deny)
    conn.close()
    return ftpd(QUERIES + tables)


def test_user_rows_admit_and_refuse_a_login(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "WrapUserTables alice,bob sql:/allowed sql:/denied\n",
                allow=[("alice", "127.0.0.2")], deny=[("alice", "ALL"), ("bob", "127.0.0.3")])
    assert attempt(d.port, "127.0.0.2") == "in"
    assert attempt(d.port, "127.0.0.3") == "530 Refused: alice"
    assert attempt(d.port, "127.0.0.4", "bob") == "in"
    assert attempt(d.port, "127.0.0.3", "bob") == "530 Refused: bob"
    log = (tmp_path / "wrap.log").read_text()
    assert "refused connection from alice@127.0.0.3" in log and "allowed connection from alice@127.0.0.2" in log


def test_global_tables_ask_with_an_empty_name_and_split_lists(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "WrapTables sql:/allowed sql:/denied\n",
                allow=[("", "127.0.0.2, 127.0.0.3"), ("alice", "127.0.0.4")], deny=[("", "ALL")])
    assert [attempt(d.port, src) for src in ("127.0.0.2", "127.0.0.3")] == ["in", "in"]
    assert attempt(d.port, "127.0.0.4") == "530 Refused: alice"     # refused at PASS: the master has no database


def test_group_tables_ask_with_the_primary_group(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "WrapGroupTables ftpusers sql:/allowed sql:/denied\n",
                allow=[], deny=[("ftpusers", "127.0.0.3 EXCEPT 127.0.0.2")])
    assert attempt(d.port, "127.0.0.3") == "530 Refused: alice"
    assert attempt(d.port, "127.0.0.2") == "in"


def test_a_query_not_defined_leaves_its_table_out(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "WrapUserTables alice sql:/allowed sql:/nothing\n", allow=[], deny=[])
    assert attempt(d.port, "127.0.0.3") == "in"
    assert "error: unable to resolve SQLNamedQuery name 'nothing'" in (tmp_path / "wrap.log").read_text()
