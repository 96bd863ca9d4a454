"""mod_site_misc: SITE MKDIR, RMDIR, SYMLINK and UTIME (SiteMiscEngine switches them off).

Paths go through `session.fs`; RMDIR never follows a symbolic link. `<Limit>` knows them as SITE_MKDIR,
SITE_RMDIR, SITE_UTIME (group WRITE) and SITE_SYMLINK (READ on the source, WRITE on the link); the handlers ask at
the resolved paths.
"""

from __future__ import annotations

import calendar
import errno
import os
import stat
from typing import TYPE_CHECKING

from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag
from ..dispatch import PATH, READ, WRITE, Command, PathArg, Request
from ..module import Module
from ..reply import Reply
from .files import dir_mode
from .site import denied, resolve, words_of

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_site_misc.c"
MAX_DEPTH = 256                   # SITE RMDIR recursion bound: deeper trees are refused, not half-deleted

directives = (
    Directive("SiteMiscEngine", Flag, SVG, True, Merge.SERVER,
              "Offer SITE MKDIR, RMDIR, SYMLINK and UTIME (mod_site_misc)."),
)


def _on(session: "Session") -> bool:
    return bool(session.server.get("SiteMiscEngine"))


def _not_understood(words: list[str]) -> Reply:
    """mod_site_misc's answer to MKDIR/RMDIR/SYMLINK/UTIME with too few arguments: only the sub-command."""
    return Reply(500, f"'SITE {words[0]}' not understood")


def _misc_target(session: "Session", cmd: Request, words: list[str], limit: str):
    """The path a mod_site_misc command (SITE MKDIR/RMDIR) works on, or the Reply refusing it: too few words, or
    `<Limit limit>` denies it (EPERM, as mod_site_misc answers)."""
    if len(words) < 2:
        return _not_understood(words)
    path = resolve(session, " ".join(words[1:]), follow_last=False)
    if denied(session, limit, WRITE, path.real):
        return Reply(550, f"{cmd.arg}: {os.strerror(errno.EPERM)}")
    return path


def site_mkdir(session: "Session", cmd: Request) -> Reply:
    """Create a directory and any missing parents (`mkdir -p`)."""
    words = words_of(cmd)
    path = _misc_target(session, cmd, words, "SITE_MKDIR")
    if isinstance(path, Reply):
        return path
    parts = [p for p in path.virtual.split("/") if p]
    for i in range(1, len(parts) + 1):
        step = session.fs.resolve("/" + "/".join(parts[:i]), follow_last=False)
        try:
            session.fs.stat(step.real)
            continue
        except FileNotFoundError:
            pass
        except OSError as e:
            return Reply(550, f"{cmd.arg}: {e.strerror}")
        old = os.umask(0)
        try:
            session.fs.mkdir(step.real, dir_mode(session, step.real))
        except OSError as e:
            return Reply(550, f"{cmd.arg}: {e.strerror}")
        finally:
            os.umask(old)
    return Reply(200, "SITE MKDIR command successful")


def site_rmdir(session: "Session", cmd: Request) -> Reply:
    """Remove a directory tree. Symbolic links inside are removed as links, never followed."""
    words = words_of(cmd)
    path = _misc_target(session, cmd, words, "SITE_RMDIR")
    if isinstance(path, Reply):
        return path
    try:
        st = session.fs.lstat(path.real)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        session.fs.remove_tree(path.real, MAX_DEPTH)
    except OSError as e:
        return Reply(550, f"{cmd.arg}: {e.strerror or os.strerror(e.errno or errno.EIO)}")
    return Reply(200, "SITE RMDIR command successful")


