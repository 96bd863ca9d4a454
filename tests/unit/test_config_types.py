"""The shared parser of `...Options` directives (config/types.py Options)."""

import pytest

from proftpy.config.types import Options


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
