"""mod_statcache's table: stat(2)/lstat(2) results shared by every session process of the server, so a listing
or a SIZE that another session has just looked at costs no system call.

ProFTPD 1.3.8 keeps the table in an anonymous shared mapping made by the master (the StatCacheTable file only
carries the fcntl locks); proftpy maps the file itself, made by the master before it forks (so a session that
has chrooted and dropped root still reaches it), with an explicit, versioned layout:

    header   magic, version, header size, slot size, capacity, then ProFTPD's six counters (uint32 each):
             count, highest, hits, misses, expires, rejects (what `ftpdctl statcache info` shows)
    slots    capacity / 10 rows of 10 columns; a slot is: the time it was stored (Unix seconds, 0 = empty),
             ProFTPD's hash of the path, errno (0: a stat result; else a cached failure), the operation (1 stat,
             2 lstat), the path's length, the stat fields, the path (at most PATH_MAX bytes)

Keyed as ProFTPD keys it: the path (with the cwd in front) is hashed with djb2 (`path_hash`, C's signed char
included), the hash modulo the number of rows picks a row, the ten columns of the row are searched. ProFTPD
1.3.8's row r starts at entry r (its rows overlap, so only rows + 9 of its entries are ever used); here row r
owns entries 10r..10r+9, so the capacity is what StatCacheCapacity says.

Entries expire by age (StatCacheMaxAge: positive and negative ages): a lookup that finds its path too old clears
it (an expire); a store takes the first empty or expired column of its row, else is refused (a reject: the row
is full). An lstat entry of something that is not a symbolic link answers a stat too, as in ProFTPD.

Locking as ProFTPD's: an fcntl write lock over the row for a lookup or a change of it, and one over the header
for the counters, each held for microseconds (filelock.locked). A slot a hostile or dying process left half
written is read with bounds (path length, operation) and never trusted beyond them.
"""
from __future__ import annotations

import dataclasses
import fcntl
import mmap
import os
import stat as stat_
import struct

from . import filelock

MAGIC = b"PFTPYSC\x00"
VERSION = 1
COLS = 10                           # STATCACHE_COLS_PER_ROW
DEFAULT_CAPACITY = 5000
DEFAULT_MAX_AGE = 5                 # positive entries; negative ones default to 1 second
PATH_MAX = 4096
STAT, LSTAT = 1, 2                  # ProFTPD's FSIO_FILE_STAT, FSIO_FILE_LSTAT
COUNTERS = ("count", "highest", "hits", "misses", "expires", "rejects")
HEADER = struct.Struct(f"<8s I I I I {len(COUNTERS)}I")
_COUNTERS_AT = struct.calcsize("<8s I I I I")
# stored, hash, errno, op, path length, mode | ino, dev, nlink, uid, gid, size, atime/mtime/ctime ns, blksize,
# blocks, rdev | the path
SLOT_HEAD = struct.Struct("<q I i B x H I")
STAT_FIELDS = struct.Struct("<Q Q Q I I q q q q q q Q")
_PATH_AT = SLOT_HEAD.size + STAT_FIELDS.size
SLOT_SIZE = (_PATH_AT + PATH_MAX + 1 + 7) // 8 * 8
ROW_HEADS = struct.Struct("<" + f"q I i B x H I {SLOT_SIZE - SLOT_HEAD.size}x" * COLS)   # a row's heads at once
_COUNTS = struct.Struct("<6I")
_UINT32 = 0xFFFFFFFF


class StatCacheTableError(Exception):
    """The file cannot be used; one line for the administrator."""


