"""RFC 1413 (ident) queries as ProFTPD 1.3.8's mod_ident makes them, bounded in time and in bytes.

`query()` connects from the server's address (any port) to the client's address, port 113, sends
`<client port>, <server port>\\r\\n` and reads one answer line; everything, the connection included, happens within
one deadline, and the socket is never blocking, so a silent, slow or endless identd costs the session at most the
timeout. What is read is ProFTPD's `pr_netio_gets` into a 256-byte buffer: bytes with the high bit set are dropped,
at most 255 others are kept, up to and including the first newline; on a timeout or EOF the partial line counts.

`parse()` is ProFTPD's reading of that line (`pr_str_get_token` on `:`):

    6193, 23 : USERID : UNIX : stjohns      -> "stjohns" (the rest of the line after the third colon, spaces at its
                                               start and spaces/tabs at its end removed; inner colons kept)
    6195, 23 : ERROR : HIDDEN-USER          -> "HIDDEN-USER"
    anything else (other errors, no colon)  -> None (mod_ident then records "UNKNOWN")

Nothing here knows the session: proftpy/modules/ident.py asks and records.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time

from . import poll_ms

PORT = 113                      # getservbyname("ident", "tcp")
LINE_MAX = 255                  # ProFTPD reads into char buf[256]
RAW_MAX = 65536                 # bytes read at most (those with the high bit set count here, not in LINE_MAX)
_SPACE = " \t\n\v\f\r"          # C's isspace()


def _token(text: str) -> tuple[str | None, str]:
    """pr_str_get_token(&text, ":"): None on an empty string; else what precedes the first colon and the rest
    (empty when there was no colon)."""
    if not text:
        return None, text
    head, _, rest = text.partition(":")
    return head, rest


def parse(line: bytes) -> str | None:
    """The ident name in one answer line (as read by `read_line`), or None."""
    text = line.split(b"\0", 1)[0].rstrip(b"\r\n").decode("ascii", "replace")
    first, rest = _token(text)
    if first is None:
        return None
    kind, rest = _token(rest)
    if kind is None:
        return None
    kind = kind.lstrip(_SPACE).rstrip(" \t")
    if kind.upper() == "ERROR":
        return "HIDDEN-USER" if rest.lstrip(_SPACE).rstrip(" \t").upper() == "HIDDEN-USER" else None
    if kind.upper() == "USERID":
        system, rest = _token(rest)
        if system is None:
            return None
        return rest.lstrip(_SPACE).rstrip(" \t")
    return None


def keep(data: bytes) -> tuple[bytes, bool]:
    """What pr_netio_gets keeps of `data`: 7-bit bytes only, at most LINE_MAX, up to the first newline; and
    whether the line is complete (a newline, or the buffer full)."""
    out = bytearray()
    for b in data:
        if b & 0x80:
            continue
        out.append(b)
        if b == 0x0A or len(out) >= LINE_MAX:
            return bytes(out), True
    return bytes(out), False


def _plain(address: str) -> str:
    """An IPv4-mapped IPv6 address as IPv4; others unchanged."""
    return address[7:] if address.lower().startswith("::ffff:") and "." in address else address


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


class Outcome:
    """What a query came to: `ident` (None: no name) and `why` (for the trace and the debug log)."""

    __slots__ = ("ident", "why", "line")

    def __init__(self, ident: str | None, why: str, line: bytes = b""):
        self.ident, self.why, self.line = ident, why, line


def query(local: tuple[str, int], remote: tuple[str, int], timeout: float, port: int = PORT) -> Outcome:
    """Ask the identd at the client's `remote` address who owns the connection `remote` -> `local`, within
    `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    local_addr, remote_addr = _plain(local[0]), _plain(remote[0])
    family = _family(remote_addr)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        return Outcome(None, f"error creating connection: {e.strerror}")
    try:
        sock.setblocking(False)
        if _family(local_addr) == family:
            try:
                sock.bind((local_addr, 0))
            except OSError as e:
                return Outcome(None, f"error binding to {local_addr}: {e.strerror}")
        err = sock.connect_ex((remote_addr, port))
        if err not in (0, errno.EINPROGRESS):
            return Outcome(None, f"connection to {remote_addr}, port {port} failed: {_strerror(err)}")
        if err:
            if not _wait(sock, select.POLLOUT, deadline):
                return Outcome(None, f"ident lookup timed out after {timeout:g} secs")
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return Outcome(None, f"connection to {remote_addr}, port {port} failed: {_strerror(err)}")
        request = f"{remote[1]}, {local[1]}\r\n".encode()
        while request:
            if not _wait(sock, select.POLLOUT, deadline):
                return Outcome(None, f"ident lookup timed out after {timeout:g} secs")
            try:
                request = request[sock.send(request):]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                return Outcome(None, f"error writing command to ident server: {e.strerror}")
        return _read(sock, deadline, timeout)
    finally:
        sock.close()


def _read(sock: socket.socket, deadline: float, timeout: float) -> Outcome:
    raw = b""
    while True:
        line, complete = keep(raw)
        if complete:
            break
        if len(raw) >= RAW_MAX:
            break
        if not _wait(sock, select.POLLIN, deadline):
            if not line:
                return Outcome(None, f"ident lookup timed out after {timeout:g} secs")
            break                       # ProFTPD: the partial line read before the timer fired counts
        try:
            got = sock.recv(min(4096, RAW_MAX - len(raw)))
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            if not line:
                return Outcome(None, f"ident lookup failed: {e.strerror}")
            break
        if not got:
            if not line:
                return Outcome(None, "ident server closed the connection without an answer")
            break
        raw += got
    name = parse(line)
    return Outcome(name, "received an answer" if name is not None else "answer without a user name", line)


def _wait(sock: socket.socket, event: int, deadline: float) -> bool:
    """Whether `sock` is ready for `event` before `deadline` (an error or hang-up counts as ready)."""
    poller = select.poll()
    poller.register(sock, event)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            if poller.poll(poll_ms(left)):
                return True
        except InterruptedError:
            continue


def _strerror(err: int) -> str:
    return os.strerror(err)
