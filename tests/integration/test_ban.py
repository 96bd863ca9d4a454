"""mod_ban against the real daemon with real clients: every BanOnEvent event bans (and the ban expires),
BanMessage, per-rule messages, ftpdctl ban/permit/ban info, user and user@host bans at PASS, class bans, bans per
server and with MatchAnyServer, bans surviving HUP and going at a clean stop, the master refusing a banned host
without forking, and bad configurations."""

from __future__ import annotations

import ftplib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import AUTH_CONFIG, BASE_CONFIG, Daemon, PASSWORDS, fill, fork_master, free_port, make_users, wait_until

REPO = Path(__file__).resolve().parents[2]
MESSAGE = "Go away %a (%c), or I shall taunt you (%u) a second time!"
TAUNT = "530 Go away 127.0.0.1 ((none)), or I shall taunt you ((none)) a second time!"
BAN = f"""BanEngine on
BanTable {{dir}}/ban.tab
BanLog {{dir}}/ban.log
BanMessage "{MESSAGE}"
BanControlsACLs all allow user root
"""


def ftpdctl(d: Daemon, *args: str) -> tuple[int, list[str]]:
    # the PidFile is written before the modules start: with BanCache redis the master first imports redis-py
    wait_until(lambda: (d.dir / "proftpy.sock").exists(), 10)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpdctl", "-s", str(d.dir / "proftpy.sock"), *args],
                       capture_output=True, text=True, timeout=30, env=env)
    assert "Traceback" not in r.stderr + r.stdout
    return r.returncode, [line.removeprefix("ftpdctl: ") for line in r.stdout.splitlines()]


def refused(d: Daemon, source: str | None = None) -> str | None:
    """The 530 a banned client gets (or "" for a silent close); None when the client is let in."""
    try:
        ftp = ftplib.FTP(timeout=5)
        ftp.connect(d.host, d.port, source_address=(source, 0) if source else None)
    except ftplib.error_perm as e:
        return str(e)
    except (EOFError, ConnectionError):
        return ""
    ftp.close()
    return None


def ban_rule(event: str, count: int = 1, lifetime: str = "00:00:02", extra: str = "",
             window: str = "00:01:00") -> str:
    return BAN + f"BanOnEvent {event} {count}/{window} {lifetime}\n" + extra


def _failed_logins(d: Daemon, n: int = 1, user: str = "alice") -> None:
    ftp = d.connect()
    for _ in range(n):
        with pytest.raises((ftplib.error_perm, EOFError)):
            ftp.login(user, "wrong")
    ftp.close()


def _unknown_commands(d: Daemon) -> None:
    ftp = d.connect()
    for _ in range(3):
        try:
            ftp.sendcmd("XYZZY")
        except (ftplib.error_perm, EOFError, ConnectionError):
            pass
    ftp.close()


def _wait_for_close(d: Daemon, lines: list[str] = (), seconds: float = 5) -> None:
    with socket.create_connection((d.host, d.port), timeout=seconds + 5) as s:
        s.recv(1000)
        for line in lines:
            s.sendall(line.encode() + b"\r\n")
            time.sleep(0.05)
        while s.recv(1000):
            pass


def _empty_password(d: Daemon) -> None:
    ftp = d.connect()
    ftp.sendcmd("USER alice")
    with pytest.raises(ftplib.error_perm):
        ftp.sendcmd("PASS")
    ftp.close()


def _anonymous_rejected(d: Daemon) -> None:
    ftp = d.connect()
    with pytest.raises(ftplib.error_perm):
        ftp.login("anonymous", "evil@spam.example")
    ftp.close()


def _bad_protocol(d: Daemon) -> None:
    with socket.create_connection((d.host, d.port), timeout=5) as s:
        s.recv(1000)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.recv(1000) in (b"", TAUNT.encode() + b"\r\n")     # no FTP reply; the ban's message


def _root_login(d: Daemon) -> None:
    ftp = d.connect()
    with pytest.raises(ftplib.error_perm):
        ftp.login("root", "not-the-password")
    ftp.close()


def _two_sessions(d: Daemon, user: str = "alice") -> None:
    first = d.login(user)
    try:
        with pytest.raises((ftplib.error_perm, EOFError)):
            d.login(user)
    finally:
        first.close()


