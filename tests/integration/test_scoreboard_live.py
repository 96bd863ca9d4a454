"""The scoreboard of a running daemon, read by the real tools (ftpwho, ftpcount, ftptop) while real clients are
connected in mixed states: idle, downloading (slowly, TransferRate), uploading, still authenticating."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proftpy.scoreboard import Scoreboard

REPO = Path(__file__).resolve().parents[2]
BIG = 4 << 20            # 4 MiB at 32 KiB/s: the download lasts far longer than the test


def tool(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", f"proftpy.tools.{name}", *args], capture_output=True, text=True,
                         timeout=30, env=env)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def sb_path(d) -> str:
    return str(d.dir / "proftpy.scoreboard")


def entries(d):
    with Scoreboard.open(sb_path(d), readonly=True) as sb:
        return sb.entries()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Mixed:
    """Opens sessions in each state and keeps them (and their data connections) until close()."""

    def __init__(self, d):
        self.d = d
        self.ftps: list = []
        self.data: list[socket.socket] = []
        self.raw: list[socket.socket] = []

    def idle(self, user: str) -> None:
        self.ftps.append(self.d.login(user))

    def downloading(self) -> None:
        ftp = self.d.login("alice")
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("RETR big.bin")
        conn.recv(1024)
        self.ftps.append(ftp)
        self.data.append(conn)

    def uploading(self, n: int) -> None:
        ftp = self.d.login("bob")
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd(f"STOR up{n}.bin")
        conn.sendall(b"u" * 10000)
        self.ftps.append(ftp)
        self.data.append(conn)

    def authenticating(self) -> None:
        s = socket.create_connection((self.d.host, self.d.port), timeout=10)
        s.recv(1024)
        s.sendall(b"USER alice\r\n")
        assert s.recv(1024).startswith(b"331")
        self.raw.append(s)

    def close(self) -> None:
        for s in self.data + self.raw:
            s.close()
        for ftp in self.ftps:
            ftp.sock.close()


def _mixed_sessions(ftpd, idle: int, down: int, up: int, auth: int):
    d = ftpd("DefaultRoot ~\nTransferRate RETR 32\nAllowOverwrite on\nTimeoutIdle 120")
    (d.home("alice") / "big.bin").write_bytes(b"b" * BIG)
    if os.geteuid() == 0:
        os.chown(d.home("alice") / "big.bin", d.uid("alice"), -1)
    m = Mixed(d)
    for i in range(idle):
        m.idle("alice" if i % 2 else "bob")
    for _ in range(down):
        m.downloading()
    for i in range(up):
        m.uploading(i)
    for _ in range(auth):
        m.authenticating()
    total = idle + down + up + auth

    def settled():
        es = entries(d)
        done = [e for e in es if e.downloading and e.xfer_done > 0]
        return len(es) == total and len(done) == down and es
    wait_for(settled, 15, "every session in its state, downloads with progress")
    return d, m, total


def _check_tools(d, idle: int, down: int, up: int, auth: int) -> None:
    total = idle + down + up + auth
    path = sb_path(d)
    pids = {e.pid for e in entries(d)}

    out = tool("ftpwho", "-f", path).stdout
    assert out.startswith(f"standalone FTP daemon [{d.master_pid}], up for ")
    rows = [line for line in out.splitlines() if line[:5].strip().isdigit()]
    assert {int(r.split()[0]) for r in rows} == pids
    assert sum("idle" in r and "alice" in r or "idle" in r and "bob" in r for r in rows) == idle
    downloads = [r for r in rows if "RETR big.bin" in r]
    assert len(downloads) == down and all("%)" in r and "alice" in r for r in downloads)
    assert sum("(n/a) STOR up" in r and "bob" in r for r in rows) == up
    assert sum("(authenticating)" in r for r in rows) == auth

    doc = json.loads(tool("ftpwho", "-f", path, "-o", "json").stdout)
    conns = doc["connections"]
    assert doc["server"]["pid"] == d.master_pid and len(conns) == total
    assert sum(c["authenticating"] for c in conns) == auth
    assert sum(c["idling"] and not c["authenticating"] for c in conns) == idle
    dl = [c for c in conns if c["downloading"]]
    assert len(dl) == down
    assert all(c["command"] == "RETR" and c["command_args"] == "big.bin" and c["user"] == "alice"
               and 0 < float(c["transfer_completed"]) < 100 for c in dl)
    assert sum(c["uploading"] and c["user"] == "bob" for c in conns) == up
    assert all(c["remote_address"] == "127.0.0.1" and c["local_port"] == d.port for c in conns)

    count = tool("ftpcount", "-f", path).stdout
    assert count.startswith(f"Master proftpd process {d.master_pid}:")
    assert f"- {total:3d} users" in count

    top = tool("ftptop", "-b", "-n", "1", "-f", path).stdout
    assert f"{total} Total FTP Sessions: {down} downloading, {up} uploading," in top
    assert sum(line.split()[1] == "D" for line in top.splitlines() if line[:5].strip().isdigit()) == down


def test_tools_list_sessions_in_every_state(ftpd):
    d, m, _ = _mixed_sessions(ftpd, idle=2, down=2, up=2, auth=2)
    try:
        _check_tools(d, 2, 2, 2, 2)
    finally:
        m.close()


@pytest.mark.slow
def test_tools_list_fifty_sessions_in_mixed_states(ftpd):
    d, m, _ = _mixed_sessions(ftpd, idle=20, down=10, up=10, auth=10)
    try:
        _check_tools(d, 20, 10, 10, 10)
    finally:
        m.close()


def test_slot_follows_login_cwd_and_is_released_on_quit(ftpd):
    d = ftpd("DefaultRoot ~")
    (d.home("alice") / "sub").mkdir()
    ftp = d.login("alice")
    e = wait_for(lambda: next((x for x in entries(d) if x.cmd == "idle"), None), 5, "idle after PASS")
    assert (e.user, e.client_addr, e.server_label) == ("alice", "127.0.0.1", "proftpy test")
    assert e.server_addr == f"127.0.0.1:{d.port}" and e.protocol == "ftp"
    ftp.cwd("sub")
    assert e.cwd == "/"
    wait_for(lambda: entries(d)[0].cwd == "/sub", 5, "cwd update")
    ftp.quit()
    wait_for(lambda: entries(d) == [], 5, "slot released")


def test_the_slot_says_idle_a_moment_after_the_last_command(ftpd):
    d = ftpd()
    ftp = d.login("alice")
    wait_for(lambda: [e.cmd for e in entries(d)] == ["idle"], 5, "idle after PASS")
    start = time.monotonic()
    ftp.sendcmd("NOOP")
    (e,) = entries(d)
    if time.monotonic() - start < 0.05:         # read within IDLE_AFTER of the reply: the command still shows
        assert e.cmd == "NOOP"
    done = time.time()
    e = wait_for(lambda: next((x for x in entries(d) if x.cmd == "idle"), None), 5, "idle after NOOP")
    assert int(done) - 1 <= e.begin_idle <= int(done)      # idle counts from the command's end, not the write
    ftp.quit()


def test_password_is_never_in_the_scoreboard(ftpd):
    d = ftpd()
    s = socket.create_connection((d.host, d.port), timeout=10)
    s.recv(1024)
    s.sendall(b"USER alice\r\nPASS wrong-secret\r\n")
    time.sleep(0.3)
    raw = Path(sb_path(d)).read_bytes()
    s.close()
    assert b"wrong-secret" not in raw


def test_killed_sessions_disappear_after_a_scrub(ftpd):
    d = ftpd("ScoreboardScrub 2\nSyslogLevel info")   # "1" would read as "on" (every 30 s), as in ProFTPD
    ftps = [d.login("alice"), d.login("bob"), d.login("alice")]
    victim = next(e for e in entries(d) if e.user == "bob")
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(lambda: [e.user for e in entries(d)] == ["alice", "alice"], 5, "the killed session's slot scrubbed")
    assert "scoreboard scrub: cleared 1 slot" in d.log()
    for ftp in ftps[::2]:
        ftp.quit()


def test_sighup_scrubs(ftpd):
    d = ftpd("ScoreboardScrub off")
    ftp = d.login("alice")
    (e,) = entries(d)
    os.kill(e.pid, signal.SIGKILL)
    time.sleep(1.5)
    assert len(entries(d)) == 1           # no timer: the stale slot stays...
    os.kill(d.master_pid, signal.SIGHUP)
    wait_for(lambda: entries(d) == [], 5, "scrub on SIGHUP")   # ...until the reload
    ftp.sock.close()


def test_scoreboard_file_none_disables_it(ftpd):
    d = ftpd("ScoreboardFile none")
    ftp = d.login("alice")
    assert ftp.pwd() == "/" or ftp.pwd()
    ftp.quit()
    assert not (d.dir / "proftpy.scoreboard").exists()


def test_scoreboard_behind_a_symlink_is_refused(ftpd, tmp_path):
    real = tmp_path / "elsewhere"
    real.write_bytes(b"")
    (tmp_path / "link.sb").symlink_to(real)
    d = ftpd("ScoreboardFile {dir}/link.sb", wait=False)
    assert d.proc.wait(15) == 1
    assert "unable to create the scoreboard" in d.proc.stderr.read().decode() + d.log()
    assert "refusing to use a symbolic link" in d.log()
    assert real.read_bytes() == b""


def test_scoreboard_is_removed_when_the_server_stops(ftpd):
    d = ftpd()
    wait_for(lambda: Path(sb_path(d)).exists(), 5, "the scoreboard")    # made just after the PidFile
    d.stop()
    assert not Path(sb_path(d)).exists()
    res = tool("ftpwho", "-f", sb_path(d), check=False)
    assert res.returncode == 1 and "is proftpy running?" in res.stderr


def _many_connections(d, n: int) -> None:
    """n clients connected at once, each greeted (so its session has claimed a slot), then all gone."""
    socks = []
    try:
        t0 = time.monotonic()
        for _ in range(n):
            socks.append(socket.create_connection((d.host, d.port), timeout=60))
        for s in socks:
            assert s.recv(1024).startswith(b"220")
        print(f"{n} sessions greeted in {time.monotonic() - t0:.1f} s")
        es = wait_for(lambda: (lambda es: len(es) == n and es)(entries(d)), 30, f"{n} slots")
        assert len({e.slot for e in es}) == n and len({e.pid for e in es}) == n
        for e in es:
            os.kill(e.pid, 0)             # every slot belongs to a live session
    finally:
        for s in socks:
            s.close()
    t0 = time.monotonic()
    wait_for(lambda: entries(d) == [], 60, "every slot released")
    print(f"{n} slots released in {time.monotonic() - t0:.1f} s")


def test_hundred_concurrent_sessions_leave_no_stale_slot(ftpd):
    d = ftpd("ScoreboardScrub off")       # release, not the scrub timer, must free every slot
    _many_connections(d, 100)


@pytest.mark.slow
def test_thousand_concurrent_sessions_leave_no_stale_slot(ftpd):
    d = ftpd("ScoreboardScrub off\nTimeoutIdle 600\nTimeoutLogin 600")
    _many_connections(d, 1000)
    with Scoreboard.open(sb_path(d), readonly=True) as sb:
        assert sb.header.slots >= 1000


def test_inetd_session_creates_and_uses_the_scoreboard(tmp_path):
    from tests.conftest import AUTH_CONFIG, fill, make_users
    make_users(tmp_path)
    os.chmod(tmp_path, 0o755)
    conf = tmp_path / "inetd.conf"
    conf.write_text(fill("ServerType inetd\nServerName inetd-test\nUseReverseDNS off\nUseIPv6 off\n"
                         "SystemLog {dir}/system.log\nScoreboardFile {dir}/sb\nDelayTable {dir}/delay\n" + AUTH_CONFIG,
                         {"dir": tmp_path}))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        conn, _ = listener.accept()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "proftpy", "-q", "-c", str(conf)], stdin=conn, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    conn.close()
    try:
        reply = client.makefile("rb")
        assert reply.readline().startswith(b"220 ")
        client.sendall(b"USER alice\r\nPASS alice-secret\r\n")
        assert reply.readline().startswith(b"331 ") and reply.readline().startswith(b"230 ")
        def idle_listing():
            out = tool("ftpwho", "-f", str(tmp_path / "sb")).stdout
            return out if "idle" in out else None

        out = wait_for(idle_listing, 5, "idle after PASS")
        assert out.startswith("inetd FTP daemon:") and "alice" in out
        client.sendall(b"QUIT\r\n")
        assert reply.readline().startswith(b"221 ")
        assert proc.wait(10) == 0
        assert "no users connected" in tool("ftpwho", "-f", str(tmp_path / "sb")).stdout
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
