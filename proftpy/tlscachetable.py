"""mod_tls_shmcache's store (`TLSSessionCache shm:/file=PATH[&size=BYTES]`): TLS sessions shared by every session
process, so a client that reconnects resumes the session another process made.

ProFTPD keeps them in a SysV shared memory segment keyed by ftok(PATH, 247); proftpy keeps them in PATH itself,
mapped shared (mmap) by the master before it forks, so a session that has chrooted and dropped root still reaches
it, with an explicit, versioned layout:

    header   magic, version, header size, slot size, slot count, then the counters `ftpdctl tls sesscache
             info` shows (hits, misses, stored, deleted, expired, errors, exceeded, largest exceeded, evicted)
    slots    expires (Unix seconds, 0 = free), session ID length and ID (at most 32 bytes), DER length, CRC-32
             of all that, the order it was stored in (the `stored` counter), then the DER bytes (at most
             MAX_DATA: ProFTPD's TLS_MAX_SSL_SESSION_SIZE, 10 KiB)

Locking as in the other tables (filelock.py): one fcntl lock over the file, exclusive for every operation (a look
up counts a hit or a miss); each holds it for one scan of the slots' headers. A slot whose CRC does not match (a
process killed while writing it) is read as free, never resumed. A full table gives the slot of the session that
expires first (of those, the one stored first) to the new one (ProFTPD's keeps the new one in the process's own
memory instead).
"""
from __future__ import annotations

import dataclasses
import fcntl
import mmap
import os
import struct
import zlib

from . import filelock

MAGIC = b"PFTPYTC\x00"
VERSION = 1
MAX_ID = 32                     # SSL_MAX_SSL_SESSION_ID_LENGTH
MAX_DATA = 10 * 1024            # ProFTPD's TLS_MAX_SSL_SESSION_SIZE
DEFAULT_SIZE = 1538 * 1024      # ProFTPD's default (about 150 sessions)
COUNTERS = ("hits", "misses", "stored", "deleted", "expired", "errors", "exceeded", "exceeded_max", "evicted")
HEADER = struct.Struct(f"<8s I I I I {len(COUNTERS)}Q 4x")
SLOT = struct.Struct(f"<q B {MAX_ID}s 3x I I Q")    # expires, id length, id, DER length, crc, order
SLOT_SIZE = SLOT.size + MAX_DATA
MIN_SIZE = HEADER.size + SLOT_SIZE
_COUNTERS_AT = struct.calcsize("<8s I I I I")


class CacheTableError(Exception):
    """The file cannot be used; one line for the administrator."""


@dataclasses.dataclass(frozen=True)
class Info:
    slots: int
    used: int
    counters: dict


def slots_for(size: int) -> int:
    return SessionTable.slots_for(size)


def _crc(expires: int, sid: bytes, der: bytes) -> int:
    return zlib.crc32(der, zlib.crc32(struct.pack("<qB", expires, len(sid)) + sid))


