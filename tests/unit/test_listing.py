"""Pure listing formats: LIST lines, the 180-day rule, ls options, ListOptions, globbing, facts."""

from __future__ import annotations

import dataclasses
import os
import stat
import time

import pytest

from proftpy import listing
from proftpy.listing import FactValues, LsOptions

DAY = 86400
NOW = 1_700_000_000                     # 2023-11-14 22:13:20 UTC


# -- mode, time, size -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,text", [
    (stat.S_IFREG | 0o644, "-rw-r--r--"),
    (stat.S_IFDIR | 0o755, "drwxr-xr-x"),
    (stat.S_IFLNK | 0o777, "lrwxrwxrwx"),
    (stat.S_IFREG | 0o4755, "-rwsr-xr-x"),
    (stat.S_IFREG | 0o2644, "-rw-r-Sr--"),
    (stat.S_IFDIR | 0o1777, "drwxrwxrwt"),
    (stat.S_IFDIR | 0o1776, "drwxrwxrwT"),
    (stat.S_IFIFO | 0o600, "prw-------"),
    (stat.S_IFSOCK | 0o600, "srw-------"),
])
def test_mode_string(mode, text):
    assert listing.mode_string(mode) == text


def test_fake_mode_gives_directories_x_where_r():
    assert listing.mode_string(stat.S_IFDIR | 0o700, fake_mode=0o644) == "drwxr-xr-x"
    assert listing.mode_string(stat.S_IFREG | 0o700, fake_mode=0o644) == "-rw-r--r--"


def test_recent_file_shows_time_old_file_shows_year():
    recent = NOW - 179 * DAY
    old = NOW - 181 * DAY
    assert listing.time_field(recent, NOW) == "May 19 22:13"
    assert listing.time_field(old, NOW) == "May 17  2023"


def test_180_day_boundary_is_strict():
    assert listing.time_field(NOW - 180 * DAY, NOW).endswith(":13")        # exactly 180 days: still a time
    assert listing.time_field(NOW - 180 * DAY - 1, NOW).endswith(" 2023")


def test_future_file_shows_time():
    assert listing.time_field(NOW + 400 * DAY, NOW) == "Dec 18 22:13"


def test_day_is_space_padded():
    assert listing.time_field(1_000_000_000, NOW) == "Sep  9  2001"


def test_times_local_when_not_gmt(monkeypatch):
    monkeypatch.setenv("TZ", "UTC+5")
    time.tzset()
    try:
        assert listing.time_field(NOW, NOW, gmt=False) == "Nov 14 17:13"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_size_field():
    assert listing.size_field(5) == "       5"
    assert listing.size_field(123456789012) == "123456789012"
    assert listing.size_field(999, human=True) == "     999"
    assert listing.size_field(1536, human=True) == "    1.5k"
    assert listing.size_field(5 * 1024 ** 3, human=True) == "    5.0G"


def test_long_line_matches_proftpd_format():
    line = listing.long_line("-rw-r--r--", 1, "alice", "users", listing.size_field(1234),
                             listing.time_field(NOW - DAY, NOW), "file.txt")
    assert line == "-rw-r--r--   1 alice    users        1234 Nov 13 22:13 file.txt"


def test_long_line_symlink_and_long_names():
    line = listing.long_line("lrwxrwxrwx", 1, "averylongusername", "g", listing.size_field(5),
                             "Jan  1  2001", "ln", "target")
    assert line == "lrwxrwxrwx   1 averylongusername g               5 Jan  1  2001 ln -> target"


