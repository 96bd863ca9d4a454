"""MemcacheReplicas beside Debian's ProFTPD 1.3.8 (mod_ban + mod_memcache, libmemcached 1.1) on three memcached
servers the test starts: each ban is on the servers ProFTPD's libmemcached puts it (its own server and the next in
the list), whoever writes it; a ban outlives its own server being stopped; a permit removes every copy."""

from __future__ import annotations

import ctypes

import pytest

from conftest import wait_until
from proftpy.net.memcache_ring import Ring
from test_ban import BAN, ftpdctl, refused
from test_ban_memcache import MEMCACHED, MemcachedServer, ban_each
from test_ban_redis import failed_login, host_key, proftpd_node, second_node  # noqa: F401  (fixtures)

BINARY_PROTOCOL, DISTRIBUTION, NUMBER_OF_REPLICAS = 18, 9, 29      # libmemcached's memcached_behavior_t
pytestmark = pytest.mark.skipif(MEMCACHED is None, reason="memcached is not installed (scripts/install-deps.sh)")


@pytest.fixture
def three():
    servers = [MemcachedServer() for _ in range(3)]
    for m in servers:
        m.start()
    yield servers
    for m in servers:
        m.stop()


def listed(servers) -> str:
    return ",".join(f"127.0.0.1:{m.port}" for m in servers)


def config(servers, extra: str = "") -> str:
    return (BAN + f"BanCache memcache\nBanCacheOptions UseJSON\nMemcacheEngine on\nMemcacheServers {listed(servers)}\n"
            f"MemcacheReplicas 1\nMemcacheTimeouts 300 300 300\nMaxLoginAttempts 1\n"
            "BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n" + extra)


def holders(servers, key: bytes) -> set[int]:
    return {i for i, m in enumerate(servers) if key in m.metadump()}


def expected(servers, key: bytes) -> set[int]:
    return set(Ring([("127.0.0.1", m.port) for m in servers]).copies(key, 1))


def test_libmemcached_puts_each_copy_where_the_ring_says(three):
    """Debian's libmemcached itself (through ctypes, as ProFTPD's mod_memcache sets it up: binary protocol,
    consistent distribution, one replica), with memcached_free at the end so that its buffered replica writes go out:
    each key on its own server and the next in the list."""
    lib = ctypes.CDLL("libmemcached.so.11")
    lib.memcached_create.restype = ctypes.c_void_p
    lib.memcached_create.argtypes = [ctypes.c_void_p]
    lib.memcached_server_add.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16]
    lib.memcached_behavior_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]
    lib.memcached_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                  ctypes.c_size_t, ctypes.c_long, ctypes.c_uint32]
    lib.memcached_free.argtypes = [ctypes.c_void_p]
    mc = lib.memcached_create(None)
    for m in three:
        lib.memcached_server_add(mc, b"127.0.0.1", m.port)
    for behavior, value in ((BINARY_PROTOCOL, 1), (DISTRIBUTION, 1), (NUMBER_OF_REPLICAS, 1)):
        lib.memcached_behavior_set(mc, behavior, value)
    keys = [f"key-{i}".encode() for i in range(24)]
    for key in keys:
        assert lib.memcached_set(mc, key, len(key), b"v", 1, 0, 0) == 0
    lib.memcached_free(mc)
    for key in keys:
        assert holders(three, key) == expected(three, key), key
    assert all(len(expected(three, key)) == 2 for key in keys)


def test_each_ban_on_the_servers_proftpd_puts_it_and_its_copy(ftpd, proftpd_node, three):  # noqa: F811
    """proftpy's bans go to their server and the next; ProFTPD's to the same server, and its copy would go to the
    same next one, but a ProFTPD session leaves it in libmemcached's buffer when it ends (never written). Each node
    finds the other's bans (proftpy asking each key's own server first: NoRandomReplicaReads)."""
    d = ftpd(config(three, "MemcacheOptions NoRandomReplicaReads\n"))
    pd = proftpd_node(d.dir, "memcache", f"MemcacheEngine on\nMemcacheServers {listed(three)}\nMemcacheReplicas 1\n"
                                         "BanCache memcache\nBanCacheOptions UseJSON\n")
    ours, theirs = ban_each(d, range(20, 32), pd, range(2, 14))
    ring = Ring([("127.0.0.1", m.port) for m in three])
    for host in theirs:
        key = host_key(host)
        assert wait_until(lambda: holders(three, key) == {ring.server_for(key)}, 5), (host, holders(three, key))
    for host in ours:
        key = host_key(host)
        assert wait_until(lambda: holders(three, key) == expected(three, key), 5), (host, holders(three, key))
    assert all(any(k.startswith(b"mod_ban.") for k in m.metadump()) for m in three)
    for host in ours:
        assert refused(pd, host) == f"530 proftpd refuses {host}", host
    for host in theirs:
        assert refused(d, host) is not None, host


def test_a_ban_outlives_its_own_server(ftpd, three, tmp_path, second_node):  # noqa: F811
    d = ftpd(config(three))
    hosts = [f"127.0.0.{i}" for i in range(40, 46)]
    for host in hosts:
        failed_login(d, host)
    ring = Ring([("127.0.0.1", m.port) for m in three])
    victim = ring.server_for(host_key(hosts[0]))
    lost = [h for h in hosts if ring.server_for(host_key(h)) == victim]
    assert wait_until(lambda: all(len(holders(three, host_key(h))) == 2 for h in hosts), 5)
    three[victim].stop()
    # a node that did not see the bans itself asks memcached: the copies answer
    b = second_node(d, tmp_path, "b", config(three))
    for host in lost:
        assert refused(b, host) is not None, host


def test_permit_removes_every_copy(ftpd, three):
    d = ftpd(config(three))
    failed_login(d, "127.0.0.50")
    key = host_key("127.0.0.50")
    assert wait_until(lambda: len(holders(three, key)) == 2, 5)
    assert ftpdctl(d, "permit", "host", "127.0.0.50")[1] == ["host '127.0.0.50' permitted"]
    assert wait_until(lambda: not holders(three, key), 5)
