"""mod_sftp_pam's keyboard-interactive without SFTPAuthMethods, side by side with Debian's ProFTPD 1.3.8: the
methods a USERAUTH_FAILURE lists (ProFTPD's default order publickey, hostbased, keyboard-interactive, password;
keyboard-interactive only while a driver is there: SFTPPAMEngine and AuthPAM on), and the ExtendedLog lines of a
keyboard-interactive login."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, PROFTPD
from test_sftp import answered_sftp, beside_config, beside_proftpd, pam_exec_service

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root (ProFTPD's logins, chroot)")


def _methods(port: int) -> str:
    """The method list of the USERAUTH_FAILURE answering a `none` request."""
    from proftpy.net.ssh.wire import Reader, Writer
    from ssh_client import MiniClient
    c = MiniClient(port)
    try:
        c.send(Writer().byte(5).string(b"ssh-userauth").bytes())
        assert c.recv()[0] == 6
        c.send(Writer().byte(50).string(b"alice").string(b"ssh-connection").string(b"none").bytes())
        answer = c.recv()
        assert answer[0] == 51, answer
        return Reader(answer, 1).text()
    finally:
        c.close()


def _pam_config(tmp_path: Path, extra: str) -> str:
    return beside_config(tmp_path, "LoadModule mod_sftp_pam.c\n" + extra).replace("SFTPAuthMethods publickey\n", "")


@pytest.mark.parametrize("extra, keys, expected", [
    ("", True, "publickey,keyboard-interactive,password"),
    ("", False, "keyboard-interactive,password"),
    ("SFTPAuthorizedHostKeys file:~/.hostkeys\n", True, "publickey,hostbased,keyboard-interactive,password"),
    ("SFTPPAMEngine off\n", True, "publickey,password"),
    ("AuthPAM off\n", True, "publickey,password"),
    ("SFTPAuthMethods password publickey\n", True, "password,publickey"),
])
def test_default_methods_as_proftpd(open_tmp_path, extra, keys, expected):
    """The same configuration gives the same method list as ProFTPD with mod_sftp_pam loaded."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp_pam.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp_pam (proftpd-mod-crypto) is not installed")
    beside_proftpd(tmp_path)
    config = _pam_config(tmp_path, extra)
    if not keys:
        config = "".join(line for line in config.splitlines(keepends=True)
                         if not line.startswith("SFTPAuthorizedUserKeys"))
    results = side_by_side(tmp_path, config, lambda port, run: _methods(port))
    assert results["proftpd"] == expected                   # the test tests something
    assert results["proftpy"] == results["proftpd"]


FORMAT = "%m|%r|%s|%J|%u|%U|%{protocol}"
CLASSES = ("ALL", "SSH", "AUTH", "MISC", "ALL,!AUTH")


def test_info_response_logged_as_proftpd(open_tmp_path):
    """keyboard-interactive logins through PAM (a right, then a wrong answer): the same ExtendedLog lines as
    ProFTPD's in logs of several class lists; the INFO_RESPONSE has none (ProFTPD writes none either)."""
    from conftest import PASSWORDS, side_by_side
    tmp_path = open_tmp_path
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp_pam.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp_pam (proftpd-mod-crypto) is not installed")
    beside_proftpd(tmp_path)
    logs = "".join(f"ExtendedLog {{dir}}/ext{i}.log {classes} kbd\n" for i, classes in enumerate(CLASSES))
    config = _pam_config(tmp_path, f'SFTPPAMServiceName SERVICE\nSFTPPAMOptions NoTTY\nLogFormat kbd "{FORMAT}"\n'
                         f"{logs}")

    def drive(port: int, run: Path) -> list:
        for answer in (PASSWORDS["bob"], "wrong"):
            answered_sftp(port, run, "bob", answer, "-o", "PreferredAuthentications=keyboard-interactive")
        time.sleep(0.5)
        return [(run / f"ext{i}.log").read_text().splitlines() if (run / f"ext{i}.log").exists() else []
                for i in range(len(CLASSES))]

    with pam_exec_service(tmp_path, PASSWORDS["bob"]) as service:
        results = side_by_side(tmp_path, config.replace("SERVICE", service), drive)
    every = [line.split("|")[:3] for line in results["proftpd"][0]]
    assert ["PASS", "PASS (hidden)", "230"] in every and ["PASS", "PASS (hidden)", "530"] in every   # both logins
    # ProFTPD 1.3.8's kbdint.c makes a USER_AUTH_INFO_RESP record but never dispatches it: no line in any log
    assert not any(line[0].startswith("USER_AUTH_INFO") for line in every)
    for i, classes in enumerate(CLASSES):
        assert results["proftpy"][i] == results["proftpd"][i], (classes, results["proftpy"][i],
                                                                 results["proftpd"][i])


def test_openssh_default_order_as_proftpd(open_tmp_path):
    """OpenSSH's sftp without PreferredAuthentications against the default methods: keyboard-interactive first
    (PAM takes bob's password only), then password; the same logins get in as with ProFTPD, by the same method."""
    from conftest import PASSWORDS, side_by_side
    tmp_path = open_tmp_path
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp_pam.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp_pam (proftpd-mod-crypto) is not installed")
    beside_proftpd(tmp_path)
    config = _pam_config(tmp_path, "SFTPPAMServiceName SERVICE\nSFTPPAMOptions NoTTY\n")

    def drive(port: int, run: Path) -> list:
        out = []
        for user, answer in (("bob", PASSWORDS["bob"]), ("alice", PASSWORDS["alice"]), ("alice", "wrong")):
            res = answered_sftp(port, run, user, answer, "-o", "PubkeyAuthentication=no")
            out.append((user, answer == "wrong", res.returncode, res.stdout))
        log = (run / "sftp.log").read_text()
        methods = [m for m in ("'keyboard-interactive' method", "'password' method") if m in log]
        return out + [methods]

    with pam_exec_service(tmp_path, PASSWORDS["bob"]) as service:
        results = side_by_side(tmp_path, config.replace("SERVICE", service), drive)
    assert [r[2] for r in results["proftpd"][:3]] == [0, 0, 255]           # the test tests something
    assert len(results["proftpd"][3]) == 2, results["proftpd"][3]        # bob by PAM, alice by password
    assert results["proftpy"] == results["proftpd"], (results["proftpy"], results["proftpd"])
