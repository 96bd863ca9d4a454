"""The shutdown message file: ProFTPD's format both ways, deny/disconnect times, cookies."""
import os
import time

import pytest

from proftpy import shutmsg


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


T = 1_700_000_000          # Tue Nov 14 22:13:20 2023 UTC


def test_no_file_means_no_shutdown(tmp_path):
    assert shutmsg.check(str(tmp_path / "shutmsg"), T) is None


def test_write_then_check_roundtrip(tmp_path):
    path = str(tmp_path / "shutmsg")
    shutmsg.write(path, T + 3600, 30, 90, "maintenance at %s")
    assert open(path).read() == "2023 11 14 23 13 20 0030 0130\nmaintenance at %s\n"
    assert os.stat(path).st_mode & 0o777 == 0o644
    st = shutmsg.check(path, T)
    assert (st.shutdown_at, st.deny_at, st.disconnect_at) == (T + 3600, T + 1800, T - 1800)
    assert (st.denying, st.disconnecting) == (False, True)
    assert st.message == "maintenance at %s"


def test_file_written_by_proftpd_is_read(tmp_path):
    path = tmp_path / "shutmsg"
    path.write_text("2023 11 14 22 30 0 0010 0005\ngoing down at %s\n")
    st = shutmsg.check(str(path), T)
    assert st.shutdown_at == T + 1000 and st.deny_at == T + 400 and st.disconnect_at == T + 700
    assert not st.denying
    assert shutmsg.check(str(path), T + 400).denying


def test_offsets_other_than_four_digits_mean_at_shutdown(tmp_path):
    path = tmp_path / "shutmsg"
    path.write_text("2023 11 14 22 30 0\n")
    st = shutmsg.check(str(path), T)
    assert st.deny_at == st.disconnect_at == st.shutdown_at and st.message == ""


@pytest.mark.parametrize("text", ["", "2023 11 14\nmsg\n", "a b c d e f 0010 0005\n"])
def test_malformed_file_raises_a_clear_error(tmp_path, text):
    path = tmp_path / "shutmsg"
    path.write_text(text)
    with pytest.raises(shutmsg.ShutmsgError, match=str(path)):
        shutmsg.check(str(path), T)


def test_cookies_are_expanded_once():
    st = shutmsg.ShutdownState(T + 600, T, T + 300, "down %s (deny %r, cut %d) now %T %U@%R %L %V %C %x", T)
    assert st.expanded(user="al%sce", remote="192.0.2.1", local="10.0.0.1", server_name="Main", cwd="/pub") == (
        "down Tue Nov 14 22:23:20 2023 (deny Tue Nov 14 22:13:20 2023, cut Tue Nov 14 22:18:20 2023) "
        "now Tue Nov 14 22:13:20 2023 al%sce@192.0.2.1 10.0.0.1 Main /pub %x")


def test_time_format_is_proftpds():
    assert shutmsg.format_time(1_699_000_000) == "Fri Nov 03 08:26:40 2023"


@pytest.mark.parametrize("spec,expected", [
    ("now", T),
    ("NOW", T),
    ("+15", T + 900),
    ("2300", 1_700_002_800),           # later today
    ("2213", T - 20 + 86400),          # the current minute counts as past (as in ProFTPD): tomorrow
    ("05", 1_700_024_400),             # 05:00 has passed today: tomorrow
])
def test_parse_when(spec, expected):
    assert shutmsg.parse_when(spec, T) == expected


@pytest.mark.parametrize("spec", ["+x", "2400", "1260", "123", "tomorrow", ""])
def test_parse_when_rejects(spec):
    with pytest.raises(shutmsg.ShutmsgError):
        shutmsg.parse_when(spec, T)


def test_offsets_that_do_not_fit_hhmm_are_refused(tmp_path):
    with pytest.raises(shutmsg.ShutmsgError, match="between 0 and 5999"):
        shutmsg.write(str(tmp_path / "s"), T, 6000, 5, "x")


def test_default_path_honours_environment(monkeypatch):
    monkeypatch.delenv(shutmsg.ENV_PATH, raising=False)
    assert shutmsg.default_path() == "/etc/shutmsg"
    monkeypatch.setenv(shutmsg.ENV_PATH, "/tmp/x")
    assert shutmsg.default_path() == "/tmp/x"
