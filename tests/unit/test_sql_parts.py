"""mod_sql's pure parts: statement binding, directive parsing, SQLAuthTypes checks, the backend over a real file."""

import base64
import hashlib
import sqlite3

import pytest

from proftpy.auth import sql
from proftpy.auth.crypt import crypt_hash
from proftpy.auth.sql_sqlite import SqliteDatabase
from proftpy.auth.sql import (NULL_PASSWORD, GroupInfo, Settings, SqlBackend, SqlError, UserInfo, bind,
                              compile_statement, escape, parse_auth_types, parse_group_info, parse_named_query,
                              parse_user_info, password_ok, sql_value)
from proftpy.log.logformat import Record
from proftpy.modules.sql import _authenticate, _engine, _log, _ratio_stats, _show_info


def bound(text, **values):
    rec = Record(**values)
    return bind(compile_statement(text), lambda tok: sql_value(tok, rec))


def test_a_quoted_variable_becomes_one_parameter():
    assert bound("count = count + 1 WHERE userid = '%u'", user="x' OR '1'='1") == \
        ("count = count + 1 WHERE userid = ?", ["x' OR '1'='1"])


def test_text_around_a_variable_in_quotes_is_part_of_the_parameter():
    assert bound("'%u logged in', 'it''s', %b", user="bob", bytes=12) == ("?, 'it''s', ?", ["bob logged in", 12])


def test_a_variable_outside_quotes_is_bound_too():
    assert bound("userid = %u", user="a; DROP TABLE users") == ("userid = ?", ["a; DROP TABLE users"])
    assert bound("x = %b") == ("x = ?", [0.0])              # mod_sql's default for %b, not mod_log's "-"


def test_a_number_outside_quotes_is_bound_as_the_number_proftpd_writes():
    assert [sql._param(t) for t in ("12", "-3", "1.500000", "-0.000000", "007", "1e5", "12a")] == \
        [12, -3, 1.5, -0.0, "007", "1e5", "12a"]


def test_literals_without_variables_stay_as_written():
    assert bound("a = 'it''s' AND b = 'x'") == ("a = 'it''s' AND b = 'x'", [])


def test_numeric_references_are_custom_tokens():
    assert compile_statement("uid = %{0}") == ["uid = ", ("custom", "0")]
    assert bind(compile_statement("userid = '%{0}'"), lambda tok: "carol") == ("userid = ?", ["carol"])


def test_time_variable_uses_mod_sql_format():
    rec = Record(now=0)
    assert len(sql_value(("t", ""), rec)) == len("1970-01-01 00:00:00 +0000")


def test_escape_doubles_quotes_unless_already_quoted():
    assert escape("it's") == "it''s"
    assert escape("'quoted'") == "'quoted'"


@pytest.mark.parametrize("args,kind,table", [
    (["q", "select", "1"], "SELECT", None), (["q", "FREEFORM", "DELETE FROM t"], "FREEFORM", None),
    (["q", "INSERT", "'%u'", "log"], "INSERT", "log"), (["q", "update", "a = 1", "users"], "UPDATE", "users")])
def test_named_queries(args, kind, table):
    q = parse_named_query(args)
    assert (q.kind, q.table) == (kind, table)


def test_named_query_statements():
    q = parse_named_query(["q", "UPDATE", "n = n + 1 WHERE userid = '%u'", "users"])
    assert q.statement(lambda tok: "al") == ("UPDATE users SET n = n + 1 WHERE userid = ?", ["al"])
    q = parse_named_query(["q", "INSERT", "'%u', now()", "log"])
    assert q.statement(lambda tok: "al") == ("INSERT INTO log VALUES (?, now())", ["al"])
    assert parse_named_query(["q", "SELECT", "1"]).statement(lambda tok: "")[0] == "SELECT 1"


@pytest.mark.parametrize("args,message", [
    (["q", "SELECT"], "requires at least 3 parameters"), (["q", "DROP", "x"], "type must be"),
    (["q", "UPDATE", "x"], "expected 'UPDATE' query-string table-name"),
    (["q", "SELECT", "1", "other"], "named connection 'other' is not implemented")])
def test_bad_named_queries(args, message):
    with pytest.raises(ValueError, match=message):
        parse_named_query(args)


def test_user_and_group_info():
    assert parse_user_info(["u", "n", "p", "NULL", "g", "h", "null"]) == UserInfo("u", "n", "p", None, "g", "h", None)
    assert parse_user_info(["custom:/a/b"]) == UserInfo(by_name="a", by_id="b")
    assert parse_group_info(["g", "n", "id", "m"]) == GroupInfo("g", "n", "id", "m")
    assert parse_group_info(["custom:/a/b/c"]) == GroupInfo(by_name="a", by_id="b", members_query="c")
    for bad in (["users"], ["custom:"], ["a", "b"]):
        with pytest.raises(ValueError):
            parse_user_info(bad)
    with pytest.raises(ValueError, match="badly formatted"):
        parse_group_info(["custom:/a/b"])


