"""The server's own SSH-level requests, side by side with Debian's ProFTPD 1.3.8 and its mod_sftp: SFTPClientAlive's
keepalives (the project's SSH client never answers them and must be disconnected in bounded time; OpenSSH's sftp
answers them and goes on) and SFTPRekey's key exchanges (OpenSSH's sftp goes along and its files arrive intact;
the project's client ignores our KEXINIT and is disconnected after the timeout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, PASSWORDS
from test_sftp import SSH_OPTS, beside_config, beside_proftpd

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root (ProFTPD's logins, chroot)")


def _config(tmp_path: Path, extra: str) -> str:
    return beside_config(tmp_path, extra + "\n").replace("SFTPAuthMethods publickey\n",
                                                         "SFTPAuthMethods publickey password\n")


def _silent_client(port: int, channel: bool) -> tuple[list[tuple[int, str]], int | None, str, float]:
    """Log in with the project's client, open a channel (or not) and answer nothing: the requests that came (their
    type and name), the DISCONNECT's reason and text, and the seconds it took."""
    from ssh_client import MiniClient, ServerClosed
    from proftpy.net.ssh.wire import Reader, Writer
    c = MiniClient(port)
    assert c.login("alice", PASSWORDS["alice"])
    if channel:
        c.send(Writer().byte(90).string(b"session").u32(7).u32(1 << 20).u32(32768).bytes())
    c.sock.settimeout(20)
    start = time.monotonic()
    seen = []
    try:
        while True:
            payload = c.recv()
            if payload[0] in (80, 98):
                r = Reader(payload, 1)
                if payload[0] == 98:
                    assert r.u32() == 7                     # on the client's channel
                seen.append((payload[0], r.text()))
    except ServerClosed as e:
        return [s for s in seen if s[1] != "hostkeys-00@openssh.com"], e.reason, e.text, time.monotonic() - start
    finally:
        c.close()


