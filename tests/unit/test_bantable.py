"""mod_ban's pure parts: the BanTable file (slots, generation, damaged slots, foreign files), BanOnEvent's
syntax with ProFTPD's error texts, and the Redis keys and JSON values byte for byte as ProFTPD writes them."""

from __future__ import annotations

import fcntl
import os
import struct

import pytest

from proftpy import bancache, bantable as bt
from proftpy.modules.ban import BanState, parse_rule, strtime


def table(tmp_path) -> bt.BanTable:
    return bt.BanTable.open_or_create(str(tmp_path / "ban.tab"))


def test_a_new_table_has_the_documented_size_and_no_bans(tmp_path):
    t = table(tmp_path)
    assert os.path.getsize(t.path) == bt.SIZE == 64 + 512 * bt.BAN.size + 512 * bt.EVENT.size
    assert t.bans()[1] == [] and t.events() == []


def test_bans_are_kept_in_slots_and_each_change_grows_the_generation(tmp_path):
    t = table(tmp_path)
    gen = t.generation()
    with t.locked(fcntl.LOCK_EX):
        assert t.add_ban(bt.Ban(bt.HOST, "10.0.0.7", 1, 0, "why", "go away", 5))
    gen2, bans = t.bans()
    assert gen2 == gen + 1
    assert bans == [bt.Ban(bt.HOST, "10.0.0.7", 1, 0, "why", "go away", 5, slot=0)]
    with t.locked(fcntl.LOCK_EX):
        t.clear_ban(0)
    assert t.bans() == (gen + 2, [])


def test_an_expired_bans_slot_is_reused(tmp_path):
    t = table(tmp_path)
    with t.locked(fcntl.LOCK_EX):
        t.add_ban(bt.Ban(bt.USER, "old", 0, 1))
        t.add_ban(bt.Ban(bt.USER, "new", 0, 0))
    assert [b.name for b in t.bans()[1]] == ["new"]


def test_a_ban_applies_to_its_server_or_to_every_server_with_sid_0():
    assert bt.Ban(bt.HOST, "h", 2, 0).applies(2, 100) and not bt.Ban(bt.HOST, "h", 2, 0).applies(1, 100)
    assert bt.Ban(bt.HOST, "h", 0, 0).applies(7, 100)
    assert not bt.Ban(bt.HOST, "h", 0, 50).applies(1, 100)


def test_a_damaged_slot_is_ignored_with_a_log_line(tmp_path, caplog):
    t = table(tmp_path)
    with t.locked(fcntl.LOCK_EX):
        t.add_ban(bt.Ban(bt.HOST, "1.2.3.4", 0, 0))
        t.add_ban(bt.Ban(bt.HOST, "5.6.7.8", 0, 0))
    os.pwrite(t.fd, b"X", bt.BANS_AT + 20)             # scribble in slot 0's name
    assert [b.name for b in t.bans()[1]] == ["5.6.7.8"]
    assert "damaged slot" in caplog.text


@pytest.mark.parametrize("content, why", [(b"", None), (b"garbage" * 50, "bad magic"),
                                          (bt.MAGIC + struct.pack("<I", 99) + bytes(200), "layout version 99")])
def test_a_foreign_or_corrupt_table_is_recreated(tmp_path, caplog, content, why):
    (tmp_path / "ban.tab").write_bytes(content)
    t = table(tmp_path)
    assert os.path.getsize(t.path) == bt.SIZE and t.bans()[1] == []
    if why:
        assert why in caplog.text and "recreating" in caplog.text


def test_a_valid_table_keeps_its_bans_when_reopened(tmp_path):
    t = table(tmp_path)
    with t.locked(fcntl.LOCK_EX):
        t.add_ban(bt.Ban(bt.CLASS, "bad", 0, 0))
    t.close()
    assert [b.name for b in table(tmp_path).bans()[1]] == ["bad"]


def test_remove_deletes_the_file(tmp_path):
    t = table(tmp_path)
    t.remove()
    assert not (tmp_path / "ban.tab").exists()


def test_a_symlinked_table_is_refused(tmp_path):
    (tmp_path / "real").write_bytes(b"")
    os.symlink(tmp_path / "real", tmp_path / "ban.tab")
    with pytest.raises(bt.BanTableError, match="symbolic link"):
        table(tmp_path)


def test_the_state_reads_the_table_only_when_its_generation_changed(tmp_path):
    t = table(tmp_path)
    state = BanState(table=t)
    assert state.find(bt.HOST, "1.1.1.1", 1) is None
    with t.locked(fcntl.LOCK_EX):
        t.add_ban(bt.Ban(bt.HOST, "1.1.1.1", 1, 0, message="m"))
    assert state.find(bt.HOST, "1.1.1.1", 1).message == "m"
    assert state.find(bt.HOST, "1.1.1.1", 2) is None


# -- BanOnEvent ------------------------------------------------------------------------------------------------
def test_a_rule_for_a_known_event():
    rule = parse_rule(["MaxLoginAttempts", "2/00:10:00", "01:00:00", "go away"])
    assert (rule.event.name, rule.listens, rule.count, rule.window, rule.lifetime, rule.message) == \
        ("MaxLoginAttempts", "mod_auth.max-login-attempts", 2, 600, 3600, "go away")
    assert rule.bans == bt.HOST
    assert parse_rule(["maxloginattemptsfromuser", "1/0:0:1", "0:0:1"]).bans == bt.USER_HOST


def test_any_other_name_is_a_user_defined_host_event():
    rule = parse_rule(["mod_auth.root-login", "1/00:00:10", "00:00:10"])
    assert rule.event is None and rule.listens == "mod_auth.root-login" and rule.bans == bt.HOST
    assert rule.label == "(user-defined)"


