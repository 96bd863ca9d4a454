"""SSH's data types (RFC 4251 section 5): what a packet's payload is made of, read with a bound on every length.

`Reader` takes a payload apart; any length that runs past the end, a string longer than the payload, a name-list
that is not ASCII: `WireError`, which the transport answers with a disconnect, never a traceback. `Writer` builds
a payload."""

from __future__ import annotations

import struct

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class WireError(ValueError):
    """A payload that does not hold what its message type says it holds."""


class Reader:
    """Reads SSH types off one payload, never past its end."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise WireError("message too short (byte)")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def boolean(self) -> bool:
        return self.byte() != 0

    def u32(self) -> int:
        end = self.pos + 4
        if end > len(self.data):
            raise WireError("message too short (uint32)")
        value = _U32.unpack_from(self.data, self.pos)[0]
        self.pos = end
        return value

    def u64(self) -> int:
        end = self.pos + 8
        if end > len(self.data):
            raise WireError("message too short (uint64)")
        value = _U64.unpack_from(self.data, self.pos)[0]
        self.pos = end
        return value

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError("message too short")
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return bytes(value)

    def string(self, most: int | None = None) -> bytes:
        """A string (uint32 length, bytes); `most` bounds its length beyond the payload's own."""
        n = self.u32()
        if most is not None and n > most:
            raise WireError(f"string of {n} bytes is longer than {most}")
        return self.raw(n)

    def text(self, most: int | None = None) -> str:
        """A string as text: UTF-8, and bytes that are not kept as surrogate escapes (file names)."""
        return self.string(most).decode("utf-8", "surrogateescape")

    def name_list(self, most: int = 4096) -> list[str]:
        raw = self.string(most)
        if not raw:
            return []
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise WireError("name-list is not ASCII") from None
        return text.split(",")

    def mpint(self, most: int = 2048) -> int:
        """A multiple precision integer (two's complement, big-endian), at most `most` bytes."""
        raw = self.string(most)
        return int.from_bytes(raw, "big", signed=True) if raw else 0

    def end(self) -> None:
        """Nothing may follow (a message with trailing bytes is still accepted by most implementations: not
        called where they are tolerated)."""
        if self.pos != len(self.data):
            raise WireError("trailing bytes in message")


class Writer:
    """Builds a payload."""

    __slots__ = ("parts",)

    def __init__(self, *first: bytes):
        self.parts: list[bytes] = list(first)

    def byte(self, value: int) -> "Writer":
        self.parts.append(bytes((value,)))
        return self

    def boolean(self, value: bool) -> "Writer":
        return self.byte(1 if value else 0)

    def u32(self, value: int) -> "Writer":
        self.parts.append(_U32.pack(value & 0xFFFFFFFF))
        return self

    def u64(self, value: int) -> "Writer":
        self.parts.append(_U64.pack(value))
        return self

    def raw(self, data: bytes) -> "Writer":
        self.parts.append(data)
        return self

    def string(self, data: bytes | str) -> "Writer":
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self.parts.append(_U32.pack(len(data)))
        self.parts.append(data)
        return self

    def name_list(self, names: list[str] | tuple[str, ...]) -> "Writer":
        return self.string(",".join(names).encode("ascii"))

    def mpint(self, value: int) -> "Writer":
        return self.string(mpint_bytes(value))

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def mpint_bytes(value: int) -> bytes:
    """The bytes of an mpint without its length: minimal two's complement, 0 as nothing."""
    if value == 0:
        return b""
    length = (value.bit_length() + 8) // 8          # room for the sign bit
    raw = value.to_bytes(length, "big", signed=True)
    # minimal: drop a leading 0x00 that the next byte's high bit does not need (to_bytes already is minimal
    # except for that extra byte computed above)
    if len(raw) > 1 and raw[0] == 0 and raw[1] < 0x80:
        raw = raw[1:]
    return raw


def string(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def u32(value: int) -> bytes:
    return _U32.pack(value & 0xFFFFFFFF)


def mpint(value: int) -> bytes:
    return string(mpint_bytes(value))
