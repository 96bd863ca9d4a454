"""The one door for client paths: every path a client sends becomes a real path here, and nowhere else.

A session has a root (its chroot or the directory it is jailed to) and a current directory, both seen by the client
as `/...`. Without a kernel chroot (non-root runs, or `DefaultRoot` not set while the daemon is not root) proftpy
emulates one: symbolic links are resolved component by component *inside* the root, so an absolute link target
such as `/etc` means `<root>/etc` and `..` never climbs above the root — exactly what the client would see under
chroot(2). Names that are not UTF-8 travel as surrogate escapes and reach the disk unchanged.

Files are opened with `FS.open`: in the emulated jail it asks the kernel to resolve the path inside the root too
(openat2 with RESOLVE_IN_ROOT), so a directory swapped for a symbolic link between `resolve` and the open cannot
lead a transfer outside the root.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import stat
from dataclasses import dataclass

from .reply import FtpError

PATH_MAX = 4096
MAX_LINKS = 40
SYS_OPENAT2 = 437                       # the same number on every Linux architecture (added in 5.6)
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class FsError(FtpError):
    """A path problem, answered ProFTPD's way: `550 <arg>: <strerror>`."""

    def __init__(self, arg: str, err: int, code: int = 550):
        super().__init__(code, f"{arg}: {os.strerror(err)}")
        self.errno = err


@dataclass(frozen=True)
class VPath:
    """A resolved client path: what the client calls it, where it really is, and what the client typed."""

    virtual: str
    real: str
    arg: str


class FS:
    """Path resolution for one session. `root` is a real directory ("/" under a kernel chroot)."""

    def __init__(self, root: str, cwd: str = "/"):
        self.root = os.path.realpath(root) if root != "/" else "/"
        self.cwd = cwd

    def virtual(self, arg: str) -> str:
        """The normalised client-visible absolute path for `arg` (no filesystem access)."""
        joined = posixpath.join(self.cwd, arg) if not arg.startswith("/") else arg
        return posixpath.normpath(joined).replace("//", "/") or "/"

    def real_of(self, virtual: str) -> str:
        return virtual if self.root == "/" else (self.root + virtual if virtual != "/" else self.root)

    def virtual_of(self, real: str) -> str:
        """Client view of a real path inside the root (for listings and replies)."""
        if self.root == "/":
            return real
        rel = real[len(self.root):]
        return rel or "/"

    def resolve(self, arg: str, follow_last: bool = True) -> VPath:
        """Resolve `arg` against the cwd inside the root. Missing components are allowed (STOR, MKD); symlinks
        are followed inside the root (the last one only when `follow_last`)."""
        if "\0" in arg:
            raise FsError(arg, errno.EINVAL)
        if len(arg.encode("utf-8", "surrogateescape")) >= PATH_MAX:
            raise FsError(arg, errno.ENAMETOOLONG)
        virtual = self.virtual(arg or ".")
        if self._kernel_chroot or self.root == "/":
            return VPath(virtual, virtual, arg)
        real_virtual = self._walk(virtual, follow_last, arg)
        return VPath(virtual, self.real_of(real_virtual), arg)

    _kernel_chroot = False

    def mark_kernel_chroot(self) -> None:
        """After chroot(2) the kernel confines paths; resolution no longer needs to walk links itself."""
        self._kernel_chroot = True

    def _walk(self, virtual: str, follow_last: bool, arg: str) -> str:
        parts = [p for p in virtual.split("/") if p]
        done: list[str] = []
        links = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if done:
                    done.pop()
                continue
            if name == ".":
                continue
            candidate = done + [name]
            real = self.real_of("/" + "/".join(candidate))
            if not parts and not follow_last:
                done = candidate
                break
            try:
                st = os.lstat(real)
            except FileNotFoundError:
                done = candidate
                continue
            except OSError as e:
                raise FsError(arg, e.errno or errno.EIO) from None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise FsError(arg, errno.ELOOP)
                target = os.readlink(real)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            done = candidate
        return "/" + "/".join(done)

    def open(self, real: str, flags: int, mode: int = 0o666) -> int:
        """os.open() of a real path inside the root (a `VPath.real`), resolved by the kernel inside the root as
        well when the jail is emulated. Old kernels (or a seccomp filter) without openat2 get a plain open."""
        flags |= os.O_CLOEXEC
        if self._kernel_chroot or self.root == "/":
            return os.open(real, flags, mode)
        if real != self.root and not real.startswith(self.root + "/"):
            raise ValueError(f"{real} is not inside the session root {self.root}")
        rel = real[len(self.root):].lstrip("/") or "."
        how = _OpenHow(flags, mode if flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0)) else 0,
                       RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = _libc.syscall(SYS_OPENAT2, root_fd, os.fsencode(rel), ctypes.byref(how),
                               ctypes.c_size_t(ctypes.sizeof(how)))
            err = ctypes.get_errno()
        finally:
            os.close(root_fd)
        if fd >= 0:
            return fd
        if err in (errno.ENOSYS, errno.EPERM):
            return os.open(real, flags, mode)
        raise OSError(err, os.strerror(err), real)

    def chdir(self, arg: str) -> VPath:
        path = self.resolve(arg)
        st = os.stat(path.real)
        if not stat.S_ISDIR(st.st_mode):
            raise FsError(arg, errno.ENOTDIR)
        if not os.access(path.real, os.X_OK):
            raise FsError(arg, errno.EACCES)
        self.cwd = path.virtual
        return path
