"""mod_sql_passwd's pure parts: each digest, encoding, salt placement, option and round count against values
computed here with hashlib directly; salt decoding; PBKDF2 and scrypt (scrypt also against libsodium itself)."""

import base64
import ctypes
import ctypes.util
import hashlib

import pytest

from proftpy.auth.sql import password_ok
from proftpy.auth.sql_passwd import (Context, PasswdConfig, Pbkdf2, Salts, decode, digest_text, encode,
                                     parse_encoding, pbkdf2_params, read_salt_file, scrypt_key, scrypt_params)
from proftpy.modules.sql_passwd import _options, _pbkdf2, _rounds, _user_salt

PW = b"s3cret"


def h(name, data):
    return hashlib.new(name, data).digest()


def ok(types, password, stored, **cfg):
    salts = cfg.pop("salts", Salts())
    return password_ok(types, password, stored, Context(PasswdConfig(engine=True, **cfg), salts))


@pytest.mark.parametrize("name", ["md5", "sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding,enc", [("hex", lambda d: d.hex()), ("HEX", lambda d: d.hex().upper()),
                                          ("base64", lambda d: base64.b64encode(d).decode())])
def test_plain_digest_each_encoding(name, encoding, enc):
    stored = enc(h(name, PW))
    assert ok((name,), PW, stored, encoding=encoding)
    assert not ok((name,), b"s3creT", stored, encoding=encoding)
    other = "HEX" if encoding == "hex" else "hex"
    assert not ok((name,), PW, stored, encoding=other) or stored.isdigit()


def test_engine_off_refuses_and_none_encoding_matches_nothing():
    stored = h("md5", PW).hex()
    assert not password_ok(("md5",), PW, stored, Context(PasswdConfig(engine=False)))
    assert not ok(("md5",), PW, stored, encoding="none")
    assert ok(("Plaintext", "md5"), PW, stored)                       # tried in order with mod_sql's own


def test_empty_or_cut_column_matches_nothing():
    full = h("sha256", PW).hex()
    assert not ok(("sha256",), PW, "") and not ok(("sha256",), PW, full[:20])


@pytest.mark.parametrize("where", ["append", "prepend"])
def test_file_salt_placement(where):
    salt = b"pepper"
    data = PW + salt if where == "append" else salt + PW
    stored = h("sha1", data).hex()
    assert ok(("sha1",), PW, stored, salts=Salts(file=salt, file_where=where))
    assert not ok(("sha1",), PW, stored, salts=Salts(file=salt, file_where="prepend" if where == "append"
                                                      else "append"))


def test_user_salt_replaces_file_salt_on_the_same_side_and_both_sides_combine():
    same = h("md5", PW + b"user").hex()
    assert ok(("md5",), PW, same, salts=Salts(file=b"file", user=b"user"))
    both = h("md5", b"file" + PW + b"user").hex()
    assert ok(("md5",), PW, both, salts=Salts(file=b"file", file_where="prepend", user=b"user"))


def test_options_hash_and_encode_salt_and_password():
    salt = b"NaCl"
    hs, hp = h("sha256", salt), h("sha256", PW)
    cases = {
        frozenset({"HashSalt"}): PW + hs,
        frozenset({"HashSalt", "EncodeSalt"}): PW + hs.hex().encode(),
        frozenset({"HashPassword"}): hp + salt,
        frozenset({"HashPassword", "EncodePassword"}): hp.hex().encode() + salt,
        frozenset({"HashPassword", "EncodePassword", "HashSalt", "EncodeSalt"}): hp.hex().encode() + hs.hex().encode(),
    }
    for flags, data in cases.items():
        assert ok(("sha256",), PW, h("sha256", data).hex(), flags=flags, salts=Salts(file=salt)), flags


def test_hash_encode_password_without_salt_is_the_plain_digest_but_hash_password_is_double():
    assert ok(("md5",), PW, h("md5", PW).hex(), flags=frozenset({"HashPassword", "EncodePassword"}))
    assert ok(("md5",), PW, h("md5", h("md5", PW)).hex(), flags=frozenset({"HashPassword"}))


def test_rounds_digest_the_encoded_text_again():
    text = base64.b64encode(h("sha512", PW + b"s"))
    for _ in range(2):
        text = base64.b64encode(h("sha512", text))
    assert ok(("sha512",), PW, text.decode(), encoding="base64", rounds=3, salts=Salts(file=b"s"))
    assert digest_text("sha512", PW, PasswdConfig(encoding="base64", rounds=2), Salts(file=b"s")) != text


def test_salt_decoding():
    assert decode(b"00ff10", "hex") == decode(b"00FF10", "HEX") == decode(b"00Ff10", "hex") == b"\x00\xff\x10"
    assert decode(b"abc", "hex") == b"\xab\x0c" and decode(b"zz", "hex") is None
    assert decode(base64.b64encode(b"salty"), "base64") == b"salty"
    assert decode(b"AA==", "base64") == b"\0"           # ProFTPD drops up to two zero bytes after `=` padding
    assert decode(b"abc", "base64") is None and decode(b"raw", "none") == b"raw"
    assert encode(b"\x01", "none") is None


def test_salt_file_newlines():
    assert read_salt_file(b"salt\n") == b"salt" and read_salt_file(b"salt\n\n") == b"salt"
    assert read_salt_file(b"salt\r\n") == b"salt\r" and read_salt_file(b"") is None
    big = b"x" * 511 + b"\n" + b"y\n"
    assert read_salt_file(big) == b"x" * 511 + b"y"


def test_pbkdf2_against_hashlib_with_the_user_salt_first():
    params = Pbkdf2("sha256", 1000, 20)
    key = hashlib.pbkdf2_hmac("sha256", PW, b"usersalt", 1000, 20)
    assert ok(("pbkdf2",), PW, key.hex(), salts=Salts(file=b"filesalt", user=b"usersalt", pbkdf2=params))
    assert not ok(("pbkdf2",), PW, key.hex(), salts=Salts(file=b"filesalt", pbkdf2=params))
    assert not ok(("pbkdf2",), PW, key.hex(), salts=Salts(pbkdf2=params))              # no salt: refused
    assert not ok(("pbkdf2",), PW, key.hex(), salts=Salts(user=b"usersalt"))           # not configured


def test_scrypt_parameters_are_libsodiums():
    assert scrypt_params("interactive") == (16384, 8, 1)
    assert scrypt_params("sensitive") == (1 << 20, 8, 1)


def test_scrypt_matches_libsodium():
    name = ctypes.util.find_library("sodium")
    if name is None:
        pytest.skip("libsodium is not installed")
    lib = ctypes.CDLL(name)
    assert lib.sodium_init() >= 0
    salt = bytes(range(32))
    out = ctypes.create_string_buffer(32)
    lib.crypto_pwhash_scryptsalsa208sha256.argtypes = [ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p,
                                                       ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_ulonglong,
                                                       ctypes.c_size_t]
    assert lib.crypto_pwhash_scryptsalsa208sha256(out, 32, PW, len(PW), salt, 524288, 16777216) == 0
    assert scrypt_key(PW, salt, "interactive", 32) == out.raw
    assert ok(("scrypt",), PW, out.raw.hex(), salts=Salts(file=salt))
    assert not ok(("scrypt",), PW, out.raw.hex(), salts=Salts(file=salt[:16]))          # 32 bytes of salt only


def test_directive_arguments():
    assert parse_encoding(["BASE64"]) == "base64" and parse_encoding(["HEX"]) == "HEX"
    for bad in (["Hex"], ["b64"], []):
        with pytest.raises(ValueError):
            parse_encoding(bad)
    assert _options(["hashencodesalt", "HashPassword"]) == {"HashSalt", "EncodeSalt", "HashPassword"}
    with pytest.raises(ValueError, match="unknown SQLPasswordOption 'Pepper'"):
        _options(["Pepper"])
    assert _rounds(["3"]) == 3
    with pytest.raises(ValueError, match=r"insufficient number of rounds \(0\)"):
        _rounds(["0"])
    assert _user_salt(["sql:/salt", "Prepend"]) == ("sql:/salt", "prepend")
    with pytest.raises(ValueError, match="badly formatted parameter"):
        _user_salt(["column"])
    assert _pbkdf2(["sha1", "1000", "20"]) == Pbkdf2("sha1", 1000, 20) and _pbkdf2(["sql:/p"]) == "sql:/p"
    with pytest.raises(ValueError, match="unsupported digest algorithm 'nope' configured"):
        pbkdf2_params("nope", "1", "1")
    with pytest.raises(ValueError, match=r"insufficient length \(0\)"):
        pbkdf2_params("sha1", "10", "0")
