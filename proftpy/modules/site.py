"""SITE commands: mod_site's HELP, CHMOD, CHGRP and mod_site_misc's MKDIR, RMDIR, SYMLINK, UTIME.

`<Limit>` sees SITE CHMOD as the pseudo-command `SITE_CHMOD` (group WRITE), likewise SITE_CHGRP, SITE_MKDIR,
SITE_RMDIR, SITE_UTIME, SITE_HELP, and SITE_SYMLINK (READ on the source, WRITE on the link). As in ProFTPD the
handlers ask at the resolved path themselves (mod_access's PRE_CMD hook leaves SITE to them). Paths go through
`session.fs`; RMDIR never follows a symbolic link.
"""

from __future__ import annotations

import calendar
import errno
import os
import stat
from typing import TYPE_CHECKING, Any

from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag
from ..dispatch import OPTIONAL, Cmd, Command
from ..fs import VPath
from ..reply import Reply
from .files import check_filters, dir_mode, group_id

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_site.c"
MISC = ("MKDIR", "RMDIR", "SYMLINK", "UTIME")
READ, WRITE = "READ", "WRITE"
MAX_DEPTH = 256                   # SITE RMDIR recursion bound: deeper trees are refused, not half-deleted

directives = [
    Directive("SiteMiscEngine", Flag, SVG, True, Merge.SERVER,
              "Offer SITE MKDIR, RMDIR, SYMLINK and UTIME (mod_site_misc)."),
]

HELP = [("HELP", "[<sp> site-command]"), ("CHGRP", "<sp> group <sp> pathname"),
        ("CHMOD", "<sp> mode <sp> pathname")]
MISC_MIN_WORDS = {"MKDIR": 2, "RMDIR": 2, "SYMLINK": 3}   # counted before the login check, as mod_site_misc does
MISC_HELP = [("MKDIR", "<sp> path"), ("RMDIR", "<sp> path"), ("SYMLINK", "<sp> source <sp> destination"),
             ("UTIME", "<sp> YYYYMMDDhhmm[ss] <sp> path")]


# -- helpers -------------------------------------------------------------------------------------------------------
def limits_allow(session: "Session", name: str, group: str | None, real: str) -> bool:
    """The `<Limit>` verdict for a pseudo-command such as SITE_CHMOD at `real` (allowed without mod_access)."""
    try:
        from ..access import limits
    except ImportError:
        return True
    allowed = getattr(limits, "allowed", None)
    return True if allowed is None else bool(allowed(session, name, group, real))


def _denied(session: "Session", name: str, group: str | None, real: str) -> bool:
    return not limits_allow(session, name, group, real)


def _misc_on(session: "Session") -> bool:
    return bool(session.server.get("SiteMiscEngine"))


def _not_understood(words: list[str]) -> Reply:
    """mod_site's answer to CHMOD/CHGRP with too few arguments: the command line, then a second 500 line."""
    return Reply(500, "SITE not understood", [f"'SITE {' '.join(words)}' not understood"])


def _misc_not_understood(words: list[str]) -> Reply:
    """mod_site_misc's answer to MKDIR/RMDIR/SYMLINK/UTIME with too few arguments: only the sub-command."""
    return Reply(500, f"'SITE {words[0]}' not understood")


def _resolve(session: "Session", arg: str, follow_last: bool = True) -> VPath:
    path = session.fs.resolve(arg, follow_last=follow_last)
    check_filters(session, arg, path.real)
    return path


# -- SITE ----------------------------------------------------------------------------------------------------------
def site(session: "Session", cmd: Cmd) -> Reply:
    words = cmd.arg.split()
    if not words:
        return Reply(500, "'SITE' requires parameters")
    sub = words[0].upper()
    words[0] = sub
    handler = _HANDLERS.get(sub)
    if handler is None or (sub in MISC and not _misc_on(session)):
        return Reply(500, f"'SITE {sub}' not understood")
    if len(words) < MISC_MIN_WORDS.get(sub, 0):
        return _misc_not_understood(words)
    if sub != "HELP" and not session.authenticated:
        return Reply(530, "Please login with USER and PASS")
    return handler(session, cmd, words)


