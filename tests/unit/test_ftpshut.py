"""ftpshut writes ProFTPD's shutdown file at $PROFTPY_SHUTMSG, and -R cancels it."""
import time

import pytest

from proftpy import shutmsg
from proftpy.tools import ftpshut

T = 1_700_000_000          # Tue Nov 14 22:13:20 2023 UTC


@pytest.fixture
def path(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    p = tmp_path / "shutmsg"
    monkeypatch.setenv("PROFTPY_SHUTMSG", str(p))
    yield p
    monkeypatch.undo()
    time.tzset()


def run(capsys, *argv):
    code = ftpshut.main(list(argv), clock=lambda: T)
    out, err = capsys.readouterr()
    return code, out, err


def test_now_with_defaults(path, capsys):
    assert run(capsys, "now") == (0, "", "")
    assert path.read_text() == "2023 11 14 22 13 20 0010 0005\ngoing down at %s\n"


def test_plus_minutes_offsets_and_message_words(path, capsys):
    assert run(capsys, "-l", "90", "-d", "2", "+30", "back", "-soon", "at", "%s")[0] == 0
    assert path.read_text() == "2023 11 14 22 43 20 0130 0002\nback -soon at %s\n"
    st = shutmsg.check(str(path), T)
    assert st.deny_at == T + 1800 - 5400 and st.denying


def test_hhmm_and_hh(path, capsys):
    run(capsys, "2330")
    assert path.read_text().startswith("2023 11 14 23 30 0 ")
    run(capsys, "01")
    assert path.read_text().startswith("2023 11 15 1 0 0 ")


def test_remove_cancels_and_is_idempotent(path, capsys):
    run(capsys, "now")
    assert run(capsys, "-R") == (0, "", "")
    assert not path.exists()
    assert run(capsys, "-R") == (0, "", "")


@pytest.mark.parametrize("argv,message", [
    ([], "missing time argument"),
    (["2460"], "invalid time '2460'"),
    (["+x"], "invalid time interval '+x'"),
    (["-l", "ten", "now"], "-l requires a numeric argument"),
    (["-l", "6000", "now"], "between 0 and 5999"),
    (["-q", "now"], "option -q not recognized"),
])
def test_errors_are_one_line(path, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.startswith("ftpshut: ") and message in err and err.count("\n") == 1
    assert not path.exists()


def test_unwritable_location_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROFTPY_SHUTMSG", str(tmp_path / "no" / "such" / "dir" / "shutmsg"))
    code, _, err = run(capsys, "now")
    assert code == 1 and "No such file or directory" in err and "Traceback" not in err
