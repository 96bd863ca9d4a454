"""Transfers against the real daemon: ftplib (passive, active, binary, ASCII, REST, APPE, STOU, ABOR), curl and
wget, over 127.0.0.1 and ::1."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import PASSWORDS, make_users
from proftpy.net.inet import ipv6_available

BASE = "DefaultRoot ~\n"
CURL = shutil.which("curl")
WGET = shutil.which("wget")


def put(d, name: str, content: bytes, user: str = "alice") -> None:
    path = d.home(user) / name
    path.write_bytes(content)
    os.chown(path, d.uid(user), d.users[user][1]) if os.geteuid() == 0 else None


def url(d, path: str = "", user: str = "alice") -> str:
    host = f"[{d.host}]" if ":" in d.host else d.host
    return f"ftp://{user}:{PASSWORDS[user]}@{host}:{d.port}/{path}"


def curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-sS", "--max-time", str(int(timeout)), *args], capture_output=True,
                          timeout=timeout + 5)


def retr(ftp: ftplib.FTP, name: str, rest: int | None = None) -> bytes:
    out = io.BytesIO()
    ftp.retrbinary(f"RETR {name}", out.write, rest=rest)
    return out.getvalue()


# -- ftplib ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_binary_round_trip(ftpd, passive):
    d = ftpd(BASE)
    payload = os.urandom(2_500_000)
    with d.login() as ftp:
        ftp.set_pasv(passive)
        resp = ftp.storbinary("STOR up.bin", io.BytesIO(payload))
        assert resp == "226 Transfer complete"
        assert (d.home("alice") / "up.bin").read_bytes() == payload
        assert retr(ftp, "up.bin") == payload


def test_150_text_for_binary_download(ftpd):
    d = ftpd(BASE)
    put(d, "f.bin", b"x" * 1234)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        host, port = ftplib.parse227(ftp.sendcmd("PASV"))
        with socket.create_connection((host, port)) as data:
            ftp.putcmd("RETR f.bin")
            assert ftp.getline() == "150 Opening BINARY mode data connection for f.bin (1234 bytes)"
            received = b""
            while chunk := data.recv(65536):
                received += chunk
        assert ftp.getline() == "226 Transfer complete"
        assert received == b"x" * 1234


def test_ascii_download_converts_lf_to_crlf(ftpd):
    d = ftpd(BASE)
    put(d, "t.txt", b"one\ntwo\r\nthree\n")
    with d.login() as ftp:
        assert ftp.sendcmd("TYPE A") == "200 Type set to A"
        conn = ftp.transfercmd("RETR t.txt")
        raw = b""
        while chunk := conn.recv(4096):
            raw += chunk
        conn.close()
        ftp.voidresp()
    assert raw == b"one\r\ntwo\r\nthree\r\n"


def test_ascii_upload_converts_crlf_to_lf(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        ftp.voidcmd("TYPE A")
        conn = ftp.transfercmd("STOR t.txt")
        conn.sendall(b"one\r\ntwo\r\nlone\rcr\r\n")
        conn.close()
        assert ftp.voidresp() == "226 Transfer complete"
    assert (d.home("alice") / "t.txt").read_bytes() == b"one\ntwo\nlone\rcr\n"


def test_type_mode_stru_allo_replies(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        assert ftp.sendcmd("TYPE I") == "200 Type set to I"
        assert ftp.sendcmd("TYPE L 8") == "200 Type set to L"        # ProFTPD echoes the type code as sent
        assert ftp.sendcmd("TYPE a") == "200 Type set to a"
        with pytest.raises(ftplib.error_perm, match="504 TYPE not implemented for 'X' parameter"):
            ftp.sendcmd("TYPE X")
        assert ftp.sendcmd("MODE S") == "200 Mode set to S"
        with pytest.raises(ftplib.error_perm, match="504 'MODE B' unsupported transfer mode"):
            ftp.sendcmd("MODE B")
        assert ftp.sendcmd("STRU F") == "200 Structure set to F"
        with pytest.raises(ftplib.error_perm, match="504"):
            ftp.sendcmd("STRU R")
        assert ftp.sendcmd("ALLO 100") == "202 No storage allocation necessary"


def test_rest_retr_resumes(ftpd):
    d = ftpd(BASE)
    payload = os.urandom(100_000)
    put(d, "r.bin", payload)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        assert ftp.sendcmd("REST 10") == "350 Restarting at 10. Send STORE or RETRIEVE to initiate transfer"
        ftp.sendcmd("REST 0")
        assert retr(ftp, "r.bin", rest=65_000) == payload[65_000:]
        ftp.sendcmd("REST 200000")
        with pytest.raises(ftplib.error_perm, match="554 REST: invalid r.bin argument"):
            ftp.voidcmd("RETR r.bin")


def test_rest_refused_in_ascii_mode_and_for_garbage(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        ftp.voidcmd("TYPE A")
        with pytest.raises(ftplib.error_perm, match="501 REST: Resuming transfers not allowed in ASCII mode"):
            ftp.sendcmd("REST 5")
        assert ftp.sendcmd("REST 0").startswith("350")
        with pytest.raises(ftplib.error_perm, match="501 REST requires a value greater than or equal to 0"):
            ftp.sendcmd("REST -5")


def test_retrieve_restart_can_be_forbidden(ftpd):
    d = ftpd(BASE + "AllowRetrieveRestart off\n")
    put(d, "r.bin", b"abc" * 100)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        ftp.sendcmd("REST 3")
        with pytest.raises(ftplib.error_temp, match="451 r.bin: Restart not permitted, try again"):
            ftp.voidcmd("RETR r.bin")


def test_rest_stor_needs_allow_store_restart(ftpd):
    d = ftpd(BASE + "AllowOverwrite on\n")        # else AllowOverwrite refuses first (550), as ProFTPD
    put(d, "s.bin", b"0123456789")
    with d.login() as ftp:
        with pytest.raises(ftplib.error_temp, match="451 s.bin: Append/Restart not permitted, try again"):
            ftp.storbinary("STOR s.bin", io.BytesIO(b"XY"), rest=4)
    assert (d.home("alice") / "s.bin").read_bytes() == b"0123456789"


def test_rest_stor_resumes_upload(ftpd):
    d = ftpd(BASE + "AllowStoreRestart on\nAllowOverwrite on\n")      # ProFTPD needs both for REST + STOR
    put(d, "s.bin", b"0123456789")
    with d.login() as ftp:
        ftp.storbinary("STOR s.bin", io.BytesIO(b"XY"), rest=4)
    assert (d.home("alice") / "s.bin").read_bytes() == b"0123XY"


def test_overwrite_needs_allow_overwrite(ftpd):
    d = ftpd(BASE)
    put(d, "keep.txt", b"precious")
    with d.login() as ftp:
        with pytest.raises(ftplib.error_perm, match="550 keep.txt: Overwrite permission denied"):
            ftp.storbinary("STOR keep.txt", io.BytesIO(b"new"))
    assert (d.home("alice") / "keep.txt").read_bytes() == b"precious"


def test_overwrite_allowed(ftpd):
    d = ftpd(BASE + "AllowOverwrite on\n")
    put(d, "f.txt", b"a much longer old content")
    with d.login() as ftp:
        ftp.storbinary("STOR f.txt", io.BytesIO(b"new"))
    assert (d.home("alice") / "f.txt").read_bytes() == b"new"


def test_appe_creates_then_needs_allow_store_restart(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        ftp.storbinary("APPE log.txt", io.BytesIO(b"first\n"))
        with pytest.raises(ftplib.error_temp, match="451 log.txt: Append/Restart not permitted"):
            ftp.storbinary("APPE log.txt", io.BytesIO(b"second\n"))
    assert (d.home("alice") / "log.txt").read_bytes() == b"first\n"


def test_appe_appends(ftpd):
    d = ftpd(BASE + "AllowStoreRestart on\n")
    put(d, "log.txt", b"first\n")
    with d.login() as ftp:
        ftp.storbinary("APPE log.txt", io.BytesIO(b"second\n"))
    assert (d.home("alice") / "log.txt").read_bytes() == b"first\nsecond\n"


def test_max_retrieve_file_size_refuses_a_larger_file_after_its_150(ftpd):
    d = ftpd(BASE + "MaxRetrieveFileSize 10 B\n")
    put(d, "big.txt", b"0123456789A")
    put(d, "fits.txt", b"0123456789")
    with d.login() as ftp:
        lines = []
        with pytest.raises(ftplib.error_temp, match="^426 Transfer aborted. Operation not permitted$"):
            ftp.retrbinary("RETR big.txt", lines.append)
        assert lines == []
        assert retr(ftp, "fits.txt") == b"0123456789"
    assert "MaxRetrieveFileSize (10 bytes) reached: aborting transfer of '/big.txt'" in d.log()


def refused_upload(ftp: ftplib.FTP, cmd: str, data: bytes) -> str:
    """The final reply of an upload the server ends early: it closes the data connection while the client still
    sends, which then fails (broken pipe or reset) as it would for any client."""
    conn = ftp.transfercmd(cmd)
    try:
        conn.sendall(data)
    except OSError:
        pass                    # expected: the server stopped reading
    conn.close()
    with pytest.raises(ftplib.Error) as e:
        ftp.voidresp()
    return str(e.value)


def test_max_store_file_size_ends_the_upload_that_would_pass_it(ftpd):
    """Binary STOR (spliced), APPE (written) and ASCII uploads: the file never grows past the limit, the upload
    ends with 552, APPE counts what the file holds already; DeleteAbortedStores removes what was written."""
    d = ftpd(BASE + "MaxStoreFileSize 2 MB\nAllowOverwrite on\nAllowStoreRestart on\n<Directory ~/tidy>\n"
                    "DeleteAbortedStores on\n</Directory>\n")
    home = d.home("alice")
    too_large = "552 Transfer aborted. File too large"
    with d.login() as ftp:
        ftp.storbinary("STOR fits.bin", io.BytesIO(b"x" * (2 << 20)))
        assert (home / "fits.bin").stat().st_size == 2 << 20
        assert refused_upload(ftp, "STOR big.bin", b"y" * (5 << 20)) == too_large
        assert (home / "big.bin").stat().st_size <= 2 << 20
        with pytest.raises(ftplib.error_perm, match=f"^{too_large}$"):
            ftp.storbinary("APPE fits.bin", io.BytesIO(b"z"))
        assert (home / "fits.bin").read_bytes() == b"x" * (2 << 20)
        ftp.voidcmd("TYPE A")
        assert refused_upload(ftp, "STOR text.txt", b"line\r\n" * (600 << 10)) == too_large
        assert 0 < (home / "text.txt").stat().st_size <= 2 << 20
        ftp.voidcmd("TYPE I")
        ftp.mkd("tidy")
        assert refused_upload(ftp, "STOR tidy/big.bin", b"y" * (5 << 20)) == too_large
        assert not (home / "tidy" / "big.bin").exists()
        assert ftp.sendcmd("NOOP").startswith("200")
    assert "MaxStoreFileSize (2097152 bytes) reached: aborting transfer of '/big.bin'" in d.log()


def test_size_limits_for_some_users_only(ftpd):
    d = ftpd(BASE + "MaxStoreFileSize 10 B user bob\nMaxRetrieveFileSize 10 B user !alice\n")
    put(d, "f.txt", b"0123456789AB")
    put(d, "f.txt", b"0123456789AB", user="bob")
    with d.login("alice") as ftp:
        ftp.storbinary("STOR up.txt", io.BytesIO(b"0123456789AB"))
        assert retr(ftp, "f.txt") == b"0123456789AB"
    with d.login("bob") as ftp:
        with pytest.raises(ftplib.error_perm, match="^552"):
            ftp.storbinary("STOR up.txt", io.BytesIO(b"0123456789AB"))
        with pytest.raises(ftplib.error_temp, match="^426"):
            retr(ftp, "f.txt")


def test_the_longest_timeouts_work(ftpd):
    """2147483647 seconds: a C int, accepted as ProFTPD does; longer than poll() can wait in one call."""
    d = ftpd(BASE + "TimeoutIdle 2147483647\nTimeoutStalled 2147483647\nTimeoutNoTransfer 2147483647\n"
                    "TimeoutSession 2147483647\n")
    with d.login() as ftp:
        ftp.storbinary("STOR f.bin", io.BytesIO(b"x" * 100_000))
        assert retr(ftp, "f.bin") == b"x" * 100_000
        assert "f.bin" in ftp.nlst()


def test_store_unique_prefix(ftpd):
    d = ftpd(BASE + "StoreUniquePrefix up-\n")
    with d.login() as ftp:
        reply = ftp.storbinary("STOU", io.BytesIO(b"x"))
        assert reply == "226 Transfer complete"
    (made,) = [p.name for p in d.home("alice").iterdir() if p.name.startswith("up-")]
    assert len(made) == len("up-") + 8


def test_display_file_transfer_leads_the_226_of_file_transfers_only(ftpd):
    d = ftpd(BASE + "DisplayFileTransfer xfer.msg\nAllowOverwrite on\n")
    put(d, "xfer.msg", b"thanks %U\nsecond line\n")
    put(d, "f.bin", b"data")
    with d.login() as ftp:
        ftp.mkd("sub")
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("RETR f.bin")
        conn.recv(10)
        conn.close()
        assert ftp.getmultiline() == "226-thanks alice\n second line\n226 Transfer complete"
        assert ftp.storbinary("STOR up.bin", io.BytesIO(b"x")).startswith("226-thanks alice")
        assert ftp.retrlines("NLST", lambda _: None) == "226 Transfer complete"
        ftp.cwd("sub")                                    # no xfer.msg here: nothing shown
        assert ftp.storbinary("STOR up.bin", io.BytesIO(b"x")) == "226 Transfer complete"


@pytest.mark.skipif(os.geteuid() != 0, reason="groups other than the daemon user's own need a root-started daemon")
def test_group_owner_gives_new_and_overwritten_files_a_group_the_user_is_in(ftpd, tmp_path):
    users = make_users(tmp_path)
    with open(tmp_path / "ftpd.group", "a") as f:
        f.write("shared:x:3100:alice\nforeign:x:3101:bob\n")
    d = ftpd(BASE + "AllowOverwrite on\n<Directory ~/up>\n  GroupOwner shared\n</Directory>\n"
                    "<Directory ~/theirs>\n  GroupOwner foreign\n</Directory>\n")
    d.users = users
    home = d.home("alice")
    with d.login() as ftp:
        for name in ("up", "theirs"):
            ftp.mkd(name)
        ftp.storbinary("STOR up/new.bin", io.BytesIO(b"x"))
        ftp.mkd("up/sub")
        ftp.storbinary("STOR theirs/new.bin", io.BytesIO(b"x"))        # not her group: stored, logged
    assert (home / "up" / "new.bin").stat().st_gid == 3100 and (home / "up" / "sub").stat().st_gid == 3100
    assert (home / "theirs" / "new.bin").stat().st_gid == d.users["alice"][1]
    assert "lchown(/theirs/new.bin) failed: Operation not permitted" in d.log()


def test_stou_creates_unique_file(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        conn, _ = ftp.ntransfercmd("STOU")
        first = ftp.lastresp
        conn.sendall(b"unique")
        conn.close()
        assert ftp.voidresp() == "226 Transfer complete"
    assert first == "150"
    files = [p for p in d.home("alice").iterdir() if p.name.startswith("ftp")]
    assert len(files) == 1 and files[0].read_bytes() == b"unique"


def test_stou_reply_names_the_file(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        host, port = ftplib.parse227(ftp.sendcmd("PASV"))
        with socket.create_connection((host, port)) as data:
            ftp.putcmd("STOU")
            line = ftp.getline()
            data.sendall(b"z")
        assert ftp.getline() == "226 Transfer complete"
    assert line.startswith("150 FILE: ftp")
    assert (d.home("alice") / line[len("150 FILE: "):]).read_bytes() == b"z"


def test_hidden_stores_upload_then_rename(ftpd):
    d = ftpd(BASE + "HiddenStores on\nAllowOverwrite on\n")
    with d.login() as ftp:
        with pytest.raises(ftplib.error_perm, match="501 REST not compatible with server configuration"):
            ftp.sendcmd("REST 0")
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("STOR h.bin")
        conn.sendall(b"part")
        time.sleep(0.2)
        assert (d.home("alice") / ".in.h.bin.").exists()
        assert not (d.home("alice") / "h.bin").exists()
        conn.close()
        ftp.voidresp()
    assert (d.home("alice") / "h.bin").read_bytes() == b"part"
    assert not (d.home("alice") / ".in.h.bin.").exists()


def test_hidden_stores_through_a_link_update_its_target_and_keep_the_link(ftpd):
    """As without HiddenStores, and as ProFTPD: STOR to a link writes the file it names."""
    d = ftpd(BASE + "HiddenStores on\nAllowOverwrite on\n")
    put(d, "target.bin", b"old")
    os.symlink("target.bin", d.home("alice") / "link.bin")
    with d.login() as ftp:
        ftp.storbinary("STOR link.bin", io.BytesIO(b"new content"))
    assert os.readlink(d.home("alice") / "link.bin") == "target.bin"
    assert (d.home("alice") / "target.bin").read_bytes() == b"new content"
    assert not list(d.home("alice").glob(".in.*"))


@pytest.mark.parametrize("allowed", [False, True])
def test_hidden_stores_to_a_link_to_nothing(ftpd, allowed):
    """ProFTPD refuses it (550 Not a regular file) unless TransferOptions AllowSymlinkUpload, which replaces the
    link with the file."""
    d = ftpd(BASE + "HiddenStores on\nAllowOverwrite on\n" + ("TransferOptions AllowSymlinkUpload\n" * allowed))
    os.symlink("nothing-yet.bin", d.home("alice") / "dangling.bin")
    with d.login() as ftp:
        if not allowed:
            with pytest.raises(ftplib.error_perm, match="^550 dangling.bin: Not a regular file$"):
                ftp.storbinary("STOR dangling.bin", io.BytesIO(b"data"))
            assert os.readlink(d.home("alice") / "dangling.bin") == "nothing-yet.bin"
            return
        ftp.storbinary("STOR dangling.bin", io.BytesIO(b"data"))
    assert not (d.home("alice") / "dangling.bin").is_symlink()
    assert (d.home("alice") / "dangling.bin").read_bytes() == b"data"
    assert not (d.home("alice") / "nothing-yet.bin").exists()


def test_transfer_options_ignore_ascii_moves_files_as_they_are(ftpd):
    d = ftpd(BASE + "TransferOptions IgnoreASCII\nAllowOverwrite on\nAllowStoreRestart on\n")
    put(d, "crlf.txt", b"one\r\ntwo\n")

    def ascii_transfer(ftp, cmd: str, upload: bytes = b"") -> bytes:     # ftplib's own helpers switch to TYPE I
        with ftp.transfercmd(cmd) as conn:
            conn.sendall(upload)
            conn.shutdown(socket.SHUT_WR)
            got = b"".join(iter(lambda: conn.recv(65536), b""))
        ftp.voidresp()
        return got

    with d.login() as ftp:
        assert ftp.sendcmd("TYPE A") == "200 Type set to A"
        assert ascii_transfer(ftp, "RETR crlf.txt") == b"one\r\ntwo\n"
        ascii_transfer(ftp, "STOR up.txt", b"a\r\nb\n")
        assert ftp.sendcmd("REST 2").startswith("350")
        assert ascii_transfer(ftp, "RETR crlf.txt") == b"e\r\ntwo\n"
        assert ascii_transfer(ftp, "LIST crlf.txt").endswith(b" crlf.txt\r\n")     # listings keep CRLF
    assert (d.home("alice") / "up.txt").read_bytes() == b"a\r\nb\n"


def test_aborted_hidden_store_keeps_existing_file(ftpd):
    d = ftpd(BASE + "HiddenStores on\nAllowOverwrite on\n")
    put(d, "h.bin", b"old content")
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("STOR h.bin")
        conn.sendall(b"partial new")
        time.sleep(0.1)
        resp = ftp.abort()
        conn.close()
        assert resp.startswith("426")
        assert ftp.getresp() == "226 Abort successful"
    assert (d.home("alice") / "h.bin").read_bytes() == b"old content"
    assert not (d.home("alice") / ".in.h.bin.").exists()


def test_delete_aborted_stores(ftpd):
    d = ftpd(BASE + "DeleteAbortedStores on\n")
    put(d, "other.txt", b"untouched")
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("STOR part.bin")
        conn.sendall(b"x" * 10000)
        time.sleep(0.1)
        assert ftp.abort().startswith("426")
        conn.close()
        assert ftp.getresp() == "226 Abort successful"
    assert not (d.home("alice") / "part.bin").exists()
    assert (d.home("alice") / "other.txt").read_bytes() == b"untouched"


def test_abor_during_download(ftpd):
    d = ftpd(BASE)
    put(d, "big.bin", b"\0" * (64 << 20))
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("RETR big.bin")
        conn.recv(65536)
        resp = ftp.abort()
        assert resp == "426 Transfer aborted. Data connection closed."
        assert ftp.getresp() == "226 Abort successful"
        conn.close()
        assert ftp.sendcmd("NOOP") == "200 NOOP command successful"


def test_abor_without_transfer(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        ftp.sendcmd("PASV")
        assert ftp.sendcmd("ABOR") == "226 Abort successful"


def test_stat_and_other_commands_during_transfer(ftpd):
    """As ProFTPD's poll_ctrl(): NOOP is answered in place, transfer commands and RNFR/RNTO get 450, anything else
    runs (STAT shows the transfer); the transfer goes on."""
    d = ftpd(BASE + "TransferRate RETR 64\n")
    put(d, "slow.bin", b"s" * 400_000)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("RETR slow.bin")
        conn.recv(1000)
        data_port = conn.getsockname()[1]
        replies = {}
        for line in ("STAT", "PWD", "NOOP", "RNFR slow.bin", "PASV", "SIZE slow.bin"):
            ftp.putcmd(line)
            replies[line] = ftp.getmultiline()
        resp = ftp.abort()
        conn.close()
        assert resp.startswith("426")
        assert ftp.getresp() == "226 Abort successful"
    status = replies["STAT"].split("\n")
    assert status[0] == "211-Status of 'proftpy test'" and status[-1] == "211 End of status"
    assert f" Passive data transfer from from 127.0.0.1 port {data_port}" in status
    done = [line for line in status if line.startswith(" RETR /slow.bin (400000/")]
    assert len(done) == 1 and 0 < int(done[0].split("/")[-1].rstrip(")")) < 400_000, status
    assert replies["PWD"] == '257 "/" is the current directory'
    assert replies["NOOP"] == "200 NOOP: data transfer in progress"
    assert replies["RNFR slow.bin"] == "450 RNFR: data transfer in progress"
    assert replies["PASV"] == "450 PASV: data transfer in progress"
    assert replies["SIZE slow.bin"] == "213 400000"


def test_quit_during_transfer_is_only_goodbye(ftpd):
    """QUIT while a download runs: the session ends with 221 alone (no 426 before it), as ProFTPD's."""
    d = ftpd(BASE + "TransferRate RETR 64\n")
    put(d, "slow.bin", b"s" * 400_000)
    ftp = d.login()
    conn = ftp.transfercmd("RETR slow.bin")
    conn.recv(1000)
    ftp.putcmd("QUIT")
    assert ftp.getline() == "221 Goodbye."
    assert ftp.sock.recv(100) == b""
    conn.close()
    ftp.close()


