"""TLSPreSharedKey (TLS-PSK): the key files read in the master when a server's context is built, and the server
callback OpenSSL asks during a handshake for the key of the identity the client names.

As in ProFTPD 1.3.8: a key file holds hex digits (one trailing newline allowed), at least 20 bytes of file, and must
not be world-readable; the key is the number those digits spell, as OpenSSL's BN_bn2bin gives it (no leading zero
bytes). An identity that is not configured gets a random key, so the handshake fails the same way as with a wrong
key (a client cannot learn which identities exist), and TLSLog says so. The same callback serves TLSv1.2's PSK
cipher suites and TLSv1.3's external PSKs (OpenSSL uses it for both, with a SHA-256 suite in TLSv1.3).
ProFTPD reads the files in every session and logs a bad one; proftpy refuses it at start (`FILE:LINE`)."""

from __future__ import annotations

import os
import ssl
import stat
from typing import TYPE_CHECKING, Callable

from ..config.errors import ConfigError

if TYPE_CHECKING:
    from ..config.tree import Server

MIN_FILE_LEN = 20           # ProFTPD's TLS_MIN_PSK_LEN, counted on the file's bytes
FAKE_LEN = 32


def read_key(path: str) -> bytes:
    """The key in a `hex:` file; ValueError with ProFTPD's words when it cannot be used."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise ValueError(f"error opening TLSPreSharedKey file '{path}': {e.strerror}") from None
    try:
        if os.fstat(fd).st_mode & stat.S_IROTH:
            raise ValueError(f"unable to use TLSPreSharedKey file '{path}': file is world-readable")
        data = os.read(fd, 8192)
    finally:
        os.close(fd)
    if len(data) < MIN_FILE_LEN:
        raise ValueError(f"read {len(data)} bytes from TLSPreSharedKey file '{path}', need at least "
                         f"{MIN_FILE_LEN} bytes of key data")
    text = data[:-1] if data.endswith(b"\n") else data
    if not text or text.strip(b"0123456789abcdefABCDEF"):
        raise ValueError(f"unable to use TLSPreSharedKey file '{path}': not a hex number")
    number = int(text, 16)
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def keys(server: "Server") -> dict[str, bytes]:
    """The server's TLSPreSharedKey identities and keys; ConfigError naming the line of a key that is unusable."""
    out = {}
    for p in server.section.all("TLSPreSharedKey"):
        try:
            out[p.value.identity] = read_key(p.value.path)
        except ValueError as e:
            raise ConfigError(f"TLSPreSharedKey: {e}", p.where) from None
    return out


class PskServer:
    """The context's PSK callback. `misses` collects the identities asked for that are not configured, for the
    session to write to TLSLog after the handshake (a callback inside OpenSSL cannot reach the session)."""

    def __init__(self, table: dict[str, bytes]):
        self.table = table
        self.misses: list[str | None] = []     # None: the client named no identity

    def __call__(self, identity: str | None) -> bytes:
        key = self.table.get(identity) if identity else None
        if key is None:
            self.misses.append(identity or None)
            return os.urandom(FAKE_LEN)
        return key

    def drain(self) -> list[str | None]:
        out, self.misses = self.misses, []
        return out


def install(server: "Server", ctx: ssl.SSLContext) -> PskServer | None:
    """Read the keys and hand the callback to OpenSSL (Python 3.13's ssl module); None without TLSPreSharedKey."""
    table = keys(server)
    if not table:
        return None
    setter: Callable | None = getattr(ctx, "set_psk_server_callback", None)
    if setter is None:
        first = server.section.all("TLSPreSharedKey")[0]
        raise ConfigError("TLSPreSharedKey: TLS-PSK needs Python 3.13's ssl module", first.where)
    callback = PskServer(table)
    setter(callback)
    return callback


def missed(psk: PskServer | None) -> list[str]:
    """TLSLog's lines for the unknown identities asked for since the last call."""
    if psk is None:
        return []
    return [f"warning: requested PSK identity '{name}' not configured, providing random fake PSK" if name is not None
            else "error: client did not provide PSK identity name, providing random fake PSK" for name in psk.drain()]
