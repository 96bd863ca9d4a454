"""mod_exec on the real daemon: Python and shell programs run by real sessions (and by the master), each hook
with the argv, uid, groups, working directory and environment ProFTPD gives it, and the ways proftpy is safer:
no daemon descriptor in the program, exactly ExecEnviron's environment, ExecTimeout killing the whole process group,
bounded output, client values as single argv entries."""

from __future__ import annotations

import ftplib
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, PASSWORDS, configtest, side_by_side, wait_until



@pytest.fixture
def tmp_path(open_tmp_path):
    """Programs run as nobody and as the test users: the test's files live where they can reach them."""
    return open_tmp_path

NOBODY = 65534
RECORDER = """#!/usr/bin/python3
# Writes what it was run with to <out dir>/<tag>-<pid>.json, prints two lines (for sendStdout).
import json, os, sys, time
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass
with open("/proc/self/environ", "rb") as f:
    env = dict(kv.decode().split("=", 1) for kv in f.read().split(b"\\0") if kv)
rec = {"tag": sys.argv[2] if len(sys.argv) > 2 else "stdin", "argv": sys.argv, "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
       "cwd": os.getcwd(), "env": env, "fds": fds, "ppid": os.getppid(), "pgid": os.getpgid(0), "pid": os.getpid(),
       "stdin": sys.stdin.read(), "t": time.time()}
path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "OUT", f"{rec['tag']}-{os.getpid()}.json")
with open(path + ".tmp", "w") as f:
    json.dump(rec, f)
os.rename(path + ".tmp", path)          # whole, for a reader polling the directory
print("first line from", rec["tag"])
print("second line")
"""


@pytest.fixture
def rec(tmp_path) -> "Recorder":
    return Recorder(tmp_path)


class Recorder:
    """rec.py (Python) and rec.sh (shell) in the test directory, writing records into a directory anyone may
    write to (programs run as nobody, alice and root)."""

    def __init__(self, base: Path):
        self.out = base / "out"
        self.out.mkdir()
        os.chmod(self.out, 0o1777)
        self.py = base / "rec.py"
        self.py.write_text(RECORDER.replace("OUT", str(self.out)))
        self.sh = base / "rec.sh"
        self.sh.write_text('#!/bin/sh\n{ echo "$0"; for a in "$@"; do echo "arg:$a"; done; id -u; pwd; env; } '
                           '> "$1/.sh-$$"\nmv "$1/.sh-$$" "$1/sh-$2-$$.txt"\necho "shell says $2"\n')
        for p in (self.py, self.sh):
            os.chmod(p, 0o755)

    def records(self, tag: str | None = None) -> list[dict]:
        found = [json.loads(p.read_text()) for p in self.out.glob("*.json")]
        return sorted((r for r in found if tag is None or r["tag"] == tag), key=lambda r: r["t"])

    def wait(self, tag: str, count: int = 1, timeout: float = 10) -> list[dict]:
        assert wait_until(lambda: len(self.records(tag)) >= count, timeout), f"{tag}: {self.records()}"
        return self.records(tag)


def exec_config(rec: Recorder, body: str, options: str = "logStdout logStderr") -> str:
    return (f"ExecEngine on\nExecLog {rec.out.parent}/exec.log\nExecOptions {options}\n"
            f"User nobody\nGroup nogroup\n" + body)


def exec_log(d) -> str:
    path = d.dir / "exec.log"
    return path.read_text() if path.exists() else ""


def ids(d, user):
    return (d.uid(user), d.users[user][1]) if IS_ROOT else (os.getuid(), os.getgid())