def _connections(d: Daemon) -> None:
    first = d.connect()
    try:
        assert refused(d) is not None
    finally:
        first.close()


def _login(d: Daemon) -> None:
    with pytest.raises(ftplib.error_perm, match="530 Go away"):     # banned at once: the 230 never comes
        d.login()


def _command_flood(d: Daemon) -> None:
    ftp = d.connect()
    try:
        for _ in range(4):
            ftp.sendcmd("NOOP")
    except (ftplib.Error, EOFError, ConnectionError):
        pass
    ftp.close()


ANON = """<Anonymous {dir}/anon>
  User alice
  UserAlias anonymous alice
  AnonRejectPasswords spam
</Anonymous>
"""

# event -> (extra configuration, what the client does, what is banned: the host unless said)
EVENTS = {
    "MaxLoginAttempts": ("MaxLoginAttempts 1\n", _failed_logins, None),
    "MaxLoginAttemptsFromUser": ("MaxLoginAttempts 1\n", _failed_logins, "user@host"),
    "UnhandledCommand": ("", _unknown_commands, None),
    "TimeoutLogin": ("TimeoutLogin 1\n", lambda d: _wait_for_close(d), None),
    "TimeoutIdle": ("TimeoutIdle 1\n", lambda d: _wait_for_close(d), None),
    "TimeoutNoTransfer": ("TimeoutNoTransfer 1\n",
                          lambda d: _wait_for_close(d, ["USER alice", f"PASS {PASSWORDS['alice']}"]), None),
    "EmptyPassword": ("AllowEmptyPasswords off\n", _empty_password, None),
    "AnonRejectPasswords": (ANON, _anonymous_rejected, None),
    "BadProtocol": ("", _bad_protocol, None),
    "RootLogin": ("AuthOrder mod_auth_file.c mod_auth_unix.c\n", _root_login, None),
    "ClientConnectRate": ("", lambda d: (d.connect().close(), refused(d)), None),
    "MaxConnectionsPerHost": ("MaxConnectionsPerHost 1\n", _connections, None),
    "MaxClientsPerHost": ("MaxClientsPerHost 1\n", _two_sessions, None),
    "MaxClientsPerUser": ("MaxClientsPerUser 1\n", _two_sessions, "user"),
    "MaxClientsPerClass": ("<Class local>\nFrom 127.0.0.1\n</Class>\nMaxClientsPerClass local 1\n",
                           _two_sessions, "class"),
    "MaxCommandRate": ("MaxCommandRate 2 1\n", _command_flood, None),
    "LoginRate": ("", _login, "user"),
}


@pytest.mark.slow
@pytest.mark.parametrize("event", sorted(EVENTS))
def test_each_event_bans_and_the_ban_expires(ftpd, tmp_path, event):
    extra, act, kind = EVENTS[event]
    if event == "AnonRejectPasswords":
        (tmp_path / "anon").mkdir()
    if event == "RootLogin" and os.geteuid() != 0:
        pytest.skip("needs the root account to be looked up by mod_auth_unix as root")
    count = 2 if event == "ClientConnectRate" else 1
    # the counter stays at its maximum until its window ends: a connection after the ban would ban again
    window = "00:00:01" if event == "ClientConnectRate" else "00:01:00"
    d = ftpd(ban_rule(event, count, "00:00:02", extra, window))
    act(d)
    assert wait_until(lambda: "autoban" in (d.dir / "ban.log").read_text(), 5), event
    if kind is None:
        assert refused(d) == TAUNT
        status, lines = ftpdctl(d, "ban", "info")
        assert lines[:2] == ["Banned Hosts:", "  127.0.0.1"]
    else:
        status, lines = ftpdctl(d, "ban", "info")
        expected = {"user": "  alice", "user@host": "  alice@127.0.0.1", "class": "  local"}[kind]
        assert expected in lines, lines
    assert wait_until(lambda: ftpdctl(d, "ban", "info")[1] == ["No bans"], 6)
    assert refused(d) is None


def test_a_rules_own_message_is_sent_to_a_banned_client(ftpd):
    d = ftpd(BAN + 'MaxLoginAttempts 1\nBanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00 "Banned: %a"\n')
    _failed_logins(d)
    assert wait_until(lambda: refused(d) == "530 Banned: 127.0.0.1")


