"""Upload/download ratios (mod_ratio) on the real daemon, driven by ftplib and curl: the tally line under the
replies, a download refused once the ratio that applies (user, group, host, anonymous) is used up and allowed
again after an upload, SITE RATIO, CwdRatioMsg, the RatioFile kept across sessions, `Ratios off`, and bad
directive arguments refused by `proftpy -t`."""

from __future__ import annotations

import ftplib
import io
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORDS, error_reply, make_file, refused_config, wait_until

LEECH = "Down: 0 Files (0mb)  Up: 0 Files (0mb)  10,000,000:1  CR: LEECH"
ANON = ("<Anonymous {home}/bob>\nUser bob\nUserAlias anonymous bob\nRequireValidShell off\n"
        "AllowOverwrite on\n</Anonymous>\n")


@pytest.fixture
def tmp_path(open_tmp_path):
    """The test users reach their homes, the RatioFile and RatioTempFile here."""
    return open_tmp_path


def ratio_file(base: Path, text: str) -> Path:
    """A RatioFile the sessions (running as the test users) may rewrite, in a directory where they may write its
    temporary file."""
    directory = base / "ratios.d"
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)
    path = directory / "ratios"
    path.write_text(text)
    path.chmod(0o666)
    return path


def fetch(ftp: ftplib.FTP, name: str) -> tuple[bytes, str]:
    """The bytes of a binary download and its final reply."""
    out = io.BytesIO()
    reply = ftp.retrbinary(f"RETR {name}", out.write)
    return out.getvalue(), reply


def upload(ftp: ftplib.FTP, name: str, data: bytes) -> str:
    return ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def test_leech_line_under_login_and_transfers(ftpd):
    d = ftpd("Ratios on\n")
    make_file(d, "a.txt", b"x" * 10)
    with d.connect() as ftp:
        assert ftp.login("alice", PASSWORDS["alice"]) == f"230-{LEECH}\n230 User alice logged in"
        lines = []
        assert ftp.retrlines("NLST", lines.append).splitlines()[-1] == f"226 {LEECH}"
        assert lines == ["a.txt"]
        assert fetch(ftp, "a.txt")[1].splitlines() == [
            "226-Transfer complete", "226 Down: 1 Files (0mb)  Up: 0 Files (0mb)  10,000,000:1  CR: LEECH"]


def test_user_ratio_refuses_download_until_upload(ftpd):
    d = ftpd("Ratios on\nUserRatio alice 2 0 0 0\nAllowOverwrite on\n")
    make_file(d, "a.txt", b"data")
    with d.login() as ftp:
        err = error_reply(ftp, "RETR a.txt")
        assert err == ("550-Too few files uploaded to earn file -- please upload more.\n"
                       "550 a.txt: FILE RATIO: 1:2F  Down: 0  Up: only 0!")
        assert upload(ftp, "up.bin", b"u" * 100).splitlines()[-1] == (
            "226 Down: 0 Files (0mb)  Up: 1 Files (0mb)   1:2F CR: 2")
        for left in (1, 0):
            data, reply = fetch(ftp, "a.txt")
            assert data == b"data" and reply.endswith(f"1:2F CR: {left}")
        assert error_reply(ftp, "RETR a.txt").endswith("FILE RATIO: 1:2F  Down: 2  Up: only 1!")
        assert ftp.sendcmd("SITE RATIO") == ("214-Current Ratio: ( -2/0 +1/0 (2 0 0 0) = 0/0 [NO F] )\n"
                                             "214 Files: 1:2F  Down: 2  Up: 1  CR: 0 files")


