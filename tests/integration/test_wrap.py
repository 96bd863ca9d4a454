"""TCP wrappers on the real daemon (mod_wrap's TCPAccessFiles/TCPUserAccessFiles/TCPGroupAccessFiles, mod_wrap2's
Wrap*Tables with file: and builtin: sources): hosts.allow/hosts.deny tables of every pattern kind against clients
bound to 127.0.0.1, .2, .3 and ::1; refused hosts closed by the master at accept (no fork) when the tables do not
depend on the user; per-user and per-group tables before PASS; and the replies and log lines side by side with
Debian's ProFTPD 1.3.8 and its mod_wrap2."""

from __future__ import annotations

import ftplib
import os
import re
from pathlib import Path

import pytest

from conftest import IS_ROOT, PASSWORDS, refused_config, side_by_side, wait_until



@pytest.fixture
def tmp_path(open_tmp_path):
    """Programs run as nobody and as the test users: the test's files live where they can reach them."""
    return open_tmp_path

CLIENTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "::1")
DUAL_STACK = "::"          # the daemon's address: one wildcard listener, which 127.0.0.x and ::1 both reach


def attempt(port: int, src: str, user: str = "alice") -> str:
    """What a client bound to `src` gets: "in" (logged in), "closed" (closed before the greeting) or the error."""
    host = "::1" if ":" in src else "127.0.0.1"
    ftp = ftplib.FTP(timeout=5)
    try:
        ftp.connect(host, port, source_address=(src, 0))
    except (EOFError, ConnectionError):
        return "closed"
    try:
        ftp.login(user, PASSWORDS[user])
        return "in"
    except ftplib.error_perm as e:
        return str(e)
    finally:
        ftp.close()


def tables(tmp_path: Path, allow: str | None, deny: str | None) -> tuple[Path, Path]:
    paths = tmp_path / "hosts.allow", tmp_path / "hosts.deny"
    for path, text in zip(paths, (allow, deny)):
        if text is not None:
            path.write_text(text)
    return paths


def include_file(tmp_path: Path) -> Path:
    path = tmp_path / "ftp-clients"
    path.write_text("# clients listed in a file\n127.0.0.3\n")
    return path


# (id, allow table, deny table, UseReverseDNS, the clients let in); `{file}` is a file listing 127.0.0.3
HOST_CASES = [
    ("all", None, "proftpd: ALL\n", False, set()),
    ("exact-address", "proftpd: 127.0.0.2\n", "ALL: ALL\n", False, {"127.0.0.2"}),
    ("net-prefix", "proftpd: 127.0.0.\n", "ALL: ALL\n", False, {"127.0.0.1", "127.0.0.2", "127.0.0.3"}),
    ("netmask", None, "proftpd: 127.0.0.2/255.255.255.254\n", False, {"127.0.0.1", "::1"}),
    ("mask-length", None, "proftpd: 127.0.0.2/31\n", False, {"127.0.0.1", "::1"}),
    ("v6-address", "proftpd: [::1]\n", "ALL: ALL\n", False, {"::1"}),
    ("v6-prefix", "proftpd: [::]/127\n", "ALL: ALL\n", False, {"::1"}),
    ("except", "proftpd: 127.0.0.0/8 EXCEPT 127.0.0.3\n", "ALL: ALL\n", False, {"127.0.0.1", "127.0.0.2"}),
    ("daemon-lists", None, "sshd: ALL\nALL EXCEPT proftpd: ALL\n", False, set(CLIENTS)),
    ("wildcard", "proftpd: 127.0.0.?\n", "ALL: ALL\n", False, {"127.0.0.1", "127.0.0.2", "127.0.0.3"}),
    ("file", "proftpd: {file}\n", "ALL: ALL\n", False, {"127.0.0.3"}),
    ("netgroup", "proftpd: @proftpy-no-such-netgroup\n", "ALL: ALL\n", False, set()),
    ("no-allow-file", None, "proftpd: 127.0.0.3\n", False, {"127.0.0.1", "127.0.0.2", "::1"}),
    ("no-files", None, None, False, set(CLIENTS)),
    ("options", "proftpd: 127.0.0.2 : deny\nproftpd: ALL : allow\n", None, False,
     {"127.0.0.1", "127.0.0.3", "::1"}),
    # names: 127.0.0.1 is localhost (/etc/hosts); the others have no name. The master cannot wait for DNS, so these
    # are decided in the session, before PASS
    ("local", "proftpd: LOCAL\n", "ALL: ALL\n", True, {"127.0.0.1"}),
    ("known", "proftpd: KNOWN\n", "ALL: ALL\n", True, {"127.0.0.1"}),
    ("unknown", None, "proftpd: UNKNOWN\n", True, {"127.0.0.1"}),
    ("host-name", "proftpd: LOCALHOST\n", "ALL: ALL\n", True, {"127.0.0.1"}),
    ("name-wildcard", "proftpd: local*\n", "ALL: ALL\n", True, {"127.0.0.1"}),
]


