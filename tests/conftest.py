"""Shared test fixtures: `ftpd` starts the real daemon (`python -m proftpy -n`) on a free loopback port with a
config written for the test, and stops it afterwards."""

from __future__ import annotations

import contextlib
import ftplib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ports import free_port

REPO = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0
TEST_UID_BASE = 2300          # AuthUserFile users' uids when the suite runs as root (no /etc/passwd entry needed)
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}


@dataclass
class Daemon:
    """A running proftpy started by the `ftpd` fixture."""

    dir: Path
    port: int
    conf: Path
    proc: subprocess.Popen | None = None
    users: dict[str, tuple[int, int, Path]] = field(default_factory=dict)
    host: str = "127.0.0.1"

    @property
    def pidfile(self) -> Path:
        return self.dir / "proftpy.pid"

    @property
    def master_pid(self) -> int:
        return int(self.pidfile.read_text())

    def home(self, user: str) -> Path:
        return self.users[user][2]

    def uid(self, user: str) -> int:
        return self.users[user][0]

    def log(self) -> str:
        path = self.dir / "system.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def connect(self, timeout: float = 10) -> ftplib.FTP:
        ftp = ftplib.FTP(timeout=timeout)
        ftp.connect(self.host, self.port)
        return ftp

    def login(self, user: str = "alice", timeout: float = 10) -> ftplib.FTP:
        ftp = self.connect(timeout)
        ftp.login(user, PASSWORDS[user])
        return ftp

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_users(base: Path) -> dict[str, tuple[int, int, Path]]:
    """AuthUserFile/AuthGroupFile users alice and bob with homes under `base`."""
    from proftpy.auth.crypt import crypt_hash
    users = {}
    passwd, group = [], []
    for i, name in enumerate(sorted(PASSWORDS)):
        uid = gid = (TEST_UID_BASE + i) if IS_ROOT else os.getuid()
        if not IS_ROOT:
            gid = os.getgid()
        home = base / "home" / name
        home.mkdir(parents=True)
        if IS_ROOT:
            os.chown(home, uid, gid)
        passwd.append(f"{name}:{crypt_hash(PASSWORDS[name], 'sha512')}:{uid}:{gid}:{name}:{home}:/bin/sh")
        users[name] = (uid, gid, home)
    gids = sorted({u[1] for u in users.values()})
    group.append(f"ftpusers:x:{gids[0]}:{','.join(sorted(PASSWORDS))}")
    for path, lines in ((base / "ftpd.passwd", passwd), (base / "ftpd.group", group)):
        path.write_text("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
    return users


BASE_CONFIG = """\
ServerName "proftpy test"
Port {port}
DefaultAddress {host}
SocketBindTight on
DefaultServer on
UseIPv6 {ipv6}
UseReverseDNS off
PidFile {dir}/proftpy.pid
ScoreboardFile {dir}/proftpy.scoreboard
SystemLog {dir}/system.log
ControlsSocket {dir}/proftpy.sock
DelayTable {dir}/proftpy.delay
TimeoutIdle 20
"""

AUTH_CONFIG = """\
<IfModule mod_auth_file.c>
AuthOrder mod_auth_file.c
AuthUserFile {dir}/ftpd.passwd
AuthGroupFile {dir}/ftpd.group
</IfModule>
<IfModule mod_auth.c>
RequireValidShell off
UseFtpUsers off
</IfModule>
<IfModule mod_log.c>
TransferLog none
</IfModule>
"""


def make_file(d: Daemon, rel: str, data: bytes = b"hello", user: str = "alice") -> str:
    """A file under a user's home, owned by that user (and the directories made for it); returns its real path."""
    path = os.path.join(d.home(user), rel)
    parent = os.path.dirname(path)
    missing = []
    while not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        os.mkdir(directory)
        os.chown(directory, d.uid(user), d.users[user][1])
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, d.uid(user), d.users[user][1])
    return path


def error_reply(ftp: ftplib.FTP, line: str) -> str:
    """The error reply a command gets (the test fails if it succeeds)."""
    with pytest.raises(ftplib.Error) as e:
        ftp.sendcmd(line)
    return str(e.value)


def configtest(directory: Path, text: str) -> subprocess.CompletedProcess:
    """`proftpy -t` of `text`, written to `directory/t.conf`: its exit status, stdout and stderr."""
    conf = directory / "t.conf"
    conf.write_text(text)
    return subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)


def login_reply(d: Daemon, user: str, password: str) -> str:
    """USER then PASS on a new connection: PASS's reply (a refusal's text too)."""
    with d.connect() as ftp:
        ftp.sendcmd("USER " + user)
        try:
            return ftp.sendcmd("PASS " + password)
        except ftplib.Error as e:
            return str(e)


