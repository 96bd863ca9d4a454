"""<Limit> semantics, one test per precedence rule of reference §2 (src/dirtree.c)."""

import pytest

from proftpy import modules
from proftpy.access import limits
from proftpy.access.limits import Who
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_text
from proftpy.net.netaddr import ClientAddr

HERE = ClientAddr.plain("127.0.0.1")
THERE = ClientAddr.plain("10.1.2.3")


def conf(text):
    return parse_text(text, modules.registry(), file="t.conf")


def one_limit(body, who, order=None):
    text = "<Limit STOR>\n" + (f"Order {order}\n" if order else "") + body + "\n</Limit>\n"
    limit = conf(text).main.section.children("limit")[0]
    return limits.check_limit(limit, who)[0]


def command(text, who, cmd="STOR", group="WRITE", path="/srv/ftp/x", limited=True, hidden=False):
    ctx = conf(text).main.context(path=path)
    return limits.check_command(ctx.limits(), cmd, group, limited, who, hidden)


ALICE = Who(HERE, "alice", ("staff", "ftpusers"))


# -- one <Limit>: Order ----------------------------------------------------------------------------------------
def test_allow_deny_allow_rule_wins_over_deny_rule():
    assert one_limit("AllowUser alice\nDenyAll", ALICE) == limits.EXPLICIT_ALLOW


def test_allow_deny_deny_rule_alone_is_explicit_deny():
    assert one_limit("AllowUser bob\nDenyAll", ALICE) == limits.EXPLICIT_DENY


def test_allow_deny_nothing_matching_is_implicit_allow():
    assert one_limit("AllowUser bob\nDenyUser carol", ALICE) == limits.IMPLICIT_ALLOW


def test_deny_allow_deny_rule_wins_over_allow_rule():
    assert one_limit("AllowUser alice\nDenyAll", ALICE, "deny,allow") == limits.EXPLICIT_DENY


def test_deny_allow_allow_rule_alone_is_explicit_allow():
    assert one_limit("AllowUser alice\nDenyUser bob", ALICE, "deny,allow") == limits.EXPLICIT_ALLOW


def test_deny_allow_nothing_matching_is_implicit_deny():
    assert one_limit("AllowUser bob", ALICE, "deny , allow") == limits.IMPLICIT_DENY


# -- allow/deny rules ----------------------------------------------------------------------------------------------
def test_allowuser_presence_allows_before_login():
    assert one_limit("AllowUser bob\nDenyAll", Who(HERE)) == limits.EXPLICIT_ALLOW


def test_allowgroup_presence_allows_before_groups_are_known():
    assert one_limit("AllowGroup admins\nDenyAll", Who(HERE, "alice", None)) == limits.EXPLICIT_ALLOW


def test_denyuser_and_denygroup_only_apply_once_known():
    assert one_limit("DenyUser alice\nDenyGroup staff", Who(HERE)) == limits.IMPLICIT_ALLOW
    assert one_limit("DenyUser alice", ALICE) == limits.EXPLICIT_DENY
    assert one_limit("DenyGroup staff", ALICE) == limits.EXPLICIT_DENY


def test_allowgroup_is_an_and_list_by_default():
    assert one_limit("AllowGroup staff,admins\nDenyAll", ALICE) == limits.EXPLICIT_DENY
    assert one_limit("AllowGroup staff,ftpusers\nDenyAll", ALICE) == limits.EXPLICIT_ALLOW
    assert one_limit("AllowGroup OR staff,admins\nDenyAll", ALICE) == limits.EXPLICIT_ALLOW


def test_allowuser_is_an_or_list_and_negation_works():
    assert one_limit("AllowUser bob alice\nDenyAll", ALICE) == limits.EXPLICIT_ALLOW
    assert one_limit("AllowUser AND !bob,!carol\nDenyAll", ALICE) == limits.EXPLICIT_ALLOW
    assert one_limit("AllowUser !alice\nDenyAll", ALICE) == limits.EXPLICIT_DENY


def test_regex_forms():
    assert one_limit("AllowUser regex ^al\nDenyAll", ALICE) == limits.EXPLICIT_ALLOW
    assert one_limit("DenyGroup regex ^ftp", ALICE) == limits.EXPLICIT_DENY


def test_several_lines_of_one_directive_are_ored():
    assert one_limit("AllowUser bob\nAllowUser alice\nDenyAll", ALICE) == limits.EXPLICIT_ALLOW


def test_class_rules_need_a_class():
    assert one_limit("DenyClass local", ALICE) == limits.IMPLICIT_ALLOW
    assert one_limit("DenyClass local", Who(HERE, conn_class="local")) == limits.EXPLICIT_DENY
    assert one_limit("AllowClass local\nDenyAll", Who(HERE, conn_class="local")) == limits.EXPLICIT_ALLOW


