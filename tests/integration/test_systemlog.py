"""The SystemLog lines a session writes are ProFTPD 1.3.8's, word for word after `proftpy[pid]`: the
`<server> (<client name>[<client ip>]): ` prefix and the message texts (recorded from Debian's proftpd with
scripts/compare_systemlog.py). fail2ban's proftpd filter reads them once its daemon name is proftpy (conf/fail2ban/)."""

from __future__ import annotations

import ftplib
import io
import re
import socket
import time

import pytest

from conftest import PASSWORDS, make_users, wait_until

ORIGIN = "127.0.0.1 (127.0.0.1[127.0.0.1])"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \S+ proftpy\[(\d+)\] (.*)$")
# the shape fail2ban's proftpd filter needs (its prefregex): `<server> (<name>[<HOST>]): USER|SECURITY|Maximum ...`
FAIL2BAN_SHAPE = re.compile(r"proftpy\[\d+\] \S+ \(\S+\[(?P<host>[0-9a-f.:]+)\]\)[: -]+ (?:USER|SECURITY|Maximum) .+$")


def session_lines(d) -> list[str]:
    """What follows `proftpy[pid] ` in every line the sessions wrote (the master's lines have `proftpy[pid]:`)."""
    return [m.group(2) for m in map(LINE.match, d.log().splitlines()) if m and not m.group(2).startswith(":")]


