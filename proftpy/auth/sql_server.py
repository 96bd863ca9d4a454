"""What mod_sql's network backends share (PostgreSQL: auth/sql_postgres.py, MySQL/MariaDB: auth/sql_mysql.py): a
session's one connection to a database server, its client being proftpy's own (auth/pgsql.py, auth/mysql.py).

The server's address is resolved and the TLS context made when the session first opens the connection (before
its chroot, as root: key files may be root's); after that the connection is kept. A connection the server closed
while it was idle (MySQL's wait_timeout, a server restart) is seen before the next statement is sent, and a new
one is opened, unless `SQLOptions NoReconnect` (ProFTPD's clients reconnect too); a connection lost during a
statement fails that statement (mod_sql's database error: it may have run), and the next one reconnects. Every
wait is bounded: CONNECT_TIMEOUT for the connection and login, QUERY_TIMEOUT per statement."""

from __future__ import annotations

import os
import pwd
import select
from typing import TYPE_CHECKING, Any, Sequence

from proftpy import privs
from proftpy.auth.sql import VERSION, ConnectInfo, Database, SqlError

if TYPE_CHECKING:
    import ssl                  # loaded only when an ssl-* option asks for TLS

CONNECT_TIMEOUT = 5.0
QUERY_TIMEOUT = 10.0


class ServerDatabase(Database):
    """One connection of a session to SQLConnectInfo's server. A backend says how to find the server
    (`addresses`), how to make a client (`client`), which exception its client raises (`error`: with `broken`
    when the connection is unusable), how its SQL takes parameters (`rewrite`), and names itself (`engine`,
    `default_host`, `default_port`)."""

    warm_check = False
    engine = ""
    default_host = ""
    default_port = 0
    error: type[Exception] = Exception

    def __init__(self, info: ConnectInfo, reconnect: bool = True) -> None:
        super().__init__()
        self.info = info
        self.reconnect = reconnect
        self._conn: Any = None
        self._addresses: list | None = None
        self._tls: "ssl.SSLContext | None" = None
        self._lost = False

    # what a backend says --------------------------------------------------------------------------------------
    def addresses(self) -> list:
        raise NotImplementedError

    def client(self, user: str, tls: "ssl.SSLContext | None") -> Any:
        raise NotImplementedError

    def rewrite(self, sql: str) -> str:
        return sql

    # the connection -------------------------------------------------------------------------------------------
    @property
    def opened(self) -> bool:
        return self._conn is not None

    def where(self) -> str:
        host = self.info.host or self.default_host
        return f"{self.info.database}@{host}" + ("" if host.startswith("/") and not self.info.port else
                                                 f":{self.info.port or self.default_port}")

    def open(self) -> Any:
        if self._conn is not None and _closed_by_server(self._conn.sock):
            self._conn.close()
            self._conn, self._lost = None, True
        if self._conn is not None:
            return self._conn
        if self._lost and not self.reconnect:
            raise SqlError("the connection to the server was lost (SQLOptions NoReconnect)")
        error: Exception | None = None
        try:
            if self._addresses is None:
                self._addresses = self.addresses()
                self._tls = self._context()
            user = self.info.user or pwd.getpwuid(os.geteuid()).pw_name
            for address in self._addresses:
                conn = self.client(user, self._tls)
                try:
                    conn.connect(address)
                except self.error as e:
                    error = error or e
                    continue
                conn.set_timeout(QUERY_TIMEOUT)
                self._conn = conn
                return conn
        except self.error as e:
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
            raise SqlError(f"SSL setup: {e} ({self.where()})") from None
        return ctx

    def query(self, sql: str, params: Sequence = ()) -> list[tuple[str | None, ...]]:
        conn = self.open()
        self._journal(sql, params)
        try:
            return conn.query(self.rewrite(sql), params)
        except self.error as e:
            if getattr(e, "broken", False):
                conn.close()
                self._conn, self._lost = None, True
            raise SqlError(str(e)) from None

    def check(self) -> str | None:
        """A connection of its own, `SELECT 1`, closed (`proftpy -t`)."""
        probe = type(self)(self.info)
        try:
            probe.query("SELECT 1")
        except SqlError as e:
            return f"{VERSION}: {self.engine} database '{self.where()}': {e}"
        finally:
            probe.close()
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _closed_by_server(sock: Any) -> bool:
    """Whether an idle connection has something to read: the server's goodbye (or its end of the stream)."""
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def needs_server(backend: str):
    """A network backend's `Driver.unusable`: a file path is SQLite's form, not a server's."""
    def unusable(info: ConnectInfo) -> str | None:
        if info.host is None and info.database.startswith("/"):
            return (f"'{info.database}' names a file: the {backend} backend needs database[@host[:port]] "
                    "(SQLBackend sqlite3 for an SQLite file)")
        return None
    return unusable
