"""mod_sftp and what an administrator sets for FTP: TransferRate paces SFTP READs and WRITEs and scp files (as
ProFTPD's mod_sftp does), MaxRetrieveFileSize refuses the download of a larger file, over OpenSSH's sftp and
`scp -O`; the ExtendedLog has a line for each SFTP request, as ProFTPD's. One daemon whose main server has
SFTPEngine on, and runs beside Debian's ProFTPD."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import time

import pytest

import test_sftp
from conftest import AUTH_CONFIG, BASE_CONFIG, PASSWORDS, Daemon, fill, free_port, listening, start_daemon, wait_until
from test_sftp import SSH_OPTS, beside_config, beside_proftpd

pytestmark = test_sftp.pytestmark      # root, OpenSSH's sftp and ssh-keygen

CONFIG = """\
DefaultRoot ~
TransferLog {dir}/xferlog
<IfModule mod_delay.c>
  DelayEngine off
</IfModule>
SFTPEngine on
SFTPLog {dir}/sftp.log
SFTPHostKey {dir}/host
SFTPAuthMethods publickey password
SFTPAuthorizedUserKeys file:{dir}/keys/%u
AllowOverwrite on
LogFormat names "%m %J %s"
ExtendedLog {dir}/read.log READ names
<Directory {home}/slow>
  TransferRate RETR,STOR 64
</Directory>
<Directory {home}/free>
  TransferRate RETR 64:131072
</Directory>
<Directory {home}/capped>
  MaxRetrieveFileSize 100 KB
