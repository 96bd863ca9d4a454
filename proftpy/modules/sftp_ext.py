"""mod_sftp's SFTP extensions, as ProFTPD 1.3.8 offers them: what its VERSION reply announces (vendor-id, versions,
the OpenSSH ones: fsync, posix-rename, statvfs and fstatvfs, hardlink, home-directory), the requests it serves
(vendor-id, version-select, check-file-name, check-file-handle, copy-file, space-available and those), and
`SFTPExtensions`, which switches them on and off with ProFTPD's names and its default set.

Every path goes through the session's `fs` (proftpy/fs.py); `<Limit>` sees them under ProFTPD's names (SITE_DIGEST
for check-file, SITE_COPY for copy-file, HARDLINK for hardlink@openssh.com); ExtendedLog gets the lines ProFTPD
writes (a HARDLINK, FSYNC, HOMEDIR or RENAME line before the EXTENDED one), copy-file runs SITE COPY's phases (its
TransferLog line). A failed errno is answered as ProFTPD's fxp_errno2status answers it at the session's version.

Kept apart from sftp_fxp.py (the requests of versions 3 to 6), which calls `extended` for an EXTENDED request; the
handlers' `sftp` is its channel server (sftp_fxp.Sftp: its status, send, path, resolve, allowed, get_handle)."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat

from ..dispatch import DIRS, READ, WRITE, Request
from ..fs import FsError
from ..net.ssh.transport import BY_APPLICATION, Disconnect
from ..net.ssh.wire import Reader, Writer
from ..reply import Reply
from .files import filters_allow
from .sftp_proto import (DIR_NOT_EMPTY, EXTENDED_REPLY, FAILURE, FILE_ALREADY_EXISTS, FILE_IS_A_DIRECTORY,
                         INVALID_FILENAME, INVALID_HANDLE, INVALID_PARAMETER, LINK_LOOP, NAME, NO_SPACE_ON_FILESYSTEM,
                         NO_SUCH_FILE, NOT_A_DIRECTORY, OK, OP_UNSUPPORTED, PERMISSION_DENIED, QUOTA_EXCEEDED,
                         STATUS_TEXT)
from .sftp_state import SERVED, VERSION

PROTOCOL = 3                    # the SFTP version of these requests' replies (ProFTPD's v3 codes)
BUILD_NUMBER = 0x01030805       # ProFTPD 1.3.8's pr_version_get_number(), in its vendor-id
DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")   # check-file's, in ProFTPD's order
MIN_BLOCK = 256                 # check-file's smallest block (a smaller one is refused, as the draft says)
MAX_BLOCKS = 65536              # check-file's answer: at most this many digests (ProFTPD has no bound)
CHUNK = 1 << 16

# SFTPExtensions' names (matched without regard to case) and ProFTPD 1.3.8's default set (fxp.h's
# SFTP_FXP_EXT_DEFAULT: everything but vendorID and xattr)
NAMES = ("checkFile", "copyFile", "fsync", "vendorID", "versionSelect", "posixRename", "spaceAvailable", "statvfs",
         "hardlink", "homeDirectory", "xattr")
DEFAULT = frozenset(NAMES) - {"vendorID", "xattr"}
_BY_LOWER = {n.lower(): n for n in NAMES}


def parse_extensions(args: list[str]) -> frozenset[str]:
    """`SFTPExtensions +name -name ...`: ProFTPD's default set with each one added or removed, in order."""
    if not args:
        raise ValueError("wrong number of parameters")
    flags = set(DEFAULT)
    for arg in args:
        if arg[:1] not in ("+", "-"):
            raise ValueError(f"bad option: '{arg}'")
        name = _BY_LOWER.get(arg[1:].lower())
        if name is None:
            raise ValueError(f"unknown extension: '{arg[1:]}'")
        (flags.add if arg[0] == "+" else flags.discard)(name)
    return frozenset(flags)


