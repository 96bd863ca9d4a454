"""hosts_access(5) matching: every pattern kind, table-driven. Each case is decided twice, by proftpy's matcher and
by Debian's libwrap0 (`hosts_ctl`, through ctypes, on the same two files), and both must give the expected answer:
the tables prove the matcher speaks libwrap's language, not our reading of the manual page."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from proftpy.access import hostsaccess as ha

# (id, hosts.allow text or None for no file, hosts.deny text or None, daemon, client name, client addr, user,
#  expected: True = access granted)
CASES = [
    ("no-files", None, None, "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("empty-files", "", "", "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("deny-all", None, "ALL: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("allow-before-deny", "proftpd: 10.0.0.1\n", "ALL: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("allow-other-host", "proftpd: 10.0.0.2\n", "ALL: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("first-line-wins", None, "proftpd: 10.0.0.1 : allow\nproftpd: ALL\n", "proftpd", "unknown", "10.0.0.1",
     "unknown", True),
    ("daemon-other", None, "sshd: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("daemon-list-commas", None, "sshd, proftpd: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("daemon-case", None, "ProFTPD: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("daemon-except", None, "ALL EXCEPT proftpd: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("daemon-except-other", None, "ALL EXCEPT sshd: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("all-lowercase", None, "all: all\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("net-prefix", None, "ALL: 10.0.\n", "proftpd", "unknown", "10.0.7.1", "unknown", False),
    ("net-prefix-miss", None, "ALL: 10.0.\n", "proftpd", "unknown", "10.1.7.1", "unknown", True),
    ("net-prefix-3", None, "ALL: 192.168.1.\n", "proftpd", "unknown", "192.168.1.200", "unknown", False),
    ("netmask", None, "ALL: 131.155.72.0/255.255.254.0\n", "proftpd", "unknown", "131.155.73.9", "unknown",
     False),
    ("netmask-miss", None, "ALL: 131.155.72.0/255.255.254.0\n", "proftpd", "unknown", "131.155.74.9", "unknown",
     True),
    ("masklen", None, "ALL: 10.0.0.0/8\n", "proftpd", "unknown", "10.200.0.1", "unknown", False),
    ("masklen-miss", None, "ALL: 10.0.0.0/9\n", "proftpd", "unknown", "10.200.0.1", "unknown", True),
    ("v6-exact", None, "ALL: [::1]\n", "proftpd", "unknown", "::1", "unknown", False),
    ("v6-exact-miss", None, "ALL: [::2]\n", "proftpd", "unknown", "::1", "unknown", True),
    ("v6-prefix", None, "ALL: [3ffe:505:2:1::]/64\n", "proftpd", "unknown", "3ffe:505:2:1:ffff::1", "unknown",
     False),
    ("v6-prefix-miss", None, "ALL: [3ffe:505:2:1::]/64\n", "proftpd", "unknown", "3ffe:505:2:2::1", "unknown",
     True),
    ("v6-pattern-v4-client", None, "ALL: [::1]\n", "proftpd", "unknown", "127.0.0.1", "unknown", True),
    ("v6-with-options", None, "ALL: [::1] : allow\nALL: ALL\n", "proftpd", "unknown", "::1", "unknown", True),
    ("exact-address", None, "ALL: 127.0.0.3\n", "proftpd", "unknown", "127.0.0.3", "unknown", False),
    ("exact-name", None, "ALL: host.example.com\n", "proftpd", "host.example.com", "192.0.2.1", "unknown",
     False),
    ("exact-name-case", None, "ALL: HOST.Example.COM\n", "proftpd", "host.example.com", "192.0.2.1", "unknown",
     False),
    ("domain-suffix", None, "ALL: .example.com\n", "proftpd", "a.b.example.com", "192.0.2.1", "unknown", False),
    ("domain-suffix-whole-name", None, "ALL: .example.com\n", "proftpd", "example.com", "192.0.2.1", "unknown",
     True),
    ("domain-suffix-unknown", None, "ALL: .example.com\n", "proftpd", "unknown", "192.0.2.1", "unknown", True),
    ("local", None, "ALL: LOCAL\n", "proftpd", "localhost", "127.0.0.1", "unknown", False),
    ("local-dotted", None, "ALL: LOCAL\n", "proftpd", "a.example.com", "192.0.2.1", "unknown", True),
    ("local-unknown", None, "ALL: LOCAL\n", "proftpd", "unknown", "192.0.2.1", "unknown", True),
    ("known", None, "ALL: KNOWN\n", "proftpd", "a.example.com", "192.0.2.1", "unknown", False),
    ("known-unknown", None, "ALL: KNOWN\n", "proftpd", "unknown", "192.0.2.1", "unknown", True),
    ("known-paranoid", None, "ALL: KNOWN\n", "proftpd", "paranoid", "192.0.2.1", "unknown", True),
    ("unknown", None, "ALL: UNKNOWN\n", "proftpd", "unknown", "192.0.2.1", "unknown", False),
    ("unknown-known", None, "ALL: UNKNOWN\n", "proftpd", "a.example.com", "192.0.2.1", "unknown", True),
    ("paranoid", None, "ALL: PARANOID\n", "proftpd", "paranoid", "192.0.2.1", "unknown", False),
    ("paranoid-known", None, "ALL: PARANOID\n", "proftpd", "a.example.com", "192.0.2.1", "unknown", True),
    ("except", None, "ALL: 10. EXCEPT 10.0.0.1\n", "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("except-other", None, "ALL: 10. EXCEPT 10.0.0.1\n", "proftpd", "unknown", "10.0.0.2", "unknown", False),
    ("except-nested", None, "ALL: 10. EXCEPT 10.0. EXCEPT 10.0.0.1\n", "proftpd", "unknown", "10.0.0.1",
     "unknown", False),
    ("except-nested-mid", None, "ALL: 10. EXCEPT 10.0. EXCEPT 10.0.0.1\n", "proftpd", "unknown", "10.0.0.2",
     "unknown", True),
    ("except-domain", "ALL: .foobar.edu EXCEPT terminalserver.foobar.edu\n", "ALL: ALL\n", "proftpd",
     "terminalserver.foobar.edu", "192.0.2.1", "unknown", False),
    ("user-at-host", None, "ALL: alice@10.0.0.1\n", "proftpd", "unknown", "10.0.0.1", "alice", False),
    ("user-at-host-other-user", None, "ALL: alice@10.0.0.1\n", "proftpd", "unknown", "10.0.0.1", "bob", True),
    ("known-user", None, "ALL: KNOWN@ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("wildcard-star", None, "ALL: 10.0.*.1\n", "proftpd", "unknown", "10.0.77.1", "unknown", False),
    ("wildcard-question", None, "ALL: 10.0.0.?\n", "proftpd", "unknown", "10.0.0.7", "unknown", False),
    ("wildcard-question-miss", None, "ALL: 10.0.0.?\n", "proftpd", "unknown", "10.0.0.77", "unknown", True),
    ("wildcard-name", None, "ALL: *.example.com\n", "proftpd", "ftp.example.com", "192.0.2.1", "unknown",
     False),
    ("wildcard-name-case", None, "ALL: *.EXAMPLE.com\n", "proftpd", "ftp.example.com", "192.0.2.1", "unknown",
     False),
    ("netgroup-missing", None, "ALL: @proftpy-no-such-netgroup\n", "proftpd", "a.example.com", "192.0.2.1",
     "unknown", True),
    ("comment-and-blank", None, "# ALL: ALL\n\n   \nsshd: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown",
     True),
    ("indented-hash-is-a-rule", None, " #x, ALL: ALL\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("continuation", None, "proftpd: 10.0.0.2 \\\n 10.0.0.1\n", "proftpd", "unknown", "10.0.0.1", "unknown",
     False),
    ("no-final-newline", None, "ALL: ALL", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("long-line", None, "ALL: " + "10.9.9.9 " * 300 + "10.0.0.1\n", "proftpd", "unknown", "10.0.0.1",
     "unknown", False),
    ("crlf", None, "sshd: ALL\r\nALL: 10.0.0.1\r\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("no-separator", None, "ALL ALL\nproftpd: 10.0.0.1\n", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("option-deny-in-allow", "ALL: 10.0.0.1 : deny\n", None, "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("option-allow-in-deny", None, "ALL: 10.0.0.1 : ALLOW\n", "proftpd", "unknown", "10.0.0.1", "unknown", True),
    ("option-keyword-equals", None, "ALL: ALL : severity auth.info : allow\n", "proftpd", "unknown", "10.0.0.1",
     "unknown", True),
    ("commas-in-client-list", None, "ALL: 10.0.0.2,10.0.0.1\n", "proftpd", "unknown", "10.0.0.1", "unknown",
     False),
    ("unreadable-deny", None, "<unreadable>", "proftpd", "unknown", "10.0.0.1", "unknown", False),
    ("unreadable-allow", "<unreadable>", None, "proftpd", "unknown", "10.0.0.1", "unknown", True),
]


def _table(tmp: Path, name: str, text: str | None) -> str:
    if text is None:
        return str(tmp / f"{name}.missing")
    if text == "<unreadable>":
        return "/etc/passwd/not-a-directory"            # exists in part: ENOTDIR, not ENOENT
    path = tmp / name
    path.write_text(text)
    return str(path)


def _ours(allow: str, deny: str, daemon: str, name: str, addr: str, user: str) -> bool:
    req = ha.Request(daemon, ha.Host(addr, lambda _: name), user=user)
    return ha.check(ha.load(allow), ha.load(deny), req).allowed


class LibWrap:
    """Debian's libwrap0: hosts_ctl() with its two table paths pointed at ours."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libwrap.so.0")
        self.lib.hosts_ctl.argtypes = [ctypes.c_char_p] * 4
        self.lib.hosts_ctl.restype = ctypes.c_int
        self.keep: list = []

    def __call__(self, allow: str, deny: str, daemon: str, name: str, addr: str, user: str) -> bool:
        for var, path in (("hosts_allow_table", allow), ("hosts_deny_table", deny)):
            buf = ctypes.create_string_buffer(path.encode())
            self.keep.append(buf)
            ctypes.c_void_p.in_dll(self.lib, var).value = ctypes.addressof(buf)
        return bool(self.lib.hosts_ctl(daemon.encode(), name.encode(), addr.encode(), user.encode()))


