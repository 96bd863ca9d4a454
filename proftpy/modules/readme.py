"""mod_readme: `DisplayReadme README*` tells the client, after a change of directory and after login, which files
matching the pattern are there and when each last changed, in lines under the reply:

    250-CWD command successful
     Please read the file README
    250    it was last modified on Thu Jan  2 03:04:05 2020 - 1800 days ago

The pattern is globbed in the new directory through the session's root (an absolute one from the root); each
DisplayReadme line adds its own files. After PASS the lines come last, below DisplayLogin's, each file after a blank
line. ProFTPD 1.3.8 leaves the date out (its buffer is overwritten while it is read): proftpy shows it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..config.registry import SVGA, Directive, Merge
from ..config.types import Custom
from ..dispatch import LOG_CMD, POST_CMD, Hook, Request
from ..module import Module
from ..reply import FtpError
from .ls import expand_glob

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_readme.c"


def _pattern(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("syntax: DisplayReadme <filename-or-pattern>")
    return args[0]


directives = (
    Directive("DisplayReadme", Custom(_pattern, "filename-or-pattern"), SVGA, None, Merge.DOWN,
              "After CWD/CDUP and login: name the files matching the pattern there and when each last changed.",
              repeat=True),
)


def days_between(then: float, now: float) -> int:
    """mod_readme's day count: years of 365.25 days plus the day of the year, both in UTC (so the same file is a
    whole number of days old on every server)."""
    a, b = time.gmtime(now), time.gmtime(then)
    return (int(365.25 * (a.tm_year - 1900)) + a.tm_yday - 1) - (int(365.25 * (b.tm_year - 1900)) + b.tm_yday - 1)


def _show(session: "Session", cmd: Request) -> None:
    reply = cmd.reply
    if reply is None or session.fs is None:
        return
    for pattern in session.context().nearest("DisplayReadme"):
        for path in expand_glob(session, pattern):
            try:
                mtime = session.fs.stat(session.fs.resolve(path).real).st_mtime
            except (OSError, FtpError):
                continue                    # a dangling link, a loop: nothing to tell
            if cmd.name == "PASS":
                reply.add_line("")           # apart from the login lines above (ProFTPD's Bug#3605), each file
            days = days_between(mtime, time.time())
            reply.add_line(f"Please read the file {path}")
            reply.add_line(f"   it was last modified on {time.ctime(mtime)} - {days} {'day' if days == 1 else 'days'} "
                           "ago")


_shown = lambda config: config.sets("DisplayReadme")      # noqa: E731
hooks = tuple(Hook(POST_CMD, name, _show, active=_shown) for name in ("CWD", "XCWD", "CDUP", "XCUP"))
MODULE = Module(NAME, directives=directives, hooks=hooks + (Hook(LOG_CMD, "PASS", _show, active=_shown),))
