"""Bans shared through a real Redis server (Debian's redis-server, started by the test on a free loopback port
with its own directory and configuration, killed mid-run and started again): two proftpy nodes and Debian's
ProFTPD 1.3.8 (mod_ban + mod_redis) share their bans both ways, ftpdctl bans reach Redis, BanOnEvent counts
shared across nodes (ShareEventCounts), a node that loses Redis keeps its local bans and never makes a client
wait past RedisTimeouts, values that are not ProFTPD's JSON are ignored."""

from __future__ import annotations

import ftplib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (PROFTPD, SIDE_BY_SIDE_CONFIG, Daemon, fill, free_port, listening, start_daemon,
                      wait_until)
from test_ban import BAN, TAUNT, ftpdctl, refused

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (scripts/install-deps.sh)")


class RedisServer:
    """redis-server on 127.0.0.1:port with its own directory; kill() and start() again on the same port."""

    def __init__(self, base: Path, extra: str = "", password: str | None = None):
        self.dir = base / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.password = password
        (self.dir / "redis.conf").write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\nsave \"\"\n"
                                             "appendonly no\ndaemonize no\nprotected-mode yes\n" + extra)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([REDIS, str(self.dir / "redis.conf")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        assert wait_until(self._answers, 10), "redis-server did not start"

    def _answers(self) -> bool:
        try:
            return self.client().ping()
        except Exception:
            return False

    def client(self, db: int = 0):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, password=self.password, db=db)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def keys(self) -> dict[bytes, bytes]:
        c = self.client()
        return {k: c.get(k) for k in c.keys("*")}


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def cache_config(r: RedisServer, extra: str = "") -> str:
    return (BAN + f"BanCache redis\nRedisEngine on\nRedisServer 127.0.0.1:{r.port}\nRedisTimeouts 300 300\n"
            f"RedisLog {{dir}}/redis.log\nMaxLoginAttempts 1\n" + extra)


@pytest.fixture
def second_node():
    """Start another proftpy node: its own directory, port, table and control socket; the same users and Redis.
    Every node started is stopped at the end of the test."""
    started: list[Daemon] = []

    def start(first: Daemon, tmp_path: Path, name: str, config: str) -> Daemon:
        base = tmp_path / name
        base.mkdir()
        for f in ("ftpd.passwd", "ftpd.group"):
            shutil.copy(first.dir / f, base / f)
        d = Daemon(dir=base, port=free_port(), conf=base / "proftpy.conf")
        d.users = first.users
        from conftest import AUTH_CONFIG, BASE_CONFIG, fill
        d.conf.write_text(fill(config + "\n" + BASE_CONFIG + AUTH_CONFIG,
                               dict(port=d.port, dir=base, host="127.0.0.1", ipv6="off")))
        started.append(d)
        return start_daemon(d)

    yield start
    for d in started:
        d.stop()


def failed_login(d: Daemon, source: str = "127.0.0.1") -> None:
    ftp = ftplib.FTP(timeout=5)
    ftp.connect(d.host, d.port, source_address=(source, 0))
    with pytest.raises((ftplib.error_perm, EOFError)):
        ftp.login("alice", "wrong")
    ftp.close()


def host_key(name: str) -> bytes:
    return b'mod_ban.{"ban_type_id":2,"ban_name":"' + name.encode() + b'"}\0'


@pytest.fixture
def proftpd_node(tmp_path):
    """Debian's ProFTPD 1.3.8 as the other node of a cluster: `start(users_dir, cache, conf)` runs it with mod_ban
    and the cache's module (`redis` or `memcache`) loaded from /usr/lib/proftpd, the users of `users_dir` and
    `conf` (`{base}` filled in) after mod_ban's settings; stopped after the test."""
    procs = []

    def start(users_dir: Path, cache: str, conf: str) -> Daemon:
        if os.geteuid() != 0 or not os.access(PROFTPD, os.X_OK) or \
                not os.path.exists(f"/usr/lib/proftpd/mod_{cache}.so"):
            pytest.skip(f"needs root and Debian's /usr/sbin/proftpd with mod_{cache} (scripts/install-deps.sh)")
        base = tmp_path / "proftpd"
        base.mkdir()
        for f in ("ftpd.passwd", "ftpd.group"):
            shutil.copy(users_dir / f, base / f)
        d = Daemon(dir=base, port=free_port(), conf=base / "proftpd.conf")
        d.conf.write_text(fill(SIDE_BY_SIDE_CONFIG, {"port": d.port, "dir": base, "base": base}) + f"""\
ControlsEngine off
LoadModule mod_{cache}.c
LoadModule mod_ban.c
BanEngine on
BanTable {base}/ban.tab
BanLog {base}/ban.log
BanMessage "proftpd refuses %a"
MaxLoginAttempts 1
BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00
""" + fill(conf, {"base": base}))
        proc = subprocess.Popen([PROFTPD, "-n", "-q", "-c", str(d.conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        assert wait_until(lambda: listening(d.port), 15), "proftpd did not start"
        return d

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def proftpd(proftpd_node):
    """The ProFTPD node on the same Redis."""
    return lambda redis_port, users_dir: proftpd_node(
        users_dir, "redis", f"RedisEngine on\nRedisServer 127.0.0.1:{redis_port}\nBanCache redis\n")


def test_an_autoban_is_written_as_proftpd_writes_it(ftpd, redis_server):
    d = ftpd(cache_config(redis_server, "BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n"))
    before = int(time.time())
    failed_login(d)
    assert wait_until(lambda: host_key("127.0.0.1") in redis_server.keys())
    raw = redis_server.keys()[host_key("127.0.0.1")]
    assert raw.endswith(b"}\0")
    value = json.loads(raw[:-1])
    assert list(value) == ["version", "update_ts", "ip_addr", "port", "ban_type", "ban_name", "ban_reason",
                           "ban_message", "expires_ts", "server_id"]
    assert value["ip_addr"] == "127.0.0.1" and value["port"] == d.port and value["ban_type"] == "host ban"
    assert value["ban_reason"].startswith("MaxLoginAttempts autoban at ")
    assert before + 60 <= value["expires_ts"] <= int(time.time()) + 60 and value["server_id"] == 1
    assert redis_server.client().ttl(host_key("127.0.0.1")) > 10**9     # ProFTPD's absolute expiry as TTL


def test_two_proftpy_nodes_and_proftpd_share_bans_both_ways(ftpd, redis_server, proftpd, tmp_path, second_node):
    config = cache_config(redis_server, "BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n")
    a = ftpd(config)
    b = second_node(a, tmp_path, "b", config)
    pd = proftpd(redis_server.port, a.dir)
    # a proftpy autoban stops the client at the other proftpy node and at ProFTPD
    failed_login(a, "127.0.0.2")
    assert wait_until(lambda: host_key("127.0.0.2") in redis_server.keys())
    assert refused(b, "127.0.0.2") == "530 Go away 127.0.0.2 ((none)), or I shall taunt you ((none)) a second " \
                                      "time!"
    assert refused(pd, "127.0.0.2") == "530 proftpd refuses 127.0.0.2"
    assert refused(b, "127.0.0.1") is None
    # a ProFTPD autoban stops the client at both proftpy nodes
    failed_login(pd, "127.0.0.3")
    assert wait_until(lambda: host_key("127.0.0.3") in redis_server.keys())
    assert refused(a, "127.0.0.3") is not None and refused(b, "127.0.0.3") is not None
    assert refused(a, "127.0.0.4") is None
    assert wait_until(lambda: "Login denied: host '127.0.0.3' banned" in a.log())


def test_ftpdctl_bans_reach_redis_with_the_real_port(ftpd, redis_server, proftpd):
    d = ftpd(cache_config(redis_server))
    pd = proftpd(redis_server.port, d.dir)
    assert ftpdctl(d, "ban", "host", "127.0.0.5")[1] == ["host 127.0.0.5 banned"]
    assert wait_until(lambda: host_key("127.0.0.5") in redis_server.keys())
    value = json.loads(redis_server.keys()[host_key("127.0.0.5")][:-1])
    assert (value["port"], value["expires_ts"], value["ban_reason"][:18]) == (d.port, 0, "requested by 'root")
    assert redis_server.client().ttl(host_key("127.0.0.5")) == -1         # SET: never expires
    assert refused(pd, "127.0.0.5") == "530 proftpd refuses 127.0.0.5"
    assert ftpdctl(d, "permit", "host", "127.0.0.5")[1] == ["host '127.0.0.5' permitted"]
    assert wait_until(lambda: host_key("127.0.0.5") not in redis_server.keys())
    assert refused(pd, "127.0.0.5") is None


def test_user_bans_from_redis_are_checked_at_pass(ftpd, redis_server, tmp_path, second_node):
    a = ftpd(cache_config(redis_server))
    b = second_node(a, tmp_path, "b", cache_config(redis_server))
    ftpdctl(a, "ban", "user", "bob")
    key = b'mod_ban.{"ban_type_id":3,"ban_name":"bob"}\0'
    assert wait_until(lambda: key in redis_server.keys())
    with pytest.raises(ftplib.error_perm, match="530 Go away"):
        b.login("bob")
    b.login("alice").quit()


def test_event_counts_are_shared_across_nodes(ftpd, redis_server, tmp_path, second_node):
    config = cache_config(redis_server, "BanOnEvent MaxLoginAttempts 3/00:01:00 00:01:00\n"
                                        "BanCacheOptions ShareEventCounts\n")
    a = ftpd(config)
    b = second_node(a, tmp_path, "b", config)
    failed_login(a)
    failed_login(b)
    assert refused(a) is None and refused(b) is None
    failed_login(a)                                  # the third failure, on a node that saw only two
    assert wait_until(lambda: refused(b) == TAUNT)
    assert refused(a) == TAUNT


def test_without_shared_counts_each_node_counts_alone(ftpd, redis_server, tmp_path, second_node):
    config = cache_config(redis_server, "BanOnEvent MaxLoginAttempts 3/00:01:00 00:01:00\n")
    a = ftpd(config)
    b = second_node(a, tmp_path, "b", config)
    failed_login(a)
    failed_login(b)
    failed_login(a)
    assert refused(a) is None and refused(b) is None


def test_a_value_that_is_not_proftpds_json_is_ignored(ftpd, redis_server):
    d = ftpd(cache_config(redis_server))
    redis_server.client().set(host_key("127.0.0.1"), b"{not json\0")
    assert refused(d) is None
    assert wait_until(lambda: "ignoring the Redis value of host '127.0.0.1': not JSON" in d.log())


def test_match_server_ignores_bans_made_for_another_server(ftpd, redis_server):
    d = ftpd(cache_config(redis_server, "BanCacheOptions MatchServer\n"))
    other = json.dumps({"version": 2, "update_ts": 1, "ip_addr": "127.0.0.1", "port": 1, "ban_type": "host ban",
                        "ban_name": "127.0.0.1", "ban_reason": "r", "ban_message": "m", "expires_ts": 0,
                        "server_id": 1}, separators=(",", ":")).encode() + b"\0"
    redis_server.client().set(host_key("127.0.0.1"), other)
    assert refused(d) is None
    redis_server.client().set(host_key("127.0.0.1"), other.replace(b'"port":1,', f'"port":{d.port},'.encode()))
    assert refused(d) == "530 m"


def test_redis_down_and_back(ftpd, redis_server):
    d = ftpd(cache_config(redis_server))
    redis_server.kill()
    for _ in range(3):                               # sessions go on, each at once (a login takes some 0.1 s; the
        start = time.monotonic()                     # bound leaves room for a machine busy with a second test
        d.login("alice").quit()                      # process, not for waits on the lost Redis)
        assert time.monotonic() - start < 2.0
    assert ftpdctl(d, "ban", "host", "127.0.0.6")[1] == ["host 127.0.0.6 banned"]     # local bans go on
    assert refused(d, "127.0.0.6") == TAUNT.replace("127.0.0.1", "127.0.0.6")
    assert d.log().count("unreachable") == 1         # the loss is logged once
    redis_server.start()
    assert wait_until(lambda: host_key("127.0.0.6") in redis_server.keys(), 15)    # the writer kept it
    time.sleep(2.2)                                  # past the back-off
    d.login("alice").quit()
    assert wait_until(lambda: "Redis reachable again" in d.log(), 5)


def test_a_hung_redis_never_makes_a_client_wait_past_redis_timeouts(ftpd, redis_server):
    d = ftpd(cache_config(redis_server).replace("RedisTimeouts 300 300", "RedisTimeouts 1000 1000"))
    d.login("alice").quit()
    os.kill(redis_server.proc.pid, signal.SIGSTOP)     # accepts connections, never answers
    try:
        waits = []
        for _ in range(3):
            start = time.monotonic()
            d.connect().quit()
            waits.append(time.monotonic() - start)
        assert 1.0 <= waits[0] < 2.0 + 0.8             # one I/O timeout (the connection itself succeeds)
        assert max(waits[1:]) < 0.9                    # then the node leaves the failed Redis alone for a while
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


def test_a_unix_socket_a_password_and_a_database_index(ftpd, tmp_path):
    r = RedisServer(tmp_path, f"unixsocket {tmp_path}/redis/redis.sock\nunixsocketperm 700\n"
                              "requirepass s3cret\n", password="s3cret")
    r.start()
    try:
        d = ftpd(BAN + f'BanCache redis\nRedisEngine on\nRedisServer {tmp_path}/redis/redis.sock "" s3cret 3\n')
        ftpdctl(d, "ban", "class", "evil")
        key = b'mod_ban.{"ban_type_id":1,"ban_name":"evil"}\0'
        assert wait_until(lambda: r.client(3).get(key) is not None)
        assert r.client(0).get(key) is None
    finally:
        r.kill()


@pytest.mark.parametrize("named", [True, False])
def test_redis_found_through_a_sentinel(ftpd, redis_server, tmp_path, named):
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n")
    proc = subprocess.Popen([REDIS, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: listening(port), 10)
        master = " master mymaster" if named else ""
        d = ftpd(BAN + f"BanCache redis\nRedisEngine on\nRedisSentinel 127.0.0.1:{port}{master}\n")
        ftpdctl(d, "ban", "user", "eve")
        assert wait_until(lambda: b'mod_ban.{"ban_type_id":3,"ban_name":"eve"}\0' in redis_server.keys())
    finally:
        proc.kill()
        proc.wait()