def version_pairs(flags: frozenset[str], version: int = PROTOCOL, served: tuple[int, int] = SERVED
                  ) -> list[tuple[str, bytes]]:
    """The extension pairs of the VERSION reply, in ProFTPD's order (fxp_handle_init): vendor-id, versions,
    newline (version 4+), supported (5) or supported2 (6+), then OpenSSH's. `versions` leaves version 1 out (the
    draft's version strings start at 2), as ProFTPD does."""
    pairs = []
    if "vendorID" in flags:
        pairs.append(("vendor-id", Writer().string("ProFTPD Project").string("mod_sftp").string(VERSION)
                      .u64(BUILD_NUMBER).bytes()))
    if "versionSelect" in flags:
        pairs.append(("versions", ",".join(str(v) for v in range(max(served[0], 2), served[1] + 1)).encode()))
    if version >= 4:
        pairs.append(("newline", b"\n"))
    if version == 5 or version >= 6:
        pairs.append(("supported" if version == 5 else "supported2", _supported(flags, version)))
    for flag, names, value in (("fsync", ("fsync@openssh.com",), b"1"),
                               ("posixRename", ("posix-rename@openssh.com",), b"1"),
                               ("statvfs", ("statvfs@openssh.com", "fstatvfs@openssh.com"), b"2"),
                               ("hardlink", ("hardlink@openssh.com",), b"1"),
                               ("homeDirectory", ("home-directory",), b"1"),
                               ("xattr", ("xattr@proftpd.org",), b"1")):
        if flag in flags:
            pairs += [(name, value) for name in names]
    return pairs


def _supported(flags: frozenset[str], version: int) -> bytes:
    """Version 5's `supported` and 6's `supported2` as ProFTPD writes them: the attribute mask (size, permissions,
    access and modify times, owner and group; version 6 extended attributes too), no attribute bits, the open and
    access masks, no maximum read; version 6 says that OPEN takes no lock and BLOCK read or write ones, no attribute
    extensions; then the extension names (version 5: without a count, as ProFTPD writes them)."""
    w = Writer().u32(0xAD | (0x80000000 if version >= 6 else 0)).u32(0).u32(0x187).u32(0x1F).u32(0)
    names = [n for f, n in (("checkFile", "check-file"), ("copyFile", "copy-file"),
                            ("spaceAvailable", "space-available")) if f in flags] + ["vendor-id"]
    if version >= 6:
        w.raw(bytes((0, 1, 0x0C, 1))).u32(0).u32(len(names))
    for name in names:
        w.string(name)
    return w.bytes()


def errno_status(err: int, version: int = PROTOCOL) -> tuple[int, str]:
    """An errno as ProFTPD's fxp_errno2status answers it: the status code the session's version has for it (the
    v3 code before that) and the text of the status the draft names for it."""
    if err in (errno.ENOENT, errno.EBADF, errno.ENXIO, errno.ENODATA):
        return NO_SUCH_FILE, STATUS_TEXT[NO_SUCH_FILE]
    if err in (errno.EACCES, errno.EPERM):
        return PERMISSION_DENIED, STATUS_TEXT[PERMISSION_DENIED]
    if err in (errno.EIO, errno.EXDEV):
        return FAILURE, os.strerror(err)
    if err in (errno.ENOSYS, errno.ENOTSUP):
        return OP_UNSUPPORTED, STATUS_TEXT[OP_UNSUPPORTED]
    if err in (errno.EFAULT, errno.EINVAL, errno.E2BIG, errno.ERANGE):
        return INVALID_PARAMETER if version > 5 else OP_UNSUPPORTED, STATUS_TEXT[INVALID_PARAMETER]
    since = {errno.EEXIST: (FILE_ALREADY_EXISTS, 3), errno.EDQUOT: (QUOTA_EXCEEDED, 4),
             errno.EFBIG: (NO_SPACE_ON_FILESYSTEM, 4), errno.ENOSPC: (NO_SPACE_ON_FILESYSTEM, 4),
             errno.EISDIR: (FILE_IS_A_DIRECTORY, 5), errno.ENOTDIR: (NOT_A_DIRECTORY, 5),
             errno.ELOOP: (LINK_LOOP, 5), errno.ENAMETOOLONG: (INVALID_FILENAME, 5),
             errno.ENOTEMPTY: (DIR_NOT_EMPTY, 5)}.get(err)
    if since is None:
        return FAILURE, STATUS_TEXT[FAILURE]
    code, after = since
    return code if version > after else FAILURE, STATUS_TEXT[code]


