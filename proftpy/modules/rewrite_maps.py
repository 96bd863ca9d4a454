"""mod_rewrite's maps (`RewriteMap name type:source`) and its bounded string replacement, pure: no session.

    txt:/path   a text file of `key value` lines (blank lines and `#` comments skipped); read when the
                configuration loads and again when its modification time grows, as ProFTPD 1.3.8 does
    int:name    a built-in function: tolower, toupper, replaceall, unescape, utf8trans, idnatrans

    fifo:/path  a program's FIFO: the key and a newline written into it, one answer line read back from it (the
                same FIFO, as ProFTPD's), under RewriteLock's lock, within FIFO_TIMEOUT (fifo_lookup)

A lookup gives the value, or None for "use the default of `${map:key|default}`".
"""

from __future__ import annotations

import codecs
import fcntl
import os
import select
import stat
import struct
import termios
import time
from dataclasses import dataclass, field
from typing import Callable

MAX_REPLACE = 8             # ProFTPD's PR_STR_MAX_REPLACEMENTS, RewriteMaxReplace's default
REPLACE_ROOM = 8192         # pr_str_replace refuses a result this long (BUFSIZ)
ENCODING = "utf-8"          # how the control connection's bytes were decoded (with surrogateescape)
FIFO_MAXLEN = 256           # ProFTPD's REWRITE_FIFO_MAXLEN: an answer's line, its newline included, fits in this
FIFO_TIMEOUT = 5.0          # seconds a fifo: lookup may take, lock included (ProFTPD polls 10 x 0.5 s for its key to
                            # be read, then waits for an answer without end)


def str_replace(text: str, old: str, new: str, max_replace: int = MAX_REPLACE) -> str | None:
    """Every `old` in `text` replaced by `new`, as ProFTPD's pr_str_replace: None (the caller keeps its text)
    when `old` occurs more than `max_replace` times or the result would not fit its buffer."""
    count = text.count(old) if old else 0
    if count > max_replace:
        return None
    if not count:
        return text
    if len(text.encode(ENCODING, "surrogateescape")) + 1 + count * (len(new) - len(old)) >= REPLACE_ROOM:
        return None
    return text.replace(old, new)


# -- int: maps ------------------------------------------------------------------------------------------------------
def _tolower(key: str, max_replace: int) -> str | None:
    return "".join(c.lower() if c.isascii() else c for c in key)       # C's tolower(): ASCII letters only


def _toupper(key: str, max_replace: int) -> str | None:
    return "".join(c.upper() if c.isascii() else c for c in key)


def _replaceall(key: str, max_replace: int) -> str | None:
    """`<sep>text<sep>from<sep>to`: every `from` in `text` made `to`; None when `from` is not in it, the key is
    not in that shape, or there are more than RewriteMaxReplace of them."""
    if not key:
        return None
    parts = key[1:].split(key[0], 2)
    if len(parts) < 3 or parts[1] not in parts[0]:
        return None
    return str_replace(parts[0], parts[1], parts[2], max_replace)


_HEX = frozenset("0123456789abcdefABCDEF")


def _unescape(key: str, max_replace: int) -> str | None:
    """`%XX` escapes decoded (RFC 2396); None for a bad escape, and (as ProFTPD checks it) when the key's
    character at the decoded character's position is `/`."""
    raw = key.encode(ENCODING, "surrogateescape")
    out = bytearray()
    j = 0
    while j < len(raw):
        if raw[j] != 0x25:
            out.append(raw[j])
            j += 1
            continue
        pair = raw[j + 1:j + 3].decode("latin-1")
        if len(pair) < 2 or not set(pair) <= _HEX:
            return None
        if raw[len(out):len(out) + 1] in (b"/", b""):
            return None
        out.append(int(pair, 16))
        j += 3
    return out.decode(ENCODING, "surrogateescape")


