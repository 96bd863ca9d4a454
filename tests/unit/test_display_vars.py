"""Display-file helpers: line splitting, % variable expansion and ProFTPD's size formats."""

from __future__ import annotations

import os
from types import SimpleNamespace

from proftpy.modules import display
from proftpy.module import States
from proftpy.session import Totals


class FakeServer:
    name = "Test Server"

    def get(self, name):
        return {"ServerAdmin": "ops@example.com"}.get(name)


def session(**kw):
    base = dict(server=FakeServer(), state=States(), fs=None, authenticated=False, user=None, user_arg=None,
                remote_name="client.example", local_name="ftp.example.org", conn_class=None, masquerade=None,
                totals=Totals(), notes={},
                conf=lambda name, path=None: None, context=lambda: SimpleNamespace(all=lambda name: []))
    base.update(kw)
    return SimpleNamespace(**base)


def expand(line, s=None, extra=None):
    return display.expand(line, display.Variables(s or session(), extra))


def test_read_lines_strips_line_ends_and_keeps_blank_lines():
    assert display.read_lines(b"one\r\n\ntwo\n") == ["one", "", "two"]
    assert display.read_lines(b"no newline") == ["no newline"]
    assert display.read_lines(b"") == []


def test_read_lines_caps_size_and_removes_nul():
    lines = display.read_lines(b"a\0b\n" + b"x" * (display.MAX_BYTES * 2))
    assert lines[0] == "ab"
    assert sum(len(line) for line in lines) <= display.MAX_BYTES


def test_simple_variables():
    s = session(user="alice", user_arg="Alice")
    assert expand("%V at %E for %U from %R", s) == "Test Server at ops@example.com for Alice from client.example"
    assert expand("%C %x %u %N %M", s) == "(none) (unknown) UNKNOWN 1 0"


def test_ident_name_from_mod_ident():
    assert expand("%u", session(notes={"mod_ident.rfc1413-ident": "jdoe"})) == "jdoe"


def test_cwd_after_login():
    s = session(authenticated=True, fs=SimpleNamespace(cwd="/pub"))
    assert expand("in %C", s) == "in /pub"


def test_unknown_letters_and_trailing_percent_stay():
    assert expand("100% sure %q %") == "100% sure %q %"


def test_values_are_not_expanded_again():
    s = session(remote_name="%V")
    assert expand("%R", s) == "%V"


def test_braced_variables(monkeypatch):
    monkeypatch.setenv("DISPLAY_TEST", "yes")
    assert expand("%{env:DISPLAY_TEST} %{env:NOT_SET_ANYWHERE}") == "yes (none)"
    assert expand("%{total_files_in} %{nonsense}") == "0 (none)"
    assert expand("%{time:%Y}") == str(__import__("time").localtime().tm_year)


def test_totals_come_from_transfer_counters():
    s = session(totals=Totals(bytes_xfer=20480, files_out=3))
    assert expand("%K %k %o %t", s) == "20 20kB 3 0"


def test_format_size_matches_proftpd():
    assert display.format_size(5) == "05KB"
    assert display.format_size(2048) == "002MB"[1:] == "02MB"
    assert display.format_size(10 * 1024 * 1024) == "10GB"
    assert display.format_size(123456) == "120MB"


def test_format_xfer_matches_proftpd():
    assert display.format_xfer(10239) == "10239B"
    assert display.format_xfer(10240) == "10kB"
    assert display.format_xfer(50 * 1024 * 1024) == "51200kB"


def test_server_fqdn_prefers_masquerade():
    s = session(masquerade="ftp.example.net")
    assert expand("%L", s) == "ftp.example.net"
    assert expand("%L") == "ftp.example.org"            # the server's DNS name (ProFTPD's ServerFQDN)


def test_preamble_formats_leading_lines():
    assert display.Preamble(220, ["one", "two"]).format() == b"220-one\r\n two\r\n"


def test_load_reads_absolute_files_before_login(tmp_path):
    f = tmp_path / "msg"
    f.write_text("hi %V\n")
    assert display.lines_for(session(), str(f)) == ["hi Test Server"]
    assert display.lines_for(session(), "relative") == []
    assert display.lines_for(session(), str(tmp_path)) == []        # a directory is not shown
    assert os.path.exists(f)
