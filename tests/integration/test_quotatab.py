"""Quotas (mod_quotatab with file tables) on the real daemon, driven by ftplib, curl and lftp: hard and soft byte
limits on uploads, download limits, what DELE gives back, per-session limits, group limits two users share,
HiddenStores, many sessions counting into one tally at once, bad tables, configuration errors; and the same tables
shared with Debian's ProFTPD 1.3.8 (its mod_quotatab_file) and written by its `ftpquota` script."""

from __future__ import annotations

import ftplib
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import (IS_ROOT, PASSWORDS, PROFTPD, SIDE_BY_SIDE_CONFIG, fill, free_port, make_file, refused_config,
                      wait_until)

from proftpy import quotatab as qt

FTPQUOTA = "/usr/sbin/ftpquota"            # Debian's Perl script (proftpd-basic)


@pytest.fixture
def tmp_path(open_tmp_path):
    """ProFTPD's sessions and the test users reach the tables and homes here."""
    return open_tmp_path


def conf(extra: str = "") -> str:
    return ("QuotaEngine on\nQuotaLimitTable file:{dir}/quota.limit\nQuotaTallyTable file:{dir}/quota.tally\n"
            "QuotaLog {dir}/quota.log\nAllowOverwrite on\nDefaultRoot ~\n" + extra)


def tables(base: Path, *limits: qt.Limit, tallies: tuple[qt.Tally, ...] = ()) -> None:
    for kind, records in (("limit", limits), ("tally", tallies)):
        (base / f"quota.{kind}").unlink(missing_ok=True)
        qt.create(str(base / f"quota.{kind}"), kind, records)


def tally(base: Path, name: str = "alice", quota_type: int = qt.USER) -> qt.Tally | None:
    table = qt.Table.open(str(base / "quota.tally"), "tally")
    try:
        found = table.find(name, quota_type)
        return found[1] if found else None
    finally:
        table.close()


def alice(**limits) -> qt.Limit:
    return qt.Limit("alice", qt.USER, **limits)


def store(ftp: ftplib.FTP, name: str, data: bytes) -> str:
    """The final reply of a binary upload, whether it succeeded or not (a server that cuts the upload resets
    the data connection under the client: its reply says why)."""
    ftp.voidcmd("TYPE I")
    try:
        conn = ftp.transfercmd(f"STOR {name}")
    except ftplib.Error as e:
        return str(e)
    with conn:
        try:
            conn.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        else:
            cut = False
    try:
        reply = ftp.voidresp()
    except ftplib.Error as e:
        reply = str(e)
    assert not cut or not reply.startswith("226"), "the connection was reset under a complete upload"
    return reply


def started(ftpd, tmp_path: Path, *limits: qt.Limit, extra: str = "", tallies: tuple = ()):
    first = ftpd("")
    first.stop()                                # its users first: the tables name them
    tables(tmp_path, *limits, tallies=tallies)
    d = ftpd(conf(extra))
    d.users = first.users
    return d


# -- uploads -------------------------------------------------------------------------------------------------------
def test_hard_limit_cuts_the_upload_that_crosses_it_and_removes_the_file(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=100_000, files_in=100))
    ftp = d.login()
    assert store(ftp, "a.bin", b"a" * 60_000).startswith("226 ")
    reply = store(ftp, "b.bin", b"b" * 400_000)
    assert reply.startswith("552-Transfer aborted. Disk quota exceeded")
    assert "STOR: notice: quota reached: 'b.bin' removed" in reply
    assert not (d.home("alice") / "b.bin").exists()
    assert (tally(tmp_path).bytes_in, tally(tmp_path).files_in) == (60_000, 1)
    reply = store(ftp, "c.bin", b"c" * 40_000)              # exactly up to the limit: kept, with a notice
    assert reply == "226-Transfer complete\n226 STOR: notice: quota reached: used 100000.00 of 100000.00 upload bytes"
    assert (d.home("alice") / "c.bin").stat().st_size == 40_000
    assert store(ftp, "d.bin", b"d") == "552 STOR denied: quota exceeded: used 100000.00 of 100000.00 upload bytes"
    assert not (d.home("alice") / "d.bin").exists()
    ftp.quit()


