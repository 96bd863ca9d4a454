"""mod_dnsbl's names (ProFTPD's reversed IPv4, RFC 5782's IPv6 nibbles) and the deadline of a lookup."""

from __future__ import annotations

import socket
import time

from proftpy.config.types import Custom
from proftpy.modules import dnsbl as mod
from proftpy.net import dnsbl


def test_ipv4_is_reversed_by_octets():
    assert dnsbl.query_name(dnsbl.reversed_name("192.0.2.99"), "bl.test") == "99.2.0.192.bl.test"


def test_a_v4_mapped_address_is_its_ipv4_address():
    assert dnsbl.reversed_name("::ffff:10.1.2.3") == "3.2.1.10"


def test_ipv6_is_reversed_by_nibbles_as_rfc_5782_shows():
    assert dnsbl.reversed_name("2001:db8:1:2:3:4:567:89ab") == \
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"


def test_a_resolver_that_does_not_answer_in_time_gives_none(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: time.sleep(2) or [])
    started = time.monotonic()
    assert dnsbl.listed("slow.bl.test", 0.2) is None
    assert time.monotonic() - started < 1


def test_a_name_that_does_not_resolve_is_not_listed(monkeypatch):
    def nxdomain(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    assert dnsbl.listed("x.bl.test", 1) is False


def test_directive_words():
    domain = next(d for d in mod.directives if d.name == "DNSBLDomain").parse
    policy = next(d for d in mod.directives if d.name == "DNSBLPolicy").parse
    assert isinstance(domain, Custom) and domain([".bl.test"]) == "bl.test"
    assert policy(["Allow,Deny"]) == "allow,deny"
