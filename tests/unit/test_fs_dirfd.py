"""fs.py's tree operations: the parent directory opened inside the root, the final name acted on relative to it.

The swap tests resolve a path, then replace a directory on it with a link to a directory outside the root (what a
second session of the same account can do), then run the operation: it must fail inside the root and leave the
outside alone, as `FS.open` does for transfers."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from proftpy.fs import FS


@pytest.fixture
def tree(tmp_path):
    """root/d/{f.txt, sub/} and outside/{f.txt, sub/}: the same names on both sides of the wall."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for base in (root / "d", outside):
        (base / "sub").mkdir(parents=True)
        (base / "f.txt").write_bytes(b"inside" if base != outside else b"outside")
        os.utime(base / "f.txt", (1e9, 1e9))
    return root, outside


def state(path: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(path))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns)
    return out


OPERATIONS = {
    "mkdir": ("d/new", lambda fs, real: fs.mkdir(real, 0o755)),
    "rmdir": ("d/sub", lambda fs, real: fs.rmdir(real)),
    "unlink": ("d/f.txt", lambda fs, real: fs.unlink(real)),
    "rename-from": ("d/f.txt", lambda fs, real: fs.rename(real, fs.resolve("/moved.txt").real)),
    "rename-to": ("d/g.txt", lambda fs, real: fs.rename(fs.resolve("/own.txt").real, real)),
    "chmod": ("d/f.txt", lambda fs, real: fs.chmod(real, 0o600)),
    "chown": ("d/f.txt", lambda fs, real: fs.chown(real, -1, 1)),
    "utime": ("d/f.txt", lambda fs, real: fs.utime(real, (2e9, 2e9))),
    "symlink": ("d/link", lambda fs, real: fs.symlink("/own.txt", real)),
    "link-from": ("d/f.txt", lambda fs, real: fs.link(real, fs.resolve("/linked.txt").real)),
    "link-to": ("d/g.txt", lambda fs, real: fs.link(fs.resolve("/own.txt").real, real)),
    "remove_tree": ("d/sub", lambda fs, real: fs.remove_tree(real, 10)),
    "lstat": ("d/f.txt", lambda fs, real: fs.lstat(real)),
    "stat": ("d/f.txt", lambda fs, real: fs.stat(real)),
    "copy": ("d/f.txt", lambda fs, real: fs.copy(real, fs.resolve("/copy.txt").real)),
    "readlink": ("d/f.txt", lambda fs, real: fs.readlink(real)),
    "statvfs": ("d/f.txt", lambda fs, real: fs.statvfs(real)),
    "scandir": ("d/sub", lambda fs, real: _scan(fs, real)),
    "create_unique": ("d/sub", lambda fs, real: os.close(fs.create_unique(real, "ftp")[0])),
}


def _scan(fs: FS, real: str) -> list[str]:
    with fs.scandir(real) as it:
        return [e.name for e in it]


@pytest.mark.parametrize("link", ["absolute", "relative"])
@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_operation_stays_inside_after_a_directory_is_swapped_for_a_link(tree, op, link):
    root, outside = tree
    (root / "own.txt").write_bytes(b"own")
    arg, run = OPERATIONS[op]
    fs = FS(str(root))
    path = fs.resolve(arg, follow_last=False)
    before = state(outside)
    (root / "d").rename(root / "d.moved")
    os.symlink(str(outside) if link == "absolute" else os.path.relpath(outside, root), root / "d")
    with pytest.raises(FileNotFoundError):          # the link is followed inside the root, where it leads nowhere
        run(fs, path.real)
    assert state(outside) == before
    assert (root / "own.txt").read_bytes() == b"own"


def test_a_directory_opened_before_the_swap_keeps_the_operation_in_it(tree):
    """What the parent fd buys: once `FS.parent` has the directory, a swap of its path changes nothing."""
    root, outside = tree
    fs = FS(str(root))
    before = state(outside)
    with fs.parent(fs.resolve("d/new").real) as (fd, name):
        (root / "d").rename(root / "d.moved")
        os.symlink(str(outside), root / "d")
        os.mkdir(name, dir_fd=fd)
    assert (root / "d.moved" / "new").is_dir()
    assert state(outside) == before


