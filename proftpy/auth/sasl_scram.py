"""SCRAM-SHA-* client (RFC 5802; SHA-256: RFC 7677) for LDAPUseSASL, without channel binding (gs2 header `n,`):
the password never crosses the wire, and the server proves it knew it (its signature is checked; a wrong one fails
the bind). Names are escaped (`=` and `,`); names and passwords are not SASLprep'ed,
as Debian's libsasl2 does not prepare them either (proftpy/auth/saslprep.py says why and what was measured)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from proftpy.auth.sasl import Identity, Mechanism, SaslError, utf8

MAX_ITERATIONS = 1_000_000          # a server asking for more only wants to burn the session's CPU


def escape_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def attributes(message: bytes) -> dict[str, str]:
    """`a=value,b=value` into a dict (first value wins); SaslError when a part is not `letter=value`."""
    out: dict[str, str] = {}
    for part in message.decode("utf-8", "replace").split(","):
        if len(part) < 2 or part[1] != "=":
            raise SaslError(f"SCRAM: malformed attribute {part[:20]!r}")
        out.setdefault(part[0], part[2:])
    return out


class Scram(Mechanism):
    def __init__(self, who: Identity, name: str, hash_name: str, nonce: bytes | None = None):
        super().__init__(who)
        self.name = name
        self.hash_name = hash_name
        self.nonce = (nonce or base64.b64encode(os.urandom(18))).decode("ascii")
        self.gs2 = "n," + (f"a={escape_name(who.authzid)}," if who.authzid else ",")
        self.first_bare = f"n={escape_name(who.authcid)},r={self.nonce}"
        self.expected: bytes | None = None          # the server signature, once the proof is sent
        self.verified = False

    def _h(self, data: bytes) -> bytes:
        return hashlib.new(self.hash_name, data).digest()

    def _hmac(self, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, self.hash_name).digest()

    def start(self) -> bytes:
        return utf8(self.gs2 + self.first_bare)

    def step(self, challenge: bytes) -> bytes:
        if self.expected is not None:       # a server-final sent as a challenge: checked, nothing more to say
            self.finish(challenge)
            return b""
        found = attributes(challenge)
        if "e" in found:
            raise SaslError(f"SCRAM: server error {found['e']}")
        nonce, salt_text, count = found.get("r", ""), found.get("s"), found.get("i", "")
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce):
            raise SaslError("SCRAM: the server's nonce does not extend ours")
        if salt_text is None or not count.isdigit() or not 0 < int(count) <= MAX_ITERATIONS:
            raise SaslError("SCRAM: no salt or a bad iteration count")
        try:
            salt = base64.b64decode(salt_text, validate=True)
        except ValueError:
            raise SaslError("SCRAM: the salt is not base64") from None
        salted = hashlib.pbkdf2_hmac(self.hash_name, utf8(self.who.password), salt, int(count))
        client_key = self._hmac(salted, b"Client Key")
        final_bare = f"c={base64.b64encode(utf8(self.gs2)).decode()},r={nonce}"
        auth_message = utf8(f"{self.first_bare},") + challenge + utf8(f",{final_bare}")
        signature = self._hmac(self._h(client_key), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.expected = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return utf8(f"{final_bare},p={base64.b64encode(proof).decode()}")

    def finish(self, data: bytes | None) -> None:
        if self.verified and not data:      # checked already (it came as a challenge)
            return
        if self.expected is None:
            raise SaslError("SCRAM: success before the proof")
        found = attributes(data or b"")
        if "e" in found:
            raise SaslError(f"SCRAM: server error {found['e']}")
        try:
            verifier = base64.b64decode(found.get("v", ""), validate=True)
        except ValueError:
            verifier = b""
        if not hmac.compare_digest(verifier, self.expected):
            raise SaslError("SCRAM: the server's signature is wrong")
        self.verified = True
