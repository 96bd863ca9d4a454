"""mod_sql with the SQLite backend: logins of users and groups from a database, SQLLog, SQLShowInfo, errors."""

import base64
import ftplib
import hashlib
import io
import os
import sqlite3
import time

import pytest

import sql_checks
from conftest import IS_ROOT, PASSWORDS, login_reply, refused_config, wait_until

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="SQL users have their own uids: the daemon must run as root")

UID = 2400
SCHEMA = """
CREATE TABLE users (userid TEXT, passwd TEXT, uid INTEGER, gid INTEGER, homedir TEXT, shell TEXT,
                    count INTEGER DEFAULT 0, fstor INTEGER DEFAULT 0, fretr INTEGER DEFAULT 0,
                    bstor INTEGER DEFAULT 0, bretr INTEGER DEFAULT 0, active INTEGER DEFAULT 1);
CREATE TABLE groups (groupname TEXT, gid INTEGER, members TEXT);
CREATE TABLE xferlog (user TEXT, cmd TEXT, path TEXT, bytes INTEGER, code TEXT);
"""


def crypt(password: str) -> str:
    from proftpy.auth.crypt import crypt_hash
    return crypt_hash(password, "sha512")


def make_db(tmp_path, users=None) -> str:
    """carol (crypt), dave (plaintext), erin ({sha1}), frank (empty password), gina (below SQLMinID), in groups."""
    path = str(tmp_path / "ftp.db")
    home = tmp_path / "sqlhome"
    rows = users or [
        ("carol", crypt("carol-pw"), UID, UID, str(home / "carol"), "/bin/sh"),
        ("dave", "dave-pw", UID + 1, UID, str(home / "dave"), "/bin/sh"),
        ("erin", "{sha1}" + base64.b64encode(hashlib.sha1(b"erin-pw").digest()).decode(), UID + 2, UID,
         str(home / "erin"), "/bin/sh"),
        ("frank", "", UID + 3, UID, str(home / "frank"), "/bin/sh"),
        ("gina", crypt("gina-pw"), 10, 10, str(home / "gina"), "/bin/sh"),
        ("hank", crypt("hank-pw"), UID + 5, UID, None, "/bin/sh"),
    ]
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO users (userid, passwd, uid, gid, homedir, shell) VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO groups VALUES (?, ?, ?)",
                     [("sqlstaff", UID, "carol,dave"), ("sqlextra", UID + 10, "dave,carol"), ("other", UID + 11, "x")])
    conn.commit()
    conn.close()
    for row in rows:
        if row[4]:
            os.makedirs(row[4], exist_ok=True)
            os.chown(row[4], row[2], row[3])
    os.chmod(path, 0o600)
    return path


def sql_config(db: str, extra: str = "", types: str = "Crypt Plaintext OpenSSL") -> str:
    return f"""\
AuthOrder mod_sql.c mod_auth_file.c
<IfModule mod_sql.c>
SQLBackend sqlite3
SQLConnectInfo {db}
SQLAuthTypes {types}
SQLAuthenticate users groups
SQLUserInfo users userid passwd uid gid homedir shell
SQLGroupInfo groups groupname gid members
{extra}
</IfModule>
"""


def rows(db: str, sql: str) -> list:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def tmp_path(open_tmp_path):
    """SQL users log in without chroot: every parent of their homes must be traversable."""
    return open_tmp_path


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path)


def test_crypt_user_logs_in_and_is_its_uid(ftpd, db, tmp_path):
    sql_checks.logs_in_as_its_uid(ftpd(sql_config(db)), tmp_path / "sqlhome" / "carol", UID, UID)


@pytest.mark.parametrize("user,password", [("dave", "dave-pw"), ("erin", "erin-pw")])
def test_plaintext_and_openssl_forms(ftpd, db, user, password):
    d = ftpd(sql_config(db))
    assert login_reply(d, user, password) == f"230 User {user} logged in"
    assert login_reply(d, user, "wrong") == "530 Login incorrect."


def test_auth_types_are_only_the_listed_ones(ftpd, db):
    d = ftpd(sql_config(db, types="Crypt"))
    assert login_reply(d, "dave", "dave-pw") == "530 Login incorrect."          # a plaintext column, Crypt only
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"


def test_empty_auth_type(ftpd, db):
    d = ftpd(sql_config(db, types="Empty"))
    assert login_reply(d, "frank", "anything") == "230 User frank logged in"
    d2_reply = login_reply(d, "carol", "carol-pw")
    assert d2_reply == "530 Login incorrect."


def test_wrong_password_and_unknown_user(ftpd, db):
    d = ftpd(sql_config(db))
    assert login_reply(d, "carol", "nope") == "530 Login incorrect."
    assert login_reply(d, "nobody-in-db", "nope") == "530 Login incorrect."