def test_parent_of_a_path_and_of_the_root(tree):
    root, _ = tree
    fs = FS(str(root))
    with fs.parent(str(root / "d" / "f.txt")) as (fd, name):
        assert name == "f.txt"
        assert os.path.samestat(os.fstat(fd), os.stat(root / "d"))
    with fs.parent(fs.root) as (fd, name):
        assert name == "."
        assert os.path.samestat(os.fstat(fd), os.stat(root))
    for bad in (f"{root}/d/..", f"{root}/d/.", f"{root}/d/"):
        with pytest.raises(ValueError):
            with fs.parent(bad):
                pass
    with pytest.raises(ValueError):                 # not inside the root at all
        fs.mkdir(str(root.parent / "elsewhere"))


def test_the_root_itself_fails_as_under_chroot(tree):
    root, _ = tree
    fs = FS(str(root))
    assert stat.S_ISDIR(fs.lstat(fs.root).st_mode) and stat.S_ISDIR(fs.stat(fs.root).st_mode)
    for op, err in ((fs.rmdir, errno.EINVAL), (fs.unlink, errno.EISDIR), (fs.mkdir, errno.EEXIST)):
        with pytest.raises(OSError) as e:
            op(fs.root)
        assert e.value.errno == err
    assert root.is_dir()


def test_final_links_are_acted_on_as_links(tree):
    root, outside = tree
    fs = FS(str(root))
    os.symlink(str(outside / "f.txt"), root / "d" / "out")       # in the jail: <root>/<outside>/f.txt, missing
    before = state(outside)
    link = fs.resolve("d/out", follow_last=False).real
    assert stat.S_ISLNK(fs.lstat(link).st_mode)
    assert not fs.exists(link)                                   # followed inside the root, where it leads nowhere
    with pytest.raises(FileNotFoundError):
        fs.stat(link)
    with pytest.raises(OSError) as e:
        fs.chmod(link, 0o777)                                   # never through a link
    assert e.value.errno == errno.EOPNOTSUPP
    fs.chown(link, -1, 1)
    fs.utime(link, (3e9, 3e9))
    assert os.lstat(link).st_gid == 1 and os.lstat(link).st_mtime == 3e9
    fs.rename(link, fs.resolve("d/out2").real)
    assert os.readlink(root / "d" / "out2") == str(outside / "f.txt")
    fs.unlink(fs.resolve("d/out2", follow_last=False).real)
    assert not os.path.lexists(root / "d" / "out2")
    assert state(outside) == before


def test_stat_and_exists_follow_links_inside_the_root(tree):
    root, _ = tree
    fs = FS(str(root))
    os.symlink("/d/f.txt", root / "abs")                          # absolute: means <root>/d/f.txt
    real = fs.resolve("abs", follow_last=False).real
    assert fs.exists(real)
    assert fs.stat(real).st_size == len(b"inside")
    assert stat.S_ISLNK(fs.lstat(real).st_mode)


def test_plain_operations(tree):
    root, _ = tree
    fs = FS(str(root))
    old = os.umask(0)
    try:
        fs.mkdir(fs.resolve("d/new").real, 0o750)
    finally:
        os.umask(old)
    assert stat.S_IMODE((root / "d" / "new").stat().st_mode) == 0o750
    fs.chmod(fs.resolve("d/f.txt").real, 0o604)
    assert stat.S_IMODE((root / "d" / "f.txt").stat().st_mode) == 0o604
    fs.utime(fs.resolve("d/f.txt").real, (5, 7))
    assert (root / "d" / "f.txt").stat().st_mtime == 7
    fs.symlink("/d/f.txt", fs.resolve("d/ln").real)
    assert os.readlink(root / "d" / "ln") == "/d/f.txt"
    fs.rename(fs.resolve("d/f.txt").real, fs.resolve("d/sub/g.txt").real)
    assert (root / "d" / "sub" / "g.txt").read_bytes() == b"inside"
    with pytest.raises(FileExistsError):
        fs.mkdir(fs.resolve("d/sub").real)
    fs.rmdir(fs.resolve("d/new").real)
    with pytest.raises(OSError) as e:
        fs.rmdir(fs.resolve("d/sub").real)
    assert e.value.errno == errno.ENOTEMPTY
    fs.unlink(fs.resolve("d/sub/g.txt").real)
    assert sorted(os.listdir(root / "d")) == ["ln", "sub"]


