"""A PostgreSQL client on the standard library: the v3 frontend/backend protocol, as much as mod_sql needs.

Startup with authentication trust, cleartext, md5 or SCRAM-SHA-256 (PostgreSQL 15's default); TLS (SSLRequest)
when the caller gives an SSL context; statements through the extended query protocol (Parse/Bind/Execute/Sync)
with every parameter sent as text beside the SQL, never in it; `?` placeholders rewritten to `$1..$n` outside
quoted text. Every wait on the server is bounded (the socket's timeout); an ErrorResponse is a PgError carrying
the server's message. Protocol: https://www.postgresql.org/docs/15/protocol.html."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from typing import TYPE_CHECKING, Sequence

from proftpy.auth.wire import GONE, Wire, resolve

if TYPE_CHECKING:
    import ssl                  # loaded by the caller that asks for TLS: a plain session never loads it

PROTOCOL = 196608               # 3.0
SSL_REQUEST = 80877103
DEFAULT_PORT = 5432
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
MAX_MESSAGE = 1 << 30           # a length beyond this is a broken stream, not a message


class PgError(Exception):
    """The server refused (ErrorResponse: `message`, `code` its SQLSTATE), or the conversation failed."""

    def __init__(self, message: str, code: str = "", broken: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.broken = broken        # the connection is unusable (lost, timed out, protocol error)


# -- messages ------------------------------------------------------------------------------------------------------
def message(kind: bytes, body: bytes = b"") -> bytes:
    """One frontend message: its type byte, its length (itself included), its body."""
    return kind + struct.pack("!I", len(body) + 4) + body


def cstr(text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if b"\0" in data:
        raise PgError("a NUL byte cannot be sent to PostgreSQL")
    return data + b"\0"


def startup(user: str, database: str) -> bytes:
    body = struct.pack("!I", PROTOCOL) + b"".join(cstr(k) + cstr(v) for k, v in (
        ("user", user), ("database", database), ("client_encoding", "UTF8"), ("application_name", "proftpy"))) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def error_fields(body: bytes) -> dict[str, str]:
    """An ErrorResponse/NoticeResponse body: field code (S, C, M, D...) -> text."""
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return out


def parse_data_row(body: bytes) -> tuple[str | None, ...]:
    """A DataRow: its columns as text (the text format), NULL as None."""
    (count,), pos, values = struct.unpack_from("!H", body), 2, []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if size < 0:
            values.append(None)
            continue
        values.append(body[pos:pos + size].decode("utf-8", "surrogateescape"))
        pos += size
    return tuple(values)


INT8, NUMERIC, UNKNOWN = 20, 1700, 0      # parameter type OIDs


def param_type(value: object) -> int:
    """A number is typed as the number it reads as in the SQL ProFTPD writes (`0.0` is numeric, which an integer
    column takes by assignment); text is left for the server to infer from where it stands."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return UNKNOWN
    return INT8 if isinstance(value, int) else NUMERIC


def extended_query(sql: str, params: Sequence) -> bytes:
    """Parse (unnamed statement, numbers typed, other parameters' types left to the server), Bind (text
    parameters, text results), Execute (all rows), Sync."""
    types = struct.pack(f"!H{len(params)}I", len(params), *(param_type(p) for p in params))
    parse = message(b"P", b"\0" + cstr(sql) + types)
    values = [struct.pack("!H", len(params))]
    for p in params:
        if p is None:
            values.append(struct.pack("!i", -1))
        else:
            data = (p if isinstance(p, str) else str(p)).encode("utf-8", "surrogateescape")
            values.append(struct.pack("!i", len(data)) + data)
    bind = message(b"B", b"\0\0" + struct.pack("!H", 0) + b"".join(values) + struct.pack("!H", 0))
    return parse + bind + message(b"E", b"\0" + struct.pack("!I", 0)) + message(b"S")


def placeholders(sql: str) -> str:
    """`?` -> `$1`, `$2`... outside quoted text: '...' (with '' inside; E'...' with backslash escapes), "..."
    identifiers, $tag$...$tag$ strings, -- and /* */ comments."""
    out: list[str] = []
    i, n, count = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c == "?":
            count += 1
            out.append(f"${count}")
            i += 1
            continue
        end = i + 1
        if c == "'":
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            while end < n:
                if backslash and sql[end] == "\\":
                    end += 2
                    continue
                if sql[end] == "'":
                    if end + 1 < n and sql[end + 1] == "'":
                        end += 2
                        continue
                    end += 1
                    break
                end += 1
        elif c == '"':
            close = sql.find('"', i + 1)
            end = n if close < 0 else close + 1
        elif sql.startswith("--", i):
            close = sql.find("\n", i)
            end = n if close < 0 else close + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
        elif c == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            close_tag = sql.find("$", i + 1)
            tag = sql[i:close_tag + 1] if close_tag > 0 else ""
            if tag and all(ch.isalnum() or ch == "_" for ch in tag[1:-1]) and not tag[1:2].isdigit():
                close = sql.find(tag, close_tag + 1)
                end = n if close < 0 else close + len(tag)
        out.append(sql[i:min(end, n)])
        i = end
    return "".join(out)


# -- authentication ------------------------------------------------------------------------------------------------
def md5_password(user: str, password: str, salt: bytes) -> str:
    inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


