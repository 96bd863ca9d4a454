"""mod_delay's DelayTable and its median algorithm (reference proftpd.md §7).

The table learns how long USER and PASS take on this server, so that a login attempt that would answer faster
than usual (an unknown user, a wrong password) waits until the usual time, plus a random jitter: the three
cases cannot be told apart by timing. ProFTPD's rows: two per server (USER, PASS), each with one array per
protocol ("ftp", "ftps", "ssh2") of the last 256 intervals in microseconds, newest last.

Layout (version 1, little-endian; docs/ban.md): a 64-byte header (magic, version, sizes, row count), then the
rows, row `2*(sid-1)` for USER and `2*(sid-1)+1` for PASS. Each row starts with its server's sid, address and
port (a table whose rows name other servers is reset, as ProFTPD resets it when the vhosts change); each protocol
array is rewritten whole by one pwrite under a blocking fcntl lock on that row's bytes, so readers never see it
torn and a session killed mid-way leaves the old or the new array.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import random
import struct
from typing import Sequence

from . import filelock

log = logging.getLogger("proftpy")

MAGIC = b"PFTPYDT\x00"
VERSION = 1
NVALUES = 256                   # ProFTPD's DELAY_NVALUES
SESSION_VALUES = NVALUES // 16  # values one session may add to a row (DELAY_SESS_NVALUES = 16)
PROTOCOLS = ("ftp", "ftps", "ssh2")
MAX_DELAY_US = 1_800_000_000    # 1800 s: no median above, no delay above
MAX_USER_INTERVAL_US = 60_000_000
USER_ROW, PASS_ROW = 0, 1

HEADER = struct.Struct("<8s I I I I I 36x")             # magic, version, header, row, values sizes, rows
ROW_HEAD = struct.Struct("<I 80s I")                    # sid, address, port
VALUES = struct.Struct(f"<16s I 4x {NVALUES}q")         # protocol, count, values (-1 = empty)
ROW = ROW_HEAD.size + len(PROTOCOLS) * VALUES.size


# -- the algorithm ---------------------------------------------------------------------------------------------
def select_k(values: list[int], k: int) -> int:
    """The k-th smallest (1-based) of `values`: ProFTPD uses Numerical Recipes' select for this; its C version
    compares the pivot's value with k where it means the index, so the value it returns is not always the k-th
    one. proftpy returns the true k-th smallest."""
    return sorted(values)[k - 1]


def median(stored: Sequence[int], interval: int) -> int:
    """The median of a row's values and this interval; -1 when it is not usable (at or above 1800 s).
    As ProFTPD reads them, the newest stored value is left out (`vals[255-i]` for i = 1..n-1)."""
    values = [v for v in list(stored)[:-1] if v >= 0] + [interval]
    m = select_k(values, (len(values) + 1) // 2)
    return -1 if m >= MAX_DELAY_US else m


def jittered(delay_us: int, max_jitter_us: int = 0, rng: random.Random | None = None) -> int:
    """The delay plus a random jitter in [0, max_jitter] (by default half of the delay), capped at 1800 s."""
    if max_jitter_us <= 0:
        max_jitter_us = delay_us // 2
    jitter = (rng or random).randint(0, max(0, max_jitter_us))
    return min(delay_us + jitter, MAX_DELAY_US)


def padding(interval_us: int, median_us: int, rng: random.Random | None = None) -> int:
    """How long to wait after a command that took `interval_us` (0 when it was not faster than the median)."""
    if median_us < 0 or interval_us >= median_us:
        return 0
    return jittered(median_us - interval_us, 0, rng)


def appended(values: Sequence[int], interval: int) -> list[int]:
    """A row's array after adding one interval: shifted left, the interval (capped) at the end."""
    return list(values[1:]) + [min(interval, MAX_DELAY_US)]


# -- the file --------------------------------------------------------------------------------------------------
def _whole(raw: bytes) -> bytes:
    """A row's values as read, or OSError(EIO) when the file ends before them: another daemon given the same
    DelayTable path made it again for its own servers."""
    if len(raw) != VALUES.size:
        raise OSError(errno.EIO, "the table is shorter than its header says (another daemon's?)")
    return raw


