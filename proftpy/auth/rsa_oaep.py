"""RSA encryption with OAEP padding (RFC 8017 section 7.1: SHA-1 and MGF1-SHA-1, no label), and the PEM public keys
it needs: what MySQL's sha256_password and caching_sha2_password use to carry a password over a connection without
TLS (libmariadb and libmysqlclient call OpenSSL's RSA_public_encrypt with RSA_PKCS1_OAEP_PADDING).

Only encryption with a public key happens here, so nothing secret meets Python's `pow` but the padded message,
masked by a fresh random seed each time. Keys: `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo, what the server
sends) and `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1), read with proftpy/ber.py. tests/unit/test_rsa_oaep.py has
OpenSSL's `pkeyutl -decrypt` read what this writes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from typing import Callable

from proftpy import ber

RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")      # 1.2.840.113549.1.1.1
HASH_LEN = 20                                             # SHA-1
MIN_BITS, MAX_BITS, MAX_EXPONENT_BITS = 1024, 16384, 64    # beyond: no real key, only a server making us work
_PEM = re.compile(rb"-----BEGIN (RSA )?PUBLIC KEY-----\s*(.*?)-----END \1?PUBLIC KEY-----", re.S)


class BadKey(ValueError):
    """Not an RSA public key this module reads, or too small for the message."""


def public_key(pem: bytes) -> tuple[int, int]:
    """(n, e) of the first public key in `pem`."""
    m = _PEM.search(pem)
    if m is None:
        raise BadKey("no PEM public key")
    try:
        der = base64.b64decode(b"".join(m.group(2).split()), validate=True)
        if m.group(1) is None:                              # SubjectPublicKeyInfo
            algorithm, bits = ber.elements(ber.expect(ber.element(der)[:2], ber.SEQUENCE, "SubjectPublicKeyInfo"))
            oid = ber.elements(ber.expect(algorithm, ber.SEQUENCE, "AlgorithmIdentifier"))[0]
            if ber.expect(oid, 0x06, "algorithm") != RSA_ENCRYPTION:
                raise BadKey("not an RSA key")
            bits_content = ber.expect(bits, 0x03, "subjectPublicKey")
            if bits_content[:1] != b"\0":
                raise BadKey("a public key of unused bits")
            der = bits_content[1:]
        n_item, e_item = ber.elements(ber.expect(ber.element(der)[:2], ber.SEQUENCE, "RSAPublicKey"))[:2]
        n = int.from_bytes(ber.expect(n_item, ber.INTEGER, "modulus"), "big", signed=True)
        e = int.from_bytes(ber.expect(e_item, ber.INTEGER, "exponent"), "big", signed=True)
    except BadKey:
        raise
    except (binascii.Error, ValueError, IndexError) as err:     # BerError is a ValueError; so is a short SEQUENCE
        raise BadKey(f"malformed public key ({err})") from None
    if not MIN_BITS <= n.bit_length() <= MAX_BITS or n % 2 == 0 or e < 3 or e % 2 == 0 \
            or e.bit_length() > MAX_EXPONENT_BITS:
        raise BadKey(f"not a usable RSA key (a modulus of {n.bit_length()} bits, exponent {e})")
    return n, e


def _mgf1(seed: bytes, length: int) -> bytes:
    out = b"".join(hashlib.sha1(seed + i.to_bytes(4, "big")).digest() for i in range((length + HASH_LEN - 1) // HASH_LEN))
    return out[:length]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def encrypt(key: tuple[int, int], message: bytes, random: Callable[[int], bytes] = os.urandom) -> bytes:
    """RSAES-OAEP-ENCRYPT: EM = 0x00 || maskedSeed || maskedDB, DB = SHA-1("") || zeros || 0x01 || message."""
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(message) > k - 2 * HASH_LEN - 2:
        raise BadKey(f"a message of {len(message)} bytes is too long for a {n.bit_length()}-bit key")
    db = hashlib.sha1(b"").digest() + bytes(k - len(message) - 2 * HASH_LEN - 2) + b"\x01" + message
    seed = random(HASH_LEN)
    masked_db = _xor(db, _mgf1(seed, k - HASH_LEN - 1))
    masked_seed = _xor(seed, _mgf1(masked_db, HASH_LEN))
    m = int.from_bytes(b"\0" + masked_seed + masked_db, "big")
    return pow(m, e, n).to_bytes(k, "big")
