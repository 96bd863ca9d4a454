"""mod_sql_passwd's SQLAuthTypes (md5, sha1, sha256, sha512, pbkdf2, scrypt, argon2, bcrypt), with ProFTPD 1.3.8's
rules (contrib/mod_sql_passwd.c): how the digest of a password, its salts and its rounds is computed and written
(SQLPasswordEncoding), and how salts are read (SQLPasswordSaltEncoding). Pure functions and two dataclasses; the
directives and the salt file are proftpy/modules/sql_passwd.py's, the table of auth types proftpy/auth/sql.py's.

The digest types (md5...sha512), as mod_sql_passwd computes them:

    prefix  = the salt of a `Prepend` salt (the user salt's if both are), hashed (HashSalt) and encoded
              (HashEncodeSalt) when asked
    data    = the password, or its digest (HashPassword), encoded (HashEncodePassword: only when there is a salt)
    suffix  = the salt of an `Append` salt (the user salt's if both are), as the prefix
    text    = encode(digest(prefix + data + suffix)); then SQLPasswordRounds - 1 times encode(digest(text))

pbkdf2, scrypt and argon2 take the user salt, else the file salt, as it is (no HashSalt, no rounds). scrypt is
libsodium's crypto_pwhash_scryptsalsa208sha256 (hashlib.scrypt with the N, r, p libsodium derives from its cost);
argon2 is libsodium's crypto_pwhash_argon2i, called in libsodium itself (ctypes), the library Debian's ProFTPD uses:
without it, `SQLAuthTypes argon2` is refused when the configuration loads.

A stored value must equal the computed text in full (compared in constant time); ProFTPD compares only as many
bytes as the stored value has, so an empty or cut column matches there (a difference kept on purpose).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import functools
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field

from proftpy.auth.crypt import crypt_verify

log = logging.getLogger("proftpy.auth.sql")

VERSION = "mod_sql_passwd/1.2"
MOD_SQL_PASSWD = "mod_sql_passwd.c"
ENCODINGS = ("base64", "hex", "HEX", "none")
APPEND, PREPEND = "append", "prepend"
# SQLPasswordOptions' words -> the flags each sets
OPTIONS = {"hashpassword": ("HashPassword",), "hashsalt": ("HashSalt",),
           "hashencodepassword": ("HashPassword", "EncodePassword"), "hashencodesalt": ("HashSalt", "EncodeSalt")}
SCRYPT_SALT, ARGON2_SALT = 32, 16       # the salt lengths libsodium's functions take (ProFTPD refuses others)
DEFAULT_HASH_LEN = 32                   # SQLPasswordScrypt / SQLPasswordArgon2 by default
# libsodium's crypto_pwhash_scryptsalsa208sha256 limits (opslimit, memlimit) per SQLPasswordCost
SCRYPT_COST = {"interactive": (524288, 16777216), "sensitive": (33554432, 1073741824)}


@dataclass(frozen=True)
class Pbkdf2:
    """SQLPasswordPBKDF2 (or the three columns of its `sql:/` query): digest name, iterations, key length."""

    digest: str
    iterations: int
    length: int


@dataclass(frozen=True)
class PasswdConfig:
    """A server's SQLPassword* directives."""

    engine: bool = False
    encoding: str = "hex"
    salt_encoding: str = "none"
    flags: frozenset[str] = frozenset()           # HashSalt, EncodeSalt, HashPassword, EncodePassword
    rounds: int = 1
    salt_file: tuple[str, str] | None = None      # (path or "none", append|prepend)
    user_salt: tuple[str, str] | None = None      # ("name" | "uid" | "sql:/query", append|prepend)
    pbkdf2: Pbkdf2 | str | None = None            # the parameters, or "sql:/query"
    cost: str = "interactive"
    scrypt_len: int = DEFAULT_HASH_LEN
    argon2_len: int = DEFAULT_HASH_LEN


@dataclass
class Salts:
    """What one session hashes with: ProFTPD keeps these from one PASS to the next (a `sql:/` lookup that finds
    nothing leaves the previous user's salt in place, as there)."""

    file: bytes | None = None
    file_where: str = APPEND
    user: bytes | None = None
    user_where: str = APPEND
    pbkdf2: Pbkdf2 | None = None


@dataclass
class Context:
    """What an auth type check reads besides the password and the stored value."""

    config: PasswdConfig = field(default_factory=PasswdConfig)
    salts: Salts = field(default_factory=Salts)


# -- encodings -----------------------------------------------------------------------------------------------------
def encode(data: bytes, encoding: str) -> bytes | None:
    """A digest as SQLPasswordEncoding writes it; None for `none` (mod_sql_passwd has no such output)."""
    if encoding == "base64":
        return base64.b64encode(data)
    if encoding in ("hex", "HEX"):
        text = data.hex().encode()
        return text.upper() if encoding == "HEX" else text
    return None


_HEX_PAIR = re.compile(rb"[0-9a-fA-F]{1,2}")


