"""How proftpy's MySQL client logs in to the database besides mysql_native_password: MariaDB's ed25519 plugin
(client_ed25519) against a real MariaDB 10.11 (tests/mysql_helpers.py) whose greeting names mysql_native_password,
so the server's auth switch is followed; the FTP user comes from that database."""

import ftplib
import os

import pytest

import mysql_helpers
from conftest import IS_ROOT, login_reply, wait_until

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="SQL users have their own uids: the daemon must run as root"),
              pytest.mark.slow]

UID = 2500
ED_USER, ED_PASSWORD = mysql_helpers.ED_USER, mysql_helpers.ED_PASSWORD
SETUP = "CREATE TABLE users (userid TEXT, passwd TEXT, uid INTEGER, gid INTEGER, homedir TEXT, shell TEXT);"


@pytest.fixture(scope="module")
def mariadb():
    assert mysql_helpers.available(), "MariaDB is missing: scripts/install-deps.sh installs mariadb-server"
    server = mysql_helpers.new(SETUP)
    yield server
    server.remove()


@pytest.fixture
def erin(mariadb, open_tmp_path):
    """erin (plaintext erin-pw) in the users table, her home made."""
    home = open_tmp_path / "erin"
    os.makedirs(home)
    os.chown(home, UID, UID)
    mariadb.run(f"DELETE FROM users; INSERT INTO users VALUES ('erin', 'erin-pw', {UID}, {UID}, '{home}', '/bin/sh');")
    return home


def config(mariadb, user: str, password: str) -> str:
    return f"""\
AuthOrder mod_sql.c
SQLBackend mysql
SQLConnectInfo {mysql_helpers.DATABASE}@127.0.0.1:{mariadb.port} {user} "{password}"
SQLAuthTypes Plaintext
SQLAuthenticate users
SQLUserInfo users userid passwd uid gid homedir shell
"""


def test_ed25519_account_logs_the_ftp_user_in(ftpd, mariadb, erin):
    plugin = mariadb.rows(f"SELECT json_value(priv, '$.plugin') FROM mysql.global_priv WHERE user = '{ED_USER}' AND host = '127.0.0.1'")
    assert plugin == [["ed25519"]]
    d = ftpd(config(mariadb, ED_USER, ED_PASSWORD))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER erin") == "331 Password required for erin"
        assert ftp.sendcmd("PASS erin-pw") == "230 User erin logged in"
        assert ftp.pwd() == str(erin)
    assert login_reply(d, "erin", "wrong") == "530 Login incorrect."


def test_ed25519_account_with_a_wrong_password_is_refused(ftpd, mariadb, erin):
    d = ftpd(config(mariadb, ED_USER, "ed-secret"))
    with d.connect() as ftp:
        ftp.sendcmd("USER erin")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("PASS erin-pw")
    assert wait_until(lambda: f"Access denied for user '{ED_USER}'@'127.0.0.1'" in d.log(), 5), d.log()
    assert "Traceback" not in d.log()
