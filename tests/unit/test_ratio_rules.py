"""mod_ratio's pure parts (proftpy/ratio.py): ratio lines, the credit a tally leaves, ProFTPD's texts, the
RatioFile's lines."""

from __future__ import annotations

import pytest

from proftpy import ratio as rt
from proftpy.ratio import Ratio, Standing, Tally


def test_ratio_line_parsed():
    assert Ratio.parse(["alice", "2", "+1", "-3", "1024"]) == ("alice", Ratio(2, 1, -3, 1024))


@pytest.mark.parametrize("args, message", [
    (["alice", "1", "0", "0"], "expected name file-ratio"),
    (["alice", "1", "0", "0", "0", "x"], "expected name file-ratio"),
    (["alice", "1x", "0", "0", "0"], "'1x' is not a whole number"),
    (["alice", "1", "", "0", "0"], "'' is not a whole number"),
    (["alice", "1", "0", "0", "٣"], "is not a whole number"),
])
def test_bad_ratio_lines(args, message):
    with pytest.raises(ValueError, match=message):
        Ratio.parse(args)


def test_positive_ratio_earns_downloads_per_upload():
    now = Standing(Ratio(files=3, file_credit=1), Tally(files_up=2, files_down=4))
    assert (now.files, now.file_label) == (3 * 2 + 1 - 4, "1:3F")
    assert not now.files_refused()
    assert Standing(Ratio(files=3), Tally(files_down=1)).files_refused()


def test_negative_ratio_needs_uploads_per_download():
    now = Standing(Ratio(files=-3, bytes=-2), Tally(files_up=7, kb_up=5, files_down=1))
    assert (now.files, now.file_label, now.kbytes, now.byte_label) == (7 // 3 - 1, "3:1F", 2, "2:1B")


def test_byte_ratio_compares_kilobytes():
    now = Standing(Ratio(bytes=1, byte_credit=3), Tally(kb_up=1, kb_down=2))
    assert now.kbytes == 2
    assert not now.bytes_refused(3071)              # 2 KB: whole kilobytes, the rest dropped as ProFTPD
    assert now.bytes_refused(3072)
    assert not Standing(Ratio(files=1, file_credit=5), Tally()).bytes_refused(1 << 30)   # no byte ratio


def test_no_ratio_is_a_leech_with_nothing_computed():
    now = Standing(None, Tally(files_up=1, files_down=3))
    assert (now.files, now.kbytes, now.rule.enforced) == (0, 0, False)
    assert now.summary() == "-3/0 +1/0 (0 0 0 0) = 0/0"
    assert now.status() == "Down: 3 Files (0mb)  Up: 1 Files (0mb)"


def test_texts_as_proftpd_shows_them():
    now = Standing(Ratio(1, 0, 1, 0), Tally(files_up=0, kb_up=2048, files_down=1, kb_down=6144))
    assert now.summary() == "-1/6 +0/2 (1 0 1 0) = -1/-4 [NO F] [LO B]"
    assert now.summary(numbers=False) == "-1/6 +0/2 = -1/-4 [NO F] [LO B]"
    assert now.status() == "Down: 1 Files (6mb)  Up: 0 Files (2mb)   1:1F CR: -1   1:1B CR: -4"


def test_megabytes_of_a_negative_credit_round_towards_zero():
    assert [rt.cdiv(n, 1024) for n in (-1023, -1024, -2049, 2049)] == [0, -1, -2, 2]
    assert Standing(Ratio(bytes=1, byte_credit=-1000), Tally()).summary().endswith("= 0/0 [LO B]")


def test_ratio_file_lines():
    assert rt.parse_line("alice|1|2|3|4\n") == ("alice", Tally(1, 2, 3, 4))
    assert rt.parse_line("alice||1|2|3|4\r\n") == ("alice", Tally(1, 2, 3, 4))      # empty fields skipped (strtok)
    assert rt.parse_line("\n") is None and rt.parse_line("alice|1|2|x|4\n") is None
    assert rt.format_line("bob", Tally(1, 2, 3, 4)) == "bob|1|2|3|4\n"


def test_find_adds_up_a_users_lines_and_replace_keeps_one():
    lines = ["alice|1|10|0|0\n", "junk\n", "bob|5|5|5|5\n", "alice|2|20|1|1\n"]
    assert rt.find(lines, "alice") == Tally(3, 30, 1, 1)
    assert rt.find(lines, "carol") is None
    assert rt.replace(lines, "alice", Tally(4, 40, 2, 2)) == ["alice|4|40|2|2\n", "junk\n", "bob|5|5|5|5\n"]


def test_write_through_keeps_the_files_inode(tmp_path):
    path, temp = tmp_path / "ratios", tmp_path / "ratios.tmp"
    path.write_text("old line that is longer\n")
    inode = path.stat().st_ino
    rt.write_through(str(path), str(temp), ["a|1|2|3|4\n"])
    assert path.read_text() == temp.read_text() == "a|1|2|3|4\n"
    assert path.stat().st_ino == inode


def test_write_through_needs_both_files(tmp_path):
    with pytest.raises(OSError):
        rt.write_through(str(tmp_path / "missing"), str(tmp_path / "t"), [])
    with pytest.raises(OSError):
        rt.write_through(str(tmp_path / "t"), str(tmp_path / "no" / "t"), [])
