"""The pool's arithmetic (how many idle children to fork or end) and the hand-over message."""

import pytest

from proftpy.net.channel import decode, encode
from proftpy.prefork import HANDOVER, PoolSize, addresses, handover_message


def test_all_zero_is_no_pool():
    size = PoolSize()
    assert not size.enabled
    assert size.initial() == 0
    assert size.change(0, size.initial()) == 0


def test_start_fills_up_to_start_servers_then_keeps_min_spare():
    size = PoolSize(start=5, min_spare=2, max_spare=10)
    target = size.initial()
    assert target == 5
    assert size.change(0, target) == 5
    assert size.change(5, target) == 0
    for _ in range(3):                      # three children handed connections: not refilled above...
        target = size.taken(target)
    assert target == 2
    assert size.change(2, target) == 0
    target = size.taken(target)             # ...but never below MinSpareServers
    assert target == 2
    assert size.change(1, target) == 1


def test_a_dead_idle_child_is_replaced():
    size = PoolSize(start=3, min_spare=2, max_spare=4)
    assert size.change(2, size.initial()) == 1      # one died: the target did not move


def test_more_than_max_spare_are_ended():
    size = PoolSize(start=3, min_spare=1, max_spare=3)
    assert size.change(5, size.initial()) == -2
    assert size.change(4, 1) == -1


def test_max_spare_never_below_min_spare_and_start_never_above_the_ceiling():
    assert PoolSize(start=0, min_spare=4, max_spare=2).ceiling == 4
    assert PoolSize(start=8, min_spare=1, max_spare=3).initial() == 3
    assert PoolSize(start=0, min_spare=4, max_spare=2).change(0, 4) == 4


def test_unset_max_spare_is_the_larger_of_the_others():
    assert PoolSize(start=6, min_spare=2).ceiling == 6
    assert PoolSize(start=0, min_spare=3).initial() == 3
    assert PoolSize(start=4).initial() == 4 and PoolSize(start=4).change(3, 3) == 0   # drains, never refilled


def test_handover_message_round_trip():
    msg = decode(encode(handover_message(("10.0.0.1", 21), ("192.0.2.7", 40000), ("127.0.0.1", 21),
                                         ("127.0.0.1", 5555), {"TLV": "x"})))
    assert msg["type"] == HANDOVER
    assert addresses(msg) == (("10.0.0.1", 21), ("192.0.2.7", 40000), ("127.0.0.1", 21), ("127.0.0.1", 5555))


@pytest.mark.parametrize("field,value", [("local", ["1.2.3.4"]), ("remote", [1, 2]), ("sock_local", None),
                                         ("sock_remote", ["1.2.3.4", "21"]), ("notes", [])])
def test_malformed_handover_is_refused(field, value):
    msg = handover_message(("10.0.0.1", 21), ("192.0.2.7", 40000), ("127.0.0.1", 21), ("127.0.0.1", 5555), {})
    msg[field] = value
    with pytest.raises(ValueError):
        addresses(msg)
