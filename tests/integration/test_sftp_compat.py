"""mod_sftp beside Debian's ProFTPD 1.3.8, one version 3 session of good and failing requests (a MiniClient) against
each with ExtendedLogs of several classes: which logs take each SFTP request's line, and the status of each
failure."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import struct
import tempfile
import time
from pathlib import Path

import pytest

from conftest import PASSWORDS, PROFTPD, listening, make_users, side_by_side, wait_until
from proftpy.net.ssh.channel import PACKET, WINDOW
from proftpy.net.ssh.wire import Reader, Writer
from test_sftp import keygen
from test_sftp_extensions import connect, request, s

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (logins as the test users, chroot)")

CLASSES = ("READ", "WRITE", "DIRS", "INFO", "MISC", "AUTH", "SFTP", "ALL", "ALL,!SFTP", "READ,WRITE", "ALL,!INFO")
# the names ProFTPD's mod_sftp logs SFTP requests under (the FTP commands they run are compared elsewhere)
SFTP_NAMES = frozenset(("INIT", "OPEN", "CLOSE", "READ", "WRITE", "LSTAT", "FSTAT", "SETSTAT", "FSETSTAT", "OPENDIR",
                        "READDIR", "REMOVE", "MKDIR", "RMDIR", "REALPATH", "STAT", "RENAME", "READLINK", "SYMLINK",
                        "EXTENDED", "LINK", "LOCK", "UNLOCK"))
U32 = struct.Struct(">I")
NONE = U32.pack(0)
READING, WRITING = U32.pack(1), U32.pack(0x1a)         # READ; WRITE|CREAT|TRUNC


def session(c) -> list:
    """Requests of every kind, good and failing (ENOENT, ENOTDIR, EISDIR, ELOOP, ENAMETOOLONG, EEXIST, ENOTEMPTY,
    EACCES, EINVAL); each answer as (request type, status code, message) or (request type, answer type)."""
    out = []

    def go(kind: int, body: bytes) -> bytes | None:
        answer, r = request(c, kind, body)
        if answer == 101:
            out.append((kind, r.u32(), r.text()))
            return None
        out.append((kind, answer))
        return r.string() if answer == 102 else None

    go(16, s("."))
    for path in ("nope", "/nope", "a.txt", "a.txt/x", "loop", "n" * 300, "ro/f"):
        go(17, s(path))
        go(7, s(path))
    h = go(3, s("a.txt") + READING + NONE)
    go(5, s(h) + struct.pack(">QI", 0, 100))
    go(8, s(h))
    go(4, s(h))
    h = go(3, s("w.txt") + WRITING + NONE)
    go(6, s(h) + struct.pack(">Q", 0) + s(b"data"))
    go(10, s(h) + NONE)
    go(4, s(h))
    go(9, s("w.txt") + U32.pack(4) + U32.pack(0o600))
    d = go(11, s("sub"))
    go(12, s(d))
    go(12, s(d))
    go(4, s(d))
    for path in ("a.txt/x", "sub", "loop", "n" * 300, "ro/f", "nope"):
        go(3, s(path) + READING + NONE)
        go(3, s(path) + WRITING + NONE)
    for path in ("sub", "ro/d", "n" * 300):
        go(14, s(path) + NONE)
    for path in ("a.txt/x", "a.txt", "nope", "ro", "loop", "n" * 300):
        go(11, s(path))
    for path in ("sub", "a.txt", "nope", "ro/d", "loop", "n" * 300, "a.txt/x"):
        go(15, s(path))
    for path in ("sub", "nope", "ro/f", "n" * 300, "a.txt/x"):
        go(13, s(path))
    go(18, s("a.txt") + s("sub"))
    go(18, s("sub") + s("a.txt"))
    go(18, s("nope") + s("zz"))
    go(19, s("a.txt"))
    go(19, s("nope"))
    go(20, s("a.txt") + s("w.txt"))
    go(9, s("nope") + U32.pack(4) + U32.pack(0o600))
    go(14, s("mk") + NONE)
    go(15, s("mk"))
    go(13, s("w.txt"))
    go(200, s("statvfs@openssh.com") + s("."))
    return out


@pytest.fixture(scope="module")
def beside():
    """The session against Debian's ProFTPD and proftpy: {name: (answers, {classes: that log's lines})}."""
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp (proftpd-mod-crypto) is not installed")
    base = Path(tempfile.mkdtemp(prefix="proftpy-test-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        users = make_users(base)
        keygen(base / "host", "ed25519")
        uid, gid, home = users["bob"]
        logs = "".join(f"ExtendedLog {{dir}}/c{i}.log {c} names\n" for i, c in enumerate(CLASSES))

        def drive(port: int, run: Path) -> tuple:
            assert wait_until(lambda: listening(port), 10)
            for p in list(home.iterdir()):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            (home / "a.txt").write_bytes(b"hello world\n")
            (home / "sub").mkdir()
            (home / "sub" / "x").write_text("x")
            (home / "ro").mkdir(mode=0o700)             # root's: EACCES for bob
            os.symlink("loop", home / "loop")           # ELOOP
            for p in (home / "a.txt", home / "sub", home / "sub" / "x"):
                os.chown(p, uid, gid)
            c, _, _ = connect(port, 3)
            answers = session(c)
            c.close()
            assert wait_until(lambda: "statvfs" in (run / "c7.log").read_text(), 5)
            time.sleep(0.3)
            lines = {cl: [re.sub(r"\b[0-9a-f]{9,16}\b", "HANDLE", line)
                          for line in (run / f"c{i}.log").read_text().splitlines()]
                     for i, cl in enumerate(CLASSES)}
            return answers, lines

        yield side_by_side(base, f"""LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey {base}/host
