"""After PASS the session process is the user for good and confined to its root: checked on the real daemon, from
the client side (RETR, CWD, LIST, STOR) and from outside through /proc/<session pid>."""

import ftplib
import io
import os
import statistics
import time

import psutil
import pytest

from conftest import IS_ROOT



def needs_root(fn):
    return pytest.mark.root(pytest.mark.skipif(not IS_ROOT, reason="needs root (real uids, chroot)")(fn))


pytestmark = pytest.mark.usefixtures("reachable_homes")


def session_pid(d) -> int:
    """The one session child of the master (the test keeps one connection open)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = psutil.Process(d.master_pid).children()
        if len(children) == 1:
            return children[0].pid
        time.sleep(0.02)
    raise AssertionError(f"expected one session process, found {children}")


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def other_users_secret(d, where) -> None:
    """A mode-600 file owned by bob (uid 2301) at `where`."""
    where.write_text("bob's secret\n")
    os.chown(where, d.uid("bob"), d.uid("bob"))
    os.chmod(where, 0o600)


def retr(ftp: ftplib.FTP, name: str) -> bytes:
    out = io.BytesIO()
    ftp.retrbinary(f"RETR {name}", out.write)
    return out.getvalue()


@needs_root
@pytest.mark.parametrize("config", ["", "DefaultRoot ~\n"])
def test_session_runs_as_the_user_in_all_four_ids(ftpd, config):
    d = ftpd(config)
    with d.login("alice"):
        status = proc_status(session_pid(d))
    uid = str(d.uid("alice"))
    assert status["Uid"].split() == [uid] * 4
    assert status["Gid"].split() == [uid] * 4
    assert status["Groups"].split() == [uid]          # alice's own groups only, never root's 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["CapPrm"].strip() == status["CapEff"].strip() == "0" * 16
    assert status["Umask"].strip() == "0022"


@needs_root
def test_seteuid_0_fails_inside_the_session(ftpd):
    """Real, effective, saved and filesystem uid are all the user's and no capability is left, so the kernel
    refuses seteuid(0) (it only allows one of those three ids). The session also tried it itself, right after
    the drop, and logged the kernel's answer (at debug level: ProFTPD writes no such line); it would have ended
    the session had it succeeded."""
    d = ftpd(args=["-d", "1"])
    with d.login("alice"):
        pid = session_pid(d)
        status = proc_status(pid)
        assert "0" not in status["Uid"].split()
        assert status["CapPrm"].strip() == "0" * 16
        assert status["CapAmb"].strip() == "0" * 16
    assert (f"proftpy[{pid}] 127.0.0.1 (127.0.0.1[127.0.0.1]): alice: root privileges revoked "
            "(seteuid(0): Operation not permitted)") in d.log()


@needs_root
def test_the_session_is_not_dumpable(ftpd):
    """Not dumpable: /proc/<pid>/ files belong to root, so another process of the same uid cannot ptrace it or
    read its memory (a password typed at PASS stays private)."""
    d = ftpd()
    with d.login("alice"):
        pid = session_pid(d)
        assert os.stat(f"/proc/{pid}/mem").st_uid == 0
        assert proc_status(pid)["Uid"].split()[0] == str(d.uid("alice"))


@needs_root
def test_default_root_is_a_kernel_chroot(ftpd):
    d = ftpd("DefaultRoot ~\n")
    with d.login("alice"):
        assert os.readlink(f"/proc/{session_pid(d)}/root") == str(d.home("alice"))


@needs_root
def test_cannot_read_another_users_600_file_inside_its_reach(ftpd):
    d = ftpd()                                   # no chroot: the kernel's permission check is what stops it
    secret = d.home("alice") / "bobs.txt"
    other_users_secret(d, secret)
    with d.login("alice") as ftp:
        with pytest.raises(ftplib.error_perm, match=r"^550 .*bobs.txt: Permission denied$"):
            retr(ftp, "bobs.txt")
        with pytest.raises(ftplib.error_perm, match=r"^550 .*Permission denied$"):
            retr(ftp, str(d.home("bob")) + "/../alice/bobs.txt")
        (d.home("bob") / "private.txt").write_text("x")
        os.chown(d.home("bob") / "private.txt", d.uid("bob"), d.uid("bob"))
        os.chmod(d.home("bob"), 0o700)
        with pytest.raises(ftplib.error_perm, match=r"^550 .*Permission denied$"):
            retr(ftp, str(d.home("bob") / "private.txt"))


@needs_root
def test_chrooted_user_cannot_leave_by_dotdot_or_absolute_paths(ftpd):
    d = ftpd("DefaultRoot ~\n")
    other_users_secret(d, d.home("bob") / "secret.txt")
    (d.home("alice") / "mine.txt").write_text("alice's file\n")
    with d.login("alice") as ftp:
        for path in ("../bob/secret.txt", "/../bob/secret.txt", str(d.home("bob") / "secret.txt"),
                     "/../../../../etc/passwd", "/etc/passwd"):
            with pytest.raises(ftplib.error_perm, match=r"^550 .*No such file or directory$"):
                retr(ftp, path)
        ftp.cwd("../../..")
        assert ftp.pwd() == "/"
        assert retr(ftp, "/../../mine.txt") == b"alice's file\n"


@needs_root
def test_planted_symlink_to_etc_stays_inside_the_root(ftpd):
    d = ftpd("DefaultRoot ~\n")
    os.symlink("/etc", d.home("alice") / "etc-link")
    os.symlink("/etc/passwd", d.home("alice") / "passwd-link")
    with d.login("alice") as ftp:
        with pytest.raises(ftplib.error_perm, match=r"^550 "):
            retr(ftp, "passwd-link")
        with pytest.raises(ftplib.error_perm, match=r"^550 "):
            ftp.cwd("etc-link")
        with pytest.raises(ftplib.error_perm, match=r"^550 "):
            retr(ftp, "etc-link/hostname")


def test_uploads_belong_to_the_user_with_umask_applied(ftpd):
    d = ftpd("Umask 027 077\n")
    with d.login("alice") as ftp:
        ftp.storbinary("STOR up.bin", io.BytesIO(b"x" * 100))
        ftp.mkd("newdir")
    st = os.stat(d.home("alice") / "up.bin")
    assert st.st_mode & 0o777 == 0o640
    assert (st.st_uid, st.st_gid) == (d.uid("alice"), d.users["alice"][1])
    st = os.stat(d.home("alice") / "newdir")
    assert st.st_mode & 0o777 == 0o700
    assert st.st_uid == d.uid("alice")


def test_session_umask_is_the_file_umask(ftpd):
    d = ftpd("Umask 007 077\n")
    with d.login("alice"):
        assert proc_status(session_pid(d))["Umask"].strip() == "0007"


def test_failed_login_timing_does_not_reveal_users(ftpd):
    """Median PASS round trip for a wrong password of an existing user vs an unknown user, on one connection each,
    interleaved. The docs quote the figures this prints."""
    d = ftpd("MaxLoginAttempts 1000\n")
    times = {"alice": [], "nobody-here": []}
    conns = {name: d.connect() for name in times}
    try:
        for _ in range(40):
            for name, ftp in conns.items():
                ftp.sendcmd(f"USER {name}")
                start = time.perf_counter()
                with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
                    ftp.sendcmd("PASS wrong-password")
                times[name].append(time.perf_counter() - start)
    finally:
        for ftp in conns.values():
            ftp.close()
    known, unknown = (statistics.median(times[n]) * 1000 for n in times)
    print(f"median PASS ms: existing user {known:.3f}, unknown user {unknown:.3f}, ratio {unknown / known:.2f}")
    assert 0.5 < unknown / known < 2.0
    assert known > 0.5         # a real hash check happened (sha512-crypt, 5000 rounds: a few ms)


DEV_UID = 2399          # the developer running `make run`: not root, not one of the FTP users


@pytest.fixture
def nonroot_daemon(tmp_path):
    """proftpy started by an ordinary user (DEV_UID) with DefaultRoot ~."""
    from conftest import AUTH_CONFIG, BASE_CONFIG, Daemon, daemon_as_user, fill, free_port, make_users

    users = make_users(tmp_path)
    for path in [tmp_path / "ftpd.passwd", tmp_path / "ftpd.group", tmp_path, tmp_path / "home",
                 *(u[2] for u in users.values())]:
        os.chown(path, DEV_UID, DEV_UID)
    d = Daemon(dir=tmp_path, port=free_port(), conf=tmp_path / "proftpy.conf", users=users)
    d.conf.write_text(fill(BASE_CONFIG + AUTH_CONFIG + "DefaultRoot ~\n",
                           dict(port=d.port, dir=tmp_path, host="127.0.0.1", ipv6="off", home=tmp_path / "home")))
    with daemon_as_user(d, DEV_UID):
        yield d


@needs_root
def test_non_root_daemon_serves_as_its_own_user_in_a_userland_jail(nonroot_daemon):
    d = nonroot_daemon
    os.symlink("/etc", d.home("alice") / "etc-link")
    (d.home("bob") / "secret.txt").write_text("bob's\n")
    (d.home("alice") / "mine.txt").write_text("alice's\n")
    with d.login("alice") as ftp:
        ftp.voidcmd("TYPE I")
        pid = session_pid(d)
        status = proc_status(pid)
        assert status["Uid"].split() == [str(DEV_UID)] * 4
        assert status["NoNewPrivs"].strip() == "1"
        assert os.readlink(f"/proc/{pid}/root") == "/"            # no kernel chroot: fs.py is the jail
        assert ftp.pwd() == "/"
        ftp.cwd("../../..")
        assert ftp.pwd() == "/"
        assert ftp.size("/../mine.txt") == 8
        for path in ("/etc/passwd", "../../../../etc/passwd", "etc-link/passwd", "../bob/secret.txt",
                     str(d.home("bob") / "secret.txt")):
            with pytest.raises(ftplib.error_perm, match=r"^550 .*: No such file or directory$"):
                ftp.size(path)
        ftp.storbinary("STOR up.bin", io.BytesIO(b"data"))
    assert os.stat(d.home("alice") / "up.bin").st_uid == DEV_UID