# -- each hook: argv, identity, working directory, environment ------------------------------------------------------
def test_every_session_hook_runs_with_the_right_argv_ids_cwd_and_environment(ftpd, rec):
    out = rec.out
    d = ftpd(exec_config(rec, f"""
ExecEnviron FOO bar-%a
ExecEnviron path /usr/bin:/bin
ExecOnConnect {rec.py} {out} connect %a %u %m
ExecBeforeCommand STOR {rec.py} {out} before %m %f %F %b
ExecOnCommand STOR,NOOP {rec.py} {out} after %m %r %f %F %b %u %U %g %C %v
ExecOnError CWD {rec.py} {out} error %r %f %u
ExecOnExit {rec.py} {out} exit %u %U %r
"""))
    with d.login("alice") as ftp:
        ftp.storbinary("STOR up.txt", io.BytesIO(b"12345"))
        with pytest.raises(ftplib.error_perm):
            ftp.cwd("no where")
    home = str(d.home("alice"))
    alice, alice_gid = ids(d, "alice")
    connect, = rec.wait("connect")
    assert connect["argv"][1:] == [str(out), "connect", "127.0.0.1", "", ""]
    assert connect["argv"][0].endswith("rec.py")
    if IS_ROOT:
        assert (connect["uid"], connect["euid"], connect["gid"], connect["groups"]) == (NOBODY, NOBODY, 65534, [])
    assert connect["cwd"] == str(d.dir)                       # the daemon's working directory before login
    assert connect["env"] == {"FOO": "bar-127.0.0.1", "PATH": "/usr/bin:/bin"}
    before, = rec.wait("before")
    assert before["argv"][3:] == ["STOR", f"{home}/up.txt", f"{home}/up.txt", ""]
    assert (before["uid"], before["gid"], before["cwd"]) == (alice, alice_gid, home)
    after = {r["argv"][3]: r for r in rec.wait("after")}
    assert after["STOR"]["argv"][4:] == ["STOR up.txt", f"{home}/up.txt", f"{home}/up.txt", "5", "alice", "alice",
                                         "ftpusers", home, "proftpy test"]
    assert after["STOR"]["uid"] == alice
    error, = rec.wait("error")
    assert error["argv"][3:] == ["CWD no where", "", "alice"]
    exit_, = rec.wait("exit")
    assert exit_["argv"][3:] == ["alice", "alice", ""]
    assert (exit_["uid"], exit_["cwd"]) == (alice, home)
    log = exec_log(d)
    assert "ExecOnConnect '%s' succeeded" % rec.py in log
    assert f"STOR ExecBeforeCommand '{rec.py}' succeeded" in log
    assert f"preparing to execute '{rec.py}' with uid {alice} (euid {alice}), gid {alice_gid} (egid {alice_gid})" \
        in log
    assert f" + '{rec.py}': argv[2] = connect" in log
    assert f"stdout from '{rec.py}': 'first line from connect\nsecond line'" in log


def test_a_shell_script_gets_the_same_treatment(ftpd, rec):
    d = ftpd(exec_config(rec, f"ExecEnviron LANG C\nExecOnCommand NOOP {rec.sh} {rec.out} noop %r\n"))
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    assert wait_until(lambda: list(rec.out.glob("sh-noop-*.txt")))
    lines = next(rec.out.glob("sh-noop-*.txt")).read_text().splitlines()
    assert lines[0] == str(rec.sh)                            # $0: the kernel gives the interpreter the path
    assert lines[1:4] == [f"arg:{rec.out}", "arg:noop", "arg:NOOP"]
    assert lines[4] == str(ids(d, "alice")[0])
    assert lines[5] == str(d.home("alice"))
    assert sorted(lines[6:]) == ["LANG=C", f"PWD={d.home('alice')}"]    # PWD: the shell's own


def test_no_descriptor_of_the_daemon_reaches_the_program(ftpd, rec):
    d = ftpd(exec_config(rec, f"ExecOnConnect {rec.py} {rec.out} connect\n"
                              f"ExecOnCommand NOOP {rec.py} {rec.out} noop\n"))
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    for tag in ("connect", "noop"):
        record, = rec.wait(tag)
        assert sorted(record["fds"]) == ["0", "1", "2"], record["fds"]
        assert all(target.startswith("pipe:") for target in record["fds"].values())
        assert record["pgid"] == record["pid"]                # a process group of its own


# -- sendStdout ----------------------------------------------------------------------------------------------------
def test_send_stdout_on_connect_leads_the_greeting(ftpd, rec):
    d = ftpd(exec_config(rec, f"ExecOnConnect {rec.py} {rec.out} connect\n", "sendStdout"))
    with d.connect() as ftp:
        assert ftp.getwelcome() == ("220-first line from connect\nsecond line\n"
                                    "220 ProFTPD Server (proftpy test) [127.0.0.1]")
        assert ftp.login("alice", PASSWORDS["alice"]).startswith("230 ")      # replies stay in step


