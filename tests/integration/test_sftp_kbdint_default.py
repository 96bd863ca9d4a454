"""mod_sftp_pam's keyboard-interactive without SFTPAuthMethods, side by side with Debian's ProFTPD 1.3.8: the
methods a USERAUTH_FAILURE lists (ProFTPD's default order publickey, hostbased, keyboard-interactive, password;
keyboard-interactive only while a driver is there: SFTPPAMEngine and AuthPAM on), and the ExtendedLog lines of a
keyboard-interactive login."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, PROFTPD
from test_sftp import beside_config, beside_proftpd

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
    service = f"proftpy-test-kbd-{os.getpid()}"
    check = tmp_path / "check.sh"
    check.write_text(f'#!/bin/sh\npw=$(head -c 200 | tr -d "\\000")\n[ "$pw" = "{PASSWORDS["bob"]}" ]\n')
    check.chmod(0o755)
    pam_file = Path("/etc/pam.d") / service
    pam_file.write_text(f"auth required pam_exec.so expose_authtok quiet {check}\nauth required pam_permit.so\n"
                        "account required pam_permit.so\nsession required pam_permit.so\n")
    logs = "".join(f"ExtendedLog {{dir}}/ext{i}.log {classes} kbd\n" for i, classes in enumerate(CLASSES))
    config = _pam_config(tmp_path, f'SFTPPAMServiceName {service}\nSFTPPAMOptions NoTTY\nLogFormat kbd "{FORMAT}"\n'
                         f"{logs}")

    def drive(port: int, run: Path) -> list:
        for answer in (PASSWORDS["bob"], "wrong"):
            askpass = run / "askpass.sh"
            askpass.write_text(f"#!/bin/sh\necho '{answer}'\n")
            askpass.chmod(0o755)
            env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
            subprocess.run(["setsid", "-w", "sftp", "-o", "StrictHostKeyChecking=no", "-o",
                            "UserKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1", "-o",
                            "PreferredAuthentications=keyboard-interactive", "-P", str(port), "bob@127.0.0.1"],
                           capture_output=True, text=True, timeout=60, env=env, input="pwd\n")
        time.sleep(0.5)
        return [(run / f"ext{i}.log").read_text().splitlines() if (run / f"ext{i}.log").exists() else []
                for i in range(len(CLASSES))]

    try:
        results = side_by_side(tmp_path, config, drive)
    finally:
        pam_file.unlink()
    every = [line.split("|")[:3] for line in results["proftpd"][0]]
    assert ["PASS", "PASS (hidden)", "230"] in every and ["PASS", "PASS (hidden)", "530"] in every   # both logins
    # ProFTPD 1.3.8's kbdint.c makes a USER_AUTH_INFO_RESP record but never dispatches it: no line in any log
    assert not any(line[0].startswith("USER_AUTH_INFO") for line in every)
    for i, classes in enumerate(CLASSES):
        assert results["proftpy"][i] == results["proftpd"][i], (classes, results["proftpy"][i],
                                                                 results["proftpd"][i])
