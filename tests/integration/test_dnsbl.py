"""mod_dnsbl: clients a DNS blacklist lists are refused (or, with `deny,allow`, the only ones admitted), answered
by the system resolver from a hosts file bind-mounted over /etc/hosts in the daemon's own mount namespace (the
machine's /etc/hosts is never touched); side by side with Debian's ProFTPD and its mod_dnsbl."""

from __future__ import annotations

import ftplib
import re
import time
from pathlib import Path

import pytest

from conftest import (IS_ROOT, PASSWORDS, listening, make_users, refused_config, restart_with_mount, side_by_side,
                      wait_until)

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="a private /etc/hosts needs a mount namespace, as root")



@pytest.fixture
def tmp_path(open_tmp_path):
    """Debian's ProFTPD's sessions run as nobody and as the test users: the test's files live where they can reach
    them."""
    return open_tmp_path


NIBBLES_OF_LOOPBACK6 = ".".join("1" + "0" * 31)          # ::1 in RFC 5782's form
LISTS = {                                                 # name in the blacklists -> the address it resolves to
    "2.0.0.127.dnsbl.test": "127.0.0.2",
    "4.0.0.127.other.test": "127.0.0.2",
    f"{NIBBLES_OF_LOOPBACK6}.dnsbl.test": "127.0.0.2",
}
# ProFTPD's mod_dnsbl.so needs ns_initparse from libresolv, which neither it nor proftpd is linked with (Debian's
# build): without the preload its LoadModule fails
RESOLV = {"LD_PRELOAD": "/lib/x86_64-linux-gnu/libresolv.so.2"}


def hosts_file(tmp_path: Path) -> str:
    """A copy of /etc/hosts with the blacklists' entries, and the shell command that puts it in place, with a
    resolv.conf naming a loopback name server no one serves: the TXT questions (and the names the hosts file does
    not hold) are refused on loopback at once, never sent to the machine's resolver."""
    hosts = tmp_path / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + "".join(f"{ip} {name}\n" for name, ip in LISTS.items()))
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    return f'mount --bind "{hosts}" /etc/hosts && mount --bind "{resolv}" /etc/resolv.conf'


def attempt(port: int, src: str, host: str = "127.0.0.1") -> str:
    """What a client bound to `src` gets: "in" (logged in as alice) or "closed" (closed before any greeting)."""
    ftp = ftplib.FTP(timeout=5)
    try:
        ftp.connect(host, port, source_address=(src, 0))
    except ConnectionRefusedError:
        raise                               # not listening: no answer at all
    except (EOFError, ConnectionError):
        return "closed"
    try:
        ftp.login("alice", PASSWORDS["alice"])
        return "in"
    finally:
        ftp.close()


def started(ftpd, tmp_path: Path, config: str, host: str = "127.0.0.1"):
    d = ftpd(config, host=host)
    restart_with_mount(d, hosts_file(tmp_path))
    return d


def log_lines(path: Path) -> list[str]:
    return [re.sub(r"^.*?\]: ", "", line) for line in path.read_text().splitlines()]


def test_a_listed_client_is_closed_before_the_greeting(ftpd, tmp_path):
    d = started(ftpd, tmp_path, f"DNSBLEngine on\nDNSBLPolicy allow,deny\nDNSBLDomain .dnsbl.test\n"
                                f"DNSBLLog {tmp_path}/dnsbl.log\n")
    assert attempt(d.port, "127.0.0.2") == "closed"
    assert attempt(d.port, "127.0.0.3") == "in"
    assert wait_until(lambda: "error initializing session" in d.log())
    refused = [line for line in d.log().splitlines() if "127.0.0.2[" in line]
    assert refused and all("session opened" not in line for line in refused)
    assert refused[0].endswith("mod_dnsbl.c: error initializing session: Permission denied")
    assert log_lines(tmp_path / "dnsbl.log") == [
        "for DNSBLDomain 'dnsbl.test', resolving DNS name '2.0.0.127.dnsbl.test'",
        "found record for DNS name '2.0.0.127.dnsbl.test', client address has been blacklisted",
        "client address '127.0.0.2' is listed by DNSBLDomain 'dnsbl.test', rejecting connection",
        "client not allowed by DNSBLPolicy, rejecting connection",
        "for DNSBLDomain 'dnsbl.test', resolving DNS name '3.0.0.127.dnsbl.test'",
        "no record returned for DNS name '3.0.0.127.dnsbl.test', client address is not blacklisted"]


def test_without_a_policy_only_listed_clients_get_in(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "DNSBLEngine on\nDNSBLDomain dnsbl.test\n")     # ProFTPD's code: deny,allow
    assert attempt(d.port, "127.0.0.2") == "in"
    assert attempt(d.port, "127.0.0.3") == "closed"


