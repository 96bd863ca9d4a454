"""Transfers that end early, as Debian's ProFTPD 1.3.8 ends them (scripts/compare_proftpd.py's stall-*, close-*,
during-* and xferlog-* scenarios show both servers side by side): TimeoutStalled, a client closing the data
connection, commands during a transfer, TransferLog lines of DELE, ASCII transfers and a full device."""

from __future__ import annotations

import ftplib
import io
import os
import socket
import time

import pytest

from conftest import IS_ROOT, restart_with_mount, wait_until
from proftpy.log import xferlog

BASE = "DefaultRoot ~\nTransferLog {dir}/xferlog\nAllowOverwrite on\n"
ENTRIES = 3000                  # a listing far larger than a 4 KiB receive window and a 16 KiB send buffer
SMALL_SENDS = "SocketOptions sndbuf 16384\n"    # (no autotuned megabytes of send buffer for the listing to fill)


def put(d, rel: str, data: bytes = b"") -> None:
    path = d.home("alice") / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if IS_ROOT:
        os.chown(path, d.uid("alice"), d.users["alice"][1])


def big(d) -> None:
    path = d.home("alice") / "big.bin"
    with open(path, "wb") as f:
        f.truncate(32 << 20)
    if IS_ROOT:
        os.chown(path, d.uid("alice"), d.users["alice"][1])


@pytest.fixture(scope="module")
def many_template(tmp_path_factory):
    """A directory of ENTRIES empty files, made once for the module (making it takes seconds)."""
    folder = tmp_path_factory.mktemp("many") / "many"
    folder.mkdir()
    for i in range(ENTRIES):
        os.close(os.open(folder / f"{i:05d}-{'x' * 100}", os.O_WRONLY | os.O_CREAT, 0o644))
    return folder


@pytest.fixture
def lend_many(many_template):
    """`lend_many(d)` moves the template into alice's home as `many/` (a rename: instant); it goes back after."""
    lent = []

    def lend(d) -> None:
        target = d.home("alice") / "many"
        os.rename(many_template, target)
        lent.append(target)
    yield lend
    for target in lent:
        os.rename(target, many_template)


def data_socket(ftp: ftplib.FTP, small_window: bool = False) -> socket.socket:
    """PASV, and a data connection to it (a receive window of 4 KiB: the server's sends soon block)."""
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))
    sock = socket.socket()
    if small_window:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((host, port))
    return sock


def xferlog_lines(d, count: int) -> list[dict[str, str]]:
    path = d.dir / "xferlog"
    assert wait_until(lambda: path.exists() and len(path.read_text().splitlines()) >= count, 5), \
        path.read_text() if path.exists() else "no TransferLog"
    return [xferlog.parse(line) for line in path.read_text().splitlines()]


# -- TimeoutStalled ------------------------------------------------------------------------------------------------
STALLS = {
    "retr-binary-sendfile": ("TYPE I", "RETR big.bin", "UseSendfile on"),
    "retr-binary-no-sendfile": ("TYPE I", "RETR big.bin", "UseSendfile off"),
    "retr-ascii": ("TYPE A", "RETR big.bin", ""),
    "stor": ("TYPE I", "STOR up.bin", ""),
    "list": ("TYPE A", "LIST many", SMALL_SENDS),
    "nlst": ("TYPE A", "NLST many", SMALL_SENDS),
    "mlsd": ("TYPE A", "MLSD many", SMALL_SENDS),
}


@pytest.mark.parametrize("case", list(STALLS))
def test_stalled_transfer_ends_the_session_without_a_reply(ftpd, lend_many, case):
    """No progress for TimeoutStalled: ProFTPD ends the session; the client hears nothing more (no 426, no 421),
    later commands are not answered, and the TransferLog has the transfer as incomplete."""
    type_, command, conf = STALLS[case]
    d = ftpd(BASE + "TimeoutStalled 1\n" + conf)
    big(d) if "big" in command else lend_many(d) if "many" in command else None
    ftp = d.login()
    ftp.voidcmd(type_)
    conn = data_socket(ftp, small_window=True)
    assert ftp.sendcmd(command).startswith("150 ")
    start = time.monotonic()
    ftp.sock.settimeout(10)
    assert ftp.sock.recv(4096) == b""                                     # nothing but the end
    assert 0.9 < time.monotonic() - start < 6
    with pytest.raises(OSError):
        ftp.sock.sendall(b"NOOP\r\n")
        assert ftp.sock.recv(100) == b""
        ftp.sock.sendall(b"NOOP\r\n")
    conn.close()
    ftp.close()
    assert wait_until(lambda: "Data transfer stall timeout: 1 second" in d.log(), 5), d.log()
    if command.split()[0] in ("RETR", "STOR"):
        (line,) = xferlog_lines(d, 1)
        assert line["completion"] == "i" and line["filename"].endswith(command.split()[1])


