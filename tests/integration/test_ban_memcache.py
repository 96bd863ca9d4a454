"""Bans shared through a real memcached (Debian's, started by the test on a private loopback port with `-U 0`,
stopped by its pid): the keys, values and expirations ProFTPD's mod_ban writes with `BanCache memcache` and
`BanCacheOptions UseJSON` (its libmemcached speaks the binary protocol and puts `mod_ban.` in front of each key),
a ban written by proftpy stops a client at Debian's ProFTPD 1.3.8 (mod_ban + mod_memcache) sharing the memcached
and the other way round, counts shared across nodes, and a node whose memcached is down keeps its local bans and
logs it, without a traceback and without making the client wait."""

from __future__ import annotations

import ftplib
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import configtest, free_port, listening, wait_until
from proftpy import bancache, tpl
from proftpy.net.memcache import Memcached
from test_ban import BAN, TAUNT, ftpdctl, refused
from test_ban_redis import failed_login, host_key, proftpd_node, second_node  # noqa: F401  (fixtures)

MEMCACHED = shutil.which("memcached") or ("/usr/bin/memcached" if os.path.exists("/usr/bin/memcached") else None)
pytestmark = pytest.mark.skipif(MEMCACHED is None, reason="memcached is not installed (scripts/install-deps.sh)")


class MemcachedServer:
    """memcached on 127.0.0.1:port (TCP only, no UDP); stop() and start() again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen([MEMCACHED, "-U", "0", "-l", "127.0.0.1", "-p", str(self.port), "-m", "16",
                                      "-c", "64", *user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: listening(self.port), 10), "memcached did not start"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self) -> Memcached:
        return Memcached("127.0.0.1", self.port, connect_timeout=2, io_timeout=2)

    def get(self, key: bytes) -> bytes | None:
        mc = self.client()
        try:
            return mc.get(key)
        finally:
            mc.close()

    def metadump(self) -> dict[bytes, dict[str, str]]:
        """Every item memcached holds: key -> its fields (`lru_crawler metadump all`)."""
        from urllib.parse import unquote_to_bytes
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"lru_crawler metadump all\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        items = {}
        for line in data.decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if "key" in fields:
                items[unquote_to_bytes(fields["key"])] = fields
        return items

    def expiration(self, key: bytes) -> int | None:
        """The item's expiration as memcached keeps it (absolute)."""
        fields = self.metadump().get(key)
        return int(fields["exp"]) if fields else None

    def flush(self) -> None:
        mc = self.client()
        try:
            mc.request(0x08, b"")                       # FLUSH
        finally:
            mc.close()


@pytest.fixture(scope="module")
def memcached():
    server = MemcachedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _empty(request):
    if "memcached" in request.fixturenames:
        request.getfixturevalue("memcached").flush()


def cache_config(m: MemcachedServer, extra: str = "", tpl: bool = False) -> str:
    return (extra + BAN + f"BanCache memcache\n{'' if tpl else 'BanCacheOptions UseJSON'}\nMemcacheEngine on\n"
            f"MemcacheServers 127.0.0.1:{m.port}\nMemcacheTimeouts 300 300 300\nMaxLoginAttempts 1\n")


def key_of(name: str, tpl: bool) -> bytes:
    return bancache.ban_key(bancache.HOST, name, True) if tpl else host_key(name)


@pytest.fixture
def proftpd(proftpd_node):
    """The ProFTPD node (mod_ban with mod_memcache) on the same memcached: JSON values, or tpl images with
    `tpl=True` (ProFTPD's default without BanCacheOptions UseJSON)."""
    return lambda port, users_dir, tpl=False: proftpd_node(
        users_dir, "memcache", f"MemcacheEngine on\nMemcacheServers 127.0.0.1:{port}\nMemcacheLog {{base}}/memcache.log\n"
                               f"BanCache memcache\n{'' if tpl else 'BanCacheOptions UseJSON'}\n")


def test_an_autoban_is_written_as_proftpd_writes_it(ftpd, memcached):
    d = ftpd(cache_config(memcached, "BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n"))
    before = int(time.time())
    failed_login(d)
    key = host_key("127.0.0.1")
    assert wait_until(lambda: memcached.get(key) is not None)
    raw = memcached.get(key)
    assert raw.endswith(b"}\0")
    value = json.loads(raw[:-1])
    assert list(value) == ["version", "update_ts", "ip_addr", "port", "ban_type", "ban_name", "ban_reason",
                           "ban_message", "expires_ts", "server_id"]
    assert value["ip_addr"] == "127.0.0.1" and value["port"] == d.port and value["ban_type"] == "host ban"
    assert before + 60 <= value["expires_ts"] <= int(time.time()) + 60 and value["server_id"] == 1
    # the ban's end, as an absolute time (a metadump right after the write has come back without the item: asked again)
    assert wait_until(lambda: memcached.expiration(key) == value["expires_ts"], 5)
    assert wait_until(lambda: refused(d) == TAUNT)


