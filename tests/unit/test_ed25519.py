"""Ed25519 from a secret of any length (proftpy/auth/ed25519.py, MariaDB's client_ed25519): RFC 8032's vectors
for 32-byte secrets, libsodium's own signer and verifier as a second opinion, and passwords of other lengths."""

import pytest

from proftpy.auth import ed25519
from proftpy.net.ssh import crypto

RFC8032 = [   # section 7.1: TEST 1, 2, 3 (secret key, public key, message, signature)
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe2465"
     "5141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb0"
     "0d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc0"
     "27beceea1ec40a"),
]


@pytest.mark.parametrize("secret,public,message,signature", RFC8032)
def test_rfc8032_vectors(secret, public, message, signature):
    secret_b = bytes.fromhex(secret)
    assert ed25519.public_key(secret_b).hex() == public
    assert ed25519.sign(secret_b, bytes.fromhex(message)).hex() == signature


def test_same_as_libsodiums_signer_for_a_seed():
    seed, message = bytes(range(32)), b"\x01" * 32
    libsodium = crypto.ed25519_sign(seed + crypto.ed25519_public(seed), message)
    assert ed25519.sign(seed, message) == libsodium


@pytest.mark.parametrize("password", [b"", b"x", b"ed-secret", "pässwörd".encode(), b"p" * 31, b"p" * 33, b"q" * 500])
def test_a_password_of_any_length_signs_verifiably(password):
    nonce = bytes(range(100, 132))
    sig = ed25519.sign(password, nonce)
    public = ed25519.public_key(password)
    assert len(sig) == 64 and crypto.ed25519_verify(public, nonce, sig)
    assert not crypto.ed25519_verify(public, nonce[:-1] + b"\0", sig)
    assert not crypto.ed25519_verify(ed25519.public_key(password + b"!"), nonce, sig)


def test_signatures_are_deterministic():
    assert ed25519.sign(b"pw", b"n" * 32) == ed25519.sign(b"pw", b"n" * 32) != ed25519.sign(b"pw", b"m" * 32)
