"""mod_tls_shmcache's OCSP response store (`TLSStaplingCache shm:/file=PATH[&size=BYTES]`): stapled responses
shared by every session process of the daemon, so a response one session fetched is stapled by the next ones.

ProFTPD keeps them in a SysV segment keyed by ftok(PATH, 249); proftpy keeps them in PATH itself, mapped shared
by the master before it forks (as tlscachetable.py does for sessions; not shared with a ProFTPD node). Layout:

    header   magic, version, header size, slot size, slot count, then the counters `ftpdctl tls ocspcache info`
             shows (hits, misses, stored, deleted, expired, errors, exceeded, largest exceeded)
    slots    the time stored (Unix seconds, 0 = free), fingerprint length and fingerprint (the hex text, at most
             EVP_MAX_MD_SIZE bytes, as ProFTPD's), DER length, CRC-32 of all that, then the DER (at most
             MAX_DATA: ProFTPD's TLS_MAX_OCSP_RESPONSE_SIZE, 4 KiB)

A size holds as many responses as ProFTPD's segment of that size would (its 4176-byte entries after a 48-byte
header). One fcntl lock over the file, exclusive for each operation. A full table gives the slot of the response
stored first to the new one (counted as expired: ProFTPD's flush); a response larger than a slot is not stored
(counted as exceeded; the caller keeps it in its own process, as ProFTPD does). A slot whose CRC does not match
(a process killed while writing it) is freed and counted as an error. What the two stores share:
tlscachetable.SlotTable."""
from __future__ import annotations

import fcntl
import struct
import zlib

from . import filelock
from .tlscachetable import CacheTableError, SlotTable

MAX_FINGERPRINT = 64            # EVP_MAX_MD_SIZE
MAX_DATA = 4 * 1024             # ProFTPD's TLS_MAX_OCSP_RESPONSE_SIZE
DEFAULT_SIZE = 1538 * 1024      # ProFTPD's default
PROFTPD_HEADER, PROFTPD_ENTRY = 48, 4176    # sizeof(struct ocspcache_data), sizeof(struct ocspcache_entry)
MIN_SIZE = PROFTPD_HEADER + PROFTPD_ENTRY   # room for one response: ProFTPD's minimum
COUNTERS = ("hits", "misses", "stored", "deleted", "expired", "errors", "exceeded", "exceeded_max")
HEADER = struct.Struct(f"<8s I I I I {len(COUNTERS)}Q")
SLOT = struct.Struct(f"<q B {MAX_FINGERPRINT}s 3x I I")     # stored, fingerprint length, fingerprint, DER length, crc
SLOT_SIZE = SLOT.size + MAX_DATA
OcspTableError = CacheTableError


def slots_for(size: int) -> int:
    return OcspTable.slots_for(size)


def _crc(stored: int, fingerprint: bytes, der: bytes) -> int:
    return zlib.crc32(der, zlib.crc32(struct.pack("<qB", stored, len(fingerprint)) + fingerprint))


class OcspTable(SlotTable):
    """The responses' file: `add`, `get`, `delete`, `clear`, `info`; `now` is the caller's clock (Unix seconds)."""

    MAGIC, HEADER, SLOT, SLOT_SIZE, COUNTERS = b"PFTPYOC\x00", HEADER, SLOT, SLOT_SIZE, COUNTERS
    MIN_SIZE, UNIT, WHAT = MIN_SIZE, "response", "file"

    @classmethod
    def slots_for(cls, size: int) -> int:
        return (size - PROFTPD_HEADER) // PROFTPD_ENTRY

    @classmethod
    def open(cls, path: str, size: int = DEFAULT_SIZE) -> "OcspTable":
        return super().open(path, size)

    def _slot(self, i: int) -> tuple[int, bytes, int, int]:
        stored, n, fingerprint, size, crc = SLOT.unpack_from(self.mm, self._at(i))
        return stored, fingerprint[:n], size, crc

    def _find(self, fingerprint: bytes) -> int:
        for i in range(self.slots):
            stored, found, _, _ = self._slot(i)
            if stored and found == fingerprint:
                return i
        return -1

    def add(self, fingerprint: str, der: bytes, now: int) -> bool:
        """Store a response (replacing the certificate's previous one); False when it is bigger than a slot."""
        fp = fingerprint.encode("ascii")
        if not fp or len(fp) > MAX_FINGERPRINT:
            return False
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            if len(der) > MAX_DATA:
                self._exceeded(len(der))
                return False
            slot = self._find(fp)
            if slot < 0:
                ages = [(self._slot(i)[0], i) for i in range(self.slots)]
                slot = next((i for stored, i in ages if not stored), -1)
                if slot < 0:
                    slot = min(ages)[1]
                    self._count("expired")
            at = self._at(slot)
            self._free(slot)
            self.mm[at + SLOT.size:at + SLOT.size + len(der)] = der
            self.mm[at:at + SLOT.size] = SLOT.pack(now, len(fp), fp, len(der), _crc(now, fp, der))
            self._count("stored")
        return True

    def get(self, fingerprint: str) -> tuple[bytes, int] | None:
        """(DER, time stored) of the certificate's response, or None (not there, or torn: then freed)."""
        fp = fingerprint.encode("ascii")
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            slot = self._find(fp)
            if slot < 0:
                self._count("misses")
                return None
            stored, _, size, crc = self._slot(slot)
            at = self._at(slot)
            der = self.mm[at + SLOT.size:at + SLOT.size + min(size, MAX_DATA)]
            if size > MAX_DATA or crc != _crc(stored, fp, der):
                self._free(slot)
                self._count("errors")
                self._count("misses")
                return None
            self._count("hits")
            return der, stored

    def delete(self, fingerprint: str) -> bool:
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            slot = self._find(fingerprint.encode("ascii"))
            if slot < 0:
                return False
            self._free(slot)
            self._count("deleted")
            return True
