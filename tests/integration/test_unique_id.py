"""mod_unique_id: every session's UNIQUE_ID (environment variable and note), laid out as Debian's ProFTPD 1.3.8
lays it out (both servers run side by side; each ID is decoded: time, client address, process id)."""

from __future__ import annotations

import base64
import ftplib
import struct
import time

from conftest import PASSWORDS, make_users, side_by_side

CONFIG = ('LoadModule mod_unique_id.c\nLogFormat uid "%{UNIQUE_ID}e %{note:UNIQUE_ID} %P %a"\n'
          "ExtendedLog {dir}/ext.log ALL uid\n")


def sessions(port: int, run) -> list[list[str]]:
    for _ in range(2):
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", port, timeout=10)
        ftp.login("alice", PASSWORDS["alice"])
        ftp.quit()
    time.sleep(0.3)
    return [line.split() for line in (run / "ext.log").read_text().splitlines()]


def test_unique_ids_are_laid_out_as_proftpds(open_tmp_path):
    make_users(open_tmp_path)
    started = time.time()
    results = side_by_side(open_tmp_path, CONFIG, sessions)
    for name, lines in results.items():
        by_pid = {}
        for env, note, pid, addr in lines:
            assert env == note and len(env) == 24, (name, lines)
            raw = base64.b64decode(env)
            seconds, _host, client, packed_pid, _tens = struct.unpack("!I4s4sIH", raw)
            assert abs(seconds - started) < 60 and client == bytes([127, 0, 0, 1]) and addr == "127.0.0.1"
            assert packed_pid == int(pid), (name, env, pid)
            by_pid.setdefault(pid, set()).add(env)
        assert len(by_pid) == 2 and all(len(ids) == 1 for ids in by_pid.values()), (name, by_pid)


def test_unique_id_engine_off_sets_none(ftpd):
    d = ftpd('UniqueIDEngine off\nLogFormat uid "[%{UNIQUE_ID}e] [%{note:UNIQUE_ID}]"\n'
             "ExtendedLog {dir}/ext.log ALL uid\n")
    d.login().quit()
    time.sleep(0.3)
    assert set((d.dir / "ext.log").read_text().splitlines()) == {"[] []"}
