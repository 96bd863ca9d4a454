"""Two proftpy nodes behind Debian's HAProxy (/usr/sbin/haproxy, TCP mode, on free loopback ports), configured as
docs/cluster.md tells an administrator: the control port balanced over node A (127.0.0.2) and node B (127.0.0.3)
with `send-proxy-v2` (and health checks, which arrive as PROXY v2 LOCAL), each node with its own passive range
routed by HAProxy to that node, MasqueradeAddress of the front address, one AuthUserFile and one storage for both.
Node A pools its passive ports (PassivePortPool), node B binds one per PASV: both work through the proxy.

Clients connect from their own addresses (127.0.0.11, .12, ...): ftplib and lftp log in, list, upload and
download in passive mode through HAProxy, and ftpwho on each node shows the clients' real addresses.

With mod_ban's bans shared through one redis-server (started by the test on a free loopback port), a client that
fails to log in on one node is refused by both."""

from __future__ import annotations

import ftplib
import io
import json
import os
import signal
import socket
import subprocess
import sys

import contextlib

import pytest

from conftest import PASSWORDS, REPO, Daemon, free_port, make_users, start_daemon, wait_until
from proxyclient import ProxiedFTP
from test_ban_redis import RedisServer, host_key
from test_passive_pool import free_range

HAPROXY = "/usr/sbin/haproxy"
FRONT = "127.0.0.1"
NODES = {"a": "127.0.0.2", "b": "127.0.0.3"}


NODE_CONFIG = """\
ServerName "node-{name}"
Port {port}
DefaultAddress {addr}
SocketBindTight on
UseIPv6 off
UseReverseDNS off
PidFile {dir}/proftpy.pid
ScoreboardFile {dir}/proftpy.scoreboard
SystemLog {dir}/system.log
ControlsSocket {dir}/proftpy.sock
SyslogLevel info
TimeoutIdle 30
AuthOrder mod_auth_file.c
AuthUserFile {shared}/ftpd.passwd
AuthGroupFile {shared}/ftpd.group
RequireValidShell off
UseFtpUsers off
DefaultRoot ~
AllowOverwrite on
TransferLog none
# the proxy
ProxyProtocolEngine on
ProxyProtocolVersion haproxyV2
ProxyProtocolTrustedProxies 127.0.0.1
MasqueradeAddress {front}
PassivePorts {lo} {hi}
{pool}
"""

# the configuration docs/cluster.md gives, with this test's addresses and ports (and `balance roundrobin` instead of
# leastconn, so that two clients in a row land on both nodes)
HAPROXY_CONFIG = """\
global
    maxconn 1000

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend ftp
    bind {front}:{port}
    default_backend ftp_nodes

backend ftp_nodes
    balance roundrobin
    server node-a {a}:{port} send-proxy-v2 check inter 2s fall 2 rise 2
    server node-b {b}:{port} send-proxy-v2 check inter 2s fall 2 rise 2

frontend ftp_data
    bind {front}:{a_lo}-{a_hi}
    bind {front}:{b_lo}-{b_hi}
    use_backend ftp_data_a if {{ dst_port {a_lo}:{a_hi} }}
    use_backend ftp_data_b if {{ dst_port {b_lo}:{b_hi} }}

backend ftp_data_a
    server node-a {a}

backend ftp_data_b
    server node-b {b}
"""


def common_port() -> int:
    """A port free on the front address and on both nodes' addresses."""
    for _ in range(50):
        port = free_port(FRONT)
        try:
            for addr in NODES.values():
                with socket.socket() as s:
                    s.bind((addr, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no common free port")


# mod_ban with its bans in one Redis for both nodes (docs/cluster.md)
SHARED_BANS = """\
BanEngine on
BanTable {dir}/ban.tab
BanMessage "banned: %a"
BanCache redis
RedisEngine on
RedisServer 127.0.0.1:{redis_port}
RedisTimeouts 300 300
MaxLoginAttempts 1
BanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00
DelayEngine off
"""


@pytest.fixture
def cluster(tmp_path):
    with running_cluster(tmp_path) as running:
        yield running


@contextlib.contextmanager
def running_cluster(tmp_path, extra: str = ""):
    """The two nodes (each with `extra`, formatted with its `dir`) behind HAProxy: (nodes, port, ranges)."""
    users = make_users(tmp_path)
    os.chmod(tmp_path, 0o755)
    port = common_port()
    ranges = {name: free_range(4, FRONT) for name in NODES}
    nodes: dict[str, Daemon] = {}
    proxy = None
    try:
        for name, addr in NODES.items():
            d = Daemon(dir=tmp_path / f"node-{name}", port=port, conf=tmp_path / f"node-{name}" / "proftpy.conf",
                       host=addr, users=users)
            d.dir.mkdir()
            lo, hi = ranges[name]
            d.conf.write_text(NODE_CONFIG.format(name=name, port=port, addr=addr, dir=d.dir, shared=tmp_path,
                                                 front=FRONT, lo=lo, hi=hi,
                                                 pool="PassivePortPool on" if name == "a" else "")
                              + extra.format(dir=d.dir))
            nodes[name] = start_daemon(d)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(HAPROXY_CONFIG.format(front=FRONT, port=port, a=NODES["a"], b=NODES["b"],
                                             a_lo=ranges["a"][0], a_hi=ranges["a"][1],
                                             b_lo=ranges["b"][0], b_hi=ranges["b"][1]))
        assert os.access(HAPROXY, os.X_OK), "Debian's haproxy is missing: scripts/install-deps.sh installs it"
        proxy = subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert wait_until(lambda: _greets(FRONT, port) or proxy.poll() is not None, 15)
        assert proxy.poll() is None, proxy.stdout.read().decode()
        yield nodes, port, ranges
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
        for d in nodes.values():
            d.stop()


def _greets(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), 2) as s:
            return s.recv(100).startswith(b"220 ")
    except OSError:
        return False


def ftpwho(d: Daemon) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpwho", "-f", str(d.dir / "proftpy.scoreboard"),
                          "-o", "json"], capture_output=True, text=True, timeout=30, check=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO))).stdout
    return sorted(c["remote_address"] for c in json.loads(out)["connections"] if c.get("user"))