def _paused_sftp(port: int, key: Path) -> tuple[int, int, str]:
    """OpenSSH's sftp: `pwd`, a 5 s pause, `pwd` again; its exit status, how many answers came, its errors."""
    proc = subprocess.Popen(["sftp", "-i", str(key), *SSH_OPTS, "-P", str(port), "alice@127.0.0.1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write("pwd\n")
    proc.stdin.flush()
    time.sleep(5)
    out, err = proc.communicate("pwd\nquit\n", timeout=30)
    return proc.returncode, out.count("Remote working directory: /"), err


@pytest.mark.slow
def test_client_alive_disconnects_a_silent_client_as_proftpd(open_tmp_path):
    """`SFTPClientAlive 2 1`: a keepalive@proftpd.org CHANNEL_REQUEST each second, and after two unanswered ones the
    DISCONNECT `client alive threshold reached` (about 3 s); without a channel, GLOBAL_REQUESTs. `SFTPClientAlive 5
    1`: ProFTPD's poll gives up at the fourth silent second whatever the count (`Application disconnected`). The
    same requests, reasons, texts and SFTPLog lines as ProFTPD's."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)
    results = {}
    for name, extra, channel in (("two", "SFTPClientAlive 2 1", True), ("global", "SFTPClientAlive 2 1", False),
                                 ("five", "SFTPClientAlive 5 1", False)):
        base = tmp_path / name
        base.mkdir()
        for f in ("ftpd.passwd", "ftpd.group"):                # the users (AuthUserFile {base}/...)
            shutil.copy(tmp_path / f, base / f)

        def drive(port: int, run: Path, channel=channel) -> tuple:
            seen, reason, text, took = _silent_client(port, channel)
            time.sleep(0.3)
            lines = [line.split("]: ", 1)[1] for line in (run / "sftp.log").read_text().splitlines()
                     if "SFTPClientAlive" in line or "polling on socket" in line]
            return seen, reason, text, round(took), [line.split(" socket ")[0] for line in lines]

        results[name] = side_by_side(base, _config(tmp_path, extra), drive)
        assert results[name]["proftpy"] == results[name]["proftpd"], name
    keepalive = "keepalive@proftpd.org"
    assert results["two"]["proftpy"] == ([(98, keepalive)] * 2, 11, "client alive threshold reached", 3, [
        "SFTPClientAlive threshold (max 2 checks, 1 sec interval) reached, disconnecting client"])
    assert results["global"]["proftpy"][0] == [(80, keepalive)] * 2
    assert results["five"]["proftpy"] == ([(80, keepalive)] * 3, 11, "Application disconnected", 4,
                                          ["polling on"])


@pytest.mark.slow
def test_client_alive_keeps_an_answering_openssh_session(open_tmp_path):
    """`SFTPClientAlive 1 1`: OpenSSH's sftp answers each keepalive, so a 5 s pause between two commands (five
    checks, where one unanswered would end the session) costs nothing; both daemons alike."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)

    def drive(port: int, run: Path) -> tuple:
        code, pwds, _ = _paused_sftp(port, tmp_path / "user")
        return code, pwds, "threshold" in (run / "sftp.log").read_text()

    results = side_by_side(tmp_path, _config(tmp_path, "SFTPClientAlive 1 1"), drive)
    assert results["proftpy"] == results["proftpd"] == (0, 2, False)



# -- SFTPRekey ---------------------------------------------------------------------------------------------------
def test_rekey_by_bytes_beside_proftpd(open_tmp_path):
    """`SFTPRekey required 3600 1`: OpenSSH's sftp moves 2.5 MiB up and down; the server asks for new keys after
    each MiB of packets received (the upload) or sent (the download), the client goes along, both files arrive
    intact, and the ExtendedLog shows rekeys (KEXINIT, ECDH_INIT, NEWKEYS) during each transfer, as ProFTPD's.
    (How many depends on where the packets fall when the limit is reached: 1 or 2 each way, for both.)"""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)
    data = os.urandom(5 << 19)
    (tmp_path / "big").write_bytes(data)
    config = _config(tmp_path, 'SFTPRekey required 3600 1\nAllowOverwrite on\nLogFormat m "%m"\n'
                               "ExtendedLog {dir}/ext.log ALL m")

    def drive(port: int, run: Path) -> tuple:
        batch = run / "batch"
        batch.write_text(f"put {tmp_path}/big big\nget big {run}/back\n")
        res = subprocess.run(["sftp", "-b", str(batch), "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                              "alice@127.0.0.1"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert (run / "back").read_bytes() == data
        time.sleep(0.3)
        names = (run / "ext.log").read_text().split()
        up = names[names.index("OPEN"):names.index("STOR")]
        down = names[names.index("STOR"):names.index("RETR")]
        counts = [part.count("KEXINIT") for part in (up, down)]
        assert all(part.count("KEXINIT") == part.count("ECDH_INIT") == part.count("NEWKEYS") for part in (up, down))
        return [1 <= n <= 2 for n in counts], sum(counts), (run / "sftp.log").read_text()

    results = side_by_side(tmp_path, config, drive)
    assert results["proftpy"][0] == results["proftpd"][0] == [True, True]
    assert results["proftpy"][2].count("reached rekey bytes limit") == results["proftpy"][1]
    assert results["proftpy"][2].count("rekeyed: ") == results["proftpy"][1]


def _ignored_kexinit(port: int, flood: bool) -> tuple[bool, int | None, str, float]:
    """Log in with the project's client, open a channel, send 1.25 MiB of SSH_MSG_IGNORE (`flood`) and then nothing:
    whether a KEXINIT came, the DISCONNECT's reason and text, and the seconds from the KEXINIT (or the login)."""
    from ssh_client import MiniClient, ServerClosed
    from proftpy.net.ssh.wire import Writer
    c = MiniClient(port)
    assert c.login("alice", PASSWORDS["alice"])
    c.send(Writer().byte(90).string(b"session").u32(7).u32(1 << 20).u32(32768).bytes())
    c.sock.settimeout(20)
    if flood:
        for _ in range(40):
            c.send(Writer().byte(2).string(b"x" * 32768).bytes())
    start, kexinit = time.monotonic(), False
    try:
        while True:
            if c.recv()[0] == 20 and not kexinit:
                kexinit, start = True, time.monotonic()
    except ServerClosed as e:
        return kexinit, e.reason, e.text, time.monotonic() - start
    finally:
        c.close()


@pytest.mark.slow
def test_rekey_timeout_drops_a_client_that_ignores_it_as_proftpd(open_tmp_path):
    """`SFTPRekey required 3600 1 3`: the project's client sends more than a MiB and ignores the KEXINIT that
    follows; 3 s later both daemons disconnect it (`Key exchange failed`, reason 3) with the same SFTPLog line."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)

    def drive(port: int, run: Path) -> tuple:
        kexinit, reason, text, took = _ignored_kexinit(port, True)
        time.sleep(0.3)
        lines = [line.split("]: ", 1)[1] for line in (run / "sftp.log").read_text().splitlines() if "Failed" in line]
        return kexinit, reason, text, round(took), lines

    results = side_by_side(tmp_path, _config(tmp_path, "SFTPRekey required 3600 1 3"), drive)
    assert results["proftpy"] == results["proftpd"] == (
        True, 3, "Key exchange failed", 3, ["Failed to rekey before 3 seconds timeout, disconnecting client"])


@pytest.mark.slow
def test_rekey_interval(sshlog_daemon):
    """`SFTPRekey required 2 1 2`: two seconds after the login the server asks for new keys (OpenSSH's sftp goes
    along through a pause and finishes its commands; the project's client, ignoring it, is disconnected 2 s
    later). ProFTPD 1.3.8 only starts this timer at the end of a key exchange after the login (docs/sftp.md)."""
    d, log = sshlog_daemon
    kexinit, reason, text, took = _ignored_kexinit(d.port, False)
    assert (kexinit, reason, text, round(took)) == (True, 3, "Key exchange failed", 2)
    code, pwds, err = _paused_sftp(d.port, d.dir.parent / "user")
    assert (code, pwds) == (0, 2), err
    text = log.read_text()
    assert text.count("SFTPRekey timer (2 secs) expired, requesting rekey") >= 3, text    # 1 ignored + 2 done
    assert text.count("rekeyed: ") >= 2, text


@pytest.fixture
def sshlog_daemon(open_tmp_path):
    """proftpy alone with `beside_proftpd`'s files and `SFTPRekey required 2 1 2`; (daemon, its SFTPLog)."""
    from conftest import SIDE_BY_SIDE_CONFIG, Daemon, fill, free_port, start_daemon
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)
    run = tmp_path / "proftpy"
    run.mkdir()
    d = Daemon(dir=run, port=free_port(), conf=run / "conf")
    common = SIDE_BY_SIDE_CONFIG.replace("PidFile {dir}/pid", "PidFile {dir}/proftpy.pid")
    d.conf.write_text(fill(common + _config(tmp_path, "SFTPRekey required 2 1 2"),
                           {"port": d.port, "dir": run, "base": tmp_path}))
    start_daemon(d)
    try:
        yield d, run / "sftp.log"
    finally:
        d.stop()
