"""MODE Z (mod_deflate) against the real daemon: a MODE Z client built on ftplib and zlib downloads, uploads and
lists compressed, over plain FTP and FTPS; FEAT, MODE, OPTS MODE Z; a broken stream; and the same client against
Debian's ProFTPD 1.3.8 with mod_deflate, side by side."""

from __future__ import annotations

import ftplib
import os
import re
import zlib

import pytest

from conftest import PASSWORDS, make_file, make_users, side_by_side
from conftest import error_reply as err
from tls_helpers import ftps, pki  # noqa: F401 - pki is a fixture

TEXT = b"".join(b"line %d of a text that compresses well\r\n" % i for i in range(20000))


def retr_z(ftp: ftplib.FTP, line: str) -> tuple[bytes, int]:
    """(the decompressed data, the bytes that crossed the data connection) of a download in MODE Z."""
    conn = ftp.transfercmd(line)
    raw = bytearray()
    while chunk := conn.recv(1 << 16):
        raw += chunk
    if hasattr(conn, "unwrap"):
        conn.unwrap()
    conn.close()
    ftp.voidresp()
    return zlib.decompress(bytes(raw)), len(raw)


def stor_z(ftp: ftplib.FTP, name: str, data: bytes, level: int = 6) -> str:
    conn = ftp.transfercmd(f"STOR {name}")
    conn.sendall(zlib.compress(data, level))
    if hasattr(conn, "unwrap"):
        conn.unwrap()
    conn.close()
    return ftp.voidresp()


@pytest.fixture
def server(ftpd):
    return ftpd("DefaultRoot ~\nAllowOverwrite on\nDeflateEngine on\nDeflateLog {dir}/deflate.log\n"
                "TransferLog {dir}/xferlog\n")


def test_feat_mode_and_opts(server, ftpd):
    ftp = server.login()
    assert " MODE Z" in ftp.sendcmd("FEAT").splitlines()
    assert ftp.sendcmd("MODE Z") == "200 OK"
    assert ftp.sendcmd("OPTS MODE Z LEVEL 9") == "200 OPTS MODE Z OK"
    assert err(ftp, "OPTS MODE Z LEVEL 10") == "501 OPTS_MODE: bad MODE Z option value: LEVEL 10"
    assert err(ftp, "OPTS MODE Z BLOCKSIZE 1024") == "501 OPTS_MODE: unsupported MODE Z option: BLOCKSIZE"
    assert err(ftp, "OPTS MODE Z LEVEL 1 x") == "501 Bad number of parameters"
    assert err(ftp, "OPTS MODE Z FAST 1") == "501 OPTS_MODE: unknown MODE Z option: FAST"
    assert ftp.sendcmd("OPTS MODE Z LEVEL") == "200 OPTS_MODE OK"        # the defaults again
    assert err(ftp, "OPTS MODE Z") == "500 OPTS MODE not understood"
    assert ftp.sendcmd("MODE S") == "200 Mode set to S"


def test_without_deflate_engine_mode_z_is_unknown(ftpd):
    d = ftpd("DefaultRoot ~\n")
    ftp = d.login()
    assert " MODE Z" not in ftp.sendcmd("FEAT").splitlines()
    assert err(ftp, "MODE Z") == "501 'MODE Z' unrecognized transfer mode"
    assert err(ftp, "OPTS MODE Z LEVEL 9") == "500 OPTS MODE not understood"


@pytest.mark.parametrize("kind", ["I", "A"])
def test_download_upload_and_listing_are_compressed(server, kind):
    make_file(server, "text.txt", TEXT)
    ftp = server.login()
    ftp.voidcmd(f"TYPE {kind}")
    ftp.voidcmd("MODE Z")
    data, wire = retr_z(ftp, "RETR text.txt")
    assert data == TEXT and wire < len(TEXT) // 10
    assert stor_z(ftp, "up.txt", TEXT).startswith("226")
    assert (server.home("alice") / "up.txt").read_bytes() == (TEXT if kind == "I" else TEXT.replace(b"\r\n", b"\n"))
    listing, _ = retr_z(ftp, "LIST")
    assert b"text.txt" in listing and b"up.txt" in listing
    ftp.voidcmd("MODE S")
    assert sorted(ftp.nlst()) == ["text.txt", "up.txt"]    # plain again: ftplib reads it as it comes
    logged = (server.dir / "xferlog").read_text().splitlines()
    assert f" {len(TEXT)} " in logged[0]                    # the file's bytes, not the compressed ones
    lines = (server.dir / "deflate.log").read_text().splitlines()
    assert re.search(rf"mod_deflate/0.6\[\d+\]: RETR: deflated {len(TEXT)} bytes to {wire} bytes \(9\d\.\d\d% "
                     r"compression\)$", lines[0]), lines
    assert "STOR: inflated " in lines[1] and [line.split(": ")[1] for line in lines[2:]] == ["LIST"]


