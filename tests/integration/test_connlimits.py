"""Max* limits. The counting is checked against a real scoreboard file filled by the test; the live tests drive
the daemon and need the session scoreboard module (they are skipped, saying so, until it is registered)."""

import ftplib
import os
import time

import pytest

from conftest import PASSWORDS, refused_config
from proftpy.access import connlimits
from proftpy.access.connlimits import LoginLimits, TransferLimit
from proftpy.scoreboard import Scoreboard

SERVER = "127.0.0.1:2121"


@pytest.fixture
def board(tmp_path):
    os.chmod(tmp_path, 0o755)
    sb = Scoreboard.create(str(tmp_path / "sb"), master_pid=os.getpid())
    yield sb
    sb.close()


def add(sb, pid, user="(none)", addr="127.0.0.1", cls="", cmd="idle", server=SERVER):
    sb.claim(pid, user=user, client_addr=addr, class_=cls, cmd=cmd, server_addr=server)


# -- counting, from a scoreboard file ------------------------------------------------------------------------------
def test_counts_follow_proftpd(board):
    add(board, 101, "alice", cls="local")
    add(board, 102, "alice", addr="10.0.0.9", cls="local")
    add(board, 103, "bob", addr="10.0.0.9")
    add(board, 104, cls="local")                               # not logged in: only the class counts it
    add(board, 105, "alice", server="127.0.0.1:21")            # another server: not counted
    add(board, 106, "alice", cls="local")                      # this session, just logged in
    c = connlimits.count_login(board.entries(), SERVER, "127.0.0.1", "alice", False, "local")
    assert (c.clients, c.host, c.user, c.hosts_per_user, c.cls) == (4, 2, 3, 2, 4)


def test_anonymous_sessions_count_only_the_anonymous_user(board):
    add(board, 101, "ftp")
    add(board, 102, "alice")
    c = connlimits.count_login(board.entries(), SERVER, "127.0.0.1", "ftp", True, None)
    assert c.clients == 1


@pytest.mark.parametrize("limits,expected", [
    (LoginLimits(max_clients=(2, None)), "Sorry, the maximum number of allowed clients (2) are already connected."),
    (LoginLimits(per_host=(1, None)), "Sorry, the maximum number of clients (1) from your host are already connected."),
    (LoginLimits(per_user=(1, "Only %m for you")), "Only 1 for you"),
    (LoginLimits(hosts_per_user=(1, None)), "Sorry, the maximum number of hosts (1) for this user are already "
                                            "connected."),
    (LoginLimits(per_class={"local": (1, None)}), "Sorry, the maximum number of clients (1) from your class are "
                                                  "already connected."),
    (LoginLimits(max_clients=(3, None)), None),
])
def test_login_limits_and_texts(board, limits, expected):
    add(board, 101, "alice", addr="10.0.0.9", cls="local")
    add(board, 102, "alice", cls="local")
    add(board, 103, "alice", cls="local")
    counts = connlimits.count_login(board.entries(), SERVER, "127.0.0.1", "alice", False, "local")
    refusal = connlimits.check_login(counts, limits, "local")
    assert (refusal.text if refusal else None) == expected
    if refusal:
        assert refusal.code == 530 and refusal.event.startswith("mod_auth.max-")


def test_connections_per_host_counts_unauthenticated_sessions(board):
    add(board, 101)
    add(board, 102)
    r = connlimits.check_connect(board.entries(), SERVER, "127.0.0.1", (1, None))
    assert r.text == "Sorry, the maximum number of connections (1) for your host are already connected."
    assert r.event == "mod_auth.max-connections-per-host"
    assert connlimits.check_connect(board.entries(), SERVER, "127.0.0.1", (2, None)) is None


def test_transfers_per_host_and_user(board):
    add(board, 101, "alice", cmd="RETR")
    add(board, 102, "bob", addr="10.0.0.9", cmd="RETR")
    entries = board.entries()
    host = [TransferLimit(("RETR",), 1)]
    r = connlimits.check_transfer(entries, SERVER, "RETR", "127.0.0.1", "carol", host, [], self_pid=103)
    assert (r.code, r.text) == (451, "Sorry, the maximum number of data transfers (1) from your host are "
                                     "currently being used.")
    assert connlimits.check_transfer(entries, SERVER, "STOR", "127.0.0.1", "carol", host, [], 103) is None
    user = [TransferLimit(("RETR", "STOR"), 1, "busy (%m)")]
    r = connlimits.check_transfer(entries, SERVER, "RETR", "10.0.0.7", "bob", [], user, 103)
    assert (r.code, r.text, r.event) == (451, "busy (1)", "mod_xfer.max-transfers-per-user")


@pytest.mark.parametrize("args", [["RETR"], ["LIST", "1"], ["RETR", "0"], ["RETR", "x"]])
def test_bad_transfer_limits(args):
    with pytest.raises(ValueError):
        connlimits.parse_transfer_limit(args, ("APPE", "RETR", "STOR", "STOU"))


def test_command_rate_delays_grow_with_the_excess():
    now = [0.0]
    rate = connlimits.CommandRate(2, 1, clock=lambda: now[0])
    assert [rate.delay() for _ in range(4)] == [0.0, 0.0, pytest.approx(0.1), pytest.approx(0.2)]
    now[0] = 5.0
    assert rate.delay() == 0.0


