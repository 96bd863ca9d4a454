"""A small client of memcached's binary protocol: GET, SET, DELETE, INCREMENT and NOOP, on one server, every call
bounded by the connect and I/O timeouts (no retries here: the caller decides).

The binary protocol is the one ProFTPD's mod_memcache (libmemcached with BINARY_PROTOCOL) speaks, and the only one
that carries mod_ban's keys: they hold quotes and end with a NUL byte, which the text protocol refuses. A request
is a 24-byte header (magic 0x80, opcode, key length, extras length, data type, vbucket, body length, opaque, CAS)
followed by extras, key and value; a response has the same header with magic 0x81 and a status where the vbucket
was. Responses larger than MAX_BODY are refused (memcached's items are at most 1 MiB by default).
"""

from __future__ import annotations

import socket
import struct

HEADER = struct.Struct("!BBHBBHIIQ")
GET, SET, DELETE, INCREMENT, NOOP = 0x00, 0x01, 0x04, 0x05, 0x0A
NOT_FOUND, NON_NUMERIC = 0x0001, 0x0006
MAX_BODY = 1 << 20 | 4096
MAX_KEY = 250


class MemcacheError(Exception):
    """memcached could not be asked or answered with an error (the caller treats both as 'down')."""


class Memcached:
    """One connection to one memcached server (`host, port` or a Unix socket path), made on first use."""

    def __init__(self, host: str | None, port: int, path: str | None = None, connect_timeout: float = 0.5,
                 io_timeout: float = 0.5):
        self.host, self.port, self.path = host, port, path
        self.connect_timeout, self.io_timeout = connect_timeout, io_timeout
        self._sock: socket.socket | None = None
        self._opaque = 0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            try:
                if self.path:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.settimeout(self.connect_timeout)
                    sock.connect(self.path)
                else:
                    sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:
                raise MemcacheError(f"connecting: {e.strerror or e}") from None
            sock.settimeout(self.io_timeout)
            self._sock = sock
        return self._sock

    def request(self, opcode: int, key: bytes, extras: bytes = b"", value: bytes = b"") -> tuple[int, bytes, bytes]:
        """Send one request; its (status, extras, value)."""
        if len(key) > MAX_KEY:
            raise MemcacheError(f"key of {len(key)} bytes is longer than {MAX_KEY}")
        sock = self._connect()
        self._opaque = (self._opaque + 1) & 0xFFFFFFFF
        body = len(extras) + len(key) + len(value)
        try:
            sock.sendall(HEADER.pack(0x80, opcode, len(key), len(extras), 0, 0, body, self._opaque, 0)
                         + extras + key + value)
            head = self._read(sock, HEADER.size)
            magic, op, keylen, extlen, _, status, total, opaque, _ = HEADER.unpack(head)
            if magic != 0x81 or op != opcode or opaque != self._opaque or total > MAX_BODY \
                    or keylen + extlen > total:
                raise MemcacheError("unexpected answer")
            data = self._read(sock, total)
        except (OSError, MemcacheError) as e:
            self.close()
            raise MemcacheError(str(e) or type(e).__name__) from None
        return status, data[:extlen], data[extlen + keylen:]

    @staticmethod
    def _read(sock: socket.socket, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            chunk = sock.recv(min(n - got, 65536))
            if not chunk:
                raise MemcacheError("connection closed by memcached")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def _checked(self, status: int, what: str) -> None:
        if status != 0:
            raise MemcacheError(f"{what} failed: status {status:#06x}")

    def noop(self) -> None:
        """Is it there and answering (libmemcached's ping)?"""
        status, _, _ = self.request(NOOP, b"")
        self._checked(status, "NOOP")

    def get(self, key: bytes) -> bytes | None:
        status, _, value = self.request(GET, key)
        if status == NOT_FOUND:
            return None
        self._checked(status, "GET")
        return value

    def set(self, key: bytes, value: bytes, expires: int = 0, flags: int = 0) -> None:
        """`expires`: 0 never; up to 30 days seconds from now; above, a Unix time (memcached's rule)."""
        status, _, _ = self.request(SET, key, struct.pack("!II", flags, expires & 0xFFFFFFFF), value)
        self._checked(status, "SET")

    def delete(self, key: bytes) -> None:
        status, _, _ = self.request(DELETE, key)
        if status != NOT_FOUND:
            self._checked(status, "DELETE")

    def incr(self, key: bytes, expires: int) -> int:
        """Add 1 to a counter made (with 1, expiring after `expires` seconds; 0: never) by the first increment. A
        counter held as 1 to 8 binary bytes, little-endian (ProFTPD's mod_tls_memcache makes its statistics so,
        which memcached then refuses to increment), is read and written back as memcached's decimal text."""
        status, _, value = self.request(INCREMENT, key, struct.pack("!QQI", 1, 1, expires & 0xFFFFFFFF))
        if status == NON_NUMERIC:
            old = self.get(key) or b""
            if not 1 <= len(old) <= 8:
                raise MemcacheError(f"INCREMENT of a value of {len(old)} bytes that is not a number")
            count = int.from_bytes(old, "little") + 1
            self.set(key, str(count).encode(), expires)
            return count
        self._checked(status, "INCREMENT")
        if len(value) != 8:
            raise MemcacheError("INCREMENT answered without a counter")
        return struct.unpack("!Q", value)[0]