def decode(text: bytes, encoding: str) -> bytes | None:
    """A salt as SQLPasswordSaltEncoding reads it; None when it does not decode. As ProFTPD: hex is read two
    characters at a time in either case, and base64 ending in `=` loses up to two trailing zero bytes."""
    if encoding == "none":
        return text
    if encoding == "base64":
        body = text.strip(b" \t\r\n")
        if not body or len(body) % 4 or not re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", body):
            return None
        data = base64.b64decode(body.replace(b"=", b"A"))
        if text.endswith(b"="):
            for _ in range(2):
                if data.endswith(b"\0"):
                    data = data[:-1]
        return data
    out = bytearray()
    for i in range(0, len(text), 2):
        match = _HEX_PAIR.match(text, i, i + 2)
        if match is None:
            return None
        out.append(int(match.group(), 16))
    return bytes(out)


def parse_encoding(args: list[str]) -> str:
    """`base64` and `none` in any case; `hex` (lower-case output) and `HEX` (upper-case) exactly."""
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    word = args[0]
    if word.lower() in ("base64", "none"):
        return word.lower()
    if word in ("hex", "HEX"):
        return word
    raise ValueError(f"unsupported encoding '{word}' configured")


# -- the digest types ----------------------------------------------------------------------------------------------
def _digest(name: str, *parts: bytes) -> bytes:
    h = hashlib.new(name)
    for part in parts:
        h.update(part)
    return h.digest()


def _salt_part(name: str, salt: bytes, config: PasswdConfig) -> bytes | None:
    if "HashSalt" not in config.flags:
        return salt
    hashed = _digest(name, salt)
    return encode(hashed, config.encoding) if "EncodeSalt" in config.flags else hashed


def digest_text(name: str, password: bytes, config: PasswdConfig, salts: Salts) -> bytes | None:
    """What the column holds for `password` under a digest SQLAuthType (`name` as OpenSSL names it); None when
    SQLPasswordEncoding is `none` (nothing can match)."""
    prefix = suffix = b""
    salted = [(s, where) for s, where in ((salts.file, salts.file_where), (salts.user, salts.user_where)) if s]
    for salt, where in salted:                    # the user salt, coming second, replaces the file salt
        part = _salt_part(name, salt, config) or b""
        if where == PREPEND:
            prefix = part
        else:
            suffix = part
    data = password
    if "HashPassword" in config.flags and (salted or "EncodePassword" not in config.flags):
        data = _digest(name, password)
        if "EncodePassword" in config.flags:
            data = encode(data, config.encoding) or b""
    text = encode(_digest(name, prefix, data, suffix), config.encoding)
    if text is None:
        return None
    for _ in range(config.rounds - 1):
        text = encode(_digest(name, text), config.encoding)
    return text


def _salt_for_kdf(salts: Salts) -> bytes | None:
    """pbkdf2/scrypt/argon2: the user salt when there is one, else the file salt."""
    return salts.user if salts.user else salts.file


