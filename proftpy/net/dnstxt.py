"""A TXT question to the system's name server (mod_dnsbl's reason of a listing), with a deadline.

ProFTPD asks it through libresolv's res_query, which waits as long as the resolver does; Python's standard library
has no TXT lookup at all. So this is a small RFC 1035 exchange over UDP with the first `nameserver` of
/etc/resolv.conf (port 53, as res_query uses), bounded by the caller's deadline: one question, the answer's TXT
records' raw rdata back (each character-string's length byte included, as ProFTPD logs it). Anything that goes
wrong (no server, no answer in time, a malformed or truncated reply) is "no reason": the reason is only logged.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time

RESOLV_CONF = "/etc/resolv.conf"
TYPE_TXT = 16
CLASS_IN = 1
MAX_UDP = 512                   # RFC 1035's UDP message size, res_query's NS_PACKETSZ
MAX_LABELS = 128                # labels in one name (a name of more is malformed: 255 bytes at most)


class Malformed(ValueError):
    """A reply that is not a well-formed DNS message."""


def nameserver(path: str = RESOLV_CONF) -> str:
    """The first `nameserver` address of resolv.conf; 127.0.0.1 without one, as glibc does."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "127.0.0.1"
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                return str(ipaddress.ip_address(words[1].split("%", 1)[0]))
            except ValueError:
                continue
    return "127.0.0.1"


def encode_query(qid: int, name: str, qtype: int = TYPE_TXT) -> bytes:
    """A recursion-desired question for `name` (ValueError for a name DNS cannot carry)."""
    labels = name.rstrip(".").split(".")
    wire = b""
    for label in labels:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        wire += bytes([len(raw)]) + raw
    wire += b"\0"
    if len(wire) > 255:
        raise ValueError(f"DNS name too long: {name!r}")
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, CLASS_IN)


def _skip_name(msg: bytes, pos: int) -> int:
    """The offset after the (possibly compressed) name at `pos`."""
    for _ in range(MAX_LABELS):
        if pos >= len(msg):
            raise Malformed("name past the end")
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            if pos + 2 > len(msg):
                raise Malformed("pointer past the end")
            return pos + 2
        if length & 0xC0:
            raise Malformed("unknown label type")
        if length == 0:
            return pos + 1
        pos += 1 + length
    raise Malformed("name too long")


def decode_txt(msg: bytes, qid: int) -> list[bytes] | None:
    """The TXT rdata of the answer section of reply `msg` to question `qid`; None when it is not that reply."""
    if len(msg) < 12:
        raise Malformed("short header")
    rid, flags, qdcount, ancount = struct.unpack("!HHHH", msg[:8])
    if rid != qid or not flags & 0x8000:
        return None                                   # not the reply to our question: keep waiting
    if flags & 0x0200:
        raise Malformed("truncated reply")
    if flags & 0x000F:                                # NXDOMAIN, SERVFAIL...: no reason
        return []
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(msg, pos) + 4
    found = []
    for _ in range(ancount):
        pos = _skip_name(msg, pos)
        if pos + 10 > len(msg):
            raise Malformed("record header past the end")
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        pos += 10
        if pos + rdlen > len(msg):
            raise Malformed("rdata past the end")
        if rtype == TYPE_TXT:
            found.append(msg[pos:pos + rdlen])
        pos += rdlen
    return found


def txt_records(name: str, deadline: float, server: str | None = None) -> list[bytes] | None:
    """The TXT rdata for `name` from `server` (resolv.conf's by default), asked until time.monotonic() reaches
    `deadline`; None when no usable answer came (no server, timeout, malformed reply)."""
    server = server or nameserver()
    qid = int.from_bytes(os.urandom(2), "big")
    try:
        query = encode_query(qid, name)
    except (ValueError, UnicodeError):
        return None
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((server, 53))
            sock.send(query)
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                try:
                    found = decode_txt(sock.recv(65535), qid)
                except Malformed:
                    return None
                if found is not None:
                    return found
    except OSError:             # no route, refused (ICMP port unreachable): no server to tell
        return None
    return None


def logged_text(rdata: bytes) -> str:
    """The rdata as ProFTPD's `%s` prints it: the bytes up to the first NUL (length bytes and all), kept raw in
    the log (surrogateescape, the log writer's encoding)."""
    return rdata.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
