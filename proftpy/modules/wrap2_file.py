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
from .wrap import Who, expand_home, load

NAME = "mod_wrap2_file.c"
SOURCES = ("file", "builtin")


def source(word: str) -> str:
    """A directive's `type:info` word, checked: `file:/path` or `builtin:all`."""
    kind, sep, info = word.partition(":")
    if not sep:
        raise ValueError(f"bad table parameter: '{word}'")
    if kind not in SOURCES:
        raise ValueError(f"unsupported table source type: '{kind}'")
    if kind == "file" and not info.startswith(("/", "~")):
        raise ValueError(f"table relative paths are forbidden: '{info}'")
    if kind == "builtin" and info.lower() != "all":
        raise ValueError(f"unknown builtin parameter: '{info}'")
    return word


def open_table(word: str, service: str, who: Who | None, sent_user: str | None) -> ha.Table | None:
    """The table a source names (None: no table, as for a missing file)."""
    kind, _, info = word.partition(":")
    if kind == "builtin":
        return ha.Table(word, [ha.Rule((service,), ("ALL",), None, 1)], [])
    if "%U" in info:
        if not sent_user or "/" in sent_user:
            return None
        info = info.replace("%U", sent_user)
    if info.startswith("~"):
        path = expand_home(info, who) if who is not None else None
        if path is None:
            return None
        info = path
    return load(info)


MODULE = Module(NAME)
