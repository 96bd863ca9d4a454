"""mod_statcache's table and texts: ProFTPD's hash and rows, ages (positive, negative), full rows (rejects),
removal, the counters and `ftpdctl statcache info|dump` as ProFTPD 1.3.8 prints them, the directives' checks,
two processes sharing one table."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from proftpy import statcachetable as sc
from proftpy.modules import statcache as mod

AGES = (5, 1)


@pytest.fixture
def table(tmp_path):
    t = sc.StatCacheTable.create(str(tmp_path / "statcache.tab"), 30)
    yield t
    t.close()


def test_hash_is_djb2_over_signed_chars_without_the_high_bit():
    assert sc.path_hash(b"") == 5381
    assert sc.path_hash(b"a") == 5381 * 33 + 97
    # what ProFTPD's statcache_hash() gives (compiled with gcc on x86-64, where char is signed)
    assert sc.path_hash(b"/home/alice/file.txt") == 1347594151
    assert sc.path_hash("/é".encode()) == 193426080


def test_capacity_is_rounded_up_to_whole_rows():
    assert sc.round_capacity(25) == 30 and sc.round_capacity(30) == 30 and sc.round_capacity(10) == 10


def test_a_stat_is_stored_and_found_with_every_field(table, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    st = os.stat(f)
    assert table.get(b"/f", sc.STAT, 100, AGES) is None
    assert table.put(b"/f", sc.STAT, st, 100, AGES)
    found = table.get(b"/f", sc.STAT, 101, AGES)
    assert found == st and found.st_mtime_ns == st.st_mtime_ns and found.st_blocks == st.st_blocks
    assert table.counters() == {"count": 1, "highest": 1, "hits": 1, "misses": 1, "expires": 0, "rejects": 0}


def test_a_failure_is_cached_as_its_errno(table):
    table.put(b"/nope", sc.STAT, errno.ENOENT, 100, AGES)
    assert table.get(b"/nope", sc.STAT, 100, AGES) == errno.ENOENT


def test_entries_expire_by_their_age_positive_and_negative(table, tmp_path):
    st = os.stat(tmp_path)
    table.put(b"/d", sc.STAT, st, 100, AGES)
    table.put(b"/e", sc.STAT, errno.ENOENT, 100, AGES)
    assert table.get(b"/e", sc.STAT, 101, AGES) == errno.ENOENT       # 1 s: still used
    assert table.get(b"/e", sc.STAT, 102, AGES) is None               # older than 1 s: cleared
    assert table.get(b"/d", sc.STAT, 105, AGES) == st
    assert table.get(b"/d", sc.STAT, 106, AGES) is None
    c = table.counters()
    assert (c["count"], c["expires"], c["highest"]) == (0, 2, 2)


def test_an_lstat_of_a_non_link_answers_a_stat_but_not_the_reverse(table, tmp_path):
    link = tmp_path / "l"
    link.symlink_to(tmp_path)
    table.put(b"/plain", sc.LSTAT, os.lstat(tmp_path), 100, AGES)
    table.put(b"/link", sc.LSTAT, os.lstat(link), 100, AGES)
    table.put(b"/st", sc.STAT, os.stat(tmp_path), 100, AGES)
    assert table.get(b"/plain", sc.STAT, 100, AGES) is not None
    assert table.get(b"/link", sc.STAT, 100, AGES) is None
    assert stat.S_ISLNK(table.get(b"/link", sc.LSTAT, 100, AGES).st_mode)
    assert table.get(b"/st", sc.LSTAT, 100, AGES) is None


def test_a_full_row_rejects_until_an_entry_expires(tmp_path):
    t = sc.StatCacheTable.create(str(tmp_path / "t"), 10)      # one row
    st = os.stat(tmp_path)
    for i in range(10):
        assert t.put(f"/{i}".encode(), sc.STAT, st, 100, AGES)
    assert not t.put(b"/x", sc.STAT, st, 100, AGES)
    assert t.counters()["rejects"] == 1
    assert t.put(b"/x", sc.STAT, st, 106, AGES)                 # the first column had expired: reused
    c = t.counters()
    assert (c["count"], c["expires"], c["highest"]) == (10, 1, 10)
    t.close()


def test_forget_clears_both_the_stat_and_the_lstat_of_a_path(table, tmp_path):
    st = os.stat(tmp_path)
    table.put(b"/p", sc.STAT, st, 100, AGES)
    table.put(b"/p", sc.LSTAT, st, 100, AGES)
    assert table.forget(b"/p") == 2
    assert table.get(b"/p", sc.STAT, 100, AGES) is None
    assert table.counters()["count"] == 0


def test_forget_below_clears_what_was_under_a_directory_only(table, tmp_path):
    st = os.stat(tmp_path)
    for key in (b"/d", b"/d/a", b"/d/sub/b", b"/dd/c"):
        table.put(key, sc.STAT, st, 100, AGES)
    table.put(b"/d/gone", sc.STAT, errno.ENOENT, 100, AGES)
    assert table.forget_below(b"/d") == 3
    assert [k for k in (b"/d", b"/d/a", b"/d/sub/b", b"/dd/c", b"/d/gone") if table.get(k, sc.STAT, 100, AGES)] \
        == [b"/d", b"/dd/c"]
    assert table.counters()["count"] == 2


def test_rows_are_ten_columns_each_and_a_path_lands_in_its_hash_row(table, tmp_path):
    table.put(b"/a", sc.STAT, os.stat(tmp_path), 100, AGES)
    rows = table.rows()
    assert len(rows) == 3 and all(len(r) == 10 for r in rows)
    row = sc.path_hash(b"/a") % 3
    assert rows[row][0] == sc.Entry("/a", 100, 0)
    assert sum(e is not None for r in rows for e in r) == 1


def test_a_second_process_sees_what_the_first_stored(table, tmp_path):
    st = os.stat(tmp_path)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if table.put(b"/child", sc.STAT, st, 100, AGES) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table.get(b"/child", sc.STAT, 100, AGES) == st


def test_a_new_table_is_empty_even_where_an_old_one_was(tmp_path):
    path = str(tmp_path / "t")
    t = sc.StatCacheTable.create(path, 10)
    t.put(b"/x", sc.STAT, errno.ENOENT, 100, AGES)
    t.close()
    t = sc.StatCacheTable.create(path, 10)
    assert t.counters()["count"] == 0 and t.get(b"/x", sc.STAT, 100, AGES) is None
    t.close()


def test_the_table_refuses_a_world_writable_directory(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)
    with pytest.raises(sc.StatCacheTableError, match="world-writable"):
        sc.StatCacheTable.create(str(d / "t"), 10)


def test_info_prints_proftpds_lines():
    counters = {"count": 4, "highest": 5, "hits": 7, "misses": 25, "expires": 17, "rejects": 0}
    assert mod.info_lines(counters, 30) == [
        " hits 7, misses 25: 21.9% hit rate", "   expires 17, rejects 0",
        " current count: 4 (of 30) (13.3% usage)", " highest count: 5 (of 30) (16.7% usage)"]
    assert mod.info_lines(dict.fromkeys(counters, 0), 30)[0] == " hits 0, misses 0: 0.0% hit rate"


def test_dump_prints_every_row_and_column(table, tmp_path):
    table.put(b"/a", sc.STAT, os.stat(tmp_path), 100, AGES)
    table.put(b"/b", sc.STAT, errno.ENOENT, 100, AGES)
    lines = mod.dump_lines(table, 103)
    assert lines[0] == "StatCache Contents:" and lines[1] == "  Row 1:" and len(lines) == 1 + 3 * 11
    assert "    Col 1: '/a' (3 secs old)" in lines
    assert "    Col 1: '/b' (error: No such file or directory)" in lines or \
        "    Col 2: '/b' (error: No such file or directory)" in lines
    assert lines.count("    Col 10: <empty>") == 3


def test_a_dump_too_big_for_one_answer_says_what_it_left_out(tmp_path):
    t = sc.StatCacheTable.create(str(tmp_path / "t"), 5000)
    lines = mod.dump_lines(t, 100)
    assert lines[-1].startswith("  (") and "more rows not shown" in lines[-1]
    assert sum(len(x) + 4 for x in lines) < 64 * 1024
    t.close()


@pytest.mark.parametrize("args, message", [
    (["9"], "parameter must be 10 or greater"), (["x"], "parameter must be 10 or greater")])
def test_capacity_checks(args, message):
    with pytest.raises(ValueError, match=message):
        mod._capacity(args)


def test_capacity_is_read_as_atoi_and_rounded():
    assert mod._capacity(["25"]) == 30 and mod._capacity(["40abc"]) == 40


def test_max_age_one_number_sets_both_two_set_each_a_negative_one_is_zero():
    assert mod._max_age(["7"]) == [7, 7]
    assert mod._max_age(["7", "2"]) == [7, 2]
    assert mod._max_age(["7", "-3"]) == [7, 0]
    for bad in (["0"], ["-1"], ["x"]):
        with pytest.raises(ValueError, match="positive-age parameter must be 1 or greater"):
            mod._max_age(bad)
    with pytest.raises(ValueError, match="wrong number of parameters"):
        mod._max_age(["1", "2", "3"])


def test_table_must_be_absolute():
    with pytest.raises(ValueError, match="must be an absolute path"):
        mod._table(["rel/path"])


@pytest.mark.parametrize("jail", [False, True])
def test_fs_tells_its_changed_hook_of_every_path_a_change_touches(tmp_path, jail):
    """mod_statcache's one hook in fs.py: each operation that changes the tree, and each open for writing."""
    from proftpy.fs import FS
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    fs = FS(str(root)) if jail else FS("/")
    base = fs.root.rstrip("/") if jail else str(root)
    told: list[tuple[str, bool]] = []
    fs.changed = lambda real, writing=False, below=False: told.append((real[len(base):], writing or below and "below"))
    os.close(fs.open(base + "/d/f", os.O_WRONLY | os.O_CREAT))
    fs.rename(base + "/d/f", base + "/d/g")
    fs.chmod(base + "/d/g", 0o600)
    fs.utime(base + "/d/g", (1.0, 1.0))
    fs.unlink(base + "/d/g")
    fs.mkdir(base + "/d/s")
    fs.rmdir(base + "/d/s")
    fd, made = fs.create_unique(base + "/d", "u")
    os.close(fd)
    fs.stat(base + "/d")
    os.close(fs.open(base + "/d/" + os.path.basename(made), os.O_RDONLY))
    assert told == [("/d/f", True), ("/d/g", False), ("/d/f", False), ("/d/f", "below"), ("/d/g", "below"),
                    ("/d/g", False), ("/d/g", False),
                    ("/d/g", False), ("/d/s", False), ("/d/s", False), (made[len(base):], True)]
