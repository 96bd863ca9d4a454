"""The few facts of an X.509 certificate FTPS needs, read from its DER bytes (RFC 5280): the validity dates (a
certificate that expired is refused at start), the subject's CommonName and the subjectAltName e-mail addresses
(TLSUserName), and any extension by OID (TLSUserName with an OID). Python's ssl module gives these only for a
verified peer, and not at all for a certificate file; this reader is small because it reads only what it names.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass, field

from .. import ber

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)
CN = "2.5.4.3"
EMAIL = "1.2.840.113549.1.9.1"
SUBJECT_ALT_NAME = "2.5.29.17"


class BadCertificate(ValueError):
    """The bytes are not a DER certificate this reader understands."""


def pem_certificates(data: bytes) -> list[bytes]:
    """The DER bytes of every PEM certificate in `data`, in order."""
    out = []
    for m in _PEM.finditer(data):
        try:
            out.append(base64.b64decode(b"".join(m.group(1).split()), validate=True))
        except ValueError:
            raise BadCertificate("a PEM certificate block is not valid base64") from None
    return out


def tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the element at `pos` (ber.py's reader, its errors as
    BadCertificate)."""
    try:
        head = ber.header(data, pos)
    except ber.BerError as e:
        raise BadCertificate(str(e)) from None
    if head is None or head[1] + head[2] > len(data):
        raise BadCertificate("truncated")
    tag, start, size = head
    return tag, start, start + size


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, vs, ve = tlv(data, start)
        out.append((tag, vs, ve))
        start = ve
    return out


def _oid(raw: bytes) -> str:
    if not raw:
        raise BadCertificate("empty OID")
    parts = [raw[0] // 40, raw[0] % 40]
    value = 0
    for b in raw[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _time(tag: int, raw: bytes) -> dt.datetime:
    text = raw.decode("ascii", "replace")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    try:
        return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise BadCertificate(f"bad time {text!r}") from None


def _text(tag: int, raw: bytes) -> str:
    if tag == 0x1E:                                 # BMPString
        return raw.decode("utf-16-be", "replace")
    return raw.decode("utf-8", "replace")


@dataclass
class Certificate:
    der: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    subject: list[tuple[str, str]] = field(default_factory=list)    # (OID, value), in order
    extensions: dict[str, bytes] = field(default_factory=dict)      # OID -> the extension's value (DER)

    @classmethod
    def parse(cls, der: bytes) -> "Certificate":
        _, cs, ce = tlv(der, 0)
        _, ts, te = _children(der, cs, ce)[0]                       # tbsCertificate
        fields = _children(der, ts, te)
        if fields and fields[0][0] == 0xA0:                         # [0] version
            fields = fields[1:]
        if len(fields) < 6:
            raise BadCertificate("too few fields")
        validity = _children(der, fields[3][1], fields[3][2])
        (t1, s1, e1), (t2, s2, e2) = validity[:2]
        cert = cls(der, _time(t1, der[s1:e1]), _time(t2, der[s2:e2]))
        for _, rs, re_ in _children(der, fields[4][1], fields[4][2]):          # subject: SET of SEQUENCE
            for _, as_, ae in _children(der, rs, re_):
                (_, os_, oe), (vt, vs, ve) = _children(der, as_, ae)[:2]
                cert.subject.append((_oid(der[os_:oe]), _text(vt, der[vs:ve])))
        for tag, s, e in fields[6:]:
            if tag == 0xA3:                                         # [3] extensions
                _, xs, xe = tlv(der, s)
                for _, es, ee in _children(der, xs, xe):
                    parts = _children(der, es, ee)
                    oid = _oid(der[parts[0][1]:parts[0][2]])
                    cert.extensions[oid] = der[parts[-1][1]:parts[-1][2]]
        return cert

    @property
    def common_name(self) -> str | None:
        return next((v for oid, v in self.subject if oid == CN), None)

    def alt_emails(self) -> list[str]:
        """subjectAltName rfc822Name entries (the e-mail addresses)."""
        raw = self.extensions.get(SUBJECT_ALT_NAME)
        if raw is None:
            return []
        _, s, e = tlv(raw, 0)
        return [raw[vs:ve].decode("ascii", "replace") for tag, vs, ve in _children(raw, s, e) if tag == 0x81]

    def extension_text(self, oid: str) -> str | None:
        """An extension's value as text (a DER string inside it, or its bytes as they are)."""
        raw = self.extensions.get(oid)
        if raw is None:
            return None
        try:
            tag, s, e = tlv(raw, 0)
            if tag in (0x0C, 0x13, 0x16, 0x1E):
                return _text(tag, raw[s:e])
        except BadCertificate:
            pass
        return raw.decode("utf-8", "replace")


def read_certificates(path: str) -> list[Certificate]:
    """Every certificate in a PEM file. Raises OSError, BadCertificate."""
    with open(path, "rb") as f:
        data = f.read()
    return [Certificate.parse(der) for der in pem_certificates(data)]
