"""The part of ASN.1 BER that LDAPv3 (RFC 4511 section 5.1) and DER certificates and keys use: definite lengths
only, one-byte tags.

Encoding: `tlv(tag, content)` and helpers for the universal types LDAP sends (INTEGER, OCTET STRING, BOOLEAN,
ENUMERATED, NULL, SEQUENCE, SET). Decoding: `element(data, offset)` takes one element apart, `elements(content)`
lists the elements of a constructed one; what a peer sends that is not BER as LDAP allows it (indefinite lengths,
multi-byte tags, a length past the data, an integer of more than 8 bytes) raises BerError. Nothing here knows LDAP's
messages (proftpy/auth/ldap_proto.py) or filters (proftpy/auth/ldap_filter.py); net/x509.py reads certificates and
SSH's DER keys through `header`.
"""

from __future__ import annotations

# universal tags
BOOLEAN, INTEGER, OCTET_STRING, NULL, ENUMERATED, SEQUENCE, SET = 0x01, 0x02, 0x04, 0x05, 0x0A, 0x30, 0x31
# class bits of the tag byte
APPLICATION, CONTEXT, CONSTRUCTED = 0x40, 0x80, 0x20

MAX_LENGTH = 16 << 20       # no LDAP reply proftpy reads is near this: a larger length is refused, never read


class BerError(ValueError):
    """Bytes that are not BER as LDAP uses it."""


# -- encoding ------------------------------------------------------------------------------------------------------
def length(n: int) -> bytes:
    """A definite length: short form below 128, else 0x80|count then the count's big-endian bytes."""
    if n < 0:
        raise ValueError("negative length")
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One element: its tag byte, length and content."""
    if not 0 <= tag <= 0xFF or tag & 0x1F == 0x1F:
        raise ValueError(f"tag {tag:#x} is not a one-byte tag")
    return bytes((tag,)) + length(len(content)) + content


def integer(value: int, tag: int = INTEGER) -> bytes:
    """Two's complement, in the fewest bytes (0 is one zero byte)."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def enumerated(value: int, tag: int = ENUMERATED) -> bytes:
    return integer(value, tag)


def boolean(value: bool, tag: int = BOOLEAN) -> bytes:
    return tlv(tag, b"\xff" if value else b"\x00")


def octets(value: bytes | str, tag: int = OCTET_STRING) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    return tlv(tag, value)


def null(tag: int = NULL) -> bytes:
    return tlv(tag, b"")


def sequence(*parts: bytes, tag: int = SEQUENCE) -> bytes:
    return tlv(tag, b"".join(parts))


def set_of(*parts: bytes, tag: int = SET) -> bytes:
    return tlv(tag, b"".join(parts))


# -- decoding ------------------------------------------------------------------------------------------------------
def header(data: bytes | memoryview, offset: int = 0) -> tuple[int, int, int] | None:
    """(tag, content offset, content length) of the element starting at `offset`, or None when `data` stops before
    its header does. BerError for what LDAP does not allow."""
    n = len(data)
    if offset >= n:
        return None
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-byte tags are not used by LDAP")
    if offset + 1 >= n:
        return None
    first = data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, first
    count = first & 0x7F
    if count == 0:
        raise BerError("indefinite length (not allowed in LDAP)")
    if count > 4:
        raise BerError(f"length of {count} bytes")
    if offset + 2 + count > n:
        return None
    size = int.from_bytes(bytes(data[offset + 2:offset + 2 + count]), "big")
    if size > MAX_LENGTH:
        raise BerError(f"element of {size} bytes")
    return tag, offset + 2 + count, size


def complete(data: bytes | memoryview) -> int | None:
    """The size of the whole element at the start of `data` once all of it is there, else None (read more)."""
    head = header(data)
    if head is None:
        return None
    _, start, size = head
    return start + size if len(data) >= start + size else None


def element(data: bytes | memoryview, offset: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, offset after the element) of a complete element; BerError when it is cut short."""
    head = header(data, offset)
    if head is None:
        raise BerError("truncated element")
    tag, start, size = head
    if start + size > len(data):
        raise BerError("element longer than its container")
    return tag, bytes(data[start:start + size]), start + size


def elements(content: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) of each element inside a constructed element's content."""
    out = []
    offset = 0
    while offset < len(content):
        tag, value, offset = element(content, offset)
        out.append((tag, value))
    return out


def decode_integer(content: bytes) -> int:
    if not content:
        raise BerError("empty integer")
    if len(content) > 8:
        raise BerError("integer of more than 8 bytes")
    return int.from_bytes(content, "big", signed=True)


def decode_boolean(content: bytes) -> bool:
    if len(content) != 1:
        raise BerError("boolean of more than one byte")
    return content != b"\x00"


def expect(item: tuple[int, bytes], tag: int, what: str) -> bytes:
    """The content of `item` when its tag is `tag`, else BerError naming `what`."""
    if item[0] != tag:
        raise BerError(f"{what}: tag {item[0]:#04x}, expected {tag:#04x}")
    return item[1]
