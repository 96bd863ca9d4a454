"""mod_sql_postgres: mod_sql's PostgreSQL backend (`SQLBackend postgres`), its name for `<IfModule
mod_sql_postgres.c>` and `proftpy -l`. The client is proftpy's own (proftpy/auth/pgsql.py), the backend
proftpy/auth/sql_postgres.py; the work is in proftpy/auth/sql.py and modules/sql.py."""

from __future__ import annotations

from ..module import Module

MODULE = Module("mod_sql_postgres.c")
