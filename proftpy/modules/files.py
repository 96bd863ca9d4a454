"""mod_core's file and directory commands (PWD CWD CDUP MKD RMD DELE RNFR RNTO SIZE MDTM), mod_facts' MFMT/MFF,
the small control commands (OPTS HOST CLNT CSID) and the Display* files.

Every client path goes through `session.fs` (the one door); an `OSError` from the filesystem travels to dispatch,
which answers ProFTPD's `550 <arg>: <strerror>`. Reply texts follow reference §8 and mod_core.c/mod_facts.c.
"""

from __future__ import annotations

import calendar
import errno
import fnmatch
import ipaddress
import os
import stat
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import PROFTPD_COMPAT, transfer
from . import display
from ..config.registry import DIR, SVG, SVGA, Directive, Merge
from ..config.types import Custom, Path, parse_bool
from ..dispatch import (DIRS, HOME_EXACT_PATH, HOME_PATH, NONE, NOT_PERMITTED, OPTIONAL, POST_CMD, PRE_CMD, READ, WRITE,
                        Command, Hook, PathArg, Request, feat_when)
from ..fs import FsError, VPath
from ..module import Listener, Module
from ..reply import FtpError, Reply
from . import deflate as mod_deflate
from . import digest as mod_digest
from . import facts as mod_facts
from . import lang as mod_lang
from . import xfer as mod_xfer

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_core.c"


@dataclass
class FilesState:
    rnfr: VPath | None = None           # RNFR's source, until RNTO
    utf8: bool | None = None            # OPTS UTF8
    clnt: str | None = None             # CLNT's text
    csid: dict[str, str] = field(default_factory=dict)   # CSID's facts
    host: str | None = None             # HOST's name


def _display_chdir(args: list[str]) -> tuple[str, bool]:
    if not 1 <= len(args) <= 2:
        raise ValueError('expected path ["on"]')
    return args[0], parse_bool(args[1]) if len(args) == 2 else False


directives = (
    Directive("DisplayConnect", Path(), SVG, None, Merge.SERVER,
              "File whose lines are sent as `220-` lines before the greeting."),
    Directive("DisplayLogin", Path(absolute=False), SVGA, None, Merge.DOWN,
              "File shown as `230-` lines after login (path inside the session root, or relative to home)."),
    Directive("DisplayChdir", Custom(_display_chdir, 'path ["on"]'), SVGA | DIR, None, Merge.DOWN,
              "File shown as `250-` lines on CWD (relative paths: in the new directory); `on`: only when changed."),
    Directive("DisplayQuit", Path(absolute=False), SVGA, None, Merge.DOWN,
              "File shown as `221-` lines on QUIT."),
    Directive("DisplayFileTransfer", Path(absolute=False), SVGA | DIR, None, Merge.DOWN,
              "File shown as `226-` lines before `226 Transfer complete` of a RETR, STOR, STOU or APPE.",
              module="mod_xfer.c"),
    Directive("CDPath", Path(), SVGA, None, Merge.DOWN,
              "Directories CWD also tries a relative name in when it is not found.", repeat=True),
)


# -- helpers -------------------------------------------------------------------------------------------------------
def quote(path: str) -> str:
    """RFC 959 path quoting for 257 replies: an embedded `"` is doubled."""
    return path.replace('"', '""')


def _path_arg(cmd: Request) -> str:
    if not cmd.arg:
        raise FtpError(501, "Invalid number of parameters")
    return cmd.arg


def transfer_type(session: "Session") -> str:
    """The current TYPE, "A" or "I", from mod_xfer's data state (its DefaultTransferMode before any TYPE)."""
    return "A" if transfer.state(session).ascii else "I"


def times_gmt(session: "Session") -> bool:
    return bool(session.conf("TimesGMT"))


def filters_allow(session: "Session", text: str, real: str) -> bool:
    """Whether PathAllowFilter and PathDenyFilter (those in force at `real`) let `text` through."""
    allow = session.conf("PathAllowFilter", real)
    deny = session.conf("PathDenyFilter", real)
    return (allow is None or bool(allow.search(text))) and (deny is None or not deny.search(text))


