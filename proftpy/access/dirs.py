"""Where a command applies, `.ftpaccess` files, hidden entries and path filters.

* `target(session, cmd)`: the path a command is checked at. For APPE, RETR, RNTO, STOR and STOU the file name is
  part of the matched path (so `<Directory /srv/*.iso>` can apply); for the others it is the directory the
  command works in (the directory itself for CWD, MKD, RMD, LIST of a directory...).
* `.ftpaccess`: before a lookup at a path, every ancestor directory is checked for a non-empty `.ftpaccess`
  (unless `AllowOverride off` there); a file is parsed once and again only when its mtime or size changes, and
  forgotten when it is removed. Only directives allowed in .ftpaccess context are accepted; a broken file is
  logged and ignored, as ProFTPD does.
* Paths in the configuration are real, outside-the-chroot paths: under a kernel chroot the session's root is
  put back in front of what the client sees (`config_path`).
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
from .expr import Condition, pick, session_facts

if TYPE_CHECKING:
    from ..session import Session
    from .limits import Filter

log = logging.getLogger("proftpy")

STATE = "access"
FILE_TARGET = frozenset({"APPE", "RETR", "RNTO", "STOR", "STOU"})
DIR_TARGET = frozenset({"MKD", "XMKD", "RMD", "XRMD", "CWD", "XCWD"})
# Commands whose argument is a path, and how many words come before it.
PATH_COMMANDS = {"APPE": 0, "RETR": 0, "RNTO": 0, "STOR": 0, "STOU": 0, "RNFR": 0, "DELE": 0, "MKD": 0,
                 "XMKD": 0, "RMD": 0, "XRMD": 0, "CWD": 0, "XCWD": 0, "SIZE": 0, "MDTM": 0, "LIST": 0,
                 "NLST": 0, "MLSD": 0, "MLST": 0, "STAT": 0, "MFMT": 1, "MFF": 1}
SITE_PATH_COMMANDS = {"CHMOD": 1, "CHGRP": 1, "CPFR": 0, "CPTO": 0, "COPY": 0, "MKDIR": 0, "RMDIR": 0,
                      "SYMLINK": 0, "UTIME": 1}
FTPACCESS = ".ftpaccess"


def state(session: "Session") -> dict:
    return session.state.setdefault(STATE, {})


def config_path(session: "Session", real: str) -> str:
    """The path as the configuration names it: the chroot directory in front under a kernel chroot."""
    return session.config_path(real)


def fs_path(session: "Session", path: str) -> str:
    """The inverse of config_path: where to stat a configuration path from inside the session."""
    root = state(session).get("chroot")
    if root and session.fs is not None and getattr(session.fs, "_kernel_chroot", False):
        root = root.rstrip("/")
        if path == root:
            return "/"
        if path.startswith(root + "/"):
            return path[len(root):]
    return path


# -- which path a command is checked at ----------------------------------------------------------------------------
def path_argument(name: str, arg: str) -> tuple[str, str] | None:
    """(limit name, client path) for a command that names a path; None when it takes no path. `SITE CHMOD 755 f`
    -> ("SITE_CHMOD", "f"); `LIST -la dir` -> ("LIST", "dir"); `LIST` -> ("LIST", "")."""
    if name == "SITE":
        sub, _, rest = arg.strip().partition(" ")
        sub = sub.upper()
        if sub not in SITE_PATH_COMMANDS:
            return None
        return "SITE_" + sub, _skip_words(rest, SITE_PATH_COMMANDS[sub])
    if name not in PATH_COMMANDS:
        return None
    if name in ("LIST", "NLST", "STAT"):
        return name, _skip_options(arg)
    return name, _skip_words(arg, PATH_COMMANDS[name])


def _skip_words(arg: str, n: int) -> str:
    rest = arg.lstrip(" ")
    for _ in range(n):
        _, _, rest = rest.partition(" ")
        rest = rest.lstrip(" ")
    return rest


def _skip_options(arg: str) -> str:
    rest = arg.strip()
    while rest.startswith("-"):
        _, _, rest = rest.partition(" ")
        rest = rest.lstrip(" ")
    return rest


@dataclass(frozen=True)
class Target:
    """Where a command is checked: the resolved path (real, as the session sees it) and the configuration path."""

    real: str
    config: str
    arg: str


def target(session: "Session", name: str, path_arg: str | None) -> Target:
    """Resolve the command's path through the one door and pick file or directory per FILE_TARGET/DIR_TARGET.
    Raises FsError (550) for a path outside the root, like the command itself would."""
    fs = session.fs
    if fs is None:
        return Target("/", "/", path_arg or "")
    vpath = fs.resolve(path_arg) if path_arg else fs.resolve(".")
    real = vpath.real
    if name not in FILE_TARGET and name not in DIR_TARGET:
        try:
            is_dir = stat.S_ISDIR(os.stat(real).st_mode)
        except OSError:
            is_dir = False
        if not is_dir:
            real = posixpath.dirname(real) or "/"
    return Target(real, config_path(session, real), path_arg or "")


# -- .ftpaccess ----------------------------------------------------------------------------------------------------
@dataclass
class _Cached:
    key: tuple[float, int]
    section: Section | None


class FtpaccessCache:
    """Parsed `.ftpaccess` sections by directory, refreshed when the file's mtime or size changes."""

    def __init__(self, registry, allowed: Callable[[str], bool], to_fs: Callable[[str], str] = lambda p: p):
        self.registry = registry
        self.allowed = allowed          # AllowOverride at a configuration path
        self.to_fs = to_fs
        self.files: dict[str, _Cached] = {}

    def _load(self, directory: str) -> Section | None:
        path = posixpath.join(self.to_fs(directory), FTPACCESS)
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

    def sections(self, config_path_: str) -> list[Section]:
        """Dynamic sections that may apply at `config_path_`, deepest directory first."""
        out = []
        directory = config_path_
        for _ in range(256):
            if self.allowed(directory):
                section = self._load(directory)
                if section is not None:
                    out.append(section)
            if directory == "/":
                break
            directory = posixpath.dirname(directory) or "/"
        return out