def _help_header(session: "Session") -> list[str]:
    """First lines of SITE HELP: mod_site_misc's entries come first, in the reverse of their table order (each
    module adds its lines as ProFTPD dispatches SITE HELP to it)."""
    misc = [f" {name} {syntax}" for name, syntax in reversed(MISC_HELP)] if _misc_on(session) else []
    return ["The following SITE commands are recognized (* =>'s unimplemented)"] + misc


def help_for_help_command() -> Reply:
    """`HELP SITE`: mod_site's own sub-commands, one per line."""
    return Reply(214, HELP[-1][0], [HELP[0][0]] + [f" {name}" for name, _ in HELP[1:-1]])


def site_help(session: "Session", cmd: Cmd, words: list[str]) -> Reply:
    if session.fs is not None and _denied(session, "SITE_HELP", None, session.fs.resolve(".").real):
        return Reply(501, f"HELP: {os.strerror(errno.EACCES)}")
    from .core import admin_address
    end = f"Direct comments to {admin_address(session)}"
    if len(words) > 1 and words[1].upper() != "SITE":
        # mod_site explains its own sub-commands after mod_site_misc's list; anything else is unknown
        want = words[1].upper()
        for name, syntax in HELP:
            if name == want:
                return Reply(214, end, _help_header(session) + [f" Syntax: SITE {name} {syntax}"])
        return Reply(502, f"Unknown command 'SITE {' '.join(words)}'")
    return Reply(214, end, _help_header(session) + [f" {name}" for name, _ in HELP])


def site_chmod(session: "Session", cmd: Cmd, words: list[str]) -> Reply:
    if len(words) < 3:
        return _not_understood(words)
    arg = " ".join(words[2:])
    path = _resolve(session, arg)
    try:
        st = session.fs.stat(path.real)
    except OSError as e:
        return Reply(550, f"{arg}: {e.strerror}")
    try:
        mode = parse_mode(words[1], st.st_mode, _current_umask())
    except ValueError:
        return Reply(550, f"'{words[1]}': invalid mode")
    if _denied(session, "SITE_CHMOD", WRITE, path.real):
        return Reply(550, f"{cmd.arg}: {os.strerror(errno.EACCES)}")
    try:
        session.fs.chmod(path.real, mode)
    except OSError as e:
        return Reply(550, f"{cmd.arg}: {e.strerror}")
    return Reply(200, "SITE CHMOD command successful")


def site_chgrp(session: "Session", cmd: Cmd, words: list[str]) -> Reply:
    if len(words) < 3:
        return _not_understood(words)
    arg = " ".join(words[2:])
    path = _resolve(session, arg)
    try:
        session.fs.lstat(path.real)
    except OSError as e:
        return Reply(550, f"{arg}: {e.strerror}")
    try:
        gid = group_id(session, words[1])
    except ValueError:
        return Reply(550, f"{arg}: {os.strerror(errno.EINVAL)}")
    if _denied(session, "SITE_CHGRP", WRITE, path.real):
        return Reply(550, f"{arg}: {os.strerror(errno.EACCES)}")
    try:
        session.fs.chown(path.real, -1, gid)
    except OSError as e:
        return Reply(550, f"{arg}: {e.strerror}")
    return Reply(200, "SITE CHGRP command successful")


def _misc_target(session: "Session", cmd: Cmd, words: list[str], limit: str):
    """The path a mod_site_misc command (SITE MKDIR/RMDIR) works on, or the Reply refusing it: too few words, or
    `<Limit limit>` denies it (EPERM, as mod_site_misc answers)."""
    if len(words) < 2:
        return _misc_not_understood(words)
    path = _resolve(session, " ".join(words[1:]), follow_last=False)
    if _denied(session, limit, WRITE, path.real):
        return Reply(550, f"{cmd.arg}: {os.strerror(errno.EPERM)}")
    return path


def site_mkdir(session: "Session", cmd: Cmd, words: list[str]) -> Reply:
    """Create a directory and any missing parents (`mkdir -p`)."""
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


def site_rmdir(session: "Session", cmd: Cmd, words: list[str]) -> Reply:
    """Remove a directory tree. Symbolic links inside are removed as links, never followed."""
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


