"""mod_xfer: file transfers and the commands that prepare them — TYPE MODE STRU ALLO SMNT, PORT PASV EPRT EPSV,
REST RETR STOR STOU APPE ABOR — with ProFTPD's reply texts, plus the directives that drive them.

The data connection and the byte-moving engine live in `proftpy/transfer/`; this module decides *what* is transferred
(paths, REST offsets, overwrite/append rules, HiddenStores, DeleteAbortedStores, TransferRate).

Transfer facts for the logging modules (xferlog, ExtendedLog) are left on `cmd.notes["xfer"]` of RETR/STOR/STOU/
APPE, for LOG_CMD / LOG_CMD_ERR hooks to read:

    path       real path of the file (what xferlog and %f show; the final name for HiddenStores)
    vpath      the path the client sees (%F)
    bytes      bytes moved, counted on the file's side (%b; ASCII mode's CRs not counted, as ProFTPD)
    seconds    transfer time, float (%T)
    direction  "o" download (RETR), "i" upload (STOR/STOU/APPE)
    type       "a" ASCII or "b" binary
    offset     the REST offset the transfer started at (0 for none)
    size       file size for downloads (None for uploads)
    completed  True when the whole file went through (226)
    aborted    True when ABOR, QUIT, a lost client or a stall ended it
    status     "success" | "failed" | "cancelled" | "timeout"  (%{transfer-status})
    command    the command name
A transfer refused before the data connection is opened (550, 425, ...) has `bytes == 0`, `completed False`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import privs, trace, transfer
from ..access.expr import Condition, parse_condition, pick, rank
from ..config.registry import ALL_DIRS, ANON, DIR, FTPACCESS, SVG, SVGA, Directive, Merge
from ..config.types import (Choice, Custom, Flag, Int, Options, PortRange, Text, parse_bool, parse_int,
                             parse_nbytes)
from ..dispatch import (EXACT_PATH, HOME_EXACT_PATH, NONE, NOT_PERMITTED, OPTIONAL, POST_CMD, POST_CMD_ERR, READ,
                        REQUIRED, WRITE, Command, Hook, Request, feat_when)
from ..fs import FsError
from ..log import NOTICE
from ..module import Module
from ..reply import FtpError, Reply
from ..transfer.ascii import AsciiEncoder
from ..transfer.errors import Stop
from . import deflate as mod_deflate

if TYPE_CHECKING:
    from ..config.tree import Server
    from ..module import MasterView
    from ..session import Session

NAME = "mod_xfer.c"
log = logging.getLogger("proftpy")


# -- directive parsers -------------------------------------------------------------------------------------------
def _foreign(args: list[str]) -> bool | str:
    """`AllowForeignAddress on|off|class-name`."""
    if len(args) != 1:
        raise ValueError("expected on, off or a class name")
    try:
        return parse_bool(args[0])
    except ValueError:
        return args[0]


def _unique_prefix(args: list[str]) -> str:
    """`StoreUniquePrefix prefix`: a file name's start, so no slash (ProFTPD's words)."""
    prefix = Text(args)
    if "/" in prefix:
        raise ValueError(f"no slashes allowed in prefix: '{prefix}'")
    return prefix


def _hidden(args: list[str]) -> tuple[str, str] | None:
    """`HiddenStores on|off|prefix [suffix]`: on = `.in.` + name + `.`; `%P` in prefix/suffix is the pid."""
    if not 1 <= len(args) <= 2:
        raise ValueError("expected on, off, or a prefix and an optional suffix")
    if len(args) == 1:
        try:
            return (".in.", ".") if parse_bool(args[0]) else None
        except ValueError:
            return args[0], "."
    return args[0], args[1]


@dataclass(frozen=True)
class Rate:
    """One TransferRate line."""

    cmds: frozenset[str]
    kbps: float
    free: int
    condition: Condition | None = None


def _rate(args: list[str]) -> Rate:
    """`TransferRate cmds kbps[:free-bytes] [user|group|class expression]` (cmds: RETR,STOR,STOU,APPE; KiB/s)."""
    if len(args) < 2:
        raise ValueError("expected commands, kbps[:free-bytes] and an optional user|group|class expression")
    cmds = frozenset(c.strip().upper() for c in args[0].split(",") if c.strip())
    bad = cmds - {"RETR", "STOR", "STOU", "APPE"}
    if bad or not cmds:
        raise ValueError(f"unsupported command(s) {', '.join(sorted(bad)) or args[0]}: use RETR, STOR, STOU, APPE")
    rate, _, free = args[1].partition(":")
    try:
        kbps = float(rate)
    except ValueError:
        raise ValueError(f"'{rate}' is not a number") from None
    if kbps <= 0:
        raise ValueError("kbps must be above 0")
    return Rate(cmds, kbps, parse_int(free, 0, 2**63 - 1) if free else 0, parse_condition(args[2:]))


@dataclass(frozen=True)
class SizeLimit:
    """One MaxRetrieveFileSize or MaxStoreFileSize line: the largest file in bytes (None: `*`, no limit)."""

    bytes: int | None
    condition: Condition | None = None


def _size_limit(args: list[str]) -> SizeLimit:
    """`"*" | number unit [user|group|class expression]` with ProFTPD's checks and words."""
    if len(args) == 1 and args[0] == "*":
        return SizeLimit(None)
    if len(args) not in (2, 4):
        raise ValueError("incorrect number of parameters")
    size = parse_nbytes(args[0], args[1])
    if size == 0:
        raise ValueError("size must be greater than zero")
    return SizeLimit(size, parse_condition(args[2:]))


