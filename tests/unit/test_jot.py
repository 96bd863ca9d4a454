"""LogFormat variables as ProFTPD's JSON members (log/jot.py): names, types, order, what is left out."""

from __future__ import annotations

from proftpy.bancache import json_text
from proftpy.log import jot
from proftpy.log.logformat import Record, compile_format


def rec(**kw) -> Record:
    base = dict(command="STOR", arg="x.txt", reply_code=226, reply_text="Transfer complete", remote_ip="10.0.0.7",
                user="alice", bytes=5, seconds=0.25, file_modified=True, now=1796646543.5, env={"FOO": "bar"},
                notes={"mod_auth.orig-user": "alice"})
    base.update(kw)
    return Record(**base)


def test_members_in_the_formats_order_with_proftpds_names_and_types():
    tokens = compile_format("%u %a said %m: %s %b bytes in %T s, %{file-modified} %{epoch} %{note:mod_auth.orig-user}"
                            " %{env:FOO} %{time:%Y}")
    assert jot.members(tokens, rec()) == [
        ("user", "alice"), ("remote_ip", "10.0.0.7"), ("command", "STOR"), ("response_code", 226),
        ("bytes_sent", 5), ("transfer_secs", 0.25), ("file_modified", True), ("epoch", 1796646543),
        ("NOTE:mod_auth.orig-user", "alice"), ("ENV:FOO", "bar"), ("%Y", "2026")]


def test_variables_without_a_value_and_transfer_speed_are_left_out():
    tokens = compile_format("%u %b %{transfer-speed} %A %f %T")
    assert jot.members(tokens, rec(user=None, bytes=None, seconds=None, xfer_speed="1.00KB/s")) == []


def test_the_json_text_is_compact_with_booleans():
    assert json_text([("a", True), ("b", 0.006), ("c", "x\"y"), ("d", {"e": [1, None]})]) == \
        '{"a":true,"b":0.006,"c":"x\\"y","d":{"e":[1,null]}}'


def test_a_key_with_variables():
    assert jot.text(compile_format("ftp:%u:%m"), rec(user=None)) == "ftp::STOR"
    assert jot.text(compile_format("ftp:%u"), rec()) == "ftp:alice"
