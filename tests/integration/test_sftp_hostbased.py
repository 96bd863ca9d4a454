"""mod_sftp's hostbased logins (RFC 4252 section 9) with SFTPAuthorizedHostKeys `file:` and `sql:`: OpenSSH's sftp
signing with the client host's key through ssh-keysign (in a private mount namespace where a directory of the test
is /etc/ssh: the machine's own /etc/ssh is never touched), the project's SSH client for requests that lie, and
side by side with Debian's ProFTPD."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import IS_ROOT, make_users, refused_config

from ssh_client import MiniClient
from test_sftp import SSH_OPTS, keygen
from test_sftp_sql import rfc4716

KEYSIGN = "/usr/lib/openssh/ssh-keysign"
pytestmark = pytest.mark.skipif(not IS_ROOT or shutil.which("sftp") is None or shutil.which("unshare") is None
                                or not os.path.exists(KEYSIGN),
                                reason="needs root (a private mount namespace), OpenSSH's sftp and ssh-keysign")


@pytest.fixture
def tmp_path(open_tmp_path):
    return open_tmp_path


def client_host(base: Path, name: str = "etcssh", kind: str = "ed25519") -> Path:
    """A directory to be the client's /etc/ssh: its host key and an ssh_config that lets ssh-keysign sign."""
    etc = base / name
    etc.mkdir()
    keygen(etc / f"ssh_host_{kind}_key", kind, *(("-b", "2048") if kind == "rsa" else ()))
    (etc / "ssh_config").write_text("Host *\n  EnableSSHKeysign yes\n  HostbasedAuthentication yes\n")
    return etc


def hostbased(port: int, user: str, etc: Path, *opts: str) -> subprocess.CompletedProcess:
    """OpenSSH's sftp as root with `etc` bind-mounted on /etc/ssh in a mount namespace of its own."""
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           'mount --bind "$0" /etc/ssh && exec "$@"', str(etc), "sftp", "-b", "-", *SSH_OPTS,
                           "-o", "HostbasedAuthentication=yes", "-o", "PreferredAuthentications=hostbased", *opts,
                           "-P", str(port), f"{user}@127.0.0.1"], input="pwd\n", capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def hosts(tmp_path):
    """Users, the server's host key, two client hosts (`trusted`, whose key is in hostkeys, and `other`)."""
    make_users(tmp_path)
    keygen(tmp_path / "host", "ed25519")
    trusted = client_host(tmp_path, "trusted")
    client_host(tmp_path, "other")
    (tmp_path / "hostkeys").write_text(rfc4716(trusted / "ssh_host_ed25519_key.pub"))
    return tmp_path


def config(base: Path, stores: str, extra: str = "") -> str:
    return (f"SFTPEngine on\nSFTPHostKey {base}/host\nSFTPLog {base}/sftp.log\n"
            f"SFTPAuthorizedHostKeys {stores}\n{extra}")


def test_trusted_host_logs_in_and_another_host_does_not(ftpd, hosts):
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys", "DefaultRoot ~\n"))
    res = hostbased(d.port, "alice", hosts / "trusted")
    assert res.returncode == 0 and "Remote working directory: /" in res.stdout, res.stderr
    assert hostbased(d.port, "bob", hosts / "other").returncode == 255
    log = (hosts / "sftp.log").read_text()
    assert "user 'alice' authenticated via 'hostbased' method" in log
    assert "no matching public key found for host 'localhost.'" in log


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_rsa_and_ecdsa_host_keys(ftpd, hosts, kind):
    etc = client_host(hosts, kind, kind)
    (hosts / "hostkeys").write_text(rfc4716(etc / f"ssh_host_{kind}_key.pub"))
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys"))
    res = hostbased(d.port, "alice", etc)
    assert res.returncode == 0, res.stderr
    assert hostbased(d.port, "alice", hosts / "trusted").returncode == 255


