"""mod_sql_postgres's own parts (what every server backend does is in test_mod_sql_servers.py): the database logins
PostgreSQL may ask for besides SCRAM-SHA-256 (md5, a cleartext password, trust), and the SQLConnectInfo forms
refused when the configuration loads."""

import pytest

import pgsql_helpers
from conftest import IS_ROOT, configtest, free_port, login_reply, refused_config
from test_mod_sql_servers import SCHEMA, Backend, sql_config

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="SQL users have their own uids: the daemon must run as root"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def pg():
    assert pgsql_helpers.available(), "PostgreSQL 15 is missing: scripts/install-deps.sh installs it"
    server = pgsql_helpers.new(SCHEMA + "INSERT INTO users (userid, passwd, uid, gid, homedir, shell) "
                                        "VALUES ('dave', 'dave-pw', 2501, 2500, '/tmp', '/bin/sh');")
    yield server
    server.remove()


@pytest.mark.parametrize("role", ["ftp_md5", "ftp_clear", "ftp_trust"])
def test_database_login_methods(ftpd, pg, role):
    """The server asks md5, a cleartext password, or nothing (trust); SCRAM-SHA-256 is the other tests'."""
    db = Backend("postgres", pg, role, pgsql_helpers.PASSWORDS.get(role, ""), f"ftpdb@127.0.0.1:{pg.port}", "", "",
                 "", "", "")
    d = ftpd(sql_config(db))
    assert login_reply(d, "dave", "dave-pw") == "230 User dave logged in"


def test_configuration_checks(tmp_path):
    err = refused_config(tmp_path, "SQLBackend postgres\nSQLConnectInfo /var/lib/ftp.db")
    assert "t.conf:3: SQLConnectInfo: '/var/lib/ftp.db' names a file" in err, err
    err = refused_config(tmp_path, "LoadModule mod_sql_postgres.c\nSQLConnectInfo /var/lib/ftp.db")
    assert "t.conf:3: SQLConnectInfo: '/var/lib/ftp.db' names a file" in err, err      # the default backend
    err = refused_config(tmp_path, "SQLBackend mysql\nSQLConnectInfo /var/lib/ftp.db")
    assert "t.conf:3: SQLConnectInfo: '/var/lib/ftp.db' names a file: the mysql backend" in err, err
    err = refused_config(tmp_path, "SQLBackend odbc")
    assert "the 'odbc' backend is not implemented" in err


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
def test_configtest_warns_of_a_server_it_cannot_reach(tmp_path, backend):
    """`proftpy -t` connects (the daemon's master never does): a server that is not there is a warning, as an
    SQLite file that does not open is (ProFTPD starts, its logins fail)."""
    res = configtest(tmp_path, f"Port 0\nSQLBackend {backend}\nSQLConnectInfo ftpdb@127.0.0.1:{free_port()} u p\n")
    assert res.returncode == 0 and "Syntax OK" in res.stdout, res.stderr
    assert "warning: mod_sql/4.5: " in res.stderr and "ftpdb@127.0.0.1" in res.stderr
    assert "Connection refused" in res.stderr and "Traceback" not in res.stderr
