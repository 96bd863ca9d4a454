"""What the file-backed tables (scoreboard, BanTable, DelayTable, the TLS session and stat caches) share: their
fcntl record lock, ProFTPD's rules for where such a file may live, and laying a mapped table."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import stat
from typing import Iterator


@contextlib.contextmanager
def locked(fd: int, kind: int, start: int = 0, length: int = 0) -> Iterator[None]:
    """Blocking fcntl record lock (F_SETLKW); length 0 means to the end of the file and beyond."""
    fcntl.lockf(fd, kind, length, start, os.SEEK_SET)
    try:
        yield
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN, length, start, os.SEEK_SET)


class BadLocation(Exception):
    """A table file where ProFTPD would not use it; `errno` set when the directory could not be looked at."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_


def check_location(path: str, what: str, sticky_ok: bool = False) -> None:
    """ProFTPD's rules for a shared table: no symbolic link, no world-writable directory (anyone could put a
    file of theirs in its place), unless `sticky_ok` and the directory has the sticky bit. Raises BadLocation
    with a message naming `what`."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        pst = os.stat(parent)
    except OSError as e:
        raise BadLocation(f"{what} {path}: directory {parent}: {e.strerror}", e.errno) from None
    if pst.st_mode & stat.S_IWOTH and not (sticky_ok and pst.st_mode & stat.S_ISVTX):
        raise BadLocation(f"{what} {path}: refusing to use world-writable directory {parent}")
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise BadLocation(f"{what} {path}: refusing to use a symbolic link")
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise BadLocation(f"{what} {path}: {e.strerror}", e.errno) from None


def open_table(path: str, what: str, mode: int = 0o600) -> int:
    """Open (creating) a shared table file where ProFTPD would use one (`check_location`), never through a
    symbolic link, and only a regular file. Raises BadLocation (where it is, what it is) or OSError (the open)."""
    check_location(path, what)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadLocation(f"{what} '{path}': not a regular file")
    return fd


def map_table(fd: int, header: bytes, length: int, keep: int = 0) -> mmap.mmap:
    """The open table file made `length` bytes that begin with `header`, mapped shared. A file of that length whose
    first `keep` bytes already match the header keeps what it holds; any other is laid afresh (it only held a
    cache). Raises OSError."""
    with locked(fd, fcntl.LOCK_EX):
        if not keep or os.fstat(fd).st_size != length or os.pread(fd, keep, 0) != header[:keep]:
            os.ftruncate(fd, 0)
            os.ftruncate(fd, length)
            os.pwrite(fd, header, 0)
    return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