class DelayTableError(Exception):
    """A table that cannot be used; one line for the administrator."""


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class DelayTable:
    """The open table; `servers` are (sid, address, port) in row order."""

    def __init__(self, path: str, fd: int, servers: list[tuple[int, str, int]]):
        self.path = path
        self.fd = fd
        self.servers = servers
        self._rows = {}                 # sid -> its first row (USER; PASS follows), first of equal sids wins
        for i, (sid, _, _) in enumerate(servers):
            self._rows.setdefault(sid, 2 * i)

    @classmethod
    def open_or_create(cls, path: str, servers: list[tuple[int, str, int]]) -> "DelayTable":
        """Keep a table that fits these servers (what it learned stays), reset one that does not, with a log
        line when it was another server set, corrupt or foreign. Like the scoreboard, never a symbolic link or
        a file in a world-writable directory (anyone could have put their own table there)."""
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            try:
                os.makedirs(parent, 0o755)
            except OSError as e:
                raise DelayTableError(f"unable to open DelayTable '{path}': {e.strerror}") from None
        try:
            fd = filelock.open_table(path, "DelayTable")
        except filelock.BadLocation as e:
            raise DelayTableError(f"unable to use {e}") from None
        except OSError as e:
            raise DelayTableError(f"unable to open DelayTable '{path}': {e.strerror}") from None
        table = cls(path, fd, servers)
        try:
            with filelock.locked(table.fd, fcntl.LOCK_EX):
                problem = table._problem()
                if problem is not None:
                    if os.fstat(fd).st_size:
                        level = logging.INFO if problem.startswith("was made") else logging.WARNING
                        log.log(level, "DelayTable %s %s: resetting it", path, problem)
                    table._reset()
        except BaseException:
            os.close(fd)
            raise
        return table

    def _problem(self) -> str | None:
        size = os.fstat(self.fd).st_size
        if size == 0:
            return "is new"
        raw = os.pread(self.fd, HEADER.size, 0)
        if len(raw) < HEADER.size:
            return "is truncated"
        magic, version, hsize, rsize, vsize, rows = HEADER.unpack(raw)
        if magic != MAGIC:
            return "is not a proftpy delay table (bad magic)"
        if (version, hsize, rsize, vsize) != (VERSION, HEADER.size, ROW, VALUES.size):
            return f"has another layout (version {version})"
        if rows != 2 * len(self.servers) or size != HEADER.size + rows * ROW:
            return "was made for another set of servers"
        for i, (sid, addr, port) in enumerate(self.servers):
            for r in (2 * i, 2 * i + 1):
                head = ROW_HEAD.unpack(os.pread(self.fd, ROW_HEAD.size, HEADER.size + r * ROW))
                if (head[0], _text(head[1]), head[2]) != (sid, addr, port):
                    return "was made for another set of servers"
        return None

    def _reset(self) -> None:
        """Every row empty (values -1, as ProFTPD's memset(-1)), in one pass."""
        os.ftruncate(self.fd, 0)
        empty = b"".join(VALUES.pack(p.encode(), 0, *([-1] * NVALUES)) for p in PROTOCOLS)
        rows = []
        for sid, addr, port in self.servers:
            head = ROW_HEAD.pack(sid, addr.encode()[:79], port)
            rows += [head + empty, head + empty]
        os.pwrite(self.fd, HEADER.pack(MAGIC, VERSION, HEADER.size, ROW, VALUES.size, len(rows)) + b"".join(rows),
                  0)

    def reset(self) -> None:
        """`ftpdctl delay reset`: forget everything learned."""
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            self._reset()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def row_index(self, sid: int, which: int) -> int | None:
        first = self._rows.get(sid)
        return None if first is None else first + which

    def _values_at(self, row: int, protocol: str) -> int:
        return HEADER.size + row * ROW + ROW_HEAD.size + PROTOCOLS.index(protocol) * VALUES.size

    def read(self, row: int, protocol: str) -> tuple[int, list[int]]:
        """(count, the 256 values, newest last)."""
        raw = _whole(os.pread(self.fd, VALUES.size, self._values_at(row, protocol)))
        _, count, *values = VALUES.unpack(raw)
        return count, values

    def learn(self, row: int, protocol: str, interval: int, add: bool) -> int:
        """Under the row's lock: the median for this interval, then (when `add`) the interval recorded."""
        at = self._values_at(row, protocol)
        with filelock.locked(self.fd, fcntl.LOCK_EX, at, VALUES.size):
            raw = _whole(os.pread(self.fd, VALUES.size, at))
            name, count, *values = VALUES.unpack(raw)
            m = median(values[NVALUES - count:] if count else [], interval)
            if add:
                os.pwrite(self.fd, VALUES.pack(name, min(count + 1, NVALUES), *appended(values, interval)), at)
        return m

    def summary(self) -> list[dict]:
        """One row per server, command and protocol with values: how many and their median (the status page)."""
        rows = []
        for i, (sid, addr, port) in enumerate(self.servers):
            for which, label in ((USER_ROW, "USER"), (PASS_ROW, "PASS")):
                for proto in PROTOCOLS:
                    count, values = self.read(2 * i + which, proto)
                    if count:
                        known = sorted(values[NVALUES - count:])
                        rows.append({"server": f"{addr}#{port}", "command": label, "protocol": proto,
                                     "values": count, "median (ms)": round(known[count // 2] / 1000, 1)})
        return rows

    def info(self) -> list[str]:
        """`ftpdctl delay info`: ProFTPD's text."""
        lines: list[str] = []
        for i, (sid, addr, port) in enumerate(self.servers):
            for which, label in ((USER_ROW, "USER"), (PASS_ROW, "PASS")):
                row = 2 * i + which
                lines.append(f"Address {addr}#{port}: {label} values (usecs):")
                for proto in PROTOCOLS:
                    count, values = self.read(row, proto)
                    lines.append(f" + Protocol {proto}, {count} values:")
                    chunk = ""
                    for j in range(count):
                        chunk += f" {values[NVALUES - 1 - j]:10d}"
                        if j != 0 and j % 4 == 0:
                            lines.append(f"    {chunk}")
                            chunk = ""
                    if chunk:
                        lines.append(f"    {chunk}")
                lines.append("")
        return lines
