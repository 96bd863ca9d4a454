"""mod_ldap's filters (RFC 4515 strings into RFC 4511 BER), the escaping of user names in them, LDAPServer's
words, and the userPassword schemes."""

import base64
import hashlib

import pytest

from proftpy import ber
from proftpy.auth.ldap import check_password, split_scheme
from proftpy.auth.ldap_config import ConfigError, parse_server, parse_url, strtoul
from proftpy.auth.ldap_filter import (FilterError, escape, escape_dn_value, interpolate, interpolate_dn, parse,
                                      to_string, unescape)

TEMPLATE = "(&(uid=%u)(objectclass=posixAccount))"


@pytest.mark.parametrize("text,encoded", [
    ("(uid=carol)", "a30c0403756964" + "0405" + b"carol".hex()),
    ("(cn=*)", "8702636e"),
    ("(!(cn=x))", "a209a3070402636e040178"),
    ("(cn=a*b*c)", "a40f" + "0402636e" + "3009" + "800161" + "810162" + "820163"),
    ("(cn=*b)", "a4090402636e3003" + "820162"),
    ("(uidNumber>=10)", "a5" + "0f" + "0409" + b"uidNumber".hex() + "04023130"),
    ("(cn~=x)", "a8070402636e040178"),
    ("(cn:caseExactMatch:=x)", "a9" + "17" + "810e" + b"caseExactMatch".hex() + "8202636e" + "830178"),
    ("(cn:dn:=x)", "a90a8202636e8301788401ff"),
    ("(cn:=x)", "a9078202636e830178"),
])
def test_encodings(text, encoded):
    assert parse(text).hex() == encoded


def test_and_or_lists_and_round_trip():
    text = "(&(uid=carol)(|(objectclass=posixAccount)(objectclass=inetOrgPerson))(!(cn=x*)))"
    encoded = parse(text)
    assert encoded[0] == 0xA0
    assert to_string(encoded) == text
    assert to_string(parse("  ( & (uid=a) (cn=b) )  ")) == "(&(uid=a)(cn=b))"


def test_a_bare_item_is_read_as_openldap_reads_it():
    assert parse("uid=carol") == parse("(uid=carol)")


@pytest.mark.parametrize("value,raw", [
    ("a\\2ab", b"a*b"), ("\\28x\\29", b"(x)"), ("\\*\\(\\)\\\\", b"*()\\"), ("caf\\c3\\a9", "café".encode()),
    ("\\00", b"\0"),
])
def test_escapes_rfc_4515_and_ldapv2(value, raw):
    assert unescape(value) == raw
    assert parse(f"(cn={value})") == ber.sequence(ber.octets("cn"), ber.octets(raw), tag=0xA3)


@pytest.mark.parametrize("text", ["(uid=carol", "uid=carol)", "(&)", "(|)", "()", "(uid=\\zz)", "(uid=a\\)",
                                  "((uid=x))", "(=x)", "(u id=x)", "(cn=a**b)", "(cn>=a*)", "(uid=x)(cn=y)",
                                  "(!(cn=x)(cn=y))", "(:=x)", "(cn:a:b:=x)", "(" * 200 + "cn=x" + ")" * 200])
def test_what_is_no_filter_is_refused(text):
    with pytest.raises(FilterError):
        parse(text)


@pytest.mark.parametrize("name", [
    "*", "carol)(uid=*", "*)(|(uid=*", "*))(|(objectclass=*", "carol\\", "\\2a", "a(b", "x)(!(uid=y", "é*\0",
])
def test_a_name_never_changes_the_filter(name):
    """Injection: whatever the name holds, the template's filter stays an AND of one equality on uid (the name,
    byte for byte) and the objectclass test."""
    encoded = parse(interpolate(TEMPLATE, name))
    tag, content, _ = ber.element(encoded)
    items = ber.elements(content)
    assert tag == 0xA0 and len(items) == 2
    assert items[0] == (0xA3, ber.octets("uid") + ber.octets(name.encode()))
    assert items[1] == (0xA3, ber.octets("objectclass") + ber.octets("posixAccount"))


def test_escape_is_proftpds_and_one_pass():
    assert escape("a*b(c)d\\e") == "a\\*b\\(c\\)d\\\\e"
    assert interpolate("(|(uid=%u)(mail=%v))", "%u*") == "(|(uid=%u\\*)(mail=%u\\*))"


