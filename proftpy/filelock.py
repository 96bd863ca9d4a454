"""The fcntl record lock shared by the file-backed tables (scoreboard, BanTable, DelayTable)."""
from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator


@contextlib.contextmanager
def locked(fd: int, kind: int, start: int = 0, length: int = 0) -> Iterator[None]:
    """Blocking fcntl record lock (F_SETLKW); length 0 means to the end of the file and beyond."""
    fcntl.lockf(fd, kind, length, start, os.SEEK_SET)
    try:
        yield
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN, length, start, os.SEEK_SET)