def test_without_a_message_a_banned_client_is_just_closed(ftpd):
    d = ftpd(BAN.replace(f'BanMessage "{MESSAGE}"\n', ""))
    assert ftpdctl(d, "ban", "host", "127.0.0.1")[1] == ["host 127.0.0.1 banned"]
    assert refused(d) == ""


def test_ftpdctl_ban_info_shows_bans_and_events(ftpd):
    d = ftpd(BAN + "MaxLoginAttempts 1\nBanOnEvent MaxLoginAttempts 2/00:10:00 01:00:00\n")
    assert ftpdctl(d, "ban", "user", "bob", "carol") == (0, ["user bob banned", "user carol banned"])
    assert ftpdctl(d, "ban", "user", "bob")[1] == ["user bob already banned"]
    assert ftpdctl(d, "ban", "class", "baddies")[1] == ["class baddies banned"]
    _failed_logins(d)
    status, lines = ftpdctl(d, "ban", "info", "-v", "-e")
    assert status == 0
    assert lines[0:3] == ["Banned Users:", "  bob", "    Reason: requested by 'root' on " + lines[2][35:]]
    assert lines[3] == "    Expires: never"
    assert "Banned Classes:" in lines and "  baddies" in lines
    at = lines.index("Ban Events:")
    assert lines[at - 1] == ""
    assert lines[at + 1:at + 5] == ["  Event: MaxLoginAttempts", "  Source: 127.0.0.1", "    Occurrences: 1/2",
                                    lines[at + 4]]
    assert lines[at + 4].startswith("    Entry Expires: 59") and lines[at + 4].endswith(" seconds")
    assert lines[at + 5] == f"    <VirtualHost>: proftpy test (127.0.0.1#{d.port})"


def test_ftpdctl_input_of_any_shape_gets_an_error_text(ftpd):
    d = ftpd(BAN)
    cases = {("ban",): "missing parameters", ("ban", "user"): "missing parameters",
             ("ban", "nobody", "x"): "unknown ban action requested: 'nobody'",
             ("ban", "user", "-x", "a"): "unsupported option: 'x'",
             ("ban", "user", "-s"): "-s requires server address",
             ("ban", "user", "-s", "10.9.9.9#21", "a"): "no such server '10.9.9.9#21'",
             ("ban", "host", "no.such.host.invalid"): "ban: unknown host 'no.such.host.invalid'",
             ("permit", "user"): "missing parameters", ("permit", "bogus", "x"): "unknown ban action requested: "
                                                                                "'bogus'",
             ("ban", "info", "-q"): "unsupported parameter: 'info'",
             ("permit",): "missing parameters"}
    for argv, text in cases.items():
        assert text in ftpdctl(d, *argv)[1], argv
    assert ftpdctl(d, "ban", "user", "x" * 300)[1][0].startswith("ban: name too long")
    assert ftpdctl(d, "ban", "user", "\u00e9\x01")[0] in (0, 1)


def test_permit_lifts_a_ban(ftpd):
    d = ftpd(BAN)
    assert ftpdctl(d, "permit", "host", "127.0.0.1")[1] == ["permit request unnecessary", "no hosts are banned"]
    ftpdctl(d, "ban", "host", "127.0.0.1")
    assert refused(d) == TAUNT
    assert ftpdctl(d, "permit", "host", "127.0.0.1")[1] == ["host '127.0.0.1' permitted"]
    assert refused(d) is None
    ftpdctl(d, "ban", "user", "a", "b")
    assert ftpdctl(d, "permit", "user", "zz")[1] == ["user 'zz' not banned"]
    assert ftpdctl(d, "permit", "user", "*")[1] == ["all users permitted"]
    assert ftpdctl(d, "ban", "info")[1] == ["No bans"]


def test_a_ban_ends_the_sessions_it_covers(ftpd):
    d = ftpd(BAN)
    ftp = d.login("bob")
    ftpdctl(d, "ban", "user", "bob")
    assert wait_until(lambda: _dead(ftp), 5)


def _dead(ftp: ftplib.FTP) -> bool:
    try:
        ftp.voidcmd("NOOP")
        return False
    except (EOFError, ConnectionError, ftplib.Error, OSError):
        return True