def test_allow_ip_lines_are_ored_and_all_first_ignores_the_rest():
    assert one_limit("Allow from 10.0.0.0/8\nAllow from 127.0.0.1\nDenyAll", Who(HERE)) == limits.EXPLICIT_ALLOW
    assert one_limit("Deny from all 10.0.0.1", Who(HERE)) == limits.EXPLICIT_DENY
    assert one_limit("Deny none", Who(HERE)) == limits.IMPLICIT_ALLOW


def test_negated_entries_must_all_hold_and_one_plain_entry_must_match():
    # proftpy's decision (docs/access.md): ProFTPD's documented rule, not its check_ip_negative sign bug
    line = "Deny from !10.1.2.3, 10.0.0.0/8"
    assert one_limit(line, Who(ClientAddr.plain("10.9.9.9"))) == limits.EXPLICIT_DENY
    assert one_limit(line, Who(THERE)) == limits.IMPLICIT_ALLOW
    assert one_limit("Deny from !10.1.2.3", Who(HERE)) == limits.IMPLICIT_ALLOW   # no plain entry: never


def test_filters_match_the_command_argument_only_for_commands():
    assert one_limit("DenyFilter \\.exe$", Who(HERE, arg="a.exe")) == limits.EXPLICIT_DENY
    assert one_limit("DenyFilter \\.exe$", Who(HERE, arg="a.txt")) == limits.IMPLICIT_ALLOW
    assert one_limit("AllowFilter ^ok\nDenyAll", Who(HERE, arg="ok.txt")) == limits.EXPLICIT_ALLOW
    assert one_limit("DenyFilter .", Who(HERE, arg=None)) == limits.IMPLICIT_ALLOW


def test_allow_rules_are_tried_in_order_and_the_first_one_decides():
    limit = conf("<Limit STOR>\nAllowAll\nAllow from 127.0.0.1\nAllowUser alice\n</Limit>\n").main.section.sections[0]
    result, rule = limits.check_limit(limit, ALICE)
    assert result == 1 and rule.name == "AllowUser"


@pytest.mark.parametrize("line", ["Allow from 10.0.0.1, all", "Deny from !all", "Allow", "Order allow",
                                  "AllowGroup regex (", "DenyAll now", "Allow from 10.0.0.300"])
def test_bad_lines_are_config_errors_with_the_place(line):
    with pytest.raises(ConfigError) as e:
        conf(f"<Limit STOR>\n{line}\n</Limit>\n")
    assert str(e.value).startswith("t.conf:2:")


# -- commands: raw -> group -> ALL, innermost first ----------------------------------------------------------------
def test_raw_command_limit_beats_group_limit():
    text = "<Limit STOR>\nAllowAll\n</Limit>\n<Limit WRITE>\nDenyAll\n</Limit>\n"
    assert command(text, ALICE).allowed
    assert not command(text, ALICE, cmd="DELE").allowed


def test_group_limit_beats_all():
    text = "<Limit ALL>\nDenyAll\n</Limit>\n<Limit READ>\nAllowAll\n</Limit>\n"
    assert command(text, ALICE, cmd="RETR", group="READ").allowed
    assert not command(text, ALICE, cmd="DELE").allowed


def test_all_applies_only_to_limited_commands():
    text = "<Limit ALL>\nDenyAll\n</Limit>\n"
    assert not command(text, ALICE, cmd="CWD", group="DIRS").allowed
    assert command(text, ALICE, cmd="PASV", group=None, limited=False).allowed


def test_raw_command_round_covers_every_set_before_the_group_round():
    # a raw-command limit at the server wins over a group limit in the <Directory>
    text = ("<Directory /srv/ftp>\n<Limit WRITE>\nDenyAll\n</Limit>\n</Directory>\n"
            "<Limit STOR>\nAllowAll\n</Limit>\n")
    assert command(text, ALICE).allowed


def test_innermost_directory_decides_first():
    text = ("<Directory /srv/ftp>\n<Limit STOR>\nDenyAll\n</Limit>\n</Directory>\n"
            "<Directory /srv/ftp/x>\n<Limit STOR>\nAllowAll\n</Limit>\n</Directory>\n"
            "<Limit STOR>\nDenyAll\n</Limit>\n")
    assert command(text, ALICE, path="/srv/ftp/x/f").allowed
    assert not command(text, ALICE, path="/srv/ftp/y").allowed


def test_implicit_allow_goes_on_to_the_parent():
    text = ("<Directory /srv/ftp>\n<Limit STOR>\nDenyUser bob\n</Limit>\n</Directory>\n"
            "<Limit STOR>\nDenyAll\n</Limit>\n")
    d = command(text, ALICE)
    assert not d.allowed and d.where.line == 7


