"""A minimal LDAPv3 client (RFC 4511) over a stdlib socket: what mod_ldap asks of a directory.

Messages: BindRequest (simple), SearchRequest, UnbindRequest, the StartTLS ExtendedRequest; their responses decoded
into `Result` and `Entry`. `Connection` (a bounded socket: auth/wire.py) sends one request at a time and waits for
its answer until a deadline; everything a server sends is read as untrusted: a message that is not well-formed BER,
larger than ber.MAX_LENGTH, or with too many entries ends the connection with LdapError, never a traceback. A closed
connection (or RFC 4511's Notice of Disconnection) is ServerDown, a deadline passed is Timeout: their codes and texts
are libldap's (-1 "Can't contact LDAP server", -5 "Timed out"), so the LDAPLog reads as ProFTPD's.

TLS is Python's ssl: `ldaps://` wraps the socket before the first message, StartTLS after its extended operation
succeeded (no message may then remain unread).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proftpy import ber
from proftpy.auth.wire import CONNECT, EOF, GONE, LATE, TLS, Wire

if TYPE_CHECKING:
    import ssl                  # loaded only when a server is TLS: a plain session never loads ssl

# protocolOp tags
BIND_REQUEST, BIND_RESPONSE, UNBIND_REQUEST = 0x60, 0x61, 0x42
SEARCH_REQUEST, SEARCH_ENTRY, SEARCH_DONE, SEARCH_REFERENCE = 0x63, 0x64, 0x65, 0x73
EXTENDED_REQUEST, EXTENDED_RESPONSE = 0x77, 0x78
SIMPLE_AUTH, SASL_AUTH, SERVER_SASL_CREDS = 0x80, 0xA3, 0x87
EXT_NAME, EXT_VALUE, EXT_RESPONSE_NAME = 0x80, 0x81, 0x8A
STARTTLS_OID = "1.3.6.1.4.1.1466.20037"
NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"

SCOPE_BASE, SCOPE_ONE, SCOPE_SUB = 0, 1, 2
DEREF_NEVER, DEREF_SEARCHING, DEREF_FINDING, DEREF_ALWAYS = 0, 1, 2, 3

SUCCESS, SIZE_LIMIT_EXCEEDED, SASL_BIND_IN_PROGRESS, INVALID_CREDENTIALS = 0, 4, 14, 49
SERVER_DOWN, TIMEOUT = -1, -5
MAX_ENTRIES = 100_000           # entries one search may bring (a group search asks for all of them)

# libldap's ldap_err2string() texts: the LDAPLog's words
RESULT_TEXT = {
    0: "Success", 1: "Operations error", 2: "Protocol error", 3: "Time limit exceeded", 4: "Size limit exceeded",
    5: "Compare False", 6: "Compare True", 7: "Authentication method not supported",
    8: "Strong(er) authentication required", 10: "Referral", 11: "Administrative limit exceeded",
    12: "Critical extension is unavailable", 13: "Confidentiality required", 14: "SASL bind in progress",
    16: "No such attribute", 17: "Undefined attribute type", 18: "Inappropriate matching",
    19: "Constraint violation", 20: "Type or value exists", 21: "Invalid syntax", 32: "No such object",
    33: "Alias problem", 34: "Invalid DN syntax", 36: "Alias dereferencing problem",
    48: "Inappropriate authentication", 49: "Invalid credentials", 50: "Insufficient access",
    51: "Server is busy", 52: "Server is unavailable", 53: "Server is unwilling to perform",
    54: "Loop detected", 64: "Naming violation", 65: "Object class violation",
    66: "Operation not allowed on non-leaf", 67: "Operation not allowed on RDN", 68: "Already exists",
    69: "Cannot modify object class", 80: "Internal (implementation specific) error",
    -1: "Can't contact LDAP server", -2: "Local error", -3: "Encoding error", -4: "Decoding error",
    -5: "Timed out", -6: "Unknown authentication method", -7: "Bad search filter", -8: "User cancelled operation",
    -9: "Bad parameter to an ldap routine", -10: "Out of memory", -11: "Connect error",
    -12: "Not Supported", -13: "Control not found", -14: "No results returned", -15: "More results to return",
}


def result_text(code: int) -> str:
    return RESULT_TEXT.get(code, "Unknown error")


class LdapError(Exception):
    """An operation that did not get an answer: `code` is libldap's (negative: the client's side)."""

    def __init__(self, code: int, detail: str = ""):
        super().__init__(detail or result_text(code))
        self.code = code
        self.detail = detail

    @property
    def text(self) -> str:
        """libldap's text for the code, with what went wrong when there is more to say."""
        base = result_text(self.code)
        return f"{base} ({self.detail})" if self.detail and self.detail != base else base