def test_user_and_user_at_host_bans_are_checked_at_pass(ftpd):
    d = ftpd(BAN)
    ftpdctl(d, "ban", "user", "alice")
    ftp = d.connect()                               # a user ban does not refuse the connection
    ftp.sendcmd("USER alice")
    with pytest.raises(ftplib.error_perm, match="530 Go away 127.0.0.1 \\(\\(none\\)\\), or I shall taunt you "
                                                 "\\(alice\\)"):
        ftp.sendcmd(f"PASS {PASSWORDS['alice']}")
    with pytest.raises(ftplib.error_perm, match="530 Login incorrect."):
        ftp.getresp()                               # then PASS's own answer, as ProFTPD sends both
    ftp.close()
    d.login("bob").quit()
    ftpdctl(d, "permit", "user", "alice")
    ftpdctl(d, "ban", "user@host", "bob@127.0.0.1")
    with pytest.raises(ftplib.error_perm, match="530"):
        d.login("bob")
    d.login("alice").quit()


def test_class_bans_refuse_at_connect(ftpd):
    d = ftpd(BAN + "<Class local>\nFrom 127.0.0.1\n</Class>\n")
    ftpdctl(d, "ban", "class", "local")
    assert refused(d) == "530 Go away 127.0.0.1 (local), or I shall taunt you ((none)) a second time!"
    ftpdctl(d, "ban", "host", "127.0.0.1")          # refused by the master now: %c still names the class
    assert refused(d) == "530 Go away 127.0.0.1 (local), or I shall taunt you ((none)) a second time!"
    assert refused(d, "127.0.0.2") is None


VHOST = """<VirtualHost 127.0.0.2>
  Port {port}
  ServerName "second"
  AuthOrder mod_auth_file.c
  AuthUserFile {dir}/ftpd.passwd
  AuthGroupFile {dir}/ftpd.group
  RequireValidShell off
  MaxLoginAttempts 1
  {options}
</VirtualHost>
"""


def _two_servers(ftpd, options: str) -> tuple[Daemon, Daemon]:
    d = ftpd(BAN + "MaxLoginAttempts 1\nBanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n" + options + "\n"
             + VHOST.replace("{options}", options))
    other = Daemon(dir=d.dir, port=d.port, conf=d.conf, host="127.0.0.2")
    other.users = d.users
    return d, other


def test_bans_are_per_server(ftpd):
    d, second = _two_servers(ftpd, "")
    _failed_logins(second)
    assert wait_until(lambda: refused(second) is not None)
    assert refused(d) is None
    status, lines = ftpdctl(d, "ban", "info", "-v")
    assert f"    <VirtualHost>: second (127.0.0.2#{d.port})" in lines
    # a ban made by hand for one server only
    assert ftpdctl(d, "ban", "host", "-s", f"127.0.0.1#{d.port}", "127.0.0.9")[1] == ["host 127.0.0.9 banned"]
    assert refused(d, "127.0.0.9") == TAUNT.replace("127.0.0.1", "127.0.0.9")
    assert refused(second, "127.0.0.9") is None
    assert ftpdctl(d, "permit", "host", "-s", f"127.0.0.2#{d.port}", "127.0.0.9")[1] == \
        [f"host '127.0.0.9' not banned on 127.0.0.2#{d.port}"]


def test_match_any_server_bans_on_every_server(ftpd):
    d, second = _two_servers(ftpd, "BanOptions MatchAnyServer")
    _failed_logins(second)
    assert wait_until(lambda: refused(second) is not None)
    assert refused(d) == TAUNT


def test_bans_survive_hup_and_go_at_a_clean_stop(ftpd):
    d = ftpd(BAN)
    ftpdctl(d, "ban", "host", "127.0.0.1")
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: "configuration reloaded" in d.log())
    assert refused(d) == TAUNT
    d.stop()
    assert not (d.dir / "ban.tab").exists()


