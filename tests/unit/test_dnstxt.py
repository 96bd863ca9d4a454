"""mod_dnsbl's TXT question (proftpy/net/dnstxt.py): RFC 1035 encoding and decoding, and the deadline."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from proftpy.net import dnstxt


def reply(qid: int, name: str, records: list[tuple[int, bytes]], flags: int = 0x8180) -> bytes:
    """A reply to dnstxt's question for `name` with answer `records` (type, rdata), names compressed."""
    question = dnstxt.encode_query(qid, name)[12:]
    body = b"".join(struct.pack("!HHHIH", 0xC00C, rtype, 1, 60, len(rdata)) + rdata for rtype, rdata in records)
    return struct.pack("!HHHHHH", qid, flags, 1, len(records), 0, 0) + question + body


def test_a_query_is_one_recursive_txt_question():
    q = dnstxt.encode_query(0x1234, "2.0.0.127.bl.test")
    assert q == (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                 b"\x012\x010\x010\x03127\x02bl\x04test\x00\x00\x10\x00\x01")


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".test", ".".join(["abcdefgh"] * 40), "é.test"])
def test_a_name_dns_cannot_carry_is_refused(name):
    with pytest.raises((ValueError, UnicodeError)):
        dnstxt.encode_query(1, name)


def test_the_txt_rdata_is_kept_raw_and_other_types_are_skipped():
    msg = reply(7, "x.bl.test", [(1, b"\x7f\0\0\2"), (16, b"\x06listed\x03too"), (16, b"\x00")])
    assert dnstxt.decode_txt(msg, 7) == [b"\x06listed\x03too", b"\x00"]


def test_another_id_is_not_the_reply_and_an_error_is_no_reason():
    assert dnstxt.decode_txt(reply(7, "x.test", [(16, b"\x01a")]), 8) is None
    assert dnstxt.decode_txt(reply(7, "x.test", [], flags=0x8183), 7) == []          # NXDOMAIN


@pytest.mark.parametrize("msg", [b"\x00\x07\x81", reply(7, "x.test", [(16, b"\x01a")])[:-1],
                                 reply(7, "x.test", [(16, b"\x01a")], flags=0x8380)])      # truncated (TC)
def test_a_malformed_reply_is_refused(msg):
    with pytest.raises(dnstxt.Malformed):
        dnstxt.decode_txt(msg, 7)


def test_a_name_of_too_many_labels_is_malformed():
    long = struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 0) + b"\x01a" * 200 + b"\x00\x00\x10\x00\x01"
    with pytest.raises(dnstxt.Malformed):
        dnstxt.decode_txt(long, 7)


def test_the_logged_text_stops_at_nul_and_keeps_the_bytes():
    text = dnstxt.logged_text(b"\x12listed for testing\x00rest\xff")
    assert text == "\x12listed for testing"
    assert dnstxt.logged_text(b"\x02\xff\xfe").encode("utf-8", "surrogateescape") == b"\x02\xff\xfe"


def test_resolv_conf_gives_the_first_usable_nameserver(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# c\nsearch x\nnameserver bogus\nnameserver 127.0.0.9\nnameserver 127.0.0.8\n")
    assert dnstxt.nameserver(str(conf)) == "127.0.0.9"
    conf.write_text("search x\n")
    assert dnstxt.nameserver(str(conf)) == "127.0.0.1"
    assert dnstxt.nameserver(str(tmp_path / "none")) == "127.0.0.1"


def udp_server(answer):
    """A loopback UDP socket answering each question with answer(question) (None: silence)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                data, peer = sock.recvfrom(512)
            except OSError:
                return
            out = answer(data)
            if out is not None:
                sock.sendto(out, peer)
    threading.Thread(target=serve, daemon=True).start()
    return sock


def asked(sock, monkeypatch, deadline_in=1.0):
    """dnstxt.txt_records against `sock` (its port in place of 53)."""
    port = sock.getsockname()[1]
    real = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: real(self, (addr[0], port)))
    return dnstxt.txt_records("2.0.0.127.bl.test", time.monotonic() + deadline_in, "127.0.0.1")


def test_a_stray_reply_is_passed_over_for_the_answer(monkeypatch):
    def answer(q):
        qid = struct.unpack("!H", q[:2])[0]
        return reply(qid ^ 1, "x", [(16, b"\x03bad")]) + b"|" + reply(qid, "2.0.0.127.bl.test", [(16, b"\x04spam")])

    def two(q):
        stray, right = answer(q).split(b"|", 1)
        return stray, right
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve():
        data, peer = sock.recvfrom(512)
        for out in two(data):
            sock.sendto(out, peer)
    threading.Thread(target=serve, daemon=True).start()
    with sock:
        assert asked(sock, monkeypatch) == [b"\x04spam"]


def test_silence_ends_at_the_deadline(monkeypatch):
    with udp_server(lambda q: None) as sock:
        start = time.monotonic()
        assert asked(sock, monkeypatch, 0.3) is None
        assert 0.25 < time.monotonic() - start < 2


def test_a_garbled_answer_is_no_reason(monkeypatch):
    with udp_server(lambda q: q[:2] + b"\x81\x80\x00\x01\x00\x05") as sock:
        assert asked(sock, monkeypatch) is None