class ServerDown(LdapError):
    def __init__(self, detail: str = ""):
        super().__init__(SERVER_DOWN, detail)


class Timeout(LdapError):
    def __init__(self, detail: str = ""):
        super().__init__(TIMEOUT, detail)


@dataclass(frozen=True)
class Result:
    """An LDAPResult: the code, the matched DN and the server's diagnostic message."""

    code: int
    matched: str = ""
    message: str = ""

    @property
    def text(self) -> str:
        return result_text(self.code)


@dataclass
class Entry:
    """A SearchResultEntry: the DN and the attributes' values, by lower-case attribute description."""

    dn: str
    attributes: dict[str, list[bytes]] = field(default_factory=dict)

    def values(self, name: str) -> list[bytes] | None:
        """The values of an attribute (any case), None when the entry has none (ldap_get_values_len's NULL)."""
        found = self.attributes.get(name.lower())
        return found or None

    def first(self, name: str) -> str | None:
        found = self.values(name)
        return None if found is None else found[0].decode("utf-8", "surrogateescape")


# -- encoding ------------------------------------------------------------------------------------------------------
def message(message_id: int, op: bytes) -> bytes:
    """LDAPMessage ::= SEQUENCE { messageID, protocolOp } (no controls)."""
    return ber.sequence(ber.integer(message_id), op)


def bind_request(version: int, dn: str, password: str | bytes) -> bytes:
    return ber.sequence(ber.integer(version), ber.octets(dn), ber.octets(password, SIMPLE_AUTH), tag=BIND_REQUEST)


def sasl_bind_request(version: int, dn: str, mechanism: str, credentials: bytes | None) -> bytes:
    """A BindRequest whose authentication is SaslCredentials { mechanism, credentials OPTIONAL }."""
    sasl = [ber.octets(mechanism)] + ([] if credentials is None else [ber.octets(credentials)])
    return ber.sequence(ber.integer(version), ber.octets(dn), ber.sequence(*sasl, tag=SASL_AUTH), tag=BIND_REQUEST)


def unbind_request() -> bytes:
    return ber.null(UNBIND_REQUEST)


def search_request(base: str, scope: int, deref: int, size_limit: int, time_limit: int, filter_ber: bytes,
                   attributes: list[str] | tuple[str, ...]) -> bytes:
    return ber.sequence(ber.octets(base), ber.enumerated(scope), ber.enumerated(deref), ber.integer(size_limit),
                        ber.integer(time_limit), ber.boolean(False), filter_ber,
                        ber.sequence(*(ber.octets(a) for a in attributes)), tag=SEARCH_REQUEST)


def extended_request(oid: str, value: bytes | None = None) -> bytes:
    parts = [ber.octets(oid, EXT_NAME)]
    if value is not None:
        parts.append(ber.octets(value, EXT_VALUE))
    return ber.sequence(*parts, tag=EXTENDED_REQUEST)


# -- decoding ------------------------------------------------------------------------------------------------------
def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def decode_message(data: bytes) -> tuple[int, int, bytes]:
    """(messageID, protocolOp tag, protocolOp content) of one LDAPMessage; BerError when it is not one."""
    tag, content, end = ber.element(data)
    if tag != ber.SEQUENCE or end != len(data):
        raise ber.BerError("not an LDAPMessage")
    parts = ber.elements(content)
    if len(parts) < 2:
        raise ber.BerError("LDAPMessage without a protocolOp")
    message_id = ber.decode_integer(ber.expect(parts[0], ber.INTEGER, "messageID"))
    return message_id, parts[1][0], parts[1][1]


