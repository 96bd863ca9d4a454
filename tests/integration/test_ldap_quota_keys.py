"""What other modules ask mod_ldap for, against a real slapd (Debian's, with a small schema of the tests' own for
ftpQuota and sshPublicKey): `QuotaLimitTable ldap:` (mod_quotatab_ldap: the entry's ftpQuota, a profile entry's,
LDAPDefaultQuota) driven by ftplib, and `SFTPAuthorizedUserKeys ldap:` (publickey logins with the sshPublicKey
values, OpenSSH one-line and RFC 4716) driven by OpenSSH's sftp."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import IS_ROOT, free_port, refused_config
from ldap_helpers import PEOPLE, SUFFIX, PosixGroup, Slapd, User, available

from proftpy import quotatab as qt

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="LDAP users have their own uids: the daemon must run as root"),
              pytest.mark.skipif(not available(), reason="slapd is not installed (apt-get install slapd)")]

UID = 2600
PROFILE = f"cn=small-uploads,{SUFFIX}"
QUOTA_CLASSES = ("ftpQuotaAccount",)
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR", "-o", "PasswordAuthentication=no"]


def keygen(path: Path, kind: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def directory():
    """slapd with quinn (ftpQuota: 100 upload bytes, hard), pat (its ftpQuotaProfileDN names a profile of 2 upload
    files), nora (no quota attribute), kim (two sshPublicKey values: an OpenSSH line and an RFC 4716 block, and a
    broken third), and a user of its own for each test that uploads."""
    base = Path(tempfile.mkdtemp(prefix="proftpy-ldapq-", dir="/tmp"))
    os.chmod(base, 0o755)
    home = base / "home"
    keys = base / "keys"
    keys.mkdir()
    keygen(keys / "kim_ed25519", "ed25519")
    keygen(keys / "kim_ecdsa", "ecdsa")
    keygen(keys / "stranger", "ed25519")
    one_line = (keys / "kim_ed25519.pub").read_text().strip()
    rfc4716 = subprocess.run(["ssh-keygen", "-e", "-f", str(keys / "kim_ecdsa.pub")], check=True,
                             capture_output=True, text=True).stdout
    users = [User("quinn", "quinn-pw", UID, UID, str(home / "quinn"), classes=QUOTA_CLASSES,
                  extra={"ftpQuota": "false,hard,100,0,0,0,0,0"}),
             User("pat", "pat-pw", UID + 1, UID, str(home / "pat"), classes=QUOTA_CLASSES,
                  extra={"ftpQuotaProfileDN": PROFILE}),
             User("nora", "nora-pw", UID + 2, UID, str(home / "nora")),
             User("kim", "kim-pw", UID + 3, UID, str(home / "kim"), classes=("ldapPublicKey",),
                  extra={"sshPublicKey": [one_line, rfc4716, "ssh-ed25519 not-base64!"]}),
             User("sam", "sam-pw", UID + 4, UID, str(home / "sam"), classes=QUOTA_CLASSES,
                  extra={"ftpQuota": "true,soft,0,0,0,1,0,0"})]
    for u in users:
        Path(u.home).mkdir(parents=True)
        os.chown(u.home, u.uid, u.gid)
    profile = (f"dn: {PROFILE}\nobjectClass: ftpQuotaProfile\ncn: small-uploads\n"
               "ftpQuota: false,hard,0,0,0,2,0,0\n")
    server = Slapd(base / "slapd").start(users, [PosixGroup("ldapq", UID)], more=profile)
    server.home, server.keys = home, keys
    yield server
    server.remove()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tmp_path(open_tmp_path):
    return open_tmp_path


def quota_config(directory, extra: str = "") -> str:
    return f"""\
