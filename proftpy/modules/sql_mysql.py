"""mod_sql_mysql: mod_sql's MySQL/MariaDB backend (`SQLBackend mysql`), its name for `<IfModule mod_sql_mysql.c>`
and `proftpy -l`. The client is proftpy's own (proftpy/auth/mysql.py), the backend proftpy/auth/sql_mysql.py; the
work is in proftpy/auth/sql.py and modules/sql.py."""

from __future__ import annotations

from ..module import Module

MODULE = Module("mod_sql_mysql.c")
