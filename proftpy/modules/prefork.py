"""The pool of pre-forked idle children (part of mod_core here; ProFTPD forks at each accept): the directives
StartServers, MinSpareServers, MaxSpareServers, modelled on Apache's prefork MPM, and their `-t` check.

The pool itself is the master's (master.py: `Master.top_up`, `Master.hand_over`; sizes in proftpy/prefork.py):
the master still accepts, runs the pre-steps and the vetoes, then hands the socket to an idle child over its
channel, or forks one as before when none is idle. All three at 0 (the default) keeps ProFTPD's fork-on-accept.
docs/configuration.md, "Pre-forked idle children"."""

from __future__ import annotations

from ..config.registry import SERVER, Directive, Merge
from ..config.types import Int
from ..module import Module
from ..prefork import LIMIT, pool_size

NAME = "mod_core.c"

directives = [
    Directive("StartServers", Int(0, LIMIT), SERVER, 0, Merge.SERVER,
              "proftpy: idle session children forked ahead of any connection at start and after each reload "
              "(Apache prefork's; 0: fork at each accept, as ProFTPD)."),
    Directive("MinSpareServers", Int(0, LIMIT), SERVER, 0, Merge.SERVER,
              "proftpy: fewest idle pre-forked children kept; the master forks more when connections took them."),
    Directive("MaxSpareServers", Int(0, LIMIT), SERVER, None, Merge.SERVER,
              "proftpy: most idle pre-forked children at once; StartServers above it starts this many (default: "
              "the larger of StartServers and MinSpareServers)."),
]


def check(config) -> list[tuple[str, bool]]:
    """`-t`: sizes that do not say what they seem to (not fatal: the pool uses the effective values)."""
    size = pool_size(config)
    problems = []
    if size.max_spare is not None and size.max_spare < size.min_spare:
        problems.append((f"MaxSpareServers {size.max_spare} is below MinSpareServers {size.min_spare}: "
                         f"{size.min_spare} idle children are kept", False))
    if size.start > size.ceiling:
        problems.append((f"StartServers {size.start} is above MaxSpareServers {size.ceiling}: "
                         f"{size.ceiling} idle children are started", False))
    return problems


MODULE = Module(NAME, directives=tuple(directives), check=check)
