"""The shared scoreboard: one fixed-size slot per session, read by ftpwho/ftpcount/ftptop.

Why a file of fixed records and not pickles or a socket: every process (master, sessions after chroot and
setuid, admin tools run by other users) can read or write it with plain pread/pwrite on an fd opened once,
and the layout below is the single declaration both sides use.  docs/scoreboard.md describes the layout
field by field and the locking protocol:

* ScoreboardMutex (``<path>.lck``): a *blocking* fcntl write lock (F_SETLKW), held only while a slot is
  claimed, released or scrubbed (a scan of the pid column plus one pwrite).  Never sleep-and-retry.
* A claim, release or scrub writes its slot with one pwrite under the slot's byte-range fcntl write lock.
* A session's updates of its own slot (every command) take no lock: the slot ends in a CRC-32 of its bytes, the
  session rewrites the whole slot in one copy (through a shared mapping of its page), and a reader re-reads a slot
  whose CRC does not match. So a command costs no system call here, and a reader holding its lock stalls no
  session's commands.
* Readers: one shared (F_RDLCK) lock over the whole file for one pread of all slots.

POSIX record locks belong to a process, so one Scoreboard object is used by one thread; a forked child may
keep using the fds it inherited (that is how a session that has chrooted still reaches the file).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import mmap
import os
import struct
import time
import zlib
from typing import Iterator

from . import filelock, trace
from .filelock import locked as _locked

DEFAULT_PATH = "/var/run/proftpy/proftpy.scoreboard"
DISABLED_VALUES = ("none", "off", "/dev/null")   # ScoreboardFile values that turn scoreboarding off
MAGIC = b"PFTPYSB\x00"
VERSION = 2                                       # bump whenever HEADER_FIELDS or SLOT_FIELDS change
DEFAULT_SLOTS = 32
FILE_MODE = 0o644
NONE_USER = "(none)"                              # user of a session that has not logged in yet
IDLE_CMD = "idle"                                 # cmd of a session waiting for the next command
DOWNLOAD_CMDS = frozenset({"RETR", "READ", "scp download"})
UPLOAD_CMDS = frozenset({"STOR", "STOU", "APPE", "WRITE", "scp upload"})

# ProFTPD's own scoreboard starts with 0xdeadbeef as a native unsigned long: recognise it to say so.
_PROFTPD_MAGICS = (struct.pack("<Q", 0xDEADBEEF), struct.pack("<I", 0xDEADBEEF))


class ScoreboardError(Exception):
    """A scoreboard that cannot be used; the message is one line meant for an administrator."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_


class ScoreboardFormatError(ScoreboardError):
    """Bad magic, a version this code does not read, or a truncated file."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One member of a binary record: name, struct code, and what it means (for docs/scoreboard.md)."""
    name: str
    fmt: str
    doc: str

    @property
    def is_text(self) -> bool:
        return self.fmt.endswith("s")

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)


HEADER_FIELDS = (
    Field("magic", "8s", 'b"PFTPYSB\\0": a proftpy scoreboard'),
    Field("version", "I", "layout version (VERSION); readers refuse any other"),
    Field("header_size", "I", "bytes before slot 0 (HEADER.size)"),
    Field("slot_size", "I", "bytes per slot (SLOT.size)"),
    Field("master_pid", "i", "standalone master pid; 0 when run from inetd"),
    Field("master_start", "q", "master start time, Unix seconds; 0 when run from inetd"),
    Field("slots", "I", "number of slots in the file (grows, never shrinks)"),
)

