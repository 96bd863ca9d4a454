"""The server's own SSH-level requests: SFTPClientAlive's keepalives, side by side with Debian's ProFTPD 1.3.8 and its
mod_sftp, with the project's SSH client (which never answers them: it must be disconnected in bounded time) and
OpenSSH's sftp (which answers them: its session goes on)."""

from __future__ import annotations

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
        proc = subprocess.Popen(["sftp", "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port), "alice@127.0.0.1"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdin is not None
        proc.stdin.write("pwd\n")
        proc.stdin.flush()
        time.sleep(5)
        out, err = proc.communicate("pwd\nquit\n", timeout=30)
        log = (run / "sftp.log").read_text()
        return proc.returncode, out.count("Remote working directory: /"), "threshold" in log

    results = side_by_side(tmp_path, _config(tmp_path, "SFTPClientAlive 1 1"), drive)
    assert results["proftpy"] == results["proftpd"] == (0, 2, False)

