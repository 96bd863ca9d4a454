"""mod_sql_sqlite's database: the SQLite file of `SQLConnectInfo /path/to/file.db` through Python's sqlite3.

Opened read-write and never created (ProFTPD does not know the schema), before the session's chroot (as root, as
ProFTPD does) and never again after it; in-memory journal (the chroot hides the directory); a bounded busy wait
(ProFTPD retries a locked database for ever)."""

from __future__ import annotations

import sqlite3
import urllib.parse
from typing import Any, Sequence

from proftpy import privs
from proftpy.auth import _root_identity
from proftpy.auth.sql import VERSION, ConnectInfo, Database, Driver, SqlError

SQLITE_VERSION = "mod_sql_sqlite/0.4"
BUSY_SECONDS = 3.0              # how long a statement waits for a locked database before it fails


class SqliteDatabase(Database):
    """The SQLite database of SQLConnectInfo. A process that has changed its root never opens it (the user could
    plant a database of their own there)."""

    version = SQLITE_VERSION

    def __init__(self, path: str, busy_seconds: float = BUSY_SECONDS) -> None:
        super().__init__()
        self.path = path
        self.busy_seconds = busy_seconds
        self._conn: sqlite3.Connection | None = None
        self._root = _root_identity()

    @property
    def opened(self) -> bool:
        return self._conn is not None

    def open(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if _root_identity() != self._root:
            raise SqlError(f"unable to open database file '{self.path}' after chroot")
        p = privs.default_privs()
        try:
            with p.root():
                conn = _connect(self.path, self.busy_seconds)
        except sqlite3.Error as e:
            raise SqlError(f"{e}: {self.path}") from None
        self._conn = conn
        return conn

    def query(self, sql: str, params: Sequence = ()) -> list[tuple[str | None, ...]]:
        conn = self.open()
        self._journal(sql, params)
        try:
            rows = conn.execute(sql, params).fetchall()
        except (sqlite3.Error, OverflowError) as e:
            raise SqlError(str(e)) from None
        return [tuple(None if v is None else _text(v) for v in row) for row in rows]

    def check(self) -> str | None:
        """Opened and closed (a locked database is usable: its lock will pass)."""
        try:
            conn = _connect(self.path, 0.1)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as e:
            if "locked" in str(e):
                return None
            return f"{VERSION}: SQLite database '{self.path}': {e}"
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _connect(path: str, busy_seconds: float) -> sqlite3.Connection:
    """Read-write, never created, autocommit, in-memory journal."""
    uri = "file:" + urllib.parse.quote(path) + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=busy_seconds, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = MEMORY").fetchall()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _unusable(info: ConnectInfo) -> str | None:
    if info.host is not None:
        return (f"'{info.database}@{info.host}' names a database on a server (database@host[:port]): the sqlite3 "
                "backend needs the absolute path of an SQLite file (SQLBackend postgres for a PostgreSQL server)")
    if not info.database.startswith("/"):
        return f"'{info.database}' is not the absolute path of an SQLite database file"
    return None


DRIVER = Driver("sqlite3", "mod_sql_sqlite.c", SQLITE_VERSION, lambda info, options: SqliteDatabase(info.path),
                _unusable)
