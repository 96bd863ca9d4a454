#!/usr/bin/env python3
"""proftpy benchmark (`make bench`): starts proftpy on loopback and measures

- RETR and STOR of one big file (1 GiB by default, `--size MiB`),
- sequential connect+USER+PASS+QUIT per second with 8 client processes,
- N concurrent sessions each downloading M MB (200 x 10 MB by default, bounded by a deadline),
- PASV+LIST latency (median of 5 rounds of 50, all servers running and taking turns), and again on a busy
  machine: right after BUSY_PORTS listening-side ports were left in TIME_WAIT the way a server that lets the
  kernel pick its passive ports (bind to port 0) leaves them after some 120 transfers a second (the servers
  measured one after the other, the fill fresh for all),
- private memory (USS) of the master and of one idle logged-in session (median of 20; a session's own child
  processes counted in), with the kernel's same-page merging daemon off and, with `--ksmd-row` as root, on
  (proftpy's MemoryMerge; the peers do not opt in),
- the upload engine: os.splice (socket -> pipe -> file) against recv_into + write,
- FTPS, on a server started again with TLS configured (the same RSA-2048 certificate for every server that has
  mod_tls: proftpy, and Debian's proftpd with `LoadModule mod_tls.c`): logins/s with AUTH TLS, RETR and STOR of
  the big file with PROT P (the client resumes the control session, as ProFTPD requires), and the session setup
  time (connect, AUTH TLS, USER, PASS: median of 30),
- PassivePortPool against per-PASV binding, both with a PassivePorts range of 4 ports: PASV+LIST latency, and 200
  concurrent passive downloads from 200 distinct client addresses (127.0.x.y) (`--pool-only` runs just these).
- pre-forked idle children (StartServers/MinSpareServers) against fork-on-accept: connect-to-220 latency (median
  of 200, the two servers alternating, a pause between connections so the pool refills as on a server that is not
  saturated) and logins/s with 8 clients (`--prefork-only` runs just these).
- a banned host's flood: connections per second the server refuses once mod_ban has banned the client
  (proftpy refuses in the master, before any fork; ProFTPD forks a session that refuses).

- start to listen: milliseconds from exec to the first accepted connection, in the foreground (`-n`) and as a
  daemon (the command returns once the daemon listens), median of 9 starts (`--start-only` measures just these).

mod_delay is switched off (`DelayEngine off`) for proftpy and ProFTPD alike: it pads logins to the usual time on
purpose, which would measure the padding rather than the server. mod_ban is on for both (BanTable, MaxLoginAttempts
1 and `BanOnEvent MaxLoginAttempts 1/00:10:00 01:00:00`; only the flood from 127.0.0.2 is ever banned).

`--baseline REV` measures proftpy as it was at git revision REV too (exported from this checkout), in the same run,
so a change is compared with the code before it on the same machine at the same moment.

Peers found on this machine (Debian's /usr/sbin/proftpd, vsftpd, pyftpdlib importable here) are measured the same
way in the same run, with the same SHA-512-crypt password hash, and proftpy/peer ratios printed. vsftpd is --vsftpd
PATH, /usr/sbin/vsftpd, or Debian's .deb fetched with `apt-get download` and unpacked with `dpkg -x` into
~/.cache/proftpy-bench/vsftpd (scripts/install-deps.sh does that too); it needs root (it runs in a private mount
namespace with its own /etc/passwd and /etc/shadow). Nothing is installed by this script. `--write-docs` replaces the results table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ftplib
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from proftpy.auth.crypt import crypt_hash  # noqa: E402

USER, PASSWORD = "bench", "bench-secret-pw"
BLOCK = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- servers -----------------------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    work: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    master: int = 0
    home: Path = field(default=None)
    tls: bool = False               # started with FTPS configured (for the FTPS rows)
    SOURCE = REPO                   # the proftpy tree a proftpy server runs from
    TLS = False                     # the server can be measured with FTPS

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(self.command(), cwd=self.work, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.work / "stderr.log", "wb"),
                                     env=dict(os.environ, PYTHONPATH=str(self.SOURCE)))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.recv(100)
                self.master = self.proc.pid
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start: {(self.work / 'stderr.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_user(work: Path) -> tuple[Path, int, int]:
    """passwd/group files with one user, SHA-512-crypt hash (the same for every server)."""
    uid = gid = 2399 if os.geteuid() == 0 else os.getuid()
    if os.geteuid() != 0:
        gid = os.getgid()
    home = work / "home"
    home.mkdir()
    if os.geteuid() == 0:
        os.chown(home, uid, gid)
    (work / "ftpd.passwd").write_text(f"{USER}:{crypt_hash(PASSWORD, 'sha512')}:{uid}:{gid}::{home}:/bin/sh\n")
    (work / "ftpd.group").write_text(f"bench:x:{gid}:{USER}\n")
    for f in ("ftpd.passwd", "ftpd.group"):
        os.chmod(work / f, 0o600)
    return home, uid, gid


def proftpd_style_conf(server: "Server", name: str, extra: str = "") -> Path:
    """One configuration for proftpy and ProFTPD: the same server, files, user and chroot; `extra` holds what only
    one of them needs."""
    conf = server.work / f"{name}.conf"
    conf.write_text(textwrap.dedent(f"""\
        ServerName "bench"
        Port {server.port}
        DefaultAddress 127.0.0.1
        SocketBindTight on
        UseIPv6 off
        UseReverseDNS off
        PidFile {server.work}/{name}.pid
        ScoreboardFile {server.work}/{name}.scoreboard
        DelayTable {server.work}/{name}.delay
        SystemLog {server.work}/system.log
        AuthOrder mod_auth_file.c
        AuthUserFile {server.work}/ftpd.passwd
        AuthGroupFile {server.work}/ftpd.group
        RequireValidShell off
        UseFtpUsers off
        DefaultRoot ~
        AllowOverwrite on
        <IfModule mod_log.c>
          TransferLog none
        </IfModule>
        <IfModule mod_delay.c>
          DelayEngine off
        </IfModule>
        """) + textwrap.dedent(extra) + textwrap.dedent(f"""\
        <IfModule mod_ban.c>
          BanEngine on
          BanTable {server.work}/{name}.ban
          MaxLoginAttempts 1
          BanOnEvent MaxLoginAttempts 1/00:10:00 01:00:00
        </IfModule>
        """))
    return conf


class Proftpy(Server):
    TLS = True                      # measured again with FTPS
    PYTHON = sys.executable         # the interpreter it runs on (`--python` adds a row per interpreter)

    def command(self) -> list[str]:
        return [self.PYTHON, "-m", "proftpy", "-n", "-q", "-c",
                str(proftpd_style_conf(self, "proftpy", tls_conf(self)))]


CERT: Path | None = None            # the run's certificate (make_certificate), for every TLS server


def make_certificate(base: Path) -> Path:
    """A self-signed RSA-2048 certificate and key in one directory (openssl command)."""
    d = base / "tls"
    d.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    for f in d.iterdir():
        f.chmod(0o644)
    return d


def tls_conf(server: "Server", load: str = "") -> str:
    """The FTPS lines, when the server is started for the FTPS rows (`server.tls`); the same for every server."""
    if not server.tls:
        return ""
    return (f"{load}TLSEngine on\nTLSRSACertificateFile {CERT}/cert.pem\nTLSRSACertificateKeyFile {CERT}/key.pem\n"
            "TLSProtocol TLSv1.2 TLSv1.3\n")


class ProftpyPassive(Server):
    """proftpy with a PassivePorts range, pooled (PassivePortPool) or binding a port per PASV (the pool rows)."""

    ports: tuple[int, int] = (0, 0)
    pool: bool = False

    def command(self) -> list[str]:
        extra = f"PassivePorts {self.ports[0]} {self.ports[1]}\nPassivePortPool {'on' if self.pool else 'off'}\n"
        return [sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(proftpd_style_conf(self, self.name, extra))]


class ProftpyPrefork(Server):
    """proftpy with a pool of pre-forked idle children (`spares` > 0) or forking at each accept (the prefork rows)."""

    spares: int = 0

    def command(self) -> list[str]:
        extra = f"StartServers {self.spares}\nMinSpareServers {self.spares}\n" if self.spares else ""
        return [sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(proftpd_style_conf(self, self.name, extra))]


def on_interpreter(python: str) -> type[Proftpy]:
    """proftpy (this tree) run by another interpreter (`--python PATH`, which must have proftpy's dependencies):
    a server named proftpy-pyX.Y."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], check=True,
                             capture_output=True, text=True).stdout.strip()
    return type(f"proftpy-py{version}", (Proftpy,), {"PYTHON": python})


