"""Quotas kept in SQL tables (mod_quotatab_sql over mod_sql's SQLite backend) on the real daemon, driven by ftplib:
a limit row applied, the tally row made at the first login and counted across sessions, user/group/all limits,
SITE QUOTA, and table specifications the configuration refuses."""

from __future__ import annotations

import ftplib
import sqlite3
from pathlib import Path

import pytest

from conftest import refused_config

from test_quotatab import store

SCHEMA = """
CREATE TABLE quotalimits (name TEXT, quota_type TEXT, per_session TEXT, limit_type TEXT, bytes_in_avail REAL,
                          bytes_out_avail REAL, bytes_xfer_avail REAL, files_in_avail INTEGER,
                          files_out_avail INTEGER, files_xfer_avail INTEGER);
CREATE TABLE quotatallies (name TEXT, quota_type TEXT, bytes_in_used REAL, bytes_out_used REAL,
                           bytes_xfer_used REAL, files_in_used INTEGER, files_out_used INTEGER,
                           files_xfer_used INTEGER);
"""
# the named queries of ProFTPD's mod_quotatab_sql documentation
QUERIES = """SQLConnectInfo {dir}/quota.db
SQLAuthenticate off
SQLNamedQuery get-quota-limit SELECT "name, quota_type, per_session, limit_type, bytes_in_avail, bytes_out_avail, \
bytes_xfer_avail, files_in_avail, files_out_avail, files_xfer_avail FROM quotalimits WHERE name = '%{0}' AND \
quota_type = '%{1}'"
SQLNamedQuery get-quota-tally SELECT "name, quota_type, bytes_in_used, bytes_out_used, bytes_xfer_used, \
files_in_used, files_out_used, files_xfer_used FROM quotatallies WHERE name = '%{0}' AND quota_type = '%{1}'"
SQLNamedQuery update-quota-tally UPDATE "bytes_in_used = bytes_in_used + %{0}, bytes_out_used = bytes_out_used + \
%{1}, bytes_xfer_used = bytes_xfer_used + %{2}, files_in_used = files_in_used + %{3}, files_out_used = \
files_out_used + %{4}, files_xfer_used = files_xfer_used + %{5} WHERE name = '%{6}' AND quota_type = '%{7}'" \
quotatallies
SQLNamedQuery insert-quota-tally INSERT "%{0}, %{1}, %{2}, %{3}, %{4}, %{5}, %{6}, %{7}" quotatallies
"""
TABLES = ("QuotaEngine on\nQuotaLimitTable sql:/get-quota-limit\n"
          "QuotaTallyTable sql:/get-quota-tally/update-quota-tally/insert-quota-tally\n")


@pytest.fixture
def tmp_path(open_tmp_path):
    return open_tmp_path


def started(ftpd, tmp_path: Path, *limits: tuple, extra: str = ""):
    """The daemon with `limits` (rows: name, type, per-session, hard/soft, 3 byte limits, 3 file limits)."""
    db = tmp_path / "quota.db"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO quotalimits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", limits)
    conn.close()
    return ftpd(QUERIES + TABLES + "QuotaLog {dir}/quota.log\nAllowOverwrite on\nDefaultRoot ~\n" + extra)


def tally(tmp_path: Path, name: str = "alice", quota_type: str = "user") -> tuple | None:
    with sqlite3.connect(tmp_path / "quota.db") as conn:
        row = conn.execute("SELECT bytes_in_used, bytes_out_used, bytes_xfer_used, files_in_used, files_out_used, "
                           "files_xfer_used FROM quotatallies WHERE name = ? AND quota_type = ?",
                           (name, quota_type)).fetchone()
    conn.close()
    return row


def test_hard_limit_row_stops_the_upload_that_crosses_it(ftpd, tmp_path):
    d = started(ftpd, tmp_path, ("alice", "user", "false", "hard", 100_000, 0, 0, 100, 0, 0))
    ftp = d.login()
    assert store(ftp, "a.bin", b"a" * 60_000).startswith("226 ")
    reply = store(ftp, "b.bin", b"b" * 400_000)
    assert reply.startswith("552-Transfer aborted. Disk quota exceeded"), reply
    assert "STOR: notice: quota reached: 'b.bin' removed" in reply
    assert not (d.home("alice") / "b.bin").exists()
    assert tally(tmp_path) == (60_000, 0, 0, 1, 0, 0)
    reply = store(ftp, "c.bin", b"c" * 40_000)
    assert reply == "226-Transfer complete\n226 STOR: notice: quota reached: used 100000.00 of 100000.00 upload bytes"
    assert store(ftp, "d.bin", b"d") == "552 STOR denied: quota exceeded: used 100000.00 of 100000.00 upload bytes"
    ftp.quit()


