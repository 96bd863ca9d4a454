"""mod_sql with the PostgreSQL backend (mod_sql_postgres): a real PostgreSQL 15 cluster started by the tests
(tests/pgsql_helpers.py), proftpy's own client logging in with SCRAM-SHA-256, md5, cleartext and trust; logins of
users and groups, SQLLog, SQLShowInfo, names that try SQL, and a server that is down, hung or refuses."""

import ftplib
import io
import os
import subprocess
import sys
import time

import pytest

import pgsql_helpers
from proftpy.auth.crypt import crypt_hash
from conftest import IS_ROOT, PASSWORDS, error_reply, login_reply, refused_config, wait_until
from pgsql_helpers import PASSWORDS as DB_PASSWORDS

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="SQL users have their own uids: the daemon must run as root"),
              pytest.mark.slow]

UID = 2500
SCHEMA = """
CREATE TABLE users (userid TEXT, passwd TEXT, uid INTEGER, gid INTEGER, homedir TEXT, shell TEXT,
                    count INTEGER DEFAULT 0, fstor INTEGER DEFAULT 0, fretr INTEGER DEFAULT 0,
                    bstor BIGINT DEFAULT 0, bretr BIGINT DEFAULT 0);
CREATE TABLE groups (groupname TEXT, gid INTEGER, members TEXT);
CREATE TABLE xferlog (userid TEXT, cmd TEXT, path TEXT, bytes BIGINT, code TEXT);
"""


def literal(value) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


@pytest.fixture(scope="module")
def pg():
    assert pgsql_helpers.available(), "PostgreSQL 15 is missing: scripts/install-deps.sh installs it"
    server = pgsql_helpers.new(SCHEMA)
    yield server
    server.remove()


@pytest.fixture
def tmp_path(open_tmp_path):
    """SQL users log in without chroot: every parent of their homes must be traversable."""
    return open_tmp_path


@pytest.fixture
def db(pg, tmp_path):
    """carol (crypt), dave (plaintext), gina (below SQLMinID); groups sqlstaff (carol, dave), sqlextra (dave, carol)."""
    home = tmp_path / "sqlhome"
    users = [("carol", crypt_hash("carol-pw", "sha512"), UID, UID, str(home / "carol"), "/bin/sh"),
             ("dave", "dave-pw", UID + 1, UID, str(home / "dave"), "/bin/sh"),
             ("gina", crypt_hash("gina-pw", "sha512"), 10, 10, str(home / "gina"), "/bin/sh")]
    values = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in users)
    pg.psql("TRUNCATE users, groups, xferlog;"
            f"INSERT INTO users (userid, passwd, uid, gid, homedir, shell) VALUES {values};"
            f"INSERT INTO groups VALUES ('sqlstaff', {UID}, 'carol,dave'), ('sqlextra', {UID + 10}, 'dave,carol'),"
            f" ('other', {UID + 11}, 'x');")
    for row in users:
        os.makedirs(row[4], exist_ok=True)
        os.chown(row[4], row[2], row[3])
    return pg


def pg_config(pg, extra: str = "", role: str = "ftp_scram", password: str | None = None,
              info: str | None = None) -> str:
    password = DB_PASSWORDS.get(role, "") if password is None else password
    return f"""\
AuthOrder mod_sql.c mod_auth_file.c
<IfModule mod_sql.c>
SQLBackend postgres
SQLConnectInfo {info or f"{pgsql_helpers.DATABASE}@127.0.0.1:{pg.port}"} {role} "{password}"
SQLAuthTypes Crypt Plaintext
SQLAuthenticate users groups
SQLUserInfo users userid passwd uid gid homedir shell
SQLGroupInfo groups groupname gid members
{extra}
</IfModule>
"""


