#!/usr/bin/env python3
"""proftpy benchmark (`make bench`): starts proftpy on loopback and measures

- RETR and STOR of one big file (1 GiB by default, `--size MiB`),
- sequential connect+USER+PASS+QUIT per second with 8 client processes,
- N concurrent sessions each downloading M MB (200 x 10 MB by default, bounded by a deadline),
- PASV+LIST latency (median of 50),
- private memory (USS) of the master and of one idle logged-in session (median of 20), with the kernel's
  same-page merging daemon off and, when run as root, on (proftpy's MemoryMerge; the peers do not opt in),
- the upload engine: os.splice (socket -> pipe -> file) against recv_into + write,
- start to listen: milliseconds from exec to the first accepted connection, in the foreground (`-n`) and as a
  daemon (the command returns once the daemon listens), median of 9 starts (`--start-only` measures just these).

`--baseline REV` measures proftpy as it was at git revision REV too (exported from this checkout), in the same run,
so a change is compared with the code before it on the same machine at the same moment.

Peers found on this machine (Debian's /usr/sbin/proftpd, vsftpd under --vsftpd PATH, pyftpdlib importable here) are
measured the same way in the same run, with the same SHA-512-crypt password hash, and proftpy/peer ratios printed.
Nothing is installed by this script. `--write-docs` replaces the results table in docs/performance.md.
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
    SOURCE = REPO                   # the proftpy tree a proftpy server runs from

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
        """) + textwrap.dedent(extra))
    return conf


class Proftpy(Server):
    def command(self) -> list[str]:
        return [sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(proftpd_style_conf(self, "proftpy"))]


class Baseline(Proftpy):
    """proftpy at another revision (`--baseline REV`), run from a tree exported into the bench directory."""


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

    def command(self) -> list[str]:
        conf = proftpd_style_conf(self, "proftpd", """\
            ServerType standalone
            DefaultServer on
            <IfModule mod_ident.c>
              IdentLookups off
            </IfModule>
            <IfModule mod_delay.c>
              DelayEngine off
            </IfModule>
            WtmpLog off
            MaxInstances 1000
            """)
        return [self.BIN, "-n", "-q", "-c", str(conf)]


PYFTPDLIB_SERVER = """\
import crypt, sys
from pyftpdlib.authorizers import DummyAuthorizer, AuthenticationFailed
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import MultiprocessFTPServer
port, passwd = int(sys.argv[1]), sys.argv[2]
name, hashed, uid, gid, _, home, _ = open(passwd).read().split(":")
class Auth(DummyAuthorizer):
    def validate_authentication(self, user, password, handler):
        if user != name or crypt.crypt(password, hashed) != hashed:
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


class Vsftpd(Server):
    BIN = ""

    def command(self) -> list[str]:
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
            pam_service_name=vsftpd
            background=NO
            """))
        return [self.BIN, str(conf)]


def available_servers(args) -> list[type[Server]]:
    servers: list[type[Server]] = [Proftpy] + ([Baseline] if args.baseline else [])
    if args.only:
        servers = []
    names = set(args.only.split(",")) if args.only else None
    candidates: list[type[Server]] = []
    if os.access(Proftpd.BIN, os.X_OK):
        candidates.append(Proftpd)
    if args.vsftpd and os.access(args.vsftpd, os.X_OK):
        Vsftpd.BIN = args.vsftpd
        candidates.append(Vsftpd)
    try:
        import pyftpdlib  # noqa: F401
        candidates.append(Pyftpdlib)
    except ImportError:
        pass
    if names:
        ours = [Proftpy, Baseline] if args.baseline else [Proftpy]
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


def _login_worker(port: int, until: float, out) -> None:
    count = 0
    while time.time() < until:
        try:
            ftp = login(port, 10)
            ftp.quit()
            count += 1
        except (OSError, ftplib.Error, EOFError):
            time.sleep(0.01)
    out.put(count)


