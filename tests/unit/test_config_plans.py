"""Hooks and listeners a configuration leaves out (`active`): `Config.sets` finds a directive switched on anywhere
in the configuration; a configuration's dispatcher and session wiring drop what is not active in it, made once
per configuration; the loaded modules' own declarations (mod_exec, mod_tls, mod_prometheus) follow their
directives."""

import pytest

from proftpy import modules
from proftpy.config.parser import parse_text
from proftpy.dispatch import POST_CMD, PRE_CMD, Command, Dispatcher, Hook, Request
from proftpy.events import EventBus
from proftpy.module import Listener
from proftpy.reply import Reply


def conf(text):
    return parse_text(text, modules.registry(), file="t.conf")


@pytest.mark.parametrize("text, expected", [
    ("", False),
    ("ExecEngine off\n", False),
    ("ExecEngine on\n", True),
    ("<VirtualHost 127.0.0.1>\n  Port 2121\n  ExecEngine on\n</VirtualHost>\n", True),
    ("<Global>\n  ExecEngine on\n</Global>\n", True),
    ("<IfUser alice>\n  ExecEngine on\n</IfUser>\n", True),
    ("<VirtualHost 127.0.0.1>\n  Port 2121\n  ExecEngine off\n</VirtualHost>\n", False),
])
def test_sets_finds_a_directive_switched_on_anywhere(text, expected):
    assert conf(text).sets("ExecEngine") is expected


class FakeSession:
    authenticated = True


def test_a_configurations_dispatcher_leaves_out_inactive_hooks_once_per_configuration():
    ran = []

    def hook(label):
        def handler(session, req):
            ran.append(label)
        return handler

    hooks = [Hook(PRE_CMD, "*", hook("always")),
             Hook(PRE_CMD, "*", hook("exec"), active=lambda c: c.sets("ExecEngine")),
             Hook(POST_CMD, "NOOP", hook("exec-noop"), active=lambda c: c.sets("ExecEngine"))]
    base = Dispatcher([Command("NOOP", lambda s, r: Reply(200, "ok"))], hooks)
    off, on = conf(""), conf("ExecEngine on\n")

    d = base.for_config(off)
    assert d is not base and d is base.for_config(off)          # made once per configuration
    d.dispatch(FakeSession(), Request("NOOP", ""))
    assert ran == ["always"]
    assert d.row("NOOP") is base.row("NOOP")                     # the same command table

    ran.clear()
    assert base.for_config(on) is base                           # every hook active: the dispatcher itself
    base.for_config(on).dispatch(FakeSession(), Request("NOOP", ""))
    assert ran == ["always", "exec", "exec-noop"]


def test_a_configurations_session_wiring_leaves_out_inactive_listeners():
    loaded = modules.loaded()
    heard = []
    extra = [Listener("test.event", lambda **_: heard.append("always")),
             Listener("test.event", lambda **_: heard.append("exec"), lambda c: c.sets("ExecEngine"))]
    saved = loaded.listeners
    loaded.listeners = saved + extra
    try:
        for text, expected in (("", ["always"]), ("ExecEngine on\n", ["always", "exec"])):
            config = conf(text)
            bus = EventBus()
            bus.add_all(loaded.session_wiring(config))
            assert loaded.session_wiring(config) is loaded.session_wiring(config)
            heard.clear()
            bus.emit("test.event")
            assert heard == expected
    finally:
        loaded.listeners = saved


def _hooks_of(dispatcher, module):
    return {h.handler.__name__ for phase in dispatcher.hooks.values() for h in phase if h.module == module}


def test_the_modules_hooks_follow_their_engines():
    base = modules.loaded().dispatcher
    quiet = base.for_config(conf(""))
    assert not _hooks_of(quiet, "mod_exec.c") and not _hooks_of(quiet, "mod_prometheus.c")
    assert "required" not in _hooks_of(quiet, "mod_tls.c")
    busy = base.for_config(conf("ExecEngine on\nTLSEngine on\nPrometheusEngine on\n"))
    assert _hooks_of(busy, "mod_exec.c") == {"_before", "_after", "_error"}
    assert "required" in _hooks_of(busy, "mod_tls.c")
    assert _hooks_of(busy, "mod_prometheus.c") == {"_command_done", "_command_failed"}
