"""The one door for client paths: every path a client sends becomes a real path here, and nowhere else.

A session has a root (its chroot or the directory it is jailed to) and a current directory, both seen by the client
as `/...`. Without a kernel chroot (non-root runs, or `DefaultRoot` not set while the daemon is not root) proftpy
emulates one: symbolic links are resolved component by component *inside* the root, so an absolute link target
such as `/etc` means `<root>/etc` and `..` never climbs above the root — exactly what the client would see under
chroot(2). Names that are not UTF-8 travel as surrogate escapes and reach the disk unchanged.

Files are opened with `FS.open`: in the emulated jail it asks the kernel to resolve the path inside the root too
(openat2 with RESOLVE_IN_ROOT), so a directory swapped for a symbolic link between `resolve` and the open cannot
lead a transfer outside the root. Commands that change the tree (MKD, RMD, DELE, RNFR/RNTO, MFMT, MFF, the SITE
commands, HiddenStores' rename, STOU's new file) use the operations below (`FS.mkdir`, `FS.unlink`, `FS.rename`,
`FS.chmod`, `FS.create_unique`, ...): each opens the *parent* directory the same way (`FS.parent`) and acts on the
final name relative to it, without following a final symbolic link, so the same swap cannot lead them outside
either. Reads go through here too (`FS.stat`, `lstat`, `readlink`, `access`, `scandir`, `statvfs`): listings,
facts and logs never look at a client path any other way. Under a kernel chroot, or when the root is "/", the
kernel confines every call already and the plain os call is used (listings are hot). `FS.guarded` (RLimitChroot,
mod_rlimit) makes every operation that changes the tree refuse `/etc`, `/lib` and what is below them (EACCES).
`FS.access` asks the kernel (POSIX ACLs honoured, as ProFTPD's mod_facl); `FS.acls` off (`FACLEngine off`) answers
from the mode bits alone, as ProFTPD without mod_facl. mod_statcache (modules/statcache.py) gives a session's FS
cached `stat`/`lstat` and its `changed` hook, told of every path an operation here changes or opens for writing.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import posixpath
import random
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import trace
from .reply import FtpError

log = logging.getLogger("proftpy")

PATH_MAX = 4096
MAX_LINKS = 40
SYS_OPENAT2 = 437                       # the same number on every Linux architecture (added in 5.6)
SYS_FCHMODAT2 = 452                     # likewise (added in 6.6): the only chmod that can refuse a final link
SYS_FACCESSAT2 = 439                    # likewise (added in 5.8): access(2) of an open O_PATH descriptor
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10
AT_SYMLINK_NOFOLLOW, AT_EACCESS, AT_EMPTY_PATH = 0x100, 0x200, 0x1000
UNIQUE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"     # STOU's names: tempfile's alphabet and length
UNIQUE_TRIES = 100
GUARDED = ("/etc", "/lib")              # RLimitChroot: what a chrooted session may not change
GUARDED_BELOW = tuple(p + "/" for p in GUARDED)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


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
    """Path resolution for one session. `root` is the real directory the client's `/` is, as this process sees it:
    "/" under a kernel chroot, which `chroot` then names (the directory chroot(2) confined the process to)."""

    def __init__(self, root: str, cwd: str = "/", chroot: str | None = None, home: str = "/",
                 user_home: "Callable[[str], str | None] | None" = None):
        self._root_fd: int | None = None        # the emulated jail's root, opened once (see `_root`)
        self.root = os.path.realpath(root) if root != "/" else "/"
        self.cwd = cwd
        self.chroot = chroot
        self.home = home                        # the home directory as the client sees it (`~`)
        self.user_home = user_home              # name -> another user's home directory (`~name`), or None
        self._kernel_chroot = chroot is not None
        if self._kernel_chroot and self.root != "/":
            raise ValueError("under a kernel chroot the root is /")
        self._direct = self.root == "/"         # the kernel confines (or nothing to confine): plain os calls
        self.guarded = False                    # RLimitChroot (mod_rlimit): nothing under /etc, /lib may change
        self.acls = True                        # FACLEngine (mod_facl): access() honours ACLs, else mode bits
        self.changed: Callable[..., None] | None = None   # mod_statcache: told each path a change touches

    def __del__(self) -> None:
        if self._root_fd is not None:
            os.close(self._root_fd)

    def _root(self) -> int:
        """The emulated jail's root directory, opened (O_PATH) at its first use and kept: every open inside the
        jail resolves from it, as chroot(2) pins its directory, and saves two system calls."""
        if self._root_fd is None:
            self._root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._root_fd

    @property
    def jail(self) -> str | None:
        """The session root as the configuration names it (None when the session sees the whole tree)."""
        return self.chroot or (self.root if self.root != "/" else None)

    def config_path(self, real: str) -> str:
        """A real path as the configuration names it: the chroot directory in front under a kernel chroot."""
        if not self.chroot:
            return real
        return posixpath.normpath(self.chroot.rstrip("/") + "/" + real.lstrip("/")) if real != "/" else self.chroot

    def from_config(self, path: str) -> str | None:
        """The inverse of `config_path`: where a path the configuration names is, as this process sees it; None
        for a path outside a kernel chroot (this process cannot reach it)."""
        root = (self.chroot or "").rstrip("/")
        if not root:
            return path
        if path == root:
            return "/"
        return path[len(root):] if path.startswith(root + "/") else None

    def virtual(self, arg: str) -> str:
        """The normalised client-visible absolute path for `arg` (no filesystem access)."""
        joined = posixpath.join(self.cwd, arg) if not arg.startswith("/") else arg
        return posixpath.normpath(joined).replace("//", "/") or "/"

    def real_of(self, virtual: str) -> str:
        return virtual if self.root == "/" else (self.root + virtual if virtual != "/" else self.root)

    def canonical(self, path: VPath) -> str:
        """The client view of a resolved path with every symbolic link on it resolved (CWD with ShowSymlinks on).
        In the emulated jail `resolve` has followed them already."""
        if self._direct:
            return os.path.realpath(path.real)
        return self.virtual_of(path.real)

    def virtual_of(self, real: str) -> str:
        """Client view of a real path inside the root (for listings and replies)."""
        if self.root == "/":
            return real
        rel = real[len(self.root):]
        return rel or "/"

    def resolve(self, arg: str, follow_last: bool = True, tilde: bool = False) -> VPath:
        """Resolve `arg` against the cwd inside the root. Missing components are allowed (STOR, MKD); symlinks
        are followed inside the root (the last one only when `follow_last`). `tilde`: a leading `~` is a home
        directory (`expand_home`), for the commands ProFTPD interpolates it in."""
        if "\0" in arg:
            raise FsError(arg, errno.EINVAL)
        if len(arg.encode("utf-8", "surrogateescape")) >= PATH_MAX:
            raise FsError(arg, errno.ENAMETOOLONG)
        virtual = self.virtual(self.expand_home(arg) if tilde and arg.startswith("~") else arg or ".")
        if self._direct:
            return VPath(virtual, virtual, arg)
        real_virtual = self._walk(virtual, follow_last, arg)
        return VPath(virtual, self.real_of(real_virtual), arg)

    def realpath(self, real: str) -> str:
        """What `real` leads to, every symbolic link followed inside the root (ProFTPD's dir_realpath)."""
        if self._direct:
            return os.path.realpath(real)
        return self.real_of(self._walk(self.virtual_of(real), True, real))

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

    def expand_home(self, arg: str) -> str:
        """ProFTPD 1.3.8's `~` (pr_fs_interpolate): `~/x` is x in the home directory; `~name/x` in that user's,
        only for a session that sees the whole tree; a bare `~`, an unknown user or a home outside the root are
        `No such file or directory`, as ProFTPD answers under DefaultRoot."""
        name, sep, rest = arg[1:].partition("/")
        confined = self.jail is not None
        if not name:
            if not sep and confined:
                raise FsError(arg, errno.ENOENT)
            base = self.home
        else:
            base = self.user_home(name) if self.user_home is not None and not confined else None
            if base is None:
                raise FsError(arg, errno.ENOENT)
        return posixpath.join(base, rest) if rest else base

    def open(self, real: str, flags: int, mode: int = 0o666) -> int:
        """os.open() of a real path inside the root (a `VPath.real`), resolved by the kernel inside the root as
        well when the jail is emulated. Old kernels (or a seccomp filter) without openat2 get a plain open."""
        flags |= os.O_CLOEXEC
        if trace.on: trace.msg("fsio", 8, "opening '%s' (flags %#o)%s", real, flags, "" if self._direct else " inside the root with openat2")
        if self.guarded and flags & WRITE_FLAGS:
            self._guard(real)
        if self.changed is not None and flags & WRITE_FLAGS:
            self.changed(real, True)
        if self._direct:
            return os.open(real, flags, mode)
        if real != self.root and not real.startswith(self.root + "/"):
            raise ValueError(f"{real} is not inside the session root {self.root}")
        rel = real[len(self.root):].lstrip("/") or "."
        tmpfile = getattr(os, "O_TMPFILE", 0)            # includes O_DIRECTORY's bit: only all of it counts
        creates = flags & os.O_CREAT or (tmpfile and flags & tmpfile == tmpfile)
        how = _OpenHow(flags, mode if creates else 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        fd = _libc.syscall(SYS_OPENAT2, self._root(), os.fsencode(rel), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how)))
        err = ctypes.get_errno()
        if fd >= 0:
            return fd
        if err in (errno.ENOSYS, errno.EPERM):
            return os.open(real, flags, mode)
        raise OSError(err, os.strerror(err), real)

    def _guard(self, real: str) -> None:
        """RLimitChroot: EACCES for /etc, /lib and what is below them under a kernel chroot (ProFTPD's guard
        against the "Roaring Beast": a C library loading what a client uploaded there, as root)."""
        if real in GUARDED or real.startswith(GUARDED_BELOW):
            if trace.on: trace.msg("fsio", 1, "rejecting path '%s' within chroot '%s'", real, self.chroot)
            log.debug("WARNING: attempt to use sensitive path '%s' within chroot '%s', rejecting", real, self.chroot)
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), real)

    # -- operations on the tree: through a directory fd opened inside the root ---------------------------------------
    @contextlib.contextmanager
    def parent(self, real: str, change: bool = True) -> Iterator[tuple[int, str]]:
        """(fd, name): the directory holding `real` opened with `FS.open` (O_PATH, so inside the root whatever was
        swapped since `resolve`), and the final name to use with the `dir_fd=` calls. The root itself is
        (its own fd, "."), so acting on it fails the way it does under chroot(2). Every operation that changes the
        tree comes through here (`change`), so RLimitChroot's guard stands here."""
        if change and self.guarded:
            self._guard(real)
        if real == self.root:
            directory, name = real, "."
        else:
            directory, name = posixpath.split(real)
            if not name or name in (".", "..") or not directory.startswith("/"):
                raise ValueError(f"{real!r} does not end in a plain name")
        fd = self.open(directory, os.O_PATH | os.O_DIRECTORY)
        try:
            yield fd, name
        finally:
            os.close(fd)
            if change and self.changed is not None:
                self.changed(real)

    def lstat(self, real: str) -> os.stat_result:
        """The final component itself (a symbolic link is not followed)."""
        if self._direct:
            return os.lstat(real)
        with self.parent(real, change=False) as (fd, name):
            return os.stat(name, dir_fd=fd, follow_symlinks=False)

    def stat(self, real: str) -> os.stat_result:
        """What `real` leads to, links followed inside the root. A FIFO is not opened for reading (O_PATH)."""
        if self._direct:
            return os.stat(real)
        fd = self.open(real, os.O_PATH)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def exists(self, real: str) -> bool:
        try:
            self.stat(real)
        except OSError:
            return False
        return True

    def lexists(self, real: str) -> bool:
        """`real` names something, a dangling symbolic link included."""
        try:
            self.lstat(real)
        except OSError:
            return False
        return True

    def access(self, real: str, mode: int) -> bool:
        """access(2) with the effective ids (os.R_OK, W_OK, X_OK) of what `real` leads to, links followed inside the
        root; False when it cannot be reached."""
        return self.access_all(real, (mode,))[0]

    def access_all(self, real: str, modes: tuple[int, ...]) -> tuple[bool, ...]:
        """`access` for several modes of one path, opened once (MLSx's perm fact asks three per entry)."""
        if not self.acls:
            try:
                st = self.stat(real)
            except OSError:
                return (False,) * len(modes)
            return tuple(mode_bits_allow(st, mode) for mode in modes)
        if self._direct:
            effective = os.access in os.supports_effective_ids
            return tuple(os.access(real, mode, effective_ids=effective) for mode in modes)
        try:
            fd = self.open(real, os.O_PATH)
        except OSError:
            return (False,) * len(modes)
        try:
            return tuple(_access_fd(fd, mode) for mode in modes)
        finally:
            os.close(fd)

    def statvfs(self, real: str) -> os.statvfs_result:
        """The filesystem holding `real` (free space for Display files' %f)."""
        if self._direct:
            return os.statvfs(real)
        fd = self.open(real, os.O_PATH)
        try:
            return os.fstatvfs(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def scandir(self, real: str) -> Iterator[Iterator[os.DirEntry]]:
        """os.scandir of a directory. In the emulated jail the directory is opened inside the root and the entries
        are relative to it: `entry.stat(follow_symlinks=False)`, `entry.is_symlink()` and
        `entry.is_dir(follow_symlinks=False)` are safe and valid inside this block only, `entry.path` is the bare
        name; a link is followed with `FS.stat` of the directory's real path joined with `entry.name`, never with
        `entry.stat()` or `entry.is_dir()` (the kernel would follow it outside the root)."""
        if self._direct:
            with os.scandir(real) as it:
                yield it
            return
        fd = self.open(real, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as it:
                yield it
        finally:
            os.close(fd)

    def mkdir(self, real: str, mode: int = 0o777) -> None:
        with self.parent(real) as (fd, name):
            os.mkdir(name, mode, dir_fd=fd)

    def rmdir(self, real: str) -> None:
        with self.parent(real) as (fd, name):
            os.rmdir(name, dir_fd=fd)

    def unlink(self, real: str) -> None:
        """Remove a file; a symbolic link is removed itself."""
        with self.parent(real) as (fd, name):
            os.unlink(name, dir_fd=fd)

    def rename(self, src: str, dst: str) -> None:
        """rename(2) of two real paths: a final link is moved (or replaced) itself, never followed."""
        with self.parent(src) as (src_fd, src_name), self.parent(dst) as (dst_fd, dst_name):
            os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        if self.changed is not None:            # a directory moved: what was and is below both names changed
            self.changed(src, below=True)
            self.changed(dst, below=True)

    def link(self, src: str, dst: str) -> None:
        """link(2) of two real paths (SFTP's hardlink@openssh.com): a final link at `src` is linked itself."""
        with self.parent(src) as (src_fd, src_name), self.parent(dst) as (dst_fd, dst_name):
            os.link(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)

    def symlink(self, target: str, real: str) -> None:
        """Make `real` a symbolic link holding `target` (the text is stored, not resolved)."""
        with self.parent(real) as (fd, name):
            os.symlink(target, name, dir_fd=fd)

    def readlink(self, real: str) -> str:
        if self._direct:
            return os.readlink(real)
        with self.parent(real, change=False) as (fd, name):
            return os.readlink(name, dir_fd=fd)

    # -- extended attributes (SFTP's xattr@proftpd.org): of the final component itself (a final link is not
    # followed, as ProFTPD's lgetxattr...), or of the file open as `fd` (`real` its path) -------------------------
    @contextlib.contextmanager
    def _xattr_at(self, real: str, fd: int | None, change: bool) -> Iterator[tuple[str | int, bool]]:
        """(what the os.*xattr calls take, their follow_symlinks): the descriptor; the real path where the kernel
        confines it; else the final name under its parent opened inside the root, reached through /proc/self/fd
        (the *xattr calls take no dir_fd, and refuse an O_PATH descriptor of the file itself)."""
        if fd is not None or self._direct:
            if change and self.guarded:
                self._guard(real)
            yield (fd, True) if fd is not None else (real, False)
            if change and self.changed is not None:
                self.changed(real)
            return
        with self.parent(real, change) as (dir_fd, name):
            yield f"/proc/self/fd/{dir_fd}/{name}", False

    def listxattr(self, real: str, fd: int | None = None, follow: bool = False) -> list[str]:
        """The names; `follow`: those of what a final link leads to (inside the root)."""
        if follow and fd is None:
            real = self.realpath(real)
        with self._xattr_at(real, fd, False) as (where, follow):
            return os.listxattr(where, follow_symlinks=follow)

    def getxattr(self, real: str, name: str, fd: int | None = None) -> bytes:
        with self._xattr_at(real, fd, False) as (where, follow):
            return os.getxattr(where, name, follow_symlinks=follow)

    def setxattr(self, real: str, name: str, value: bytes, flags: int = 0, fd: int | None = None) -> None:
        """`flags`: os.XATTR_CREATE (fail if it exists), os.XATTR_REPLACE (fail unless it does)."""
        with self._xattr_at(real, fd, True) as (where, follow):
            os.setxattr(where, name, value, flags, follow_symlinks=follow)

    def removexattr(self, real: str, name: str, fd: int | None = None) -> None:
        with self._xattr_at(real, fd, True) as (where, follow):
            os.removexattr(where, name, follow_symlinks=follow)

    def create_unique(self, dir_real: str, prefix: str, mode: int = 0o666) -> tuple[int, str]:
        """STOU: a new file of a random name (`prefix` + 8 characters) in a directory, created O_EXCL (never
        through a link) relative to the directory opened inside the root. Returns (fd open for writing, its real
        path). `mode` is masked by the process umask."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        if self.guarded:
            self._guard(posixpath.join(dir_real, prefix or "x"))
        fd = self.open(dir_real, os.O_PATH | os.O_DIRECTORY)
        try:
            for _ in range(UNIQUE_TRIES):
                name = prefix + "".join(random.choices(UNIQUE_CHARS, k=8))
                try:
                    created = os.open(name, flags, mode, dir_fd=fd), posixpath.join(dir_real, name)
                except FileExistsError:
                    continue
                if self.changed is not None:
                    self.changed(created[1], True)
                return created
        finally:
            os.close(fd)
        raise FileExistsError(errno.EEXIST, "No usable temporary file name found", dir_real)

    def chown(self, real: str, uid: int, gid: int) -> None:
        """lchown: a final symbolic link is changed itself."""
        with self.parent(real) as (fd, name):
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)

    def utime(self, real: str, times: tuple[float, float]) -> None:
        """Set (atime, mtime); a final symbolic link gets the times itself."""
        with self.parent(real) as (fd, name):
            os.utime(name, times, dir_fd=fd, follow_symlinks=False)

    def chmod(self, real: str, mode: int) -> None:
        """chmod of the final component, never through a final symbolic link (`resolve` has followed the links
        the client named; one that appears later gets EOPNOTSUPP). fchmodat2 (Linux 6.6) does it in one call;
        older kernels get the final component opened O_PATH|O_NOFOLLOW and changed through /proc/self/fd."""
        with self.parent(real) as (fd, name):
            res = _libc.syscall(ctypes.c_long(SYS_FCHMODAT2), ctypes.c_long(fd), os.fsencode(name),
                                ctypes.c_long(mode), ctypes.c_long(AT_SYMLINK_NOFOLLOW))
            err = ctypes.get_errno()
            if res == 0:
                return
            if err != errno.ENOSYS:
                raise OSError(err, os.strerror(err), real)
            if self._kernel_chroot:
                os.chmod(name, mode, dir_fd=fd)         # the kernel confines a link; /proc is outside the chroot
                return
            target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            try:
                if stat.S_ISLNK(os.fstat(target).st_mode):
                    raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), real)
                os.chmod(f"/proc/self/fd/{target}", mode)
            finally:
                os.close(target)

    def remove_tree(self, real: str, max_depth: int) -> None:
        """Remove a directory and everything below it. Each level is opened O_NOFOLLOW relative to the one above,
        so links inside are removed as links and a directory swapped for a link meanwhile stops the removal (ELOOP);
        a level deeper than `max_depth` is not opened (ELOOP), so it and the directories above it stay."""
        with self.parent(real) as (fd, name):
            _remove_tree_at(fd, name, 0, max_depth)
        if self.changed is not None:
            self.changed(real, below=True)

    def copy(self, src: str, dst: str) -> None:
        """Copy a regular file (its data, mode and times) or a symbolic link (its text) to `dst`, both opened
        inside the root and never through a final link: rename's fallback across mount points. Other kinds:
        EPERM."""
        st = self.lstat(src)
        if stat.S_ISLNK(st.st_mode):
            self.symlink(self.readlink(src), dst)
            return
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EPERM, os.strerror(errno.EPERM), src)
        nofollow = os.O_NOFOLLOW | os.O_NONBLOCK
        src_fd = self.open(src, os.O_RDONLY | nofollow)
        try:
            dst_fd = self.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | nofollow, stat.S_IMODE(st.st_mode))
            try:
                while os.sendfile(dst_fd, src_fd, None, 1 << 20):
                    pass
                os.chmod(dst_fd, stat.S_IMODE(st.st_mode))
                os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)

    def chdir(self, arg: str, tilde: bool = False) -> VPath:
        path = self.resolve(arg, tilde=tilde)
        st = self.stat(path.real)
        if not stat.S_ISDIR(st.st_mode):
            raise FsError(arg, errno.ENOTDIR)
        if not self.access(path.real, os.X_OK):
            raise FsError(arg, errno.EACCES)
        self.cwd = path.virtual
        return path


def mode_bits_allow(st: os.stat_result, mode: int) -> bool:
    """ProFTPD's own access check (without mod_facl) for this process's effective ids: root may read and write
    anything; otherwise the owner's, the group's (primary or supplementary) and the others' bits that apply are
    pooled, so an owner without a bit the others have still gets it (unlike access(2))."""
    uid = os.geteuid()
    if uid == 0 and mode != os.X_OK:
        return True
    mask = 0o007
    if st.st_uid == uid:
        mask |= 0o700
    if st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        mask |= 0o070
    allowed = mask & st.st_mode
    return all(not mode & bit or allowed & (0o444 if bit == os.R_OK else 0o222 if bit == os.W_OK else 0o111)
               for bit in (os.R_OK, os.W_OK, os.X_OK))


def _access_fd(fd: int, mode: int) -> bool:
    """access(2) of an open descriptor: faccessat2 with AT_EMPTY_PATH, or its /proc/self/fd link on older
    kernels (the link leads to the open file itself, wherever it is)."""
    res = _libc.syscall(ctypes.c_long(SYS_FACCESSAT2), ctypes.c_long(fd), b"", ctypes.c_long(mode),
                        ctypes.c_long(AT_EMPTY_PATH | AT_EACCESS))
    if res == 0:
        return True
    if ctypes.get_errno() not in (errno.ENOSYS, errno.EPERM):
        return False
    return os.access(f"/proc/self/fd/{fd}", mode, effective_ids=os.access in os.supports_effective_ids)


def _remove_tree_at(parent_fd: int, name: str, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    try:
        with os.scandir(fd) as entries:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for child, is_dir in children:
            if is_dir:
                _remove_tree_at(fd, child, depth + 1, max_depth)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)
