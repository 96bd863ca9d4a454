"""mod_shaper's ShaperTable: the daemon's overall rates and default shares, and one record per shaped session, in
ProFTPD's layout; the rate arithmetic (a session's rate is its shares' part of the overall rate); the texts of
`ftpdctl shaper all|sess|info`; ShaperAll's and ShaperSession's words.

Layout (ProFTPD 1.3.8's, native byte order, no padding, `long double` as the C compiler stores it: 16 bytes on
x86-64): a header of default priority (int), overall downrate (long double, KB/s), default downshares
(unsigned), overall uprate (long double), default upshares (unsigned), number of sessions (unsigned), then that
many records of pid (int), priority (unsigned), downshares adjustment (int), downrate (long double), upshares
adjustment (int), uprate (long double). The writer rewrites the whole file under a blocking fcntl lock on all of
it; readers take a shared lock (a session's signal handler reads without one and keeps its rates when the read
does not find it).
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import os
import struct
from typing import Iterator

from . import filelock

LDOUBLE = ctypes.sizeof(ctypes.c_longdouble)
HEADER = struct.Struct(f"=i{LDOUBLE}sI{LDOUBLE}sII")     # def_prio, downrate, def_downshares, uprate, ...
RECORD = struct.Struct(f"=iIi{LDOUBLE}si{LDOUBLE}s")     # pid, prio, downincr, downrate, upincr, uprate

DEFAULT_PRIORITY = 10
DEFAULT_RATE = -1.0
DEFAULT_SHARES = 5
NO_PRIORITY = -1            # ShaperSession without `priority`: the table's default applies


def _ld(value: float) -> bytes:
    return bytes(ctypes.c_longdouble(value))


def _float(raw: bytes) -> float:
    return ctypes.c_longdouble.from_buffer_copy(raw).value


@dataclasses.dataclass
class Entry:
    """One shaped session."""
    pid: int
    prio: int
    downincr: int = 0
    upincr: int = 0
    downrate: float = 0.0           # KB/s, as the last rewrite computed
    uprate: float = 0.0


@dataclasses.dataclass
class Table:
    """The table's contents: overall settings (ShaperAll, `ftpdctl shaper all`) and the shaped sessions."""
    prio: int = DEFAULT_PRIORITY
    downrate: float = DEFAULT_RATE
    downshares: int = DEFAULT_SHARES
    uprate: float = DEFAULT_RATE
    upshares: int = DEFAULT_SHARES
    sessions: list[Entry] = dataclasses.field(default_factory=list)

    # -- the arithmetic (ProFTPD's shaper_table_send) --------------------------------------------------------
    def totals(self) -> tuple[int, int]:
        """Total shares of all sessions, down and up (at least 1 each)."""
        down = sum(self.downshares + e.downincr for e in self.sessions)
        up = sum(self.upshares + e.upincr for e in self.sessions)
        return max(down, 1), max(up, 1)

    def share_out(self) -> None:
        """Each session's rates: the overall rate divided by the total shares, times the session's shares."""
        down, up = self.totals()
        for e in self.sessions:
            e.downrate = self.downrate / down * (self.downshares + e.downincr)
            e.uprate = self.uprate / up * (self.upshares + e.upincr)

    def set(self, word: str, value: float | int) -> None:
        """Apply one checked setting (`setting`)."""
        for name in SETTINGS[word][0]:
            setattr(self, name, value)

    def find(self, pid: int) -> Entry | None:
        return next((e for e in self.sessions if e.pid == pid), None)

    def adjust(self, pid: int, prio: int, downincr: int, upincr: int) -> bool:
        """`shaper sess` on one session: shares changed where the session keeps at least one; False when the
        session is not there or neither change was possible (ProFTPD's shaper_table_sess_modify)."""
        e = self.find(pid)
        if e is None:
            return False
        down_ok = self.downshares + e.downincr + downincr >= 1
        up_ok = self.upshares + e.upincr + upincr >= 1
        if down_ok:
            e.downincr += downincr
        if up_ok:
            e.upincr += upincr
        if prio != NO_PRIORITY:
            e.prio = prio
        return down_ok or up_ok

    # -- bytes -----------------------------------------------------------------------------------------------
    def pack(self) -> bytes:
        head = HEADER.pack(self.prio, _ld(self.downrate), self.downshares, _ld(self.uprate), self.upshares,
                           len(self.sessions))
        return head + b"".join(RECORD.pack(e.pid, e.prio, e.downincr, _ld(e.downrate), e.upincr, _ld(e.uprate))
                               for e in self.sessions)

    @classmethod
    def unpack(cls, raw: bytes) -> "Table":
        """A table from its bytes; raises ValueError when they are not a whole table."""
        if len(raw) < HEADER.size:
            raise ValueError("truncated header")
        prio, down, dshares, up, ushares, n = HEADER.unpack_from(raw)
        if len(raw) < HEADER.size + n * RECORD.size:
            raise ValueError(f"{n} sessions announced, {(len(raw) - HEADER.size) // RECORD.size} present")
        table = cls(prio, _float(down), dshares, _float(up), ushares)
        for i in range(n):
            pid, eprio, dincr, drate, uincr, urate = RECORD.unpack_from(raw, HEADER.size + i * RECORD.size)
            table.sessions.append(Entry(pid, eprio, dincr, uincr, _float(drate), _float(urate)))
        return table

    # -- ftpdctl shaper info ---------------------------------------------------------------------------------
    def info(self) -> list[str]:
        lines = [f"Overall Rates: {self.downrate:3.2f} KB/s down, {self.uprate:3.2f} KB/s up",
                 f"Default Shares Per Session: {self.downshares} down, {self.upshares} up",
                 f"Default Priority: {self.prio}",
                 f"Number of Shaped Sessions: {len(self.sessions)}"]
        if not self.sessions:
            return lines
        down, up = self.totals()
        lines += [f"{'PID':<5} {'Priority':>8} {'DShares':<14} {'DRate (KB/s)':>11} {'UShares':<14} "
                  f"{'URate (KB/s)':>11}",
                  "----- -------- -------------- ------------ -------------- ------------"]
        for e in self.sessions:
            # ProFTPD prints the shares into a 14-byte buffer: at most 13 characters survive
            dtext = f"{self.downshares + e.downincr}/{down} ({'+' if e.downincr > 0 else ''}{e.downincr})"[:13]
            utext = f"{self.upshares + e.upincr}/{up} ({'+' if e.upincr > 0 else ''}{e.upincr})"[:13]
            lines.append(f"{e.pid:5d} {e.prio:8d} {dtext:>14}  {e.downrate:11.2f} {utext:>14}  {e.uprate:11.2f}")
        return lines