def test_every_domain_is_asked_in_turn(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "DNSBLEngine on\nDNSBLPolicy allow,deny\nDNSBLDomain dnsbl.test\n"
                                "DNSBLDomain other.test\n")
    assert [attempt(d.port, src) for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4")] == ["closed", "in", "closed"]


def test_engine_off_asks_nothing(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "DNSBLEngine off\nDNSBLPolicy allow,deny\nDNSBLDomain dnsbl.test\n"
                                f"DNSBLLog {tmp_path}/dnsbl.log\n")
    assert attempt(d.port, "127.0.0.2") == "in"
    assert not (tmp_path / "dnsbl.log").exists()


def test_a_vhost_has_its_own_lists(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "DNSBLEngine on\nDNSBLPolicy allow,deny\nDNSBLDomain other.test\n"
                                "<VirtualHost 127.0.0.9>\nPort {port}\nDNSBLEngine on\nDNSBLPolicy allow,deny\n"
                                "DNSBLDomain dnsbl.test\n"
                                "AuthOrder mod_auth_file.c\nAuthUserFile {dir}/ftpd.passwd\n"
                                "AuthGroupFile {dir}/ftpd.group\n</VirtualHost>\n")
    assert [attempt(d.port, src) for src in ("127.0.0.2", "127.0.0.4")] == ["in", "closed"]
    assert [attempt(d.port, src, host="127.0.0.9") for src in ("127.0.0.2", "127.0.0.4")] == ["closed", "in"]


def test_an_ipv6_client_is_asked_by_its_nibbles(ftpd, tmp_path):
    d = started(ftpd, tmp_path, "DNSBLEngine on\nDNSBLPolicy allow,deny\nDNSBLDomain dnsbl.test\n"
                                f"DNSBLLog {tmp_path}/dnsbl.log\n", host="::1")
    assert attempt(d.port, "::1", host="::1") == "closed"
    assert f"resolving DNS name '{NIBBLES_OF_LOOPBACK6}.dnsbl.test'" in (tmp_path / "dnsbl.log").read_text()


def test_bad_policy_is_a_config_error(tmp_path):
    assert "t.conf:2: DNSBLPolicy: 'deny' is not one of the approved DNSBLPolicy settings" in \
        refused_config(tmp_path, "DNSBLPolicy deny")


@pytest.mark.slow
def test_side_by_side_with_proftpd(tmp_path):
    """The same clients admitted and refused, the same DNSBLLog lines, as Debian's ProFTPD's mod_dnsbl, with
    ProFTPD's default policy and with allow,deny."""
    config = ("LoadModule mod_dnsbl.c\nDNSBLEngine on\nDNSBLDomain .dnsbl.test\nDNSBLDomain other.test\n"
              "DNSBLLog {dir}/dnsbl.log\n")
    mount = hosts_file(tmp_path)

    def drive(port, run):
        deadline = time.monotonic() + 10
        while True:                 # (the pid file may come before the listener; probing it would be a client)
            try:
                outcomes = [attempt(port, "127.0.0.2")]
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "not listening"
                time.sleep(0.05)
        outcomes += [attempt(port, src) for src in ("127.0.0.3", "127.0.0.4")]
        return outcomes, log_lines(run / "dnsbl.log")
    seen = {}
    for name, policy in (("default", ""), ("allow-deny", "DNSBLPolicy allow,deny\n")):
        base = tmp_path / name
        base.mkdir()
        make_users(base)
        ran = side_by_side(base, config + policy, drive, mount=mount, env=RESOLV)
        assert ran["proftpy"] == ran["proftpd"], name
        seen[name] = ran["proftpd"][0]
    assert seen == {"default": ["in", "closed", "in"], "allow-deny": ["closed", "in", "closed"]}



def host_then_noop(port: int, src: str) -> list[str]:
    """The replies a client bound to `src` gets to HOST ftp.example.test and then NOOP ("closed" once it is)."""
    ftp = ftplib.FTP(timeout=5)
    ftp.connect("127.0.0.1", port, source_address=(src, 0))
    replies = []
    try:
        for line in ("HOST ftp.example.test", "NOOP"):
            try:
                replies.append(ftp.sendcmd(line))
            except ftplib.Error as e:
                replies.append(str(e))
    except (EOFError, ConnectionError):
        replies.append("closed")
    finally:
        ftp.close()
    return replies


@pytest.mark.slow
def test_host_naming_a_server_with_lists_checks_the_client_then_as_proftpd(tmp_path):
    config = ('LoadModule mod_dnsbl.c\n<VirtualHost 127.0.0.1>\nServerName "named"\nPort {port}\n'
              "ServerAlias ftp.example.test\nDNSBLEngine on\nDNSBLPolicy allow,deny\nDNSBLDomain dnsbl.test\n"
              "</VirtualHost>\n")
    make_users(tmp_path)

    def drive(port, run):
        assert wait_until(lambda: listening(port), 10)      # (a client of the main server: no lists there)
        return [host_then_noop(port, src) for src in ("127.0.0.2", "127.0.0.3")]
    ran = side_by_side(tmp_path, config, drive, mount=hosts_file(tmp_path), env=RESOLV)
    assert ran["proftpy"] == ran["proftpd"]
    assert ran["proftpd"] == [["closed"], ["220 ProFTPD Server (named) [127.0.0.1]", "200 NOOP command successful"]]