class Failed(Exception):
    """An extension's request fails with this errno (answered with `errno_status`)."""

    def __init__(self, err: int):
        super().__init__(os.strerror(err))
        self.errno = err


# -- the requests --------------------------------------------------------------------------------------------------
def extended(sftp, rid: int, name: str, r: Reader) -> None:
    """Serve an EXTENDED request: an extension SFTPExtensions leaves on, else SSH_FX_OP_UNSUPPORTED."""
    entry = HANDLERS.get(name)
    if entry is None or (entry[0] is not None and entry[0] not in sftp.ext_flags):
        sftp.log.write(f"unsupported extended request '{name[:100]}'")
        sftp.status(rid, OP_UNSUPPORTED)
        return
    try:
        entry[1](sftp, rid, r)
    except (Failed, OSError, FsError) as e:
        _fail(sftp, rid, getattr(e, "errno", None) or errno.EIO)


def _fail(sftp, rid: int, err: int) -> None:
    sftp.status(rid, *errno_status(err, max(sftp.version, PROTOCOL)))
    sftp.ext_status = sftp.replied


def _ok(sftp, rid: int) -> None:
    sftp.status(rid, OK)


def _vendor_id(sftp, rid: int, r: Reader) -> None:
    """The client's own vendor-id: noted in the SFTPLog, answered OK."""
    vendor, product, version, build = r.text(256), r.text(256), r.text(256), r.u64()
    sftp.log.write(f"client sent 'vendor-id' extension: {{ vendorName = '{vendor}', productName = '{product}', "
                   f"productVersion = '{version}', buildNumber = {build} }}")
    _ok(sftp, rid)
    sftp.ext_status = sftp.replied


def _version_select(sftp, rid: int, r: Reader) -> None:
    """Only as the first request after INIT, and only the version served: anything else is answered and the
    session ends (ProFTPD disconnects the client, as the draft asks)."""
    wanted = r.text(64)
    if sftp.may_select and wanted.strip().isdigit() and sftp.served[0] <= int(wanted) <= sftp.served[1]:
        sftp.may_select = False
        sftp.version = int(wanted)
        _ok(sftp, rid)
        sftp.ext_status = sftp.replied
        return
    if not sftp.may_select:
        sftp.status(rid, FAILURE)
    else:
        sftp.log.write(f"client requested SFTP protocol version '{wanted[:20]}' via 'version-select', which "
                       f"proftpy does not serve")
        sftp.status(rid, *errno_status(errno.EINVAL, max(sftp.version, PROTOCOL)))
    sftp.ext_status = sftp.replied
    raise Disconnect(BY_APPLICATION, "Application disconnected",
                     "client sent 'version-select' request at inappropriate time, rejecting")


def _check_file_name(sftp, rid: int, r: Reader) -> None:
    path = sftp.path(r)
    vpath = sftp.resolve(path)
    _check_file(sftp, rid, r, vpath.real, None)


def _handle(sftp, rid: int, r: Reader, files_only: bool = True):
    """The handle a request names, or None after answering SSH_FX_INVALID_HANDLE (a directory's too, for the
    requests that need a file), as ProFTPD does."""
    h = sftp.get_handle(r)
    if h is None or (files_only and h.fd is None):
        sftp.status(rid, INVALID_HANDLE)
        sftp.ext_status = sftp.replied
        return None
    return h