def test_send_stdout_on_command_ends_its_reply(ftpd, rec):
    d = ftpd(exec_config(rec, f"ExecOnCommand NOOP {rec.py} {rec.out} noop\n"
                              f"ExecBeforeCommand NOOP {rec.py} {rec.out} before\n", "sendStdout"))
    with d.login("alice") as ftp:
        assert ftp.sendcmd("NOOP") == "200-NOOP command successful\nfirst line from noop\n200 second line"
        assert ftp.sendcmd("SYST") == "215 UNIX Type: L8"
    assert "not appropriate to send stdout to client at this time" in exec_log(d)   # ExecBeforeCommand's


def test_output_beyond_the_bound_is_cut(ftpd, rec, tmp_path):
    noisy = tmp_path / "noisy.sh"
    noisy.write_text("#!/bin/sh\ni=0\nwhile [ $i -lt 20000 ]; do echo 0123456789abcdef; i=$((i+1)); done\n")
    os.chmod(noisy, 0o755)
    d = ftpd(exec_config(rec, f"ExecOnCommand NOOP {noisy}\n", "sendStdout"))
    with d.login("alice") as ftp:
        reply = ftp.sendcmd("NOOP")
    assert 60 * 1024 < len(reply) < 70 * 1024
    assert "cut at 65536 bytes" in exec_log(d)


# -- safety ----------------------------------------------------------------------------------------------------------
def test_client_values_stay_one_argument_and_never_meet_a_shell(ftpd, rec, tmp_path):
    d = ftpd(exec_config(rec, f"ExecOnError CWD {rec.sh} {rec.out} error %r\n"))
    bait = tmp_path / "pwned"
    with d.login("alice") as ftp:
        with pytest.raises(ftplib.error_perm):
            ftp.cwd(f'x"; touch {bait}; echo "$(id) `id` %u')
    assert wait_until(lambda: list(rec.out.glob("sh-error-*.txt")))
    lines = next(rec.out.glob("sh-error-*.txt")).read_text().splitlines()
    assert lines[3] == f'arg:CWD x"; touch {bait}; echo "$(id) `id` %u'    # %u in the value stays %u
    assert not bait.exists()


def test_a_hanging_script_and_its_children_are_killed_after_exec_timeout(ftpd, rec, tmp_path):
    pidfile = rec.out / "child.pid"
    hang = tmp_path / "hang.sh"
    hang.write_text(f"#!/bin/sh\ntrap '' TERM\nsleep 120 &\necho $! > {pidfile}\nwhile :; do sleep 0.1; done\n")
    os.chmod(hang, 0o755)
    d = ftpd(exec_config(rec, f"ExecTimeout 1\nExecOnCommand NOOP {hang}\n"))
    with d.login("alice") as ftp:
        started = time.monotonic()
        ftp.voidcmd("NOOP")
        took = time.monotonic() - started
    assert 1.0 <= took < 8.0
    child = int(pidfile.read_text())
    assert wait_until(lambda: not _alive(child), 5)
    log = exec_log(d)
    assert f"'{hang}' has exceeded ExecTimeout (1 seconds), sending SIGTERM (signal 15)" in log
    assert "sending SIGKILL (signal 9)" in log
    assert f"NOOP ExecOnCommand '{hang}' failed: killed by signal 9" in log


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_before_command_never_refuses_the_command(ftpd, rec, tmp_path):
    fail = tmp_path / "fail.sh"
    fail.write_text("#!/bin/sh\nexit 2\n")
    os.chmod(fail, 0o755)
    d = ftpd(exec_config(rec, f"ExecBeforeCommand MKD {fail}\n"))
    with d.login("alice") as ftp:
        assert ftp.mkd("made").endswith("/made")
    assert (d.home("alice") / "made").is_dir()
    assert f"MKD ExecBeforeCommand '{fail}' failed: exit status 2" in exec_log(d)


def test_use_stdin_passes_the_arguments_on_stdin(ftpd, rec):
    d = ftpd(exec_config(rec, f"ExecEnviron FOO bar\nExecOnCommand NOOP {rec.py} first %m\n", "useStdin"))
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    record, = rec.wait("stdin")
    assert record["argv"][1:] == []
    assert record["stdin"] == "first\nNOOP\n.\n"
    assert record["env"] == {}


