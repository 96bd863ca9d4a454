"""mod_sftp's key stores, the pure parts: the directives' store words, and what mod_sftp_sql reads in a value."""

from __future__ import annotations

import base64

import pytest

from proftpy.modules.sftp_keystore import HOST, USER, parse_stores
from proftpy.modules.sftp_sql import value_keys
from proftpy.net.ssh.wire import Writer

BLOB = Writer().string(b"ssh-ed25519").string(bytes(range(32))).bytes()
OTHER = Writer().string(b"ssh-ed25519").string(bytes(range(1, 33))).bytes()
B64 = base64.b64encode(BLOB).decode()


def rfc4716(blob: bytes, subject: str | None = None) -> str:
    text = base64.b64encode(blob).decode()
    head = f"Subject: {subject}\n" if subject else ""
    body = "\n".join(text[i:i + 70] for i in range(0, len(text), 70))
    return f"---- BEGIN SSH2 PUBLIC KEY ----\n{head}Comment: \"a key\"\n{body}\n---- END SSH2 PUBLIC KEY ----\n"


def test_store_words():
    assert parse_stores(USER)(["file:/k/%u", "ldap:", "sql:/q"]) == ("file:/k/%u", "ldap:", "sql:/q")
    assert parse_stores(HOST)(["file:~/hostkeys", "sql:/hosts"]) == ("file:~/hostkeys", "sql:/hosts")


@pytest.mark.parametrize("holds, words, text", [
    (USER, [], "wrong number of parameters"),
    (USER, ["nocolon"], "badly formatted parameter: 'nocolon'"),
    (USER, ["redis:/x"], "unsupported key store: 'redis'"),
    (USER, ["file:"], "names no file"),
    (USER, ["sql:q"], "badly formatted store info 'q'"),
    (USER, ["sql:/a/b"], "badly formatted store info '/a/b'"),
    (HOST, ["ldap:"], "unsupported key store: 'ldap' (proftpy reads file:, sql: stores of host keys)"),
    (HOST, ["file:/k/%u"], "%u is not replaced"),
])
def test_bad_store_words(holds, words, text):
    with pytest.raises(ValueError, match=None) as e:
        parse_stores(holds)(words)
    assert text in str(e.value)


def test_sql_values_as_proftpd_reads_them():
    assert value_keys(rfc4716(BLOB)) == [(BLOB, None)]
    assert value_keys(rfc4716(BLOB, "alice") + rfc4716(OTHER)) == [(BLOB, "alice"), (OTHER, None)]
    assert value_keys(B64) == [(BLOB, None)]
    assert value_keys(f" {B64}\n") == [(BLOB, None)]
    assert value_keys(f"ssh-ed25519 {B64} alice@host\n# comment\nssh-ed25519 {B64}") == [(BLOB, None)] * 2
    assert value_keys("\n".join(B64[i:i + 20] for i in range(0, len(B64), 20))) == []    # wrapped: no key


@pytest.mark.parametrize("value", ["", "   ", "not base64 at all!", f"ssh-rsa {B64}",
                                   "---- BEGIN SSH2 PUBLIC KEY ----\n%%%\n---- END SSH2 PUBLIC KEY ----\n"])
def test_sql_values_without_a_key(value):
    assert value_keys(value) == []
