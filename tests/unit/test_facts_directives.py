"""FactsDefault and FactsAdvertise as ProFTPD 1.3.8 reads them."""

import pytest

from proftpy import modules
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_text

REG = modules.registry()


def test_facts_default_any_case_in_mod_facts_order():
    config = parse_text("FactsDefault UNIX.MODE size Modify\nFactsAdvertise off\n", REG, file="test.conf")
    assert config.main.get("FactsDefault") == ("modify", "size", "UNIX.mode")
    assert config.main.get("FactsAdvertise") is False


@pytest.mark.parametrize("line, message", [
    ("FactsDefault", "test.conf:1: FactsDefault: wrong number of parameters"),
    ("FactsDefault size,modify", "test.conf:1: FactsDefault: unknown fact 'size,modify'"),
    ("FactsDefault bogus", "test.conf:1: FactsDefault: unknown fact 'bogus'")])
def test_facts_default_errors(line, message):
    with pytest.raises(ConfigError) as e:
        parse_text(line + "\n", REG, file="test.conf")
    assert str(e.value) == message
