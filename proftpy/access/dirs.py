"""Where a command applies, `.ftpaccess` files and hidden entries (pure: no session).

* `target(fs, exact, path)`: the path a command is checked at. For commands whose row says `exact` (APPE, RETR,
  RNTO, STOR, STOU, MKD, RMD, CWD) the path itself (so `<Directory /srv/*.iso>` can apply); for the others the
  directory the command works in (the directory itself for LIST of a directory...).
* `.ftpaccess`: before a lookup at a path, every ancestor directory is checked for a non-empty `.ftpaccess`
  (unless `AllowOverride off` there); a file is parsed once and again only when its mtime or size changes, and
  forgotten when it is removed. Only directives allowed in .ftpaccess context are accepted; a broken file is
  logged and ignored, as ProFTPD does.
* Paths in the configuration are real, outside-the-chroot paths: `FS.config_path` puts a kernel chroot's
  directory back in front of what the session sees. Under a kernel chroot the walk stops at the chroot's
  directory: its ancestors cannot be read from inside (ProFTPD reads none above the chroot either), and the
  same name inside the chroot is another file.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..config.errors import ConfigError
from ..config.parser import parse_ftpaccess
from ..config.tree import Section
from .expr import Condition

if TYPE_CHECKING:
    from ..fs import FS
    from .limits import Filter

log = logging.getLogger("proftpy")

FTPACCESS = ".ftpaccess"


@dataclass(frozen=True)
class Target:
    """Where a command is checked: the resolved path (real, as the session sees it) and the configuration path."""

    real: str
    config: str
    arg: str


def target(fs: "FS", exact: bool, path_arg: str | None, tilde: bool = False) -> Target:
    """Resolve the command's path through the one door: the path itself when `exact`, else the directory it
    names or holds it (`tilde`: a leading `~` is a home directory). Raises FsError (550) for a path outside the
    root, like the command itself would."""
    vpath = fs.resolve(path_arg, tilde=tilde) if path_arg else fs.resolve(".")
    real = vpath.real
    if not exact:
        try:
            is_dir = stat.S_ISDIR(fs.stat(real).st_mode)
        except (OSError, ValueError):
            is_dir = False
        if not is_dir:
            real = posixpath.dirname(real) or "/"
    return Target(real, fs.config_path(real), path_arg or "")


# -- .ftpaccess ----------------------------------------------------------------------------------------------------
@dataclass
class _Cached:
    key: tuple[float, int]
    section: Section | None


class FtpaccessCache:
    """Parsed `.ftpaccess` sections by directory, refreshed when the file's mtime or size changes."""

    def __init__(self, registry, allowed: Callable[[str], bool],
                 to_fs: Callable[[str], str | None] = lambda p: p):
        self.registry = registry
        self.allowed = allowed          # AllowOverride at a configuration path
        self.to_fs = to_fs              # where a configuration path is for this process; None: out of its sight
        self.files: dict[str, _Cached] = {}

    def _load(self, directory: str, seen_as: str) -> Section | None:
        path = posixpath.join(seen_as, FTPACCESS)
        try:
            st = os.stat(path)
        except OSError:
            self.files.pop(directory, None)
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            self.files.pop(directory, None)
            return None
        key = (st.st_mtime, st.st_size)
        cached = self.files.get(directory)
        if cached is not None and cached.key == key:
            return cached.section
        section = None
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read(1 << 20)
            section = parse_ftpaccess(text, posixpath.join(directory, FTPACCESS), directory, self.registry)
        except ConfigError as e:
            log.warning("ignoring %s", e)
        except OSError as e:
            log.info("cannot read %s: %s", path, e.strerror)
        self.files[directory] = _Cached(key, section)
        return section

    def sections(self, config_path_: str, walked: dict[str, list[Section]] | None = None) -> list[Section]:
        """Dynamic sections that may apply at `config_path_`, deepest directory first (a list not to change).
        `walked` keeps the answer for each directory looked at, for the caller to pass again while the files are
        to be taken as unchanged (the session: during one command, so a LIST's lookups at the directory and at
        its entries share their ancestors)."""
        walked = {} if walked is None else walked
        pending: list[str] = []
        directory, above = config_path_, None
        for _ in range(256):
            above = walked.get(directory)
            if above is not None:
                break
            seen_as = self.to_fs(directory)
            if seen_as is None:             # above a kernel chroot: nothing there can be read
                above = []
                break
            pending.append((directory, seen_as))
            if directory == "/":
                above = []
                break
            directory = posixpath.dirname(directory) or "/"
        complete = above is not None        # else cut after 256 directories, as before: nothing is kept
        out = above or []
        for directory, seen_as in reversed(pending):
            section = self._load(directory, seen_as) if self.allowed(directory) else None
            if section is not None:
                out = [section] + out
            if complete:
                walked[directory] = out
        return out


# -- hiding --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HideRule:
    """One HideFiles line: the regex (None for `none`) and for whom it applies (None: everyone)."""

    regex: Filter | None
    condition: Condition | None = None


def owner_hidden(spec: str | None, owner: Callable[[], str | None]) -> bool:
    """HideUser/HideGroup: `name` hides what `owner()` names so, `!name` everything else."""
    if not spec:
        return False
    negate = spec.startswith("!")
    name = spec[1:] if negate else spec
    return (owner() == name) != negate
