"""The shm: OCSP response store (ocsptable.py) and its cache (tls_ocspcache.ShmCache): what is stored comes back
with its time, a certificate's new response replaces its old one, a full table gives up the response stored
first, a response bigger than a slot is refused and counted (the process keeps it), a torn slot is never
returned, another process sees what one stored, and the sizes are ProFTPD's."""

from __future__ import annotations

import os

import pytest

from proftpy.modules.tls_ocspcache import ShmCache
from proftpy.ocsptable import (DEFAULT_SIZE, HEADER, MAX_DATA, MIN_SIZE, SLOT, SLOT_SIZE, OcspTable, OcspTableError,
                               slots_for)

FP = ["%040x" % i for i in range(5)]        # SHA1 fingerprints, hex


@pytest.fixture
def table(tmp_path):
    t = OcspTable.open(str(tmp_path / "ocspcache"), MIN_SIZE + 2 * 4176)
    yield t
    t.close()


def test_sizes_hold_as_many_responses_as_proftpds_segment():
    assert slots_for(DEFAULT_SIZE) == 377                # (1538 KiB - 48) // 4176: ProFTPD's "Max response cache size"
    assert slots_for(MIN_SIZE) == 1 and slots_for(MIN_SIZE - 1) == 0


def test_stored_responses_come_back_with_their_time(table):
    assert table.slots == 3
    assert table.add(FP[0], b"DER-0", now=100) and table.add(FP[1], b"DER-1", now=200)
    assert table.get(FP[0]) == (b"DER-0", 100) and table.get(FP[1]) == (b"DER-1", 200)
    assert table.add(FP[0], b"DER-0b", now=300)          # the same certificate: replaced, one slot
    assert table.get(FP[0]) == (b"DER-0b", 300) and table.info().used == 2
    assert table.get(FP[2]) is None
    assert table.delete(FP[1]) and not table.delete(FP[1])
    info = table.info()
    assert info.used == 1
    assert {k: info.counters[k] for k in ("hits", "misses", "stored", "deleted")} == \
        dict(hits=3, misses=1, stored=3, deleted=1)
    assert table.clear() == 1 and table.info().used == 0


def test_a_full_table_gives_up_the_response_stored_first(table):
    for i in range(3):
        table.add(FP[i], b"v%d" % i, now=10 + i)
    table.add(FP[3], b"v3", now=20)
    assert table.get(FP[0]) is None and table.get(FP[3]) == (b"v3", 20)
    assert table.info().counters["expired"] == 1


def test_a_response_bigger_than_a_slot_is_refused_and_counted(table, tmp_path):
    assert not table.add(FP[0], b"x" * (MAX_DATA + 1), now=1)
    c = table.info().counters
    assert c["exceeded"] == 1 and c["exceeded_max"] == MAX_DATA + 1 and table.info().used == 0
    cache = ShmCache(table.path, 0)
    cache.table = table
    cache.add(FP[0], b"x" * (MAX_DATA + 1))               # kept by this process
    assert cache.get(FP[0])[0] == b"x" * (MAX_DATA + 1)
    cache.delete(FP[0])
    with pytest.raises(OSError):
        cache.get(FP[0])


def test_a_torn_slot_is_never_returned(table):
    table.add(FP[0], b"DER-0", now=5)
    at = HEADER.size + SLOT.size
    table.mm[at:at + 1] = b"X"                           # the DER changed under its CRC
    assert table.get(FP[0]) is None
    assert table.info().counters["errors"] == 1 and table.info().used == 0


def test_another_process_sees_what_one_stored(table):
    pid = os.fork()
    if pid == 0:
        try:
            table.add(FP[4], b"from-child", now=42)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert table.get(FP[4]) == (b"from-child", 42)


def test_reopening_keeps_what_it_holds_and_another_size_lays_it_anew(tmp_path):
    path = str(tmp_path / "ocsp")
    t = OcspTable.open(path, MIN_SIZE)
    t.add(FP[0], b"kept", now=7)
    t.close()
    t = OcspTable.open(path, MIN_SIZE)
    assert t.get(FP[0]) == (b"kept", 7)
    t.close()
    t = OcspTable.open(path, MIN_SIZE + SLOT_SIZE)
    assert t.get(FP[0]) is None and os.path.getsize(path) == HEADER.size + 2 * SLOT_SIZE
    t.close()
    with pytest.raises(OcspTableError, match="smaller than one response"):
        OcspTable.open(path, MIN_SIZE - 1)
    os.mkdir(tmp_path / "dir")
    with pytest.raises(OcspTableError, match="Is a directory"):
        OcspTable.open(str(tmp_path / "dir"), MIN_SIZE)


class FakeLink:
    """A bancache link's calls over a dict (what memcached or Redis would hold)."""

    def __init__(self):
        self.items: dict[bytes, bytes] = {}
        self.state = self.keeping = self.sharing = None

    def get(self, key):
        return self.items.get(key)

    def put(self, key, value, expires):
        assert expires == 0                             # no expiration, as ProFTPD writes them
        self.items[key] = value

    def delete(self, key):
        self.items.pop(key, None)

    def count(self, key, window):
        self.items[key] = str(int(self.items.get(key, b"0")) + 1).encode()


def test_memcache_entries_are_mod_tls_memcaches():
    from proftpy.modules.tls_ocspcache import LinkCache
    link = FakeLink()
    cache = LinkCache("memcache", link, b"mod_tls_memcache.ocsp.", "provider")
    cache.add(FP[1], b"\x30\x03\x0a\x01\x03")
    key = b'mod_tls_memcache.ocsp.{"fingerprint":"' + FP[1].encode() + b'"}\0'
    value = link.items[key]
    assert value.endswith(b"}\0") and value.startswith(b'{"expires":')
    assert value[value.index(b',"response"'):] == b',"response":"MAMKAQM=","response_len":5}\0'
    assert cache.get(FP[1]) == (b"\x30\x03\x0a\x01\x03", 0)
    big = b"y" * (MAX_DATA + 1)                           # over ProFTPD's 4 KiB: kept by this process only
    cache.add(FP[2], big)
    assert cache.get(FP[2])[0] == big and len(link.items) == 4     # the entry, cache_stores, cache_hits, cache_exceeds
    link.items[key] = b"not json\0"
    with pytest.raises(OSError, match="badly formatted"):
        cache.get(FP[1])
    assert link.items[b"mod_tls_memcache.ocsp.cache_errors"] == b"1"
    assert link.items[b"mod_tls_memcache.ocsp.cache_stores"] == b"1"
    assert cache.clear() == 1 and cache.remove() == 0
    with pytest.raises(OSError):
        cache.get(FP[3])