def test_per_user_host_key_files(ftpd, hosts):
    """`~/` in a file store's path: the hosts whose users may log in as that user, in the user's home."""
    (hosts / "home" / "alice" / "hostkeys").write_text(rfc4716(hosts / "trusted" / "ssh_host_ed25519_key.pub"))
    d = ftpd(config(hosts, "file:~/hostkeys"))
    assert hostbased(d.port, "alice", hosts / "trusted").returncode == 0
    assert hostbased(d.port, "bob", hosts / "trusted").returncode == 255
    assert "error opening SFTPAuthorizedHostKeys 'file:" in (hosts / "sftp.log").read_text()


def test_host_keys_from_sql_by_host_name(ftpd, hosts):
    db = hosts / "keys.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE sftphostkeys (host TEXT NOT NULL, key TEXT NOT NULL)")
        conn.execute("INSERT INTO sftphostkeys VALUES ('localhost.', ?)",
                     (rfc4716(hosts / "trusted" / "ssh_host_ed25519_key.pub"),))
        conn.execute("INSERT INTO sftphostkeys VALUES ('elsewhere.', ?)",
                     (rfc4716(hosts / "other" / "ssh_host_ed25519_key.pub"),))
    conn.close()
    d = ftpd(f"SQLConnectInfo {db}\nSQLAuthenticate off\n"
             "SQLNamedQuery hostkeys SELECT \"key FROM sftphostkeys WHERE host = '%{0}'\"\n"
             + config(hosts, "sql:/hostkeys"))
    assert hostbased(d.port, "alice", hosts / "trusted").returncode == 0
    assert hostbased(d.port, "alice", hosts / "other").returncode == 255     # its key is another host name's
    assert "SQLNamedQuery 'hostkeys' returned 1 row" in (hosts / "sftp.log").read_text()


def test_reverse_dns_checks_the_host_name_sent(ftpd, hosts):
    """UseReverseDNS on: the name the client sent must be its address's DNS name (OpenSSH's trailing dot aside);
    the project's client says it is someone else."""
    from proftpy.net.ssh.keys import load_host_key
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys").replace("SFTPEngine on", "UseReverseDNS on\nSFTPEngine on"))
    assert hostbased(d.port, "alice", hosts / "trusted").returncode == 0
    key = load_host_key(str(hosts / "trusted" / "ssh_host_ed25519_key"))
    c = MiniClient(d.port)
    try:
        assert c.hostbased("alice", key, host="trusted.example.org.")[0] == 51
    finally:
        c.close()
    assert "client-sent FQDN 'trusted.example.org.' DOES NOT match client DNS name 'localhost'" in \
        (hosts / "sftp.log").read_text()


def test_requests_that_lie_are_refused(ftpd, hosts):
    """A signature by another key, over another host name, a key of another type than its algorithm, an unknown
    user, a key blob that does not parse: each a failure and a failed attempt; the session goes on until
    MaxLoginAttempts, then a disconnect; the right request still logs in."""
    from proftpy.net.ssh.keys import load_host_key
    from ssh_client import ServerClosed
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys", "MaxLoginAttempts 6\n"))
    key = load_host_key(str(hosts / "trusted" / "ssh_host_ed25519_key"))
    other = load_host_key(str(hosts / "other" / "ssh_host_ed25519_key"))
    c = MiniClient(d.port)
    try:
        assert c.hostbased("alice", key, signer=other)[0] == 51
        assert c.hostbased("alice", key, signed_host="elsewhere.")[0] == 51
        assert c.hostbased("alice", key, algorithm="rsa-sha2-256")[0] == 51
        assert c.hostbased("alice", key, blob=b"\x00\x00\x00\x07ssh-dss")[0] == 51
        assert c.hostbased("alice", key)[0] == 52
    finally:
        c.close()
    c = MiniClient(d.port)
    try:
        with pytest.raises(ServerClosed):
            for _ in range(7):
                assert c.hostbased("alice", other)[0] == 51
    finally:
        c.close()
    log = (hosts / "sftp.log").read_text()
    assert "failed to verify 'ssh-ed25519' signature on hostbased auth request" in log
    assert "unable to verify that given host key matches given 'rsa-sha2-256' algorithm" in log
    assert "unsupported host key algorithm 'ssh-ed25519' requested" in log
    assert "Maximum login attempts (6) exceeded" in log