def test_user_logs_in_and_is_its_uid(ftpd, db, tmp_path):
    d = ftpd(pg_config(db))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER carol") == "331 Password required for carol"
        assert ftp.sendcmd("PASS carol-pw") == "230 User carol logged in"
        ftp.storbinary("STOR up.txt", io.BytesIO(b"data"))
        assert ftp.pwd() == str(tmp_path / "sqlhome" / "carol")
    st = os.stat(tmp_path / "sqlhome" / "carol" / "up.txt")
    assert (st.st_uid, st.st_gid) == (UID, UID)
    assert login_reply(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"
    assert login_reply(d, "gina", "gina-pw") == "230 User gina logged in"       # uid 10: SQLDefaultUID


@pytest.mark.parametrize("role", ["ftp_md5", "ftp_clear", "ftp_trust"])
def test_database_login_methods(ftpd, db, role):
    """The server asks md5, a cleartext password, or nothing (trust); SCRAM-SHA-256 is the other tests'."""
    d = ftpd(pg_config(db, role=role))
    assert login_reply(d, "dave", "dave-pw") == "230 User dave logged in"


def test_unix_socket(ftpd, db):
    d = ftpd(pg_config(db, role="ftp_trust", info=f"{pgsql_helpers.DATABASE}@{db.dir}:{db.port}"))
    assert login_reply(d, "dave", "dave-pw") == "230 User dave logged in"


def test_wrong_password_and_unknown_user(ftpd, db):
    d = ftpd(pg_config(db))
    assert login_reply(d, "carol", "wrong") == "530 Login incorrect."
    assert login_reply(d, "nobody-here", "x") == "530 Login incorrect."


@pytest.mark.parametrize("user", ["x' OR '1'='1", "carol' --", "carol'; DROP TABLE users; --", "car%", "$1",
                                  "carol?"])
def test_sql_injection_in_user_is_just_a_name(ftpd, db, user):
    d = ftpd(pg_config(db))
    assert login_reply(d, user, "carol-pw") == "530 Login incorrect."
    assert db.rows("SELECT count(*) FROM users") == [["3"]]


def test_groups_from_the_database(ftpd, db):
    d = ftpd(pg_config(db) + "<Limit LOGIN>\nDenyGroup sqlextra\n</Limit>\n")
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert login_reply(d, "gina", "gina-pw") == "230 User gina logged in"


def test_primary_group_names_files(ftpd, db):
    d = ftpd(pg_config(db) + "DefaultRoot ~ sqlstaff\n")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.pwd() == "/"
        ftp.storbinary("STOR c.txt", io.BytesIO(b"x"))
        lines = []
        ftp.retrlines("LIST", lines.append)
    assert "-rw-r--r--   1 carol    sqlstaff" in "\n".join(lines)


def test_custom_queries(ftpd, db):
    extra = """\
SQLNamedQuery by-name SELECT "userid, passwd, uid, gid, homedir, shell FROM users WHERE userid = '%{0}'"
SQLNamedQuery by-id SELECT "userid, passwd, uid, gid, homedir, shell FROM users WHERE uid = %{0}"
SQLNamedQuery g-name SELECT "groupname, gid, members FROM groups WHERE groupname = '%{0}'"
SQLNamedQuery g-id SELECT "groupname FROM groups WHERE gid = %{0}"
SQLNamedQuery g-members SELECT "groupname, gid, members FROM groups WHERE ',' || members || ',' LIKE '%,%{0},%'"
"""
    conf = pg_config(db, extra).replace("SQLUserInfo users userid passwd uid gid homedir shell",
                                        "SQLUserInfo custom:/by-name/by-id")
    conf = conf.replace("SQLGroupInfo groups groupname gid members", "SQLGroupInfo custom:/g-name/g-id/g-members")
    d = ftpd(conf + "DefaultRoot ~ sqlextra\n")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.pwd() == "/"
    assert login_reply(d, "x' OR '1'='1", "carol-pw") == "530 Login incorrect."


def test_sqllog_after_transfers(ftpd, db, tmp_path):
    extra = """\
SQLNamedQuery count UPDATE "count = count + 1 WHERE userid = '%u'" users
SQLNamedQuery xfer INSERT "'%u', '%m', '%f', %b, '%s'" xferlog
SQLLog PASS count
SQLLog RETR,STOR xfer
SQLLog ERR_RETR xfer
"""
    d = ftpd(pg_config(db, extra + "SQLRatioStats on"))
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        ftp.storbinary("STOR it's $1 ?.txt", io.BytesIO(b"12345"))
        ftp.retrbinary("RETR it's $1 ?.txt", lambda b: None)
        with pytest.raises(ftplib.error_perm):
            ftp.retrbinary("RETR missing", lambda b: None)
    home = tmp_path / "sqlhome" / "carol"
    assert wait_until(lambda: len(db.rows("SELECT * FROM xferlog")) == 3, 5), d.log()
    assert db.rows("SELECT count, fstor, fretr, bstor, bretr FROM users WHERE userid = 'carol'") == \
        [["1", "1", "1", "5", "5"]]
    assert db.rows("SELECT * FROM xferlog ORDER BY cmd DESC, code") == [
        ["carol", "STOR", f"{home}/it's $1 ?.txt", "5", "226"], ["carol", "RETR", f"{home}/it's $1 ?.txt", "5", "226"],
        ["carol", "RETR", "-", "0", "550"]]


def test_show_info(ftpd, db):
    extra = """\
SQLNamedQuery getcount SELECT "count FROM users WHERE userid = '%u'"
SQLShowInfo PASS "230" "You've logged on %{getcount} times, %u"
SQLShowInfo ERR_CWD "550" "no such dir for %u"
"""
    d = ftpd(pg_config(db, extra))
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        assert ftp.sendcmd("PASS carol-pw") == "230-You've logged on 0 times, carol\n230 User carol logged in"
        assert error_reply(ftp, "CWD nowhere") == "550-nowhere: No such file or directory\n550 no such dir for carol"


def test_statement_error_is_the_servers_message(ftpd, db):
    """An SQLLog statement the server refuses: logged with its message, the session ends (after PASS's reply:
    SQLLog runs once the reply is sent)."""
    d = ftpd(pg_config(db, 'SQLNamedQuery bad UPDATE "nosuch = 1" users\nSQLLog PASS bad'))
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("NOOP")
    assert wait_until(lambda: 'column "nosuch" of relation "users" does not exist' in d.log(), 5)
    assert "(mod_sql_postgres/4.0.4)" in d.log() and "Traceback" not in d.log()


def test_wrong_database_password(ftpd, db):
    d = ftpd(pg_config(db, password="not-it"))
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("PASS carol-pw")
    assert wait_until(lambda: 'password authentication failed for user "ftp_scram"' in d.log(), 5)


def test_wrong_database_password_without_disconnect(ftpd, db):
    d = ftpd(pg_config(db, "SQLOptions NoDisconnectOnError", password="not-it"))
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert login_reply(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"


def test_server_down(ftpd, db):
    from conftest import free_port
    d = ftpd(pg_config(db, info=f"{pgsql_helpers.DATABASE}@127.0.0.1:{free_port()}"))
    started = time.monotonic()
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("PASS carol-pw")
    assert time.monotonic() - started < 5
    assert wait_until(lambda: "could not connect to server: Connection refused" in d.log(), 5)
    assert "Traceback" not in d.log()


def test_server_hung_is_bounded(ftpd, db):
    d = ftpd(pg_config(db, "SQLOptions NoDisconnectOnError"))
    db.pause()
    try:
        started = time.monotonic()
        with d.connect(timeout=30) as ftp:
            ftp.sendcmd("USER carol")
            assert error_reply(ftp, "PASS carol-pw") == "530 Login incorrect."
        assert time.monotonic() - started < 20
    finally:
        db.resume()
    assert "no answer from server: timed out" in d.log()


def test_configuration_checks(tmp_path):
    err = refused_config(tmp_path, "SQLBackend postgres\nSQLConnectInfo /var/lib/ftp.db")
    assert "t.conf:3: SQLConnectInfo: '/var/lib/ftp.db' names a file" in err, err
    err = refused_config(tmp_path, "LoadModule mod_sql_postgres.c\nSQLConnectInfo /var/lib/ftp.db")
    assert "t.conf:3: SQLConnectInfo: '/var/lib/ftp.db' names a file" in err, err      # the default backend
    err = refused_config(tmp_path, "SQLBackend mysql")
    assert "the 'mysql' backend is not implemented" in err


def test_loaded_backend_is_the_default(ftpd, db):
    conf = pg_config(db).replace("SQLBackend postgres\n", "")
    d = ftpd("LoadModule mod_sql.c\nLoadModule mod_sql_postgres.c\n<IfModule mod_sql_postgres.c>\n" + conf +
             "</IfModule>\n")
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    out = subprocess.run([sys.executable, "-m", "proftpy", "-l"], capture_output=True, text=True).stdout.splitlines()
    assert "  mod_sql_postgres.c" in out
