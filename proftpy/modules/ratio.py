"""mod_ratio: upload/download ratios. With `Ratios on` a user earns downloads by uploading: RETR is refused once the
file or byte ratio that applies is used up, and the replies of PASS, LIST, NLST, RETR and STOR gain a line with the
session's tally and the credit left (proftpy/ratio.py has the arithmetic and the texts):

    226-Transfer complete
    226 Down: 1 Files (0mb)  Up: 0 Files (0mb)   1:1F CR: 0

The ratio is the first that matches of: HostRatio (client name or address, `.example.com` and `10.0.` match as
globs), AnonRatio (the anonymous login name, or `*`), UserRatio (the login name, or `*`), GroupRatio (the primary
or another group); none: the user is a leech (LeechRatioMsg). SITE RATIO shows it all. With SaveRatios on, the
tally is read from RatioFile at login (an existing file: it is never created) and written back after each upload and
download, through RatioTempFile, with the session's own permissions (after the chroot, as ProFTPD). CwdRatioMsg
lines go above a successful CWD's reply, with Ratios on or off.

As ProFTPD, Ratios, SaveRatios and the messages are read from the server's own settings, GroupRatio too; the
UserRatio, AnonRatio and HostRatio lines of an `<Anonymous>` or `<Directory>` section come before the server's.
Kept different on purpose (ProFTPD's bugs): the tally is counted under the name that logged in (ProFTPD keeps the
first USER's, so a client could spend another user's credit); AnonRatio `*` is for anonymous logins only (ProFTPD
gives it to every user); kilobytes read from the RatioFile count (ProFTPD never parses them: every line's bytes
become 0 when it rewrites the file); a negative byte credit is shown as a negative number (ProFTPD prints it
unsigned); a line of the RatioFile that is not a tally is skipped and kept (ProFTPD crashes on it); the last of a
user's supplementary groups counts for GroupRatio too; ratio numbers that are not whole numbers are refused by
`proftpy -t` (ProFTPD reads them as 0).
"""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.registry import ALL_DIRS, FTPACCESS, Directive, Merge
from ..config.types import Custom, Flag, Path, Text
from ..dispatch import POST_CMD, PRE_CMD, Command, Hook, Request
from ..fs import FsError
from ..module import Module
from ..ratio import Ratio, Standing, Tally
from .. import ratio as rt
from ..reply import Reply
from .access import limits_allow
from .auth import AuthState

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

NAME = "mod_ratio.c"
TAG = "mod_ratio/3.3"                   # ProFTPD 1.3.8's mod_ratio, as its log lines name it
WHERE = ALL_DIRS & ~FTPACCESS           # ProFTPD: server config, <VirtualHost>, <Global>, <Anonymous>, <Directory>
FILE_MSG = "Too few files uploaded to earn file -- please upload more."
BYTE_MSG = "Too few bytes uploaded to earn more data -- please upload."
LEECH_MSG = "10,000,000:1  CR: LEECH"


def _ratio_line(args: list[str]) -> tuple[str, Ratio]:
    return Ratio.parse(args)


_SYNTAX = "name file-ratio file-credit byte-ratio byte-credit"
directives = (
    Directive("Ratios", Flag, WHERE, False, Merge.SERVER,
              "Enforce upload/download ratios and show the tally under PASS, LIST, NLST, RETR and STOR replies."),
    Directive("UserRatio", Custom(_ratio_line, _SYNTAX), WHERE, None, Merge.SERVER,
              "The ratio of a user (`*`: every user): downloads earned per upload, free downloads, the same for "
              "kilobytes.", repeat=True),
    Directive("GroupRatio", Custom(_ratio_line, _SYNTAX), WHERE, None, Merge.SERVER,
              "The ratio of the members of a group (primary or other).", repeat=True),
    Directive("AnonRatio", Custom(_ratio_line, _SYNTAX), WHERE, None, Merge.SERVER,
              "The ratio of an anonymous login name (`*`: every anonymous login).", repeat=True),
    Directive("HostRatio", Custom(_ratio_line, _SYNTAX), WHERE, None, Merge.SERVER,
              "The ratio of a client name or address (`.example.com`, `10.0.` and globs match).", repeat=True),
    Directive("FileRatioErrMsg", Text, WHERE, FILE_MSG, Merge.SERVER,
              "Said when the file ratio is used up (refused RETR, status lines)."),
    Directive("ByteRatioErrMsg", Text, WHERE, BYTE_MSG, Merge.SERVER,
              "Said when the byte ratio is used up (refused RETR, status lines)."),
    Directive("LeechRatioMsg", Text, WHERE, LEECH_MSG, Merge.SERVER,
              "Added to the status line of a session no ratio applies to."),
    Directive("CwdRatioMsg", Text, WHERE, None, Merge.SERVER,
              "A line above the reply of a successful CWD (each line of the directive adds one).", repeat=True),
    Directive("SaveRatios", Flag, WHERE, False, Merge.SERVER,
              "Keep each user's tally in RatioFile across sessions."),
    Directive("RatioFile", Path(absolute=False), WHERE, None, Merge.SERVER,
              "The file of tallies (`name|files up|KB up|files down|KB down`); it must exist."),
    Directive("RatioTempFile", Path(absolute=False), WHERE, None, Merge.SERVER,
              "Where the new RatioFile is written before it is copied over the old one."),
)