def test_unknown_user_refused(ftpd, hosts):
    from proftpy.net.ssh.keys import load_host_key
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys"))
    c = MiniClient(d.port)
    try:
        assert c.hostbased("nosuchuser", load_host_key(str(hosts / "trusted" / "ssh_host_ed25519_key")))[0] == 51
    finally:
        c.close()
    assert "no account for user 'nosuchuser' found" in (hosts / "sftp.log").read_text()


def test_hostbased_plus_password_chain(ftpd, hosts):
    """`SFTPAuthMethods hostbased+password`: the host key is a partial success, then the password logs in; a
    password alone is not offered."""
    from proftpy.net.ssh.keys import load_host_key
    from proftpy.net.ssh.wire import Reader
    from conftest import PASSWORDS
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys", "SFTPAuthMethods hostbased+password\n"))
    c = MiniClient(d.port)
    try:
        answer = c.hostbased("alice", load_host_key(str(hosts / "trusted" / "ssh_host_ed25519_key")))
        r = Reader(answer, 1)
        assert (answer[0], r.text(), r.boolean()) == (51, "password", True)
        assert c.login("alice", PASSWORDS["alice"])
    finally:
        c.close()
    c = MiniClient(d.port)
    try:
        assert not c.login("alice", PASSWORDS["alice"])
    finally:
        c.close()


def test_truncated_hostbased_request_disconnects(ftpd, hosts):
    from proftpy.net.ssh.wire import Writer
    from ssh_client import ServerClosed
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys"))
    c = MiniClient(d.port)
    try:
        c.send(Writer().byte(5).string(b"ssh-userauth").bytes())
        assert c.recv()[0] == 6
        c.send(Writer().byte(50).string(b"alice").string(b"ssh-connection").string(b"hostbased")
               .string(b"ssh-ed25519").u32(1 << 30).bytes())
        with pytest.raises(ServerClosed) as e:
            c.recv()
        assert e.value.reason == 2                      # SSH_DISCONNECT_PROTOCOL_ERROR
    finally:
        c.close()
    assert "unable to read 'hostbased' USERAUTH_REQUEST" in (hosts / "sftp.log").read_text()
    assert hostbased(d.port, "alice", hosts / "trusted").returncode == 0


def test_default_methods_offer_hostbased(ftpd, hosts):
    d = ftpd(config(hosts, f"file:{hosts}/hostkeys"))
    res = subprocess.run(["ssh", *SSH_OPTS, "-v", "-o", "PreferredAuthentications=none", "-p", str(d.port),
                          "alice@127.0.0.1", "true"], capture_output=True, text=True, timeout=30)
    # ProFTPD's default order; keyboard-interactive has its driver (mod_sftp_pam's SFTPPAMEngine on by default)
    assert "Authentications that can continue: hostbased,keyboard-interactive,password" in res.stderr, res.stderr


@pytest.mark.parametrize("line, text", [
    ("SFTPAuthorizedHostKeys ldap:", "unsupported key store: 'ldap'"),
    ("SFTPAuthorizedHostKeys sql:hostkeys", "badly formatted store info 'hostkeys'"),
    ("SFTPAuthorizedHostKeys /etc/hostkeys", "badly formatted parameter: '/etc/hostkeys'"),
    ("SFTPAuthorizedHostKeys file:/etc/hostkeys.%u", "%u is not replaced in a host key file's path"),
])
def test_bad_host_key_stores_refused_at_load(tmp_path, line, text):
    err = refused_config(tmp_path, line)
    assert "t.conf:2: " in err and text in err, err


def test_hostbased_without_host_keys_refused_at_start(tmp_path):
    keygen(tmp_path / "host", "ed25519")
    err = refused_config(tmp_path, f"SFTPEngine on\nSFTPHostKey {tmp_path}/host\nSFTPAuthMethods hostbased password")
    assert "t.conf:4: " in err and "cannot support authentication method 'hostbased' without " \
        "SFTPAuthorizedHostKeys configuration" in err, err


