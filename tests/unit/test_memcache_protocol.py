"""memcached's binary protocol as proftpy/net/memcache.py speaks it: the bytes of a request, and answers that are
refused (too large, not an answer to this request, cut short) or too slow, against a scripted server on a free
loopback port (the real memcached is in tests/integration/test_ban_memcache.py)."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from proftpy.net import memcache as mc


class Scripted:
    """Answers one request with `answer(header, body) -> bytes` (None: say nothing)."""

    def __init__(self, answer):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[tuple, bytes]] = []
        self.answer = answer
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            head = conn.recv(24, socket.MSG_WAITALL)
            fields = mc.HEADER.unpack(head)
            body = conn.recv(fields[6], socket.MSG_WAITALL) if fields[6] else b""
            self.seen.append((fields, body))
            reply = self.answer(fields, body)
            if reply is None:
                self.done.wait(5)
            else:
                conn.sendall(reply)
                self.done.wait(1)

    def close(self) -> None:
        self.done.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def scripted():
    made = []

    def make(answer):
        made.append(Scripted(answer))
        return made[-1]
    yield make
    for s in made:
        s.close()


def response(fields, status=0, extras=b"", value=b"", opaque=None, total=None):
    body = extras + value
    return mc.HEADER.pack(0x81, fields[1], 0, len(extras), 0, status, len(body) if total is None else total,
                          fields[7] if opaque is None else opaque, 0) + body


def test_set_sends_flags_and_the_absolute_expiry(scripted):
    s = scripted(lambda f, b: response(f))
    client = mc.Memcached("127.0.0.1", s.port)
    client.set(b"mod_ban.key\0", b"value\0", 1796636613)
    (magic, op, keylen, extlen, _, _, total, _, _), body = s.seen[0]
    assert (magic, op, keylen, extlen, total) == (0x80, mc.SET, 12, 8, 8 + 12 + 6)
    assert body == struct.pack("!II", 0, 1796636613) + b"mod_ban.key\0" + b"value\0"


def test_get_returns_the_value_or_none(scripted):
    s = scripted(lambda f, b: response(f, extras=b"\0\0\0\0", value=b"{}\0"))
    assert mc.Memcached("127.0.0.1", s.port).get(b"k") == b"{}\0"
    s = scripted(lambda f, b: response(f, status=mc.NOT_FOUND, value=b"Not found"))
    assert mc.Memcached("127.0.0.1", s.port).get(b"k") is None


def test_incr_makes_the_counter_with_its_window(scripted):
    s = scripted(lambda f, b: response(f, value=struct.pack("!Q", 1)))
    assert mc.Memcached("127.0.0.1", s.port).incr(b"c", 60) == 1
    assert s.seen[0][1][:20] == struct.pack("!QQI", 1, 1, 60)


@pytest.mark.parametrize("bad", [
    lambda f, b: response(f, total=mc.MAX_BODY + 1),          # larger than memcached's items
    lambda f, b: response(f, opaque=f[7] + 1),                # not the answer to this request
    lambda f, b: response(f, value=b"12345")[:-2],            # cut short
    lambda f, b: b"VALUE nonsense\r\n" * 3,                   # the text protocol
])
def test_odd_answers_are_errors(scripted, bad):
    s = scripted(bad)
    with pytest.raises(mc.MemcacheError):
        mc.Memcached("127.0.0.1", s.port, io_timeout=1).get(b"k")


def test_a_silent_server_costs_the_io_timeout(scripted):
    s = scripted(lambda f, b: None)
    start = time.monotonic()
    with pytest.raises(mc.MemcacheError):
        mc.Memcached("127.0.0.1", s.port, io_timeout=0.3).get(b"k")
    assert time.monotonic() - start < 1.5


def test_keys_longer_than_memcached_takes_are_refused_before_sending():
    with pytest.raises(mc.MemcacheError):
        mc.Memcached("127.0.0.1", 1).get(b"x" * 251)


# -- several servers: the server libmemcached chooses for ProFTPD (net/memcache_ring.py) ---------------------------
def test_the_servers_proftpd_put_twenty_bans_on():
    """Debian's ProFTPD 1.3.8, `MemcacheServers 127.0.0.1:48633,127.0.0.1:56361`, wrote the autobans of 127.0.0.2
    to 127.0.0.21 to these servers."""
    from proftpy.net.memcache_ring import Ring, one_at_a_time
    first = {"10", "15", "16", "17", "18", "19", "20", "3", "4", "5", "6", "7"}
    ring = Ring([("127.0.0.1", 48633), ("127.0.0.1", 56361)])
    for n in range(2, 22):
        key = b'mod_ban.{"ban_type_id":2,"ban_name":"127.0.0.' + str(n).encode() + b'"}\0'
        assert ring.server_for(key) == (0 if str(n) in first else 1), n
    assert one_at_a_time(b"") == 0 and one_at_a_time(b"a") == 0xCA2E9442
    assert Ring([("127.0.0.1", 11211)]).server_for(b"anything") == 0


def test_copies_go_to_the_next_servers_in_the_list_wrapping():
    from proftpy.net.memcache_ring import Ring
    ring = Ring([("127.0.0.1", 48633), ("127.0.0.1", 56361), ("127.0.0.1", 40000)])
    for n in range(30):
        key = f"key-{n}".encode()
        first = ring.server_for(key)
        assert ring.copies(key, 0) == [first]
        assert ring.copies(key, 1) == [first, (first + 1) % 3]
        assert ring.copies(key, 3) == [first, (first + 1) % 3, (first + 2) % 3, first]


def test_read_order_is_libmemcacheds():
    """replication_binary_mget: round r asks server+r, plus the random start while r+start stays within the
    copies (so with start 1 of 1 replica both rounds ask the copy, never the key's own server)."""
    from proftpy.net.memcache_ring import Ring
    ring = Ring([("127.0.0.1", 48633), ("127.0.0.1", 56361), ("127.0.0.1", 40000)])
    key = b"key-1"
    first = ring.server_for(key)
    nxt = (first + 1) % 3
    assert ring.read_order(key, 1, 0) == [first, nxt]
    assert ring.read_order(key, 1, 1) == [nxt, nxt]
    assert ring.read_order(key, 2, 1) == [nxt, (first + 2) % 3, (first + 2) % 3]


def test_tls_statistics_values_as_either_writer_stores_them():
    from proftpy.modules.tls_cache import stat_value
    assert stat_value(b"12") == 12                      # memcached's and Redis's counters
    assert stat_value(b"\x01\x00\x00\x00") == 1         # ProFTPD's mod_tls_memcache's first count
    assert stat_value(None) is None and stat_value(b"") is None and stat_value(b"x" * 9) is None