def test_remove_tree_removes_links_never_their_targets(tree):
    root, outside = tree
    fs = FS(str(root))
    top = root / "d" / "sub"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "x.txt").write_bytes(b"x")
    os.symlink(str(outside), top / "a" / "out-dir")
    os.symlink(str(outside / "f.txt"), top / "out-file")
    before = state(outside)
    fs.remove_tree(fs.resolve("d/sub").real, 10)
    assert not top.exists()
    assert state(outside) == before


def test_remove_tree_stops_below_max_depth(tree):
    root, _ = tree
    fs = FS(str(root))
    deep = root / "d" / "sub" / "1" / "2" / "3"
    deep.mkdir(parents=True)
    with pytest.raises(OSError) as e:
        fs.remove_tree(fs.resolve("d/sub").real, 2)
    assert e.value.errno == errno.ELOOP
    assert deep.is_dir()
    fs.remove_tree(fs.resolve("d/sub").real, 3)
    assert not (root / "d" / "sub").exists()


def test_copy_a_file_a_link_and_refuse_the_rest(tree):
    root, _ = tree
    fs = FS(str(root))
    os.chmod(root / "d" / "f.txt", 0o640)
    fs.copy(fs.resolve("d/f.txt").real, fs.resolve("d/c.txt").real)
    copied = (root / "d" / "c.txt").stat()
    assert (root / "d" / "c.txt").read_bytes() == b"inside"
    assert (stat.S_IMODE(copied.st_mode), copied.st_mtime) == (0o640, 1e9)
    os.symlink("/d/f.txt", root / "d" / "ln")
    fs.copy(fs.resolve("d/ln", follow_last=False).real, fs.resolve("d/ln2").real)
    assert os.readlink(root / "d" / "ln2") == "/d/f.txt"
    os.mkfifo(root / "d" / "fifo")
    with pytest.raises(OSError) as e:
        fs.copy(fs.resolve("d/fifo").real, fs.resolve("d/fifo2").real)
    assert e.value.errno == errno.EPERM


def test_kernel_chroot_and_unjailed_sessions_use_the_same_operations(tree):
    """root "/" (under chroot(2), or no DefaultRoot): the paths are used as they are."""
    root, _ = tree
    fs = FS("/")
    fs.mkdir(str(root / "d" / "new"))
    fs.rename(str(root / "d" / "new"), str(root / "d" / "new2"))
    fs.chmod(str(root / "d" / "f.txt"), 0o600)
    assert stat.S_IMODE(fs.stat(str(root / "d" / "f.txt")).st_mode) == 0o600
    fs.rmdir(str(root / "d" / "new2"))
    fs = FS("/", chroot=str(root))
    fs.unlink(str(root / "d" / "f.txt"))
    assert sorted(os.listdir(root / "d")) == ["sub"]


