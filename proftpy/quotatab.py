"""mod_quotatab_file's tables, byte for byte: a limit table and a tally table, each a 4-byte magic number and then
fixed-size records, in the machine's byte order, so that ProFTPD, its `ftpquota` script and proftpy share them.

Record layouts, without padding: a limit record (126 bytes, after the magic 0x7626) is the name (81 bytes,
NUL-padded), the quota type (int32), per-session (uint8), the limit type (int32), bytes in/out/xfer available (3 x
double) and files in/out/xfer available (3 x uint32); a tally record (121 bytes, after 0x7644) is the name, the
quota type, bytes in/out/xfer used (3 x double) and files in/out/xfer used (3 x uint32).

A byte limit of 0 or less and a file limit of 0 mean unlimited; a byte value that is not a finite number (NaN,
infinity: never written by ftpquota) is read as 0, which is what ProFTPD's comparisons make of it in a limit. The
daemon locks the record it reads or writes with
an fcntl record lock over that record's bytes (as ProFTPD's mod_quotatab_file), so updates from ProFTPD and proftpy
sessions of one table do not tear each other's records.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import struct
from dataclasses import astuple, dataclass
from typing import Any, Callable, Iterator, Union

ALL, USER, GROUP, CLASS = 10, 20, 30, 40
HARD, SOFT = 1, 2
# the words configurations and ftpquota take, and the labels SITE QUOTA and --show-records print
TYPE_WORDS = {"all": ALL, "user": USER, "group": GROUP, "class": CLASS}
TYPE_LABELS = {ALL: "All", USER: "User", GROUP: "Group", CLASS: "Class"}
LIMIT_WORDS = {"hard": HARD, "soft": SOFT}
LIMIT_LABELS = {HARD: "Hard", SOFT: "Soft"}
NAME_SIZE = 81
MAGIC = struct.Struct("=I")
LIMIT_MAGIC, TALLY_MAGIC = 0x7626, 0x7644
LIMIT = struct.Struct("=81siBi3d3I")
TALLY = struct.Struct("=81si3d3I")
UINT_MAX = 0xFFFFFFFF


class BadTable(Exception):
    """The file is not a table of the kind asked for (its magic number, or a record cut short)."""


@dataclass
class Limit:
    """One limit record (ProFTPD's quota_limit_t)."""

    name: str
    quota_type: int = USER
    per_session: bool = False
    limit_type: int = HARD
    bytes_in: float = 0.0
    bytes_out: float = 0.0
    bytes_xfer: float = 0.0
    files_in: int = 0
    files_out: int = 0
    files_xfer: int = 0

    def pack(self) -> bytes:
        return LIMIT.pack(_name(self.name), self.quota_type, 1 if self.per_session else 0, self.limit_type,
                          self.bytes_in, self.bytes_out, self.bytes_xfer, self.files_in, self.files_out,
                          self.files_xfer)

    def limited(self, **deltas: float) -> dict[str, float]:
        """The changes of a tally (field name -> delta) that count under this limit: those of a byte value above 0
        and of a file value other than 0; the others are unlimited and not tallied (ProFTPD's rule)."""
        return {name: delta for name, delta in deltas.items()
                if (getattr(self, name) > 0 if name.startswith("bytes") else getattr(self, name))}

    @classmethod
    def unpack(cls, data: bytes) -> "Limit":
        name, qtype, per, ltype, *values = LIMIT.unpack(data)
        return cls(_unname(name), qtype, bool(per), ltype, *_finite(values))


@dataclass
class Tally:
    """One tally record (ProFTPD's quota_tally_t): what a user, group, class or everyone used so far."""

    name: str
    quota_type: int = USER
    bytes_in: float = 0.0
    bytes_out: float = 0.0
    bytes_xfer: float = 0.0
    files_in: int = 0
    files_out: int = 0
    files_xfer: int = 0

    def pack(self) -> bytes:
        return TALLY.pack(_name(self.name), *astuple(self)[1:])

    @classmethod
    def unpack(cls, data: bytes) -> "Tally":
        name, qtype, *values = TALLY.unpack(data)
        return cls(_unname(name), qtype, *_finite(values))

    def add(self, limit: Limit, bytes_in: float = 0, bytes_out: float = 0, bytes_xfer: float = 0,
            files_in: int = 0, files_out: int = 0, files_xfer: int = 0) -> None:
        """Count a change where `limit` sets a limit (an unlimited value is not tallied, as ProFTPD's); bytes never
        go below 0, a file count never below 0 nor past 2^32-1."""
        for name, delta in limit.limited(bytes_in=bytes_in, bytes_out=bytes_out, bytes_xfer=bytes_xfer,
                                         files_in=files_in, files_out=files_out, files_xfer=files_xfer).items():
            value = getattr(self, name) + delta
            setattr(self, name, max(0.0, value) if name.startswith("bytes") else min(UINT_MAX, max(0, value)))


Record = Union[Limit, Tally]
KINDS = {"limit": (LIMIT_MAGIC, LIMIT, Limit), "tally": (TALLY_MAGIC, TALLY, Tally)}


def _finite(values: list) -> list:
    """The byte values (floats) that are not finite numbers as 0.0; file counts as they are."""
    return [0.0 if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def _name(name: str) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) >= NAME_SIZE:
        raise ValueError(f"name longer than {NAME_SIZE - 1} bytes: {name!r}")
    return raw


def _unname(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Source:
    """One source type of QuotaLimitTable/QuotaTallyTable (`file:`, `sql:`), declared by the module that has it.

    `parse(info, kind)` checks the text after `type:` when the configuration loads (ValueError: refused) and gives
    what `open(session, info, kind, lock_fd, log)` gets when a session starts; that returns a table, or None after
    logging why not (the session then has no quotas). A table has `find(name, quota_type)` -> (key, record) or
    None, `find_or_add(tally)` -> (key, tally, added), `fetch(key)` -> the record read again (None: gone),
    `update(key, tally, limit, deltas)` -> the tally with the deltas counted, and `close()`; its errors are OSError
    or BadTable."""

    kind: str
    parse: Callable[[str, str], Any]
    open: Callable[..., Any]


class Table:
    """An open limit or tally table (the `file:` source). Offsets are those of records in the file; the caller locks what it reads
    and writes with `locked`."""

    def __init__(self, fd: int, kind: str):
        self.fd = fd
        self.kind = kind
        magic, self.layout, self.record = KINDS[kind]
        head = os.pread(fd, MAGIC.size, 0)
        if len(head) != MAGIC.size or MAGIC.unpack(head)[0] != magic:
            raise BadTable("bad table header")

    @classmethod
    def open(cls, path: str, kind: str, writable: bool = False) -> "Table":
        fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC)
        try:
            return cls(fd, kind)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def size(self) -> int:
        return self.layout.size

    def records(self) -> Iterator[tuple[int, Record]]:
        """Every whole record with its offset, in file order (a cut-off tail is left out)."""
        offset = MAGIC.size
        while True:
            data = os.pread(self.fd, self.size, offset)
            if len(data) < self.size:
                return
            yield offset, self.record.unpack(data)
            offset += self.size

    def find(self, name: str | None, quota_type: int) -> tuple[int, Record] | None:
        """The first record of `quota_type` named `name` (for ALL: the first of that type, whatever its name)."""
        for offset, record in self.records():
            if record.quota_type == quota_type and (quota_type == ALL or record.name == name):
                return offset, record
        return None

    def read(self, offset: int) -> Record:
        data = os.pread(self.fd, self.size, offset)
        if len(data) < self.size:
            raise BadTable(f"record at {offset} cut short")
        return self.record.unpack(data)

    def write(self, offset: int, record: Record) -> None:
        data = record.pack()
        if os.pwrite(self.fd, data, offset) != len(data):
            raise OSError("short write to the quota table")

    def append(self, record: Record) -> int:
        """Add a record after the last whole one; its offset. Two sessions adding at once are kept apart by the
        lock on the bytes after the end (the range ProFTPD locks for a new record)."""
        end = os.fstat(self.fd).st_size
        end -= (end - MAGIC.size) % self.size           # a torn tail is overwritten
        with self.locked(end, exclusive=True):
            end = os.fstat(self.fd).st_size
            end -= (end - MAGIC.size) % self.size
            self.write(end, record)
        return end

    def find_or_add(self, record: Record) -> tuple[int, Record, bool]:
        """(offset, record, whether it was added): the record of `record`'s name and type, else `record` appended.
        Sessions making the same record at once make one: the look-up and the append hold an exclusive lock on
        the header (no record lives there, so ProFTPD's record locks never meet it)."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX, MAGIC.size, 0, os.SEEK_SET)
        try:
            found = self.find(record.name if record.quota_type != ALL else None, record.quota_type)
            if found is not None:
                return found[0], found[1], False
            return self.append(record), record, True
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, MAGIC.size, 0, os.SEEK_SET)

    def fetch(self, offset: int) -> Record:
        """The record at `offset` read again, under a shared lock (other sessions may have counted since)."""
        with self.locked(offset, exclusive=False):
            return self.read(offset)

    def update(self, offset: int, tally: Tally, limit: Limit, deltas: dict[str, float]) -> Tally:
        """The tally record at `offset` read again, `deltas` added where `limit` limits, written back, all under an
        exclusive lock; the new tally (`tally`, the session's copy, is not needed: the file has the record)."""
        with self.locked(offset, exclusive=True):
            record = self.read(offset)
            record.add(limit, **deltas)
            self.write(offset, record)
        return record

    @contextlib.contextmanager
    def locked(self, offset: int, exclusive: bool) -> Iterator[None]:
        """An fcntl record lock over the record at `offset`, waited for."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, self.size, offset, os.SEEK_SET)
        try:
            yield
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, self.size, offset, os.SEEK_SET)


def create(path: str, kind: str, records: tuple[Record, ...] = (), mode: int = 0o644) -> None:
    """A new table: the magic number, then `records` (none: an empty table); refuses to replace a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        data = MAGIC.pack(KINDS[kind][0]) + b"".join(record.pack() for record in records)
        if os.write(fd, data) != len(data):
            raise OSError("short write to the quota table")
    finally:
        os.close(fd)