def test_groups_and_directories_choose_the_commands(ftpd, rec):
    d = ftpd(exec_config(rec, f"""
ExecOnCommand WRITE {rec.py} {rec.out} write %m
<Directory {{home}}/alice/quiet>
  ExecEnable off
</Directory>
"""))
    (d.home("alice") / "quiet").mkdir()
    os.chown(d.home("alice") / "quiet", *ids(d, "alice"))
    with d.login("alice") as ftp:
        ftp.mkd("loud")
        ftp.mkd("quiet/hush")
        ftp.voidcmd("NOOP")
    time.sleep(0.2)
    assert [r["argv"][3] for r in rec.records("write")] == ["MKD"]


# -- events ------------------------------------------------------------------------------------------------------------
def test_exec_on_event_runs_on_a_session_event_by_its_raw_name(ftpd, rec):
    d = ftpd(exec_config(rec, f"""
MaxLoginAttempts 1
ExecOnEvent mod_auth.max-login-attempts {rec.py} {rec.out} attempts %a %U
ExecOnEvent mod_auth.authenticated~ {rec.py} {rec.out} user %u
ExecOnEvent mod_auth.authenticated* {rec.py} {rec.out} root %u
"""))
    ftp = d.connect()
    with pytest.raises(ftplib.error_perm):
        ftp.login("bob", "wrong")
    ftp.close()
    attempts, = rec.wait("attempts")
    assert attempts["argv"][3:] == ["127.0.0.1", "bob"]
    if IS_ROOT:
        assert attempts["uid"] == NOBODY
    with d.login("alice"):
        user, = rec.wait("user")
        root, = rec.wait("root")
    assert user["uid"] == root["uid"] == ids(d, "alice")[0]    # after login root is gone for good
    assert "cannot run as root after login" in exec_log(d)


@pytest.mark.skipif(not IS_ROOT, reason="runs a program as root in the master")
def test_exec_on_event_runs_in_the_master_on_max_instances(ftpd, rec):
    d = ftpd(exec_config(rec, f"""
MaxInstances 1
ExecOnEvent MaxInstances* {rec.py} {rec.out} root %a %v
ExecOnEvent MaxInstances {rec.py} {rec.out} server %a
"""))
    with d.login("alice"):
        with pytest.raises((EOFError, ConnectionError)):
            d.connect()                             # closed by the master, without a word
        root, = rec.wait("root")
        server, = rec.wait("server")
    assert root["ppid"] == server["ppid"] == d.master_pid
    assert root["argv"][3:] == ["127.0.0.1", "proftpy test"]
    assert (root["uid"], server["uid"]) == (0, NOBODY)
    assert "ExecOnEvent 'MaxInstances' for" in exec_log(d)


def test_exec_on_restart_runs_in_the_master_on_sighup(ftpd, rec):
    d = ftpd(exec_config(rec, f"ExecOnRestart {rec.py} {rec.out} restart %v\n"))
    os.kill(d.master_pid, signal.SIGHUP)
    restart, = rec.wait("restart")
    assert restart["ppid"] == d.master_pid
    assert restart["argv"][3:] == ["proftpy test"]
    with d.login("alice") as ftp:                   # the master serves on
        ftp.voidcmd("NOOP")


def test_exec_engine_off_runs_nothing(ftpd, rec):
    d = ftpd(f"ExecEngine off\nExecOnConnect {rec.py} {rec.out} connect\n")
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    time.sleep(0.3)
    assert rec.records() == []


# -- inside the chroot --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not IS_ROOT, reason="needs chroot")
def test_after_login_a_program_runs_as_the_user_inside_the_chroot(ftpd, rec):
    d = ftpd(exec_config(rec, "DefaultRoot ~\nExecOnCommand NOOP /bin/hook.sh %C\n"))
    home = d.home("alice")
    for binary in ("/bin/dash", "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"):
        target = home / binary.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(binary), target)
    (home / "bin/hook.sh").write_text('#!/bin/dash\necho "$(pwd) $1" > /hook.out\n')
    os.chmod(home / "bin/hook.sh", 0o755)
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    out = home / "hook.out"
    assert wait_until(out.exists)
    assert out.read_text() == "/ /\n"
    assert out.stat().st_uid == d.uid("alice")


