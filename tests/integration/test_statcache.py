"""mod_statcache against the real daemon: a stat result one session looked up serves another until its age passes
(StatCacheMaxAge, positive and negative), a session's own change (STOR, APPE, DELE, RNTO, MKD, SITE CHMOD) is
seen at once by every session, SFTP sessions (no failure cached), a reload, `ftpdctl statcache info|dump` with
StatCacheControlsACLs, the directives' checks, and a configuration without StatCacheEngine that caches nothing."""

from __future__ import annotations

import ftplib
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PASSWORDS, REPO, again, error_reply, make_file, refused_config, wait_until
from test_ban import ftpdctl

TABLE = "DefaultRoot ~\nStatCacheTable {dir}/statcache.tab\n"
ON = "StatCacheEngine on\n" + TABLE + "StatCacheControlsACLs all allow user root\n"


def grow(path: str, data: bytes) -> None:
    """A change made outside the daemon (another program writing the file)."""
    with open(path, "ab") as f:
        f.write(data)


def size(ftp: ftplib.FTP, name: str) -> int | str:
    try:
        return ftp.size(name)
    except ftplib.error_perm as e:
        return str(e)


def test_proftpy_lists_the_module():
    out = subprocess.run([sys.executable, "-m", "proftpy", "-l"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO))).stdout
    assert "  mod_statcache.c" in out.splitlines()


def test_another_session_sees_an_outside_change_once_the_entry_is_older_than_max_age(ftpd):
    d = ftpd(ON + "StatCacheMaxAge 2\n")
    path = make_file(d, "f.txt", b"12345")
    a, b = d.login(), d.login()
    for ftp in (a, b):
        ftp.voidcmd("TYPE I")
    assert size(a, "f.txt") == 5
    grow(path, b"678")
    assert size(b, "f.txt") == 5                       # a's entry serves b: the table is shared
    time.sleep(3.1)
    assert size(b, "f.txt") == 8
    a.quit()
    b.quit()


@pytest.mark.parametrize("ages, cached", [("10 2", True), ("10 0", False)])
def test_a_failure_is_cached_for_the_negative_age(ftpd, ages, cached):
    d = ftpd(ON + f"StatCacheMaxAge {ages}\n")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    assert "No such file or directory" in str(size(ftp, "late.txt"))
    make_file(d, "late.txt", b"abc")
    assert size(ftp, "late.txt") == ("550 late.txt: No such file or directory" if cached else 3)
    if cached:
        time.sleep(3.1)
        assert size(ftp, "late.txt") == 3
    ftp.quit()


def test_a_sessions_own_changes_are_seen_at_once_by_every_session(ftpd):
    d = ftpd(ON + "StatCacheMaxAge 60\nAllowOverwrite on\nAllowStoreRestart on\n")
    make_file(d, "f.txt", b"12345")
    a, b = d.login(), d.login()
    for ftp in (a, b):
        ftp.voidcmd("TYPE I")
    assert size(a, "f.txt") == size(b, "f.txt") == 5
    a.storbinary("APPE f.txt", io.BytesIO(b"6789"))
    assert size(a, "f.txt") == size(b, "f.txt") == 9
    a.storbinary("STOR f.txt", io.BytesIO(b"xy"))
    assert size(a, "f.txt") == size(b, "f.txt") == 2
    assert "No such file" in str(size(b, "g.txt"))
    a.rename("f.txt", "g.txt")
    assert size(b, "g.txt") == 2 and "No such file" in str(size(b, "f.txt"))
    b.delete("g.txt")
    assert "No such file" in str(size(a, "g.txt"))
    assert "No such file" in error_reply(b, "CWD sub")
    a.mkd("sub")
    b.cwd("sub")
    b.cwd("/")
    a.rmd("sub")
    assert "No such file" in error_reply(b, "CWD sub")
    a.mkd("tree")
    a.storbinary("STOR tree/in.txt", io.BytesIO(b"abc"))
    assert size(b, "tree/in.txt") == 3 and "No such file" in str(size(b, "moved/in.txt"))
    a.rename("tree", "moved")                       # what was below the old name and the new one changed too
    assert "No such file" in str(size(b, "tree/in.txt")) and size(b, "moved/in.txt") == 3
    a.quit()
    b.quit()


