"""proftpy/net/radius.py (RADIUS packets, password hiding, authenticators) and mod_radius's pure parts (directive
parsing, `$(attribute-id:default)` forms, the Access-Accept's attributes over the configured values)."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading

import pytest

from proftpy.modules import radius as mod
from proftpy.modules import radius_directives as conf
from proftpy.modules.quotatab_radius import limit_of
from proftpy.net import radius as rad
from proftpy import quotatab as qt

# RFC 2865 7.1: user nemo, password arctangent, secret xyzzy5461
RFC_SECRET = b"xyzzy5461"
RFC_AUTH = bytes.fromhex("0f403f9473978057bd83d5cb98f4227a")
RFC_REQUEST = bytes.fromhex("010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f782a0a"
                            "ee0406c0a80110050600000003")
RFC_ACCEPT = bytes.fromhex("0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06c0a80103")


def test_password_hiding_rfc2865_vector():
    assert rad.hide_password(b"arctangent", RFC_SECRET, RFC_AUTH).hex() == "0dbe708d93d413ce3196e43f782a0aee"
    assert rad.unhide_password(bytes.fromhex("0dbe708d93d413ce3196e43f782a0aee"), RFC_SECRET, RFC_AUTH) == \
        b"arctangent"


@pytest.mark.parametrize("password", [b"", b"x", b"a" * 16, b"b" * 17, b"c" * 128, "pässwörd".encode()])
def test_password_hiding_lengths_and_round_trip(password):
    hidden = rad.hide_password(password, b"s3cret", RFC_AUTH)
    assert len(hidden) == max(16, -(-len(password) // 16) * 16)
    assert rad.unhide_password(hidden, b"s3cret", RFC_AUTH) == password
    # each block chains on the previous hidden block (RFC 2865 5.2)
    if len(password) > 16:
        key = hashlib.md5(b"s3cret" + hidden[:16]).digest()
        assert bytes(a ^ b for a, b in zip(hidden[16:32], key)) == (password + bytes(16))[16:32]


def test_password_longer_than_128_is_refused():
    with pytest.raises(rad.PacketError):
        rad.hide_password(b"x" * 129, b"s", RFC_AUTH)


def test_decode_encode_rfc_request():
    packet = rad.Packet.decode(RFC_REQUEST)
    assert (packet.code, packet.identifier, packet.authenticator) == (rad.ACCESS_REQUEST, 0, RFC_AUTH)
    assert packet.get(rad.USER_NAME) == b"nemo"
    assert rad.as_integer(packet.get(rad.NAS_PORT)) == 3
    assert packet.encode() == RFC_REQUEST


def test_response_authenticator_rfc_vector():
    request = rad.Packet.decode(RFC_REQUEST)
    answer = rad.check_answer(RFC_ACCEPT, request, RFC_SECRET)
    assert answer.code == rad.ACCESS_ACCEPT
    assert rad.as_integer(answer.get(rad.SERVICE_TYPE)) == 1
    with pytest.raises(rad.BadAnswer, match="mismatched digests"):
        rad.check_answer(RFC_ACCEPT, request, b"wrong-secret")
    other = rad.Packet(request.code, 7, request.authenticator)
    with pytest.raises(rad.BadAnswer, match="does not match the request packet ID"):
        rad.check_answer(RFC_ACCEPT, other, RFC_SECRET)


@pytest.mark.parametrize("data", [b"", b"\x02\x00\x00", RFC_ACCEPT[:-1], RFC_ACCEPT[:4] + b"\x00" * 16 + b"\x01\x01",
                                  b"\x02\x00\x00\x13" + bytes(16), b"\x02\x00\x10\x01" + bytes(16),
                                  RFC_ACCEPT[:20] + b"\x06\x00" + RFC_ACCEPT[22:]])
def test_decode_refuses_broken_packets(data):
    with pytest.raises(rad.PacketError):
        rad.Packet.decode(data)


def test_decode_ignores_padding_past_length():
    assert rad.Packet.decode(RFC_ACCEPT + b"\0\0\0").encode() == RFC_ACCEPT


def test_encode_refuses_long_values():
    with pytest.raises(rad.PacketError):
        rad.Packet(1, 1, bytes(16), [(rad.USER_NAME, b"x" * 254)]).encode()
    with pytest.raises(rad.PacketError):
        rad.Packet(1, 1, bytes(16), [(rad.CLASS, b"x" * 250)] * 17).encode()


def test_access_request_layout_and_message_authenticator():
    raw, packet = rad.access_request(42, b"secret", [(rad.USER_NAME, b"alice"), (rad.NAS_PORT, rad.integer(21))],
                                     b"pw", authenticator=RFC_AUTH)
    decoded = rad.Packet.decode(raw)
    assert [t for t, _ in decoded.attributes] == [rad.USER_NAME, rad.USER_PASSWORD, rad.NAS_PORT,
                                                  rad.MESSAGE_AUTHENTICATOR]
    assert rad.unhide_password(decoded.get(rad.USER_PASSWORD), b"secret", RFC_AUTH) == b"pw"
    mac = decoded.get(rad.MESSAGE_AUTHENTICATOR)
    assert mac == hmac.new(b"secret", raw[:-16] + bytes(16), hashlib.md5).digest()
    assert packet.identifier == 42 and packet.authenticator == RFC_AUTH


def test_accounting_request_authenticator():
    raw, packet = rad.accounting_request(9, b"secret", [(rad.ACCT_STATUS_TYPE, rad.integer(rad.STATUS_START))])
    assert packet.authenticator == hashlib.md5(raw[:4] + bytes(16) + raw[20:] + b"secret").digest()
    assert raw[4:20] == packet.authenticator


def _answer(request, code, secret, mac, attrs=()):
    attrs = list(attrs) + ([(rad.MESSAGE_AUTHENTICATOR, bytes(16))] if mac != "none" else [])
    raw = rad.Packet(code, request.identifier, bytes(16), attrs).encode()
    if mac == "good":
        raw = rad.sign_message_authenticator(raw, secret, request.authenticator)
    elif mac == "bad":
        raw = raw[:-16] + b"\x05" * 16
    return raw[:4] + rad.response_authenticator(raw, request.authenticator, secret) + raw[20:]


def test_answer_message_authenticator_checks():
    _, request = rad.access_request(3, b"k", [(rad.USER_NAME, b"u")], b"p")
    reply = [(rad.REPLY_MESSAGE, b"hi")]
    assert rad.check_answer(_answer(request, rad.ACCESS_ACCEPT, b"k", "good", reply), request, b"k",
                            require_mac=True).get(rad.REPLY_MESSAGE) == b"hi"
    assert rad.check_answer(_answer(request, rad.ACCESS_REJECT, b"k", "none"), request, b"k").code == 3
    with pytest.raises(rad.BadMac, match="lacks the Message-Authenticator"):
        rad.check_answer(_answer(request, rad.ACCESS_ACCEPT, b"k", "none"), request, b"k", require_mac=True)
    with pytest.raises(rad.BadMac, match="mismatched MACs"):
        rad.check_answer(_answer(request, rad.ACCESS_ACCEPT, b"k", "bad", reply), request, b"k")


def test_vendor_specific_attributes():
    packet = rad.Packet(2, 1, bytes(16), [
        (rad.VENDOR_SPECIFIC, rad.vendor_specific(9, 10, b"other vendor")),
        (rad.VENDOR_SPECIFIC, (4).to_bytes(4, "big") + b"\x0b\x06" + rad.integer(77) + b"\x0c\x06/srv"),
        (rad.VENDOR_SPECIFIC, b"\x00\x00"),
    ])
    assert packet.vendor(4, 11) == rad.integer(77)
    assert packet.vendor(4, 12) == b"/srv"          # a second sub-attribute of the same Vendor-Specific
    assert packet.vendor(4, 10) is None and packet.vendor(9, 10) == b"other vendor"


def test_nas_address():
    assert rad.nas_address("127.0.0.1") == (rad.NAS_IP_ADDRESS, b"\x7f\x00\x00\x01")
    assert rad.nas_address("::ffff:10.0.0.2") == (rad.NAS_IP_ADDRESS, b"\x0a\x00\x00\x02")
    assert rad.nas_address("::1")[0] == rad.NAS_IPV6_ADDRESS
    assert rad.nas_address("nonsense") is None


def test_exchange_waits_past_forged_answers_and_fails_fast_on_closed_port():
    """A datagram that fails the checks is discarded and the real answer still counts; a closed port fails at once
    (ECONNREFUSED on the connected socket), not after the timeout."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    raw, request = rad.access_request(11, b"k", [(rad.USER_NAME, b"u")], b"p")

    def serve():
        data, peer = server.recvfrom(4096)
        req = rad.Packet.decode(data)
        server.sendto(_answer(req, rad.ACCESS_ACCEPT, b"wrong", "none"), peer)      # forged: wrong secret
        server.sendto(_answer(req, rad.ACCESS_ACCEPT, b"k", "none"), peer)
    thread = threading.Thread(target=serve)
    thread.start()
    discarded = []
    answer = rad.Exchange("127.0.0.1", server.getsockname()[1], 3).run(
        raw, lambda d: rad.check_answer(d, request, b"k"), discarded.append)
    thread.join()
    server.close()
    assert answer.code == rad.ACCESS_ACCEPT and len(discarded) == 1
    port = _closed_port()
    with pytest.raises(ConnectionRefusedError):
        rad.Exchange("127.0.0.1", port, 5).run(raw, lambda d: rad.check_answer(d, request, b"k"), discarded.append)
    with pytest.raises(TimeoutError):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            rad.Exchange("127.0.0.1", silent.getsockname()[1], 0.2).run(raw, lambda d: request, discarded.append)
        finally:
            silent.close()