def ftpaccess_lookup(session: "Session") -> Callable[[str], list[Section]]:
    """The `session.state["ftpaccess"]` callable that `Session.context` uses."""
    def allowed(directory: str) -> bool:
        return bool(session.server.context(session.anon, directory, state(session).get("home")).get(
            "AllowOverride"))

    cache = FtpaccessCache(session.config.registry, allowed, lambda p: fs_path(session, p))
    state(session)["ftpaccess_cache"] = cache
    return cache.sections


# -- hiding --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HideRule:
    """One HideFiles line: the regex (None for `none`) and for whom it applies (None: everyone)."""

    regex: Filter | None
    condition: Condition | None = None


def hidden(session: "Session", real_dir: str, name: str) -> bool:
    """Whether a directory entry is hidden from this session (HideFiles, HideNoAccess, HideUser, HideGroup)."""
    full = posixpath.join(real_dir, name)
    ctx = session.context(full)
    if name in (".", ".."):
        return False
    rule = pick(ctx.chain, "HideFiles", lambda: session_facts(session))
    if rule is not None and rule.regex is not None and rule.regex.search(name):
        return True
    hide_user, hide_group = ctx.get("HideUser"), ctx.get("HideGroup")
    no_access = ctx.get("HideNoAccess")
    if not (hide_user or hide_group or no_access):
        return False
    try:
        st = os.lstat(full)
    except OSError:
        return False
    if no_access:
        mode = os.R_OK | (os.X_OK if stat.S_ISDIR(st.st_mode) else 0)
        if not os.access(full, mode):
            return True
    return _owner_hidden(session, st, hide_user, "user") or _owner_hidden(session, st, hide_group, "group")


def _owner_hidden(session: "Session", st: os.stat_result, spec: str | None, kind: str) -> bool:
    if not spec:
        return False
    negate = spec.startswith("!")
    name = spec[1:] if negate else spec
    owner = _owner_name(session, st, kind)
    return (owner == name) != negate


def _owner_name(session: "Session", st: os.stat_result, kind: str) -> str | None:
    try:
        from ..modules.auth import auth_chain
        chain = auth_chain(session.server)
        rec = chain.getpwuid(st.st_uid) if kind == "user" else chain.getgrgid(st.st_gid)
    except Exception as e:            # an auth backend failing must not break a listing
        log.info("cannot map owner of a file: %s", e)
        return None
    return getattr(rec, "name", None)


def path_is_hidden(session: "Session", real: str) -> bool:
    """Whether the last component of a resolved path is hidden in its directory."""
    if real in ("/", ""):
        return False
    return hidden(session, posixpath.dirname(real) or "/", posixpath.basename(real))