def test_chmod_is_seen_at_once(ftpd):
    d = ftpd(ON + "StatCacheMaxAge 60\n")
    make_file(d, "f.txt", b"12345")
    ftp = d.login()
    lines: list[str] = []
    ftp.retrlines("LIST f.txt", lines.append)
    ftp.sendcmd("SITE CHMOD 600 f.txt")
    assert ftp.sendcmd("STAT f.txt").splitlines()[1].lstrip().startswith("-rw-------")
    ftp.quit()


def test_ftpdctl_info_counts_hits_misses_and_entries(ftpd):
    d = ftpd(ON + "StatCacheCapacity 25\n")
    make_file(d, "f.txt", b"12345")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    for _ in range(3):
        ftp.size("f.txt")
    ftp.quit()
    status, lines = ftpdctl(d, "statcache", "info")
    assert status == 0 and len(lines) == 4
    hits, misses = (int(w.rstrip(",:")) for w in lines[0].split()[1:4:2])
    assert hits >= 2 and misses >= 1
    assert lines[0].endswith(f"{hits / (hits + misses) * 100:.1f}% hit rate")
    assert lines[1] == "   expires 0, rejects 0"
    assert lines[2].startswith(" current count: ") and "(of 30)" in lines[2]
    status, dump = ftpdctl(d, "statcache", "dump")
    assert status == 0 and dump[0] == "StatCache Contents:" and len(dump) == 1 + 3 * 11
    assert any(line.endswith(f"'{os.path.realpath(d.home('alice'))}/f.txt' (0 secs old)") or
               line.endswith(f"'{os.path.realpath(d.home('alice'))}/f.txt' (1 secs old)") for line in dump)


def test_ftpdctl_refusals(ftpd):
    d = ftpd("StatCacheEngine on\n" + TABLE)
    assert ftpdctl(d, "statcache", "info")[1] == ["access denied"]
    d = again(ftpd, d, ON)
    assert ftpdctl(d, "statcache")[1] == ["missing parameters"]
    assert ftpdctl(d, "statcache", "flush")[1] == ["unknown statcache action requested: 'flush'"]
    d = again(ftpd, d, "StatCacheEngine off\n" + TABLE + "StatCacheControlsACLs statcache allow user root\n")
    assert ftpdctl(d, "statcache", "info")[1] == ["mod_statcache/0.2 not enabled"]


def test_without_the_engine_nothing_is_cached(ftpd):
    d = ftpd(TABLE + "StatCacheMaxAge 60\n")
    path = make_file(d, "f.txt", b"12345")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    assert size(ftp, "f.txt") == 5
    grow(path, b"6")
    assert size(ftp, "f.txt") == 6
    ftp.quit()
    assert not (d.dir / "statcache.tab").exists()


def test_configuration_errors_name_the_line(tmp_path):
    assert "t.conf:2: mod_statcache/0.2: missing required StatCacheTable configuration" in \
        refused_config(tmp_path, "StatCacheEngine on")
    assert "parameter must be 10 or greater" in refused_config(tmp_path, "StatCacheCapacity 9")
    assert "positive-age parameter must be 1 or greater" in refused_config(tmp_path, "StatCacheMaxAge 0")
    assert "wrong number of parameters" in refused_config(tmp_path, "StatCacheMaxAge 1 2 3")
    assert "must be an absolute path" in refused_config(tmp_path, "StatCacheTable rel.tab")
    assert "t.conf:2:" in refused_config(tmp_path, "StatCacheEngine maybe")
    assert "t.conf:2:" in refused_config(tmp_path, "StatCacheControlsACLs info allow user root")
    assert "t.conf:2:" in refused_config(tmp_path, "StatCacheControlsACLs all allow person root")
    assert "t.conf:3:" in refused_config(tmp_path, "<VirtualHost 127.0.0.2>\nStatCacheTable /tmp/x.tab\n"
                                         "</VirtualHost>")
    assert "t.conf:3:" in refused_config(tmp_path, "<Anonymous /tmp>\nStatCacheEngine on\n</Anonymous>")


