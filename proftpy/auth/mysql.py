"""A MySQL/MariaDB client on the standard library: the client/server protocol, as much as mod_sql needs.

Handshake v10 (protocol 4.1), authentication with mysql_native_password (MariaDB's default), MariaDB's
client_ed25519 (auth_ed25519: the server's nonce signed with a key derived from the password, auth/ed25519.py),
MySQL's caching_sha2_password (MySQL 8's default: the fast path, and the full authentication with the password in
clear over TLS or a Unix socket, else sealed with RSA-OAEP under the key the server sends, auth/rsa_oaep.py) and
sha256_password the same way, an auth switch to any of them; TLS (SSLRequest) when the caller gives
an SSL context; statements as prepared statements (COM_STMT_PREPARE, COM_STMT_EXECUTE with bound parameters,
binary result rows turned into the text the text protocol would give, COM_STMT_CLOSE), so a value is never SQL
text. Every wait is bounded (the socket's timeout); an ERR packet is a MySqlError with the server's message.
Protocol: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html,
https://mariadb.com/kb/en/clientserver-protocol/."""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Sequence

from proftpy.auth import ed25519, rsa_oaep
from proftpy.auth.wire import GONE, Wire, resolve

if TYPE_CHECKING:
    import ssl                  # loaded by the caller that asks for TLS

DEFAULT_PORT = 3306
DEFAULT_SOCKET = "/run/mysqld/mysqld.sock"
MAX_PAYLOAD = 0xFFFFFF
UTF8MB4 = 45                    # utf8mb4_general_ci

LONG_PASSWORD, FOUND_ROWS, LONG_FLAG, CONNECT_WITH_DB = 0x1, 0x2, 0x4, 0x8
PROTOCOL_41, SSL, TRANSACTIONS, SECURE_CONNECTION = 0x200, 0x800, 0x2000, 0x8000
MULTI_RESULTS, PLUGIN_AUTH, PLUGIN_AUTH_LENENC = 0x20000, 0x80000, 0x200000
CLIENT_FLAGS = (LONG_PASSWORD | LONG_FLAG | CONNECT_WITH_DB | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION
                | MULTI_RESULTS | PLUGIN_AUTH | PLUGIN_AUTH_LENENC)

COM_QUIT, COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_CLOSE = 0x01, 0x16, 0x17, 0x19
T_DECIMAL, T_TINY, T_SHORT, T_LONG, T_FLOAT, T_DOUBLE, T_NULL, T_TIMESTAMP = 0, 1, 2, 3, 4, 5, 6, 7
T_LONGLONG, T_INT24, T_DATE, T_TIME, T_DATETIME, T_YEAR = 8, 9, 10, 11, 12, 13
T_VAR_STRING = 0xFD
UNSIGNED = 0x20
MORE_RESULTS = 0x08             # a status flag: another result follows
FAST_AUTH_OK, FULL_AUTH = b"\x03", b"\x04"       # caching_sha2_password's AuthMoreData after the scramble
KEY_REQUEST = {"caching_sha2_password": b"\x02", "sha256_password": b"\x01"}   # "send me your RSA public key"
INTEGERS = {T_TINY: 1, T_SHORT: 2, T_YEAR: 2, T_LONG: 4, T_INT24: 4, T_LONGLONG: 8}


class MySqlError(Exception):
    """The server refused (ERR packet: `message`, `code`), or the conversation failed (`broken`)."""

    def __init__(self, message: str, code: int = 0, broken: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.broken = broken


# -- encodings -----------------------------------------------------------------------------------------------------
def lenenc_int(n: int) -> bytes:
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lenenc_bytes(data: bytes) -> bytes:
    return lenenc_int(len(data)) + data


class Reader:
    """A packet's payload, read field by field."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MySqlError("malformed packet from server", broken=True)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def lenenc(self) -> int | None:
        first = self.int(1)
        if first < 251:
            return first
        if first == 251:
            return None
        return self.int({0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first, 0) or self._bad())

    def lenenc_bytes(self) -> bytes | None:
        n = self.lenenc()
        return None if n is None else self.take(n)

    def cstr(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            end = len(self.data)
        out = self.data[self.pos:end]
        self.pos = end + 1
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out

    def _bad(self) -> int:
        raise MySqlError("malformed length in packet from server", broken=True)


def error_of(payload: bytes) -> MySqlError:
    """An ERR packet: 0xff, code, `#` + SQLSTATE, message."""
    r = Reader(payload[1:])
    code = r.int(2)
    rest = r.rest()
    if rest[:1] == b"#":
        rest = rest[6:]
    return MySqlError(rest.decode("utf-8", "replace"), code)


def native_password(password: str, nonce: bytes) -> bytes:
    """mysql_native_password: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))); nothing for no password."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode("utf-8")).digest()
    mix = hashlib.sha1(nonce[:20] + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix))