# -- side by side with Debian's ProFTPD ----------------------------------------------------------------------------
def test_same_hostbased_logins_as_proftpd(tmp_path):
    """Debian's ProFTPD (mod_sftp, mod_sql_sqlite, mod_sftp_sql) and proftpy with the same host key stores: a file
    in alice's home (`~/`; bob has none) and an SQL store by host name; OpenSSH's sftp from the trusted and the other
    host, as alice and bob: who gets in."""
    from conftest import PROFTPD, side_by_side
    if not os.path.exists(PROFTPD) or not all(os.path.exists(f"/usr/lib/proftpd/{m}.so") for m in (
            "mod_sftp", "mod_sftp_sql", "mod_sql", "mod_sql_sqlite")):
        pytest.skip("Debian's ProFTPD with mod_sftp_sql (proftpd-mod-crypto) and mod_sql_sqlite is not installed")
    make_users(tmp_path)
    keygen(tmp_path / "host", "ed25519")
    trusted, other, third = (client_host(tmp_path, n) for n in ("trusted", "other", "third"))
    (tmp_path / "home" / "alice" / "hostkeys").write_text(rfc4716(trusted / "ssh_host_ed25519_key.pub"))
    db = tmp_path / "keys.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE sftphostkeys (host TEXT NOT NULL, key TEXT NOT NULL)")
        conn.execute("INSERT INTO sftphostkeys VALUES ('localhost.', ?)",
                     (rfc4716(other / "ssh_host_ed25519_key.pub"),))
    conn.close()
    os.chmod(db, 0o644)
    conf = f"""LoadModule mod_sql.c
LoadModule mod_sql_sqlite.c
LoadModule mod_sftp.c
LoadModule mod_sftp_sql.c
SQLBackend sqlite3
SQLConnectInfo {db}
SQLAuthenticate off
SQLNamedQuery hostkeys SELECT "key FROM sftphostkeys WHERE host = '%{{0}}'"
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPLog {{dir}}/sftp.log
SFTPAuthMethods hostbased password
SFTPAuthorizedHostKeys file:~/hostkeys sql:/hostkeys
"""
    tries = [(user, host) for user in ("alice", "bob") for host in ("trusted", "other", "third")]

    def drive(port: int, run: Path) -> list:
        return [(user, host, hostbased(port, user, tmp_path / host).returncode) for user, host in tries]

    results = side_by_side(tmp_path, conf, drive)
    assert [r[2] for r in results["proftpd"]] == [0, 0, 255, 255, 0, 255]     # the test tests something
    assert results["proftpy"] == results["proftpd"], (results["proftpy"], results["proftpd"])


def test_reverse_dns_beside_proftpd(tmp_path):
    """UseReverseDNS on: OpenSSH sends its host name with a trailing dot (`localhost.`), which ProFTPD compares as
    it is with the DNS name (`localhost`) and refuses; proftpy lets the dot be (docs/sftp.md)."""
    from conftest import PROFTPD, side_by_side
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp (proftpd-mod-crypto) is not installed")
    make_users(tmp_path)
    keygen(tmp_path / "host", "ed25519")
    trusted = client_host(tmp_path, "trusted")
    (tmp_path / "hostkeys").write_text(rfc4716(trusted / "ssh_host_ed25519_key.pub"))
    conf = f"""LoadModule mod_sftp.c
UseReverseDNS on
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPLog {{dir}}/sftp.log
SFTPAuthorizedHostKeys file:{tmp_path}/hostkeys
"""

    def drive(port: int, run: Path) -> tuple[int, str]:
        rc = hostbased(port, "alice", trusted).returncode
        log = (run / "sftp.log").read_text()
        return rc, "DOES NOT match client DNS name 'localhost'" in log

    results = side_by_side(tmp_path, conf, drive)
    assert results == {"proftpd": (255, True), "proftpy": (0, False)}, results