def test_a_reload_lays_a_fresh_table_and_running_sessions_go_on(ftpd):
    d = ftpd(ON + "StatCacheMaxAge 60\n")
    make_file(d, "f.txt", b"12345")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    assert size(ftp, "f.txt") == 5
    assert ftpdctl(d, "statcache", "info")[1][2].startswith(" current count: ")
    assert not ftpdctl(d, "statcache", "info")[1][2].startswith(" current count: 0 ")
    os.kill(d.proc.pid, signal.SIGHUP)
    assert wait_until(lambda: ftpdctl(d, "statcache", "info")[1][2].startswith(" current count: 0 "), 10)
    assert size(ftp, "f.txt") == 5                  # the session keeps the table it mapped
    ftp.quit()
    other = d.login()
    other.voidcmd("TYPE I")
    assert size(other, "f.txt") == 5
    other.quit()


def test_sftp_sessions_read_through_the_table_and_cache_no_failure(ftpd, tmp_path):
    """An SSH session's stats go through the table too; a failure is never cached for it (ProFTPD turns negative
    caching off for ssh2/sftp/scp), so a file that appears is found by the next SFTP session at once."""
    key = tmp_path / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    d = ftpd(ON + f"StatCacheMaxAge 60 60\nSFTPEngine on\nSFTPHostKey {key}\nSFTPAuthMethods password\n"
             "AllowOverwrite on\nStatCacheCapacity 100\n")     # rows the dump shows whole (where they fall: the path's hash)
    url = f"sftp://127.0.0.1:{d.port}"

    def curl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["curl", "-sS", "-k", "-u", f"alice:{PASSWORDS['alice']}", *args],
                              capture_output=True, timeout=60)

    assert curl(f"{url}/late.txt").returncode != 0
    assert curl("-Q", "rename /late.txt /later.txt", f"{url}/").returncode != 0     # RNFR's stat fails
    make_file(d, "late.txt", b"late\n")
    assert curl(f"{url}/late.txt").stdout == b"late\n"
    assert b" late.txt" in curl(f"{url}/").stdout
    dump = [line for line in ftpdctl(d, "statcache", "dump")[1] if "secs old" in line]
    assert dump and "(error:" not in "".join(ftpdctl(d, "statcache", "dump")[1])
    src = tmp_path / "up.txt"
    src.write_bytes(b"12345")
    assert curl("-T", str(src), f"{url}/late.txt").returncode == 0
    assert curl(f"{url}/late.txt").stdout == b"12345"
    status, lines = ftpdctl(d, "statcache", "info")
    assert status == 0 and not lines[0].startswith(" hits 0, misses 0")


def test_a_table_that_cannot_be_opened_stops_the_start(ftpd, tmp_path):
    (tmp_path / "elsewhere").write_bytes(b"kept")
    (tmp_path / "link.tab").symlink_to(tmp_path / "elsewhere")
    d = ftpd("DefaultRoot ~\nStatCacheEngine on\nStatCacheTable {dir}/link.tab\n", wait=False)
    assert d.proc.wait(15) == 1
    said = d.proc.stderr.read().decode() + d.log()
    assert "mod_statcache/0.2: StatCacheTable" in said and "refusing to use a symbolic link" in said
    assert "Traceback" not in said
    assert (tmp_path / "elsewhere").read_bytes() == b"kept"
