"""Connection classes: tests/api/class.c's cases against proftpy's <Class> handling."""

import pytest

from proftpy import modules
from proftpy.access import classes
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_text
from proftpy.net.netaddr import ClientAddr

LOCAL = ClientAddr("127.0.0.1", "localhost", True)


def load(text):
    return classes.from_sections(parse_text(text, modules.registry()).classes)


def test_no_classes_matches_nothing():
    assert classes.match_class([], LOCAL) is None


def test_first_defined_class_wins():
    cs = load("<Class first>\nFrom 127.0.0.1\n</Class>\n<Class second>\nFrom 127.0.0.0/8\n</Class>\n")
    assert classes.match_class(cs, LOCAL).name == "first"
    cs = load("<Class second>\nFrom 127.0.0.0/8\n</Class>\n<Class first>\nFrom 127.0.0.1\n</Class>\n")
    assert classes.match_class(cs, LOCAL).name == "second"


def test_class_without_from_is_discarded_with_a_warning():
    config = parse_text("<Class empty>\nSatisfy all\n</Class>\n", modules.registry())
    assert config.classes == [] and "no From" in config.warnings[0]


def test_satisfy_any_localhost_vs_ip():
    assert classes.satisfied(load("<Class c>\nFrom 127.0.0.1\n</Class>\n")[0], LOCAL)


def test_satisfy_any_negated_own_address_fails():
    assert not classes.satisfied(load("<Class c>\nFrom !127.0.0.1\n</Class>\n")[0], LOCAL)


def test_satisfy_all_with_contradiction_never_matches():
    cs = load("<Class c>\nFrom !127.0.0.1\nFrom 127.0.0.1\nSatisfy all\n</Class>\n")
    assert classes.match_class(cs, LOCAL) is None


def test_satisfy_all_single_rule_matches():
    cs = load("<Class c>\nFrom 127.0.0.1\nSatisfy all\n</Class>\n")
    assert classes.match_class(cs, LOCAL).name == "c"


def test_from_comma_lists_and_several_lines():
    c = load("<Class c>\nFrom 10.0.0.1, 10.0.0.2\nFrom 192.168.0.0/16\n</Class>\n")[0]
    assert [str(r) for r in c.rules] == ["10.0.0.1", "10.0.0.2", "192.168.0.0/16"]
    assert classes.satisfied(c, ClientAddr.plain("192.168.4.4"))
    assert not classes.satisfied(c, ClientAddr.plain("10.0.0.3"))


def test_from_all_first_ignores_the_rest():
    c = load("<Class c>\nFrom all 10.0.0.1\n</Class>\n")[0]
    assert [str(r) for r in c.rules] == ["all"]


@pytest.mark.parametrize("line", ["From 10.0.0.1 all", "From localhost/24", "Satisfy some"])
def test_bad_class_lines_are_config_errors(line):
    with pytest.raises(ConfigError) as e:
        parse_text(f"<Class c>\n{line}\n</Class>\n", modules.registry(), file="t.conf")
    assert str(e.value).startswith("t.conf:2:")


def test_class_in_global_is_collected():
    cs = load("<Global>\n<Class g>\nFrom 127.0.0.1\n</Class>\n</Global>\n")
    assert [c.name for c in cs] == ["g"]