def decode_result(content: bytes) -> tuple[Result, list[tuple[int, bytes]]]:
    """An LDAPResult's fields, and the elements after them (an ExtendedResponse's name and value)."""
    parts = ber.elements(content)
    if len(parts) < 3:
        raise ber.BerError("LDAPResult with fewer than 3 fields")
    code = ber.decode_integer(ber.expect(parts[0], ber.ENUMERATED, "resultCode"))
    matched = _text(ber.expect(parts[1], ber.OCTET_STRING, "matchedDN"))
    diagnostic = _text(ber.expect(parts[2], ber.OCTET_STRING, "diagnosticMessage"))
    return Result(code, matched, diagnostic), parts[3:]


def decode_entry(content: bytes) -> Entry:
    parts = ber.elements(content)
    if len(parts) != 2:
        raise ber.BerError("SearchResultEntry without 2 fields")
    entry = Entry(_text(ber.expect(parts[0], ber.OCTET_STRING, "objectName")))
    for attribute in ber.elements(ber.expect(parts[1], ber.SEQUENCE, "attributes")):
        fields = ber.elements(ber.expect(attribute, ber.SEQUENCE, "PartialAttribute"))
        if len(fields) != 2:
            raise ber.BerError("PartialAttribute without 2 fields")
        name = _text(ber.expect(fields[0], ber.OCTET_STRING, "type")).lower()
        values = [ber.expect(v, ber.OCTET_STRING, "value") for v in
                  ber.elements(ber.expect(fields[1], ber.SET, "vals"))]
        entry.attributes.setdefault(name, []).extend(values)
    return entry


