"""Ed25519 signatures (RFC 8032) from a secret of any length, as MariaDB's client_ed25519 makes them.

RFC 8032 hashes a 32-byte seed with SHA-512: the first half, clamped, is the private scalar, the second half keys the
nonce. MariaDB's auth_ed25519 plugin does the same with the user's password in place of the seed (any length), so
no library's "sign with this seed" call fits: libsodium's and libcrypto's take exactly 32 bytes. The steps are
written out here over libsodium's scalar and point primitives (`crypto_scalarmult_ed25519_base_noclamp`,
`crypto_core_ed25519_scalar_*`, constant-time), the library mod_sftp and mod_sql_passwd already load; with a
32-byte secret the result is RFC 8032's signature (tests/unit/test_ed25519.py checks the RFC's vectors)."""

from __future__ import annotations

import ctypes
import functools
import hashlib

from proftpy.auth.sql_passwd import sodium


class Ed25519Unavailable(RuntimeError):
    """libsodium (Debian's libsodium23) is not there, or too old for these primitives (1.0.17+)."""


@functools.lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    lib = sodium()
    try:
        if lib is None:
            raise AttributeError
        c_p = ctypes.c_char_p
        lib.crypto_scalarmult_ed25519_base_noclamp.argtypes = [c_p, c_p]
        for name in ("crypto_core_ed25519_scalar_mul", "crypto_core_ed25519_scalar_add"):
            getattr(lib, name).argtypes = [c_p, c_p, c_p]
        lib.crypto_core_ed25519_scalar_reduce.argtypes = [c_p, c_p]
    except AttributeError:
        raise Ed25519Unavailable("Ed25519 signing needs libsodium 1.0.17 or later") from None
    return lib


def _reduce(digest64: bytes) -> bytes:
    """A 64-byte number modulo the group order L, as 32 little-endian bytes."""
    out = ctypes.create_string_buffer(32)
    _lib().crypto_core_ed25519_scalar_reduce(out, digest64)
    return out.raw


def _times_base(scalar: bytes) -> bytes:
    """scalar * B, encoded (the scalar is used as given: no clamping)."""
    out = ctypes.create_string_buffer(32)
    _lib().crypto_scalarmult_ed25519_base_noclamp(out, scalar)
    return out.raw


def _expand(secret: bytes) -> tuple[bytes, bytes]:
    """(clamped private scalar, nonce key): the two halves of SHA-512(secret)."""
    h = bytearray(hashlib.sha512(secret).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h[:32]), bytes(h[32:])


def public_key(secret: bytes) -> bytes:
    """A = s * B: what MariaDB stores (base64, without padding) as an ed25519 user's authentication string."""
    return _times_base(_expand(secret)[0])


def sign(secret: bytes, message: bytes) -> bytes:
    """R || S, 64 bytes: r = SHA-512(prefix || M) mod L, R = r*B, k = SHA-512(R || A || M) mod L, S = r + k*s mod L."""
    s, prefix = _expand(secret)
    lib = _lib()
    r = _reduce(hashlib.sha512(prefix + message).digest())
    big_r = _times_base(r)
    k = _reduce(hashlib.sha512(big_r + _times_base(s) + message).digest())
    ks, big_s = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    lib.crypto_core_ed25519_scalar_mul(ks, k, s)
    lib.crypto_core_ed25519_scalar_add(big_s, ks.raw, r)
    return big_r + big_s.raw
