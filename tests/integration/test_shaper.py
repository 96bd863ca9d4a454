"""mod_shaper against the real daemon: the overall rate shared out among logged-in sessions by their shares (a
session's running download slows when another logs in), ftpdctl shaper info/all/sess with their texts and ACLs,
ShaperEngine off, bad directives. Rates are measured over a couple of seconds and checked within wide bands
(0.5-1.6 times the expected rate): the machine may be busy."""
from __future__ import annotations

import ftplib
import io
import os
import re
import time

import pytest

from conftest import refused_config, wait_until
from test_ban import ftpdctl

MIB = 1024 * 1024
TOTAL = 2048                        # ShaperAll rate, KiB/s: 2 MiB/s
SHAPED = ("DefaultRoot ~\nShaperEngine on\nShaperTable {dir}/shaper.tab\nShaperLog {dir}/shaper.log\n"
          f"ShaperAll rate {TOTAL}\nShaperControlsACLs all,info,sess allow user root\n")


def put(d, name: str, size: int, user: str = "alice") -> None:
    path = d.home(user) / name
    path.write_bytes(b"s" * size)
    if os.geteuid() == 0:
        os.chown(path, d.uid(user), d.users[user][1])


def download_rate(ftp: ftplib.FTP, name: str) -> float:
    """Bytes per second of one whole RETR."""
    got = 0

    def count(block: bytes) -> None:
        nonlocal got
        got += len(block)
    start = time.monotonic()
    ftp.retrbinary(f"RETR {name}", count, blocksize=65536)
    return got / (time.monotonic() - start)


def within(rate: float, expected: float) -> bool:
    return 0.5 * expected <= rate <= 1.6 * expected


def info(d) -> list[str]:
    status, lines = ftpdctl(d, "shaper", "info")
    assert status == 0, lines
    return lines


def shaped_sessions(d) -> dict[int, str]:
    """pid -> its line of `ftpdctl shaper info`."""
    return {int(line.split()[0]): line for line in info(d)[6:]}


def test_one_session_alone_gets_the_whole_rate(ftpd):
    d = ftpd(SHAPED)
    put(d, "big.bin", 4 * MIB)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        rate = download_rate(ftp, "big.bin")
    assert within(rate, TOTAL * 1024), rate


def test_uploads_are_shaped_too(ftpd):
    d = ftpd(SHAPED.replace(f"ShaperAll rate {TOTAL}", f"ShaperAll downrate {TOTAL} uprate 1024"))
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        start = time.monotonic()
        ftp.storbinary("STOR up.bin", io.BytesIO(b"u" * (2 * MIB)), blocksize=65536)
        rate = 2 * MIB / (time.monotonic() - start)
    assert within(rate, 1024 * 1024), rate
    assert (d.home("alice") / "up.bin").stat().st_size == 2 * MIB


def test_two_sessions_split_the_rate_by_their_shares(ftpd):
    d = ftpd(SHAPED + "<IfUser bob>\n  ShaperSession shares +5\n</IfUser>\n")
    put(d, "a.bin", 1400 * 1024)
    put(d, "b.bin", 2800 * 1024, user="bob")
    with d.login() as alice, d.login("bob") as bob:
        for ftp in (alice, bob):
            ftp.voidcmd("TYPE I")
        # alice 5 shares, bob 10: a third and two thirds of 2 MiB/s
        alice_rate = download_rate(alice, "a.bin")
        bob_rate = download_rate(bob, "b.bin")
        lines = shaped_sessions(d)
    assert within(alice_rate, TOTAL * 1024 / 3), alice_rate
    assert within(bob_rate, TOTAL * 1024 * 2 / 3), bob_rate
    assert sorted(re.split(r"\s{2,}| (?=\d)", line.split(None, 2)[2])[0] for line in lines.values()) \
        == ["10/15 (+5)", "5/15 (0)"]


def window(conn, seconds: float) -> float:
    """Bytes per second read from a data connection over `seconds`."""
    got, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        block = conn.recv(65536)
        assert block, "the download ended early"
        got += len(block)
    return got / (time.monotonic() - start)


