"""mod_shaper's pure parts: the rate arithmetic for sets of sessions with shares, `shaper sess` adjustments, the
table's bytes in ProFTPD's layout, `ftpdctl shaper info`'s text, ShaperAll/ShaperSession words, TransferRate
precedence against the shaper's priority."""
from __future__ import annotations

import ctypes
import os

import pytest

from proftpy.modules.shaper import _shaper_all, _shaper_session, configured
from proftpy.shapertable import HEADER, RECORD, Entry, ShaperTable, ShaperTableError, Table, atoi, strtod
from proftpy.transfer.datastate import Shaping


def test_one_session_gets_the_whole_rate():
    t = Table(downrate=1000, uprate=500, sessions=[Entry(1, 10)])
    t.share_out()
    assert (t.sessions[0].downrate, t.sessions[0].uprate) == (1000, 500)


def test_sessions_split_the_rate_by_their_shares():
    # ProFTPD's example: rate 100, 1 share each, 4 sessions, dave +1 -> 20 KB/s a share, dave 40
    t = Table(downrate=100, downshares=1, uprate=100, upshares=1,
              sessions=[Entry(1, 10, downincr=1, upincr=1), Entry(2, 10), Entry(3, 10), Entry(4, 10)])
    t.share_out()
    assert [e.downrate for e in t.sessions] == [40, 20, 20, 20]
    assert t.totals() == (5, 5)


def test_down_and_up_shares_are_separate():
    t = Table(downrate=1000, downshares=10, uprate=500, upshares=10,
              sessions=[Entry(1, 2, downincr=2, upincr=-3), Entry(2, 2, downincr=2, upincr=-3)])
    t.share_out()
    assert [(e.downrate, e.uprate) for e in t.sessions] == [(500, 250), (500, 250)]


def test_no_sessions_counts_as_one_share():
    assert Table().totals() == (1, 1)


def test_a_session_keeps_at_least_one_share():
    t = Table(downshares=1, upshares=5, sessions=[Entry(7, 10)])
    assert t.adjust(7, -1, -1, -1)          # the upshares could go down
    assert (t.sessions[0].downincr, t.sessions[0].upincr) == (0, -1)
    assert not t.adjust(7, -1, -1, -10)     # neither: refused
    assert not t.adjust(8, 3, 1, 1)         # not there
    assert t.adjust(7, 3, 2, 0) and t.sessions[0].prio == 3


def test_the_bytes_are_proftpds_layout():
    assert ctypes.sizeof(ctypes.c_longdouble) == 16 and (HEADER.size, RECORD.size) == (48, 48)
    t = Table(prio=2, downrate=1000.5, downshares=10, uprate=500, upshares=4,
              sessions=[Entry(4242, 2, 2, -3, 500.25, 250)])
    raw = t.pack()
    assert len(raw) == 96
    assert raw[:4] == (2).to_bytes(4, "little") and raw[48:52] == (4242).to_bytes(4, "little")
    assert ctypes.c_longdouble.from_buffer_copy(raw[4:20]).value == 1000.5
    assert Table.unpack(raw) == t
    with pytest.raises(ValueError):
        Table.unpack(raw[:60])


def test_info_prints_proftpds_text():
    t = Table(prio=2, downrate=1000, downshares=10, uprate=500, upshares=10,
              sessions=[Entry(21750, 2, 2, -3), Entry(21753, 2, 2, -3)])
    t.share_out()
    assert t.info() == [
        "Overall Rates: 1000.00 KB/s down, 500.00 KB/s up",
        "Default Shares Per Session: 10 down, 10 up",
        "Default Priority: 2",
        "Number of Shaped Sessions: 2",
        "PID   Priority DShares        DRate (KB/s) UShares        URate (KB/s)",
        "----- -------- -------------- ------------ -------------- ------------",
        "21750        2     12/24 (+2)       500.00      7/14 (-3)       250.00",
        "21753        2     12/24 (+2)       500.00      7/14 (-3)       250.00",
    ]
    assert Table().info()[-1] == "Number of Shaped Sessions: 0" and len(Table().info()) == 4


def test_the_file_keeps_its_settings_and_is_rewritten_under_lock(tmp_path):
    path = str(tmp_path / "shaper.tab")
    table = ShaperTable.open(path, Table(downrate=100, uprate=100))
    with table.edit() as t:
        t.sessions.append(Entry(os.getpid(), 10))
    assert table.read().sessions[0].downrate == 100
    table.close()
    again = ShaperTable.open(path, Table(downrate=5, uprate=5))     # an existing table is not reset
    assert again.read().downrate == 100 and again.peek() == again.read()
    with pytest.raises(RuntimeError), again.edit() as t:           # an error inside writes nothing
        t.sessions.clear()
        raise RuntimeError
    assert len(again.read().sessions) == 1
    again.close()


def test_a_symlinked_table_is_refused(tmp_path):
    (tmp_path / "real").write_bytes(b"")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(ShaperTableError, match="symbolic link"):
        ShaperTable.open(str(tmp_path / "link"), Table())


def test_shaper_all_words():
    assert _shaper_all(["rate", "1000", "shares", "20", "priority", "3"]) == (
        ("rate", 1000.0), ("shares", 20), ("priority", 3))
    for args, message in ((["rate"], "wrong number of parameters"),
                          (["rate", "1", "x"], "wrong number of parameters"),
                          (["downrate", "fast"], "invalid downrate parameter"),
                          (["uprate", "-1"], "uprate must be greater than 0"),
                          (["upshares", "0"], "upshares must be greater than 1"),
                          (["priority", "-2"], "priority must be greater than 0"),
                          (["speed", "1"], "unknown option: 'speed'")):
        with pytest.raises(ValueError, match=message):
            _shaper_all(args)


def test_shaper_session_words():
    assert _shaper_session(["priority", "3"]) == (3, 0, 0)
    assert _shaper_session(["downshares", "+3", "upshares", "-1"]) == (-1, 3, -1)
    assert _shaper_session(["shares", "-4"]) == (-1, -4, -4)
    with pytest.raises(ValueError, match="downshares parameter must start with '\\+' or '-'"):
        _shaper_session(["downshares", "3"])
    with pytest.raises(ValueError, match="wrong number of parameters"):
        _shaper_session(["priority", "1"] * 5)


class _Param:
    def __init__(self, value):
        self.value = value


class _Config:
    def __init__(self, *lines):
        section = type("S", (), {"all": lambda self, name: [_Param(_shaper_all(words)) for words in lines]})()
        self.main = type("M", (), {"section": section})()


def test_later_shaper_all_words_win():
    t = configured(_Config(["rate", "100", "shares", "2"], ["uprate", "50"]))
    assert (t.downrate, t.uprate, t.downshares, t.upshares, t.prio) == (100, 50, 2, 2, 10)
    assert configured(_Config()).downrate == -1.0       # no rate: the engine stays off


def test_c_number_words():
    assert [atoi(w) for w in ("+2", "-3", "12abc", "abc", " 7", "")] == [2, -3, 12, 0, 7, 0]
    assert [strtod(w) for w in ("1.5", "10", "1.5x", "", " 1")] == [1.5, 10.0, None, None, None]


def test_shaping_gives_the_rate_of_the_direction():
    s = Shaping(10, 2000.0, 1000.0)
    assert [s.rate(c) for c in ("RETR", "STOR", "APPE", "STOU")] == [2000.0, 1000.0, 1000.0, 1000.0]