@pytest.mark.parametrize("user", ["x' OR '1'='1", "carol' --", "carol'; DROP TABLE users; --", "%", "car_l"])
def test_sql_injection_in_user_is_just_a_name(ftpd, db, user):
    """A name with quotes, comments or LIKE wildcards is only a name: bound as a parameter, never SQL text."""
    d = ftpd(sql_config(db, "SQLUserWhereClause \"active = 1\""))
    assert login_reply(d, user, "carol-pw") == "530 Login incorrect."
    assert login_reply(d, user, "x' OR '1'='1") == "530 Login incorrect."
    assert rows(db, "SELECT count(*) FROM users")[0][0] == 6


def test_injection_in_pass_does_not_log_in(ftpd, db):
    d = ftpd(sql_config(db, types="Plaintext"))
    assert login_reply(d, "dave", "' OR '1'='1") == "530 Login incorrect."


def test_user_where_clause(ftpd, db):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE users SET active = 0 WHERE userid = 'dave'")
    d = ftpd(sql_config(db, 'SQLUserWhereClause "active = 1"'))
    assert login_reply(d, "dave", "dave-pw") == "530 Login incorrect."
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"


def test_min_id_gives_the_default_uid(ftpd, db, tmp_path):
    os.chown(tmp_path / "sqlhome" / "gina", 2450, 2450)
    d = ftpd(sql_config(db, "SQLMinID 500\nSQLDefaultUID 2450\nSQLDefaultGID 2450"))
    with d.connect() as ftp:
        ftp.login("gina", "gina-pw")
        ftp.storbinary("STOR g.txt", io.BytesIO(b"x"))
    st = os.stat(tmp_path / "sqlhome" / "gina" / "g.txt")
    assert (st.st_uid, st.st_gid) == (2450, 2450)


def test_default_homedir_for_a_null_home(ftpd, db, tmp_path):
    home = tmp_path / "defhome"
    home.mkdir()
    os.chown(home, UID + 5, UID)
    d = ftpd(sql_config(db, f"SQLDefaultHomedir {home}"))
    with d.connect() as ftp:
        ftp.login("hank", "hank-pw")
        assert ftp.pwd() == str(home)


def test_default_root_with_sql_users_and_groups(ftpd, db, tmp_path):
    sql_checks.chrooted_by_group(ftpd(sql_config(db, "") + "DefaultRoot ~ sqlextra\n"))
    assert (tmp_path / "sqlhome" / "carol" / "c.txt").exists()


def test_group_limit_uses_sql_groups(ftpd, db):
    d = ftpd(sql_config(db, "") + "<Limit LOGIN>\nDenyGroup sqlextra\n</Limit>\n")
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert login_reply(d, "erin", "erin-pw") == "230 User erin logged in"