def test_a_second_session_slows_the_first_ones_running_download(ftpd):
    d = ftpd(SHAPED)
    put(d, "huge.bin", 16 * MIB)
    with d.login() as alice:
        alice.voidcmd("TYPE I")
        conn = alice.transfercmd("RETR huge.bin")
        window(conn, 0.3)                       # the start (socket buffers filling)
        alone = window(conn, 1.5)
        with d.login("bob"):
            window(conn, 0.3)
            shared = window(conn, 2.0)
            assert len(shaped_sessions(d)) == 2
        conn.close()
        with pytest.raises(ftplib.error_temp):
            alice.voidresp()
    assert within(alone, TOTAL * 1024), alone
    assert within(shared, TOTAL * 1024 / 2), shared
    assert shared < 0.8 * alone, (alone, shared)


def test_ftpdctl_shaper_info_lists_the_shaped_sessions(ftpd):
    d = ftpd(SHAPED)
    assert info(d) == [f"Overall Rates: {TOTAL}.00 KB/s down, {TOTAL}.00 KB/s up",
                       "Default Shares Per Session: 5 down, 5 up", "Default Priority: 10",
                       "Number of Shaped Sessions: 0"]
    with d.login(), d.login("bob"):
        lines = info(d)
        assert lines[3] == "Number of Shaped Sessions: 2"
        assert lines[4:6] == ["PID   Priority DShares        DRate (KB/s) UShares        URate (KB/s)",
                              "----- -------- -------------- ------------ -------------- ------------"]
        for line in lines[6:]:
            assert re.fullmatch(r" *\d+       10       5/10 \(0\)      1024\.00       5/10 \(0\)      1024\.00", line)
    # a session that ends takes its record out
    assert wait_until(lambda: info(d)[3] == "Number of Shaped Sessions: 0", 10)


def test_ftpdctl_shaper_sess_changes_a_sessions_shares(ftpd):
    d = ftpd(SHAPED)
    with d.login() as alice, d.login("bob") as bob:
        assert ftpdctl(d, "shaper", "sess", "user", "bob", "shares", "+5") == (
            0, ["adjusted session downshares and upshares by +5", "sessions adjusted"])
        by_pid = shaped_sessions(d)
        bob_line = [line for line in by_pid.values() if "(+5)" in line]
        assert len(bob_line) == 1 and "10/15 (+5)" in bob_line[0] and "1365.33" in bob_line[0]
        assert [line for line in by_pid.values() if "(0)" in line][0].endswith("682.67")
        assert ftpdctl(d, "shaper", "sess", "user", "bob", "priority", "-1") == (
            1, ["priority (-1) must be greater than 0"])
        assert ftpdctl(d, "shaper", "sess", "user", "bob", "shares", "5") == (
            1, ["shares (5) must start with '+' or '-'"])
        assert ftpdctl(d, "shaper", "sess", "user", "alice", "shares", "-5") == (
            0, ["adjusted session downshares and upshares by -5",
                f"error adjusting pid {pid_of(by_pid, '(0)')}: Invalid argument"])
        assert ftpdctl(d, "shaper", "sess", "nobody", "x", "shares", "+1")[1][-1] == \
            "unknown shaper session target type: 'nobody'"
        for ftp in (alice, bob):
            ftp.voidcmd("NOOP")


def pid_of(by_pid: dict[int, str], marker: str) -> int:
    return next(pid for pid, line in by_pid.items() if marker in line)


def test_ftpdctl_shaper_all_changes_the_overall_settings(ftpd):
    d = ftpd(SHAPED)
    assert ftpdctl(d, "shaper", "all", "rate", "1000", "shares", "10", "priority", "3") == (
        0, ["overall rates (1000.00 down, 1000.00 up) set", "default shares (10 down, 10 up) set",
            "default priority (3) set"])
    assert info(d)[:3] == ["Overall Rates: 1000.00 KB/s down, 1000.00 KB/s up",
                           "Default Shares Per Session: 10 down, 10 up", "Default Priority: 3"]
    assert ftpdctl(d, "shaper", "all", "downrate", "x", "upshares", "0") == (
        1, ["invalid downrate value (x)", "upshares (0) must be greater than 1"])
    assert ftpdctl(d, "shaper", "all", "rate") == (1, ["wrong number of parameters"])
    assert ftpdctl(d, "shaper", "all", "bogus", "1") == (1, ["unknown shaper all option 'bogus'"])
    assert info(d)[0] == "Overall Rates: 1000.00 KB/s down, 1000.00 KB/s up"
    assert ftpdctl(d, "shaper") == (1, ["shaper: missing required parameters"])