@pytest.fixture(scope="module")
def libwrap() -> LibWrap:
    return LibWrap()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hosts_access_matches_libwrap(case, tmp_path, libwrap):
    _, allow_text, deny_text, daemon, name, addr, user, expected = case
    allow, deny = _table(tmp_path, "hosts.allow", allow_text), _table(tmp_path, "hosts.deny", deny_text)
    assert libwrap(allow, deny, daemon, name, addr, user) is expected, "libwrap disagrees with the table"
    assert _ours(allow, deny, daemon, name, addr, user) is expected


def test_file_of_patterns(tmp_path, libwrap):
    patterns = tmp_path / "patterns"
    patterns.write_text("10.0.0.9\n  .example.org 10.0.0.1\n")
    deny = tmp_path / "hosts.deny"
    deny.write_text(f"ALL: {patterns}\n")
    missing = str(tmp_path / "none")
    for addr, name, expected in (("10.0.0.1", "unknown", False), ("10.0.0.2", "x.example.org", False),
                                 ("10.0.0.2", "unknown", True)):
        assert libwrap(missing, str(deny), "proftpd", name, addr, "unknown") is expected
        assert _ours(missing, str(deny), "proftpd", name, addr, "unknown") is expected


def test_file_of_patterns_does_not_follow_another_file(tmp_path):
    inner, outer = tmp_path / "inner", tmp_path / "outer"
    inner.write_text("10.0.0.1\n")
    outer.write_text(f"{inner}\n")
    table = ha.parse(f"ALL: {outer}\n")
    assert ha.check(None, table, ha.Request("proftpd", ha.Host("10.0.0.1"))).allowed


