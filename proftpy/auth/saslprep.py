"""SASLprep (RFC 4013), the stringprep (RFC 3454) profile RFC 5802 asks SCRAM to apply to names and passwords,
on the tables of Python's `stringprep` module.

Not applied to what LDAPUseSASL sends, on purpose: Debian's libsasl2 (ProFTPD's libldap, and slapd checking it)
hashes the UTF-8 bytes as they are, for SCRAM and DIGEST-MD5 alike (measured with ldapwhoami against slapd: a
password with a soft hyphen binds only as typed, a decomposed "ä" only decomposed). Preparing it would make proftpy
fail where ProFTPD succeeds. `stable` only says, in a trace line, when a SCRAM
name or password would differ for a server that does prepare (proftpy/auth/ldap_sasl.py)."""

from __future__ import annotations

import stringprep
import unicodedata


class SaslprepError(ValueError):
    """The string holds what SASLprep prohibits (RFC 4013 section 2.3) or breaks its bidirectional rule."""


PROHIBITED = (stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22, stringprep.in_table_c3,
              stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
              stringprep.in_table_c8, stringprep.in_table_c9)


def saslprep(text: str, stored: bool = False) -> str:
    """RFC 4013's preparation of `text`; `stored`: a stored string, where unassigned code points (table A.1)
    are prohibited too (for a query they pass)."""
    # 2.1 mapping: non-ASCII spaces to a space, "commonly mapped to nothing" (B.1) removed; 2.2: NFKC
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    out = unicodedata.normalize("NFKC", mapped)
    for position, c in enumerate(out):
        if any(table(c) for table in PROHIBITED) or (stored and stringprep.in_table_a1(c)):
            raise SaslprepError(f"prohibited character U+{ord(c):04X} at position {position + 1}")
    # 2.4 bidirectional characters (RFC 3454 section 6)
    rtl = [stringprep.in_table_d1(c) for c in out]
    if any(rtl):
        if any(stringprep.in_table_d2(c) for c in out):
            raise SaslprepError("mixes right-to-left and left-to-right characters")
        if not (rtl[0] and rtl[-1]):
            raise SaslprepError("right-to-left text must start and end with a right-to-left character")
    return out


def stable(text: str) -> bool:
    """True when SASLprep leaves `text` as it is: a server that prepares its names and secrets (RFC 5802) and
    libsasl2, which does not, then agree."""
    try:
        return saslprep(text) == text
    except SaslprepError:
        return False
