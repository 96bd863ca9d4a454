"""mod_sql_sqlite: mod_sql's SQLite backend (`SQLBackend sqlite3`), its name for `<IfModule mod_sql_sqlite.c>` and
`proftpy -l`. The driver is Python's sqlite3; the work is in proftpy/auth/sql.py and modules/sql.py."""

from __future__ import annotations

from ..module import Module

MODULE = Module("mod_sql_sqlite.c")