directives = (
    Directive("PassivePorts", PortRange, SVG, None, Merge.SERVER,
              "Ports offered for PASV/EPSV; when all are busy the client gets 425 (no fallback outside the range)."),
    Directive("MasqueradeAddress", Text, SVG, None, Merge.SERVER,
              "Address (or DNS name) announced in PASV replies and the greeting, for servers behind NAT."),
    Directive("AllowForeignAddress", Custom(_foreign, "on|off|class"), SVGA, False, Merge.DOWN,
              "Allow PORT/EPRT to, and passive connections from, an address other than the client's."),
    Directive("AllowOverwrite", Flag, ALL_DIRS, False, Merge.DOWN, "Let STOR replace an existing file."),
    Directive("AllowRetrieveRestart", Flag, ALL_DIRS, True, Merge.DOWN, "Allow REST before RETR."),
    Directive("AllowStoreRestart", Flag, ALL_DIRS, False, Merge.DOWN,
              "Allow REST before STOR, and APPE to an existing file."),
    Directive("HiddenStores", Custom(_hidden, "on|off|prefix [suffix]"), SVGA | DIR, None, Merge.DOWN,
              "Upload to a hidden temporary name (`.in.NAME.`) and rename when complete; REST is refused."),
    Directive("DeleteAbortedStores", Flag, ALL_DIRS, False, Merge.DOWN, "Remove the file of an aborted upload."),
    Directive("DefaultTransferMode", Choice(("ascii", "binary")), SVG, "ascii", Merge.SERVER,
              "Transfer type of a new session."),
    Directive("TransferRate", Custom(_rate, "RETR|STOR|STOU|APPE[,...] kbps[:free-bytes] [user|group|class expr]"),
              ALL_DIRS, None, Merge.MULTI, "Bandwidth limit in KiB/s for the listed commands, after free-bytes "
              "(SFTP/scp reads count as RETR, writes as STOR or APPE); optionally only for some users, groups or "
              "classes.", repeat=True),
    Directive("MaxRetrieveFileSize", Custom(_size_limit, '"*"|number B|KB|MB|GB|TB [user|group|class expr]'),
              ALL_DIRS, None, Merge.MULTI, "RETR of a larger file is refused after its 150 (`426 Transfer aborted. "
              "Operation not permitted`), an SFTP/scp download at its OPEN; optionally only for some users, groups "
              "or classes.", repeat=True),
    Directive("MaxStoreFileSize", Custom(_size_limit, '"*"|number B|KB|MB|GB|TB [user|group|class expr]'),
              ALL_DIRS, None, Merge.MULTI, "An upload that would make its file larger ends with `552 Transfer "
              "aborted. File too large` (APPE and REST count the file's size); optionally only for some users, "
              "groups or classes.", repeat=True),
    Directive("UseSendfile", Flag, ALL_DIRS, True, Merge.DOWN, "Use sendfile(2) for binary downloads."),
    Directive("TransferOptions", Options(("IgnoreASCII", "AllowSymlinkUpload"), "TransferOption",
                                         aliases=(("AllowSymlinkUploads", "AllowSymlinkUpload"),)),
              SVGA, frozenset(), Merge.DOWN, "IgnoreASCII: files move as they are in TYPE A too (no CRLF conversion, "
              "REST allowed); AllowSymlinkUpload: with HiddenStores, STOR to a link that leads nowhere replaces the link "
              "(else 550)."),
    Directive("StoreUniquePrefix", Custom(_unique_prefix, "prefix"), SVGA | DIR, "ftp", Merge.DOWN,
              "The start of the names STOU makes (then 8 random letters and digits)."),
    Directive("GroupOwner", Text, ANON | DIR | FTPACCESS, None, Merge.DOWN,
              "Group of what uploads and MKD make or overwrite here, when the user may give it (a member; any group "
              "with a UserOwner here); else logged."),
    Directive("UserOwner", Text, ANON | DIR, None, Merge.DOWN,
              "User who owns what uploads and MKD make or overwrite here (with GroupOwner's group, any group); the "
              "session keeps CAP_CHOWN for it unless the server sets RootRevoke on (then the chown fails, logged)."),
    Directive("AnonAllowRobots", Flag, ANON, False, Merge.DOWN,
              "off: an anonymous RETR of a `/robots.txt` the directory lacks gets one that keeps robots out."),
    Directive("TimeoutNoTransfer", Int(0), SVGA, 300, Merge.DOWN,
              "Seconds logged in without a transfer or listing before `421 No transfer timeout`."),
    Directive("TimeoutStalled", Int(0), SVGA, 3600, Merge.DOWN,
              "Seconds a data connection may move nothing before the session is ended."),
)


# -- session setup -----------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    # A client that stops reading replies (or sends half a line and stops) is idle: it may hold the session for
    # TimeoutIdle seconds, not for ever.
    session.ctrl.set_send_timeout(session.conf("TimeoutIdle"))
    # ftplib and other clients send ABOR as urgent data; keep it in the normal stream so the line arrives whole.
    try:
        session.ctrl.sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    except OSError as e:
        log.debug("SO_OOBINLINE: %s", e.strerror)
    # TCPNoDelay ctrl (mod_core's directive): without it the 150 and 226 of a short transfer wait for a delayed
    # ACK (~40 ms per listing). Applied here until the session setup applies it for every connection.
    try:
        nodelay = session.server.get("TCPNoDelay")["ctrl"]
        session.ctrl.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if nodelay else 0)
    except OSError as e:
        log.debug("TCP_NODELAY: %s", e.strerror)
    masq = session.server.get("MasqueradeAddress")
    if masq:
        addr = _resolve_v4(masq)
        if addr:
            session.masquerade = addr
        else:
            log.warning("MasqueradeAddress %s: cannot resolve to an IPv4 address; ignored", masq)


def _resolve_v4(name: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(name))
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, IndexError, UnicodeError):
        return None


def _after_pass(session: "Session", cmd: Request) -> None:
    if session.authenticated:
        session.set_timer("noxfer", session.conf("TimeoutNoTransfer"), _noxfer_expired)