@pytest.mark.parametrize("module", ["mod_wrap2", "mod_wrap"])
@pytest.mark.parametrize("case", HOST_CASES, ids=[c[0] for c in HOST_CASES])
def test_host_tables_decide_for_each_client(ftpd, tmp_path, case, module):
    _, allow_text, deny_text, reverse_dns, let_in = case
    fmt = {"file": include_file(tmp_path)}
    allow, deny = tables(tmp_path, allow_text and allow_text.format(**fmt), deny_text)
    if module == "mod_wrap2":
        wrap = f"WrapEngine on\nWrapTables file:{allow} file:{deny}\nWrapLog {tmp_path}/wrap.log\n"
    else:
        wrap = f"TCPAccessFiles {allow} {deny}\n"
    d = ftpd(f"UseReverseDNS {'on' if reverse_dns else 'off'}\n" + wrap, host=DUAL_STACK)
    got = {src: attempt(d.port, src) for src in CLIENTS}
    refused = "530 Access denied" if reverse_dns else "closed"
    assert got == {src: "in" if src in let_in else refused for src in CLIENTS}


def test_a_refused_host_costs_no_fork_and_logs_proftpd_line(ftpd, tmp_path):
    allow, deny = tables(tmp_path, "proftpd: 127.0.0.2\n", "ALL: ALL\n")
    d = ftpd(f"TCPAccessFiles {allow} {deny}\nSyslogLevel info\n")
    for _ in range(3):
        assert attempt(d.port, "127.0.0.3") == "closed"
    assert attempt(d.port, "127.0.0.2") == "in"
    assert wait_until(lambda: "FTP session closed" in d.log())
    log = d.log()
    refused = [line for line in log.splitlines() if "refused connection from 127.0.0.3" in line]
    assert len(refused) == 3
    assert all(f"proftpy[{d.master_pid}]: mod_wrap/1.2.4: refused connection from 127.0.0.3" in line
               for line in refused)                                 # written by the master
    assert "(127.0.0.3[127.0.0.3]): FTP session opened" not in log   # no session was forked for them


def test_tables_are_read_at_each_connection(ftpd, tmp_path):
    allow, deny = tables(tmp_path, None, "proftpd: 127.0.0.9\n")
    d = ftpd(f"WrapEngine on\nWrapTables file:{allow} file:{deny}\n")
    assert attempt(d.port, "127.0.0.3") == "in"
    deny.write_text("proftpd: 127.0.0.3\n")             # what portsentry does
    assert attempt(d.port, "127.0.0.3") == "closed"