# -- live ----------------------------------------------------------------------------------------------------------
def client(d, source=None):
    ftp = ftplib.FTP(timeout=10, source_address=(source, 0) if source else None)
    ftp.connect(d.host, d.port)
    return ftp


def refused_login(d, user, text, source=None):
    ftp = client(d, source)
    with pytest.raises(ftplib.error_perm) as e:
        ftp.login(user, PASSWORDS[user])
    assert str(e.value) == f"530 {text}"
    with pytest.raises((EOFError, ConnectionError)):       # and the session is gone
        ftp.sendcmd("NOOP")


def test_max_command_rate_delays_commands(ftpd):
    d = ftpd("MaxCommandRate 2 1\n")
    ftp = client(d)
    start = time.monotonic()
    for _ in range(5):
        ftp.sendcmd("NOOP")
    assert time.monotonic() - start >= 0.5
    ftp.quit()
    assert "MaxCommandRate" in d.log()


def test_max_clients(ftpd):
    d = ftpd("MaxClients 1\n")
    first = d.login("alice")
    refused_login(d, "bob", "Sorry, the maximum number of allowed clients (1) are already connected.")
    first.quit()


def test_max_clients_per_host(ftpd):
    d = ftpd("MaxClientsPerHost 1\n")
    first = d.login("alice")
    refused_login(d, "bob", "Sorry, the maximum number of clients (1) from your host are already connected.")
    client(d, "127.0.0.2").login("bob", PASSWORDS["bob"])
    first.quit()


def test_max_clients_per_user(ftpd):
    d = ftpd('MaxClientsPerUser 1 "One %m per user"\n')
    first = d.login("alice")
    refused_login(d, "alice", "One 1 per user")
    d.login("bob").quit()
    first.quit()


def test_max_clients_per_class(ftpd):
    d = ftpd("<Class local>\n  From 127.0.0.0/8\n</Class>\nMaxClientsPerClass local 1\n")
    first = d.login("alice")
    refused_login(d, "bob", "Sorry, the maximum number of clients (1) from your class are already connected.")
    first.quit()


def test_max_hosts_per_user(ftpd):
    d = ftpd("MaxHostsPerUser 1\n")
    first = d.login("alice")
    refused_login(d, "alice", "Sorry, the maximum number of hosts (1) for this user are already connected.",
                  source="127.0.0.2")
    d.login("alice").quit()                                    # same host again is fine
    first.quit()


def test_max_connections_per_host(ftpd):
    d = ftpd("MaxConnectionsPerHost 1\n")
    first = client(d)
    with pytest.raises(ftplib.error_perm) as e:
        client(d)
    assert str(e.value) == "530 Sorry, the maximum number of connections (1) for your host are already connected."
    client(d, "127.0.0.2").quit()
    first.quit()


def test_max_transfers_per_host(ftpd):
    d = ftpd("DefaultRoot {dir}\nMaxTransfersPerHost RETR 1\n")
    big = d.home("alice") / "big.bin"
    with open(big, "wb") as f:
        f.truncate(256 << 20)                                  # sparse: the first RETR stays busy
    first = d.login("alice")
    first.voidcmd("TYPE I")
    conn = first.transfercmd("RETR /home/alice/big.bin")
    conn.recv(1024)
    second = d.login("bob")
    second.voidcmd("TYPE I")
    with pytest.raises(ftplib.error_temp) as e:
        second.retrbinary("RETR /home/alice/big.bin", lambda b: None)
    assert str(e.value) == ("451 Sorry, the maximum number of data transfers (1) from your host are currently "
                            "being used.")
    conn.close()
    second.quit()


def test_max_load_turns_sessions_away_before_the_greeting(ftpd):
    d = ftpd('SyslogLevel info\nMaxLoad 0 "Too busy, come back later"\n')
    ftp = ftplib.FTP()
    with pytest.raises(ftplib.error_temp, match="^421 Too busy, come back later$"):
        ftp.connect("127.0.0.1", d.port, timeout=10)
    assert "MaxLoad (0.00) reached: connection denied" in d.log()


def test_max_load_above_the_load_lets_sessions_in_and_shows_itself(ftpd):
    d = ftpd("DefaultRoot ~\nMaxLoad 10000\nDisplayLogin /w.msg\n")
    (d.home("alice") / "w.msg").write_text("load %{mod_load.curr_load} of %{mod_load.max_load}\n")
    lines = d.connect().login("alice", PASSWORDS["alice"]).splitlines()
    load, limit = lines[0].split(" ")[1::2]
    assert limit == "10000.00" and abs(float(load) - os.getloadavg()[0]) < 5


@pytest.mark.parametrize("line, message", [("MaxLoad", "incorrect number of parameters"),
                                           ("MaxLoad -1", "positive load limit required"),
                                           ("MaxLoad high", "expected a load average or none, not 'high'"),
                                           ("<Anonymous /tmp>\nMaxLoad 2\n</Anonymous>", "not allowed")])
def test_max_load_mistakes(tmp_path, line, message):
    assert message in refused_config(tmp_path, line)
