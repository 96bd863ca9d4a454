"""TLSLog's `Client:` line and TLS_CLIENT_S_DN: the peer's subject as OpenSSL's one-line form prints it
(`openssl x509 -noout -subject -nameopt oneline`, which ProFTPD uses), and the iPAddress SAN comparison of
`TLSOptions iPAddressRequired`, and the lines a refused client certificate gets."""

from __future__ import annotations

from proftpy.modules.tls_session import _same_ip, _subject_text, verify_failure_lines


class Peer:
    def __init__(self, subject):
        self.subject = subject

    def getpeercert(self):
        return {"subject": self.subject}


def test_subject_in_openssls_one_line_form():
    subject = ((("countryName", "DE"),), (("organizationName", 'x"y\\z'),),
               (("organizationalUnitName", "é"), ("organizationalUnitName", "two")), (("commonName", "a,b"),),
               (("emailAddress", "a@b.c"),))
    # what `openssl x509 -nameopt oneline` prints for a certificate with this subject
    assert _subject_text(Peer(subject)) == (r'C = DE, O = x\"y\\z, OU = \C3\A9 + OU = two, CN = "a,b", '
                                            "emailAddress = a@b.c")


def test_subject_values_that_need_quotes():
    assert _subject_text(Peer(((("commonName", " lead"),), (("commonName", "#x"),), (("commonName", "t "),)))) \
        == 'CN = " lead", CN = "#x", CN = "t "'
    assert _subject_text(Peer(((("commonName", "alice"),),))) == "CN = alice"


def test_ip_address_sans():
    assert _same_ip("127.0.0.1", "127.0.0.1")
    assert _same_ip("0:0:0:0:0:FFFF:7F00:1", "127.0.0.1")         # an IPv4-mapped SAN names the IPv4 client
    assert _same_ip("2001:DB8:0:0:0:0:0:1\n", "2001:db8::1")       # as Python prints an IPv6 SAN
    assert not _same_ip("127.0.0.2", "127.0.0.1")
    assert not _same_ip("<invalid>", "127.0.0.1")


class Failure:
    def __init__(self, error, message):
        self.depth, self.error, self.message = 1, error, message
        self.subject, self.issuer, self.purposes = "CN = sub", "CN = root", ["SSL client", "SSL server"]


def test_verify_failure_lines_as_proftpds():
    head = ["error: unable to verify certificate at depth 1", "error: cert subject: CN = sub",
            "error: cert issuer: CN = root"]
    assert verify_failure_lines(Failure(10, "certificate has expired")) == head + [
        "client certificate failed verification: certificate has expired"]
    assert verify_failure_lines(Failure(26, "unsuitable certificate purpose")) == head + [
        "client certificate failed verification: unsuitable certificate purpose", "  purpose #1: SSL client",
        "  purpose #2: SSL server"]
    assert verify_failure_lines(Failure(7, "certificate signature failure")) == head + [
        "error verifying client certificate: [7] certificate signature failure"]
