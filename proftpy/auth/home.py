"""CreateHome (ProFTPD's mod_auth): a home directory made at login when it is missing, its missing parents with
it, filled from a skeleton directory.

`CreateHome off|on [mode] [skel path] [dirmode mode] [uid n|~] [gid n|~] [homegid n] [NoRootPrivs]`, as ProFTPD
1.3.8 reads it. The home gets `mode` (0700) and belongs to the user (group: `homegid`, else the user's); parents
get `dirmode` (0711) and belong to `uid`/`gid` (root's; `~`: the user's). The caller runs `make_home` with root
privileges (the user's with NoRootPrivs), before the session's chroot.

The skeleton is copied into the new home while it and its new parents still belong to root and are closed to
everyone else (each step relative to an open descriptor), so nobody can slip a link in for the copy to follow; the
home is renamed into place complete, and its new parents are given away last, also when something failed.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass

from ..config.types import parse_bool
from . import MAX_ID

log = logging.getLogger("proftpy")

MAX_SKEL_DEPTH = 32             # a skeleton deeper than this is cut there (logged)


@dataclass(frozen=True)
class HomeSpec:
    """One CreateHome line that is on. `parent_uid`/`parent_gid`: None is the user's own (`~`)."""

    mode: int = 0o700
    skel: str | None = None
    dirmode: int = 0o711
    parent_uid: int | None = 0
    parent_gid: int | None = 0
    home_gid: int | None = None
    root_privs: bool = True


def parse_create_home(args: list[str]) -> HomeSpec | None:
    """The directive's words; ValueError with ProFTPD's texts (None: CreateHome off)."""
    try:
        if not parse_bool(args[0] if args else ""):
            return None
    except ValueError:
        raise ValueError("expected Boolean parameter") from None
    fields: dict = {}
    rest = args[1:]
    if rest and rest[0].lower() not in _KEYWORDS:
        fields["mode"] = _mode(rest.pop(0))
    while rest:
        key = rest.pop(0)
        lower = key.lower()
        if lower == "norootprivs":
            fields["root_privs"] = False
            continue
        if lower not in _KEYWORDS:
            raise ValueError(f"unknown parameter: '{key}'")
        if not rest:
            raise ValueError(f"'{key}' needs a value")
        value = rest.pop(0)
        if lower == "skel":
            fields["skel"] = _skel(value)
        elif lower == "dirmode":
            fields["dirmode"] = _mode(value)
        elif lower in ("uid", "gid"):
            fields["parent_" + lower] = None if value == "~" else _id(value, lower.upper())
        else:                                   # homegid
            fields["home_gid"] = _id(value, "GID")
    return HomeSpec(**fields)


_KEYWORDS = ("skel", "dirmode", "uid", "gid", "homegid", "norootprivs")


def _mode(word: str) -> int:
    """Up to four octal digits, as strtol(3) with base 8 reads a mode (no `0o`, no sign, no other digits)."""
    if not 1 <= len(word) <= 4 or word.strip("01234567"):
        raise ValueError(f"bad mode parameter: '{word}'")
    return int(word, 8)


def _id(word: str, kind: str) -> int:
    if not word.isascii() or not word.isdigit() or len(word) > 10 or int(word) > MAX_ID:
        raise ValueError(f"bad {kind} parameter: '{word}'")
    return int(word)