SLOT_FIELDS = (
    Field("pid", "i", "session pid; 0 = free slot"),
    Field("uid", "I", "effective uid of the session when it claimed the slot"),
    Field("gid", "I", "effective gid of the session when it claimed the slot"),
    Field("user", "32s", '"(none)" until login, then the user name'),
    Field("server_port", "i", "ServerPort of the vhost"),
    Field("server_addr", "80s", '"IP:port" the client connected to'),
    Field("server_label", "32s", "ServerName of the vhost (ftpwho/ftpcount/ftptop -S match this)"),
    Field("client_addr", "46s", "remote IP address"),
    Field("client_name", "80s", "remote DNS name, or the IP when not resolved"),
    Field("class", "32s", "connection class name, or empty"),
    Field("protocol", "32s", '"ftp", "ftps", ...'),
    Field("cwd", "80s", "current directory after login"),
    Field("cmd", "65s", 'current command; "idle" while waiting'),
    Field("cmd_arg", "80s", "its argument (truncated)"),
    Field("begin_idle", "q", "Unix time the session became idle"),
    Field("begin_session", "q", "Unix time the session connected"),
    Field("xfer_size", "q", "expected size of a download, 0 if unknown"),
    Field("xfer_done", "q", "bytes of the file done so far (includes a REST offset)"),
    Field("xfer_len", "q", "bytes moved by this transfer (for the rate)"),
    Field("xfer_elapsed_ms", "Q", "milliseconds this transfer has run"),
    Field("crc", "I", "CRC-32 of the slot's bytes with this field zero; a reader re-reads a slot that does not match"),
)


def _layout(fields: tuple[Field, ...], pad_to: int) -> struct.Struct:
    """Little-endian, no implicit alignment; explicit zero padding up to a multiple of pad_to."""
    raw = "<" + " ".join(f.fmt for f in fields)
    pad = -struct.calcsize(raw) % pad_to
    return struct.Struct(raw + (f" {pad}x" if pad else ""))


HEADER = _layout(HEADER_FIELDS, 64)
SLOT = _layout(SLOT_FIELDS, 8)
_WRITABLE = frozenset(f.name for f in SLOT_FIELDS) - {"pid", "crc"}
_ZERO_SLOT = bytes(SLOT.size)
_FIELD_AT = {f.name: (sum(g.size for g in SLOT_FIELDS[:i]), struct.Struct("<" + f.fmt), f.size if f.is_text else 0)
             for i, f in enumerate(SLOT_FIELDS)}      # name -> (offset in the slot, its Struct, text size or 0)
_CRC_AT = _FIELD_AT["crc"][0]                        # the last field
_ENTRY_FIELDS = SLOT_FIELDS[:-1]                     # what a reader gets: everything but the crc
PACKED_KEEP = 256                                    # packed (field, value) pairs a Slot keeps
READ_TRIES = 20                                      # reads of a slot caught mid-update before taking it as is


def is_disabled(value: str) -> bool:
    """True for the ScoreboardFile values that switch scoreboarding off (none, off, /dev/null)."""
    return value.strip().lower() in DISABLED_VALUES


@functools.lru_cache(maxsize=256)
def encode_text(value: str, size: int) -> bytes:
    """UTF-8 bytes that fit a char[size] with its NUL, cut before a whole character, never inside one. Cached:
    a session writes the same few command names, arguments and "idle" over and over."""
    raw = value.replace("\0", "").encode("utf-8", "surrogateescape")
    limit = size - 1
    if len(raw) <= limit:
        return raw
    cut = limit
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:   # raw[cut] continues a character that began earlier
        cut -= 1
    return raw[:cut]


def decode_text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class Header:
    version: int
    master_pid: int
    master_start: int
    slots: int

    @property
    def standalone(self) -> bool:
        return self.master_pid != 0


@dataclasses.dataclass(frozen=True)
class Entry:
    """One used slot as read by a reader; field names are SLOT_FIELDS' names (checked at import)."""
    slot: int
    pid: int
    uid: int
    gid: int
    user: str
    server_port: int
    server_addr: str
    server_label: str
    client_addr: str
    client_name: str
    class_: str
    protocol: str
    cwd: str
    cmd: str
    cmd_arg: str
    begin_idle: int
    begin_session: int
    xfer_size: int
    xfer_done: int
    xfer_len: int
    xfer_elapsed_ms: int

    @property
    def authenticated(self) -> bool:
        return self.user != NONE_USER

    @property
    def idle(self) -> bool:
        return self.cmd == IDLE_CMD

    @property
    def downloading(self) -> bool:
        return self.cmd in DOWNLOAD_CMDS

    @property
    def uploading(self) -> bool:
        return self.cmd in UPLOAD_CMDS

    @classmethod
    def unpack(cls, slot: int, values: tuple) -> "Entry":
        return cls(slot, *(decode_text(v) if f.is_text else v for f, v in zip(_ENTRY_FIELDS, values)))