# -- proftpy -t ------------------------------------------------------------------------------------------------------
def _configtest(tmp_path: Path, line: str) -> subprocess.CompletedProcess:
    return configtest(tmp_path, f"Port 0\nExecEngine on\n{line}\n")


def test_configtest_refuses_a_relative_program_path(tmp_path):
    res = _configtest(tmp_path, "ExecOnCommand STOR bin/notify %f")
    assert res.returncode == 1
    assert f"{tmp_path}/t.conf:3: ExecOnCommand: path to program must be a full path: 'bin/notify'" in res.stderr


@pytest.mark.parametrize("make", ["missing", "not executable"])
def test_configtest_refuses_a_program_that_cannot_run(tmp_path, make):
    prog = tmp_path / "notify"
    if make == "not executable":
        prog.write_text("#!/bin/sh\n")
        os.chmod(prog, 0o644)
    res = _configtest(tmp_path, f"ExecOnEvent MaxInstances {prog}")
    assert res.returncode == 1
    why = "does not exist" if make == "missing" else "is not an executable file"
    assert f"error: {tmp_path}/t.conf:3: ExecOnEvent: '{prog}' {why}" in res.stderr


def test_configtest_accepts_programs_that_can_run(tmp_path):
    res = _configtest(tmp_path, "ExecOnConnect /bin/true\nExecTimeout 00:00:30\nExecOptions sendStdout useStdin")
    assert res.returncode == 0, res.stderr
    assert "Syntax OK" in res.stdout


# -- side by side with Debian's ProFTPD and its mod_exec ------------------------------------------------------------
COMPARED = """LoadModule mod_exec.c
ExecEngine on
ExecLog {dir}/exec.log
ExecOnCommand NOOP,MKD,DELE,RNTO,STOR,CWD /bin/true %a %m %r %u %U %g %C %c %h %l %V %v %w %A %f %F %b
ExecBeforeCommand STOR,DELE /bin/true before %m %f %F %b
ExecOnError CWD,RETR /bin/true error %m %r %f %F
"""


@pytest.mark.skipif(not IS_ROOT, reason="Debian's proftpd runs as root here")
def test_same_argv_ids_and_log_lines_as_proftpd_with_mod_exec(ftpd, tmp_path):
    ftpd("").stop()                                         # for its users alice and bob, and their files

    def drive(port, run):
        with ftplib.FTP(timeout=10) as ftp:
            ftp.connect("127.0.0.1", port)
            ftp.login("alice", PASSWORDS["alice"])
            ftp.voidcmd("NOOP")
            ftp.mkd(f"dir-{run.name}")
            ftp.cwd(f"dir-{run.name}")
            with pytest.raises(ftplib.error_perm):
                ftp.cwd("nowhere")
            with pytest.raises(ftplib.error_perm):
                ftp.retrbinary("RETR missing", lambda b: None)
            ftp.storbinary("STOR f", io.BytesIO(b"12345"))
            ftp.rename("f", "g")
            ftp.delete("g")
        assert wait_until(lambda: "DELE ExecOnCommand" in (run / "exec.log").read_text())
        lines = [line.split("]: ", 1)[1] for line in (run / "exec.log").read_text().splitlines()]
        return [line.replace(f"dir-{run.name}", "dir-X") for line in lines]
    ran = side_by_side(tmp_path, COMPARED, drive)
    assert ran["proftpy"] == ran["proftpd"]


# -- events another module emits (mod_ban's, once it exists) ---------------------------------------------------------
def fake_ban_module():
    """Emits mod_ban's event names: `mod_ban.ban-host` in the master when it refuses 127.0.0.5 at accept, and
    `mod_ban.client-connect-rate` in every session it lets in."""
    from proftpy.module import Module, Veto

    def veto(master, conn):
        return Veto("banned", "mod_ban.ban-host") if conn.remote[0] == "127.0.0.5" else None

    def connected(session):
        session.events.emit("mod_ban.client-connect-rate", session=session)
    return Module("mod_fake_ban.c", veto=veto, session_init=connected)


