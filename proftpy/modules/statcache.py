"""mod_statcache: the results of stat(2) and lstat(2) on client paths, kept for a few seconds in a table that every
session of the server shares (proftpy/statcachetable.py), so that sessions browsing the same tree pay fewer
system calls. Debian ships it (not loaded by default); its directives and `ftpdctl statcache info|dump` are
ProFTPD 1.3.8's.

- The master lays the StatCacheTable afresh at start and at each reload (ProFTPD's postparse) when any section
  switches StatCacheEngine on; sessions inherit it. Without StatCacheEngine on anywhere, no hook, listener or
  session start of this module runs (`active`), so a session pays nothing for it.
- After PASS (as ProFTPD, which mounts its FS then), a session whose server has StatCacheEngine on reads
  `FS.stat`/`FS.lstat` through the table and hears of each path an operation changes (`FS.changed`: writes,
  renames, deletes, chmod/chown/utime, mkdir/rmdir, links), which it clears from the table at once, so its own
  change is seen at once; other sessions see it once the entry's age passes (StatCacheMaxAge). Paths opened for
  writing are cleared again when their transfer ends (ProFTPD clears at every write(2)). SSH sessions cache no
  failures (ProFTPD turns negative caching off for them).
- Keyed by the path as the configuration names it (the chroot directory in front): ProFTPD keys by the path
  inside the chroot, so two users' chroots would share entries; here they never do.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import struct
import time
from typing import TYPE_CHECKING, Any, Callable

from ..config.errors import ConfigError
from ..config.registry import SERVER, SVG, Directive, Merge
from ..config.types import Custom, Flag, atoi
from ..ctrls import Action, ActionAcl, CtrlsError, CtrlsRequest, MAX_MESSAGE
from ..dispatch import POST_CMD, Hook, Request
from ..module import Listener, MasterView, Module
from ..statcachetable import (COLS, DEFAULT_CAPACITY, DEFAULT_MAX_AGE, LSTAT, STAT, StatCacheTable,
                              StatCacheTableError, round_capacity, strerror)

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..fs import FS
    from ..session import Session

NAME = "mod_statcache.c"
VERSION = "mod_statcache/0.2"
ACL = "StatCacheControlsACLs"
RECENT = 16                         # paths opened for writing that a transfer's end clears again
log = logging.getLogger("proftpy")


def _capacity(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    capacity = atoi(args[0])
    if capacity < COLS:
        raise ValueError(f"parameter must be {COLS} or greater")
    return round_capacity(capacity)


def _max_age(args: list[str]) -> list[int]:
    """[positive, negative] seconds: one number sets both; a negative age below 0 is 0 (no failure cached)."""
    if len(args) not in (1, 2):
        raise ValueError("wrong number of parameters")
    positive = atoi(args[0])
    if positive <= 0:
        raise ValueError("positive-age parameter must be 1 or greater")
    return [positive, max(atoi(args[1]), 0) if len(args) == 2 else positive]


def _table(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if not args[0].startswith("/"):
        raise ValueError("must be an absolute path")
    return args[0]


directives = (
    Directive("StatCacheEngine", Flag, SVG, False, Merge.SERVER,
              "Cache the results of stat/lstat on client paths in the StatCacheTable, shared by every session."),
    Directive("StatCacheTable", Custom(_table, "path"), SERVER, None, Merge.SERVER,
              "File holding the shared cache (required with StatCacheEngine on); laid afresh at each start."),
    Directive("StatCacheCapacity", Custom(_capacity, "count"), SERVER, DEFAULT_CAPACITY, Merge.SERVER,
              "Entries the table holds (at least 10, rounded up to a multiple of 10)."),
    Directive("StatCacheMaxAge", Custom(_max_age, "secs [negative-secs]"), SERVER, [DEFAULT_MAX_AGE, 1],
              Merge.SERVER, "Seconds an entry is used: a stat result, and a failure (one number sets both)."),
    Directive(ACL, Custom(ActionAcl.parser({"statcache", "all"}, "action"),
                          "statcache|all allow|deny user|group list"), SERVER, None, Merge.SERVER,
              "Who may use `ftpdctl statcache info|dump`; default: nobody.", repeat=True),
)


def _configured(config: "Config") -> bool:
    return config.sets("StatCacheEngine")


def validate(config: "Config") -> None:
    """StatCacheEngine on needs a StatCacheTable (ProFTPD's master exits at start without one)."""
    if not _configured(config) or config.main.get("StatCacheTable"):
        return
    on = next(p for s in config.root.walk() for p in s.all("StatCacheEngine") if p.value)
    raise ConfigError(f"{VERSION}: missing required StatCacheTable configuration", on.where)


# -- the master -------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StatCacheState:
    table: StatCacheTable | None = None


def _open(config: "Config") -> StatCacheTable | None:
    if not _configured(config):
        return None
    try:
        return StatCacheTable.create(config.main.get("StatCacheTable"), config.main.get("StatCacheCapacity"))
    except StatCacheTableError as e:
        raise SystemExit(f"proftpy: {VERSION}: {e}") from None


def master_init(master: MasterView) -> None:
    master.state.get(StatCacheState).table = _open(master.config)


def master_stop(master: MasterView) -> None:
    st = master.state.get(StatCacheState)
    if st.table is not None:
        st.table.close()
        st.table = None


def master_reload(master: MasterView) -> None:
    """A fresh table for the new configuration (sessions already running keep the one they mapped)."""
    master_stop(master)
    try:
        master.state.get(StatCacheState).table = _open(master.config)
    except SystemExit as e:
        log.error("%s: caching off until the next reload", str(e).removeprefix("proftpy: "))


# -- the session ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SessionStatCache:
    table: StatCacheTable | None = None
    ages: tuple[int, int] = (DEFAULT_MAX_AGE, 1)
    recent: list[bytes] = dataclasses.field(default_factory=list)     # keys opened for writing


def session_init(session: "Session", **_: Any) -> None:
    """At connect, and again after HOST chose another server (`core.session-reinit`), as ProFTPD's."""
    st = session.state.get(SessionStatCache)
    st.table = None
    if not session.server.get("StatCacheEngine"):
        return
    st.table = session.shared.get(StatCacheState).table
    if st.table is None:
        log.info("%s: no StatCacheTable shared by a master (inetd mode): nothing cached", VERSION)
    st.ages = tuple(session.config.main.get("StatCacheMaxAge"))


def _key(fs: "FS", real: str) -> bytes:
    return os.fsencode(fs.config_path(real))


def _through(st: SessionStatCache, fs: "FS", op: int, uncached: Callable[[str], os.stat_result]
             ) -> Callable[[str], os.stat_result]:
    """`uncached` (FS.stat or FS.lstat of this session) read through the table."""
    table = st.table
    assert table is not None

    def cached(real: str) -> os.stat_result:
        key, now = _key(fs, real), int(time.time())
        try:
            found = table.get(key, op, now, st.ages)
        except OSError as e:
            log.debug("%s: StatCacheTable lookup of '%s': %s", VERSION, real, e.strerror)
            return uncached(real)
        if isinstance(found, int):
            raise OSError(found, strerror(found), real)
        if found is not None:
            return found
        try:
            result = uncached(real)
        except OSError as e:
            if e.errno and st.ages[1] > 0:
                _put(table, key, op, e.errno, now, st.ages)
            raise
        _put(table, key, op, result, now, st.ages)
        return result
    return cached


def _put(table: StatCacheTable, key: bytes, op: int, result: Any, now: int, ages: tuple[int, int]) -> None:
    try:
        table.put(key, op, result, now, ages)
    except OSError as e:
        log.debug("%s: StatCacheTable store of '%s': %s", VERSION, os.fsdecode(key), e.strerror)


def _changed(st: SessionStatCache, fs: "FS") -> Callable[..., None]:
    table = st.table
    assert table is not None

    def changed(real: str, writing: bool = False, below: bool = False) -> None:
        """`writing`: opened for writing (cleared again at the transfer's end); `below`: a directory renamed or
        removed with its contents (every path under it cleared)."""
        key = _key(fs, real)
        if writing:
            st.recent = st.recent[-(RECENT - 1):] + [key]
        try:
            if below:
                table.forget_below(key)
            else:
                table.forget(key)
        except OSError as e:
            log.debug("%s: StatCacheTable removal of '%s': %s", VERSION, real, e.strerror)
    return changed


def _after_pass(session: "Session", cmd: Request) -> None:
    """The session reads stat/lstat through the table from now on (ProFTPD mounts its FS after PASS)."""
    st = session.state.get(SessionStatCache)
    fs = session.fs
    if st.table is None or fs is None or fs.changed is not None:
        return
    if session.protocol in ("ssh2", "sftp", "scp"):
        st.ages = (st.ages[0], 0)
    fs.stat = _through(st, fs, STAT, fs.stat)              # type: ignore[method-assign]
    fs.lstat = _through(st, fs, LSTAT, fs.lstat)           # type: ignore[method-assign]
    fs.changed = _changed(st, fs)


def _transfer_ended(session: "Session", **_: Any) -> None:
    st = session.state.get(SessionStatCache)
    if st.table is None or not st.recent:
        return
    for key in st.recent:
        try:
            st.table.forget(key)
        except OSError as e:
            log.debug("%s: StatCacheTable removal of '%s': %s", VERSION, os.fsdecode(key), e.strerror)
    st.recent = []


# -- ftpdctl statcache info|dump --------------------------------------------------------------------------------------
def _percent(part: int, whole: int) -> float:
    """ProFTPD's arithmetic: a C float ratio times 100.0."""
    return struct.unpack("f", struct.pack("f", part / whole))[0] * 100.0 if whole else 0.0


def info_lines(counters: dict[str, int], capacity: int) -> list[str]:
    c = counters
    return [f" hits {c['hits']}, misses {c['misses']}: {_percent(c['hits'], c['hits'] + c['misses']):.1f}% hit rate",
            f"   expires {c['expires']}, rejects {c['rejects']}",
            f" current count: {c['count']} (of {capacity}) ({_percent(c['count'], capacity):.1f}% usage)",
            f" highest count: {c['highest']} (of {capacity}) ({_percent(c['highest'], capacity):.1f}% usage)"]


def dump_lines(table: StatCacheTable, now: int, budget: int = MAX_MESSAGE - 1024) -> list[str]:
    """ProFTPD's dump, row by row; a table whose dump would not fit in one answer (64 KiB) ends with a line
    saying how many rows were left out."""
    lines, used = ["StatCache Contents:"], 32
    rows = table.rows()
    for r, row in enumerate(rows):
        block = [f"  Row {r + 1}:"]
        for c, entry in enumerate(row):
            if entry is None:
                block.append(f"    Col {c + 1}: <empty>")
            elif entry.errno == 0:
                block.append(f"    Col {c + 1}: '{entry.path}' ({max(now - entry.stored, 0)} secs old)")
            else:
                block.append(f"    Col {c + 1}: '{entry.path}' (error: {strerror(entry.errno)})")
        size = sum(len(line.encode("utf-8", "surrogateescape")) + 4 for line in block)
        if used + size > budget:
            lines.append(f"  ({len(rows) - r} more rows not shown: an answer holds at most {MAX_MESSAGE} bytes)")
            break
        lines += block
        used += size
    return lines


def statcache_action(master: MasterView, req: CtrlsRequest) -> list[str]:
    if not req.args:
        raise CtrlsError("missing parameters")
    table = master.state.get(StatCacheState).table
    if table is None:
        raise CtrlsError(f"{VERSION} not enabled")
    if req.args[0] == "info":
        try:
            return info_lines(table.counters(), table.capacity)
        except OSError as e:
            raise CtrlsError(f"error locking shared memory: {e.strerror}") from None
    if req.args[0] == "dump":
        try:
            return dump_lines(table, int(time.time()))
        except OSError as e:
            raise CtrlsError(f"error locking shared memory: {e.strerror}") from None
    raise CtrlsError(f"unknown statcache action requested: '{req.args[0]}'")


MODULE = Module(NAME, directives=directives, validate=validate,
                master_init=master_init, master_reload=master_reload, master_stop=master_stop,
                session_init=session_init, session_active=_configured,
                hooks=(Hook(POST_CMD, "PASS", _after_pass, active=_configured),),
                listeners=(Listener("core.transfer-end", _transfer_ended, _configured),
                           Listener("core.session-reinit", session_init, _configured)),
                ctrls_actions=(Action("statcache", statcache_action, acl=ACL, read_only=True,
                                      help="display cache stats"),))
