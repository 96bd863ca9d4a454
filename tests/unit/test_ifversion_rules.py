"""<IfVersion>'s comparison (proftpy/config/ifversion.py) against ProFTPD 1.3.8, the version proftpy follows."""

import pytest

from proftpy.config.ifversion import matches, parse_version


@pytest.mark.parametrize("text, parsed", [
    ("1", (1, 0, 0, 300)), ("1.3", (1, 3, 0, 300)), ("1.3.8", (1, 3, 8, 300)), ("1.3.8rc2", (1, 3, 8, 102)),
    ("1.3.8RC", (1, 3, 8, 100)), ("1.3.8b", (1, 3, 8, 301)), ("1.3.x", None), ("1.", None), ("v1", None),
    ("1.3.8ab", None), ("1.3.8rcx", None), ("", None),
])
def test_versions_are_read_as_mod_ifversion_reads_them(text, parsed):
    assert parse_version(text) == parsed


@pytest.mark.parametrize("args, applies", [
    ([">=", "1.3.6"], True), (["<", "1.3.6"], False), (["1.3.8"], True), (["=", "1.3.8"], True),
    (["==", "1.3.8"], True), (["!=", "1.3.8"], False), ([">", "1.3.8rc4"], True), (["<", "1.3.8b"], True),
    (["<", "1.3.8a"], False),           # ProFTPD ranks maintenance letter `a` as the release itself
    (["<=", "1.3.8"], True), (["!<=", "1.3.8"], False), ([">", "1"], True), (["=<", "1.3.8"], True),
    (["=", "/^1\\.3\\.8$/"], True), (["~", "^1\\.3\\.[0-7]$"], False), (["!~", "^1\\.3\\.[0-7]$"], True),
    (["~", "^1\\.3\\.[[:digit:]]$"], True),
])
def test_sections_apply_as_on_proftpd_1_3_8(args, applies):
    assert matches(args) is applies


@pytest.mark.parametrize("args, message", [
    ([], "wrong number of parameters"), (["=", "1", "2"], "wrong number of parameters"),
    (["x", "1.3"], "unknown comparison operator 'x'"), (["=", "1.3.x"], "badly formatted configured version '1.3.x'"),
    (["=", "/abc"], "Missing terminating '/' of regular expression"),
    (["~", "("], "unable to compile pattern '('"),
])
def test_mistakes_get_proftpds_messages(args, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        matches(args)