def test_shaper_actions_need_their_acl(ftpd):
    d = ftpd(SHAPED.replace("all,info,sess allow user root", "info allow user root"))
    assert ftpdctl(d, "shaper", "info")[0] == 0
    assert ftpdctl(d, "shaper", "all", "rate", "10") == (1, ["access denied"])
    assert ftpdctl(d, "shaper", "sess", "user", "alice", "shares", "+1") == (1, ["access denied"])


def test_shaper_engine_off_leaves_transfers_alone(ftpd):
    d = ftpd(SHAPED.replace("ShaperEngine on", "ShaperEngine off").replace(f"rate {TOTAL}", "rate 64"))
    put(d, "big.bin", 4 * MIB)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        assert download_rate(ftp, "big.bin") > 8 * 64 * 1024
        assert info(d)[3] == "Number of Shaped Sessions: 0"


def test_a_user_exempted_with_ifuser_is_not_shaped(ftpd):
    d = ftpd(SHAPED.replace(f"rate {TOTAL}", "rate 64") + "<IfUser alice>\n  ShaperEngine off\n</IfUser>\n")
    put(d, "big.bin", 4 * MIB)
    with d.login() as ftp, d.login("bob"):
        ftp.voidcmd("TYPE I")
        assert download_rate(ftp, "big.bin") > 8 * 64 * 1024
        assert info(d)[3] == "Number of Shaped Sessions: 1"


def test_a_higher_ranked_transfer_rate_wins_over_a_low_shaper_priority(ftpd):
    d = ftpd(SHAPED + "ShaperSession priority 1\nTransferRate RETR 512\n")
    put(d, "big.bin", 2 * MIB)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        assert within(download_rate(ftp, "big.bin"), 512 * 1024)


def test_the_table_goes_with_the_daemon(ftpd):
    d = ftpd(SHAPED)
    assert wait_until((d.dir / "shaper.tab").exists, 10)
    d.stop()
    assert not (d.dir / "shaper.tab").exists()


def test_a_download_rate_alone_leaves_the_engine_off_as_proftpds(ftpd):
    d = ftpd(SHAPED.replace(f"ShaperAll rate {TOTAL}", "ShaperAll downrate 64"))
    with d.login() as ftp:
        ftp.voidcmd("NOOP")
        assert info(d)[:4] == ["Overall Rates: 64.00 KB/s down, -1.00 KB/s up",
                               "Default Shares Per Session: 5 down, 5 up", "Default Priority: 10",
                               "Number of Shaped Sessions: 0"]
    assert "overall rates negative or not configured, disabling ShaperEngine" in \
        (d.dir / "shaper.log").read_text()


def test_a_table_in_a_world_writable_directory_is_refused_and_nobody_is_shaped(ftpd, tmp_path):
    (tmp_path / "ww").mkdir()
    os.chmod(tmp_path / "ww", 0o777)
    d = ftpd(SHAPED.replace("{dir}/shaper.tab", "{dir}/ww/shaper.tab").replace(f"rate {TOTAL}", "rate 64"))
    put(d, "big.bin", 2 * MIB)
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        assert download_rate(ftp, "big.bin") > 8 * 64 * 1024
    assert "refusing to use world-writable directory" in (d.dir / "shaper.log").read_text()
    assert "ShaperTable not open, disabling ShaperEngine" in (d.dir / "shaper.log").read_text()
    assert ftpdctl(d, "shaper", "info") == (1, ["error handling request"])
    assert not (tmp_path / "ww" / "shaper.tab").exists()


@pytest.mark.parametrize("line, message", [
    ("ShaperAll rate", "wrong number of parameters"),
    ("ShaperAll rate -5", "rate must be greater than 0"),
    ("ShaperAll rate fast", "invalid rate parameter"),
    ("ShaperAll shares 0", "shares must be greater than 1"),
    ("ShaperAll bogus 1", "unknown option: 'bogus'"),
    ("ShaperSession shares 5", "shares parameter must start with '+' or '-'"),
    ("ShaperSession priority -1", "priority must be greater than 0"),
    ("ShaperEngine maybe", "ShaperEngine"),
    ("ShaperTable shaper.tab", "ShaperTable"),
    ("ShaperControlsACLs bogus allow user root", "unknown shaper action: 'bogus'"),
    ("<VirtualHost 127.0.0.1>\nShaperAll rate 10\n</VirtualHost>", "ShaperAll"),
])
def test_bad_directives_are_refused_with_file_and_line(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert re.search(r"t\.conf:\d+: ", err) and message in err, err
