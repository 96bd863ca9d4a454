"""mod_digest's pure parts: the directives' argument checks, the word split, offsets read as ProFTPD's strtoull,
the X commands' ranges, FEAT's HASH line, the `Computing...` count and the chunked digest itself."""

from __future__ import annotations

import hashlib
import os
import zlib

import pytest

from proftpy.modules import digest as d
from proftpy.reply import Reply


def test_algorithms_all_or_each_in_a_fixed_order():
    assert d.parse_algorithms(["all"]) == ("crc32", "md5", "sha1", "sha256", "sha512")
    assert d.parse_algorithms(["ALL", "bogus"]) == tuple(d.ALGOS)          # ProFTPD reads nothing after `all`
    assert d.parse_algorithms(["SHA512", "md5"]) == ("md5", "sha512")
    for args, message in (([], "wrong number of parameters"),
                          (["md5", "sha-1"], "unknown/unsupported DigestAlgorithm: sha-1")):
        with pytest.raises(ValueError, match=message):
            d.parse_algorithms(args)


def test_default_algorithm_is_one_known_name():
    assert d.parse_default_algorithm(["SHA256"]) == "sha256"
    with pytest.raises(ValueError, match="unknown/unsupported DigestAlgorithm: sha384"):
        d.parse_default_algorithm(["sha384"])
    with pytest.raises(ValueError, match="wrong number"):
        d.parse_default_algorithm(["md5", "sha1"])


def test_cache_settings():
    assert d.parse_cache(["off"]) == d.CacheSettings(False, 10000, 30)
    assert d.parse_cache(["on"]) == d.CacheSettings(True, 10000, 30)
    assert d.parse_cache(["size", "100"]) == d.CacheSettings(True, 100, 30)
    assert d.parse_cache(["maxAge", "2m", "SIZE", "5"]) == d.CacheSettings(True, 5, 120)
    for args, message in ((["maybe"], "expected Boolean parameter"), (["size"], "expected Boolean parameter"),
                          (["maxAge", "5", "size"], "wrong number of parameters"),
                          (["size", "1x"], "invalid cache size: 1x"), (["size", "0"], "greater than 0"),
                          (["maxAge", "soon"], "invalid max age: soon"), (["maxAge", "0"], "greater than 1"),
                          (["count", "3"], "unknown DigestCache parameter: count"),
                          (["size", "1", "maxAge", "2", "x"], "wrong number of parameters")):
        with pytest.raises(ValueError, match=message):
            d.parse_cache(args)


def test_max_size_with_units_or_off():
    assert d.parse_max_size(["1", "GB"]) == 1 << 30
    assert d.parse_max_size(["512"]) == 512
    assert d.parse_max_size(["10", "kb"]) == 10240
    assert d.parse_max_size(["off"]) == d.parse_max_size(["0"]) == 0
    for args, message in ((["-1"], "badly formatted size value: -1"), (["1", "PB"], "badly formatted size value: 1PB"),
                          (["0", "KB"], "greater than zero"), (["1", "KB", "x"], "wrong number")):
        with pytest.raises(ValueError, match=message):
            d.parse_max_size(args)


def test_words_split_as_proftpd_reads_a_command_line():
    assert d.words("file.txt 0 5") == ["file.txt", "0", "5"]
    assert d.words('"two words.txt" 1 2') == ["two words.txt", "1", "2"]
    assert d.words(r'"a\"b" x') == ['a"b', "x"]
    assert d.words("  spaced   out ") == ["spaced", "out"]
    assert d.words("") == [] and d.words("   ") == []


def test_offsets_wrap_like_strtoull_into_off_t():
    assert d.strtoull("17") == 17 and d.strtoull("+3") == 3
    assert d.strtoull("-1") == -1 and d.strtoull("-5") == -5
    assert d.strtoull("99999999999999999999") == -1            # saturates at 2^64-1, which is -1 as an off_t
    assert d.strtoull("9223372036854775808") == -(1 << 63)
    assert d.strtoull("5x") is None and d.strtoull("x") is None and d.strtoull("0x10") is None
    assert d.unsigned(-1) == (1 << 64) - 1


def test_x_ranges_and_their_refusals():
    assert d.x_range("XCRC", [], 24) == (0, 24)
    assert d.x_range("XCRC", ["6", "24"], 24) == (6, 18)
    cases = {("0", "25"): "501 XCRC: end exceeds file size",
             ("5", "5"): "501 XCRC requires end (5) greater than start (5)",
             ("x", "5"): "501 XCRC requires a start greater than or equal to 0",
             ("0", "5x"): "501 XCRC requires an end greater than 0",
             ("0", "-1"): "501 XCRC requires end (18446744073709551615) greater than start (0)"}
    for args, text in cases.items():
        reply = d.x_range("XCRC", list(args), 24)
        assert isinstance(reply, Reply) and f"{reply.code} {reply.text}" == text
    assert d.x_range("XMD5", ["-1", "5"], 24) == (-1, 6)       # refused later, when seeking (EINVAL)
    assert d.x_range("XSHA", [], 0) == Reply(501, "XSHA requires end (0) greater than start (0)")


def test_feat_hash_line_stars_the_current_algorithm():
    assert d.hash_feat(tuple(d.ALGOS), "sha1") == "HASH CRC32;MD5;SHA-1*;SHA-256;SHA-512;"
    assert d.hash_feat(("md5", "sha256"), "sha256") == "HASH MD5;SHA-256*;"


def test_progress_lines_every_40000_reads():
    assert d.progress_lines(0, 4096) == 0
    assert d.progress_lines(39999 * 4096, 4096) == 0
    assert d.progress_lines(40000 * 4096, 4096) == 1
    assert d.progress_lines(170_000_000, 4096) == 1
    assert d.progress_lines(3 * 40000 * 512, 512) == 3


@pytest.mark.parametrize("algo", list(d.ALGOS))
def test_digest_of_a_file_in_chunks_matches_hashlib(tmp_path, algo):
    data = os.urandom(3 * d.CHUNK + 12345)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        part = data[100:100 + 2 * d.CHUNK + 7]
        want = (f"{zlib.crc32(part):08x}" if algo == "crc32" else hashlib.new(algo, part).hexdigest())
        assert d.digest_fd(fd, 100, len(part), algo) == want
        with pytest.raises(OSError) as e:                           # asked for more than the file holds
            d.digest_fd(fd, len(data) - 10, 20, algo)
        assert e.value.errno == 5
        with pytest.raises(OSError) as e:
            d.digest_fd(fd, -1, 5, algo)
        assert e.value.errno == 22
    finally:
        os.close(fd)