def test_long_line_with_real_stat(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    os.utime(path, (NOW - 10 * DAY, NOW - 10 * DAY))
    st = os.stat(path)
    line = listing.long_line(listing.mode_string(st.st_mode), st.st_nlink, "u", "g",
                             listing.size_field(st.st_size), listing.time_field(int(st.st_mtime), NOW), "f")
    assert line.endswith("       3 Nov  4 22:13 f")


def test_type_suffix():
    assert listing.type_suffix(stat.S_IFDIR | 0o755) == "/"
    assert listing.type_suffix(stat.S_IFLNK | 0o777) == "@"
    assert listing.type_suffix(stat.S_IFREG | 0o755) == "*"
    assert listing.type_suffix(stat.S_IFREG | 0o644) == ""


def test_columns_fill_down_then_across():
    names = [f"f{i}" for i in range(12)]
    lines = listing.columns(names)
    assert lines[0].startswith("f0\t")
    assert len(lines) == 2                       # 8-wide columns, 9 per row
    assert lines[1].split("\t")[0] == "f1"


# -- options --------------------------------------------------------------------------------------------------------
def test_split_options():
    assert listing.split_options("-la") == (["la"], "")
    assert listing.split_options("-l -a my dir") == (["l", "a"], "my dir")
    assert listing.split_options("dir") == ([], "dir")
    assert listing.split_options("") == ([], "")


def test_apply_flags_list():
    o = LsOptions(l=True)
    listing.apply_flags(o, "1", "LIST")
    assert o.one and not o.l
    listing.apply_flags(o, "l", "LIST")
    assert o.l and not o.one
    listing.apply_flags(o, "aRn", "LIST")
    assert o.a and o.R and o.n


def test_nlst_ignores_long_options():
    o = LsOptions()
    listing.apply_flags(o, "lnCFh", "NLST")
    assert not (o.l or o.n or o.C or o.F or o.h)
    listing.apply_flags(o, "a", "NLST")
    assert o.a


def test_stat_ignores_one():
    o = LsOptions(l=True)
    listing.apply_flags(o, "1", "STAT")
    assert o.l and not o.one


def test_config_options_plus_turns_off():
    o = LsOptions(l=True)
    listing.parse_config_options("-a +l", "LIST", o)
    assert o.a and not o.l


def test_parse_list_options_directive():
    lc = listing.parse_list_options(["-a", "strict", "maxdepth", "2", "maxfiles", "10", "maxdirs", "3",
                                     "LISTOnly", "NoErrorIfAbsent", "SortedNLST"])
    assert (lc.options, lc.strict, lc.maxdepth, lc.maxfiles, lc.maxdirs) == ("-a", True, 2, 10, 3)
    assert lc.list_only and lc.no_error_if_absent and lc.sorted_nlst and not lc.nlst_only


@pytest.mark.parametrize("args,message", [
    ([], "wrong number"), (["-a", "maxdepth", "0"], "maxdepth must be greater than 0"),
    (["-a", "maxfiles"], "maxfiles must be greater than 0"), (["-a", "bogus"], "unknown keyword: 'bogus'"),
])
def test_parse_list_options_errors(args, message):
    with pytest.raises(ValueError, match=message):
        listing.parse_list_options(args)


# -- globbing -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern, want", [
    ("a{b,c}d", ["abd", "acd"]), ("{a,b}{1,2}", ["a1", "a2", "b1", "b2"]), ("*.{txt,bin}", ["*.txt", "*.bin"]),
    ("{a,{b,c}}.txt", ["a.txt", "b.txt", "c.txt"]), ("x{y}z", ["x{y}z"]), ("open{a,b", ["open{a,b"]),
    ("{,a}", ["", "a"]), ("plain", ["plain"]),
])
def test_expand_braces(pattern, want):
    """glob(3)'s GLOB_BRACE, which ProFTPD's mod_sftp uses for `scp -f` paths."""
    assert listing.expand_braces(pattern) == want


def test_expand_braces_is_bounded():
    assert len(listing.expand_braces("{a,b}" * 30, most=100)) == 100


def test_glob_matcher():
    m = listing.glob_matcher("*.txt")
    assert m("a.txt") and not m("a.bin") and not m(".hidden.txt")
    assert listing.glob_matcher("?.t[xy]t")("a.tyt")
    assert not listing.glob_matcher("[!a]*")("abc")
    assert listing.glob_matcher(".*")(".hidden")
    assert listing.has_glob("a*") and listing.has_glob("a?") and listing.has_glob("a[b]")
    assert not listing.has_glob("plain")


# -- facts ----------------------------------------------------------------------------------------------------------
def _facts(**kw):
    base = dict(mtime=NOW, perm="adfrw", size=10, type="file", dev=0xFE00, ino=0x2A, uid=1000, gid=100,
                user="alice", group="users", mode=stat.S_IFREG | 0o644)
    base.update(kw)
    return FactValues(**base)


def test_format_facts_all():
    text = listing.format_facts(_facts(), "a.txt", listing.FACTS)
    assert text == ("modify=20231114221320;perm=adfrw;size=10;type=file;unique=FE00U2A;UNIX.group=100;"
                    "UNIX.groupname=users;UNIX.mode=0644;UNIX.owner=1000;UNIX.ownername=alice; a.txt")


def test_format_facts_dir_has_no_size_and_subset():
    text = listing.format_facts(_facts(size=None, type="dir", mode=stat.S_IFDIR | 0o755), "d", ("size", "type"))
    assert text == "type=dir; d"


def test_perm_fact():
    assert listing.perm_fact(False, True, True, False) == "adfrw"
    assert listing.perm_fact(False, False, False, False) == "dfr"
    assert listing.perm_fact(True, True, True, True) == "flcdmpe"
    assert listing.perm_fact(True, True, False, True) == "fle"


