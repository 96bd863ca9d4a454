"""netacl/netaddr: every case of ProFTPD's tests/api/netacl.c, plus the negated-entry decision."""

import pytest

from proftpy.net import netacl
from proftpy.net.netacl import AclType
from proftpy.net.netaddr import ClientAddr, Resolver, ip_string

LOCAL = ClientAddr("127.0.0.1", "localhost", True)          # UseReverseDNS on, PTR = localhost
LOCAL_NO_DNS = ClientAddr.plain("127.0.0.1")


@pytest.mark.parametrize("text,kind,negated", [
    ("ALL", AclType.ALL, False), ("none", AclType.NONE, False), ("127.0.0.1/24", AclType.IPMASK, False),
    ("::1/36", AclType.IPMASK, False), ("::ffff:127.0.0.1/111", AclType.IPMASK, False),
    ("::1", AclType.IPMATCH, False), ("!::1", AclType.IPMATCH, True), ("127.0.0.1/0", AclType.IPMASK, False),
    ("0.0.0.0/0", AclType.IPMASK, False), ("127.0.0.", AclType.IPGLOB, False),
    ("127.0.0.1", AclType.IPMATCH, False), ("!127.0.0.1", AclType.IPMATCH, True),
    ("*.0.0.1", AclType.IPGLOB, False), (".edu", AclType.DNSGLOB, False), ("localhost", AclType.DNSMATCH, False),
    ("foobar", AclType.DNSMATCH, False), ("!foobar", AclType.DNSMATCH, True), ("!fo?bar", AclType.DNSGLOB, True),
])
def test_create_types(text, kind, negated):
    acl = netacl.create(text)
    assert (acl.type, acl.negated) == (kind, negated)


@pytest.mark.parametrize("text", [
    "", "localhost/24", "127.0.0.1/36", "::1/136", "::ffff:127.0.0.1/136", "/-1", "127.0.0.1.2/24", "/25f",
    "127.0.0.1.1", ".0.0.1", "!all", "!none", "!"])
def test_create_errors(text):
    with pytest.raises(ValueError):
        netacl.create(text)


@pytest.mark.parametrize("text,expected", [
    ("all", "all <all>"), ("AlL", "all <all>"), ("None", "none <none>"),
    ("127.0.0.1", "127.0.0.1 <IP address match>"), ("!127.0.0.1", "!127.0.0.1 <IP address match, inverted>"),
    ("127.0.0.", "127.0.0.* <IP address glob>"), ("localhost", "localhost <DNS hostname match>"),
    ("*.castaglia.org", "*.castaglia.org <DNS hostname glob>"),
    ("127.0.0.1/24", "127.0.0.1/24 <IP address mask, 24-bit mask>"),
])
def test_get_str(text, expected):
    acl = netacl.create(text)
    assert netacl.get_str(acl) == expected
    assert netacl.get_str(acl, describe=False) == expected.split(" <")[0]


@pytest.mark.parametrize("text,expected", [
    ("all", 1), ("none", -1), ("127.0.0.1", 1), ("!127.0.0.1", -1), ("192.168.0.1", 0), ("!192.168.0.1", 1),
    ("127.0.0.0/24", 1), ("!127.0.0.0/24", -1), ("!1.2.3.4/24", 1), ("127.0.0.", 1), ("!127.0.0.", -1),
    ("!1.2.3.", 1), ("localhost", 1), ("!localhost", -1), ("!www.google.com", 1), ("loc*st", 1),
    ("!loc*st", -1), ("!www.g*g.com", 1), ("::ffff:127.0.0.1/104", 1),
])
def test_match(text, expected):
    assert netacl.match(netacl.create(text), LOCAL) == expected


def test_dns_glob_is_skipped_without_reverse_dns():
    assert netacl.match(netacl.create("loc*st"), LOCAL_NO_DNS) == 0
    assert netacl.match(netacl.create("127.0.0.1"), LOCAL_NO_DNS) == 1


def test_dns_name_without_reverse_dns_is_the_ip_string():
    assert netacl.match(netacl.create("localhost"), LOCAL_NO_DNS) == 0


def test_match_of_nothing_is_an_error():
    assert netacl.match(None, LOCAL) == -2
    assert netacl.match(netacl.create("all"), None) == -2


def test_v4_mapped_client_matches_ipv4_rules():
    client = ClientAddr.plain("::ffff:10.1.2.3")
    assert client.ip == "10.1.2.3"
    assert netacl.match(netacl.create("10.0.0.0/8"), client) == 1
    assert netacl.match(netacl.create("10.1.2.*"), client) == 1


def test_ipv6_mask_and_glob():
    client = ClientAddr.plain("2001:db8::5")
    assert netacl.match(netacl.create("2001:db8::/32"), client) == 1
    assert netacl.match(netacl.create("10.0.0.0/8"), client) == 0
    assert netacl.match(netacl.create("2001:db8::*"), client) == 1


def test_create_list_splits_commas_and_spaces():
    acls = netacl.create_list(["10.0.0.1,10.0.0.2", "!10.0.0.3"])
    assert [str(a) for a in acls] == ["10.0.0.1", "10.0.0.2", "!10.0.0.3"]


def test_resolver_confirms_reverse_names_and_caches():
    calls = []

    def rev(ip):
        calls.append(ip)
        return {"10.0.0.1": "good.example", "10.0.0.2": "liar.example"}[ip]

    r = Resolver(reverse_fn=rev, forward_fn=lambda n: {"good.example": ["10.0.0.1"]}.get(n, ["10.9.9.9"]))
    assert r.client("10.0.0.1", True) == ClientAddr("10.0.0.1", "good.example", True)
    assert r.client("10.0.0.2", True).name == "10.0.0.2"          # PTR does not resolve back: not trusted
    r.client("10.0.0.1", True)
    assert calls == ["10.0.0.1", "10.0.0.2"]
    assert r.client("10.0.0.1", False) == ClientAddr("10.0.0.1", "10.0.0.1", False)


def test_resolver_failure_uses_the_ip():
    def rev(ip):
        raise OSError("no PTR")
    assert Resolver(reverse_fn=rev).client("10.0.0.7", True).name == "10.0.0.7"


def test_ip_string_unwraps_mapped_addresses():
    assert ip_string("::ffff:192.0.2.1") == "192.0.2.1"
    assert ip_string("::1") == "::1"


def test_bracket_ranges_are_ip_globs():
    acl = netacl.create("127.0.0.[2-9]")
    assert acl.type is AclType.IPGLOB
    assert netacl.match(acl, ClientAddr.plain("127.0.0.2")) == 1
    assert netacl.match(acl, LOCAL_NO_DNS) == 0
