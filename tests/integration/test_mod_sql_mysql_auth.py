"""How proftpy's MySQL client logs in to the database besides mysql_native_password: MariaDB's ed25519 plugin
(client_ed25519) against a real MariaDB 10.11 (tests/mysql_helpers.py) whose greeting names mysql_native_password,
so the server's auth switch is followed; MySQL 8's caching_sha2_password full authentication without TLS (the
password sealed with the server's RSA key) through tests/mysql8_front.py, which plays MySQL 8 in front of that
MariaDB and has `openssl pkeyutl` open the password. The FTP users come from the database."""

import ftplib
import os
import subprocess

import pytest

import mysql8_front
import mysql_helpers
from conftest import IS_ROOT, free_port, login_reply, wait_until

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="SQL users have their own uids: the daemon must run as root"),
              pytest.mark.slow]

UID = 2500
ED_USER, ED_PASSWORD = mysql_helpers.ED_USER, mysql_helpers.ED_PASSWORD
SHA2_USER, SHA2_PASSWORD = "ftp8", "sha2 secret, longer than the nonce"
SETUP = "CREATE TABLE users (userid TEXT, passwd TEXT, uid INTEGER, gid INTEGER, homedir TEXT, shell TEXT);"


@pytest.fixture(scope="module")
def mariadb():
    assert mysql_helpers.available(), "MariaDB is missing: scripts/install-deps.sh installs mariadb-server"
    server = mysql_helpers.new(SETUP)
    yield server
    server.remove()


@pytest.fixture(scope="module")
def front(mariadb):
    """MySQL 8's caching_sha2_password (always the full authentication) for `ftp8`, in front of MariaDB."""
    f = mysql8_front.Front(mariadb.dir, free_port(), (mariadb.port, mysql_helpers.USER, mysql_helpers.PASSWORD),
                           {SHA2_USER: SHA2_PASSWORD})
    yield f
    f.close()


@pytest.fixture
def erin(mariadb, open_tmp_path):
    """erin (plaintext erin-pw) in the users table, her home made."""
    home = open_tmp_path / "erin"
    os.makedirs(home)
    os.chown(home, UID, UID)
    mariadb.run(f"DELETE FROM users; INSERT INTO users VALUES ('erin', 'erin-pw', {UID}, {UID}, '{home}', '/bin/sh');")
    return home


def config(port: int, user: str, password: str) -> str:
    return f"""\
AuthOrder mod_sql.c
SQLBackend mysql
SQLConnectInfo {mysql_helpers.DATABASE}@127.0.0.1:{port} {user} "{password}"
SQLAuthTypes Plaintext
SQLAuthenticate users
SQLUserInfo users userid passwd uid gid homedir shell
"""


def test_ed25519_account_logs_the_ftp_user_in(ftpd, mariadb, erin):
    plugin = mariadb.rows(f"SELECT json_value(priv, '$.plugin') FROM mysql.global_priv WHERE user = '{ED_USER}' AND host = '127.0.0.1'")
    assert plugin == [["ed25519"]]
    d = ftpd(config(mariadb.port, ED_USER, ED_PASSWORD))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER erin") == "331 Password required for erin"
        assert ftp.sendcmd("PASS erin-pw") == "230 User erin logged in"
        assert ftp.pwd() == str(erin)
    assert login_reply(d, "erin", "wrong") == "530 Login incorrect."


def test_ed25519_account_with_a_wrong_password_is_refused(ftpd, mariadb, erin):
    database_refuses(ftpd(config(mariadb.port, ED_USER, "ed-secret")), ED_USER)


def database_refuses(d, user: str) -> None:
    """erin's PASS ends the session: the database refused the login of `user` (its message in the log)."""
    with d.connect() as ftp:
        ftp.sendcmd("USER erin")
        with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
            ftp.sendcmd("PASS erin-pw")
    assert wait_until(lambda: f"Access denied for user '{user}'@'127.0.0.1'" in d.log(), 5), d.log()
    assert "Traceback" not in d.log()


def test_caching_sha2_full_authentication_seals_the_password(ftpd, front, erin):
    d = ftpd(config(front.port, SHA2_USER, SHA2_PASSWORD))
    assert login_reply(d, "erin", "erin-pw") == "230 User erin logged in"
    assert front.opened[-1] == (SHA2_USER, SHA2_PASSWORD.encode() + b"\0")
    assert len(front.logins[-1][1]) == 256                     # what went over the wire: one RSA-2048 block
    assert SHA2_PASSWORD.encode() not in b"".join(sealed for _, sealed in front.logins)


def test_caching_sha2_wrong_password_is_refused(ftpd, front, erin):
    database_refuses(ftpd(config(front.port, SHA2_USER, "not-it")), SHA2_USER)


def test_libmariadb_speaks_the_same_exchange_with_the_front(front):
    """Debian's `mariadb` client (libmariadb's caching_sha2_password plugin; --skip-ssl, else it counts the
    connection as a secure one and sends the password in clear) logs in through the front too."""
    def client(password: str) -> subprocess.CompletedProcess:
        return subprocess.run(["mariadb", "--no-defaults", "--skip-ssl", "-h", "127.0.0.1", "-P", str(front.port),
                               "-u", SHA2_USER, f"-p{password}", "-N", "-B", mysql_helpers.DATABASE,
                               "-e", "SELECT CURRENT_USER()"], capture_output=True, text=True, timeout=60)
    done = client(SHA2_PASSWORD)
    assert (done.returncode, done.stdout) == (0, f"{mysql_helpers.USER}@127.0.0.1\n"), done.stderr
    assert front.opened[-1] == (SHA2_USER, SHA2_PASSWORD.encode() + b"\0")
    done = client("not-it")
    assert done.returncode == 1 and f"Access denied for user '{SHA2_USER}'" in done.stderr
