"""UseLastlog: a login recorded in /var/log/lastlog (what `lastlog(8)` shows), as ProFTPD writes it: the record
at offset uid x 292 (`struct lastlog`: the time as int32, the line `ftpd<pid>` in 32 bytes, the client's address
in 256), or, where /var/log/lastlog is a directory, a file named after the user in it."""

from __future__ import annotations

import os
import stat
import struct
import time

LASTLOG = "/var/log/lastlog"
RECORD = struct.Struct("=i32s256s")


def record(uid: int, user: str, line: str, host: str, path: str = LASTLOG, now: float | None = None) -> None:
    """Write the login's record; OSError says why it could not (the login goes on: the caller logs it)."""
    data = RECORD.pack(int(now if now is not None else time.time()) & 0x7FFFFFFF,
                       line.encode("ascii", "replace")[:31], host.encode("ascii", "replace")[:255])
    if stat.S_ISDIR(os.stat(path).st_mode):
        if "/" in user or user in ("", ".", ".."):
            raise OSError(f"cannot name a lastlog file after '{user}'")
        path, offset, flags = os.path.join(path, user), 0, os.O_NOFOLLOW
    else:
        offset, flags = uid * RECORD.size, 0
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | flags, 0o600)
    try:
        if os.pwrite(fd, data, offset) != len(data):
            raise OSError("short write to lastlog")
    finally:
        os.close(fd)
