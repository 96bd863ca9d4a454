"""mod_log_forensic's pure parts: the directives' parsing, the block, the bounded buffer."""

from __future__ import annotations

import logging

import pytest

from proftpy import log as systemlog
from proftpy.modules import log_forensic as lf


def test_criteria_and_capture_words_are_case_insensitive_and_checked():
    assert lf.parse_criteria(["failedlogin", "MODULECONFIG"]) == {lf.FAILED_LOGIN, lf.MODULE_CONFIG}
    assert lf.parse_capture(["systemlog", "Unknown", "tracelog"]) == {"SystemLog", "Unspec", "TraceLog"}
    with pytest.raises(ValueError, match="unknown criterion: Crash"):
        lf.parse_criteria(["FailedLogin", "Crash"])
    with pytest.raises(ValueError, match="unknown log type: WTMP"):
        lf.parse_capture(["WTMP"])
    with pytest.raises(ValueError, match="wrong number of parameters"):
        lf.parse_criteria([])


@pytest.mark.parametrize("word, message", [("0", "size must be greater than zero"),
                                           ("12k", "badly formatted number: 12k"),
                                           ("-3", "badly formatted number: -3")])
def test_buffer_size_is_a_positive_count(word, message):
    assert lf.parse_buffer_size(["2048"]) == 2048
    with pytest.raises(ValueError, match=message):
        lf.parse_buffer_size([word])


def test_engine_wants_a_boolean():
    assert lf.parse_engine(["on"]) is True and lf.parse_engine(["off"]) is False
    with pytest.raises(ValueError, match="expected Boolean parameter"):
        lf.parse_engine(["maybe"])


def test_the_block_has_markers_headers_a_blank_line_and_every_entry():
    head = [("Client-Address", "192.0.2.7"), ("Server-Address", "192.0.2.1:21"), ("Elapsed", "12")]
    entries = [("syslog", 7, "retrieved UID 1000 for user 'tj'"),
               ("SystemLog", 5, "2026-01-02 03:04:05,678 host proftpy[9] s (c[192.0.2.7]): USER tj (Login failed)\n"),
               ("TraceLog", 5, "2026-01-02 03:04:05,679 [9] <command:5>: received command 'PASS (hidden)'\n"),
               ("TransferLog", 0, "Mon Jan  2 03:04:05 2026 0 192.0.2.7 5 /f b _ o r tj ftp 0 * c\n")]
    text = lf.block(lf.FAILED_LOGIN, head, entries, pid=9)
    assert text.splitlines() == [
        "-----BEGIN FAILED LOGIN FORENSICS-----",
        "Client-Address: 192.0.2.7", "Server-Address: 192.0.2.1:21", "Elapsed: 12", "",
        "[syslog:7, PID 9] retrieved UID 1000 for user 'tj'",
        "[SystemLog:5] 2026-01-02 03:04:05,678 host proftpy[9] s (c[192.0.2.7]): USER tj (Login failed)",
        "[TraceLog:5] 2026-01-02 03:04:05,679 [9] <command:5>: received command 'PASS (hidden)'",
        "[TransferLog:0] Mon Jan  2 03:04:05 2026 0 192.0.2.7 5 /f b _ o r tj ftp 0 * c",
        "-----END FAILED LOGIN FORENSICS-----"]
    assert lf.block(lf.UNTIMELY_DEATH, [], [], 1) == (
        "-----BEGIN UNTIMELY DEATH FORENSICS-----\n\n-----END UNTIMELY DEATH FORENSICS-----\n")
    assert "BEGIN MODULE CONFIG FORENSICS" in lf.block(lf.MODULE_CONFIG, [], [], 1)


class _Session:
    local_name, remote_name, remote_addr = "srv", "cli", "192.0.2.7"


def test_the_buffer_keeps_the_newest_entries_of_every_kind_and_level():
    cap = lf._Capture(3, frozenset(lf.LOG_TYPES), systemlog.SessionOrigin(_Session()), syslog=True)
    logger = logging.getLogger("proftpy.forensic-test")
    for i in range(5):
        cap.handle(logger.makeRecord(logger.name, logging.DEBUG, __file__, 1, "debug %d", (i,), None))
    cap.traced(9, "a trace line\n")
    cap.written("ExtendedLog '/x'", "an extended line\n")
    cap.written("mod_exec/0.9.16", "a module log line\n")
    assert list(cap.ring) == [("TraceLog", 9, "a trace line\n"), ("ExtendedLog", 0, "an extended line\n"),
                              ("Unspec", 0, "a module log line\n")]
    cap.handle(logger.makeRecord(logger.name, systemlog.NOTICE, __file__, 1, "note", (), None))
    assert cap.ring[-1] == ("syslog", 5, "note")


def test_the_buffer_leaves_out_kinds_not_captured_and_formats_systemlog_lines():
    cap = lf._Capture(10, frozenset(("SystemLog",)), systemlog.SessionOrigin(_Session()), syslog=False)
    cap.written("TransferLog '/x'", "a transfer\n")
    logger = logging.getLogger("proftpy.forensic-test")
    cap.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 1, "hello %s", ("there",), None))
    [(kind, level, text)] = list(cap.ring)
    assert (kind, level) == ("SystemLog", 6)
    assert text.endswith("proftpy[%d] srv (cli[192.0.2.7]): hello there\n" % __import__("os").getpid())


def test_a_record_that_cannot_be_formatted_is_dropped_not_raised():
    cap = lf._Capture(10, frozenset(lf.LOG_TYPES), systemlog.SessionOrigin(_Session()), syslog=True)
    logger = logging.getLogger("proftpy.forensic-test")
    cap.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 1, "%d", ("not a number",), None))
    assert not cap.ring