def _noxfer_expired(session: "Session") -> None:
    seconds = int(session.timers["noxfer"].seconds)
    session.timeout_exit(421, f"No transfer timeout ({seconds} seconds): closing control connection",
                         "core.timeout-no-transfer")


# -- TYPE MODE STRU ALLO SMNT --------------------------------------------------------------------------------------
def type_(session: "Session", cmd: Request) -> Reply:
    """ProFTPD's TYPE: A (any format word), I, L 7, L 8; the reply echoes the type code as the client wrote it."""
    words = cmd.arg.split()
    if len(words) > 2:
        return Reply(500, f"'TYPE {cmd.arg}' not understood")
    first = words[0].upper()
    st = transfer.state(session)
    if first == "A" or first == "L" and words[1:] == ["7"]:
        st.ascii = True
    elif first == "I" or first == "L" and words[1:] == ["8"]:
        st.ascii = False
    else:
        return Reply(504, f"TYPE not implemented for '{words[0]}' parameter")
    return Reply(200, f"Type set to {words[0]}")


def _one_code(cmd: Request, done: str, supported: str, known: tuple[str, ...], kind: str) -> Reply:
    """MODE and STRU: one code, of which only `supported` is (stream mode, file structure)."""
    word = cmd.arg.strip().upper()
    if len(word.split()) > 1:
        return Reply(501, f"'{cmd.name} {cmd.arg}' not understood")
    if word == supported:
        return Reply(200, f"{done} set to {supported}")
    if word in known:
        return Reply(504, f"'{cmd.name} {cmd.arg}' unsupported {kind}")
    return Reply(501, f"'{cmd.name} {cmd.arg}' unrecognized {kind}")


def mode(session: "Session", cmd: Request) -> Reply:
    """MODE S, and MODE Z while mod_deflate's DeflateEngine is on (any other MODE ends MODE Z)."""
    return mod_deflate.mode(session, cmd.arg.strip().upper()) or _one_code(cmd, "Mode", "S", ("B", "C"),
                                                                          "transfer mode")


def stru(session: "Session", cmd: Request) -> Reply:
    return _one_code(cmd, "Structure", "F", ("R", "P"), "structure type")


def allo(session: "Session", cmd: Request) -> Reply:
    """`ALLO size [R record-size]`: nothing to allocate, but the syntax is checked as ProFTPD does."""
    words = cmd.arg.split()
    if len(words) not in (1, 3) or len(words) == 3 and words[1].upper() != "R":
        return Reply(504, f"'ALLO {cmd.arg}' not understood" if words else "'ALLO' not understood")
    try:
        int(words[0], 10)
    except ValueError:
        return Reply(504, f"{words[0]}: Invalid ALLO argument")
    return Reply(202, "No storage allocation necessary")


def smnt(session: "Session", cmd: Request) -> Reply:
    return Reply(502, "SMNT command not implemented")


# -- PORT PASV EPRT EPSV -----------------------------------------------------------------------------------------
def _same_host(a: str, b: str) -> bool:
    try:
        x, y = ipaddress.ip_address(a.split("%")[0]), ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return False
    x = getattr(x, "ipv4_mapped", None) or x
    y = getattr(y, "ipv4_mapped", None) or y
    return x == y


def _epsv_all(session: "Session", name: str) -> None:
    if transfer.state(session).epsv_all:
        raise FtpError(500, f"Illegal {name} command, EPSV ALL in effect")


def _check_target(session: "Session", name: str, addr: str, port: int) -> None:
    """No FTP bounce: the target must be the client itself (unless AllowForeignAddress) on a port >= 1024."""
    if not transfer.foreign_allowed(session) and not _same_host(addr, session.remote_addr):
        log.warning("Refused %s %s (address mismatch)", name, addr)
        raise FtpError(500, f"Illegal {name} command")
    if port < 1024:
        log.warning("Refused %s %s port %d (bounce attack)", name, addr, port)
        raise FtpError(500, f"Illegal {name} command")


def _number(text: str, most: int) -> int | None:
    """A decimal number of ASCII digits (no sign, no spaces, no other scripts' digits) up to `most`."""
    if not text or len(text) > 20 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= most else None


def port(session: "Session", cmd: Request) -> Reply:
    _epsv_all(session, "PORT")
    nums = [_number(p, 255) for p in cmd.arg.strip().split(",")]
    if len(nums) != 6 or None in nums or not any(nums[:4]) or not (nums[4] or nums[5]):
        return Reply(501, "Illegal PORT command")
    addr = ".".join(str(n) for n in nums[:4])
    if ":" in session.remote_addr and not transfer.foreign_allowed(session):
        return Reply(500, "Illegal PORT command")
    target_port = nums[4] << 8 | nums[5]
    _check_target(session, "PORT", addr, target_port)
    transfer.set_target(session, addr, target_port)
    return Reply(200, "PORT command successful")


def eprt(session: "Session", cmd: Request) -> Reply:
    _epsv_all(session, "EPRT")
    arg = cmd.arg.strip()
    if len(arg) < 2:
        return Reply(501, "Illegal EPRT command")
    fields = arg[1:].split(arg[0])
    # the protocol is checked first (ProFTPD): `|2|` without IPv6, or no protocol number at all, is a 522
    if fields[0] not in ("1", "2") or fields[0] == "2" and not session.server.get("UseIPv6"):
        return Reply(522, f"Network protocol not supported, use {_families(session)}")
    if len(fields) != 4 or fields[3] != "":
        return Reply(501, "Illegal EPRT command")
    proto, addr, port_text = fields[:3]
    try:
        ip = ipaddress.IPv4Address(addr) if proto == "1" else ipaddress.IPv6Address(addr)
    except ValueError:
        return Reply(501, "Illegal EPRT command")
    target_port = _number(port_text, 1 << 64)
    if target_port is None:
        return Reply(501, "Illegal EPRT command")
    if not 0 < target_port <= 65535:
        return Reply(500, "Illegal EPRT command")
    _check_target(session, "EPRT", str(ip), target_port)
    transfer.set_target(session, str(ip), target_port)
    return Reply(200, "EPRT command successful")