class Baseline(Proftpy):
    """proftpy at another revision (`--baseline REV`), run from a tree exported into the bench directory."""

    TLS = False                     # an older revision may have no mod_tls


def export_baseline(rev: str, base: Path) -> None:
    tree = base / "baseline-src"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    # its bytecode too, as `make bench` compiles this checkout's (start-up times compare like with like)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "proftpy")], check=True)
    Baseline.SOURCE = tree


class Proftpd(Server):
    BIN = "/usr/sbin/proftpd"
    TLS = os.path.exists("/usr/lib/proftpd/mod_tls.so")

    def command(self) -> list[str]:
        conf = proftpd_style_conf(self, "proftpd", tls_conf(self, "LoadModule mod_tls.c\n") + """\
            ServerType standalone
            DefaultServer on
            <IfModule mod_ident.c>
              IdentLookups off
            </IfModule>
            ModulePath /usr/lib/proftpd
            LoadModule mod_ban.c
            WtmpLog off
            MaxInstances 1000
            """)
        return [self.BIN, "-n", "-q", "-c", str(conf)]


PYFTPDLIB_SERVER = """\
import ctypes, ctypes.util, sys
_libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")   # the crypt module is gone in 3.13
_libcrypt.crypt.restype = ctypes.c_char_p
def crypt(password, hashed):
    return (_libcrypt.crypt(password.encode(), hashed.encode()) or b"").decode()
from pyftpdlib.authorizers import DummyAuthorizer, AuthenticationFailed
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import MultiprocessFTPServer
port, passwd = int(sys.argv[1]), sys.argv[2]
name, hashed, uid, gid, _, home, _ = open(passwd).read().split(":")
class Auth(DummyAuthorizer):
    def validate_authentication(self, user, password, handler):
        if user != name or crypt(password, hashed) != hashed:
            raise AuthenticationFailed("Authentication failed.")
auth = Auth()
auth.add_user(name, "", home, perm="elradfmwMT")
FTPHandler.authorizer = auth
MultiprocessFTPServer(("127.0.0.1", port), FTPHandler).serve_forever()
"""


class Pyftpdlib(Server):
    def command(self) -> list[str]:
        script = self.work / "pyftpd_bench.py"
        script.write_text(PYFTPDLIB_SERVER)
        return [sys.executable, str(script), str(self.port), str(self.work / "ftpd.passwd")]