def test_directive_words():
    assert _engine(["auth"]) == 1 and _engine(["log"]) == 2 and _engine(["on"]) == 3 and _engine(["off"]) == 0
    assert _authenticate(["on"]) == {"users", "groups", "userset", "groupset"}
    assert _authenticate(["users", "groupsetfast", "groups"]) == {"users", "groups", "groupset"}
    assert _authenticate(["users*"]) == {"users"}
    with pytest.raises(ValueError, match="no meaning without"):
        _authenticate(["userset"])
    with pytest.raises(ValueError, match="already set"):
        _authenticate(["users", "users"])
    assert _log(["RETR,stor", "q", "IGNORE_ERRORS"]).commands == {"RETR", "STOR"}
    assert _log(["*", "q"]).ignore_errors is False
    assert _show_info(["PASS", "230", "hi %u"]).code == "230"
    assert _ratio_stats(["on"]) == ("fstor", "fretr", "bstor", "bretr") and _ratio_stats(["off"]) is None



def test_auth_types():
    assert parse_auth_types(["crypt", "PLAINTEXT", "OpenSSL", "empty"]) == ("Crypt", "Plaintext", "OpenSSL", "Empty")
    assert parse_auth_types(["MD5", "sha512", "PBKDF2"]) == ("md5", "sha512", "pbkdf2")     # mod_sql_passwd's
    with pytest.raises(ValueError, match="unknown SQLAuthType 'md6'"):
        parse_auth_types(["md6"])


def test_password_checks():
    sha = "{sha256}" + base64.b64encode(hashlib.sha256(b"pw").digest()).decode()
    assert password_ok(("Crypt",), "pw", crypt_hash("pw"))
    assert not password_ok(("Crypt",), "pw", "pw")
    assert password_ok(("Plaintext",), "pw", "pw") and not password_ok(("Plaintext",), "", "")
    assert password_ok(("Empty",), "whatever", "") and not password_ok(("Empty",), "", "x")
    assert password_ok(("OpenSSL",), "pw", sha) and not password_ok(("OpenSSL",), "px", sha)
    assert not password_ok(("OpenSSL",), "pw", "{nodigest}abc") and not password_ok(("OpenSSL",), "pw", "abc")
    assert password_ok(("Crypt", "Plaintext"), "pw", "pw")            # tried in order, the first yes wins
    for types in (("Empty",), ("Plaintext",), ("Crypt",), ("OpenSSL",)):
        assert not password_ok(types, "", NULL_PASSWORD)            # a NULL column never matches


@pytest.fixture
def backend(tmp_path):
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE users (userid, passwd, uid, gid, homedir, shell);
        CREATE TABLE groups (groupname, gid, members);
        INSERT INTO users VALUES ('al', 'pw', 2000, 2000, '/home/al', '/bin/sh');
        INSERT INTO users VALUES ('lo', NULL, 5, NULL, NULL, NULL);
        INSERT INTO users VALUES ('a_', 'pw', 2002, 2000, '/h', '/bin/sh');
        INSERT INTO groups VALUES ('staff', 2000, 'al,lo');
        INSERT INTO groups VALUES ('staff', 2000, 'bo');
        INSERT INTO groups VALUES ('extra', 2001, 'xx,al');
        INSERT INTO groups VALUES ('trap', 2003, 'aX');""")
    conn.commit()
    conn.close()
    return SqlBackend(Settings(auth_types=("Plaintext",), default_home="/srv/ftp", negative_cache=True),
                      SqliteDatabase(str(path)))


def test_backend_users(backend):
    al = backend.getpwnam("al")
    assert (al.uid, al.gid, al.home, al.shell, al.source) == (2000, 2000, "/home/al", "/bin/sh", "mod_sql.c")
    assert backend.check(al, "pw") and not backend.check(al, "px")
    lo = backend.getpwnam("lo")
    assert (lo.uid, lo.gid, lo.home, lo.passwd) == (65533, 65533, "/srv/ftp", NULL_PASSWORD)
    assert backend.getpwnam("x' OR '1'='1") is None
    assert backend.getpwuid(2000).name == "al"


def test_backend_groups(backend):
    staff = backend.getgrnam("staff")
    assert (staff.gid, staff.members) == (2000, ("al", "lo", "bo"))
    assert backend.getgrgid(2001).name == "extra"
    assert [g.name for g in backend.groups_for("al", 2000)] == ["staff", "extra"]
    assert [g.name for g in backend.groups_for("a_", 2000)] == ["staff"]     # LIKE's `_` matched 'aX' in "trap"
    assert backend.groups_for("nobody", 2000) == []


def test_backend_error_is_reported_and_declines(tmp_path):
    errors = []
    b = SqlBackend(Settings(), SqliteDatabase(str(tmp_path / "missing.db")))
    b.on_error = errors.append
    assert b.getpwnam("al") is None
    assert errors and isinstance(errors[0], SqlError) and "unable to open database file" in str(errors[0])
    assert "unable to open database file" in b.warm()[0]


def test_database_is_not_opened_after_a_root_change(tmp_path, monkeypatch):
    db = SqliteDatabase(str(tmp_path / "x.db"))
    monkeypatch.setattr("proftpy.auth.sql_sqlite._root_identity", lambda: (0, 0))
    with pytest.raises(SqlError, match="after chroot"):
        db.query("SELECT 1")


def test_log_on_event_names():
    from proftpy.modules.sql import _log_on_event
    assert _log_on_event(["maxloginattempts", "q"])[0] == "mod_auth.max-login-attempts"
    event, rule = _log_on_event(["core.exit", "q", "ignore_errors"])
    assert (event, rule.query, rule.ignore_errors) == ("core.exit", "q", True)
