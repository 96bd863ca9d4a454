"""mod_sql_mysql's database: `SQLBackend mysql`, `SQLConnectInfo db[@host[:port]] [user [password]]` (a host
starting with `/` is the server's Unix socket), MySQL or MariaDB through proftpy's own client
(proftpy/auth/mysql.py); the connection's life is auth/sql_server.py's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proftpy.auth import mysql
from proftpy.auth.sql import Driver
from proftpy.auth.sql_server import CONNECT_TIMEOUT, ServerDatabase, needs_server

if TYPE_CHECKING:
    import ssl

MYSQL_VERSION = "mod_sql_mysql/4.0.9"


class MysqlDatabase(ServerDatabase):
    """One MySQL/MariaDB connection of a session; statements are prepared, `?` its own placeholder."""

    version = MYSQL_VERSION
    engine = "MySQL"
    default_host = mysql.DEFAULT_SOCKET
    default_port = mysql.DEFAULT_PORT
    error = mysql.MySqlError

    def addresses(self) -> list:
        return mysql.addresses(self.info.host, self.info.port)

    def client(self, user: str, tls: "ssl.SSLContext | None") -> mysql.Connection:
        return mysql.Connection(self.info.host or "localhost", self.info.database, user, self.info.password,
                                CONNECT_TIMEOUT, tls)


DRIVER = Driver("mysql", "mod_sql_mysql.c", MYSQL_VERSION,
                lambda info, options: MysqlDatabase(info, "NoReconnect" not in options), needs_server("mysql"))