def _check_file_handle(sftp, rid: int, r: Reader) -> None:
    h = _handle(sftp, rid, r)
    if h is None:
        return
    if fcntl.fcntl(h.fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:     # opened for writing only
        sftp.log.write(f"'check-file' of '{h.virtual}': opened write-only, unable to obtain file checksum")
        raise Failed(errno.EACCES)
    _check_file(sftp, rid, r, h.final or h.real, h.fd)


def _check_file(sftp, rid: int, r: Reader, real: str, fd: int | None) -> None:
    """check-file (draft-ietf-secsh-filexfer-extensions-00): the first digest of the client's list proftpy has, over
    `length` bytes from `offset` (0: to the end; as ProFTPD counts it, `offset + length` bytes otherwise), in blocks
    of `block` bytes (0: one block). `<Limit SITE_DIGEST>` (READ group) decides."""
    digests, offset, length, block = r.text(1024), r.u64(), r.u64(), r.u32()
    session = sftp.session
    if block != 0 and block < MIN_BLOCK:
        sftp.log.write(f"SFTP client check-file request sent invalid block size ({block} bytes <= {MIN_BLOCK})")
        raise Failed(errno.EINVAL)
    st = os.fstat(fd) if fd is not None else session.fs.stat(real)
    if stat.S_ISDIR(st.st_mode):
        raise Failed(errno.EISDIR)
    if not stat.S_ISREG(st.st_mode) or offset >= st.st_size:
        raise Failed(errno.EINVAL)
    if not sftp.allowed("SITE_DIGEST", READ, real):
        raise Failed(errno.EACCES)
    wanted = [d.strip() for d in digests.split(",")]
    algorithm = next((d for d in wanted if d in DIGESTS), None)
    if algorithm is None:
        sftp.log.write(f"no supported digests in client check-file request (client sent '{digests[:200]}', server "
                       f"supports '{','.join(DIGESTS)}')")
        raise Failed(errno.EINVAL)
    span = st.st_size - offset if length == 0 else offset + length
    block = block or span
    count = -(-span // block)
    if count > MAX_BLOCKS:
        sftp.log.write(f"check-file request of {count} blocks refused (at most {MAX_BLOCKS})")
        raise Failed(errno.EINVAL)
    own = fd is None
    if own:
        fd = session.fs.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        out = Writer().byte(EXTENDED_REPLY).u32(rid).string(algorithm)
        pos = offset
        for _ in range(count):
            h = hashlib.new(algorithm)
            end = pos + block
            while pos < end:
                data = os.pread(fd, min(CHUNK, end - pos), pos)
                if not data:
                    break
                h.update(data)
                pos += len(data)
            out.raw(h.digest())
            pos = end
    finally:
        if own:
            os.close(fd)
    sftp.send(out.bytes())


def _copy_file(sftp, rid: int, r: Reader) -> None:
    """copy-file: SITE COPY's PRE_CMD phase (`<Limit>`, modules' checks), then ProFTPD's checks (READ at the
    source and, for a destination that exists, the overwrite flag, AllowOverwrite and WRITE there under SITE_COPY;
    PathAllowFilter/PathDenyFilter), the copy, and SITE COPY's POST_CMD/LOG_CMD phases (TransferLog)."""
    src, dst, overwrite = sftp.path(r), sftp.path(r), r.boolean()
    session = sftp.session
    req = Request("SITE", f"COPY {src} {dst}", f"SITE COPY {src} {dst}")
    refusal = session.dispatcher.pre(session, req)
    if refusal is not None:
        sftp.log.write(f"COPY of '{src}' to '{dst}' blocked by '{req.name}' handler")
        session.dispatcher.after(session, req, refusal)
        sftp.status(rid, PERMISSION_DENIED)
        return
    try:
        source = sftp.resolve(src)
        target = sftp.resolve(dst)
        if source.real == target.real:
            sftp.log.write(f"COPY of '{source.virtual}' to same path '{target.virtual}', rejecting")
            raise Failed(errno.EEXIST)
        if session.fs.exists(target.real):
            if not overwrite:
                sftp.log.write(f"'{target.virtual}' exists and client did not request COPY overwrites")
                raise Failed(errno.EACCES)
            if not sftp.allowed("SITE_COPY", WRITE, target.real) or \
                    not session.conf("AllowOverwrite", path=target.real):
                raise Failed(errno.EACCES)
        if not filters_allow(session, src, source.real) or not filters_allow(session, dst, target.real):
            raise Failed(errno.EACCES)
        if not sftp.allowed("SITE_COPY", READ, source.real):
            raise Failed(errno.EACCES)
        if stat.S_ISDIR(session.fs.stat(source.real).st_mode):
            raise Failed(errno.EISDIR)
        session.fs.copy(source.real, target.real)
    except (Failed, OSError, FsError) as e:
        err = getattr(e, "errno", None) or errno.EIO
        session.dispatcher.after(session, req, Reply(550, f"{dst}: {os.strerror(err)}"))
        sftp.status(rid, *errno_status(err, max(sftp.version, PROTOCOL)))
        return
    req.notes["copied"] = {"path": target.real, "size": session.fs.stat(target.real).st_size, "direction": "i"}
    session.dispatcher.after(session, req, Reply(200, "SITE COPY command successful"))
    _ok(sftp, rid)
    sftp.ext_status = sftp.replied


def _fsync(sftp, rid: int, r: Reader) -> None:
    h = _handle(sftp, rid, r)
    if h is None:
        return
    line = Request("FSYNC", h.virtual)
    try:
        os.fsync(h.fd)
    except OSError as e:
        sftp.log.write(f"error calling fsync(2) on '{h.virtual}': {e.strerror}")
        sftp.status(rid, *errno_status(e.errno or errno.EIO))
    else:
        _ok(sftp, rid)
    sftp.sublines.append((line, sftp.replied))


def _hardlink(sftp, rid: int, r: Reader) -> None:
    src, dst = sftp.path(r), sftp.path(r)
    hardlink(sftp, rid, src, dst)


def hardlink(sftp, rid: int, src: str, dst: str) -> None:
    """hardlink@openssh.com (and version 6's LINK): `<Limit HARDLINK>` (DIRS at the source, WRITE at the new name),
    PathAllowFilter and PathDenyFilter on both, then link(2) inside the session's root; a HARDLINK line in
    ExtendedLog."""
    line = Request("HARDLINK", f"{src} {dst}")
    sftp.sublines.append((line, None))
    try:
        source = sftp.resolve(src, follow=False)
        target = sftp.resolve(dst, follow=False)
        if not sftp.allowed("HARDLINK", DIRS, source.real) or not sftp.allowed("HARDLINK", WRITE, target.real):
            raise Failed(errno.EACCES)
        if source.real == target.real:
            raise Failed(errno.EEXIST)
        if not filters_allow(sftp.session, src, source.real) or not filters_allow(sftp.session, dst, target.real):
            raise Failed(errno.EACCES)
        sftp.session.fs.link(source.real, target.real)
    except (Failed, OSError, FsError) as e:
        err = getattr(e, "errno", None) or errno.EIO
        sftp.log.write(f"error hardlinking '{src}' to '{dst}': {os.strerror(err)}")
        sftp.status(rid, *errno_status(err, max(sftp.version, PROTOCOL)))
    else:
        _ok(sftp, rid)
    sftp.sublines[-1] = (line, sftp.replied)


def _home_directory(sftp, rid: int, r: Reader) -> None:
    """home-directory: a user's home (the session's user for an empty name) as this session sees it: `/` for a
    session chrooted there, its path inside the root otherwise; a home out of reach is SSH_FX_NO_SUCH_FILE.
    (ProFTPD 1.3.8 means the same and sends a NAME reply without its header.)"""
    name = r.text(256) or sftp.session.user
    line = Request("HOMEDIR", name)
    sftp.sublines.append((line, None))
    session = sftp.session
    try:
        account = session.auth.lookup(name)
    except Exception as e:             # an auth backend failing answers this request only
        sftp.log.write(f"home-directory request failed: unable to determine home for '{name}': {e}")
        account = None
    shown = _client_view(session.fs, account.home) if account is not None and account.home else None
    if shown is None:
        sftp.log.write(f"home-directory request failed: no home for '{name}' inside this session's root")
        sftp.status(rid, NO_SUCH_FILE)
        sftp.sublines[-1] = (line, sftp.replied)
        return
    real = session.fs.real_of(shown)
    sftp.send(sftp.name_entry(Writer().byte(NAME).u32(rid).u32(1), shown, session.fs.stat(real), real=real).bytes())


def _client_view(fs, home: str) -> str | None:
    """`home` (a path as the configuration names it) as the client sees it, None outside the session's root."""
    seen = fs.from_config(home.rstrip("/") or "/")
    if seen is None:
        return None
    if fs.root == "/":
        return seen
    if seen == fs.root or seen.startswith(fs.root.rstrip("/") + "/"):
        return fs.virtual_of(seen)
    return None


def _space_available(sftp, rid: int, r: Reader) -> None:
    """space-available: the filesystem's bytes, total and free, and those of the user, as ProFTPD computes them
    (its user total is blocks - free - available, wrapped to 64 bits when negative)."""
    v = sftp.session.fs.statvfs(sftp.resolve(sftp.path(r)).real)
    mask = (1 << 64) - 1
    sftp.send(Writer().byte(EXTENDED_REPLY).u32(rid).u64(v.f_blocks * v.f_frsize).u64(v.f_bavail * v.f_frsize)
              .u64(((v.f_blocks - v.f_bfree - v.f_bavail) * v.f_frsize) & mask).u64(v.f_bavail * v.f_frsize)
              .u32(v.f_frsize).bytes())


def _statvfs(sftp, rid: int, r: Reader) -> None:
    sftp.send_statvfs(rid, sftp.resolve(sftp.path(r)).real)


def _fstatvfs(sftp, rid: int, r: Reader) -> None:
    h = _handle(sftp, rid, r, files_only=False)
    if h is not None:
        sftp.send_statvfs(rid, h.final or h.real)


def _posix_rename(sftp, rid: int, r: Reader) -> None:
    old, new = sftp.path(r), sftp.path(r)
    sftp.rename_paths(rid, old, new, overwrite=True)
    sftp.sublines.append((Request("RENAME", f"{old} {new}"), sftp.replied))


# -- xattr@proftpd.org ----------------------------------------------------------------------------------------------
# ProFTPD's extended attribute requests: by path (the final component itself: lgetxattr...; listxattr lists what a
# final link leads to, as Debian's ProFTPD) or by handle (a directory's by its path). As in ProFTPD no `<Limit>` is
# asked (the file's own permissions decide) and the EXTENDED line is the only ExtendedLog line. Values are answered
# whole: a client's size only bounds what it accepts (ERANGE when the value is longer; 0 asks for any size).
XATTR_CREATE, XATTR_REPLACE = 0x1, 0x2          # fsetxattr/setxattr flags on the wire


def _xattr_path(sftp, r: Reader) -> str:
    path = r.text(8192)
    if not path or "\0" in path:               # (ProFTPD hands the empty path to the system: ENOENT)
        raise Failed(errno.ENOENT)
    return sftp.resolve(path, follow=False).real


def _xattr_handle(sftp, rid: int, handle: bytes) -> tuple[str, int | None] | None:
    """(the path, the descriptor of a file; None for a directory), or None after INVALID_HANDLE. (The request is
    read whole before: a short one is BAD_MESSAGE alone.)"""
    h = sftp.handles.get(handle)
    if h is None:
        sftp.status(rid, INVALID_HANDLE)
        sftp.ext_status = sftp.replied
        return None
    return h.real, h.fd


def _send_value(sftp, rid: int, value: bytes, size: int) -> None:
    if size and len(value) > size:
        raise Failed(errno.ERANGE)
    sftp.send(Writer().byte(EXTENDED_REPLY).u32(rid).string(value).bytes())


def _send_names(sftp, rid: int, names: list[str]) -> None:
    w = Writer().byte(EXTENDED_REPLY).u32(rid).u32(len(names))
    for name in names:
        w.string(name)
    sftp.send(w.bytes())


def _getxattr(sftp, rid: int, r: Reader) -> None:
    real, name, size = _xattr_path(sftp, r), r.text(1024), r.u32()
    _send_value(sftp, rid, _logged(sftp, "getxattr", real, name, sftp.session.fs.getxattr, real, name), size)


def _fgetxattr(sftp, rid: int, r: Reader) -> None:
    handle, name, size = r.string(256), r.text(1024), r.u32()
    target = _xattr_handle(sftp, rid, handle)
    if target is not None:
        real, fd = target
        _send_value(sftp, rid, _logged(sftp, "fgetxattr", real, name, sftp.session.fs.getxattr, real, name, fd=fd),
                    size)


def _listxattr(sftp, rid: int, r: Reader) -> None:
    real = _xattr_path(sftp, r)
    _send_names(sftp, rid, _logged(sftp, "listxattr", real, None, sftp.session.fs.listxattr, real, follow=True))


def _flistxattr(sftp, rid: int, r: Reader) -> None:
    """(ProFTPD 1.3.8 appends a string of stray bytes to its answer; proftpy sends the names alone.)"""
    target = _xattr_handle(sftp, rid, r.string(256))
    if target is not None:
        real, fd = target
        _send_names(sftp, rid, _logged(sftp, "flistxattr", real, None, sftp.session.fs.listxattr, real, fd=fd))


def _removexattr(sftp, rid: int, r: Reader) -> None:
    real, name = _xattr_path(sftp, r), r.text(1024)
    _logged(sftp, "removexattr", real, name, sftp.session.fs.removexattr, real, name)
    _done(sftp, rid)


def _fremovexattr(sftp, rid: int, r: Reader) -> None:
    handle, name = r.string(256), r.text(1024)
    target = _xattr_handle(sftp, rid, handle)
    if target is not None:
        real, fd = target
        _logged(sftp, "fremovexattr", real, name, sftp.session.fs.removexattr, real, name, fd=fd)
        _done(sftp, rid)


def _done(sftp, rid: int) -> None:
    """OK, which the EXTENDED line shows (as ProFTPD's: a value or names sent leave it without a status)."""
    _ok(sftp, rid)
    sftp.ext_status = sftp.replied


def _set_flags(wire: int) -> int:
    return (os.XATTR_CREATE if wire & XATTR_CREATE else 0) | (os.XATTR_REPLACE if wire & XATTR_REPLACE else 0)


def _setxattr(sftp, rid: int, r: Reader) -> None:
    real, name, value, flags = _xattr_path(sftp, r), r.text(1024), r.string(65536), r.u32()
    _logged(sftp, "setxattr", real, name, sftp.session.fs.setxattr, real, name, value, _set_flags(flags))
    _done(sftp, rid)


def _fsetxattr(sftp, rid: int, r: Reader) -> None:
    handle, name, value, flags = r.string(256), r.text(1024), r.string(65536), r.u32()
    target = _xattr_handle(sftp, rid, handle)
    if target is not None:
        real, fd = target
        _logged(sftp, "fsetxattr", real, name, sftp.session.fs.setxattr, real, name, value, _set_flags(flags),
                fd=fd)
        _done(sftp, rid)


def _logged(sftp, call: str, real: str, name: str | None, fn, *args, **kwargs):
    """`fn(*args)`; its failure noted in the SFTPLog as ProFTPD words it, then raised (answered by errno). Under
    FSOptions IgnoreExtendedAttributes every call fails with ENOSYS, as ProFTPD's FSIO layer fails them."""
    try:
        if sftp.no_xattrs:
            raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
        return fn(*args, **kwargs)
    except OSError as e:
        what = f"'{sftp.session.fs.virtual_of(real)}'" + (f" for attribute '{name}'" if name is not None else "")
        sftp.log.write(f"{call}(2) error on {what}: {e.strerror}")
        raise


# name -> (the SFTPExtensions flag that switches it on, None: always; handler)
HANDLERS = {
    "vendor-id": (None, _vendor_id),
    "version-select": ("versionSelect", _version_select),
    "check-file-name": ("checkFile", _check_file_name),
    "check-file-handle": ("checkFile", _check_file_handle),
    "copy-file": ("copyFile", _copy_file),
    "fsync@openssh.com": ("fsync", _fsync),
    "hardlink@openssh.com": ("hardlink", _hardlink),
    "home-directory": ("homeDirectory", _home_directory),
    "posix-rename@openssh.com": ("posixRename", _posix_rename),
    "space-available": ("spaceAvailable", _space_available),
    "statvfs@openssh.com": ("statvfs", _statvfs),
    "fstatvfs@openssh.com": ("statvfs", _fstatvfs),
    "getxattr@proftpd.org": ("xattr", _getxattr),
    "fgetxattr@proftpd.org": ("xattr", _fgetxattr),
    "listxattr@proftpd.org": ("xattr", _listxattr),
    "flistxattr@proftpd.org": ("xattr", _flistxattr),
    "removexattr@proftpd.org": ("xattr", _removexattr),
    "fremovexattr@proftpd.org": ("xattr", _fremovexattr),
    "setxattr@proftpd.org": ("xattr", _setxattr),
    "fsetxattr@proftpd.org": ("xattr", _fsetxattr),
}


def enabled(session) -> frozenset[str]:
    """The extensions on for this session's server (SFTPExtensions, else ProFTPD's default set)."""
    return session.server.get("SFTPExtensions") or DEFAULT

