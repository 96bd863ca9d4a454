"""The pooled passive listener's switchboard (net/switchboard.py): keys (client IP, port), one reservation per
session, what ends a reservation."""

from __future__ import annotations

from proftpy.net.switchboard import Switchboard

PORTS = [50000, 50001, 50002, 50003]


def test_different_clients_share_port_numbers():
    board = Switchboard()
    a = board.reserve(101, ["10.0.0.1"], PORTS)
    b = board.reserve(102, ["10.0.0.2"], PORTS)
    assert a.port == b.port == 50000                  # keys hold the client address: no conflict
    assert board.take("10.0.0.2", 50000) is b
    assert board.take("10.0.0.1", 50000) is a


def test_one_client_exhausts_only_its_own_keys():
    board = Switchboard()
    got = [board.reserve(pid, ["10.0.0.1"], PORTS) for pid in range(200, 205)]
    assert [r.port for r in got[:4]] == PORTS and got[4] is None      # its 5th session: 425
    assert board.reserve(300, ["10.0.0.9"], PORTS).port == 50000       # another client: unaffected


def test_one_pending_reservation_per_session():
    board = Switchboard()
    first = board.reserve(101, ["10.0.0.1"], PORTS)
    second = board.reserve(101, ["10.0.0.1"], PORTS)
    assert len(board) == 1 and second.id != first.id
    assert board.lookup("10.0.0.1", first.port) is second     # the same port, free again, is the new one's
    assert not board.release(101, first.id)                    # a stale id changes nothing
    assert board.release(101, second.id) and len(board) == 0


def test_unreserved_connection_finds_nobody():
    board = Switchboard()
    board.reserve(101, ["10.0.0.1"], PORTS)
    assert board.take("10.0.0.2", 50000) is None              # another address: port stealing finds nothing
    assert board.take("10.0.0.1", 50001) is None              # another port
    assert len(board) == 1


def test_a_reservation_is_used_once():
    board = Switchboard()
    res = board.reserve(101, ["10.0.0.1"], PORTS)
    assert board.take("10.0.0.1", res.port) is res
    assert board.take("10.0.0.1", res.port) is None and len(board) == 0


def test_dead_session_is_scavenged():
    board = Switchboard()
    board.reserve(101, ["10.0.0.1"], PORTS)
    board.reserve(102, ["10.0.0.1"], PORTS)
    assert board.release_owner(101) is not None
    assert board.owners() == [102]
    assert board.reserve(103, ["10.0.0.1"], PORTS).port == 50000


def test_proxied_session_holds_the_port_under_both_addresses():
    """Behind a proxy the data connection may come from the proxy or (data ports open directly) from the client:
    the port is free only when free under both, and taken under either."""
    board = Switchboard()
    res = board.reserve(101, ["192.0.2.10", "127.0.0.1"], PORTS)
    assert board.reserve(102, ["127.0.0.1"], PORTS).port == 50001
    assert board.reserve(103, ["192.0.2.10"], PORTS).port == 50001
    assert board.take("127.0.0.1", res.port) is res
    assert board.lookup("192.0.2.10", res.port) is None


def test_reload_drops_reservations_of_closed_ports():
    board = Switchboard()
    a = board.reserve(101, ["10.0.0.1"], [50000])
    board.reserve(102, ["10.0.0.1"], [60000])
    assert board.release_ports([60000, 60001]) == [a]
    assert board.owners() == [102]