def logins_per_second(port: int, clients: int, seconds: float) -> float:
    out = multiprocessing.Queue()
    until = time.time() + seconds
    procs = [multiprocessing.Process(target=_login_worker, args=(port, until, out)) for _ in range(clients)]
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


def uss_kb(pid: int) -> float:
    return psutil.Process(pid).memory_full_info().uss / 1024


def idle_session_uss(server: Server, count: int = 20, settle=None) -> float:
    before = {c.pid for c in psutil.Process(server.master).children(recursive=True)}
    clients = [login(server.port) for _ in range(count)]
    time.sleep(0.5)
    if settle:
        settle()
    kids = [c for c in psutil.Process(server.master).children(recursive=True) if c.pid not in before]
    values = [uss_kb(c.pid) for c in kids]
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
    """Wait for two more full scans of ksmd: a page is merged once it has been seen unchanged twice."""
    start = int((KSM / "full_scans").read_text())
    deadline = time.monotonic() + timeout
    while int((KSM / "full_scans").read_text()) < start + 2 and time.monotonic() < deadline:
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
    for i in range(10):
        make_file(home / f"f{i}.txt", 1000, block, (uid, gid))
    server = cls(cls.__name__.lower(), work, home=home)
    server.start()
    try:
        print(f"== {server.name}", flush=True)
        res["master USS (KB)"] = uss_kb(server.master)
        ksm = can_switch_ksm()
        with ksmd(False) if ksm else contextlib.nullcontext():
            res["idle session USS (KB)"] = idle_session_uss(server)
        if ksm:
            with ksmd(True):
                res["idle session USS, ksmd on (KB)"] = idle_session_uss(server, settle=ksm_settled)
        ftp = login(server.port, 300)
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
        res[f"RETR {args.size} MiB (GB/s)"] = statistics.median(retr)
        res[f"STOR {args.size} MiB (GB/s)"] = statistics.median(stor)
        ftp.quit()
        res["PASV+LIST median (ms)"] = pasv_list_latency(server.port)
        res[f"logins/s ({args.clients} clients)"] = logins_per_second(server.port, args.clients, args.seconds)
        took, mbs, total = concurrent_sessions(server.port, args.sessions, args.clients, args.timeout)
        res[f"{args.sessions} x {args.session_mb} MB: seconds"] = took
        res[f"{args.sessions} x {args.session_mb} MB: complete (%)"] = \
            100.0 * total / (args.sessions * (args.session_mb << 20))
        for key, value in res.items():
            print(f"  {key:<34} {value:12.2f}", flush=True)
    finally:
        server.stop()
    return res


def table(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    metrics = list(results[names[0]])
    head = ["metric"] + names + [f"proftpy/{n}" for n in names[1:]]
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


def write_docs(text: str) -> None:
    path = REPO / "docs" / "performance.md"
    doc = path.read_text() if path.exists() else f"# Performance\n\n{START}\n{END}\n"
    if START not in doc:
        doc += f"\n{START}\n{END}\n"
    before, rest = doc.split(START, 1)
    after = rest.split(END, 1)[1] if END in rest else ""
    path.write_text(f"{before}{START}\n{text}\n{END}{after}")


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
    ap.add_argument("--write-docs", action="store_true", help="replace the table in docs/performance.md")
    ap.add_argument("--start-only", action="store_true", help="measure how fast each server starts listening, only")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so servers stop, files go and the ksmd settings come back (ksmd())
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    base = Path(tempfile.mkdtemp(prefix="proftpy-bench-"))
    os.chmod(base, 0o755)
    try:
        if args.baseline:
            export_baseline(args.baseline, base)
        engines = {} if args.start_only else store_engines(min(args.size, 512) << 20, base)
        print("upload engine (loopback socket -> file, GB/s):",
              ", ".join(f"{k} {v:.2f}" for k, v in engines.items()), flush=True)
        results = {cls.__name__.lower(): measure(cls, args, base) for cls in available_servers(args)}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    cpu = f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"
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


if __name__ == "__main__":
    sys.exit(main())