def _attr(name: str) -> str:
    """`class` is a keyword: the dataclass attribute is `class_`, the field and update() keyword `class`."""
    return "class_" if name == "class" else name


assert [f.name for f in dataclasses.fields(Entry)][1:] == [_attr(f.name) for f in _ENTRY_FIELDS]


def _crc(raw: bytes) -> int:
    """The CRC-32 of a slot's bytes with its crc field taken as zero."""
    return zlib.crc32(raw[:_CRC_AT] + bytes(4) + raw[_CRC_AT + 4:])


def sealed(raw: bytes) -> bytes:
    """A packed slot with its crc filled in."""
    return raw[:_CRC_AT] + _crc(raw).to_bytes(4, "little") + raw[_CRC_AT + 4:]


def intact(raw: bytes) -> bool:
    """Whether a slot read from the file is whole: not caught while its session was rewriting it."""
    return _crc(raw) == int.from_bytes(raw[_CRC_AT:_CRC_AT + 4], "little")


def _pack_value(size: int, v: object) -> object:
    """One slot member as struct packs it: the bytes of a text field of `size`, else the number."""
    if size:
        return encode_text("" if v is None else str(v), size)
    return 0 if v is None else int(v)


def _slot_members(values: dict[str, object]) -> list[object]:
    return [_pack_value(size, values.get(name)) for name, (_, _, size) in _FIELD_AT.items()]


def _first_values(pid: int, fields: dict) -> tuple[dict[str, object], bytes]:
    """A new session's slot: (values, bytes with the crc zero)."""
    if pid <= 0:
        raise ValueError(f"scoreboard claim needs a real pid, got {pid}")
    values: dict[str, object] = {"uid": os.geteuid(), "gid": os.getegid(), "user": NONE_USER,
                                 "begin_session": int(time.time())}
    values.update(_checked(fields))
    values["pid"] = pid
    return values, SLOT.pack(*_slot_members(values))


def _slot_offset(index: int) -> int:
    return HEADER.size + index * SLOT.size


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, owned by someone else
        return True
    return True


def _check_location(path: str, what: str) -> None:
    try:
        filelock.check_location(path, what)
    except filelock.BadLocation as e:
        raise ScoreboardError(str(e), e.errno) from None


def _open_file(path: str, flags: int, what: str) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as e:
        raise ScoreboardError(f"unable to open {what} {path}: {e.strerror}", e.errno) from None


