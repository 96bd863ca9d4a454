"""The PROXY protocol parser (net/proxy.py), over the byte cases of the protocol's "what a receiver must do": each
row is bytes at the head of a connection and what the parser must answer (a header, "more bytes", or invalid)."""

from __future__ import annotations

import struct

import pytest

from proftpy.net import proxy
from proftpy.net.proxy import V1, V2, Invalid, build_v1, build_v2, parse

SIG = proxy.V2_SIGNATURE
MORE = "more"           # parse answers None: wait for more bytes


def v2(ver_cmd: int, fam: int, body: bytes, length: int | None = None) -> bytes:
    return SIG + bytes([ver_cmd, fam]) + struct.pack("!H", len(body) if length is None else length) + body


TCP4_BLOCK = bytes([192, 168, 0, 1, 192, 168, 0, 11]) + struct.pack("!HH", 56324, 443)
TCP6_BLOCK = (bytes.fromhex("20010db8000000000000000000000001") + bytes.fromhex("20010db8000000000000000000000002")
              + struct.pack("!HH", 4000, 21))

# (name, bytes, configured version, expected: MORE | "invalid" | (family, source, destination, size))
CASES = [
    # -- version 1: good lines
    ("v1 tcp4", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", V1,
     ("TCP4", ("192.168.0.1", 56324), ("192.168.0.11", 443), 47)),
    ("v1 tcp4, command after it", b"PROXY TCP4 10.0.0.1 10.0.0.2 1 21\r\nUSER x\r\n", V1,
     ("TCP4", ("10.0.0.1", 1), ("10.0.0.2", 21), 35)),
    ("v1 tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 21\r\n", V1,
     ("TCP6", ("2001:db8::1", 4000), ("2001:db8::2", 21), 44)),
    ("v1 tcp6 v4-mapped is IPv4", b"PROXY TCP6 ::ffff:10.1.1.1 ::ffff:10.1.1.2 4000 21\r\n", V1,
     ("TCP6", ("10.1.1.1", 4000), ("10.1.1.2", 21), 52)),
    ("v1 port 0 and 65535", b"PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", V1,
     ("TCP4", ("1.2.3.4", 0), ("5.6.7.8", 65535), 36)),
    ("v1 unknown, short", b"PROXY UNKNOWN\r\n", V1, ("UNKNOWN", None, None, 15)),
    ("v1 unknown, rest ignored", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", V1, ("UNKNOWN", None, None, 35)),
    ("v1 longest line (107 bytes)",
     b"PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n".replace(
         b"ffff:f...f:ffff", b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 1).replace(
         b"ffff:f...f:ffff", b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1), V1,
     ("TCP6", ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
      104)),
    # -- version 1: partial headers wait
    ("v1 empty", b"", V1, MORE),
    ("v1 prefix", b"PRO", V1, MORE),
    ("v1 no CRLF yet", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2", V1, MORE),
    ("v1 CR without its LF yet", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", V1, MORE),
    # -- version 1: refused
    ("v1 wrong signature", b"USER anonymous\r\n", V1, "invalid"),
    ("v1 wrong signature, first byte", b"X", V1, "invalid"),
    ("v1 lower case", b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 no CRLF within 107 bytes", b"PROXY TCP4 " + b"1" * 120, V1, "invalid"),
    ("v1 107 bytes without LF", b"PROXY UNKNOWN " + b"x" * 93, V1, "invalid"),
    ("v1 lone LF", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", V1, "invalid"),
    ("v1 lone CR inside", b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 lone CR, no LF yet", b"PROXY TCP4 1.2.3.4\r5.6", V1, "invalid"),
    ("v1 two spaces", b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 trailing space", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", V1, "invalid"),
    ("v1 tab", b"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 missing field", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", V1, "invalid"),
    ("v1 unknown protocol", b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 no protocol", b"PROXY \r\n", V1, "invalid"),
    ("v1 leading zero in address", b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 host name", b"PROXY TCP4 localhost 5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 IPv6 in TCP4", b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", V1, "invalid"),
    ("v1 IPv4 in TCP6", b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", V1, "invalid"),
    ("v1 two ::", b"PROXY TCP6 1::2::3 ::1 1 2\r\n", V1, "invalid"),
    ("v1 scope", b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", V1, "invalid"),
    ("v1 leading zero in port", b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", V1, "invalid"),
    ("v1 port too big", b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", V1, "invalid"),
    ("v1 signed port", b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", V1, "invalid"),
    ("v1 non-ASCII digits", "PROXY TCP4 1.2.3.4 5.6.7.8 ١ 2\r\n".encode(), V1, "invalid"),
    ("v1 non-ASCII bytes", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xff\r\n", V1, "invalid"),
    ("v1 source == destination", b"PROXY TCP4 1.2.3.4 1.2.3.4 21 21\r\n", V1, "invalid"),
    ("v1 TLS ClientHello", b"\x16\x03\x01\x02\x00\x01", V1, "invalid"),
    ("v2 header where v1 is configured", build_v2(("1.2.3.4", 1), ("5.6.7.8", 2)), V1, "invalid"),
    ("v2 signature start where v1 is configured", SIG[:3], V1, "invalid"),
    # -- version 2: good headers
    ("v2 tcp4", v2(0x21, 0x11, TCP4_BLOCK), V2, ("TCP4", ("192.168.0.1", 56324), ("192.168.0.11", 443), 28)),
    ("v2 tcp4, bytes after it", v2(0x21, 0x11, TCP4_BLOCK) + b"\x16\x03\x01", V2,
     ("TCP4", ("192.168.0.1", 56324), ("192.168.0.11", 443), 28)),
    ("v2 tcp6", v2(0x21, 0x21, TCP6_BLOCK), V2, ("TCP6", ("2001:db8::1", 4000), ("2001:db8::2", 21), 52)),
    ("v2 local, empty", v2(0x20, 0x00, b""), V2, ("UNSPEC", None, None, 16)),
    ("v2 local skips its length", v2(0x20, 0x11, TCP4_BLOCK), V2, ("TCP4", None, None, 28)),
    ("v2 local, undefined family ignored", v2(0x20, 0x77, b"abc"), V2, ("UNSPEC", None, None, 19)),
    ("v2 proxy unspec", v2(0x21, 0x00, b"whatever"), V2, ("UNSPEC", None, None, 24)),
    ("v2 proxy udp4 as unspec", v2(0x21, 0x12, TCP4_BLOCK), V2, ("UDP4", None, None, 28)),
    ("v2 proxy unix as unspec", v2(0x21, 0x31, b"\0" * 216), V2, ("UNIX", None, None, 232)),
    ("v2 address block longer (TLVs follow)", v2(0x21, 0x11, TCP4_BLOCK + b"\x04\x00\x02ab"), V2,
     ("TCP4", ("192.168.0.1", 56324), ("192.168.0.11", 443), 33)),
    # -- version 2: partial headers wait
    ("v2 signature prefix", SIG[:5], V2, MORE),
    ("v2 signature only", SIG, V2, MORE),
    ("v2 fixed part, block missing", v2(0x21, 0x11, TCP4_BLOCK)[:20], V2, MORE),
    ("v2 TLV still coming", v2(0x21, 0x11, TCP4_BLOCK + b"\x04\x00\x02ab")[:-1], V2, MORE),
    # -- version 2: refused
    ("v2 wrong signature", b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x0c" + TCP4_BLOCK, V2, "invalid"),
    ("v2 wrong signature, first byte", b"G", V2, "invalid"),
    ("v2 a command line", b"USER x\r\n", V2, "invalid"),
    ("v2 version 1 nibble", v2(0x11, 0x11, TCP4_BLOCK), V2, "invalid"),
    ("v2 version 3 nibble", v2(0x31, 0x11, TCP4_BLOCK), V2, "invalid"),
    ("v2 command 2", v2(0x22, 0x11, TCP4_BLOCK), V2, "invalid"),
    ("v2 command 15", v2(0x2F, 0x11, TCP4_BLOCK), V2, "invalid"),
    ("v2 undefined family", v2(0x21, 0x41, TCP4_BLOCK), V2, "invalid"),
    ("v2 undefined transport", v2(0x21, 0x13, TCP4_BLOCK), V2, "invalid"),
    ("v2 tcp4 block cut short", v2(0x21, 0x11, TCP4_BLOCK[:11]), V2, "invalid"),
    ("v2 tcp6 block cut short", v2(0x21, 0x21, TCP4_BLOCK), V2, "invalid"),
    ("v2 unix block cut short", v2(0x21, 0x31, b"\0" * 100), V2, "invalid"),
    ("v2 TLV header cut short", v2(0x21, 0x11, TCP4_BLOCK + b"\x04\x00"), V2, "invalid"),
    ("v2 TLV value cut short", v2(0x21, 0x11, TCP4_BLOCK + b"\x04\x00\x05ab"), V2, "invalid"),
    ("v2 oversize", v2(0x21, 0x11, TCP4_BLOCK, length=proxy.V2_MAX), V2, "invalid"),
    ("v2 largest allowed length, waiting", v2(0x21, 0x11, TCP4_BLOCK, length=proxy.V2_MAX - 16), V2, MORE),
    ("v2 source == destination",
     v2(0x21, 0x11, bytes([1, 2, 3, 4, 1, 2, 3, 4]) + struct.pack("!HH", 21, 21)), V2, "invalid"),
    ("v1 header where v2 is configured", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", V2, "invalid"),
    ("v1 prefix where v2 is configured", b"PR", V2, "invalid"),
    ("v2 TLS ClientHello", b"\x16\x03\x03\x00\x10", V2, "invalid"),
]


@pytest.mark.parametrize("data,version,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse(data, version, expected):
    if expected == "invalid":
        with pytest.raises(Invalid):
            parse(data, version)
        return
    header = parse(data, version)
    if expected == MORE:
        assert header is None
        return
    family, source, destination, size = expected
    assert (header.family, header.source, header.destination, header.size) == (family, source, destination, size)
    assert header.version == version


def test_every_prefix_of_a_good_header_waits():
    """A header that arrives byte by byte is "more" until its last byte, then whole (never refused halfway)."""
    for data, version in ((b"PROXY TCP4 10.0.0.1 10.0.0.2 1000 21\r\n", V1),
                          (build_v2(("10.0.0.1", 1000), ("10.0.0.2", 21), ((proxy.TLV_NOOP, b"xx"),), crc=True), V2)):
        for n in range(len(data)):
            assert parse(data[:n], version) is None, n
        assert parse(data, version).size == len(data)


def test_v2_local_is_a_health_check():
    header = parse(build_v2(None, None, local=True), V2)
    assert header.local and header.source is None


def test_v2_tlvs_become_notes():
    ssl = bytes([0x01]) + b"\0\0\0\0" + b"".join(
        bytes([k]) + struct.pack("!H", len(v)) + v for k, v in ((0x21, b"TLSv1.3"), (0x22, b"client.example"),
                                                               (0x23, b"TLS_AES_128_GCM_SHA256")))
    header = parse(build_v2(("203.0.113.7", 50000), ("198.51.100.1", 21),
                            ((proxy.TLV_ALPN, b"ftp"), (proxy.TLV_AUTHORITY, b"ftp.example.com"),
                             (proxy.TLV_UNIQUE_ID, b"abc-123"), (proxy.TLV_SSL, ssl),
                             (proxy.TLV_AWS, b"\x01vpce-08d2bf15fac5001c9"),
                             (proxy.TLV_AZURE, b"\x01" + (0x12345678).to_bytes(4, "little")),
                             (0xF0, b"experimental"))), V2)
    assert header.source == ("203.0.113.7", 50000)
    assert proxy.notes(header) == {
        "mod_proxy_protocol.alpn": "ftp",
        "mod_proxy_protocol.authority": "ftp.example.com",
        "mod_proxy_protocol.unique-id": "abc-123",
        "mod_proxy_protocol.tls.version": "TLSv1.3",
        "mod_proxy_protocol.tls.common-name": "client.example",
        "mod_proxy_protocol.tls.cipher": "TLS_AES_128_GCM_SHA256",
        "mod_proxy_protocol.aws.vpc-endpoint-id": "vpce-08d2bf15fac5001c9",
        "mod_proxy_protocol.azure.private-endpoint-linkid": str(0x12345678),
    }
    assert (0xF0, b"experimental") in header.tlvs


def test_v2_crc32c():
    good = build_v2(("10.0.0.1", 1000), ("10.0.0.2", 21), ((proxy.TLV_NOOP, b"pad"),), crc=True)
    assert parse(good, V2).source == ("10.0.0.1", 1000)
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    with pytest.raises(Invalid, match="CRC32C"):
        parse(bytes(bad), V2)
    tampered = bytearray(good)
    tampered[16] ^= 0x01                    # the source address changed in transit
    with pytest.raises(Invalid, match="CRC32C"):
        parse(bytes(tampered), V2)


def test_crc32c_check_value():
    assert proxy.crc32c(b"123456789") == 0xE3069283       # the standard check value of CRC-32C


def test_build_v1_round_trip():
    assert parse(build_v1(("2001:db8::5", 3000), ("2001:db8::6", 21)), V1).source == ("2001:db8::5", 3000)