@pytest.mark.parametrize("tpl", [False, True], ids=["json", "tpl"])
def test_proftpy_and_proftpd_share_bans_both_ways(ftpd, memcached, proftpd, tmp_path, second_node, tpl):  # noqa: F811
    config = cache_config(memcached, "BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n", tpl)
    a = ftpd(config)
    b = second_node(a, tmp_path, "b", config)
    pd = proftpd(memcached.port, a.dir, tpl)
    # a proftpy autoban stops the client at ProFTPD and at the other proftpy node
    failed_login(a, "127.0.0.2")
    assert wait_until(lambda: memcached.get(key_of("127.0.0.2", tpl)) is not None)
    assert refused(pd, "127.0.0.2") == "530 proftpd refuses 127.0.0.2"
    assert refused(b, "127.0.0.2") == TAUNT.replace("127.0.0.1", "127.0.0.2")
    assert refused(pd, "127.0.0.1") is None
    # a ProFTPD autoban stops the client at both proftpy nodes
    failed_login(pd, "127.0.0.3")
    assert wait_until(lambda: memcached.get(key_of("127.0.0.3", tpl)) is not None)
    assert memcached.get(key_of("127.0.0.3", tpl)).startswith(b"tpl\x02" if tpl else b'{"version":2,')
    assert refused(a, "127.0.0.3") is not None and refused(b, "127.0.0.3") is not None
    assert refused(a, "127.0.0.4") is None
    assert wait_until(lambda: "Login denied: host '127.0.0.3' banned" in a.log())


@pytest.mark.parametrize("tpl", [False, True], ids=["json", "tpl"])
def test_ftpdctl_ban_and_permit_reach_memcached(ftpd, memcached, proftpd, tpl):
    d = ftpd(cache_config(memcached, tpl=tpl))
    pd = proftpd(memcached.port, d.dir, tpl)
    key = key_of("127.0.0.5", tpl)
    assert ftpdctl(d, "ban", "host", "127.0.0.5")[1] == ["host 127.0.0.5 banned"]
    assert wait_until(lambda: memcached.get(key) is not None)
    value = bancache.decode(memcached.get(key))
    assert (value.port, value.expires) == (d.port, 0)
    assert wait_until(lambda: memcached.expiration(key) == -1)     # never expires
    assert refused(pd, "127.0.0.5") == "530 proftpd refuses 127.0.0.5"
    assert ftpdctl(d, "permit", "host", "127.0.0.5")[1] == ["host '127.0.0.5' permitted"]
    assert wait_until(lambda: memcached.get(key) is None)
    assert refused(pd, "127.0.0.5") is None


def ban_each(d, ours: range, pd, theirs: range) -> tuple[list[str], list[str]]:
    """Autobans of 127.0.0.N: the N of `ours` at proftpy's node `d`, those of `theirs` at ProFTPD's `pd`."""
    mine, others = [f"127.0.0.{i}" for i in ours], [f"127.0.0.{i}" for i in theirs]
    for host in mine:
        failed_login(d, host)
    for host in others:
        failed_login(pd, host)
    return mine, others


def test_several_servers_each_ban_where_proftpd_looks_for_it(ftpd, proftpd_node, tmp_path, second_node):  # noqa: F811
    """Two memcached servers: each ban goes to the server ProFTPD's libmemcached chooses (consistent hashing), so
    bans written by proftpy stop clients at ProFTPD and the other way round, and both servers hold some; with one
    of them down, both leave it out."""
    servers = [MemcachedServer(), MemcachedServer()]
    for m in servers:
        m.start()
    try:
        listed = ",".join(f"127.0.0.1:{m.port}" for m in servers)
        config = (BAN + f"BanCache memcache\nBanCacheOptions UseJSON\nMemcacheEngine on\nMemcacheServers {listed}\n"
                  "MemcacheTimeouts 300 300 300\nMaxLoginAttempts 1\nBanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n")
        d = ftpd(config)
        pd = proftpd_node(d.dir, "memcache", f"MemcacheEngine on\nMemcacheServers {listed}\n"
                                             "BanCache memcache\nBanCacheOptions UseJSON\n")
        ours, theirs = ban_each(d, range(2, 8), pd, range(8, 14))
        held = lambda m: {k for k in m.metadump() if k.startswith(b"mod_ban.")}  # noqa: E731
        assert wait_until(lambda: sum(len(held(m)) for m in servers) == 12, 5)
        assert all(held(m) for m in servers)                # the keys are spread, not all on one server
        for host in ours:
            assert refused(pd, host) == f"530 proftpd refuses {host}", host
        for host in theirs:
            assert refused(d, host) is not None, host
        assert refused(d, "127.0.0.20") is None and refused(pd, "127.0.0.20") is None
        # one server down: the sessions of both ping the servers and leave it out of their circle
        servers[1].stop()
        for host in [f"127.0.0.{i}" for i in range(30, 38)]:          # some would go to the stopped server
            failed_login(pd, host)
            # ProFTPD's session may still be storing the ban when its client has seen the 530
            assert wait_until(lambda: refused(d, host) is not None, 5), host   # noqa: B023
        for host in [f"127.0.0.{i}" for i in range(40, 44)]:
            failed_login(d, host)
            assert refused(pd, host) == f"530 proftpd refuses {host}", host
    finally:
        for m in servers:
            m.stop()