def _skel(path: str) -> str:
    """The skeleton must be an absolute path to a directory that not everybody may write to."""
    if not path.startswith("/"):
        raise ValueError(f"skel path '{path}' is not a full path")
    try:
        st = os.stat(path)
    except OSError as e:
        raise ValueError(f"unable to stat '{path}': {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"'{path}' is not a directory")
    if st.st_mode & stat.S_IWOTH:
        raise ValueError(f"'{path}' is world-writable")
    return path


def make_home(home: str, user: str, uid: int, gid: int, spec: HomeSpec) -> bool:
    """Make `home` and its missing parents when it does not exist; True when it was made. OSError when a
    directory cannot be made (the login then fails as for a missing home). The home is filled under a temporary
    name beside it and renamed into place complete (never over another), so a second login of a new user at the
    same moment finds either no home (and makes its own, which loses the race and is removed) or a finished one."""
    home = os.path.normpath(home)
    if not home.startswith("/") or os.path.lexists(home):
        return False
    log.debug("creating home directory '%s' for user '%s'", home, user)
    parent, name = os.path.split(home)
    missing = []
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    made = [path for path in reversed(missing) if _mkdir(path)]
    try:
        temp = tempfile.mkdtemp(prefix=f".{name}.", dir=os.path.dirname(home))     # 0700, root's
        try:
            _fill(temp, (uid, spec.home_gid if spec.home_gid is not None else gid), spec)
            _rename_noreplace(temp, home)
        except BaseException as e:
            shutil.rmtree(temp, ignore_errors=True)
            if isinstance(e, FileExistsError):
                return False                    # another login's home is in place
            raise
    finally:                                    # given away innermost first, even when the home failed: until
        owner = (uid if spec.parent_uid is None else spec.parent_uid,        # then only root could enter them
                 gid if spec.parent_gid is None else spec.parent_gid)
        for path in reversed(made):
            _give(path, owner, spec.dirmode)
            log.debug("CreateHome: directory '%s' created", path)
    log.debug("home directory '%s' created", home)
    return True


def _fill(directory: str, owner: tuple[int, int], spec: HomeSpec) -> None:
    """The new home, still closed: the skeleton copied in, then given to the user with its mode. A skeleton that
    cannot be read is logged; the home is still made."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if spec.skel:
            log.debug("copying skel files from '%s' into '%s'", spec.skel, directory)
            try:
                _copy_tree(spec.skel, fd, owner, 0)
            except OSError as e:
                log.warning("CreateHome: error copying '%s' skel files: %s", spec.skel, e.strerror or e)
        _give(fd, owner, spec.mode)
    finally:
        os.close(fd)


def _give(target: str | int, owner: tuple[int, int], mode: int) -> None:
    """Owner (as root only: with NoRootPrivs what the user makes is the user's already) and mode of a directory,
    by path or by descriptor."""
    if os.geteuid() == 0:
        os.chown(target, *owner, follow_symlinks=False) if isinstance(target, str) else os.fchown(target, *owner)
    os.chmod(target, mode)


def _mkdir(path: str) -> bool:
    """A missing parent, root's and closed until the end; False when another login made it meanwhile."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    return True


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def _rename_noreplace(src: str, dst: str) -> None:
    """rename(2) that fails with FileExistsError instead of replacing `dst` (renameat2 RENAME_NOREPLACE; where
    the kernel or file system lacks it, a check first: a race then replaces only an empty directory)."""
    rename2 = getattr(_libc, "renameat2", None)
    if rename2 is not None:
        if rename2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(err, os.strerror(err), dst)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def _copy_tree(src: str, dst_fd: int, owner: tuple[int, int], depth: int) -> None:
    """The skeleton's files, directories and links into the directory open as `dst_fd` (which nobody else can
    write yet: every step is relative to the descriptor, so renaming a directory on the way changes nothing), as
    the user's. Other kinds (devices, FIFOs, sockets) are skipped; what cannot be copied is logged and skipped."""
    if depth >= MAX_SKEL_DEPTH:
        log.warning("CreateHome: skel directory '%s' is nested too deeply: not copied further", src)
        return
    for entry in os.scandir(src):
        name = entry.name
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), name, dir_fd=dst_fd)
            elif stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dst_fd)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_fd)
                try:
                    _copy_tree(entry.path, sub, owner, depth + 1)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(entry.path, name, dst_fd)
            else:
                log.debug("CreateHome: skipping skel file '%s'", entry.path)
                continue
            os.chown(name, *owner, dir_fd=dst_fd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)   # made by us: not a link
        except OSError as e:
            log.warning("CreateHome: error copying '%s' skel files: %s", entry.path, e.strerror or e)


def _copy_file(source: str, name: str, dst_fd: int) -> None:
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst_fd)
        try:
            while os.sendfile(dst, src, None, 1 << 20):
                pass
        finally:
            os.close(dst)
    finally:
        os.close(src)
