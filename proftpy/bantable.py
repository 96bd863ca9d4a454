"""mod_ban's shared table (BanTable): the bans and the BanOnEvent counters, shared by the master and every session.

ProFTPD keeps them in a SysV shared memory segment keyed by ftok(BanTable); proftpy keeps them in the BanTable file
itself, with an explicit, versioned layout (docs/ban.md), in the scoreboard's manner: every process reads and
writes it with pread/pwrite on an fd opened before fork (so a session that has chrooted and dropped root still
reaches it), and `proftpy ftpdctl`-side tools could read it the same way.

Locking: one fcntl record lock over the whole file, exclusive (F_SETLKW, blocking, never sleep-and-retry) for a
change, shared for a full read. A change is a few pwrites of whole slots, each one syscall, so it holds the lock
for microseconds, and a process killed with SIGKILL (the kernel drops its lock) leaves every slot either as it
was or as it was meant to be. Every slot carries a CRC-32 of its bytes: a slot that does not match (a torn or
scribbled file) is read as free, never trusted. The header's `generation` grows with every change to the ban
list, so the master's veto re-reads the bans only when they changed (one 8-byte pread per connection otherwise).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import stat
import struct
import time
import zlib
from typing import Iterator

from . import filelock

log = logging.getLogger("proftpy")

MAGIC = b"PFTPYBT\x00"
VERSION = 1                     # bump whenever a layout below changes
BAN_SLOTS = 512                 # ProFTPD's BAN_LIST_MAXSZ
EVENT_SLOTS = 512               # ProFTPD's BAN_EVENT_LIST_MAXSZ
TEXT = 128                      # ProFTPD's BAN_STRING_MAXSZ
FILE_MODE = 0o600                # only the master (root) opens it; sessions inherit its fd

# ban types (ProFTPD's numbers: they are also the Redis key's ban_type_id)
CLASS, HOST, USER, USER_HOST = 1, 2, 3, 4
TYPE_TEXT = {CLASS: "class", HOST: "host", USER: "user", USER_HOST: "user@host"}
TYPE_OF_TEXT = {v: k for k, v in TYPE_TEXT.items()}

# header: magic, version, header size, ban slot size, event slot size, ban slots, event slots, generation,
# created (Unix seconds), redis_down_since (Unix seconds a node first saw its Redis fail, 0 = reachable)
HEADER = struct.Struct("<8s I I I I I I Q q q 8x")
# ban slot: type, pad, sid, expires (0 = never), created, name, reason, message, crc
BAN = struct.Struct(f"<B 3x I q q {TEXT}s {TEXT}s {TEXT}s I")
# event slot: type, pad, sid, count, max, start, window, ban lifetime, source, event name, crc
EVENT = struct.Struct(f"<B 3x I I I q q q {TEXT}s 64s I")
BANS_AT = HEADER.size
EVENTS_AT = BANS_AT + BAN_SLOTS * BAN.size
SIZE = EVENTS_AT + EVENT_SLOTS * EVENT.size
_GENERATION_AT = struct.calcsize("<8s I I I I I I")
_DOWN_AT = _GENERATION_AT + 16


class BanTableError(Exception):
    """A table that cannot be used; one line for the administrator."""


@dataclasses.dataclass(frozen=True)
class Ban:
    type: int
    name: str
    sid: int                    # 0: every server (MatchAnyServer, or ftpdctl without -s)
    expires: int                # Unix seconds, 0 = never
    reason: str = ""
    message: str = ""           # the BanOnEvent rule's message, "" for none
    created: int = 0
    slot: int = -1

    def applies(self, sid: int, now: float) -> bool:
        return (self.sid == 0 or self.sid == sid) and (self.expires == 0 or self.expires > now)


@dataclasses.dataclass(frozen=True)
class EventEntry:
    type: int                   # the BanOnEvent event's number (modules/ban.py EVENTS)
    sid: int
    source: str                 # the host, user or user@host counted
    count: int
    max: int
    start: int                  # first occurrence: the window is fixed from here (not sliding)
    window: int
    lifetime: int               # seconds the ban lasts once `max` is reached
    name: str = ""              # the event name of a user-defined event
    slot: int = -1

    def expired(self, now: float) -> bool:
        return self.start + self.window <= now


def _text(value: str, size: int) -> bytes:
    raw = value.replace("\0", "").encode("utf-8", "surrogateescape")
    if len(raw) < size:
        return raw
    cut = size - 1
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:
        cut -= 1
    return raw[:cut]


def _str(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _sealed(st: struct.Struct, *values) -> bytes:
    body = st.pack(*values, 0)[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def _valid(raw: bytes) -> bool:
    return any(raw) and struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])


def pack_ban(b: Ban) -> bytes:
    return _sealed(BAN, b.type, b.sid, b.expires, b.created, _text(b.name, TEXT), _text(b.reason, TEXT),
                   _text(b.message, TEXT))


def pack_event(e: EventEntry) -> bytes:
    return _sealed(EVENT, e.type, e.sid, e.count, e.max, e.start, e.window, e.lifetime, _text(e.source, TEXT),
                   _text(e.name, 64))


class BanTable:
    """The open table file. Open it with create()/open(); one object per process (fcntl locks are a process's)."""

    def __init__(self, path: str, fd: int):
        self.path = path
        self.fd = fd
        self._bad_logged = False

    # -- opening ---------------------------------------------------------------------------------------------
    @classmethod
    def open_or_create(cls, path: str) -> "BanTable":
        """The master at start (and inetd sessions): keep a valid table (the bans of a master that died are kept,
        as ProFTPD's shared memory outlives it), recreate a corrupt or foreign one with a log line."""
        _check_location(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            raise BanTableError(f"unable to open BanTable '{path}': {e.strerror}") from None
        table = cls(path, fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise BanTableError(f"unable to use BanTable '{path}': not a regular file")
            with table.locked(fcntl.LOCK_EX):
                problem = table._problem(st.st_size)
                if problem is not None:
                    if st.st_size:
                        log.warning("BanTable %s %s: recreating it (its bans are lost)", path, problem)
                    os.ftruncate(fd, 0)
                    os.ftruncate(fd, SIZE)
                    os.pwrite(fd, HEADER.pack(MAGIC, VERSION, HEADER.size, BAN.size, EVENT.size, BAN_SLOTS,
                                              EVENT_SLOTS, 1, int(time.time()), 0), 0)
        except BaseException:
            os.close(fd)
            raise
        return table

    def _problem(self, size: int) -> str | None:
        if size == 0:
            return "is new"
        raw = os.pread(self.fd, HEADER.size, 0)
        if len(raw) < HEADER.size:
            return "is truncated"
        magic, version, hsize, bsize, esize, bans, events, *_ = HEADER.unpack(raw)
        if magic != MAGIC:
            return "is not a proftpy ban table (bad magic)"
        if version != VERSION:
            return f"has layout version {version}, not {VERSION}"
        if (hsize, bsize, esize, bans, events) != (HEADER.size, BAN.size, EVENT.size, BAN_SLOTS, EVENT_SLOTS) \
                or size != SIZE:
            return "has an unexpected size (corrupted?)"
        return None

    def remove(self) -> None:
        """Clean stop of a standalone master: the bans go, as ProFTPD removes its shared memory."""
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(self.fd), os.lstat(self.path)):
                os.unlink(self.path)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def locked(self, kind: int) -> contextlib.AbstractContextManager[None]:
        """The whole file's lock (exclusive for a change, shared for a full read)."""
        return filelock.locked(self.fd, kind)

    # -- reading ---------------------------------------------------------------------------------------------
    def generation(self) -> int:
        """Grows with every change of the ban list (read without a lock: one aligned 8-byte pread)."""
        raw = os.pread(self.fd, 8, _GENERATION_AT)
        return struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0

    def _slots(self, st: struct.Struct, at: int, count: int) -> Iterator[tuple[int, tuple]]:
        data = os.pread(self.fd, count * st.size, at)
        bad = 0
        size = st.size
        empty = bytes(size)             # a free slot: compared in C, not byte by byte in a generator
        for i in range(len(data) // size):
            raw = data[i * size:(i + 1) * size]
            if raw == empty:
                continue
            if not _valid(raw):
                bad += 1
                continue
            yield i, st.unpack(raw)
        if bad and not self._bad_logged:
            self._bad_logged = True
            log.warning("BanTable %s: %d damaged slot%s ignored", self.path, bad, "s" if bad != 1 else "")

    def _bans(self) -> list[Ban]:
        return [Ban(v[0], _str(v[4]), v[1], v[2], _str(v[5]), _str(v[6]), v[3], i)
                for i, v in self._slots(BAN, BANS_AT, BAN_SLOTS)]

    def _events(self) -> list[EventEntry]:
        return [EventEntry(v[0], v[1], _str(v[7]), v[2], v[3], v[4], v[5], v[6], _str(v[8]), i)
                for i, v in self._slots(EVENT, EVENTS_AT, EVENT_SLOTS)]

    def bans(self) -> tuple[int, list[Ban]]:
        """(generation, every ban slot in use), expired ones included, read under a shared lock."""
        with self.locked(fcntl.LOCK_SH):
            return self.generation(), self._bans()

    def events(self) -> list[EventEntry]:
        with self.locked(fcntl.LOCK_SH):
            return self._events()

    # -- writing (callers hold the exclusive lock: `with table.locked(fcntl.LOCK_EX)`) ------------------------
    def _bump(self) -> None:
        os.pwrite(self.fd, struct.pack("<Q", self.generation() + 1), _GENERATION_AT)

    def write_ban(self, ban: Ban, slot: int) -> None:
        os.pwrite(self.fd, pack_ban(ban), BANS_AT + slot * BAN.size)
        self._bump()

    def clear_ban(self, slot: int) -> None:
        os.pwrite(self.fd, bytes(BAN.size), BANS_AT + slot * BAN.size)
        self._bump()

    def write_event(self, entry: EventEntry, slot: int) -> None:
        os.pwrite(self.fd, pack_event(entry), EVENTS_AT + slot * EVENT.size)

    def clear_event(self, slot: int) -> None:
        os.pwrite(self.fd, bytes(EVENT.size), EVENTS_AT + slot * EVENT.size)

    def add_ban(self, ban: Ban) -> bool:
        """Into the first free slot (an expired ban's slot counts as free); False when all are taken."""
        now = time.time()
        used = {b.slot: b for b in self._bans()}
        for slot in range(BAN_SLOTS):
            old = used.get(slot)
            if old is None or (old.expires and old.expires <= now):
                self.write_ban(ban, slot)
                return True
        return False

    # -- the node's Redis state (so that only the first process to see Redis fail logs it) -------------------
    def redis_down_since(self) -> int:
        raw = os.pread(self.fd, 8, _DOWN_AT)
        return struct.unpack("<q", raw)[0] if len(raw) == 8 else 0

    def set_redis_down(self, since: int) -> int:
        """Record the loss (since > 0) or the return (0); returns the value before, read under the lock."""
        with self.locked(fcntl.LOCK_EX):
            before = self.redis_down_since()
            if since or before:             # a failure also restarts the back-off
                os.pwrite(self.fd, struct.pack("<q", since), _DOWN_AT)
        return before


def _check_location(path: str) -> None:
    try:
        filelock.check_location(path, "BanTable", sticky_ok=True)
    except filelock.BadLocation as e:
        raise BanTableError(str(e)) from None