@dataclass
class RatioState:
    """A session's tally and the name it counts under, and whether the RatioFile was read (or could not be)."""

    user: str = ""
    tally: Tally = field(default_factory=Tally)
    loaded: bool = False                # the user's line was looked for (ProFTPD's gotratuser)
    file_error: bool = False            # the RatioFile or the temporary file could not be used: nothing is saved


# -- which ratio ---------------------------------------------------------------------------------------------------
def _lines(session: "Session", name: str, nested: bool = True) -> list[Any]:
    """A ratio directive's lines as ProFTPD's recursive look-up finds them: those of the first `<Anonymous>` or
    `<Directory>` section that has any, else the server's own."""
    top = session.server.section
    if nested:
        for section in top.walk():
            if section is not top and section.all(name):
                return [p.value for p in section.all(name)]
    return [p.value for p in top.all(name)]


def _host_glob(mask: str) -> str:
    if mask.startswith("."):
        return "*" + mask
    if mask.endswith("."):
        return mask + "*"
    return mask


def _host_matches(session: "Session", mask: str) -> bool:
    pattern = _host_glob(mask).lower()
    return any(fnmatch.fnmatchcase(name.lower(), pattern) for name in (session.remote_name, session.remote_addr))


def find_ratio(session: "Session") -> Ratio | None:
    """The ratio that applies, or None (a leech)."""
    st = session.state.get(RatioState)
    for who, ratio in _lines(session, "HostRatio"):
        if _host_matches(session, who):
            return ratio
    anon = _anon_user(session)
    if anon is not None:
        for who, ratio in _lines(session, "AnonRatio"):
            if who == "*" or who == anon:
                return ratio
    for who, ratio in _lines(session, "UserRatio"):
        if who == "*" or who == st.user:
            return ratio
    groups = session.groups if session.authenticated and session.groups else ()
    for who, ratio in _lines(session, "GroupRatio", nested=False):
        if who in groups:
            return ratio
    return None


def standing(session: "Session") -> Standing:
    """The session's tally under the ratio that applies; with Ratios off, under none."""
    return Standing(find_ratio(session) if _enabled(session) else None, session.state.get(RatioState).tally)


def _anon_user(session: "Session") -> str | None:
    """The name ProFTPD knows an anonymous session by: the password given (an e-mail address), or with
    AnonRequirePassword the login name."""
    if session.anon is None:
        return None
    if session.anon.get("AnonRequirePassword"):
        return session.user_arg
    return session.state.get(AuthState).anon_password


def _enabled(session: "Session") -> bool:
    return bool(session.server.get("Ratios"))


# -- the RatioFile -------------------------------------------------------------------------------------------------
def _saving(session: "Session", st: RatioState) -> bool:
    return bool(session.server.get("SaveRatios")) and not st.file_error


def _file_failed(st: RatioState, what: str, path: str | None, e: OSError) -> None:
    log.debug("%s: error opening %s '%s': %s", TAG, what, path or "", e.strerror or e)
    st.loaded = st.file_error = True


def _files(session: "Session") -> tuple[str, str]:
    """RatioFile and RatioTempFile as the session sees them: inside its root (after the chroot, as ProFTPD opens
    them; proftpy's userland jail of a non-root daemon reads them in the same place)."""
    root = session.fs.root if session.fs is not None else "/"

    def inside(path: str | None) -> str:
        return os.path.join(root, path.lstrip("/")) if path and path.startswith("/") else (path or "")
    return inside(session.server.get("RatioFile")), inside(session.server.get("RatioTempFile"))


