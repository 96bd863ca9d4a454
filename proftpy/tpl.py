"""The images of troydhanson's tpl library, as far as ProFTPD's memcache users pack them (mod_ban's bans without
`BanCacheOptions UseJSON`, mod_tls_memcache's sessions without `/json`), so that proftpy and ProFTPD nodes read
each other's entries.

An image: b"tpl", a flags byte (0x01 big-endian, 0x02 strings may be NULL), the image's whole size (u32), the
format string and its NUL, a u32 for each fixed-length array (`#`) of the format, then the values in order:
`i`/`u` 32-bit, `v` 16-bit unsigned, `c#` that many bytes, `s` a u32 length and the bytes (with NULL strings
allowed the length counts one more, and 0 is NULL). `S(...)` only groups members: it adds no bytes.
"""

from __future__ import annotations

import struct
from typing import Sequence

MAGIC = b"tpl"
BIG_ENDIAN, NULL_STRINGS = 0x01, 0x02
_FIXED = {"i": "i", "u": "I", "v": "H"}


def string(text: str | None, nulls: bool = True) -> bytes:
    if text is None:
        return struct.pack("<I", 0)
    data = text.encode("utf-8", "surrogateescape")
    return struct.pack("<I", len(data) + nulls) + data


def image(fmt: bytes, body: bytes, arrays: Sequence[int] = (), flags: int = NULL_STRINGS) -> bytes:
    """A little-endian image of `fmt` around the packed values (`arrays`: the lengths of its `#` arrays)."""
    head = fmt + b"\0" + b"".join(struct.pack("<I", n) for n in arrays)
    return MAGIC + bytes((flags,)) + struct.pack("<I", 8 + len(head) + len(body)) + head + body


def _members(fmt: str) -> list[str]:
    """`S(ic#s)` -> ["i", "c#", "s"]."""
    flat = fmt.replace("S(", "").replace(")", "")
    out: list[str] = []
    for ch in flat:
        if ch == "#":
            if not out or out[-1] != "c":
                raise ValueError(f"tpl format {fmt}: only c# arrays are read")
            out[-1] = "c#"
        elif ch in _FIXED or ch in "sc":
            out.append(ch)
        else:
            raise ValueError(f"tpl format {fmt}: '{ch}' is not read")
    return out


def fields(raw: bytes, fmt: bytes) -> list[int | str | bytes | None]:
    """The values of an image of format `fmt` (numbers, strings or None for NULL, bytes for `c#`); ValueError for
    anything else (another format, a size that does not add up, a value past the end)."""
    if len(raw) < 8 or raw[:3] != MAGIC:
        raise ValueError("not a tpl image")
    order = ">" if raw[3] & BIG_ENDIAN else "<"
    nulls = bool(raw[3] & NULL_STRINGS)
    (size,) = struct.unpack(order + "I", raw[4:8])
    if size != len(raw):
        raise ValueError(f"tpl image of {len(raw)} bytes says {size}")
    end = raw.find(b"\0", 8)
    if end < 0 or raw[8:end] != fmt:
        raise ValueError(f"tpl format {raw[8:end if end >= 0 else 8 + len(fmt)]!r}, expected {fmt.decode()}")
    members = _members(fmt.decode())
    pos = end + 1

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(raw):
            raise ValueError("tpl image cut short")
        pos += n
        return raw[pos - n:pos]

    arrays = [struct.unpack(order + "I", take(4))[0] for m in members if m == "c#"]
    out: list[int | str | bytes | None] = []
    for m in members:
        if m == "c#":
            out.append(take(arrays.pop(0)))
        elif m == "c":
            out.append(take(1)[0])
        elif m == "s":
            (n,) = struct.unpack(order + "I", take(4))
            if nulls and n == 0:
                out.append(None)
            else:
                out.append(take(n - nulls).decode("utf-8", "surrogateescape"))
        else:
            code = order + _FIXED[m]
            out.append(struct.unpack(code, take(struct.calcsize(code)))[0])
    if pos != len(raw):
        raise ValueError("tpl image longer than its values")
    return out