# -- per user, per group: before PASS -------------------------------------------------------------------------------
def test_wrap_user_tables_refuse_at_pass_with_the_deny_message(ftpd, tmp_path):
    (tmp_path / "alice.allow").write_text("proftpd: 127.0.0.2\n")
    (tmp_path / "all.deny").write_text("ALL: ALL\n")
    d = ftpd(f"""WrapEngine on
WrapLog {tmp_path}/wrap.log
WrapUserTables alice file:{tmp_path}/alice.allow file:{tmp_path}/all.deny
WrapDenyMsg "User '%u' denied by access rules"
WrapAllowMsg "User '%u' allowed by access rules"
""")
    assert attempt(d.port, "127.0.0.3") == "530 User 'alice' denied by access rules"
    assert attempt(d.port, "127.0.0.3", "bob") == "in"                  # no table for bob
    with ftplib.FTP(timeout=5) as ftp:
        ftp.connect("127.0.0.1", d.port, source_address=("127.0.0.2", 0))
        assert ftp.login("alice", PASSWORDS["alice"]) == \
            "230-User 'alice' allowed by access rules\n230 User alice logged in"
    wlog = (tmp_path / "wrap.log").read_text()
    assert "mod_wrap2/2.0.7[" in wlog
    assert "matched WrapUserTables expression for user 'alice'" in wlog
    assert "refused connection from alice@127.0.0.3" in wlog
    assert "allowed connection from alice@127.0.0.2" in wlog


def test_wrap2_refusal_disconnects(ftpd, tmp_path):
    d = ftpd(f"WrapEngine on\nWrapUserTables * file:{tmp_path}/none builtin:all\n")
    with ftplib.FTP(timeout=5) as ftp:
        ftp.connect("127.0.0.1", d.port)
        with pytest.raises(ftplib.error_perm, match="530 Access denied"):
            ftp.login("alice", PASSWORDS["alice"])
        with pytest.raises((EOFError, ConnectionError)):
            ftp.voidcmd("NOOP")


def test_wrap_group_tables_and_home_tables(ftpd, tmp_path):
    (tmp_path / "all.deny").write_text("ALL: ALL\n")
    d = ftpd(f"""WrapEngine on
WrapUserTables bob file:~/ftp.allow file:{tmp_path}/all.deny
WrapGroupTables ftpusers file:{tmp_path}/none.allow file:{tmp_path}/all.deny
""")
    (d.home("bob") / "ftp.allow").write_text("proftpd: 127.0.0.3\n")
    assert attempt(d.port, "127.0.0.3", "bob") == "in"                 # his own table, in his home
    assert attempt(d.port, "127.0.0.2", "bob") == "530 Access denied"
    assert attempt(d.port, "127.0.0.3", "alice") == "530 Access denied"  # the group's table


def test_user_name_in_table_paths(ftpd, tmp_path):
    acl = tmp_path / "acl"
    acl.mkdir()
    (acl / "alice.deny").write_text("proftpd: 127.0.0.2\n")
    d = ftpd(f"WrapEngine on\nWrapUserTables * file:{acl}/%U.allow file:{acl}/%U.deny\n")
    assert attempt(d.port, "127.0.0.2") == "530 Access denied"
    assert attempt(d.port, "127.0.0.3") == "in"
    assert attempt(d.port, "127.0.0.2", "bob") == "in"


def test_mod_wrap_user_files_refuse_at_pass_and_let_the_client_retry(ftpd, tmp_path):
    allow, deny = tables(tmp_path, "proftpd: 127.0.0.2\n", "ALL: ALL\n")
    d = ftpd(f"""TCPUserAccessFiles alice {allow} {deny}
TCPGroupAccessFiles !ftpusers {tmp_path}/none {deny}
TCPAccessSyslogLevels info notice
AccessDenyMsg "No access for %u"
""")
    with ftplib.FTP(timeout=5) as ftp:
        ftp.connect("127.0.0.1", d.port, source_address=("127.0.0.3", 0))
        for _ in range(2):
            with pytest.raises(ftplib.error_perm, match="530 No access for alice"):
                ftp.login("alice", PASSWORDS["alice"])
        assert ftp.login("bob", PASSWORDS["bob"]).startswith("230")     # not named by either expression
    assert wait_until(lambda: "mod_wrap/1.2.4: refused connection from 127.0.0.3" in d.log())
    assert attempt(d.port, "127.0.0.2") == "in"


