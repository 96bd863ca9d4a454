"""User/group/class expressions (proftpy/access/expr.py) and how TransferRate, TimeoutSession and HideFiles pick
the line that applies."""

from dataclasses import dataclass

import pytest

from proftpy import modules
from proftpy.access import expr
from proftpy.access.expr import Condition, parse_condition, pick, terms
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_ftpaccess, parse_text

REG = modules.registry()


@dataclass
class Who:
    user: str | None = None
    groups: tuple[str, ...] | None = None
    conn_class: str | None = None


ALICE = Who("alice", ("staff", "ftp"), "lan")
BOB = Who("bob", ("users",), None)


# -- name lists ----------------------------------------------------------------------------------------------------
def test_terms_split_every_word_on_commas():
    assert terms(["a,b", "c", ",d,"]) == ("a", "b", "c", "d")


@pytest.mark.parametrize("words", [[], [","], ["a,!"], ["!"]])
def test_terms_refuse_empty_lists_and_lone_bang(words):
    with pytest.raises(ValueError):
        terms(words)


@pytest.mark.parametrize("items, names, expected", [
    (("alice",), ("alice",), True),
    (("bob", "alice"), ("alice",), True),
    (("bob",), ("alice",), False),
    (("!bob",), ("alice",), True),
    (("!alice",), ("alice",), False),
    (("!alice", "carol"), ("alice",), False),
    (("!alice", "bob"), ("bob",), True),
    (("x",), (), False),
    (("!x",), (), True),
])
def test_or_list(items, names, expected):
    assert expr.eval_or(items, names) is expected


@pytest.mark.parametrize("items, names, expected", [
    (("staff",), ("staff", "ftp"), True),
    (("staff", "ftp"), ("staff", "ftp"), True),
    (("staff", "wheel"), ("staff", "ftp"), False),
    (("staff", "!wheel"), ("staff", "ftp"), True),
    (("staff", "!ftp"), ("staff", "ftp"), False),
    (("!wheel",), (), True),
])
def test_and_list(items, names, expected):
    assert expr.eval_and(items, names) is expected


# -- conditions ----------------------------------------------------------------------------------------------------
def test_user_condition_is_an_or_list():
    cond = parse_condition(["user", "carol,alice"])
    assert cond == Condition("user", ("carol", "alice"))
    assert cond.holds(ALICE) is True and cond.holds(BOB) is False


def test_group_condition_is_an_and_list():
    cond = parse_condition(["group", "staff,ftp"])
    assert cond.holds(ALICE) is True
    assert parse_condition(["group", "staff,users"]).holds(ALICE) is False
    assert parse_condition(["group", "!staff"]).holds(BOB) is True


def test_class_condition_is_an_or_list_and_no_class_matches_no_name():
    assert parse_condition(["class", "wan,lan"]).holds(ALICE) is True
    assert parse_condition(["class", "lan"]).holds(BOB) is False
    assert parse_condition(["class", "!lan"]).holds(BOB) is True


def test_user_and_group_are_unknown_before_login():
    nobody = Who(None, None, "lan")
    assert parse_condition(["user", "!alice"]).holds(nobody) is None
    assert parse_condition(["group", "staff"]).holds(nobody) is None
    assert parse_condition(["class", "lan"]).holds(nobody) is True


def test_classifier_is_case_insensitive_and_words_join():
    assert parse_condition(["USER", "alice,", "bob"]) == Condition("user", ("alice", "bob"))


@pytest.mark.parametrize("words", [["host", "x"], ["user"], ["group", ","]])
def test_bad_conditions_are_refused(words):
    with pytest.raises(ValueError):
        parse_condition(words)


def test_no_words_no_condition():
    assert parse_condition([]) is None


# -- directive parsing ---------------------------------------------------------------------------------------------
def parse(text):
    return parse_text(text, REG, file="t.conf")


@pytest.mark.parametrize("line, message", [
    ("TransferRate RETR 10 user", "needs a name list"),
    ("TransferRate RETR 10 host alice", "unknown classifier 'host'"),
    ("TimeoutSession 60 bogus x", "unknown classifier 'bogus'"),
    ("TimeoutSession 60 group", "needs a name list"),
    ("TimeoutSession 60 user !", "must be followed by a name"),
    ("<Directory /srv>\nHideFiles \\.x$ nocase\n</Directory>", "unknown classifier 'nocase'"),
])
def test_config_errors_name_file_line_and_reason(line, message):
    with pytest.raises(ConfigError) as e:
        parse(line)
    assert "t.conf:" in str(e.value) and message in str(e.value)


