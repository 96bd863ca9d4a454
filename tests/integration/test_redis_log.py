"""mod_redis's logging (RedisLogOnCommand, RedisLogOnEvent, RedisLogFormatExtra) against a real redis-server the
tests start on a private loopback port: the same session against Debian's ProFTPD 1.3.8 (mod_redis) and proftpy
leaves the same lists, objects, members and values (but for what differs by nature: times, pids, ports), a Redis
that is down costs nothing but the records, and what ProFTPD refuses when it reads the configuration is refused."""

from __future__ import annotations

import ftplib
import os
import io
import json
import time

import pytest

from proftpy import bancache
from conftest import PASSWORDS, configtest, make_users, side_by_side
from test_ban_redis import redis_server  # noqa: F401  (fixture)

FORMAT = ("%a %b %d %D %f %F %g %h %H %J %L %m %r %s %S %u %U %v %V %w %{basename} %{file-modified} "
          "%{file-offset} %{file-size} %{gid} %{uid} %{protocol} %{transfer-status} %{transfer-type} %T %P %t "
          "%{epoch} %R %{note:mod_auth.orig-user} %{transfer-speed}")
# what differs between two servers by nature, or where proftpy names what ProFTPD 1.3.8 names oddly (jot.py)
VOLATILE = {"pid", "local_time", "epoch", "transfer_secs", "response_millis"}


def config(port: int) -> str:
    return (f"LoadModule mod_redis.c\nRedisEngine on\nRedisServer 127.0.0.1:{port}\nRedisLog {{dir}}/redis.log\n"
            f"DefaultRoot ~\nLogFormat all \"{FORMAT}\"\n"
            "RedisLogOnCommand USER,PASS,STOR,RETR,NOOP,PWD,RNFR,RNTO,MKD,DELE,QUIT all ftp:%u\n"
            "LogFormat ev \"%m %E %u\"\nRedisLogOnEvent CONNECT,DISCONNECT ev\n"
            "RedisLogFormatExtra ev {\"node\":\"n1\",\"weight\":3,\"up\":true}\n"
            "LogFormat few \"%u %m\"\nRedisLogOnEvent ALL few every\n")


def session(port: int) -> None:
    ftp = ftplib.FTP(timeout=10)
    ftp.connect("127.0.0.1", port)
    ftp.login("alice", PASSWORDS["alice"])
    ftp.storbinary("STOR x.txt", io.BytesIO(b"hello"))
    ftp.retrbinary("RETR x.txt", lambda b: None)
    ftp.sendcmd("NOOP")
    ftp.sendcmd("PWD")
    ftp.rename("x.txt", "y.txt")
    with pytest.raises(ftplib.error_perm):
        ftp.sendcmd("MKD /nonexistent/x")
    ftp.delete("y.txt")                     # the next server's session starts from the same home
    ftp.quit()


def lists(redis_server) -> dict[str, list[dict]]:  # noqa: F811
    r = redis_server.client()
    out = {k.decode(): [json.loads(x) for x in r.lrange(k, 0, -1)] for k in r.keys("*")}
    r.flushall()
    return out


def test_the_same_records_as_proftpd(open_tmp_path, redis_server):  # noqa: F811
    def drive(port, run):
        session(port)
        time.sleep(0.5)                     # the session's end (DISCONNECT) is written after QUIT's reply
        return lists(redis_server)
    make_users(open_tmp_path)
    got = side_by_side(open_tmp_path, config(redis_server.port), drive)
    theirs, ours = got["proftpd"], got["proftpy"]
    assert sorted(ours) == sorted(theirs) == ["ev", "every", "ftp:", "ftp:alice"]
    diffs = []
    for key in theirs:
        assert len(ours[key]) == len(theirs[key]), (key, ours[key], theirs[key])
        for a, b in zip(ours[key], theirs[key]):
            # ProFTPD 1.3.8 names a note by its value ("NOTE:alice"); proftpy by its name (jot.py)
            b = {("NOTE:mod_auth.orig-user" if k.startswith("NOTE:") else k): v for k, v in b.items()}
            if list(a) != list(b):
                diffs.append((key, "members", list(a), list(b)))
            for k in set(a) & set(b):
                # a value that differs by nature (a time, a pid) must still be of the same JSON kind
                same = (isinstance(a[k], str) == isinstance(b[k], str)) if k in VOLATILE else a[k] == b[k]
                if not same:
                    diffs.append((key, k, a[k], b[k]))
    assert diffs == [], "\n".join(map(str, diffs))
    ev = ours["ev"]
    assert ev[0] == {"node": "n1", "weight": 3, "up": True}
    assert ev[1] == {"command": "EXIT", "session_end_reason": "Quit", "user": "alice", "node": "n1", "weight": 3,
                     "up": True}
    stor = next(o for o in ours["ftp:alice"] if o["command"] == "STOR")
    assert stor["bytes_sent"] == 5 and stor["file_size"] == 5 and stor["transfer_status"] == "success"
    assert "transfer_speed" not in stor


