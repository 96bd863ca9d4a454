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
# kept apart on purpose (docs/sftp.md): the FTP reply of MLSD and scp's STOR (the SFTP requests' lines are compared
# in every log: only STAT goes by its classes, the rest only into ALL's)
KNOWN = re.compile(r"^(MLSD|STOR)\|")


def _config(tmp_path: Path) -> str:
    logs = "".join(f"ExtendedLog {{dir}}/ext{i}.log {classes} ssh\n" for i, classes in enumerate(CLASSES))
    return beside_config(tmp_path, f'LogFormat ssh "{FORMAT}"\n{logs}AllowOverwrite on\n').replace(
        "SFTPAuthMethods publickey\n", "SFTPAuthMethods publickey password\n")


def _lines(run: Path, i: int) -> list[str]:
    path = run / f"ext{i}.log"
    text = path.read_text() if path.exists() else ""
    return [re.sub(r"\b[0-9a-f]{8,16}\b", "HANDLE", line) for line in text.splitlines()
            if not KNOWN.match(line)]


def _compare(tmp_path: Path, session) -> dict:
    from conftest import side_by_side
    home = beside_proftpd(tmp_path)["alice"][2]

    def drive(port: int, run: Path) -> list[list[str]]:
        for p in home.iterdir():            # each daemon starts from the same home: what the other uploaded goes
            p.unlink()                      # (else STAT of the file before `put` finds it)
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


def test_key_exchange_names_as_proftpd(open_tmp_path):
    """The key exchange's lines under each kind of exchange OpenSSH can pick: ECDH_INIT (curve25519, nistp256),
    DH_INIT (a fixed group), DH_GEX_REQUEST and DH_GEX_INIT (group exchange), as ProFTPD's."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)
    kexes = ("curve25519-sha256", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256",
             "diffie-hellman-group-exchange-sha256")

    def drive(port: int, run: Path) -> list[list[str]]:
        out = []
        for kex in kexes:
            before = len(_lines(run, 0))
            res = subprocess.run(["sftp", "-b", "-", "-i", str(tmp_path / "user"), *SSH_OPTS, "-o",
                                  f"KexAlgorithms={kex}", "-P", str(port), "alice@127.0.0.1"], input="pwd\n",
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res.stderr
            assert wait_until(lambda: "CHANNEL_CLOSE" in "".join(_lines(run, 0)[before:]), 5)
            names = [line.split("|")[0] for line in _lines(run, 0)[before:]]
            out.append(names[:names.index("NEWKEYS") + 1])
        return out

    results = side_by_side(tmp_path, _config(tmp_path), drive)
    assert results["proftpy"] == results["proftpd"]
    assert [names[1:-1] for names in results["proftpy"]] == [["ECDH_INIT"], ["ECDH_INIT"], ["DH_INIT"],
                                                             ["DH_GEX_REQUEST", "DH_GEX_INIT"]]


def _blob(pub: Path) -> bytes:
    """The key blob of an OpenSSH one-line public key file."""
    import base64
    return base64.b64decode(pub.read_text().split()[1])


def test_failed_passwords_and_max_login_attempts_log_as_proftpd(open_tmp_path):
    """The project's client sends a wrong password, a key query (which ProFTPD logs as a failed PASS), a method the
    server does not offer and a wrong password again under `MaxLoginAttempts 3`: each request's USER (331), the
    failed PASS (530) lines, the USERAUTH_REQUEST lines and the PASS (530) that ends the session are ProFTPD's."""
    from conftest import side_by_side
    from ssh_client import MiniClient, ServerClosed
    from proftpy.net.ssh.wire import Writer
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)

    def drive(port: int, run: Path) -> list[list[str]]:
        c = MiniClient(port)
        assert not c.login("alice", "wrong")
        stranger = Writer().boolean(False).string(b"ssh-ed25519").string(_blob(tmp_path / "user.pub")).bytes()
        for method, rest in (("publickey", stranger), ("hostbased", b""),
                             ("password", Writer().boolean(False).string(b"wrong").bytes())):
            c.send(Writer().byte(50).string(b"alice").string(b"ssh-connection").string(method).bytes() + rest)
            try:
                while c.recv()[0] not in (51, 60):          # failure, or PK_OK for the query
                    pass
            except ServerClosed:
                break
        c.close()
        assert wait_until(lambda: "EXIT" in (run / "exit.log").read_text(), 5)
        return [_lines(run, i) for i in range(len(CLASSES))]

    config = _config(tmp_path) + 'MaxLoginAttempts 3\nLogFormat exit "%m"\nExtendedLog {dir}/exit.log EXIT exit\n'
    results = side_by_side(tmp_path, config, drive)
    assert results["proftpy"] == results["proftpd"]
    user, wrong = ["USER", "USER alice", "331"], ["PASS", "PASS (hidden)", "530"]
    assert [line.split("|")[:3] for line in results["proftpy"][1]] == [user, wrong, user, wrong, user, user, wrong,
                                                                        wrong]
