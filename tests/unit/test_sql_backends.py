"""mod_sql's backends: SQLConnectInfo read lexically, the backend chosen by SQLBackend, what each backend refuses."""

import pytest

from proftpy.auth.sql import ConnectInfo, parse_connect_info
from proftpy.auth.sql_sqlite import DRIVER as SQLITE


def test_connect_info_forms():
    assert parse_connect_info(["/var/lib/ftp.db", "u", "p", "perconn"]) == ConnectInfo(
        "/var/lib/ftp.db", None, None, "u", "p", "perconn")
    assert parse_connect_info(["ftp"]) == ConnectInfo("ftp")
    assert parse_connect_info(["ftp@db.example"]) == ConnectInfo("ftp", "db.example")
    assert parse_connect_info(["ftp@127.0.0.1:6000", "proftpd", "s3cret"]) == ConnectInfo(
        "ftp", "127.0.0.1", 6000, "proftpd", "s3cret")
    info = parse_connect_info(["ftp@h", "u", "ssl-ca:/ca.pem", "p", "ssl-cert:/c.pem", "ssl-key:/k.pem",
                               "ssl-ciphers:HIGH"])
    assert (info.user, info.password, info.policy) == ("u", "p", "")
    assert info.ssl_option("ca") == "/ca.pem" and info.ssl_option("ciphers") == "HIGH"
    assert info.ssl_option("cert") == "/c.pem" and info.ssl_option("key") == "/k.pem"


@pytest.mark.parametrize("args,message", [
    ([], "requires 1 to 8 parameters"),
    (["db@host:0"], "the port must be a number"),
    (["db@host:x"], "the port must be a number"),
    (["@host"], "is not database@host"),
    (["db@"], "is not database@host"),
    (["db", "u", "p", "perconn", "extra"], "too many parameters"),
    (["db", "ssl-cert:"], "has no value"),
    (["db", "ssl-bogus:x"], "unknown SQLConnectInfo option"),
])
def test_connect_info_refused(args, message):
    with pytest.raises(ValueError, match=message):
        parse_connect_info(args)


def test_sqlite_uses_absolute_paths_only():
    assert SQLITE.unusable(parse_connect_info(["/var/lib/ftp.db"])) is None
    assert "names a database on a server" in SQLITE.unusable(parse_connect_info(["ftp@localhost"]))
    assert "absolute path" in SQLITE.unusable(parse_connect_info(["ftp.db"]))


def test_postgres_uses_server_forms():
    from proftpy.auth.sql_postgres import DRIVER as POSTGRES
    for form in (["ftp"], ["ftp@db.example"], ["ftp@127.0.0.1:6000"], ["ftp@/run/postgresql:5433"]):
        assert POSTGRES.unusable(parse_connect_info(form)) is None
    assert "names a file" in POSTGRES.unusable(parse_connect_info(["/var/lib/ftp.db"]))
    assert parse_connect_info(["ftp@/run/postgresql:5433"]) == ConnectInfo("ftp", "/run/postgresql", 5433)
