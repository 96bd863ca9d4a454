"""mod_rlimit on the real daemon: RLimitCPU/Memory/OpenFiles in the master's and the sessions' /proc/PID/limits,
and RLimitChroot's guard of /etc and /lib inside a chroot (ftplib, curl)."""

from __future__ import annotations

import ftplib
import os
import subprocess

import psutil
import pytest

from conftest import PASSWORDS, make_file, refused_config, wait_until
from conftest import error_reply as err


@pytest.fixture
def tmp_path(open_tmp_path):
    """Homes the test users can reach (a session without a chroot starts in its home)."""
    return open_tmp_path


def limits(pid: int) -> dict[str, tuple[str, str]]:
    """/proc/PID/limits as {name: (soft, hard)}."""
    rows = {}
    for line in open(f"/proc/{pid}/limits").read().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        rows[name] = (soft, hard)
    return rows


def session_pid(d) -> int:
    master = psutil.Process(d.master_pid)
    assert wait_until(lambda: master.children(), 5)
    return master.children()[-1].pid


def test_limits_of_the_daemon_and_of_each_session(ftpd):
    d = ftpd("RLimitOpenFiles session 200 300\nRLimitOpenFiles daemon 900\nRLimitCPU session 3600 max\n"
             "RLimitMemory session 3G\n")
    # the PidFile is written before the modules start (the listeners queue connections meanwhile): wait for them
    assert wait_until(lambda: limits(d.master_pid)["Max open files"] == ("900", "900"), 5)
    master = limits(d.master_pid)
    assert master["Max address space"] == ("unlimited", "unlimited")
    assert master["Max cpu time"] == ("unlimited", "unlimited") and master["Max core file size"] == ("0", "0")
    ftp = d.login()
    ftp.voidcmd("NOOP")
    session = limits(session_pid(d))
    assert session["Max open files"] == ("200", "300")
    assert session["Max cpu time"] == ("3600", "unlimited")
    assert session["Max address space"] == (str(3 << 30), str(3 << 30))
    ftp.voidcmd("NOOP")                                     # and the session still works under them


@pytest.mark.parametrize("line, message", [
    ("RLimitCPU", "wrong number of parameters"), ("RLimitCPU session", "wrong number of parameters"),
    ("RLimitCPU 1 2 3", "wrong number of parameters"), ("RLimitMemory 12Q", "badly formatted argument"),
    ("RLimitOpenFiles lots", "badly formatted argument"),
    ("RLimitOpenFiles 100 10", "the soft limit is above the hard limit"),
    ("<VirtualHost 127.0.0.2>\nRLimitCPU daemon 10\n</VirtualHost>", "t.conf:3: RLimitCPU daemon is only allowed"),
    ("RLimitChroot maybe", "expected on or off"),
])
def test_configuration_errors(tmp_path, line, message):
    assert message in refused_config(tmp_path, line)


# -- RLimitChroot ----------------------------------------------------------------------------------------------------
def sensitive(d) -> None:
    make_file(d, "etc/passwd", b"root:x:0:0::/:/bin/sh\n")
    make_file(d, "lib/keep", b"")
    make_file(d, "f.txt", b"data")


def test_nothing_under_etc_or_lib_changes_in_a_chroot(ftpd):
    d = ftpd("DefaultRoot ~\nAllowOverwrite on\n")
    sensitive(d)
    ftp = d.login()
    assert err(ftp, "MKD etc/sub") == "550 etc/sub: Permission denied"
    assert err(ftp, "MKD /lib/sub") == "550 /lib/sub: Permission denied"
    assert err(ftp, "DELE etc/passwd") == "550 etc/passwd: Permission denied"
    assert err(ftp, "RMD lib") == "550 lib: Permission denied"
    ftp.sendcmd("RNFR f.txt")
    assert err(ftp, "RNTO lib/libnss_files.so.2").startswith("550 ")
    with pytest.raises(ftplib.error_perm, match="^550 etc/nsswitch.conf: Permission denied"):
        ftp.storbinary("STOR etc/nsswitch.conf", __import__("io").BytesIO(b"passwd: files\n"))
    assert err(ftp, "SITE COPY f.txt etc/c") == "550 COPY: Permission denied"
    assert ftp.sendcmd("MKD etcetera").startswith("257") and ftp.sendcmd("MKD lib64").startswith("257")
    assert ftp.size("etc/passwd") == 22                                  # reading is fine
    assert sorted(os.listdir(d.home("alice") / "etc")) == ["passwd"] and os.listdir(d.home("alice") / "lib") == ["keep"]
    assert "attempt to use sensitive path" not in d.log()                # logged at debug level only


@pytest.mark.parametrize("config", ["DefaultRoot ~\nRLimitChroot off\n", "", "DefaultRoot ~\n<IfUser alice>\n"
                                    "RLimitChroot off\n</IfUser>\n"])
def test_the_guard_is_off_with_rlimit_chroot_off_or_without_a_chroot(ftpd, config):
    d = ftpd(config)
    sensitive(d)
    ftp = d.login()
    assert ftp.sendcmd("MKD etc/sub").startswith("257")         # without a chroot: in the home, the start


def test_curl_upload_into_etc_is_refused(ftpd, tmp_path):
    d = ftpd("DefaultRoot ~\n")
    sensitive(d)
    src = tmp_path / "up"
    src.write_bytes(b"x")
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-T", str(src),
                          f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{d.port}/etc/up"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and not (d.home("alice") / "etc" / "up").exists()
