"""bancache's pure parts: RedisSentinel without `master NAME` picks the first master the sentinels know."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from proftpy.bancache import CacheDown, _first_master


def sentinel(*answers):
    """Sentinels answering `sentinel_masters()` in turn: a dict of masters, or an exception to raise."""
    def node(answer):
        def masters():
            if isinstance(answer, Exception):
                raise answer
            return answer
        return SimpleNamespace(sentinel_masters=masters)
    return SimpleNamespace(sentinels=[node(a) for a in answers])


def test_the_first_master_a_sentinel_names_in_order():
    assert _first_master(sentinel(ConnectionError("down"), {}, {"beta": {}, "alpha": {}})) == "alpha"


def test_no_master_known_is_the_cache_down():
    with pytest.raises(CacheDown, match="no Redis master known"):
        _first_master(sentinel(ConnectionError("down"), {}))
