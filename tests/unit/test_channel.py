"""The master-child channel (net/channel.py): one JSON object per packet, descriptors passed with it, bad packets
refused without harm to the channel."""

import json
import os
import socket
import threading

import pytest

from proftpy.net.channel import (MAX_FDS, MAX_MESSAGE, BadMessage, Channel, ChannelBusy, ChannelClosed, answer,
                                 decode, encode)


@pytest.fixture
def pair():
    master, child = Channel.pair()
    yield master, child
    master.close()
    child.close()


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def test_a_message_and_a_descriptor_travel_both_ways(pair):
    master, child = pair
    r, w = os.pipe()
    child.send({"type": "test.fd", "n": 1}, [r])
    os.close(r)
    message, fds = master.recv()
    assert message == {"type": "test.fd", "n": 1} and len(fds) == 1
    os.write(w, b"through the channel")
    assert os.read(fds[0], 100) == b"through the channel"
    assert os.get_inheritable(fds[0]) is False          # received close-on-exec
    master.send({"type": "test.back"}, fds)
    os.close(fds[0])
    message, back = child.recv(timeout=1)
    assert message == {"type": "test.back"}
    os.close(w)
    assert os.read(back[0], 10) == b""
    os.close(back[0])


def test_nothing_waiting_is_none_and_a_closed_peer_is_the_end(pair):
    master, child = pair
    assert master.recv() is None
    assert master.recv(timeout=0.05) is None
    child.sock.close()
    with pytest.raises(ChannelClosed):
        master.recv()


@pytest.mark.parametrize("packet,why", [
    (b"not json", "not a JSON text"),
    (b"\xff\xfe{}", "not a JSON text"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"kind": "x"}', "not a JSON object"),
    (b'{"type": 7}', "not a JSON object"),
    (b"[" * 100000, "more than"),
    (b"[" * 60000, "not a JSON text"),                 # too deep for the parser: refused, not a RecursionError
])
def test_bad_packets_are_refused_and_the_channel_goes_on(pair, packet, why):
    master, child = pair
    child.sock.send(packet)
    child.send({"type": "test.after"})
    with pytest.raises(BadMessage, match=why):
        master.recv()
    assert master.recv()[0] == {"type": "test.after"}


def test_refused_packets_close_the_descriptors_they_brought(pair):
    master, child = pair
    before = open_fds()
    pipes = [os.pipe() for _ in range(MAX_FDS + 2)]
    ends = [r for r, _ in pipes]
    socket.send_fds(child.sock, [b'{"type": "test.many"}'], ends)
    socket.send_fds(child.sock, [b"garbage"], ends[:2])
    for r, w in pipes:
        os.close(r)
        os.close(w)
    with pytest.raises(BadMessage, match="descriptors"):
        master.recv()
    with pytest.raises(BadMessage, match="not a JSON text"):
        master.recv()
    assert open_fds() == before


def test_oversize_messages_are_refused_on_both_sides(pair):
    master, child = pair
    with pytest.raises(BadMessage, match="more than"):
        child.send({"type": "test.big", "data": "x" * MAX_MESSAGE})
    child.sock.send(json.dumps({"type": "test.big", "data": "x" * MAX_MESSAGE}).encode())
    with pytest.raises(BadMessage, match="more than"):
        master.recv()
    with pytest.raises(BadMessage):
        child.send({"no": "type"})
    with pytest.raises(BadMessage, match="not JSON"):
        child.send({"type": "test.set", "data": {1, 2}})
    assert master.recv() is None                        # nothing was sent


def test_encode_decode_round_trip():
    message = {"type": "mod_x.y", "text": "é \u2603", "n": [1, 2, None]}
    assert decode(encode(message)) == message
    assert answer({"type": "q", "id": 4}, {"type": "a"}) == {"type": "a", "re": 4}


def test_a_peer_that_does_not_read_makes_send_busy_not_blocking(pair):
    master, child = pair
    with pytest.raises(ChannelBusy):
        for _ in range(100000):
            master.send({"type": "test.flood", "pad": "x" * 1000})


def test_request_waits_for_its_answer_and_keeps_notices(pair):
    master, child = pair

    def serve():
        message, _ = master.recv(timeout=5)
        master.send({"type": "test.notice", "n": 1})
        master.send({"type": "test.answer", "re": message["id"] - 1})     # a stale answer: dropped
        master.sock.send(b"junk")                                          # refused, skipped
        master.send(answer(message, {"type": "test.answer", "echo": message["q"]}))

    t = threading.Thread(target=serve)
    t.start()
    got, fds = child.request({"type": "test.ask", "q": "hello"}, timeout=5)
    t.join()
    assert got == {"type": "test.answer", "echo": "hello", "re": 1} and fds == []
    assert [m for m, _ in child.queued] == [{"type": "test.notice", "n": 1}]


def test_request_gives_up_after_its_timeout(pair):
    master, child = pair
    with pytest.raises(ChannelBusy, match="no answer"):
        child.request({"type": "test.ask"}, timeout=0.1)
    assert master.recv()[0] == {"type": "test.ask", "id": 1}
    master.sock.close()
    with pytest.raises(ChannelClosed):
        child.request({"type": "test.ask"}, timeout=0.1)
