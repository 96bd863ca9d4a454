"""mod_wrap2's `redis:` tables (mod_wrap2_redis) against a real Redis (Debian's redis-server, started by the test on
a free loopback port): lists and sets of client patterns per user and for everyone, `%{name}`, a table changed
between two logins, a Redis that is gone; and side by side with Debian's ProFTPD, mod_wrap2 and mod_wrap2_redis on
the same Redis keys."""

from __future__ import annotations

import re
import time

import pytest

from conftest import IS_ROOT, make_users, refused_config, side_by_side, wait_until
import test_ban_redis
from test_wrap import attempt

REDIS = test_ban_redis.REDIS
redis_server = test_ban_redis.redis_server          # the fixture: a redis-server of the test's own

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (scripts/install-deps.sh)")


@pytest.fixture
def tmp_path(open_tmp_path):
    """Debian's ProFTPD's sessions run as nobody and as the test users: the test's files live where they can reach
    them."""
    return open_tmp_path


def wrap_config(port: int, tables: str) -> str:
    return (f"RedisEngine on\nRedisServer 127.0.0.1:{port}\nRedisTimeouts 300 300\n"
            "WrapEngine on\nWrapLog {dir}/wrap.log\nWrapDenyMsg \"Refused: %u\"\n" + tables)


def test_user_tables_are_the_users_lists_and_sets(ftpd, redis_server, tmp_path):
    r = redis_server.client()
    r.rpush("wrap.allow.alice", "127.0.0.2")
    r.sadd("wrap.deny.alice", "ALL")
    r.sadd("wrap.deny.bob", "127.0.0.3, 127.0.0.4")         # one member, two patterns
    d = ftpd(wrap_config(redis_server.port,
                         "WrapUserTables * redis:/list:wrap.allow.%{name} redis:/set:wrap.deny.%{name}\n"))
    assert attempt(d.port, "127.0.0.2") == "in"
    assert attempt(d.port, "127.0.0.3") == "530 Refused: alice"
    assert [attempt(d.port, src, "bob") for src in ("127.0.0.3", "127.0.0.4", "127.0.0.5")] == \
        ["530 Refused: bob", "530 Refused: bob", "in"]
    wrap_log = (tmp_path / "wrap.log").read_text()
    assert "using 'redis:/set:wrap.deny.%{name}' for deny table" in wrap_log
    assert "error obtaining clients from Redis using list 'wrap.allow.bob': No such file or directory" in wrap_log


def test_wrap_tables_are_read_at_each_login(ftpd, redis_server):
    d = ftpd(wrap_config(redis_server.port, "WrapTables redis:/list:allowed redis:/list:denied\n"))
    assert attempt(d.port, "127.0.0.2") == "in"
    redis_server.client().rpush("denied", "127.0.0.2")     # no restart: the next login finds it
    assert attempt(d.port, "127.0.0.2") == "530 Refused: alice"
    assert attempt(d.port, "127.0.0.3") == "in"


def test_a_redis_that_is_gone_leaves_the_table_out_without_a_long_wait(ftpd, redis_server, tmp_path):
    redis_server.client().rpush("denied", "ALL")
    d = ftpd(wrap_config(redis_server.port, "WrapTables redis:/list:allowed redis:/list:denied\n"))
    assert attempt(d.port, "127.0.0.2") == "530 Refused: alice"
    redis_server.kill()
    started = time.monotonic()
    assert attempt(d.port, "127.0.0.2") == "in"            # no table: nothing denies (as ProFTPD)
    assert time.monotonic() - started < 3
    assert wait_until(lambda: "error obtaining clients from Redis using list 'denied'"
                      in (tmp_path / "wrap.log").read_text())


def test_keys_without_list_or_set_are_config_errors(tmp_path):
    for table, message in (("redis:/allowed", "client key 'allowed' lacks required 'list:' or 'set:' prefix"),
                           ("redis:list:allowed", "badly formatted source info 'list:allowed'"),
                           ("redis:/set:a/opts", "option key 'opts' lacks required 'list:' or 'set:' prefix")):
        stderr = refused_config(tmp_path, f"WrapTables {table} builtin:all")
        assert "t.conf:2:" in stderr and message in stderr, stderr


# -- side by side with Debian's ProFTPD, mod_wrap2 and mod_wrap2_redis ----------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="Debian's proftpd runs as root here")
def test_same_replies_and_wrap_log_lines_as_proftpd(redis_server, tmp_path):
    r = redis_server.client()
    r.rpush("wrap:allow:alice", "127.0.0.2")
    r.sadd("wrap:deny:alice", "ALL")
    r.sadd("wrap:all:deny", "127.0.0.3 127.0.0.4", "127.0.0.9")         # WrapTables' %{name} is empty
    make_users(tmp_path)
    config = ("LoadModule mod_redis.c\nLoadModule mod_wrap2.c\nLoadModule mod_wrap2_redis.c\n" +
              wrap_config(redis_server.port,
                          "WrapUserTables alice redis:/list:wrap:allow:%{name} redis:/set:wrap:deny:%{name}\n"
                          "WrapTables redis:/list:wrap:all:allow%{name} redis:/set:wrap:all:deny%{name}\n"))

    def drive(port, run):
        replies = [attempt(port, src, user) for src, user in
                   (("127.0.0.2", "alice"), ("127.0.0.3", "alice"), ("127.0.0.3", "bob"), ("127.0.0.4", "bob"),
                    ("127.0.0.6", "bob"))]
        lines = [re.sub(r"^.*?\]: ", "", line) for line in (run / "wrap.log").read_text().splitlines()]
        return replies, [line for line in lines if "connection from" in line or "Redis" in line
                         or "for allow table" in line or "for deny table" in line]
    ran = side_by_side(tmp_path, config, drive)
    assert ran["proftpy"] == ran["proftpd"]
    assert ran["proftpd"][0] == ["in", "530 Refused: alice", "530 Refused: bob", "530 Refused: bob", "in"]