def test_implicit_allow_goes_on_to_the_next_limit_in_the_same_set():
    text = "<Limit STOR>\nDenyUser bob\n</Limit>\n<Limit STOR>\nDenyUser alice\n</Limit>\n"
    assert not command(text, ALICE).allowed


def test_first_explicit_result_stops_the_last_limit_in_the_file_first():
    # ProFTPD inserts each <Limit> at the head of its set: the last one in the file is consulted first
    text = "<Limit STOR>\nAllowUser alice\n</Limit>\n<Limit STOR>\nDenyAll\n</Limit>\n"
    d = command(text, ALICE)
    assert not d.allowed and d.where.line == 5
    text = "<Limit STOR>\nDenyAll\n</Limit>\n<Limit STOR>\nAllowUser alice\n</Limit>\n"
    d = command(text, ALICE)
    assert d.allowed and d.where.line == 5


def test_implicit_deny_stops_too():
    text = "<Limit STOR>\nAllowAll\n</Limit>\n<Limit STOR>\nOrder deny,allow\nAllowUser bob\n</Limit>\n"
    assert not command(text, ALICE).allowed


def test_nothing_configured_is_allowed():
    d = command("", ALICE)
    assert d.allowed and d.where is None


def test_counterpart_commands_share_limits():
    text = "<Limit MKD>\nDenyAll\n</Limit>\n"
    assert not command(text, ALICE, cmd="XMKD").allowed


def test_ignore_hidden_answers_no_such_file():
    text = "<Limit RETR>\nIgnoreHidden on\n</Limit>\n"
    d = command(text, ALICE, cmd="RETR", group="READ", hidden=True)
    assert not d.allowed and d.hidden
    assert command(text, ALICE, cmd="RETR", group="READ", hidden=False).allowed


def test_anonymous_limits_come_before_the_server():
    config = conf("<Anonymous /srv/anon>\n<Limit STOR>\nDenyAll\n</Limit>\n</Anonymous>\n"
                  "<Limit STOR>\nAllowAll\n</Limit>\n")
    anon = config.main.anonymous()[0]
    ctx = config.main.context(anon, "/srv/anon/x")
    assert not limits.check_command(ctx.limits(), "STOR", "WRITE", True, ALICE).allowed


# -- LOGIN ---------------------------------------------------------------------------------------------------------
LOGIN_ANON = ("<Limit LOGIN>\nDeny from 10.0.0.0/8\n</Limit>\n"
              "<Anonymous /srv/anon>\nUser ftp\n<Limit LOGIN>\nAllowAll\n</Limit>\n</Anonymous>\n")


def test_login_at_connect_no_limits_is_allowed():
    assert limits.login_at_connect(conf("").main.section, Who(THERE)).allowed


def test_login_at_connect_implicit_allow_does_not_count_as_found():
    assert limits.login_at_connect(conf("<Limit LOGIN>\nDenyUser bob\n</Limit>\n").main.section, Who(THERE)).allowed


def test_login_at_connect_denied_network_is_rescued_by_anonymous():
    section = conf(LOGIN_ANON).main.section
    assert limits.login_at_connect(section, Who(THERE)).allowed
    only = conf("<Limit LOGIN>\nDeny from 10.0.0.0/8\n</Limit>\n").main.section
    d = limits.login_at_connect(only, Who(THERE))
    assert not d.allowed and d.where.line == 2


def test_login_at_connect_any_explicit_allow_wins():
    text = "<Limit LOGIN>\nDenyAll\n</Limit>\n<Limit LOGIN>\nAllow from 10.1.2.3\n</Limit>\n"
    assert limits.login_at_connect(conf(text).main.section, Who(THERE)).allowed


def test_login_at_pass_every_limit_must_not_deny():
    config = conf(LOGIN_ANON)
    assert not limits.login_at_pass(config.main.section, Who(THERE, "alice", ("staff",))).allowed
    assert limits.login_at_pass(config.main.anonymous()[0], Who(THERE, "ftp", ("ftp",))).allowed
    assert limits.login_at_pass(config.main.section, Who(HERE, "alice", ("staff",))).allowed


def test_login_allowuser_presence_at_connect_then_checked_at_pass():
    section = conf("<Limit LOGIN>\nAllowUser alice\nDenyAll\n</Limit>\n").main.section
    assert limits.login_at_connect(section, Who(THERE)).allowed
    assert limits.login_at_pass(section, Who(THERE, "alice", ())).allowed
    assert not limits.login_at_pass(section, Who(THERE, "bob", ())).allowed


def test_login_limits_ignore_filters():
    section = conf("<Limit LOGIN>\nDenyFilter .\n</Limit>\n").main.section
    assert limits.login_at_pass(section, Who(THERE, "alice", ())).allowed
