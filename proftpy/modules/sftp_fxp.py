"""mod_sftp's SFTP subsystem: version 3 of the protocol (draft-ietf-secsh-filexfer-02, what OpenSSH's sftp and curl's
libssh2 speak) and versions 4 to 6 as ProFTPD 1.3.8 serves them (lftp asks for 6; their attributes are
sftp_attrs.py's); its EXTENDED requests are the extensions of sftp_ext.py (ProFTPD 1.3.8's set).

Every client path goes through the session's `fs` (proftpy/fs.py, the one door). `<Limit>` and the other modules
see SFTP requests under the FTP commands ProFTPD's mod_sftp maps them to: OPEN for reading runs RETR's PRE_CMD
phase (`<Limit RETR>`, `<Limit READ>`, MaxTransfersPer*, ratios) and its CLOSE RETR's POST_CMD and LOG_CMD phases
(TransferLog, quotas); OPEN for writing is STOR (APPE with the append flag); OPENDIR is MLSD, READDIR asks
`<Limit LIST NLST>` (an empty listing when both are denied); REMOVE, MKDIR, RMDIR and RENAME are dispatched as DELE,
MKD, RMD and RNFR+RNTO, handlers and all (AllowOverwrite, umask, GroupOwner, PathDenyFilter, HideFiles as for
FTP); SETSTAT asks `<Limit SETSTAT>` then SITE_CHMOD or SITE_CHGRP for what it changes; STAT, LSTAT, FSTAT,
READLINK, SYMLINK, REALPATH ask `<Limit>` under their own names (mod_sftp's "<Limit>" section). A denial is
SSH_FX_PERMISSION_DENIED.

Bounds: an SFTP packet is at most 256 KiB + 1 KiB (a larger length ends the channel's subsystem), a READ returns at
most 64 KiB, a READDIR at most 100 entries and about 128 KiB, at most 256 handles are open at once."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import posixpath
import stat
import struct
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from .. import listing, transfer
from ..dispatch import DIRS, READ, WRITE, Request
from ..fs import FsError
from ..net.ssh.channel import Channel
from ..net.ssh.transport import PROTOCOL_VERSION_NOT_SUPPORTED, Disconnect
from ..net.ssh.wire import Reader, WireError, Writer
from ..reply import Reply
from . import access
from .files import DIR_MODE
from .log import log_request, logs_requests
from .sftp_proto import (ATTRS, BAD_MESSAGE, BLOCK, CLOSE, DATA, EOF, EXTENDED, EXTENDED_REPLY, FAILURE,
                         FILE_ALREADY_EXISTS, FSETSTAT, FSTAT, HANDLE, INIT, INVALID_HANDLE, LINK, LOCK_CONFLICT,
                         LSTAT, MKDIR, NAME, NO_SUCH_FILE, OK, OPEN, OPENDIR, OP_UNSUPPORTED, PERMISSION_DENIED,
                         READDIR, READLINK, READ_, REALPATH, REMOVE, RENAME, RMDIR, SETSTAT, STAT, STATUS,
                         STATUS_TEXT, SYMLINK, UNBLOCK, UNKNOWN_PRINCIPAL, VERSION, WRITE_)
from . import sftp_attrs
from .sftp_ext import enabled as extensions_enabled, errno_status as proftpd_status, \
    extended as run_extension, hardlink, version_pairs
from .sftp_state import SERVED, SftpState, served_range
from .xfer import hidden_path, new_owner, rate_for, size_limit_for, too_large

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME, ATTR_EXTENDED = 0x1, 0x2, 0x4, 0x8, 0x80000000
F_READ, F_WRITE, F_APPEND, F_CREAT, F_TRUNC, F_EXCL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
# version 5's OPEN: desired-access bits, then the disposition and its modifiers (draft -05, 6.3.1)
WANT_READ, WANT_WRITE, WANT_APPEND, WANT_READ_ATTRS, WANT_WRITE_ATTRS = 0x1, 0x2, 0x4, 0x80, 0x100
CREATE_NEW, CREATE_TRUNCATE, OPEN_EXISTING, OPEN_OR_CREATE, TRUNCATE_EXISTING = 0, 1, 2, 3, 4
ACCESS_APPEND, ACCESS_APPEND_ATOMIC, ACCESS_TEXT, ACCESS_LOCKS = 0x8, 0x10, 0x20, 0x40 | 0x80 | 0x100
WANT_UNSUPPORTED = 0x8 | 0x10 | 0x20000 | 0x40000 | 0x80000     # named attributes, ACLs, the owner
RENAME_OVERWRITE, RENAME_ATOMIC = 0x1, 0x2
LOCK_READ, LOCK_WRITE, LOCK_DELETE = 0x40, 0x80, 0x100

MAX_PACKET = 256 * 1024 + 1024
MAX_READ = 65536
MAX_HANDLES = 256
READDIR_BATCH = 100
READDIR_BYTES = 128 * 1024      # ... and about this many bytes (version 6's entries carry extended attributes)
_U32 = struct.Struct(">I")

# ExtendedLog: each request under ProFTPD's mod_sftp name for it. Only STAT is also an FTP command's name, so only its
# line goes by its classes (fxp.c's READ, SFTP); the other names are outside ProFTPD's command table, and only a log
# of every class (ALL) takes them (Bug#4313, as the SSH messages' lines).
LOGGED = {INIT: "INIT", OPEN: "OPEN", CLOSE: "CLOSE", READ_: "READ", WRITE_: "WRITE", LSTAT: "LSTAT", FSTAT: "FSTAT",
          SETSTAT: "SETSTAT", FSETSTAT: "FSETSTAT", OPENDIR: "OPENDIR", READDIR: "READDIR", REMOVE: "REMOVE",
          MKDIR: "MKDIR", RMDIR: "RMDIR", REALPATH: "REALPATH", STAT: "STAT", RENAME: "RENAME", READLINK: "READLINK",
          SYMLINK: "SYMLINK", EXTENDED: "EXTENDED", LINK: "LINK", BLOCK: "LOCK", UNBLOCK: "UNLOCK"}
STAT_CLASSES = frozenset(("READ", "SFTP"))
_PATH_FIRST = frozenset((OPEN, LSTAT, STAT, SETSTAT, OPENDIR, REMOVE, MKDIR, RMDIR, REALPATH, READLINK))
_HANDLE_FIRST = frozenset((CLOSE, READ_, WRITE_, FSTAT, FSETSTAT, READDIR, BLOCK, UNBLOCK))

_STRERROR = {os.strerror(e): e for e in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EEXIST,
                                         errno.ENOTEMPTY, errno.EISDIR, errno.EROFS, errno.ELOOP, errno.EXDEV,
                                         errno.ENOSPC, errno.EDQUOT, errno.EINVAL, errno.ENAMETOOLONG)}


class BadRequest(Exception):
    """A request that does not hold what its type says: answered BAD_MESSAGE."""


@dataclass
class Handle:
    name: bytes
    real: str
    virtual: str
    fd: int | None = None               # a file
    entries: list | None = None         # a directory: names not yet sent
    request: Request | None = None      # the FTP command whose POST_CMD/LOG_CMD phases CLOSE runs
    direction: str = "o"
    offset_start: int | None = None
    bytes: int = 0
    started: float = field(default_factory=time.time)
    listed: bool | None = None          # READDIR: <Limit LIST NLST> allowed
    final: str | None = None            # HiddenStores: the name the upload gets at CLOSE (`real` is the temporary)
    limit: int | None = None            # MaxStoreFileSize's bytes
    rate: tuple[float, int] | None = None   # TransferRate's (bytes/s, free bytes), or mod_shaper's when it governs
    shaping: object = None              # the DataState.shaping `rate` was found with (mod_shaper replaces it)
    paced: tuple[float, int] = (0.0, 0)     # the time.monotonic() and `bytes` the rate counts from

    def wait(self, session: "Session") -> float:
        """Seconds this file's next READ or WRITE (an scp chunk) waits under TransferRate, 0 when it may go. As
        ProFTPD's mod_sftp, every handle is paced on its own from its OPEN, after the free bytes, under the rate of
        RETR (reading) or STOR/APPE (writing); a new mod_shaper rate paces it anew from now (Transfer.set_rate)."""
        shaping = transfer.state(session).shaping
        if shaping is not self.shaping and self.request is not None:
            self.shaping = shaping
            self.rate = rate_for(session, self.request.name, self.final or self.real)
            self.paced = (time.monotonic(), self.bytes)
        if self.rate is None:
            return 0.0
        (bps, free), (since, before) = self.rate, self.paced
        return (self.bytes - before - free) / bps - (time.monotonic() - since)


class Held(Exception):
    """A READ or WRITE that TransferRate holds back: `step` keeps it and tries again at `resume`."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