def test_transfer_rate_limits_bandwidth(ftpd):
    d = ftpd(BASE + "TransferRate RETR 400:100000\n")
    put(d, "r.bin", b"r" * 500_000)
    with d.login() as ftp:
        start = time.monotonic()
        assert len(retr(ftp, "r.bin")) == 500_000
        took = time.monotonic() - start
    # 400 000 bytes beyond the free bytes at 400 KiB/s: about 1 s.
    assert 0.8 < took < 5


def test_no_transfer_timeout(ftpd):
    d = ftpd(BASE + "TimeoutNoTransfer 1\n")
    ftp = d.login()
    time.sleep(1.6)
    with pytest.raises((ftplib.error_temp, EOFError)) as info:
        ftp.sendcmd("NOOP")
    assert "421 No transfer timeout (1 seconds): closing control connection" in str(info.value)
    ftp.close()


def test_stalled_transfer_ends_session(ftpd):
    d = ftpd(BASE + "TimeoutStalled 1\n")
    put(d, "big.bin", b"\0" * (32 << 20))
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    start = time.monotonic()
    ftp.sock.settimeout(10)
    rest = ftp.sock.recv(4096)      # the session ends: EOF (possibly after the 426)
    while rest and b"426" in rest:
        rest = ftp.sock.recv(4096)
    assert rest == b"" and time.monotonic() - start < 8
    conn.close()
    ftp.close()
    assert "stall timeout" in d.log()


