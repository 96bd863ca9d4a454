"""mod_sql_postgres's database: `SQLBackend postgres`, `SQLConnectInfo db[@host[:port]] [user [password]]`,
through proftpy's own client (proftpy/auth/pgsql.py).

The server's address is resolved and the TLS context made when the session first opens the connection (before
its chroot, as root: key files may be root's); after that the connection is kept. A lost connection fails the
statement that found it (mod_sql's database error); the next statement opens a new one, unless `SQLOptions
NoReconnect`. Every wait is bounded: CONNECT_TIMEOUT for the connection and login, QUERY_TIMEOUT per statement."""

from __future__ import annotations

import os
import pwd
from typing import TYPE_CHECKING, Sequence

from proftpy import privs
from proftpy.auth.sql import VERSION, ConnectInfo, Database, Driver, SqlError
from proftpy.auth import pgsql

if TYPE_CHECKING:
    import ssl                  # loaded only when an ssl-* option asks for TLS

POSTGRES_VERSION = "mod_sql_postgres/4.0.4"
CONNECT_TIMEOUT = 5.0
QUERY_TIMEOUT = 10.0


class PostgresDatabase(Database):
    """One PostgreSQL connection of a session."""

    version = POSTGRES_VERSION
    warm_check = False

    def __init__(self, info: ConnectInfo, reconnect: bool = True) -> None:
        super().__init__()
        self.info = info
        self.reconnect = reconnect
        self._conn: pgsql.Connection | None = None
        self._addresses: list | None = None
        self._tls: "ssl.SSLContext | None" = None
        self._lost = False

    @property
    def opened(self) -> bool:
        return self._conn is not None

    def where(self) -> str:
        host = self.info.host or pgsql.DEFAULT_SOCKET_DIR
        return f"{self.info.database}@{host}:{self.info.port or pgsql.DEFAULT_PORT}"

    def open(self) -> pgsql.Connection:
        if self._conn is not None:
            return self._conn
        if self._lost and not self.reconnect:
            raise SqlError("the connection to the server was lost (SQLOptions NoReconnect)")
        try:
            if self._addresses is None:
                self._addresses = pgsql.addresses(self.info.host, self.info.port)
                self._tls = self._context()
            error: pgsql.PgError | None = None
            user = self.info.user or pwd.getpwuid(os.geteuid()).pw_name
            for address in self._addresses:
                conn = pgsql.Connection(self.info.host or "", self.info.port or pgsql.DEFAULT_PORT,
                                        self.info.database, user, self.info.password, CONNECT_TIMEOUT, self._tls)
                try:
                    conn.connect(address)
                except pgsql.PgError as e:
                    error = error or e
                    continue
                conn.set_timeout(QUERY_TIMEOUT)
                self._conn = conn
                return conn
        except pgsql.PgError as e:
            error = e
        raise SqlError(f"{error or 'no address to connect to'} ({self.where()})")

    def _context(self) -> "ssl.SSLContext | None":
        """TLS when any ssl-* option is given (then required): ssl-ca verifies the server's certificate chain (not
        its name: libpq's verify-ca), ssl-cert/ssl-key are the client's, ssl-ciphers the TLS 1.2 cipher list."""
        info = self.info
        if not info.ssl:
            return None
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with privs.default_privs().root():
                if info.ssl_option("ca"):
                    ctx.verify_mode = ssl.CERT_REQUIRED
                    ctx.load_verify_locations(info.ssl_option("ca"))
                if info.ssl_option("cert"):
                    ctx.load_cert_chain(info.ssl_option("cert"), info.ssl_option("key"))
            if info.ssl_option("ciphers"):
                ctx.set_ciphers(info.ssl_option("ciphers"))
        except (OSError, ssl.SSLError) as e:
            raise pgsql.PgError(f"SSL setup: {e}", broken=True) from None
        return ctx

    def query(self, sql: str, params: Sequence = ()) -> list[tuple[str | None, ...]]:
        conn = self.open()
        self._journal(sql, params)
        try:
            return conn.query(pgsql.placeholders(sql), params)
        except pgsql.PgError as e:
            if e.broken:
                conn.close()
                self._conn, self._lost = None, True
            raise SqlError(str(e)) from None

    def check(self) -> str | None:
        """A connection of its own, `SELECT 1`, closed (`proftpy -t`)."""
        probe = PostgresDatabase(self.info)
        try:
            probe.query("SELECT 1")
        except SqlError as e:
            return f"{VERSION}: PostgreSQL database '{self.where()}': {e}"
        finally:
            probe.close()
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _unusable(info: ConnectInfo) -> str | None:
    if info.host is None and info.database.startswith("/"):
        return (f"'{info.database}' names a file: the postgres backend needs database[@host[:port]] "
                "(SQLBackend sqlite3 for an SQLite file)")
    return None


DRIVER = Driver("postgres", "mod_sql_postgres.c", POSTGRES_VERSION,
                lambda info, options: PostgresDatabase(info, "NoReconnect" not in options), _unusable)
