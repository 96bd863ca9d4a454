"""The master process: daemonizing, signals, reloads, limits on new connections, virtual hosts, inetd mode."""

import ftplib
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from conftest import REPO, Daemon, fill, free_port, wait_until, BASE_CONFIG

PY = [sys.executable, "-m", "proftpy"]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def banner(d: Daemon, host=None) -> str:
    with socket.create_connection((host or d.host, d.port), timeout=5) as s:
        return s.makefile("rb").readline().decode().rstrip()


def session_children(d: Daemon):
    return psutil.Process(d.master_pid).children()


def test_without_n_the_command_returns_and_the_daemon_runs(tmp_path):
    port = free_port()
    conf = tmp_path / "p.conf"
    conf.write_text(fill(BASE_CONFIG, dict(port=port, dir=tmp_path, host="127.0.0.1", ipv6="off")))
    started = time.monotonic()
    res = subprocess.run(PY + ["-c", str(conf)], env=ENV, capture_output=True, timeout=20)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - started < 10
    pid = int((tmp_path / "proftpy.pid").read_text())
    assert psutil.pid_exists(pid)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.makefile("rb").readline().startswith(b"220 ")
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not (tmp_path / "proftpy.pid").exists(), 2.0)
    assert wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 2.0)


def test_bind_failure_is_reported_and_exits_nonzero(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        conf = tmp_path / "p.conf"
        conf.write_text(fill(BASE_CONFIG, dict(port=port, dir=tmp_path, host="127.0.0.1", ipv6="off")))
        res = subprocess.run(PY + ["-c", str(conf)], env=ENV, capture_output=True, timeout=20)
    assert res.returncode == 1
    assert b"cannot bind: Address already in use" in res.stderr


def test_syntax_check_ok_and_error(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("ServerName x\n")
    res = subprocess.run(PY + ["-t", "-c", str(good)], env=ENV, capture_output=True, text=True)
    assert res.returncode == 0 and "Syntax OK" in res.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("ServerName x\nMaxInstances lots\n")
    res = subprocess.run(PY + ["-t", "-c", str(bad)], env=ENV, capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.strip() == f"{bad}:2: MaxInstances: 'lots' is not a number"


def test_version_modules_and_settings():
    out = subprocess.run(PY + ["-l"], env=ENV, capture_output=True, text=True).stdout
    assert "  mod_core.c" in out.splitlines() and "  mod_auth.c" in out.splitlines()
    out = subprocess.run(PY + ["-V"], env=ENV, capture_output=True, text=True).stdout
    import re
    assert re.search(r"^\s+[+-]\s+IPv6\s+support$", out, re.M)
    assert re.search(r"^\s+\+ Controls support$", out, re.M)         # mod_ctrls is built in
    out = subprocess.run(PY + ["-v"], env=ENV, capture_output=True, text=True).stdout
    assert out.startswith("proftpy Version ")


def test_master_has_proftpd_style_title(ftpd):
    d = ftpd()           # the PidFile appears before the master names itself (start): give it a moment
    assert wait_until(lambda: psutil.Process(d.master_pid).cmdline()[0] == "proftpy: (accepting connections)", 5)


def _session_title(d) -> str:
    """The title of the one session process of `d`, once it is logged in."""
    with d.login() as ftp:
        ftp.voidcmd("NOOP")
        (child,) = psutil.Process(d.master_pid).children()
        return child.cmdline()[0]


def test_session_titles_are_verbose_by_default(ftpd):
    assert _session_title(ftpd()) == "proftpy: 127.0.0.1: alice: NOOP"


def test_process_titles_terse_hides_what_sessions_do(ftpd):
    d = ftpd("ProcessTitles terse\n")
    assert _session_title(d) == "proftpy: processing connection"
    assert psutil.Process(d.master_pid).cmdline()[0] == "proftpy: (accepting connections)"


@pytest.mark.slow
def test_200_sessions_leave_no_zombies_and_flat_memory(ftpd):
    d = ftpd()
    master = psutil.Process(d.master_pid)

    def cycle(n):
        for _ in range(n):
            with socket.create_connection((d.host, d.port), timeout=5) as s:
                f = s.makefile("rwb")
                assert f.readline().startswith(b"220")
                f.write(b"QUIT\r\n")
                f.flush()
                assert f.readline().startswith(b"221")

    cycle(20)
    rss_before = master.memory_info().rss
    cycle(180)
    assert wait_until(lambda: not master.children(), 5.0), master.children()
    assert not [c for c in master.children() if c.status() == psutil.STATUS_ZOMBIE]
    assert master.memory_info().rss - rss_before < 2 * 1024 * 1024


def test_killed_session_does_not_hurt_the_master(ftpd):
    d = ftpd()
    ftp = d.connect()
    assert wait_until(lambda: len(session_children(d)) == 1)
    session_children(d)[0].kill()
    assert wait_until(lambda: not session_children(d))
    assert banner(d).startswith("220 ")
    ftp.close()


def test_sighup_with_broken_config_keeps_serving(ftpd):
    d = ftpd()
    good = d.conf.read_text()
    d.conf.write_text(good + "NoSuchDirective yes\n")
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in d.log())
    assert "NoSuchDirective" in d.log()
    assert banner(d) == "220 ProFTPD Server (proftpy test) [127.0.0.1]"


def test_sighup_applies_a_good_config_and_keeps_sessions(ftpd):
    d = ftpd()
    old = d.connect()
    d.conf.write_text(d.conf.read_text().replace('ServerName "proftpy test"', 'ServerName "reloaded"'))
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: "configuration reloaded" in d.log())
    assert banner(d) == "220 ProFTPD Server (reloaded) [127.0.0.1]"
    assert old.sendcmd("NOOP") == "200 NOOP command successful"
    old.close()


def test_sigterm_ends_children_and_removes_pidfile_quickly(ftpd):
    d = ftpd()
    clients = [d.connect() for _ in range(3)]
    assert wait_until(lambda: len(session_children(d)) == 3)
    kids = session_children(d)
    started = time.monotonic()
    os.kill(d.master_pid, signal.SIGTERM)
    assert d.proc.wait(5) == 0
    assert time.monotonic() - started < 2.0
    assert not d.pidfile.exists()
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    for c in clients:
        c.close()


def assert_third_connection_closed_silently(d) -> None:
    """Two sessions are let in; the third connection is closed without a word."""
    keep = [d.connect(), d.connect()]
    with socket.create_connection((d.host, d.port), timeout=5) as s:
        assert s.recv(100) == b""
    for c in keep:
        c.close()


def test_max_instances_closes_silently(ftpd):
    d = ftpd("MaxInstances 2\n")
    assert_third_connection_closed_silently(d)
    assert wait_until(lambda: not session_children(d))
    assert banner(d).startswith("220 ")


def test_max_connection_rate(ftpd):
    assert_third_connection_closed_silently(ftpd("MaxConnectionRate 2 5\n"))


def test_port_zero_disables_a_server(ftpd, tmp_path):
    vport = free_port()
    ftpd(f"<VirtualHost 127.0.0.1>\nPort 0\n</VirtualHost>\n<VirtualHost 127.0.0.1>\nPort {vport}\n"
         "ServerName second\n</VirtualHost>\n")
    with socket.create_connection(("127.0.0.1", vport), timeout=5) as s:
        assert s.makefile("rb").readline() == b"220 ProFTPD Server (second) [127.0.0.1]\r\n"


def test_virtual_host_chosen_by_local_address(ftpd):
    d = ftpd("<VirtualHost 127.0.0.2>\nServerName vhost-two\nPort {port}\n</VirtualHost>\n")
    assert banner(d, "127.0.0.1") == "220 ProFTPD Server (proftpy test) [127.0.0.1]"
    assert banner(d, "127.0.0.2") == "220 ProFTPD Server (vhost-two) [127.0.0.2]"


def test_server_ident_forms(ftpd):
    d = ftpd('ServerIdent on "Hello from %v at %L"\n')
    assert banner(d) == "220 Hello from proftpy test at 127.0.0.1"


def test_server_ident_off(ftpd):
    d = ftpd("ServerIdent off\n")
    assert banner(d) == "220 127.0.0.1 FTP server ready"


def test_idle_timeout(ftpd):
    d = ftpd("TimeoutIdle 1\n")
    ftp = d.connect()
    assert ftp.getline() == "421 Idle timeout (1 seconds): closing control connection"
    ftp.close()


def test_long_line_and_garbage_do_not_kill_the_session(ftpd):
    d = ftpd()
    with socket.create_connection((d.host, d.port), timeout=5) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"NOOP " + b"x" * 10000 + b"\r\n" + b"\xff\xf4\xff\xf2NOOP\r\n" + b"\xc3\x28\x00\r\nNOOP\r\n")
        f.flush()
        replies = [f.readline() for _ in range(4)]
    assert replies[0] == b"500 Command line too long\r\n"
    assert replies[1] == b"200 NOOP command successful\r\n"
    assert replies[2].startswith(b"501 ")
    assert replies[3] == b"200 NOOP command successful\r\n"