def test_soft_limit_lets_the_upload_finish_and_refuses_the_next(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(limit_type=qt.SOFT, bytes_in=100, files_in=10))
    ftp = d.login()
    reply = store(ftp, "a.bin", b"a" * 150)
    assert reply.endswith("226 STOR: notice: quota reached: used 150.00 of 100.00 upload bytes"), reply
    assert (d.home("alice") / "a.bin").stat().st_size == 150
    assert store(ftp, "b.bin", b"b").startswith("552 STOR denied: quota exceeded: used 150.00 of 100.00")
    ftp.quit()


def test_file_count_limit_and_site_quota(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(files_in=2, bytes_out=1 << 20), extra="QuotaDisplayUnits Kb\n")
    ftp = d.login()
    assert store(ftp, "1", b"x" * 2048).startswith("226 ")
    assert "notice: quota reached: used 2 of 2 upload files" in store(ftp, "2", b"y")
    assert store(ftp, "3", b"z") == ("552-STOR denied: quota exceeded: used 2 of 2 upload files\n"
                                     "552 STOR: notice: quota reached: used 2 of 2 upload files")
    shown = ftp.sendcmd("SITE QUOTA").splitlines()
    assert shown[0] == "200-The current quota for this session are [current/limit]:"
    assert shown[1:5] == [" Name: alice", " Quota Type: User", " Per Session: False", " Limit Type: Hard"]
    assert shown[5:11] == ["   Uploaded Kb:\tunlimited", "   Downloaded Kb:\t0.00/1024.00",
                           "   Transferred Kb:\tunlimited", "   Uploaded files:\t2/2",
                           "   Downloaded files:\tunlimited", "   Transferred files:\tunlimited"]
    assert shown[11].startswith("200 Please contact ")
    ftp.quit()


def test_dele_and_an_overwriting_rename_give_bytes_and_files_back(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=10_000, files_in=10))
    ftp = d.login()
    store(ftp, "a", b"a" * 1000)
    store(ftp, "b", b"b" * 300)
    assert (tally(tmp_path).bytes_in, tally(tmp_path).files_in) == (1300, 2)
    ftp.delete("a")
    assert (tally(tmp_path).bytes_in, tally(tmp_path).files_in) == (300, 1)
    store(ftp, "c", b"c" * 50)
    ftp.rename("c", "b")                    # b's 300 bytes are gone
    assert (tally(tmp_path).bytes_in, tally(tmp_path).files_in) == (50, 1)
    ftp.quit()


def test_hidden_stores_upload_crossing_a_hard_limit_leaves_nothing(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=1000), extra="HiddenStores on\n")
    ftp = d.login()
    assert "Disk quota exceeded" in store(ftp, "big", b"x" * 300_000)
    assert sorted(os.listdir(d.home("alice"))) == []
    assert tally(tmp_path).bytes_in == 0
    ftp.quit()


def test_per_session_limit_starts_from_zero_and_leaves_the_tally_alone(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(per_session=True, bytes_in=100),
                tallies=(qt.Tally("alice", qt.USER, bytes_in=5000),))
    for _ in range(2):                      # each session gets its own 100 bytes
        ftp = d.login()
        assert store(ftp, "a", b"a" * 80).startswith("226 ")
        assert "Disk quota exceeded" in store(ftp, "b", b"b" * 300_000)
        ftp.quit()
    assert tally(tmp_path).bytes_in == 5000


def test_group_limit_is_shared_by_its_members(ftpd, tmp_path):
    d = started(ftpd, tmp_path, qt.Limit("ftpusers", qt.GROUP, bytes_in=100))
    a, b = d.login("alice"), d.login("bob")             # alice's primary group, one of bob's
    assert store(a, "x", b"a" * 60).startswith("226 ")
    assert "Disk quota exceeded" in store(b, "y", b"b" * 300_000)
    assert not (d.home("bob") / "y").exists()
    assert store(b, "z", b"b" * 40).startswith("226-")
    assert store(a, "w", b"a").startswith("552 STOR denied")
    assert tally(tmp_path, "ftpusers", qt.GROUP).bytes_in == 100
    a.quit()
    b.quit()