def test_redis_down_costs_only_the_records(ftpd, redis_server):  # noqa: F811
    d = ftpd(f"RedisEngine on\nRedisServer 127.0.0.1:{redis_server.port}\nRedisTimeouts 300 300\n"
             "LogFormat few \"%u %m\"\nRedisLogOnCommand PWD,NOOP few\n")
    ftp = d.login("alice")
    ftp.sendcmd("PWD")
    pushed = wait_for(lambda: redis_server.client().lrange("few", 0, -1))
    assert [json.loads(x) for x in pushed] == [{"user": "alice", "command": "PWD"}]
    redis_server.kill()
    started = time.monotonic()
    for _ in range(5):
        assert ftp.sendcmd("NOOP").startswith("200")
    assert time.monotonic() - started < 2.5         # one RedisTimeouts wait, then the link is left alone
    ftp.quit()
    assert "Traceback" not in d.log()


def test_a_chrooted_session_connects_and_reconnects_to_redis(ftpd, redis_server):  # noqa: F811
    """The first record of a `DefaultRoot ~` session comes after its chroot, and so does the connection made again
    after Redis restarted: what redis-py needs from the file system was settled in the master."""
    d = ftpd(f"RedisEngine on\nRedisServer 127.0.0.1:{redis_server.port}\nRedisTimeouts 300 300\nDefaultRoot ~\n"
             "LogFormat few \"%u %m\"\nRedisLogOnCommand PWD,NOOP few\n")
    ftp = d.login("alice")
    assert ftp.pwd() == "/"
    pushed = wait_for(lambda: redis_server.client().lrange("few", 0, -1))
    assert [json.loads(x) for x in pushed] == [{"user": "alice", "command": "PWD"}]
    redis_server.kill()
    ftp.sendcmd("NOOP")                             # lost: the link lets go of its client
    redis_server.start()
    time.sleep(bancache.DOWN_BACKOFF + 0.2)
    ftp.sendcmd("NOOP")                             # a new client, inside the chroot
    pushed = wait_for(lambda: redis_server.client().lrange("few", 0, -1))
    assert [json.loads(x) for x in pushed] == [{"user": "alice", "command": "NOOP"}]
    ftp.quit()
    assert "Traceback" not in d.log()


def wait_for(fn, timeout: float = 5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("line, message", [
    ("RedisLogOnCommand PWD nosuch", "t.conf:3: RedisLogOnCommand: no LogFormat 'nosuch' configured"),
    ("RedisLogOnEvent CONNECT nosuch key", "t.conf:3: RedisLogOnEvent: no LogFormat 'nosuch' configured"),
    ("RedisLogOnCommand PWD", "t.conf:3: RedisLogOnCommand: wrong number of parameters"),
    ("RedisLogFormatExtra x [1]", "t.conf:3: RedisLogFormatExtra: error parsing '[1]' as JSON object"),
    ("RedisLogFormatExtra nosuch {\"a\":1}", "t.conf:3: RedisLogFormatExtra: no LogFormat 'nosuch' configured"),
])
def test_what_proftpd_refuses_is_refused_at_its_line(tmp_path, line, message):
    res = configtest(tmp_path, f"Port 0\nLogFormat x \"%m\"\n{line}\n")
    assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_none_is_accepted(tmp_path):
    res = configtest(tmp_path, "Port 0\nRedisLogOnCommand none\nRedisLogOnEvent none\n")
    assert res.returncode == 0, res.stderr


def test_lines_in_a_directory_apply_to_commands_there(open_tmp_path, redis_server):  # noqa: F811
    """`<Directory>` lines log the commands whose path is there (ProFTPD's dir config of the command), the same
    as Debian's ProFTPD does on the same Redis."""
    users = make_users(open_tmp_path)
    sub = users["alice"][2] / "sub"
    sub.mkdir()
    os.chown(sub, users["alice"][0], users["alice"][1])
    config = (f"LoadModule mod_redis.c\nRedisEngine on\nRedisServer 127.0.0.1:{redis_server.port}\n"
              f"DefaultRoot ~\nLogFormat where \"%m %F\"\n<Directory {sub}>\n"
              "  RedisLogOnCommand STOR,RETR,DELE,MKD where\n</Directory>\n")

    def drive(port, run):
        ftp = ftplib.FTP(timeout=10)
        ftp.connect("127.0.0.1", port)
        ftp.login("alice", PASSWORDS["alice"])
        for path in ("top.txt", "sub/in.txt"):
            ftp.storbinary(f"STOR {path}", io.BytesIO(b"x"))
            ftp.retrbinary(f"RETR {path}", lambda b: None)
            ftp.delete(path)
        ftp.mkd("sub/d")
        ftp.rmd("sub/d")
        ftp.quit()
        time.sleep(0.3)
        return lists(redis_server)
    got = side_by_side(open_tmp_path, config, drive)
    assert got["proftpy"] == got["proftpd"] == {"where": [
        {"command": "STOR", "transfer_path": "/sub/in.txt"}, {"command": "RETR", "transfer_path": "/sub/in.txt"},
        {"command": "DELE", "transfer_path": "/sub/in.txt"}, {"command": "MKD", "transfer_path": "/sub/d"}]}