def caching_sha2_password(password: str, nonce: bytes) -> bytes:
    """caching_sha2_password's scramble: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)."""
    if not password:
        return b""
    stage1 = hashlib.sha256(password.encode("utf-8")).digest()
    mix = hashlib.sha256(hashlib.sha256(stage1).digest() + nonce[:20]).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix))


def switch_data(plugin: str, data: bytes) -> bytes:
    """The nonce of an auth switch request: client_ed25519's 32 bytes as they are (any of them may be zero), the
    others' 20-byte scramble without its terminating NUL."""
    if plugin == "client_ed25519":
        return data[:32]
    return data[:-1] if data.endswith(b"\0") else data


def rsa_password(password: str, nonce: bytes, pem: bytes) -> bytes:
    """sha256_password's and caching_sha2_password's full authentication without TLS: (password + NUL) XOR the
    20-byte nonce (repeated), sealed with RSA-OAEP (SHA-1) under the public key the server sent (PEM)."""
    scramble = nonce[:20]
    if len(scramble) != 20:
        raise MySqlError("malformed authentication nonce from server", broken=True)
    clear = password.encode("utf-8") + b"\0"
    mixed = bytes(c ^ scramble[i % 20] for i, c in enumerate(clear))
    try:
        return rsa_oaep.encrypt(rsa_oaep.public_key(pem), mixed)
    except rsa_oaep.BadKey as e:
        raise MySqlError(f"the server's RSA public key cannot carry the password: {e}", broken=True) from None