# -- the file ----------------------------------------------------------------------------------------------------
class ShaperTableError(Exception):
    pass


class ShaperTable:
    """The open table file; the master opens it, sessions use the descriptor they inherit."""

    def __init__(self, path: str, fd: int):
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, path: str, initial: Table) -> "ShaperTable":
        """Open (creating) the table; an empty file gets `initial`'s header (a table that is already there keeps
        its settings, as ProFTPD's). Never a symbolic link or a file in a world-writable directory."""
        try:
            fd = filelock.open_table(path, "ShaperTable", 0o644)
        except filelock.BadLocation as e:
            raise ShaperTableError(f"error using {e}") from None
        except OSError as e:
            raise ShaperTableError(f"error opening ShaperTable '{path}': {e.strerror}") from None
        table = cls(path, fd)
        try:
            with filelock.locked(fd, fcntl.LOCK_EX):
                if os.fstat(fd).st_size == 0:
                    table._write(Table(initial.prio, initial.downrate, initial.downshares, initial.uprate,
                                       initial.upshares))
        except BaseException:
            os.close(fd)
            raise
        return table

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _raw(self) -> bytes:
        return os.pread(self.fd, max(os.fstat(self.fd).st_size, HEADER.size), 0)

    def _write(self, table: Table) -> None:
        raw = table.pack()
        os.pwrite(self.fd, raw, 0)
        os.ftruncate(self.fd, len(raw))

    def read(self) -> Table:
        """The table under a shared lock; raises ShaperTableError when it is not a table."""
        with filelock.locked(self.fd, fcntl.LOCK_SH):
            return self._parse(self._raw())

    def peek(self) -> Table | None:
        """The table without a lock (a signal handler's read, which must not take a lock its own process may
        hold); None when the read caught a rewrite half done."""
        try:
            return Table.unpack(self._raw())
        except (ValueError, OSError):
            return None

    def _parse(self, raw: bytes) -> Table:
        try:
            return Table.unpack(raw)
        except ValueError as e:
            raise ShaperTableError(f"ShaperTable '{self.path}' is not a table ({e})") from None

    @contextlib.contextmanager
    def edit(self) -> Iterator[Table]:
        """`with table.edit() as t:` change `t`; on leaving, the rates are shared out again and the table
        written, all under the exclusive lock. Raise inside to write nothing."""
        with filelock.locked(self.fd, fcntl.LOCK_EX):
            table = self._parse(self._raw())
            yield table
            table.share_out()
            self._write(table)


# -- words: ShaperAll, ShaperSession, shaper all, shaper sess ---------------------------------------------------
SETTINGS = {            # ShaperAll's and `shaper all`'s words: the fields each sets, its least value (float: a rate)
    "rate": (("downrate", "uprate"), 0.0), "downrate": (("downrate",), 0.0), "uprate": (("uprate",), 0.0),
    "shares": (("downshares", "upshares"), 1), "downshares": (("downshares",), 1), "upshares": (("upshares",), 1),
    "priority": (("prio",), 0),
}


class Refused(ValueError):
    """A setting's value refused: `value` None when it is not a number, else the number below the least."""

    def __init__(self, value: float | int | None):
        super().__init__(value)
        self.value = value


def setting(word: str, text: str) -> float | int:
    """The value of one ShaperAll / `shaper all` setting; KeyError for an unknown word, Refused for its value."""
    least = SETTINGS[word][1]
    value = strtod(text) if isinstance(least, float) else atoi(text)
    if value is None or value < least:
        raise Refused(value)
    return value


def atoi(word: str) -> int:
    """C's atoi: optional blanks and sign, the digits that follow, 0 when there are none."""
    text = word.lstrip(" \t\n\v\f\r")
    sign, digits = 1, ""
    if text[:1] in "+-" and text:
        sign, text = (-1 if text[0] == "-" else 1), text[1:]
    for ch in text:
        if not "0" <= ch <= "9":
            break
        digits += ch
    return sign * int(digits) if digits else 0


def strtod(word: str) -> float | None:
    """The whole word as a number (C's strtod with nothing left over), else None."""
    try:
        return float(word) if word.strip() == word and word else None
    except ValueError:
        return None