def _closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- mod_radius's directives and attribute handling ----------------------------------------------------------------
def test_server_directive():
    server = conf._server(1812)(["127.0.0.1:18120", "s3cret", "5"])
    assert (server.address, server.port, server.secret, server.timeout) == ("127.0.0.1", 18120, b"s3cret", 5)
    assert conf._server(1813)(["localhost", "x"]).port == 1813 and conf._server(1813)(["localhost", "x"]).timeout == 10
    assert conf._server(1812)(["127.0.0.1", "x", "00:01:30"]).timeout == 90
    assert conf._server(1812)(["127.0.0.1", "x", "2m"]).timeout == 120
    for args, message in ((["127.0.0.1:99", "x"], "greater than 1023"), (["127.0.0.1"], "missing parameters"),
                          (["no-such-host.invalid", "x"], "unable to resolve"), (["127.0.0.1", "x", "soon"], "timeout"),
                          (["::1:1812", "x"], "IPv6"), (["127.0.0.1", ""], "must not be empty")):
        with pytest.raises(ValueError, match=message):
            conf._server(1812)(args)


def test_vars():
    assert conf.is_var("$(10:1000)") and conf.parse_var("$(10:1000)") == conf.Var(10, "1000")
    assert conf.parse_var("$(12:/home/ftp)") == conf.Var(12, "/home/ftp")
    assert not conf.is_var("$(1:/)")             # shorter than 7 characters (ProFTPD's radius_have_var)
    assert not conf.is_var("$(0:1000)") and not conf.is_var("$(x:1000)") and not conf.is_var("1000")