@pytest.mark.skipif(not IS_ROOT, reason="runs a program as root in the master")
def test_exec_on_event_names_another_modules_events_in_the_master_and_in_sessions(tmp_path, rec):
    from conftest import AUTH_CONFIG, BASE_CONFIG, fill, free_port, make_users
    from proftpy import log as syslog_setup
    from proftpy.master import Master, Options, load_config
    from proftpy.module import ModuleSet
    from proftpy.modules import MODULES
    from proftpy.runtime import write_pidfile
    make_users(tmp_path)
    port, conf = free_port(), tmp_path / "proftpy.conf"
    conf.write_text(fill(exec_config(rec, f"""
ExecOnEvent mod_ban.ban-host* {rec.py} {rec.out} ban %a
ExecOnEvent mod_ban.client-connect-rate {rec.py} {rec.out} rate %a
""") + BASE_CONFIG + AUTH_CONFIG, dict(port=port, dir=tmp_path, host="127.0.0.1", ipv6="off")))
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            opts = Options(config_path=str(conf), foreground=True)
            config = load_config(opts)
            syslog_setup.setup(config.main.get("SystemLog"), "info")
            master = Master(config, opts, ModuleSet(MODULES + [fake_ban_module()]))
            master.bind()
            master.start()
            write_pidfile(str(tmp_path / "proftpy.pid"))
            status = master.serve()
        finally:
            os._exit(status)
    try:
        assert wait_until((tmp_path / "proftpy.pid").exists, 15)
        with ftplib.FTP(timeout=5) as ftp:
            with pytest.raises((EOFError, ConnectionError)):
                ftp.connect("127.0.0.1", port, source_address=("127.0.0.5", 0))
        with ftplib.FTP(timeout=5) as ftp:
            ftp.connect("127.0.0.1", port, source_address=("127.0.0.6", 0))
            rate, = rec.wait("rate")
        ban, = rec.wait("ban")
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    assert (ban["argv"][3:], ban["ppid"], ban["uid"]) == (["127.0.0.5"], pid, 0)      # in the master, as root
    assert (rate["argv"][3:], rate["uid"]) == (["127.0.0.6"], NOBODY)                 # in the session
    assert rate["ppid"] != pid


# -- HOST: the new server's ExecOnConnect, side by side ---------------------------------------------------------------
HOST_SWITCH = """LoadModule mod_exec.c
ExecEngine on
ExecLog {dir}/exec.log
ExecOnConnect /bin/echo main server
<VirtualHost 127.0.0.1>
ServerName "named"
Port {port}
ServerAlias ftp.example.test
ExecEngine on
ExecLog {dir}/exec.log
ExecOptions sendStdout
ExecOnConnect /bin/echo named server
ExecOnConnect /bin/sh -c "echo two; echo lines"
</VirtualHost>
"""


@pytest.mark.skipif(not IS_ROOT, reason="Debian's proftpd runs as root here")
def test_host_runs_the_new_servers_exec_on_connect_as_proftpd(ftpd, tmp_path):
    ftpd("").stop()

    def drive(port, run):
        with ftplib.FTP(timeout=10) as ftp:
            ftp.connect("127.0.0.1", port)
            ftp.sock.sendall(b"HOST ftp.example.test\r\nNOOP\r\n")
            replies = []
            while not replies or not replies[-1].startswith("200 "):
                replies.append(ftp.getline())
        assert wait_until(lambda: (run / "exec.log").read_text().count("succeeded") >= 3)
        return replies, [line.split("]: ", 1)[1] for line in (run / "exec.log").read_text().splitlines()]
    ran = side_by_side(tmp_path, HOST_SWITCH, drive)
    assert ran["proftpy"][1] == ran["proftpd"][1]           # the same programs, as the same ids, in the ExecLog
    assert ran["proftpy"][1][-1] == "ExecOnConnect '/bin/sh' succeeded"
    greeting = ["220 ProFTPD Server (named) [127.0.0.1]", "200 NOOP command successful"]
    # on purpose: a 220 reply per line; ProFTPD sends each read of the pipe raw ("220 two\n\r\n": a blank line
    # after it), and may lose what the program wrote after its first read
    assert ran["proftpy"][0] == ["220 named server", "220 two", "220 lines"] + greeting
    assert ran["proftpd"][0][:2] == ["220 named server", ""] and ran["proftpd"][0][-2:] == greeting
