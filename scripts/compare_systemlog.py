#!/usr/bin/env python3
"""The SystemLog lines of Debian's ProFTPD 1.3.8 and proftpy for the same session events, side by side.

A developer tool next to compare_proftpd.py (whose servers, configuration and client it reuses): each scenario
starts both daemons afresh on loopback with the scenario's extra configuration, drives one or more client
sessions, stops the daemons and prints each SystemLog with the time stamp and host cut off and the process name
and pid replaced by `NAME[pid]` (proftpy keeps its own name there; everything after it should match ProFTPD).

Scenarios: connect+QUIT, login and a download (DefaultRoot chroot), wrong password, unknown user,
MaxLoginAttempts exceeded, root login with RootLogin off, a `<Limit LOGIN>` denial, TimeoutLogin, TimeoutIdle,
client EOF, a login with Ratios on (mod_ratio's `Ratio:` line and, with `--level debug`, its debug lines), an
ftpshut refusal (ProFTPD's /etc/shutmsg is compiled in: its daemon runs in a private mount namespace whose /etc is a
copy, so no other ProFTPD on the machine sees the file); and mod_log_forensic (`forensic-*`: a wrong password,
MaxLoad with ModuleConfig, a successful login that writes nothing): after the SystemLog, the ForensicLogFile's
structure -- its markers, its header names in order, and the kinds of captured lines (`SystemLog:5`,
`TraceLog:7`...), each once -- since the captured debug and trace messages themselves are each daemon's own.

Usage (as root, from the repository):
    .venv/bin/python scripts/compare_systemlog.py [-k NAME]...
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_proftpd as cp  # noqa: E402

ROOT_PASSWORD = "root-pw"
PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \S+ (proftpd|proftpy)\[\d+\]")
NORMALISE = [
    (re.compile(r"\b(ProFTPD|proftpy) \d[\w.]*( \(\w+\))?( \(built [^)]*\))?"), "DAEMON VERSION"),
    (re.compile(r"\b\d{4,5}\b"), "N"),
    (re.compile(r"/tmp/compare-systemlog-\w+/(proftpd|proftpy)"), "BASE"),
]


FORENSIC = ("LoadModule mod_log_forensic.c\nTraceLog {dir}/trace.log\nTrace DEFAULT:0\n"
            "<IfModule mod_log_forensic.c>\nForensicLogEngine on\nForensicLogFile {dir}/forensic.log\n")
CAPTURED = re.compile(r"^\[(\w+):(\d+)[,\]]")


def write_auth_files(base: Path) -> None:
    """compare_proftpd's alice, plus a uid 0 account `root` for the RootLogin scenario."""
    from proftpy.auth.crypt import crypt_hash
    _write_alice(base)
    with open(base / "ftpd.passwd", "a") as f:
        f.write(f"root:{crypt_hash(ROOT_PASSWORD, 'sha512')}:0:0:root:{base}/home/root:/bin/sh\n")
        f.write(f"nologin:{crypt_hash(cp.PASSWORD, 'sha512')}:{cp.UID}:{cp.UID}::{base}/home/alice:/bin/false\n")


_write_alice = cp.write_auth_files
cp.write_auth_files = write_auth_files


def session(port: int, steps: list[str | float]) -> None:
    """One client: each str is a command line; a number sleeps that long and then reads what the server sent."""
    client = cp.Client(port)
    try:
        client.reply()
        for step in steps:
            if isinstance(step, str):
                client.step(step)
            else:
                time.sleep(step)
                client.reply()
    finally:
        client.close()


Scenario = tuple[str, str, Callable[[int], None]]