@pytest.mark.parametrize("pool", ["", "StartServers 3\nMinSpareServers 2\n"])
def test_inetd_mode_serves_one_session_on_stdin(tmp_path, pool):
    """inetd mode: one session on stdin, no master, so no pre-forked idle children either."""
    conf = tmp_path / "p.conf"
    conf.write_text(f"ServerType inetd\nServerName inetd-test\nUseReverseDNS off\nPidFile {tmp_path}/pid\n"
                    f"SystemLog {tmp_path}/log\nDefaultServer on\nPort 0\n{pool}")
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    served, _ = listener.accept()
    proc = subprocess.Popen(PY + ["-n", "-c", str(conf)], env=ENV, stdin=served, stdout=served,
                            stderr=subprocess.PIPE)
    served.close()
    f = client.makefile("rwb")
    assert f.readline() == b"220 ProFTPD Server (inetd-test) [127.0.0.1]\r\n"
    assert psutil.Process(proc.pid).children() == []
    f.write(b"QUIT\r\n")
    f.flush()
    assert f.readline() == b"221 Goodbye.\r\n"
    assert proc.wait(5) == 0
    client.close()
    listener.close()


def test_help_lists_commands_and_syntax(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        text = ftp.sendcmd("HELP")
        assert text.startswith("214-The following commands are recognized")
        assert "QUIT" in text
        assert ftp.sendcmd("HELP USER") == "214 Syntax: USER <sp> username"
        assert ftp.sendcmd("SYST") == "215 UNIX Type: L8"
        assert ftp.sendcmd("FEAT").startswith("211")
        with pytest.raises(ftplib.error_perm, match="^500 XYZZY not understood$"):
            ftp.sendcmd("XYZZY")


def test_command_reference_is_up_to_date():
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_commands.py")], env=ENV, capture_output=True,
                         text=True)
    assert (REPO / "docs" / "commands.md").read_text() == res.stdout, "run `make docs` and commit docs/commands.md"


def test_directive_reference_is_up_to_date():
    sys.path.insert(0, str(REPO / "scripts"))
    from gen_directives import render
    assert (REPO / "docs" / "directives.md").read_text() == render(), "run `make docs` and commit docs/directives.md"