# -- the client closes the data connection early -------------------------------------------------------------------
@pytest.mark.parametrize("type_, command, conf", [("TYPE I", "RETR big.bin", "UseSendfile on"),
                                                   ("TYPE I", "RETR big.bin", "UseSendfile off"),
                                                   ("TYPE A", "RETR big.bin", ""), ("TYPE A", "LIST many", SMALL_SENDS),
                                                   ("TYPE A", "MLSD many", SMALL_SENDS)],
                         ids=["retr-binary-sendfile", "retr-binary", "retr-ascii", "list", "mlsd"])
def test_data_connection_closed_early_is_426_then_abor_226(ftpd, lend_many, type_, command, conf):
    d = ftpd(BASE + conf)
    big(d) if "big" in command else lend_many(d)
    with d.login() as ftp:
        ftp.voidcmd(type_)
        conn = data_socket(ftp)
        assert ftp.sendcmd(command).startswith("150 ")
        conn.recv(65536)
        conn.close()
        with pytest.raises(ftplib.error_temp) as info:
            ftp.voidresp()
        assert str(info.value) == "426 Transfer aborted. Data connection closed"     # ProFTPD's, no full stop
        assert ftp.sendcmd("ABOR") == "226 Abort successful"
        assert ftp.sendcmd("NOOP") == "200 NOOP command successful"


# -- TransferLog ---------------------------------------------------------------------------------------------------
def test_dele_is_logged_with_direction_d(ftpd):
    d = ftpd(BASE)
    put(d, "gone.txt", b"twelve bytes")
    put(d, "bin.dat", b"x" * 5)
    with d.login() as ftp:
        assert ftp.delete("gone.txt") == "250 DELE command successful"
        with pytest.raises(ftplib.error_perm):
            ftp.delete("nothere")
        ftp.voidcmd("TYPE I")
        ftp.delete("bin.dat")
    first, second = xferlog_lines(d, 2)
    assert (first["bytes"], first["type"], first["direction"], first["completion"]) == ("12", "a", "d", "c")
    assert first["filename"] == os.path.realpath(d.home("alice") / "gone.txt")
    assert (second["bytes"], second["type"], second["direction"]) == ("5", "b", "d")
    assert (first["transfer-secs"], first["username"], first["access-mode"]) == ("0", "alice", "r")


def test_ascii_transfers_log_the_files_bytes(ftpd):
    """ASCII mode: ProFTPD counts the file's bytes, not the CRs that went over the wire."""
    d = ftpd(BASE)
    put(d, "lines.txt", b"one\ntwo\nthree\n")                        # 14 bytes, 17 on the wire
    with d.login() as ftp:
        got = []
        ftp.retrlines("RETR lines.txt", got.append)
        ftp.storlines("STOR up.txt", io.BytesIO(b"a\r\nb\r\nc\r\n"))      # 9 bytes on the wire, 6 written
        ftp.voidcmd("TYPE I")
        ftp.retrbinary("RETR lines.txt", lambda _: None)
    down, up, binary = xferlog_lines(d, 3)
    assert got == ["one", "two", "three"]
    assert (down["bytes"], down["type"], down["direction"]) == ("14", "a", "o")
    assert (up["bytes"], up["type"], up["direction"]) == ("6", "a", "i")
    assert (d.home("alice") / "up.txt").read_bytes() == b"a\nb\nc\n"
    assert (binary["bytes"], binary["type"]) == ("14", "b")


def upload(ftp: ftplib.FTP, command: str, payload: bytes) -> str:
    """Send `payload` (the server may stop reading and close the data connection early); the final reply."""
    conn = data_socket(ftp)
    assert ftp.sendcmd(command).startswith("150 ")
    try:
        conn.sendall(payload)
    except OSError:
        pass                                        # the server gave up on the data: its reply says why
    conn.close()
    return ftp.getmultiline()


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")
def test_full_device_mid_upload(ftpd, tmp_path):
    """A small tmpfs in the daemon's own mount namespace fills up mid-upload: a write that went in part of the way
    is ProFTPD's I/O error (451), one that finds no room at all `452 No space left on device`; both are logged as
    incomplete uploads."""
    d = ftpd(BASE)
    full = d.home("alice") / "full"
    full.mkdir()
    # the daemon runs in a private mount namespace where full/ is a 256 KiB tmpfs; the mount goes with it
    restart_with_mount(d, f'mount -t tmpfs -o size=256k,mode=0777 tmpfs "{full}"')
    payload = b"0123456789abcde\n" * (1 << 16)                          # 1 MiB
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        first = upload(ftp, "STOR full/up.bin", payload)
        ftp.voidcmd("TYPE A")
        second = upload(ftp, "STOR full/up.txt", payload)
        assert ftp.sendcmd("NOOP") == "200 NOOP command successful"
    assert first == "451 Transfer aborted. Input/output error"
    assert second == "452 Transfer aborted. No space left on device"
    binary, ascii = xferlog_lines(d, 2)
    assert (binary["direction"], binary["type"], binary["completion"]) == ("i", "b", "i")
    assert (ascii["direction"], ascii["type"], ascii["completion"]) == ("i", "a", "i")
    assert 0 < int(binary["bytes"]) <= len(payload)
    assert not os.path.ismount(full)                                   # only the daemon's namespace had it
