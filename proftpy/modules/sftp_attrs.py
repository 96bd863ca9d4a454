"""mod_sftp's file attributes in SFTP versions 4 to 6 (draft-ietf-secsh-filexfer-04 to -13), as ProFTPD 1.3.8
writes and reads them: a type byte after the flags, owner and group by name, 64-bit times, the link count in
version 6, and the flags a STAT asked for echoed less those ProFTPD never keeps; the EXTENDED block (every version)
carries the file's extended attributes, name and value pairs. Version 3's other attributes stay in sftp_fxp.py.
Pure: names are mapped by the callables the caller passes, the extended attributes read by it."""

from __future__ import annotations

import os
import stat
from typing import Callable

from ..net.ssh.wire import Reader, Writer

SIZE, UIDGID, PERMISSIONS, ACCESSTIME, CREATETIME, MODIFYTIME, ACL, OWNERGROUP = (
    0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80)
SUBSECOND, BITS, ALLOCATION, TEXT_HINT, MIME_TYPE, LINK_COUNT, UNTRANSLATED, CTIME = (
    0x100, 0x200, 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000)
EXTENDED = 0x80000000
# what ProFTPD's fxp_attrs_clear_unsupported takes out of the flags a STAT asks for (the rest is echoed)
KEPT = 0xFFFFFFFF & ~(CREATETIME | ACL | SUBSECOND | BITS | ALLOCATION | TEXT_HINT | MIME_TYPE | UNTRANSLATED | CTIME)
LISTED = SIZE | PERMISSIONS | ACCESSTIME | MODIFYTIME | OWNERGROUP     # READDIR's (and 6's: | LINK_COUNT | EXTENDED)

REGULAR, DIRECTORY, SYMLINK, SPECIAL, UNKNOWN, SOCKET, CHAR_DEVICE, BLOCK_DEVICE, FIFO = range(1, 10)
_TYPES = ((stat.S_ISREG, REGULAR, REGULAR), (stat.S_ISDIR, DIRECTORY, DIRECTORY), (stat.S_ISLNK, SYMLINK, SYMLINK),
          (stat.S_ISSOCK, SPECIAL, SOCKET), (stat.S_ISFIFO, SPECIAL, FIFO), (stat.S_ISCHR, SPECIAL, CHAR_DEVICE),
          (stat.S_ISBLK, SPECIAL, BLOCK_DEVICE))


class UnknownPrincipal(Exception):
    """An owner or group name that maps to no account: SSH_FX_UNKNOWN_PRINCIPAL, the name in the status."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def listed(version: int) -> int:
    return LISTED | (LINK_COUNT | EXTENDED if version >= 6 else 0)


def file_type(mode: int, version: int) -> int:
    """The type byte: sockets, FIFOs and devices are SPECIAL before version 5."""
    for test, early, late in _TYPES:
        if test(mode):
            return early if version <= 4 else late
    return UNKNOWN


MAX_PAIRS = 100                 # extended attributes a client sends: ProFTPD reads this many, the rest are ignored
MAX_PAIR_LEN = 1024             # ... and ignores a name or value longer than this

Xattrs = list[tuple[str, bytes]]


def write_extended(w: Writer, pairs: Xattrs) -> Writer:
    """The EXTENDED block: the count, then each attribute's name and value."""
    w.u32(len(pairs))
    for name, value in pairs:
        w.string(name).string(value)
    return w


def read_extended(r: Reader) -> Xattrs:
    """A client's EXTENDED block: at most MAX_PAIRS pairs (as ProFTPD, the rest is left unread), a pair whose name
    or value is longer than MAX_PAIR_LEN skipped."""
    pairs = []
    for _ in range(min(r.u32(), MAX_PAIRS)):
        name, value = r.string(65536), r.string(65536)
        if len(name) <= MAX_PAIR_LEN and len(value) <= MAX_PAIR_LEN:
            pairs.append((name.decode("utf-8", "surrogateescape"), value))
    return pairs


def write(version: int, st: os.stat_result | None, flags: int, owner: Callable[[int], str],
          group: Callable[[int], str], xattrs: Callable[[], Xattrs] = list) -> bytes:
    """The attributes of `st` (None: a path that is not there, type UNKNOWN) under `flags`; `xattrs` gives the
    file's extended attributes when EXTENDED is asked for."""
    w = Writer().u32(flags).byte(file_type(st.st_mode, version) if st is not None else UNKNOWN)
    if st is None:
        return w.bytes()
    if flags & SIZE:
        w.u64(st.st_size)
    if flags & OWNERGROUP:
        w.string(owner(st.st_uid)).string(group(st.st_gid))
    if flags & PERMISSIONS:
        w.u32(stat.S_IMODE(st.st_mode))
    if flags & ACCESSTIME:
        w.u64(int(st.st_atime) & 0xFFFFFFFFFFFFFFFF)
    if flags & MODIFYTIME:
        w.u64(int(st.st_mtime) & 0xFFFFFFFFFFFFFFFF)
    if flags & LINK_COUNT:
        w.u32(st.st_nlink)
    if flags & EXTENDED:
        write_extended(w, xattrs())
    return w.bytes()


def read(r: Reader, uid_of: Callable[[str], int | None], gid_of: Callable[[str], int | None]) -> dict:
    """Attributes a client sends (OPEN, MKDIR, SETSTAT): what proftpy acts on (size, owner, group, mode, times) as
    version 3's reader gives them; the others are read and ignored, as ProFTPD does."""
    flags = r.u32()
    r.byte()                                        # the type: ProFTPD ignores it too
    out: dict = {}
    sub = bool(flags & SUBSECOND)
    if flags & SIZE:
        out["size"] = r.u64()
    if flags & ALLOCATION:
        r.u64()
    if flags & OWNERGROUP:
        user, grp = r.text(256), None
        out["uid"] = uid_of(user)
        if out["uid"] is None:
            raise UnknownPrincipal(user)
        grp = r.text(256)
        out["gid"] = gid_of(grp)
        if out["gid"] is None:
            raise UnknownPrincipal(grp)
    if flags & PERMISSIONS:
        out["perms"] = r.u32()
    for bit, key in ((ACCESSTIME, "atime"), (CREATETIME, None), (MODIFYTIME, "mtime"), (CTIME, None)):
        if flags & bit:
            value = r.u64()
            if sub:
                r.u32()
            if key is not None:
                out[key] = value
    if flags & ACL:
        r.string(65536)
    if flags & BITS:
        r.u32(), r.u32()
    if flags & TEXT_HINT:
        r.byte()
    if flags & MIME_TYPE:
        r.string(1024)
    if flags & LINK_COUNT:
        r.u32()
    if flags & UNTRANSLATED:
        r.string(8192)
    if flags & EXTENDED:
        out["xattrs"] = read_extended(r)
    if "mtime" in out and "atime" not in out:        # version 3's SETSTAT sets both: keep the access time
        out["atime"] = None
    if "atime" in out and "mtime" not in out:
        out["mtime"] = None
    return out