def wait_lines(d, last: str, timeout: float = 5.0) -> list[str]:
    """The session lines once one ends with `last` (sessions write after the client has its reply)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = session_lines(d)
        if any(line.endswith(last) for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def at(*texts: str) -> list[str]:
    return [f"{ORIGIN}: {t}" for t in texts]


def failed_login(d, user: str, password: str) -> None:
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login(user, password)


# -- at the default SyslogLevel (notice): only failures and refusals -----------------------------------------------
def test_wrong_password(ftpd):
    d = ftpd()
    failed_login(d, "alice", "wrong")
    assert wait_lines(d, "Incorrect password") == at("USER alice (Login failed): Incorrect password")


def test_unknown_user(ftpd):
    d = ftpd()
    failed_login(d, "nosuch", "x")
    assert wait_lines(d, "found") == at(f"USER nosuch: no such user found from 127.0.0.1 [127.0.0.1] to "
                                        f"127.0.0.1:{d.port}")


def test_max_login_attempts(ftpd):
    d = ftpd("MaxLoginAttempts 2")
    with d.connect() as ftp:
        for password in ("a", "b"):
            with pytest.raises(ftplib.error_perm, match="^530 "):
                ftp.login("alice", password)
    assert wait_lines(d, "connection refused") == at("USER alice (Login failed): Incorrect password",
                                                     "USER alice (Login failed): Incorrect password",
                                                     "Maximum login attempts (2) exceeded, connection refused")


def test_root_login_is_a_security_violation_whatever_the_password(ftpd, tmp_path):
    from proftpy.auth.crypt import crypt_hash
    users = make_users(tmp_path)
    with open(tmp_path / "ftpd.passwd", "a") as f:
        f.write(f"toor:{crypt_hash('toor-secret', 'sha512')}:0:0::{tmp_path}:/bin/sh\n")
    d = ftpd()
    d.users = users
    failed_login(d, "toor", "toor-secret")
    failed_login(d, "toor", "wrong")
    assert wait_lines(d, "attempted") == at("SECURITY VIOLATION: Root login attempted",
                                            "SECURITY VIOLATION: Root login attempted")


def test_limit_login_denial(ftpd):
    d = ftpd("<Limit LOGIN>\nDenyUser alice\n</Limit>")
    failed_login(d, "alice", PASSWORDS["alice"])
    assert wait_lines(d, "denies login") == at("USER alice (Login failed): Limit access denies login")


def test_ftpshut_refusal(ftpd, tmp_path, monkeypatch):
    shutmsg = tmp_path / "shutmsg"
    shutmsg.write_text("2000 01 01 00 00 00 0000 0000\nmaintenance\n")
    monkeypatch.setenv("PROFTPY_SHUTMSG", str(shutmsg))
    d = ftpd()
    with socket.create_connection((d.host, d.port), timeout=10) as s:
        assert s.makefile("rb").readline().startswith(b"500 ")
    assert wait_lines(d, "[127.0.0.1]") == at("connection refused (maintenance) from 127.0.0.1 [127.0.0.1]")


def test_a_good_session_writes_nothing_at_notice(ftpd):
    d = ftpd("DefaultRoot ~")
    (d.home("alice") / "f.txt").write_text("data")
    with d.login("alice") as ftp:
        ftp.retrbinary("RETR f.txt", io.BytesIO().write)
        ftp.storbinary("STOR g.txt", io.BytesIO(b"x"))
    failed_login(d, "alice", "wrong")          # a later line proves the first session's lines would be there
    assert wait_lines(d, "Incorrect password") == at("USER alice (Login failed): Incorrect password")


# -- SyslogLevel info: sessions opened and closed, logins, the login timeout ----------------------------------------
def test_info_connect_and_quit(ftpd):
    d = ftpd("SyslogLevel info")
    with d.connect() as ftp:
        ftp.quit()
    assert wait_lines(d, "closed.") == at("FTP session opened.", "FTP session closed.")


def test_info_login_chroot_and_transfer(ftpd):
    d = ftpd("SyslogLevel info\nDefaultRoot ~")
    (d.home("alice") / "f.txt").write_text("data")
    with d.login("alice") as ftp:
        ftp.retrbinary("RETR f.txt", io.BytesIO().write)
        ftp.quit()
    assert wait_lines(d, "closed.") == at("FTP session opened.", "USER alice: Login successful.",
                                          "FTP session closed.")


def test_info_login_timeout(ftpd):
    d = ftpd("SyslogLevel info\nTimeoutLogin 1")
    with d.connect() as ftp:
        assert ftp.getline().startswith("421 Login timeout")
    assert wait_lines(d, "closed.") == at("FTP session opened.", "Login timeout exceeded, disconnected",
                                          "FTP session closed.")


def test_info_idle_timeout_writes_no_line_of_its_own(ftpd):
    d = ftpd("SyslogLevel info\nTimeoutIdle 1\nDefaultRoot ~")
    with d.login("alice") as ftp:
        assert ftp.getline().startswith("421 Idle timeout")
    assert wait_lines(d, "closed.") == at("FTP session opened.", "USER alice: Login successful.",
                                          "FTP session closed.")


def test_info_failed_logins_and_anonymous(ftpd, tmp_path):
    d = ftpd("SyslogLevel info\n<Anonymous {home}/alice>\nUser alice\nGroup ftpusers\nUserAlias anonymous alice\n"
             "</Anonymous>")
    with d.connect() as ftp:
        ftp.login("anonymous", "me@example.org")
    assert wait_lines(d, "closed.") == at("FTP session opened.", "ANON alice: Login successful.",
                                          "FTP session closed.")


# -- a <VirtualHost>'s sessions log at its own SyslogLevel (ProFTPD reads its main_server's: in a session, the vhost)
VHOST = "<VirtualHost 127.0.0.2>\nPort {port}\n%s</VirtualHost>\n"
AT_VHOST = "127.0.0.2 (127.0.0.1[127.0.0.1])"


def quit_at(d, address: str) -> None:
    with ftplib.FTP() as ftp:
        ftp.connect(address, d.port, timeout=10)
        ftp.quit()


@pytest.mark.parametrize("config", [VHOST % "SyslogLevel info\n",
                                    "SyslogLevel notice\n<Global>\nSyslogLevel info\n</Global>\n" + VHOST % ""],
                         ids=["its-own", "global"])
def test_a_vhost_at_info_under_a_server_config_at_notice_logs_its_sessions(ftpd, config):
    d = ftpd(config)
    with d.connect() as ftp:                    # the main server's "FTP session opened." would come first
        with pytest.raises(ftplib.error_perm, match="^530 "):
            ftp.login("alice", "wrong")
    quit_at(d, "127.0.0.2")
    wait_lines(d, "Incorrect password")
    lines = wait_lines(d, f"{AT_VHOST}: FTP session closed.")
    assert [line for line in lines if not line.startswith(AT_VHOST)] == at(
        "USER alice (Login failed): Incorrect password")
    assert [line for line in lines if line.startswith(AT_VHOST)] == [f"{AT_VHOST}: FTP session opened.",
                                                                      f"{AT_VHOST}: FTP session closed."]


def test_a_vhost_without_a_level_logs_at_notice_under_a_server_config_at_info(ftpd):
    """The server config's SyslogLevel is not the vhost's: ProFTPD's default, notice, is."""
    from conftest import AUTH_CONFIG
    d = ftpd("SyslogLevel info\n" + VHOST % AUTH_CONFIG)
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.2", d.port, timeout=10)
        with pytest.raises(ftplib.error_perm, match="^530 "):
            ftp.login("alice", "wrong")
    assert wait_lines(d, "Incorrect password") == [f"{AT_VHOST}: USER alice (Login failed): Incorrect password"]


