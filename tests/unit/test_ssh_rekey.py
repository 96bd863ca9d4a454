"""The server's own rekey requests in the SSH transport (over a socket pair, before any keys: packets in the clear),
and the parsing of SFTPRekey and SFTPClientAlive."""

from __future__ import annotations

import socket
import struct

import pytest

from proftpy.modules.sftp import REKEY_DEFAULT, _client_alive, _rekey
from proftpy.net.ssh.transport import MAX_HELD, Disconnect, Settings, Transport
from proftpy.net.ssh.wire import Writer


def _logged_in() -> tuple[Transport, socket.socket]:
    a, b = socket.socketpair()
    b.setblocking(False)
    t = Transport(a, Settings(), [], lambda: None, lambda line: None)
    t.session_id = b"\x01" * 32            # as after the first key exchange (the clear "none" sealer stays)
    t.user_ok = True
    return t, b


def _kinds(peer: socket.socket) -> list[int]:
    """The message numbers of the clear packets waiting at the peer."""
    try:
        data = peer.recv(1 << 20)
    except BlockingIOError:
        return []
    kinds = []
    while data:
        length = struct.unpack(">I", data[:4])[0]
        kinds.append(data[5])
        data = data[4 + length:]
    return kinds


def test_replies_wait_from_our_kexinit():
    t, peer = _logged_in()
    assert t.request_rekey()
    assert _kinds(peer) == [20] and t.holding and t.rekeying
    t.send(Writer().byte(94).u32(0).string(b"reply").bytes())         # CHANNEL_DATA: held back
    t.send(Writer().byte(2).string(b"").bytes())                      # IGNORE: goes out
    assert _kinds(peer) == [2]
    assert not t.request_rekey()                                      # one exchange at a time


def test_held_replies_are_bounded():
    t, _ = _logged_in()
    t.request_rekey()
    chunk = Writer().byte(94).u32(0).string(bytes(32768)).bytes()
    with pytest.raises(Disconnect) as e:
        for _ in range(MAX_HELD // len(chunk) + 2):
            t.send(chunk)
    assert e.value.reason == 3


def test_no_rekey_of_ours_before_login():
    t, peer = _logged_in()
    t.user_ok = False
    assert not t.request_rekey()
    assert _kinds(peer) == []


def test_bytes_sent_reach_the_limit():
    t, peer = _logged_in()
    t.rekey_size = 1000
    t.send(Writer().byte(94).u32(0).string(bytes(600)).bytes())
    assert _kinds(peer) == [94]
    t.send(Writer().byte(94).u32(0).string(bytes(600)).bytes())
    assert _kinds(peer) == [94, 20]                                   # the packet, then our KEXINIT


@pytest.mark.parametrize("args, value", [
    (["none"], None), (["NONE"], None), (["required"], REKEY_DEFAULT), (["required", "60"], (60, 2048 << 20, 0)),
    (["required", "60", "1"], (60, 1 << 20, 0)), (["required", "60", "0", "5"], (60, 0, 5)),
])
def test_rekey_settings(args, value):
    assert _rekey(args) == value


@pytest.mark.parametrize("args, error", [
    ([], "wrong number"), (["required", "1", "2", "3", "4"], "wrong number"), (["sometimes"], "'none' or 'required'"),
    (["required", "-5"], "interval '-5'"), (["required", "60", "1.5"], "rekey MB '1.5'"),
    (["required", "60", "1", "0"], "rekey timeout '0'"),
])
def test_rekey_errors(args, error):
    with pytest.raises(ValueError, match=error):
        _rekey(args)


def test_client_alive_settings():
    assert _client_alive(["3", "15"]) == (3, 15)
    assert _client_alive(["3", "0"]) is None                          # no interval: no checks, as ProFTPD
    for bad in (["3"], ["x", "1"], ["1", "-1"]):
        with pytest.raises(ValueError):
            _client_alive(bad)
