"""The shared parser of `...Options` directives (config/types.py Options)."""

import pytest

import re

from proftpy.config.types import Options, compile_regex


def test_options_are_returned_by_name():
    parse = Options(("UseSlink", "NoNames"), "FactsOption")
    assert parse(["NoNames", "UseSlink", "NoNames"]) == frozenset({"UseSlink", "NoNames"})


def test_case_matters_unless_nocase():
    with pytest.raises(ValueError, match="unknown FactsOption 'nonames'"):
        Options(("NoNames",), "FactsOption")(["nonames"])
    assert Options(("logStdout",), "ExecOption", nocase=True)(["LOGSTDOUT"]) == frozenset({"logStdout"})


def test_an_alias_gives_its_name():
    parse = Options(("AllowClientRenegotiations",), "TLSOption",
                    aliases=(("AllowClientRenegotiation", "AllowClientRenegotiations"),))
    assert parse(["AllowClientRenegotiation"]) == frozenset({"AllowClientRenegotiations"})


def test_no_words_is_an_error():
    with pytest.raises(ValueError, match="wrong number of parameters"):
        Options(("NoReconnect",), "RedisOption")([])
    assert Options(("A", "B"), "X").syntax == "A|B ..."


@pytest.mark.parametrize("pattern, matching, other", [
    ("^[[:alnum:]._-]+$", "a.B-1_", "a b"),
    ("[^[:space:]]", "x", " \t"),
    ("^[[:digit:]]{3}$", "123", "12a"),
    ("^[a[:upper:]]+$", "aQZ", "aq"),
    ("^[[:punct:]]$", "]", "a"),
    ("^[[:xdigit:][:blank:]]+$", "Fa 09\t", "g"),
    ("^[]x]+$", "]x", "y"),                     # no class: left to re as it is
    ("\\[[:x]", "[:", "x"),                     # an escaped `[` opens no set
])
def test_posix_classes_match_as_in_pcre2(pattern, matching, other):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # Python's "Possible nested set" must not come up
        regex = compile_regex(pattern)
    assert regex.search(matching) and not regex.search(other)


def test_an_unknown_posix_class_is_refused_as_pcre2_does():
    with pytest.raises(re.error, match="unknown POSIX class name"):
        compile_regex("[[:foo:]]")