def test_upload_of_missing_directory_is_550(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        with pytest.raises(ftplib.error_perm, match="550 nodir/f.txt: No such file or directory"):
            ftp.storbinary("STOR nodir/f.txt", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match="550 missing.bin: No such file or directory"):
            retr(ftp, "missing.bin")
        with pytest.raises(ftplib.error_perm, match="550 /: Not a regular file"):
            retr(ftp, "/")


def test_no_leftover_file_when_data_connection_fails(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        with pytest.raises(ftplib.error_temp, match="425 Unable to build data connection"):
            ftp.sendcmd("STOR never.bin")
    assert not (d.home("alice") / "never.bin").exists()


# -- curl and wget -----------------------------------------------------------------------------------------------
needs_curl = pytest.mark.skipif(CURL is None, reason="curl not installed")


@needs_curl
@pytest.mark.parametrize("mode", [[], ["--ftp-port", "-"], ["--disable-epsv"]], ids=["epsv", "active", "pasv"])
def test_curl_download_modes(ftpd, mode):
    d = ftpd(BASE)
    payload = os.urandom(300_000)
    put(d, "c.bin", payload)
    res = curl(*mode, url(d, "c.bin"))
    assert res.returncode == 0, res.stderr
    assert res.stdout == payload


@needs_curl
def test_curl_range_upload_and_quote(ftpd, tmp_path):
    d = ftpd(BASE + "AllowOverwrite on\n")
    payload = bytes(range(256)) * 100
    put(d, "c.bin", payload)
    res = curl("-r", "100-199", url(d, "c.bin"))
    assert res.returncode == 0 and res.stdout == payload[100:200], res.stderr
    src = tmp_path / "upload.bin"
    src.write_bytes(payload)
    res = curl("-T", str(src), url(d, "sent.bin"))
    assert res.returncode == 0, res.stderr
    assert (d.home("alice") / "sent.bin").read_bytes() == payload
    res = curl("-Q", "TYPE I", "-Q", "ALLO 10", "-r", "0-9", url(d, "sent.bin"))
    assert res.returncode == 0 and res.stdout == payload[:10], res.stderr


@pytest.mark.skipif(WGET is None, reason="wget not installed")
def test_wget_download(ftpd, tmp_path):
    d = ftpd(BASE)
    payload = os.urandom(200_000)
    put(d, "w.bin", payload)
    out = tmp_path / "w.out"
    res = subprocess.run([WGET, "-q", "-O", str(out), url(d, "w.bin")], capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == payload


# -- IPv6 --------------------------------------------------------------------------------------------------------
needs_v6 = pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")


@needs_v6
@pytest.mark.parametrize("passive", [True, False], ids=["epsv", "eprt"])
def test_ipv6_transfers(ftpd, passive):
    d = ftpd(BASE, host="::1")
    payload = os.urandom(500_000)
    with d.login() as ftp:
        ftp.set_pasv(passive)
        ftp.storbinary("STOR v6.bin", io.BytesIO(payload))
        assert retr(ftp, "v6.bin") == payload
        with pytest.raises(ftplib.error_perm, match="501 PASV: Operation not permitted"):
            ftp.sendcmd("PASV")


@needs_v6
@needs_curl
def test_curl_over_ipv6(ftpd):
    d = ftpd(BASE, host="::1")
    put(d, "c.bin", b"six" * 1000)
    for mode in ([], ["--ftp-port", "-"]):
        res = curl("-g", *mode, url(d, "c.bin"))
        assert res.returncode == 0 and res.stdout == b"six" * 1000, res.stderr
