"""An idle child's side of the hand-over (the HANDOVER message taken apart) and its rehearsals: the hand-over
through a channel of its own, and the modules' `rehearse` (session_init's work without its effects)."""

import os
import socket
import types

import pytest

from proftpy import idle_child, modules, prefork
from proftpy.config.parser import parse_text
from proftpy.module import Module, ModuleSet
from proftpy.modules import access, shutdown


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def pair_fd() -> tuple[socket.socket, int]:
    a, b = socket.socketpair()
    return a, b.detach()


def fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_a_handover_message_becomes_the_connection_it_brings():
    peer, fd = pair_fd()
    message = prefork.handover_message(("10.0.0.1", 2121), ("10.0.0.9", 40000), ("10.0.0.1", 2121),
                                       ("10.0.0.8", 5000), {"proxied": True})
    conn = idle_child.connection_of(message, [fd])
    try:
        assert (conn.local, conn.remote, conn.sock_remote) == (("10.0.0.1", 2121), ("10.0.0.9", 40000),
                                                               ("10.0.0.8", 5000))
        assert conn.notes == {"proxied": True}
        peer.sendall(b"x")
        assert conn.sock.recv(1) == b"x"
    finally:
        conn.close()
        peer.close()


@pytest.mark.parametrize("message", [
    {"type": "core.something-else"},
    {"type": prefork.HANDOVER, "local": ["10.0.0.1"], "remote": [], "sock_local": [], "sock_remote": [],
     "notes": {}},
    {"type": prefork.HANDOVER, "local": ["a", 1], "remote": ["b", 2], "sock_local": ["a", 1],
     "sock_remote": ["b", 2], "notes": "not an object"},
])
def test_anything_else_is_no_connection_and_its_descriptors_are_closed(message, caplog):
    peer, fd = pair_fd()
    assert idle_child.connection_of(message, [fd]) is None
    assert not fd_open(fd)
    assert caplog.records and caplog.records[-1].levelname == "WARNING"
    peer.close()


def test_the_rehearsed_handover_leaves_nothing_open():
    before = open_fds()
    idle_child.rehearse_handover()
    assert open_fds() == before


def test_every_modules_rehearsal_runs_in_load_order():
    ran = []
    loaded = ModuleSet([Module("mod_a.c", rehearse=lambda s: ran.append(("a", s)), greeting=lambda s: None),
                        Module("mod_b.c"),
                        Module("mod_c.c", rehearse=lambda s: ran.append(("c", s)))])
    loaded.rehearse("session")
    assert ran == [("a", "session"), ("c", "session")]


def fake_session(text: str):
    config = parse_text(text, modules.registry(), file="t.conf")
    return types.SimpleNamespace(config=config, server=config.main, remote_addr="127.0.0.1", local_addr="127.0.0.1",
                                 client=None, conn_class=None, closing=False)


def test_the_access_rehearsal_decides_but_does_not_act(caplog):
    session = fake_session("<Class local>\n  From 127.0.0.1\n</Class>\n<Limit LOGIN>\n  DenyAll\n</Limit>\n")
    access.rehearse(session)
    assert (session.client, session.conn_class, session.closing) == (None, None, False)
    assert not caplog.records                       # a real session's start logs the refusal; the rehearsal not


def test_the_shutdown_rehearsal_reads_the_file_quietly(tmp_path, monkeypatch, caplog):
    broken = tmp_path / "shutmsg"
    broken.write_text("not a shutdown file\n")
    monkeypatch.setattr(shutdown.shutmsg, "default_path", lambda: str(broken))
    shutdown.rehearse(fake_session(""))
    assert not caplog.records


def test_a_failing_rehearsal_is_logged_and_the_others_still_run(caplog):
    ran = []

    def broken(session):
        raise OSError("table gone")

    loaded = ModuleSet([Module("mod_a.c", rehearse=broken, greeting=lambda s: None),
                        Module("mod_b.c", rehearse=lambda s: ran.append("b"))])
    loaded.rehearse("session")
    assert ran == ["b"]
    assert "mod_a.c: rehearsal of a session's start failed" in caplog.text
