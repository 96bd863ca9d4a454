"""mod_digest: the checksum of a file on the server, without downloading it. HASH (draft-bryan-ftpext-hash, with
OPTS HASH to pick the algorithm), the older XCRC, MD5, XMD5, XSHA, XSHA1, XSHA256 and XSHA512 (the X ones take an
optional `start end` byte range), and the directives DigestEngine, DigestAlgorithms, DigestDefaultAlgorithm,
DigestMaxSize, DigestCache, DigestOptions and DigestEnable (per directory).

As in ProFTPD 1.3.8: `<Limit>` knows the commands by their names (group READ) and is asked at the file itself
(resolved through `session.fs`, symbolic links followed inside the session root); only regular files are hashed;
/dev/null and its kind are refused; HASH hashes the whole file (a RANG range does not apply), the X commands answer
in upper-case hex, HASH in lower-case with the algorithm's IANA name. A file is read in 1 MiB chunks (never whole),
and a long computation adds ProFTPD's `Computing...` lines. The digests are kept per session (DigestCache: the
same size bound and expiry, refusing further commands when full); ProFTPD's opportunistic digests of uploads and
downloads are kept as ProFTPD keeps them (they count towards DigestCache's size) but made only when a digest
command first asks for one. A digest command's notes carry `mod_digest.algo` and `mod_digest.digest` for
`%{note:...}` in LogFormat (a transfer's do not).
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import posixpath
import re
import stat
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from ..config.lexer import quoted_word
from ..config.registry import DIR, FTPACCESS, SVG, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Options, bool_word, parse_bool, parse_nbytes
from .. import transfer
from ..dispatch import LOG_CMD, POST_CMD, PRE_CMD, READ, Command, Hook, Request
from ..module import Listener, Module
from ..reply import FtpError, Reply
from .access import limits_allow
from .tls_directives import parse_duration

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_digest.c"
CHUNK = 1 << 20                     # bytes read at a time
PROGRESS_READS = 40000              # ProFTPD adds a `Computing...` line every this many reads of st_blksize bytes
CACHE_SIZE, CACHE_MAX_AGE = 10000, 30
CACHE_SWEEP = 5                     # seconds between two sweeps of expired digests (ProFTPD's timer)
DENIED_TEXT = "{arg}: {error}"      # a <Limit> refusal, asked by the handler at the file: `<path>: <strerror>`
SPECIAL_FILES = ("/dev/full", "/dev/null", "/dev/random", "/dev/urandom", "/dev/zero")


class Algo(NamedTuple):
    key: str                        # as the directives spell it
    name: str                       # as the X commands' replies name it
    iana: str                       # as HASH, OPTS HASH and FEAT name it
    new: Callable[[], Any]          # a hashlib-like object: update(), hexdigest()


class Crc32:
    """CRC-32 (zlib's, PKZip's polynomial) with hashlib's interface."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


ALGOS = {a.key: a for a in (
    Algo("crc32", "CRC32", "CRC32", Crc32), Algo("md5", "MD5", "MD5", hashlib.md5),
    Algo("sha1", "SHA1", "SHA-1", hashlib.sha1), Algo("sha256", "SHA256", "SHA-256", hashlib.sha256),
    Algo("sha512", "SHA512", "SHA-512", hashlib.sha512))}
HASH_PREFERENCE = ("sha1", "sha256", "sha512", "md5", "crc32")   # HASH's default: the first one enabled


# -- directives ----------------------------------------------------------------------------------------------------
def _algo(word: str) -> str:
    if word.lower() not in ALGOS:
        raise ValueError(f"unknown/unsupported DigestAlgorithm: {word}")
    return word.lower()


def parse_algorithms(args: list[str]) -> tuple[str, ...]:
    """`all`, or algorithm names: the enabled ones in ALGOS order (ProFTPD ignores what follows `all`)."""
    if not args:
        raise ValueError("wrong number of parameters")
    if args[0].lower() == "all":
        return tuple(ALGOS)
    chosen = {_algo(word) for word in args}
    return tuple(key for key in ALGOS if key in chosen)


