"""ExtendedLog lines of the SSH messages (the `SSH` class, and `ALL`), side by side with Debian's ProFTPD 1.3.8 and
its mod_sftp: the same OpenSSH sessions (sftp by key, scp, a password login) give the same lines in the same
order, for logs of several class lists."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, PASSWORDS, wait_until
from test_sftp import SSH_OPTS, beside_config, beside_proftpd

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root (ProFTPD's logins, chroot)")

FORMAT = "%m|%r|%s|%S|%J|%u|%U|%b|%f|%F|%d|%{basename}|%{protocol}|%g|%a"
CLASSES = ("ALL", "SSH", "AUTH", "ALL,!SFTP", "ALL,!SSH", "MISC")
# kept apart on purpose (docs/sftp.md): the status of a STAT of a missing file, the FTP reply of MLSD and scp's STOR
KNOWN = re.compile(r"^(STAT|MLSD|STOR)\|")
# SFTP requests outside FTP's command names: ProFTPD logs them only where every class is logged (as these SSH
# messages); proftpy's SFTP lines follow their classes (sftp_fxp.py), so they are compared in the ALL log only
SFTP_NAMES = re.compile(r"^(INIT|OPEN|CLOSE|READ|WRITE|LSTAT|FSTAT|SETSTAT|FSETSTAT|OPENDIR|READDIR|REMOVE|MKDIR|"
                        r"RMDIR|REALPATH|RENAME|READLINK|SYMLINK|EXTENDED)\|")


def _config(tmp_path: Path) -> str:
    logs = "".join(f"ExtendedLog {{dir}}/ext{i}.log {classes} ssh\n" for i, classes in enumerate(CLASSES))
    return beside_config(tmp_path, f'LogFormat ssh "{FORMAT}"\n{logs}AllowOverwrite on\n').replace(
        "SFTPAuthMethods publickey\n", "SFTPAuthMethods publickey password\n")


def _lines(run: Path, i: int) -> list[str]:
    path = run / f"ext{i}.log"
    text = path.read_text() if path.exists() else ""
    return [re.sub(r"\b[0-9a-f]{8,16}\b", "HANDLE", line) for line in text.splitlines()
            if not KNOWN.match(line) and (CLASSES[i] == "ALL" or not SFTP_NAMES.match(line))]


def _compare(tmp_path: Path, session) -> dict:
    from conftest import side_by_side
    beside_proftpd(tmp_path)

    def drive(port: int, run: Path) -> list[list[str]]:
        res = session(port, run)
        assert res.returncode == 0, res.stderr
        assert wait_until(lambda: "CHANNEL_CLOSE" in (run / "ext0.log").read_text(), 5)
        time.sleep(0.3)
        return [_lines(run, i) for i in range(len(CLASSES))]

    results = side_by_side(tmp_path, _config(tmp_path), drive)
    for i, classes in enumerate(CLASSES):
        assert results["proftpy"][i] == results["proftpd"][i], classes
    return results["proftpy"]


def test_sftp_by_key_logs_the_ssh_messages_as_proftpd(open_tmp_path):
    """sftp -b with a key (OpenSSH asks `none`, then queries the key, then signs): KEXINIT, ECDH_INIT, NEWKEYS,
    EXT_INFO, SERVICE_REQUEST, a USER (331) for each USERAUTH_REQUEST, a PASS (530) for the key's query, PASS (230)
    for the login, CHANNEL_OPEN, CHANNEL_REQUEST env and subsystem, the SFTP lines, CHANNEL_EOF, CHANNEL_CLOSE."""
    tmp_path = open_tmp_path
    batch = tmp_path / "batch"
    batch.write_text(f"pwd\nput /etc/hostname h.txt\nls\nget h.txt {tmp_path}/back\n")

    def session(port: int, run: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["sftp", "-b", str(batch), "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                               "alice@127.0.0.1"], capture_output=True, text=True, timeout=60)

    every, ssh, auth, no_sftp, no_ssh, misc = _compare(tmp_path, session)
    names = [line.split("|")[0] for line in every]
    assert names[:16] == ["KEXINIT", "ECDH_INIT", "NEWKEYS", "EXT_INFO", "SERVICE_REQUEST", "USER", "USERAUTH_REQUEST",
                          "USER", "PASS", "USERAUTH_REQUEST", "USER", "PASS", "USERAUTH_REQUEST", "CHANNEL_OPEN",
                          "CHANNEL_REQUEST", "CHANNEL_REQUEST"], names
    assert names[-2:] == ["CHANNEL_EOF", "CHANNEL_CLOSE"]
    assert "USERAUTH_REQUEST|USERAUTH_REQUEST alice none|-|-|alice none|-|alice|" in "\n".join(every)
    assert "CHANNEL_REQUEST|CHANNEL_REQUEST subsystem|-|-|subsystem|alice|alice|-|-|-|/|-|sftp|" in "\n".join(every)
    # a log of the SSH class (or AUTH) has the USER and PASS lines only: the messages' names are no FTP commands
    assert [line.split("|")[:3] for line in ssh] == [["USER", "USER alice", "331"]] * 2 + [
        ["PASS", "PASS (hidden)", "530"], ["USER", "USER alice", "331"], ["PASS", "PASS (hidden)", "230"]]
    assert auth == ssh
    assert no_sftp and not any(line.startswith(("KEXINIT", "CHANNEL")) for line in no_sftp)
    assert not any(line.startswith(("USER", "PASS", "KEXINIT")) for line in no_ssh)
    assert misc == []


def test_scp_and_password_login_log_as_proftpd(open_tmp_path):
    """A password login (OpenSSH through SSH_ASKPASS) and then an scp upload (`scp -O`: CHANNEL_REQUEST exec, the
    protocol `scp`): the same lines as ProFTPD's."""
    tmp_path = open_tmp_path
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho {PASSWORDS['alice']}\n")
    askpass.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")

    def session(port: int, run: Path) -> subprocess.CompletedProcess:
        res = subprocess.run(["setsid", "-w", "sftp", "-o", "StrictHostKeyChecking=no", "-o",
                              "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "-o",
                              "PreferredAuthentications=password", "-P", str(port), "alice@127.0.0.1"],
                             capture_output=True, text=True, timeout=60, env=env, input="pwd\n")
        assert res.returncode == 0, res.stderr
        return subprocess.run(["scp", "-O", "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                               "/etc/hostname", "alice@127.0.0.1:hn"], capture_output=True, text=True, timeout=60)

    every = _compare(tmp_path, session)[0]
    text = "\n".join(every)
    assert "USERAUTH_REQUEST|USERAUTH_REQUEST alice password|-|-|alice password|alice|alice|" in text
    assert "CHANNEL_REQUEST|CHANNEL_REQUEST exec|-|-|exec|alice|alice|-|-|-|/|-|scp|" in text