def _load(session: "Session", st: RatioState) -> None:
    """At the first status line (after PASS): the user's tally from the RatioFile added to the session's; a user
    without a line gets one."""
    if st.loaded or not _saving(session, st):
        return
    path, temp = _files(session)
    try:
        lines = rt.read_lines(path)
    except OSError as e:
        _file_failed(st, "ratios file", path, e)
        return
    st.loaded = True
    known = rt.find(lines, st.user)
    if known is not None:
        st.tally += known
        return
    try:
        rt.write_through(path, temp, lines + [rt.format_line(st.user, st.tally)])
    except OSError as e:
        _file_failed(st, "temporary ratios file" if e.filename == temp else "ratios file", e.filename, e)


def _save(session: "Session", st: RatioState) -> None:
    """After an upload or a download: the user's line rewritten."""
    if not _saving(session, st):
        return
    path, temp = _files(session)
    try:
        lines = rt.read_lines(path)
        rt.write_through(path, temp, rt.replace(lines, st.user, st.tally))
    except OSError as e:
        _file_failed(st, "temporary ratios file" if e.filename == temp else "ratios file", e.filename, e)


# -- the replies ---------------------------------------------------------------------------------------------------
def _status(session: "Session", cmd: Request) -> None:
    """The tally line under the reply (and the used-up messages), with Ratios on; the RatioFile read first."""
    st = session.state.get(RatioState)
    if not st.user:
        st.user = session.user_arg or "NOBODY"
    _load(session, st)
    if not _enabled(session) or cmd.reply is None:
        return
    now = standing(session)
    if now.rule.enforced:
        lines = [now.status()]
        if now.rule.files and now.files < 0:
            lines.append(session.server.get("FileRatioErrMsg"))
        if now.rule.bytes and now.kbytes < 0:
            lines.append(session.server.get("ByteRatioErrMsg"))
    else:
        lines = [f"{now.status()}  {session.server.get('LeechRatioMsg')}"]
    if cmd.name == "PASS":
        above(cmd.reply, lines)             # above mod_auth's 230 text, which ProFTPD adds after mod_ratio's
    else:
        for line in lines:
            cmd.reply.add_line(line)


def above(reply: Reply, lines: list[str]) -> None:
    """`lines` put at the top of a reply (a module that answers before the command's own handler in ProFTPD)."""
    below = [" " + reply.lines[0]] + reply.lines[1:] if reply.lines else []
    reply.lines = [lines[0]] + [" " + line for line in lines[1:]] + below


def _logged_in(session: "Session", cmd: Request) -> None:
    """PASS: the session counts under the name that logged in."""
    st = session.state.get(RatioState)
    st.user = _anon_user(session) or session.user_arg or session.user or "NOBODY"
    _status(session, cmd)
    if not session.closing:
        _log_login(session)                 # before mod_auth's `Login successful.` (LOG_CMD), as ProFTPD's order


def _counted(session: "Session", cmd: Request, upload: bool) -> None:
    """After a finished RETR or STOR: one file and its kilobytes counted, the tally saved, the status line."""
    st = session.state.get(RatioState)
    xfer = cmd.notes.get("xfer")
    kb = (xfer["bytes"] if xfer else 0) // 1024
    if upload:
        st.tally.files_up += 1
        st.tally.kb_up += kb
    else:
        st.tally.files_down += 1
        st.tally.kb_down += kb
    if st.user:
        _save(session, st)
    _status(session, cmd)


def _debug(session: "Session", cmd: Request, now: Standing) -> None:
    """ProFTPD's debug line of each ratio-checked command."""
    cwd = session.fs.cwd if session.fs is not None else ""
    tail = f" :{now.summary(numbers=False)}" if now.rule.enforced else ""
    log.debug("%s: %s in %s: %s %s%s", TAG, session.state.get(RatioState).user, cwd, cmd.name, cmd.arg, tail)


def _checked(session: "Session", cmd: Request) -> None:
    if _enabled(session):
        _debug(session, cmd, standing(session))


def _size(session: "Session", arg: str) -> int:
    """The size of the file RETR names, 0 when it cannot be read (absent, denied)."""
    try:
        path = session.fs.resolve(arg, tilde=True)
        if not limits_allow(session, "RETR", "READ", path.real):
            return 0
        return session.fs.stat(path.real).st_size
    except (OSError, FsError):
        return 0