def check_filters(session: "Session", arg: str, real: str) -> None:
    """PathAllowFilter / PathDenyFilter: `550 <arg>: Forbidden filename`."""
    if not filters_allow(session, arg, real):
        raise FtpError(550, f"{arg}: Forbidden filename")


DIR_MODE = "mod_core.dir-mode"     # Request.notes: the mode MKD makes its directory with (SFTP's MKDIR attributes)


def dir_mode(session: "Session", real: str) -> int:
    """Mode for a new directory: 0777 less the Umask's directory mask (or its file mask)."""
    file_mask, dir_mask = session.conf("Umask", os.path.dirname(real))
    return 0o777 & ~(dir_mask if dir_mask is not None else file_mask)


def _require_fs(session: "Session"):
    if session.fs is None:
        raise FtpError(530, "Please login with USER and PASS")
    return session.fs


# -- directories ---------------------------------------------------------------------------------------------------
def pwd(session: "Session", cmd: Request) -> Reply:
    fs = _require_fs(session)
    return Reply(257, f'"{quote(fs.cwd)}" is the current directory')


def _show_symlinks(session: "Session") -> bool:
    return bool(session.conf("ShowSymlinks"))


def change_dir(session: "Session", arg: str, name: str) -> Reply:
    """CWD/CDUP: move, try CDPath for relative names, then say DisplayChdir's lines and `250 <cmd> command
    successful`. With ShowSymlinks on (the default) the new directory is shown resolved, as ProFTPD does."""
    fs = _require_fs(session)
    try:
        path = fs.chdir(arg, tilde=True)
    except (OSError, FtpError) as first:
        path = _try_cdpath(session, arg)
        if path is None:
            err = getattr(first, "errno", None) or errno.EIO
            if err in (errno.ELOOP, errno.ENAMETOOLONG):
                raise FsError(arg, errno.ENOENT) from None      # ProFTPD's chdir says so for these
            if isinstance(first, FtpError):
                raise
            raise FsError(arg, err) from None
    if _show_symlinks(session):
        fs.cwd = fs.canonical(path)
    session.events.emit("core.chdir", session=session, path=fs.cwd)
    lines = display.chdir_lines(session, path.real)
    return Reply(250, f"{name} command successful", lines)


def _try_cdpath(session: "Session", arg: str) -> VPath | None:
    if arg.startswith("/"):
        return None
    for base in session.context().all("CDPath"):
        try:
            return session.fs.chdir(base.rstrip("/") + "/" + arg)
        except (OSError, FtpError):
            continue
    return None


def cwd(session: "Session", cmd: Request) -> Reply:
    return change_dir(session, _path_arg(cmd), cmd.name)


def cdup(session: "Session", cmd: Request) -> Reply:
    return change_dir(session, "..", cmd.name)


def mkd(session: "Session", cmd: Request) -> Reply:
    arg = _path_arg(cmd)
    if "*" in arg:
        raise FtpError(550, f"{arg}: Invalid directory name")
    fs = _require_fs(session)
    path = fs.resolve(arg, follow_last=False, tilde=True)
    check_filters(session, arg, path.real)
    mode = cmd.notes.get(DIR_MODE)
    if mode is None:
        mode = dir_mode(session, path.real)
    old = os.umask(0)
    try:
        fs.mkdir(path.real, mode)
    finally:
        os.umask(old)
    mod_xfer.new_owner(session, path.real)
    return Reply(257, f'"{quote(path.virtual)}" - Directory successfully created')


def rmd(session: "Session", cmd: Request) -> Reply:
    arg = _path_arg(cmd)
    fs = _require_fs(session)
    path = fs.resolve(arg, follow_last=False, tilde=True)
    check_filters(session, arg, path.real)
    if path.virtual == "/":
        raise FsError(arg, errno.EBUSY)         # the session root, as under chroot(2) (also for fs.py's jail)
    fs.rmdir(path.real)
    return Reply(250, f"{cmd.name} command successful")