def test_open_a_directory_as_o_path_inside_the_root(tree):
    """O_PATH|O_DIRECTORY shares bits with O_TMPFILE: no mode may be passed to openat2 for it (EINVAL)."""
    root, _ = tree
    fs = FS(str(root))
    fd = fs.open(str(root / "d"), os.O_PATH | os.O_DIRECTORY)
    try:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def test_access_follows_links_inside_the_root_and_fails_outside(tree):
    root, outside = tree
    fs = FS(str(root))
    os.symlink("/d/f.txt", root / "abs")
    assert fs.access(fs.resolve("abs", follow_last=False).real, os.R_OK)
    assert fs.access(fs.resolve("d").real, os.R_OK | os.X_OK)
    assert not fs.access(fs.resolve("missing").real, os.F_OK)
    real = fs.resolve("d/f.txt").real
    (root / "d").rename(root / "d.moved")
    os.symlink(str(outside), root / "d")                  # outside/f.txt exists and is readable
    assert not fs.access(real, os.R_OK)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read anything")
def test_access_says_no_for_a_file_without_permission(tree):
    root, _ = tree
    fs = FS(str(root))
    os.chmod(root / "d" / "f.txt", 0)
    assert not fs.access(fs.resolve("d/f.txt").real, os.R_OK)
    assert FS("/").access(str(root / "d" / "f.txt"), os.R_OK) is False


def test_scandir_entries_stay_in_the_directory_opened(tree):
    """In the jail the entries' lstat is relative to the directory opened inside the root: a swap of its path
    while the listing runs changes nothing."""
    root, outside = tree
    fs = FS(str(root))
    with fs.scandir(fs.resolve("d").real) as it:
        (root / "d").rename(root / "d.moved")
        os.symlink(str(outside), root / "d")
        sizes = {e.name: e.stat(follow_symlinks=False).st_size for e in it if not e.is_symlink()}
    assert sizes["f.txt"] == len(b"inside")
    assert set(sizes) == {"f.txt", "sub"}


def test_scandir_without_a_jail_gives_full_paths(tree):
    root, _ = tree
    with FS("/").scandir(str(root / "d")) as it:
        assert sorted(e.path for e in it) == [str(root / "d" / "f.txt"), str(root / "d" / "sub")]


def test_create_unique_makes_a_new_file_each_time(tree):
    root, _ = tree
    fs = FS(str(root))
    made = set()
    for _ in range(20):
        fd, real = fs.create_unique(fs.resolve("d").real, "ftp", 0o600)
        os.close(fd)
        made.add(real)
    assert len(made) == 20
    for real in made:
        name = os.path.basename(real)
        assert os.path.dirname(real) == str(root / "d") and name.startswith("ftp") and len(name) == 11
        assert stat.S_ISREG(os.lstat(real).st_mode) and stat.S_IMODE(os.lstat(real).st_mode) == 0o600


def test_lexists_sees_dangling_links_and_canonical_resolves_them(tree):
    root, _ = tree
    fs = FS(str(root))
    os.symlink("nowhere", root / "dangling")
    real = fs.resolve("dangling", follow_last=False).real
    assert fs.lexists(real) and not fs.exists(real)
    os.symlink("d/sub", root / "to-sub")
    assert fs.canonical(fs.resolve("to-sub")) == "/d/sub"
    unjailed = FS("/")
    assert unjailed.canonical(unjailed.resolve(str(root / "to-sub"))) == str(root / "d" / "sub")


def test_access_all_asks_several_modes_of_one_path(tree):
    root, _ = tree
    for fs in (FS(str(root)), FS("/")):
        real = str(root / "d") if fs.root == "/" else fs.resolve("d").real
        assert fs.access_all(real, (os.R_OK, os.W_OK, os.X_OK)) == (True, True, True)
        assert fs.access_all(real + "/missing", (os.R_OK, os.W_OK)) == (False, False)


def test_the_jail_root_is_pinned_at_first_use_as_chroot_pins_it(tree):
    """Once a session has used its root, a directory put in its place later is not where its paths lead."""
    root, outside = tree
    fs = FS(str(root))
    assert fs.stat(fs.resolve("d/f.txt").real).st_size == len(b"inside")
    root.rename(root.with_name("root.moved"))
    (outside / "d").mkdir()
    (outside / "d" / "f.txt").write_bytes(b"impostor!")
    os.symlink(str(outside), root)
    assert fs.stat(fs.real_of("/d/f.txt")).st_size == len(b"inside")