def again(ftpd, d: Daemon, config: str) -> Daemon:
    """Another daemon in the same directory (the first one stopped: they share the PidFile, which tells when a
    daemon has started)."""
    d.stop()
    d.pidfile.unlink(missing_ok=True)
    return ftpd(config)


def refused_config(directory: Path, line: str) -> str:
    """`proftpy -t` of a configuration with `line` as its second line: refused (exit 1, no traceback); its
    stderr, which names `t.conf:2:`."""
    res = configtest(directory, f"Port 0\n{line}\n")
    assert res.returncode == 1, (line, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    return res.stderr


def restart_with_mount(d: Daemon, mount: str) -> None:
    """Start the daemon `d` again in a private mount namespace of its own, after the shell command `mount` (a small
    tmpfs, a file bind-mounted over a system one): only the daemon sees it, and it goes with the daemon."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is missing"
    d.stop()
    d.pidfile.unlink(missing_ok=True)
    d.proc = subprocess.Popen([unshare, "-m", "--propagation", "private", "sh", "-c", f'{mount} && exec "$@"', "sh",
                               sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(d.conf)], cwd=d.dir,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_until(d.pidfile.exists, 15), d.proc.stderr.read1().decode() if d.proc.poll() is not None else ""


def heap_is_mergeable(pid: int | str = "self") -> bool:
    """Whether the process's heap is marked for the kernel's same-page merging (VmFlags `mg` in smaps)."""
    with open(f"/proc/{pid}/smaps") as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("[heap]"))
    return " mg" in next(line for line in lines[start:] if line.startswith("VmFlags:"))


def wait_until(predicate, timeout=5.0, step=0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds have passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def bound(port: int) -> bool:
    """A socket of this machine listens on `port` (read from /proc/net: no probe connection, which a daemon would
    log or count)."""
    tail = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            if any(fields[1].endswith(tail) and fields[3] == "0A" for fields in (line.split() for line in f)
                   if len(fields) > 3):
                return True
    return False


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def fork_master(d: Daemon, loaded) -> int:
    """Run a real Master with `loaded` (a ModuleSet: the built-in modules plus test ones, which no command line
    can add) in a forked process on `d.conf`; returns its pid once its PidFile exists. The caller stops it."""
    from proftpy import log as syslog_setup
    from proftpy.master import Master, Options, load_config
    from proftpy.runtime import write_pidfile
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            opts = Options(config_path=str(d.conf), foreground=True)
            conf = load_config(opts)
            syslog_setup.setup(conf.main.get("SystemLog"), "info")   # the master's; a session's is its server's
            master = Master(conf, opts, loaded)
            master.bind()
            master.install_signals()
            master.start()
            write_pidfile(str(d.pidfile))
            status = master.serve()
        except BaseException:
            import traceback
            traceback.print_exc(file=sys.stderr)
        finally:
            os._exit(status)
    assert wait_until(d.pidfile.exists, 15), "the master did not start"
    return pid


def fill(text: str, values: dict) -> str:
    """Replace `{name}` placeholders only (configs contain other braces, e.g. `%{env:X}`)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def start_daemon(d: Daemon, extra_args: list[str] = (), wait: bool = True) -> Daemon:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    d.proc = subprocess.Popen([sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(d.conf), *extra_args],
                              cwd=d.dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    if wait:
        deadline = time.monotonic() + 15
        while not d.pidfile.exists():
            if d.proc.poll() is not None:
                out, err = d.proc.communicate()
                raise RuntimeError(f"proftpy exited {d.proc.returncode}: {err.decode()}{out.decode()}")
            if time.monotonic() > deadline:
                d.stop()
                raise RuntimeError("proftpy did not start within 15 s")
            time.sleep(0.02)
    return d


@contextlib.contextmanager
def daemon_as_user(d: Daemon, uid: int):
    """Run proftpy's master as the ordinary user `uid` (no root: fs.py's jail instead of chroot) while the block
    runs. The master is forked from this test process and drops to `uid` before the normal command line: the
    interpreter under /root could not be executed by that user, so what it needs later is imported first."""
    import encodings.idna  # noqa: F401
    import logging.handlers  # noqa: F401

    import proftpy.cli
    import proftpy.privs
    import proftpy.runtime  # noqa: F401
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.chdir(d.dir)
            proftpy.privs._default = None     # an earlier test may have made one as root in this process
            status = proftpy.cli.main(["-n", "-q", "-c", str(d.conf)])
        finally:
            os._exit(status)
    deadline = time.monotonic() + 15
    while not d.pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield d
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


PROFTPD = "/usr/sbin/proftpd"          # Debian's ProFTPD 1.3.8 (proftpd-basic), to compare behaviour with
SIDE_BY_SIDE_CONFIG = """ServerName "compare"
ServerType standalone
DefaultServer on
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
UseReverseDNS off
PidFile {dir}/pid
ScoreboardFile {dir}/scoreboard
SystemLog {dir}/system.log
TransferLog none
User nobody
Group nogroup
AuthOrder mod_auth_file.c
AuthUserFile {base}/ftpd.passwd
AuthGroupFile {base}/ftpd.group
RequireValidShell off
UseFtpUsers off
<IfModule mod_delay.c>
DelayEngine off
</IfModule>
WtmpLog off
ModulePath /usr/lib/proftpd
"""


def side_by_side(base: Path, config: str, drive, mount: str = "", env: dict | None = None,
                 only: dict[str, str] | None = None) -> dict[str, object]:
    """Debian's ProFTPD and proftpy, one after the other, each on a free port with SIDE_BY_SIDE_CONFIG and then
    `config` (the users of `make_users(base)`; `{port}`, `{dir}` (its own run directory under `base`) and `{base}`
    filled in), driven by `drive(port, run_dir)`; their results by name. With `mount` (a shell command, as for
    `restart_with_mount`) each runs in a private mount namespace of its own after it; `env` is added to both's
    environment; `only` adds lines to one daemon's configuration by name (a directive of proftpy's own, say). An
    AuthOrder line in `config` replaces the common one (a second AuthOrder is fatal to ProFTPD)."""
    results = {}
    common = SIDE_BY_SIDE_CONFIG
    if any(line.startswith("AuthOrder ") for line in config.splitlines()):
        common = "".join(line for line in common.splitlines(keepends=True) if not line.startswith("AuthOrder "))
    for name, cmd in (("proftpd", [PROFTPD]), ("proftpy", [sys.executable, "-m", "proftpy"])):
        run = base / name
        run.mkdir()
        port = free_port()
        (run / "conf").write_text(fill(common + config + (only or {}).get(name, ""), {"port": port, "dir": run, "base": base}))
        if mount:
            cmd = [shutil.which("unshare"), "-m", "--propagation", "private", "sh", "-c", f'{mount} && exec "$@"',
                   "sh", *cmd]
        proc = subprocess.Popen(cmd + ["-n", "-c", str(run / "conf")], cwd=run, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})))
        try:
            assert wait_until(lambda: (run / "pid").exists() and bound(port), 15), f"{name} did not start"
            results[name] = drive(port, run)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    return results


