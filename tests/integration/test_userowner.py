"""UserOwner: what uploads and MKD make belongs to the named user (checked with st_uid), through ftplib, curl and
SFTP, in <Directory> and <Anonymous>; the session keeps CAP_CHOWN alone for it (ProFTPD keeps root), or nothing
with RootRevoke on; a user nobody knows is logged. Side by side with ProFTPD: compare_proftpd.py -k userowner."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import subprocess

import psutil
import pytest

from conftest import IS_ROOT, PASSWORDS, make_users

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="giving files to another user needs a root-started daemon")

BASE = "DefaultRoot ~\nAllowOverwrite on\n"
BOB_OWNS = BASE + "<Directory ~>\n  UserOwner bob\n</Directory>\n"
CAP_CHOWN = 1 << 0


def start(ftpd, tmp_path, config: str):
    users = make_users(tmp_path)
    with open(tmp_path / "ftpd.group", "a") as f:
        f.write("foreign:x:3101:\n")
    d = ftpd(config)
    d.users = users
    return d


def owners(d, *names: str) -> list[tuple[int, int]]:
    return [((d.home("alice") / n).lstat().st_uid, (d.home("alice") / n).lstat().st_gid) for n in names]


def upload_and_mkdir(d) -> None:
    (d.home("alice") / "old.txt").write_bytes(b"old")
    os.chown(d.home("alice") / "old.txt", d.uid("alice"), d.users["alice"][1])
    with d.login() as ftp:
        ftp.storbinary("STOR new.txt", io.BytesIO(b"new"))
        ftp.storbinary("STOR old.txt", io.BytesIO(b"overwritten"))
        ftp.mkd("newdir")
        ftp.storbinary("STOU", io.BytesIO(b"unique"))
        ftp.sendcmd("SITE CPFR new.txt")
        ftp.sendcmd("SITE CPTO copy.txt")


def session_status(d) -> dict[str, str]:
    (child,) = psutil.Process(d.master_pid).children()
    with open(f"/proc/{child.pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_uploads_and_mkd_belong_to_the_user_owner(ftpd, tmp_path):
    d = start(ftpd, tmp_path, BOB_OWNS)
    upload_and_mkdir(d)
    bob = (d.uid("bob"), d.users["alice"][1])                      # the group stays alice's
    assert owners(d, "new.txt", "old.txt", "newdir") == [bob] * 3
    (unique,) = [p.name for p in d.home("alice").iterdir() if p.name.startswith("ftp")]
    assert owners(d, unique) == [bob]
    # mod_copy does not apply it (as ProFTPD's)
    assert owners(d, "copy.txt") == [(d.uid("alice"), d.users["alice"][1])]
    assert (d.home("alice") / "old.txt").read_bytes() == b"overwritten"


def test_with_user_owner_group_owner_may_name_any_group(ftpd, tmp_path):
    d = start(ftpd, tmp_path, BASE + "<Directory ~>\n  UserOwner bob\n  GroupOwner foreign\n</Directory>\n")
    upload_and_mkdir(d)
    assert owners(d, "new.txt", "newdir") == [(d.uid("bob"), 3101)] * 2


def test_only_below_its_directory(ftpd, tmp_path):
    d = start(ftpd, tmp_path, BASE + "<Directory ~/given>\n  UserOwner bob\n</Directory>\n")
    (d.home("alice") / "given").mkdir()
    os.chown(d.home("alice") / "given", d.uid("alice"), d.users["alice"][1])
    with d.login() as ftp:
        ftp.storbinary("STOR given/in.txt", io.BytesIO(b"x"))
        ftp.mkd("given/sub")
        ftp.storbinary("STOR out.txt", io.BytesIO(b"x"))
        ftp.mkd("outdir")
        with pytest.raises(ftplib.error_perm, match="550"):        # bob's directory: alice may not write in it
            ftp.storbinary("STOR given/sub/x.txt", io.BytesIO(b"x"))
    assert [o[0] for o in owners(d, "given/in.txt", "given/sub", "out.txt", "outdir")] == \
        [d.uid("bob"), d.uid("bob"), d.uid("alice"), d.uid("alice")]


def test_session_keeps_cap_chown_alone_and_no_root_id(ftpd, tmp_path):
    d = start(ftpd, tmp_path, BOB_OWNS)
    with d.login():
        status = session_status(d)
    uid = str(d.uid("alice"))
    assert status["Uid"].split() == [uid] * 4
    assert int(status["CapPrm"], 16) == CAP_CHOWN and int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == CAP_CHOWN and int(status["CapInh"], 16) == 0


def test_without_user_owner_the_session_keeps_no_capability(ftpd, tmp_path):
    d = start(ftpd, tmp_path, BASE)
    with d.login():
        status = session_status(d)
    assert int(status["CapPrm"], 16) == 0 and int(status["CapBnd"], 16) != CAP_CHOWN


def test_root_revoke_off_keeps_cap_chown_as_proftpd_keeps_root(ftpd, tmp_path):
    d = start(ftpd, tmp_path, BASE + "RootRevoke off\n")
    with d.login():
        assert int(session_status(d)["CapPrm"], 16) == CAP_CHOWN


@pytest.mark.parametrize("line", ["RootRevoke on", "CapabilitiesSet -CAP_CHOWN"])
def test_root_revoke_on_keeps_nothing_and_the_chown_fails_logged(ftpd, tmp_path, line):
    d = start(ftpd, tmp_path, BOB_OWNS + line + "\n")
    with d.login() as ftp:
        assert int(session_status(d)["CapPrm"], 16) == 0
        assert ftp.storbinary("STOR new.txt", io.BytesIO(b"new")) == "226 Transfer complete"
        assert ftp.mkd("newdir") == "/newdir"
    assert [o[0] for o in owners(d, "new.txt", "newdir")] == [d.uid("alice")] * 2
    assert "lchown(/new.txt) as root failed: Operation not permitted" in d.log()


@pytest.mark.parametrize("name", ["nosuch", "~"])
def test_unknown_user_is_logged_and_the_file_stays_the_users(ftpd, tmp_path, name):
    d = start(ftpd, tmp_path, BASE + f"<Directory ~>\n  UserOwner {name}\n</Directory>\n")
    with d.login() as ftp:
        assert ftp.storbinary("STOR new.txt", io.BytesIO(b"new")) == "226 Transfer complete"
    assert owners(d, "new.txt")[0][0] == d.uid("alice")
    assert f"UserOwner {name}: no such user" in d.log()


def test_anonymous_uploads_belong_to_the_user_owner(ftpd, tmp_path):
    anon = tmp_path / "anon"
    d = start(ftpd, tmp_path, f"<Anonymous {anon}>\n  User bob\n  Group ftpusers\n  UserAlias anonymous bob\n"
                              "  UserOwner alice\n  <Limit WRITE>\n    AllowAll\n  </Limit>\n</Anonymous>\n")
    anon.mkdir()
    os.chown(anon, d.uid("bob"), d.users["bob"][1])
    with d.connect() as ftp:
        ftp.login("anonymous", "me@example.org")
        ftp.storbinary("STOR up.txt", io.BytesIO(b"anon"))
        ftp.mkd("made")
    assert [(anon / n).stat().st_uid for n in ("up.txt", "made")] == [d.uid("alice")] * 2


def test_not_allowed_in_ftpaccess_or_server_config(ftpd, tmp_path):
    from conftest import configtest
    res = configtest(tmp_path, "UserOwner bob\n")
    assert res.returncode != 0 and "UserOwner" in res.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl")
def test_curl_upload(ftpd, tmp_path):
    d = start(ftpd, tmp_path, BOB_OWNS)
    src = tmp_path / "src.bin"
    src.write_bytes(b"curl" * 1000)
    res = subprocess.run(["curl", "-sS", "-T", str(src), f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{d.port}/c.bin"],
                         capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert owners(d, "c.bin")[0][0] == d.uid("bob")


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("ssh-keygen") is None, reason="curl, ssh-keygen")
def test_sftp_upload_and_mkdir(ftpd, tmp_path):
    key = tmp_path / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    d = start(ftpd, tmp_path, BOB_OWNS + f"SFTPEngine on\nSFTPHostKey {key}\nSFTPAuthMethods password\n")
    src = tmp_path / "src.bin"
    src.write_bytes(b"sftp" * 1000)
    url = f"sftp://127.0.0.1:{d.port}"
    res = subprocess.run(["curl", "-sS", "-k", "-u", f"alice:{PASSWORDS['alice']}", "-T", str(src),
                          "-Q", "mkdir /made", f"{url}/s.bin"], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert [o[0] for o in owners(d, "s.bin", "made")] == [d.uid("bob")] * 2


def test_sftp_mkdir_with_permissions_then_given_away(ftpd, tmp_path):
    """An SFTP MKDIR with permissions: the directory is made with them (less the Umask), then given to bob (ProFTPD's
    smkdir then chown; a chmod after the chown would fail: the directory is no longer alice's)."""
    import struct
    from ssh_client import MiniClient
    key = tmp_path / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    d = start(ftpd, tmp_path, BOB_OWNS + f"Umask 022\nSFTPEngine on\nSFTPHostKey {key}\nSFTPAuthMethods password\n")
    c = MiniClient(d.port)
    try:
        assert c.login("alice", PASSWORDS["alice"])
        c.open_sftp()
        body = struct.pack(">I", 4) + b"made" + struct.pack(">II", 4, 0o750)      # SSH_FILEXFER_ATTR_PERMISSIONS
        c.data(struct.pack(">IBI", 5 + len(body), 14, 1) + body)                   # SSH_FXP_MKDIR
        kind, payload = c.sftp_reply()
        assert kind == 101 and struct.unpack(">II", payload[:8]) == (1, 0)         # SSH_FX_OK
    finally:
        c.close()
    st = (d.home("alice") / "made").stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (d.uid("bob"), 0o750)


def test_an_ftpaccess_cannot_give_files_away(ftpd, tmp_path):
    """UserOwner is not a .ftpaccess directive (ProFTPD's CONF_ANON|CONF_DIR): a user's own file cannot make what
    is uploaded belong to someone else, even where the session keeps CAP_CHOWN for a UserOwner elsewhere."""
    d = start(ftpd, tmp_path, BASE + "<Directory ~/given>\n  UserOwner bob\n</Directory>\n")
    (d.home("alice") / ".ftpaccess").write_text("UserOwner bob\n")
    with d.login() as ftp:
        assert ftp.storbinary("STOR mine.txt", io.BytesIO(b"x")) == "226 Transfer complete"
        (d.home("alice") / ".ftpaccess").write_text("GroupOwner foreign\n")     # not alice's group
        assert ftp.storbinary("STOR ours.txt", io.BytesIO(b"x")) == "226 Transfer complete"
    assert owners(d, "mine.txt", "ours.txt") == [(d.uid("alice"), d.users["alice"][1])] * 2
    assert "UserOwner is not allowed in .ftpaccess context" in d.log()
    assert "lchown(/ours.txt) failed: Operation not permitted" in d.log()