def test_sessions_uploading_at_once_lose_no_count(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=1e12, files_in=1000, bytes_xfer=1e12, files_xfer=1000))
    errors: list[str] = []

    def client(n: int) -> None:
        ftp = d.login()
        for i in range(5):
            reply = store(ftp, f"f{n}-{i}", b"q" * 1000)
            if not reply.startswith("226"):
                errors.append(reply)
        ftp.quit()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    counted = tally(tmp_path)
    assert (counted.bytes_in, counted.files_in, counted.bytes_xfer, counted.files_xfer) == (20_000, 20, 20_000, 20)


# -- downloads -----------------------------------------------------------------------------------------------------
def test_download_limit_refuses_the_next_retr_with_451(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_out=30))
    make_file(d, "file.txt", b"0123456789" * 2)
    url = f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{d.port}/file.txt"
    first = subprocess.run(["curl", "-sS", url], capture_output=True, timeout=30)
    assert first.returncode == 0 and first.stdout == b"0123456789" * 2
    second = subprocess.run(["curl", "-sS", url], capture_output=True, timeout=30)
    assert second.returncode == 0                       # 40 >= 30 only after this one: told, not refused
    third = subprocess.run(["curl", "-sS", url], capture_output=True, timeout=30)
    assert third.returncode != 0 and third.stdout == b""
    ftp = d.login()
    assert store(ftp, "up", b"u").startswith("226")     # uploads are not limited
    with pytest.raises(ftplib.error_temp, match="451 RETR denied: quota exceeded: used 40.00 of 30.00 download"):
        ftp.retrbinary("RETR file.txt", lambda _: None)
    ftp.quit()
    assert (tally(tmp_path).bytes_out, tally(tmp_path).files_out) == (40, 0)   # files_out: unlimited, not tallied


def test_lftp_upload_over_a_hard_quota_fails_and_leaves_no_file(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=10_000))
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(200_000))
    res = subprocess.run(["lftp", "-c", f"set cmd:fail-exit yes; set net:max-retries 1; "
                          f"open -u alice,{PASSWORDS['alice']} ftp://127.0.0.1:{d.port}; put {src} -o big.bin; "
                          "quote SITE QUOTA"], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "Disk quota exceeded" in res.stderr, res.stderr
    assert not (d.home("alice") / "big.bin").exists()
    assert tally(tmp_path).bytes_in == 0


# -- administration ------------------------------------------------------------------------------------------------
def test_bad_tables_turn_quotas_off_and_say_why_in_quota_log(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=10))
    (tmp_path / "quota.limit").write_bytes(b"not a table")
    ftp = d.login()
    assert ftp.sendcmd("SITE QUOTA") == "202 No quotas in effect"
    assert store(ftp, "a", b"a" * 100).startswith("226")
    ftp.quit()
    assert wait_until(lambda: "unable to use QuotaLimitTable: bad table header" in
                      (tmp_path / "quota.log").read_text())
    assert "mod_quotatab/1.3.1[" in (tmp_path / "quota.log").read_text()


def test_quota_log_tells_what_was_found_and_refused(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=10))
    ftp = d.login()
    store(ftp, "a", b"a" * 10)
    store(ftp, "b", b"b")
    ftp.quit()
    text = (tmp_path / "quota.log").read_text()
    for line in ("found limit entry for user 'alice'", "creating new tally entry to match limit entry",
                 "STOR: quota reached: used 10.00 of 10.00 upload bytes",
                 "STOR denied: quota exceeded: used 10.00 of 10.00 upload bytes"):
        assert line in text, text


