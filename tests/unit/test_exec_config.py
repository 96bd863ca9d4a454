"""mod_exec's and mod_wrap2's pure parts: directive arguments, the `%` variables outside a session, reply lines."""

from __future__ import annotations

import os
import time

import pytest

from proftpy.dispatch import Request
from proftpy.modules import exec as mod_exec
from proftpy.modules import wrap2
from proftpy.modules.exec_vars import Scope, expand


@pytest.mark.parametrize("word, seconds", [("30", 30), ("30s", 30), ("30sec", 30), ("2m", 120), ("2min", 120),
                                           ("1h", 3600), ("1hr", 3600), ("01:02:03", 3723), ("0", None),
                                           ("none", None), ("00:00:00", None)])
def test_exec_timeout_takes_proftpds_durations(word, seconds):
    assert mod_exec._timeout([word]) == seconds


@pytest.mark.parametrize("word", ["-1", "ten", "1d", "1:2", ""])
def test_exec_timeout_refuses_the_rest(word):
    with pytest.raises(ValueError):
        mod_exec._timeout([word])


@pytest.mark.parametrize("written, event, run_as", [
    ("MaxConnectionRate", "core.max-connection-rate", "server"), ("maxinstances*", "core.max-instances", "root"),
    ("mod_ban.ban-host~", "mod_ban.ban-host", "user"), ("core.timeout-idle", "core.timeout-idle", "server")])
def test_exec_on_event_names(written, event, run_as):
    line = mod_exec._event([written, "/bin/true", "%a"])
    assert (line.event, line.run_as, line.program) == (event, run_as, mod_exec.Program("/bin/true", ("%a",)))


def test_program_paths_must_be_full_paths():
    with pytest.raises(ValueError, match="full path"):
        mod_exec._triggered(["STOR", "bin/notify"])
    with pytest.raises(ValueError, match="wrong number"):
        mod_exec._event(["MaxInstances"])


def test_command_lists():
    line = mod_exec._triggered(['stor, "appe",READ', "/bin/true"])
    assert line.commands == ("STOR", "APPE", "READ")


def test_options_and_environ():
    options = next(d.parse for d in mod_exec.directives if d.name == "ExecOptions")
    assert options(["logstdout", "sendStdout"]) == {"logStdout", "sendStdout"}
    with pytest.raises(ValueError, match="unknown ExecOption"):
        options(["sendStderr"])
    assert mod_exec._environ(["path", "-"]) == ("PATH", "-")


def test_variables_are_expanded_once_from_left_to_right():
    scope = Scope(request=Request("CWD", "%u %{time:%Y} x"), client_ip="192.0.2.7", local_ip="192.0.2.1",
                  server_name="ftp")
    assert expand("%m|%r|%a|%h|%V|%v|%u|%f|%l|%A|%z", scope) == \
        "CWD|CWD %u %{time:%Y} x|192.0.2.7|192.0.2.7|192.0.2.1|ftp|||UNKNOWN|UNKNOWN|%z"


class NotedSession:
    notes = {"TLS_CIPHER": "TLS_AES_128_GCM_SHA256", "proxy.tlvs": {"x": 1}}


def test_braced_variables_and_notes():
    scope = Scope(session=NotedSession())
    assert expand("%{time:%Y}|%{TLS_CIPHER}|%{proxy.tlvs}|%{nosuch}", scope) == \
        f"{time.strftime('%Y')}|TLS_AES_128_GCM_SHA256|(none)|(none)"


def test_environ_dash_takes_the_sessions_note_then_the_daemons_value():
    os.environ["PROFTPY_TEST_VAR"] = "from-env"
    try:
        scope = Scope(session=NotedSession())
        assert [mod_exec._inherited(k, scope) for k in ("TLS_CIPHER", "PROFTPY_TEST_VAR", "PROFTPY_NO_VAR")] == \
            ["TLS_AES_128_GCM_SHA256", "from-env", ""]
    finally:
        del os.environ["PROFTPY_TEST_VAR"]


def test_output_becomes_reply_lines():
    assert mod_exec.output_lines(b"one\r\ntwo\0\n\n\n") == ["one", "two"]
    assert mod_exec.output_lines(b"\xff\n") == ["\udcff"]


@pytest.mark.parametrize("names, user, holds", [(("*",), "alice", True), (("alice", "bob"), "bob", True),
                                                (("!alice",), "bob", True), (("!alice",), "alice", False),
                                                (("carol",), "alice", False), (("!*",), "alice", False)])
def test_wrap2_user_or_expression(names, user, holds):
    assert wrap2._or(names, (user,)) is holds