def test_fallback_to_auth_file(ftpd, db):
    d = ftpd(sql_config(db))
    assert login_reply(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"


def test_sqllog_updates_counters_and_inserts_rows(ftpd, db, tmp_path):
    sql_checks.transfers(ftpd(sql_config(db, sql_checks.SQLLOG)), "it's.txt")
    home = tmp_path / "sqlhome" / "carol"
    assert wait_until(lambda: len(rows(db, "SELECT * FROM xferlog")) == 3, 5)
    assert rows(db, "SELECT count FROM users WHERE userid = 'carol'") == [(1,)]
    assert rows(db, "SELECT * FROM xferlog") == [
        ("carol", "STOR", f"{home}/it's.txt", 5, "226"), ("carol", "RETR", f"{home}/it's.txt", 5, "226"),
        ("carol", "RETR", "-", 0, "550")]          # %f of a RETR that found no file: ExtendedLog's too


def test_sqllog_exit(ftpd, db):
    extra = """\
SQLNamedQuery bye UPDATE "shell = 'gone' WHERE userid = '%u'" users
SQLLog EXIT bye
"""
    d = ftpd(sql_config(db, extra))
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        ftp.quit()
    assert wait_until(lambda: rows(db, "SELECT shell FROM users WHERE userid = 'carol'") == [("gone",)], 5)


def test_ratio_stats(ftpd, db):
    d = ftpd(sql_config(db, "SQLRatioStats on"))
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        ftp.storbinary("STOR r.bin", io.BytesIO(b"x" * 100))
        ftp.retrbinary("RETR r.bin", lambda b: None)
        ftp.retrbinary("RETR r.bin", lambda b: None)
    assert rows(db, "SELECT fstor, fretr, bstor, bretr FROM users WHERE userid = 'carol'") == [(1, 2, 100, 200)]


def test_show_info_lines(ftpd, db):
    """SQLShowInfo's lines; one whose query finds nothing is not shown."""
    extra = """\
SQLNamedQuery count UPDATE "count = count + 1 WHERE userid = '%u'" users
SQLNamedQuery getcount SELECT "count FROM users WHERE userid = '%u'"
SQLNamedQuery nothing SELECT "count FROM users WHERE userid = 'nobody'"
SQLLog PASS count
SQLShowInfo PASS "230" "You've logged on %{getcount} times, %u"
SQLShowInfo PASS "230" "never shown %{nothing}"
SQLShowInfo ERR_CWD "550" "no such dir for %u"
"""
    sql_checks.shows_info(ftpd(sql_config(db, extra)))


def test_missing_database_is_a_clear_error(ftpd, tmp_path):
    d = ftpd(sql_config(str(tmp_path / "no-such.db")))
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("PASS carol-pw")
    log = d.log()
    assert "mod_sql/4.5: unrecoverable backend error: (mod_sql_sqlite/0.4) unable to open database file" in log
    assert "Traceback" not in log


def test_missing_database_with_no_disconnect_falls_back(ftpd, tmp_path):
    d = ftpd(sql_config(str(tmp_path / "no-such.db"), "SQLOptions NoDisconnectOnError"))
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert login_reply(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"


def test_locked_database_fails_without_hanging(ftpd, db):
    d = ftpd(sql_config(db, "SQLNamedQuery count UPDATE \"count = count + 1 WHERE userid = '%u'\" users\n"
                            "SQLLog PASS count"))
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with d.connect(timeout=20) as ftp:
            ftp.sendcmd("USER carol")
            with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
                ftp.sendcmd("PASS carol-pw")
        assert time.monotonic() - started < 15
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert "database is locked" in d.log()
    assert "Traceback" not in d.log()


@pytest.mark.parametrize("line,message", [
    ("SQLBackend odbc", "the 'odbc' backend is not implemented"),
    ("SQLConnectInfo proftpd@localhost user secret", "names a database on a server"),
    ("SQLConnectInfo db@host:99999", "the port must be a number from 1 to 65535"),
    ("SQLConnectInfo /x.db u p ssl-mode:require", "unknown SQLConnectInfo option"),
    ("SQLConnectInfo relative.db", "is not the absolute path of an SQLite database file"),
    ("SQLAuthTypes Crypt Bogus", "unknown SQLAuthType 'Bogus'"),
    ("SQLEngine sometimes", "unknown SQLEngine parameter 'sometimes'"),
    ("SQLUserInfo users userid passwd", "missing parameters"),
    ("SQLGroupInfo custom:/a", "badly formatted parameter"),
    ("SQLNamedQuery q DELETE \"x\"", "type must be SELECT, INSERT, UPDATE, or FREEFORM"),
    ("SQLNamedQuery q INSERT \"x\"", "expected 'INSERT' query-string table-name"),
    ("SQLAuthenticate users bogus", "unknown argument"),
    ("SQLOptions Bogus", "unknown SQLOption 'Bogus'"),
    ("SQLMinID -1", "invalid UID value '-1'"),
])
def test_bad_directives_are_refused(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert "t.conf:2:" in err and message in err, err


def test_custom_user_info_query(ftpd, db):
    d = ftpd(sql_checks.custom_user_info(sql_config(db, sql_checks.USER_QUERIES)))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    assert login_reply(d, "x' OR '1'='1", "carol-pw") == "530 Login incorrect."


def test_user_reply_names_the_first_word(ftpd, db):
    d = ftpd(sql_config(db))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER carol x") == "331 Password required for carol"     # ProFTPD's argv[1]


def test_default_auth_order_asks_mod_sql_first(ftpd, db):
    """Without AuthOrder (Debian's proftpd.conf has none), ProFTPD asks the DSO it loaded last, mod_sql, first."""
    d = ftpd(sql_config(db).replace("AuthOrder mod_sql.c mod_auth_file.c\n", ""), auth=False)
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"


def test_sql_log_file(ftpd, db, tmp_path):
    extra = f"""\
SQLLogFile {tmp_path}/sql.log
SQLNamedQuery count UPDATE "count = count + 1 WHERE userid = '%u'" users
SQLLog PASS count
"""
    d = ftpd(sql_config(db, extra))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    assert wait_until(lambda: "UPDATE users SET count = count + 1 WHERE userid = ?" in
                      (tmp_path / "sql.log").read_text(), 5)
    assert "mod_sql/4.5[" in (tmp_path / "sql.log").read_text()
    assert "SELECT userid, passwd, uid, gid, homedir, shell FROM users WHERE (userid = ?) LIMIT 1" in \
        (tmp_path / "sql.log").read_text()


def test_log_on_event(ftpd, db):
    extra = """\
SQLNamedQuery failed INSERT "'%U', '%m', '%a', 0, 'max'" xferlog
SQLLogOnEvent MaxLoginAttempts failed
"""
    d = ftpd("MaxLoginAttempts 1\n" + sql_config(db, extra))
    assert login_reply(d, "carol", "wrong") == "530 Login incorrect."
    assert wait_until(lambda: rows(db, "SELECT * FROM xferlog") == [("carol", "EVENT", "127.0.0.1", 0, "max")], 5)


def test_proftpy_lists_mod_sql_and_ifmodule_holds(ftpd, db):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "proftpy", "-l"], capture_output=True, text=True).stdout.splitlines()
    assert "  mod_sql.c" in out and "  mod_sql_sqlite.c" in out
    d = ftpd("<IfModule mod_sql_sqlite.c>\n" + sql_config(db) + "</IfModule>\n")
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