def site_symlink(session: "Session", cmd: Cmd, words: list[str]) -> Reply:
    """Link `destination` to `source`; the link holds the source's path as the client sees it, so it resolves
    inside the session root."""
    if len(words) < 3:
        return _misc_not_understood(words)
    src = _resolve(session, words[1])
    if _denied(session, "SITE_SYMLINK", READ, src.real):
        return Reply(550, f"{words[1]}: {os.strerror(errno.EPERM)}")
    dst = _resolve(session, words[2], follow_last=False)
    if _denied(session, "SITE_SYMLINK", WRITE, dst.real):
        return Reply(550, f"{words[2]}: {os.strerror(errno.EPERM)}")
    try:
        session.fs.stat(src.real)
        target = src.virtual if session.fs.root != "/" else src.real
        session.fs.symlink(target, dst.real)
    except OSError as e:
        return Reply(550, f"{cmd.arg}: {e.strerror}")
    return Reply(200, "SITE SYMLINK command successful")


def site_utime(session: "Session", cmd: Cmd, words: list[str]) -> Reply:
    """`SITE UTIME YYYYMMDDhhmm[ss] path` (mtime and atime), or `SITE UTIME path atime mtime ctime UTC`;
    times are UTC."""
    if len(words) < 3:
        return _misc_not_understood(words)
    three = len(words) >= 6 and words[-1].upper() == "UTC"
    if three:
        arg, stamps = " ".join(words[1:-4]), words[-4:-1]
    else:
        arg, stamps = " ".join(words[2:]), [words[1]]
    bad = Reply(500, f"{cmd.arg}: {os.strerror(errno.EINVAL)}")
    if any(len(s) not in (12, 14) for s in stamps):
        return bad
    path = _resolve(session, arg)
    if _denied(session, "SITE_UTIME", WRITE, path.real):
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


# -- modes ---------------------------------------------------------------------------------------------------------
def _current_umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def parse_mode(text: str, current: int, umask: int) -> int:
    """An octal mode (`755`, `0644`) or one symbolic clause (`u+x`, `go-w`, `a=r`, `+x`), the way mod_site reads
    it: an empty `who` means "all, less the umask"; ValueError when neither."""
    try:
        return int(text if text.startswith("0") else "0" + text, 8) & 0o7777
    except ValueError:
        pass
    for i, ch in enumerate(text):
        if ch in "+-=":
            who, how, what = text[:i], ch, text[i + 1:]
            break
    else:
        raise ValueError(text)
    if not what or any(c not in "rwxstugo" for c in what) or any(c not in "ugoa" for c in who):
        raise ValueError(text)
    masks = {"u": 0o077, "g": 0o707, "o": 0o770, "a": 0o000}
    mode = (current & 0o7777) if how != "=" else 0
    for w in who or "\0":
        mask = masks.get(w, umask)
        bits = 0
        for c in what:
            bits |= {"r": 0o444, "w": 0o222, "x": 0o111, "s": 0o4000, "t": 0o1000}.get(c, 0)
            if c in "ugo":
                shift = {"u": 6, "g": 3, "o": 0}[c]
                perm = (current >> shift) & 0o7
                bits |= perm << 6 | perm << 3 | perm
        if how == "-":
            mode &= ~(bits & ~mask)
        else:
            mode |= bits & ~mask
    return mode & 0o7777


_HANDLERS = {"HELP": site_help, "CHMOD": site_chmod, "CHGRP": site_chgrp, "MKDIR": site_mkdir,
             "RMDIR": site_rmdir, "SYMLINK": site_symlink, "UTIME": site_utime}


def session_init(session: "Session") -> None:
    """FEAT shows the SITE MKDIR/RMDIR/SYMLINK/UTIME lines only while SiteMiscEngine is on."""
    previous = session.state.get("feat_filter")

    def feat_filter(command: Any, line: str) -> bool:
        if previous is not None and not previous(command, line):
            return False
        return not (line.startswith("SITE ") and not _misc_on(session))

    session.state["feat_filter"] = feat_filter


commands = [
    Command("SITE", site, None, needs_login=False, arg=OPTIONAL, help="<sp> string",
            feat=tuple(f"SITE {name}" for name in MISC)),
]