def test_check_on_connect_refuses_before_the_greeting(ftpd, tmp_path):
    allow, deny = tables(tmp_path, "proftpd: LOCAL\n", "ALL: ALL\n")
    d = ftpd(f"""UseReverseDNS on
WrapEngine on
WrapOptions CheckOnConnect
WrapTables file:{allow} file:{deny}
WrapDenyMsg "Go away, %u"
""", host=DUAL_STACK)
    with ftplib.FTP(timeout=5) as ftp:
        with pytest.raises(ftplib.error_perm, match="530 Go away, unknown"):
            ftp.connect("127.0.0.1", d.port, source_address=("127.0.0.2", 0))
    assert attempt(d.port, "127.0.0.1") == "in"


def test_a_refusal_is_an_event_exec_on_event_can_name(ftpd, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o1777)
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$1" > {out}/denied-$$\n')
    os.chmod(hook, 0o755)
    d = ftpd(f"""WrapEngine on
WrapUserTables alice file:{tmp_path}/none builtin:all
ExecEngine on
ExecOnEvent mod_wrap.connection-denied {hook} %a
""")
    assert attempt(d.port, "127.0.0.3") == "530 Access denied"
    assert wait_until(lambda: list(out.iterdir()))
    assert next(out.iterdir()).read_text() == "127.0.0.3\n"


def test_configuration_errors_name_file_and_line(tmp_path):
    for line, message in (("WrapTables /etc/hosts.allow file:/etc/hosts.deny", "bad table parameter"),
                          ("WrapTables ldap:/x file:/etc/hosts.deny", "unsupported table source type: 'ldap'"),
                          ("WrapTables sql:x file:/etc/hosts.deny", "badly formatted source info 'x'"),
                          ("WrapTables builtin:some file:/x", "unknown builtin parameter"),
                          ("TCPAccessFiles hosts.allow /etc/hosts.deny", "must start with"),
                          ("WrapOptions CheckEverything", "unknown WrapOption")):
        stderr = refused_config(tmp_path, line)
        assert f"{tmp_path}/t.conf:2:" in stderr and message in stderr, stderr


# -- side by side with Debian's ProFTPD and mod_wrap2 ---------------------------------------------------------------
COMPARED = """LoadModule mod_wrap2.c
LoadModule mod_wrap2_file.c
WrapEngine on
WrapLog {dir}/wrap.log
WrapUserTables alice,bob file:{base}/users.allow file:{base}/users.deny
WrapDenyMsg "Refused: %u"
"""


@pytest.mark.skipif(not IS_ROOT, reason="Debian's proftpd runs as root here")
def test_same_replies_and_wrap_log_lines_as_proftpd_with_mod_wrap2(ftpd, tmp_path):
    ftpd("").stop()                                         # for its users alice and bob, and their files
    (tmp_path / "users.allow").write_text("proftpd: 127.0.0.2\n")
    (tmp_path / "users.deny").write_text("proftpd: 127.0.0.3\n")

    def drive(port, run):
        replies = [attempt(port, src, user) for src, user in
                   (("127.0.0.2", "alice"), ("127.0.0.3", "alice"), ("127.0.0.3", "bob"), ("127.0.0.4", "bob"))]
        lines = [re.sub(r"^.*?\]: ", "", line) for line in (run / "wrap.log").read_text().splitlines()]
        return replies, [line for line in lines if "connection from" in line or "matched" in line]
    ran = side_by_side(tmp_path, COMPARED, drive)
    assert ran["proftpy"] == ran["proftpd"]
    assert ran["proftpd"][0] == ["in", "530 Refused: alice", "530 Refused: bob", "in"]
    assert "refused connection from bob@127.0.0.3" in ran["proftpd"][1]
