"""The shm: session store (tlscachetable.py) and the redis:/memcache: values (tls_cache.py): what is stored comes
back until it expires, a full table gives up its oldest entry, a session bigger than a slot is refused and
counted, a torn slot is never returned, another process sees what one stored, and the JSON is ProFTPD's."""

from __future__ import annotations

import json
import os

import pytest

from proftpy.modules.tls_cache import MEMCACHE_PREFIX, REDIS_PREFIX, decode, encode, key_of
from proftpy.tlscachetable import HEADER, MAX_DATA, MIN_SIZE, SLOT_SIZE, CacheTableError, SessionTable, slots_for


@pytest.fixture
def table(tmp_path):
    t = SessionTable.open(str(tmp_path / "sesscache"), HEADER.size + 3 * SLOT_SIZE)
    yield t
    t.close()


def test_stored_sessions_come_back_until_they_expire(table):
    assert table.add(b"a" * 32, b"DER-a", 1000, now=10)
    assert table.add(b"b", b"DER-b", 20, now=10)
    assert table.get(b"a" * 32, now=11) == b"DER-a" and table.get(b"b", now=11) == b"DER-b"
    assert table.get(b"b", now=20) is None            # expired: freed
    assert table.get(b"c", now=11) is None
    assert table.delete(b"a" * 32) and not table.delete(b"a" * 32)
    info = table.info()
    assert info.slots == 3 and info.used == 0
    assert {k: info.counters[k] for k in ("hits", "misses", "stored", "deleted", "expired")} == \
        dict(hits=2, misses=2, stored=2, deleted=1, expired=1)


def test_a_full_table_evicts_the_oldest_and_an_update_keeps_its_slot(table):
    for i in range(3):
        table.add(bytes([i]), b"v%d" % i, 100, now=1)
    table.add(bytes([1]), b"new", 100, now=1)          # the same ID: its own slot again
    table.add(b"x", b"vx", 100, now=1)                 # full: the first stored goes
    assert table.get(bytes([0]), now=2) is None
    assert table.get(bytes([1]), now=2) == b"new" and table.get(b"x", now=2) == b"vx"
    assert table.info().counters["evicted"] == 1
    table.add(b"y", b"vy", 100, now=200)              # everything expired: a free slot, nothing evicted
    assert table.info().counters["evicted"] == 1


def test_sizes_are_bounded(table, tmp_path):
    assert not table.add(b"big", b"x" * (MAX_DATA + 1), 100, now=1)
    assert table.add(b"max", b"x" * MAX_DATA, 100, now=1) and table.get(b"max", now=1) == b"x" * MAX_DATA
    assert not table.add(b"i" * 33, b"v", 100, now=1)  # longer than any session ID
    c = table.info().counters
    assert c["exceeded"] == 1 and c["exceeded_max"] == MAX_DATA + 1
    with pytest.raises(CacheTableError, match="smaller than one session slot"):
        SessionTable.open(str(tmp_path / "small"), MIN_SIZE - 1)
    assert slots_for(1538 * 1024) >= 150


def test_a_torn_slot_is_not_resumed(table):
    table.add(b"id", b"DER-bytes", 100, now=1)
    at = HEADER.size + 0 + 60                          # a byte of the DER
    table.mm[at] ^= 0xFF
    assert table.get(b"id", now=2) is None and table.info().counters["errors"] == 1


def test_another_process_sees_the_same_table(table):
    pid = os.fork()
    if pid == 0:
        try:
            table.add(b"child", b"from the child", 100, now=1)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert table.get(b"child", now=2) == b"from the child"


def test_a_file_of_another_layout_is_laid_anew(tmp_path):
    path = tmp_path / "sesscache"
    path.write_bytes(b"not a table" * 100)
    t = SessionTable.open(str(path), MIN_SIZE)
    assert t.info().used == 0 and path.stat().st_size == MIN_SIZE
    t.add(b"k", b"v", 100, now=1)
    t.close()
    again = SessionTable.open(str(path), MIN_SIZE)     # the same layout: kept
    assert again.get(b"k", now=2) == b"v"
    again.close()
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(CacheTableError, match="symbolic link"):
        SessionTable.open(str(link), MIN_SIZE)


def test_redis_and_memcache_keys_and_values_are_proftpds():
    assert key_of(REDIS_PREFIX, b"\x01\xab") == b'mod_tls_redis.sessions.{"id":"01ab"}\x00'
    assert key_of(MEMCACHE_PREFIX, b"\xff") == b'mod_tls_memcache.sessions.{"id":"ff"}\x00'
    value = encode(b"\x30\x82DER", 1700000000)
    assert value.endswith(b"\0")
    assert json.loads(value[:-1]) == {"expires": 1700000000, "data": "MIJERVI=", "data_len": 5}
    assert decode(value) == (b"\x30\x82DER", 1700000000)
    for bad in (b"nope", b'{"expires":1}', b'{"expires":1,"data":"!!","data_len":1}',
                b'{"expires":1,"data":"MIJERVI=","data_len":4}', b'["x"]'):
        with pytest.raises(ValueError):
            decode(bad)