def test_mlst_opts_parsing():
    assert listing.parse_mlst_opts("size;type;") == ["size", "type"]
    assert listing.parse_mlst_opts("TYPE;Size;bogus;") == ["size", "type"]
    assert listing.parse_mlst_opts("size;type") == ["size"]           # a fact needs its ';'
    assert listing.parse_mlst_opts("") == []


def test_mlst_feat_line():
    assert listing.mlst_feat() == ("MLST modify*;perm*;size*;type*;unique*;UNIX.group*;UNIX.groupname*;"
                                   "UNIX.mode*;UNIX.owner*;UNIX.ownername*;")
    assert listing.mlst_feat(("size",)).startswith("MLST modify;perm;size*;type;")


# -- the lister on a real directory tree (no daemon) ----------------------------------------------------------------
from types import SimpleNamespace

from proftpy.fs import FS
from proftpy.listing import ListConfig
from proftpy.module import States
from proftpy.modules import ls


def _tree(root):
    (root / "d" / "e" / "f").mkdir(parents=True)
    (root / "d" / "x.txt").write_bytes(b"x")
    (root / "d" / "e" / "y.txt").write_bytes(b"yy")
    (root / "d" / "e" / "f" / "z.txt").write_bytes(b"zzz")
    for i, name in enumerate(["b.txt", "a.txt", "c.txt"]):
        (root / name).write_bytes(b"1" * (i + 1))
    (root / ".dot").write_bytes(b"")
    os.symlink("a.txt", root / "ln")
    os.symlink("/", root / "up")                    # inside the root: points at the root itself
    os.symlink("nowhere", root / "dangling")
    for p in root.rglob("*"):
        os.utime(p, (NOW - DAY, NOW - DAY), follow_symlinks=False)
    os.utime(root / "a.txt", (NOW - 400 * DAY, NOW - 400 * DAY))


_NO_HIDING = SimpleNamespace(sets=lambda name: False)    # a configuration that hides nothing anywhere
_NO_HIDING.cached = lambda build: build(_NO_HIDING)


def _lister(root, flags="", config=ListConfig(), show_symlinks=True, command="LIST"):
    empty = SimpleNamespace(all=lambda name: [], get=lambda name, default=None: None, chain=[])
    session = SimpleNamespace(fs=FS(str(root)), state=States(), server=None, user="alice", auth=None,
                              account=None, context=lambda path=None: empty,
                              config=_NO_HIDING)
    opts = LsOptions(l=command == "LIST")
    for letter in flags:
        listing.apply_flags(opts, letter, command)
    cfg = ls.Settings(show_symlinks=show_symlinks, gmt=True, globbing=True, config=config, fake_user="u",
                      fake_group="g", fake_mode=None)
    lister = ls.Lister(session, opts, cfg, command)
    lister.now = NOW
    return session, lister


def _names(lines):
    return [l.split(" -> ")[0].split(None, 8)[-1] if " " in l else l for l in lines]


def test_lister_long_lines(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path)
    lines = list(lister.dir_lines("/", "."))
    assert _names(lines) == ["a.txt", "b.txt", "c.txt", "d", "dangling", "ln", "up"]
    a = lines[0]
    mode = listing.mode_string(os.stat(tmp_path / "a.txt").st_mode)
    assert a == f"{mode}   1 u        g               2 Oct 10  2022 a.txt"     # 400 days old: the year
    assert lines[1].endswith("       1 Nov 13 22:13 b.txt")          # yesterday: time
    assert lines[5].startswith("l") and lines[5].endswith(" ln -> a.txt")
    assert lines[6].endswith(" up -> /")


def test_lister_numeric_ids(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "n")
    line = next(iter(lister.dir_lines("/", ".")))
    st = os.stat(tmp_path / "a.txt")
    assert line.split()[2:4] == [str(st.st_uid), str(st.st_gid)]


def test_line_starts_kept_per_session_follow_the_settings(tmp_path):
    """The start of a long line (mode, links, owner, group) is kept per session for the settings that shape it:
    a later listing with -n, another DirFakeUser or a new link count gets its own."""
    _tree(tmp_path)
    session, lister = _lister(tmp_path)
    first = next(iter(lister.dir_lines("/", ".")))
    st = os.stat(tmp_path / "a.txt")
    numeric = ls.Lister(session, lister.opts.__class__(l=True, n=True), lister.cfg, "LIST")
    assert next(iter(numeric.dir_lines("/", "."))).split()[2:4] == [str(st.st_uid), str(st.st_gid)]
    other = ls.Lister(session, lister.opts, dataclasses.replace(lister.cfg, fake_user="bob"), "LIST")
    assert next(iter(other.dir_lines("/", "."))).split()[2] == "bob"
    os.link(tmp_path / "a.txt", tmp_path / "a2.txt")
    again = ls.Lister(session, lister.opts, lister.cfg, "LIST")
    assert next(iter(again.dir_lines("/", "."))).split()[1] == "2" and first.split()[1] == "1"


