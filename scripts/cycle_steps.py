#!/usr/bin/env python3
"""Where a PASV+LIST cycle's time goes, step by step, against ProFTPD (issue 18, "Listing path, sixth pass").

Starts proftpy and Debian's proftpd with the bench's configuration (same user, same 10-file directory), logs in
to both and runs rounds of 100 cycles of what ftplib's `retrlines("LIST")` does, the servers taking turns, timing
each step on the client:

    TYPE A | PASV | connect (the data connection) | LIST -> 150 | 150 -> end of data | end of data -> 226

and prints the median of each step per server. `--rounds N` (default 8); `--python PATH` adds proftpy on
another interpreter (which must have proftpy's dependencies). Only for measuring: nothing of it is
used by the daemon or the bench.
"""

from __future__ import annotations

import argparse
import ftplib
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

STEPS = ("TYPE A", "PASV", "connect", "LIST -> 150", "150 -> end of data", "end of data -> 226", "cycle")


def cycle(ftp: ftplib.FTP) -> tuple[float, ...]:
    """One TYPE A, PASV, LIST with its data read to the end; the seconds of each step and of the whole."""
    marks = [time.perf_counter()]
    ftp.voidcmd("TYPE A")
    marks.append(time.perf_counter())
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))
    marks.append(time.perf_counter())
    with socket.create_connection((host, port), 10) as data:
        marks.append(time.perf_counter())
        ftp.putcmd("LIST")
        if not ftp.getresp().startswith("150"):
            raise RuntimeError("LIST did not open its data connection")
        marks.append(time.perf_counter())
        while data.recv(65536):
            pass
        marks.append(time.perf_counter())
    ftp.voidresp()
    marks.append(time.perf_counter())
    steps = [b - a for a, b in zip(marks, marks[1:])]
    return (*steps, marks[-1] - marks[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--python", action="append", metavar="PATH", help="also proftpy on this interpreter")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cycle-steps-"))
    os.chmod(base, 0o755)
    servers = []
    try:
        block = os.urandom(1000)
        for cls in (bench.Proftpy, *(bench.on_interpreter(p) for p in args.python or ()), bench.Proftpd):
            work = base / cls.__name__.lower()
            work.mkdir()
            home, uid, gid = bench.make_user(work)
            bench.make_listed_files(home, block, (uid, gid))
            server = cls(cls.__name__.lower(), work, home=home)
            server.start()
            servers.append(server)
        clients = {s.name: bench.login(s.port) for s in servers}
        times: dict[str, list[tuple[float, ...]]] = {s.name: [] for s in servers}
        for _ in range(args.rounds):
            for s in servers:
                times[s.name].extend(cycle(clients[s.name]) for _ in range(100))
        print("µs per step (median) | " + " | ".join(STEPS))
        for name, rows in times.items():
            print(f"{name} | " + " | ".join(f"{statistics.median(col) * 1e6:.0f}" for col in zip(*rows)))
        for ftp in clients.values():
            ftp.quit()
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