def pbkdf2_key(password: bytes, params: Pbkdf2, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac(params.digest, password, salt, params.iterations, params.length)


def pbkdf2_params(digest: str, iterations: str, length: str) -> Pbkdf2:
    """SQLPasswordPBKDF2's three words (or its query's three columns), read as ProFTPD reads them (atoi)."""
    from proftpy.config.types import atoi
    try:
        hashlib.pbkdf2_hmac(digest, b"", b"", 1, 1)
    except (ValueError, TypeError):
        raise ValueError(f"unsupported digest algorithm '{digest}' configured") from None
    if atoi(iterations) < 1:
        raise ValueError(f"insufficient number of rounds ({iterations})")
    if atoi(length) < 1:
        raise ValueError(f"insufficient length ({length})")
    return Pbkdf2(digest, atoi(iterations), atoi(length))


def scrypt_params(cost: str) -> tuple[int, int, int]:
    """(N, r, p) as libsodium's crypto_pwhash_scryptsalsa208sha256 picks them from its opslimit and memlimit."""
    ops, mem = SCRYPT_COST[cost]
    ops = max(ops, 32768)
    r = 8
    if ops < mem // 32:
        p, max_n = 1, ops // (r * 4)
    else:
        max_n = mem // (r * 128)
    n_log2 = 1
    while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
        n_log2 += 1
    if not ops < mem // 32:
        p = min((ops // 4) // (1 << n_log2), 0x3fffffff) // r
    return 1 << n_log2, r, p


def scrypt_key(password: bytes, salt: bytes, cost: str, length: int) -> bytes:
    n, r, p = scrypt_params(cost)
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=length, maxmem=129 * r * n * p + (1 << 20))


@functools.lru_cache(maxsize=1)
def sodium() -> ctypes.CDLL | None:
    """libsodium (Debian's libsodium23, which ProFTPD's mod_sql_passwd is linked with), or None."""
    name = ctypes.util.find_library("sodium") or "libsodium.so.23"
    try:
        lib = ctypes.CDLL(name)
        if lib.sodium_init() < 0:
            return None
    except (OSError, AttributeError):
        return None
    for fn in ("crypto_pwhash_argon2i_opslimit_interactive", "crypto_pwhash_argon2i_memlimit_interactive",
               "crypto_pwhash_argon2i_opslimit_sensitive", "crypto_pwhash_argon2i_memlimit_sensitive"):
        getattr(lib, fn).restype = ctypes.c_size_t
    lib.crypto_pwhash_argon2i.argtypes = [ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_ulonglong,
                                          ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
    return lib


def argon2_key(password: bytes, salt: bytes, cost: str, length: int) -> bytes | None:
    """libsodium's crypto_pwhash_argon2i (argon2i, version 1.3) at its interactive or sensitive limits."""
    lib = sodium()
    if lib is None:
        return None
    ops = getattr(lib, f"crypto_pwhash_argon2i_opslimit_{cost}")()
    mem = getattr(lib, f"crypto_pwhash_argon2i_memlimit_{cost}")()
    out = ctypes.create_string_buffer(length)
    if lib.crypto_pwhash_argon2i(out, length, password, len(password), salt, ops, mem,
                                 lib.crypto_pwhash_argon2i_alg_argon2i13()) != 0:
        return None
    return out.raw


# -- checks (one per SQLAuthType; proftpy/auth/sql.py's table names them) --------------------------------------------
def _engine_on(ctx: Context, name: str) -> bool:
    if not ctx.config.engine:
        log.info("%s: SQLPasswordEngine disabled; unable to handle %s SQLAuthType", VERSION, name)
    return ctx.config.engine


def _matches(computed: bytes | None, stored: str) -> bool:
    if computed is None:
        log.debug("%s: unsupported SQLPasswordEncoding configured", VERSION)
        return False
    return bool(stored) and hmac.compare_digest(computed, stored.encode("utf-8", "surrogateescape"))


def digest_check(name: str):
    """The check of a digest SQLAuthType (md5, sha1, sha256, sha512)."""
    def check(password: bytes, stored: str, ctx: Context) -> bool:
        return _engine_on(ctx, name) and _matches(digest_text(name, password, ctx.config, ctx.salts), stored)
    return check


def _kdf_check(name: str, derive):
    """The check of a key-derivation SQLAuthType: `derive(password, salt, ctx)` gives the key, or None."""
    def check(password: bytes, stored: str, ctx: Context) -> bool:
        if not _engine_on(ctx, name):
            return False
        salt = _salt_for_kdf(ctx.salts)
        if salt is None:
            log.debug("%s: no salt configured (%s requires salt)", VERSION, name)
            return False
        key = derive(password, salt, ctx)
        return key is not None and _matches(encode(key, ctx.config.encoding), stored)
    return check


def _pbkdf2(password: bytes, salt: bytes, ctx: Context) -> bytes | None:
    if ctx.salts.pbkdf2 is None:
        log.debug("%s: PBKDF2 not configured (see SQLPasswordPBKDF2 directive)", VERSION)
        return None
    return pbkdf2_key(password, ctx.salts.pbkdf2, salt)


def _sized(name: str, size: int, derive):
    def sized(password: bytes, salt: bytes, ctx: Context) -> bytes | None:
        if len(salt) != size:
            log.debug("%s: %s requires %d bytes of salt (%d bytes of salt configured)", VERSION, name, size,
                      len(salt))
            return None
        return derive(password, salt, ctx)
    return sized


check_pbkdf2 = _kdf_check("PBKDF2", _pbkdf2)
check_scrypt = _kdf_check("scrypt", _sized("scrypt", SCRYPT_SALT, lambda pw, salt, ctx: scrypt_key(
    pw, salt, ctx.config.cost, ctx.config.scrypt_len)))
check_argon2 = _kdf_check("argon2", _sized("argon2", ARGON2_SALT, lambda pw, salt, ctx: argon2_key(
    pw, salt, ctx.config.cost, ctx.config.argon2_len)))


def check_bcrypt(password: bytes, stored: str, ctx: Context) -> bool:
    """`$2a$`, `$2b$`, `$2y$` bcrypt hashes (ProFTPD's own bcrypt; here libxcrypt's, the same function)."""
    return _engine_on(ctx, "bcrypt") and stored.startswith(("$2a$", "$2b$", "$2y$")) and crypt_verify(password,
                                                                                                      stored)


# -- salts ---------------------------------------------------------------------------------------------------------
SALT_BLOCK = 512


def read_salt_file(data: bytes) -> bytes | None:
    """A salt file's bytes as ProFTPD keeps them: a newline ending its first 512-byte read is dropped, and one
    ending the whole; an empty file is no salt."""
    if not data:
        return None
    first, rest = data[:SALT_BLOCK], data[SALT_BLOCK:]
    if first.endswith(b"\n"):
        first = first[:-1]
    salt = first + rest
    return salt[:-1] if salt.endswith(b"\n") else salt


def parse_salt_where(words: list[str]) -> str:
    """`Append` (the default) or `Prepend` words after a salt source; the last one wins."""
    where = APPEND
    for word in words:
        if word.lower() not in (APPEND, PREPEND):
            raise ValueError(f"unknown salt flag '{word}'")
        where = word.lower()
    return where
