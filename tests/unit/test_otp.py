"""mod_auth_otp's pure parts: RFC 4226 / RFC 6238 test vectors, base32 as ProFTPD decodes it, the accepted window."""

import pytest

from proftpy.auth.otp import Base32Error, base32_decode, base32_encode, candidates, hotp, totp

RFC4226_KEY = b"12345678901234567890"
# RFC 4226, appendix D: HOTP values for counters 0..9
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

# RFC 6238, appendix B: (time, SHA-1, SHA-256, SHA-512), 8 digits, each digest with its own seed length
RFC6238_KEYS = {"sha1": b"12345678901234567890", "sha256": b"1234567890" * 3 + b"12",
                "sha512": b"1234567890" * 6 + b"1234"}
RFC6238 = [(59, "94287082", "46119246", "90693936"),
           (1111111109, "07081804", "68084774", "25091201"),
           (1111111111, "14050471", "67062674", "99943326"),
           (1234567890, "89005924", "91819424", "93441116"),
           (2000000000, "69279037", "90698825", "38618901"),
           (20000000000, "65353130", "77737706", "47863826")]


@pytest.mark.parametrize("counter", range(10))
def test_hotp_matches_rfc4226(counter):
    assert hotp(RFC4226_KEY, counter) == RFC4226[counter]


@pytest.mark.parametrize("when, sha1, sha256, sha512", RFC6238)
def test_totp_matches_rfc6238(when, sha1, sha256, sha512):
    for digest, code in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        assert totp(RFC6238_KEYS[digest], when, digest, digits=8) == code


def test_six_digit_totp_is_the_rfc_value_cut_to_six():
    assert totp(RFC6238_KEYS["sha1"], 59) == "287082"


def test_codes_keep_their_leading_zeros():
    assert totp(RFC6238_KEYS["sha1"], 1111111109, digits=8) == "07081804"
    assert len(hotp(b"k", 7)) == 6


def test_base32_round_trip_and_rfc4648_vectors():
    assert base32_encode(b"foobar") == "MZXW6YTBOI"
    assert base32_decode("MZXW6YTBOI") == b"foobar"
    assert base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == RFC4226_KEY
    for raw in (b"", b"\x00", b"\xff\xfe", bytes(range(37))):
        assert base32_decode(base32_encode(raw)) == raw


def test_base32_decoding_is_lenient_as_proftpds():
    assert base32_decode("mzxw 6ytb-oi\n") == b"foobar"


@pytest.mark.parametrize("bad", ["MZXW6YTBOI======", "MZXW1", "MZXWé"])
def test_base32_refuses_padding_and_foreign_characters(bad):
    with pytest.raises(Base32Error):
        base32_decode(bad)


def test_hotp_window_is_stored_counter_then_behind_then_ahead():
    assert candidates("hotp", RFC4226_KEY, 5) == [RFC4226[5], RFC4226[4], RFC4226[6]]


def test_totp_window_is_now_then_thirty_seconds_each_way():
    key = RFC6238_KEYS["sha1"]
    assert candidates("totp", key, 1111111111) == [totp(key, 1111111111), totp(key, 1111111081),
                                                  totp(key, 1111111141)]
    assert candidates("totp-sha512", key, 90)[0] == totp(key, 90, "sha512")


def test_an_empty_secret_gives_no_code():
    with pytest.raises(ValueError):
        hotp(b"", 0)


def test_auth_otp_tool_prints_a_new_secret_and_its_first_hotp_code(capsys):
    from proftpy.tools import auth_otp
    assert auth_otp.main([]) == 0
    out = capsys.readouterr().out
    secret = out.split("Your new secret key is: ")[1].split("\n")[0]
    assert len(base32_decode(secret)) == 32 and len(secret) == 52
    assert f"VALUES ('{secret}', 0);" in out
    assert f"Your verification code is: {hotp(base32_decode(secret), 0)}\n" in out
    assert auth_otp.main(["-q"]) == 0
    quiet = capsys.readouterr().out
    assert len(quiet) == 53 and quiet != secret + "\n"
    assert auth_otp.main(["-x"]) == 1
    assert "auth-otp: " in capsys.readouterr().err