def test_lister_dotfiles(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "a")
    assert _names(lister.dir_lines("/", "."))[:3] == [".", "..", ".dot"]
    _, lister = _lister(tmp_path, "A")
    assert _names(lister.dir_lines("/", "."))[:2] == [".dot", "a.txt"]


def test_lister_one_per_line(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "1")
    assert list(lister.dir_lines("/", ".")) == ["a.txt", "b.txt", "c.txt", "d", "dangling", "ln", "up"]


def test_lister_show_symlinks_off_follows_and_drops_dangling(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, show_symlinks=False)
    lines = list(lister.dir_lines("/", "."))
    assert "dangling" not in _names(lines)
    ln = next(l for l in lines if l.endswith(" ln"))
    assert ln.startswith("-rw-") and "2022" in ln
    up = next(l for l in lines if l.endswith(" up"))
    assert up.startswith("d")                               # "/" is the root: a directory, not the host's /


def test_lister_recursive_headers(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "R1")
    lines = list(lister.dir_lines("/d", "d"))
    assert lines == ["e", "x.txt", "", "d/e:", "f", "y.txt", "", "d/e/f:", "z.txt"]


def test_lister_recursion_does_not_follow_links(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "R1")
    lines = list(lister.dir_lines("/", "."))
    assert "up:" not in lines and "d/e/f:" in lines


def test_lister_maxdepth(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "R1", ListConfig(maxdepth=2))
    assert list(lister.dir_lines("/d", "d")) == ["e", "x.txt", "", "d/e:", "f", "y.txt"]


def test_lister_maxfiles(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "R1", ListConfig(maxfiles=3))
    assert list(lister.dir_lines("/", ".")) == ["a.txt", "b.txt", "c.txt"]


def test_lister_maxdirs(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "R1", ListConfig(maxdirs=2))
    assert list(lister.dir_lines("/d", "d")) == ["e", "x.txt", "", "d/e:", "f", "y.txt"]


def test_lister_sort_by_size_and_time(tmp_path):
    _tree(tmp_path)
    _, lister = _lister(tmp_path, "1S")
    files = [n for n in lister.dir_lines("/", ".") if n.endswith(".txt")]
    assert files == ["c.txt", "a.txt", "b.txt"]                 # largest first
    _, lister = _lister(tmp_path, "1tr")
    assert list(lister.dir_lines("/", "."))[0] == "a.txt"    # oldest first


def test_glob_inside_the_root(tmp_path):
    _tree(tmp_path)
    session, _ = _lister(tmp_path)
    assert ls.expand_glob(session, "*.txt") == ["a.txt", "b.txt", "c.txt"]
    assert ls.expand_glob(session, "/d/*/*.txt") == ["/d/e/y.txt"]
    assert ls.expand_glob(session, "up/d/*.txt") == ["up/d/x.txt"]       # through a link, still inside
    assert ls.expand_glob(session, "*.none") == []
    assert ls.expand_glob(session, ".d*") == [".dot"]


def test_windows_lines_as_iis_writes_them():
    import calendar
    import stat as st
    from proftpy.listing import windows_line
    noon = calendar.timegm((2020, 1, 2, 12, 5, 0))
    midnight = calendar.timegm((2021, 11, 30, 0, 7, 0))
    assert windows_line(st.S_IFDIR | 0o755, 4096, noon, "a dir") == "01-02-20  12:05PM       <DIR>          a dir"
    assert windows_line(st.S_IFREG | 0o644, 16, midnight, "f") == "11-30-21  12:07AM                   16 f"
    assert windows_line(st.S_IFREG, 1234567890123, midnight, "big") == "11-30-21  12:07AM            1234567890123 big"


def test_entries_sort_by_the_bytes_of_their_names_even_with_undecodable_ones():
    """ProFTPD sorts by bytes: a raw 0x80 (a surrogate in Python's str, after every CJK letter) comes before 中
    (0xE4...), while valid names alone sort the same by code point."""
    from types import SimpleNamespace

    from proftpy.modules.ls import _sort_by_name

    def order(*raw: bytes) -> list[bytes]:
        entries = [SimpleNamespace(name=r.decode("utf-8", "surrogateescape")) for r in raw]
        _sort_by_name(entries)
        return [e.name.encode("utf-8", "surrogateescape") for e in entries]

    assert order("中".encode(), b"\x80x", b"Z", b"a") == [b"Z", b"a", b"\x80x", "中".encode()]
    assert order("中".encode(), "é".encode(), b"z", b"B") == [b"B", b"z", "é".encode(), "中".encode()]
