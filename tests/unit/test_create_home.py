"""CreateHome: the directive's words as ProFTPD 1.3.8 reads them, and the home made from a skeleton."""

import os
import stat

import pytest

from proftpy.auth.home import HomeSpec, make_home, parse_create_home


def test_words_as_proftpd_reads_them(tmp_path):
    assert parse_create_home(["off", "700"]) is None
    assert parse_create_home(["on"]) == HomeSpec()
    assert parse_create_home(["on", "0750"]).mode == 0o750
    spec = parse_create_home(["on", "skel", str(tmp_path), "dirmode", "755", "uid", "~", "gid", "7", "homegid", "9",
                              "NoRootPrivs"])
    assert spec == HomeSpec(0o700, str(tmp_path), 0o755, None, 7, 9, False)


@pytest.mark.parametrize("words, message", [
    (["maybe"], "expected Boolean parameter"), ([], "expected Boolean parameter"),
    (["on", "8"], "bad mode parameter: '8'"), (["on", "abc"], "bad mode parameter: 'abc'"),
    (["on", "700", "dirmode", "9"], "bad mode parameter: '9'"), (["on", "700", "foo"], "unknown parameter: 'foo'"),
    (["on", "700", "uid", "abc"], "bad UID parameter: 'abc'"),
    (["on", "700", "uid", "99999999999"], "bad UID parameter: '99999999999'"),
    (["on", "0o755"], "bad mode parameter: '0o755'"), (["on", "+700"], "bad mode parameter: '+700'"),
    (["on", "\u0663"], "bad mode parameter: '\u0663'"), (["on", "77777"], "bad mode parameter: '77777'"),
    (["on", "uid", "9" * 5000], f"bad UID parameter: '{'9' * 5000}'"),
    (["on", "700", "skel"], "'skel' needs a value"), (["on", "700", "dirmode"], "'dirmode' needs a value"),
    (["on", "skel", "relative"], "skel path 'relative' is not a full path"),
    (["on", "skel", "/nonexistent-skel"], "unable to stat '/nonexistent-skel': No such file or directory")])
def test_errors_as_proftpd_words_them(words, message):
    with pytest.raises(ValueError) as e:
        parse_create_home(words)
    assert str(e.value) == message


def test_a_skeleton_must_be_a_directory_nobody_else_writes(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        parse_create_home(["on", "skel", str(tmp_path / "file")])
    (tmp_path / "open").mkdir()
    os.chmod(tmp_path / "open", 0o777)
    with pytest.raises(ValueError, match="is world-writable"):
        parse_create_home(["on", "skel", str(tmp_path / "open")])


def test_home_parents_and_skeleton(tmp_path):
    skel = tmp_path / "skel"
    (skel / "a" / "b").mkdir(parents=True)
    (skel / "a" / "b" / "deep.txt").write_text("deep")
    os.mkfifo(skel / "fifo")
    os.symlink("/etc/passwd", skel / "link")
    home = tmp_path / "x" / "y" / "user"
    uid, gid = os.getuid(), os.getgid()
    assert make_home(str(home), "user", uid, gid, HomeSpec(mode=0o751, skel=str(skel), dirmode=0o755,
                                                          parent_uid=None, parent_gid=None))
    assert stat.S_IMODE(home.stat().st_mode) == 0o751
    assert stat.S_IMODE((tmp_path / "x").stat().st_mode) == 0o755
    assert (home / "a" / "b" / "deep.txt").read_text() == "deep"
    assert os.readlink(home / "link") == "/etc/passwd"         # copied as a link, never followed
    assert not os.path.lexists(home / "fifo")                  # other kinds are skipped
    (home / "mine").write_text("kept")
    assert not make_home(str(home), "user", uid, gid, HomeSpec(skel=str(skel)))
    assert (home / "mine").read_text() == "kept"


def test_a_skeleton_that_cannot_be_read_still_makes_a_usable_home(tmp_path, caplog):
    home = tmp_path / "new" / "user"
    uid, gid = os.getuid(), os.getgid()
    assert make_home(str(home), "user", uid, gid, HomeSpec(mode=0o750, skel=str(tmp_path / "gone")))
    assert stat.S_IMODE(home.stat().st_mode) == 0o750 and list(home.iterdir()) == []
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o711
    assert "error copying" in caplog.text


def test_homes_below_one_directory_are_made_one_at_a_time(tmp_path):
    """Eight threads make the same home from a 200-file skeleton: one makes it, the others wait for it and find
    it complete (none returns while it is still being filled)."""
    import threading
    skel = tmp_path / "skel"
    skel.mkdir()
    for i in range(200):
        (skel / f"f{i}").write_text("x")
    home = tmp_path / "homes" / "user"
    seen, made = [], []

    def login():
        made.append(make_home(str(home), "user", os.getuid(), os.getgid(), HomeSpec(skel=str(skel))))
        seen.append(len(os.listdir(home)))

    threads = [threading.Thread(target=login) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made.count(True) == 1 and seen == [200] * 8