def test_a_session_killed_mid_run_leaves_the_table_usable(ftpd):
    d = ftpd(BAN + "MaxLoginAttempts 5\nBanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n")
    ftp = d.connect()
    pid = int(wait_until(lambda: _children(d.master_pid), 5) and _children(d.master_pid)[0])
    os.kill(pid, signal.SIGKILL)
    ftp.close()
    assert ftpdctl(d, "ban", "user", "x")[1] == ["user x banned"]
    assert "  x" in ftpdctl(d, "ban", "info")[1]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("line, message", [
    ("BanOnEvent MaxLoginAttempts 0/00:00:00 00:00:05", "freq occurrences must be greater than 0"),
    ("BanOnEvent MaxLoginAttempts 1/00:00:00 00:00:05", "freq parameter cannot be '00:00:00'"),
    ("BanOnEvent MaxLoginAttempts 1/00:01:00 1h", "badly formatted duration parameter: '1h'"),
    ("BanOptions MatchEverything", "unknown BanOption 'MatchEverything'"),
    ("BanCacheOptions MatchServer Fast", "unknown BanCacheOption 'Fast'"),
    ("BanCache memcached", "unsupported BanCache driver 'memcached'"),
    ("MemcacheOptions NoBinaryProtocol", "binary protocol only"),
    ("BanControlsACLs kick allow user root", "unknown action: 'kick'"),
    ("DelayOnEvent LOGIN 100", "unknown/unsupported event: LOGIN"),
    ("DelayOnEvent USER 5-1", "error parsing delay parameter '5-1'"),
    ("RedisTimeouts 100 fast", "badly formatted IO timeout value: fast"),
    ("RedisServer 127.0.0.1:notaport", "badly formatted address"),
])
def test_bad_lines_are_file_line_errors(tmp_path, line, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"ServerName x\n{line}\n")
    r = subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and f"{conf}:2:" in out and message in out, out
    assert "Traceback" not in out


def test_ban_engine_without_a_table_does_not_start(tmp_path):
    conf = tmp_path / "p.conf"
    conf.write_text(fill(BASE_CONFIG, dict(port=free_port(), dir=tmp_path, host="127.0.0.1", ipv6="off"))
                    + "BanEngine on\n")
    for flag in ("-n", "-t"):
        r = subprocess.run([sys.executable, "-m", "proftpy", flag, "-c", str(conf)], capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=30)
        assert r.returncode != 0 and "missing required BanTable configuration" in r.stderr + r.stdout, flag


# -- the master refuses a banned host without forking --------------------------------------------------------
def _counting_master(tmp_path, config: str):
    """A real Master (the built-in modules plus one that writes the master's spawn and refusal events to a
    file), forked from the test."""
    from proftpy.module import Listener, Module, ModuleSet
    from proftpy.modules import MODULES
    d = Daemon(dir=tmp_path, port=free_port(), conf=tmp_path / "proftpy.conf")
    d.users = make_users(tmp_path)
    os.chmod(tmp_path, 0o755)
    d.conf.write_text(fill(config + "\n" + BASE_CONFIG + AUTH_CONFIG,
                           dict(port=d.port, dir=tmp_path, host="127.0.0.1", ipv6="off")))
    events = tmp_path / "events.log"

    def record(name):
        def listener(**_):
            with open(events, "a") as f:
                f.write(name + "\n")
        return Listener(name, listener)

    counter = Module("mod_count_test.c", master_events=(record("core.child-spawned"),
                                                         record("core.connection-refused")))
    pid = fork_master(d, ModuleSet(MODULES + [counter]))
    return d, pid, events


def test_the_master_refuses_a_banned_host_without_forking(tmp_path):
    d, pid, events = _counting_master(tmp_path, BAN)
    try:
        d.connect().quit()
        assert ftpdctl(d, "ban", "host", "127.0.0.1")[1] == ["host 127.0.0.1 banned"]
        before = events.read_text().splitlines().count("core.child-spawned")
        n, start = 300, time.perf_counter()
        for _ in range(n):
            with socket.create_connection((d.host, d.port), timeout=5) as s:
                assert s.recv(200).startswith(b"530 Go away")
        took = time.perf_counter() - start
        assert wait_until(lambda: events.read_text().count("core.connection-refused") >= n)
        assert events.read_text().splitlines().count("core.child-spawned") == before
        print(f"\nbanned flood: {n} connections refused by the master in {took:.2f} s ({n / took:.0f}/s), "
              "no fork")
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


def test_a_user_defined_event_of_the_master_bans(ftpd):
    d = ftpd(BAN + "MaxConnectionRate 1 5\nBanOnEvent core.max-connection-rate 2/00:01:00 00:01:00\n")
    first = d.connect()                              # kept open: the master counts the sessions it runs
    for _ in range(2):
        refused(d)                                   # over MaxConnectionRate: counted by the master
    first.close()
    assert wait_until(lambda: "  127.0.0.1" in ftpdctl(d, "ban", "info")[1], 10)