def test_tally_row_is_made_at_login_and_counts_across_sessions(ftpd, tmp_path):
    d = started(ftpd, tmp_path, ("alice", "user", "false", "soft", 0, 0, 0, 3, 5, 0))
    assert tally(tmp_path) is None
    ftp = d.login()
    assert tally(tmp_path) == (0, 0, 0, 0, 0, 0)
    assert store(ftp, "one", b"x" * 10).startswith("226 ")
    ftp.retrbinary("RETR one", lambda _: None)
    ftp.quit()
    assert tally(tmp_path) == (0, 0, 0, 1, 1, 0)         # unlimited values are not counted
    with sqlite3.connect(tmp_path / "quota.db") as conn:  # someone else's session counted meanwhile
        conn.execute("UPDATE quotatallies SET files_in_used = files_in_used + 1")
    conn.close()
    ftp = d.login()
    assert "notice: quota reached: used 3 of 3 upload files" in store(ftp, "two", b"y")
    assert store(ftp, "three", b"z").startswith("552-STOR denied: quota exceeded: used 3 of 3 upload files")
    ftp.delete("one")
    ftp.quit()
    assert tally(tmp_path) == (0, 0, 0, 2, 1, 0)
    assert "found tally entry for user 'alice'" in (tmp_path / "quota.log").read_text()


def test_group_limit_is_shared_and_all_limit_is_the_last_resort(ftpd, tmp_path):
    d = started(ftpd, tmp_path, ("ftpusers", "group", "false", "hard", 0, 0, 0, 1, 0, 0),
                ("", "all", "false", "hard", 0, 0, 0, 7, 0, 0), ("bob", "user", "true", "hard", 0, 0, 0, 0, 0, 0))
    ftp = d.login("alice")
    assert store(ftp, "a", b"a").endswith("used 1 of 1 upload file")
    ftp.quit()
    assert tally(tmp_path, "ftpusers", "group") == (0, 0, 0, 1, 0, 0)
    ftp = d.login("bob")                                  # bob's own row: per session, unlimited
    assert store(ftp, "b", b"b").startswith("226 ")
    assert tally(tmp_path, "bob") == (0, 0, 0, 0, 0, 0)    # made, never counted into
    ftp.quit()
    with sqlite3.connect(tmp_path / "quota.db") as conn:
        conn.execute("DELETE FROM quotalimits WHERE quota_type != 'all'")
    conn.close()
    ftp = d.login("bob")
    assert store(ftp, "c", b"c").startswith("226 ")
    ftp.quit()
    assert tally(tmp_path, "", "all") == (0, 0, 0, 1, 0, 0)


def test_site_quota_shows_the_row_and_the_tally(ftpd, tmp_path):
    d = started(ftpd, tmp_path, ("alice", "user", "true", "soft", 2048, -1, 0, 0, 4, 0), extra="QuotaDisplayUnits Kb\n")
    ftp = d.login()
    store(ftp, "a", b"a" * 1024)
    shown = ftp.sendcmd("SITE QUOTA").splitlines()
    assert shown[1:5] == [" Name: alice", " Quota Type: User", " Per Session: True", " Limit Type: Soft"]
    assert shown[5:11] == ["   Uploaded Kb:\t\t1.00/2.00", "   Downloaded Kb:\tunlimited",
                           "   Transferred Kb:\tunlimited", "   Uploaded files:\tunlimited",
                           "   Downloaded files:\t0/4", "   Transferred files:\tunlimited"]
    ftp.quit()
    assert tally(tmp_path) == (0, 0, 0, 0, 0, 0)           # per session: the row is made, never counted into


def test_a_missing_named_query_turns_quotas_off(ftpd, tmp_path):
    d = started(ftpd, tmp_path, ("alice", "user", "false", "hard", 0, 0, 0, 1, 0, 0))
    d.stop()
    d = ftpd(QUERIES + "QuotaEngine on\nQuotaLimitTable sql:/no-such-query\n"
             "QuotaTallyTable sql:/get-quota-tally/update-quota-tally/insert-quota-tally\nQuotaLog {dir}/quota.log\n")
    ftp = d.login()
    assert ftp.sendcmd("SITE QUOTA") == "202 No quotas in effect"
    ftp.quit()
    assert "error: unable to resolve SQLNamedQuery name 'no-such-query'" in (tmp_path / "quota.log").read_text()


@pytest.mark.parametrize("line,message", [
    ("QuotaLimitTable sql:get-quota-limit", "badly formatted source info 'get-quota-limit'"),
    ("QuotaTallyTable sql:/get/update", "expected sql:/SELECT-query/UPDATE-query/INSERT-query"),
    ("QuotaTallyTable ldap:/x", "unsupported table source type: 'ldap'")])
def test_bad_sql_table_specifications_are_refused(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert "t.conf:2:" in err and message in err, err


def test_a_database_error_ends_the_session_as_mod_sql_errors_do(ftpd, tmp_path):
    d = started(ftpd, tmp_path, ("alice", "user", "false", "hard", 0, 0, 0, 5, 0, 0))
    with sqlite3.connect(tmp_path / "quota.db") as conn:
        conn.execute("DROP TABLE quotatallies")
    conn.close()
    ftp = d.connect()
    ftp.sendcmd("USER alice")
    with pytest.raises((EOFError, ftplib.Error, OSError)):
        ftp.sendcmd("PASS alice-secret")
        ftp.sendcmd("NOOP")
