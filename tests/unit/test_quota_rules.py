"""mod_quotatab's pure parts: its directives' arguments and the words its replies use for amounts."""

from __future__ import annotations

import pytest

from proftpy import quotatab as qt
from proftpy.modules import quotatab as mod


def test_table_source_is_file_with_a_path():
    limit = mod._table("limit")
    assert limit(["file:/var/ftpd/limit.tab"])[1] == "/var/ftpd/limit.tab"
    assert limit(["file:limit.tab"])[1] == "/limit.tab"          # relative to /, where ProFTPD's daemon runs
    for words, message in ((["ldap2:/get"], "unsupported table source type: 'ldap2'"),
                           (["/var/x"], "badly formatted parameter"), (["file:"], "needs the table's path"),
                           (["file:/a", "b"], "wrong number")):
        with pytest.raises(ValueError, match=message):
            limit(words)


def test_sql_source_names_its_queries():
    source, names = mod._table("tally")(["sql:/get-tally/update-tally/insert-tally"])
    assert (source.kind, names) == ("sql", ("get-tally", "update-tally", "insert-tally"))
    assert mod._table("limit")(["sql:/get-limit"])[1] == ("get-limit",)
    for kind, word in (("limit", "sql:get-limit"), ("limit", "sql:/"), ("tally", "sql:/get/update"),
                       ("tally", "sql:/get//insert"), ("tally", "sql:/get/update/")):
        with pytest.raises(ValueError, match="badly formatted source info"):
            mod._table(kind)([word])


def test_quota_default_makes_a_nameless_limit():
    limit = mod._default("Group on SOFT 1e6 0 -1 3 0 0".split())
    assert limit == qt.Limit("", qt.GROUP, True, qt.SOFT, 1e6, 0.0, -1.0, 3, 0, 0)
    for words, message in (("people on hard 1 1 1 1 1 1", "unknown quota type 'people'"),
                           ("user perhaps hard 1 1 1 1 1 1", "per-session"),
                           ("user on firm 1 1 1 1 1 1", "'soft' or 'hard'"),
                           ("user on hard nan 1 1 1 1 1", "out of range"),
                           ("user on hard 1 1 1 1.5 1 1", "not a number"),
                           ("user on hard 1 1 1 4294967296 1 1", "out of range"),
                           ("user on hard 1 1 1 1 1", "wrong number")):
        with pytest.raises(ValueError, match=message):
            mod._default(words.split())


def test_exclude_filter_is_a_regex_or_none():
    assert mod._exclude(["none"]) is None
    assert mod._exclude([r"\.tmp$"]).search("/a/b.tmp")
    with pytest.raises(ValueError, match="failed regex compilation"):
        mod._exclude(["("])


@pytest.mark.parametrize("units, used, avail, words", [
    ("b", 34, 50, "34.00 of 50.00 upload bytes"),
    ("b", 0, 1, "0.00 of 1.00 upload byte"),
    ("kb", 1536, 2048, "1.50 of 2.00 upload Kb"),
    ("gb", 1 << 30, 3 << 30, "1.00 of 3.00 upload Gb"),
])
def test_amounts_in_refusals_and_notices(units, used, avail, words):
    st = mod.QuotaState(units=units)
    assert mod._shown_bytes(st, used, avail, mod.IN) == words


def test_files_and_site_quota_lines():
    assert mod._shown_files(1, 1, mod.IN) == "1 of 1 upload file"
    assert mod._shown_files(3, 2, mod.XFER) == "3 of 2 transfer files"
    st = mod.QuotaState(units="b")
    assert mod._site_bytes(st, 1, 10, mod.IN) == "bytes:\t1.00/10.00"
    assert mod._site_bytes(st, 1, 0, mod.IN) == "bytes:\tunlimited"
    st.units = "mb"
    assert mod._site_bytes(st, 1 << 20, 2 << 20, mod.IN) == "Mb:\t\t1.00/2.00"     # the upload line has two tabs
    assert mod._site_bytes(st, 1 << 20, 2 << 20, mod.OUT) == "Mb:\t1.00/2.00"


def test_used_up_looks_at_its_direction_then_at_transfers():
    st = mod.QuotaState(limit=qt.Limit("u", bytes_in=10, bytes_xfer=100, files_out=2),
                        tally=qt.Tally("u", bytes_in=5, bytes_xfer=100, files_out=2))
    assert mod._bytes_used_up(st, mod.IN) == "100.00 of 100.00 transfer bytes"
    st.tally.bytes_in = 10
    assert mod._bytes_used_up(st, mod.IN) == "10.00 of 10.00 upload bytes"
    assert mod._files_used_up(st, mod.OUT) == "2 of 2 download files"
    assert mod._files_used_up(st, mod.IN) is None


def test_ldap_ftpquota_value_layout():
    """mod_quotatab_ldap's record: name, then the eight ftpQuota fields; `true`/`hard` only as written."""
    from proftpy.modules.quotatab_ldap import limit_of
    limit = limit_of(["kim", "false", "hard", "1048576.5", "0", "12abc", "3", "0", "x"])
    assert (limit.name, limit.quota_type, limit.per_session, limit.limit_type) == ("kim", qt.USER, False, qt.HARD)
    assert (limit.bytes_in, limit.bytes_xfer, limit.files_in, limit.files_xfer) == (1048576.5, 12.0, 3, 0)
    assert limit_of(["kim", "TRUE", "Soft", "0", "0", "0", "0", "0", "0"]).per_session is True
    assert limit_of(["kim", "yes", "firm", "0", "0", "0", "0", "0", "0"]).limit_type == qt.SOFT