def test_dn_escaping():
    assert escape_dn_value("a,b+c=d") == "a\\,b\\+c\\=d"
    assert escape_dn_value(" #x ") == "\\ #x\\ "
    assert interpolate_dn("uid=%u,ou=people", "x,ou=admins") == "uid=x\\,ou\\=admins,ou=people"


@pytest.mark.parametrize("text,scheme,host,port,scope", [
    ("ldap://h", "ldap", "h", 389, 0), ("ldaps://h", "ldaps", "h", 636, 0), ("ldap://h:1389/??sub", "ldap", "h", 1389, 2),
    ("LDAP://[::1]:99/??one", "ldap", "::1", 99, 1), ("ldap://", "ldap", "", 389, 0), ("ldap://h/??base", "ldap", "h", 389, 0),
])
def test_urls(text, scheme, host, port, scope):
    info = parse_url(text)
    assert (info.scheme, info.host, info.port, info.scope) == (scheme, host, port, scope)


@pytest.mark.parametrize("text,message", [
    ("ldap://h/dc=x", "base DN"), ("ldap://h/??sub?(uid=x)", "search filter"), ("ldapi://%2F", "valid schemes"),
    ("ldap://h:0", "invalid LDAP URL"), ("ldap://h/??everything", "invalid LDAP URL"),
])
def test_bad_urls(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_url(text)


def test_server_words(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    servers = parse_server([f"h1:1389 ldaps://h2 ssl-ca:{ca} ssl-verify:off", "h3"])
    assert [(s.host, s.port, s.scope, s.scheme) for s in servers] == [("h1", 1389, None, "ldap"),
                                                                      ("h2", 636, 0, "ldaps"), ("h3", 389, None, "ldap")]
    assert (servers[1].ssl_ca, servers[1].ssl_verify) == (str(ca), "never")
    with pytest.raises(ConfigError, match="No such file"):
        parse_server(["h", "ssl-ca:/nonexistent"])
    with pytest.raises(ConfigError, match="unknown/unsupported"):
        parse_server(["h", "ssl-verify:maybe"])


# fixed hashes of "pw" (openssl passwd -6 / -1 with these salts): the same test names in every collection
SHA512_PW = "$6$abcdefgh$KQeXafAQAaOoKTevphVU215RvJdgzyfASRasIOuh12hO8u0r1bGW92ZnTmC9IjsiQ8VPiTXBiZF49dFL1U4wX/"


@pytest.mark.parametrize("stored,ok", [
    ("{CRYPT}" + SHA512_PW, True), ("{crypt}$1$TeG07twY$a865NuesG7Pj7/o3IBrJN0", True), (SHA512_PW, True),
    ("{clear}pw", True), ("{CLEAR}pwx", False), ("pw", False),
    ("{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest()).decode(), True),
    ("{SSHA}" + base64.b64encode(hashlib.sha1(b"pwNaCl").digest() + b"NaCl").decode(), True),
    ("{SSHA}" + base64.b64encode(hashlib.sha1(b"pwxNaCl").digest() + b"NaCl").decode(), False),
    ("{MD5}" + base64.b64encode(hashlib.md5(b"pw").digest()).decode(), True),
    ("{SMD5}" + base64.b64encode(hashlib.md5(b"pwab").digest() + b"ab").decode(), True),
    ("{SHA512}" + base64.b64encode(hashlib.sha512(b"pw").digest()).decode(), True),
    ("{SHA}notbase64!", False), ("{UNKNOWN}pw", False), ("", False), ("{CRYPT}", False),
])
def test_password_schemes(stored, ok):
    assert check_password(stored, "pw")[0] is ok


def test_default_scheme_and_proftpds_prefix_rule():
    assert check_password("pw", "pw", "clear")[0] and not check_password("pw", "pw", "crypt")[0]
    assert split_scheme("{c}x", "crypt") == ("c", "x")          # ProFTPD: a prefix of "crypt" is crypt
    assert split_scheme("no-braces", "clear") == ("clear", "no-braces")
    assert check_password("{cl}pw", "pw")[0]


def test_ids_as_strtoul_reads_them():
    assert strtoul("2500") == 2500 and strtoul(" 12abc") == 12 and strtoul("abc") == 0
    assert strtoul("-1") is None and strtoul("4294967295") is None
