"""One-time passwords as mod_auth_otp computes them: HOTP (RFC 4226), TOTP (RFC 6238) and the base32 secrets.

Pure functions, no I/O. The codes are ProFTPD's: six digits, TOTP steps of 30 seconds counted from the epoch, and
the window it accepts (the expected code, then one step behind, then one step ahead).
"""
from __future__ import annotations

import hashlib
import hmac

DIGITS = 6
TIMESTEP = 30                   # seconds per TOTP step (AUTH_OTP_TOTP_TIMESTEP_SECS)

#: AuthOTPAlgorithm's names -> the HMAC digest; "hotp" is counter-based, the others time-based.
ALGORITHMS = {"hotp": "sha1", "totp": "sha1", "totp-sha1": "sha1", "totp-sha256": "sha256", "totp-sha512": "sha512"}

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SKIPPED = " \t\r\n-"          # RFC 4648's advice, as ProFTPD's decoder: separators are not data


class Base32Error(ValueError):
    """A character outside the base32 alphabet (padding `=` included: ProFTPD's decoder refuses it too)."""


def base32_decode(text: str) -> bytes:
    """The secret a base32 column holds: case-insensitive, spaces and dashes skipped, left-over bits dropped."""
    out = bytearray()
    acc = bits = 0
    for c in text:
        if c in _SKIPPED:
            continue
        value = _ALPHABET.find(c.upper()) if c.isascii() else -1
        if value < 0:
            raise Base32Error(f"invalid base32 character {c!r}")
        acc = (acc << 5 | value) & 0xFFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(acc >> bits & 0xFF)
    return bytes(out)


def base32_encode(raw: bytes) -> str:
    """Unpadded upper-case base32 (what `auth-otp` and google-authenticator print)."""
    out = []
    acc = bits = 0
    for byte in raw:
        acc = acc << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append(_ALPHABET[acc >> bits & 0x1F])
    if bits:
        out.append(_ALPHABET[acc << (5 - bits) & 0x1F])
    return "".join(out)


def hotp(secret: bytes, counter: int, digest: str = "sha1", digits: int = DIGITS) -> str:
    """RFC 4226's value for `counter` (taken modulo 2**64, as the 8 bytes fed to the HMAC), zero-padded."""
    if not secret:
        raise ValueError("empty secret")
    mac = hmac.new(secret, (counter % 2**64).to_bytes(8, "big"), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(secret: bytes, when: float, digest: str = "sha1", digits: int = DIGITS) -> str:
    """RFC 6238's value at Unix time `when`."""
    return hotp(secret, int(when) // TIMESTEP, digest, digits)


def candidates(algorithm: str, secret: bytes, counter: int) -> list[str]:
    """The codes mod_auth_otp accepts, in the order it tries them: for `hotp` the stored counter's, the one
    before, the one after; for TOTP (`counter` being the time) now's, 30 seconds ago's, 30 seconds ahead's."""
    digest = ALGORITHMS[algorithm]
    if algorithm == "hotp":
        return [hotp(secret, c, digest) for c in (counter, counter - 1, counter + 1)]
    return [totp(secret, t, digest) for t in (counter, counter - TIMESTEP, counter + TIMESTEP)]
