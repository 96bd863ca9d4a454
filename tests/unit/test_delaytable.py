"""mod_delay's pure parts: ProFTPD's median over a DelayTable row (the newest value left out), the caps, the
jitter, DelayOnEvent's durations, and the table file (reset, learning, a session's share, foreign files)."""

from __future__ import annotations

import random

import pytest

from proftpy import delaytable as dt
from proftpy.modules.delay import parse_duration


def test_median_uses_the_stored_values_but_not_the_newest_plus_the_interval():
    # stored oldest..newest; the newest (999) is left out, as ProFTPD's loop reads vals[255-i] from i = 1
    assert dt.median([10, 20, 30, 999], 25) == 20        # of 10 20 30 25 -> sorted 10 20 25 30, k=(4+1)//2=2
    assert dt.median([], 7) == 7                         # a cold table: the interval itself
    assert dt.median([5, -1, 5, 1], 100) == 5            # empty (-1) slots are ignored


def test_select_k_is_the_true_kth_smallest():
    values = [9, 1, 8, 2, 7, 3]
    assert [dt.select_k(values, k) for k in range(1, 7)] == [1, 2, 3, 7, 8, 9]


def test_a_median_at_or_above_1800_seconds_is_not_used():
    assert dt.median([dt.MAX_DELAY_US, dt.MAX_DELAY_US, 0], dt.MAX_DELAY_US) == -1


def test_no_padding_when_the_command_was_not_faster_than_usual():
    assert dt.padding(500, 400) == 0
    assert dt.padding(400, 400) == 0
    assert dt.padding(400, -1) == 0


def test_padding_is_the_difference_plus_at_most_half_of_it():
    rng = random.Random(1)
    waits = [dt.padding(100, 1100, rng) for _ in range(2000)]
    assert min(waits) >= 1000 and max(waits) <= 1500
    assert max(waits) - min(waits) > 400                 # the jitter really varies


def test_delays_are_capped_at_1800_seconds():
    assert dt.jittered(dt.MAX_DELAY_US - 1, 10**9) == dt.MAX_DELAY_US
    assert dt.appended([1, 2, 3], 10**12) == [2, 3, dt.MAX_DELAY_US]


def test_jitter_of_a_range_stays_within_it():
    rng = random.Random(2)
    assert all(200 <= dt.jittered(200, 300, rng) <= 500 for _ in range(500))


@pytest.mark.parametrize("text, expected", [("250", (250, 250)), ("250ms", (250, 250)), ("2s", (2000, 2000)),
                                            ("3sec", (3000, 3000)), ("100-300", (100, 300)),
                                            ("1-2s", (1000, 2000)), ("01:02.500", (62500, 62500))])
def test_delay_on_event_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "300-100", "5-5", "-4", "1.5s", "2m"])
def test_bad_delay_on_event_durations(text):
    with pytest.raises(ValueError, match="error parsing delay parameter"):
        parse_duration(text)


SERVERS = [(1, "127.0.0.1", 2121), (2, "127.0.0.2", 2121)]


def test_a_new_table_has_two_empty_rows_per_server(tmp_path):
    t = dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS)
    assert (tmp_path / "d").stat().st_size == dt.HEADER.size + 4 * dt.ROW
    assert t.row_index(2, dt.PASS_ROW) == 3
    assert t.read(0, "ftp") == (0, [-1] * dt.NVALUES)
    info = t.info()
    assert info[:5] == ["Address 127.0.0.1#2121: USER values (usecs):", " + Protocol ftp, 0 values:",
                        " + Protocol ftps, 0 values:", " + Protocol ssh2, 0 values:", ""]


def test_learning_records_intervals_per_protocol_and_gives_the_median(tmp_path):
    t = dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS)
    for v in (100, 300, 200):
        t.learn(1, "ftp", v, add=True)
    count, values = t.read(1, "ftp")
    assert count == 3 and values[-3:] == [100, 300, 200]
    assert t.read(1, "ftps")[0] == 0
    assert t.learn(1, "ftp", 50, add=False) == 100       # of 100 300 (200 is the newest, left out) and 50
    assert t.read(1, "ftp")[0] == 3                      # add=False records nothing
    lines = t.info()
    assert " + Protocol ftp, 3 values:" in lines
    assert "            200        300        100" in lines


def test_a_table_for_the_same_servers_keeps_what_it_learned(tmp_path):
    t = dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS)
    t.learn(0, "ftp", 1234, add=True)
    t.close()
    again = dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS)
    assert again.read(0, "ftp")[1][-1] == 1234
    again.close()
    other = dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS[:1])
    assert other.read(0, "ftp")[0] == 0                  # another server set: reset


def test_a_foreign_or_corrupt_table_is_reset(tmp_path, caplog):
    path = tmp_path / "d"
    path.write_bytes(b"not a delay table" * 100)
    t = dt.DelayTable.open_or_create(str(path), SERVERS)
    assert t.read(0, "ftp")[0] == 0
    assert "bad magic" in caplog.text


def test_reset_forgets_everything(tmp_path):
    t = dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS)
    t.learn(0, "ftp", 5, add=True)
    t.reset()
    assert t.read(0, "ftp")[0] == 0


def test_a_table_in_a_world_writable_directory_or_behind_a_link_is_refused(tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o1777)
    with pytest.raises(dt.DelayTableError, match="refusing to use world-writable directory"):
        dt.DelayTable.open_or_create(str(open_dir / "d"), SERVERS)
    (tmp_path / "real").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(dt.DelayTableError, match="refusing to use a symbolic link"):
        dt.DelayTable.open_or_create(str(tmp_path / "link"), SERVERS)


def test_a_table_another_daemon_made_again_smaller_is_an_os_error(tmp_path):
    """Two daemons given one DelayTable path: the second makes it again for fewer servers; the first's sessions
    get OSError (mod_delay logs `unable to use DelayTable`), never a struct.error traceback."""
    first = dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS)
    dt.DelayTable.open_or_create(str(tmp_path / "d"), SERVERS[:1]).close()
    with pytest.raises(OSError):
        first.learn(3, "ftp", 100, add=True)
    with pytest.raises(OSError):
        first.read(3, "ftp")