def test_user_info_directive():
    assert conf._user_info(["1000", "$(11:100)", "/home/x", "/bin/sh"])[1] == conf.Var(11, "100")
    for args, message in ((["x", "1", "/h", "/s"], "UID"), (["1", "x", "/h", "/s"], "GID"),
                          (["1", "1", "h", "/s"], "home relative"), (["1", "1", "/h", "s"], "shell relative"),
                          (["1", "1", "/h"], "wrong number")):
        with pytest.raises(ValueError, match=message):
            conf._user_info(args)


def test_group_and_quota_directives():
    assert conf._group_info(["ftp", "a,b", "10,11"]) == ("ftp", ["a", "b"], [10, 11])
    assert conf.split_list('a, b c,"d e"') == ["a", "b", "c", "d e"]
    with pytest.raises(ValueError, match="mismatched"):
        conf._group_info(["ftp", "a,b", "10"])
    with pytest.raises(ValueError, match="badly formatted group IDs"):
        conf._group_info(["ftp", "a", "x"])
    assert conf._quota_info(["false", "soft", "3.0", "2", "1", "7", "8", "$(18:9)"])[7] == conf.Var(18, "9")
    for i, bad in ((0, "maybe"), (1, "firm"), (2, "-1"), (3, "lots"), (5, "1.5")):
        args = ["false", "soft", "3.0", "2", "1", "7", "8", "9"]
        args[i] = bad
        with pytest.raises(ValueError):
            conf._quota_info(args)