class Scoreboard:
    """An open scoreboard file (and, unless read-only, its mutex). Create with create()/open()."""

    def __init__(self, path: str, mutex_path: str | None, fd: int, mutex_fd: int | None):
        self.path = path
        self.mutex_path = mutex_path
        self._fd = fd
        self._mutex_fd = mutex_fd

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str, mutex_path: str | None = None, *, master_pid: int,
               master_start: int | None = None, slots: int = DEFAULT_SLOTS) -> "Scoreboard":
        """Standalone master startup: delete any old file and write a fresh header and empty slots."""
        mutex_path = mutex_path or path + ".lck"
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            try:
                os.makedirs(parent, 0o755)
            except OSError as e:
                raise ScoreboardError(f"cannot create scoreboard directory {parent}: {e.strerror}",
                                      e.errno) from None
        _check_location(path, "scoreboard")
        _check_location(mutex_path, "scoreboard mutex")
        mutex_fd = _open_file(mutex_path, os.O_RDWR | os.O_CREAT, "scoreboard mutex")
        try:
            with _locked(mutex_fd, fcntl.LOCK_EX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                fd = _open_file(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, "scoreboard")
                os.fchmod(fd, FILE_MODE)
                start = int(time.time()) if master_start is None else master_start
                header = HEADER.pack(MAGIC, VERSION, HEADER.size, SLOT.size, master_pid, start, max(slots, 1))
                os.pwrite(fd, header, 0)
                os.ftruncate(fd, _slot_offset(max(slots, 1)))
        except BaseException:
            os.close(mutex_fd)
            raise
        return cls(path, mutex_path, fd, mutex_fd)

    @classmethod
    def open(cls, path: str, mutex_path: str | None = None, readonly: bool = False) -> "Scoreboard":
        """Open an existing scoreboard; readers (the tools) pass readonly=True and need no mutex."""
        _check_location(path, "scoreboard")
        fd = _open_file(path, os.O_RDONLY if readonly else os.O_RDWR, "scoreboard")
        mutex_fd = None
        try:
            sb = cls(path, None, fd, None)
            sb.header                                   # validates magic and version
            if not readonly:
                mutex_path = mutex_path or path + ".lck"
                _check_location(mutex_path, "scoreboard mutex")
                mutex_fd = _open_file(mutex_path, os.O_RDWR | os.O_CREAT, "scoreboard mutex")
                sb.mutex_path, sb._mutex_fd = mutex_path, mutex_fd
            return sb
        except BaseException:
            os.close(fd)
            if mutex_fd is not None:
                os.close(mutex_fd)
            raise

    @classmethod
    def open_or_create(cls, path: str, mutex_path: str | None = None, *, master_pid: int = 0,
                       slots: int = DEFAULT_SLOTS) -> "Scoreboard":
        """inetd mode: reuse a valid scoreboard, recreate a missing or incompatible one."""
        try:
            return cls.open(path, mutex_path)
        except ScoreboardFormatError:
            pass
        except ScoreboardError as e:
            if e.errno != errno.ENOENT:      # missing: create it; EACCES, a symlink... are fatal
                raise
        return cls.create(path, mutex_path, master_pid=master_pid, master_start=0 if not master_pid else None,
                          slots=slots)

    def remove(self) -> None:
        """Standalone master shutdown: unlink the file and its mutex, but only if the paths still name the files
        this object has open (a newer master may have recreated them), then close."""
        for path, fd in ((self.path, self._fd), (self.mutex_path, self._mutex_fd)):
            if fd is None or not path:
                continue
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(fd), os.lstat(path)):
                    os.unlink(path)
        self.close()

    def close(self) -> None:
        for fd in (self._fd, self._mutex_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._mutex_fd = None

    def __enter__(self) -> "Scoreboard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------------
    @property
    def header(self) -> Header:
        return self._parse_header(os.pread(self._fd, HEADER.size, 0))

    def _parse_header(self, raw: bytes) -> Header:
        if len(raw) < HEADER.size:
            raise ScoreboardFormatError(f"scoreboard {self.path} is truncated or empty (corrupted?)")
        magic, version, header_size, slot_size, pid, start, slots = HEADER.unpack(raw)
        if magic != MAGIC:
            if raw[:8] in _PROFTPD_MAGICS or raw[:4] in _PROFTPD_MAGICS:
                raise ScoreboardFormatError(f"{self.path} is a ProFTPD scoreboard, not a proftpy one")
            raise ScoreboardFormatError(f"scoreboard {self.path} has a bad magic number (corrupted?)")
        if version < VERSION:
            raise ScoreboardFormatError(f"scoreboard {self.path} version {version} is too old "
                                        f"(this proftpy reads version {VERSION}; restart the server)")
        if version > VERSION:
            raise ScoreboardFormatError(f"scoreboard {self.path} version {version} is too new "
                                        f"(this proftpy reads version {VERSION}; upgrade the tools)")
        if (header_size, slot_size) != (HEADER.size, SLOT.size):
            raise ScoreboardFormatError(f"scoreboard {self.path} has an unexpected record size (corrupted?)")
        return Header(version, pid, start, slots)

    def _read_all(self) -> tuple[Header, bytes]:
        """Header and every slot's bytes, in one pread under a whole-file shared lock: never torn."""
        with _locked(self._fd, fcntl.LOCK_SH):
            header = self.header
            data = os.pread(self._fd, header.slots * SLOT.size, HEADER.size)
        return header, data[: len(data) - len(data) % SLOT.size]

    def entries(self) -> list[Entry]:
        """Every used slot, in slot order. A slot caught while its session rewrote it is read again (a copy of a
        few hundred bytes: the next read finds it whole)."""
        for _ in range(READ_TRIES):
            _, data = self._read_all()
            used = [(i, values) for i, values in enumerate(SLOT.iter_unpack(data)) if values[0] != 0]
            if all(intact(data[i * SLOT.size:(i + 1) * SLOT.size]) for i, _ in used):
                break
            time.sleep(0.001)
        return [Entry.unpack(i, values[:-1]) for i, values in used]

    # -- writing (claim / release / scrub hold the mutex) ---------------------------------------------
    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        if self._mutex_fd is None:
            raise ScoreboardError(f"scoreboard {self.path} was opened read-only")
        with _locked(self._mutex_fd, fcntl.LOCK_EX):
            yield

    def _pids(self) -> tuple[int, list[int]]:
        """(slot count, pid of every slot); call with the mutex held, so pids cannot change under us."""
        header = self.header
        data = os.pread(self._fd, header.slots * SLOT.size, HEADER.size)
        count = len(data) // SLOT.size
        pids = [int.from_bytes(data[i * SLOT.size:i * SLOT.size + 4], "little", signed=True)
                for i in range(count)]
        return header.slots, pids

    def _write_slot(self, index: int, raw: bytes) -> None:
        """Claim, release, scrub: one pwrite under the slot's lock (readers' whole-file lock excludes it)."""
        off = _slot_offset(index)
        fcntl.lockf(self._fd, fcntl.LOCK_EX, SLOT.size, off, os.SEEK_SET)     # as _locked, without its frames
        try:
            self._pwrite(index, raw)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, SLOT.size, off, os.SEEK_SET)

    def _pwrite(self, index: int, raw: bytes) -> None:
        if os.pwrite(self._fd, raw, _slot_offset(index)) != len(raw):
            raise ScoreboardError(f"short write to scoreboard {self.path} slot {index}")

    def _slot_view(self, index: int) -> tuple[mmap.mmap, int] | None:
        """A shared mapping of the page(s) holding a slot and the slot's place in it, for its session's updates:
        a store into the page cache instead of a pwrite (on a disk file system each pwrite also updates the
        file's times). None where the file cannot be mapped: the updates are then pwritten. (The mapping holds a
        duplicate of the fd, and closing any fd of the file drops this process's record locks: `Slot.release`
        closes it before it locks.)"""
        off = _slot_offset(index)
        start = off - off % mmap.ALLOCATIONGRANULARITY
        try:
            return mmap.mmap(self._fd, off + SLOT.size - start, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                             offset=start), off - start
        except (OSError, ValueError):
            return None

    def _grow(self, slots: int) -> int:
        """Append empty slots (zeros from ftruncate), then publish the new count; returns the first new one."""
        new = slots + max(16, slots // 2)
        os.ftruncate(self._fd, _slot_offset(new))
        field_off = struct.calcsize("<" + "".join(f.fmt for f in HEADER_FIELDS[:-1]))
        with _locked(self._fd, fcntl.LOCK_EX, 0, HEADER.size):
            os.pwrite(self._fd, struct.pack("<I", new), field_off)
        return slots

    def claim(self, pid: int, **fields) -> "Slot":
        """Take the first free slot (or grow the file) for a new session and write its first values."""
        values, raw = _first_values(pid, fields)
        with self._mutex():
            slots, pids = self._pids()
            index = next((i for i, p in enumerate(pids) if p == 0), None)
            if index is None:
                index = self._grow(slots)
            self._write_slot(index, sealed(raw))
        if trace.on: trace.msg("scoreboard", 3, "added scoreboard entry for pid %d in slot %d", pid, index)
        return Slot(self, index, values, written=raw)

    def rehearse_claim(self, pid: int, **fields) -> None:
        """What `claim` computes and reads, without the mutex and without writing: a pre-forked idle child runs it
        before its client comes (idle_child.warm_up), so that the real claim finds those pages copied already
        (its page faults were a third of a pooled session's start: docs/performance.md)."""
        sealed(_first_values(pid, fields)[1])
        self._pids()

    def _release(self, index: int, pid: int) -> bool:
        with self._mutex():
            current = int.from_bytes(os.pread(self._fd, 4, _slot_offset(index)), "little", signed=True)
            if current != pid:
                return False
            self._write_slot(index, _ZERO_SLOT)
        if trace.on: trace.msg("scoreboard", 3, "deleted scoreboard entry of pid %d (slot %d)", pid, index)
        return True

    def scrub(self) -> int:
        """Zero every slot whose process is gone (master timer, SIGHUP, ftpscrub); returns how many."""
        with self._mutex():
            _, pids = self._pids()
            dead = [i for i, pid in enumerate(pids) if pid != 0 and not _alive(pid)]
            for i in dead:
                self._write_slot(i, _ZERO_SLOT)
        if trace.on and dead: trace.msg("scoreboard", 4, "scrubbed %d slot(s) of dead sessions", len(dead))
        return len(dead)


def _checked(fields: dict) -> dict:
    """Field names as keywords; `class_` is accepted for `class` (a Python keyword). pid is not writable."""
    if "class_" in fields:
        fields = {("class" if k == "class_" else k): v for k, v in fields.items()}
    unknown = fields.keys() - _WRITABLE
    if unknown:
        raise TypeError(f"not a writable scoreboard field: {', '.join(sorted(unknown))}")
    return fields


@dataclasses.dataclass
class TransferThrottle:
    """How often update_transfer() really writes: after at least every_buffers calls AND min_interval_ms."""
    every_buffers: int = 10          # PR_TUNABLE_XFER_SCOREBOARD_UPDATES
    min_interval_ms: int = 250


class Slot:
    """A session's own slot: only this process writes it, so it keeps the values and rewrites the slot whole."""

    def __init__(self, scoreboard: Scoreboard, index: int, values: dict[str, object],
                 throttle: TransferThrottle | None = None, written: bytes | None = None):
        self.scoreboard = scoreboard
        self.index = index
        self.pid = int(values["pid"])
        self._values = dict(values)
        self._buf = bytearray(written if written is not None else SLOT.pack(*_slot_members(self._values)))
                                                        # the slot as this process last wrote it, crc zero
        self._view = scoreboard._slot_view(index)       # where its updates go (None: pwrite)
        self._packed: dict[tuple[str, object], tuple[int, int, bytes]] = {}   # (field, value) -> where, bytes:
                                                        # a session writes the same few commands and zeros again
        self._released = False
        self.throttle = throttle or TransferThrottle()
        self._xfer_calls = 0
        self._xfer_last = 0.0

    @property
    def values(self) -> dict[str, object]:
        return dict(self._values)

    def update(self, **fields) -> None:
        """Change some fields; the whole slot is rewritten in one copy, without a lock (`_publish`)."""
        self._set(_checked(fields))

    def _set(self, fields: dict[str, object]) -> None:
        """update() for field names known to be writable. Only this process writes its slot, so when the bytes
        are those it wrote last (a listing's transfer begins and ends with the zeros already there) the file
        already holds them and nothing is written."""
        if self._released:
            raise ScoreboardError(f"scoreboard slot {self.index} was already released")
        self._values.update(fields)
        buf, changed, packed = self._buf, False, self._packed
        for key in fields.items():
            known = packed.get(key)
            if known is None:
                name, value = key
                at, field, size = _FIELD_AT[name]
                if len(packed) >= PACKED_KEEP:      # times and byte counts: a few hundred are plenty
                    packed.clear()
                known = packed[key] = (at, at + field.size, field.pack(_pack_value(size, value)))
            at, end, new = known
            if buf[at:end] != new:
                buf[at:end] = new
                changed = True
        if changed:
            self._publish(buf)

    def _publish(self, raw: bytearray) -> None:
        """The whole slot in one copy and no lock: no one else writes a live slot, and a reader that catches the
        copy half done sees a crc that does not match and reads again. `raw`'s crc field is zero (`_buf`), so
        its CRC-32 is the slot's (`sealed` without copying it twice)."""
        data = raw[:_CRC_AT] + zlib.crc32(raw).to_bytes(4, "little") + raw[_CRC_AT + 4:]
        if self._view is None:
            self.scoreboard._pwrite(self.index, data)
        else:
            mapped, at = self._view
            mapped[at:at + SLOT.size] = data

    def command(self, cmd: str, arg: str = "") -> None:
        """A command starts (ProFTPD sets CMD/CMD_ARG for each command after login)."""
        self._set({"cmd": cmd, "cmd_arg": arg})

    def idle(self, now: float | None = None) -> None:
        """Waiting for the next command: cmd "idle", empty arg, begin_idle = now."""
        self._set({"cmd": IDLE_CMD, "cmd_arg": "", "begin_idle": int(time.time() if now is None else now)})

    def begin_transfer(self, size: int = 0, done: int = 0) -> None:
        """A data transfer starts: expected size (0 if unknown) and the REST offset already done."""
        self._xfer_calls, self._xfer_last = 0, time.monotonic()
        self._set({"xfer_size": size, "xfer_done": done, "xfer_len": 0, "xfer_elapsed_ms": 0})

    def update_transfer(self, done: int, elapsed_ms: int, length: int | None = None, force: bool = False) -> bool:
        """Progress of a transfer, rate-limited by self.throttle; force=True for the final numbers.

        Returns whether the slot was written.  Cheap when skipped: a counter and a monotonic clock read.
        """
        self._xfer_calls += 1
        now = time.monotonic()
        if not force and (self._xfer_calls < self.throttle.every_buffers
                          or (now - self._xfer_last) * 1000 < self.throttle.min_interval_ms):
            return False
        self._xfer_calls, self._xfer_last = 0, now
        self.update(xfer_done=done, xfer_len=done if length is None else length, xfer_elapsed_ms=elapsed_ms)
        return True

    def end_transfer(self) -> None:
        self._set({"xfer_size": 0, "xfer_done": 0, "xfer_len": 0, "xfer_elapsed_ms": 0})

    def release(self) -> None:
        """Session end: zero the slot (only if it is still ours). Safe to call twice."""
        if not self._released:
            self._released = True
            if self._view is not None:
                self._view[0].close()
                self._view = None
            self.scoreboard._release(self.index, self.pid)


# -- ProFTPD's time formatters (ftpwho, ftptop, ftpdctl status) ------------------------------------------------
def format_age(since: int, now: float) -> str:
    """ftpwho's show_time(): "-" when unset, "%lum%lus" below an hour, else "%luh%lum"."""
    if not since:
        return "-"
    secs = max(0, int(now) - since)
    if secs < 3600:
        return f"{secs // 60}m{secs % 60}s"
    return f"{secs // 3600}h{secs % 3600 // 60}m"


def format_uptime(since: int, now: float) -> str:
    """"N day(s), " then " H hr(s) MM min" or "M min"."""
    secs = max(0, int(now) - since)
    days, hours, minutes = secs // 86400, secs // 3600 % 24, secs // 60 % 60
    out = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    if hours:
        return out + f"{hours:2d} hr{'s' if hours != 1 else ''} {minutes:02d} min"
    return out + f"{minutes} min"