class Scram:
    """SCRAM-SHA-256 without channel binding (RFC 5802, RFC 7677): `first()`, then `final(server_first)`, then
    `verify(server_final)`. PostgreSQL ignores the SCRAM user name (it has the startup one): it is sent empty."""

    def __init__(self, password: str, user: str = "", nonce: str | None = None) -> None:
        self.password = password.encode("utf-8")
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={self.nonce}"
        self.server_signature = b""

    def first(self) -> str:
        return "n,," + self.bare

    def final(self, server_first: str) -> str:
        attrs = dict(part.split("=", 1) for part in server_first.split(",") if "=" in part)
        nonce, salt, rounds = attrs.get("r", ""), attrs.get("s"), attrs.get("i", "")
        if not nonce.startswith(self.nonce) or salt is None or not rounds.isdigit():
            raise PgError("bad SCRAM server-first message", broken=True)
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(salt), int(rounds))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={nonce}"
        auth = f"{self.bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), auth, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_signature = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def verify(self, server_final: str) -> None:
        if not server_final.startswith("v=") or not hmac.compare_digest(
                base64.b64decode(server_final[2:].split(",")[0]), self.server_signature):
            raise PgError("the server's SCRAM signature is wrong", broken=True)


# -- the connection ------------------------------------------------------------------------------------------------
class Connection(Wire):
    """One session with a PostgreSQL server. `host`: an address or name (TCP) or a directory (Unix socket
    `.s.PGSQL.<port>`); `timeout` bounds every wait (connect, each read, each write)."""

    error = PgError

    def __init__(self, host: str, port: int, database: str, user: str, password: str | None, timeout: float,
                 tls: "ssl.SSLContext | None" = None) -> None:
        super().__init__(timeout)
        self.host, self.port, self.database, self.user = host, port, database, user
        self.password = password
        self.tls = tls
        self.parameters: dict[str, str] = {}

    def connect(self, address: tuple | str) -> None:
        """Connect to `address` (a resolved (family, sockaddr), or a Unix socket path) and log in."""
        self.open_socket(address)
        try:
            if self.tls is not None:
                self._start_tls()
            self._send(startup(self.user, self.database))
            self._authenticate()
        except BaseException:
            self.close()
            raise

    def _start_tls(self) -> None:
        self._send(struct.pack("!II", 8, SSL_REQUEST))
        answer = self.recv_exact(1)
        if answer != b"S":
            raise PgError("server does not support SSL, but SSL was required", broken=True)
        assert self.tls is not None
        self.wrap(self.tls, None if self.host.startswith("/") else self.host)

    def _authenticate(self) -> None:
        scram: Scram | None = None
        while True:
            kind, body = self._read()
            if kind == b"R":
                (code,) = struct.unpack_from("!I", body)
                if code == 0:
                    continue
                if code in (3, 5, 10) and self.password is None:
                    raise PgError("fe_sendauth: no password supplied", broken=True)
                if code == 3:
                    self._send(message(b"p", cstr(self.password or "")))
                elif code == 5:
                    self._send(message(b"p", cstr(md5_password(self.user, self.password or "", body[4:8]))))
                elif code == 10:
                    mechanisms = body[4:].split(b"\0")
                    if b"SCRAM-SHA-256" not in mechanisms:
                        raise PgError("none of the server's SASL authentication mechanisms are supported",
                                      broken=True)
                    scram = Scram(self.password or "")
                    first = scram.first().encode()
                    self._send(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
                elif code == 11 and scram is not None:
                    self._send(message(b"p", scram.final(body[4:].decode()).encode()))
                elif code == 12 and scram is not None:
                    scram.verify(body[4:].decode())
                else:
                    raise PgError(f"authentication method {code} is not supported", broken=True)
            elif kind == b"S":
                key, _, value = body.partition(b"\0")
                self.parameters[key.decode()] = value.rstrip(b"\0").decode("utf-8", "replace")
            elif kind == b"E":
                fields = error_fields(body)
                raise PgError(fields.get("M", "error"), fields.get("C", ""), broken=True)
            elif kind == b"Z":
                return
            # K (BackendKeyData), N (notices): nothing to do

    def query(self, sql: str, params: Sequence = ()) -> list[tuple[str | None, ...]]:
        """The rows of one statement (`$n` placeholders), as text; PgError with the server's message."""
        if self.sock is None:
            raise self.failure(GONE)
        self._send(extended_query(sql, params))
        rows: list[tuple[str | None, ...]] = []
        error: PgError | None = None
        while True:
            kind, body = self._read()
            if kind == b"D":
                rows.append(parse_data_row(body))
            elif kind == b"E":
                fields = error_fields(body)
                error = error or PgError(fields.get("M", "error"), fields.get("C", ""))
            elif kind == b"Z":
                if error is not None:
                    raise error
                return rows
            # 1 ParseComplete, 2 BindComplete, C CommandComplete, I EmptyQuery, n NoData, N notice, S parameter

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            self.sock.settimeout(0.5)
            self.sock.sendall(message(b"X"))
        except OSError:
            pass                    # the server is gone already: nothing to say goodbye to
        self.sock.close()
        self.sock = None

    # framing ---------------------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self.send(data)

    def _read(self) -> tuple[bytes, bytes]:
        head = self.recv_exact(5)
        (length,) = struct.unpack("!I", head[1:])
        if not 4 <= length <= MAX_MESSAGE:
            self.lost()
            raise PgError("invalid message length from server", broken=True)
        return head[:1], self.recv_exact(length - 4)


def addresses(host: str | None, port: int | None) -> list[tuple | str]:
    """Where to connect: a Unix socket path (no host: /var/run/postgresql; a host starting with `/`: that
    directory), else each address the name resolves to (resolved now: after a chroot names no longer resolve)."""
    port = port or DEFAULT_PORT
    if host is None or host.startswith("/"):
        return [os.path.join(host or DEFAULT_SOCKET_DIR, f".s.PGSQL.{port}")]
    return resolve(host, port, lambda why: PgError(f'could not translate host name "{host}" to address: {why}',
                                                   broken=True))