def scenarios() -> list[Scenario]:
    login = ["USER alice", "PASS " + cp.PASSWORD]
    return [
        ("connect-quit", "", lambda p: session(p, ["QUIT"])),
        ("login-retr", "", lambda p: session(p, [*login, "TYPE I", "PASV", "RETR file.txt", "QUIT"])),
        ("bad-password", "", lambda p: session(p, ["USER alice", "PASS wrong", "QUIT"])),
        ("unknown-user", "", lambda p: session(p, ["USER nosuch", "PASS x", "QUIT"])),
        ("max-attempts", "", lambda p: session(p, ["USER alice", "PASS a", "USER alice", "PASS b",
                                                   "USER alice", "PASS c", "NOOP"])),
        ("root-login", "", lambda p: session(p, ["USER root", "PASS " + ROOT_PASSWORD, "QUIT"])),
        ("root-login-bad-password", "", lambda p: session(p, ["USER root", "PASS wrong", "QUIT"])),
        ("limit-login", "<Limit LOGIN>\nDenyUser alice\n</Limit>\n",
         lambda p: session(p, [*login, "QUIT"])),
        ("timeout-login", "TimeoutLogin 1\n", lambda p: session(p, [2.5])),
        ("timeout-idle", "TimeoutIdle 1\n", lambda p: session(p, [*login, 2.5])),
        ("client-eof", "", lambda p: session(p, [*login])),
        ("ftpshut", "", lambda p: session(p, [0.2])),
        ("invalid-shell", "!RequireValidShell on\n", lambda p: session(p, ["USER nologin", "PASS " + cp.PASSWORD])),
        ("ftpusers", "!UseFtpUsers on\n", lambda p: session(p, [*login, "QUIT"])),
        ("ratio-login", "Ratios on\nUserRatio alice 2 1 0 0\n",
         lambda p: session(p, [*login, "TYPE I", "PASV", "RETR file.txt", "QUIT"])),
        ("forensic-bad-password", FORENSIC + "</IfModule>\n",
         lambda p: session(p, ["USER alice", "PASS wrong", "QUIT"])),
        ("forensic-maxload", FORENSIC + "ForensicLogCriteria ModuleConfig\n</IfModule>\nMaxLoad 0\n",
         lambda p: session(p, [])),
        ("forensic-login-ok", FORENSIC + "</IfModule>\n", lambda p: session(p, [*login, "QUIT"])),
        ("anonymous", "<Anonymous {base}/home/alice>\nUser alice\nGroup ftpusers\nUserAlias anonymous alice\n"
                      "</Anonymous>\n", lambda p: session(p, ["USER anonymous", "PASS me@example.com", "QUIT"])),
    ]


def normalise(line: str) -> str:
    m = PREFIX.match(line)
    if m:
        line = "NAME[pid]" + line[m.end():]
    for pattern, repl in NORMALISE:
        line = pattern.sub(repl, line)
    return line


def start_detached(server: cp.Server, argv: list[str], extra: str) -> None:
    """ProFTPD with -n writes its log lines to stderr instead of the SystemLog: start it as a daemon."""
    server.base.mkdir(parents=True, exist_ok=True)
    os.chmod(server.base, 0o755)
    write_auth_files(server.base)
    cp.build_tree(server.home)
    server.port = cp.free_port()
    conf = server.base / "server.conf"
    conf.write_text((cp.COMMON_CONF + extra).format(port=server.port, dir=server.base, base=server.base))
    subprocess.run(argv + ["-c", str(conf)], check=True, stdin=subprocess.DEVNULL)
    if not cp.wait_for_greeting(server.port, 15):     # one probe connection, as compare_proftpd.start makes
        raise SystemExit("proftpd did not start within 15 s")


