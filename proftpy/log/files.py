"""Log files as ProFTPD opens them (TransferLog, ExtendedLog, ServerLog, TraceLog, TLSLog and the modules' own logs):
never in a world-writable directory, never through a symbolic link unless AllowLogSymlinks, O_APPEND, and one
write(2) per line so concurrent sessions' lines never interleave."""

from __future__ import annotations

import errno
import logging
import os
import stat
from typing import Callable

log = logging.getLogger("proftpy")
LOG_MODE = 0o644                          # ProFTPD's EXTENDED_LOG_MODE / PR_TUNABLE_XFER_LOG_MODE
tap: Callable[[str, str], None] | None = None   # mod_log_forensic's capture, (what, text) of each line written


class LogRefused(OSError):
    """A log path ProFTPD would not open either."""


def open_logfile(path: str, allow_symlinks: bool = False, mode: int = LOG_MODE) -> int:
    """Open `path` for appending: refused in a world-writable directory or through a symlink (unless allowed)."""
    parent = os.path.dirname(path) or "/"
    st = os.stat(parent)
    if st.st_mode & stat.S_IWOTH:
        raise LogRefused(errno.EPERM, f"parent directory {parent} is world-writable")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode) and not allow_symlinks:
            raise LogRefused(errno.ELOOP, f"{path} is a symbolic link")
    except FileNotFoundError:
        pass                        # it will be created
    if not allow_symlinks:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode) and not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        raise LogRefused(errno.EINVAL, f"{path} is not a regular file")
    return fd


def write_line(fd: int, text: str, what: str) -> None:
    """One write(2) per line: O_APPEND makes it land whole at the end, whatever other sessions write."""
    if tap is not None:
        tap(what, text)
    data = text.encode("utf-8", "surrogateescape")
    try:
        n = os.write(fd, data)
    except OSError as e:
        log.error("cannot write %s: %s", what, e.strerror)
        return
    if n != len(data):
        log.error("short write to %s (%d of %d bytes)", what, n, len(data))
