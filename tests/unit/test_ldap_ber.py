"""mod_ldap's LDAPv3 client, the pure parts: BER encoding and decoding, LDAP messages, and a connection fed by a
socket pair (what a broken or hostile server sends must end in LdapError, never a traceback or a hang)."""

import socket
import threading
import time

import pytest

from proftpy import ber
from proftpy.auth.ldap_proto import (BIND_RESPONSE, SEARCH_DONE, SEARCH_ENTRY, Connection, LdapError, ServerDown,
                                     Timeout, bind_request, decode_entry, decode_message, extended_request, message,
                                     search_request, unbind_request)
from proftpy.auth.ldap_filter import parse


@pytest.mark.parametrize("value,encoded", [
    (0, "020100"), (1, "020101"), (127, "02017f"), (128, "02020080"), (255, "020200ff"), (256, "02020100"),
    (-1, "0201ff"), (-128, "020180"), (-129, "0202ff7f"), (2**31 - 1, "02047fffffff"),
])
def test_integers(value, encoded):
    assert ber.integer(value).hex() == encoded
    tag, content, end = ber.element(bytes.fromhex(encoded))
    assert (tag, ber.decode_integer(content), end) == (ber.INTEGER, value, len(encoded) // 2)


@pytest.mark.parametrize("size,head", [(0, "0400"), (127, "047f"), (128, "048180"), (200, "0481c8"),
                                       (300, "0482012c"), (70000, "0483011170")])
def test_lengths_short_and_long_form(size, head):
    encoded = ber.octets(b"x" * size)
    assert encoded[:len(head) // 2].hex() == head
    assert ber.complete(encoded) == len(encoded)
    assert ber.complete(encoded[:-1]) is None
    assert ber.element(encoded)[1] == b"x" * size


def test_booleans_null_and_sequences():
    assert ber.boolean(True).hex() == "0101ff" and ber.boolean(False).hex() == "010100"
    assert ber.null(0x42).hex() == "4200"
    seq = ber.sequence(ber.integer(5), ber.octets("ab"))
    assert seq.hex() == "3007020105040261" + "62"
    assert ber.elements(ber.element(seq)[1]) == [(ber.INTEGER, b"\x05"), (ber.OCTET_STRING, b"ab")]
    assert ber.decode_boolean(b"\x00") is False and ber.decode_boolean(b"\x01") is True


@pytest.mark.parametrize("data,error", [
    ("3080", "indefinite"), ("1f0100", "multi-byte"), ("3085ffffffffff", "length of 5 bytes"),
    ("3084ffffffff", "element of"), ("3005020101", "truncated"),
])
def test_malformed_elements(data, error):
    with pytest.raises(ber.BerError, match=error):
        if ber.complete(bytes.fromhex(data)) is None:
            raise ber.BerError("truncated element")
        ber.element(bytes.fromhex(data))


def test_children_longer_than_their_container_are_refused():
    with pytest.raises(ber.BerError):
        ber.elements(bytes.fromhex("0405ab"))
    with pytest.raises(ber.BerError):
        ber.decode_integer(b"\x01" * 9)
    with pytest.raises(ber.BerError):
        ber.decode_integer(b"")


def test_bind_request_is_rfc_4511s():
    # LDAPMessage { 1, BindRequest { version 3, name "cn=a", simple "pw" } }
    assert message(1, bind_request(3, "cn=a", "pw")).hex() == "3012020101600d0201030404" + "636e3d61" + "80027077"
    assert message(2, unbind_request()).hex() == "30050201024200"


def test_search_request_fields():
    op = search_request("dc=x", 2, 0, 2, 5, parse("(uid=a)"), ["uid", "cn"])
    tag, content, _ = ber.element(op)
    assert tag == 0x63
    parts = ber.elements(content)
    assert [t for t, _ in parts] == [0x04, 0x0A, 0x0A, 0x02, 0x02, 0x01, 0xA3, 0x30]
    assert parts[0][1] == b"dc=x" and parts[1][1] == b"\x02" and parts[3][1] == b"\x02" and parts[4][1] == b"\x05"
    assert ber.elements(parts[7][1]) == [(4, b"uid"), (4, b"cn")]


def test_starttls_request():
    tag, content, _ = ber.element(extended_request("1.3.6.1.4.1.1466.20037"))
    assert tag == 0x77 and ber.elements(content) == [(0x80, b"1.3.6.1.4.1.1466.20037")]


def entry_message(message_id: int, dn: str, attributes: dict) -> bytes:
    attrs = [ber.sequence(ber.octets(name), ber.set_of(*(ber.octets(v) for v in values)))
             for name, values in attributes.items()]
    return message(message_id, ber.sequence(ber.octets(dn), ber.sequence(*attrs), tag=SEARCH_ENTRY))


def done_message(message_id: int, code: int = 0, tag: int = SEARCH_DONE, text: str = "") -> bytes:
    return message(message_id, ber.sequence(ber.enumerated(code), ber.octets(""), ber.octets(text), tag=tag))


def test_entry_decoding_keeps_every_value_by_lower_case_name():
    message_id, tag, content = decode_message(entry_message(3, "uid=c,dc=x", {"uidNumber": [b"7"],
                                                                              "memberUid": [b"a", b"b"]}))
    entry = decode_entry(content)
    assert (message_id, tag, entry.dn) == (3, SEARCH_ENTRY, "uid=c,dc=x")
    assert entry.first("UIDNUMBER") == "7" and entry.values("memberuid") == [b"a", b"b"]
    assert entry.values("homeDirectory") is None


class FakeServer:
    """The other end of a socket pair: answers each request with the bytes a test gives it."""

    def __init__(self, *answers: bytes, close: bool = False):
        self.mine, theirs = socket.socketpair()
        self.conn = Connection(theirs, "fake")
        self.thread = threading.Thread(target=self._run, args=(answers, close), daemon=True)
        self.thread.start()

    def _run(self, answers, close):
        self.mine.settimeout(5)
        try:
            self.mine.recv(65536)
            for a in answers:
                self.mine.sendall(a)
            if close:
                self.mine.close()
        except OSError:
            pass


def deadline(seconds: float = 2.0) -> float:
    return time.monotonic() + seconds


def test_search_collects_entries_and_skips_other_message_ids():
    fake = FakeServer(done_message(99), entry_message(1, "uid=a,dc=x", {"uid": [b"a"]}),
                      message(1, ber.sequence(ber.octets("ldap://elsewhere/"), tag=0x73)), done_message(1))
    result, entries = fake.conn.search("dc=x", 2, 0, 2, 5, parse("(uid=a)"), ["uid"], deadline())
    assert result.code == 0 and [e.dn for e in entries] == ["uid=a,dc=x"]


def test_bind_result_code_and_message():
    fake = FakeServer(done_message(1, 49, BIND_RESPONSE, "bad"))
    result = fake.conn.bind("cn=a", "pw", 3, deadline())
    assert (result.code, result.text, result.message) == (49, "Invalid credentials", "bad")


@pytest.mark.parametrize("answer,kind", [
    (b"\x30\x80\x00\x00", LdapError), (b"garbage!", LdapError), (b"\x30\x03\x02\x01\x01", LdapError),
    (message(0, ber.sequence(ber.enumerated(52), ber.octets(""), ber.octets("bye"), tag=0x78)), ServerDown),
])
def test_what_a_broken_server_sends_is_an_ldap_error(answer, kind):
    fake = FakeServer(answer, close=True)
    with pytest.raises(kind):
        fake.conn.bind("cn=a", "pw", 3, deadline())
    assert fake.conn.closed


def test_a_closed_connection_is_server_down_and_silence_a_timeout():
    with pytest.raises(ServerDown, match="closed"):
        FakeServer(close=True).conn.bind("", "", 3, deadline())
    start = time.monotonic()
    silent = FakeServer()
    with pytest.raises(Timeout):
        silent.conn.search("dc=x", 2, 0, 0, 1, parse("(cn=*)"), [], deadline(0.3))
    assert time.monotonic() - start < 2


def test_connect_to_nothing_is_server_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addresses = socket.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)
    with pytest.raises(ServerDown) as e:
        Connection.open(addresses, 1.0)
    assert e.value.text.startswith("Can't contact LDAP server")