def test_configuration_errors_name_file_and_line(tmp_path):
    for line, message in (("QuotaTallyTable ldap:", "unsupported table source type: 'ldap'"),
                          ("QuotaTallyTable /var/ftp/tally", "badly formatted parameter"),
                          ("QuotaDefault person false hard 1 1 1 1 1 1", "unknown quota type 'person'"),
                          ("QuotaDefault user maybe hard 1 1 1 1 1 1", "expected Boolean per-session parameter"),
                          ("QuotaDefault user false firm 1 1 1 1 1 1", "expected 'soft' or 'hard'"),
                          ("QuotaDefault user false hard 1 x 1 1 1 1", "'x' is not a number"),
                          ("QuotaDefault user false hard 1 1 1 -1 1 1", "'-1' is out of range"),
                          ("QuotaDefault user false hard 1 1 1", "wrong number of parameters"),
                          ("QuotaDisplayUnits Tb", "expected one of"),
                          ("QuotaOptions ScanAlways", "unknown QuotaOption 'ScanAlways'"),
                          ("QuotaExcludeFilter (", "QuotaExcludeFilter"),
                          ("QuotaLock quota.lock", "is not an absolute path")):
        stderr = refused_config(tmp_path, line)
        assert f"{tmp_path}/t.conf:2:" in stderr and message in stderr, (line, stderr)


# -- with Debian's ProFTPD and its ftpquota ------------------------------------------------------------------------
def ftpquota(*args: str) -> str:
    res = subprocess.run([FTPQUOTA, *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.skipif(not IS_ROOT, reason="Debian's proftpd runs as root here")
def test_proftpd_and_proftpy_count_into_the_same_tally(ftpd, tmp_path):
    ftpd("").stop()                                         # for its users alice and bob
    limit, tally_path = tmp_path / "quota.limit", tmp_path / "quota.tally"
    ftpquota("--create-table", "--type=limit", f"--table-path={limit}")
    ftpquota("--create-table", "--type=tally", f"--table-path={tally_path}")
    ftpquota("--add-record", "--type=limit", f"--table-path={limit}", "--name=alice", "--quota-type=user",
             "--bytes-upload=100", "--limit-type=hard")
    d = ftpd(conf())
    run = tmp_path / "proftpd"
    run.mkdir()
    port = free_port()
    (run / "conf").write_text(fill(SIDE_BY_SIDE_CONFIG + "LoadModule mod_quotatab.c\nLoadModule mod_quotatab_file.c\n"
                                   + conf().replace("{dir}/quota.log", "{dir}/proftpd-quota.log"),
                                   {"port": port, "dir": tmp_path, "base": tmp_path}))
    proc = subprocess.Popen([PROFTPD, "-n", "-c", str(run / "conf")], cwd=run, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: (tmp_path / "pid").exists(), 15), "proftpd did not start"
        ours = d.login()
        theirs = ftplib.FTP()
        theirs.connect("127.0.0.1", port, timeout=10)
        theirs.login("alice", PASSWORDS["alice"])
        assert store(ours, "a", b"a" * 80).startswith("226 ")
        assert "Disk quota exceeded" in store(theirs, "b", b"b" * 300_000)    # ProFTPD sees proftpy's 80
        assert store(theirs, "c", b"c" * 20).startswith("226-")
        assert store(ours, "d", b"d") == "552 STOR denied: quota exceeded: used 100.00 of 100.00 upload bytes"
        theirs.delete("c")                                                    # ProFTPD gives back 20
        assert store(ours, "e", b"e" * 20).startswith("226-")
        ours.quit()
        theirs.quit()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    shown = ftpquota("--show-records", "--type=tally", f"--table-path={tally_path}")
    assert "Name: alice" in shown and "Uploaded bytes:\t100.00" in shown, shown


def test_display_login_shows_the_limit_and_the_tally(ftpd, tmp_path):
    (tmp_path / "login.msg").write_text("in: %{mod_quotatab.tally.bytes_in} of %{mod_quotatab.limit.bytes_in}, "
                                        "files out: %{mod_quotatab.limit.files_out}, %{mod_quotatab.nothing}\n")
    d = started(ftpd, tmp_path, alice(bytes_in=3 << 20, files_out=4),
                extra="DisplayLogin {dir}/login.msg\nQuotaDisplayUnits Mb\n",
                tallies=(qt.Tally("alice", qt.USER, bytes_in=1 << 20),))
    ftp = d.connect()
    ftp.sendcmd("USER alice")
    assert ftp.sendcmd(f"PASS {PASSWORDS['alice']}") == \
        "230-in: 1.00 MB of 3.00 MB, files out: 4, (none)\n230 User alice logged in"
    ftp.quit()


def test_scan_on_login_sets_the_tally_from_the_home_directory(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=10_000, files_in=100), extra="QuotaOptions ScanOnLogin\n",
                tallies=(qt.Tally("alice", qt.USER, bytes_in=9999, files_in=99),))
    make_file(d, "a", b"a" * 100)
    os.mkdir(d.home("alice") / "sub")
    make_file(d, "sub/b", b"b" * 20)
    make_file(d, "bobs", b"x" * 5000, user="bob")           # bob's file in alice's home: not hers
    d.login().quit()
    assert (tally(tmp_path).bytes_in, tally(tmp_path).files_in) == (120, 2)


def test_uploads_refused_for_their_path_count_nothing_and_log_no_error(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=1000, files_in=10), extra="QuotaDirectoryTally on\n")
    ftp = d.login()
    for line in ("STOR ~nobody-here/x", "APPE ~", "MKD ~nobody-here/d", "STOU x y"):
        with pytest.raises(ftplib.error_perm):
            ftp.sendcmd("PASV")
            ftp.sendcmd(line)
    ftp.quit()
    assert (tally(tmp_path).bytes_in, tally(tmp_path).files_in) == (0, 0)
    assert "hook failed" not in d.log() and "Traceback" not in d.log()


