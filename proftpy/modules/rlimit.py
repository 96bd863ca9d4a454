"""mod_rlimit (compiled into ProFTPD by default): resource limits for the daemon and the sessions, and the chroot
guard.

`RLimitCPU`, `RLimitMemory` (the address space, RLIMIT_AS; `K`/`M`/`G` units) and `RLimitOpenFiles` take
`[daemon|session] soft [hard]` (a number, `max` or `unlimited`; the hard limit defaults to the soft one). Without a
scope a line applies to the master and to every session; `daemon` lines only to the master (server config only),
`session` lines only to sessions; the lines apply in order. Sessions set theirs at connect, while still root. A
proftpy session maps some 35 MB of address space (ProFTPD's about 10): a session RLimitMemory under 40 MB stops
sessions from starting.

`RLimitChroot` (on by default): in a session chrooted to a directory other than `/`, nothing under `/etc` or
`/lib` of the chroot may be created, changed or removed (`550 ...: Permission denied`), ProFTPD's guard against
the "Roaring Beast" attack (a C library loading an uploaded `/etc/nsswitch.conf` and `/lib/libnss_*.so` while
root). proftpy's sessions hold no root after login, but the guard stays on by default so that clients see what
ProFTPD's see; `RLimitChroot off` lifts it (also per user, with `<IfUser>`).
"""

from __future__ import annotations

import logging
import re
import resource

import prctl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import privs
from ..config.registry import SERVER, SVG, Directive, Merge
from ..config.types import Custom, Flag
from ..dispatch import POST_CMD, Hook, Request
from ..module import MasterView, Module

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session

NAME = "mod_rlimit.c"
log = logging.getLogger("proftpy")
RESOURCES = {"RLimitCPU": resource.RLIMIT_CPU, "RLimitMemory": resource.RLIMIT_AS,
             "RLimitOpenFiles": resource.RLIMIT_NOFILE}
WHAT = {"RLimitCPU": "CPU", "RLimitMemory": "memory", "RLimitOpenFiles": "file descriptor"}   # ProFTPD's words
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class Limit:
    scope: str | None               # "daemon", "session", or None: both
    soft: int                       # resource.RLIM_INFINITY for max/unlimited
    hard: int


def _value(word: str, units: bool) -> int:
    if word.lower() in ("max", "unlimited"):
        return resource.RLIM_INFINITY
    match = re.fullmatch(r"(\d+)([bBkKmMgG]?)" if units else r"(\d+)()", word)
    if match is None:
        raise ValueError("badly formatted argument")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _limit(units: bool) -> Custom:
    def parse(args: list[str]) -> Limit:
        if not 1 <= len(args) <= 3:
            raise ValueError("wrong number of parameters")
        scope = args[0].lower() if args[0].lower() in ("daemon", "session") else None
        values = args[1:] if scope else args
        if not 1 <= len(values) <= 2:
            raise ValueError("wrong number of parameters")
        soft = _value(values[0], units)
        hard = _value(values[1], units) if len(values) == 2 else soft
        if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
            raise ValueError("the soft limit is above the hard limit")
        return Limit(scope, soft, hard)
    return Custom(parse, "[daemon|session] soft-limit|max [hard-limit|max]")


directives = (
    Directive("RLimitChroot", Flag, SVG, True, Merge.SERVER,
              "In a chrooted session refuse changes under /etc and /lib (ProFTPD's guard against Roaring Beast)."),
    Directive("RLimitCPU", _limit(False), SVG, None, Merge.SERVER,
              "CPU seconds for the daemon and/or each session (RLIMIT_CPU).", repeat=True),
    Directive("RLimitMemory", _limit(True), SVG, None, Merge.SERVER,
              "Address space for the daemon and/or each session (RLIMIT_AS; a session maps some 35 MB).",
              repeat=True),
    Directive("RLimitOpenFiles", _limit(False), SVG, None, Merge.SERVER,
              "Open file descriptors for the daemon and/or each session (RLIMIT_NOFILE).", repeat=True),
)


def apply(server, scope: str) -> None:
    """Set the limits of `scope` ("daemon" or "session") that `server`'s lines give, in their order, as root
    (raising a hard limit needs it)."""
    for name, which in RESOURCES.items():
        for limit in (p.value for p in server.section.all(name)):
            if limit.scope not in (None, scope):
                continue
            try:
                with privs.default_privs().root():
                    resource.setrlimit(which, (limit.soft, limit.hard))
            except (OSError, ValueError) as e:
                log.error("error setting %s resource limits: %s", WHAT[name], e)


def misplaced(config: "Config") -> list[str]:
    """`FILE:LINE: ...` for each `daemon` line outside the server config (ProFTPD refuses them)."""
    found = []
    for section in config.root.walk():
        if section.context == SERVER:
            continue
        for name in RESOURCES:
            found += [f"{p.where}: {name} daemon is only allowed in the server config" for p in section.all(name)
                      if p.value.scope == "daemon"]
    return found


def _master_init(master: MasterView) -> None:
    """The daemon's limits, and no core files (they would hold what sessions read: ProFTPD's mod_rlimit too)."""
    problems = misplaced(master.config)
    if problems:
        raise SystemExit("\n".join(problems))
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        prctl.set_dumpable(False)
    except (OSError, ValueError) as e:
        log.error("error setting core resource limits: %s", e)
    apply(master.config.main, "daemon")


def session_init(session: "Session") -> None:
    apply(session.server, "session")


def _after_login(session: "Session", cmd: Request) -> None:
    """POST_CMD PASS, after mod_ifsession's merge (so `<IfUser>` may say RLimitChroot off): a session chrooted
    anywhere but `/` gets the guard."""
    fs = session.fs
    if session.authenticated and fs is not None and fs.chroot not in (None, "/"):
        fs.guarded = bool(session.server.get("RLimitChroot"))


MODULE = Module(NAME, directives=directives, session_init=session_init, master_init=_master_init,
                check=lambda config: [(message, True) for message in misplaced(config)],
                hooks=(Hook(POST_CMD, "PASS", _after_login),))