AuthOrder mod_ldap.c mod_auth_file.c
LDAPServer 127.0.0.1:{directory.port}
LDAPUsers {PEOPLE}
LDAPLog {{dir}}/ldap.log
QuotaEngine on
QuotaLimitTable ldap:
QuotaTallyTable file:{{dir}}/quota.tally
QuotaLog {{dir}}/quota.log
AllowOverwrite on
{extra}
"""


def tally_table(tmp_path: Path) -> None:
    (tmp_path / "quota.tally").unlink(missing_ok=True)
    qt.create(str(tmp_path / "quota.tally"), "tally", [])


def store(ftp: ftplib.FTP, name: str, data: bytes) -> str:
    try:
        return ftp.storbinary(f"STOR {name}", io.BytesIO(data))
    except ftplib.Error as e:
        return str(e)


def test_ftpquota_attribute_is_the_users_hard_limit(ftpd, directory, tmp_path):
    tally_table(tmp_path)
    d = ftpd(quota_config(directory))
    with d.connect() as ftp:
        ftp.login("quinn", "quinn-pw")
        assert store(ftp, "a.bin", b"a" * 60).startswith("226")
        reply = store(ftp, "b.bin", b"b" * 80)
        assert reply.startswith("552-Transfer aborted. Disk quota exceeded"), reply
        assert not (directory.home / "quinn" / "b.bin").exists()
        assert store(ftp, "c.bin", b"c" * 40).endswith("226 STOR: notice: quota reached: used 100.00 of 100.00 "
                                                        "upload bytes")
        assert store(ftp, "d.bin", b"d") == "552 STOR denied: quota exceeded: used 100.00 of 100.00 upload bytes"
    table = qt.Table.open(str(tmp_path / "quota.tally"), "tally")
    try:
        assert table.find("quinn", qt.USER)[1].bytes_in == 100
    finally:
        table.close()
    log = (tmp_path / "ldap.log").read_text()
    assert "parsing ftpQuota attribute value 'false,hard,100,0,0,0,0,0'" in log
    assert "found limit entry for user 'quinn'" in (tmp_path / "quota.log").read_text()


def test_profile_dn_gives_the_profiles_limit(ftpd, directory, tmp_path):
    tally_table(tmp_path)
    d = ftpd(quota_config(directory))
    with d.connect() as ftp:
        ftp.login("pat", "pat-pw")
        assert store(ftp, "1", b"x").startswith("226")
        assert "quota reached: used 2 of 2 upload files" in store(ftp, "2", b"y")
        assert store(ftp, "3", b"z").startswith("552-STOR denied: quota exceeded: used 2 of 2 upload files")
    assert "parsing ftpQuota attribute value 'false,hard,0,0,0,2,0,0'" in (tmp_path / "ldap.log").read_text()


def test_entry_without_quota_uses_ldap_default_quota_or_has_none(ftpd, directory, tmp_path):
    tally_table(tmp_path)
    d = ftpd(quota_config(directory))
    with d.connect() as ftp:
        ftp.login("nora", "nora-pw")
        assert ftp.sendcmd("SITE QUOTA") == "202 No quotas in effect"
    quota_log = (tmp_path / "quota.log").read_text()
    assert "error performing LDAP search" in quota_log
    assert "no ftpQuota or ftpQuotaProfileDN attribute, and no default quota defined" in \
        (tmp_path / "ldap.log").read_text()
    d.stop()
    d.pidfile.unlink(missing_ok=True)
    d = ftpd(quota_config(directory, 'LDAPDefaultQuota "false,hard,0,0,0,1,0,0"'))
    with d.connect() as ftp:
        ftp.login("nora", "nora-pw")
        assert store(ftp, "1", b"x").startswith("226")
        assert store(ftp, "2", b"y").startswith("552-STOR denied: quota exceeded: used 1 of 1 upload file\n")
    assert "no ftpQuota or ftpQuotaProfileDN attribute, using default quota false,hard,0,0,0,1,0,0" in \
        (tmp_path / "ldap.log").read_text()


def test_per_session_soft_limit_and_bad_value(ftpd, directory, tmp_path):
    tally_table(tmp_path)
    d = ftpd(quota_config(directory, 'LDAPDefaultQuota "false,hard,5"'))
    with d.connect() as ftp:
        ftp.login("sam", "sam-pw")              # true,soft: one file per session, soft
        assert store(ftp, "1", b"x" * 10).startswith("226")
        assert store(ftp, "2", b"y").startswith("552-STOR denied: quota exceeded: used 1 of 1 upload file\n")
    with d.connect() as ftp:
        ftp.login("sam", "sam-pw")              # a new session starts from nothing
        assert store(ftp, "3", b"z").startswith("226")
    with d.connect() as ftp:                    # LDAPDefaultQuota with three fields: no limit
        ftp.login("nora", "nora-pw")
        assert ftp.sendcmd("SITE QUOTA") == "202 No quotas in effect"
    assert "LDAP search returned wrong number of elements" in (tmp_path / "quota.log").read_text()


def test_directory_down_is_no_limit_and_no_key(ftpd, directory, tmp_path):
    """The users of the AuthUserFile log in; the lookups that find no server are log lines, never a traceback."""
    tally_table(tmp_path)
    dead = f"LDAPServer 127.0.0.1:{free_port()}\nLDAPQueryTimeout 2\n"
    config = quota_config(directory).replace("AuthOrder mod_ldap.c mod_auth_file.c", "AuthOrder mod_auth_file.c")
    d = ftpd(dead + config)
    with d.connect() as ftp:
        ftp.login("alice", "alice-secret")
        assert ftp.sendcmd("SITE QUOTA") == "202 No quotas in effect"
    assert "error performing LDAP search" in (tmp_path / "quota.log").read_text()
    assert "Traceback" not in (tmp_path / "system.log").read_text()


def test_ldap_is_a_limit_source_only(tmp_path):
    err = refused_config(tmp_path, "QuotaTallyTable ldap:")
    assert "t.conf:2:" in err and "unsupported table source type: 'ldap'" in err, err


# -- SSH keys ------------------------------------------------------------------------------------------------------
def sftp_config(directory, stores: str = "ldap:") -> str:
    return f"""\
