"""ftpdctl against a running daemon over its control socket: status, kick, restart, shutdown, debug, trace,
ACLs by the caller's user (SO_PEERCRED), ControlsSocketACL, ControlsLog."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port, refused_config
from proftpy.scoreboard import Scoreboard

REPO = Path(__file__).resolve().parents[2]
ME = pwd.getpwuid(os.geteuid()).pw_name
IS_ROOT = os.geteuid() == 0
CONTROLS = f"""ControlsLog {{dir}}/ctrls.log
ControlsACLs all allow user {ME}
AdminControlsACLs all allow user {ME}
"""


def ftpdctl(d, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "proftpy.tools.ftpdctl", "-s", str(d.ctrls_sock),
                           *args], capture_output=True, text=True, timeout=30, env=env)


def call_as(d, user: str, *argv: str) -> tuple[int, list[str]]:
    """The protocol call made by a forked process that switched to `user` (the interpreter itself may not be
    executable by that user), so the server sees that user's credentials."""
    from proftpy import ctrls
    pw = pwd.getpwnam(user)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            resp = ctrls.call(str(d.ctrls_sock), list(argv))
            os.write(w, f"{resp.status}\n".encode() + "\n".join(resp.lines).encode())
        except BaseException as e:
            os.write(w, f"99\n{e!r}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    status, _, text = out.partition("\n")
    return int(status), text.splitlines()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def users(d) -> list[str]:
    with Scoreboard.open(str(d.dir / "proftpy.scoreboard"), readonly=True) as sb:
        return sorted(e.user for e in sb.entries())


@pytest.fixture
def ctl(ftpd):
    """A daemon with the control socket in a directory other users can reach (pytest's tmp is root-only)."""
    sockdir = Path(tempfile.mkdtemp(prefix="proftpy-ctl-", dir="/tmp"))
    os.chmod(sockdir, 0o755)

    def start(extra: str = ""):
        # the test's ACL lines come last: for each action the last line naming it decides (as in ProFTPD)
        d = ftpd(CONTROLS + f"ControlsSocket {sockdir}/ctrls.sock\n" + extra)
        d.ctrls_sock = sockdir / "ctrls.sock"
        wait_for(lambda: d.ctrls_sock.exists(), 5, "the control socket")
        return d
    yield start
    shutil.rmtree(sockdir, ignore_errors=True)


def test_status_reports_the_server_and_its_sessions(ctl):
    d = ctl()
    ftp = d.login("alice")
    res = ftpdctl(d, "status")
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("ftpdctl: proftpy ") and f"pid {d.master_pid}" in lines[0]
    assert lines[1] == "ftpdctl: 1 session (0 authenticating)"
    assert f"ftpdctl: server 'proftpy test' 127.0.0.1#{d.port}: UP" in lines
    ftp.quit()


def test_kick_user_ends_only_that_users_sessions(ctl):
    d = ctl()
    a1, a2, b = d.login("alice"), d.login("alice"), d.login("bob")
    assert users(d) == ["alice", "alice", "bob"]
    res = ftpdctl(d, "kick", "user", "alice", "carol")
    assert res.returncode == 0 and res.stdout.splitlines() == ["ftpdctl: kicked user 'alice'",
                                                                "ftpdctl: user 'carol' not connected"]
    for ftp in (a1, a2):
        with pytest.raises((EOFError, ConnectionError)):
            ftp.voidcmd("NOOP")
    assert b.voidcmd("NOOP").startswith("200")
    wait_for(lambda: users(d) == ["bob"], 5, "alice's slots released")
    b.quit()


def test_kick_host_and_class(ctl):
    d = ctl("<Class local>\nFrom 127.0.0.0/8\n</Class>")
    ftp = d.login("bob")
    res = ftpdctl(d, "kick", "host", "192.0.2.1")
    assert res.stdout.strip() == "ftpdctl: host '192.0.2.1' not connected"
    assert ftp.voidcmd("NOOP").startswith("200")
    res = ftpdctl(d, "kick", "host", "127.0.0.1")
    assert res.stdout.strip() == "ftpdctl: kicked host '127.0.0.1'"
    with pytest.raises((EOFError, ConnectionError)):
        ftp.voidcmd("NOOP")
    ftp = d.login("alice")
    res = ftpdctl(d, "kick", "class", "local")
    assert res.returncode == 0, res.stdout
    if res.stdout.strip() == "ftpdctl: kicked class 'local'":
        with pytest.raises((EOFError, ConnectionError)):
            ftp.voidcmd("NOOP")
    else:                                     # <Class> support not loaded: nothing is in class "local"
        assert res.stdout.strip() == "ftpdctl: class 'local' not connected"


def test_kick_needs_a_kind_and_a_name(ctl):
    d = ctl()
    res = ftpdctl(d, "kick", "alice")
    assert res.returncode == 1 and "usage: kick user|host|class NAME" in res.stdout


def test_restart_reloads_and_refuses_a_broken_config(ctl):
    d = ctl()
    res = ftpdctl(d, "restart")
    assert (res.returncode, res.stdout.strip()) == (0, "ftpdctl: restarted server")
    assert "configuration reloaded" in d.log()
    good = d.conf.read_text()
    d.conf.write_text(good + "\nNoSuchDirective on\n")
    res = ftpdctl(d, "restart")
    assert res.returncode == 1 and "restart failed" in res.stdout
    d.login("alice").quit()                   # still serving with the old configuration


def test_shutdown_stops_the_master(ctl):
    d = ctl()
    ftp = d.login("alice")
    res = ftpdctl(d, "shutdown")
    assert res.stdout.strip() == "ftpdctl: shutting down"
    assert d.proc.wait(10) == 0
    with pytest.raises((EOFError, ConnectionError)):
        ftp.voidcmd("NOOP")
    assert not d.ctrls_sock.exists()


def test_graceful_shutdown_waits_for_the_last_session(ctl):
    d = ctl()
    ftp = d.login("alice")
    res = ftpdctl(d, "shutdown", "graceful")
    assert res.stdout.strip() == "ftpdctl: shutting down gracefully: waiting for 1 session"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((d.host, d.port), timeout=5)
    time.sleep(1.2)
    assert d.proc.poll() is None and ftp.voidcmd("NOOP").startswith("200")
    ftp.quit()
    assert d.proc.wait(10) == 0


def test_debug_and_trace(ctl):
    d = ctl()
    assert ftpdctl(d, "debug", "level", "3").stdout.strip() == "ftpdctl: debug level set to 3"
    assert ftpdctl(d, "debug", "level").stdout.strip() == "ftpdctl: debug level: 3"
    assert ftpdctl(d, "debug", "level", "x").returncode == 1
    assert ftpdctl(d, "trace", "info").stdout.strip() == "ftpdctl: no trace channels set"
    assert ftpdctl(d, "trace", "auth:5").stdout.strip() == "ftpdctl: trace channel 'auth' set to level 5"
    assert ftpdctl(d, "trace", "info").stdout.strip() == "ftpdctl: auth: 5"


def test_help_lists_actions_and_unknown_ones_are_refused(ctl):
    d = ctl()
    out = ftpdctl(d, "help").stdout
    for name in ("kick", "restart", "shutdown", "status", "debug", "trace", "lsctrl"):
        assert f"ftpdctl: {name}" in out
    res = ftpdctl(d, "frobnicate")
    assert (res.returncode, res.stdout.strip()) == (1, "ftpdctl: unsupported action: 'frobnicate'")
    log = (d.dir / "ctrls.log").read_text()
    assert f"{ME} (uid {os.geteuid()}" in log and "'help': ok" in log and "unsupported action" in log


def test_actions_are_denied_without_an_acl(ftpd):
    d = ftpd("ControlsSocket {dir}/ctrls.sock")
    d.ctrls_sock = d.dir / "ctrls.sock"
    wait_for(lambda: d.ctrls_sock.exists(), 5, "the control socket")
    res = ftpdctl(d, "status")
    assert (res.returncode, res.stdout.strip()) == (1, "ftpdctl: access denied")


@pytest.mark.skipif(not IS_ROOT, reason="runs ftpdctl as another user")
def test_acl_by_peer_user(ctl):
    d = ctl(f"AdminControlsACLs status allow user {ME},nobody")
    assert call_as(d, "nobody", "status")[0] == 0
    assert call_as(d, "nobody", "kick", "user", "alice") == (-1, ["access denied"])


@pytest.mark.skipif(not IS_ROOT, reason="runs ftpdctl as another user")
def test_socket_acl_refuses_the_connection(ctl):
    d = ctl(f"ControlsSocketACL deny user nobody\nAdminControlsACLs all allow user {ME},nobody")
    assert call_as(d, "nobody", "status") == (-1, ["access denied"])
    assert ftpdctl(d, "status").returncode == 0


def test_admin_engine_can_turn_actions_off(ctl):
    d = ctl("AdminControlsEngine status")
    assert ftpdctl(d, "status").returncode == 0
    res = ftpdctl(d, "kick", "user", "alice")
    assert res.returncode == 1 and "disabled by AdminControlsEngine" in res.stdout


def test_silent_client_is_dropped_and_others_still_served(ctl):
    d = ctl("ControlsMaxClients 1")
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(str(d.ctrls_sock))
    time.sleep(0.2)
    res = ftpdctl(d, "status")
    assert res.returncode == 1 and "too many control clients" in res.stdout
    idle.sendall(b"not json\n")
    assert b"malformed" in idle.recv(1000)
    idle.close()
    assert ftpdctl(d, "status").returncode == 0


def test_ftpdctl_says_clearly_when_no_server_listens(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpdctl", "-s", str(tmp_path / "none.sock"),
                          "status"], capture_output=True, text=True, timeout=30, env=env)
    assert res.returncode == 1 and "No such file or directory (is proftpy running" in res.stderr