def execute_payload(stmt_id: int, params: Sequence) -> bytes:
    """COM_STMT_EXECUTE: no cursor, one iteration, the NULL bitmap, the types (integers as LONGLONG, other numbers
    as DOUBLE, text as VAR_STRING), the values."""
    out = bytearray(struct.pack("<BIBI", COM_STMT_EXECUTE, stmt_id, 0, 1))
    if not params:
        return bytes(out)
    bitmap = bytearray((len(params) + 7) // 8)
    types, values = bytearray(), bytearray()
    for i, p in enumerate(params):
        if p is None:
            bitmap[i // 8] |= 1 << (i % 8)
            types += bytes([T_NULL, 0])
        elif isinstance(p, int) and not isinstance(p, bool) and -(1 << 63) <= p < 1 << 63:
            types += bytes([T_LONGLONG, 0])
            values += struct.pack("<q", p)
        elif isinstance(p, float):
            types += bytes([T_DOUBLE, 0])
            values += struct.pack("<d", p)
        else:
            types += bytes([T_VAR_STRING, 0])
            values += lenenc_bytes(str(p).encode("utf-8", "surrogateescape"))
    return bytes(out + bitmap + b"\x01" + types + values)


def _number(value: float, single: bool) -> str:
    if single:
        value = float(f"{value:.7g}")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def binary_value(r: Reader, kind: int, flags: int, decimals: int) -> str:
    """One value of a binary result row, as the text protocol would have given it."""
    if kind in INTEGERS:
        size = INTEGERS[kind]
        return str(int.from_bytes(r.take(size), "little", signed=not flags & UNSIGNED))
    if kind == T_FLOAT:
        return _number(struct.unpack("<f", r.take(4))[0], True)
    if kind == T_DOUBLE:
        return _number(struct.unpack("<d", r.take(8))[0], False)
    if kind in (T_DATE, T_DATETIME, T_TIMESTAMP):
        n = r.int(1)
        parts = [r.int(2), r.int(1), r.int(1)] if n >= 4 else [0, 0, 0]
        clock = [r.int(1), r.int(1), r.int(1)] if n >= 7 else [0, 0, 0]
        micro = r.int(4) if n >= 11 else 0
        text = "%04d-%02d-%02d" % tuple(parts)
        if kind == T_DATE:
            return text
        text += " %02d:%02d:%02d" % tuple(clock)
        return text + (f".{micro:06d}"[:decimals + 1] if 0 < decimals <= 6 else "")
    if kind == T_TIME:
        n = r.int(1)
        negative, days, h, m, s = (r.int(1), r.int(4), r.int(1), r.int(1), r.int(1)) if n >= 8 else (0, 0, 0, 0, 0)
        micro = r.int(4) if n >= 12 else 0
        text = "%s%02d:%02d:%02d" % ("-" if negative else "", days * 24 + h, m, s)
        return text + (f".{micro:06d}"[:decimals + 1] if 0 < decimals <= 6 else "")
    data = r.lenenc_bytes()
    return "" if data is None else data.decode("utf-8", "surrogateescape")


def binary_row(payload: bytes, columns: list[tuple[int, int, int]]) -> tuple[str | None, ...]:
    """A binary result row: 0x00, the NULL bitmap (offset 2), the values of the other columns."""
    r = Reader(payload)
    r.take(1)
    bitmap = r.take((len(columns) + 9) // 8)
    out: list[str | None] = []
    for i, (kind, flags, decimals) in enumerate(columns):
        bit = i + 2
        if bitmap[bit // 8] & (1 << (bit % 8)):
            out.append(None)
        else:
            out.append(binary_value(r, kind, flags, decimals))
    return tuple(out)


def column_type(payload: bytes) -> tuple[int, int, int]:
    """A column definition (4.1): (type, flags, decimals)."""
    r = Reader(payload)
    for _ in range(6):
        r.lenenc_bytes()
    r.lenenc()
    r.take(2 + 4)
    kind, flags, decimals = r.int(1), r.int(2), r.int(1)
    return kind, flags, decimals


def is_eof(payload: bytes) -> bool:
    return payload[:1] == b"\xfe" and len(payload) < 9


# -- the connection ------------------------------------------------------------------------------------------------
class Connection(Wire):
    """One session with a MySQL/MariaDB server; `timeout` bounds every wait."""

    error = MySqlError
    connect_failed = "Can't connect to server"
    send_failed = recv_failed = "Lost connection to server"
    closed = "Lost connection to server during query"
    tls_failed = "SSL connection error"

    def __init__(self, host: str, database: str, user: str, password: str | None, timeout: float,
                 tls: "ssl.SSLContext | None" = None) -> None:
        super().__init__(timeout)
        self.host, self.database, self.user = host, database, user
        self.password = password or ""
        self.tls = tls
        self.server_version = ""
        self._seq = 0
        self._key_asked = False         # the server's RSA public key was asked for: the next AuthMoreData is it
        self.unix_socket = False        # connected to a Unix socket (a secure transport for caching_sha2_password)

    def connect(self, address: tuple | str) -> None:
        self.open_socket(address)
        self.unix_socket = isinstance(address, str)
        try:
            self._handshake()
        except BaseException:
            self.lost()
            raise

    def _handshake(self) -> None:
        self._key_asked = False
        payload = self._read()
        if payload[:1] == b"\xff":
            raise _broken(error_of(payload))
        r = Reader(payload)
        if r.int(1) != 10:
            raise MySqlError("unsupported server protocol (not handshake v10)", broken=True)
        self.server_version = r.cstr().decode("utf-8", "replace")
        r.take(4)
        nonce = r.take(8)
        r.take(1)
        caps = r.int(2)
        r.take(1 + 2)
        caps |= r.int(2) << 16
        nonce_len = r.int(1)
        r.take(10)
        if caps & SECURE_CONNECTION:
            nonce += r.take(max(13, nonce_len - 8))[:-1]
        plugin = r.cstr().decode() if caps & PLUGIN_AUTH else "mysql_native_password"
        if not caps & PROTOCOL_41:
            raise MySqlError("the server does not speak protocol 4.1", broken=True)
        flags = CLIENT_FLAGS & (caps | CONNECT_WITH_DB)
        head = struct.pack("<IIB", flags | (SSL if self.tls else 0), MAX_PAYLOAD, UTF8MB4) + bytes(23)
        if self.tls is not None:
            if not caps & SSL:
                raise MySqlError("the server does not support SSL, but SSL was required", broken=True)
            self._write(head)
            self._start_tls()
        auth = self._scramble(plugin, nonce)
        body = head + self.user.encode("utf-8") + b"\0"
        body += lenenc_bytes(auth) if flags & PLUGIN_AUTH_LENENC else bytes([len(auth)]) + auth
        body += self.database.encode("utf-8") + b"\0" + plugin.encode() + b"\0"
        self._write(body)
        self._auth_result(plugin, nonce)

    def _scramble(self, plugin: str, nonce: bytes) -> bytes:
        if plugin == "mysql_native_password":
            return native_password(self.password, nonce)
        if plugin == "caching_sha2_password":
            return caching_sha2_password(self.password, nonce)
        if plugin == "client_ed25519":             # MariaDB's auth_ed25519: sign the 32-byte nonce
            if len(nonce) != 32:
                raise MySqlError("client_ed25519: the server's nonce is not 32 bytes", broken=True)
            try:
                return ed25519.sign(self.password.encode("utf-8"), nonce)
            except ed25519.Ed25519Unavailable as e:
                raise MySqlError(f"authentication plugin 'client_ed25519': {e}", broken=True) from None
        if plugin == "sha256_password":            # MySQL's: the password itself, over TLS or sealed with RSA
            if self.tls is not None:
                return self.password.encode("utf-8") + b"\0"
            if not self.password:
                return b""
            self._key_asked = True
            return KEY_REQUEST[plugin]
        if plugin == "mysql_clear_password" and self.tls is not None:
            return self.password.encode("utf-8") + b"\0"
        raise MySqlError(f"authentication plugin '{plugin}' is not supported", broken=True)

    def _auth_result(self, plugin: str, nonce: bytes) -> None:
        """Until OK or ERR: auth switches (another plugin, a new nonce) and the current plugin's AuthMoreData."""
        while True:
            payload = self._read()
            kind = payload[:1]
            if kind == b"\x00":
                return
            if kind == b"\xff":
                raise _broken(error_of(payload))
            if kind == b"\xfe":                     # auth switch: another plugin, a new nonce
                r = Reader(payload[1:])
                plugin = r.cstr().decode("utf-8", "replace")
                nonce = switch_data(plugin, r.rest())
                self._key_asked = False
                self._write(self._scramble(plugin, nonce))
            elif kind == b"\x01":
                answer = self._more(plugin, nonce, payload[1:])
                if answer is not None:
                    self._write(answer)
            else:
                raise MySqlError("unexpected packet during authentication", broken=True)

    def _more(self, plugin: str, nonce: bytes, data: bytes) -> bytes | None:
        """The answer to AuthMoreData (None: wait for the next packet). caching_sha2_password: after the fast path
        OK follows; a full authentication takes the password in clear over TLS or a Unix socket, else (as
        libmariadb's plugin on a connection it does not count as secure) sealed with the RSA key the server is then
        asked for: a password leaves, in an RSA envelope, only once the server has asked for it."""
        if self._key_asked and plugin in KEY_REQUEST:
            self._key_asked = False
            return rsa_password(self.password, nonce, data)
        if plugin == "caching_sha2_password" and data == FAST_AUTH_OK:
            return None
        if plugin == "caching_sha2_password" and data == FULL_AUTH:
            if self.tls is not None or self.unix_socket:
                return self.password.encode("utf-8") + b"\0"
            self._key_asked = True
            return KEY_REQUEST[plugin]
        raise MySqlError("unexpected packet during authentication", broken=True)

    def _start_tls(self) -> None:
        assert self.tls is not None
        self.wrap(self.tls, None if self.host.startswith("/") else self.host)

    def query(self, sql: str, params: Sequence = ()) -> list[tuple[str | None, ...]]:
        """The rows of one statement (`?` placeholders) run as a prepared statement, as text."""
        if self.sock is None:
            raise self.failure(GONE)
        self._command(bytes([COM_STMT_PREPARE]) + sql.encode("utf-8", "surrogateescape"))
        payload = self._read()
        if payload[:1] == b"\xff":
            raise error_of(payload)
        r = Reader(payload[1:])
        stmt_id, ncols, nparams = r.int(4), r.int(2), r.int(2)
        for count in (nparams, ncols):
            if count:
                for _ in range(count):
                    self._read()
                self._read_eof()
        try:
            if nparams != len(params):
                raise MySqlError(f"the statement has {nparams} placeholders for {len(params)} values")
            return self._execute(stmt_id, params)
        finally:
            if self.sock is not None:
                self._command(struct.pack("<BI", COM_STMT_CLOSE, stmt_id))

    def _execute(self, stmt_id: int, params: Sequence) -> list[tuple[str | None, ...]]:
        """The first result set's rows; the results after it (a CALL's) are read and left."""
        self._command(execute_payload(stmt_id, params))
        rows: list[tuple[str | None, ...]] | None = None
        while True:
            payload = self._read()
            if payload[:1] == b"\xff":
                raise error_of(payload)
            if payload[:1] == b"\x00":                 # OK: no result set
                r = Reader(payload[1:])
                r.lenenc(), r.lenenc()
                status = r.int(2)
                found: list[tuple[str | None, ...]] = []
            else:
                count = Reader(payload).lenenc() or 0
                columns = [column_type(self._read()) for _ in range(count)]
                self._read_eof()
                found = []
                while True:
                    payload = self._read()
                    if is_eof(payload):
                        status = int.from_bytes(payload[3:5], "little")
                        break
                    if payload[:1] == b"\xff":
                        raise error_of(payload)
                    found.append(binary_row(payload, columns))
            rows = found if rows is None else rows
            if not status & MORE_RESULTS:
                return rows

    def _read_eof(self) -> None:
        if not is_eof(self._read()):
            raise MySqlError("malformed result from server (EOF expected)", broken=True)

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            self.sock.settimeout(0.5)
            self._command(bytes([COM_QUIT]))
        except MySqlError:
            pass                        # the server is gone already: nothing to say goodbye to
        self.lost()

    # framing ---------------------------------------------------------------------------------------------------
    def _command(self, payload: bytes) -> None:
        self._seq = 0
        self._write(payload)

    def _write(self, payload: bytes) -> None:
        assert self.sock is not None
        data = bytearray()
        while True:
            chunk, payload = payload[:MAX_PAYLOAD], payload[MAX_PAYLOAD:]
            data += struct.pack("<I", len(chunk))[:3] + bytes([self._seq & 0xFF]) + chunk
            self._seq += 1
            if len(chunk) < MAX_PAYLOAD:
                break
        self.send(bytes(data))

    def _read(self) -> bytes:
        out = b""
        while True:
            head = self.recv_exact(4)
            length = int.from_bytes(head[:3], "little")
            self._seq = head[3] + 1
            out += self.recv_exact(length)
            if length < MAX_PAYLOAD:
                return out


def _broken(e: MySqlError) -> MySqlError:
    e.broken = True
    return e


def addresses(host: str | None, port: int | None) -> list[tuple | str]:
    """Where to connect: a Unix socket (no host or `localhost`, as libmysqlclient: /run/mysqld/mysqld.sock; a host
    starting with `/`: that socket path), else each address the name resolves to (resolved now, before a
    chroot)."""
    if host is None or host == "localhost":
        return [DEFAULT_SOCKET]
    if host.startswith("/"):
        return [host]
    return resolve(host, port or DEFAULT_PORT, lambda why: MySqlError(f"Unknown server host '{host}' ({why})",
                                                                      broken=True))
