"""mod_log_forensic: a session's log messages of every level, kept in memory and written to ForensicLogFile only
when a criterion is met (a failed login, a module's policy, an untimely death)."""

from __future__ import annotations

import ftplib
import os
import re
import signal

import pytest

from conftest import (AUTH_CONFIG, BASE_CONFIG, PASSWORDS, Daemon, fill, fork_master, free_port, make_users,
                      refused_config, wait_until)
from proftpy.module import Module, ModuleSet
from proftpy.modules import MODULES
from proftpy.scoreboard import Scoreboard

FORENSIC = "ForensicLogEngine on\nForensicLogFile {dir}/forensic.log\n"
TRACED = "TraceLog {dir}/trace.log\nTrace DEFAULT:0\n"
HEADERS = ["Client-Address", "Server-Address", "Elapsed", "Protocol", "User", "UID", "GID", "UNIQUE_ID",
           "Raw-Bytes-In", "Raw-Bytes-Out", "Total-Bytes-In", "Total-Bytes-Out", "Total-Files-In", "Total-Files-Out"]
BLOCK = re.compile(r"-----BEGIN (.+) FORENSICS-----\n(.*?)\n\n(.*?)-----END \1 FORENSICS-----\n", re.S)


def blocks(d: Daemon) -> list[tuple[str, dict[str, str], list[str]]]:
    """(criterion marker, headers, captured lines) of each block written."""
    path = d.dir / "forensic.log"
    text = path.read_text() if path.exists() else ""
    found = BLOCK.findall(text)
    assert "".join(m.group(0) for m in BLOCK.finditer(text)) == text, text    # nothing outside the blocks
    return [(marker, dict(line.split(": ", 1) for line in head.splitlines()), lines.splitlines())
            for marker, head, lines in found]


def failed_login(d: Daemon, password: str = "wrong password") -> None:
    ftp = d.connect()
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp.login("alice", password)
    ftp.quit()


def test_a_failed_login_writes_one_block_with_what_the_regular_logs_left_out(ftpd):
    # the <Limit LOGIN> refusal is a debug line
    d = ftpd(TRACED + FORENSIC + "<Limit LOGIN>\nDenyUser alice\n</Limit>\n"
             'LogFormat short "%h %m %s"\nExtendedLog {dir}/ext.log ALL short\n')
    failed_login(d, PASSWORDS["alice"])
    assert wait_until(lambda: blocks(d), 5)
    [(marker, head, lines)] = blocks(d)
    assert marker == "FAILED LOGIN"
    assert list(head) == HEADERS
    assert head["Client-Address"] == "127.0.0.1" and head["Server-Address"] == f"127.0.0.1:{d.port}"
    assert head["Protocol"] == "ftp" and head["User"] == "alice" and head["UID"] == str(os.geteuid())
    assert int(head["Raw-Bytes-Out"]) > 0 and head["Total-Files-In"] == "0"
    kinds = {re.match(r"\[(\w+):\d+\] ", line).group(1) for line in lines}
    assert kinds == {"SystemLog", "TraceLog", "ExtendedLog"}, lines
    debug = [line for line in lines
             if line.startswith("[SystemLog:7] ") and "alice: Limit access denies login" in line]
    assert debug and re.search(r" proftpy\[\d+\] 127\.0\.0\.1 \(127\.0\.0\.1\[127\.0\.0\.1\]\): ", debug[0])
    assert any(line.startswith("[SystemLog:6] ") and line.endswith("FTP session opened.") for line in lines)
    assert any(line.startswith("[SystemLog:5] ") and "USER alice (Login failed): Limit access denies login" in line
               for line in lines)
    assert any(line.startswith("[TraceLog:5] ") and "<command:5>: received command 'PASS (hidden)'" in line
               for line in lines)
    assert any(line.startswith("[ExtendedLog:0] 127.0.0.1 USER 331") for line in lines)
    # the regular logs wrote what their levels say, no more
    assert (d.dir / "trace.log").read_text() == ""
    assert "alice: Limit access denies login" not in d.log() and "FTP session opened." not in d.log()
    assert "USER alice (Login failed): Limit access denies login" in d.log()


def test_a_successful_session_writes_nothing(ftpd):
    d = ftpd(TRACED + FORENSIC)
    ftp = d.login()
    ftp.nlst()
    ftp.quit()
    assert wait_until(lambda: "FTP session closed." in (d.dir / "trace.log").read_text() or True)
    assert (d.dir / "forensic.log").exists()                # opened at the session's start (0640), left empty
    assert (d.dir / "forensic.log").read_text() == ""
    assert oct((d.dir / "forensic.log").stat().st_mode & 0o777) == "0o640"


def test_criteria_without_failed_login_write_nothing_for_one(ftpd):
    d = ftpd(FORENSIC + "ForensicLogCriteria UntimelyDeath ModuleConfig\n")
    failed_login(d)
    assert wait_until(lambda: "Login failed" in d.log())
    assert blocks(d) == []


def test_each_failed_login_writes_what_came_since_the_last_block(ftpd):
    d = ftpd(FORENSIC + "SyslogLevel info\n")
    ftp = d.connect()
    for _ in range(2):
        with pytest.raises(ftplib.error_perm, match="^530"):
            ftp.login("alice", "wrong")
    ftp.quit()
    assert wait_until(lambda: len(blocks(d)) == 2, 5)
    first, second = blocks(d)
    assert any("FTP session opened." in line for line in first[2])
    assert not any("FTP session opened." in line for line in second[2])