VSFTPD_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "proftpy-bench" / "vsftpd"


def find_vsftpd(given: str | None) -> str | None:
    """vsftpd for the bench: --vsftpd PATH, an installed /usr/sbin/vsftpd, or Debian's package unpacked (dpkg -x,
    never installed as a service) into VSFTPD_CACHE; fetched with `apt-get download` the first time."""
    if given:
        return given if os.access(given, os.X_OK) else None
    for path in ("/usr/sbin/vsftpd", VSFTPD_CACHE / "usr/sbin/vsftpd"):
        if os.access(path, os.X_OK):
            return str(path)
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", "-q", "vsftpd"], cwd=tmp, capture_output=True)
        debs = list(Path(tmp).glob("vsftpd_*.deb"))
        if got.returncode or not debs:
            print("vsftpd: apt-get download failed, not measured", file=sys.stderr)
            return None
        VSFTPD_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(debs[0]), str(VSFTPD_CACHE)], check=True)
    path = VSFTPD_CACHE / "usr/sbin/vsftpd"
    return str(path) if os.access(path, os.X_OK) else None


class Vsftpd(Server):
    """Debian's vsftpd, whose local users are system users checked by PAM (pam_unix, /etc/shadow): it runs as
    root in a private mount namespace (unshare) where /etc/passwd, /etc/shadow and /etc/group are copies of the
    machine's with the bench user and the same SHA-512-crypt hash added, so nothing of the machine changes."""

    BIN = ""

    @staticmethod
    def usable() -> bool:
        return os.geteuid() == 0 and shutil.which("unshare") is not None

    def etc_files(self) -> dict[str, Path]:
        name, hashed, uid, gid, _, home, shell = (self.work / "ftpd.passwd").read_text().strip().split(":")
        files = {}
        for etc, line in (("passwd", f"{name}:x:{uid}:{gid}::{home}:{shell}"),
                          ("shadow", f"{name}:{hashed}:19000:0:99999:7:::"),
                          ("group", f"{name}:x:{gid}:")):
            path = files[etc] = self.work / f"vsftpd-{etc}"
            path.write_text(Path("/etc", etc).read_text().rstrip("\n") + f"\n{line}\n")
            path.chmod(0o600 if etc == "shadow" else 0o644)
        return files

    def command(self) -> list[str]:
        empty = self.work / "vsftpd-empty"          # its secure_chroot_dir: root's, not writable
        empty.mkdir(exist_ok=True)
        conf = self.work / "vsftpd.conf"
        conf.write_text(textwrap.dedent(f"""\
            listen=YES
            listen_address=127.0.0.1
            listen_port={self.port}
            anonymous_enable=NO
            local_enable=YES
            write_enable=YES
            chroot_local_user=YES
            allow_writeable_chroot=YES
            seccomp_sandbox=NO
            pam_service_name=proftpy-bench-vsftpd
            secure_chroot_dir={empty}
            background=NO
            """))
        binds = " && ".join(f"mount --bind {path} /etc/{etc}" for etc, path in self.etc_files().items())
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'{binds} && exec "$0" "$1"', self.BIN, str(conf)]


def available_servers(args) -> list[type[Server]]:
    servers: list[type[Server]] = ([Proftpy] + ([Baseline] if args.baseline else [])
                                   + [on_interpreter(p) for p in args.python or ()])
    if args.only:
        servers = []
    names = set(args.only.split(",")) if args.only else None
    candidates: list[type[Server]] = []
    if os.access(Proftpd.BIN, os.X_OK):
        candidates.append(Proftpd)
    wanted = "vsftpd" in names if names else not args.no_peers
    vsftpd = find_vsftpd(args.vsftpd) if wanted and Vsftpd.usable() else None
    if vsftpd:
        Vsftpd.BIN = vsftpd
        candidates.append(Vsftpd)
    try:
        import pyftpdlib  # noqa: F401
        candidates.append(Pyftpdlib)
    except ImportError:
        pass
    if names:
        ours = [Proftpy] + ([Baseline] if args.baseline else []) + [on_interpreter(p) for p in args.python or ()]
        servers = [s for s in ours + candidates if s.__name__.lower() in names]
    elif not args.no_peers:
        servers += candidates
    return servers


# -- clients -----------------------------------------------------------------------------------------------------
def login(port: int, timeout: float = 30) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=timeout)
    ftp.connect("127.0.0.1", port)
    ftp.login(USER, PASSWORD)
    return ftp


def download(ftp: ftplib.FTP, name: str) -> int:
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd(f"RETR {name}")
    buf = bytearray(BLOCK)
    total = 0
    with conn:
        while n := conn.recv_into(buf):
            total += n
    ftp.voidresp()
    return total