def test_vendor_directive():
    assert conf._vendor(["Acme", "9048"]) == ("Acme", 9048)
    with pytest.raises(ValueError, match="not a valid number"):
        conf._vendor(["Acme", "x"])


def _settings(**kw) -> conf.Settings:
    base = dict(engine=True, auth_servers=(conf.RadiusServer("h", "127.0.0.1", 1812, b"s", 1),), acct_servers=(),
                nas_identifier=None, realm=None, options=frozenset(), user_info=None, group_info=None,
                quota_info=None, vendor=("Unix", 4), log_path=None, allow_log_symlinks=False)
    return conf.Settings(**(base | kw))


def test_configured_info_and_the_answer_over_it():
    lines: list[str] = []
    st = _settings(user_info=conf._user_info(["$(10:2000)", "$(11:2000)", "$(12:/home/ftp)", "/bin/sh"]),
                   group_info=conf._group_info(["$(13:ftp)", "$(14:a)", "$(15:3000)"]))
    info = mod.configured_info(st, lines.append)
    assert lines == [] and (info.user.uid, info.user.home) == (2000, "/home/ftp")
    vsa = lambda kind, data: (rad.VENDOR_SPECIFIC, rad.vendor_specific(4, kind, data))   # noqa: E731
    answer = rad.Packet(2, 1, bytes(16), [vsa(10, rad.integer(2301)), vsa(11, rad.integer(0xFFFFFFFF)),
                                          vsa(12, b"relative"), vsa(14, b"x,y"), vsa(15, b"1,2")])
    mod.apply_answer(info, answer, st.vendor, lines.append)
    assert (info.user.uid, info.user.gid, info.user.home) == (2301, 2000, "/home/ftp")
    assert (info.groups.primary, info.groups.names, info.groups.gids) == ("ftp", ["x", "y"], [1, 2])
    assert any("illegal group ID: -1" in line for line in lines)
    assert any("illegal home: 'relative'" in line for line in lines)


def test_configured_info_ignores_bad_defaults_and_needs_an_auth_server():
    lines: list[str] = []
    info = mod.configured_info(_settings(user_info=conf._user_info(["$(10:x)", "1", "/h", "/s"])), lines.append)
    assert info.user is None and "error with RadiusUserInfo parameters, ignoring them" in lines
    assert mod.configured_info(_settings(auth_servers=(), user_info=conf._user_info(["1", "1", "/h", "/s"])),
                               lines.append).user is None


def test_reply_messages_are_lines():
    answer = rad.Packet(2, 1, bytes(16), [(rad.REPLY_MESSAGE, b"one\r\ntwo"), (rad.REPLY_MESSAGE, b"x\x07y\0cut")])
    assert mod._reply_messages(answer) == ["one", "two", "xy"]


def test_quota_limit_from_radius_values():
    limit = limit_of(["alice", "true", "hard", "3.5", "2", "1", "7", "8", "9"], print)
    assert (limit.name, limit.per_session, limit.limit_type, limit.bytes_in, limit.files_xfer) == \
        ("alice", True, qt.HARD, 3.5, 9)


def test_terminate_causes():
    class S:
        end_reason = ""
    s = S()
    for reason, cause in (("", rad.CAUSE_USER_REQUEST), ("disconnected", rad.CAUSE_LOST_SERVICE),
                          ("core.timeout-idle", rad.CAUSE_IDLE_TIMEOUT), ("core.timeout-session",
                          rad.CAUSE_SESSION_TIMEOUT), ("terminated by signal", rad.CAUSE_ADMIN_RESET),
                          ("server shutting down", rad.CAUSE_ADMIN_REBOOT),
                          ("core.timeout-no-transfer", rad.CAUSE_SERVICE_UNAVAILABLE)):
        s.end_reason = reason
        assert mod.terminate_cause(s) == cause, reason
