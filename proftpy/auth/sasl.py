"""SASL client mechanisms for mod_ldap's LDAPUseSASL binds: what ProFTPD gets from libldap's
ldap_sasl_interactive_bind_s and libsasl2, without either.

A mechanism is a small object: `start()` gives the initial response (None: the mechanism waits for the server's
first challenge), `step(challenge)` the answer to each challenge, `finish(data)` checks what the server sent with
its success (SCRAM's and DIGEST-MD5's proof that the server knew the password). SaslError when the server's data is
wrong: the bind fails.

`choose` is libsasl2's choice among the configured mechanisms, as Debian's libsasl2-modules make it (checked with
ldapwhoami against slapd): SCRAM-SHA-512, -384, -256, -224, -1, then DIGEST-MD5, CRAM-MD5, PLAIN, LOGIN. Beyond
ProFTPD 1.3.8 (which refuses it), EXTERNAL: first when the connection is TLS with a client certificate, else
unused. libldap's default security properties (noplain, noanonymous) leave PLAIN and LOGIN to TLS connections and
ANONYMOUS to none: with nothing left, the bind fails as libldap's does, "Unknown authentication method". The
server's own list is never asked for (libldap does not ask either).

Here: EXTERNAL, PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), the choice; DIGEST-MD5 is proftpy/auth/sasl_digest.py,
SCRAM proftpy/auth/sasl_scram.py, and proftpy/auth/ldap_sasl.py's `client` makes any of them. No mechanism
negotiates a security layer (DIGEST-MD5's qop is `auth`): protect the connection with TLS.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


class SaslError(Exception):
    """The server's SASL data is not what the mechanism expects."""


@dataclass(frozen=True)
class Identity:
    """Who binds: the authentication id (the CN of LDAPBindDN, else ldap.conf's SASL_AUTHCID), the password,
    the authorization id and realm (ldap.conf's SASL_AUTHZID and SASL_REALM, else empty), and the server's host
    name (DIGEST-MD5's digest-uri)."""

    authcid: str
    password: str
    authzid: str = ""
    realm: str = ""
    host: str = "localhost"


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class Mechanism:
    name = ""

    def __init__(self, who: Identity):
        self.who = who

    def start(self) -> bytes | None:
        return None

    def step(self, challenge: bytes) -> bytes:
        raise SaslError(f"{self.name}: unexpected challenge")

    def finish(self, data: bytes | None) -> None:
        """The server's data sent with its success: nothing is expected by default."""


class External(Mechanism):
    """RFC 4422 appendix A: the TLS client certificate is the credential; the message is the authorization id
    (empty: the certificate's identity)."""

    name = "EXTERNAL"

    def start(self) -> bytes:
        return utf8(self.who.authzid)


class Plain(Mechanism):
    """RFC 4616: authzid NUL authcid NUL password, in one message."""

    name = "PLAIN"

    def start(self) -> bytes:
        w = self.who
        return utf8(w.authzid) + b"\0" + utf8(w.authcid) + b"\0" + utf8(w.password)


class Login(Mechanism):
    """The LOGIN draft: the name, then the password, each an answer to the server's prompt."""

    name = "LOGIN"

    def __init__(self, who: Identity):
        super().__init__(who)
        self.answers = [utf8(who.authcid), utf8(who.password)]

    def step(self, challenge: bytes) -> bytes:
        if not self.answers:
            raise SaslError("LOGIN: more than two prompts")
        return self.answers.pop(0)


class CramMd5(Mechanism):
    """RFC 2195: the name and HMAC-MD5(password, challenge) in hexadecimal."""

    name = "CRAM-MD5"

    def __init__(self, who: Identity):
        super().__init__(who)
        self.answered = False

    def step(self, challenge: bytes) -> bytes:
        if self.answered:
            raise SaslError("CRAM-MD5: a second challenge")
        self.answered = True
        digest = hmac.new(utf8(self.who.password), challenge, hashlib.md5).hexdigest()
        return utf8(self.who.authcid) + b" " + digest.encode()


SCRAM_HASHES = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-224": "sha224", "SCRAM-SHA-256": "sha256",
                "SCRAM-SHA-384": "sha384", "SCRAM-SHA-512": "sha512"}
# ProFTPD's LDAPUseSASL takes these (and any SCRAM-SHA-*) but EXTERNAL; libsasl2's preference, strongest first
PREFERENCE = ("EXTERNAL", "SCRAM-SHA-512", "SCRAM-SHA-384", "SCRAM-SHA-256", "SCRAM-SHA-224", "SCRAM-SHA-1",
              "DIGEST-MD5", "CRAM-MD5", "PLAIN", "LOGIN", "ANONYMOUS")
PLAINTEXT = ("PLAIN", "LOGIN")          # libldap's noplain: only where TLS protects the password
NEVER = ("ANONYMOUS",)                  # libldap's noanonymous: accepted by the directive, never chosen


def choose(mechanisms: tuple[str, ...], tls: bool, certificate: bool = False) -> str | None:
    """The mechanism libsasl2 would start with, None when none is worthy (`certificate`: the TLS connection
    presents a client certificate, which EXTERNAL needs)."""
    usable = [m for m in mechanisms if m not in NEVER and (tls or m not in PLAINTEXT)
              and (m != "EXTERNAL" or (tls and certificate))]
    ranked = sorted(usable, key=PREFERENCE.index)
    return ranked[0] if ranked else None