def _families(session: "Session") -> str:
    return "(1,2)" if session.server.get("UseIPv6") else "(1)"


def pasv(session: "Session", cmd: Request) -> Reply:
    _epsv_all(session, "PASV")
    if ":" in session.local_addr:
        # PASV cannot express an IPv6 address (ProFTPD Bug#3745).
        return Reply(501, "PASV: Operation not permitted")
    p = transfer.passive_port(session)
    addr = session.masquerade or session.local_addr     # the proxy's with UseProxiedServerAddress
    return Reply(227, f"Entering Passive Mode ({addr.replace('.', ',')},{p >> 8},{p & 255}).")


def epsv(session: "Session", cmd: Request) -> Reply:
    arg = cmd.arg.strip()
    if arg.upper() == "ALL":
        transfer.state(session).epsv_all = True
        return Reply(200, "EPSV ALL command successful")
    if arg:
        if not arg.isdigit():
            return Reply(501, "EPSV: unknown network protocol")
        if arg not in ("1", "2") or arg == "2" and not session.server.get("UseIPv6"):
            return Reply(522, f"Network protocol not supported, use {_families(session)}")
    p = transfer.passive_port(session)
    # MasqueradeAddress is not used here: the client reuses the control connection's address (as ProFTPD).
    return Reply(229, f"Entering Extended Passive Mode (|||{p}|)")


# -- REST ABOR ---------------------------------------------------------------------------------------------------
def _cwd_real(session: "Session") -> str | None:
    try:
        return session.fs.resolve(".").real
    except FtpError:
        return None


REST_MAX = (1 << 64) - 1


def _rest_value(word: str) -> int | None:
    """ProFTPD's strtoull(3) reading of REST's number: an optional `+`, ASCII digits only, saturating at 2^64-1
    (so an over-long number is not a syntax error); None for anything else (a `-` sign included)."""
    digits = word[1:] if word.startswith("+") else word
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    digits = digits.lstrip("0") or "0"
    return REST_MAX if len(digits) > 20 else min(int(digits), REST_MAX)


@dataclass
class RangeState:
    """RANG's byte range for the next transfer (start, length); REST and RANG replace each other."""

    start: int = 0
    length: int = 0

    def take(self) -> tuple[int, int]:
        """The range for the transfer starting now, which consumes it (as REST's offset)."""
        got, (self.start, self.length) = (self.start, self.length), (0, 0)
        return got


def _off_t(word: str) -> int | None:
    """ProFTPD's parse_offset: strtoull(3) read into a signed off_t (2^63 and above turn negative)."""
    value = _rest_value(word)
    return None if value is None else value - (1 << 64) if value >= 1 << 63 else value


def rang(session: "Session", cmd: Request) -> Reply:
    """RANG start end (draft-bryan-ftp-range, ProFTPD 1.3.8): positions inclusive; `RANG 1 0` resets."""
    words = cmd.arg.split()
    if len(words) != 2:
        return Reply(500, f"'{' '.join(['RANG'] + words)}' not understood")
    first, last = (_off_t(w) for w in words)
    if first is None or last is None:
        return Reply(501, "RANG requires a value greater than or equal to 0")
    rng = session.state.get(RangeState)
    if first > last:
        rng.take()
        if (first, last) == (1, 0):
            return Reply(350, "Reset byte transfer range")
        return Reply(501, "RANG start must be less than end")
    st = transfer.state(session)
    if st.ascii:
        return Reply(551, "RANG: Transfer ranges not allowed in ASCII mode")
    rng.start, rng.length, st.rest = first, last - first + 1, 0
    return Reply(350, f"Transferring byte range of {rng.length} byte{'s' if rng.length != 1 else ''} starting "
                      f"from {first % (1 << 64)}")          # printed unsigned, as ProFTPD's


def _send_range(t: transfer.Transfer, fd: int, start: int, length: int, ascii: bool) -> None:
    """A RANG download: `length` bytes from `start` (or up to the end of the file)."""
    encoder = AsciiEncoder() if ascii else None
    pos, end = start, start + length
    while pos < end:
        data = os.pread(fd, min(1 << 20, end - pos), pos)
        if not data:
            return
        pos += len(data)
        t.send_bytes(encoder.feed(data) if encoder else data)


def rest(session: "Session", cmd: Request) -> Reply:
    """ProFTPD's order: one argument (500), the number (501), then ASCII mode (501) — so a huge number in ASCII
    mode gets the ASCII reply."""
    words = cmd.arg.split()
    if len(words) != 1:
        return Reply(500, f"'REST {cmd.arg}' not understood")
    if session.conf("HiddenStores", path=_cwd_real(session)):
        return Reply(501, "REST not compatible with server configuration")
    pos = _rest_value(words[0])
    if pos is None:
        return Reply(501, "REST requires a value greater than or equal to 0")
    st = transfer.state(session)
    if st.ascii and pos != 0 and not _ignore_ascii(session):
        return Reply(501, "REST: Resuming transfers not allowed in ASCII mode")
    st.rest = pos
    session.state.get(RangeState).take()
    return Reply(350, f"Restarting at {pos}. Send STORE or RETRIEVE to initiate transfer")


def _ignore_ascii(session: "Session") -> bool:
    """TransferOptions IgnoreASCII: TYPE A is answered and logged, but files move as they are (no CRLF
    conversion, REST allowed); listings keep their CRLF line ends."""
    return "IgnoreASCII" in session.conf("TransferOptions")


def abor(session: "Session", cmd: Request) -> Reply:
    transfer.state(session).reset()            # REST and RANG stay for the next transfer, as in ProFTPD
    return Reply(226, "Abort successful")