def dele(session: "Session", cmd: Request) -> Reply:
    """Delete a file; a symlink is removed itself, never what it points to."""
    arg = _path_arg(cmd)
    fs = _require_fs(session)
    path = fs.resolve(arg, follow_last=False, tilde=True)
    check_filters(session, arg, path.real)
    st = fs.lstat(path.real)
    if stat.S_ISDIR(st.st_mode):
        raise FsError(arg, errno.EISDIR)
    fs.unlink(path.real)
    cmd.notes["deleted"] = {"path": path.real, "virtual": path.virtual, "size": st.st_size}
    session.events.emit("core.delete", session=session, path=path.real, size=st.st_size)
    return Reply(250, f"{cmd.name} command successful")


def rnfr(session: "Session", cmd: Request) -> Reply:
    arg = _path_arg(cmd)
    st = session.state.get(FilesState)
    st.rnfr = None
    fs = _require_fs(session)
    path = fs.resolve(arg, follow_last=False, tilde=True)
    check_filters(session, arg, path.real)
    if path.virtual == "/":
        raise FsError(arg, errno.EBUSY)         # the session root, as under chroot(2) (also for fs.py's jail)
    fs.lstat(path.real)                       # a dangling symlink may be renamed too
    st.rnfr = path
    cmd.notes["rnfr_path"] = path.real
    return Reply(350, "File or directory exists, ready for destination name")


def rnto(session: "Session", cmd: Request) -> Reply:
    arg = _path_arg(cmd)
    st = session.state.get(FilesState)
    source, st.rnfr = st.rnfr, None
    if source is None:
        return Reply(503, "Bad sequence of commands")
    fs = _require_fs(session)
    target = fs.resolve(arg, follow_last=False, tilde=True)
    check_filters(session, arg, target.real)
    if not session.conf("AllowOverwrite", target.real) and fs.exists(target.real):
        return Reply(550, f"{arg}: Rename permission denied")
    cmd.notes["rnfr_path"] = source.real
    try:
        fs.rename(source.real, target.real)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        _move_across_devices(fs, source.real, target.real, arg)
    cmd.notes["rnto_path"] = target.real
    return Reply(250, "Rename successful")


def _move_across_devices(fs, src: str, dst: str, arg: str) -> None:
    """rename(2) cannot cross mount points: copy a file (or a link) then remove it; a directory is refused
    (EPERM)."""
    if stat.S_ISDIR(fs.lstat(src).st_mode):
        raise FsError(arg, errno.EPERM)
    try:
        fs.copy(src, dst)
    except OSError as e:
        raise FtpError(550, f"Rename {arg}: {e.strerror}") from None
    fs.unlink(src)


# -- file facts ----------------------------------------------------------------------------------------------------
def size(session: "Session", cmd: Request) -> Reply:
    arg = _path_arg(cmd)
    if transfer_type(session) == "A":
        return Reply(550, f"{cmd.name} not allowed in ASCII mode")
    fs = _require_fs(session)
    st = fs.stat(fs.resolve(arg, tilde=True).real)
    if not stat.S_ISREG(st.st_mode):
        return Reply(550, f"{arg}: not a regular file")
    return Reply(213, str(st.st_size))


def mdtm(session: "Session", cmd: Request) -> Reply:
    arg = _path_arg(cmd)
    fs = _require_fs(session)
    st = fs.stat(fs.resolve(arg, tilde=True).real)
    if not stat.S_ISREG(st.st_mode):
        return Reply(550, f"{arg}: not a plain file")
    tm = time.gmtime(st.st_mtime) if times_gmt(session) else time.localtime(st.st_mtime)
    return Reply(213, time.strftime("%Y%m%d%H%M%S", tm))