def through_proxy(port: int, source: str, user: str = "alice") -> ftplib.FTP:
    ftp = ProxiedFTP(None, source, timeout=20)
    ftp.connect(FRONT, port)
    ftp.login(user, PASSWORDS[user])
    return ftp


def test_clients_through_haproxy(cluster, tmp_path):
    nodes, port, ranges = cluster
    # two clients, two nodes (round robin): each logs in, uploads, lists and downloads in passive mode
    first = through_proxy(port, "127.0.0.11")
    second = through_proxy(port, "127.0.0.12", "bob")
    for ftp, name in ((first, "first"), (second, "second")):
        data = f"uploaded by the {name} client ".encode() * 2000
        ftp.storbinary(f"STOR {name}.bin", io.BytesIO(data))
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        assert any(f"{name}.bin" in line for line in lines)
        got = io.BytesIO()
        ftp.retrbinary(f"RETR {name}.bin", got.write)
        assert got.getvalue() == data
        host, pasv_port = ftplib.parse227(ftp.sendcmd("PASV"))
        assert host == FRONT                                # MasqueradeAddress: the front address
        ftp.sendcmd("ABOR")
    # ftpwho on each node shows the real client addresses, one client per node
    assert wait_until(lambda: sorted(ftpwho(nodes["a"]) + ftpwho(nodes["b"])) == ["127.0.0.11", "127.0.0.12"])
    assert len(ftpwho(nodes["a"])) == len(ftpwho(nodes["b"])) == 1
    first.quit()
    second.quit()
    # lftp through HAProxy (its own choice of EPSV/PASV), files on the storage both nodes share
    work = tmp_path / "lftp"
    work.mkdir()
    (work / "from-lftp.bin").write_bytes(os.urandom(300_000))
    script = ("set ftp:passive-mode on; set net:socket-bind-ipv4 127.0.0.13; set net:max-retries 1; "
              "set net:timeout 20; set ftp:ssl-allow no; "
              "put from-lftp.bin; cls -1; get first.bin -o first-copy.bin; get from-lftp.bin -o again.bin; quit")
    for _ in range(2):          # one run per node (round robin): both serve the same files
        (work / "again.bin").unlink(missing_ok=True)
        out = subprocess.run(["lftp", "-u", f"alice,{PASSWORDS['alice']}", "-p", str(port), "-e", script, FRONT],
                             cwd=work, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode()
        assert b"from-lftp.bin" in out.stdout and b"first.bin" in out.stdout
        assert (work / "again.bin").read_bytes() == (work / "from-lftp.bin").read_bytes()
        assert (work / "first-copy.bin").read_bytes() == b"uploaded by the first client " * 2000
    logs = nodes["a"].log() + nodes["b"].log()
    for name in ("a", "b"):
        assert "(127.0.0.13[127.0.0.13]): FTP session opened." in nodes[name].log(), name
    assert "address mismatch" not in logs and "Unexpected passive data connection" not in logs
    assert "disconnecting client" not in logs              # no header refused, none late (health checks: LOCAL)


def test_failed_logins_on_one_node_ban_the_client_on_the_other(tmp_path):
    """The client fails once on whichever node HAProxy picks; its ban reaches Redis, and the next connections,
    one on each node (round robin), are refused, by the node that banned it and by the other one."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        with running_cluster(tmp_path, SHARED_BANS.replace("{redis_port}", str(redis.port))) as (nodes, port, _):
            ftp = ProxiedFTP(None, "127.0.0.21", timeout=20)
            ftp.connect(FRONT, port)
            with pytest.raises((ftplib.error_perm, EOFError)):
                ftp.login("alice", "wrong")
            ftp.close()
            assert wait_until(lambda: host_key("127.0.0.21") in redis.keys())
            for _ in range(2):
                ftp = ProxiedFTP(None, "127.0.0.21", timeout=20)
                with pytest.raises((ftplib.error_perm, EOFError, ConnectionError)):
                    ftp.connect(FRONT, port)
                    ftp.login("alice", PASSWORDS["alice"])
                ftp.close()
            for d in nodes.values():            # one refused in its master, the other found the ban in Redis
                assert wait_until(lambda: "Login denied: host '127.0.0.21' banned" in d.log()), d.host
            assert sum("autoban for host '127.0.0.21'" in d.log() for d in nodes.values()) == 1
            for _ in range(2):                      # another client is let in on both nodes
                through_proxy(port, "127.0.0.22").quit()
    finally:
        redis.kill()
