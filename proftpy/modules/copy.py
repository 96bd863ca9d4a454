"""mod_copy: SITE CPFR/CPTO and SITE COPY copy a file, a symbolic link or a directory tree on the server, without
the data going to the client and back (CopyEngine switches them off).

As in ProFTPD, `<Limit>` knows them as SITE_CPFR (READ at the source), SITE_CPTO and SITE_COPY (WRITE at the
destination), PathAllowFilter/PathDenyFilter apply to the destination, AllowOverwrite to a destination that exists,
and each copied file gets a TransferLog line (direction `d`, as ProFTPD writes it). Inside a copied tree each new
directory and each file is a made-up MKD and `SITE COPY <from> <to>` that the other modules' hooks see (mod_quotatab
counts them, ExtendedLog logs them). Stricter than ProFTPD: SITE COPY needs READ at its source too, every directory
of a copied tree is checked (READ where it is read, WRITE where it is written), AllowOverwrite holds for the files
inside it, and a tree is never copied into itself (ProFTPD recurses until the path is too long).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import transfer
from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag, Options
from ..dispatch import LOG_CMD, LOG_CMD_ERR, PATH, READ, WRITE, Command, Hook, Request
from ..fs import FsError, VPath
from ..module import Module
from ..reply import Reply
from .files import dir_mode, filters_allow
from .site import denied, words_of

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_copy.c"
MAX_DEPTH = 256                 # directory levels a copied tree may have: deeper ones are refused, not followed
CHUNK = 1 << 20
QUOTA_ERRNOS = (errno.EDQUOT, errno.EFBIG, errno.ENOSPC)    # CPTO answers them 552 (COPY 550), as ProFTPD

directives = (
    Directive("CopyEngine", Flag, SVG, True, Merge.SERVER, "Offer SITE CPFR, CPTO and COPY (mod_copy)."),
    Directive("CopyOptions", Options(("NoDeleteOnFailure",), "CopyOption"), SVG, frozenset(), Merge.SERVER,
              "NoDeleteOnFailure: keep what a failed copy wrote of a new file.", repeat=True),
)


@dataclass
class CopyState:
    source: VPath | None = None          # SITE CPFR's, until a SITE CPTO with a path


def _on(session: "Session") -> bool:
    return bool(session.server.get("CopyEngine"))


def _perm(path: str) -> Reply:
    return Reply(550, f"{path}: {os.strerror(errno.EPERM)}")


# -- the commands --------------------------------------------------------------------------------------------------
def site_cpfr(session: "Session", cmd: Request) -> Reply:
    """Note the source of the next SITE CPTO. It must exist (a dangling link does not)."""
    arg = " ".join(words_of(cmd)[1:])
    path = session.fs.resolve(arg, follow_last=False, tilde=True)
    if denied(session, "SITE_CPFR", READ, path.real):
        return _perm(arg)
    if not filters_allow(session, arg, path.real):
        return Reply(550, f"{arg}: Forbidden filename")
    try:
        session.fs.stat(path.real)
    except OSError as e:
        return Reply(550, f"{path.virtual}: {e.strerror}")
    session.state.get(CopyState).source = path
    return Reply(350, "File or directory exists, ready for destination name")


def site_cpto(session: "Session", cmd: Request) -> Reply:
    """Copy the noted source to the path given; the note goes with this command, whatever its outcome."""
    source = session.state.get(CopyState).source
    if source is None:
        return Reply(503, "Bad sequence of commands")
    words = cmd.arg.split()
    target = session.fs.resolve(" ".join(words[1:]), follow_last=False, tilde=True)
    if denied(session, "SITE_CPTO", WRITE, target.real):
        return _perm(target.virtual)
    failed = _copy(session, cmd, source, target, words[0], quota_code=552)
    return failed or Reply(250, "Copy successful")


def site_copy(session: "Session", cmd: Request) -> Reply:
    """`SITE COPY <from> <to>`: both paths in one command (no spaces in them)."""
    words = cmd.arg.split()
    if len(words) != 3:
        return Reply(500, f"'SITE {words[0].upper()}' not understood")
    source = session.fs.resolve(words[1], follow_last=False, tilde=True)
    target = session.fs.resolve(words[2], follow_last=False, tilde=True)
    if denied(session, "SITE_COPY", WRITE, target.real):
        return _perm(words[2])
    if denied(session, "SITE_COPY", READ, source.real):
        return _perm(words[1])
    failed = _copy(session, cmd, source, target, words[0])
    return failed or Reply(200, f"SITE {words[0]} command successful")


def _forget_source(session: "Session", cmd: Request) -> None:
    """LOG_CMD(_ERR) of a SITE CPTO with a path: the CPFR note is used up (also when a hook refused the CPTO)."""
    words = words_of(cmd)
    if len(words) >= 2 and words[0] == "CPTO":
        session.state.get(CopyState).source = None


# -- copying -------------------------------------------------------------------------------------------------------
def _copy(session: "Session", cmd: Request, source: VPath, target: VPath, verb: str,
          quota_code: int = 550) -> Reply | None:
    """Copy `source` to `target`; None when done, else `550 <verb>: <error>` (`quota_code` for a quota or a full
    disk: CPTO's 552)."""
    try:
        if not filters_allow(session, target.virtual, target.real):
            raise OSError(errno.EPERM, os.strerror(errno.EPERM))
        _copy_path(session, cmd, source, target)
    except OSError as e:
        code = quota_code if e.errno in QUOTA_ERRNOS else 550
        return Reply(code, f"{verb}: {e.strerror or os.strerror(e.errno or errno.EIO)}")
    return None


def _copy_path(session: "Session", cmd: Request, source: VPath, target: VPath) -> None:
    fs = session.fs
    st = fs.lstat(source.real)
    if stat.S_ISDIR(st.st_mode):
        if target.real == source.real or target.real.startswith(source.real.rstrip("/") + "/"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        if fs.exists(target.real) and not stat.S_ISDIR(fs.stat(target.real).st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        _make_dirs(session, target)
        _copy_tree(session, source, target, 0)
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    _may_overwrite(session, target)
    if stat.S_ISLNK(st.st_mode):
        fs.symlink(fs.readlink(source.real), target.real)
        return
    cmd.notes["copied"] = {"path": target.real, "size": _copy_file(session, source, target)}


def _may_overwrite(session: "Session", target: VPath) -> None:
    """EACCES when `target` exists (following a link, as ProFTPD looks) and AllowOverwrite is off there."""
    if session.fs.exists(target.real) and not session.conf("AllowOverwrite", target.real):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))


def _copy_file(session: "Session", source: VPath, target: VPath) -> int:
    """Copy a regular file's data into `target` (made with the session's umask, or truncated) and return its
    size. Within a hard quota it stops where the quota does (EDQUOT); a failed copy removes the new file unless
    CopyOptions NoDeleteOnFailure. Copying a file onto itself does nothing."""
    fs = session.fs
    xfer = transfer.state(session)
    room, xfer.upload_quota = xfer.upload_quota, None       # mod_quotatab's room for this upload, used up here
    src = fs.open(source.real, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if stat.S_ISDIR(os.fstat(src).st_mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        existed = fs.exists(target.real)
        dst = fs.open(target.real, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o666)
        try:
            a, b = os.fstat(src), os.fstat(dst)
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                return a.st_size
            try:
                return _pour(src, dst, room)
            except OSError:
                if not existed and "NoDeleteOnFailure" not in session.server.get("CopyOptions"):
                    fs.unlink(target.real)
                raise
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _pour(src: int, dst: int, room: int | None) -> int:
    """Data from `src` to `dst` (truncated first); EDQUOT once more than `room` bytes went (None: no bound)."""
    os.ftruncate(dst, 0)
    os.set_blocking(dst, True)
    done = 0
    while True:
        n = os.sendfile(dst, src, None, CHUNK if room is None else min(CHUNK, room - done + 1))
        if not n:
            return done
        done += n
        if room is not None and done > room:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))


def _make_dirs(session: "Session", target: VPath) -> None:
    """Create `target` and its missing parents, each as a made-up MKD (`<Limit MKD>`, quotas and logs see it)."""
    parts = [p for p in target.virtual.split("/") if p]
    for i in range(1, len(parts) + 1):
        step = session.fs.resolve("/" + "/".join(parts[:i]), follow_last=False)
        if session.fs.exists(step.real):
            continue
        _made_up(session, Request("MKD", step.virtual), lambda: _mkdir(session, step))


def _mkdir(session: "Session", path: VPath) -> Reply:
    old = os.umask(0)
    try:
        session.fs.mkdir(path.real, dir_mode(session, path.real))
    finally:
        os.umask(old)
    return Reply(257, f'"{path.virtual}" - Directory successfully created')


def _made_up(session: "Session", req: Request, action) -> None:
    """Dispatch a made-up command around `action` (which raises OSError when it fails); a hook's refusal stops
    the copy: EDQUOT for a quota's 552, else EPERM."""
    failure: list[OSError] = []

    def run() -> Reply:
        try:
            return action()
        except OSError as e:
            failure.append(e)
            return Reply(550, f"{req.arg}: {e.strerror}")

    reply = session.dispatcher.made_up(session, req, run)
    if failure:
        raise failure[0]
    if reply.is_error:
        err = errno.EDQUOT if reply.code == 552 else errno.EPERM
        raise OSError(err, os.strerror(err))


def _copy_tree(session: "Session", source: VPath, target: VPath, depth: int) -> None:
    """Copy what directory `source` holds into directory `target`: subdirectories, regular files (each a made-up
    `SITE COPY`), symbolic links (as links); other kinds are skipped. The first failure stops the copy."""
    fs = session.fs
    if depth >= MAX_DEPTH:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    if denied(session, "SITE_COPY", READ, source.real) or denied(session, "SITE_COPY", WRITE, target.real):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))
    with fs.scandir(source.real) as entries:
        names = [e.name for e in entries]
    for name in names:
        src = fs.resolve(f"{source.virtual.rstrip('/')}/{name}", follow_last=False)
        dst = fs.resolve(f"{target.virtual.rstrip('/')}/{name}", follow_last=False)
        try:
            mode = fs.lstat(src.real).st_mode
        except OSError:
            continue                    # gone since the listing: ProFTPD skips it too
        if stat.S_ISDIR(mode):
            _make_dirs(session, dst)
            _copy_tree(session, src, dst, depth + 1)
        elif stat.S_ISLNK(mode):
            fs.symlink(fs.readlink(src.real), dst.real)
        elif stat.S_ISREG(mode):
            req = Request("SITE", f"COPY {src.virtual} {dst.virtual}", notes={"copy": (src, dst)})
            _made_up(session, req, lambda: _copy_one(session, req, src, dst))


