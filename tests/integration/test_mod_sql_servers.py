"""mod_sql with a database server: each test runs against PostgreSQL 15 (mod_sql_postgres; tests/pgsql_helpers.py)
and MariaDB 10.11 (mod_sql_mysql; tests/mysql_helpers.py), servers the tests start and stop themselves, through
proftpy's own clients: logins of users and groups, custom:/ queries, SQLLog, SQLShowInfo, names that try SQL,
TLS, and a server that is down, hung, refuses a statement or the password."""

import ftplib
import os
import subprocess
import time
from dataclasses import dataclass

import pytest

import mysql_helpers
import pgsql_helpers
import sql_checks
from dbserver_helpers import self_signed
from conftest import IS_ROOT, PASSWORDS, again, error_reply, free_port, login_reply, wait_until
from proftpy.auth.crypt import crypt_hash

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


@dataclass
class Backend:
    """One database server as the tests see it: its SQLBackend word, the server, the account proftpy logs in
    with, SQLConnectInfo's forms, and what differs between engines."""

    name: str
    server: object
    user: str
    password: str
    tcp: str                    # database@127.0.0.1:port
    local: str                  # over the Unix socket
    version: str                # in mod_sql's error lines
    bad_column: str             # the server's message for `UPDATE users SET nosuch = 1`
    denied: str                 # its message for a wrong password
    tls_query: str              # SELECT: `yes` when this connection has TLS, else `no`

    def run(self, sql: str) -> str:
        return self.server.run(sql)

    def rows(self, sql: str) -> list[list[str]]:
        return self.server.rows(sql)


def _postgres() -> Backend:
    assert pgsql_helpers.available(), "PostgreSQL 15 is missing: scripts/install-deps.sh installs it"
    pg = pgsql_helpers.new(SCHEMA)
    role = "ftp_scram"
    return Backend("postgres", pg, role, pgsql_helpers.PASSWORDS[role], f"ftpdb@127.0.0.1:{pg.port}",
                   f"ftpdb@{pg.dir}:{pg.port}", "mod_sql_postgres/4.0.4",
                   'column "nosuch" of relation "users" does not exist',
                   f'password authentication failed for user "{role}"',
                   "CASE WHEN ssl THEN 'yes' ELSE 'no' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()")


def _mysql() -> Backend:
    assert mysql_helpers.available(), "MariaDB is missing: scripts/install-deps.sh installs mariadb-server"
    my = mysql_helpers.new(SCHEMA)
    return Backend("mysql", my, mysql_helpers.USER, mysql_helpers.PASSWORD, f"ftpdb@127.0.0.1:{my.port}",
                   f"ftpdb@{my.socket}", "mod_sql_mysql/4.0.9", "Unknown column 'nosuch' in 'SET'",
                   f"Access denied for user '{mysql_helpers.USER}'@'127.0.0.1'",
                   "IF(VARIABLE_VALUE = '', 'no', 'yes') FROM information_schema.SESSION_STATUS "
                   "WHERE VARIABLE_NAME = 'Ssl_cipher'")


@pytest.fixture(scope="module", params=["postgres", "mysql"])
def backend(request):
    b = _postgres() if request.param == "postgres" else _mysql()
    yield b
    b.server.remove()


@pytest.fixture
def tmp_path(open_tmp_path):
    """SQL users log in without chroot: every parent of their homes must be traversable."""
    return open_tmp_path


def literal(value) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


@pytest.fixture
def db(backend, tmp_path):
    """carol (crypt), dave (plaintext), gina (below SQLMinID); groups sqlstaff (carol, dave), sqlextra (dave, carol)."""
    home = tmp_path / "sqlhome"
    users = [("carol", crypt_hash("carol-pw", "sha512"), UID, UID, str(home / "carol"), "/bin/sh"),
             ("dave", "dave-pw", UID + 1, UID, str(home / "dave"), "/bin/sh"),
             ("gina", crypt_hash("gina-pw", "sha512"), 10, 10, str(home / "gina"), "/bin/sh")]
    values = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in users)
    backend.run("DELETE FROM users; DELETE FROM groups; DELETE FROM xferlog;"
                f"INSERT INTO users (userid, passwd, uid, gid, homedir, shell) VALUES {values};"
                f"INSERT INTO groups VALUES ('sqlstaff', {UID}, 'carol,dave'), ('sqlextra', {UID + 10}, 'dave,carol'),"
                f" ('other', {UID + 11}, 'x');")
    for row in users:
        os.makedirs(row[4], exist_ok=True)
        os.chown(row[4], row[2], row[3])
    return backend


