"""mod_sftp's legacy scp: the `exec` request `scp -t` (the client uploads) and `scp -f` (it downloads), with
`-r` (directory trees), `-p` (times and modes kept), `-d` (the target must be a directory) and `-v` (ignored), the
protocol OpenSSH's `scp -O` speaks (the rcp protocol: `C`, `D`, `E`, `T` lines, answered by a NUL byte, a
`\\x01` warning line or a `\\x02` fatal line).

Every file goes through what SFTP's OPEN uses (sftp_fxp.start_transfer/release): an upload is STOR, a download
RETR, with their `<Limit>` checks, AllowOverwrite, HiddenStores, Umask, MaxStoreFileSize and TransferLog lines; a
directory an upload creates is mod_core's MKD (`<Limit MKD>`). A name in a `C` or `D` line is one path component:
one with `/`, `.` or `..` is refused with a `\\x01` line, as is a line that does not parse (`\\x02`, the end).
SFTPOptions IgnoreSCPUploadPerms (files get 0666 and directories 0777 before the Umask, not the client's modes)
and IgnoreSCPUploadTimes (a `T` line is read and not applied) are ProFTPD's.
Wildcards in an `scp -f` path are the server's to expand, as ProFTPD's (`_expand`: inside the root, through fs.py).

The work is a generator (`_run`) the channel drives one step at a time: it yields False when it needs more input
from the client, True when it did something (sent a chunk of a file: the channel gives it no more steps while that
chunk waits for window)."""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shlex
import stat
import time
from typing import TYPE_CHECKING, Iterator

from .. import listing, transfer
from ..dispatch import DIRS, Request
from ..fs import FsError
from ..net.ssh.channel import Channel
from . import access
from .ls import MAX_GLOB_MATCHES, expand_glob
from .sftp_fxp import F_CREAT, F_TRUNC, F_WRITE, Handle, Refused, release, start_transfer
from .sftp_state import SftpState
from .xfer import size_limit_for

if TYPE_CHECKING:
    from ..session import Session

MAX_LINE = 8192                 # a C/D/T line longer than this ends the transfer
MAX_DEPTH = 64                  # directory levels an scp -r goes down (up or down)
CHUNK = 32768
MAX_SIZE = (1 << 63) - 1
_C = re.compile(rb"([CD])([0-7]{4}) ([0-9]{1,19}) ([^\n]*)\Z")
_T = re.compile(rb"T([0-9]{1,19}) ([0-9]{1,9}) ([0-9]{1,19}) ([0-9]{1,9})\Z")


class Fatal(Exception):
    """The transfer ends: a `\\x02` line, exit status 1."""


class _Eof(Exception):
    """The client closed its side while the protocol wanted more."""


def parse_command(command: str) -> tuple[str, set[str], list[str]] | None:
    """`scp [-r] [-p] [-d] [-v] -t|-f [--] path...` as (mode, flags, paths); None: not an scp command."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words or posixpath.basename(words[0]) != "scp":
        return None
    mode, flags, paths = "", set(), []
    i = 1
    while i < len(words) and words[i].startswith("-") and words[i] != "--":
        for ch in words[i][1:]:
            if ch in "tf":
                if mode:
                    return None
                mode = ch
            elif ch in "rpdv":
                flags.add(ch)
            else:
                return None
        i += 1
    if i < len(words) and words[i] == "--":
        i += 1
    paths = words[i:]
    if not mode or not paths or (mode == "t" and len(paths) != 1):
        return None
    return mode, flags, paths


def open_command(session: "Session", command: str, chan: Channel):
    """The exec request's program: scp when the command is one, else None (refused)."""
    parsed = parse_command(command)
    if parsed is None:
        return None
    allowed = session.server.get("Protocols")
    if allowed is not None and "scp" not in {p.lower() for p in allowed}:
        session.state.get(SftpState).log.write("scp protocol denied by Protocols config")
        return None
    return Scp(session, chan, *parsed)


def _bad_name(name: bytes) -> bool:
    return not name or name in (b".", b"..") or b"/" in name or b"\0" in name


