"""ftptop: rows and filters as pure functions, and -b -n 1 output from a real scoreboard file."""
import time

import pytest

from proftpy.scoreboard import Scoreboard
from proftpy.tools import ftptop
from tests.unit.test_ftpwho import MASTER_START, NOW, clock, fill

HEAD = [f"ftptop/1.0: {time.ctime(NOW)}, up for 1 day,  2 hrs 05 min",
        "4 Total FTP Sessions: 1 downloading, 1 uploading, 1 idle",
        "",
        "PID   S USER     CLIENT               SERVER          TIME COMMAND              "]
ALICE = "1001  I alice    192.0.2.1            10.0.0.1:21     2m5s   idle               "
BOB = "1002  D bob      192.0.2.2            10.0.0.1:21     1h6m   RETR big.iso       "
CAROL = "1003  U carol    2001:db8::3          10.0.0.1:21     1m0s   STOR up.bin        "
ANON = "1004  A (none)   198.51.100.4         10.0.0.2:21     0m5s   (authenticating)   "


@pytest.fixture
def board(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    path = tmp_path / "sb"
    sb = Scoreboard.create(str(path), master_pid=999, master_start=MASTER_START, slots=8)
    fill(sb)
    yield str(path)
    sb.close()


def batch(capsys, *argv):
    code = ftptop.main(["-b", "-n", "1", *argv], clock=clock, sleep=lambda s: None)
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return out.split("\n")[:-1]


def test_batch_reg_view(board, capsys):
    assert batch(capsys, "-f", board) == HEAD + [ALICE, BOB, CAROL, ANON]


@pytest.mark.parametrize("flags,rows", [
    (["-D"], [BOB]),
    (["-U"], [CAROL]),
    (["-I"], [ALICE]),
    (["-A"], [ANON]),
    (["-i"], [BOB, CAROL, ANON]),
    (["-a"], [ALICE, BOB, CAROL]),
    (["-D", "-U"], [BOB, CAROL]),
    (["-S", "Main"], [ALICE, BOB, CAROL]),
])
def test_batch_filters(board, capsys, flags, rows):
    out = batch(capsys, "-f", board, *flags)
    assert out[4:] == rows
    if "-S" not in flags:
        assert out[1] == HEAD[1]                   # the counts are of all sessions, not only those shown
    else:
        assert out[1] == "3 Total FTP Sessions: 1 downloading, 1 uploading, 1 idle"


def test_iterations_and_delay(board, capsys):
    slept = []
    ftptop.main(["-b", "-n", "3", "-d", "7", "-f", board], clock=clock, sleep=slept.append)
    out = capsys.readouterr().out
    assert out.count("Total FTP Sessions") == 3 and slept == [7, 7]


def test_xfer_view_rows_are_pure(board):
    sb = Scoreboard.open(board, readonly=True)
    header, entries = sb.header, sb.entries()
    sb.close()
    lines = ftptop.screen(header, entries, NOW, ftptop.XFER, ftptop.Filters(), 80)
    assert lines[2] == "Total transfer rate: 152.00 KB/s"
    assert lines[3] == "PID   S USER     CLIENT                                       KB/s       %DONE  "
    assert lines[4:] == [
        "1002  D bob      192.0.2.2                                    150.00     45     ",
        "1003  U carol    2001:db8::3                                  2.00       (n/a)  ",
    ]
    assert all(len(line) == 80 for line in lines[3:])


def test_wide_screen_gives_room_to_the_argument(board):
    sb = Scoreboard.open(board, readonly=True)
    entries = sb.entries()
    sb.close()
    rows = ftptop.rows(entries, NOW, ftptop.REG, ftptop.Filters(frozenset("D")), 120)
    assert rows == [BOB.rstrip().ljust(120)]


def test_status_letters(board):
    sb = Scoreboard.open(board, readonly=True)
    entries = sb.entries()
    sb.close()
    assert [ftptop.status(e) for e in entries] == ["I", "D", "U", "A"]
    listing = entries[0].__class__(**{**entries[0].__dict__, "cmd": "MLSD"})
    other = entries[0].__class__(**{**entries[0].__dict__, "cmd": "CWD"})
    assert (ftptop.status(listing), ftptop.status(other)) == ("L", "A")


@pytest.mark.parametrize("argv,message", [
    (["-d", "16"], "delay must be"),
    (["-d", "x"], "delay must be"),
    (["-n", "0"], "iterations must be"),
    (["-z"], "option -z not recognized"),
])
def test_bad_options(capsys, argv, message):
    assert ftptop.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("ftptop: ") and message in err and err.count("\n") == 1


def test_missing_scoreboard_fails_before_curses(tmp_path, capsys):
    assert ftptop.main(["-f", str(tmp_path / "nope")]) == 1
    assert "No such file or directory" in capsys.readouterr().err


def test_version(capsys):
    assert ftptop.main(["-V"]) == 0
    assert capsys.readouterr().out == "ftptop/1.0\n"


def test_curses_view_toggles_and_quits_on_a_real_terminal(board):
    """Drive the full-screen view through a pseudo-terminal: REG first, `t` shows XFER, `q` quits."""
    import os
    import pty
    import select
    import signal

    pid, fd = pty.fork()
    if pid == 0:                                   # child: the terminal is ours
        code = 1
        try:
            os.environ.update(TERM="xterm", LINES="24", COLUMNS="100")
            code = ftptop.main(["-f", board, "-d", "1"])
        finally:
            os._exit(code)
    screen, deadline = b"", time.monotonic() + 20

    def read_until(marker):
        nonlocal screen
        while marker not in screen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    break
        return marker in screen

    try:
        assert read_until(b"COMMAND")
        os.write(fd, b"t")
        assert read_until(b"%DONE")
        os.write(fd, b"q")
        end = time.monotonic() + 10
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    os.read(fd, 65536)             # keep draining so the child never blocks on output
                except OSError:
                    pass
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("ftptop did not quit on q")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
