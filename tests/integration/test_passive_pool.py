"""PassivePortPool against the real daemon: the master listens on the whole PassivePorts range, PASV/EPSV reserve a
port per (client address, port), the data connection reaches the session over its channel. Many clients share a
few ports; one client exhausts only its own; port thieves and unreserved connections are closed and logged; a
session killed while it holds a reservation leaves nothing behind; IPv6 EPSV, per-vhost ranges and
MasqueradeAddress work as without the pool."""

from __future__ import annotations

import ftplib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import threading

import psutil
import pytest

from conftest import PASSWORDS, REPO, make_file, wait_until
from proftpy.net.inet import ipv6_available
from proxyclient import ProxiedFTP


def free_range(count: int, host: str = "127.0.0.1") -> tuple[int, int]:
    """`count` consecutive ports, all free on `host` now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        lo = random.randrange(20000, 60000 - count)
        socks = []
        try:
            for port in range(lo, lo + count):
                s = socket.socket(family)
                socks.append(s)
                s.bind((host, port))
            return lo, lo + count - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def pooled(ftpd, count: int = 4, extra: str = "", **kw):
    lo, hi = free_range(count, kw.get("host", "127.0.0.1"))
    d = ftpd(f"DefaultRoot ~\nPassivePorts {lo} {hi}\nPassivePortPool on\nAllowOverwrite on\n{extra}", **kw)
    d.range = (lo, hi)
    return d


def client(d, source: str | None = None, user: str = "alice") -> ftplib.FTP:
    ftp = ProxiedFTP(None, source)
    ftp.connect(d.host, d.port)
    ftp.login(user, PASSWORDS[user])
    return ftp


def pasv_port(ftp: ftplib.FTP) -> int:
    return ftplib.parse227(ftp.sendcmd("PASV"))[1]


def listening_ports(pid: int) -> set[int]:
    return {c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN}


def test_transfers_through_the_pool(ftpd):
    d = pooled(ftpd)
    lo, hi = d.range
    assert set(range(lo, hi + 1)) <= listening_ports(d.master_pid)     # listening from the start
    make_file(d, "f.bin", b"pooled" * 1000)
    ftp = client(d)
    session_pid = next(p.pid for p in psutil.Process(d.master_pid).children())
    got = io.BytesIO()
    ftp.retrbinary("RETR f.bin", got.write)
    assert got.getvalue() == b"pooled" * 1000
    ftp.storbinary("STOR up.bin", io.BytesIO(b"up" * 5000))
    assert (d.home("alice") / "up.bin").read_bytes() == b"up" * 5000
    assert any("f.bin" in line for line in _list(ftp))
    assert lo <= pasv_port(ftp) <= hi
    assert not listening_ports(session_pid)                             # the session binds nothing
    ftp.sendcmd("ABOR")
    ftp.set_pasv(True)
    ftp.sendcmd("EPSV")
    ftp.quit()


def _list(ftp: ftplib.FTP) -> list[str]:
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    return lines


def test_many_clients_share_two_ports(ftpd):
    """24 clients from 24 addresses download at once through a range of 2 ports: every download completes."""
    d = pooled(ftpd, count=2, extra="MaxInstances 100\n")
    data = os.urandom(256 << 10)
    make_file(d, "big.bin", data)
    results: dict[str, bytes | Exception] = {}

    def one(i: int) -> None:
        source = f"127.0.0.{10 + i}"
        try:
            ftp = client(d, source)
            got = io.BytesIO()
            ftp.retrbinary("RETR big.bin", got.write)
            ftp.quit()
            results[source] = got.getvalue()
        except Exception as e:              # reported below
            results[source] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 24
    assert all(r == data for r in results.values()), {k: v for k, v in results.items() if v != data}


def test_one_client_uses_up_only_its_own_keys(ftpd):
    d = pooled(ftpd, count=2)
    a1, a2, a3 = (client(d, "127.0.0.21") for _ in range(3))
    ports = {pasv_port(a1), pasv_port(a2)}
    assert ports == set(range(d.range[0], d.range[1] + 1))
    with pytest.raises(ftplib.error_temp, match=r"425 Unable to build data connection: no free port in "
                                                 r"PassivePorts range \d+-\d+ for 127.0.0.21"):
        a3.sendcmd("PASV")
    b = client(d, "127.0.0.22", "bob")                                  # another client: not affected
    assert _list(b) is not None
    a1.voidcmd("TYPE A")
    _list(a1)                                                           # a1's LIST uses up its reservation ...
    assert d.range[0] <= pasv_port(a3) <= d.range[1]                    # ... so a3 gets that port now
    assert "no free port in PassivePorts range" in d.log()
    for ftp in (a1, a2, a3, b):
        ftp.quit()


def test_next_pasv_and_port_give_the_reservation_back(ftpd):
    d = pooled(ftpd, count=2)
    first, second = client(d, "127.0.0.31"), client(d, "127.0.0.31")
    p = pasv_port(first)
    assert pasv_port(first) in range(d.range[0], d.range[1] + 1)       # the next PASV replaces the first
    q = pasv_port(second)
    assert {p, q} <= set(range(d.range[0], d.range[1] + 1))
    third = client(d, "127.0.0.31")
    with pytest.raises(ftplib.error_temp, match="425"):
        third.sendcmd("PASV")
    first.sendcmd("PORT 127,0,0,31,200,1")                              # active mode: the port is released
    assert wait_until(lambda: _pasv_ok(third), 5)
    for ftp in (first, second, third):
        ftp.quit()


def _pasv_ok(ftp: ftplib.FTP) -> bool:
    try:
        ftp.sendcmd("PASV")
        return True
    except ftplib.error_temp:
        return False


def test_unreserved_and_stolen_connections_are_closed(ftpd):
    d = pooled(ftpd, count=2, extra="SyslogLevel info\n")
    ftp = client(d, "127.0.0.41")
    port = pasv_port(ftp)
    with socket.create_connection(("127.0.0.1", port), 5, source_address=("127.0.0.66", 0)) as thief:
        assert thief.recv(10) == b""                                     # another address: closed at once
    other = d.range[0] if port != d.range[0] else d.range[1]
    with socket.create_connection(("127.0.0.1", other), 5, source_address=("127.0.0.41", 0)) as stray:
        assert stray.recv(10) == b""                                     # its own address, a port not reserved
    assert wait_until(lambda: f"Unexpected passive data connection from 127.0.0.66 to port {port}" in d.log())
    ftp.sendcmd("TYPE A")
    with socket.create_connection(("127.0.0.1", port), 5, source_address=("127.0.0.41", 0)) as data:
        ftp.sendcmd("LIST")                                              # the reservation survived the thief
        listing = b""
        while chunk := data.recv(4096):
            listing += chunk
    assert ftp.voidresp().startswith("226")
    ftp.quit()


def test_session_killed_while_holding_a_reservation(ftpd):
    """SIGKILL gives the session no chance to give its port back: the master's scavenger does, on reaping it."""
    d = pooled(ftpd, count=2)
    victim, holder, other = (client(d, "127.0.0.51") for _ in range(3))
    pasv_port(victim)
    pasv_port(holder)
    with pytest.raises(ftplib.error_temp, match="425"):
        other.sendcmd("PASV")
    local_port = victim.sock.getsockname()[1]
    pid = next(p.pid for p in psutil.Process(d.master_pid).children()
               if any(c.raddr and c.raddr.port == local_port for c in p.net_connections("tcp")))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: _pasv_ok(other), 5)
    assert _list(other) is not None
    other.quit()
    holder.quit()


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_epsv(ftpd):
    d = pooled(ftpd, host="::1")
    make_file(d, "six.txt", b"over IPv6")
    ftp = client(d)
    assert ftp.sendcmd("EPSV").startswith("229 Entering Extended Passive Mode (|||")
    got = io.BytesIO()
    ftp.retrbinary("RETR six.txt", got.write)               # ftplib uses EPSV on IPv6
    assert got.getvalue() == b"over IPv6"
    assert ftp.sendcmd("EPSV 2").startswith("229")
    ftp.quit()