class FTPS(ftplib.FTP_TLS):
    """Data connections resume the control connection's TLS session (curl, lftp and FileZilla do; ProFTPD requires
    it)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def ftps_login(port: int, timeout: float = 30, prot_p: bool = True) -> FTPS:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = FTPS(context=ctx, timeout=timeout)
    ftp.connect("127.0.0.1", port)
    ftp.auth()
    ftp.login(USER, PASSWORD)
    if prot_p:
        ftp.prot_p()
    return ftp


def upload(ftp: ftplib.FTP, name: str, size: int, block: bytes) -> None:
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd(f"STOR {name}")
    with conn:
        view = memoryview(block)
        left = size
        while left:
            n = min(left, len(view))
            conn.sendall(view[:n])
            left -= n
        if hasattr(conn, "unwrap"):             # TLS: close_notify, as ftplib's storbinary does
            conn.unwrap()
    ftp.voidresp()


def make_file(path: Path, size: int, block: bytes, owner: tuple[int, int]) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    if os.geteuid() == 0:
        os.chown(path, *owner)


LISTED_FILES = 10               # the directory every PASV+LIST row lists: this many files of 1000 bytes


def make_listed_files(home: Path, block: bytes, owner: tuple[int, int]) -> None:
    for i in range(LISTED_FILES):
        make_file(home / f"f{i}.txt", 1000, block, owner)


def _login_worker(port: int, until: float, out, tls: bool = False) -> None:
    count = 0
    while time.time() < until:
        try:
            ftp = ftps_login(port, 10, prot_p=False) if tls else login(port, 10)
            ftp.quit()
            count += 1
        except (OSError, ftplib.Error, EOFError):
            time.sleep(0.01)
    out.put(count)


def logins_per_second(port: int, clients: int, seconds: float, tls: bool = False) -> float:
    out = multiprocessing.Queue()
    until = time.time() + seconds
    procs = [multiprocessing.Process(target=_login_worker, args=(port, until, out, tls)) for _ in range(clients)]
    start = time.time()
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return total / (time.time() - start)


BANNED = "127.0.0.2"         # the flooding client's address (the other measurements come from 127.0.0.1)


def _flood_worker(port: int, until: float, out) -> None:
    count = 0
    while time.time() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(BANNED, 0)) as s:
                while s.recv(4096):
                    pass
            count += 1
        except OSError:
            time.sleep(0.001)
    out.put(count)


def banned_flood(port: int, clients: int, seconds: float) -> float:
    """Get 127.0.0.2 banned (one failed login, MaxLoginAttempts 1), then count how many of its connections per
    second the server closes."""
    ftp = ftplib.FTP(timeout=10)
    ftp.connect("127.0.0.1", port, source_address=(BANNED, 0))
    try:
        ftp.login(USER, "not-the-password")
    except (ftplib.Error, EOFError, OSError):
        pass
    ftp.close()
    time.sleep(0.5)
    out = multiprocessing.Queue()
    until = time.time() + seconds
    procs = [multiprocessing.Process(target=_flood_worker, args=(port, until, out)) for _ in range(clients)]
    start = time.time()
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return total / (time.time() - start)


def _concurrent_worker(port: int, sessions: int, deadline: float, out) -> None:
    ok = [0]
    lock = threading.Lock()

    def one() -> None:
        try:
            ftp = login(port, max(5.0, deadline - time.time()))
            got = download(ftp, "session.bin")
            ftp.quit()
            with lock:
                ok[0] += got
        except (OSError, ftplib.Error, EOFError):
            pass        # counted as missing bytes

    threads = [threading.Thread(target=one) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.time()))
    out.put(ok[0])


def concurrent_sessions(port: int, sessions: int, procs: int, timeout: float) -> tuple[float, float, int]:
    """(seconds, MB/s, bytes) for `sessions` sessions downloading session.bin at once."""
    out = multiprocessing.Queue()
    deadline = time.time() + timeout
    per = [sessions // procs + (1 if i < sessions % procs else 0) for i in range(procs)]
    workers = [multiprocessing.Process(target=_concurrent_worker, args=(port, n, deadline, out)) for n in per]
    start = time.time()
    for w in workers:
        w.start()
    total = sum(out.get(timeout=timeout + 30) for _ in workers)
    took = time.time() - start
    for w in workers:
        w.join(5)
        if w.is_alive():
            w.terminate()
    return took, total / took / 1e6, total


def pasv_list_latency(port: int, count: int = 50) -> float:
    ftp = login(port)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        ftp.retrlines("LIST", lambda line: None)
        times.append(time.perf_counter() - start)
    ftp.quit()
    return statistics.median(times) * 1000


BUSY_PORTS = 8000       # listening-side ports in TIME_WAIT for the busy PASV+LIST row
BUSY_ROW = f"PASV+LIST median, {BUSY_PORTS} ports in TIME_WAIT (ms)"


def fill_time_wait(count: int, seconds: float = 30.0) -> int:
    """Leave `count` listening-side ports in TIME_WAIT as a server that binds port 0 for each passive data
    connection and closes it first does (the kernel's port search then passes over them); returns how many were
    made before the deadline."""
    deadline = time.monotonic() + seconds
    made = 0
    while made < count and time.monotonic() < deadline:
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            client = socket.create_connection(listener.getsockname())
            served, _ = listener.accept()
        served.close()                  # the listening side closes first: its port goes to TIME_WAIT
        client.recv(1)
        client.close()
        made += 1
    return made


PASV_ROW = "PASV+LIST median (ms)"
PASV_ROUNDS = 5                 # rounds of the plain row, the servers taking turns (50 PASV+LIST each)


def pasv_rows(classes: list[type[Server]], base: Path) -> dict[str, dict[str, float]]:
    """PASV_ROW and BUSY_ROW for each server, all servers started together: the plain row in rounds where the
    servers take turns (so the machine's moods fall on all alike), then one fill of TIME_WAIT and the busy row,
    each server in turn within seconds (TIME_WAIT lasts 60 s)."""
    time_wait_drained()
    servers = []
    try:
        for cls in classes:
            work = base / cls.__name__.lower()
            server = cls(cls.__name__.lower(), work, home=work / "home")
            server.start()
            servers.append(server)
        rounds: dict[str, list[float]] = {server.name: [] for server in servers}
        for _ in range(PASV_ROUNDS):
            for server in servers:
                rounds[server.name].append(pasv_list_latency(server.port))
        made = fill_time_wait(BUSY_PORTS)
        print(f"== PASV+LIST, the servers taking turns; then {made} ports left in TIME_WAIT", flush=True)
        out = {server.name: {PASV_ROW: statistics.median(rounds[server.name]),
                             BUSY_ROW: pasv_list_latency(server.port)} for server in servers}
        for name, rows in out.items():
            print(f"  {name}", *(f"    {k:<48} {v:8.2f}" for k, v in rows.items()), sep="\n", flush=True)
        return out
    finally:
        for server in servers:
            server.stop()


def time_wait_drained(below: int = 2000, seconds: float = 65.0) -> None:
    """Wait (at most `seconds`) until fewer than `below` TCP sockets are in TIME_WAIT: what earlier rows left
    would slow the next one's bind(0)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _time_wait_count() >= below:
        time.sleep(1)


def _time_wait_count() -> int:
    count = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(path) as f:
            next(f, None)
            count += sum(1 for line in f if line.split(None, 4)[3] == "06")
    return count


def free_range(count: int) -> tuple[int, int]:
    """`count` consecutive ports free on 127.0.0.1 now."""
    for lo in range(40000, 60000, 97):
        try:
            socks = [socket.create_server(("127.0.0.1", p)) for p in range(lo, lo + count)]
        except OSError:
            continue
        for sock in socks:
            sock.close()
        return lo, lo + count - 1
    raise RuntimeError("no free port range")


def client_address(i: int) -> str:
    """The i-th client's own loopback address (all of 127.0.0.0/8 is loopback)."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def distinct_clients(port: int, clients: int, timeout: float) -> tuple[float, int, int]:
    """(seconds, downloads complete, 425 replies): `clients` threads, each from its own address (control and data
    connections), log in and download session.bin at the same moment."""
    barrier = threading.Barrier(clients, timeout=timeout)
    done = [0, 0]
    lock = threading.Lock()
    deadline = time.time() + timeout

    def one(i: int) -> None:
        try:
            ftp = ftplib.FTP(timeout=max(5.0, deadline - time.time()), source_address=(client_address(i), 0))
            ftp.connect("127.0.0.1", port)
            ftp.login(USER, PASSWORD)
            barrier.wait()
            got = download(ftp, "session.bin")
            ftp.quit()
            with lock:
                done[0] += got > 0
        except ftplib.error_temp as e:
            with lock:
                done[1] += str(e).startswith("425")
        except (OSError, ftplib.Error, EOFError, threading.BrokenBarrierError):
            pass        # counted as incomplete

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.time()))
    return time.time() - start, done[0], done[1]


def pool_rows(args, base: Path) -> dict[str, dict[str, float]]:
    """PassivePortPool against per-PASV binding, the same range of 4 ports."""
    work = base / "pool"
    work.mkdir()
    home, uid, gid = make_user(work)
    block = os.urandom(BLOCK)
    make_file(home / "session.bin", args.pool_mb << 20, block, (uid, gid))
    make_listed_files(home, block, (uid, gid))
    ports = free_range(4)
    results: dict[str, dict[str, float]] = {}
    for pool in (False, True):
        name = "pooled" if pool else "per-PASV"
        server = ProftpyPassive(f"proftpy-{name}", work, home=home)
        server.ports, server.pool = ports, pool
        server.start()
        res: dict[str, float] = {}
        try:
            print(f"== proftpy, {name} passive ports {ports[0]}-{ports[1]}", flush=True)
            res["PASV+LIST median (ms)"] = pasv_list_latency(server.port)
            took, complete, refused = distinct_clients(server.port, args.pool_clients, args.timeout)
            res[f"{args.pool_clients} clients x {args.pool_mb} MB, 4 ports: complete"] = complete
            res[f"{args.pool_clients} clients x {args.pool_mb} MB, 4 ports: 425 replies"] = refused
            res[f"{args.pool_clients} clients x {args.pool_mb} MB, 4 ports: seconds"] = took
            for key, value in res.items():
                print(f"  {key:<44} {value:12.2f}", flush=True)
        finally:
            server.stop()
        results[name] = res
    return results


def greeting_latency(ports: list[int], count: int, pause: float) -> list[float]:
    """Median milliseconds from connect() to the whole 220 line, per port; the ports take turns, so the machine's
    noise falls on each alike. `pause` seconds between connections."""
    times: list[list[float]] = [[] for _ in ports]
    for _ in range(count):
        for i, port in enumerate(ports):
            start = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), 10) as s:
                buf = b""
                while not buf.endswith(b"\r\n"):
                    chunk = s.recv(512)
                    if not chunk:
                        break
                    buf += chunk
                times[i].append(time.perf_counter() - start)
                s.sendall(b"QUIT\r\n")
                s.recv(512)
            time.sleep(pause)
    return [statistics.median(t) * 1000 for t in times]


PREFORK_SPARES = 8          # StartServers and MinSpareServers of the pooled server


def prefork_rows(args, base: Path) -> dict[str, dict[str, float]]:
    """Pre-forked idle children against fork-on-accept (issue 18)."""
    work = base / "prefork"
    work.mkdir()
    home, _, _ = make_user(work)
    servers = []
    for spares in (PREFORK_SPARES, 0):
        server = ProftpyPrefork("proftpy-pool" if spares else "proftpy-fork", work, home=home)
        server.spares = spares
        servers.append(server)
    results: dict[str, dict[str, float]] = {s.name: {} for s in servers}
    try:
        for server in servers:
            server.start()
        time.sleep(1)           # the pool forks its idle children after the start
        print("== proftpy: fork-on-accept and a pool of pre-forked idle children", flush=True)
        medians = greeting_latency([s.port for s in servers], args.prefork_count, 0.02)
        for server, median in zip(servers, medians):
            results[server.name]["connect to 220 median (ms)"] = median
        for server in servers:
            results[server.name][f"logins/s ({args.clients} clients)"] = logins_per_second(
                server.port, args.clients, args.seconds)
    finally:
        for server in servers:
            server.stop()
    for name, res in results.items():
        print(f"  {name}", *(f"    {k:<34} {v:12.2f}" for k, v in res.items()), sep="\n", flush=True)
    return results


def uss_kb(pid: int) -> float:
    return psutil.Process(pid).memory_full_info().uss / 1024


def anonymous_kb(pid: int) -> float:
    """A master's own memory: its anonymous pages, shared with a child or not. (Its USS, the row before this one,
    left out the pages a session child still shared, so it swung between 1.7 and 10.5 MB from run to run with
    whether the child that answered `start()`'s probe had exited yet.)"""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(float(line.split()[1]) for line in f if line.startswith("Anonymous:"))


def idle_session_uss(server: Server, count: int = 20, settle=None) -> float:
    before = {c.pid for c in psutil.Process(server.master).children(recursive=True)}
    clients = [login(server.port) for _ in range(count)]
    time.sleep(0.5)
    if settle:
        settle()
    # a session is a child of the master with its own children (vsftpd runs two processes per session)
    kids = [c for c in psutil.Process(server.master).children() if c.pid not in before]
    values = [uss_kb(c.pid) + sum(uss_kb(g.pid) for g in c.children(recursive=True)) for c in kids]
    for ftp in clients:
        with contextlib.suppress(OSError, ftplib.Error, EOFError):
            ftp.quit()
    return statistics.median(values) if values else float("nan")


KSM = Path("/sys/kernel/mm/ksm")


def can_switch_ksm() -> bool:
    return os.access(KSM / "run", os.W_OK)


@contextlib.contextmanager
def ksmd(on: bool):
    """Turn the kernel's same-page merging daemon on or off for one measurement (root only); the machine's
    own settings come back afterwards. On, it scans 5000 pages per wake-up (default 100), so 20 sessions are
    merged within seconds instead of about 40 s."""
    wanted = {"run": "1", "pages_to_scan": "5000"} if on else {"run": "0"}
    old = {name: (KSM / name).read_text().strip() for name in wanted}
    try:
        for name, value in wanted.items():
            (KSM / name).write_text(value)
        yield
    finally:
        for name, value in old.items():
            (KSM / name).write_text(value)


def ksm_settled(timeout: float = 30.0) -> None:
    """Wait for four more full scans of ksmd: a page is merged once it has been seen unchanged twice, and the
    kernel's smart_scan (Linux 6.7+) may skip a page that did not merge on one scan (measured: two scans merged
    a third of the sessions, four all of them)."""
    start = int((KSM / "full_scans").read_text())
    deadline = time.monotonic() + timeout
    while int((KSM / "full_scans").read_text()) < start + 4 and time.monotonic() < deadline:
        time.sleep(0.2)


# -- upload engine micro-benchmark -------------------------------------------------------------------------------
ROUNDS = 3              # RETR/STOR rounds per server; the median is reported


def store_engines(size: int, work: Path) -> dict[str, float]:
    """GB/s of socket -> file with recv_into+write and with os.splice through a pipe (loopback TCP)."""
    results = {}
    block = os.urandom(BLOCK)
    for engine in ("recv_into+write", "splice"):
        if engine == "splice" and not hasattr(os, "splice"):
            continue
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        cli = socket.create_connection(srv.getsockname())
        conn, _ = srv.accept()
        srv.close()

        def send() -> None:
            left = size
            while left:
                n = min(left, BLOCK)
                cli.sendall(block[:n])
                left -= n
            cli.close()

        sender = threading.Thread(target=send)
        path = work / f"engine-{engine}.bin"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        start = time.perf_counter()
        sender.start()
        if engine == "splice":
            r, w = os.pipe()
            try:
                import fcntl
                fcntl.fcntl(w, 1031, BLOCK)        # F_SETPIPE_SZ
            except OSError:
                pass
            while True:
                n = os.splice(conn.fileno(), w, BLOCK)
                if n == 0:
                    break
                while n:
                    n -= os.splice(r, fd, n)
            os.close(r)
            os.close(w)
        else:
            buf = bytearray(BLOCK)
            view = memoryview(buf)
            while n := conn.recv_into(buf):
                m = 0
                while m < n:
                    m += os.write(fd, view[m:n])
        took = time.perf_counter() - start
        sender.join()
        conn.close()
        os.close(fd)
        path.unlink()
        results[engine] = size / took / 1e9
    return results


# -- the run -----------------------------------------------------------------------------------------------------
def big_file(ftp: ftplib.FTP, home: Path, size: int, block: bytes) -> tuple[float, float]:
    """(RETR GB/s, STOR GB/s) of big.bin, the median of ROUNDS rounds each."""
    retr, stor = [], []
    for _ in range(ROUNDS):
        os.sync()           # no dirty pages left by earlier writes may throttle this round
        start = time.perf_counter()
        got = download(ftp, "big.bin")
        retr.append(got / (time.perf_counter() - start) / 1e9)
        os.sync()
        start = time.perf_counter()
        upload(ftp, "up.bin", size, block)
        stor.append(size / (time.perf_counter() - start) / 1e9)
        (home / "up.bin").unlink()
    return statistics.median(retr), statistics.median(stor)


def start_to_listen(server: Server, daemon: bool, runs: int = 9) -> float:
    """Median milliseconds from exec to the first connection the server accepts: what an init script, a health
    check or a test harness waits for. `daemon`: without -n (the daemon's PidFile tells whom to stop)."""
    times = []
    for _ in range(runs):
        server.port = free_port()
        argv = [a for a in server.command() if not (daemon and a == "-n")]
        pidfile = next(server.work.glob("*.conf")).with_suffix(".pid") if daemon else None
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=server.work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(server.SOURCE)))
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), 1).close()
                break
            except OSError:
                if time.perf_counter() - started > 10 or (not daemon and proc.poll() is not None):
                    raise RuntimeError(f"{server.name} did not listen within 10 s") from None
                time.sleep(0.001)
        times.append(time.perf_counter() - started)
        if not daemon:
            proc.terminate()
        proc.wait(10)
        if daemon:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            deadline = time.monotonic() + 10
            while pidfile.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    return statistics.median(times) * 1000