def test_byte_ratio_counts_kilobytes(ftpd):
    d = ftpd("Ratios on\nUserRatio * 0 0 1 8\n")
    make_file(d, "6k.bin", b"k" * 6144)
    with d.login() as ftp:
        assert fetch(ftp, "6k.bin")[1].endswith("Down: 1 Files (0mb)  Up: 0 Files (0mb)   1:1B CR: 0")
        err = error_reply(ftp, "RETR 6k.bin")
        assert err == ("550-Too few bytes uploaded to earn more data -- please upload.\n"
                       "550 6k.bin: BYTE RATIO: 1:1B  Down: 0mb  Up: only 0mb!")
        upload(ftp, "up.bin", b"u" * 5000)          # 4 KB counted: 8 + 4 - 6 = 6 KB left
        assert fetch(ftp, "6k.bin")[0] == b"k" * 6144


def test_group_ratio(ftpd):
    d = ftpd("Ratios on\nGroupRatio nogroup 9 9 0 0\nGroupRatio ftpusers 1 1 0 0\n")
    with d.login("bob") as ftp:
        assert ftp.sendcmd("SITE RATIO").startswith("214-Current Ratio: ( -0/0 +0/0 (1 1 0 0) = 1/0 )")


def test_host_ratio_before_user_ratio(ftpd):
    d = ftpd("Ratios on\nHostRatio 10.1.2.3 5 5 0 0\nHostRatio 127.0. 3 0 0 0\nUserRatio alice 1 1 0 0\n")
    with d.login() as ftp:
        assert ftp.sendcmd("SITE RATIO").splitlines()[0] == "214-Current Ratio: ( -0/0 +0/0 (3 0 0 0) = 0/0 [NO F] )"
        assert "FILE RATIO: 1:3F" in error_reply(ftp, "RETR x")


def test_anonymous_ratio_by_email(ftpd):
    d = ftpd("Ratios on\nAnonRatio guest@example.org 1 0 0 0\nUserRatio * 4 4 0 0\n" + ANON)
    make_file(d, "pub.txt", b"pub", user="bob")
    with d.connect() as ftp:
        assert ftp.login("anonymous", "guest@example.org").startswith(
            "230-Down: 0 Files (0mb)  Up: 0 Files (0mb)   1:1F CR: 0")
        assert "FILE RATIO: 1:1F" in error_reply(ftp, "RETR pub.txt")
        upload(ftp, "gift.txt", b"gift")
        assert fetch(ftp, "pub.txt")[0] == b"pub"
    with d.connect() as ftp:                       # another address: the UserRatio * line
        assert "1:4F CR: 4" in ftp.login("anonymous", "other@example.org")


def test_site_ratio_and_help(ftpd):
    d = ftpd("Ratios on\n")
    with d.connect() as ftp:
        assert ftp.sendcmd("SITE RATIO") == "214 Current Ratio: ( -0/0 +0/0 (0 0 0 0) = 0/0 )"
        help_lines = ftp.sendcmd("SITE HELP").splitlines()
        assert help_lines[1:3] == [" The following SITE extensions are recognized:",
                                   " RATIO -- show all ratios in effect"]


def test_cwd_ratio_message_also_with_ratios_off(ftpd):
    d = ftpd('CwdRatioMsg "Upload to earn downloads"\nCwdRatioMsg "see SITE RATIO"\n')
    make_file(d, "sub/f", b"")
    with d.login() as ftp:
        assert ftp.sendcmd("CWD sub") == ("250-Upload to earn downloads\n see SITE RATIO\n"
                                          "250 CWD command successful")
        assert ftp.sendcmd("XCWD /") == "250 XCWD command successful"
        assert error_reply(ftp, "CWD nothere") == "550 nothere: No such file or directory"


def test_ratios_off_changes_nothing(ftpd):
    d = ftpd("Ratios off\nUserRatio * 1 0 1 0\n")
    make_file(d, "a.txt", b"data")
    with d.connect() as ftp:
        assert ftp.login("alice", PASSWORDS["alice"]) == "230 User alice logged in"
        assert fetch(ftp, "a.txt") == (b"data", "226 Transfer complete")
        assert ftp.sendcmd("SITE RATIO") == "214 Current Ratio: ( -1/0 +0/0 (0 0 0 0) = 0/0 )"


