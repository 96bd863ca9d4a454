#!/usr/bin/env python3
"""Can a client tell an unknown user, a wrong password and a right one apart by how long the server takes?

Starts proftpy on loopback (the `make bench` configuration: AuthUserFile with a SHA-512-crypt hash, DefaultRoot ~),
warms mod_delay's table up, then makes `--attempts` login attempts of each kind in random order, one per
connection, timing from sending USER to the reply to PASS (what an attacker sees). Prints the distributions and,
for each pair of kinds, the two-sample Kolmogorov-Smirnov statistic with its p-value and the Mann-Whitney U
p-value: a large p-value means the two kinds cannot be told apart from these samples. It does the same with
`DelayEngine off` for comparison. `--write-docs` puts the result in docs/ban.md.

Run as root (the sessions chroot and change user, as in production). Nothing is installed.
"""

from __future__ import annotations

import argparse
import ftplib
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "scripts"))
from bench import PASSWORD, USER, free_port, make_user  # noqa: E402  (the bench's user, hash and ports)

KINDS = ("unknown user", "wrong password", "right password")
START, END = "<!-- delay-timing:start -->", "<!-- delay-timing:end -->"


def start_server(work: Path, delay: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if not (work / "home").exists():
        make_user(work)
    conf = work / "proftpy.conf"
    conf.write_text(f"""ServerName "timing"
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
UseReverseDNS off
PidFile {work}/proftpy.pid
ScoreboardFile {work}/proftpy.scoreboard
SystemLog {work}/system.log
AuthOrder mod_auth_file.c
AuthUserFile {work}/ftpd.passwd
AuthGroupFile {work}/ftpd.group
RequireValidShell off
UseFtpUsers off
DefaultRoot ~
TransferLog none
DelayEngine {'on' if delay else 'off'}
DelayTable {work}/proftpy.delay
""")
    proc = subprocess.Popen([sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(conf)], cwd=work,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    deadline = time.monotonic() + 15
    while not (work / "proftpy.pid").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("proftpy did not start")
        time.sleep(0.05)
    return proc, port


def attempt(port: int, kind: str) -> float:
    """Seconds from sending USER to the reply to PASS."""
    ftp = ftplib.FTP(timeout=30)
    ftp.connect("127.0.0.1", port)
    user = "nosuchuser" if kind == "unknown user" else USER
    password = PASSWORD if kind == "right password" else "not-the-password"
    start = time.perf_counter()
    ftp.sendcmd(f"USER {user}")
    try:
        ftp.sendcmd(f"PASS {password}")
    except ftplib.error_perm:
        pass
    took = time.perf_counter() - start
    ftp.close()
    return took


def ks_two_sample(a: list[float], b: list[float]) -> tuple[float, float]:
    """The Kolmogorov-Smirnov statistic D and its asymptotic p-value (Smirnov's series)."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] <= x:
            i += 1
        while j < len(b) and b[j] <= x:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    n = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def mann_whitney(a: list[float], b: list[float]) -> float:
    """The two-sided p-value of the Mann-Whitney U test (normal approximation with tie correction)."""
    values = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(values)
    i = 0
    ties = 0.0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1][0] == values[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    n1, n2 = len(a), len(b)
    r1 = sum(r for r, (_, g) in zip(ranks, values) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (abs(u - mu) - 0.5) / sigma if sigma else 0.0
    return math.erfc(z / math.sqrt(2))


def measure(delay: bool, attempts: int, warmup: int) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="proftpy-delay-"))
    os.chmod(work, 0o755)
    proc, port = start_server(work, delay)
    try:
        for _ in range(warmup):
            attempt(port, random.choice(KINDS))
        plan = [k for k in KINDS for _ in range(attempts)]
        random.shuffle(plan)
        times: dict[str, list[float]] = {k: [] for k in KINDS}
        for kind in plan:
            times[kind].append(attempt(port, kind))
        return times
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def report(title: str, times: dict[str, list[float]]) -> str:
    rows = [f"**{title}**", "", "| attempt | n | median (ms) | mean (ms) | p10 (ms) | p90 (ms) | stdev (ms) |",
            "|---|---|---|---|---|---|---|"]
    for kind, ts in times.items():
        q = statistics.quantiles(ts, n=10)
        rows.append(f"| {kind} | {len(ts)} | {statistics.median(ts) * 1e3:.2f} | {statistics.mean(ts) * 1e3:.2f} | "
                    f"{q[0] * 1e3:.2f} | {q[-1] * 1e3:.2f} | {statistics.stdev(ts) * 1e3:.2f} |")
    rows += ["", "| pair | KS D | KS p | Mann-Whitney p |", "|---|---|---|---|"]
    kinds = list(times)
    for x in range(len(kinds)):
        for y in range(x + 1, len(kinds)):
            d, p = ks_two_sample(times[kinds[x]], times[kinds[y]])
            rows.append(f"| {kinds[x]} / {kinds[y]} | {d:.3f} | {p:.3g} | "
                        f"{mann_whitney(times[kinds[x]], times[kinds[y]]):.3g} |")
    return "\n".join(rows)


def write_docs(text: str) -> None:
    path = REPO / "docs" / "ban.md"
    doc = path.read_text()
    before, rest = doc.split(START, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{START}\n{text}\n{END}{after}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attempts", type=int, default=300, help="attempts of each kind (default 300)")
    ap.add_argument("--warmup", type=int, default=60, help="attempts before measuring (default 60)")
    ap.add_argument("--write-docs", action="store_true", help="put the result in docs/ban.md")
    args = ap.parse_args()
    on = measure(True, args.attempts, args.warmup)
    off = measure(False, args.attempts, args.warmup)
    text = (f"Run: `scripts/delay_timing.py --attempts {args.attempts} --warmup {args.warmup}` on "
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}, "
            f"{'root' if os.geteuid() == 0 else 'not root'}.\n\n"
            + report("DelayEngine on (the default)", on) + "\n\n" + report("DelayEngine off", off))
    print(text)
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