def start_rows(cls: type[Server], work: Path) -> dict[str, float]:
    server = cls(cls.__name__.lower(), work)
    res = {"start to listen, -n (ms)": start_to_listen(server, daemon=False)}
    if issubclass(cls, (Proftpy, Proftpd)):
        res["start to listen, daemon (ms)"] = start_to_listen(server, daemon=True)
    return res


def measure(cls: type[Server], args, base: Path) -> dict[str, float]:
    work = base / cls.__name__.lower()
    work.mkdir()
    home, uid, gid = make_user(work)
    res: dict[str, float] = start_rows(cls, work)
    if args.start_only:
        print(f"== {cls.__name__.lower()}", *(f"  {k:<34} {v:12.2f}" for k, v in res.items()), sep="\n", flush=True)
        return res
    block = os.urandom(BLOCK)
    size = args.size << 20
    make_file(home / "big.bin", size, block, (uid, gid))
    make_file(home / "session.bin", args.session_mb << 20, block, (uid, gid))
    make_listed_files(home, block, (uid, gid))
    server = cls(cls.__name__.lower(), work, home=home)
    server.start()
    try:
        print(f"== {server.name}", flush=True)
        res["master anonymous memory (KB)"] = anonymous_kb(server.master)
        ksm = can_switch_ksm()
        with ksmd(False) if ksm else contextlib.nullcontext():
            res["idle session USS (KB)"] = idle_session_uss(server)
        if ksm and args.ksmd_row:
            with ksmd(True):
                res["idle session USS, ksmd on (KB)"] = idle_session_uss(server, settle=ksm_settled)
        ftp = login(server.port, 300)
        res[f"RETR {args.size} MiB (GB/s)"], res[f"STOR {args.size} MiB (GB/s)"] = big_file(ftp, home, size, block)
        ftp.quit()
        res[f"logins/s ({args.clients} clients)"] = logins_per_second(server.port, args.clients, args.seconds)
        took, mbs, total = concurrent_sessions(server.port, args.sessions, args.clients, args.timeout)
        res[f"{args.sessions} x {args.session_mb} MB: seconds"] = took
        res[f"{args.sessions} x {args.session_mb} MB: complete (%)"] = \
            100.0 * total / (args.sessions * (args.session_mb << 20))
        if cls in (Proftpy, Proftpd):
            res[f"banned flood: refused/s ({args.clients} clients)"] = banned_flood(server.port, args.clients,
                                                                                    args.seconds)
    finally:
        server.stop()
    if cls.TLS:
        res.update(measure_tls(cls, args, work, home, block))
    for key, value in res.items():
        print(f"  {key:<34} {value:12.2f}", flush=True)
    return res