def _pre_retr(session: "Session", cmd: Request) -> Reply | None:
    """RETR refused (550) when the file ratio leaves no download, or the byte ratio fewer kilobytes than the
    file has."""
    if not _enabled(session):
        return None
    now = standing(session)
    _debug(session, cmd, now)
    if not now.rule.enforced:
        return None
    t = now.tally
    if now.files_refused():
        return Reply(550, f"{cmd.arg}: FILE RATIO: {now.file_label}  Down: {t.files_down}  Up: only {t.files_up}!",
                     [session.server.get("FileRatioErrMsg")])
    if now.rule.bytes and now.bytes_refused(_size(session, cmd.arg)):
        return Reply(550, f"{cmd.arg}: BYTE RATIO: {now.byte_label}  Down: {t.kb_down // 1024}mb  "
                          f"Up: only {t.kb_up // 1024}mb!", [session.server.get("ByteRatioErrMsg")])
    return None


def _cwd_message(session: "Session", cmd: Request) -> None:
    """CwdRatioMsg lines above a successful CWD's reply (an empty one ends them)."""
    lines = []
    for message in _lines(session, "CwdRatioMsg"):
        if not message:
            break
        lines.append(message)
    if lines and cmd.reply is not None:
        above(cmd.reply, lines)


def _site_help(session: "Session", cmd: Request) -> None:
    """SITE HELP: mod_ratio's two lines below the first."""
    reply = cmd.reply
    words = cmd.arg.split()
    if reply is None or reply.code != 214 or not words or words[0].upper() != "HELP":
        return
    reply.lines[1:1] = [" The following SITE extensions are recognized:", " RATIO -- show all ratios in effect"]


def site_ratio(session: "Session", cmd: Request) -> Reply:
    """SITE RATIO: the ratio in effect, the tally and the credit left."""
    now = standing(session)
    t = now.tally
    lines = [f"Current Ratio: ( {now.summary()} )"]
    if now.rule.files:
        lines.append(f"Files: {now.file_label}  Down: {t.files_down}  Up: {t.files_up}  CR: {now.files} "
                     f"file{'s' if now.files != 1 else ''}")
    if now.rule.bytes:
        lines.append(f"Bytes: {now.byte_label}  Down: {t.kb_down // 1024}mb  Up: {t.kb_up // 1024}mb  "
                     f"CR: {rt.cdiv(now.kbytes, 1024)} Mbytes")
    return Reply(214, lines[-1], lines[:1] + [" " + line for line in lines[1:-1]] if len(lines) > 1 else [])


def _log_login(session: "Session") -> None:
    """The SystemLog line of a login with Ratios on."""
    if not _enabled(session):
        return
    group = session.groups[0] if session.groups else ""
    log.info("Ratio: %s/%s %s[%s]: %s.", session.state.get(RatioState).user, group, session.remote_name,
             session.remote_addr, standing(session).summary())


commands = (
    Command("SITE RATIO", site_ratio, needs_login=False, help="-- show all ratios in effect", site_help=False,
            replies=("214 Current Ratio: ( -down/MB +up/MB (ratio numbers) = files/MB )",)),
)
_counts = lambda config: config.sets("Ratios") or config.sets("SaveRatios")     # noqa: E731
_on = lambda config: config.sets("Ratios")                                       # noqa: E731
# uploads and downloads are counted in every configuration (SITE RATIO shows them with Ratios off, as ProFTPD)
hooks = (
    tuple(Hook(PRE_CMD, c, _checked, active=_on) for c in ("CWD", "LIST", "NLST", "STOR"))
    + (Hook(PRE_CMD, "RETR", _pre_retr, active=_on),
       Hook(POST_CMD, "PASS", _logged_in, active=_counts),
       Hook(POST_CMD, "RETR", lambda s, c: _counted(s, c, upload=False)),
       Hook(POST_CMD, "STOR", lambda s, c: _counted(s, c, upload=True)),
       Hook(POST_CMD, "CWD", _cwd_message, active=lambda config: config.sets("CwdRatioMsg")),
       Hook(POST_CMD, "SITE", _site_help))
    + tuple(Hook(POST_CMD, c, _status, active=_counts) for c in ("LIST", "NLST"))
)

MODULE = Module(NAME, directives=directives, commands=commands, hooks=hooks)
