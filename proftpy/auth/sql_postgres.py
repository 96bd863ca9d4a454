"""mod_sql_postgres's database: `SQLBackend postgres`, `SQLConnectInfo db[@host[:port]] [user [password]]`,
through proftpy's own client (proftpy/auth/pgsql.py); the connection's life is auth/sql_server.py's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proftpy.auth import pgsql
from proftpy.auth.sql import Driver
from proftpy.auth.sql_server import CONNECT_TIMEOUT, ServerDatabase, needs_server

if TYPE_CHECKING:
    import ssl

POSTGRES_VERSION = "mod_sql_postgres/4.0.4"


class PostgresDatabase(ServerDatabase):
    """One PostgreSQL connection of a session; `?` placeholders become `$1..$n`."""

    version = POSTGRES_VERSION
    engine = "PostgreSQL"
    default_host = pgsql.DEFAULT_SOCKET_DIR
    default_port = pgsql.DEFAULT_PORT
    error = pgsql.PgError

    def addresses(self) -> list:
        return pgsql.addresses(self.info.host, self.info.port)

    def client(self, user: str, tls: "ssl.SSLContext | None") -> pgsql.Connection:
        return pgsql.Connection(self.info.host or "", self.info.port or pgsql.DEFAULT_PORT, self.info.database,
                                user, self.info.password, CONNECT_TIMEOUT, tls)

    def rewrite(self, sql: str) -> str:
        return pgsql.placeholders(sql)


DRIVER = Driver("postgres", "mod_sql_postgres.c", POSTGRES_VERSION,
                lambda info, options: PostgresDatabase(info, "NoReconnect" not in options), needs_server("postgres"))
