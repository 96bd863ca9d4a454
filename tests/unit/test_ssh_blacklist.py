"""SFTPKeyBlacklist's reader (proftpy/net/ssh/blacklist.py) against files in Openwall's SSH-FP00 format: one made
here for chosen fingerprints, and Debian's own /etc/proftpd/blacklist.dat when it is installed."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest

from proftpy.net.ssh.blacklist import HEADER, INDEX, BlacklistError, fingerprint_listed, listed
from ssh_client import write_blacklist

DEBIAN = Path("/etc/proftpd/blacklist.dat")


def test_listed_and_not_listed(tmp_path):
    blobs = [os.urandom(51) for _ in range(5)]
    path = tmp_path / "bl.dat"
    write_blacklist(path, [hashlib.md5(b).digest() for b in blobs[:3]])
    assert [listed(str(path), b) for b in blobs] == [True, True, True, False, False]


def test_fingerprints_sharing_an_index_and_the_last_index(tmp_path):
    fps = [b"\x12\x34" + os.urandom(14), b"\x12\x34" + os.urandom(14), b"\xff\xff" + os.urandom(14)]
    path = tmp_path / "bl.dat"
    write_blacklist(path, fps, width=6)
    assert all(fingerprint_listed(str(path), fp) for fp in fps)
    assert not fingerprint_listed(str(path), b"\x12\x34" + bytes(14))
    assert not fingerprint_listed(str(path), b"\x00\x00" + bytes(14))


@pytest.mark.parametrize("damage, message", [
    (lambda data: b"XXX" + data[3:], "unknown format"),
    (lambda data: b"SSH-FP01" + data[8:], "unsupported format"),
    (lambda data: data[:-1], "unexpected file size"),
    (lambda data: data[:10], "unknown format"),
])
def test_a_broken_file_is_an_error(tmp_path, damage, message):
    path = tmp_path / "bl.dat"
    write_blacklist(path, [bytes(16)])
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(BlacklistError, match=message):
        listed(str(path), b"key")
    with pytest.raises(BlacklistError):
        listed(str(tmp_path / "missing.dat"), b"key")


@pytest.mark.skipif(not DEBIAN.exists(), reason="Debian's proftpd-core blacklist.dat is not installed")
def test_debians_blacklist_read_as_proftpd():
    """The records of a few indexes of Debian's file, read back through the index: each is found, a changed one
    is not (the offsets with the file's shift land on the right records)."""
    data = DEBIAN.read_bytes()
    _, _, _, bits, count, shift = HEADER.unpack(data[:HEADER.size])
    width, records = (bits >> 3) - 2, int.from_bytes(count, "big")
    tested = 0
    for idx in (0, 1, 0x1234, 0x8000, 0xabcd, 0xfffe):
        stored, following = struct.unpack(">HH", data[HEADER.size + idx * 2:HEADER.size + idx * 2 + 4])
        start = stored + ((idx * records) >> 16) - shift
        end = following + (((idx + 1) * records) >> 16) - shift
        for n in range(start, min(end, start + 3)):
            rec = data[HEADER.size + INDEX + n * width:HEADER.size + INDEX + (n + 1) * width]
            assert fingerprint_listed(str(DEBIAN), idx.to_bytes(2, "big") + rec + bytes(14 - width))
            tested += 1
    assert tested >= 6
    assert not listed(str(DEBIAN), os.urandom(40))
