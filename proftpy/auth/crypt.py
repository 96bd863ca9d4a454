"""crypt(3) password hashes through libxcrypt (libcrypt.so.1) with ctypes.

Why not the stdlib ``crypt`` module: it is deprecated and removed in Python 3.13, and it calls the
non-reentrant crypt(3).  Here every thread gets its own ``struct crypt_data`` for ``crypt_rn``, and
ctypes releases the GIL during the call, so slow hashes (yescrypt, bcrypt) do not stall other threads.

Supported by Debian's libxcrypt: ``$y$`` yescrypt, ``$2b$`` bcrypt, ``$6$`` SHA-512, ``$5$`` SHA-256,
``$1$`` MD5 and traditional DES.  Locked or empty hashes never verify.
"""
from __future__ import annotations

import ctypes
import hmac
import threading

# Sizes from <crypt.h> (libxcrypt): sizeof(struct crypt_data) == 32768.
_CRYPT_DATA_SIZE = 384 + 384 + 512 + 767 + 1 + 30720
_GENSALT_OUTPUT_SIZE = 192
_MAX_PASSPHRASE = 512

SCHEMES = {
    "yescrypt": b"$y$",
    "bcrypt": b"$2b$",
    "sha512": b"$6$",
    "sha256": b"$5$",
    "md5": b"$1$",
}


class CryptError(Exception):
    """libcrypt refused to hash: unsupported scheme or malformed setting."""


def _load():
    """libxcrypt by its soname; only when that fails is it looked for with find_library, which runs
    `ldconfig -p` (a process started at every start of the daemon otherwise)."""
    try:
        lib = ctypes.CDLL("libcrypt.so.1", use_errno=True)
    except OSError:
        from ctypes.util import find_library
        lib = ctypes.CDLL(find_library("crypt") or "libcrypt.so.1", use_errno=True)
    lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.crypt_rn.restype = ctypes.c_char_p
    lib.crypt_gensalt_rn.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_char_p, ctypes.c_int]
    lib.crypt_gensalt_rn.restype = ctypes.c_char_p
    return lib


_lib = _load()
_local = threading.local()


def _data_buffer():
    """One zero-initialised crypt_data per thread (crypt_rn reuses it safely between calls)."""
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    return buf


def _to_bytes(password: str | bytes) -> bytes:
    # A password that is not UTF-8 arrives as surrogate escapes: hash the client's bytes as they came.
    return password.encode("utf-8", "surrogateescape") if isinstance(password, str) else bytes(password)


def hash_is_usable(hashed: str | None) -> bool:
    """False for empty, locked (``!``, ``!!``, ``!$6$...``) and disabled (``*``, ``x``) hash fields."""
    return bool(hashed) and hashed[0] not in "!*" and hashed != "x"


def _crypt(password: bytes, setting: bytes) -> bytes | None:
    if b"\0" in password or len(password) >= _MAX_PASSPHRASE or b"\0" in setting:
        return None
    buf = _data_buffer()
    out = _lib.crypt_rn(password, setting, buf, _CRYPT_DATA_SIZE)
    if out is None or out[:1] == b"*":      # libxcrypt failure tokens start with '*'
        return None
    return out


def crypt_verify(password: str | bytes, hashed: str) -> bool:
    """True when ``password`` hashes to ``hashed``; compared in constant time."""
    if not hash_is_usable(hashed):
        return False
    try:
        expected = hashed.encode("ascii")
    except UnicodeEncodeError:
        return False
    out = _crypt(_to_bytes(password), expected)
    if out is None:
        return False
    return hmac.compare_digest(out, expected)


# libxcrypt's default bcrypt cost is 5, too cheap for today's hardware; 10 is the common choice.
_DEFAULT_ROUNDS = {"bcrypt": 10}


def gensalt(scheme: str = "sha512", rounds: int = 0) -> bytes:
    """A fresh random setting string for ``scheme`` (``rounds`` 0 = default cost)."""
    prefix = SCHEMES.get(scheme)
    if prefix is None:
        raise ValueError(f"unknown hash scheme {scheme!r} (use one of {', '.join(SCHEMES)})")
    rounds = rounds or _DEFAULT_ROUNDS.get(scheme, 0)
    out = ctypes.create_string_buffer(_GENSALT_OUTPUT_SIZE)
    res = _lib.crypt_gensalt_rn(prefix, rounds, None, 0, out, _GENSALT_OUTPUT_SIZE)
    if res is None or res[:1] == b"*":
        raise CryptError(f"libcrypt cannot make a {scheme} salt (rounds={rounds})")
    return res


def crypt_hash(password: str | bytes, scheme: str = "sha512", rounds: int = 0) -> str:
    """Hash ``password`` with a new random salt, e.g. ``crypt_hash("pw")`` -> ``$6$...``."""
    return _hash_with_setting(_to_bytes(password), gensalt(scheme, rounds))


def _hash_with_setting(password: bytes, setting: bytes) -> str:
    out = _crypt(password, setting)
    if out is None:
        raise CryptError(f"libcrypt cannot hash with setting {setting[:16]!r}")
    return out.decode("ascii")


def scheme_of(hashed: str) -> str | None:
    """The scheme name of a hash (``sha512``...), ``des`` for 13-char DES, else None."""
    for name, prefix in SCHEMES.items():
        if hashed.startswith(prefix.decode()):
            return name
    if hashed.startswith(("$2a$", "$2y$")):
        return "bcrypt"
    if len(hashed) == 13 and not hashed.startswith("$"):
        return "des"
    return None


def hash_like(password: str | bytes, reference: str) -> str:
    """Hash ``password`` with the same scheme and cost as ``reference`` but a new salt.

    Used for timing equalisation: a dummy hash must cost what a real one costs.  Falls back to
    sha512 with default rounds when the reference is not a recognised, usable hash.
    """
    pw = _to_bytes(password)
    scheme = scheme_of(reference) if hash_is_usable(reference) else None
    if scheme in ("sha512", "sha256"):
        field = reference.split("$")[2]
        rounds = int(field[7:]) if field.startswith("rounds=") and field[7:].isdigit() else 0
        return _hash_with_setting(pw, gensalt(scheme, rounds))
    if scheme == "bcrypt":
        cost = reference.split("$")[2]
        return _hash_with_setting(pw, gensalt("bcrypt", int(cost) if cost.isdigit() else 0))
    if scheme == "yescrypt":
        params = reference.split("$")[2]
        fresh = gensalt("yescrypt").decode().split("$")    # ['', 'y', params, salt]
        setting = f"$y${params}${fresh[3]}".encode()
        try:
            return _hash_with_setting(pw, setting)
        except CryptError:
            return _hash_with_setting(pw, gensalt("yescrypt"))
    if scheme == "md5":
        return _hash_with_setting(pw, gensalt("md5"))
    return _hash_with_setting(pw, gensalt("sha512"))
