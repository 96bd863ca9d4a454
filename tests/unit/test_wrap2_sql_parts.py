"""mod_wrap2_sql's pure parts: its table specification and the client patterns in a query's values."""

from __future__ import annotations

import pytest

from proftpy.modules import wrap2
from proftpy.modules.wrap2_sql import _names, clients


def test_values_split_at_commas_and_blanks():
    assert clients(["127.0.0.2, 127.0.0.3", None, ".example.com\tALL EXCEPT 10.0.0.1", "", "a,,b"]) == \
        ("127.0.0.2", "127.0.0.3", ".example.com", "ALL", "EXCEPT", "10.0.0.1", "a", "b")


def test_specification_names_one_or_two_queries():
    assert _names("/clients") == ("clients",)
    assert _names("/clients/options") == ("clients", "options")
    for info in ("clients", "/", "//options", "/clients/"):
        with pytest.raises(ValueError, match="badly formatted source info"):
            _names(info)


def test_sql_tables_are_not_read_at_accept():
    assert wrap2.source("sql:/allowed") == "sql:/allowed"
    assert [wrap2.SOURCES[k].at_accept for k in ("file", "builtin", "sql")] == [True, True, False]