def _copy_one(session: "Session", req: Request, src: VPath, dst: VPath) -> Reply:
    _may_overwrite(session, dst)
    req.notes["copied"] = {"path": dst.real, "size": _copy_file(session, src, dst)}
    return Reply(200, "SITE COPY command successful")


def copy_paths(session: "Session", req: Request) -> tuple[VPath, VPath] | None:
    """(source, destination) of a SITE request that copies (SITE COPY, SITE CPTO after a CPFR, and the made-up
    SITE COPY of each file of a copied tree), else None: for modules that account for copies (mod_quotatab)."""
    made = req.notes.get("copy")
    if made is not None:
        return made
    words = req.arg.split()
    if len(words) < 2 or session.fs is None:
        return None
    verb, resolve = words[0].upper(), lambda arg: session.fs.resolve(arg, follow_last=False, tilde=True)
    source = session.state.get(CopyState).source
    try:
        if verb == "COPY" and len(words) == 3:
            made = resolve(words[1]), resolve(words[2])
        elif verb == "CPTO" and source is not None:
            made = source, resolve(" ".join(words[1:]))
    except FsError:
        pass                            # a path the command itself refuses (`550 ~: No such file or directory`)
    if made is not None:
        req.notes["copy"] = made        # once per request: its PRE_CMD and POST_CMD hooks both ask
    return made


# SITE HELP lists CPFR and CPTO (mod_copy answers it before mod_site_misc and mod_site); SITE COPY is left out
commands = (
    Command("SITE CPFR", site_cpfr, READ, help="<sp> pathname", enabled=_on, min_words=2, path=PATH,
            replies=("350 File or directory exists, ready for destination name", "550 <path>: Forbidden filename",
                     "550 /<path>: <error>")),
    Command("SITE CPTO", site_cpto, WRITE, help="<sp> pathname", enabled=_on, min_words=2, path=PATH,
            path_filter=True,
            replies=("250 Copy successful", "503 Bad sequence of commands", "550 CPTO: <error>",
                     "552 CPTO: Disk quota exceeded")),
    Command("SITE COPY", site_copy, WRITE, help="<sp> source <sp> destination", enabled=_on, min_words=3,
            path=PATH, path_filter=True, site_help=False, feat=("SITE COPY",),
            replies=("200 SITE COPY command successful", "500 'SITE COPY' not understood (not two paths)",
                     "550 COPY: <error>")),
)

MODULE = Module(NAME, directives=directives, commands=commands,
                hooks=(Hook(LOG_CMD, "SITE", _forget_source), Hook(LOG_CMD_ERR, "SITE", _forget_source)))