def test_ratio_file_survives_a_new_session(ftpd, tmp_path):
    ratios = ratio_file(tmp_path, "bob|3|2048|1|1024\n")
    d = ftpd(f"Ratios on\nSaveRatios on\nRatioFile {ratios}\nRatioTempFile {ratios}.tmp\nUserRatio alice 1 0 0 0\n")
    make_file(d, "a.txt", b"data")
    with d.login() as ftp:
        upload(ftp, "up.bin", b"u" * 3000)
        fetch(ftp, "a.txt")
    assert ratios.read_text() == "bob|3|2048|1|1024\nalice|1|2|1|0\n"
    with d.connect() as ftp:
        assert ftp.login("alice", PASSWORDS["alice"]).startswith(
            "230-Down: 1 Files (0mb)  Up: 1 Files (0mb)   1:1F CR: 0")
        assert "FILE RATIO" in error_reply(ftp, "RETR a.txt")


def test_ratio_file_inside_the_chroot(ftpd):
    d = ftpd("DefaultRoot ~\nRatios on\nSaveRatios on\nRatioFile /ratios.d/ratios\n"
             "RatioTempFile /ratios.d/ratios.tmp\n")
    ratios = ratio_file(d.home("alice"), "alice|5|0|0|0\n")
    with d.connect() as ftp:
        assert "Up: 5 Files" in ftp.login("alice", PASSWORDS["alice"])
        upload(ftp, "up.bin", b"u")
    assert ratios.read_text() == "alice|6|0|0|0\n"


def test_missing_ratio_file_is_not_created(ftpd, tmp_path):
    d = ftpd(f"Ratios on\nSaveRatios on\nRatioFile {tmp_path}/none\nRatioTempFile {tmp_path}/none.tmp\n")
    with d.login() as ftp:
        upload(ftp, "up.bin", b"u")
        assert ftp.sendcmd("SITE RATIO") == "214 Current Ratio: ( -0/0 +1/0 (0 0 0 0) = 0/0 )"
    assert not (tmp_path / "none").exists() and not (tmp_path / "none.tmp").exists()


def test_login_logged_with_ratio(ftpd):
    d = ftpd("SyslogLevel info\nRatios on\nUserRatio alice 2 1 0 0\n")
    with d.login():
        pass
    assert wait_until(lambda: "Ratio: alice/ftpusers 127.0.0.1[127.0.0.1]: -0/0 +0/0 (2 1 0 0) = 1/0." in d.log())


def test_curl_upload_earns_a_download_in_the_next_session(ftpd, tmp_path):
    ratios = ratio_file(tmp_path, "")
    d = ftpd(f"Ratios on\nSaveRatios on\nRatioFile {ratios}\nRatioTempFile {ratios}.tmp\nUserRatio alice 1 0 0 0\n")
    make_file(d, "a.txt", b"data")
    url = f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{d.port}/"
    refused = subprocess.run(["curl", "-s", url + "a.txt"], capture_output=True, timeout=30)
    assert refused.returncode == 78 and refused.stdout == b""        # RETR refused: "remote file not found"
    subprocess.run(["curl", "-s", "-T", "-", url + "up.txt"], input=b"gift", check=True, timeout=30)
    assert subprocess.run(["curl", "-s", url + "a.txt"], capture_output=True, check=True, timeout=30).stdout \
        == b"data"
    assert ratios.read_text() == "alice|1|0|1|0\n"


@pytest.mark.parametrize("line, message", [
    ("UserRatio alice 1 0 0", "UserRatio: expected name file-ratio file-credit byte-ratio byte-credit"),
    ("GroupRatio staff 1 x 0 0", "GroupRatio: 'x' is not a whole number"),
    ("HostRatio 10. 1 0 0 0 extra", "HostRatio: expected name file-ratio"),
    ("Ratios maybe", "Ratios: expected on or off, got 'maybe'"),
    ("SaveRatios", "SaveRatios"),
    ("RatioFile", "RatioFile"),
])
def test_bad_arguments_refused(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert "t.conf:2:" in err and message in err