# the key Debian's ProFTPD 1.3.8 (mod_tls_memcache, `TLSSessionCache memcache:`) wrote for a TLSv1.2 session, and
# the head of its value: flags 0, `S(uic#)`, a 10240-byte array, expires 0x6b16a793, 129 bytes of DER
PROFTPD_TPL_KEY = bytes.fromhex(
    "6d6f645f746c735f6d656d63616368652e73657373696f6e732e74706c024e00000073004100000065613862626235346235346531343"
    "930323134626139643339393566346661373661653834633964383563376166393564616532623230633830336262323265")
PROFTPD_TPL_HEAD = bytes.fromhex("74706c001c28000053287569632329000028000093a7166b81000000")


def test_memcache_tpl_keys_and_values_are_proftpds():
    sid = bytes.fromhex("ea8bbb54b54e1490214ba9d3995f4fa76ae84c9d85c7af95dae2b20c803bb22e")
    assert key_of(MEMCACHE_PREFIX, sid, tpl=True) == PROFTPD_TPL_KEY
    der = bytes(range(129))
    value = encode(der, 0x6B16A793, tpl=True)
    assert value.startswith(PROFTPD_TPL_HEAD) and len(value) == 0x281C
    assert decode(value) == (der, 0x6B16A793)
    # ProFTPD leaves whatever its memory held after the DER: only data_len bytes count
    assert decode(value[:len(PROFTPD_TPL_HEAD) + 129] + b"\xaa" * (10240 - 129)) == (der, 0x6B16A793)
    for bad in (value[:-1], value[:24] + (10241).to_bytes(4, "little") + value[28:],
                value[:len(PROFTPD_TPL_HEAD) - 4] + (0).to_bytes(4, "little") + value[len(PROFTPD_TPL_HEAD):]):
        with pytest.raises(ValueError):
            decode(bad)


def test_a_session_too_big_for_the_cache_is_told_to_tlslog(tmp_path):
    from proftpy.modules.tls_cache import ShmCache
    cache = ShmCache(600, str(tmp_path / "c"), MIN_SIZE)
    cache.open()
    lines = []
    cache.on_log = lines.append
    cache.add(b"id", b"x" * (MAX_DATA + 5), 2**40)
    assert cache.get(b"id") is None
    assert lines == [f"shm: length of serialized SSL session data ({MAX_DATA + 5}) exceeds maximum size "
                     f"({MAX_DATA}), unable to add to shared shm, keeping it in this process only"]
    cache.add(b"id", b"small", 2**40)
    assert cache.get(b"id") == b"small"
    cache.close()
    assert cache.get(b"id") is None                      # removed (ftpdctl): no cache, no failure


class FakeLink:
    """A CacheLink stand-in: a dict, or down."""

    def __init__(self):
        self.data, self.down, self.puts, self.counts = {}, False, [], {}

    def _check(self):
        from proftpy.bancache import CacheDown
        if self.down:
            raise CacheDown("Connection refused")

    def get(self, key):
        self._check()
        return self.data.get(key)

    def put(self, key, value, expires):
        self._check()
        self.puts.append(expires)
        self.data[key] = value

    def delete(self, key):
        self._check()
        self.data.pop(key, None)

    def count(self, key, window):
        self._check()
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def close(self):
        pass


def test_redis_and_memcache_stores_expire_and_survive_a_down_server():
    import time
    from proftpy.modules.tls_cache import LinkCache
    link = FakeLink()
    cache = LinkCache(600, "redis", link, REDIS_PREFIX, relative_ttl=True)
    lines = []
    cache.on_log = lines.append
    now = int(time.time())
    cache.add(b"\x01", b"DER", now + 600)
    assert cache.get(b"\x01") == b"DER" and 598 <= link.puts[-1] <= 600      # Redis: the TTL left
    assert list(link.data) == [b'mod_tls_redis.sessions.{"id":"01"}\x00']
    link.data[key_of(REDIS_PREFIX, b"\x02")] = encode(b"OLD", now - 1)
    assert cache.get(b"\x02") is None and "ignoring expired cached session data" in lines[-1]
    link.data[key_of(REDIS_PREFIX, b"\x03")] = b"garbage"
    assert cache.get(b"\x03") is None and "ignoring cached session data" in lines[-1]
    cache.delete(b"\x01")
    assert cache.get(b"\x01") is None
    # mod_tls_redis's statistics, in the cache: a hit, three misses (expired, garbage, deleted), the garbage an error
    assert {k[len(REDIS_PREFIX):].decode(): n for k, n in link.counts.items()} == \
        {"cache_stores": 1, "cache_hits": 1, "cache_misses": 3, "cache_errors": 1, "cache_deletes": 1}
    link.down = True
    cache.add(b"\x04", b"DER", now + 600)
    assert cache.get(b"\x04") is None
    cache.delete(b"\x04")
    assert lines[-3:] == ["error adding session to 'redis' cache: Connection refused",
                          "error getting session from 'redis' cache: Connection refused",
                          "error removing session from 'redis' cache: Connection refused"]
    memcache = LinkCache(600, "memcache", FakeLink(), MEMCACHE_PREFIX, relative_ttl=False)
    memcache.add(b"\x01", b"DER", now + 600)
    assert memcache.link.puts == [now + 600]                                  # memcached: the absolute expiry