AuthOrder mod_ldap.c
LDAPServer 127.0.0.1:{directory.port}
LDAPUsers {PEOPLE}
LDAPLog {{dir}}/ldap.log
SFTPEngine on
SFTPLog {{dir}}/sftp.log
SFTPHostKey {directory.keys}/stranger
SFTPAuthMethods publickey
SFTPAuthorizedUserKeys {stores}
DefaultRoot ~
AllowOverwrite on
"""


def sftp_batch(d, key: str, user: str = "kim") -> subprocess.CompletedProcess:
    batch = d.dir / "batch"
    batch.write_text("put /etc/hostname up.txt\nls -l\n")
    return subprocess.run(["sftp", "-b", str(batch), "-i", key, *SSH_OPTS, "-P", str(d.port), f"{user}@127.0.0.1"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(shutil.which("sftp") is None, reason="needs OpenSSH's sftp")
def test_publickey_login_with_ldap_keys(ftpd, directory, tmp_path):
    d = ftpd(sftp_config(directory))
    keys = directory.keys
    for key in ("kim_ed25519", "kim_ecdsa"):              # the OpenSSH line and the RFC 4716 block
        res = sftp_batch(d, str(keys / key))
        assert res.returncode == 0, (res.stderr, (tmp_path / "sftp.log").read_text())
        assert "up.txt" in res.stdout
    st = os.stat(directory.home / "kim" / "up.txt")
    assert (st.st_uid, st.st_gid) == (UID + 3, UID)
    res = sftp_batch(d, str(keys / "stranger"))
    assert res.returncode != 0
    res = sftp_batch(d, str(keys / "kim_ed25519"), user="quinn")    # an entry without sshPublicKey
    assert res.returncode != 0
    sftp_log = (tmp_path / "sftp.log").read_text()
    assert "LDAP search returned 3 keys" in sftp_log
    assert "error obtaining SSH2 public key from LDAP data (key 3)" in sftp_log
    assert "no matching public key found for user 'kim' in LDAP" in sftp_log


@pytest.mark.skipif(shutil.which("sftp") is None, reason="needs OpenSSH's sftp")
def test_file_store_first_then_ldap(ftpd, directory, tmp_path):
    (tmp_path / "empty").write_text("")
    d = ftpd(sftp_config(directory, f"file:{tmp_path}/empty ldap:"))
    res = sftp_batch(d, str(directory.keys / "kim_ed25519"))
    assert res.returncode == 0, (res.stderr, (tmp_path / "sftp.log").read_text())


@pytest.mark.skipif(shutil.which("sftp") is None, reason="needs OpenSSH's sftp")
def test_directory_down_refuses_the_key(ftpd, directory, tmp_path):
    d = ftpd(sftp_config(directory).replace(f"127.0.0.1:{directory.port}", f"127.0.0.1:{free_port()}"))
    res = sftp_batch(d, str(directory.keys / "kim_ed25519"))
    assert res.returncode != 0 and "Permission denied (publickey)" in res.stderr, res.stderr
    assert "LDAP search returned zero results" in (tmp_path / "sftp.log").read_text()
    assert "Traceback" not in (tmp_path / "system.log").read_text()