# -- copies (mod_copy) ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [False, True])
def test_hard_limit_stops_a_copy_and_removes_it_unless_told_not_to(ftpd, tmp_path, keep):
    d = started(ftpd, tmp_path, alice(bytes_in=100_000), extra="CopyOptions NoDeleteOnFailure\n" if keep else "")
    make_file(d, "big.bin", os.urandom(300_000))
    ftp = d.login()
    ftp.sendcmd("SITE CPFR big.bin")
    with pytest.raises(ftplib.error_perm, match="^552 CPTO: Disk quota exceeded"):
        ftp.sendcmd("SITE CPTO copy.bin")
    copy = d.home("alice") / "copy.bin"
    assert copy.stat().st_size == 100_001 if keep else not copy.exists()
    assert tally(tmp_path).bytes_in == 0


def test_a_copied_tree_counts_each_file(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=10_000, files_in=10, bytes_xfer=10_000, files_xfer=10))
    make_file(d, "dir/a.txt", b"a" * 100)
    make_file(d, "dir/sub/b.txt", b"b" * 200)
    ftp = d.login()
    ftp.sendcmd("SITE CPFR dir")
    assert ftp.sendcmd("SITE CPTO copy") == "250 Copy successful"
    counted = tally(tmp_path)
    assert (counted.bytes_in, counted.files_in, counted.bytes_xfer, counted.files_xfer) == (300, 2, 300, 2)
    assert ftp.sendcmd("SITE COPY dir/a.txt c.txt") == "200 SITE COPY command successful"
    assert tally(tmp_path).files_in == 3


def test_a_copy_of_a_path_that_does_not_resolve_is_answered_and_counts_nothing(ftpd, tmp_path):
    d = started(ftpd, tmp_path, alice(bytes_in=10_000))
    make_file(d, "f.txt")
    ftp = d.login()
    for line in ("SITE COPY ~nosuchuser/f.txt g.txt", "SITE COPY f.txt ~nosuchuser/g.txt"):
        with pytest.raises(ftplib.error_perm, match="^550 ~nosuchuser"):
            ftp.sendcmd(line)
    ftp.sendcmd("SITE CPFR f.txt")
    with pytest.raises(ftplib.error_perm, match="^550 ~nosuchuser"):
        ftp.sendcmd("SITE CPTO ~nosuchuser/g.txt")
    ftp.quit()
    assert "hook failed" not in d.log() and tally(tmp_path).bytes_in == 0
