"""Pre-forked idle children (StartServers, MinSpareServers, MaxSpareServers): connections served by a child that
existed before the client connected, the master's vetoes still first, reloads and deaths replace idle children,
bursts beyond the pool, and idle children never counted as sessions."""

import ftplib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

from conftest import REPO, Daemon, wait_until
from test_master_seams import socket_fds
from proftpy.scoreboard import Scoreboard

POOL = "StartServers 3\nMinSpareServers 2\nMaxSpareServers 4\n"
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def idle_pids(d: Daemon) -> set[int]:
    out = set()
    for child in psutil.Process(d.master_pid).children():
        try:
            if child.cmdline()[:1] == ["proftpy: (idle)"] and child.status() != psutil.STATUS_ZOMBIE:
                out.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def pool_of(d: Daemon, count: int, timeout: float = 10) -> set[int]:
    """The idle children once there are `count` of them (the test fails otherwise)."""
    assert wait_until(lambda: len(idle_pids(d)) == count, timeout), f"idle children: {idle_pids(d)}"
    return idle_pids(d)


def session_pids(d: Daemon) -> set[int]:
    with Scoreboard.open(str(d.dir / "proftpy.scoreboard"), readonly=True) as sb:
        return {e.pid for e in sb.entries()}


def banner(d: Daemon, port: int | None = None) -> bytes:
    with socket.create_connection((d.host, port or d.port), timeout=5) as s:
        return s.makefile("rb").readline()


def tool(name: str, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", f"proftpy.tools.{name}", *args], capture_output=True, text=True,
                         timeout=30, env=ENV)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_a_connection_is_served_by_a_child_forked_before_it(ftpd):
    d = ftpd(POOL)
    before = pool_of(d, 3)
    ftp = d.login()
    assert ftp.sendcmd("NOOP").startswith("200")
    (pid,) = session_pids(d)
    assert pid in before                                        # the child existed before the client connected
    assert psutil.Process(pid).uids().real == d.uid("alice")   # and dropped to the user after the hand-over
    assert pid not in idle_pids(d)
    master_nice = psutil.Process(d.master_pid).nice()
    assert psutil.Process(pid).nice() == master_nice            # the idle child's lower priority is undone
    niced = min(19, master_nice + 10) if os.geteuid() == 0 else master_nice    # only root may undo it
    assert {psutil.Process(p).nice() for p in idle_pids(d)} == {niced}
    ftp.quit()
    assert wait_until(lambda: len(idle_pids(d)) == 2)           # taken, not replaced above MinSpareServers 2


def test_stop_ends_the_idle_children(ftpd):
    d = ftpd(POOL)
    pids = pool_of(d, 3)
    d.stop()
    assert wait_until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                                      for p in pids), 5)


def test_the_pooled_child_serves_the_virtual_host_of_its_socket(ftpd):
    from conftest import free_port
    vport = free_port()
    d = ftpd(POOL + f"<VirtualHost 127.0.0.1>\nPort {vport}\nServerName second\n</VirtualHost>\n")
    before = pool_of(d, 3)
    with socket.create_connection(("127.0.0.1", vport), timeout=5) as s:
        assert s.makefile("rb").readline() == b"220 ProFTPD Server (second) [127.0.0.1]\r\n"
        assert {c.pid for c in psutil.Process(d.master_pid).children()} & before - idle_pids(d)
    assert banner(d) == b"220 ProFTPD Server (proftpy test) [127.0.0.1]\r\n"


def test_a_banned_host_is_refused_by_the_master_before_any_idle_child_sees_it(ftpd):
    d = ftpd(POOL + "BanEngine on\nBanTable {dir}/ban.tab\nBanControlsACLs all allow user root\n")
    assert wait_until(lambda: (d.dir / "proftpy.sock").exists(), 10)
    res = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpdctl", "-s", str(d.dir / "proftpy.sock"),
                          "ban", "host", "127.0.0.1"], capture_output=True, text=True, timeout=30, env=ENV)
    assert "banned" in res.stdout
    before = pool_of(d, 3)
    assert banner(d) == b""                                     # closed without a word, by the master
    assert wait_until(lambda: "Login denied: host '127.0.0.1' banned" in d.log(), 5)
    assert idle_pids(d) == before                               # no idle child was handed the connection


def test_idle_children_rehearse_a_sessions_start_without_its_effects(ftpd):
    d = ftpd(POOL + "<Limit LOGIN>\n  DenyAll\n</Limit>\n")
    pool_of(d, 3)
    time.sleep(1)                       # each has waited WARM_AFTER and rehearsed a session's start meanwhile
    assert session_pids(d) == set()                             # no scoreboard slot claimed
    assert "denied" not in d.log()                              # the <Limit LOGIN> decision taken, not acted on
    assert "rehearsal" not in d.log()                           # and no module's rehearsal failed
    assert banner(d) == b""
    assert wait_until(lambda: "denied" in d.log(), 5)              # the session that came is refused


def test_max_connection_rate_is_decided_before_the_hand_over(ftpd):
    d = ftpd(POOL + "MaxConnectionRate 1 30\n")
    before = pool_of(d, 3)
    first = d.connect()                                         # handed to an idle child: counted
    after_first = pool_of(d, 2)
    assert len(before - after_first) == 1
    assert banner(d) == b""                                     # refused by the master
    assert wait_until(lambda: "MaxConnectionRate reached, refused connection from 127.0.0.1" in d.log())
    assert idle_pids(d) == after_first
    first.quit()