def parse_default_algorithm(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    return _algo(args[0])


class CacheSettings(NamedTuple):
    on: bool
    size: int = CACHE_SIZE
    max_age: int = CACHE_MAX_AGE


def parse_cache(args: list[str]) -> CacheSettings:
    """`on|off`, or `size N` and/or `maxAge secs` (caching on)."""
    if not 1 <= len(args) <= 4:
        raise ValueError("wrong number of parameters")
    if len(args) == 1:
        try:
            return CacheSettings(parse_bool(args[0]))
        except ValueError:
            raise ValueError("expected Boolean parameter") from None
    size, max_age = CACHE_SIZE, CACHE_MAX_AGE
    words = iter(args)
    for word in words:
        if word.lower() not in ("size", "maxage"):
            raise ValueError(f"unknown DigestCache parameter: {word}")
        value = next(words, None)
        if value is None:
            raise ValueError("wrong number of parameters")
        if word.lower() == "size":
            if not re.fullmatch(r"\s*[+-]?\d+", value):
                raise ValueError(f"invalid cache size: {value}")
            size = int(value)
            if size < 1:
                raise ValueError("cache size must be greater than 0")
        else:
            try:
                max_age = parse_duration([value])
            except ValueError:
                raise ValueError(f"invalid max age: {value}") from None
            if max_age < 1:
                raise ValueError("maxAge parameter must be greater than 1")
    return CacheSettings(True, size, max_age)


def parse_max_size(args: list[str]) -> int:
    """`number [units]` in bytes; `off` (any false word) is 0: no limit, overriding an outer one."""
    if not 1 <= len(args) <= 2:
        raise ValueError("wrong number of parameters")
    if len(args) == 1 and bool_word(args[0]) is False:
        return 0
    unit = args[1] if len(args) == 2 else "B"
    try:
        size = parse_nbytes(args[0], unit or "B")
    except ValueError:
        raise ValueError(f"badly formatted size value: {args[0]}{args[1] if len(args) == 2 else ''}") from None
    if size == 0:
        raise ValueError("requires a value greater than zero")
    return size


directives = (
    Directive("DigestEngine", Flag, SVGA, True, Merge.DOWN,
              "Offer HASH, XCRC, MD5, XMD5, XSHA, XSHA1, XSHA256, XSHA512 (mod_digest)."),
    Directive("DigestAlgorithms", Custom(parse_algorithms, "crc32|md5|sha1|sha256|sha512 ...|all"), SVGA,
              tuple(ALGOS), Merge.DOWN, "The algorithms offered (FEAT, HASH, the X commands)."),
    Directive("DigestDefaultAlgorithm", Custom(parse_default_algorithm, "crc32|md5|sha1|sha256|sha512"), SVG,
              None, Merge.SERVER, "HASH's algorithm until OPTS HASH (ignored when DigestAlgorithms leaves it out); "
              "default sha1."),
    Directive("DigestMaxSize", Custom(parse_max_size, "number [units]|off"), SVGA, 0, Merge.DOWN,
              "The most bytes one digest command may read; larger requests are refused (0/off: no limit)."),
    Directive("DigestCache", Custom(parse_cache, 'on|off|"size" count ["maxAge" secs]'), SVGA,
              CacheSettings(True), Merge.DOWN,
              "Keep computed digests (per session); when `size` are kept, further digest commands are refused."),
    Directive("DigestOptions", Options(("NoTransferCache",), "DigestOption"), SVG, frozenset(), Merge.SERVER,
              "NoTransferCache: keep no digests of transfers (binary STOR, APPE to a new file, RETR without "
              "sendfile).", repeat=True),
    Directive("DigestEnable", Flag, DIR | FTPACCESS, None, Merge.DOWN,
              "`off`: no digests of the files in this directory."),
)


# -- the session's state -------------------------------------------------------------------------------------------
class Cached(NamedTuple):
    hex: str | None                 # None: a transfer's digest, which ProFTPD made as the bytes went (computed here
    mtime: int                      # when it is first asked for)


@dataclass
class DigestState:
    advertised: tuple[str, ...] = ()        # the algorithms FEAT and HELP show (none while DigestEngine is off)
    engine: bool = True
    algos: tuple[str, ...] = tuple(ALGOS)
    hash_algo: str = "sha1"                 # HASH's, changed by OPTS HASH
    cache: CacheSettings = CacheSettings(True)
    kept: dict[tuple, Cached] = field(default_factory=dict)    # (algo, real path, mtime, start, length)
    next_sweep: float = 0.0


def _state(session: "Session") -> DigestState:
    """The session's state, made when first needed (most sessions never ask for a digest nor FEAT): the server's
    settings as ProFTPD reads them at connect, then after login those of the user's place (`<Anonymous>`)."""
    st = session.state.find(DigestState)
    if st is not None:
        return st
    server = session.server
    st = session.state.put(DigestState(engine=bool(server.get("DigestEngine"))))
    if st.engine:
        st.algos = st.advertised = server.get("DigestAlgorithms")
        st.hash_algo = next((a for a in HASH_PREFERENCE if a in st.algos), "crc32")
        default = server.get("DigestDefaultAlgorithm")
        if default in st.algos:
            st.hash_algo = default
        st.cache = server.get("DigestCache")
        if session.authenticated:
            _after_pass(session, None)
    return st


def _after_pass(session: "Session", cmd: Request | None) -> None:
    """After login the settings of the user's place apply, as ProFTPD reads them again (unless DigestEngine was
    off at connect)."""
    st = session.state.find(DigestState)
    if st is None or not st.engine:
        return
    st.engine = bool(session.conf("DigestEngine"))
    st.algos = session.conf("DigestAlgorithms")
    st.cache = session.conf("DigestCache")
    st.next_sweep = time.time() + CACHE_SWEEP


def _reinit(session: "Session", **_: Any) -> None:
    """HOST chose another server: its settings, from scratch (the cache too)."""
    session.state.drop(DigestState)


# -- pure parts ----------------------------------------------------------------------------------------------------
def hash_feat(algos: tuple[str, ...], current: str) -> str:
    """FEAT's HASH line: every enabled algorithm, the current one starred, each followed by `;`."""
    return "HASH " + "".join(f"{ALGOS[a].iana}{'*' if a == current else ''};" for a in algos)


def words(arg: str) -> list[str]:
    """The argument's words as ProFTPD splits a command line: blanks apart, a word that starts with `"` runs to
    the next `"` (a backslash in it escapes the next character), and no error for a quote left open."""
    out, i, n = [], 0, len(arg)
    while True:
        while i < n and arg[i].isspace():
            i += 1
        if i >= n:
            return out
        if arg[i] == '"':
            word, i, _ = quoted_word(arg, i)
        else:
            end = i
            while end < n and not arg[end].isspace():
                end += 1
            word, i = arg[i:end], end + 1
        out.append(word)


def strtoull(text: str) -> int | None:
    """C's strtoull as ProFTPD reads an offset, kept in a signed 64-bit off_t: None when anything follows the
    number; `-5` wraps to -5, an overflow is -1."""
    m = re.fullmatch(r"\s*([+-]?)(\d*)", text)
    if m is None or (not m.group(2) and text.strip()):
        return None
    value = int(m.group(2) or 0)
    value = (1 << 64) - 1 if value >= 1 << 64 else value
    if m.group(1) == "-":
        value = -value % (1 << 64)
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned(value: int) -> int:
    """An off_t printed as ProFTPD's `%llu` prints it."""
    return value % (1 << 64)


def x_range(name: str, args: list[str], size: int) -> tuple[int, int] | Reply:
    """The `start end` of an X command (the words after the path), checked against the file's size as ProFTPD
    does: (start, length), or the 501 refusing them."""
    start, end = 0, size
    if args:
        start = strtoull(args[0])
        if start is None:
            return Reply(501, f"{name} requires a start greater than or equal to 0")
        end = strtoull(args[1])
        if end is None:
            return Reply(501, f"{name} requires an end greater than 0")
    if end > size:
        return Reply(501, f"{name}: end exceeds file size")
    if start >= end:
        return Reply(501, f"{name} requires end ({unsigned(end)}) greater than start ({unsigned(start)})")
    return start, end - start


def progress_lines(length: int, blksize: int) -> int:
    """How many `Computing...` lines ProFTPD adds while it reads `length` bytes, `blksize` at a time."""
    return math.ceil(length / max(blksize, 1)) // PROGRESS_READS


def digest_fd(fd: int, start: int, length: int, algo: str) -> str:
    """The lower-case hex digest of `length` bytes of `fd` from `start`, read in chunks; EIO when the file ends
    first (it shrank), EINVAL for a negative start."""
    if start < 0:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    h = ALGOS[algo].new()
    pos, left = start, length
    while left > 0:
        chunk = os.pread(fd, min(CHUNK, left), pos)
        if not chunk:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        h.update(chunk)
        pos += len(chunk)
        left -= len(chunk)
    return h.hexdigest()


# -- computing -----------------------------------------------------------------------------------------------------
class Target(NamedTuple):
    real: str
    size: int
    mtime: int


def _target(session: "Session", name: str, path: str, shown: str) -> Target:
    """The regular file a digest command names, or FtpError with ProFTPD's reply: `shown` is what a missing file
    or a special one is called; a `<Limit>` refusal is the row's `denied`."""
    vpath = session.fs.resolve(path)
    try:
        session.fs.stat(vpath.real)
    except OSError as e:            # (ProFTPD's realpath finds no `f/x` under a file `f`)
        raise FtpError(550, f"{shown}: {os.strerror(errno.ENOENT if e.errno == errno.ENOTDIR else e.errno)}") from None
    if session.fs.canonical(vpath).lower() in SPECIAL_FILES:
        raise FtpError(556 if name == "HASH" else 550, f"{shown}: {os.strerror(errno.EPERM)}")
    if not limits_allow(session, name, READ, vpath.real):
        code, text = session.dispatcher.row(name).denied
        raise FtpError(code, text.format(arg=path, error=os.strerror(errno.EPERM)))
    st = session.fs.stat(vpath.real)
    if not stat.S_ISREG(st.st_mode):
        raise FtpError({"HASH": 553, "MD5": 504}.get(name, 550), f"{path}: Not a regular file")
    return Target(vpath.real, st.st_size, int(st.st_mtime))


def _too_large(session: "Session", length: int) -> bool:
    limit = session.conf("DigestMaxSize")
    return bool(limit) and length > limit


def _digest(session: "Session", cmd: Request, algo: str, target: Target, start: int, length: int) -> tuple[str, int]:
    """(lower-case hex digest, `Computing...` lines to add), from the session's cache or the file; OSError as
    ProFTPD's errno: EBUSY when the cache is full, EPERM under DigestEnable off."""
    st = _state(session)
    now = time.time()
    cache = st.cache
    if cache.on and now >= st.next_sweep:       # ProFTPD's timer drops expired digests every 5 seconds
        st.kept = {k: v for k, v in st.kept.items() if now <= v.mtime + cache.max_age}
        st.next_sweep = now + CACHE_SWEEP
    key = (algo, target.real, target.mtime, start, length)
    found = st.kept.get(key) if cache.on else None
    if found is not None and now > found.mtime + cache.max_age:
        del st.kept[key]
        found = None
    if cache.on and len(st.kept) >= cache.size:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
    lines = 0
    if found is not None and found.hex is not None:
        hex_ = found.hex
    else:
        fd = session.fs.open(target.real, os.O_RDONLY | os.O_NONBLOCK)
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
            if start > fst.st_size or start + length > fst.st_size:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            if session.conf("DigestEnable", posixpath.dirname(target.real)) is False:
                raise OSError(errno.EPERM, os.strerror(errno.EPERM))
            hex_ = digest_fd(fd, start, length, algo)
            lines = progress_lines(length, fst.st_blksize)
            session.reset_timer("idle")     # as ProFTPD's progress callback: a long digest is not idleness
        finally:
            os.close(fd)
        if cache.on:
            st.kept[key] = Cached(hex_, int(fst.st_mtime))
    cmd.notes["mod_digest.algo"] = ALGOS[algo].name
    cmd.notes["mod_digest.digest"] = hex_
    return hex_, lines


def _computing(first: str, lines: int) -> list[str]:
    return [first] + [" Computing..."] * lines


def _off(session: "Session", cmd: Request, algo: str | None = None) -> Reply | None:
    """`500 <cmd> not understood` while DigestEngine (or DigestAlgorithms, for `algo`) leaves the command out."""
    st = _state(session)
    if not st.engine or (algo is not None and algo not in st.algos):
        return Reply(500, f"{cmd.name} not understood")
    return None


# -- transfers -----------------------------------------------------------------------------------------------------
def _pre_transfer(session: "Session", cmd: Request) -> None:
    """PRE_CMD of RETR, STOR, APPE: note whether ProFTPD would digest this transfer as it goes (a binary one of a
    whole file, not a download by sendfile, not an append to a file with data) and keep the digest."""
    data = transfer.state(session)
    if data.ascii or data.rest or "NoTransferCache" in session.server.get("DigestOptions"):
        return
    st = _state(session)
    if not st.engine or not st.cache.on:
        return
    try:
        path = session.fs.resolve(cmd.arg, tilde=True)
        if cmd.name == "RETR" and session.conf("UseSendfile", path.real):
            return
        if cmd.name == "APPE" and session.fs.exists(path.real):
            info = session.fs.stat(path.real)
            if not stat.S_ISREG(info.st_mode) or info.st_size > 0:
                return
    except (OSError, FtpError):
        return                          # the command itself answers
    cmd.notes["digest_transfer"] = True


def _transferred(session: "Session", cmd: Request) -> None:
    """LOG_CMD of RETR, STOR, APPE: the whole file's digest (HASH's algorithm) is kept, made when first asked for;
    it counts towards DigestCache's size as ProFTPD's does."""
    xfer = cmd.notes.get("xfer")
    if not cmd.notes.get("digest_transfer") or not xfer or not xfer["completed"]:
        return
    try:
        info = session.fs.stat(xfer["path"])
    except OSError:
        return
    st = _state(session)
    st.kept[(st.hash_algo, xfer["path"], int(info.st_mtime), 0, info.st_size)] = Cached(None, int(info.st_mtime))


# -- the commands --------------------------------------------------------------------------------------------------
def _x_command(algo: str) -> Callable[["Session", Request], Reply]:
    def handler(session: "Session", cmd: Request) -> Reply:
        """`<cmd> path [start end]`: 250, then the upper-case hex digest."""
        off = _off(session, cmd, algo)
        if off is not None:
            return off
        args = words(cmd.arg)
        if not args or len(args) == 2:
            return Reply(501, "Invalid number of parameters")
        path = args[0]
        target = _target(session, cmd.name, path, cmd.arg)
        span = x_range(cmd.name, args[1:3], target.size)
        if isinstance(span, Reply):
            return span
        start, length = span
        if _too_large(session, length):
            return Reply(550, f"{path}: {os.strerror(errno.EPERM)}")
        try:
            hex_, lines = _digest(session, cmd, algo, target, start, length)
        except OSError as e:
            return Reply(550, f"{path}: {e.strerror}")
        return Reply(250, hex_.upper(), _computing(f"Computing {ALGOS[algo].name} digest", lines))
    return handler


HASH_ERRORS = {errno.EBUSY: 450, errno.EAGAIN: 450, errno.EISDIR: 553, errno.EPERM: 552}


def _whole_file(session: "Session", cmd: Request, algo: str | None, too_large: int,
                errors: dict[int, int]) -> Reply | tuple[str, int, str, int]:
    """HASH's and MD5's work: the digest of the whole file the argument names with `algo` (None: the session's HASH
    algorithm), as (path, size, hex, `Computing...` lines), or the refusal: `too_large` is the code past
    DigestMaxSize, `errors` those of a failed digest by errno (else 550)."""
    off = _off(session, cmd, algo)
    if off is not None:
        return off
    if not words(cmd.arg):
        return Reply(501, "Invalid number of parameters")
    path = cmd.arg
    target = _target(session, cmd.name, path, path)
    if _too_large(session, target.size):
        return Reply(too_large, f"{path}: {os.strerror(errno.EPERM)}")
    try:
        hex_, lines = _digest(session, cmd, algo or _state(session).hash_algo, target, 0, target.size)
    except OSError as e:
        return Reply(errors.get(e.errno, 550), f"{path}: {e.strerror}")
    return path, target.size, hex_, lines


def hash_(session: "Session", cmd: Request) -> Reply:
    """HASH <path>: the whole file's digest with the session's algorithm (213)."""
    done = _whole_file(session, cmd, None, 556, HASH_ERRORS)
    if isinstance(done, Reply):
        return done
    path, size, hex_, lines = done
    iana = ALGOS[_state(session).hash_algo].iana
    return Reply(213, f"{iana} 0-{size} {hex_} {path}", _computing(f"Computing {iana} digest", lines))


def md5(session: "Session", cmd: Request) -> Reply:
    """MD5 <path> (draft-twine-ftpmd5): 251, then the path and its upper-case MD5."""
    done = _whole_file(session, cmd, "md5", 550, {errno.EISDIR: 504})
    if isinstance(done, Reply):
        return done
    path, _, hex_, lines = done
    return Reply(251, f"{path} {hex_.upper()}", _computing("Computing MD5 digest", lines))


def opts_hash(session: "Session", args: list[str]) -> Reply | None:
    """`OPTS HASH [algorithm]` (mod_core's OPTS row asks here): show or choose HASH's algorithm by its IANA name;
    None (not understood) while DigestEngine is off."""
    st = _state(session)
    if not st.engine:
        return None
    if len(args) > 1:
        return Reply(501, "OPTS HASH: Wrong number of parameters")
    if not args:
        return Reply(200, ALGOS[st.hash_algo].iana)
    chosen = next((a for a in st.algos if ALGOS[a].iana.lower() == args[0].lower()), None)
    if chosen is None:
        return Reply(501, f"{args[0]}: Unsupported algorithm")
    st.hash_algo = chosen
    return Reply(200, args[0])


# -- the table -----------------------------------------------------------------------------------------------------
def _offers(algo: str | None) -> Callable[["Session"], bool]:
    """Whether FEAT and HELP show a command: DigestEngine on at connect and its algorithm enabled there."""
    def shown(session: "Session") -> bool:
        advertised = _state(session).advertised
        return bool(advertised) and (algo is None or algo in advertised)
    return shown


def _feat_hash(session: "Session") -> tuple[str, ...]:
    st = _state(session)
    return (hash_feat(st.advertised, st.hash_algo),) if st.advertised else ()


def _x_row(name: str, algo: str, at: int) -> Command:
    shown = _offers(algo)
    return Command(name, _x_command(algo), READ, help="<sp> pathname [<sp> start <sp> end]", help_at=at,
                   help_shown=shown, feat=(name,), feat_for=lambda session: (name,) if shown(session) else (),
                   limit=False, denied=(550, DENIED_TEXT),
                   replies=(f"250-Computing {ALGOS[algo].name} digest / 250 <HEX>", "501 Invalid number of parameters",
                            f"501 {name}: end exceeds file size", f"501 {name} requires end (E) greater than start (S)",
                            "550 <path>: Not a regular file", "550 <path>: Operation not permitted"))


# HELP lists them after MLST, in the order ProFTPD's mod_digest adds them at session start
commands = (
    Command("HASH", hash_, READ, help="<sp> pathname", help_at=57, help_shown=_offers(None), limit=False,
            denied=(552, DENIED_TEXT),
            feat=(hash_feat(tuple(ALGOS), "sha1"),), feat_for=_feat_hash,
            replies=("213-Computing SHA-1 digest / 213 SHA-1 0-<size> <hex> <path>", "450 <path>: Device or resource "
                     "busy (DigestCache full)", "552 <path>: Operation not permitted", "553 <path>: Not a regular "
                     "file", "556 <path>: Operation not permitted (DigestMaxSize)")),
    _x_row("XCRC", "crc32", 58),
    Command("MD5", md5, READ, help="<sp> pathname", help_at=59, help_shown=_offers("md5"), limit=False,
            denied=(550, DENIED_TEXT),
            feat=("MD5",), feat_for=lambda session: ("MD5",) if _offers("md5")(session) else (),
            replies=("251-Computing MD5 digest / 251 <path> <HEX>", "504 <path>: Not a regular file")),
    _x_row("XMD5", "md5", 60),
    _x_row("XSHA", "sha1", 61),
    _x_row("XSHA1", "sha1", 62),
    _x_row("XSHA256", "sha256", 63),
    _x_row("XSHA512", "sha512", 64),
)

MODULE = Module(NAME, directives=directives, commands=commands,
                hooks=(Hook(POST_CMD, "PASS", _after_pass),
                       *(Hook(phase, name, fn) for name in ("RETR", "STOR", "APPE")
                         for phase, fn in ((PRE_CMD, _pre_transfer), (LOG_CMD, _transferred)))),
                listeners=(Listener("core.session-reinit", _reinit),))