def site_symlink(session: "Session", cmd: Request) -> Reply:
    """Link `destination` to `source`; the link holds the source's path as the client sees it, so it resolves
    inside the session root."""
    words = words_of(cmd)
    if len(words) < 3:
        return _not_understood(words)
    src = resolve(session, words[1])
    if denied(session, "SITE_SYMLINK", READ, src.real):
        return Reply(550, f"{words[1]}: {os.strerror(errno.EPERM)}")
    dst = resolve(session, words[2], follow_last=False)
    if denied(session, "SITE_SYMLINK", WRITE, dst.real):
        return Reply(550, f"{words[2]}: {os.strerror(errno.EPERM)}")
    try:
        session.fs.stat(src.real)
        target = src.virtual if session.fs.root != "/" else src.real
        session.fs.symlink(target, dst.real)
    except OSError as e:
        return Reply(550, f"{cmd.arg}: {e.strerror}")
    return Reply(200, "SITE SYMLINK command successful")


def site_utime(session: "Session", cmd: Request) -> Reply:
    """`SITE UTIME YYYYMMDDhhmm[ss] path` (mtime and atime), or `SITE UTIME path atime mtime ctime UTC`;
    times are UTC."""
    words = words_of(cmd)
    if len(words) < 3:
        return _not_understood(words)
    three = len(words) >= 6 and words[-1].upper() == "UTC"
    if three:
        arg, stamps = " ".join(words[1:-4]), words[-4:-1]
    else:
        arg, stamps = " ".join(words[2:]), [words[1]]
    bad = Reply(500, f"{cmd.arg}: {os.strerror(errno.EINVAL)}")
    if any(len(s) not in (12, 14) for s in stamps):
        return bad
    path = resolve(session, arg)
    if denied(session, "SITE_UTIME", WRITE, path.real):
        return Reply(550, f"{cmd.arg}: {os.strerror(errno.EPERM)}")
    try:
        times = [parse_site_time(s) for s in stamps]
    except ValueError:
        return bad
    atime, mtime = (times[0], times[1]) if three else (times[0], times[0])
    try:
        session.fs.utime(path.real, (atime, mtime))
    except OSError as e:
        return Reply(550, f"{cmd.arg}: {e.strerror}")
    return Reply(200, "SITE UTIME command successful")


def parse_site_time(text: str) -> int:
    """`YYYYMMDDhhmm[ss]` in UTC -> epoch seconds (mod_site_misc's range checks)."""
    if len(text) not in (12, 14) or not text.isdigit():
        raise ValueError(text)
    year, month, day = int(text[0:4]), int(text[4:6]), int(text[6:8])
    hour, minute = int(text[8:10]), int(text[10:12])
    sec = int(text[12:14]) if len(text) == 14 else 0
    if month > 12 or day > 31 or hour > 24 or minute > 60 or sec > 60:
        raise ValueError(text)
    return calendar.timegm((year, max(month, 1), 1, hour, minute, sec)) + (max(day, 1) - 1) * 86400


# SITE HELP lists these in table order, before mod_site's own; <Limit> knows them as SITE_UTIME, SITE_SYMLINK...
commands = (
    Command("SITE UTIME", site_utime, WRITE, help="<sp> YYYYMMDDhhmm[ss] <sp> path", enabled=_on,
            path=PathArg(skip=1), feat=("SITE UTIME",),
            replies=("200 SITE UTIME command successful", "500 ...: Invalid argument",
                     "(also SITE UTIME <path> <atime> <mtime> <ctime> UTC)")),
    Command("SITE SYMLINK", site_symlink, WRITE, help="<sp> source <sp> destination", enabled=_on, min_words=3,
            path=PATH, feat=("SITE SYMLINK",), replies=("200 SITE SYMLINK command successful",)),
    Command("SITE RMDIR", site_rmdir, WRITE, help="<sp> path", enabled=_on, min_words=2, path=PATH,
            feat=("SITE RMDIR",), replies=("200 SITE RMDIR command successful (links removed, not followed)",)),
    Command("SITE MKDIR", site_mkdir, WRITE, help="<sp> path", enabled=_on, min_words=2, path=PATH,
            path_filter=True, feat=("SITE MKDIR",), replies=("200 SITE MKDIR command successful (parents too)",)),
)

MODULE = Module(NAME, directives=directives, commands=commands)