def test_idle_children_are_no_sessions(ftpd):
    d = ftpd(POOL + "MaxInstances 1\n")
    pool_of(d, 3)
    ftp = d.login()
    pool_of(d, 2)
    assert banner(d) == b""                                     # MaxInstances counts the one session only
    sessions = session_pids(d)
    assert len(sessions) == 1 and not sessions & idle_pids(d)
    who = tool("ftpwho", "-f", str(d.dir / "proftpy.scoreboard"))
    assert [line for line in who.splitlines() if line[:5].strip().isdigit()] == [
        line for line in who.splitlines() if line[:5].strip() == str(next(iter(sessions)))]
    assert "Service class                      -   1 user" in tool("ftpcount", "-f",
                                                                       str(d.dir / "proftpy.scoreboard"))
    ftp.quit()


def test_hup_replaces_the_idle_children_with_ones_of_the_new_configuration(ftpd):
    d = ftpd(POOL)
    before = pool_of(d, 3)
    assert banner(d).startswith(b"220 ProFTPD Server (proftpy test)")
    old = pool_of(d, 2)
    d.conf.write_text('ServerIdent on "after the reload"\n' + d.conf.read_text())
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: len(idle_pids(d)) == 3 and not idle_pids(d) & (before | old), 10)
    fresh = idle_pids(d)
    assert wait_until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                                      for p in old), 5)
    with socket.create_connection((d.host, d.port), timeout=5) as s:
        assert s.makefile("rb").readline() == b"220 after the reload\r\n"
        assert fresh - idle_pids(d)                             # served by one of the new idle children


def test_idle_children_retired_right_after_their_fork_do_not_stop_the_master(ftpd):
    """Each HUP retires (SIGTERM) the idle children forked after the one before: one still running the master's
    signal handlers would write its SIGTERM to the master's wake-up fd (the master shut down within 20 HUPs)."""
    d = ftpd(POOL)
    pool_of(d, 3)
    master = d.master_pid
    for _ in range(100):
        os.kill(master, signal.SIGHUP)
        time.sleep(0.01)
        assert "shutting down" not in d.log()
    assert psutil.Process(master).status() != psutil.STATUS_ZOMBIE
    pool_of(d, 3)
    assert banner(d).startswith(b"220 ")


def test_an_idle_child_that_dies_is_replaced(ftpd):
    d = ftpd(POOL)
    before = pool_of(d, 3)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(idle_pids(d)) == 3 and victim not in idle_pids(d), 10)
    assert wait_until(lambda: "idle child %d ended unexpectedly" % victim in d.log())   # logged as the master reaps it
    assert banner(d).startswith(b"220 ")


def test_a_burst_larger_than_the_pool_falls_back_to_fork_on_accept(ftpd):
    d = ftpd("StartServers 2\nMinSpareServers 2\n")
    before = pool_of(d, 2)
    clients: list[ftplib.FTP] = []
    errors: list[BaseException] = []

    def one():
        try:
            clients.append(d.login())
        except BaseException as e:          # reported below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(clients) == 8
    sessions = session_pids(d)
    assert len(sessions) == 8
    assert 1 <= len(sessions & before) <= 2                     # some handed over, the rest forked for them
    for ftp in clients:
        assert ftp.sendcmd("NOOP").startswith("200")
        ftp.quit()
    pool_of(d, 2)


def test_an_idle_child_shares_no_socket_with_the_master_or_other_children(ftpd):
    d = ftpd(POOL)
    idle = pool_of(d, 3)
    ftp = d.login()
    pool_of(d, 2)

    idle = idle_pids(d)
    session = next(iter(session_pids(d)))
    for pid in idle:
        mine = set(socket_fds(pid).values())
        assert len(mine) == 1                                   # its end of its channel, nothing else
        for other in {d.master_pid, session} | idle - {pid}:
            assert not mine & set(socket_fds(other).values())
    ftp.quit()


def test_bad_values_are_refused_with_file_and_line(tmp_path):
    for line, message in (("StartServers -1", "StartServers: -1 is below 0"),
                          ("MinSpareServers many", "MinSpareServers: 'many' is not a number"),
                          ("MaxSpareServers 1000", "MaxSpareServers: 1000 is above 256")):
        conf = tmp_path / "bad.conf"
        conf.write_text(f"ServerName x\n{line}\n")
        res = subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], env=ENV,
                             capture_output=True, text=True)
        assert res.returncode == 1
        assert res.stderr.strip() == f"{conf}:2: {message}"
    conf = tmp_path / "odd.conf"
    conf.write_text("ServerName x\nMinSpareServers 4\nMaxSpareServers 2\n")
    res = subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], env=ENV, capture_output=True,
                         text=True)
    assert res.returncode == 0
    assert "warning: MaxSpareServers 2 is below MinSpareServers 4: 4 idle children are kept" in res.stderr


def ctl(d: Daemon, *args: str) -> str:
    assert wait_until(lambda: (d.dir / "proftpy.sock").exists(), 10)
    res = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpdctl", "-s", str(d.dir / "proftpy.sock"), *args],
                         capture_output=True, text=True, timeout=30, env=ENV)
    return res.stdout


def test_ftpdctl_status_shows_idle_children_and_a_changing_action_replaces_them(ftpd):
    d = ftpd(POOL + "ControlsACLs all allow user root\nAdminControlsACLs all allow user root\n")
    before = pool_of(d, 3)
    assert "0 sessions, 3 idle" in ctl(d, "status")
    assert idle_pids(d) == before                               # a read-only action keeps them
    ctl(d, "debug", "level", "2")                               # sessions forked from now on log at level 2
    assert wait_until(lambda: len(idle_pids(d)) == 3 and not idle_pids(d) & before, 10)
