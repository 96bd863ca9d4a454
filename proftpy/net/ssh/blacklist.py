"""SFTPKeyBlacklist: is a public key in a blacklist of partial MD5 fingerprints, Openwall's `SSH-FP00` format that
ProFTPD's mod_sftp reads (Debian's /etc/proftpd/blacklist.dat lists the keys of 2008's weak Debian OpenSSL)?

The file: a 16-byte header (`SSH-FP00`, index and offset sizes of 16 bits, the record size in bits, the number of
records in 24 bits, an offset shift in 16), an index of 65536 16-bit offsets (one per first 16 bits of the
fingerprint, stored less an expected value), then the sorted records: the fingerprint's next bytes. Only the few
bytes a lookup needs are read, so a key costs two small reads."""

from __future__ import annotations

import hashlib
import os
import struct

HEADER = struct.Struct(">8sBBB3sH")
INDEX = 0x20000


class BlacklistError(Exception):
    """The file cannot be read or is not in the format (the key is then not refused, as ProFTPD does)."""


def listed(path: str, blob: bytes) -> bool:
    """Is the key whose public blob is `blob` in the blacklist at `path`? Raises BlacklistError."""
    return fingerprint_listed(path, hashlib.md5(blob).digest())


def fingerprint_listed(path: str, fp: bytes) -> bool:
    """Is this MD5 fingerprint (16 bytes) in the blacklist at `path`? Raises BlacklistError."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(HEADER.size)
            if len(head) != HEADER.size or not head.startswith(b"SSH-FP"):
                raise BlacklistError("unknown format")
            version, index_bits, offset_bits, record_bits, count, shift = HEADER.unpack(head)
            width = (record_bits >> 3) - 2
            if version != b"SSH-FP00" or index_bits != 16 or offset_bits != 16 or not 0 < width <= 14:
                raise BlacklistError("unsupported format")
            records = int.from_bytes(count, "big")
            if size != HEADER.size + INDEX + records * width:
                raise BlacklistError(f"unexpected file size: expected {HEADER.size + INDEX + records * width}, "
                                     f"found {size}")
            idx = int.from_bytes(fp[:2], "big")
            f.seek(HEADER.size + idx * 2)
            offsets = f.read(4)
            start = int.from_bytes(offsets[:2], "big") + ((idx * records) >> 16) - shift
            end = (int.from_bytes(offsets[2:4], "big") + (((idx + 1) * records) >> 16) - shift
                   if idx < 0xFFFF else records)
            if not 0 <= start <= end <= records:
                raise BlacklistError(f"offset overflow for index {idx:#x}")
            f.seek(HEADER.size + INDEX + start * width)
            span = f.read((end - start) * width)
    except OSError as e:
        raise BlacklistError(e.strerror or str(e)) from None
    want = fp[2:2 + width]
    return any(span[i:i + width] == want for i in range(0, len(span), width))
