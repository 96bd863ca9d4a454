"""Process titles in ProFTPD's formats (`proftpy: (accepting connections)`); `ProcessTitles terse` shows only
`proftpy: processing connection` for every session, as ProFTPD does."""

from __future__ import annotations

from setproctitle import setproctitle as _set

PREFIX = "proftpy: "
MASTER = "(accepting connections)"
IDLE = "(idle)"                 # a pre-forked child waiting for a connection (StartServers, MinSpareServers)
terse = False                   # ProcessTitles terse: the master sets it, its sessions inherit it through fork


def set(text: str) -> None:  # noqa: A001 - mirrors pr_proctitle_set
    # file names that are not UTF-8 arrive as surrogate escapes, which setproctitle cannot encode
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    _set(PREFIX + ("processing connection" if terse and text not in (MASTER, IDLE) else text))
