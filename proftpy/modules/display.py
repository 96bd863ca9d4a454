"""mod_core's Display files (DisplayConnect, DisplayLogin, DisplayChdir, DisplayQuit): read a text file and send its
lines as the leading lines of a reply, with ProFTPD's `%` variables expanded (src/display.c).

Where the file is looked for: before login an absolute path is a real path; after login the path is inside the
session root (as ProFTPD sees it after chroot), relative paths are relative to the current directory. Files opened
ahead of the chroot (`preopen`) are read from the descriptor kept in the session state, like ProFTPD does for
DisplayQuit and absolute DisplayChdir paths.

Supported variables: %C %E %F %f %i %K %k %L %M %N %o %R %T %t %U %u %V %x %y %z, %{total_bytes_in}
%{total_bytes_out} %{total_bytes_xfer} %{total_files_in} %{total_files_out} %{total_files_xfer} %{bytes_xfer},
%{env:NAME}, %{time:strftime-format}, and the variables modules declare
(`Module.variables`: mod_quotatab's %{mod_quotatab.limit.bytes_in}...). An unknown %{name} or unset environment
variable becomes "(none)", as in ProFTPD.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .. import transfer
from . import core, maxclients
from .ident import ident_of

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

MAX_BYTES = 64 * 1024         # a display file is a short message; more is cut off rather than flooding the client
MAX_LINE = 4096               # ProFTPD reads with a PR_TUNABLE_BUFFER_SIZE buffer
_BRACED = re.compile(r"%\{([^}]*)\}")
_UNITS = ("K", "M", "G", "T", "P", "E", "Z", "Y")


@dataclass
class DisplayState:
    fds: dict[str, int] = field(default_factory=dict)         # display files opened before the chroot
    visited: dict[str, float] = field(default_factory=dict)   # DisplayChdir "on": directory -> last shown


class Preamble:
    """The first lines of a multi-line reply whose last line comes later (DisplayConnect before the banner).
    `ControlChannel.send` only needs `format()`."""

    def __init__(self, code: int, lines: list[str]):
        self.code = code
        self.lines = lines
        self.is_error = False

    def format(self) -> bytes:
        out = [f"{self.code}-{self.lines[0]}"] + [f" {line}" for line in self.lines[1:]]
        return ("\r\n".join(out) + "\r\n").encode("utf-8", "surrogateescape")


# -- reading -------------------------------------------------------------------------------------------------------
def read_lines(data: bytes) -> list[str]:
    """Split file content into reply lines: CR/LF stripped, overlong lines cut, NUL removed."""
    text = data[:MAX_BYTES].decode("utf-8", "surrogateescape")
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [part.rstrip("\r")[:MAX_LINE].replace("\0", "") for part in parts]


def _read_fd(fd: int) -> bytes:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    return os.pread(fd, MAX_BYTES, 0)


def _read_path(real: str, opener=os.open) -> bytes:
    fd = opener(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def preopen(session: "Session", path: str | None) -> None:
    """Open an absolute display file now (before chroot) and keep the descriptor for later."""
    if not path or not path.startswith("/"):
        return
    fds = session.state.get(DisplayState).fds
    if path in fds:
        return
    try:
        fds[path] = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        log.debug("cannot open display file %s: %s", path, e.strerror)


def load(session: "Session", path: str | None) -> bytes | None:
    """The content of a display file, or None when it cannot be read (ProFTPD then just skips it)."""
    if not path:
        return None
    try:
        if session.fs is None:
            return _read_path(path) if path.startswith("/") else None
        try:
            return _read_path(session.fs.resolve(path).real, session.fs.open)
        except OSError:
            fd = session.state.get(DisplayState).fds.get(path)
            if fd is None:
                raise
            return _read_fd(fd)
    except OSError as e:
        log.debug("display file %s not shown: %s", path, e.strerror)
        return None


def lines_for(session: "Session", path: str | None, extra: dict[str, str] | None = None) -> list[str]:
    """A display file's lines with variables expanded; [] when there is nothing to show."""
    data = load(session, path)
    if not data:
        return []
    values = Variables(session, extra)
    return [expand(line, values) for line in read_lines(data)]


def leading(lines: list[str]) -> list[str]:
    """Display lines as the leading lines of a reply: ProFTPD sends the ones after the first with a space."""
    return lines[:1] + [" " + line for line in lines[1:]]


# -- the public hooks ----------------------------------------------------------------------------------------------
def login_lines(session: "Session") -> list[str]:
    """DisplayLogin lines leading the 230 reply (called by mod_auth after a successful PASS)."""
    return leading(lines_for(session, session.conf("DisplayLogin")))


def quit_lines(session: "Session") -> list[str]:
    """DisplayQuit's lines: they replace `221 Goodbye.` (the last one ends the 221 reply)."""
    return lines_for(session, session.conf("DisplayQuit"))


def connect_lines(session: "Session") -> list[str]:
    return lines_for(session, session.server.get("DisplayConnect"))


def chdir_lines(session: "Session", real_dir: str) -> list[str]:
    """DisplayChdir for a directory just entered: the file is looked for relative to that directory; with
    `on` as second argument it is shown only when it changed since the session's last visit there."""
    spec = session.conf("DisplayChdir", real_dir)
    if not spec:
        return []
    path, once = spec
    seen = session.state.get(DisplayState).visited
    cwd = session.fs.cwd if session.fs else "/"
    previous = seen.get(cwd)
    seen[cwd] = time.time()
    data = load(session, path)
    if not data:
        return []
    if once and previous is not None:
        mtime = _mtime(session, path)
        if mtime is None or mtime <= previous:
            return []
    values = Variables(session)
    return leading([expand(line, values) for line in read_lines(data)])