def measure_tls(cls: type[Server], args, work: Path, home: Path, block: bytes) -> dict[str, float]:
    """The FTPS rows, on the server started again with TLS configured (the plain rows are measured without it:
    ProFTPD's sessions pay for TLS at setup even when the client never uses it)."""
    server = cls(cls.__name__.lower(), work, home=home, tls=True)
    server.start()
    res: dict[str, float] = {}
    size = args.size << 20
    try:
        setup = []
        for _ in range(30):
            start = time.perf_counter()
            ftp = ftps_login(server.port, prot_p=False)
            setup.append(time.perf_counter() - start)
            ftp.quit()
        res["FTPS session setup median (ms)"] = statistics.median(setup) * 1000
        res[f"FTPS logins/s ({args.clients} clients)"] = logins_per_second(server.port, args.clients, args.seconds,
                                                                            tls=True)
        ftp = ftps_login(server.port, 300)
        res[f"FTPS RETR {args.size} MiB PROT P (GB/s)"], res[f"FTPS STOR {args.size} MiB PROT P (GB/s)"] = \
            big_file(ftp, home, size, block)
        ftp.quit()
    finally:
        server.stop()
    return res


def table(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    metrics = list(results[names[0]])
    head = ["metric"] + names + [f"{names[0]}/{n}" for n in names[1:]]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in metrics:
        cells = [m] + [f"{results[n].get(m, float('nan')):.2f}" for n in names]
        base = results[names[0]].get(m)
        for n in names[1:]:
            other = results[n].get(m)
            cells.append(f"{base / other:.2f}" if base and other else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


POOL_START, POOL_END = "<!-- bench-pool:start -->", "<!-- bench-pool:end -->"
PREFORK_START, PREFORK_END = "<!-- bench-prefork:start -->", "<!-- bench-prefork:end -->"


def write_docs(text: str, start: str = START, end: str = END) -> None:
    path = REPO / "docs" / "performance.md"
    doc = path.read_text() if path.exists() else f"# Performance\n\n{start}\n{end}\n"
    if start not in doc:
        doc += f"\n{start}\n{end}\n"
    before, rest = doc.split(start, 1)
    after = rest.split(end, 1)[1] if end in rest else ""
    path.write_text(f"{before}{start}\n{text}\n{end}{after}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="MiB of the RETR/STOR file (default 1024)")
    ap.add_argument("--clients", type=int, default=8, help="client processes (default 8)")
    ap.add_argument("--seconds", type=float, default=5, help="duration of the login test (default 5)")
    ap.add_argument("--sessions", type=int, default=200, help="concurrent download sessions (default 200)")
    ap.add_argument("--session-mb", type=int, default=10, help="MB each concurrent session downloads (default 10)")
    ap.add_argument("--timeout", type=float, default=120, help="deadline of the concurrent test (default 120 s)")
    ap.add_argument("--only", help="comma list: proftpy,proftpd,pyftpdlib,vsftpd")
    ap.add_argument("--no-peers", action="store_true", help="measure proftpy only")
    ap.add_argument("--vsftpd", help="path of a vsftpd binary (e.g. unpacked with dpkg -x); uses PAM system users")
    ap.add_argument("--baseline", metavar="REV", help="also measure proftpy at git revision REV")
    ap.add_argument("--python", action="append", metavar="PATH",
                    help="also measure proftpy run by this interpreter (repeatable; it needs proftpy's dependencies)")
    ap.add_argument("--write-docs", action="store_true", help="replace the table in docs/performance.md")
    ap.add_argument("--pool-clients", type=int, default=200, help="clients of the pool rows (default 200)")
    ap.add_argument("--pool-mb", type=int, default=1, help="MB each pool-row client downloads (default 1)")
    ap.add_argument("--pool-only", action="store_true", help="measure only the PassivePortPool rows")
    ap.add_argument("--ksmd-row", action="store_true",
                    help="also measure idle session USS with ksmd on (root: switches the machine's ksmd on for that "
                         "row, then back; off by default, as it changes the machine for everyone on it)")
    ap.add_argument("--start-only", action="store_true", help="measure how fast each server starts listening, only")
    ap.add_argument("--prefork-only", action="store_true", help="measure only the pre-forked idle children rows")
    ap.add_argument("--prefork-count", type=int, default=200, help="connections per server of the connect-to-220 "
                    "row (default 200)")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so servers stop, files go and the ksmd settings come back (ksmd())
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    base = Path(tempfile.mkdtemp(prefix="proftpy-bench-"))
    os.chmod(base, 0o755)
    try:
        preforks = prefork_rows(args, base)
        if args.prefork_only:
            return _report_prefork(args, preforks)
        pools = pool_rows(args, base)
        if args.pool_only:
            results = {}
        else:
            if args.baseline:
                export_baseline(args.baseline, base)
            global CERT
            CERT = make_certificate(base)
            engines = {} if args.start_only else store_engines(min(args.size, 512) << 20, base)
            print("upload engine (loopback socket -> file, GB/s):",
                  ", ".join(f"{k} {v:.2f}" for k, v in engines.items()), flush=True)
            classes = available_servers(args)
            results = {cls.__name__.lower(): measure(cls, args, base) for cls in classes}
            if not args.start_only:
                for name, pasv in pasv_rows(classes, base).items():
                    rows = list(results[name].items())
                    at = next((i + 1 for i, (k, _) in enumerate(rows) if k.startswith("STOR ")), len(rows))
                    results[name] = dict(rows[:at] + list(pasv.items()) + rows[at:])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _report_prefork(args, preforks)
    cpu = _machine()
    pool_text = (f"Run: `scripts/bench.py --pool-clients {args.pool_clients} --pool-mb {args.pool_mb}` on {cpu}; "
                 f"PassivePorts: a range of 4 ports.\n\n{table(pools)}")
    print()
    print(pool_text)
    if args.write_docs:
        write_docs(pool_text, POOL_START, POOL_END)
    if args.pool_only:
        return 0
    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    text = (f"Run: `scripts/bench.py --size {args.size} --sessions {args.sessions} --session-mb {args.session_mb}"
            f"{baseline}`"
            f" on {cpu}.\n\n{table(results)}\n\nUpload engine micro-benchmark (GB/s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in engines.items()))
    print()
    print(text)
    if args.write_docs:
        write_docs(text)
    return 0


def _machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"


def _report_prefork(args, preforks: dict[str, dict[str, float]]) -> int:
    text = (f"Run: `scripts/bench.py --prefork-count {args.prefork_count} --clients {args.clients}` on "
            f"{_machine()}, load average {os.getloadavg()[0]:.1f} at the end; the pool: StartServers and "
            f"MinSpareServers {PREFORK_SPARES}.\n\n{table(preforks)}")
    print()
    print(text)
    if args.write_docs:
        write_docs(text, PREFORK_START, PREFORK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
