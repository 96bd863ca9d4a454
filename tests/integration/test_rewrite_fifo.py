"""mod_rewrite's `fifo:` maps with a real map program on a real FIFO: the answers reach the command (side by side
with Debian's ProFTPD and its mod_rewrite, the same program on the same kind of FIFO), a silent program costs a
lookup its timeout and gives the default, and RewriteLock's file is what the sessions take turns on."""

from __future__ import annotations

import ftplib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, PASSWORDS, make_users, side_by_side, wait_until

# A map program as ProFTPD's documentation sketches one: the FIFO opened read-write, a key line read, its answer
# written back into the same FIFO, then a wait until the daemon has taken the answer (the FIFO's unread bytes no
# longer the answer's: the next key may follow at once). Keys starting with "quiet" get no answer at all.
MAP_PROGRAM = r"""
import fcntl, os, select, struct, sys, termios, time
fd = os.open(sys.argv[1], os.O_RDWR)
open(sys.argv[1] + ".ready", "w").close()
while True:
    select.select([fd], [], [])
    key = os.read(fd, 4096).decode().split("\n")[0]
    with open(sys.argv[1] + ".keys", "a") as f:
        f.write(key + "\n")
    if key.startswith("quiet"):
        continue
    answer = ("mapped-" + key + "\n").encode()
    os.write(fd, answer)
    # until the daemon has taken the answer (ProFTPD may look only after 5 s, and write its next key at once)
    while struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0] == len(answer):
        time.sleep(0.005)
"""

CONFIG = """LoadModule mod_rewrite.c
RewriteEngine on
RewriteLog {dir}/rewrite.log
RewriteLock {dir}/rewrite.lock
RewriteMap names fifo:{base}/map.fifo
RewriteCondition %m MKD
RewriteRule ^(.*)$ ${names:$1|default-$1}
DefaultRoot ~
"""


@pytest.fixture
def tmp_path(open_tmp_path):
    return open_tmp_path


class MapProgram:
    def __init__(self, base: Path):
        self.fifo = base / "map.fifo"
        os.mkfifo(self.fifo, 0o600)
        (base / "map.py").write_text(MAP_PROGRAM)
        self.proc = subprocess.Popen([sys.executable, str(base / "map.py"), str(self.fifo)])
        assert wait_until(lambda: Path(f"{self.fifo}.ready").exists(), 10)

    def keys(self) -> list[str]:
        path = Path(f"{self.fifo}.keys")
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def map_program(tmp_path):
    program = MapProgram(tmp_path)
    yield program
    program.stop()


def made(ftp: ftplib.FTP, name: str) -> str:
    return ftp.sendcmd(f"MKD {name}")


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="Debian's proftpd runs as root here")
def test_fifo_map_answers_reach_the_command_as_in_proftpd(tmp_path, map_program):
    make_users(tmp_path)

    def drive(port, run):
        with ftplib.FTP(timeout=20) as ftp:
            ftp.connect("127.0.0.1", port)
            ftp.login("alice", PASSWORDS["alice"])
            replies = [made(ftp, "alpha"), made(ftp, "beta")]
            for name in ("mapped-alpha", "mapped-beta"):      # (the same home for the next daemon)
                ftp.rmd(name)
            return replies
    ran = side_by_side(tmp_path, CONFIG, drive)
    assert ran["proftpy"] == ran["proftpd"] == ['257 "/mapped-alpha" - Directory successfully created',
                                                '257 "/mapped-beta" - Directory successfully created']
    assert map_program.keys() == ["alpha", "beta"] * 2
    assert "fifo map 'names' returned 'mapped-alpha'" in (tmp_path / "proftpy" / "rewrite.log").read_text()


@pytest.mark.slow
def test_a_silent_map_gives_the_default_after_its_timeout(ftpd, tmp_path, map_program):
    d = ftpd(CONFIG.replace("{base}", str(tmp_path)))
    ftp = d.login()
    started = time.monotonic()
    assert made(ftp, "quiet") == '257 "/default-quiet" - Directory successfully created'
    assert 4 < time.monotonic() - started < 8
    assert made(ftp, "after") == '257 "/mapped-after" - Directory successfully created'   # no stale line
    assert map_program.keys() == ["quiet", "after"]
    assert (d.dir / "rewrite.lock").exists()


def test_a_map_whose_fifo_cannot_be_opened_gives_the_default(ftpd, tmp_path):
    fifo = tmp_path / "map.fifo"
    os.mkfifo(fifo)
    d = ftpd(CONFIG.replace("{base}", str(tmp_path)))
    fifo.unlink()                                     # gone before the session opens it
    assert made(d.login(), "x") == '257 "/default-x" - Directory successfully created'
    assert "rewrite_open_fifo(): unable to open FIFO" in (d.dir / "rewrite.log").read_text()