def _mtime(session: "Session", path: str) -> float | None:
    try:
        return session.fs.stat(session.fs.resolve(path).real).st_mtime
    except OSError:
        fd = session.state.get(DisplayState).fds.get(path)
        return os.fstat(fd).st_mtime if fd is not None else None


# -- variables -----------------------------------------------------------------------------------------------------
class Variables:
    """Values for one expansion, computed on first use (some cost a system call or a DNS lookup)."""

    def __init__(self, session: "Session", extra: dict[str, str] | None = None):
        self.session = session
        self.extra = extra or {}
        self._cache: dict[str, str] = {}

    def get(self, key: str) -> str:
        if key not in self._cache:
            self._cache[key] = _SIMPLE.get(key, lambda s: key)(self.session)
        return self._cache[key]

    def braced(self, name: str) -> str:
        if name in self.extra:
            return self.extra[name]
        if name.startswith("time:"):
            return time.strftime(name[5:], time.localtime()) if name[5:] else ""
        if name.startswith("env:"):
            return os.environ.get(name[4:], "(none)")
        prefix, dot, rest = name.partition(".")
        fn = self.session.modules.variables.get(prefix) if dot else None
        if fn is not None:
            return fn(self.session, rest) or "(none)"
        counters = _totals(self.session)
        if name in counters:
            return str(counters[name])
        return "(none)"


def expand(line: str, values: Variables) -> str:
    """Expand `%{...}` first, then the one-letter variables, left to right (a value is never re-expanded)."""
    line = _BRACED.sub(lambda m: values.braced(m.group(1)), line)
    out = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "%" and i + 1 < len(line) and line[i + 1] in _SIMPLE:
            out.append(values.get(line[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _totals(session: "Session") -> dict[str, int]:
    """The session's transfer counters under their %{name}s (%{bytes_xfer}: the transfer running now)."""
    t = session.totals
    running = getattr(session.state.find(transfer.DataState), "transfer", None)
    return {"total_bytes_in": t.bytes_in, "total_bytes_out": t.bytes_out, "total_bytes_xfer": t.bytes_xfer,
            "total_files_in": t.files_in, "total_files_out": t.files_out, "total_files_xfer": t.files_xfer,
            "bytes_xfer": running.bytes if running is not None else 0}


def _fs_size_kb(session: "Session") -> int:
    """Free space (KB) of the filesystem holding the current directory, like ProFTPD's pr_fs_getsize."""
    try:
        st = session.fs.statvfs(session.fs.resolve(".").real) if session.fs else os.statvfs("/")
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize // 1024


def format_size(kb: int) -> str:
    """ProFTPD's %f: a size in KB scaled to the largest unit, three digits zero-padded, one leading zero dropped."""
    i = 0
    while kb > 1024 and i < len(_UNITS) - 1:
        kb //= 1024
        i += 1
    text = f"{kb:03d}{_UNITS[i]}B"
    return text[1:] if text[0] == "0" and text[1] != "." else text


def format_xfer(total: int) -> str:
    """ProFTPD's %k (its unit ladder stops at kB: the MB/GB branches are unreachable there too)."""
    return f"{total >> 10}kB" if total >= 10240 else f"{total}B"


def _max_clients(session: "Session") -> int:
    value = session.conf("MaxClients")
    if isinstance(value, tuple):
        value = value[0]
    return int(value or 0)


def _class_limit(session: "Session") -> int:
    if session.conn_class:
        for entry in session.context().all("MaxClientsPerClass"):
            if isinstance(entry, (list, tuple)) and entry and entry[0] == session.conn_class:
                try:
                    return int(entry[1])
                except (IndexError, TypeError, ValueError):
                    break
    return _max_clients(session)


def _server_fqdn(session: "Session") -> str:
    """ProFTPD's ServerFQDN: the server address's DNS name (its address with UseReverseDNS off)."""
    return session.masquerade or session.local_name


def _cwd(session: "Session") -> str:
    return session.fs.cwd if session.fs is not None and session.authenticated else "(none)"


def _admin(session: "Session") -> str:
    return core.admin_address(session)


def _orig_user(session: "Session") -> str:
    return session.user_arg or session.user or ""


_SIMPLE: dict[str, Callable[["Session"], str]] = {
    "C": _cwd,
    "E": _admin,
    "F": lambda s: str(_fs_size_kb(s)),
    "f": lambda s: format_size(_fs_size_kb(s)),
    "i": lambda s: str(_totals(s)["total_files_in"]),
    "K": lambda s: str(_totals(s)["total_bytes_xfer"] >> 10),
    "k": lambda s: format_xfer(_totals(s)["total_bytes_xfer"]),
    "L": _server_fqdn,
    "M": lambda s: str(_max_clients(s)),
    "N": lambda s: str(maxclients.display_counts(s)[0]),     # this server's sessions (see display_counts)
    "o": lambda s: str(_totals(s)["total_files_out"]),
    "R": lambda s: s.remote_name or "(unknown)",
    "T": lambda s: time.strftime("%a %b %e %H:%M:%S %Y", time.localtime()),
    "t": lambda s: str(_totals(s)["total_files_xfer"]),
    "U": _orig_user,
    "u": lambda s: ident_of(s) or "UNKNOWN",         # the RFC 1413 name (mod_ident)
    "V": lambda s: s.server.name,
    "x": lambda s: s.conn_class or "(unknown)",
    "y": lambda s: str(maxclients.display_counts(s)[1]),     # the class's logged-in sessions
    "z": lambda s: str(_class_limit(s)),
}