# -- transfers ---------------------------------------------------------------------------------------------------
def rate_for(session: "Session", name: str, real: str) -> tuple[float, int] | None:
    """(bytes/s, free bytes) of the TransferRate line that applies (access/expr.py `pick`), or None; mod_shaper's
    rate instead when its priority is above the rank of that line's context (ProFTPD's TransferRate precedence)."""
    chain = session.context(real).chain
    rate = pick(chain, "TransferRate", session.who, lambda r: name in r.cmds)
    shaping = transfer.state(session).shaping
    if shaping is not None:
        ranked = 0 if rate is None else next(rank(s) for s in chain if any(p.value is rate
                                                                           for p in s.all("TransferRate")))
        shaping.governs = shaping.priority > ranked and shaping.rate(name) > 0
        if shaping.governs:
            return shaping.rate(name), 0
    return None if rate is None else (rate.kbps * 1024.0, rate.free)


def size_limit_for(session: "Session", name: str, real: str) -> int | None:
    """The bytes of the MaxRetrieveFileSize or MaxStoreFileSize line that applies (as TransferRate's), or None."""
    limit = pick(session.context(real).chain, name, session.who)
    return None if limit is None else limit.bytes


def too_large(name: str, limit: int, real: str) -> None:
    log.log(NOTICE, "%s (%d byte%s) reached: aborting transfer of '%s'", name, limit, "s" if limit != 1 else "", real)


def _notes(cmd: Request, *, real: str, virtual: str, direction: str, ascii: bool, offset: int,
           size: int | None, moved: transfer.Transfer | None, status: str) -> None:
    cmd.notes["xfer"] = {
        "path": real, "vpath": virtual, "bytes": moved.file_bytes if moved else 0,
        "seconds": moved.seconds if moved else 0.0, "direction": direction, "type": "a" if ascii else "b",
        "offset": offset, "size": size, "completed": status == "success",
        "aborted": status in ("cancelled", "timeout"), "status": status, "command": cmd.name,
    }


def retr(session: "Session", cmd: Request) -> Reply:
    st = transfer.state(session)
    offset, st.rest = st.rest, 0
    start, length = session.state.get(RangeState).take()
    offset = offset or start
    try:
        path = session.fs.resolve(cmd.arg, tilde=True)
        info = session.fs.stat(path.real)
    except (OSError, FsError):
        if not session.fs.lexists(session.fs.resolve(cmd.arg, follow_last=False, tilde=True).real):
            if _no_robots(session, cmd.arg):
                return _send_no_robots(session, cmd)
            raise
        return Reply(550, f"{cmd.arg}: Not a regular file")        # a link that leads nowhere (ProFTPD)
    if not stat.S_ISREG(info.st_mode):
        return Reply(550, f"{cmd.arg}: Not a regular file")
    if offset and not session.conf("AllowRetrieveRestart", path=path.real):
        return Reply(451, f"{cmd.arg}: Restart not permitted, try again")
    fd = _open_existing(session, path.real, os.O_RDONLY)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):           # replaced since the stat above
            return Reply(550, f"{cmd.arg}: Not a regular file")
        size = opened.st_size
        if offset > size or offset < 0:                 # (a RANG start of 2^63 or more: negative, see _off_t)
            return _invalid_rest(cmd, "RANG" if length else "REST")
        if offset and offset + length > size:
            return Reply(554, f"{cmd.arg}: invalid RANG argument")
        ascii = st.ascii
        sendfile = session.conf("UseSendfile", path=path.real)
        count = min(length, size - offset) if length else size - offset
        opening = f"Opening {st.mode_name} mode data connection for {cmd.arg}{_bytes(count)}"

        limit = size_limit_for(session, "MaxRetrieveFileSize", path.real)

        def body(t: transfer.Transfer) -> None:
            if limit is not None and size > limit:   # after the 150, as ProFTPD
                too_large("MaxRetrieveFileSize", limit, path.real)
                raise Stop(Reply(426, "Transfer aborted. Operation not permitted"), "failed")
            convert = ascii and not _ignore_ascii(session)
            if length:
                _send_range(t, fd, offset, length, convert)
            else:
                t.send_file(fd, offset, convert, sendfile=sendfile)

        reply, moved, status = transfer.run(session, cmd, opening, body, size=size, path=path.virtual,
                                            rate=rate_for(session, "RETR", path.real))
    finally:
        os.close(fd)
    _notes(cmd, real=path.real, virtual=path.virtual, direction="o", ascii=ascii, offset=offset, size=size,
           moved=moved, status=status)
    return reply


NO_ROBOTS = "User-agent: *\nDisallow: /\n"


def _no_robots(session: "Session", arg: str) -> bool:
    """An anonymous session asks for a `/robots.txt` its directory does not have: ProFTPD (AnonAllowRobots off, the
    default) sends one that keeps every robot out."""
    return (session.anon is not None and not session.anon.get("AnonAllowRobots")
            and session.fs.virtual(arg) == "/robots.txt")


def _send_no_robots(session: "Session", cmd: Request) -> Reply:
    """RETR of that file, as if it were one of 26 bytes (ASCII mode adds its CRs on the way)."""
    st = transfer.state(session)
    ascii = st.ascii
    data = NO_ROBOTS.replace("\n", "\r\n") if ascii else NO_ROBOTS
    opening = f"Opening {st.mode_name} mode data connection for {cmd.arg}{_bytes(len(NO_ROBOTS))}"
    reply, moved, status = transfer.run(session, cmd, opening, lambda t: t.send_bytes(data.encode()))
    if moved is not None and ascii:
        moved.ascii_extra = len(data) - len(NO_ROBOTS)
    _notes(cmd, real=session.fs.real_of("/robots.txt"), virtual="/robots.txt", direction="o", ascii=ascii, offset=0,
           size=len(NO_ROBOTS), moved=moved, status=status)
    return reply


