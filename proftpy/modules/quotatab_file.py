"""mod_quotatab_file: the `file:` source of QuotaLimitTable and QuotaTallyTable (proftpy/quotatab.py reads and
writes them; mod_quotatab uses them). A module of its own so that `<IfModule mod_quotatab_file.c>` holds."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from .. import privs, quotatab as qt
from ..module import Module

if TYPE_CHECKING:
    from ..session import Session


def _parse(info: str, kind: str) -> str:
    if not info:
        raise ValueError("file: needs the table's path")
    return os.path.join("/", info)              # relative to / (ProFTPD's daemon runs in /)


def _open(session: "Session", path: str, kind: str, lock_fd: int | None, log: Callable[[str], None]) -> qt.Table | None:
    """The table file, opened as root (the session keeps it after the chroot and the switch to the user)."""
    directive = "QuotaLimitTable" if kind == "limit" else "QuotaTallyTable"
    try:
        with privs.default_privs().root():
            return qt.Table.open(path, kind, writable=kind == "tally")
    except OSError as e:
        log(f"error: unable to open {directive}: {e.strerror}")
    except qt.BadTable:
        log(f"error: unable to use {directive}: bad table header")
    return None


SOURCE = qt.Source("file", _parse, _open)
MODULE = Module("mod_quotatab_file.c")