def parse_timestamp(text: str) -> int:
    """`YYYYMMDDHHMMSS[.fff]` (UTC) -> epoch seconds; ValueError when out of range (mod_facts' checks)."""
    text = text.split(".", 1)[0]
    if len(text) < 14 or not text[:14].isdigit():
        raise ValueError(text)
    year, month, day = int(text[0:4]), int(text[4:6]), int(text[6:8])
    hour, minute, sec = int(text[8:10]), int(text[10:12]), int(text[12:14])
    if year < 1970 or not 1 <= month <= 12 or not 1 <= day <= 31 or hour > 24 or minute > 60 or sec > 61:
        raise ValueError(text)
    days = (calendar.timegm((year, month, 1, 0, 0, 0)) // 86400) + day - 1
    return days * 86400 + hour * 3600 + minute * 60 + sec


def _split_fact_arg(cmd: Request) -> tuple[str, str]:
    first, sep, path = cmd.arg.partition(" ")
    if not sep or not first or not path:
        raise FtpError(501, "Invalid number of parameters")
    return first, path


def mfmt(session: "Session", cmd: Request) -> Reply:
    timestamp, arg = _split_fact_arg(cmd)
    fs = _require_fs(session)
    path = fs.resolve(arg)
    check_filters(session, arg, path.real)
    stamp = timestamp.split(".", 1)[0]
    if len(timestamp) < 14:
        return Reply(501, f"{timestamp}: {os.strerror(errno.EINVAL)}")
    _set_mtime(fs, path.real, stamp, arg)
    return Reply(213, f"Modify={stamp}; {arg}")


def _set_mtime(fs, real: str, stamp: str, arg: str) -> None:
    try:
        when = parse_timestamp(stamp)
    except ValueError:
        raise FtpError(501, f"{arg}: {os.strerror(errno.EINVAL)}") from None
    try:
        fs.utime(real, (when, when))
    except OSError as e:
        raise FtpError(550 if e.errno == errno.ENOENT else 501, f"{arg}: {e.strerror}") from None


MFF_FEAT = "MFF modify;UNIX.group;UNIX.mode;"


def mff(session: "Session", cmd: Request) -> Reply:
    """Modify facts: `modify=YYYYMMDDHHMMSS;UNIX.mode=0644;UNIX.group=name; path`, applied in order."""
    facts, arg = _split_fact_arg(cmd)
    fs = _require_fs(session)
    path = fs.resolve(arg)
    check_filters(session, arg, path.real)
    if ";" not in facts:
        return Reply(550, f"{facts}: {os.strerror(errno.EINVAL)}")
    for fact in facts.split(";")[:-1]:
        key, sep, value = fact.partition("=")
        low = key.lower()
        if low.startswith("modify"):
            if not sep:
                return Reply(501, f"{facts}: {os.strerror(errno.EINVAL)}")
            if len(value) < 14:
                return Reply(501, f"{value}: {os.strerror(errno.EINVAL)}")
            _set_mtime(fs, path.real, value.split(".", 1)[0], arg)
        elif low.startswith("unix.group"):
            if not sep:
                return Reply(501, f"{facts}: {os.strerror(errno.EINVAL)}")
            try:
                gid = session.auth.gid_of(value)
            except ValueError:
                return Reply(501, f"{arg}: {os.strerror(errno.EINVAL)}")
            _fact_call(lambda: fs.chown(path.real, -1, gid), arg)
        elif low.startswith("unix.mode"):
            if not sep:
                return Reply(501, f"{facts}: {os.strerror(errno.EINVAL)}")
            try:
                mode = int(value, 8)
            except ValueError:
                return Reply(501, f"{arg}: {os.strerror(errno.EINVAL)}")
            _fact_call(lambda: fs.chmod(path.real, mode & 0o7777), arg)
        else:
            return Reply(504, f"Cannot modify fact '{fact}'")
    return Reply(213, f"{facts} {arg}")


def _fact_call(fn, arg: str) -> None:
    try:
        fn()
    except OSError as e:
        raise FtpError(550 if e.errno == errno.ENOENT else 501, f"{arg}: {e.strerror}") from None


# -- control commands ----------------------------------------------------------------------------------------------
def opts(session: "Session", cmd: Request) -> Reply:
    """OPTS <command> [args]: UTF8 here, MLST in mod_facts, MODE in mod_deflate, HASH in mod_digest; anything else
    is `500 OPTS <x> not understood`."""
    if not cmd.arg.strip():
        return Reply(501, "Invalid number of parameters")
    name, _, rest = cmd.arg.strip().partition(" ")
    name = name.upper()
    if name == "UTF8":
        words = rest.split()
        value = None
        if len(words) == 1:
            try:
                value = parse_bool(words[0])
            except ValueError:
                value = None
        if value is None:
            return Reply(501, "'OPTS UTF8' not understood")
        reply = mod_lang.opts_utf8(session, value)
        if reply.code == 200:
            session.state.get(FilesState).utf8 = value
        return reply
    if name == "MLST":
        return mod_facts.set_mlst_facts(session, rest)
    if name in ("MODE", "HASH"):
        reply = (mod_deflate.opts if name == "MODE" else mod_digest.opts_hash)(session, rest.split())
        if reply is not None:
            return reply
    return Reply(500, f"OPTS {name} not understood")


def clnt(session: "Session", cmd: Request) -> Reply:
    session.state.get(FilesState).clnt = cmd.arg
    return Reply(200, "OK")


def csid(session: "Session", cmd: Request) -> Reply:
    facts = {}
    for part in cmd.arg.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key.lower() in ("name", "version", "vendor"):
            facts[key.lower()] = value
    session.state.get(FilesState).csid = facts
    ident_on, _ = session.server.get("ServerIdent")
    if ident_on:
        return Reply(200, f"name=ProFTPD;version={PROFTPD_COMPAT};casesensitive=1;")
    return Reply(200, "casesensitive=1;")


def host(session: "Session", cmd: Request) -> Reply | None:
    """RFC 7151 HOST: an IP literal must be the address connected to; a name selects the server whose
    ServerAlias (or `<VirtualHost name>`) matches on this address and port, and that server greets anew."""
    words = cmd.arg.split()
    if len(words) != 1:
        return Reply(500, "'HOST' not understood")
    if session.authenticated or session.user:
        return Reply(503, "Bad sequence of commands")
    name = words[0]
    literal = name
    if not session.server.get("UseIPv6") and (name.startswith("[") or _is_ip(name, 6)):
        # without IPv6 an IPv6 literal is no valid host name (ProFTPD 1.3.8)
        return Reply(501, f"{name}: Invalid hostname provided")
    if name.startswith("["):
        if not name.endswith("]") or not _is_ip(name[1:-1], 6):
            return Reply(501, f"{name}: Invalid IPv6 address provided")
        literal = name[1:-1]
    elif _is_ip(name, 6):
        return Reply(501, f"{name}: Invalid IPv6 address provided")
    if _is_ip(literal, 4) or _is_ip(literal, 6):
        if ipaddress.ip_address(literal) != ipaddress.ip_address(session.local_addr):
            return Reply(504, f"{name}: Unknown hostname provided")
        session.state.get(FilesState).host = literal
        return Reply(220, "HOST command successful")
    if ":" in name:
        return Reply(501, f"{name}: Invalid hostname provided")
    server = named_server(session, name)
    if server is None:
        return Reply(504, f"{name}: Unknown hostname provided")
    session.state.get(FilesState).host = name
    if server is not session.server:
        session.server = server
        session.events.emit("core.session-reinit", session=session, server=server)
        if session.closing:
            return None             # a module refused the client for that server (mod_dnsbl): no reply, as ProFTPD
    return session.greeting()


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def named_server(session: "Session", name: str):
    """The server on this connection's address and port that answers to `name` (the current one first)."""
    servers = [session.server] + [s for s in session.config.servers if s is not session.server]
    low = name.lower()
    for server in servers:
        if server is not session.server and server.get("Port") != session.local_port:
            continue
        if server is not session.server and session.local_addr not in server.addresses:
            continue
        names = [w for words in server.context().all("ServerAlias") for w in words]
        if server.is_vhost:
            names += [a for a in server.section.args if not (_is_ip(a, 4) or _is_ip(a, 6))]
        if any(fnmatch.fnmatch(low, n.lower()) for n in names):
            return server
    return None


# -- display hooks -------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    """DisplayConnect goes out on core.connect, right before the greeting. Absolute DisplayChdir/DisplayQuit/
    DisplayLogin files are opened now and again on core.chroot (for <Anonymous> values), so they stay readable
    after chroot and privilege drop, as ProFTPD opens DisplayQuit in sess_init (and DisplayChdir, Issue #1688)."""
    _on_chroot(session)                 # server-level files, opened while the session still has its start-up ids


def _on_connect(session: "Session", **_: Any) -> None:
    if session.closing:
        return
    lines = display.connect_lines(session)
    if lines:
        session.send(display.Preamble(220, lines))


def _on_chroot(session: "Session", **_: Any) -> None:
    spec = session.conf("DisplayChdir")
    if spec:
        display.preopen(session, spec[0])
    display.preopen(session, session.conf("DisplayQuit"))
    display.preopen(session, session.conf("DisplayLogin"))
    display.preopen(session, session.conf("DisplayFileTransfer"))


def _quit_display(session: "Session", cmd: Request) -> None:
    """POST_CMD QUIT: DisplayQuit's lines are the 221 reply instead of `221 Goodbye.` (as ProFTPD sends them)."""
    if cmd.reply is not None and cmd.reply.code == 221:
        lines = display.quit_lines(session)
        if lines:
            cmd.reply.lines, cmd.reply.text = display.leading(lines[:-1]), lines[-1]
    return None


def _transfer_display(session: "Session", cmd: Request) -> None:
    """POST_CMD RETR/STOR/STOU/APPE: DisplayFileTransfer's lines lead the `226 Transfer complete` (the file looked up
    as the transfer ends, relative to the current directory; the settings of the file's directory apply)."""
    notes = cmd.notes.get("xfer")
    if cmd.reply is None or cmd.reply.code != 226 or notes is None:
        return
    lines = display.lines_for(session, session.conf("DisplayFileTransfer", path=os.path.dirname(notes["path"])))
    if lines:
        cmd.reply.lines = display.leading(lines) + cmd.reply.lines


def _host_denied(session: "Session", cmd: Request, error: str) -> Reply:
    """503 after login (HOST comes before login, checked first), else `504 <host>: Permission denied`.

    Between USER and PASS it is the 504, as ProFTPD 1.3.8 takes HOST there."""
    if session.authenticated:
        return Reply(503, "Bad sequence of commands")
    return Reply(504, f"{cmd.arg}: {os.strerror(errno.EACCES)}")


def _size_denied(session: "Session", cmd: Request, error: str) -> Reply:
    """`550 SIZE not allowed in ASCII mode` comes first, then `550 <path>: Operation not permitted`."""
    if transfer_type(session) == "A":
        return Reply(550, f"{cmd.name} not allowed in ASCII mode")
    return Reply(550, f"{cmd.arg}: {error}")


def _rnto_denied(session: "Session", cmd: Request, error: str) -> Reply:
    """503 without RNFR, `550 <path>: Rename permission denied` (AllowOverwrite), else `550 <path>: <EPERM>`.

    ProFTPD's order; a hidden name under IgnoreHidden is refused the same way."""
    st = session.state.get(FilesState)
    if st.rnfr is None:
        return Reply(503, "Bad sequence of commands")
    st.rnfr = None
    try:
        target = _require_fs(session).resolve(_path_arg(cmd), follow_last=False, tilde=True).real
    except FtpError:
        target = None                   # an unresolvable name: the refusal below says enough
    if target is not None and not session.conf("AllowOverwrite", target) and session.fs.exists(target):
        return Reply(550, f"{cmd.arg}: Rename permission denied")
    return Reply(550, f"{cmd.arg}: {os.strerror(errno.EPERM)}")


# After RNFR, ProFTPD (mod_core's PRE_CMD for every command, Bug#3829) refuses anything but these until RNTO
AFTER_RNFR = frozenset({"RNTO", "HELP", "NOOP", "QUIT", "STAT"})
AFTER_RNFR_TLS = frozenset({"CCC", "CONF", "ENC", "MIC", "PBSZ", "PROT"})     # once TLS is up


def _after_rnfr(session: "Session", cmd: Request) -> Reply | None:
    """`501 Bad sequence of commands` for a command that comes between RNFR and RNTO; the RNFR stays."""
    if session.state.get(FilesState).rnfr is None or cmd.name in AFTER_RNFR:
        return None
    if cmd.name in AFTER_RNFR_TLS and session.protocol == "ftps":
        return None
    return Reply(501, "Bad sequence of commands")


TIMESTAMP_PATH = PathArg(skip=1)
CMD_SUCCESSFUL = "250 <CMD> command successful"
# What <Limit> denials answer (ProFTPD's errno at the time: ENOENT for CWD, a failed handler for MFMT/MFF)
NO_SUCH_DIR = (550, "{arg}: No such file or directory")
NO_PARENT = (550, "..: No such file or directory")
UNABLE = (550, "Unable to handle command")

commands = (
    Command("PWD", pwd, DIRS, arg=NONE, help="(returns current working directory)", help_at=20,
            denied=(550, "{cmd}: Permission denied"), replies=('257 "<dir>" is the current directory',)),
    Command("XPWD", pwd, DIRS, arg=NONE, help="(returns current working directory)", help_at=21,
            denied=(550, "{cmd}: Permission denied"), replies=('257 "<dir>" is the current directory',)),
    Command("CWD", cwd, DIRS, arg=OPTIONAL, help="<sp> directory-name", help_at=1, path=HOME_EXACT_PATH,
            denied=NO_SUCH_DIR, replies=("250 CWD command successful (DisplayChdir lines as 250-)", "550 <dir>: <error>")),
    Command("XCWD", cwd, DIRS, arg=OPTIONAL, help="<sp> directory-name", help_at=2, path=HOME_EXACT_PATH,
            denied=NO_SUCH_DIR, replies=("250 XCWD command successful",)),
    Command("CDUP", cdup, DIRS, arg=NONE, help="(up one directory)", help_at=3, denied=NO_PARENT, replies=("250 CDUP command successful",)),
    Command("XCUP", cdup, DIRS, arg=NONE, help="(up one directory)", help_at=4, denied=NO_PARENT, replies=("250 XCUP command successful",)),
    Command("MKD", mkd, WRITE, arg=OPTIONAL, help="<sp> path-name", help_at=18, path=HOME_EXACT_PATH, path_filter=True,
            replies=('257 "<dir>" - Directory successfully created', "550 <dir>: Invalid directory name (a `*`)",
                     "550 <dir>: <error>")),
    Command("XMKD", mkd, WRITE, arg=OPTIONAL, help="<sp> path-name", help_at=19, path=HOME_EXACT_PATH,
            path_filter=True, replies=('257 "<dir>" - Directory successfully created',)),
    Command("RMD", rmd, WRITE, arg=OPTIONAL, help="<sp> path-name", help_at=16, path=HOME_EXACT_PATH,
            replies=("250 RMD command successful", "550 <dir>: <error>")),
    Command("XRMD", rmd, WRITE, arg=OPTIONAL, help="<sp> path-name", help_at=17, path=HOME_EXACT_PATH,
            replies=("250 XRMD command successful",)),
    Command("DELE", dele, WRITE, arg=OPTIONAL, help="<sp> pathname", help_at=14, path=HOME_PATH, denied=NOT_PERMITTED,
            replies=("250 DELE command successful", "550 <path>: Is a directory", "550 <path>: <error>")),
    Command("RNFR", rnfr, WRITE, arg=OPTIONAL, help="<sp> pathname", help_at=12, path=HOME_PATH, denied=NOT_PERMITTED,
            replies=("350 File or directory exists, ready for destination name", "550 <path>: <error>")),
    Command("RNTO", rnto, WRITE, arg=OPTIONAL, help="<sp> pathname", help_at=13, path=HOME_EXACT_PATH,
            path_filter=True, denied=_rnto_denied,
            replies=("250 Rename successful", "503 Bad sequence of commands",
                     "550 <path>: Rename permission denied (AllowOverwrite off)")),
    Command("SIZE", size, READ, arg=OPTIONAL, help="<sp> pathname", help_at=22, path=HOME_PATH, feat=("SIZE",),
            denied=_size_denied, replies=("213 <bytes>", "550 SIZE not allowed in ASCII mode", "550 <path>: not a regular file")),
    Command("MDTM", mdtm, DIRS, arg=OPTIONAL, help="<sp> pathname", help_at=15, path=HOME_PATH, feat=("MDTM",),
            denied=NOT_PERMITTED, replies=("213 YYYYMMDDHHMMSS", "550 <path>: not a plain file")),
    Command("MFMT", mfmt, WRITE, arg=OPTIONAL, help="<sp> YYYYMMDDHHMMSS <sp> path", path=TIMESTAMP_PATH,
            feat=("MFMT",), feat_for=feat_when(mod_facts.advertised, "MFMT"), denied=UNABLE, replies=("213 Modify=YYYYMMDDHHMMSS; <path>", "501 <timestamp>: Invalid argument")),
    Command("MFF", mff, WRITE, arg=OPTIONAL, help="<sp> fact=value;... <sp> path", path=TIMESTAMP_PATH,
            feat=(MFF_FEAT,), feat_for=feat_when(mod_facts.advertised, MFF_FEAT), denied=UNABLE,
            replies=("213 <facts> <path>", "504 Cannot modify fact '<fact>'")),
    Command("OPTS", opts, None, needs_login=False, arg=OPTIONAL, help="<sp> command [<sp> options]", help_at=27,
            limit=False, limit_all=False, feat=("UTF8",),      # names are UTF-8 on the wire (bytes kept as they come)
            feat_for=feat_when(mod_lang.engine_on, "UTF8"),   # mod_lang's line (LangEngine)
            replies=("200 UTF8 set to on|off", "501 'OPTS UTF8' not understood", "500 OPTS <x> not understood",
                     "OPTS MLST: see MLST")),
    Command("HOST", host, None, needs_login=False, arg=OPTIONAL, help="<sp> hostname", help_at=28,
            feat=("HOST",), denied=_host_denied,
            replies=("220 HOST command successful (IP literal)", "220 <greeting of the named server>",
                     "501 <host>: Invalid hostname provided", "501 <host>: Invalid IPv6 address provided",
                     "504 <host>: Unknown hostname provided", "503 Bad sequence of commands (after login)")),
    Command("CLNT", clnt, None, needs_login=False, arg=OPTIONAL, help="<sp> client-info", help_at=29, limit=False,
            feat=("CLNT",), replies=("200 OK",)),
    Command("CSID", csid, None, needs_login=True, arg=OPTIONAL, help="<sp> client-info", feat=("CSID",), limit=False,
            replies=("200 name=ProFTPD;version=1.3.8;casesensitive=1;",)),
)

MODULE = Module(NAME, directives=directives, commands=commands,
                hooks=(Hook(PRE_CMD, "*", _after_rnfr, early=True, only=lambda row: row.name not in AFTER_RNFR),
                       Hook(POST_CMD, "QUIT", _quit_display))
                + tuple(Hook(POST_CMD, name, _transfer_display) for name in ("RETR", "STOR", "STOU", "APPE")),
                listeners=(Listener("core.connect", _on_connect), Listener("core.chroot", _on_chroot)),
                session_init=session_init)
