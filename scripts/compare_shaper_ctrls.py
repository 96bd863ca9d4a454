#!/usr/bin/env python3
"""`ftpdctl shaper info|all|sess` against Debian's ProFTPD 1.3.8 (its ftpdctl, mod_shaper.so) and proftpy (its
ftpdctl), with two sessions of alice logged in to each; prints both outputs (pids replaced by PID) and their diff.

A developer tool, run as root from the repository (`.venv/bin/python scripts/compare_shaper_ctrls.py`); the
interpreter running it starts proftpy, so a worktree's PYTHONPATH holds. Expected differences: proftpy's
ftpdctl exits 1 on a refused request (ProFTPD's 0), and ProFTPD's master drops every session of another user
from its ShaperTable at its first scrub, 60 s after the start (kill(pid, 0) fails with EPERM as the master runs
as `User`; its `shaper sess` then says `No such file or directory`); proftpy keeps live sessions.
"""
from __future__ import annotations

import difflib
import ftplib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proftpy.auth.crypt import crypt_hash  # noqa: E402

PROFTPD, FTPDCTL = "/usr/sbin/proftpd", "/usr/bin/ftpdctl"
PASSWORD, UID = "alice-pw", 2300
CONF = """\
ServerName "cmp"
ServerType standalone
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
User nobody
Group nogroup
PidFile {dir}/{who}.pid
ScoreboardFile {dir}/{who}.scoreboard
AuthOrder mod_auth_file.c
AuthUserFile {dir}/passwd
AuthGroupFile {dir}/group
RequireValidShell off
UseFtpUsers off
DelayEngine off
WtmpLog off
{extra}ControlsEngine on
ControlsSocket {dir}/{who}.sock
ControlsACLs all allow user root
ShaperEngine on
ShaperTable {dir}/{who}.tab
ShaperLog {dir}/{who}.log
ShaperAll rate 2048 shares 4
ShaperControlsACLs all,info,sess allow user root
"""
REQUESTS = (["info"], ["sess", "user", "alice", "downshares", "+2"], ["sess", "user", "alice", "upshares", "-3"],
            ["info"], ["sess", "user", "alice", "shares", "-9"], ["sess", "user", "nobody", "shares", "+1"],
            ["sess", "host", "127.0.0.1", "priority", "2"], ["sess", "class", "x", "shares", "0"],
            ["sess", "user", "alice", "shares", "5"], ["sess", "user"], ["sess", "bad", "x", "shares", "+1"],
            ["all", "rate", "1000", "downshares", "12", "priority", "3"], ["all", "uprate", "x", "shares", "0"],
            ["all", "rate", "-1"], ["all", "foo", "1"], ["all"], ["info"], [], ["nope"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(who: str, base: Path, daemon: list[str], ctl: list[str]) -> list[str]:
    port = free_port()
    extra = "ModulePath /usr/lib/proftpd\nLoadModule mod_ctrls_admin.c\nLoadModule mod_shaper.c\n" \
        if who == "proftpd" else ""
    conf = base / f"{who}.conf"
    conf.write_text(CONF.format(port=port, dir=base, who=who, extra=extra))
    proc = subprocess.Popen([*daemon, "-n", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    out: list[str] = []
    try:
        sock = base / f"{who}.sock"
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        sessions = []
        for _ in range(2):
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", port, timeout=10)
            ftp.login("alice", PASSWORD)
            sessions.append(ftp)
        time.sleep(0.5)
        for args in REQUESTS:
            r = subprocess.run([*ctl, "-s", str(sock), "shaper", *args], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, PYTHONPATH=str(REPO)))
            out.append("$ ftpdctl shaper " + " ".join(args))
            out += [re.sub(r"^ *\d+(?= +\d+ )|pid \d+", "PID", line.removeprefix("ftpdctl: "))
                    for line in r.stdout.splitlines()]
            out.append(f"(exit {r.returncode})")
        for ftp in sessions:
            ftp.quit()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return out


def main() -> int:
    if os.geteuid() != 0 or not os.path.exists(FTPDCTL):
        print("run as root, with Debian's proftpd-basic installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.chmod(base, 0o755)
        home = base / "home" / "alice"
        home.mkdir(parents=True)
        os.chown(home, UID, UID)
        (base / "passwd").write_text(f"alice:{crypt_hash(PASSWORD)}:{UID}:{UID}::{home}:/bin/sh\n")
        (base / "group").write_text(f"ftpusers:x:{UID}:alice\n")
        for name in ("passwd", "group"):
            os.chmod(base / name, 0o600)
        theirs = run("proftpd", base, [PROFTPD], [FTPDCTL])
        ours = run("proftpy", base, [sys.executable, "-m", "proftpy"],
                   [sys.executable, "-m", "proftpy.tools.ftpdctl"])
    sys.stdout.writelines(difflib.unified_diff([line + "\n" for line in theirs], [line + "\n" for line in ours],
                                               "proftpd", "proftpy", n=100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