def _utf8trans(key: str, max_replace: int) -> str | None:
    """UTF-8 made Latin-1 (each character's code point as one byte); None for a key of fewer than two
    characters or bytes that are not UTF-8, as ProFTPD."""
    try:
        text = key.encode(ENCODING, "surrogateescape").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 2:
        return None
    return bytes(ord(c) & 0xFF for c in text).decode(ENCODING, "surrogateescape")


def _idnatrans(key: str, max_replace: int) -> str | None:
    """A host name in IDNA's ASCII form (Python's IDNA 2003 codec, where Debian's ProFTPD uses libidn2)."""
    if not key:
        return None
    try:
        return codecs.encode(key, "idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None


INTERNAL: dict[str, Callable[[str, int], str | None]] = {
    "replaceall": _replaceall, "tolower": _tolower, "toupper": _toupper, "unescape": _unescape,
    "utf8trans": _utf8trans, "idnatrans": _idnatrans,
}


# -- txt: maps ------------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class TxtMap:
    """A text map's entries, kept until the file's modification time grows."""

    path: str
    mtime: float = -1.0
    entries: dict[str, str] = field(default_factory=dict)

    def refresh(self, note: Callable[[str], None]) -> bool:
        """Read the file again if it changed; False (the entries kept) when it cannot be read. `note` gets the
        log lines ProFTPD's RewriteLog shows."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            note(f"rewrite_parse_map_txt(): unable to stat {self.path}: {e.strerror}")
            return False
        if stat.S_ISDIR(st.st_mode):
            note(f"rewrite_parse_map_txt(): unable to use {self.path}: {os.strerror(21)}")
            return False
        if int(st.st_mtime) <= self.mtime:
            note("rewrite_parse_map_txt(): cached map cache up to date")
            return True
        try:
            with open(self.path, "rb") as f:
                data = f.read(16 << 20)
        except OSError as e:
            note(f"rewrite_parse_map_txt(): unable to open {self.path}: {e.strerror}")
            return False
        self.mtime = int(st.st_mtime)
        self.entries = parse_txt(data.decode(ENCODING, "surrogateescape"), self.path, note)
        return True

    def lookup(self, key: str, note: Callable[[str], None]) -> str | None:
        if not self.refresh(note):
            note("rewrite_subst_maps_txt(): error parsing txt file")
        return self.entries.get(key)


def parse_txt(text: str, path: str, note: Callable[[str], None]) -> dict[str, str]:
    """`key value` lines: the first two words of a line; a line must go on after its value (a newline will do),
    else it is a bad line. A key given twice: the last line wins (ProFTPD reads them all)."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(keepends=True)):
        body = line.lstrip()
        if not body or body.startswith("#"):
            continue
        words = body.split(None, 2)
        ends = len(words) == 3 or (len(words) == 2 and body[-1:].isspace())
        if len(words) >= 2 and ends:
            entries[words[0]] = words[1]
        else:
            note(f"rewrite_parse_map_txt(): error: {path}, line {number}")
            note(f"rewrite_parse_map_txt(): bad line: '{line}'")
    return entries


@dataclass(frozen=True)
class RewriteMap:
    """One RewriteMap line."""

    name: str
    kind: str                           # "txt", "int" or "fifo"
    source: str
    function: Callable[[str, int], str | None] | None = None   # int:
    txt: TxtMap | None = None

    def lookup(self, key: str, max_replace: int, note: Callable[[str], None]) -> str | None:
        if self.txt is not None:
            return self.txt.lookup(key, note)
        assert self.function is not None
        return self.function(key, max_replace)


def parse_map(args: list[str]) -> RewriteMap:
    """`RewriteMap name type:source`, checked as ProFTPD checks it (a txt file that cannot be read is no error:
    its lookups give the default until it can)."""
    if len(args) != 2:
        raise ValueError("wrong number of parameters")
    name, spec = args
    kind, colon, source = spec.partition(":")
    if not colon:
        raise ValueError(f"invalid RewriteMap parameter: '{spec}'")
    if kind == "int":
        function = INTERNAL.get(source)
        if function is None:
            raise ValueError(f"unknown internal map function requested: '{source}'")
        return RewriteMap(name, kind, source, function=function)
    if kind == "txt":
        if not source.startswith("/"):
            raise ValueError("txt: absolute path required")
        txt = TxtMap(source)
        txt.refresh(lambda line: None)
        return RewriteMap(name, kind, source, txt=txt)
    if kind == "fifo":
        if not source.startswith("/"):
            raise ValueError("fifo: absolute path required")
        try:
            st = os.stat(source)
        except OSError as e:
            raise ValueError(f"fifo: error stat'ing '{source}': {e.strerror}") from None
        if not stat.S_ISFIFO(st.st_mode):
            raise ValueError(f"fifo: error: '{source}' is not a FIFO")
        return RewriteMap(name, kind, source)
    raise ValueError(f"invalid RewriteMap map type: '{kind}'")


# -- fifo: maps -----------------------------------------------------------------------------------------------------
def open_fifo(path: str) -> int:
    """The session's descriptor of a fifo: map, read and write (ProFTPD's rewrite_open_fifo), opened at connect
    while the session is root and outside any chroot. Non-blocking: every wait has a deadline."""
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


def _unread(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def _lock(fd: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def fifo_lookup(fd: int, lock_fd: int | None, key: str, note: Callable[[str], None],
                timeout: float = FIFO_TIMEOUT) -> str | None:
    """ProFTPD's protocol: (the RewriteLock file locked) the key and a newline written into the FIFO, a wait until
    the map program has taken them (the FIFO's unread bytes no longer the key's), then one read of at most
    FIFO_MAXLEN bytes: the answer is what comes before its first newline. None (the default) when the lock, the reading or the answer
    does not come within `timeout`, the answer has no newline, or the FIFO fails; a key left unread is taken back
    out, so the next lookup does not meet it."""
    deadline = time.monotonic() + timeout
    if lock_fd is not None and not _lock(lock_fd, deadline):
        note("rewrite_subst_maps_fifo(): error obtaining lock: timed out")
        return None
    try:
        return _exchange(fd, key.encode(ENCODING, "surrogateescape") + b"\n", note, deadline)
    except OSError as e:
        note(f"rewrite_subst_maps_fifo(): error using FIFO (fd {fd}): {e.strerror}")
        return None
    finally:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)


def _exchange(fd: int, line: bytes, note: Callable[[str], None], deadline: float) -> str | None:
    sent = 0
    while sent < len(line):
        try:
            sent += os.write(fd, line[sent:])
        except BlockingIOError:
            if not _until(deadline):
                note("rewrite_subst_maps_fifo(): error writing lookup key: FIFO full")
                _drain(fd)
                return None
    note(f"rewrite_wait_fifo: waiting on FIFO (fd {fd})")
    while _unread(fd) == len(line):     # the key still there (fewer bytes: taken; others: the answer came)
        if not _until(deadline):
            note("rewrite_subst_maps_fifo(): lookup key not read within the timeout, using default value")
            _drain(fd)
            return None
    ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    if not ready:
        note("rewrite_subst_maps_fifo(): no value from FIFO within the timeout, using default value")
        return None
    try:
        data = os.read(fd, FIFO_MAXLEN)
    except BlockingIOError:         # another reader of the FIFO took it
        return None
    end = data.find(b"\n")
    if end < 0:
        note("rewrite_subst_maps_fifo(): FIFO returned too long value, using default value")
        _drain(fd)
        return None
    return data[:end].decode(ENCODING, "surrogateescape")


def _until(deadline: float) -> bool:
    """A short pause while time is left; False once it is not."""
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    time.sleep(min(0.005, left))
    return True


def _drain(fd: int) -> None:
    """What is still in the FIFO (the key nobody read) taken out."""
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
