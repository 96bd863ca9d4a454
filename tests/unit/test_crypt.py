"""auth.crypt: libxcrypt hashing/verification, locked hashes, thread safety."""
import threading

import pytest

from proftpy.auth import crypt as c

PREFIX = {"sha512": "$6$", "sha256": "$5$", "md5": "$1$", "yescrypt": "$y$", "bcrypt": "$2b$"}


@pytest.mark.parametrize("scheme", sorted(PREFIX))
def test_hash_then_verify_each_scheme(scheme):
    h = c.crypt_hash("s3cret pässword", scheme)
    assert h.startswith(PREFIX[scheme])
    assert c.scheme_of(h) == scheme
    assert c.crypt_verify("s3cret pässword", h)
    assert c.crypt_verify("s3cret pässword".encode(), h)
    assert not c.crypt_verify("s3cret password", h)
    assert not c.crypt_verify("", h)


def test_salts_differ():
    assert c.crypt_hash("pw") != c.crypt_hash("pw")


def test_default_scheme_is_sha512():
    assert c.crypt_hash("pw").startswith("$6$")


def test_known_vectors():
    # MD5 and SHA-512 values from `openssl passwd` (an independent implementation); DES from
    # glibc's crypt(3).
    assert c.crypt_verify("password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/")
    assert c.crypt_verify("password", "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/"
                                      "jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/")
    assert not c.crypt_verify("Password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/")
    assert c.crypt_verify("pw", "abzlUXK5ed5rs")
    assert not c.crypt_verify("px", "abzlUXK5ed5rs")


@pytest.mark.parametrize("hashed", ["", "!", "*", "!!", "x", "*LK*", None])
def test_empty_and_locked_never_verify(hashed):
    assert not c.crypt_verify("", hashed)
    assert not c.crypt_verify("pw", hashed)


def test_locked_real_hash_never_verifies():
    h = c.crypt_hash("pw")
    assert c.crypt_verify("pw", h)
    assert not c.crypt_verify("pw", "!" + h)


def test_garbage_and_nul_never_verify():
    h = c.crypt_hash("pw")
    assert not c.crypt_verify("p\0w", h)
    assert not c.crypt_verify("pw", "$6$")
    assert not c.crypt_verify("pw", "$9$nonsense$")
    assert not c.crypt_verify("pw", "ünicode")
    assert not c.crypt_verify("x" * 600, h)


def test_unknown_scheme_raises():
    with pytest.raises(ValueError):
        c.crypt_hash("pw", "rot13")


def test_hash_like_keeps_scheme_and_cost():
    ref = c.crypt_hash("a", "sha512", rounds=12000)
    like = c.hash_like("b", ref)
    assert like.startswith("$6$rounds=12000$") and c.crypt_verify("b", like)
    y = c.crypt_hash("a", "yescrypt")
    assert c.hash_like("b", y).split("$")[2] == y.split("$")[2]
    bc = c.crypt_hash("a", "bcrypt", rounds=6)
    assert c.hash_like("b", bc).startswith("$2b$06$")
    assert c.hash_like("b", "!").startswith("$6$")


def test_threads_do_not_share_state():
    hashes = {f"pw{i}": c.crypt_hash(f"pw{i}", "sha256") for i in range(8)}
    errors = []

    def worker():
        for _ in range(20):
            for pw, h in hashes.items():
                if not c.crypt_verify(pw, h) or c.crypt_verify(pw + "x", h):
                    errors.append(pw)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
