"""The trace facility's pure parts: Trace/TraceOptions parsing, ProFTPD's line format, level filtering, and that
nothing is written (or formatted) when tracing is off."""

from __future__ import annotations

import os
import time

import pytest

from proftpy import trace
from proftpy.net.http import parse_head


@pytest.fixture
def log(tmp_path):
    (tmp_path / "trace.log").touch()
    yield lambda: (tmp_path / "trace.log").read_text()
    trace.configure({}, None, trace.Options(), debug=0)
    trace.connection(None)


def test_levels_and_ranges_as_proftpd_parses_them():
    assert trace.parse_levels("5") == (1, 5)
    assert trace.parse_levels("0") == (0, 0)
    assert trace.parse_levels("3-7") == (3, 7)
    for bad in ("", "x", "-1", "7-3", "1-x"):
        with pytest.raises(ValueError):
            trace.parse_levels(bad)
    assert trace.parse_spec(["DEFAULT:5", "command:7", "default:1"])[2] == ("DEFAULT", 1, 1)


def test_default_sets_every_channel_and_zero_turns_one_off():
    levels = trace.levels_of([("DEFAULT", 1, 5), ("command", 1, 9), ("dns", 0, 0)])
    assert levels["response"] == (1, 5) and levels["command"] == (1, 9) and "dns" not in levels
    assert set(levels) == set(trace.CHANNELS) - {"dns"}


def test_options_need_their_sign():
    opts = trace.parse_options(["+ConnIPs", "-TimestampMillis"])
    assert (opts.conn_ips, opts.timestamp, opts.millis) == (True, True, False)
    for bad in (["ConnIPs"], ["+Nope"], ["+"]):
        with pytest.raises(ValueError):
            trace.parse_options(bad)


def test_line_format_matches_proftpds(log, tmp_path):
    fd = os.open(tmp_path / "trace.log", os.O_WRONLY | os.O_APPEND)
    now = time.mktime((2024, 5, 1, 12, 0, 0, 0, 0, -1)) + 0.123
    trace.configure({"command": (1, 7)}, fd, trace.Options())
    assert trace.line("command", 7, "hi", now) == f"2024-05-01 12:00:00,123 [{os.getpid()}] <command:7>: hi\n"
    trace.configure({"command": (1, 7)}, fd, trace.Options(conn_ips=True, millis=False))
    trace.connection("192.0.2.7", "192.0.2.1", 21)
    assert trace.line("command", 7, "hi", now) == \
        f"2024-05-01 12:00:00 [{os.getpid()}] (client 192.0.2.7, server 192.0.2.1:21) <command:7>: hi\n"
    trace.configure({"command": (1, 7)}, fd, trace.Options(timestamp=False))
    trace.connection(None)
    assert trace.line("command", 7, "hi", now) == f"[{os.getpid()}] <command:7>: hi\n"
    os.close(fd)


def test_only_levels_in_range_are_written(log, tmp_path):
    fd = os.open(tmp_path / "trace.log", os.O_WRONLY | os.O_APPEND)
    trace.configure({"command": (3, 7)}, fd, trace.Options(timestamp=False))
    assert trace.on
    for level in (1, 3, 7, 8):
        trace.msg("command", level, "level %d", level)
    trace.msg("response", 1, "other channel")
    trace.msg("command", 5, "two\nlines")
    os.close(fd)
    assert [line.split(": ", 1)[1] for line in log().splitlines()] == ["level 3", "level 7", "two", "lines"]


def test_off_means_no_call_and_no_formatting():
    trace.configure({}, None, trace.Options(), debug=0)
    assert trace.on is False

    class Boom:
        def __str__(self):
            raise AssertionError("formatted while tracing is off")

    if trace.on: trace.msg("command", 1, "%s", Boom())   # noqa: E701 -- the call sites' shape


def test_a_traced_channel_without_a_tracelog_is_off():
    trace.configure({"command": (1, 10)}, None, trace.Options(), debug=0)
    assert trace.on is False


def test_http_request_heads():
    req = parse_head(b"GET /status.json?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eA==", "192.0.2.1")
    assert (req.method, req.path, req.query, req.headers["authorization"]) == \
        ("GET", "/status.json", {"x": ["1"]}, "Basic eA==")
    for bad in (b"\x16\x03\x01junk", b"GET /", b"GET / HTTP/1.1\r\nno colon", b"GET / SPDY/3"):
        assert parse_head(bad, "x") is None