class SlotTable:
    """A mapped file of fixed slots after a header of counters, each slot's first field (a time) 0 when free:
    what the shm: session store and the shm: OCSP response store (ocsptable.py) share. A subclass names its
    layout (MAGIC, HEADER, SLOT, SLOT_SIZE, COUNTERS), its smallest size and how many slots a size holds."""

    MAGIC, VERSION, HEADER, SLOT, SLOT_SIZE, COUNTERS = MAGIC, VERSION, HEADER, SLOT, SLOT_SIZE, COUNTERS
    MIN_SIZE, UNIT, WHAT = MIN_SIZE, "session slot", "TLSSessionCache"    # the size of one; the file's name in errors

    def __init__(self, path: str, fd: int, mm: mmap.mmap, slots: int):
        self.path, self.fd, self.mm, self.slots = path, fd, mm, slots

    @classmethod
    def slots_for(cls, size: int) -> int:
        return (size - cls.HEADER.size) // cls.SLOT_SIZE

    @classmethod
    def open(cls, path: str, size: int = DEFAULT_SIZE):
        """Open (creating) PATH with room for `size` bytes; a file of another layout or size is laid anew (it
        only held a cache). Raises CacheTableError."""
        if size < cls.MIN_SIZE:
            raise CacheTableError(f"size {size} is smaller than one {cls.UNIT} ({cls.MIN_SIZE} bytes)")
        slots = cls.slots_for(size)
        length = cls.HEADER.size + slots * cls.SLOT_SIZE
        try:
            fd = filelock.open_table(path, cls.WHAT)
        except filelock.BadLocation as e:
            raise CacheTableError(str(e)) from None
        except OSError as e:
            raise CacheTableError(f"unable to open file '{path}': {e.strerror}") from None
        try:
            mm = filelock.map_table(fd, cls.HEADER.pack(cls.MAGIC, cls.VERSION, cls.HEADER.size, cls.SLOT_SIZE, slots,
                                                        *([0] * len(cls.COUNTERS))), length, keep=_COUNTERS_AT)
        except OSError as e:
            os.close(fd)
            raise CacheTableError(f"unable to use file '{path}': {e.strerror}") from None
        return cls(path, fd, mm, slots)

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)

    # -- the counters ------------------------------------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        at = _COUNTERS_AT + 8 * self.COUNTERS.index(name)
        struct.pack_into("<Q", self.mm, at, struct.unpack_from("<Q", self.mm, at)[0] + n)

    def _counters(self) -> dict:
        return dict(zip(self.COUNTERS, struct.unpack_from(f"<{len(self.COUNTERS)}Q", self.mm, _COUNTERS_AT)))

    def _exceeded(self, size: int) -> None:
        """One more too big for a slot; the largest kept."""
        self._count("exceeded")
        if size > self._counters()["exceeded_max"]:
            struct.pack_into("<Q", self.mm, _COUNTERS_AT + 8 * self.COUNTERS.index("exceeded_max"), size)

    # -- the slots ---------------------------------------------------------------------------------------------
    def _at(self, i: int) -> int:
        return self.HEADER.size + i * self.SLOT_SIZE

    def _used(self, i: int) -> bool:
        return bool(struct.unpack_from("<q", self.mm, self._at(i))[0])

    def _free(self, i: int) -> None:
        at = self._at(i)
        self.mm[at:at + self.SLOT.size] = bytes(self.SLOT.size)

    def clear(self) -> int:
        """Free every slot; how many were in use."""
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            used = sum(1 for i in range(self.slots) if self._used(i))
            for i in range(self.slots):
                self._free(i)
            return used

    def info(self) -> Info:
        with filelock.locked(self.fd, fcntl.LOCK_SH):
            return Info(self.slots, sum(1 for i in range(self.slots) if self._used(i)), self._counters())


class SessionTable(SlotTable):
    """The sessions' file. `add`, `get`, `delete`, `clear`, `info`; `now` is the caller's clock (Unix seconds)."""

    def _find(self, sid: bytes) -> int:
        for i in range(self.slots):
            expires, n, found, _, _, _ = SLOT.unpack_from(self.mm, self._at(i))
            if expires and n == len(sid) and found[:n] == sid:
                return i
        return -1

    def add(self, sid: bytes, der: bytes, expires: int, now: int) -> bool:
        """Store a session; False when it is bigger than a slot (counted as exceeded, not stored)."""
        if not sid or len(sid) > MAX_ID:
            return False
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            if len(der) > MAX_DATA:
                self._exceeded(len(der))
                return False
            slot, oldest, first = self._find(sid), -1, None
            if slot < 0:
                for i in range(self.slots):
                    e, _, _, _, _, order = SLOT.unpack_from(self.mm, self._at(i))
                    if e == 0 or e <= now:
                        slot = i
                        break
                    if first is None or (e, order) < first:
                        oldest, first = i, (e, order)
                if slot < 0:
                    slot = oldest
                    self._count("evicted")
            at = self._at(slot)
            self._free(slot)
            order = self._counters()["stored"]
            self.mm[at + SLOT.size:at + SLOT.size + len(der)] = der
            self.mm[at:at + SLOT.size] = SLOT.pack(expires, len(sid), sid, len(der), _crc(expires, sid, der), order)
            self._count("stored")
        return True

    def get(self, sid: bytes, now: int) -> bytes | None:
        """The session's DER, or None (not there, expired: then freed, or torn)."""
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            slot = self._find(sid)
            if slot < 0:
                self._count("misses")
                return None
            at = self._at(slot)
            expires, n, _, size, crc, _ = SLOT.unpack_from(self.mm, at)
            der = self.mm[at + SLOT.size:at + SLOT.size + min(size, MAX_DATA)]
            if expires <= now:
                self._free(slot)
                self._count("expired")
                self._count("misses")
                return None
            if size > MAX_DATA or crc != _crc(expires, sid, der):
                self._free(slot)
                self._count("errors")
                self._count("misses")
                return None
            self._count("hits")
            return der

    def delete(self, sid: bytes) -> bool:
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            slot = self._find(sid)
            if slot < 0:
                return False
            self._free(slot)
            self._count("deleted")
            return True

    def entries(self) -> list[tuple[bytes, int]]:
        """(session ID, expires) of each slot in use."""
        out = []
        with filelock.locked(self.fd, fcntl.LOCK_SH):
            for i in range(self.slots):
                expires, n, sid, _, _, _ = SLOT.unpack_from(self.mm, self._at(i))
                if expires:
                    out.append((sid[:n], expires))
        return out