def test_proftpds_tpl_image_is_the_one_proftpy_writes(ftpd, memcached, proftpd):
    """The same autoban written by ProFTPD and by proftpy (without UseJSON): the same key, and values that differ
    only where the facts do (times, the port, the reason's clock)."""
    d = ftpd(cache_config(memcached, "BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n", tpl=True))
    pd = proftpd(memcached.port, d.dir, True)
    failed_login(pd, "127.0.0.6")
    failed_login(d, "127.0.0.7")
    theirs, ours = key_of("127.0.0.6", True), key_of("127.0.0.7", True)
    assert wait_until(lambda: memcached.get(theirs) is not None and memcached.get(ours) is not None)
    fields = [tpl.fields(memcached.get(k), bancache.TPL_VALUE) for k in (theirs, ours)]
    for f, name in zip(fields, ("127.0.0.6", "127.0.0.7")):
        version, _, ip_addr, _, kind, ban_name, reason, message, _, sid = f
        assert (version, ip_addr, kind, ban_name, sid) == (2, "127.0.0.1", bancache.HOST, name, 1)
        assert reason.startswith("MaxLoginAttempts autoban at ")
    assert len(memcached.get(theirs)) - len(fields[0][7] or "") == len(memcached.get(ours)) - len(fields[1][7] or "")


def test_user_bans_and_shared_counts(ftpd, memcached, tmp_path, second_node):  # noqa: F811
    config = cache_config(memcached, "BanOnEvent MaxLoginAttempts 3/00:01:00 00:01:00\n"
                                     "BanCacheOptions UseJSON ShareEventCounts\n")
    a = ftpd(config)
    b = second_node(a, tmp_path, "b", config)
    ftpdctl(a, "ban", "user", "bob")
    assert wait_until(lambda: memcached.get(b'mod_ban.{"ban_type_id":3,"ban_name":"bob"}\0') is not None)
    with pytest.raises(ftplib.error_perm, match="530 Go away"):
        b.login("bob")
    failed_login(a)
    failed_login(b)
    assert refused(a) is None and refused(b) is None
    failed_login(a)                                  # the third failure, on a node that saw only two
    assert wait_until(lambda: refused(b) == TAUNT)


def test_a_value_that_is_not_proftpds_json_is_ignored(ftpd, memcached):
    d = ftpd(cache_config(memcached))
    mc = memcached.client()
    mc.set(host_key("127.0.0.1"), b"{not json\0")
    mc.close()
    assert refused(d) is None
    assert wait_until(lambda: "ignoring the memcached value of host '127.0.0.1': not JSON" in d.log())


def test_memcached_down_keeps_local_bans_and_logs(ftpd, tmp_path):
    server = MemcachedServer()
    server.start()
    try:
        d = ftpd(cache_config(server, "BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n"))
        assert refused(d) is None
        server.stop()
        start = time.monotonic()
        failed_login(d)                              # the ban cannot reach memcached: it is kept locally
        assert time.monotonic() - start < 3
        assert wait_until(lambda: refused(d) == TAUNT)
        assert wait_until(lambda: "memcached 127.0.0.1:" in d.log() and "unreachable" in d.log())
        assert refused(d, "127.0.0.6") is None       # other clients still come in, at once
        assert "Traceback" not in d.log()
        server.start()                               # back: the master's writer writes the kept ban
        assert wait_until(lambda: server.get(host_key("127.0.0.1")) is not None, 15)
    finally:
        server.stop()


@pytest.mark.parametrize("lines, message", [
    ("MemcacheServers 127.0.0.1:1,127.0.0.1:x\n", "unable to parse server parameters '127.0.0.1:x'"),
    ("MemcacheOptions NoBinaryProtocol\n", "binary protocol only"),
    ("MemcacheReplicas one\n", "bad replica parameter: one"),
    ("MemcacheTimeouts 1 2\n", "wrong number of parameters"),
    ("MemcacheTimeouts 1 x 2\n", "badly formatted read timeout value: x"),
    ("BanCache pony\n", "unsupported BanCache driver 'pony'"),
])
def test_what_proftpy_does_not_do_is_refused_at_load(tmp_path, lines, message):
    text = f"Port 0\nBanEngine on\nBanTable {tmp_path}/ban.tab\n" + lines
    res = configtest(tmp_path, text)
    assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