def stop_detached(server: cp.Server) -> None:
    pid = 0
    deadline = time.monotonic() + 10
    while not pid and time.monotonic() < deadline:
        try:
            pid = int((server.base / "pid").read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while (server.base / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def run(name: str, server: cp.Server, argv: list[str], extra: str, drive: Callable[[int], None]) -> list[str]:
    """Start, drive, stop; the SystemLog normalised. A line `!Directive value` in `extra` replaces that
    directive's line in compare_proftpd's common configuration."""
    common = cp.COMMON_CONF
    for line in [x for x in extra.splitlines() if x.startswith("!")]:
        common = re.sub(rf"^{line[1:].split()[0]} .*$", line[1:], common, flags=re.M)
    extra = "\n".join(x for x in extra.splitlines() if not x.startswith("!")) + "\n"
    cp.COMMON_CONF, saved = common, cp.COMMON_CONF
    try:
        return _run(server, argv, extra, drive)
    finally:
        cp.COMMON_CONF = saved


def _run(server: cp.Server, argv: list[str], extra: str, drive: Callable[[int], None]) -> list[str]:
    detached = server.name == "proftpd"
    if detached:
        start_detached(server, argv, extra)
    else:
        cp.start(server, argv, extra)
    try:
        drive(server.port)
        time.sleep(0.5)                  # let the session write its last lines
    finally:
        stop_detached(server) if detached else server.stop()
    log = server.base / "system.log"
    lines = [normalise(x) for x in log.read_text(errors="replace").splitlines()] if log.exists() else []
    forensic = server.base / "forensic.log"
    return lines + (forensic_structure(forensic.read_text(errors="replace")) if forensic.exists() else [])


def forensic_structure(text: str) -> list[str]:
    """A ForensicLogFile as the two daemons can agree on it: each marker, the header names in order, and the
    kinds of captured lines, each once, in order of first appearance."""
    out: list[str] = ["FORENSIC (empty)"] if not text else []
    kinds: list[str] = []
    for line in text.splitlines():
        captured = CAPTURED.match(line)
        if line.startswith("-----"):
            if line.startswith("-----END") and kinds:
                out.append("  captured: " + " ".join(kinds))
                kinds = []
            out.append("FORENSIC " + line)
        elif captured:
            kind = f"{captured[1]}:{captured[2]}"
            if kind not in kinds:
                kinds.append(kind)
        elif ": " in line:
            out.append("  header " + line.split(": ", 1)[0])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", action="append", default=[], help="scenarios whose name contains this")
    parser.add_argument("--level", help="a SyslogLevel for both daemons (default: theirs, notice)")
    args = parser.parse_args()
    level = f"SyslogLevel {args.level}\n" if args.level else ""
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    tmp = Path(tempfile.mkdtemp(prefix="compare-systemlog-"))
    os.chmod(tmp, 0o755)
    etc = tmp / "etc"                    # the ProFTPD daemon's private /etc (ftpshut scenario)
    try:
        for name, extra, drive in scenarios():
            if args.select and not any(k in name for k in args.select):
                continue
            oracle_argv, env = [cp.PROFTPD], {}
            if name in ("ftpshut", "ftpusers"):
                shutil.rmtree(etc, ignore_errors=True)
                shutil.copytree("/etc", etc, symlinks=True)
                if name == "ftpshut":
                    subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {etc} /etc && ftpshut now"],
                                   check=True, stdout=subprocess.DEVNULL)
                else:
                    with open(etc / "ftpusers", "a") as f:
                        f.write(cp.USER + "\n")
                oracle_argv = ["unshare", "-m", "sh", "-c", f'mount --bind {etc} /etc && exec "$0" "$@"',
                               cp.PROFTPD]
                env = {"PROFTPY_SHUTMSG": str(etc / "shutmsg")} if name == "ftpshut" else {}
            left = run(name, cp.Server("proftpd", tmp / "proftpd"), oracle_argv, cp.PROFTPD_EXTRA + level + extra, drive)
            os.environ.update(env)
            try:
                right = run(name, cp.Server("proftpy", tmp / "proftpy"),
                            [sys.executable, "-m", "proftpy"], cp.PROFTPY_EXTRA + level + extra, drive)
            finally:
                for key in env:
                    del os.environ[key]
            for d in ("proftpd", "proftpy"):
                shutil.rmtree(tmp / d, ignore_errors=True)
            print(f"== {name}")
            print("-- proftpd")
            print("\n".join(left))
            print("-- proftpy")
            print("\n".join(right))
            print()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