def round_capacity(capacity: int) -> int:
    """StatCacheCapacity rounded up to a whole number of rows (ProFTPD's rule)."""
    return -(-capacity // COLS) * COLS


def path_hash(path: bytes) -> int:
    """ProFTPD's hash of a path: djb2 over C's (signed) chars, the high bit stripped."""
    h = 5381
    if path.isascii():
        for c in path:
            h = (h * 33 + c) & _UINT32
    else:
        for c in path:
            h = (h * 33 + (c - 256 if c > 127 else c)) & _UINT32
    return h & 0x7FFFFFFF


def _pack_stat(st: os.stat_result) -> bytes:
    return STAT_FIELDS.pack(st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, st.st_size, st.st_atime_ns,
                            st.st_mtime_ns, st.st_ctime_ns, st.st_blksize, st.st_blocks, st.st_rdev)


def _seconds(ns: int) -> float:
    s = ns // 1_000_000_000
    return s + (ns - s * 1_000_000_000) * 1e-9


def _unpack_stat(mode: int, raw: bytes | mmap.mmap, at: int) -> os.stat_result:
    ino, dev, nlink, uid, gid, size, atime, mtime, ctime, blksize, blocks, rdev = STAT_FIELDS.unpack_from(raw, at)
    return os.stat_result((mode, ino, dev, nlink, uid, gid, size, atime // 10**9, mtime // 10**9, ctime // 10**9),
                          {"st_atime": _seconds(atime), "st_mtime": _seconds(mtime), "st_ctime": _seconds(ctime),
                           "st_atime_ns": atime, "st_mtime_ns": mtime, "st_ctime_ns": ctime,
                           "st_blksize": blksize, "st_blocks": blocks, "st_rdev": rdev})


@dataclasses.dataclass(frozen=True)
class Entry:
    """One column of the table as `ftpdctl statcache dump` shows it."""
    path: str
    stored: int
    errno: int


class StatCacheTable:
    """The mapped file. `get`, `put`, `forget`, `counters`, `rows`; `now` is the caller's clock (Unix seconds)."""

    def __init__(self, path: str, fd: int, mm: mmap.mmap, capacity: int):
        self.path, self.fd, self.mm, self.capacity = path, fd, mm, capacity
        self.nrows = capacity // COLS

    @classmethod
    def create(cls, path: str, capacity: int = DEFAULT_CAPACITY) -> "StatCacheTable":
        """Open (creating) PATH and lay a fresh, empty table in it: what it held is dropped, as ProFTPD's master
        drops its table at each start and restart. Raises StatCacheTableError."""
        capacity = round_capacity(max(capacity, COLS))
        length = HEADER.size + capacity * SLOT_SIZE
        try:
            fd = filelock.open_table(path, "StatCacheTable")
        except (filelock.BadLocation, OSError) as e:        # the first names the table and says why already
            raise StatCacheTableError(str(e) if isinstance(e, filelock.BadLocation) else
                                      f"unable to open StatCacheTable '{path}': {e.strerror}") from None
        try:
            mm = filelock.map_table(fd, HEADER.pack(MAGIC, VERSION, HEADER.size, SLOT_SIZE, capacity,
                                                    *([0] * len(COUNTERS))), length)
        except OSError as e:
            os.close(fd)
            raise StatCacheTableError(f"unable to get shared memory for StatCacheTable '{path}': {e.strerror}") \
                from None
        return cls(path, fd, mm, capacity)

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)

    # -- the counters (under the header's lock) --------------------------------------------------------------------
    def _count(self, count: int = 0, hits: int = 0, misses: int = 0, expires: int = 0, rejects: int = 0) -> None:
        with filelock.locked(self.fd, fcntl.LOCK_EX, 0, HEADER.size):
            c, high, h, m, e, r = _COUNTS.unpack_from(self.mm, _COUNTERS_AT)
            c = c + count if c + count > 0 else 0
            _COUNTS.pack_into(self.mm, _COUNTERS_AT, c, c if c > high else high, (h + hits) & _UINT32,
                              (m + misses) & _UINT32, (e + expires) & _UINT32, (r + rejects) & _UINT32)

    def counters(self) -> dict[str, int]:
        with filelock.locked(self.fd, fcntl.LOCK_SH, 0, HEADER.size):
            return dict(zip(COUNTERS, _COUNTS.unpack_from(self.mm, _COUNTERS_AT)))

    # -- the rows ----------------------------------------------------------------------------------------------------
    def _row(self, h: int) -> int:
        """The offset of the row's first slot for a hash."""
        return HEADER.size + (h % self.nrows) * COLS * SLOT_SIZE

    def _holding(self, start: int, h: int, key: bytes) -> list[tuple[int, tuple]]:
        """(offset, head) of the columns of the row at `start` that hold `key` (its stat, its lstat)."""
        heads, mm, n_key = ROW_HEADS.unpack_from(self.mm, start), self.mm, len(key)
        out = []
        for c in range(COLS):
            head = heads[6 * c:6 * c + 6]
            at = start + c * SLOT_SIZE
            if head[0] and head[1] == h and head[4] == n_key and mm[at + _PATH_AT:at + _PATH_AT + n_key] == key:
                out.append((at, head))
        return out

    def get(self, key: bytes, op: int, now: int, ages: tuple[int, int]) -> os.stat_result | int | None:
        """The cached result for `key`: a stat_result, an errno (a cached failure), or None (a miss). An entry of
        `key` older than its age (`ages`: positive, negative seconds) is cleared on the way."""
        h, mm = path_hash(key), self.mm
        start = self._row(h)
        found: os.stat_result | int | None = None
        expired = 0
        with filelock.locked(self.fd, fcntl.LOCK_EX, start, ROW_HEADS.size):
            for at, (stored, _, err, slot_op, _, mode) in self._holding(start, h, key):
                if now > stored + (ages[1] if err else ages[0]):
                    mm[at:at + 8] = bytes(8)
                    expired += 1
                    continue
                if slot_op == op or (slot_op == LSTAT and not stat_.S_ISLNK(mode)):
                    found = err if err else _unpack_stat(mode, mm, at + SLOT_HEAD.size)
                    break
        hit = found is not None
        self._count(-expired, hit, not hit, expired)
        return found

    def put(self, key: bytes, op: int, result: os.stat_result | int, now: int, ages: tuple[int, int]) -> bool:
        """Store a result (a stat_result, or the errno of a failure) in the first empty or expired column of its
        row; False when the row is full (a reject) or the path too long to keep."""
        if len(key) > PATH_MAX:
            return False
        h, mm = path_hash(key), self.mm
        start = self._row(h)
        err = result if isinstance(result, int) else 0
        slot, expired = -1, 0
        with filelock.locked(self.fd, fcntl.LOCK_EX, start, ROW_HEADS.size):
            heads = ROW_HEADS.unpack_from(mm, start)
            for c in range(COLS):
                stored, slot_err = heads[6 * c], heads[6 * c + 2]
                if not stored or now > stored + (ages[1] if slot_err else ages[0]):
                    slot, expired = start + c * SLOT_SIZE, 1 if stored else 0
                    break
            if slot >= 0:
                mm[slot + SLOT_HEAD.size:slot + _PATH_AT] = bytes(STAT_FIELDS.size) if err else _pack_stat(result)
                mm[slot + _PATH_AT:slot + _PATH_AT + len(key) + 1] = key + b"\0"
                SLOT_HEAD.pack_into(mm, slot, now, h, err, op, len(key), 0 if err else result.st_mode & _UINT32)
        if slot < 0:
            self._count(rejects=1)
            return False
        self._count(count=1 - expired, expires=expired)
        return True

    def forget(self, key: bytes) -> int:
        """Clear every entry of `key` (its stat and its lstat); how many there were."""
        h, mm = path_hash(key), self.mm
        start = self._row(h)
        removed = 0
        with filelock.locked(self.fd, fcntl.LOCK_EX, start, ROW_HEADS.size):
            for at, _ in self._holding(start, h, key):
                mm[at:at + 8] = bytes(8)
                removed += 1
        if removed:
            self._count(count=-removed)
        return removed

    def forget_below(self, key: bytes) -> int:
        """Clear the entries of every path below `key` (a directory renamed or removed with what it held): one
        pass over the whole table."""
        prefix, mm, removed = key.rstrip(b"/") + b"/", self.mm, 0
        with filelock.locked(self.fd, fcntl.LOCK_EX, HEADER.size, self.nrows * ROW_HEADS.size):
            for r in range(self.nrows):
                start = HEADER.size + r * ROW_HEADS.size
                heads = ROW_HEADS.unpack_from(mm, start)
                for c in range(COLS):
                    at = start + c * SLOT_SIZE
                    n = heads[6 * c + 4]
                    if heads[6 * c] and n > len(prefix) and mm[at + _PATH_AT:at + _PATH_AT + len(prefix)] == prefix:
                        mm[at:at + 8] = bytes(8)
                        removed += 1
        if removed:
            self._count(count=-removed)
        return removed

    def rows(self) -> list[list[Entry | None]]:
        """Every row's columns (None: empty), read under a lock of the whole table."""
        out: list[list[Entry | None]] = []
        with filelock.locked(self.fd, fcntl.LOCK_SH):
            for r in range(self.nrows):
                row: list[Entry | None] = []
                for c in range(COLS):
                    at = HEADER.size + (r * COLS + c) * SLOT_SIZE
                    stored, _, err, _, n, _ = SLOT_HEAD.unpack_from(self.mm, at)
                    if not stored:
                        row.append(None)
                        continue
                    raw = self.mm[at + _PATH_AT:at + _PATH_AT + min(n, PATH_MAX)]
                    row.append(Entry(os.fsdecode(raw), stored, err))
                out.append(row)
        return out


def strerror(err: int) -> str:
    """C's strerror for a cached errno (a slot another process wrote may hold any number)."""
    try:
        return os.strerror(err)
    except ValueError:
        return f"Unknown error {err}"

