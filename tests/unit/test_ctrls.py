"""The pure parts of the control protocol: framing, ACL rules (ProFTPD's: deny by default, last rule per action
and kind wins, user or group may permit), and the action table other modules (mod_ban) add to."""

from __future__ import annotations


import pytest

from proftpy import ctrls
from proftpy.ctrls import AclRule, ActionAcl, CtrlsError, Peer, Response


def peer(user="alice", groups=("staff",)):
    return Peer(pid=1, uid=1000, gid=1000, user=user, groups=frozenset(groups))


def test_request_and_response_roundtrip():
    raw = ctrls.encode_request(["kick", "user", "ålice"])
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert ctrls.decode_request(raw[:-1]) == ["kick", "user", "ålice"]
    resp = Response(0, ["kicked user 'ålice'"])
    assert ctrls.decode_response(resp.encode()[:-1]) == resp


@pytest.mark.parametrize("raw, message", [
    (b"not json", "malformed message"),
    (b"[1, 2]", "not an object"),
    (b'{"version": 2, "argv": ["status"]}', "unsupported protocol version 2"),
    (b'{"version": 1, "argv": []}', "non-empty list"),
    (b'{"version": 1, "argv": ["a", 3]}', "non-empty list"),
    (b"\xff\xfe", "malformed message"),
])
def test_bad_requests_are_refused_clearly(raw, message):
    with pytest.raises(CtrlsError, match=message):
        ctrls.decode_request(raw)


def test_line_buffer_waits_for_newline_and_caps_size():
    buf = ctrls.LineBuffer()
    assert buf.feed(b'{"a":') is None
    assert buf.feed(b' 1}\nrest') == b'{"a": 1}'
    with pytest.raises(CtrlsError, match="too long"):
        ctrls.LineBuffer().feed(b"x" * (ctrls.MAX_MESSAGE + 1))


def test_acl_parsing_errors():
    for words in (["all", "allow", "user"], ["all", "permit", "user", "x"], ["all", "allow", "uid", "x"],
                  ["", "allow", "user", "x"], ["all", "allow", "user", ","]):
        with pytest.raises(ValueError):
            ActionAcl.parse(words)


def test_actions_are_denied_without_acl_and_allowed_by_user_or_group():
    assert not ctrls.action_allowed([], "status", peer())
    by_user = [ActionAcl.parse(["status,kick", "allow", "user", "alice,bob"])]
    assert ctrls.action_allowed(by_user, "status", peer())
    assert not ctrls.action_allowed(by_user, "restart", peer())
    assert not ctrls.action_allowed(by_user, "status", peer("carol"))
    by_group = by_user + [ActionAcl.parse(["all", "allow", "group", "staff"])]
    assert ctrls.action_allowed(by_group, "restart", peer("carol"))
    assert not ctrls.action_allowed(by_group, "restart", peer("carol", ("users",)))


def test_last_rule_for_an_action_wins_and_deny_lists_exclude():
    acls = [ActionAcl.parse(["all", "allow", "user", "*"]), ActionAcl.parse(["kick", "deny", "user", "mallory"])]
    assert ctrls.action_allowed(acls, "kick", peer("alice"))
    assert not ctrls.action_allowed(acls, "kick", peer("mallory"))
    assert ctrls.action_allowed(acls, "status", peer("mallory"))


def test_socket_acl_allows_everyone_by_default():
    assert ctrls.socket_allowed([], peer())
    rules = [AclRule.parse(["deny", "user", "mallory"])]
    assert ctrls.socket_allowed(rules, peer()) and not ctrls.socket_allowed(rules, peer("mallory"))


def test_other_modules_register_actions_with_their_own_acl_directive():
    """What mod_ban will do: a `ctrls_actions` table whose rows name BanControlsACLs."""
    def ban(master, req):
        if req.args[:1] == ["info"]:
            return ["No bans"]
        return f"{req.args[0]} {req.args[1]} banned"
    from proftpy import modules
    from proftpy.module import Module, ModuleSet
    fake = Module("mod_ban.c", ctrls_actions=(
        ctrls.Action("ban", ban, acl="BanControlsACLs", engine="BanEngine"),
        ctrls.Action("permit", lambda m, r: "permitted", acl="BanControlsACLs")))
    table = ModuleSet(modules.MODULES + [fake]).actions
    assert table["ban"].module == "mod_ban.c" and table["ban"].acl == "BanControlsACLs"
    req = ctrls.CtrlsRequest("ban", ["info"], peer())
    assert ctrls.as_response(table["ban"].handler(None, req)) == Response(0, ["No bans"])
    req = ctrls.CtrlsRequest("ban", ["user", "eve"], peer())
    assert ctrls.as_response(table["ban"].handler(None, req)).lines == ["user eve banned"]


def test_the_built_in_action_table():
    from proftpy import modules
    table = modules.loaded().actions
    assert {"status", "kick", "restart", "shutdown", "debug", "trace", "help", "lsctrl"} <= set(table)
    assert table["kick"].acl == "AdminControlsACLs" and table["help"].acl == "ControlsACLs"
    reg = modules.registry()
    for action in table.values():          # every ACL/engine directive an action names is declared
        assert reg.get(action.acl) is not None
        assert action.engine is None or reg.get(action.engine) is not None


def test_peer_from_ids_resolves_names():
    p = Peer.from_ids(1, 0, 0)
    assert p.user == "root" and "root" in p.groups
    unknown = Peer.from_ids(1, 4_000_000, 4_000_000)
    assert unknown.user == "4000000" and unknown.groups == frozenset({"4000000"})