def test_server_endpoint_pattern():
    table = ha.parse("proftpd@192.0.2.10: ALL\n")
    def req(server):
        return ha.Request("proftpd", ha.Host("10.0.0.1"), server=ha.Host(server))
    assert not ha.check(None, table, req("192.0.2.10")).allowed
    assert ha.check(None, table, req("192.0.2.11")).allowed


def test_netgroup_asks_innetgr_with_the_host_name():
    asked = []
    def netgroup(group, host):
        asked.append((group, host))
        return group == "trusted" and host == "a.example.com"
    table = ha.parse("ALL: @trusted\n")
    req = ha.Request("proftpd", ha.Host("192.0.2.1", lambda _: "a.example.com"), netgroup=netgroup)
    assert not ha.check(None, table, req).allowed
    assert asked == [("trusted", "a.example.com")]


def test_names_are_looked_up_only_when_a_pattern_needs_them():
    def refuse(_):
        raise ha.NeedsName()
    table = ha.parse("ALL: 10.0.0.1 192.0.2.0/24\n")
    assert not ha.check(None, table, ha.Request("proftpd", ha.Host("192.0.2.7", refuse))).allowed
    with pytest.raises(ha.NeedsName):
        ha.check(None, ha.parse("ALL: .example.com\n"), ha.Request("proftpd", ha.Host("192.0.2.7", refuse)))


def test_verdict_names_the_line_and_the_options_not_carried_out():
    table = ha.parse("# x\nsshd: ALL\nproftpd: ALL : spawn (/bin/echo %a) & : deny\n", "/etc/hosts.allow")
    verdict = ha.check(table, None, ha.Request("proftpd", ha.Host("10.0.0.1")))
    assert (verdict.allowed, verdict.table, verdict.line) == (False, "/etc/hosts.allow", 3)
    assert verdict.ignored == ("spawn (/bin/echo %a) &",)


def test_problems_are_reported_with_file_and_line():
    table = ha.parse("ALL: ALL\nno separator\n", "/t")
    assert table.problems == ['/t:2: missing ":" separator']


def test_resolve_name_is_double_reverse_checked():
    assert ha.resolve_name("192.0.2.1", lambda a: "a.example.com", lambda n: {"192.0.2.1"}) == "a.example.com"
    assert ha.resolve_name("192.0.2.1", lambda a: "a.example.com", lambda n: {"192.0.2.9"}) == ha.PARANOID
    def no_ptr(a):
        raise OSError("no PTR")
    assert ha.resolve_name("192.0.2.1", no_ptr) == ha.UNKNOWN
    assert os.path.exists("/etc/hosts")


def test_a_table_is_parsed_again_only_when_its_file_changed(tmp_path):
    path = tmp_path / "hosts.allow"
    path.write_text("ALL: 192.0.2.1\n")
    first = ha.load(str(path))
    assert ha.load(str(path)) is first                          # unchanged: the parsed table is reused
    path.write_text("ALL: 192.0.2.2\n")                         # same size, another rule
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1))
    second = ha.load(str(path))
    assert second is not first and second.rules != first.rules
    path.unlink()
    assert ha.load(str(path)) is None
