"""mod_wrap2_redis's source info: `/list|set:clients-key[/list|set:options-key]`, checked when the configuration
loads."""

from __future__ import annotations

import pytest

from proftpy.modules import wrap2_redis


def test_keys_keep_their_kind():
    assert wrap2_redis._keys("/list:wrap.allow.%{name}") == ("list:wrap.allow.%{name}",)
    assert wrap2_redis._keys("/SET:deny/list:opts") == ("SET:deny", "list:opts")


@pytest.mark.parametrize("info, message", [
    ("list:a", "badly formatted source info"),
    ("/", "badly formatted source info"),
    ("/hash:a", "client key 'hash:a' lacks required 'list:' or 'set:' prefix"),
    ("/list:", "client key 'list:' lacks"),
    ("/list:a/b", "option key 'b' lacks"),
])
def test_bad_source_info_is_refused(info, message):
    with pytest.raises(ValueError, match=message):
        wrap2_redis._keys(info)