@pytest.fixture
def open_tmp_path():
    """A temporary directory under /tmp that other users may traverse for the whole test. Programs run as nobody
    or as a test user (mod_exec, ProFTPD's logins without chroot) need every parent to be traversable; the
    `reachable_homes` way opens /tmp/pytest-of-<user> for the test's duration, and another test run sharing that
    directory may close it again meanwhile. A module overrides `tmp_path` with this one."""
    path = Path(tempfile.mkdtemp(prefix="proftpy-test-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def reachable_homes(tmp_path):
    """Without chroot a user must be able to walk to its home, as on a real system; pytest makes its base
    directory root-only (0700), so let others traverse (not list) it for the test's duration."""
    changed = []
    if IS_ROOT:
        for parent in tmp_path.parents:
            mode = parent.stat().st_mode & 0o7777
            if not mode & 0o001:
                changed.append((parent, mode))
                os.chmod(parent, mode | 0o111)
    yield
    for parent, mode in changed:
        os.chmod(parent, mode)


@pytest.fixture
def ftpd(tmp_path):
    """Factory: `ftpd(config="...")` writes base + auth + the given config, starts proftpy, returns a Daemon."""
    started: list[Daemon] = []

    def factory(config: str = "", *, base: bool = True, auth: bool = True, host: str = "127.0.0.1",
                ipv6: bool = False, args: list[str] = (), wait: bool = True) -> Daemon:
        d = Daemon(dir=tmp_path, port=free_port(host), conf=tmp_path / "proftpy.conf", host=host)
        if not (tmp_path / "ftpd.passwd").exists():
            d.users = make_users(tmp_path)
        os.chmod(tmp_path, 0o755)
        fmt = dict(port=d.port, dir=tmp_path, host=host, ipv6="on" if ipv6 or ":" in host else "off",
                   home=tmp_path / "home")
        # the test's lines come first: in ProFTPD's language the first line of a directive wins
        text = config + "\n" + (BASE_CONFIG if base else "") + (AUTH_CONFIG if auth else "")
        d.conf.write_text(fill(text, fmt))
        started.append(d)
        return start_daemon(d, list(args), wait)

    yield factory
    for d in started:
        d.stop()


@dataclass
class Tls:
    """A throwaway certificate (the `tls` fixture) and the TLS contexts made from it."""

    cert: Path
    key: Path

    def server(self, version=None):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx

    def client(self, version=None):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> Tls:
    """A self-signed certificate for `localhost`, made by the openssl command in a temporary directory."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return Tls(d / "cert.pem", d / "key.pem")