def test_host_moves_the_session_to_the_named_servers_level(ftpd):
    """The server config's "FTP session opened." (info, under its notice) is not written; after HOST, the named
    server's "FTP session closed." is."""
    d = ftpd('<VirtualHost 127.0.0.1>\nServerName "named"\nPort {port}\nServerAlias ftp.example.test\n'
             "SyslogLevel info\n</VirtualHost>\n")
    with d.connect() as ftp:
        ftp.sendcmd("HOST ftp.example.test")
        ftp.quit()
    assert wait_lines(d, "closed.") == at("FTP session closed.")


def test_master_lines_keep_their_own_prefix(ftpd):
    d = ftpd()
    failed_login(d, "alice", "wrong")
    wait_lines(d, "Incorrect password")
    assert re.search(r" proftpy\[\d+\]: proftpy \S+ standalone mode STARTUP$", d.log(), re.M)


# -- the shape fail2ban's proftpd filter reads ----------------------------------------------------------------------
def test_failed_logins_have_the_fail2ban_shape(ftpd, tmp_path):
    from proftpy.auth.crypt import crypt_hash
    users = make_users(tmp_path)
    with open(tmp_path / "ftpd.passwd", "a") as f:
        f.write(f"toor:{crypt_hash('toor-secret', 'sha512')}:0:0::{tmp_path}:/bin/sh\n")
    d = ftpd("MaxLoginAttempts 3")
    d.users = users
    with d.connect() as ftp:
        for user in ("alice", "nosuch", "toor"):
            with pytest.raises(ftplib.error_perm):
                ftp.login(user, "wrong")
    wait_lines(d, "connection refused")
    hits = [m for m in map(FAIL2BAN_SHAPE.search, d.log().splitlines()) if m]
    assert len(hits) == 4
    assert {m.group("host") for m in hits} == {"127.0.0.1"}


def test_log_options_for_systemds_journal(ftpd):
    """`LogOptions -Timestamp -Hostname +RoleBasedProcessLabels` (ProFTPD's advice under systemd): no time, no host,
    `daemon[pid]` and `session[pid]`; a <VirtualHost> with `-VirtualHost` drops its name before the client's."""
    d = ftpd("SyslogLevel info\nLogOptions -Timestamp -Hostname +RoleBasedProcessLabels\n"
             "<VirtualHost 127.0.0.2>\nPort {port}\nSyslogLevel info\nLogOptions -VirtualHost\n</VirtualHost>\n")
    for address in ("127.0.0.1", "127.0.0.2"):
        with ftplib.FTP() as ftp:
            ftp.connect(address, d.port, timeout=10)
            ftp.quit()
    assert wait_until(lambda: d.log().count("FTP session closed.") == 2)
    lines = d.log().splitlines()
    assert any(re.fullmatch(r"daemon\[\d+\]: proftpy \S+ standalone mode STARTUP", line) for line in lines), lines
    assert any(re.fullmatch(r"session\[\d+\] \S+ \(127\.0\.0\.1\[127\.0\.0\.1\]\): FTP session opened\.", line)
               for line in lines), lines
    assert any(re.fullmatch(r"\S+ \S+ \S+ proftpy\[\d+\] \(127\.0\.0\.1\[127\.0\.0\.1\]\): FTP session opened\.",
                            line) for line in lines), lines


def test_a_syslog_level_in_ifuser_takes_over_after_that_users_login(ftpd):
    """As in ProFTPD (mod_ifsession merges it into the server its log_write reads): alice's session, at notice until
    PASS, writes its info lines from then on; bob's stays at notice."""
    d = ftpd("<IfUser alice>\nSyslogLevel info\n</IfUser>\n")
    for user in ("bob", "alice"):
        with d.connect() as ftp:
            ftp.login(user, PASSWORDS[user])
            ftp.quit()
    assert wait_lines(d, "FTP session closed.") == at("USER alice: Login successful.", "FTP session closed.")