</Directory>
"""

SIZE = 256 * 1024


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    d = _start(tmp_path_factory.mktemp("sftplim"), CONFIG)
    try:
        yield d
    finally:
        d.stop()


def _start(base, config: str) -> Daemon:
    """proftpy with `config` (then the test suite's base lines), alice's files f.bin (256 KiB) and tiny.txt in her
    home and in slow/, free/, capped/."""
    os.chmod(base, 0o755)
    d = Daemon(dir=base, port=free_port(), conf=base / "proftpy.conf")
    d.users = beside_proftpd(base)          # the users, a host key, alice's key `user` (keys/alice)
    home = d.home("alice")
    d.payload = os.urandom(SIZE)
    for sub in ("", "slow", "free", "capped"):
        (home / sub).mkdir(exist_ok=True)
        (home / sub / "f.bin").write_bytes(d.payload)
        (home / sub / "tiny.txt").write_text("tiny\n")
        for p in (home / sub, home / sub / "f.bin", home / sub / "tiny.txt"):
            os.chown(p, d.uid("alice"), d.users["alice"][1])
    d.conf.write_text(fill(config + BASE_CONFIG + AUTH_CONFIG, {"port": d.port, "dir": base, "home": home,
                                                                 "host": "127.0.0.1", "ipv6": "off"}))
    start_daemon(d)
    assert wait_until(lambda: listening(d.port), 10)
    return d


def sftp(d: Daemon, commands: str, *opts: str) -> tuple[subprocess.CompletedProcess, float]:
    batch = d.dir / "batch"
    batch.write_text(commands)
    start = time.monotonic()
    res = subprocess.run(["sftp", "-b", str(batch), "-i", str(d.dir / "user"), *SSH_OPTS, *opts, "-P", str(d.port),
                          "alice@127.0.0.1"], capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    return res, time.monotonic() - start


def scp(d: Daemon, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    res = subprocess.run(["scp", "-O", "-i", str(d.dir / "user"), *SSH_OPTS, "-P", str(d.port), *args],
                         capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    return res, time.monotonic() - start


@pytest.mark.slow
def test_transfer_rate_paces_sftp_reads_and_writes(limited, tmp_path):
    """`TransferRate RETR,STOR 64` (KiB/s): 256 KiB down and up each take about 4 s (ProFTPD's mod_sftp: about 3.8 s),
    the same file outside that directory comes at once; OpenSSH's keepalives (answered meanwhile, else
    ServerAliveCountMax=1 ends the session after 2 s) and the bytes are intact."""
    back = tmp_path / "back.bin"
    res, fast = sftp(limited, f"get f.bin {back}\n")
    assert res.returncode == 0, res.stderr
    assert back.read_bytes() == limited.payload
    assert fast < 2.5
    keepalive = ("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=1")
    res, slow = sftp(limited, f"get slow/f.bin {back}\n", *keepalive)
    assert res.returncode == 0, res.stderr
    assert back.read_bytes() == limited.payload
    assert slow >= 3.4
    res, slow = sftp(limited, f"put {back} slow/up.bin\n", *keepalive)
    assert res.returncode == 0, res.stderr
    assert slow >= 3.4
    assert (limited.home("alice") / "slow" / "up.bin").read_bytes() == limited.payload


@pytest.mark.slow
def test_transfer_rate_free_bytes_come_first(limited, tmp_path):
    """`TransferRate RETR 64:131072`: the first 128 KiB are not paced, the other 128 KiB take about 2 s."""
    res, took = sftp(limited, f"get free/f.bin {tmp_path}/back.bin\n")
    assert res.returncode == 0, res.stderr
    assert 1.6 <= took < 3.6


@pytest.mark.slow
def test_transfer_rate_paces_scp_files(limited, tmp_path):
    """`scp -O` down and up under `TransferRate RETR,STOR 64`: each 256 KiB file about 4 s."""
    res, took = scp(limited, "alice@127.0.0.1:slow/f.bin", str(tmp_path / "back.bin"))
    assert res.returncode == 0, res.stderr
    assert took >= 3.4
    assert (tmp_path / "back.bin").read_bytes() == limited.payload
    res, took = scp(limited, str(tmp_path / "back.bin"), "alice@127.0.0.1:slow/scp-up.bin")
    assert res.returncode == 0, res.stderr
    assert took >= 3.4
    assert (limited.home("alice") / "slow" / "scp-up.bin").read_bytes() == limited.payload


def test_max_retrieve_file_size_refuses_a_larger_file(limited, tmp_path):
    """`MaxRetrieveFileSize 100 KB`: OPEN of the 256 KiB file is refused (SSH_FX_PERMISSION_DENIED, `Permission
    denied`: EPERM as ProFTPD's mod_sftp words it, FTP's `426 ... Operation not permitted`), nothing is sent; a
    smaller file there and the larger one elsewhere come; `scp -f` skips it with `Operation not permitted`."""
    res, _ = sftp(limited, f"-get capped/f.bin {tmp_path}/big\nget capped/tiny.txt {tmp_path}/tiny\n")
    assert res.returncode == 0, res.stderr
    assert 'remote open "/capped/f.bin": Permission denied' in res.stderr
    assert not (tmp_path / "big").exists()
    assert (tmp_path / "tiny").read_text() == "tiny\n"
    assert "OPEN of '/capped/f.bin' (262144 bytes) refused: larger than MaxRetrieveFileSize (102400 bytes)" \
        in (limited.dir / "sftp.log").read_text()
    assert wait_until(lambda: "MaxRetrieveFileSize (102400 bytes) reached: aborting transfer of "
                      "'/capped/f.bin'" in (limited.dir / "system.log").read_text(), 5)
    res, _ = scp(limited, "alice@127.0.0.1:capped/f.bin", "alice@127.0.0.1:capped/tiny.txt", str(tmp_path))
    assert res.returncode == 1
    assert "capped/f.bin: Operation not permitted" in res.stderr
    assert not (tmp_path / "f.bin").exists() and (tmp_path / "tiny.txt").read_text() == "tiny\n"
    from ssh_client import MiniClient
    c = MiniClient(limited.port)
    assert c.login("alice", PASSWORDS["alice"])
    c.open_sftp()
    path = b"capped/f.bin"
    c.data(struct.pack(">IBII", 17 + len(path), 3, 7, len(path)) + path + struct.pack(">II", 1, 0))   # OPEN, read
    kind, payload = c.sftp_reply()
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (7, 3)      # SSH_FX_PERMISSION_DENIED
    assert payload[12:12 + struct.unpack(">I", payload[8:12])[0]] == b"Permission denied"   # ProFTPD's text
    c.close()


def test_max_retrieve_file_size_beside_proftpd(open_tmp_path):
    """The same sftp batch and `scp -O` against Debian's ProFTPD (LoadModule mod_sftp.c) and proftpy under
    `MaxRetrieveFileSize 1 KB`: ProFTPD 1.3.8's mod_sftp lets the 256 KiB file through (its READ handler has only
    an `XXX Check MaxRetrieveFileSize` comment), proftpy refuses it as FTP's RETR does; the small file comes from
    both. A difference kept on purpose (docs/sftp.md)."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    users = beside_proftpd(tmp_path)
    home = users["alice"][2]
    for name, data in (("big.bin", os.urandom(SIZE)), ("tiny.txt", b"tiny\n")):
        (home / name).write_bytes(data)
        os.chown(home / name, users["alice"][0], users["alice"][1])
    config = beside_config(tmp_path, "MaxRetrieveFileSize 1 KB\n")
    batch = tmp_path / "batch"

    def drive(port: int, run) -> tuple[str, str, int]:
        out = run / "out"
        out.mkdir()
        batch.write_text(f"-get big.bin {out}/big.bin\nget tiny.txt {out}/tiny.txt\n")
        res = subprocess.run(["sftp", "-b", str(batch), "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                              "alice@127.0.0.1"], capture_output=True, text=True, timeout=60)
        got = ",".join(sorted(p.name for p in out.iterdir()))
        scp_res = subprocess.run(["scp", "-O", "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                                  "alice@127.0.0.1:big.bin", str(run / "scp.bin")], capture_output=True, text=True,
                                 timeout=60)
        return res.stderr, got, scp_res.returncode

    results = side_by_side(tmp_path, config, drive)
    assert results["proftpd"] == ("", "big.bin,tiny.txt", 0)
    assert results["proftpy"] == ('remote open "/big.bin": Permission denied\n', "tiny.txt", 1)


@pytest.mark.slow
def test_mod_shaper_rate_paces_sftp(tmp_path):
    """mod_shaper's overall download rate (`ShaperAll downrate 64 uprate 65536`, one session: all of it) paces an
    SFTP download as TransferRate does (ProFTPD's mod_shaper sets the session's TransferRate); the upload goes at
    its own rate."""
    d = _start(tmp_path, "ShaperEngine on\nShaperTable {dir}/shaper.tab\nShaperLog {dir}/shaper.log\n"
                         "ShaperAll downrate 64 uprate 65536\n" + CONFIG)
    try:
        back = tmp_path / "back.bin"
        res, took = sftp(d, f"get f.bin {back}\n")
        assert res.returncode == 0, res.stderr
        assert back.read_bytes() == d.payload
        assert took >= 3.4
        res, took = sftp(d, f"put {back} up.bin\n")
        assert res.returncode == 0, res.stderr
        assert took < 3.0
    finally:
        d.stop()


# -- the ExtendedLog's lines of SFTP requests ----------------------------------------------------------------------
def test_extended_log_classes_of_sftp_requests(limited, tmp_path):
    """`ExtendedLog ... READ`: of the SFTP requests only STAT (READ, SFTP; the one that is an FTP command's name
    too), and RETR; not LSTAT, OPEN, READ, CLOSE, OPENDIR, READDIR (only a log of ALL takes them, as ProFTPD's:
    test_sftp_compat.py has them side by side) nor MLSD."""
    log = limited.dir / "read.log"
    before = log.read_text().splitlines() if log.exists() else []
    res, _ = sftp(limited, f"get tiny.txt {tmp_path}/t\nls\n")
    assert res.returncode == 0, res.stderr
    assert wait_until(lambda: "RETR /tiny.txt 226" in log.read_text(), 5)
    time.sleep(0.3)
    names = [line.split()[0] for line in log.read_text().splitlines()[len(before):]]
    assert names == ["STAT", "RETR"], names


LOGGED_NAMES = {"INIT", "OPEN", "CLOSE", "READ", "WRITE", "LSTAT", "FSTAT", "SETSTAT", "FSETSTAT", "OPENDIR",
                "READDIR", "REMOVE", "MKDIR", "RMDIR", "REALPATH", "STAT", "RENAME", "READLINK", "SYMLINK",
                "EXTENDED", "RETR", "STOR"}


def test_extended_log_of_sftp_requests_beside_proftpd(open_tmp_path):
    """`ExtendedLog ... ALL` with the same sftp batch against Debian's ProFTPD (LoadModule mod_sftp.c) and proftpy:
    each SFTP request's line (OPEN, READ, WRITE, CLOSE, STAT, REALPATH, OPENDIR, READDIR, SETSTAT, SYMLINK, RENAME
    and EXTENDED, REMOVE, RMDIR...: `%m`, `%r`, `%f`, `%b`, `%s`, `%S`, `%F`, `%J`, `%{basename}`) and the RETR
    and STOR lines at CLOSE are the same, in the same order, handles aside. Kept apart on purpose: ProFTPD's
    MKDIR line shows `257` and `"(null)" - Directory successfully created`, proftpy's the status it sent (0, OK).
    The login by key ends with USER (331) then PASS (230) in both (ProFTPD logs the steps before the signed
    request too)."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    users = beside_proftpd(tmp_path)
    config = beside_config(tmp_path, 'LogFormat sftp "%m|%r|%f|%b|%s|%S|%F|%J|%{basename}|%{protocol}"\n'
                                     "ExtendedLog {dir}/ext.log ALL sftp\nAllowOverwrite on\n")
    batch = tmp_path / "batch"
    (tmp_path / "src.txt").write_bytes(b"line of text\n" * 1500)      # 19500 bytes

    def drive(port: int, run) -> list[str]:
        batch.write_text(f"pwd\nls -l\nput {tmp_path}/src.txt s.txt\nget s.txt {run}/back\nreget s.txt {run}/back\n"
                         "mkdir d1\nchmod 600 s.txt\nln -s s.txt lnk\nrename s.txt d1/x.txt\nls d1\n-rm nonexistent\n"
                         "-get /etc/passwd /dev/null\ndf\nrm d1/x.txt\nrmdir d1\n-rmdir d1\nrm lnk\n")
        res = subprocess.run(["sftp", "-b", str(batch), "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                              "alice@127.0.0.1"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert wait_until(lambda: "RMDIR|" in (run / "ext.log").read_text(), 5)
        time.sleep(0.3)
        out = []
        for line in (run / "ext.log").read_text().splitlines():
            if line.split("|")[0] in LOGGED_NAMES | {"USER", "PASS"}:
                handles = re.sub(r"\b[0-9a-f]{8,16}\b", "HANDLE", line)
                out.append(handles.replace(str(users["alice"][2]), "HOME"))
        return out

    results = side_by_side(tmp_path, config, drive)
    proftpd, proftpy = results["proftpd"], results["proftpy"]
    assert 'MKDIR|MKDIR /d1|-|-|257|"(null)" - Directory successfully created|-|/d1|-|sftp' in proftpd
    assert "MKDIR|MKDIR /d1|-|-|0|OK|-|/d1|-|sftp" in proftpy
    login = lambda lines: [x for x in lines if x.split("|")[0] in ("USER", "PASS")]  # noqa: E731
    rest = lambda lines: [x for x in lines if x.split("|")[0] not in ("USER", "PASS", "MKDIR")]  # noqa: E731
    assert rest(proftpy) == rest(proftpd)
    # the key's login: a USER (331) for each request (the `none` method, the key's query, the signed request), a
    # failed PASS for the query and PASS (230) for the login, as ProFTPD's (test_sftp_sshlog.py has the rest)
    assert [x.split("|")[:5] for x in login(proftpy)] == [["USER", "USER alice", "-", "-", "331"]] * 2 + [
        ["PASS", "PASS (hidden)", "-", "-", "530"], ["USER", "USER alice", "-", "-", "331"],
        ["PASS", "PASS (hidden)", "-", "-", "230"]]
    assert login(proftpy) == login(proftpd)
    assert "READ|READ HANDLE|HOME/s.txt|19500|1|End of file|/s.txt|HANDLE|s.txt|sftp" in proftpy
    assert "RETR|RETR /s.txt|HOME/s.txt|19500|226|Transfer complete|/s.txt|/s.txt|s.txt|sftp" in proftpy


# -- wildcards in `scp -f` paths -----------------------------------------------------------------------------------
def test_scp_wildcards_beside_proftpd(open_tmp_path):
    """`scp -O` with wildcards in the remote path, against Debian's ProFTPD (which globs them) and proftpy: `*.txt`
    (not `.hidden.txt`), `{a,c}.*`, `sub/*`, `/../*.txt` (the chroot's root: nothing above it), a pattern that
    matches nothing; the same files, exit codes and messages."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    users = beside_proftpd(tmp_path)
    home = users["alice"][2]
    (home / "sub").mkdir()
    for name in ("a.txt", "b.txt", ".hidden.txt", "c.bin", "sub/d.txt"):
        (home / name).write_text(f"{name}\n")
    for path in (home / "sub", *home.rglob("*.*")):
        os.chown(path, users["alice"][0], users["alice"][1])
    config = beside_config(tmp_path)
    patterns = ["*.txt", "{a,c}.*", "sub/*", "/../*.txt", "none*", ".h*"]

    def drive(port: int, run) -> list:
        out = []
        for i, pattern in enumerate(patterns):
            into = run / f"got{i}"
            into.mkdir()
            res = subprocess.run(["scp", "-O", "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                                  f"alice@127.0.0.1:{pattern}", str(into)], capture_output=True, text=True, timeout=60)
            out.append((pattern, res.returncode, res.stderr, sorted(p.name for p in into.iterdir())))
        return out

    results = side_by_side(tmp_path, config, drive)
    assert results["proftpy"] == results["proftpd"]
    assert results["proftpy"] == [("*.txt", 0, "", ["a.txt", "b.txt"]), ("{a,c}.*", 0, "", ["a.txt", "c.bin"]),
                                  ("sub/*", 0, "", ["d.txt"]), ("/../*.txt", 0, "", ["a.txt", "b.txt"]),
                                  ("none*", 1, "none*: No such file or directory\n", []),
                                  (".h*", 0, "", [".hidden.txt"])]


@pytest.mark.slow
def test_a_paced_download_holds_back_only_its_channel(limited, tmp_path):
    """Two sftp sessions over one SSH connection (OpenSSH's ControlMaster: two channels): while one downloads
    slow/f.bin at 64 KiB/s (about 4 s), the other lists and fetches a file at once."""
    control = tmp_path / "ctl"
    opts = ["-i", str(limited.dir / "user"), *SSH_OPTS, "-o", f"ControlPath={control}"]
    master = subprocess.Popen(["ssh", *opts, "-p", str(limited.port), "-o", "ControlMaster=yes", "-N",
                               "alice@127.0.0.1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    mux = [*opts, "-P", str(limited.port), "-o", "ControlMaster=no", "alice@127.0.0.1"]
    slow = None
    try:
        assert wait_until(control.exists, 10)
        (tmp_path / "slow.batch").write_text(f"get slow/f.bin {tmp_path}/slow.bin\n")
        (tmp_path / "quick.batch").write_text(f"ls\nget tiny.txt {tmp_path}/tiny\n")
        start = time.monotonic()
        slow = subprocess.Popen(["sftp", "-b", str(tmp_path / "slow.batch"), *mux], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)                     # the download is under way, paced
        quick_start = time.monotonic()
        quick = subprocess.run(["sftp", "-b", str(tmp_path / "quick.batch"), *mux], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30)
        quick_took = time.monotonic() - quick_start
        assert quick.returncode == 0, quick.stderr
        assert (tmp_path / "tiny").read_text() == "tiny\n"
        assert slow.wait(30) == 0
        assert time.monotonic() - start >= 3.4
        assert quick_took < 1.5, quick_took
        assert (tmp_path / "slow.bin").read_bytes() == limited.payload
    finally:
        for proc in (slow, master):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.mark.slow
def test_transfer_rate_beside_proftpd(open_tmp_path):
    """`TransferRate RETR,STOR 64` against Debian's ProFTPD (LoadModule mod_sftp.c) and proftpy: 256 KiB down then
    up with OpenSSH's sftp takes each of them at least 3.4 s a way (ProFTPD's mod_sftp throttles READ as RETR and
    WRITE as STOR), and the file comes back whole."""
    from conftest import side_by_side
    tmp_path = open_tmp_path
    users = beside_proftpd(tmp_path)
    home = users["alice"][2]
    data = os.urandom(SIZE)
    (home / "f.bin").write_bytes(data)
    os.chown(home / "f.bin", users["alice"][0], users["alice"][1])
    config = beside_config(tmp_path, "TransferRate RETR,STOR 64\nAllowOverwrite on\n")
    batch = tmp_path / "batch"

    def drive(port: int, run) -> tuple[bool, bool, bool]:
        took = []
        for line in (f"get f.bin {run}/back.bin\n", f"put {run}/back.bin up.bin\n"):
            batch.write_text(line)
            start = time.monotonic()
            res = subprocess.run(["sftp", "-b", str(batch), "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                                  "alice@127.0.0.1"], capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res.stderr
            took.append(time.monotonic() - start)
        return took[0] >= 3.4, took[1] >= 3.4, (home / "up.bin").read_bytes() == data

    results = side_by_side(tmp_path, config, drive)
    assert results["proftpd"] == results["proftpy"] == (True, True, True)
