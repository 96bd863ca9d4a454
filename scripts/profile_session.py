#!/usr/bin/env python3
"""Where a session child spends its time: cProfile over many sessions (issue 18).

Starts proftpy on loopback with the bench's configuration (same user, SHA-512-crypt hash, DefaultRoot ~), wraps
each session child's `serve_connection` in cProfile (the stats go to a file the child opens before it chroots),
drives `--sessions` sessions of one kind and prints the merged profile:

    scripts/profile_session.py login --sessions 300     # connect, USER, PASS, QUIT
    scripts/profile_session.py list --sessions 20       # login, then 50 x PASV+LIST per session
    scripts/profile_session.py list --extra 'StatCacheEngine on\nStatCacheTable {work}/sc.tab'   # with more

The clock is the process's CPU time (a `sendall` that wakes the client is not the session's). `--callers` /
`--callees PATTERN` show who calls what, `--save FILE` keeps the merged statistics, and `PROFILE_MASTER=FILE`
profiles the master's loop instead. Only for profiling (cProfile's own overhead roughly triples what it
measures); nothing of it is used by the daemon.
"""

from __future__ import annotations

import argparse
import cProfile
import ftplib
import marshal
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def serve(outdir: str, argv: list[str]) -> int:
    """The server side: proftpy's cli with serve_connection profiled in every child."""
    from proftpy import master
    from proftpy.cli import main

    real = master.serve_connection

    def profiled(*args, **kwargs):
        if os.environ.get("PROFILE_MASTER"):        # the child inherited the master's profiler: one at a time
            return real(*args, **kwargs)
        out = open(os.path.join(outdir, f"{os.getpid()}.prof"), "wb")   # before chroot/setuid
        prof = cProfile.Profile(time.process_time)   # CPU: a sendall that wakes the client is not ours
        try:
            return prof.runcall(real, *args, **kwargs)
        finally:
            prof.create_stats()
            marshal.dump(prof.stats, out)
            out.close()

    master.serve_connection = profiled
    if os.environ.get("PROFILE_MASTER"):            # the master's side instead: its whole serve loop
        serve_loop = master.Master.serve

        def profiled_serve(self):
            prof = cProfile.Profile(time.process_time)
            try:
                return prof.runcall(serve_loop, self)
            finally:
                if os.getpid() == self_pid:
                    prof.dump_stats(os.environ["PROFILE_MASTER"])

        self_pid = os.getpid()
        master.Master.serve = profiled_serve
    return main(argv)


def drive(kind: str, port: int, sessions: int) -> float:
    import bench
    start = time.perf_counter()
    for _ in range(sessions):
        ftp = bench.login(port)
        if kind == "list":
            for _ in range(50):
                ftp.retrlines("LIST", lambda line: None)
        ftp.quit()
    return time.perf_counter() - start


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        return serve(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["login", "list"])
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--save", help="also write the merged stats to this file")
    ap.add_argument("--callers", help="print the callers of functions matching this")
    ap.add_argument("--callees", help="print what functions matching this call")
    ap.add_argument("--extra", default="", help="configuration lines added (`{work}`: the work directory), e.g. "
                    "'StatCacheEngine on\\nStatCacheTable {work}/statcache.tab'")
    args = ap.parse_args()
    import bench
    base = Path(tempfile.mkdtemp(prefix="proftpy-prof-"))
    os.chmod(base, 0o755)
    prof_dir = base / "prof"
    prof_dir.mkdir()
    os.chmod(prof_dir, 0o777)
    home, uid, gid = bench.make_user(base)
    bench.make_listed_files(home, os.urandom(1000), (uid, gid))
    server = bench.Server("proftpy", base)
    server.port = bench.free_port()
    extra = args.extra.replace("\\n", "\n").replace("{work}", str(server.work))
    conf = bench.proftpd_style_conf(server, "proftpy", extra + "\n" if extra else "")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(prof_dir), "-n", "-q", "-c", str(conf)],
                            cwd=base, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ftplib.FTP().connect("127.0.0.1", server.port, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(0.3)
        for f in prof_dir.iterdir():
            f.unlink()
        took = drive(args.kind, server.port, args.sessions)
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(10)
    files = [str(f) for f in prof_dir.iterdir() if f.stat().st_size]
    if os.environ.get("PROFILE_MASTER"):
        print(f"master profile in {os.environ['PROFILE_MASTER']} ({took / args.sessions * 1000:.2f} ms wall per "
              f"session, client side)")
        return 0
    if args.save:
        merged = pstats.Stats(files[0])
        for f in files[1:]:
            merged.add(f)
        merged.dump_stats(args.save)
    stats = pstats.Stats(files[0])
    for f in files[1:]:
        stats.add(f)
    print(f"{len(files)} sessions profiled, {took / args.sessions * 1000:.2f} ms wall per session (client side)")
    print(f"profiled time per session: {stats.total_tt / len(files) * 1000:.3f} ms")
    stats.files = []            # no header line per file
    stats.sort_stats(args.sort).print_stats(args.top)
    if args.callers:
        stats.print_callers(args.callers)
    if args.callees:
        stats.print_callees(args.callees)
    return 0


if __name__ == "__main__":
    sys.exit(main())