def test_the_attempt_that_exceeds_max_login_attempts_writes_its_block_too(ftpd):
    d = ftpd(FORENSIC + "MaxLoginAttempts 1\n")
    ftp = d.connect()
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp.login("alice", "wrong")
    assert wait_until(lambda: blocks(d), 5)
    [(marker, head, lines)] = blocks(d)
    assert marker == "FAILED LOGIN" and head["User"] == "alice"
    assert any("Maximum login attempts (1) exceeded" in line for line in lines)


def test_a_session_refused_by_max_load_writes_a_module_config_block(ftpd):
    d = ftpd(FORENSIC + "ForensicLogCriteria ModuleConfig\nMaxLoad 0\n")
    ftp = ftplib.FTP()
    with pytest.raises(ftplib.error_temp, match="^421"):
        ftp.connect("127.0.0.1", d.port, timeout=10)
    assert wait_until(lambda: blocks(d), 5)
    [(marker, head, lines)] = blocks(d)
    assert marker == "MODULE CONFIG" and "User" not in head
    assert any(line.startswith("[SystemLog:6] ") and "MaxLoad (0.00) reached" in line for line in lines)


def test_max_load_writes_nothing_under_the_default_criteria(ftpd):
    d = ftpd(FORENSIC + "SyslogLevel info\nMaxLoad 0\n")
    with pytest.raises(ftplib.error_temp, match="^421"):
        ftplib.FTP().connect("127.0.0.1", d.port, timeout=10)
    assert wait_until(lambda: "MaxLoad (0.00) reached" in d.log())
    assert blocks(d) == []


def test_a_session_killed_by_a_signal_writes_an_untimely_death_block(ftpd):
    d = ftpd(FORENSIC)
    ftp = d.login()

    def session_pid() -> int | None:
        with Scoreboard.open(str(d.dir / "proftpy.scoreboard"), readonly=True) as sb:
            return next((e.pid for e in sb.entries() if e.user == "alice"), None)
    assert wait_until(lambda: session_pid() is not None)
    os.kill(session_pid(), signal.SIGTERM)
    assert wait_until(lambda: blocks(d), 5)
    [(marker, head, lines)] = blocks(d)
    assert marker == "UNTIMELY DEATH" and head["User"] == "alice"
    assert any("USER alice: Login successful." in line for line in lines)
    ftp.close()


def test_the_buffer_keeps_the_latest_messages_only(ftpd):
    d = ftpd(TRACED + FORENSIC + "ForensicLogBufferSize 6\n")
    failed_login(d)
    assert wait_until(lambda: blocks(d), 5)
    [(_, _, lines)] = blocks(d)
    assert len(lines) == 6
    assert any("USER alice (Login failed): Incorrect password" in line for line in lines)


def test_capture_leaves_out_the_kinds_not_named(ftpd):
    d = ftpd(TRACED + FORENSIC + "ForensicLogCapture SystemLog\nSyslogLevel debug\n")
    failed_login(d)
    assert wait_until(lambda: blocks(d), 5)
    [(_, _, lines)] = blocks(d)
    assert lines and all(line.startswith("[SystemLog:") for line in lines)


def test_a_log_file_in_a_world_writable_directory_is_refused_and_the_session_goes_on(ftpd, tmp_path):
    (tmp_path / "open").mkdir(mode=0o777)
    os.chmod(tmp_path / "open", 0o777)
    d = ftpd("ForensicLogEngine on\nForensicLogFile {dir}/open/forensic.log\nSyslogLevel info\n")
    failed_login(d)
    assert wait_until(lambda: "unable to open ForensicLogFile" in d.log())
    assert "world-writable" in d.log() and not (tmp_path / "open" / "forensic.log").exists()


@pytest.mark.parametrize("line, message", [
    ("ForensicLogEngine maybe", "expected Boolean parameter"),
    ("ForensicLogFile forensic.log", "is not an absolute path"),
    ("ForensicLogBufferSize 0", "size must be greater than zero"),
    ("ForensicLogBufferSize many", "badly formatted number: many"),
    ("ForensicLogCapture SystemLog wtmp", "unknown log type: wtmp"),
    ("ForensicLogCriteria FailedLogin Crash", "unknown criterion: Crash"),
    ("ForensicLogCriteria", "wrong number of parameters"),
])
def test_bad_directives_are_refused_with_file_and_line(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert "t.conf:2:" in err and message in err, err


# -- an exception that ends the session (a test module whose session start fails) --------------------------------------
def _explode(session) -> None:
    raise RuntimeError("test module: session start failed")


def test_an_exception_ending_the_session_writes_an_untimely_death_block(tmp_path):
    d = Daemon(dir=tmp_path, port=free_port(), conf=tmp_path / "proftpy.conf")
    d.users = make_users(tmp_path)
    os.chmod(tmp_path, 0o755)
    d.conf.write_text(fill(FORENSIC + "SyslogLevel info\n" + BASE_CONFIG + AUTH_CONFIG,
                           dict(port=d.port, dir=tmp_path, host="127.0.0.1", ipv6="off")))
    pid = fork_master(d, ModuleSet(MODULES + [Module("mod_explode_test.c", session_init=_explode)]))
    try:
        with pytest.raises((EOFError, OSError)):
            ftplib.FTP().connect("127.0.0.1", d.port, timeout=10)
        assert wait_until(lambda: blocks(d), 5)
        [(marker, head, lines)] = blocks(d)
        assert marker == "UNTIMELY DEATH" and "User" not in head
        assert wait_until(lambda: "session start failed" in d.log())
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
