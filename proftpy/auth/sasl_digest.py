"""DIGEST-MD5 client (RFC 2831) for LDAPUseSASL, authentication only (qop=auth: no integrity or confidentiality
layer, which libsasl2 would add and proftpy does not; use TLS). The realm is ldap.conf's SASL_REALM, else empty (as
ProFTPD's interaction callback answers); the digest-uri is `ldap/` and the server's host name. The server's
rspauth is checked: a wrong one fails the bind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from proftpy.auth.sasl import Identity, Mechanism, SaslError, utf8

MAX_CHALLENGE = 2048                # RFC 2831 2.1.1: a challenge is at most 2048 bytes


def parse_directives(data: bytes) -> dict[str, str]:
    """`name=value` or `name="quoted \\" value"`, comma separated, into a dict (lower-case names, first wins)."""
    if len(data) > MAX_CHALLENGE:
        raise SaslError("DIGEST-MD5: challenge too long")
    text = data.decode("utf-8", "replace")
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise SaslError("DIGEST-MD5: a directive without a value")
        name = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            value = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
            if i >= n:
                raise SaslError("DIGEST-MD5: an unterminated quoted value")
            i += 1
            found = "".join(value)
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            found = text[i:end].strip()
            i = end
        out.setdefault(name, found)
    return out


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def _hex(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest().encode()


def response_value(who: Identity, realm: str, nonce: str, cnonce: str, nc: str, uri: str, a2_prefix: str) -> str:
    """RFC 2831 2.1.2.1's response-value (a2_prefix `AUTHENTICATE`; empty for the server's rspauth)."""
    a1 = _md5(utf8(f"{who.authcid}:{realm}:{who.password}")) + utf8(f":{nonce}:{cnonce}")
    if who.authzid:
        a1 += utf8(f":{who.authzid}")
    a2 = utf8(f"{a2_prefix}:{uri}")
    return _hex(_hex(a1) + utf8(f":{nonce}:{nc}:{cnonce}:auth:") + _hex(a2)).decode()


class DigestMd5(Mechanism):
    name = "DIGEST-MD5"

    def __init__(self, who: Identity, cnonce: bytes | None = None):
        super().__init__(who)
        self.cnonce = (cnonce or base64.b64encode(os.urandom(18))).decode("ascii")
        self.expected: str | None = None            # rspauth, once the response is sent
        self.verified = False

    def step(self, challenge: bytes) -> bytes:
        if self.expected is not None:           # the server's rspauth, as a challenge: checked, empty answer
            self.finish(challenge)
            return b""
        found = parse_directives(challenge)
        nonce = found.get("nonce")
        if not nonce:
            raise SaslError("DIGEST-MD5: no nonce in the challenge")
        if found.get("algorithm", "").lower() != "md5-sess":
            raise SaslError("DIGEST-MD5: the algorithm is not md5-sess")
        qops = [q.strip().lower() for q in found.get("qop", "auth").split(",")]
        if "auth" not in qops:
            raise SaslError("DIGEST-MD5: the server does not offer qop=auth")
        who, nc = self.who, "00000001"
        realm = who.realm
        uri = f"ldap/{who.host}"
        value = response_value(who, realm, nonce, self.cnonce, nc, uri, "AUTHENTICATE")
        self.expected = response_value(who, realm, nonce, self.cnonce, nc, uri, "")
        parts = []
        if found.get("charset", "").lower() == "utf-8":
            parts.append("charset=utf-8")
        parts.append(f"username={quote(who.authcid)}")
        if realm:
            parts.append(f"realm={quote(realm)}")
        parts += [f"nonce={quote(nonce)}", f"cnonce={quote(self.cnonce)}", f"nc={nc}", "qop=auth",
                  f"digest-uri={quote(uri)}", f"response={value}"]
        if who.authzid:
            parts.append(f"authzid={quote(who.authzid)}")
        return utf8(",".join(parts))

    def finish(self, data: bytes | None) -> None:
        if self.verified and not data:
            return
        if self.expected is None:
            raise SaslError("DIGEST-MD5: success before the response")
        rspauth = parse_directives(data or b"").get("rspauth", "")
        if not hmac.compare_digest(rspauth.encode(), self.expected.encode()):
            raise SaslError("DIGEST-MD5: the server's rspauth is wrong")
        self.verified = True