def _bytes(count: int) -> str:
    """The size in a 150 reply, as ProFTPD's pr_data_open words it: none for 0, `(1 byte)`, `(n bytes)`."""
    return f" ({count} byte{'s' if count != 1 else ''})" if count else ""


def _invalid_rest(cmd: Request, name: str = "REST") -> Reply:
    """A REST (or RANG) offset past the end of the file (ProFTPD 1.3.8's wording)."""
    return Reply(554, f"{name}: invalid {cmd.arg} argument")


def _umask(session: "Session", real: str) -> int:
    value = session.conf("Umask", path=real)
    return value[0] if isinstance(value, tuple) else value


def hidden_path(real: str, spec: tuple[str, str]) -> str:
    prefix, suffix = (part.replace("%P", str(os.getpid())) for part in spec)
    head, name = os.path.split(real)
    return os.path.join(head, f"{prefix}{name}{suffix}")


def _open_existing(session: "Session", real: str, flags: int) -> int:
    """Open a file that exists without ever blocking: a FIFO without a reader (or writer) fails with ENXIO
    instead of hanging the session; blocking mode is restored for the transfer."""
    fd = session.fs.open(real, flags | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    return fd


def _open_new(session: "Session", real: str, flags: int, umask: int) -> int:
    old = os.umask(umask)
    try:
        return session.fs.open(real, flags, 0o666)
    finally:
        os.umask(old)


def stor(session: "Session", cmd: Request) -> Reply:
    return _store(session, cmd, "STOR")


def appe(session: "Session", cmd: Request) -> Reply:
    return _store(session, cmd, "APPE")


def stou(session: "Session", cmd: Request) -> Reply:
    if len(cmd.arg.split()) > 1:
        return Reply(500, f"'STOU {cmd.arg}' not understood")
    return _store(session, cmd, "STOU")


def _store(session: "Session", cmd: Request, kind: str) -> Reply:
    st = transfer.state(session)
    offset, st.rest = st.rest, 0
    start, length = session.state.get(RangeState).take()
    if kind == "STOU" and (offset or length):
        return Reply(550, f"STOU incompatible with {'REST' if offset else 'RANG'}")
    offset = offset or start
    ascii = st.ascii
    created = False          # we created the file: remove it again if no data connection could be made
    temp = None              # HiddenStores temporary file
    if kind == "STOU":
        directory = session.fs.resolve(".")
        umask = _umask(session, directory.real)
        fd, real = session.fs.create_unique(directory.real, session.conf("StoreUniquePrefix", path=directory.real),
                                            0o600)
        os.fchmod(fd, 0o666 & ~umask)
        created = True
        name = os.path.basename(real)
        virtual = session.fs.virtual_of(real)
        opening = f"FILE: {name}"
        what = name
    else:
        path = session.fs.resolve(cmd.arg, tilde=True)
        real, virtual, what = path.real, path.virtual, cmd.arg
        through_link = False     # a link to nothing yet: it exists, so AllowOverwrite decides (on: the target is made)
        try:
            info = session.fs.stat(real)
        except FileNotFoundError:
            info = None
            through_link = session.fs.lexists(session.fs.resolve(cmd.arg, follow_last=False, tilde=True).real)
            if through_link and kind == "STOR" and not session.conf("AllowOverwrite", path=real):
                return Reply(550, f"{cmd.arg}: Overwrite permission denied")
        if info is not None:
            # ProFTPD: AllowOverwrite is checked first, REST or not (a resumed STOR needs both directives).
            if kind == "STOR" and not session.conf("AllowOverwrite", path=real):
                return Reply(550, f"{cmd.arg}: Overwrite permission denied")
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
                return Reply(550, f"{cmd.arg}: Not a regular file")
            if (offset or length or kind == "APPE") and not session.conf("AllowStoreRestart", path=real):
                return Reply(451, f"{cmd.arg}: Append/Restart not permitted, try again")
        if kind == "APPE" and length:
            return Reply(550, "APPE incompatible with RANG")
        hidden = session.conf("HiddenStores", path=real)
        umask = _umask(session, real)
        if hidden and kind == "STOR":
            if offset or length:
                return Reply(501, f"{'RANG' if length else 'REST'} not compatible with server configuration")
            # through a link its target gets the upload and the link stays; a link to nothing is replaced, only
            # when allowed (as ProFTPD's)
            if not through_link:
                real = session.fs.real_of(session.fs.canonical(path))
            elif "AllowSymlinkUpload" in session.conf("TransferOptions", path=real):
                real = session.fs.resolve(cmd.arg, follow_last=False, tilde=True).real
            else:
                return Reply(550, f"{cmd.arg}: Not a regular file")
            temp = hidden_path(real, hidden)
            if session.fs.lexists(temp):
                return Reply(550, f"{cmd.arg}: Temporary hidden file {session.fs.virtual_of(temp)} already exists")
            fd = _open_new(session, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, umask)
        elif info is None:
            fd = _open_new(session, real, os.O_WRONLY | os.O_CREAT | (0 if through_link else os.O_EXCL), umask)
            created = not through_link          # (never remove the client's link)
        elif kind == "APPE":
            fd = _open_existing(session, real, os.O_WRONLY | os.O_APPEND)
        else:
            # Opened without O_TRUNC: the old content is cut only once the data connection is up.
            fd = _open_existing(session, real, os.O_WRONLY)
        if offset and temp is None and (offset > os.fstat(fd).st_size or offset < 0):
            # Past the end (a new file has size 0): no gap is ever written. ProFTPD has opened the file by then,
            # so a new file stays behind, empty, as with ProFTPD 1.3.8.
            os.close(fd)
            return _invalid_rest(cmd, "RANG" if length else "REST")
        if kind == "APPE":
            offset = 0                              # within the file: APPE still writes at its end
        opening = f"Opening {st.mode_name} mode data connection for {cmd.arg}{_bytes(length)}"
    new_owner(session, temp or real, fd)
    limit = size_limit_for(session, "MaxStoreFileSize", real)
    # ProFTPD counts what the file holds already when the upload does not replace it (APPE, REST, RANG).
    kept = os.fstat(fd).st_size if limit is not None and (kind == "APPE" or offset or length) else 0

    def body(t: transfer.Transfer) -> None:
        if kind == "STOR" and temp is None and not created and not length:
            os.ftruncate(fd, offset)
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        t.receive_to(fd, ascii and not _ignore_ascii(session), room=None if limit is None else limit - kept)
        if length and t.bytes != length:            # a RANG upload must bring exactly its length (ProFTPD)
            log.log(NOTICE, "Transfer range length (%d byte%s) %s; aborting transfer of '%s'", length,
                    "s" if length != 1 else "", "exceeded" if t.bytes > length else "not provided", real)
            raise Stop(Reply(426, "Transfer aborted. Operation not permitted"), "failed")

    try:
        reply, moved, status = transfer.run(session, cmd, opening, body, what=what, path=virtual,
                                            rate=rate_for(session, kind, real))
    finally:
        os.close(fd)
    if moved is not None and moved.room is not None and moved.room < 0:
        too_large("MaxStoreFileSize", limit, real)
    target = temp or real
    if status == "success" and temp is not None:
        try:
            session.fs.rename(temp, real)
        except OSError as e:
            _unlink(session.fs, temp)
            reply, status = Reply(550, f"{what}: Rename of hidden file {session.fs.virtual_of(temp)} failed: "
                                       f"{e.strerror}"), "failed"
    elif status != "success":
        if moved is None and created:
            _unlink(session.fs, target)              # no data connection: leave nothing behind
        elif temp is not None:
            _unlink(session.fs, temp)                # HiddenStores: only the temporary file is removed
        elif moved is not None and session.conf("DeleteAbortedStores", path=real):
            _unlink(session.fs, real)
    _notes(cmd, real=real, virtual=virtual, direction="i", ascii=ascii, offset=offset, size=None,
           moved=moved, status=status)
    return reply


def new_owner(session: "Session", real: str, fd: int | None = None) -> None:
    """UserOwner and GroupOwner: what a command made or overwrote takes that user and group (ProFTPD's stor_chown
    and smkdir). The user needs CAP_CHOWN (`keeps_chown`), and with it the group may be any; GroupOwner alone is
    done as the user: a group the user is a member of (as ProFTPD's documentation puts it; ProFTPD with root kept
    would give any group, even one a .ftpaccess names). A name nobody knows and a chown that fails are logged; the
    command goes on."""
    user, group = session.conf("UserOwner", path=real), session.conf("GroupOwner", path=real)
    if not user and not group:
        return
    uid = gid = -1
    if user:
        account = session.auth.lookup(user)
        if account is None:
            log.log(NOTICE, "UserOwner %s: no such user", user)
        else:
            uid = account.uid
    if group:
        try:
            gid = session.auth.gid_of(group)
        except ValueError:
            log.warning("GroupOwner %s: no such group", group)
    if uid == -1 and gid == -1:
        return
    try:
        if uid == -1:
            _chown(session, real, fd, uid, gid)
        else:
            with privs.default_privs().as_root():
                _chown(session, real, fd, uid, gid)
    except OSError as e:
        if uid != -1:
            log.warning("lchown(%s) as root failed: %s", real, e.strerror)
        else:
            log.log(NOTICE, "lchown(%s) failed: %s", real, e.strerror)
        return
    if trace.on: trace.msg("fsio", 2, "lchown(%s) to UID %d, GID %d successful", real, uid, gid)


def _chown(session: "Session", real: str, fd: int | None, uid: int, gid: int) -> None:
    if fd is not None:
        os.fchown(fd, uid, gid)
    else:
        session.fs.chown(real, uid, gid)


def keeps_chown(server: "Server") -> bool:
    """Whether a session of this server keeps CAP_CHOWN after login (and nothing else of root). ProFTPD keeps
    root itself where UserOwner is set anywhere in the server and the server does not set RootRevoke (or sets
    it off); proftpy gives up root as always but keeps the one capability UserOwner and GroupOwner need."""
    return server.cached(_keeps_chown)


def _keeps_chown(server: "Server") -> bool:
    if any(word.upper() == "-CAP_CHOWN" for word in server.get("CapabilitiesSet") or ()):
        return False                                # mod_cap takes it away (ProFTPD's chown then fails too)
    revoke = server.section.get("RootRevoke")
    if revoke is not None:
        return revoke is False
    return any(s.get("UserOwner") for s in _own_sections(server.section))


def _settle_owners(master: "MasterView") -> None:
    """master_preload: whether each server's sessions keep CAP_CHOWN, settled before any fork (every login asks)."""
    for server in master.config.servers:
        keeps_chown(server)


def _own_sections(section):
    yield section
    for s in section.sections:
        if s.kind != "vhost":
            yield from _own_sections(s)


def _drop_passive(session: "Session", cmd: Request) -> None:
    """A refused or failed RETR/STOR/STOU/APPE closes the passive listener (and a connection the client already
    made to it), as ProFTPD does: a later transfer needs a new PASV/EPSV and never takes that stale connection.
    A PORT/EPRT target stays (ProFTPD connects to it for the next transfer). A REST offset or RANG range is used
    up, even by a refusal that came before the command ran (<Limit>)."""
    st = transfer.state(session)
    st.drop_passive()
    st.rest = 0
    session.state.get(RangeState).take()


def _unlink(fs, real: str) -> None:
    try:
        fs.unlink(real)
    except FileNotFoundError:
        pass            # already gone: nothing to clean up
    except OSError as e:
        log.warning("cannot remove %s after an aborted upload: %s", real, e.strerror)


# ProFTPD checks the argument count in each handler: these are its replies for a missing argument (and ABOR's for an
# extra one), as scripts/compare_proftpd.py shows them.
NOT_UNDERSTOOD = (500, "'{name}' not understood")
NOT_UNDERSTOOD_501 = (501, "'{name}' not understood")
BAD_COUNT = (501, "Invalid number of parameters")

OPERATION_NOT_PERMITTED = (501, "{cmd}: Operation not permitted")
TRANSFERRED = ("150 Opening <MODE> mode data connection for <path>", "226 Transfer complete")

commands = (
    Command("TYPE", type_, needs_login=False, arg=REQUIRED, missing=NOT_UNDERSTOOD, limit=False, help_at=37,
            help="<sp> type-code (A, I, L 7, L 8)",
            replies=("200 Type set to <code as sent: A, I, L>", "504 TYPE not implemented for '<x>' parameter",
                     "500 'TYPE' not understood")),
    Command("MODE", mode, arg=REQUIRED, missing=NOT_UNDERSTOOD_501, limit=False, help_at=39,
            help="<sp> mode-code (S)", feat=("MODE Z",), feat_for=feat_when(mod_deflate.engine_on, "MODE Z"),
            replies=("200 Mode set to S", "200 OK (MODE Z: DeflateEngine on)", "504 '<x>' unsupported transfer mode",
                     "501 'MODE' not understood")),
    Command("STRU", stru, arg=REQUIRED, missing=NOT_UNDERSTOOD_501, limit=False, help_at=38,
            help="<sp> structure-code (F)", replies=("200 Structure set to F", "501 'STRU' not understood")),
    Command("ALLO", allo, arg=OPTIONAL, limit=False, help_at=11, help="<sp> size",
            replies=("202 No storage allocation necessary", "504 <x>: Invalid ALLO argument",
                     "504 'ALLO' not understood")),
    Command("SMNT", smnt, arg=OPTIONAL, help="<sp> pathname", help_at=5, implemented=False, limit=False,
            replies=("502 SMNT command not implemented",)),
    Command("PORT", port, arg=REQUIRED, missing=BAD_COUNT, help="<sp> h1,h2,h3,h4,p1,p2", help_at=7,
            limit_all=False, denied=OPERATION_NOT_PERMITTED,
            replies=("200 PORT command successful", "501 Illegal PORT command")),
    Command("EPRT", eprt, arg=REQUIRED, missing=BAD_COUNT, help="<sp> |proto|addr|port|", help_at=9,
            limit_all=False, denied=OPERATION_NOT_PERMITTED, feat=("EPRT",),
            replies=("200 EPRT command successful", "522 Network protocol not supported, use (1)",
                     "501 Illegal EPRT command")),
    Command("PASV", pasv, arg=NONE, help="(returns address/port)", help_at=8, limit_all=False,
            denied=OPERATION_NOT_PERMITTED, replies=("227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).",)),
    Command("EPSV", epsv, arg=OPTIONAL, help="[<sp> proto|ALL]", help_at=10, limit_all=False,
            denied=OPERATION_NOT_PERMITTED, feat=("EPSV",),
            replies=("229 Entering Extended Passive Mode (|||<port>|)", "200 EPSV ALL command successful")),
    Command("REST", rest, arg=REQUIRED, missing=NOT_UNDERSTOOD, help="<sp> byte-count", help_at=44,
            feat=("REST STREAM",), limit=False,
            replies=("350 Restarting at <n>. Send STORE or RETRIEVE to initiate transfer",)),
    Command("RETR", retr, READ, arg=REQUIRED, missing=NOT_UNDERSTOOD, help="<sp> pathname", help_at=40,
            path=HOME_EXACT_PATH, transfer=True, denied=NOT_PERMITTED,
            replies=("150 Opening <MODE> mode data connection for <path> (<n> bytes)", "226 Transfer complete")),
    Command("STOR", stor, WRITE, arg=REQUIRED, missing=NOT_UNDERSTOOD, help="<sp> pathname", help_at=41,
            path=HOME_EXACT_PATH, path_filter=True, transfer=True, denied=NOT_PERMITTED,
            replies=TRANSFERRED + ("550 <path>: Overwrite permission denied",)),
    Command("STOU", stou, WRITE, arg=OPTIONAL, help="(store unique filename)", help_at=42, path=EXACT_PATH,
            path_filter=True, transfer=True, denied=(550, "{unique}: Operation not permitted"),
            replies=("150 FILE: <name>", "226 Transfer complete")),
    Command("APPE", appe, WRITE, arg=REQUIRED, missing=NOT_UNDERSTOOD, help="<sp> pathname", help_at=43,
            path=HOME_EXACT_PATH, path_filter=True, transfer=True, denied=NOT_PERMITTED, replies=TRANSFERRED),
    Command("RANG", rang, arg=OPTIONAL, help="<sp> start-point <sp> end-point", help_at=46, feat=("RANG STREAM",),
            denied=(552, "{cmd}: Operation not permitted"),
            replies=("350 Transferring byte range of <n> bytes starting from <start>", "350 Reset byte transfer range",
                     "501 RANG start must be less than end", "551 RANG: Transfer ranges not allowed in ASCII mode")),
    Command("ABOR", abor, arg=NONE, extra=(500, "'{name} {arg}' not understood"), help="(abort operation)",
            help_at=45, limit=False, replies=("226 Abort successful",)),
)

MODULE = Module(NAME, directives=directives, commands=commands, session_init=session_init,
                master_preload=_settle_owners, hooks=(Hook(POST_CMD, "PASS", _after_pass),)
                + tuple(Hook(POST_CMD_ERR, c.name, _drop_passive) for c in commands if c.transfer))