def open_subsystem(session: "Session", name: str, chan: Channel):
    if name != "sftp":
        return None
    return Sftp(session, chan)


class Sftp:
    """One channel's SFTP server."""

    def __init__(self, session: "Session", chan: Channel):
        self.session, self.chan = session, chan
        self.buf = bytearray()
        self.handles: dict[bytes, Handle] = {}
        self.version = 0
        self.served = SERVED                    # the versions this client may use (SFTPClientMatch)
        self.counter = 0
        self.log = session.state.get(SftpState).log
        self.datastate = transfer.state(session)     # its `shaping`: mod_shaper's rates, None when not shaped
        self.resume: float | None = None
        self.extlog = logs_requests(session)        # an ExtendedLog is written: each request gets its line
        self.replied: tuple[int, str] | None = None     # the status the last request was answered with
        self.opened: Handle | None = None           # the handle the last OPEN/OPENDIR made
        self.ext_flags = extensions_enabled(session)   # SFTPExtensions
        self.no_xattrs = "IgnoreExtendedAttributes" in (session.server.get("FSOptions") or ())
        self.may_select = False                     # version-select: only as the first request after INIT
        self.sublines: list[tuple[Request, tuple[int, str] | None]] = []   # ExtendedLog lines before EXTENDED's
        self.ext_status: tuple[int, str] | None = None  # the status EXTENDED's own line shows (ProFTPD's choice)

    # -- the channel's side ----------------------------------------------------------------------------------------
    def data(self, chunk: bytes) -> None:
        self.buf += chunk

    def eof(self) -> None:
        pass

    def close(self) -> None:
        for handle in list(self.handles.values()):
            self._release(handle, aborted=True)
        self.handles.clear()

    def step(self) -> bool:
        if len(self.buf) < 4:
            return False
        length = _U32.unpack_from(self.buf)[0]
        if length > MAX_PACKET or length < 1:
            self.log.write(f"SFTP packet length {length} out of bounds, closing the channel")
            self.buf.clear()
            self.chan.consumed(0)
            self.chan.finish(1)
            return False
        if len(self.buf) < 4 + length:
            return False
        packet = bytes(self.buf[4:4 + length])
        self.resume = None
        try:
            self.handle(packet)
        except Held as e:                   # the request stays first in line
            self.resume = time.monotonic() + e.seconds
            return False
        del self.buf[:4 + length]
        self.chan.consumed(4 + length)
        return True

    def send(self, payload: bytes) -> None:
        self.chan.write(_U32.pack(len(payload)) + payload)

    def status(self, rid: int, code: int, text: str | None = None, extra: str | None = None) -> None:
        text = text or STATUS_TEXT.get(code, "Failure")
        self.replied = (code, text)
        w = Writer().byte(STATUS).u32(rid).u32(code)
        if self.version >= 3:                           # versions 1 and 2: the code alone (draft -00, -01)
            w.string(text).string(b"en")
        if extra is not None and self.version >= 5:     # UNKNOWN_PRINCIPAL's name (draft -05)
            w.string(extra)
        self.send(w.bytes())

    def errno_status(self, err: int) -> tuple[int, str]:
        """An errno's status in this session's version, as ProFTPD's fxp_errno2status has it (version 3 too: a
        code v3 lacks is FAILURE, with the text of the status the draft names, `Not a directory`, `File already
        exists`...)."""
        return proftpd_status(err, max(self.version, 3))

    def error(self, rid: int, e: BaseException) -> None:
        err = getattr(e, "errno", None) or errno.EIO
        self.status(rid, *self.errno_status(err))

    # -- dispatch --------------------------------------------------------------------------------------------------
    def handle(self, packet: bytes) -> None:
        if not self.extlog:
            self.run(packet)
            return
        kind = packet[0]
        before = self.handles.get(_arg_handle(packet)) if kind in _HANDLE_FIRST else None   # CLOSE drops it
        self.replied = self.opened = None
        try:
            self.run(packet)            # (a request TransferRate holds back raises Held: logged once it runs)
        except Disconnect:              # (version-select refused: logged, then the session ends; an INIT refused
            if kind != INIT:            # is not logged, as ProFTPD)
                self.log_line(kind, packet, None)
            raise
        if kind in LOGGED:
            self.log_line(kind, packet, before if before is not None else self.opened)

    def log_line(self, kind: int, packet: bytes, h: Handle | None) -> None:
        """The request's ExtendedLog line, as ProFTPD's mod_sftp writes it: `%r` its name and argument (a path, a
        handle, `handle offset length` for WRITE), `%s`/`%S` the status answered (none for SYMLINK and EXTENDED,
        whose lines ProFTPD writes without one), `%f`/`%F`/`%b` the open file and the bytes moved through it."""
        name = LOGGED[kind]
        classes = STAT_CLASSES if kind == STAT else None
        arg = _logged_arg(kind, packet)
        status = None if kind in (SYMLINK, LINK) else self.ext_status if kind == EXTENDED else self.replied
        real = virtual = nbytes = None
        if h is not None:
            if h.entries is None:
                real, virtual, nbytes = h.final or h.real, h.virtual, h.bytes
            else:
                nbytes = h.bytes if kind == READDIR else 0
        if kind == EXTENDED:            # ProFTPD's RENAME, HARDLINK, FSYNC, HOMEDIR line comes first; `%b` is 0
            nbytes = 0 if self.handles else None        # while a handle is open (its transfer's count), as there
            for req, sub_status in self.sublines:
                log_request(self.session, req, None, sub_status, nbytes=nbytes)
        log_request(self.session, Request(name, arg), classes, status, real, virtual, nbytes)

    def run(self, packet: bytes) -> None:
        kind = packet[0]
        r = Reader(packet, 1)
        if kind == INIT:
            self.init(r)
            return
        try:
            rid = r.u32()
        except WireError:
            self.log.write(f"SFTP request type {kind} too short, ignored")
            return
        if self.version == 0:
            self.status(rid, FAILURE, "INIT first")
            return
        if kind != EXTENDED:
            self.may_select = False
        fn = self.table.get(kind)
        if fn is None:
            self.log.write(f"unsupported SFTP request type {kind}")
            self.status(rid, OP_UNSUPPORTED)
            return
        try:
            fn(self, rid, r)
        except (WireError, BadRequest) as e:
            self.log.write(f"bad SFTP request type {kind}: {e}")
            self.status(rid, BAD_MESSAGE)
        except FsError as e:
            self.status(rid, *self.errno_status(e.errno))
        except OSError as e:
            self.error(rid, e)
        except sftp_attrs.UnknownPrincipal as e:
            self.log.write(f"unable to translate name '{e.name}' to an ID, UNKNOWN_PRINCIPAL error")
            self.status(rid, UNKNOWN_PRINCIPAL, extra=e.name)
        except (ValueError, UnicodeError, OverflowError) as e:  # a path the filesystem cannot take (too long, bad
            # bytes), an offset past what the kernel takes
            self.log.write(f"SFTP request type {kind} refused: {e}")
            self.status(rid, FAILURE, "Invalid argument")

    def init(self, r: Reader) -> None:
        try:
            client_version = r.u32()
        except WireError:
            client_version = 3
        self.served = low, high = served_range(self.session)    # (SFTPClientMatch sftpProtocolVersion)
        if client_version < low:            # (INIT 0 too: ProFTPD disconnects, as it does below a range's low)
            raise Disconnect(PROTOCOL_VERSION_NOT_SUPPORTED, "Unable to use requested SFTP protocol version",
                             f"client-requested SFTP protocol version ({client_version}) is lower than we can "
                             f"support ({low}), disconnecting client")
        self.version = min(client_version, high)
        self.log.write(f"client requested SFTP protocol version {client_version}, using version {self.version}")
        self.session.set_protocol("sftp")
        w = Writer().byte(VERSION).u32(self.version)
        for name, value in version_pairs(self.ext_flags, self.version, self.served):
            w.string(name).string(value)
        self.may_select = "versionSelect" in self.ext_flags
        self.send(w.bytes())

    # -- paths -----------------------------------------------------------------------------------------------------
    def path(self, r: Reader) -> str:
        path = r.text(8192)
        if "\0" in path:
            raise BadRequest("NUL in a path")
        return path or "."

    def resolve(self, path: str, follow: bool = True):
        return self.session.fs.resolve(path, follow_last=follow)

    def allowed(self, name: str, group: str | None, real: str) -> bool:
        ok = access.limits_allow(self.session, name, group, real)
        if not ok:
            self.log.write(f"{name} of '{self.session.fs.virtual_of(real)}' blocked by <Limit {name}> configuration")
        return ok

    def ftp(self, rid: int, name: str, arg: str) -> Reply | None:
        """Run an FTP command (its every phase) for this request; the status follows its reply."""
        reply = self.session.dispatcher.dispatch(self.session, Request(name, arg, f"{name} {arg}"))
        if reply is None:
            self.status(rid, FAILURE)
        elif reply.code < 400:
            self.status(rid, OK)
        else:
            self.status(rid, *_reply_status(reply, FAILURE, self.errno_status))
        return reply

    # -- attributes ------------------------------------------------------------------------------------------------
    def attrs(self, st: os.stat_result | None, flags: int | None = None, real: str | None = None) -> bytes:
        """A file's attributes in this session's version: `flags` those a STAT asked for (`stat_flags`; READDIR's
        and NAME's own otherwise); the EXTENDED block holds the extended attributes of `real`."""
        xattrs = partial(self.xattrs, real)     # (read only when EXTENDED is written)
        if self.version > 3:
            if flags is None:
                flags = sftp_attrs.listed(self.version) & ~(ATTR_EXTENDED if self.no_xattrs else 0)
            return sftp_attrs.write(self.version, st, flags, lambda uid: self._owner(uid, True),
                                    lambda gid: self._owner(gid, False), xattrs)
        if st is None or flags == 0:                    # (REALPATH's and READLINK's: none)
            return _U32.pack(0)
        w = (Writer().u32((flags or 0) & ATTR_EXTENDED | ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME)
             .u64(st.st_size).u32(st.st_uid).u32(st.st_gid).u32(st.st_mode).u32(int(st.st_atime) & 0xFFFFFFFF)
             .u32(int(st.st_mtime) & 0xFFFFFFFF))
        if flags is not None and flags & ATTR_EXTENDED:
            sftp_attrs.write_extended(w, xattrs())
        return w.bytes()

    def stat_flags(self, r: Reader) -> int:
        """The attributes a STAT, LSTAT or FSTAT answers: those a version 4+ client asked for, less those ProFTPD
        never answers; version 3's four and, as ProFTPD, the EXTENDED block (unless FSOptions
        IgnoreExtendedAttributes)."""
        if self.version > 3:
            return r.u32() & sftp_attrs.KEPT
        return ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME | (0 if self.no_xattrs else ATTR_EXTENDED)

    def xattrs(self, real: str | None) -> list[tuple[str, bytes]]:
        """The extended attributes of `real` as ProFTPD lists them into an EXTENDED block: none when they cannot be
        listed (or FSOptions IgnoreExtendedAttributes), an empty value for one that cannot be read. As Debian's
        ProFTPD 1.3.8 (built without llistxattr) the names are those of what a final link leads to, the values
        those of the link itself (none: empty)."""
        if real is None or self.no_xattrs:
            return []
        fs = self.session.fs
        try:
            names = fs.listxattr(real, follow=True)
        except (OSError, FsError, ValueError):
            return []
        pairs = []
        for name in names:
            try:
                pairs.append((name, fs.getxattr(real, name)))
            except (OSError, FsError, ValueError):
                pairs.append((name, b""))
        return pairs

    def set_xattrs(self, attrs: dict, real: str, fd: int | None, option: str) -> None:
        """Version 4+: the extended attributes a client sent with SETSTAT, FSETSTAT or OPEN, set as ProFTPD
        sets them (unless SFTPOptions `option`); raises the OSError of the first that fails (ENOSYS for each under
        FSOptions IgnoreExtendedAttributes, as ProFTPD's FSIO layer)."""
        if self.version <= 3 or not attrs.get("xattrs") or option in self.session.server.get("SFTPOptions"):
            return
        for name, value in attrs["xattrs"]:
            try:
                if self.no_xattrs:
                    raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
                self.session.fs.setxattr(real, name, value, fd=fd)
            except OSError as e:
                self.log.write(f"error setting xattr '{name}' ({len(value)} bytes) on "
                               f"'{self.session.fs.virtual_of(real)}': {e.strerror}")
                raise

    def read_attrs(self, r: Reader) -> dict:
        if self.version > 3:
            return sftp_attrs.read(r, self._uid_of, self._gid_of)
        flags = r.u32()
        out: dict = {}
        if flags & ATTR_SIZE:
            out["size"] = r.u64()
        if flags & ATTR_UIDGID:
            out["uid"], out["gid"] = r.u32(), r.u32()
        if flags & ATTR_PERMISSIONS:
            out["perms"] = r.u32()
        if flags & ATTR_ACMODTIME:
            out["atime"], out["mtime"] = r.u32(), r.u32()
        if flags & ATTR_EXTENDED:
            sftp_attrs.read_extended(r)             # (set only from version 4, as ProFTPD)
        return out

    def longname(self, name: str, st: os.stat_result) -> str:
        mode = listing.mode_string(st.st_mode) or "?---------"
        user = self._owner(st.st_uid, True)
        group = self._owner(st.st_gid, False)
        when = listing.time_field(int(st.st_mtime), int(time.time()), gmt=False)
        # ProFTPD's fxp_get_path_listing: its mode string ends in a space, then "%3u %-8s %-8s %8llu"
        return listing.long_line(mode + " ", st.st_nlink, user, group, listing.size_field(st.st_size), when, name)

    def _uid_of(self, name: str) -> int | None:
        account = self.session.auth.lookup(name)
        return account.uid if account is not None else int(name) if name.isdigit() else None

    def _gid_of(self, name: str) -> int | None:
        try:
            return self.session.auth.gid_of(name)
        except (KeyError, LookupError, ValueError):
            return int(name) if name.isdigit() else None

    def name_entry(self, w: Writer, name: str, st: os.stat_result | None, longname: str | None = None,
                   flags: int | None = None, real: str | None = None) -> Writer:
        """One entry of a NAME reply: the name, version 3's long name (`ls -l`'s line, or `longname`), the
        attributes (`real`: the path whose extended attributes version 6's carry)."""
        w.string(name)
        if self.version <= 3:
            w.string(longname if longname is not None else self.longname(name, st))
        return w.raw(self.attrs(st, flags, real))

    def _owner(self, ident: int, user: bool) -> str:
        cache = self.__dict__.setdefault("_owners", {})
        key = (user, ident)
        if key not in cache:
            try:
                rec = self.session.auth.getpwuid(ident) if user else self.session.auth.getgrgid(ident)
            except Exception as e:          # an auth backend failing must not break a listing
                log.info("cannot map owner of a file: %s", e)
                rec = None
            cache[key] = getattr(rec, "name", None) or str(ident)
        return cache[key]

    # -- handles ---------------------------------------------------------------------------------------------------
    def new_handle(self, handle: Handle) -> bytes:
        self.counter += 1
        handle.name = f"{self.counter:x}{os.urandom(4).hex()}".encode()
        self.handles[handle.name] = handle
        self.opened = handle
        return handle.name

    def moving(self) -> None:
        """Data moves: TimeoutNoTransfer and TimeoutStalled start again (ProFTPD resets both at READ and WRITE)."""
        self.session.reset_timer("noxfer")
        self.session.reset_timer("stalled")

    def _stalled_timer(self) -> None:
        """TimeoutStalled runs while a file is open (ProFTPD's mod_sftp: from OPEN to CLOSE)."""
        files = any(h.fd is not None for h in self.handles.values())
        self.session.set_timer("stalled", self.session.conf("TimeoutStalled") if files else None, _stalled)

    def hold(self, h: Handle) -> None:
        """TransferRate: raise Held while this handle is ahead of its rate (nothing to do when no rate applies)."""
        if h.rate is not None or self.datastate.shaping is not None:
            wait = h.wait(self.session)
            if wait > 0:
                raise Held(wait)

    def get_handle(self, r: Reader) -> Handle | None:
        return self.handles.get(r.string(256))

    def _release(self, h: Handle, aborted: bool) -> bool:
        return release(self.session, h, aborted)

    # -- requests --------------------------------------------------------------------------------------------------
    def open_(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        if self.version >= 5:
            access, disposition = r.u32(), r.u32()
            if access & WANT_UNSUPPORTED or disposition & ACCESS_LOCKS:
                self.log.write("client requested unsupported access (named attributes, ACLs, owner) or lock flags "
                               "in OPEN command, rejecting")
                self.status(rid, OP_UNSUPPORTED)
                return
            pflags = v5_open_flags(access, disposition)
        else:
            pflags = r.u32()
        attrs = self.read_attrs(r)
        if len(self.handles) >= MAX_HANDLES:
            self.status(rid, FAILURE, "Too many open handles")
            return
        perms = attrs.get("perms")
        if perms is None or "IgnoreSFTPUploadPerms" in self.session.server.get("SFTPOptions"):
            perms = 0o666
        try:
            h = start_transfer(self.session, path, pflags, perms, sftp=True)
        except Refused as e:
            self.status(rid, *_reply_status(e.reply, PERMISSION_DENIED, self.errno_status))
            return
        except (OSError, FsError) as e:
            err, creating = getattr(e, "errno", None) or errno.EIO, bool(pflags & F_CREAT)
            self.status(rid, *self.errno_status(open_errno(err, creating)))
            if not creating or err in (errno.EISDIR, errno.ELOOP):
                self.replied = None     # ProFTPD's line has a status only for the failed open(2) of a creation
            return
        try:
            self.set_xattrs(attrs, h.real, h.fd, "IgnoreSFTPUploadExtendedAttributes")
        except OSError as e:            # as ProFTPD: the file closed, its RETR/STOR line a 451
            os.close(h.fd)
            if h.final is not None:     # (HiddenStores' temporary file goes)
                try:
                    self.session.fs.unlink(h.real)
                except OSError as gone:
                    log.warning("cannot remove %s: %s", h.real, gone.strerror)
            self.session.dispatcher.after(self.session, h.request, Reply(451, f"{path}: {e.strerror}"))
            self.error(rid, e)
            self.replied = None         # (ProFTPD's OPEN line shows no status then)
            return
        h.request.arg = h.virtual     # the RETR/STOR line at CLOSE names the whole path, as ProFTPD's
        h.request.raw = f"{h.request.name} {h.virtual}"
        self.send(Writer().byte(HANDLE).u32(rid).string(self.new_handle(h)).bytes())
        self._stalled_timer()

    def close_(self, rid: int, r: Reader) -> None:
        h = self.handles.pop(r.string(256), None)
        if h is None:
            self.status(rid, INVALID_HANDLE)
            return
        renamed = self._release(h, aborted=False)
        self._stalled_timer()
        self.status(rid, OK if renamed else FAILURE)

    def read(self, rid: int, r: Reader) -> None:
        h = self.get_handle(r)
        offset, length = r.u64(), r.u32()
        if h is None or h.fd is None:
            self.status(rid, INVALID_HANDLE)
            return
        self.hold(h)
        self.moving()
        data = os.pread(h.fd, min(length, MAX_READ), offset)
        if not data:
            self.status(rid, EOF)
            return
        h.bytes += len(data)
        self.send(Writer().byte(DATA).u32(rid).string(data).bytes())

    def write(self, rid: int, r: Reader) -> None:
        h = self.get_handle(r)
        offset = r.u64()
        data = r.string(MAX_PACKET)
        if h is None or h.fd is None:
            self.status(rid, INVALID_HANDLE)
            return
        if h.direction != "i":                  # opened for reading: write(2)'s EBADF, as ProFTPD answers it
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if h.limit is not None and offset + len(data) > h.limit:
            too_large("MaxStoreFileSize", h.limit, h.final or h.real)
            self.status(rid, FAILURE, os.strerror(errno.EFBIG))
            return
        self.hold(h)
        self.moving()
        view = memoryview(data)
        while view:
            n = os.pwrite(h.fd, view, offset) if not h.request or h.request.name != "APPE" else os.write(h.fd, view)
            view = view[n:]
            offset += n
        h.bytes += len(data)
        self.status(rid, OK)

    def _stat(self, rid: int, path: str, follow: bool, name: str, group: str | None, flags: int | None) -> None:
        vpath = self.resolve(path, follow)
        if not self.allowed(name, group, vpath.real):
            self.status(rid, PERMISSION_DENIED)
            return
        st = self.session.fs.stat(vpath.real) if follow else self.session.fs.lstat(vpath.real)
        self.send(Writer().byte(ATTRS).u32(rid).raw(self.attrs(st, flags, vpath.real)).bytes())

    def stat_(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        self._stat(rid, path, True, "STAT", READ, self.stat_flags(r))

    def lstat(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        self._stat(rid, path, False, "LSTAT", None, self.stat_flags(r))

    def fstat(self, rid: int, r: Reader) -> None:
        h = self.get_handle(r)
        flags = self.stat_flags(r)
        if h is None:
            self.status(rid, INVALID_HANDLE)
            return
        st = os.fstat(h.fd) if h.fd is not None else self.session.fs.stat(h.real)
        self.send(Writer().byte(ATTRS).u32(rid).raw(self.attrs(st, flags, h.real)).bytes())

    def _setstat(self, rid: int, real: str, attrs: dict, fd: int | None) -> None:
        session = self.session
        fs = session.fs
        if not self.allowed("SETSTAT", WRITE, real):
            self.status(rid, PERMISSION_DENIED)
            return
        opts = session.server.get("SFTPOptions")
        if "perms" in attrs and "IgnoreSFTPSetPerms" not in opts:
            if not self.allowed("SITE_CHMOD", WRITE, real):
                self.status(rid, PERMISSION_DENIED)
                return
            os.fchmod(fd, attrs["perms"] & 0o7777) if fd is not None else fs.chmod(real, attrs["perms"] & 0o7777)
        if "uid" in attrs and "IgnoreSFTPSetOwners" not in opts:
            if not self.allowed("SITE_CHGRP", WRITE, real):
                self.status(rid, PERMISSION_DENIED)
                return
            st = os.fstat(fd) if fd is not None else fs.lstat(real)
            uid = -1 if attrs["uid"] == st.st_uid else attrs["uid"]
            gid = -1 if attrs["gid"] == st.st_gid else attrs["gid"]
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid) if fd is not None else fs.chown(real, uid, gid)
        if "size" in attrs:
            if fd is not None:
                os.ftruncate(fd, attrs["size"])
            else:
                tfd = fs.open(real, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
                try:
                    if not stat.S_ISREG(os.fstat(tfd).st_mode):
                        raise PermissionError(errno.EACCES, "Not a regular file")
                    os.ftruncate(tfd, attrs["size"])
                finally:
                    os.close(tfd)
        self.set_xattrs(attrs, real, fd, "IgnoreSFTPSetExtendedAttributes")     # (before the times, as ProFTPD)
        if "mtime" in attrs and "IgnoreSFTPSetTimes" not in opts:
            times = (attrs["atime"], attrs["mtime"])
            if None in times:                   # version 4+: one of them sent, the other kept
                cur = os.fstat(fd) if fd is not None else fs.stat(real)
                times = (cur.st_atime if times[0] is None else times[0], cur.st_mtime if times[1] is None else times[1])
            os.utime(fd, times) if fd is not None else fs.utime(real, times)
        self.status(rid, OK)

    def setstat(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        attrs = self.read_attrs(r)
        self._setstat(rid, self.resolve(path).real, attrs, None)

    def fsetstat(self, rid: int, r: Reader) -> None:
        h = self.get_handle(r)
        attrs = self.read_attrs(r)
        if h is None or h.fd is None:
            self.status(rid, INVALID_HANDLE)
            return
        self._setstat(rid, h.real, attrs, h.fd)

    def opendir(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        session = self.session
        if len(self.handles) >= MAX_HANDLES:
            self.status(rid, FAILURE, "Too many open handles")
            return
        shown = path.rstrip("/") or "/"             # ProFTPD's MLSD line names `/d1` for `/d1/`
        req = Request("MLSD", shown, f"MLSD {shown}")
        refusal = session.dispatcher.pre(session, req)
        if refusal is not None:
            session.dispatcher.after(session, req, refusal)
            self.status(rid, *_reply_status(refusal, PERMISSION_DENIED, self.errno_status))
            return
        st = None
        try:
            vpath = self.resolve(path)
            st = session.fs.stat(vpath.real)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory")
            with session.fs.scandir(vpath.real) as it:
                names = sorted(e.name for e in it)
        except (OSError, FsError) as e:
            session.dispatcher.after(session, req, Reply(550, f"{path}: {os.strerror(getattr(e, 'errno', 0) or 5)}"))
            if st is None and getattr(e, "errno", None) == errno.ENOTDIR:
                self.status(rid, NO_SUCH_FILE)      # as ProFTPD: a path through a file is not found
                return
            raise
        h = Handle(b"", vpath.real, vpath.virtual, entries=[".", ".."] + names, request=req)
        self.send(Writer().byte(HANDLE).u32(rid).string(self.new_handle(h)).bytes())

    def readdir(self, rid: int, r: Reader) -> None:
        h = self.get_handle(r)
        if h is None or h.entries is None:
            self.status(rid, INVALID_HANDLE)
            return
        self.session.reset_timer("noxfer")
        if h.listed is None:
            h.listed = (access.limits_allow(self.session, "LIST", DIRS, h.real)
                        or access.limits_allow(self.session, "NLST", DIRS, h.real))
            if not h.listed:
                self.log.write(f"READDIR of '{h.virtual}' blocked by <Limit LIST NLST> configuration: empty listing")
                h.entries = []
        out, count = Writer(), 0
        fs = self.session.fs
        size = 0
        while h.entries and count < READDIR_BATCH and size < READDIR_BYTES:
            name = h.entries.pop(0)
            if access.hidden(self.session, h.real, name):
                continue
            if name == "..":                # the parent as the client sees it: never above the session's root
                target = fs.real_of(posixpath.dirname(h.virtual.rstrip("/")) or "/") if h.virtual != "/" else h.real
            else:
                target = h.real if name == "." else posixpath.join(h.real, name)
            try:
                st = fs.lstat(target)
            except OSError:
                continue
            entry = self.name_entry(Writer(), name, st, real=target).bytes()
            out.raw(entry)
            size += len(entry)
            count += 1
        if not count:
            self.status(rid, EOF)
            return
        if self.version >= 6:                       # draft -13's end-of-list flag
            out.boolean(not h.entries)
        payload = Writer().byte(NAME).u32(rid).u32(count).bytes() + out.bytes()
        h.bytes += len(payload)
        self.send(payload)

    def remove(self, rid: int, r: Reader) -> None:
        self.ftp(rid, "DELE", self.path(r))

    def mkdir(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        attrs = self.read_attrs(r)
        notes = {}
        if "perms" in attrs and attrs["perms"] & 0o7777 != 0o777 \
                and "IgnoreSFTPUploadPerms" not in self.session.server.get("SFTPOptions"):
            real = self.resolve(path).real
            mask = self.session.conf("Umask", path=real)
            # made with these permissions, before UserOwner may give the directory away (as ProFTPD's smkdir)
            notes[DIR_MODE] = attrs["perms"] & 0o7777 & ~(mask[1] if mask[1] is not None else mask[0])
        self._status_of(rid, self.ftp_quiet("MKD", path, notes))     # (its extended attributes are not set: nor
        # are they by ProFTPD)

    def ftp_quiet(self, name: str, arg: str, notes: dict | None = None) -> Reply | None:
        return self.session.dispatcher.dispatch(self.session, Request(name, arg, f"{name} {arg}", notes or {}))

    def _status_of(self, rid: int, reply: Reply | None) -> None:
        if reply is None:
            self.status(rid, FAILURE)
        elif reply.code < 400:
            self.status(rid, OK)
        else:
            self.status(rid, *_reply_status(reply, FAILURE, self.errno_status))

    def rmdir(self, rid: int, r: Reader) -> None:
        self.ftp(rid, "RMD", self.path(r))

    def realpath(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        control = 1
        if self.version >= 6 and r.left():              # draft -13's control byte; its composed paths are read
            control = r.byte()                          # and left alone, as ProFTPD does
            while r.left():
                self.path(r)
        vpath = self.resolve(path)
        try:
            shown = self.session.fs.canonical(vpath)
        except (OSError, FsError):
            shown = vpath.virtual
        if not self.allowed("REALPATH", DIRS, vpath.real):
            self.status(rid, PERMISSION_DENIED)
            return
        st = None
        if self.version > 3:                            # its type in the attributes (no flags); as ProFTPD, a
            try:                                        # missing path is an error before version 6, then only
                st = self.session.fs.stat(vpath.real) if control != 1 else self.session.fs.lstat(vpath.real)
            except (OSError, FsError):                  # with STAT_ALWAYS (else the path as the client gave it)
                if self.version < 6 or control == 3:
                    raise
                shown = path
        self.send(self.name_entry(Writer().byte(NAME).u32(rid).u32(1), shown, st, shown, 0).bytes())

    def rename_paths(self, rid: int, old: str, new: str, overwrite: bool) -> None:
        if not overwrite:
            try:
                if self.session.fs.lexists(self.resolve(new, follow=False).real):
                    self.status(rid, FILE_ALREADY_EXISTS)       # in version 3 too, as ProFTPD
                    return
            except FsError:
                pass                        # RNTO answers for a path out of reach
        reply = self.ftp_quiet("RNFR", old)
        if reply is None or reply.code >= 400:
            self._status_of(rid, reply)
            return
        self._status_of(rid, self.ftp_quiet("RNTO", new))

    def rename(self, rid: int, r: Reader) -> None:
        old, new = self.path(r), self.path(r)
        flags = r.u32() if self.version >= 5 else 0
        self.rename_paths(rid, old, new, overwrite=bool(flags & (RENAME_OVERWRITE | RENAME_ATOMIC)))

    def readlink(self, rid: int, r: Reader) -> None:
        path = self.path(r)
        vpath = self.resolve(path, follow=False)
        if not self.allowed("READLINK", READ, vpath.real):
            self.status(rid, PERMISSION_DENIED)
            return
        target = link_answer(path, self.session.fs.readlink(vpath.real), self.session.chroot)
        self.send(self.name_entry(Writer().byte(NAME).u32(rid).u32(1), target, None, target, 0).bytes())

    def symlink(self, rid: int, r: Reader) -> None:
        # OpenSSH (and the clients that follow it) send the target first, then the link's path
        target, link = self.path(r), self.path(r)
        self.make_symlink(rid, target, link)

    def make_symlink(self, rid: int, target: str, link: str) -> None:
        link_real = self.resolve(link, follow=False).real
        try:
            target_real = self.resolve(target).real
        except FsError:
            target_real = link_real
        if not self.allowed("SYMLINK", READ, target_real) or not self.allowed("SYMLINK", WRITE, link_real):
            self.status(rid, PERMISSION_DENIED)
            return
        self.session.fs.symlink(target, link_real)
        self.status(rid, OK)

    def link(self, rid: int, r: Reader) -> None:
        """Version 6's LINK: a symbolic link as SYMLINK makes it, a hard one as hardlink@openssh.com."""
        new, existing, symbolic = self.path(r), self.path(r), r.boolean()
        if self.version < 6:
            self.status(rid, OP_UNSUPPORTED)
        elif symbolic:
            self.make_symlink(rid, existing, new)
        else:
            self.sublines, self.ext_status = [], None
            hardlink(self, rid, existing, new)

    def block(self, rid: int, r: Reader) -> None:
        """BLOCK (ProFTPD's LOCK): an fcntl read or write lock on a range of an open file, under `<Limit LOCK>`. A
        lock another process holds is SSH_FX_LOCK_CONFLICT at once (ProFTPD waits for it)."""
        self._lock(rid, r, unlock=False)

    def unblock(self, rid: int, r: Reader) -> None:
        self._lock(rid, r, unlock=True)

    def _lock(self, rid: int, r: Reader, unlock: bool) -> None:
        h = self.get_handle(r)
        offset, length = r.u64(), r.u64()
        mask = r.u32() if not unlock or r.left() >= 4 else LOCK_DELETE  # (ProFTPD's UNBLOCK wants the mask,
        if h is None:                                                     # with its delete bit; the draft none)
            self.status(rid, INVALID_HANDLE)
            return
        if h.fd is None or bool(mask & LOCK_DELETE) != unlock or (mask & LOCK_READ and mask & LOCK_WRITE):
            self.log.write("client requested an unsupported lock (a directory, a delete lock, or read and write at "
                           "once), rejecting")
            self.status(rid, OP_UNSUPPORTED)
            return
        if not self.allowed("LOCK", WRITE, h.final or h.real):
            self.status(rid, PERMISSION_DENIED)
            return
        how = fcntl.LOCK_UN if unlock else fcntl.LOCK_SH if mask & LOCK_READ else fcntl.LOCK_EX
        try:
            fcntl.lockf(h.fd, how | (0 if unlock else fcntl.LOCK_NB), length, offset, os.SEEK_SET)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            self.log.write(f"lock of '{h.virtual}' from {offset} for {length} bytes held by another process")
            self.status(rid, LOCK_CONFLICT)
            return
        self.status(rid, OK)

    def extended(self, rid: int, r: Reader) -> None:
        name = r.text(256)
        self.sublines, self.ext_status = [], None
        run_extension(self, rid, name, r)

    def send_statvfs(self, rid: int, real: str) -> None:
        """statvfs@openssh.com's (and fstatvfs's) reply for the filesystem holding `real`."""
        v = self.session.fs.statvfs(real)
        flags = (1 if v.f_flag & os.ST_RDONLY else 0) | (2 if v.f_flag & os.ST_NOSUID else 0)
        self.send(Writer().byte(EXTENDED_REPLY).u32(rid).u64(v.f_bsize).u64(v.f_frsize).u64(v.f_blocks)
                  .u64(v.f_bfree).u64(v.f_bavail).u64(v.f_files).u64(v.f_ffree).u64(v.f_favail)
                  .u64(v.f_fsid & 0xFFFFFFFFFFFFFFFF)
                  .u64(flags).u64(v.f_namemax).bytes())

    table = {OPEN: open_, CLOSE: close_, READ_: read, WRITE_: write, LSTAT: lstat, FSTAT: fstat, SETSTAT: setstat,
             FSETSTAT: fsetstat, OPENDIR: opendir, READDIR: readdir, REMOVE: remove, MKDIR: mkdir, RMDIR: rmdir,
             REALPATH: realpath, STAT: stat_, RENAME: rename, READLINK: readlink, SYMLINK: symlink, LINK: link,
             BLOCK: block, UNBLOCK: unblock, EXTENDED: extended}


def _clean(path: str, absolute: bool) -> str:
    """ProFTPD's pr_fs_clean_path2: `.` and empty names dropped, `..` takes the name before it (none at the top)."""
    names: list[str] = []
    for name in path.split("/"):
        if name == "..":
            names = names[:-1]
        elif name not in ("", "."):
            names.append(name)
    return ("/" if absolute or path.startswith("/") else "") + "/".join(names)


def link_answer(path: str, target: str, jail: str | None) -> str:
    """READLINK's answer as ProFTPD 1.3.8's dir_readlink (HANDLE_REL_PATH) makes it from the client's `path` and the
    link's stored `target`. In a chroot a relative target is joined to the directory of `path` as the client wrote
    it (not to its working directory), made absolute and cleaned; an absolute one inside the chroot loses the
    chroot's prefix (`./...` for a relative one that lands there). Unconfined, a relative target is joined only
    when `path` names a directory other than the top (`d/l`, `/d/l`), else answered as stored."""
    absolute, cut = target.startswith("/"), path.rfind("/")
    if not jail or len(jail) <= 1:
        return target if absolute or cut <= 0 else _clean(path[:cut] + "/" + target, False)
    if absolute and len(target) < len(jail):
        return target
    joined = target if absolute or cut < 0 else (path[:cut] if cut > 0 else "") + "/" + target
    cleaned = _clean(joined, True)
    if cleaned.startswith(jail) and cleaned[len(jail):len(jail) + 1] == "/":
        return cleaned[len(jail):] if absolute else "." + cleaned[len(jail):]
    return cleaned


def v5_open_flags(access: int, disposition: int) -> int:
    """Version 5's OPEN as version 3's flags (ProFTPD's fxp_get_v5_open_flags): reading, writing, appending from
    the desired access, creating and truncating from the disposition (a truncation writes)."""
    reading = bool(access & (WANT_READ | WANT_READ_ATTRS))
    writing = bool(access & (WANT_WRITE | WANT_WRITE_ATTRS))
    pflags = (F_READ if reading or not writing else 0) | (F_WRITE if writing else 0)
    if writing and access & WANT_APPEND and disposition & (ACCESS_APPEND | ACCESS_APPEND_ATOMIC):
        pflags |= F_APPEND
    base = disposition & ~(ACCESS_APPEND | ACCESS_APPEND_ATOMIC | ACCESS_TEXT)
    if base in (CREATE_TRUNCATE, TRUNCATE_EXISTING) and not writing:
        pflags = (pflags & ~F_READ) | F_WRITE
    pflags |= {CREATE_NEW: F_CREAT | F_EXCL, CREATE_TRUNCATE: F_CREAT | F_TRUNC, OPEN_OR_CREATE: F_CREAT,
               TRUNCATE_EXISTING: F_TRUNC}.get(base, 0)
    return pflags


def _arg_handle(packet: bytes) -> bytes:
    try:
        return Reader(packet, 5).string(256)
    except WireError:
        return b""


def _logged_arg(kind: int, packet: bytes) -> str:
    """A request's argument as ProFTPD's mod_sftp logs it (`%J`)."""
    r = Reader(packet, 1)
    try:
        if kind == INIT:
            return str(r.u32())
        r.u32()
        if kind in _PATH_FIRST:
            return r.text(8192)
        if kind in _HANDLE_FIRST:
            handle = r.text(256)
            return f"{handle} {r.u64()} {r.u32()}" if kind == WRITE_ else handle
        if kind in (RENAME, SYMLINK, LINK):
            return f"{r.text(8192)} {r.text(8192)}"
        return r.text(256)              # EXTENDED: the extension's name
    except WireError:
        return ""


class Refused(Exception):
    """A transfer's FTP command refused in its PRE_CMD phase (`<Limit>`, a module's veto): its reply."""

    def __init__(self, reply: Reply):
        super().__init__(reply.text)
        self.reply = reply


def start_transfer(session: "Session", path: str, pflags: int, perms: int, sftp: bool = False) -> Handle:
    """Open `path` for an SFTP OPEN (`sftp`) or an scp file: RETR (STOR, APPE) with its PRE_CMD phase,
    AllowOverwrite, HiddenStores, Umask, GroupOwner, MaxStoreFileSize; `release` ends it. Raises Refused, OSError,
    FsError. The FTP command's line of an OPEN that fails is ProFTPD's mod_sftp's: `451 path: error`, with the
    errno OPEN answers (`open_errno`)."""
    writing = bool(pflags & (F_WRITE | F_APPEND | F_CREAT | F_TRUNC))
    name = "APPE" if pflags & F_APPEND else "STOR" if writing else "RETR"
    req = Request(name, path, f"{name} {path}")
    refusal = session.dispatcher.pre(session, req)
    if refusal is not None:
        session.state.get(SftpState).log.write(f"OPEN command for '{path}' blocked by '{name}' handler")
        session.dispatcher.after(session, req, refusal)
        raise Refused(refusal)
    try:
        vpath = session.fs.resolve(path, follow_last=True)
        try:
            st = session.fs.stat(vpath.real)
        except FileNotFoundError:
            st = None
        flags = os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Not a regular file") if stat.S_ISDIR(st.st_mode) else \
                PermissionError(errno.EACCES, "Not a regular file")
        if writing:
            if st is not None and name == "STOR" and not session.conf("AllowOverwrite", path=vpath.real):
                session.state.get(SftpState).log.write(f"OPEN of '{path}': overwrite permission denied")
                raise PermissionError(errno.EACCES, "Overwrite permission denied")
            if st is None and not pflags & F_CREAT:
                raise FileNotFoundError(errno.ENOENT, "No such file")
            flags |= os.O_RDWR if pflags & F_READ else os.O_WRONLY
            flags |= (os.O_CREAT if pflags & F_CREAT else 0) | (os.O_TRUNC if pflags & F_TRUNC else 0)
            flags |= (os.O_EXCL if pflags & F_EXCL else 0) | (os.O_APPEND if pflags & F_APPEND else 0)
        else:
            if st is None:
                raise FileNotFoundError(errno.ENOENT, "No such file")
            limit = size_limit_for(session, "MaxRetrieveFileSize", vpath.real)
            if limit is not None and st.st_size > limit:    # the whole file refused, as FTP's RETR (ProFTPD's
                too_large("MaxRetrieveFileSize", limit, vpath.real)     # mod_sftp lets it through)
                session.state.get(SftpState).log.write(f"OPEN of '{vpath.virtual}' ({st.st_size} bytes) refused: "
                                                       f"larger than MaxRetrieveFileSize ({limit} bytes)")
                raise PermissionError(errno.EPERM, "Operation not permitted")
            flags |= os.O_RDONLY
        target = vpath.real
        hidden = session.conf("HiddenStores", path=vpath.real) if name == "STOR" else None
        if hidden:                      # the upload goes to a temporary name, renamed at CLOSE (as FTP's STOR)
            target = hidden_path(vpath.real, hidden)
            if session.fs.lexists(target):
                raise FileExistsError(errno.EEXIST, "Temporary hidden file already exists")
            flags = (flags & ~os.O_TRUNC & ~os.O_APPEND) | os.O_CREAT | os.O_EXCL
        umask = session.conf("Umask", path=vpath.real)[0]
        old = os.umask(umask)
        try:
            fd = session.fs.open(target, flags, perms & 0o7777)
        finally:
            os.umask(old)
        os.set_blocking(fd, True)
        if writing and (st is None or hidden):
            new_owner(session, target, fd)
    except (OSError, FsError) as e:
        err = getattr(e, "errno", None) or errno.EIO
        reply = Reply(451, f"{path}: {os.strerror(open_errno(err, bool(pflags & F_CREAT)))}") if sftp else \
            Reply(550, f"{path}: {os.strerror(err)}")
        session.dispatcher.after(session, req, reply)
        raise
    data = transfer.state(session)
    return Handle(b"", target, vpath.virtual, fd=fd, request=req, direction="i" if writing else "o",
                  final=vpath.real if target != vpath.real else None,
                  limit=size_limit_for(session, "MaxStoreFileSize", vpath.real) if writing else None,
                  rate=rate_for(session, name, vpath.real), shaping=data.shaping, paced=(time.monotonic(), 0))


def release(session: "Session", h: Handle, aborted: bool) -> bool:
    """Close a handle: a file's RETR/STOR/APPE gets its POST_CMD and LOG_CMD phases (the TransferLog line,
    quotas), a directory's MLSD likewise."""
    if h.fd is not None:
        fd, h.fd = h.fd, None
        try:
            os.close(fd)
        except OSError as e:
            log.warning("closing %s: %s", h.real, e.strerror)
    if h.request is None:
        return True
    req, h.request = h.request, None
    fs = session.fs
    sftp_log = session.state.get(SftpState).log
    if h.final is not None:                 # HiddenStores
        temp, h.real = h.real, h.final
        try:
            if aborted:
                fs.unlink(temp)
            else:
                fs.rename(temp, h.final)
        except OSError as e:
            sftp_log.write(f"renaming of HiddenStore path '{temp}' to '{h.final}' failed: {e.strerror}")
            log.warning("Rename of %s to %s failed: %s", temp, h.final, e.strerror)
            aborted = True
            try:
                fs.unlink(temp)
            except OSError:
                pass                        # nothing left to remove
    elif aborted and h.direction == "i" and session.conf("DeleteAbortedStores", path=h.real):
        try:
            fs.unlink(h.real)
        except OSError as e:
            log.warning("cannot remove %s after an aborted upload: %s", h.real, e.strerror)
    if req.name in ("RETR", "STOR", "APPE"):
        seconds = max(time.time() - h.started, 0.0)
        req.notes["xfer"] = {"path": h.real, "vpath": h.virtual, "bytes": h.bytes, "seconds": seconds,
                             "direction": h.direction, "type": "b", "offset": 0, "size": None,
                             "completed": not aborted, "aborted": aborted,
                             "status": "cancelled" if aborted else "success", "command": req.name}
    elif req.name == "MLSD":
        req.notes["list_bytes"] = h.bytes       # what READDIR sent (ProFTPD's MLSD line shows it)
    reply = Reply(426, "Transfer aborted. Data connection closed") if aborted else Reply(226, "Transfer complete")
    session.dispatcher.after(session, req, reply)
    return not aborted


def _stalled(session: "Session") -> None:
    seconds = int(session.timers["stalled"].seconds)
    session.state.get(SftpState).log.write(f"SFTP data transfer stalled timeout ({seconds} secs) reached")
    session.state.get(SftpState).disconnect = (11, "data stalled timeout reached")
    session.events.emit("core.timeout-stalled", session=session)
    session.end("stalled")


def open_errno(err: int, creating: bool) -> int:
    """The errno ProFTPD's OPEN answers for a file it could not open: a directory or a link loop is refused
    (EACCES), so is a path through a file or too long a name when only reading (its stat fails first); creating,
    the open's own error."""
    if err in (errno.EISDIR, errno.ELOOP) or (err in (errno.ENOTDIR, errno.ENAMETOOLONG) and not creating):
        return errno.EACCES
    return err


def _reply_status(reply: Reply, default: int, status_of) -> tuple[int, str]:
    """The SFTP status of an FTP command's error reply: its `path: strerror` text when it has one (`status_of`
    the session version's errno table)."""
    text = reply.text
    tail = text.rsplit(": ", 1)[-1].rstrip(".") if ": " in text else ""
    err = _STRERROR.get(tail)
    if err is not None:
        return status_of(err)
    if reply.code in (530, 532, 550, 553) and ("denied" in text.lower() or "forbidden" in text.lower()):
        return PERMISSION_DENIED, STATUS_TEXT[PERMISSION_DENIED]
    return default, tail or STATUS_TEXT[default]