def test_a_big_upload_that_expands_is_written_in_pieces(server):
    """50 MB of zeros in about 50 KB: the session never holds more than a buffer of it at once."""
    ftp = server.login()
    ftp.voidcmd("TYPE I")
    ftp.voidcmd("MODE Z")
    assert stor_z(ftp, "zeros.bin", bytes(50 << 20), 9).startswith("226")
    assert (server.home("alice") / "zeros.bin").stat().st_size == 50 << 20


def test_a_broken_stream_fails_the_upload_and_the_session_goes_on(server):
    ftp = server.login()
    ftp.voidcmd("TYPE I")
    ftp.voidcmd("MODE Z")
    conn = ftp.transfercmd("STOR broken.bin")
    conn.sendall(b"this is not a zlib stream" * 100)
    conn.close()
    with pytest.raises(ftplib.error_temp, match="^451 Transfer aborted. Input/output error$"):   # ProFTPD's
        ftp.voidresp()
    assert ftp.sendcmd("NOOP") == "200 NOOP command successful"
    assert "Traceback" not in server.log()
    assert "error inflating data: Error -3 while decompressing data" in (server.dir / "deflate.log").read_text()


def test_mode_z_over_ftps(ftpd, pki):  # noqa: F811 - pki is the fixture
    d = ftpd(f"DefaultRoot ~\nAllowOverwrite on\nDeflateEngine on\nTLSEngine on\n"
             f"TLSECCertificateFile {pki.path('server.pem')}\nTLSECCertificateKeyFile {pki.path('server.key')}\n")
    make_file(d, "text.txt", TEXT)
    ftp = ftps(d.port, pki.client())
    ftp.voidcmd("TYPE I")
    ftp.voidcmd("MODE Z")
    data, wire = retr_z(ftp, "RETR text.txt")
    assert data == TEXT and wire < len(TEXT) // 10
    assert stor_z(ftp, "up.bin", TEXT).startswith("226")
    assert (d.home("alice") / "up.bin").read_bytes() == TEXT
    data, _ = retr_z(ftp, "RETR up.bin")                    # the TLS session is still resumable
    assert data == TEXT


def test_the_same_client_gets_the_same_from_proftpd(open_tmp_path):
    """ProFTPD 1.3.8's mod_deflate corrupts uploads larger than its 128 KiB buffer (`invalid stored block
    lengths` in its trace: it joins left-over compressed bytes wrongly); the upload here stays below that."""
    make_users(open_tmp_path)
    payload = os.urandom(1000) + TEXT
    small = payload[:60000]

    def drive(port: int, run) -> tuple[bytes, bytes, str]:
        home = open_tmp_path / "home" / "alice"
        (home / "text.bin").write_bytes(payload)
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", port, timeout=10)
        ftp.login("alice", PASSWORDS["alice"])
        feat = ftp.sendcmd("FEAT")
        ftp.voidcmd("TYPE I")
        mode = ftp.sendcmd("MODE Z")
        data, _ = retr_z(ftp, "RETR text.bin")
        stor_z(ftp, "up.bin", small)
        stored = (home / "up.bin").read_bytes()
        (home / "up.bin").unlink()
        ftp.quit()
        return data, stored, " MODE Z" in feat.splitlines() and mode

    results = side_by_side(open_tmp_path, "LoadModule mod_deflate.c\nDeflateEngine on\nDefaultRoot ~\n"
                                          "AllowOverwrite on\n", drive)
    assert results["proftpd"] == results["proftpy"] == (payload, small, "200 OK")
