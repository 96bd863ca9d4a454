"""mod_site: the SITE command and its own sub-commands HELP, CHMOD, CHGRP.

Every SITE sub-command is a row of the command table named `SITE <SUB>` (this module's and mod_site_misc's);
`<Limit>` knows it as `SITE_<SUB>` with the row's group. As in ProFTPD the handlers ask `<Limit>` at the resolved
path themselves (mod_access's PRE_CMD hook leaves SITE to them). Paths go through `session.fs`.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from .. import trace
from ..dispatch import OPTIONAL, WRITE, Command, PathArg, Request
from ..fs import VPath
from ..module import Module
from ..reply import Reply
from .access import limits_allow
from .core import admin_address
from .files import check_filters

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_site.c"


def words_of(req: Request) -> list[str]:
    """The SITE request's words, the sub-command upper-cased: `SITE chmod 755 f` -> [CHMOD, 755, f]."""
    words = req.arg.split()
    if words:
        words[0] = words[0].upper()
    return words


def denied(session: "Session", name: str, group: str | None, real: str) -> bool:
    return not limits_allow(session, name, group, real)


def _not_understood(words: list[str]) -> Reply:
    """mod_site's answer to CHMOD/CHGRP with too few arguments: the command line, then a second 500 line."""
    return Reply(500, "SITE not understood", [f"'SITE {' '.join(words)}' not understood"])


def resolve(session: "Session", arg: str, follow_last: bool = True) -> VPath:
    path = session.fs.resolve(arg, follow_last=follow_last, tilde=True)     # `~` as in ProFTPD's mod_site
    check_filters(session, arg, path.real)
    return path


# -- SITE ----------------------------------------------------------------------------------------------------------
def site(session: "Session", cmd: Request) -> Reply:
    """Hand the request to the `SITE <SUB>` row: unknown or switched off -> not understood; too few words (the
    row's `min_words`, counted before the login check) -> not understood; then the login rule."""
    words = words_of(cmd)
    if not words:
        return Reply(500, "'SITE' requires parameters")
    row = session.dispatcher.site_row(cmd.arg)
    if row is None or (row.enabled is not None and not row.enabled(session)) or len(words) < row.min_words:
        return Reply(500, f"'SITE {words[0]}' not understood")
    if row.needs_login and not session.authenticated:
        return Reply(530, "Please login with USER and PASS")
    if trace.on: trace.msg("site", 7, "dispatching SITE command '%s' to %s", row.name, row.module)
    return row.handler(session, cmd)


def _site_rows(session: "Session") -> tuple[list[Command], list[Command]]:
    """(other modules' SITE rows that are switched on, this module's own), in table order."""
    rows = [c for c in session.dispatcher.commands.values() if c.name.startswith("SITE ") and c.handler]
    others = [c for c in rows if c.module != NAME and c.site_help and (c.enabled is None or c.enabled(session))]
    return others, [c for c in rows if c.module == NAME]


def help_site(session: "Session") -> Reply:
    """`HELP SITE`: mod_site's own sub-commands, one per line."""
    names = [c.name[5:] for c in _site_rows(session)[1]]
    return Reply(214, names[-1], [names[0]] + [f" {name}" for name in names[1:-1]])


def site_help(session: "Session", cmd: Request) -> Reply:
    """SITE HELP: the other modules' sub-commands with their syntax first (each module answers SITE HELP as
    ProFTPD dispatches it), then mod_site's; `SITE HELP <sub>` explains one of mod_site's own."""
    words = words_of(cmd)
    if session.fs is not None and denied(session, "SITE_HELP", None, session.fs.resolve(".").real):
        return Reply(501, f"HELP: {os.strerror(errno.EACCES)}")
    others, own = _site_rows(session)
    end = f"Direct comments to {admin_address(session)}"
    header = (["The following SITE commands are recognized (* =>'s unimplemented)"]
              + [f" {c.name[5:]} {c.help}".rstrip() for c in others])
    if len(words) > 1 and words[1].upper() != "SITE":
        want = words[1].upper()
        for c in own:
            if c.name[5:] == want:
                return Reply(214, end, header + [f" Syntax: {c.name} {c.help}"])
        return Reply(502, f"Unknown command 'SITE {' '.join(words)}'")
    return Reply(214, end, header + [f" {c.name[5:]}" for c in own])


def site_chmod(session: "Session", cmd: Request) -> Reply:
    words = words_of(cmd)
    if len(words) < 3:
        return _not_understood(words)
    arg = " ".join(words[2:])
    path = resolve(session, arg)
    try:
        st = session.fs.stat(path.real)
    except OSError as e:
        return Reply(550, f"{arg}: {e.strerror}")
    try:
        mode = parse_mode(words[1], st.st_mode, _current_umask())
    except ValueError:
        return Reply(550, f"'{words[1]}': invalid mode")
    if denied(session, "SITE_CHMOD", WRITE, path.real):
        return Reply(550, f"{cmd.arg}: {os.strerror(errno.EACCES)}")
    try:
        session.fs.chmod(path.real, mode)
    except OSError as e:
        return Reply(550, f"{cmd.arg}: {e.strerror}")
    return Reply(200, "SITE CHMOD command successful")


def site_chgrp(session: "Session", cmd: Request) -> Reply:
    words = words_of(cmd)
    if len(words) < 3:
        return _not_understood(words)
    arg = " ".join(words[2:])
    path = resolve(session, arg)
    try:
        session.fs.lstat(path.real)
    except OSError as e:
        return Reply(550, f"{arg}: {e.strerror}")
    try:
        gid = session.auth.gid_of(words[1])
    except ValueError:
        return Reply(550, f"{arg}: {os.strerror(errno.EINVAL)}")
    if denied(session, "SITE_CHGRP", WRITE, path.real):
        return Reply(550, f"{arg}: {os.strerror(errno.EACCES)}")
    try:
        session.fs.chown(path.real, -1, gid)
    except OSError as e:
        return Reply(550, f"{arg}: {e.strerror}")
    return Reply(200, "SITE CHGRP command successful")


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


MODE_PATH = PathArg(skip=1)

commands = (
    Command("SITE", site, needs_login=False, arg=OPTIONAL, help="<sp> string", help_at=54, help_detail=help_site,
            limit=False,
            replies=("200 SITE <CMD> command successful", "214 SITE HELP list", "500 'SITE <x>' not understood",
                     "500 'SITE' requires parameters",
                     "500-'SITE CHMOD <args>' not understood / 500 SITE not understood",
                     "502 Unknown command 'SITE HELP <x>'", "550 '<mode>': invalid mode")),
    Command("SITE HELP", site_help, needs_login=False, help="[<sp> site-command]", limit_all=False,
            replies=("214-... list, 214 Syntax: SITE <CMD> <syntax>",)),
    Command("SITE CHGRP", site_chgrp, WRITE, help="<sp> group <sp> pathname", path=MODE_PATH,
            replies=("200 SITE CHGRP command successful",)),
    Command("SITE CHMOD", site_chmod, WRITE, help="<sp> mode <sp> pathname", path=MODE_PATH,
            replies=("200 SITE CHMOD command successful (octal, or one symbolic clause such as go+r)",)),
)

MODULE = Module(NAME, commands=commands)