def test_vhost_ranges_and_masquerade(ftpd):
    lo2, hi2 = free_range(2, "127.0.0.2")
    d = pooled(ftpd, count=2, extra=(
        "MasqueradeAddress 192.0.2.10\n"
        f"<VirtualHost 127.0.0.2>\nPort {{port}}\nPassivePorts {lo2} {hi2}\nPassivePortPool on\nDefaultRoot ~\n"
        "AuthOrder mod_auth_file.c\nAuthUserFile {dir}/ftpd.passwd\nAuthGroupFile {dir}/ftpd.group\n"
        "</VirtualHost>\n"))
    main = client(d)
    reply = main.sendcmd("PASV")
    assert reply.startswith("227 Entering Passive Mode (192,0,2,10,")
    assert d.range[0] <= ftplib.parse227(reply)[1] <= d.range[1]
    main.quit()
    vhost = ftplib.FTP(timeout=10)
    vhost.connect("127.0.0.2", d.port)
    vhost.login("alice", PASSWORDS["alice"])
    host, port = ftplib.parse227(vhost.sendcmd("PASV"))
    assert host == "127.0.0.2" and lo2 <= port <= hi2
    make_file(d, "v.txt", b"vhost")
    got = io.BytesIO()
    vhost.retrbinary("RETR v.txt", got.write)
    assert got.getvalue() == b"vhost"
    vhost.quit()


def test_a_port_taken_at_start_stops_the_daemon(ftpd, tmp_path):
    lo, hi = free_range(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", hi))
        squatter.listen(1)
        try:
            d = ftpd(f"PassivePorts {lo} {hi}\nPassivePortPool on\n")
        except RuntimeError as e:                   # exited before its PidFile was written
            err = str(e)
        else:                                       # PidFile first, then the modules start: it exits then
            assert d.proc.wait(15) == 1
            err = d.proc.stderr.read().decode()
    assert f"PassivePortPool: cannot listen on 127.0.0.1 port {hi}: Address already in use" in err


def test_reload_moves_the_pool(ftpd):
    """HUP with another range: the master listens on the new ports, closes the old ones, and PASV uses them."""
    d = pooled(ftpd, count=2)
    old = d.range
    new = free_range(2)
    text = d.conf.read_text().replace(f"PassivePorts {old[0]} {old[1]}", f"PassivePorts {new[0]} {new[1]}")
    d.conf.write_text(text)
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: set(range(new[0], new[1] + 1)) <= listening_ports(d.master_pid), 10)
    assert not set(range(old[0], old[1] + 1)) & listening_ports(d.master_pid)
    ftp = client(d)
    assert new[0] <= pasv_port(ftp) <= new[1]
    assert _list(ftp) is not None
    ftp.quit()


def test_pool_needs_a_range(ftpd):
    """Without PassivePorts the pool does nothing (`-t` says so) and PASV binds a port as usual."""
    d = ftpd("DefaultRoot ~\nPassivePortPool on\n")
    check = subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(d.conf)], capture_output=True,
                           text=True, timeout=30, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert "PassivePortPool on without PassivePorts" in check.stdout + check.stderr
    ftp = client(d)
    assert _list(ftp) is not None
    ftp.quit()
