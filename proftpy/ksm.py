"""Kernel same-page merging (KSM) for the master and the sessions it forks (`MemoryMerge`, on by default).

A session is a fork of the master. CPython writes the reference count of every object it touches, so each
session copies about 4 MB of the master's pages, although most of those copies end byte-identical to the
master's page or to the same page of every other idle session. KSM (the kernel's `ksmd`) finds identical
anonymous pages of processes that opted in and maps them to one copy-on-write page again: an idle session then
owns under 0.5 MB (docs/performance.md, "Session memory").

Opting in is harmless while ksmd is off (`/sys/kernel/mm/ksm/run` 0, Debian's default): the kernel only scans
when the administrator turns it on. Linux 6.4+ marks the whole process, and every process it forks, with one
prctl (PR_SET_MEMORY_MERGE); older kernels get madvise(MADV_MERGEABLE) on the anonymous mappings the master
has at that moment, which covers the preloaded heap that sessions share.
"""

from __future__ import annotations

import ctypes
import errno

PR_SET_MEMORY_MERGE = 67
PR_GET_MEMORY_MERGE = 68
MADV_MERGEABLE = 12
RUN_FILE = "/sys/kernel/mm/ksm/run"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class KsmError(OSError):
    pass


def enable(maps_path: str = "/proc/self/maps") -> str:
    """Opt this process (and the children it forks from now on) in; returns "prctl" or "madvise", the way
    that worked. Raises KsmError when the kernel has no KSM."""
    if _libc.prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) == 0:
        return "prctl"
    err = ctypes.get_errno()
    if err not in (errno.EINVAL, errno.ENOSYS):
        raise KsmError(err, f"prctl(PR_SET_MEMORY_MERGE): {errno.errorcode.get(err, err)}")
    for start, length in anonymous_mappings(maps_path):
        if _libc.madvise(start, length, MADV_MERGEABLE) != 0:
            err = ctypes.get_errno()
            raise KsmError(err, f"madvise(MADV_MERGEABLE): {errno.errorcode.get(err, err)}")
    return "madvise"


def anonymous_mappings(maps_path: str = "/proc/self/maps") -> list[tuple[int, int]]:
    """(start, length) of the private writable anonymous mappings: the heap and Python's arenas."""
    out = []
    with open(maps_path) as f:
        for line in f:
            fields = line.split()
            if fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            out.append((lo, hi - lo))
    return out


def running() -> bool | None:
    """Whether ksmd merges pages now (None: this kernel has no KSM, or it cannot be read)."""
    try:
        with open(RUN_FILE) as f:
            return f.read().strip() == "1"
    except OSError:
        return None