SFTPAuthMethods password
SFTPLog {{dir}}/sftp.log
LogFormat names "%m|%r|%s|%S|%J"
{logs}DefaultRoot ~
AllowOverwrite on
""", drive)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_log_classes_of_sftp_requests_as_proftpds(beside):
    """Logs of READ, WRITE, DIRS, INFO, MISC, AUTH, SFTP, ALL, `ALL,!SFTP`, `READ,WRITE`, `ALL,!INFO`: the same SFTP
    request lines as ProFTPD's. Only STAT (an FTP command's name too) goes by its classes (READ, SFTP); OPEN,
    READ, WRITE, CLOSE, LSTAT, OPENDIR, REALPATH, MKDIR, RENAME, EXTENDED... are only in the log of ALL."""
    for classes in CLASSES:
        theirs, mine = ([x.split("|")[:2] for x in beside[name][1][classes] if x.split("|")[0] in SFTP_NAMES]
                        for name in ("proftpd", "proftpy"))
        assert mine == theirs, classes
    names = {x.split("|")[0] for x in beside["proftpd"][1]["ALL"]}
    assert {"INIT", "OPEN", "READ", "WRITE", "CLOSE", "LSTAT", "FSTAT", "OPENDIR", "READDIR", "REALPATH", "MKDIR",
            "RENAME", "EXTENDED", "STAT"} <= names
    assert {x.split("|")[0] for x in beside["proftpy"][1]["READ"] if x.split("|")[0] in SFTP_NAMES} == {"STAT"}
    assert not [x for x in beside["proftpy"][1]["ALL,!INFO"] if x.split("|")[0] in SFTP_NAMES - {"STAT"}]



def test_version_3_statuses_as_proftpds(beside):
    """The same answer to each request as ProFTPD's in version 3: its status code (version 3's: FAILURE for a code
    v3 lacks, but RENAME onto an existing path is FILE_ALREADY_EXISTS 11 and READLINK of a file OP_UNSUPPORTED 8, as
    ProFTPD sends them) and text (`Not a directory`, `File is a directory`, `Link loop`, `Invalid filename`, `File
    already exists`, `Directory is not empty`, `Invalid parameter`); OPEN of a directory, a link loop, or for
    reading a path through a file or too long is `Permission denied`, OPENDIR through a file `No such file`."""
    assert (3, 3, "Permission denied") in beside["proftpd"][0] and (18, 11, "File already exists") in \
        beside["proftpd"][0] and (17, 4, "Not a directory") in beside["proftpd"][0]
    theirs, mine = beside["proftpd"][0], beside["proftpy"][0]
    diff = [(n, t, m) for n, (t, m) in enumerate(zip(theirs, mine, strict=True)) if t != m]
    assert not diff, diff




def test_log_lines_of_failed_requests_as_proftpds(beside):
    """The log of ALL: each SFTP request's line (`%s`/`%S` the status: `2 No such file`, `4 Not a directory`...) and
    the RETR/STOR line of each OPEN as ProFTPD's: a failed OPEN's is `451 path: error` and its own line has a status
    only where creating the file failed (`-` for a read, a directory, a link loop); a file opened with a relative
    path has its whole path in the line at CLOSE (`RETR /a.txt`). Kept apart on purpose: MKDIR's status (ProFTPD's
    shows MKD's reply), FSETSTAT's `%J` (ProFTPD's: the file's path, proftpy's: the handle, as its `%r`) and the
    STOR of a file left open when the client drops the connection (ProFTPD's `451 /nope: Connection reset by
    peer`, proftpy's `426`)."""
    keep = SFTP_NAMES - {"MKDIR"} | {"RETR", "STOR"}
    theirs, mine = ([x.rsplit("|", 1)[0] if x.startswith("FSETSTAT|") else x
                     for x in beside[name][1]["ALL"] if x.split("|")[0] in keep][:-1]
                    for name in ("proftpd", "proftpy"))
    assert mine == theirs, "\n".join(difflib.unified_diff(theirs, mine, lineterm=""))
    for line in ("STAT|STAT nope|2|No such file|nope", "OPEN|OPEN sub|-|-|sub",
                 "OPEN|OPEN a.txt/x|4|Not a directory|a.txt/x", "RETR|RETR /a.txt|226|Transfer complete|/a.txt",
                 "RETR|RETR loop|451|loop: Permission denied|loop"):
        assert line in mine
    assert beside["proftpd"][1]["ALL"][-1].startswith("STOR|STOR /nope|451|")


def _beside_with_match(tmp_path: Path, match: str, drive) -> dict:
    """Debian's ProFTPD and proftpy with password logins and `SFTPClientMatch match`: `drive(port)` of each."""
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp (proftpd-mod-crypto) is not installed")
    make_users(tmp_path)
    keygen(tmp_path / "host", "ed25519")

    def run(port: int, _: Path):
        assert wait_until(lambda: listening(port), 10)
        return drive(port)

    return side_by_side(tmp_path, f"""LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPAuthMethods password
SFTPLog {{dir}}/sftp.log
SFTPClientMatch {match}
""", run)


def _channel_sizes(port: int, version: bytes) -> tuple[int, int]:
    """A MiniClient logged in (client version `version`) opens a session channel: the window and packet size of
    the server's OPEN_CONFIRMATION."""
    from ssh_client import MiniClient
    c = MiniClient(port, version)
    try:
        assert c.login("bob", PASSWORDS["bob"])
        c.send(Writer().byte(90).string(b"session").u32(7).u32(1 << 20).u32(32768).bytes())
        answer = c.recv()
        while answer[0] == 80:                      # a global request (ProFTPD's hostkeys-00@openssh.com)
            answer = c.recv()
        r = Reader(answer, 1)
        assert answer[0] == 91 and r.u32() == 7
        r.u32()
        return r.u32(), r.u32()
    finally:
        c.close()


@pytest.mark.parametrize("match", ['"^minitest" channelWindowSize 1MB channelPacketSize 16KB',
                                   '"other" channelWindowSize 1MB', '"minitest" channelWindowSize 100000',
                                   '"minitest" channelPacketSize 20000B'])
def test_client_match_channel_sizes_beside_proftpd(open_tmp_path, match):
    """SFTPClientMatch's channelWindowSize and channelPacketSize (with ProFTPD's B/KB/MB/GB units), for a client
    whose version text (after `SSH-2.0-`) matches: the window and packet size a session channel's
    OPEN_CONFIRMATION offers, as Debian's ProFTPD 1.3.8's. Kept apart on purpose: a client no line sets them for
    gets proftpy's own 2 MiB window and 33 KiB packets (ProFTPD's: 2^32-1 and 32 KiB), which bound what a client
    makes a session hold."""
    results = _beside_with_match(open_tmp_path, match, lambda port: [_channel_sizes(port, b"SSH-2.0-minitest"),
                                                                     _channel_sizes(port, b"SSH-2.0-Other_1.0")])
    theirs, mine = results["proftpd"], results["proftpy"]
    matched = "minitest" in match
    for i, key in enumerate(("channelWindowSize", "channelPacketSize")):
        if matched and key in match:            # set for the client: the same as ProFTPD's
            assert mine[0][i] == theirs[0][i]
        else:                                   # each daemon's own default
            assert (theirs[0][i], mine[0][i]) == ((0xFFFFFFFF, 32768)[i], (WINDOW, PACKET)[i])
    assert theirs[1] == (0xFFFFFFFF, 32768) and mine[1] == (WINDOW, PACKET)     # the other client's version
    if match.startswith('"^minitest" channelWindowSize 1MB'):
        assert mine[0] == (1024 * 1024, 16 * 1024)


def test_small_channel_window_packets_and_pessimistic_newkeys_carry_a_transfer(open_tmp_path):
    """`SFTPClientMatch OpenSSH channelWindowSize 64KB channelPacketSize 8KB pessimisticNewkeys on`: OpenSSH's sftp
    (rekeying every 100 KB) uploads and downloads 300 KB through many window adjustments, small packets and key
    exchanges whose NEWKEYS waits for the client's, with IGNORE chaff (SFTPTrafficPolicy high), intact, with ProFTPD
    and proftpy alike."""
    from types import SimpleNamespace
    from test_sftp import beside_config, beside_proftpd
    from test_sftp_limits import sftp
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)
    payload = os.urandom(300_000)
    (tmp_path / "src.bin").write_bytes(payload)

    def drive(port: int, run: Path) -> bytes:
        res, _ = sftp(SimpleNamespace(dir=tmp_path, port=port),
                      f"put {tmp_path}/src.bin up.bin\nget up.bin {run}/back.bin\nrm up.bin\n", "-o",
                      "RekeyLimit=100K")
        assert res.returncode == 0, res.stderr
        return (run / "back.bin").read_bytes(), (run / "sftp.log").read_text()

    match = 'SFTPClientMatch "^OpenSSH" channelWindowSize 64KB channelPacketSize 8KB pessimisticNewkeys on\n'
    results = side_by_side(tmp_path, beside_config(tmp_path, match + "AllowOverwrite on\nSFTPTrafficPolicy high\n"),
                           drive)
    assert results["proftpy"][0] == results["proftpd"][0] == payload
    assert "rekeyed" in results["proftpy"][1]



@pytest.mark.parametrize("match", ['"^minitest" pessimisticNewkeys on', '"^minitest" pessimisticNewkeys off',
                                   '"^other" pessimisticNewkeys on'])
def test_client_match_pessimistic_newkeys_beside_proftpd(open_tmp_path, match):
    """SFTPClientMatch's pessimisticNewkeys: for a matching client the server's NEWKEYS waits for the client's (a
    client that waits a second for it first sees nothing), otherwise it follows the KEXDH_REPLY at once; the login
    goes on in both cases, as with Debian's ProFTPD 1.3.8."""
    from ssh_client import MiniClient

    def early_newkeys(port: int) -> bool | None:
        c = MiniClient(port, newkeys_first=True)
        try:
            assert c.login("bob", PASSWORDS["bob"])
            return c.early_newkeys
        finally:
            c.close()

    results = _beside_with_match(open_tmp_path, match, early_newkeys)
    assert results["proftpy"] == results["proftpd"] == (match != '"^minitest" pessimisticNewkeys on')


@pytest.mark.parametrize("listed", [True, False])
def test_key_blacklist_beside_proftpd(open_tmp_path, listed):
    """`SFTPKeyBlacklist path`, an SSH-FP00 file of partial MD5 fingerprints made here: alice's key refused when it
    is listed (sftp fails, `public key is blacklisted` in the SFTPLog), let in when another key is listed, by
    Debian's ProFTPD 1.3.8 and proftpy alike."""
    import base64
    import hashlib
    from types import SimpleNamespace
    from ssh_client import write_blacklist
    from test_sftp import beside_config, beside_proftpd
    from test_sftp_limits import sftp
    tmp_path = open_tmp_path
    beside_proftpd(tmp_path)
    blob = base64.b64decode((tmp_path / "user.pub").read_text().split()[1])
    write_blacklist(tmp_path / "bl.dat", [hashlib.md5(blob if listed else b"another key").digest(),
                                          hashlib.md5(b"a third key").digest()])

    def drive(port: int, run: Path) -> tuple[bool, bool]:
        res, _ = sftp(SimpleNamespace(dir=tmp_path, port=port), "pwd\n")
        return res.returncode == 0, "public key is blacklisted" in (run / "sftp.log").read_text()

    results = side_by_side(tmp_path, beside_config(tmp_path, f"SFTPKeyBlacklist {tmp_path}/bl.dat\n"), drive)
    assert results["proftpy"] == results["proftpd"] == (not listed, listed)


@pytest.mark.parametrize("policy", ["none", "paranoid", "rogaway", "high"])
def test_traffic_policy_beside_proftpd(open_tmp_path, policy):
    """SFTPTrafficPolicy: a client logged in sends 200 SFTP requests and counts the IGNORE messages that came with
    the answers: none with `none`, one before every packet with `paranoid` and `rogaway` (as many as the packets),
    some with `high` (1 in 10, at random), as Debian's ProFTPD 1.3.8 sends them; the answers are the same."""
    from test_sftp_extensions import connect
    tmp_path = open_tmp_path
    make_users(tmp_path)
    keygen(tmp_path / "host", "ed25519")

    def drive(port: int, run: Path) -> tuple:
        assert wait_until(lambda: listening(port), 10)
        c, _, _ = connect(port, 3)
        before = c.ignored
        answers = [request(c, 17, s(name))[0] for name in ("nope", ".") * 100]
        after = c.ignored - before
        c.close()
        return answers, after

    results = side_by_side(tmp_path, f"""LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPAuthMethods password
SFTPLog {{dir}}/sftp.log
SFTPTrafficPolicy {policy}
""", drive)
    (theirs, their_chaff), (mine, my_chaff) = results["proftpd"], results["proftpy"]
    assert mine == theirs
    if policy == "none":
        assert my_chaff == their_chaff == 0
    elif policy == "high":
        assert 0 < their_chaff < 100 and 0 < my_chaff < 100, (their_chaff, my_chaff)
    else:
        assert my_chaff == their_chaff >= 200, (their_chaff, my_chaff)
