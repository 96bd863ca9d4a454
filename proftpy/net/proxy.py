"""The PROXY protocol header (HAProxy's doc/proxy-protocol.txt, versions 1 and 2): a pure parser.

A load balancer in front of the server sends one header before any byte of the client's, naming the client's
address and port and the address and port the client connected to. `parse(data, version)` reads the bytes at the
head of a connection and answers:

- None: not enough bytes yet (wait for more, within the timeout);
- a `Header`: what it says, and how many bytes it takes (`size`: the caller consumes exactly those; what follows
  belongs to the session, a command or a TLS ClientHello);
- or raises `Invalid`: the connection is to be closed without a reply.

What is refused, as the protocol asks of a receiver: a wrong signature (checked on the first bytes, so a client
that speaks something else is refused at once), a version-1 line with no CRLF within its 107 bytes, a lone CR or
LF, any deviation from the one-space field format, addresses or ports that are not canonical numbers of the named
family (no leading zeros), a version-2 header whose version is not 2, whose command is neither LOCAL nor PROXY,
whose family/transport byte is undefined, whose address block or TLVs are cut short, whose CRC32C TLV does not
match, and one longer than `V2_MAX` (proftpy's bound, far above what proxies send). Like ProFTPD's
mod_proxy_protocol, a header whose source equals its destination (address and port) is refused too.

`source` is None when the real socket addresses stand (v1 UNKNOWN, v2 LOCAL: the proxy's own health check; v2
UNSPEC, UNIX and UDP families, which the protocol lets a receiver treat as UNSPEC). Addresses are canonical IP
strings; an IPv4-mapped IPv6 address is its IPv4 address.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1, V2 = 1, 2
V1_PREFIX = b"PROXY "
V1_MAX = 107                        # the longest version-1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16                       # signature, version/command, family/transport, length
V2_MAX = V2_FIXED + 4096            # proftpy's bound on a version-2 header (the protocol allows 65551)
TLS_RECORD = b"\x16\x03"            # a TLS ClientHello where a header should be

# version 2: family/transport byte -> (name, address block bytes)
FAMILIES = {0x00: ("UNSPEC", 0), 0x11: ("TCP4", 12), 0x12: ("UDP4", 12), 0x21: ("TCP6", 36), 0x22: ("UDP6", 36),
            0x31: ("UNIX", 216), 0x32: ("UNIX", 216)}
LOCAL, PROXY = 0x0, 0x1

# version-2 TLV types (proxy-protocol.txt 2.2.x)
TLV_ALPN, TLV_AUTHORITY, TLV_CRC32C, TLV_NOOP, TLV_UNIQUE_ID = 0x01, 0x02, 0x03, 0x04, 0x05
TLV_SSL, TLV_NETNS = 0x20, 0x30
TLV_AWS, TLV_AZURE = 0xEA, 0xEE
SSL_SUBTYPES = {0x21: "tls.version", 0x22: "tls.common-name", 0x23: "tls.cipher", 0x24: "tls.signature-algo",
                0x25: "tls.key-algo"}
NOTE_PREFIX = "mod_proxy_protocol."     # session notes named as ProFTPD's mod_proxy_protocol names them


class Invalid(ValueError):
    """Not a valid PROXY header: the connection is closed without a reply. The message says why (for the log)."""


@dataclass(frozen=True)
class Header:
    version: int
    size: int                                   # bytes of the header on the wire
    family: str                                 # TCP4 TCP6 UNKNOWN (v1); TCP4 TCP6 UDP4 UDP6 UNIX UNSPEC (v2)
    local: bool = False                         # v2 LOCAL: a connection the proxy made itself (health check)
    source: tuple[str, int] | None = None       # the client; None: keep the socket's addresses
    destination: tuple[str, int] | None = None  # what the client connected to (on the proxy)
    tlvs: tuple[tuple[int, bytes], ...] = ()    # v2 TLVs in order: (type, value)


def parse(data: bytes, version: int, v2_max: int = V2_MAX) -> Header | None:
    """The header at the head of `data` (see the module docstring): None for more bytes, or raises Invalid."""
    if data.startswith(TLS_RECORD):
        raise Invalid("received unexpected TLS handshake bytes")
    if version == V1:
        if _starts(data, V2_SIGNATURE):
            raise Invalid("a version 2 header where version 1 is configured")
        return _parse_v1(data)
    if _starts(data, V1_PREFIX):
        raise Invalid("a version 1 header where version 2 is configured")
    return _parse_v2(data, v2_max)


def _starts(data: bytes, prefix: bytes) -> bool:
    """`data` begins like `prefix` as far as either goes (and is not empty)."""
    n = min(len(data), len(prefix))
    return n > 0 and data[:n] == prefix[:n]


# -- version 1 ---------------------------------------------------------------------------------------------------
def _parse_v1(data: bytes) -> Header | None:
    n = min(len(data), len(V1_PREFIX))
    if data[:n] != V1_PREFIX[:n]:
        raise Invalid("wrong signature: not a PROXY protocol header")
    end = data.find(b"\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise Invalid(f"version 1 header without CRLF within {V1_MAX} bytes")
        if b"\r" in data[:-1]:
            raise Invalid("lone CR in version 1 header")
        return None
    if end == 0 or data[end - 1:end] != b"\r":
        raise Invalid("lone LF in version 1 header")
    line = data[:end - 1]
    if b"\r" in line:
        raise Invalid("lone CR in version 1 header")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise Invalid("non-ASCII bytes in version 1 header") from None
    fields = text.split(" ")
    size = end + 1
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return Header(V1, size, "UNKNOWN")      # the rest of an UNKNOWN line is to be ignored
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise Invalid(f"malformed version 1 header {text[:100]!r}")
    family = fields[1]
    source = (_v1_address(fields[2], family), _v1_port(fields[4]))
    destination = (_v1_address(fields[3], family), _v1_port(fields[5]))
    return _checked(Header(V1, size, family, source=source, destination=destination))


def _v1_address(text: str, family: str) -> str:
    try:
        ip = ipaddress.IPv4Address(text) if family == "TCP4" else ipaddress.IPv6Address(text)
    except ValueError:
        raise Invalid(f"{text[:50]!r} is not an {family} address") from None
    if "%" in text:
        raise Invalid(f"{text[:50]!r}: a scope is not allowed")
    return _canonical(ip)


def _v1_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise Invalid(f"{text[:10]!r} is not a port number")
    return int(text)


# -- version 2 ---------------------------------------------------------------------------------------------------
def _parse_v2(data: bytes, v2_max: int) -> Header | None:
    n = min(len(data), len(V2_SIGNATURE))
    if data[:n] != V2_SIGNATURE[:n]:
        raise Invalid("wrong signature: not a PROXY protocol version 2 header")
    if len(data) < V2_FIXED:
        return None
    ver_cmd, fam, length = data[12], data[13], struct.unpack_from("!H", data, 14)[0]
    if ver_cmd >> 4 != 2:
        raise Invalid(f"version {ver_cmd >> 4} in a version 2 header")
    command = ver_cmd & 0x0F
    if command not in (LOCAL, PROXY):
        raise Invalid(f"unknown command {command} in a version 2 header")
    if fam not in FAMILIES and command == PROXY:       # LOCAL ignores the family byte
        raise Invalid(f"unknown family/transport 0x{fam:02x} in a version 2 header")
    size = V2_FIXED + length
    if size > v2_max:
        raise Invalid(f"version 2 header of {size} bytes, more than the {v2_max} allowed")
    if len(data) < size:
        return None
    if command == LOCAL:                        # the proxy's own connection: real addresses; skip `length`
        return Header(V2, size, FAMILIES.get(fam, ("UNSPEC", 0))[0], local=True)
    family, block = FAMILIES[fam]
    if family == "UNSPEC":                      # unknown protocol: the whole block is skipped, as for LOCAL
        return Header(V2, size, family)
    if length < block:
        raise Invalid(f"{family} address block cut short ({length} of {block} bytes)")
    body = data[V2_FIXED:size]
    tlvs = _tlvs(body[block:])
    _check_crc(data[:size], V2_FIXED + block, tlvs)
    if family in ("TCP4", "TCP6"):
        width = 4 if family == "TCP4" else 16
        src = _canonical(ipaddress.ip_address(body[:width]))
        dst = _canonical(ipaddress.ip_address(body[width:2 * width]))
        sport, dport = struct.unpack_from("!HH", body, 2 * width)
        return _checked(Header(V2, size, family, source=(src, sport), destination=(dst, dport), tlvs=tlvs))
    return Header(V2, size, family, tlvs=tlvs)     # UNSPEC, UNIX, UDP: treated as UNSPEC (real addresses)


def _tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    out = []
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            raise Invalid("TLV header cut short")
        kind, length = data[i], struct.unpack_from("!H", data, i + 1)[0]
        if i + 3 + length > len(data):
            raise Invalid(f"TLV 0x{kind:02x} cut short")
        out.append((kind, bytes(data[i + 3:i + 3 + length])))
        i += 3 + length
    return tuple(out)


def _check_crc(header: bytes, tlv_start: int, tlvs: tuple[tuple[int, bytes], ...]) -> None:
    """A CRC32C TLV covers the whole header with its own value zeroed; a mismatch makes the header invalid."""
    offset = tlv_start
    for kind, value in tlvs:
        if kind == TLV_CRC32C:
            if len(value) != 4:
                raise Invalid("CRC32C TLV of the wrong length")
            zeroed = header[:offset + 3] + b"\0\0\0\0" + header[offset + 7:]
            if crc32c(zeroed) != struct.unpack("!I", value)[0]:
                raise Invalid("CRC32C checksum mismatch")
        offset += 3 + len(value)


def _canonical(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _checked(header: Header) -> Header:
    if header.source == header.destination:
        raise Invalid(f"source and destination are the same: {header.source[0]}#{header.source[1]}")
    return header


# -- TLVs as session notes -----------------------------------------------------------------------------------------
def notes(header: Header) -> dict[str, str]:
    """The TLVs a log line may show, as ProFTPD's mod_proxy_protocol names its session notes
    (`mod_proxy_protocol.alpn`, `.authority`, `.unique-id`, `.tls.version`, `.tls.common-name`, `.tls.cipher`,
    `.tls.signature-algo`, `.tls.key-algo`, `.aws.vpc-endpoint-id`, `.azure.private-endpoint-linkid`).
    Sub-TLVs that are cut short are left out (the header itself was valid)."""
    out: dict[str, str] = {}
    for kind, value in header.tlvs:
        if kind == TLV_ALPN:
            out["alpn"] = _text(value)
        elif kind == TLV_AUTHORITY:
            out["authority"] = _text(value)
        elif kind == TLV_UNIQUE_ID:
            out["unique-id"] = _text(value)
        elif kind == TLV_SSL and len(value) >= 5:
            for sub, sub_value in _sub_tlvs(value[5:]):
                if sub in SSL_SUBTYPES:
                    out[SSL_SUBTYPES[sub]] = _text(sub_value)
        elif kind == TLV_AWS and value[:1] == b"\x01":
            out["aws.vpc-endpoint-id"] = _text(value[1:])
        elif kind == TLV_AZURE and value[:1] == b"\x01" and len(value) == 5:
            out["azure.private-endpoint-linkid"] = str(int.from_bytes(value[1:5], "little"))
    return {NOTE_PREFIX + k: v for k, v in out.items()}


def _sub_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    try:
        return list(_tlvs(data))
    except Invalid:
        return []


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


# -- CRC32C (Castagnoli), for the CRC32C TLV ---------------------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# -- building headers (tests, the benchmark) -----------------------------------------------------------------------
def build_v1(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    family = "TCP6" if ":" in source[0] else "TCP4"
    return f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode()


def build_v2(source: tuple[str, int] | None, destination: tuple[str, int] | None,
             tlvs: tuple[tuple[int, bytes], ...] = (), local: bool = False, crc: bool = False) -> bytes:
    """A version-2 header: PROXY over TCP4/TCP6 (or LOCAL / UNSPEC when `source` is None)."""
    if source is None or destination is None:
        fam, block = 0x00, b""
    else:
        src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
        fam = 0x11 if src.version == 4 else 0x21
        block = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    body = block + b"".join(bytes([k]) + struct.pack("!H", len(v)) + v for k, v in tlvs)
    if crc:
        body += bytes([TLV_CRC32C]) + b"\0\x04" + b"\0\0\0\0"
    head = V2_SIGNATURE + bytes([0x20 | (LOCAL if local else PROXY), fam]) + struct.pack("!H", len(body))
    data = head + body
    if crc:
        data = data[:-4] + struct.pack("!I", crc32c(data))
    return data