@pytest.mark.parametrize("args, message", [
    (["MaxLoginAttempts", "0/00:00:00", "00:00:05"], "freq occurrences must be greater than 0"),
    (["MaxLoginAttempts", "1/00:00:00", "00:00:05"], "freq parameter cannot be '00:00:00'"),
    (["MaxLoginAttempts", "3", "00:00:05"], "badly formatted freq parameter: '3'"),
    (["MaxLoginAttempts", "3/1:2", "00:00:05"], "badly formatted freq parameter: '3/1:2'"),
    (["MaxLoginAttempts", "x/00:01:00", "00:00:05"], "freq occurrences must be greater than 0"),
    (["MaxLoginAttempts", "1/00:01:00", "5m"], "badly formatted duration parameter: '5m'"),
    (["MaxLoginAttempts", "1/00:01:00", "00:00:00"], "duration parameter cannot be '00:00:00'"),
    (["MaxLoginAttempts", "1/00:01:00"], "missing parameters"),
    (["MaxLoginAttempts", "1/00:01:00", "00:00:05", "a", "b"], "too many parameters"),
])
def test_bad_rules_say_why(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(args)


def test_reasons_use_proftpds_time_format():
    import re
    assert re.fullmatch(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \d{4}", strtime(0))


# -- the Redis cache -------------------------------------------------------------------------------------------
def test_keys_are_proftpds_json_with_its_prefix_and_trailing_nul():
    assert bancache.ban_key(bt.HOST, "127.0.0.1") == b'mod_ban.{"ban_type_id":2,"ban_name":"127.0.0.1"}\0'
    assert bancache.ban_key(bt.USER_HOST, 'a"b\\c') == b'mod_ban.{"ban_type_id":4,"ban_name":"a\\"b\\\\c"}\0'


def test_values_are_proftpds_json_in_its_member_order():
    value = bancache.CachedBan("127.0.0.1", 2121, bt.HOST, "10.1.1.1", "MaxLoginAttempts autoban at x", "",
                               1700000000, 1, update_ts=1699999000).encode()
    assert value == (b'{"version":2,"update_ts":1699999000,"ip_addr":"127.0.0.1","port":2121,'
                     b'"ban_type":"host ban","ban_name":"10.1.1.1","ban_reason":"MaxLoginAttempts autoban at x",'
                     b'"ban_message":"","expires_ts":1700000000,"server_id":1}\0')
    assert bancache.decode(value).name == "10.1.1.1"


def test_control_characters_are_escaped_as_ccan_json_does():
    assert bancache.json_text([("m", "a\tb\x01c\x1fd\u00e9")]) == '{"m":"a\\tb\\u0001c\x1fd\u00e9"}'


@pytest.mark.parametrize("raw, why", [
    (b"not json\0", "not JSON"), (b"[1]\0", "not a JSON object"),
    (b'{"version":1}\0', "unsupported version"),
    (b'{"version":2,"update_ts":1,"ip_addr":"x","port":0,"ban_type":"host ban","ban_name":"n","ban_reason":"",'
     b'"ban_message":"","expires_ts":0,"server_id":1}', "invalid port"),
    (b'{"version":2,"update_ts":1,"ip_addr":"x","port":21,"ban_type":"bad ban","ban_name":"n","ban_reason":"",'
     b'"ban_message":"","expires_ts":0,"server_id":1}', "unknown ban_type"),
    (b'{"version":2,"update_ts":1,"ip_addr":"x","port":21,"ban_type":"host ban","ban_name":7,"ban_reason":"",'
     b'"ban_message":"","expires_ts":0,"server_id":1}', "non-text 'ban_name'"),
    (b'{"version":2,"update_ts":1,"ip_addr":"x","port":21,"ban_type":"host ban","ban_name":"n","ban_reason":"",'
     b'"ban_message":"","expires_ts":0,"server_id":0}', "invalid server ID"),
])
def test_values_that_are_not_proftpds_json_are_refused(raw, why):
    with pytest.raises(ValueError, match=why):
        bancache.decode(raw)


# -- mod_redis's directives ------------------------------------------------------------------------------------
from proftpy.modules.redis import parse_sentinel, parse_server  # noqa: E402


@pytest.mark.parametrize("args, expected", [
    (["10.0.0.5:6380"], dict(host="10.0.0.5", port=6380)),
    (["10.0.0.5"], dict(host="10.0.0.5", port=6379)),
    (["[::1]:6381"], dict(host="::1", port=6381)),
    (["[::1]"], dict(host="::1", port=6379)),
    (["/run/redis.sock"], dict(path="/run/redis.sock")),
    (["h:1", "user", "pw", "2"], dict(username="user", password="pw", db=2)),
    (["h:1", "", "", "3"], dict(username=None, password=None, db=3)),
    (["h:1", "ssl:on", "ssl-ca:/ca.pem"], dict(ssl=True, ssl_ca="/ca.pem")),
])
def test_redis_server_forms(args, expected):
    server = parse_server(args)
    for key, value in expected.items():
        assert getattr(server, key) == value


@pytest.mark.parametrize("args", [["h:port"], ["[::1"], ["h:1", "u", "p", "db"], ["h:1", "ssl-bogus:1"], []])
def test_bad_redis_servers(args):
    with pytest.raises(ValueError):
        parse_server(args)


def test_redis_sentinels_and_their_master():
    s = parse_sentinel(["10.0.0.6", "10.0.0.7:26380", "master", "mymaster"])
    assert s.addresses == (("10.0.0.6", 26379), ("10.0.0.7", 26380)) and s.master == "mymaster"
    assert parse_sentinel(["[::1]"]).master is None
