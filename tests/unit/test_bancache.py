"""bancache's pure parts: RedisSentinel without `master NAME` picks the first master the sentinels know; ProFTPD's
tpl images (memcache without UseJSON) read and written byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from proftpy import bancache, tpl
from proftpy.bancache import HOST, CacheDown, CachedBan, _first_master

REPO = Path(__file__).resolve().parents[2]


def sentinel(*answers):
    """Sentinels answering `sentinel_masters()` in turn: a dict of masters, or an exception to raise."""
    def node(answer):
        def masters():
            if isinstance(answer, Exception):
                raise answer
            return answer
        return SimpleNamespace(sentinel_masters=masters)
    return SimpleNamespace(sentinels=[node(a) for a in answers])


def test_the_first_master_a_sentinel_names_in_order():
    assert _first_master(sentinel(ConnectionError("down"), {}, {"beta": {}, "alpha": {}})) == "alpha"


def test_no_master_known_is_the_cache_down():
    with pytest.raises(CacheDown, match="no Redis master known"):
        _first_master(sentinel(ConnectionError("down"), {}))


# written by Debian's ProFTPD 1.3.8 (mod_ban + mod_memcache, BanCache memcache without UseJSON) for an autoban of
# 127.0.0.7 on a server at 127.0.0.1 port 59379 (which 1.3.8 writes in network byte order)
PROFTPD_KEY = bytes.fromhex("6d6f645f62616e2e74706c021a00000076730002000a0000003132372e302e302e37")
PROFTPD_VALUE = bytes.fromhex(
    "74706c0284000000532869757369697373737569290002000000eba3166b0a0000003132372e302e302e31e7f30000020000000a000000"
    "3132372e302e302e37350000004d61784c6f67696e417474656d707473206175746f62616e206174204d6f6e2044656320303720313"
    "23a31373a343720323032360100000027a4166b01000000")


def test_proftpds_tpl_key_and_value():
    assert bancache.ban_key(HOST, "127.0.0.7", tpl=True) == PROFTPD_KEY
    entry = bancache.decode(PROFTPD_VALUE)
    assert entry == CachedBan("127.0.0.1", 0xF3E7, HOST, "127.0.0.7",
                              "MaxLoginAttempts autoban at Mon Dec 07 12:17:47 2026", "", 0x6B16A427, 1, 0x6B16A3EB)
    assert entry.encode(tpl=True) == PROFTPD_VALUE


def test_a_null_string_reads_as_none():
    image = tpl.image(b"vs", b"\x02\x00" + tpl.string(None))
    assert tpl.fields(image, b"vs") == [2, None]


@pytest.mark.parametrize("raw, message", [
    (b"tpx" + PROFTPD_VALUE[3:], "unsupported version|not JSON"),
    (PROFTPD_VALUE[:-1], "says 132"),
    (PROFTPD_VALUE[:4] + (131).to_bytes(4, "little") + PROFTPD_VALUE[8:-1], "longer than its values|cut short"),
    (PROFTPD_VALUE[:8] + b"S(iusiisssuu)" + PROFTPD_VALUE[21:], "tpl format"),
    (PROFTPD_VALUE[:51] + b"\xff\xff\x00\x00" + PROFTPD_VALUE[55:], "cut short"),
])
def test_broken_tpl_images_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        bancache.decode(raw)


SETTLED_CHILD = """
import os, socket, sys, tempfile
import redis
from proftpy.bancache import settle_redis
if sys.argv[1] == "settle":
    settle_redis()
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]                   # nothing listens there once closed
root = tempfile.mkdtemp()
os.chroot(root)
os.chdir("/")
from redis.utils import get_lib_version
print(get_lib_version())
try:
    redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping()
except redis.ConnectionError:
    print("refused")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chroot")
@pytest.mark.parametrize("settle", [True, False])
def test_a_settled_redis_works_inside_a_chroot(settle):
    """What mod_redis settles in the master (settle_redis) is all a client needs inside a session's chroot: its
    real version (not redis-py's "99.99.99" when its metadata cannot be read), and a connection that fails as a
    connection does. Without it the chrooted process has no version (the second case: the test can tell)."""
    import redis
    out = subprocess.run([sys.executable, "-c", SETTLED_CHILD, "settle" if settle else "bare"],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if settle:
        assert out.stdout.split() == [redis.__version__, "refused"], out.stderr
    else:
        assert out.stdout.split()[:1] == ["99.99.99"]