class Scp:
    """One channel's scp."""

    def __init__(self, session: "Session", chan: Channel, mode: str, flags: set[str], paths: list[str]):
        self.session, self.chan = session, chan
        self.mode, self.flags, self.paths = mode, flags, paths
        self.buf = bytearray()
        self.got_eof = False
        self.errors = 0
        self.handle: Handle | None = None
        self.log = session.state.get(SftpState).log
        self.opts = session.server.get("SFTPOptions")
        self.gen = self._run()
        self.done = False
        self.datastate = transfer.state(session)     # its `shaping`: mod_shaper's rates, None when not shaped
        self.resume: float | None = None
        session.set_protocol("scp")
        self.log.write(f"scp: {'receiving files (-t)' if mode == 't' else 'sending files (-f)'} "
                       f"{' '.join(paths)[:512]}")

    # -- the channel's side ----------------------------------------------------------------------------------------
    def data(self, chunk: bytes) -> None:
        if self.done:
            self.chan.consumed(len(chunk))
            return
        self.buf += chunk

    def eof(self) -> None:
        self.got_eof = True

    def close(self) -> None:
        if self.handle is not None:
            h, self.handle = self.handle, None
            release(self.session, h, aborted=True)
        self.gen.close()
        self.done = True

    def step(self) -> bool:
        if self.done:
            return False
        self.resume = None
        try:
            return next(self.gen)
        except StopIteration:
            self._finish(1 if self.errors else 0)
        except Fatal as e:
            self._send(b"\x02scp: " + str(e).encode("utf-8", "surrogateescape") + b"\n")
            self.log.write(f"scp: {e}")
            self._finish(1)
        except _Eof:
            self.log.write("scp: client closed the channel before the transfer ended")
            self._finish(1)
        return False

    def _finish(self, status: int) -> None:
        self.done = True
        if self.handle is not None:
            h, self.handle = self.handle, None
            release(self.session, h, aborted=True)
        self.chan.consumed(len(self.buf))
        self.buf.clear()
        self.chan.finish(status)

    # -- input and output ------------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self.chan.write(data)

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.chan.consumed(len(out))
        return out

    def _line(self) -> Iterator[bool]:
        """Wait for a whole line (generator: its value is the line without its newline)."""
        while True:
            i = self.buf.find(b"\n", 0, MAX_LINE + 1)
            if i >= 0:
                line = self._take(i + 1)[:-1]
                return line
            if len(self.buf) > MAX_LINE:
                raise Fatal("protocol error: line too long")
            if self.got_eof:
                raise _Eof()
            yield False

    def _byte(self) -> Iterator[bool]:
        while not self.buf:
            if self.got_eof:
                raise _Eof()
            yield False
        return self._take(1)[0]

    def _ack(self) -> Iterator[bool]:
        """The client's answer to what we sent: True for NUL, False for a warning (logged), Fatal for `\\x02`."""
        b = yield from self._byte()
        if b == 0:
            return True
        text = yield from self._line()
        message = text.decode("utf-8", "replace")
        self.log.write(f"scp: client reported: {message}")
        if b == 1:
            return False
        raise Fatal(f"client error: {message}") if b == 2 else Fatal("protocol error: bad reply from client")

    def _warn(self, path: str, what: str) -> None:
        self.errors += 1
        self.log.write(f"scp: {path}: {what}")
        self._send(b"\x01" + f"{path}: {what}".encode("utf-8", "surrogateescape") + b"\n")   # ProFTPD's wording

    def _held(self, h: Handle) -> bool:
        """TransferRate (ProFTPD paces each scp file from its start): True, with `resume` set, while this file is
        ahead of its rate; its next chunk waits (an upload's stays unread: the client's window closes)."""
        if h.rate is None and self.datastate.shaping is None:
            return False
        wait = h.wait(self.session)
        if wait <= 0:
            return False
        self.resume = time.monotonic() + wait
        return True

    def _moving(self) -> None:
        self.session.reset_timer("noxfer")
        self.session.reset_timer("stalled")
        self.session.reset_timer("idle")

    def _run(self) -> Iterator[bool]:
        if self.mode == "t":
            yield from self._sink()
        else:
            yield from self._source()

    # -- scp -t: the client uploads --------------------------------------------------------------------------------
    def _is_dir(self, virtual: str) -> bool:
        try:
            return stat.S_ISDIR(self.session.fs.stat(self.session.fs.resolve(virtual).real).st_mode)
        except (OSError, FsError):
            return False

    def _sink(self) -> Iterator[bool]:
        target = self.paths[0]
        if "d" in self.flags and not self._is_dir(target):
            raise Fatal(f"{target}: {os.strerror(errno.ENOTDIR)}")
        self._send(b"\0")
        dirs: list[str] = []            # the directories a `D` line went into
        times: tuple[int, int] | None = None
        while True:
            while not self.buf and not self.got_eof:
                yield False
            if not self.buf:
                return                  # the client's EOF between records: done
            b = self._take(1)[0]
            if b in (1, 2):             # the client's own error about a file it could not send
                text = yield from self._line()
                self.log.write(f"scp: client reported: {text.decode('utf-8', 'replace')}")
                if b == 2:
                    self.errors += 1
                    return
                continue
            rest = yield from self._line()
            line = bytes((b,)) + rest
            if b == ord("E"):
                if line != b"E" or not dirs:
                    raise Fatal("protocol error: unexpected 'E' line")
                finished = dirs.pop()
                times = None
                self._send(b"\0")
                self.log.write(f"scp: directory '{finished}' done")
                continue
            if b == ord("T"):
                m = _T.match(line)
                if m is None:
                    raise Fatal("protocol error: mtime.sec not delimited" if b" " not in line
                                else "protocol error: bad 'T' line")
                times = (int(m.group(3)), int(m.group(1)))      # atime, mtime
                self._send(b"\0")
                continue
            m = _C.match(line)
            if m is None:
                raise Fatal("protocol error: " + ("bad 'C' or 'D' line" if b in b"CD" else "expected control record"))
            kind, mode, size, raw_name = m.group(1), int(m.group(2), 8), int(m.group(3)), m.group(4)
            if size > MAX_SIZE:
                raise Fatal("protocol error: size out of range")
            if _bad_name(raw_name):
                raise Fatal(f"error: unexpected filename: {raw_name.decode('utf-8', 'replace')[:256]}")
            name = raw_name.decode("utf-8", "surrogateescape")
            base = dirs[-1] if dirs else target
            path = posixpath.join(base, name) if dirs or self._is_dir(target) else target
            if kind == b"D":
                if "r" not in self.flags:
                    raise Fatal("received directory without -r")
                if len(dirs) >= MAX_DEPTH:
                    raise Fatal(f"{path}: directories nested too deep")
                if not (yield from self._mkdir(path, mode, times)):
                    return              # ProFTPD ends the transfer at a directory it cannot make (so does scp)
                dirs.append(path)
                times = None
                self._send(b"\0")
                continue
            yield from self._receive(path, mode, size, times)
            times = None

    def _mkdir(self, path: str, mode: int, times: tuple[int, int] | None) -> Iterator[bool]:
        session = self.session
        if not self._is_dir(path):
            reply = session.dispatcher.dispatch(session, Request("MKD", path, f"MKD {path}"))
            if reply is None or reply.code >= 400:
                text = reply.text if reply is not None else "Failure"
                self._warn(path, text.rsplit(": ", 1)[-1].rstrip(".") if ": " in text else text)
                return False
            if "IgnoreSCPUploadPerms" not in self.opts and mode & 0o7777 != 0o777:
                real = session.fs.resolve(path).real
                umask = session.conf("Umask", path=real)
                try:
                    session.fs.chmod(real, mode & 0o7777 & ~(umask[1] if umask[1] is not None else umask[0]))
                except (OSError, FsError) as e:
                    self.log.write(f"scp: cannot set the mode of '{path}': {os.strerror(e.errno or errno.EIO)}")
        if times is not None and "p" in self.flags and "IgnoreSCPUploadTimes" not in self.opts:
            self._utime(path, times)
        return True
        yield                           # a generator, for `yield from`

    def _utime(self, path: str, times: tuple[int, int]) -> None:
        try:
            self.session.fs.utime(self.session.fs.resolve(path).real, times)
        except (OSError, FsError) as e:
            self.log.write(f"scp: cannot set the times of '{path}': {os.strerror(e.errno or errno.EIO)}")

    def _receive(self, path: str, mode: int, size: int, times: tuple[int, int] | None) -> Iterator[bool]:
        perms = 0o666 if "IgnoreSCPUploadPerms" in self.opts else mode & 0o7777
        problem: str | None = None
        h: Handle | None = None
        try:
            limit = size_limit_for(self.session, "MaxStoreFileSize", self.session.fs.resolve(path).real)
            if limit is not None and size > limit:     # refused by the size announced, before anything is opened
                self.log.write(f"scp: '{path}' ({size} bytes) is larger than MaxStoreFileSize ({limit} bytes)")
                raise OSError(errno.EFBIG, "File too large")
            h = start_transfer(self.session, path, F_WRITE | F_CREAT | F_TRUNC, perms)
        except Refused:
            problem = os.strerror(errno.EACCES)
        except (OSError, FsError) as e:
            problem = os.strerror(getattr(e, "errno", None) or errno.EIO)
        except (ValueError, UnicodeError):
            problem = os.strerror(errno.EINVAL)
        if problem is not None:
            self._warn(path, problem)   # the client does not send this file
            return
        self.handle = h
        self._send(b"\0")
        left = size
        write_error: int | None = None
        while left:
            if not self.buf:
                if self.got_eof:
                    raise _Eof()
                yield False
                continue
            if self._held(h):
                yield False
                continue
            chunk = self._take(min(left, len(self.buf), CHUNK if h.rate is not None else left))   # paced: by chunks
            left -= len(chunk)
            self._moving()
            if write_error is None:
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(h.fd, view):]
                    h.bytes += len(chunk)
                except OSError as e:
                    write_error = e.errno or errno.EIO
        end = yield from self._byte()
        self.handle = None
        ok = write_error is None and end == 0
        if ok and times is not None and "p" in self.flags and "IgnoreSCPUploadTimes" not in self.opts:
            try:
                os.utime(h.fd, times)
            except OSError as e:
                self.log.write(f"scp: cannot set the times of '{path}': {os.strerror(e.errno or errno.EIO)}")
        renamed = release(self.session, h, aborted=not ok)
        if end != 0:
            rest = yield from self._line()
            self.log.write(f"scp: client reported: {rest.decode('utf-8', 'replace')}")
            self.errors += 1
            return
        if write_error is not None:
            self._warn(path, os.strerror(write_error))
        elif not renamed:
            self._warn(path, os.strerror(errno.EIO))
        else:
            self.log.write(f"scp: received '{path}' ({size} bytes)")
            self._send(b"\0")

    # -- scp -f: the client downloads ------------------------------------------------------------------------------
    def _source(self) -> Iterator[bool]:
        if not (yield from self._ack()):
            return
        for path in self.paths:
            for one in self._expand(path):
                yield from self._send_path(one, 0)

    def _expand(self, path: str) -> list[str]:
        """The paths a source with wildcards (`*`, `?`, `[...]`, `{a,b}`) stands for, as ProFTPD globs them
        (unless UseGlobbing is off): matched inside the session's root through fs.py (mod_ls's `expand_glob`), a
        wildcard never matching a leading dot; none matching is `No such file or directory`."""
        if not any(c in path for c in "{[*?") or not self.session.server.get("UseGlobbing"):
            return [path]
        found: list[str] = []
        try:
            for pattern in listing.expand_braces(path):
                found += expand_glob(self.session, pattern)
                if len(found) >= MAX_GLOB_MATCHES:     # one bound for all the brace patterns together
                    del found[MAX_GLOB_MATCHES:]
                    break
        except (ValueError, UnicodeError):      # a path the filesystem cannot take
            self._warn(path, os.strerror(errno.EINVAL))
            return []
        if not found:
            self._warn(path, os.strerror(errno.ENOENT))
        return found

    def _send_path(self, path: str, depth: int) -> Iterator[bool]:
        session = self.session
        try:
            vpath = session.fs.resolve(path)
            st = session.fs.stat(vpath.real)
        except (OSError, FsError) as e:
            self._warn(path, os.strerror(getattr(e, "errno", None) or errno.ENOENT))
            return
        except (ValueError, UnicodeError):
            self._warn(path, os.strerror(errno.EINVAL))
            return
        name = posixpath.basename(vpath.virtual.rstrip("/")) or "/"
        if stat.S_ISDIR(st.st_mode) and depth \
                and stat.S_ISLNK(session.fs.lstat(session.fs.resolve(path, follow_last=False).real).st_mode):
            self._warn(path, "not a regular file")     # a link to a directory inside a tree: never followed
            return
        if stat.S_ISDIR(st.st_mode):
            if "r" not in self.flags:
                self._warn(path, os.strerror(errno.EPERM))     # ProFTPD's answer to a directory without -r
                return
            yield from self._send_dir(path, vpath, st, name, depth)
            return
        if not stat.S_ISREG(st.st_mode):
            self._warn(path, "not a regular file")
            return
        try:
            h = start_transfer(session, path, 0, 0)
        except Refused:
            self._warn(path, os.strerror(errno.EACCES))
            return
        except (OSError, FsError) as e:
            self._warn(path, os.strerror(getattr(e, "errno", None) or errno.EIO))
            return
        self.handle = h
        st = os.fstat(h.fd)
        if "p" in self.flags:
            self._send(f"T{int(st.st_mtime)} 0 {int(st.st_atime)} 0\n".encode())
            if not (yield from self._ack()):
                self.handle = None
                release(session, h, aborted=True)
                return
        self._send(f"C{st.st_mode & 0o7777:04o} {st.st_size} ".encode() + name.encode("utf-8", "surrogateescape")
                   + b"\n")
        if not (yield from self._ack()):
            self.handle = None
            release(session, h, aborted=True)
            return
        left, offset, short = st.st_size, 0, False
        while left:
            if self._held(h):
                yield False
                continue
            data = b""
            if not short:
                try:
                    data = os.pread(h.fd, min(CHUNK, left), offset)
                except OSError:
                    data = b""
                if not data:
                    short = True        # the file shrank: the promised size is sent, zeros, and a warning
            if short:
                data = bytes(min(CHUNK, left))
            else:
                h.bytes += len(data)
            left -= len(data)
            offset += len(data)
            self._send(data)
            self._moving()
            yield True
        self.handle = None
        release(session, h, aborted=short)
        if short:
            self._warn(path, "file changed size during the transfer")
        else:
            self._send(b"\0")
        yield from self._ack()

    def _send_dir(self, path: str, vpath, st: os.stat_result, name: str, depth: int) -> Iterator[bool]:
        session = self.session
        if depth >= MAX_DEPTH:
            self._warn(path, "directories nested too deep")
            return
        if not (access.limits_allow(session, "LIST", DIRS, vpath.real)
                or access.limits_allow(session, "NLST", DIRS, vpath.real)):
            self._warn(path, os.strerror(errno.EACCES))
            return
        try:
            with session.fs.scandir(vpath.real) as it:
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
        except (OSError, FsError) as e:
            self._warn(path, os.strerror(getattr(e, "errno", None) or errno.EIO))
            return
        if "p" in self.flags:
            self._send(f"T{int(st.st_mtime)} 0 {int(st.st_atime)} 0\n".encode())
            if not (yield from self._ack()):
                return
        self._send(f"D{st.st_mode & 0o7777:04o} 0 ".encode() + name.encode("utf-8", "surrogateescape") + b"\n")
        if not (yield from self._ack()):
            return
        base = path.rstrip("/") or "/"
        for entry, _ in entries:
            if access.hidden(session, vpath.real, entry):
                continue
            yield from self._send_path(posixpath.join(base, entry), depth + 1)
        self._send(b"E\n")
        yield from self._ack()