def test_old_forms_still_parse():
    cfg = parse("TransferRate RETR,STOR 64:1000\nTimeoutSession 30\n<Directory /srv>\nHideFiles none\n</Directory>")
    rate = cfg.main.section.get("TransferRate")
    assert rate.cmds == frozenset({"RETR", "STOR"}) and rate.kbps == 64 and rate.free == 1000
    assert rate.condition is None
    assert cfg.main.section.get("TimeoutSession").seconds == 30


# -- which line applies --------------------------------------------------------------------------------------------
def rate_at(text, path, who, name="RETR", dynamic=()):
    cfg = parse(text)
    chain = cfg.main.context(path=path, dynamic=list(dynamic)).chain
    r = pick(chain, "TransferRate", who, lambda v: name in v.cmds)
    return None if r is None else r.kbps


def test_first_matching_line_in_a_context_wins():
    text = "TransferRate RETR 10 user bob\nTransferRate RETR 20 group staff\nTransferRate RETR 30\n"
    assert rate_at(text, "/x", ALICE) == 20
    assert rate_at(text, "/x", BOB) == 10
    assert rate_at(text, "/x", Who("carol", ("x",), None)) == 30


def test_line_for_other_commands_is_skipped():
    text = "TransferRate STOR 10\nTransferRate RETR 20 user alice\n"
    assert rate_at(text, "/x", ALICE) == 20
    assert rate_at(text, "/x", BOB) is None
    assert rate_at(text, "/x", BOB, name="STOR") == 10


def test_more_specific_context_wins_even_when_later():
    text = ("TransferRate RETR 10 user alice\n"
            "<Directory /srv>\n  TransferRate RETR 40 group staff\n  TransferRate RETR 50 user bob\n</Directory>\n")
    assert rate_at(text, "/srv/f", ALICE) == 40
    assert rate_at(text, "/srv/f", BOB) == 50
    assert rate_at(text, "/elsewhere", ALICE) == 10
    # nothing in <Directory> matches carol: the server's lines are next
    assert rate_at(text + "TransferRate RETR 5\n", "/srv/f", Who("carol", (), None)) == 5


def test_server_line_beats_global_line():
    text = "<Global>\n  TransferRate RETR 10 user alice\n</Global>\nTransferRate RETR 20 user alice\n"
    assert rate_at(text, "/x", ALICE) == 20


def test_ftpaccess_beats_a_deeper_directory():
    text = "<Directory /srv/a/b>\n  TransferRate RETR 40\n</Directory>\n"
    dyn = parse_ftpaccess("TransferRate RETR 70 user alice\n", "/srv/.ftpaccess", "/srv", REG)
    assert rate_at(text, "/srv/a/b/f", ALICE, dynamic=[dyn]) == 70
    assert rate_at(text, "/srv/a/b/f", BOB, dynamic=[dyn]) == 40


def test_unknown_condition_does_not_apply():
    text = "TransferRate RETR 10 user alice\nTransferRate RETR 20\n"
    assert rate_at(text, "/x", Who(None, None, None)) == 20


def test_facts_are_asked_only_when_a_condition_must_be_decided():
    calls = []

    def facts():
        calls.append(1)
        return ALICE

    cfg = parse("TransferRate RETR 10\n")
    assert pick(cfg.main.context().chain, "TransferRate", facts).kbps == 10
    assert calls == []


def hide_rule(text, path, who):
    cfg = parse(text)
    return pick(cfg.main.context(path=path).chain, "HideFiles", who)


def test_hidefiles_none_for_one_user_undoes_an_inherited_line():
    text = ("<Directory /srv>\n  HideFiles \\.bak$\n</Directory>\n"
            "<Directory /srv/sub>\n  HideFiles none user alice\n</Directory>\n")
    assert hide_rule(text, "/srv/sub/x.bak", ALICE).regex is None
    assert hide_rule(text, "/srv/sub/x.bak", BOB).regex.search("x.bak")


def test_timeoutsession_zero_is_ignored_as_in_proftpd():
    cfg = parse("TimeoutSession 30\n<Anonymous /srv/anon>\n  TimeoutSession 0\n</Anonymous>\n")
    anon = cfg.main.anonymous()[0]
    assert pick(cfg.main.context(anon).chain, "TimeoutSession", ALICE).seconds == 30