def test_second_server_does_not_steal_a_live_socket(ctl, ftpd, tmp_path):
    d = ctl()
    other = tmp_path / "other"
    other.mkdir()
    os.chmod(other, 0o755)
    conf = d.conf.read_text().replace(str(d.dir / "proftpy.pid"), str(other / "pid")).replace(
        f"Port {d.port}", f"Port {free_port()}")     # its own free port (the next number may be another test's)
    (other / "p.conf").write_text(conf.replace(str(d.dir / "proftpy.scoreboard"), str(other / "sb")))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(other / "p.conf")], env=env)
    try:
        wait_for(lambda: (other / "pid").exists(), 10, "second server")
        time.sleep(0.5)
        assert ftpdctl(d, "status").stdout.count(f"pid {d.master_pid}") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert d.ctrls_sock.exists()           # the second server left the first one's socket alone


def test_dynmasq_refresh_is_answered_as_proftpds(ctl):
    """Each session resolves MasqueradeAddress when it starts, so there is nothing to refresh; the answers are
    ProFTPD's mod_dynmasq's, and its ACL decides."""
    d = ctl(f"MasqueradeAddress localhost\nDynMasqRefresh 60\nDynMasqControlsACLs all allow user {ME}\n")
    assert ftpdctl(d, "dynmasq", "refresh").stdout.strip() == "ftpdctl: dynmasq: refreshed"
    assert "dynmasq: unknown dynmasq action: 'now'" in ftpdctl(d, "dynmasq", "now").stdout
    assert "dynmasq: missing required parameters" in ftpdctl(d, "dynmasq").stdout
    assert "227 Entering Passive Mode (127,0,0,1" in d.login().sendcmd("PASV")


def test_dynmasq_refresh_needs_its_acl(ctl):
    assert "access denied" in ftpdctl(ctl("DynMasqRefresh 60\n"), "dynmasq", "refresh").stdout


@pytest.mark.parametrize("line, message", [("DynMasqRefresh 0", "must be greater than zero: '0'"),
                                           ("DynMasqRefresh", "wrong number of parameters"),
                                           ("DynMasqControlsACLs flush allow user root", "unknown action: 'flush'")])
def test_dynmasq_mistakes(tmp_path, line, message):
    assert message in refused_config(tmp_path, line)