def sql_config(db: Backend, extra: str = "", password: str | None = None, info: str | None = None) -> str:
    return f"""\
AuthOrder mod_sql.c mod_auth_file.c
<IfModule mod_sql.c>
SQLBackend {db.name}
SQLConnectInfo {info or db.tcp} {db.user} "{db.password if password is None else password}"
SQLAuthTypes Crypt Plaintext
SQLAuthenticate users groups
SQLUserInfo users userid passwd uid gid homedir shell
SQLGroupInfo groups groupname gid members
{extra}
</IfModule>
"""


def test_user_logs_in_and_is_its_uid(ftpd, db, tmp_path):
    d = ftpd(sql_config(db))
    sql_checks.logs_in_as_its_uid(d, tmp_path / "sqlhome" / "carol", UID, UID)
    assert login_reply(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"
    assert login_reply(d, "gina", "gina-pw") == "230 User gina logged in"       # uid 10: SQLDefaultUID


def test_unix_socket(ftpd, db):
    d = ftpd(sql_config(db, info=db.local))
    assert login_reply(d, "dave", "dave-pw") == "230 User dave logged in"


def test_wrong_password_and_unknown_user(ftpd, db):
    d = ftpd(sql_config(db))
    assert login_reply(d, "carol", "wrong") == "530 Login incorrect."
    assert login_reply(d, "nobody-here", "x") == "530 Login incorrect."


@pytest.mark.parametrize("user", ["x' OR '1'='1", "carol' --", "carol'; DROP TABLE users; --", "car%", "$1",
                                  "carol?", "carol\\' OR 1=1 -- "])
def test_sql_injection_in_user_is_just_a_name(ftpd, db, user):
    d = ftpd(sql_config(db))
    assert login_reply(d, user, "carol-pw") == "530 Login incorrect."
    assert db.rows("SELECT count(*) FROM users") == [["3"]]


def test_groups_from_the_database(ftpd, db):
    d = ftpd(sql_config(db) + "<Limit LOGIN>\nDenyGroup sqlextra\n</Limit>\n")
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert login_reply(d, "gina", "gina-pw") == "230 User gina logged in"


def test_primary_group_names_files(ftpd, db):
    sql_checks.chrooted_by_group(ftpd(sql_config(db) + "DefaultRoot ~ sqlstaff\n"))


def test_custom_queries(ftpd, db):
    extra = sql_checks.USER_QUERIES + """\
SQLNamedQuery g-name SELECT "groupname, gid, members FROM groups WHERE groupname = '%{0}'"
SQLNamedQuery g-id SELECT "groupname FROM groups WHERE gid = %{0}"
SQLNamedQuery g-members SELECT "groupname, gid, members FROM groups WHERE CONCAT(',', members, ',') LIKE '%,%{0},%'"
"""
    conf = sql_checks.custom_user_info(sql_config(db, extra))
    conf = conf.replace("SQLGroupInfo groups groupname gid members", "SQLGroupInfo custom:/g-name/g-id/g-members")
    d = ftpd(conf + "DefaultRoot ~ sqlextra\n")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.pwd() == "/"
    assert login_reply(d, "x' OR '1'='1", "carol-pw") == "530 Login incorrect."


def test_sqllog_after_transfers(ftpd, db, tmp_path):
    d = ftpd(sql_config(db, sql_checks.SQLLOG + "SQLRatioStats on\n"))
    sql_checks.transfers(d, "it's $1 ?.txt")
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
    sql_checks.shows_info(ftpd(sql_config(db, extra)))


def test_statement_error_is_the_servers_message(ftpd, db):
    """An SQLLog statement the server refuses: logged with its message, the session ends (after PASS's reply:
    SQLLog runs once the reply is sent)."""
    d = ftpd(sql_config(db, 'SQLNamedQuery bad UPDATE "nosuch = 1" users\nSQLLog PASS bad'))
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("NOOP")
    assert wait_until(lambda: db.bad_column in d.log(), 5), d.log()
    assert f"({db.version})" in d.log() and "Traceback" not in d.log()


def test_wrong_database_password(ftpd, db):
    d = ftpd(sql_config(db, password="not-it"))
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("PASS carol-pw")
    assert wait_until(lambda: db.denied in d.log(), 5), d.log()


def test_wrong_database_password_without_disconnect(ftpd, db):
    d = ftpd(sql_config(db, "SQLOptions NoDisconnectOnError", password="not-it"))
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert login_reply(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"


def test_server_down(ftpd, db):
    d = ftpd(sql_config(db, info=f"ftpdb@127.0.0.1:{free_port()}"))
    started = time.monotonic()
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("PASS carol-pw")
    assert time.monotonic() - started < 5
    assert wait_until(lambda: "Connection refused" in d.log(), 5), d.log()
    assert "Traceback" not in d.log()


def test_server_hung_is_bounded(ftpd, db):
    d = ftpd(sql_config(db, "SQLOptions NoDisconnectOnError"))
    db.server.pause()
    try:
        started = time.monotonic()
        with d.connect(timeout=30) as ftp:
            ftp.sendcmd("USER carol")
            assert error_reply(ftp, "PASS carol-pw") == "530 Login incorrect."
        assert time.monotonic() - started < 20
    finally:
        db.server.resume()
    assert "timed out" in d.log()


def test_tls_with_the_servers_certificate(ftpd, db):
    """ssl-ca: TLS, the server's certificate verified; what the server says of the connection shows it."""
    extra = f'SQLNamedQuery tls SELECT "{db.tls_query}"\nSQLShowInfo PASS "230" "tls %{{tls}}"'
    d = ftpd(sql_config(db, extra, info=f"{db.tcp} ssl-ca:{db.server.cert}"))
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        assert ftp.sendcmd("PASS carol-pw") == "230-tls yes\n230 User carol logged in"
    d = again(ftpd, d, sql_config(db, extra))
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        assert ftp.sendcmd("PASS carol-pw") == "230-tls no\n230 User carol logged in"


def test_tls_with_a_certificate_it_does_not_trust(ftpd, db, tmp_path):
    other = tmp_path / "other.pem"
    self_signed(other, tmp_path / "other.key", name="someone-else")
    d = ftpd(sql_config(db, "SQLOptions NoDisconnectOnError", info=f"{db.tcp} ssl-ca:{other}"))
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert "certificate verify failed" in d.log()


def test_backend_module_loaded_is_the_default(ftpd, db):
    module = f"mod_sql_{db.name}.c"
    conf = sql_config(db).replace(f"SQLBackend {db.name}\n", "")
    d = ftpd(f"LoadModule mod_sql.c\nLoadModule {module}\n<IfModule {module}>\n{conf}</IfModule>\n")
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    import sys
    out = subprocess.run([sys.executable, "-m", "proftpy", "-l"], capture_output=True, text=True).stdout.splitlines()
    assert f"  {module}" in out


@pytest.mark.parametrize("option", ["", "SQLOptions NoReconnect"])
def test_connection_closed_by_the_server(ftpd, db, option):
    """The server ends proftpy's idle connection: the next statement opens a new one (ProFTPD's clients
    reconnect), unless NoReconnect, where the session ends."""
    extra = 'SQLNamedQuery who SELECT "userid FROM users WHERE userid = \'%u\'"\nSQLShowInfo NOOP "200" "as %{who}"\n'
    d = ftpd(sql_config(db, extra + option))
    kill = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'ftp_scram'"
            if db.name == "postgres" else
            "SELECT GROUP_CONCAT(CONCAT('KILL ', id, ';') SEPARATOR ' ') FROM information_schema.PROCESSLIST "
            "WHERE user = 'ftp_native'")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.sendcmd("NOOP") == "200-NOOP command successful\n200 as carol"
        statement = db.run(kill)
        if db.name == "mysql":
            db.run(statement.strip())
        time.sleep(0.5)
        if option:
            with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
                ftp.sendcmd("NOOP")
        else:
            assert ftp.sendcmd("NOOP") == "200-NOOP command successful\n200 as carol"
    assert "Traceback" not in d.log()