# -- the connection ------------------------------------------------------------------------------------------------
class Connection(Wire):
    """One connection to a directory: requests sent one at a time, each answer awaited until a deadline."""

    def __init__(self, sock: socket.socket | None = None, peer: str = ""):
        super().__init__(0.0, sock)
        self.peer = peer
        self.next_id = 1

    @property
    def closed(self) -> bool:
        return self.sock is None

    def failure(self, what: str, e: BaseException | None = None) -> LdapError:
        """libldap's words: a deadline passed is Timeout, anything else ServerDown."""
        if what == LATE:
            return Timeout()
        if what == EOF:
            return ServerDown("connection closed by the server")
        if what == GONE:
            return ServerDown("connection closed")
        if what == TLS:
            return ServerDown(f"TLS handshake: {getattr(e, 'reason', None) or e}")
        if isinstance(e, TimeoutError):
            return ServerDown("connect timed out") if what == CONNECT else Timeout()
        return ServerDown(getattr(e, "strerror", None) or str(e))

    @classmethod
    def open(cls, addresses: list[tuple], timeout: float, peer: str = "") -> "Connection":
        """Connect to the first of `addresses` (getaddrinfo's tuples) that answers within `timeout` each;
        ServerDown naming the last error when none does."""
        conn = cls(None, peer)
        conn.timeout = timeout
        last: LdapError = ServerDown("no address")
        for family, _, _, _, address in addresses:
            try:
                conn.open_socket((family, address))
                return conn
            except LdapError as e:
                last = e
        raise last

    def wrap(self, context: ssl.SSLContext, hostname: str | None, deadline: float | None = None) -> None:
        """The TLS handshake (ldaps://, or after StartTLS); LdapError when it fails."""
        if self.buf:
            raise LdapError(-2, "data left before the TLS handshake")
        super().wrap(context, hostname, deadline)

    def request(self, op: bytes, deadline: float) -> int:
        """Send one request; its message ID."""
        message_id = self.next_id
        self.next_id = self.next_id % 0x7FFFFFFF + 1
        self.send(message(message_id, op), deadline)
        return message_id

    def receive(self, message_id: int, deadline: float) -> tuple[int, bytes]:
        """The next message answering `message_id`: (protocolOp tag, content). Others are skipped; a Notice of
        Disconnection, a closed connection or bytes that are not LDAP end the connection (LdapError)."""
        while True:
            size = self._complete()
            if size is None:
                self.fill(65536, deadline)
                continue
            raw = bytes(self.buf[:size])
            del self.buf[:size]
            try:
                got_id, tag, content = decode_message(raw)
                if got_id == 0 and tag == EXTENDED_RESPONSE:
                    result, _ = decode_result(content)
                    self.close()
                    raise ServerDown(f"notice of disconnection: {result.message or result.text}")
            except ber.BerError as e:
                self.close()
                raise LdapError(-4, str(e)) from None
            if got_id == message_id:
                return tag, content

    def _complete(self) -> int | None:
        try:
            return ber.complete(self.buf)
        except ber.BerError as e:
            self.close()
            raise LdapError(-4, str(e)) from None

    # operations ----------------------------------------------------------------------------------------------
    def bind(self, dn: str, password: str | bytes, version: int, deadline: float) -> Result:
        message_id = self.request(bind_request(version, dn, password), deadline)
        tag, content = self.receive(message_id, deadline)
        return self._result(tag, content, BIND_RESPONSE)

    def sasl_bind(self, dn: str, mechanism: str, credentials: bytes | None, version: int, deadline: float
                  ) -> tuple[Result, bytes | None]:
        """One step of a SASL bind: the result and the server's SASL credentials (None when it sent none)."""
        message_id = self.request(sasl_bind_request(version, dn, mechanism, credentials), deadline)
        tag, content = self.receive(message_id, deadline)
        try:
            if tag != BIND_RESPONSE:
                raise ber.BerError(f"protocolOp {tag:#04x}, expected {BIND_RESPONSE:#04x}")
            result, rest = decode_result(content)
        except ber.BerError as e:
            self.close()
            raise LdapError(-4, str(e)) from None
        found = [value for rest_tag, value in rest if rest_tag == SERVER_SASL_CREDS]
        return result, (found[0] if found else None)

    def start_tls(self, deadline: float) -> Result:
        message_id = self.request(extended_request(STARTTLS_OID), deadline)
        tag, content = self.receive(message_id, deadline)
        return self._result(tag, content, EXTENDED_RESPONSE)

    def search(self, base: str, scope: int, deref: int, size_limit: int, time_limit: int, filter_ber: bytes,
               attributes: list[str] | tuple[str, ...], deadline: float) -> tuple[Result, list[Entry]]:
        """The entries (references are skipped: mod_ldap does not chase referrals) and the final result."""
        op = search_request(base, scope, deref, size_limit, time_limit, filter_ber, attributes)
        message_id = self.request(op, deadline)
        entries: list[Entry] = []
        while True:
            tag, content = self.receive(message_id, deadline)
            try:
                if tag == SEARCH_ENTRY:
                    if len(entries) >= MAX_ENTRIES:
                        self.close()
                        raise LdapError(-2, f"more than {MAX_ENTRIES} entries")
                    entries.append(decode_entry(content))
                elif tag == SEARCH_DONE:
                    return decode_result(content)[0], entries
                elif tag != SEARCH_REFERENCE:
                    raise ber.BerError(f"unexpected protocolOp {tag:#04x} in a search")
            except ber.BerError as e:
                self.close()
                raise LdapError(-4, str(e)) from None

    def _result(self, tag: int, content: bytes, expected: int) -> Result:
        try:
            if tag != expected:
                raise ber.BerError(f"protocolOp {tag:#04x}, expected {expected:#04x}")
            return decode_result(content)[0]
        except ber.BerError as e:
            self.close()
            raise LdapError(-4, str(e)) from None

    def unbind(self) -> None:
        """UnbindRequest (no answer), then close; errors do not matter any more."""
        if self.sock is not None:
            try:
                self.sock.settimeout(1.0)
                self.sock.sendall(message(self.next_id, unbind_request()))
            except OSError:
                pass                # going away anyway
        self.close()

    def close(self) -> None:
        self.lost()
