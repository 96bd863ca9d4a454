"""mod_quotatab: upload, download and transfer quotas in bytes and in files, per user, group, class or everyone,
kept in ProFTPD's limit and tally files (mod_quotatab_file, proftpy/quotatab.py; `ftpquota` edits them) or in
mod_sql's database (mod_quotatab_sql), so a ProFTPD node and a proftpy node can count against the same tables.
Each source declares a `quotatab.Source` (SOURCES below); this module only calls what its tables answer.

At connect (QuotaEngine on) the session opens both tables while it may (as root, before the chroot) and keeps them.
After PASS it picks the session's limit, first found of: the user's record, the primary group's, each other group's,
a QuotaDefault for the user, for a group, the class's record, the record for all; then the tally of that name (made
if missing, under QuotaLock). Per-session limits start from zero and never write the tally.

Uploads (STOR, STOU, APPE; MKD with QuotaDirectoryTally) and downloads (RETR) are refused once a limit is used up
(`552` / `451 <CMD> denied: quota exceeded: used ...`); the tally counts each one after it (the file's growth for
bytes in, the data connection's bytes for out and xfer), DELE and RNTO (over an old file) give bytes and a file back
(DELE to the file owner's tally when it has one), RMD too with QuotaDirectoryTally. A hard limit cuts an upload that
crosses it (`552 Transfer aborted. Disk quota exceeded`) and removes the file; a soft one lets it finish and refuses
the next. A copy (mod_copy's SITE COPY and CPTO, each file of a copied tree) counts as an upload of its destination
(`COPY denied: ...`; a hard limit stops it with `552 CPTO: Disk quota exceeded`); a copied directory or link is not
counted itself. Replies gain ProFTPD's `<CMD>: notice: quota reached: ...` lines. SITE QUOTA shows the limit and the
tally. QuotaExcludeFilter leaves matching paths out of it all. QuotaLog has ProFTPD's lines.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .. import privs, quotatab as qt, transfer
from ..config.registry import SVG, Directive, Merge
from ..config.types import Choice, Custom, Flag, Options, Path, compile_regex, parse_bool
from ..dispatch import POST_CMD, POST_CMD_ERR, PRE_CMD, Command, Hook, Request
from ..fs import FsError
from ..module import Listener, Module
from ..reply import Reply
from . import copy as mod_copy, quotatab_file, quotatab_ldap, quotatab_radius, quotatab_sql
from .access import limits_allow
from .core import admin_address
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

NAME = "mod_quotatab.c"
TAG = "mod_quotatab/1.3.1"              # ProFTPD 1.3.8's mod_quotatab, as its QuotaLog lines name it
IN, OUT, XFER = "upload", "download", "transfer"
UNITS = {"b": (1, "bytes"), "kb": (1024, "Kb"), "mb": (1 << 20, "Mb"), "gb": (1 << 30, "Gb")}
DIR_COMMANDS = ("MKD", "XMKD")          # uploads of a directory, with QuotaDirectoryTally
LOCK_TRIES = 10                          # QuotaLock: attempts before giving up (ProFTPD's QUOTA_MAX_LOCK_ATTEMPTS)


# -- directives ----------------------------------------------------------------------------------------------------
SOURCES = {source.kind: source for source in (quotatab_file.SOURCE, quotatab_sql.SOURCE,
                                              quotatab_radius.SOURCE, quotatab_ldap.SOURCE)}


def _table(kind: str):
    """QuotaLimitTable/QuotaTallyTable (`kind`: limit, tally): `type:info` -> (its source, the info as the source
    parsed it)."""
    def parse(args: list[str]) -> tuple[qt.Source, Any]:
        if len(args) != 1:
            raise ValueError("wrong number of parameters")
        word, sep, info = args[0].partition(":")
        if not sep:
            raise ValueError("badly formatted parameter")
        source = SOURCES.get(word)
        if source is None:
            raise ValueError(f"unsupported table source type: '{word}'")
        return source, source.parse(info, kind)
    return parse


def _number(word: str, kind: type) -> Any:
    try:
        value = kind(word)
    except ValueError:
        raise ValueError(f"'{word}' is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or (kind is int and not 0 <= value <= qt.UINT_MAX):
        raise ValueError(f"'{word}' is out of range")
    return value


def _default(args: list[str]) -> qt.Limit:
    """`QuotaDefault type per-session hard|soft bytes-in bytes-out bytes-xfer files-in files-out files-xfer`: a
    limit record with no name (the user's or group's is put in when it is used)."""
    if len(args) != 9:
        raise ValueError("wrong number of parameters")
    qtype = qt.TYPE_WORDS.get(args[0].lower())
    if qtype is None:
        raise ValueError(f"unknown quota type '{args[0]}' configured")
    try:
        per_session = parse_bool(args[1])
    except ValueError:
        raise ValueError(f"expected Boolean per-session parameter: {args[1]}") from None
    limit_type = qt.LIMIT_WORDS.get(args[2].lower())
    if limit_type is None:
        raise ValueError(f"expected 'soft' or 'hard' limit-type parameter: {args[2]}")
    return qt.Limit("", qtype, per_session, limit_type, *(_number(w, float) for w in args[3:6]),
                    *(_number(w, int) for w in args[6:9]))


def _exclude(args: list[str]) -> re.Pattern | None:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if args[0].lower() == "none":
        return None
    try:
        return compile_regex(args[0])
    except re.error as e:
        raise ValueError(f"'{args[0]}' failed regex compilation: {e}") from None


directives = (
    Directive("QuotaEngine", Flag, SVG, False, Merge.SERVER, "Count and enforce quotas (mod_quotatab)."),
    Directive("QuotaLimitTable", Custom(_table("limit"), "file:/path | sql:/SELECT-query | radius: | ldap:"), SVG,
              None, Merge.SERVER, "The limit table (`ftpquota --create-table --type=limit`, an SQLNamedQuery, "
              "`radius:`: mod_radius's RadiusQuotaInfo for the user RADIUS accepted, or `ldap:`: the ftpQuota "
              "attribute of the user's LDAP entry); read only."),
    Directive("QuotaTallyTable", Custom(_table("tally"), "file:/path | sql:/SELECT-query/UPDATE-query/INSERT-query"),
              SVG, None, Merge.SERVER,
              "The tally table (`ftpquota --create-table --type=tally`, or SQLNamedQuery names); sessions update it."),
    Directive("QuotaLock", Path(), SVG, None, Merge.SERVER,
              "A file locked while a login looks its limit up and makes its tally record."),
    Directive("QuotaLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_quotatab's own log file (`none`: none)."),
    Directive("QuotaDisplayUnits", Choice(tuple(UNITS)), SVG, "b", Merge.SERVER,
              "Units of the byte counts in replies and SITE QUOTA: b, Kb, Mb or Gb."),
    Directive("QuotaShowQuotas", Flag, SVG, True, Merge.SERVER, "Answer SITE QUOTA."),
    Directive("QuotaExcludeFilter", Custom(_exclude, "regex|none"), SVG, None, Merge.SERVER,
              "Paths (absolute, as the session sees them) that quotas leave alone."),
    Directive("QuotaDirectoryTally", Flag, SVG, False, Merge.SERVER,
              "Count MKD as an upload of a file (its size in bytes), RMD as its deletion."),
    Directive("QuotaDefault", Custom(_default, "user|group|class|all per-session hard|soft Bin Bout Bxfer Fin Fout "
              "Fxfer"), SVG, None, Merge.SERVER, "A limit for a user or group the limit table has no record for.",
              repeat=True),
    Directive("QuotaOptions", Options(("ScanOnLogin",), "QuotaOption"), SVG, frozenset(), Merge.SERVER,
              "ScanOnLogin: at login, set the tally's bytes and files in from what the home directory holds.",
              repeat=True),
)


# -- state ---------------------------------------------------------------------------------------------------------
@dataclass
class QuotaState:
    """A session's tables, its limit and tally once PASS found them, and what the command running now left for
    its POST_CMD hooks."""

    log: ModuleLog = field(default_factory=lambda: ModuleLog(TAG))
    limits: Any = None                   # the open tables (see quotatab.Source)
    tallies: Any = None
    lock_fd: int | None = None           # QuotaLock
    units: str = "b"
    exclude: re.Pattern | None = None    # QuotaExcludeFilter
    dirs: bool = False                   # QuotaDirectoryTally
    limit: qt.Limit | None = None        # the session's limit: quotas are in use
    tally: qt.Tally | None = None
    key: Any = None                      # of its tally record, in its table
    pending: str | None = None           # IN or OUT: a transfer its POST_CMD(_ERR) hook is to count
    disk_bytes: int = 0                  # the size of the file an upload is about to change
    copy_over: bool = False              # a copy onto a file that exists: no file counted, none checked (ProFTPD)
    deleted: os.stat_result | None = None   # DELE: the file as it was
    replaced: int | None = None          # RNTO, RMD: the size of what goes away
    refused: bool = False                # the PRE_CMD hook refused: its reply says it already
    aborted: bool = False                # ABOR came during the transfer

    def close(self) -> None:
        for table in (self.limits, self.tallies):
            if table is not None:
                table.close()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
        self.limits = self.tallies = self.lock_fd = self.limit = self.tally = None
        self.log.close()


def _in_use(session: "Session") -> QuotaState | None:
    st = session.state.find(QuotaState)
    return st if st is not None and st.limit is not None else None


# -- connect -------------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    """At connect, and again when HOST chose another server."""
    server = session.server
    old = session.state.find(QuotaState)
    if old is not None:
        old.close()
    if not server.get("QuotaEngine"):
        return
    st = session.state.put(QuotaState())
    st.log.open(server.get("QuotaLog"), server.get("AllowLogSymlinks"))
    st.units = server.get("QuotaDisplayUnits")
    st.exclude = server.get("QuotaExcludeFilter")
    st.dirs = bool(server.get("QuotaDirectoryTally"))
    lock = server.get("QuotaLock")
    if lock is not None:
        try:
            with privs.default_privs().root():  # kept open after the chroot and the switch to the user
                st.lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            st.log.write(f"unable to open QuotaLock '{lock}': {e.strerror}")
    st.limits = _open(session, st, "limit", "QuotaLimitTable")
    st.tallies = _open(session, st, "tally", "QuotaTallyTable")


def _open(session: "Session", st: QuotaState, kind: str, directive: str) -> Any:
    configured = session.server.get(directive)
    if configured is None:
        st.log.write(f"notice: no {directive} configured")
        return None
    source, info = configured
    return source.open(session, info, kind, st.lock_fd, st.log.write)


# -- login ---------------------------------------------------------------------------------------------------------
def _logged_in(session: "Session") -> None:
    """mod_auth.authenticated: the session's limit and tally (before the 230 and its DisplayLogin lines, which may
    show them)."""
    st = session.state.find(QuotaState)
    if st is None or st.limits is None:
        return
    if st.tallies is None:
        st.log.write("turning QuotaEngine off")
        return
    with _quota_lock(st):
        found = _find_limit(session, st)
        if found is None:
            st.log.write("no quota entry found, turning QuotaEngine off")
            return
        limit, what = found
        try:
            st.key, st.tally = _tally_for(st, limit)
        except OSError as e:
            st.log.write(f"error: unable to create tally entry: {e.strerror or e}")
            return
        st.log.write(f"found tally entry for {what}")
    st.limit = limit
    if limit.per_session:
        st.tally = qt.Tally(limit.name, limit.quota_type)
        st.log.write("per session setting in effect: updates will not be tracked in the QuotaTallyTable")
    elif "ScanOnLogin" in _options(session) and (limit.bytes_in > 0 or limit.files_in):
        _scan(session, st, what)


def _options(session: "Session") -> frozenset[str]:
    return frozenset(o for p in session.server.section.all("QuotaOptions") for o in p.value)


def _find_limit(session: "Session", st: QuotaState) -> tuple[qt.Limit, str] | None:
    """The session's limit and whose it is ("user 'alice'"), in ProFTPD's order of lookups."""
    user, groups = session.user or "", list(session.groups or ())
    candidates: list[tuple[Callable[[], qt.Limit | None], str]] = [
        (lambda: _from_table(st, user, qt.USER), f"user '{user}'")]
    candidates += [(lambda g=g: _from_table(st, g, qt.GROUP), f"group '{g}'") for g in groups]
    candidates.append((lambda: _from_default(session, user, qt.USER), f"user '{user}'"))
    candidates += [(lambda g=g: _from_default(session, g, qt.GROUP), f"group '{g}'") for g in groups]
    if session.conn_class:
        candidates.append((lambda: _from_table(st, session.conn_class, qt.CLASS), f"class '{session.conn_class}'"))
    candidates.append((lambda: _from_table(st, None, qt.ALL), "all"))
    for lookup, what in candidates:
        limit = lookup()
        if limit is not None:
            st.log.write(f"found limit entry for {what}")
            return limit, what
    return None


def _from_table(st: QuotaState, name: str | None, quota_type: int) -> qt.Limit | None:
    found = st.limits.find(name, quota_type)
    return found[1] if found else None


def _from_default(session: "Session", name: str, quota_type: int) -> qt.Limit | None:
    for param in session.server.section.all("QuotaDefault"):
        if param.value.quota_type == quota_type:
            return replace(param.value, name=name)
    return None


def _tally_for(st: QuotaState, limit: qt.Limit) -> tuple[Any, qt.Tally]:
    """The tally record matching the limit (by name and type), made if there is none."""
    key, tally, added = st.tallies.find_or_add(qt.Tally(limit.name, limit.quota_type))
    if added:
        st.log.write("creating new tally entry to match limit entry")
    return key, tally


@contextmanager
def _quota_lock(st: QuotaState) -> Iterator[None]:
    """QuotaLock held while a login looks up and makes records (nothing to hold when none is configured); a lock
    still busy after LOCK_TRIES tries is logged and the login goes on without it, as ProFTPD's."""
    held = False
    if st.lock_fd is not None:
        for _ in range(LOCK_TRIES):
            try:
                fcntl.lockf(st.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    break
                time.sleep(0.01)
        if not held:
            st.log.write("unable to acquire write-lock lock on QuotaLock")
    try:
        yield
    finally:
        if held:
            fcntl.lockf(st.lock_fd, fcntl.LOCK_UN)


def _scan(session: "Session", st: QuotaState, what: str) -> None:
    """QuotaOptions ScanOnLogin: bytes and files in set from what the current directory holds (the user's files
    for a user limit, the group's for a group limit, all for a class or everyone)."""
    limit = st.limit
    uid = session.account.uid if limit.quota_type == qt.USER else None
    group = session.auth.getgrnam(limit.name) if limit.quota_type == qt.GROUP else None
    gid = group.gid if group is not None else None
    start = session.fs.resolve(".").real
    st.log.write(f"ScanOnLogin enabled, scanning current directory '{session.fs.virtual_of(start)}' "
                 f"for files owned by {what}")
    nbytes, nfiles = 0, 0
    for info in _walk(start, st.dirs):
        if (uid is None and gid is None) or info.st_uid == uid or info.st_gid == gid:
            nbytes += info.st_size
            nfiles += 1
    st.log.write(f"found {nbytes:.2f} bytes in {nfiles} file{'s' if nfiles != 1 else ''} for {what}")
    _count(st, bytes_in=nbytes - st.tally.bytes_in, files_in=nfiles - st.tally.files_in)


def _walk(top: str, dirs: bool) -> Iterator[os.stat_result]:
    """Every regular file and symbolic link under `top`, not following links; with `dirs` (QuotaDirectoryTally)
    every directory too, `top` included."""
    todo = [top]
    while todo:
        path = todo.pop()
        try:
            if dirs:
                yield os.lstat(path)
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                todo.append(entry.path)
            elif stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                yield info


# -- the tally -----------------------------------------------------------------------------------------------------
def _refresh(st: QuotaState) -> None:
    """Read the tally again: other sessions may have counted since."""
    if st.limit.per_session:
        return
    try:
        st.tally = st.tallies.fetch(st.key) or st.tally
    except (OSError, qt.BadTable) as e:
        st.log.write(f"error: unable to read tally: {e}")


def _count(st: QuotaState, **deltas: float) -> None:
    """Add to the session's tally (and, unless per-session, to its record, read again under the lock first)."""
    try:
        if st.limit.per_session:
            st.tally.add(st.limit, **deltas)
            return
        st.tally = st.tallies.update(st.key, st.tally, st.limit, deltas)
    except (OSError, qt.BadTable) as e:
        st.log.write(f"error: unable to write tally: {e}")


def _shown_bytes(st: QuotaState, used: float, avail: float, kind: str) -> str:
    size, unit = UNITS[st.units]
    if size == 1:
        return f"{used:.2f} of {avail:.2f} {kind} {'bytes' if avail > 1.0 else 'byte'}"
    return f"{used / size:.2f} of {avail / size:.2f} {kind} {unit}"


def _shown_files(used: int, avail: int, kind: str) -> str:
    return f"{used} of {avail} {kind} {'files' if avail > 1 else 'file'}"


def _bytes_used_up(st: QuotaState, kind: str) -> str | None:
    """ProFTPD's "used X of Y" words for the first byte limit of this direction (or xfer) used up, or None."""
    limit, tally = st.limit, st.tally
    own = (limit.bytes_in, tally.bytes_in) if kind == IN else (limit.bytes_out, tally.bytes_out)
    if own[0] > 0 and own[1] >= own[0]:
        return _shown_bytes(st, own[1], own[0], kind)
    if limit.bytes_xfer > 0 and tally.bytes_xfer >= limit.bytes_xfer:
        return _shown_bytes(st, tally.bytes_xfer, limit.bytes_xfer, XFER)
    return None


def _files_used_up(st: QuotaState, kind: str) -> str | None:
    limit, tally = st.limit, st.tally
    own = (limit.files_in, tally.files_in) if kind == IN else (limit.files_out, tally.files_out)
    if own[0] and own[1] >= own[0]:
        return _shown_files(own[1], own[0], kind)
    if limit.files_xfer and tally.files_xfer >= limit.files_xfer:
        return _shown_files(tally.files_xfer, limit.files_xfer, XFER)
    return None


def _excluded(session: "Session", st: QuotaState, cmd: Request) -> bool:
    if st.exclude is None or not cmd.arg:
        return False
    try:
        path = session.fs.resolve(cmd.arg, follow_last=False, tilde=True).virtual
    except FsError:
        path = cmd.arg
    if st.exclude.search(path) is None:
        return False
    st.log.write(f"{cmd.name}: path '{cmd.arg}' matched QuotaExcludeFilter '{st.exclude.pattern}', ignoring")
    return True


def _notice(st: QuotaState, cmd: Request, reply: Reply | None, used: str) -> None:
    """A `<CMD>: notice: quota reached: used ...` line under the reply."""
    st.log.write(f"{cmd.name}: quota reached: used {used}")
    if reply is not None:
        reply.add_line(f"{cmd.name}: notice: quota reached: used {used}")


def _size(session: "Session", arg: str) -> int | None:
    """The size of what `arg` names (not following a last link), None when it is not there."""
    try:
        return session.fs.lstat(session.fs.resolve(arg, follow_last=False, tilde=True).real).st_size
    except (OSError, FsError):
        return None


# -- uploads: STOR, STOU, APPE (and MKD with QuotaDirectoryTally) ----------------------------------------------------
def _refuse(st: QuotaState, cmd: Request, kind: str, code: int, files: bool = True) -> Reply | None:
    """The PRE_CMD refusal of a command whose byte or (`files`) file limit is used up."""
    _refresh(st)
    used = _bytes_used_up(st, kind) or (_files_used_up(st, kind) if files else None)
    if used is None:
        return None
    st.log.write(f"{cmd.name} denied: quota exceeded: used {used}")
    st.refused = True
    return Reply(code, f"{cmd.name} denied: quota exceeded: used {used}")


def _pre_upload(session: "Session", cmd: Request) -> Reply | None:
    st = _in_use(session)
    if st is None or (cmd.name in DIR_COMMANDS and not st.dirs):
        return None
    st.refused = st.aborted = False
    st.pending = None
    transfer.state(session).upload_quota = None
    if _excluded(session, st, cmd):
        return None
    size = _size(session, cmd.arg)
    st.copy_over = cmd.name == "COPY" and size is not None
    denial = _refuse(st, cmd, IN, 552, files=cmd.name != "APPE" and not st.copy_over)
    if denial is not None:
        return denial
    st.disk_bytes = size or 0
    st.pending = IN
    limit, tally = st.limit, st.tally
    if limit.limit_type == qt.HARD:
        room = [avail - used for avail, used in ((limit.bytes_in, tally.bytes_in),
                                                  (limit.bytes_xfer, tally.bytes_xfer)) if avail > 0]
        if room:
            transfer.state(session).upload_quota = int(min(room))
    return None


def _upload_facts(session: "Session", st: QuotaState, cmd: Request) -> tuple[str | None, int, int]:
    """(the path the upload wrote, None when there is none; its growth in bytes; bytes over the data
    connection)."""
    xfer = cmd.notes.get("xfer")
    moved = xfer["bytes"] if xfer else 0
    try:
        real = xfer["path"] if xfer else session.fs.resolve(cmd.arg, follow_last=False, tilde=True).real
    except FsError:
        return None, 0, moved                   # a path the command refused: nothing was written
    try:
        grown = session.fs.lstat(real).st_size - st.disk_bytes
    except FileNotFoundError:
        grown = 0
    except OSError as e:
        st.log.write(f"{cmd.name}: error checking '{cmd.arg}': {e.strerror}")
        grown = moved
    return real, grown, moved


def _skip_aborted(session: "Session", st: QuotaState, cmd: Request, real: str | None) -> bool:
    """An aborted upload that DeleteAbortedStores removed is not counted (ProFTPD's Bug#3621)."""
    xfer = cmd.notes.get("xfer")
    if not (st.aborted or (xfer and xfer["aborted"])) or not session.conf("DeleteAbortedStores", path=real):
        return False
    st.log.write(f"{cmd.name}: upload aborted and DeleteAbortedStores on, skipping tally update")
    return True


def _remove(session: "Session", st: QuotaState, cmd: Request, real: str | None, shown: bool = True) -> bool:
    """A hard limit crossed: the file goes (a directory with QuotaDirectoryTally); `shown`: the reply says so
    (ProFTPD's failed APPE removes the file without a word)."""
    if real is None:
        return False
    try:
        if st.dirs and stat.S_ISDIR(session.fs.lstat(real).st_mode):
            session.fs.rmdir(real)
        else:
            session.fs.unlink(real)
    except OSError as e:
        st.log.write(f"notice: unable to unlink '{cmd.arg}': {e.strerror}")
        return False
    st.log.write(f"{cmd.name}: quota reached: '{cmd.arg}' removed")
    if shown and cmd.reply is not None:
        cmd.reply.add_line(f"{cmd.name}: notice: quota reached: '{cmd.arg}' removed")
    return True


def _after_upload(session: "Session", cmd: Request, ok: bool) -> None:
    """POST_CMD (`ok`) and POST_CMD_ERR of an upload: count it, add ProFTPD's notices, remove the file when a hard
    byte limit is now exceeded. ProFTPD's APPE counts no file and, when it fails, removes without a word."""
    st = _in_use(session)
    if st is None or (cmd.name in DIR_COMMANDS and not st.dirs):
        return
    pending, st.pending = st.pending, None
    appe = cmd.name == "APPE"
    if pending == IN:
        real, grown, moved = _upload_facts(session, st, cmd)
        if _skip_aborted(session, st, cmd, real):
            return
        if ok:
            _count(st, bytes_in=grown, bytes_xfer=moved, files_in=0 if appe or st.copy_over or st.disk_bytes else 1,
                   files_xfer=0 if appe or st.copy_over else 1)
        elif grown or moved or appe:
            _count(st, bytes_in=grown, bytes_xfer=moved)
        _over_bytes(session, st, cmd, real, grown, moved, ok)
    elif ok or not st.refused:
        return
    used = None if appe or st.copy_over or (ok and st.refused) else _files_used_up(st, IN)
    if used is not None:
        _notice(st, cmd, cmd.reply, used)       # a failed STOR says so even under its own refusal (ProFTPD)


def _over_bytes(session: "Session", st: QuotaState, cmd: Request, real: str | None, grown: int, moved: int,
                ok: bool) -> None:
    """The first byte limit (in, else xfer) the upload used up: a notice; exceeded under a hard limit, the file
    removed and its count taken back."""
    appe = cmd.name == "APPE"
    limit, tally = st.limit, st.tally
    for avail, used, kind in ((limit.bytes_in, tally.bytes_in, IN), (limit.bytes_xfer, tally.bytes_xfer, XFER)):
        if avail > 0 and used >= avail:
            if not st.refused:
                _notice(st, cmd, cmd.reply, _shown_bytes(st, used, avail, kind))
            if used > avail:
                removed = limit.limit_type == qt.HARD and _remove(session, st, cmd, real, shown=ok or not appe)
                if removed and (ok or appe):
                    _count(st, bytes_in=-grown, bytes_xfer=-moved, files_in=-1, files_xfer=-1)
                elif not ok and not appe:
                    _count(st, bytes_in=-grown, bytes_xfer=-moved)
            return


# -- copies: SITE COPY, SITE CPTO (mod_copy) --------------------------------------------------------------------------
def _as_upload(session: "Session", cmd: Request) -> Request | None:
    """A SITE request that copies a file, seen as the upload it is: a request named COPY for the destination as
    the client named it (ProFTPD's messages say so), with the copied bytes as its transfer; None for other SITE
    requests."""
    paths = mod_copy.copy_paths(session, cmd)
    if paths is None:
        return None
    copied = cmd.notes.get("copied")
    notes = {"xfer": {"bytes": copied["size"], "path": copied["path"], "aborted": False}} if copied else {}
    return Request("COPY", paths[1].arg, reply=cmd.reply, notes=notes)


def _pre_copy(session: "Session", cmd: Request) -> Reply | None:
    upload = _as_upload(session, cmd) if _in_use(session) else None
    return None if upload is None else _pre_upload(session, upload)


def _post_copy(session: "Session", cmd: Request, ok: bool) -> None:
    """Count a copied file; a failed copy, a directory or a link counts nothing here (a tree's files and, with
    QuotaDirectoryTally, its directories were counted one by one)."""
    st = _in_use(session)
    upload = _as_upload(session, cmd) if st is not None else None
    if upload is None:
        return
    transfer.state(session).upload_quota = None
    if ok and upload.notes:
        _after_upload(session, upload, True)
    st.pending = None


# -- downloads: RETR -------------------------------------------------------------------------------------------------
def _pre_download(session: "Session", cmd: Request) -> Reply | None:
    st = _in_use(session)
    if st is None:
        return None
    st.refused = st.aborted = False
    st.pending = None
    if _excluded(session, st, cmd):
        return None
    denial = _refuse(st, cmd, OUT, 451)
    if denial is None:
        st.pending = OUT
    return denial


def _post_download(session: "Session", cmd: Request, done: bool) -> None:
    st = _in_use(session)
    if st is None or st.pending != OUT:
        if st is not None:
            st.refused = False
        return
    st.pending = None
    xfer = cmd.notes.get("xfer")
    moved = xfer["bytes"] if xfer else 0
    one = 1 if done else 0
    _count(st, bytes_out=moved, bytes_xfer=moved, files_out=one, files_xfer=one)
    for used in (_bytes_used_up(st, OUT), _files_used_up(st, OUT)):
        if used is not None:
            _notice(st, cmd, cmd.reply, used)


# -- DELE, RNTO, RMD: bytes and files given back ---------------------------------------------------------------------
def _pre_dele(session: "Session", cmd: Request) -> None:
    st = _in_use(session)
    if st is None:
        return
    st.deleted = None
    if _excluded(session, st, cmd):
        return
    try:
        st.deleted = session.fs.lstat(session.fs.resolve(cmd.arg, follow_last=False, tilde=True).real)
    except (OSError, FsError):
        pass                    # nothing there: DELE fails, nothing to give back


def _post_dele(session: "Session", cmd: Request) -> None:
    st = _in_use(session)
    if st is None or st.deleted is None:
        return
    gone, st.deleted = st.deleted, None
    if gone.st_uid != session.account.uid and _credit_owner(session, st, gone):
        return
    _count(st, bytes_in=-gone.st_size, files_in=-1)


def _credit_owner(session: "Session", st: QuotaState, gone: os.stat_result) -> bool:
    """Someone else's file was deleted: its bytes go back to its owner's tally (the user's, else the group's),
    when that has a limit and a tally record."""
    owner, group = session.auth.getpwuid(gone.st_uid), session.auth.getgrgid(gone.st_gid)
    for name, quota_type in ((owner and owner.name, qt.USER), (group and group.name, qt.GROUP)):
        if name is None or _from_table(st, name, quota_type) is None:
            continue
        found = st.tallies.find(name, quota_type)
        if found is None:
            return False
        key, tally = found
        try:
            st.tallies.update(key, tally, st.limit, {"bytes_in": -gone.st_size, "files_in": -1})
        except (OSError, qt.BadTable) as e:
            st.log.write(f"error: unable to write tally: {e}")
        else:
            st.log.write(f"credited {'user' if quota_type == qt.USER else 'group'} '{name}' for the deleted "
                         "file/bytes")
        return True
    return False


def _pre_replace(session: "Session", cmd: Request) -> None:
    """RNTO over an old file, RMD with QuotaDirectoryTally: what goes away, to give back after."""
    st = _in_use(session)
    if st is None or (cmd.name in ("RMD", "XRMD") and not st.dirs):
        return
    st.replaced = None if _excluded(session, st, cmd) else _size(session, cmd.arg)


def _post_replace(session: "Session", cmd: Request) -> None:
    st = _in_use(session)
    if st is None or st.replaced is None or (cmd.name in ("RMD", "XRMD") and not st.dirs):
        return
    nbytes, st.replaced = st.replaced, None
    if cmd.name == "RNTO":
        _count(st, bytes_in=-nbytes, bytes_xfer=-nbytes, files_in=-1, files_xfer=-1)
    else:
        _count(st, bytes_in=-nbytes, files_in=-1, files_xfer=-1)


def _after_abor(session: "Session", cmd: Request) -> None:
    st = _in_use(session)
    if st is not None:
        st.aborted = True


# -- Display files -------------------------------------------------------------------------------------------------
VARIABLES = {f"{part}.{kind}_{way}": (part, f"{kind}_{way}")
             for part in ("limit", "tally") for kind in ("bytes", "files") for way in ("in", "out", "xfer")}


def variable(session: "Session", name: str) -> str | None:
    """`%{mod_quotatab.limit.bytes_in}` ... `%{mod_quotatab.tally.files_xfer}` (`name` without the module's
    prefix) once PASS read the tables, as ProFTPD's: 0 is "(unlimited)", in a tally too; None when unknown."""
    st = session.state.find(QuotaState)
    where = VARIABLES.get(name)
    if st is None or where is None or not session.authenticated or st.limits is None or st.tallies is None:
        return None
    part, field_name = where
    record = (st.limit if part == "limit" else st.tally) or (qt.Limit("") if part == "limit" else qt.Tally(""))
    value = getattr(record, field_name)
    if field_name.startswith("files"):
        return str(value) if value else "(unlimited)"
    size, unit = UNITS[st.units]
    if value / size <= 0:
        return "(unlimited)"
    return f"{value / size:.2f}" + (f" {unit.upper()}" if size > 1 else "")


# -- SITE QUOTA ----------------------------------------------------------------------------------------------------
def site_quota(session: "Session", cmd: Request) -> Reply:
    if not session.server.get("QuotaShowQuotas"):
        return Reply(500, "'SITE QUOTA' not understood.")
    if not limits_allow(session, "SITE_QUOTA", None, session.fs.resolve(".").real):
        return Reply(550, f"{cmd.arg}: {os.strerror(errno.EPERM)}")
    st = session.state.find(QuotaState)
    if st is not None:
        st.log.write(f"SITE QUOTA requested by user {session.user}")
    st = _in_use(session)
    if st is None:
        return Reply(202, "No quotas in effect")
    _refresh(st)
    limit, tally = st.limit, st.tally
    lines = [f"Name: {limit.name}", f"Quota Type: {qt.TYPE_LABELS.get(limit.quota_type, '(unknown)')}",
             f"Per Session: {'True' if limit.per_session else 'False'}",
             f"Limit Type: {qt.LIMIT_LABELS.get(limit.limit_type, '(unknown)')}"]
    for label, used, avail, kind in (("Uploaded", tally.bytes_in, limit.bytes_in, IN),
                                     ("Downloaded", tally.bytes_out, limit.bytes_out, OUT),
                                     ("Transferred", tally.bytes_xfer, limit.bytes_xfer, XFER)):
        lines.append(f"  {label} {_site_bytes(st, used, avail, kind)}")
    for label, used, avail in (("Uploaded", tally.files_in, limit.files_in),
                               ("Downloaded", tally.files_out, limit.files_out),
                               ("Transferred", tally.files_xfer, limit.files_xfer)):
        lines.append(f"  {label} files:\t{f'{used}/{avail}' if avail else 'unlimited'}")
    return Reply(200, f"Please contact {admin_address(session)} if these entries are inaccurate",
                 ["The current quota for this session are [current/limit]:"] + [" " + line for line in lines])


def _site_bytes(st: QuotaState, used: float, avail: float, kind: str) -> str:
    size, unit = UNITS[st.units]
    if size == 1:
        return f"bytes:\t{used:.2f}/{avail:.2f}" if avail > 0 else "bytes:\tunlimited"
    if avail / size <= 0:
        return f"{unit}:\tunlimited"
    return f"{unit}:\t{chr(9) if kind == IN else ''}{used / size:.2f}/{avail / size:.2f}"


commands = (
    Command("SITE QUOTA", site_quota, help="", module=NAME,
            replies=("200 The current quota for this session are [current/limit]: ...", "202 No quotas in effect",
                     "500 'SITE QUOTA' not understood. (QuotaShowQuotas off)")),
)

_uploads = ("STOR", "STOU", "APPE") + DIR_COMMANDS
hooks = (
    tuple(Hook(PRE_CMD, c, _pre_upload) for c in _uploads)
    + tuple(Hook(POST_CMD, c, lambda s, c: _after_upload(s, c, True)) for c in _uploads)
    + tuple(Hook(POST_CMD_ERR, c, lambda s, c: _after_upload(s, c, False)) for c in _uploads)
    + (Hook(PRE_CMD, "RETR", _pre_download),
       Hook(POST_CMD, "RETR", lambda s, c: _post_download(s, c, True)),
       Hook(POST_CMD_ERR, "RETR", lambda s, c: _post_download(s, c, False)),
       Hook(PRE_CMD, "DELE", _pre_dele), Hook(POST_CMD, "DELE", _post_dele),
       Hook(POST_CMD, "ABOR", _after_abor))
    + (Hook(PRE_CMD, "SITE", _pre_copy), Hook(POST_CMD, "SITE", lambda s, c: _post_copy(s, c, True)),
       Hook(POST_CMD_ERR, "SITE", lambda s, c: _post_copy(s, c, False)))
    + tuple(Hook(PRE_CMD, c, _pre_replace) for c in ("RNTO", "RMD", "XRMD"))
    + tuple(Hook(POST_CMD, c, _post_replace) for c in ("RNTO", "RMD", "XRMD"))
)
_engine = lambda config: config.sets("QuotaEngine")      # noqa: E731

MODULE = Module(NAME, directives=directives, commands=commands, variables=("mod_quotatab", variable),
                hooks=tuple(replace(h, active=_engine) for h in hooks), session_init=session_init,
                listeners=(Listener("core.session-reinit", lambda session, **_: session_init(session), _engine),
                           Listener("mod_auth.authenticated", _logged_in, _engine)))
