"""What the trace calls cost when tracing is off: the command path (Session.handle_line -> dispatch -> reply) of
this tree, against a copy of it with every `if trace.on: ...` line removed (a build without the calls).

    .venv/bin/python scripts/bench_trace.py [COMMANDS]

Each build runs in its own interpreter: a session on a socketpair (a thread drains the replies), the whole
module set, a configuration without Trace; `NOOP` and `PWD` after a login-free start (no fork, no network), the
best of 7 rounds. Prints microseconds per command for both builds. Numbers go to docs/performance.md.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRACE_LINE = re.compile(r"^\s*if trace\.on(?: and [^:]+)?: \S.*$")

CHILD = r"""
import os, socket, sys, threading, time
from proftpy import trace
from proftpy.master import Options, load_config
from proftpy.modules import loaded
from proftpy.net.connection import Connection
from proftpy.session import Session

n = int(sys.argv[1])
conf = sys.argv[2]
config = load_config(Options(conf))
mods = loaded()
a, b = socket.socketpair()
def drain():
    while b.recv(65536):
        pass
threading.Thread(target=drain, daemon=True).start()
conn = Connection(a, ("127.0.0.1", 21), ("127.0.0.1", 40000), {})
s = Session(conn, config.main, config, mods)
assert not trace.on
best = {}
for cmd in ("NOOP", "PWD"):
    for _ in range(15):
        t = time.perf_counter()
        for _ in range(n):
            s.handle_line(cmd)
        us = (time.perf_counter() - t) / n * 1e6
        best[cmd] = min(best.get(cmd, us), us)
print(" ".join(f"{k}={v:.3f}" for k, v in best.items()))
"""


def strip(tree: Path) -> int:
    """Remove the one-line trace calls from a copy of the package; returns how many."""
    removed = 0
    for path in tree.rglob("*.py"):
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not TRACE_LINE.match(line)]
        removed += len(lines) - len(kept)
        path.write_text("".join(kept))
    return removed


def run(pythonpath: Path, n: int, conf: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    return subprocess.run([sys.executable, "-c", CHILD, str(n), str(conf)], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        conf = tmp / "bench.conf"
        conf.write_text(f"ServerName bench\nPort 0\nScoreboardFile none\nSystemLog none\nDefaultAddress 127.0.0.1\n"
                        f"TransferLog none\nControlsEngine off\n")
        shutil.copytree(REPO / "proftpy", tmp / "stripped" / "proftpy")
        removed = strip(tmp / "stripped" / "proftpy")
        for round_ in range(3):
            with_calls = run(REPO, n, conf)
            without = run(tmp / "stripped", n, conf)
            print(f"round {round_ + 1}: with the trace calls (off): {with_calls}   "
                  f"without them ({removed} lines removed): {without}   (us per command)")


if __name__ == "__main__":
    main()
