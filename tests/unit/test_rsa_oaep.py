"""RSA-OAEP (SHA-1) encryption and PEM public keys (proftpy/auth/rsa_oaep.py): what it writes, OpenSSL's own
`pkeyutl -decrypt -pkeyopt rsa_padding_mode:oaep` reads back; keys made by `openssl genrsa`, in both PEM forms."""

import base64
import subprocess

import pytest

from proftpy.auth import rsa_oaep
from proftpy.auth.rsa_oaep import BadKey


def openssl(*args: str, data: bytes = b"") -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    """(private key file, SubjectPublicKeyInfo PEM, PKCS#1 PEM) of a fresh 2048-bit key."""
    path = tmp_path_factory.mktemp("rsa") / "key.pem"
    openssl("genrsa", "-out", str(path), "2048")
    return path, openssl("rsa", "-in", str(path), "-pubout"), openssl("rsa", "-in", str(path), "-RSAPublicKey_out")


def decrypt(key_path, data: bytes) -> bytes:
    return openssl("pkeyutl", "-decrypt", "-inkey", str(key_path), "-pkeyopt", "rsa_padding_mode:oaep", data=data)


@pytest.mark.parametrize("message", [b"", b"x", b"secret\0", bytes(range(256))[:214]])
def test_openssl_decrypts_what_is_encrypted(rsa_key, message):
    path, spki, _ = rsa_key
    sealed = rsa_oaep.encrypt(rsa_oaep.public_key(spki), message)
    assert len(sealed) == 256 and decrypt(path, sealed) == message


def test_both_pem_forms_give_the_same_key(rsa_key):
    path, spki, pkcs1 = rsa_key
    n, e = rsa_oaep.public_key(spki)
    assert (n, e) == rsa_oaep.public_key(pkcs1) and e == 65537 and n.bit_length() == 2048
    modulus = openssl("rsa", "-in", str(path), "-noout", "-modulus").decode().strip().split("=")[1]
    assert n == int(modulus, 16)


def test_fresh_seed_each_time(rsa_key):
    key = rsa_oaep.public_key(rsa_key[1])
    assert rsa_oaep.encrypt(key, b"pw") != rsa_oaep.encrypt(key, b"pw")


def test_a_fixed_seed_gives_the_textbook_encoding(rsa_key):
    """EM = 0x00 || maskedSeed || maskedDB: raw RSA decryption (no padding) shows it, and unmasking finds the seed."""
    path, spki, _ = rsa_key
    seed = bytes(range(20))
    sealed = rsa_oaep.encrypt(rsa_oaep.public_key(spki), b"abc", random=lambda n: seed)
    em = openssl("pkeyutl", "-decrypt", "-inkey", str(path), "-pkeyopt", "rsa_padding_mode:none", data=sealed)
    masked_seed, masked_db = em[1:21], em[21:]
    assert em[0] == 0
    assert rsa_oaep._xor(masked_seed, rsa_oaep._mgf1(masked_db, 20)) == seed
    db = rsa_oaep._xor(masked_db, rsa_oaep._mgf1(seed, len(masked_db)))
    assert db.endswith(b"\x01abc") and db[:20] == bytes.fromhex("da39a3ee5e6b4b0d3255bfef95601890afd80709")


def test_message_too_long(rsa_key):
    with pytest.raises(BadKey, match="too long"):
        rsa_oaep.encrypt(rsa_oaep.public_key(rsa_key[1]), b"x" * 215)


@pytest.mark.parametrize("pem,why", [
    (b"hello", "no PEM"),
    (b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "malformed"),
    (b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n", "malformed"),
    (b"-----BEGIN RSA PUBLIC KEY-----\nMAYCAQUCAQM=\n-----END RSA PUBLIC KEY-----\n", "not a usable RSA key"),
])
def test_bad_keys_are_refused(pem, why):
    with pytest.raises(BadKey, match=why):
        rsa_oaep.public_key(pem)


@pytest.mark.parametrize("n,e", [((1 << 20000) - 1, 65537), ((1 << 2047) + 1, (1 << 200) + 1), ((1 << 2047) + 1, 4)],
                         ids=["huge-modulus", "huge-exponent", "even-exponent"])
def test_keys_that_would_only_make_work_are_refused(n, e):
    """A modulus beyond 16384 bits or an exponent beyond 64 bits (a pow that would take minutes), an even one."""
    from proftpy import ber
    der = ber.sequence(ber.integer(n), ber.integer(e))
    pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END RSA PUBLIC KEY-----\n"
    with pytest.raises(BadKey, match="not a usable RSA key"):
        rsa_oaep.public_key(pem)


def test_an_ec_key_is_not_an_rsa_key():
    ec = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1")
    with pytest.raises(BadKey, match="not an RSA key"):
        rsa_oaep.public_key(openssl("pkey", "-pubout", data=ec))
