"""mod_wrap2_file: the `file:` tables of mod_wrap2 (`WrapTables file:/etc/hosts.allow file:/etc/hosts.deny`), and
mod_wrap2's own `builtin:all` (a deny table that says `ALL`, for "mostly closed" rules).

A `file:` path is absolute, or starts with `~/` (the user's home) or `~user/`; `%U` in it is the name sent with USER
(a name with a `/` in it gives no table: it could walk out of the directory). The file is read in the
hosts_access(5) language (access/hostsaccess.py): daemon lists are matched as libwrap matches them, where
ProFTPD's mod_wrap2_file only takes lines whose daemon list is exactly the service name or `ALL`.
"""

from __future__ import annotations

from ..access import hostsaccess as ha
from ..module import Module
from .wrap import Opening, TableSource, expand_home, load

NAME = "mod_wrap2_file.c"


def _check_file(info: str) -> None:
    if not info.startswith(("/", "~")):
        raise ValueError(f"table relative paths are forbidden: '{info}'")


def _open_file(info: str, opening: Opening) -> ha.Table | None:
    """The file's table (None: no table, as for a missing file)."""
    if "%U" in info:
        if not opening.sent or "/" in opening.sent:
            return None
        info = info.replace("%U", opening.sent)
    if info.startswith("~"):
        path = expand_home(info, opening.who) if opening.who is not None else None
        if path is None:
            return None
        info = path
    return load(info)


def _check_builtin(info: str) -> None:
    if info.lower() != "all":
        raise ValueError(f"unknown builtin parameter: '{info}'")


def _open_builtin(info: str, opening: Opening) -> ha.Table:
    return ha.Table("builtin:" + info, [ha.Rule((opening.service,), ("ALL",), None, 1)], [])


SOURCES = (TableSource("file", _check_file, _open_file), TableSource("builtin", _check_builtin, _open_builtin))
MODULE = Module(NAME)
