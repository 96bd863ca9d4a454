"""mod_digest against the real daemon, driven by ftplib: HASH, OPTS HASH, XCRC, MD5, XMD5, XSHA, XSHA1, XSHA256,
XSHA512 compared with hashlib and zlib (a file of several MB, byte ranges), FEAT and HELP, the refusals (no login,
missing file, directory, special file, bad ranges, `<Limit>`, DigestEngine off, DigestAlgorithms, DigestMaxSize,
DigestEnable, a full DigestCache), the chroot, the notes in ExtendedLog, and configuration errors."""

from __future__ import annotations

import hashlib
import os
import time
import zlib

import pytest

from conftest import make_file, refused_config
from conftest import error_reply as err

DATA = os.urandom(5 * (1 << 20) + 4321)                 # several chunks of the daemon's reads, and a bit


def hexes(data: bytes) -> dict[str, str]:
    """What each X command answers for `data` (upper-case hex)."""
    sha1 = hashlib.sha1(data).hexdigest()
    return {"XCRC": f"{zlib.crc32(data):08X}", "XMD5": hashlib.md5(data).hexdigest().upper(),
            "XSHA": sha1.upper(), "XSHA1": sha1.upper(), "XSHA256": hashlib.sha256(data).hexdigest().upper(),
            "XSHA512": hashlib.sha512(data).hexdigest().upper()}


NAMES = {"XCRC": "CRC32", "XMD5": "MD5", "XSHA": "SHA1", "XSHA1": "SHA1", "XSHA256": "SHA256", "XSHA512": "SHA512"}


@pytest.fixture
def server(ftpd):
    d = ftpd("DefaultRoot ~\n")
    make_file(d, "big.bin", DATA)
    make_file(d, "dir/small.txt", b"hello world\nsecond line\n")
    return d


def test_x_commands_match_hashlib_on_a_large_file(server):
    ftp = server.login()
    for cmd, want in hexes(DATA).items():
        assert ftp.sendcmd(f"{cmd} big.bin") == f"250-Computing {NAMES[cmd]} digest\n250 {want}"
    assert ftp.sendcmd("xcrc /big.bin") == f"250-Computing CRC32 digest\n250 {zlib.crc32(DATA):08X}"


def test_x_commands_with_a_byte_range(server):
    ftp = server.login()
    start, end = 1_000_000, 4_500_001
    for cmd, want in hexes(DATA[start:end]).items():
        assert ftp.sendcmd(f"{cmd} big.bin {start} {end}").splitlines()[-1] == f"250 {want}"
    small = b"hello world\nsecond line\n"
    want = hashlib.md5(small[6:11]).hexdigest().upper()
    assert ftp.sendcmd("XMD5 dir/small.txt 6 11").splitlines()[-1] == f"250 {want}"


def test_bad_ranges_are_refused(server):
    ftp = server.login()
    assert err(ftp, "XCRC dir/small.txt 5") == "501 Invalid number of parameters"
    assert err(ftp, "XCRC dir/small.txt 0 25") == "501 XCRC: end exceeds file size"
    assert err(ftp, "XSHA dir/small.txt 7 7") == "501 XSHA requires end (7) greater than start (7)"
    assert err(ftp, "XSHA1 dir/small.txt x 7") == "501 XSHA1 requires a start greater than or equal to 0"
    assert err(ftp, "XSHA256 dir/small.txt 0 7y") == "501 XSHA256 requires an end greater than 0"
    assert err(ftp, "XCRC dir/small.txt 0 -1") == "501 XCRC requires end (18446744073709551615) greater than start (0)"
    assert err(ftp, "XCRC dir/small.txt -1 5") == "550 dir/small.txt: Invalid argument"


def test_hash_md5_and_opts_hash(server):
    ftp = server.login()
    size = len(DATA)
    assert ftp.sendcmd("OPTS HASH") == "200 SHA-1"
    assert ftp.sendcmd("HASH big.bin") == (f"213-Computing SHA-1 digest\n213 SHA-1 0-{size} "
                                           f"{hashlib.sha1(DATA).hexdigest()} big.bin")
    assert ftp.sendcmd("OPTS HASH sha-256") == "200 sha-256"
    assert " HASH CRC32;MD5;SHA-1;SHA-256*;SHA-512;" in ftp.sendcmd("FEAT").splitlines()
    assert ftp.sendcmd("HASH big.bin").splitlines()[-1] == (f"213 SHA-256 0-{size} "
                                                            f"{hashlib.sha256(DATA).hexdigest()} big.bin")
    assert ftp.sendcmd("OPTS HASH CRC32") == "200 CRC32"
    assert ftp.sendcmd("HASH big.bin").splitlines()[-1] == f"213 CRC32 0-{size} {zlib.crc32(DATA):08x} big.bin"
    assert err(ftp, "OPTS HASH SHA1") == "501 SHA1: Unsupported algorithm"
    assert err(ftp, "OPTS HASH MD5 SHA-1") == "501 OPTS HASH: Wrong number of parameters"
    want = hashlib.md5(DATA).hexdigest().upper()
    assert ftp.sendcmd("MD5 big.bin") == f"251-Computing MD5 digest\n251 big.bin {want}"


def test_feat_and_help(server):
    ftp = server.connect()
    feat = ftp.sendcmd("FEAT").splitlines()
    for line in ("HASH CRC32;MD5;SHA-1*;SHA-256;SHA-512;", "XCRC", "MD5", "XMD5", "XSHA", "XSHA1", "XSHA256",
                 "XSHA512"):
        assert " " + line in feat
    assert ftp.sendcmd("HELP").splitlines()[-2].split() == ["HASH", "XCRC", "MD5", "XMD5", "XSHA", "XSHA1", "XSHA256",
                                                            "XSHA512"]
    assert ftp.sendcmd("HELP XCRC") == "214 Syntax: XCRC <sp> pathname [<sp> start <sp> end]"
    assert err(ftp, "XCRC big.bin") == "530 Please login with USER and PASS"
    assert err(ftp, "HASH big.bin") == "530 Please login with USER and PASS"
    assert ftp.sendcmd("OPTS HASH MD5") == "200 MD5"        # OPTS HASH needs no login, as in ProFTPD


def test_what_cannot_be_hashed(server):
    ftp = server.login()
    assert err(ftp, "XCRC") == "501 Invalid number of parameters"
    assert err(ftp, "HASH") == "501 Invalid number of parameters"
    assert err(ftp, "XCRC nothere 0 5") == "550 nothere 0 5: No such file or directory"
    assert err(ftp, "HASH nothere") == "550 nothere: No such file or directory"
    assert err(ftp, "XSHA dir") == "550 dir: Not a regular file"
    assert err(ftp, "HASH dir") == "553 dir: Not a regular file"
    assert err(ftp, "MD5 dir") == "504 dir: Not a regular file"


def test_paths_stay_inside_the_chroot(server):
    make_file(server, "etc/passwd", b"not the real one\n")
    os.symlink("/etc/passwd", server.home("alice") / "escape")
    ftp = server.login()
    inside = f"{zlib.crc32(b'not the real one' + bytes([10])):08X}"
    assert ftp.sendcmd("XCRC ../../../../etc/passwd").splitlines()[-1] == f"250 {inside}"
    assert ftp.sendcmd("XCRC escape").splitlines()[-1] == f"250 {inside}"          # the link resolves inside too
    os.unlink(server.home("alice") / "etc" / "passwd")
    assert err(ftp, "HASH ../../etc/passwd") == "550 ../../etc/passwd: No such file or directory"
    assert err(ftp, "XCRC escape") == "550 escape: No such file or directory"


def test_special_files_are_refused(ftpd):
    d = ftpd("")                                # no chroot: the real /dev
    ftp = d.login()
    assert err(ftp, "HASH /dev/null") == "556 /dev/null: Operation not permitted"
    assert err(ftp, "XCRC /dev/zero") == "550 /dev/zero: Operation not permitted"


def test_limit_refuses_by_command_name_and_read_group(ftpd):
    d = ftpd("DefaultRoot ~\n<Limit XCRC HASH MD5>\nDenyAll\n</Limit>\n")
    make_file(d, "f.txt", b"data")
    ftp = d.login()
    assert err(ftp, "XCRC f.txt") == "550 f.txt: Operation not permitted"
    assert err(ftp, "HASH f.txt") == "552 f.txt: Operation not permitted"
    assert err(ftp, "MD5 f.txt") == "550 f.txt: Operation not permitted"
    assert ftp.sendcmd("XSHA1 f.txt").splitlines()[-1] == "250 " + hashlib.sha1(b"data").hexdigest().upper()
    d.stop()
    d = ftpd("DefaultRoot ~\n<Limit READ>\nDenyAll\n</Limit>\n")
    ftp = d.login()
    assert err(ftp, "XSHA512 f.txt 0 2") == "550 f.txt: Operation not permitted"


def test_engine_off(ftpd):
    d = ftpd("DefaultRoot ~\nDigestEngine off\n")
    make_file(d, "f.txt", b"data")
    ftp = d.login()
    assert err(ftp, "XCRC f.txt") == "500 XCRC not understood"
    assert err(ftp, "HASH f.txt") == "500 HASH not understood"
    assert err(ftp, "OPTS HASH") == "500 OPTS HASH not understood"
    assert not [line for line in ftp.sendcmd("FEAT").splitlines() if "HASH" in line or "XSHA" in line]
    assert "XCRC" not in ftp.sendcmd("HELP")


def test_algorithms_and_default(ftpd):
    d = ftpd("DefaultRoot ~\nDigestAlgorithms md5 sha512\nDigestDefaultAlgorithm sha512\n")
    make_file(d, "f.txt", b"data")
    ftp = d.login()
    assert " HASH MD5;SHA-512*;" in ftp.sendcmd("FEAT").splitlines()
    assert err(ftp, "XCRC f.txt") == "500 XCRC not understood"
    assert err(ftp, "OPTS HASH SHA-1") == "501 SHA-1: Unsupported algorithm"
    assert ftp.sendcmd("HASH f.txt").splitlines()[-1] == f"213 SHA-512 0-4 {hashlib.sha512(b'data').hexdigest()} f.txt"
    assert ftp.sendcmd("XMD5 f.txt").splitlines()[-1] == "250 " + hashlib.md5(b"data").hexdigest().upper()


def test_max_size(ftpd):
    d = ftpd("DefaultRoot ~\nDigestMaxSize 10\n")
    make_file(d, "f.txt", b"0123456789abc")
    ftp = d.login()
    assert err(ftp, "XCRC f.txt") == "550 f.txt: Operation not permitted"
    assert err(ftp, "HASH f.txt") == "556 f.txt: Operation not permitted"
    assert ftp.sendcmd("XCRC f.txt 3 13").splitlines()[-1] == f"250 {zlib.crc32(b'3456789abc'):08X}"


def test_digest_enable_off_in_a_directory_and_ftpaccess(ftpd, tmp_path):
    d = ftpd(f"DefaultRoot ~\nAllowOverride on\n<Directory {tmp_path}/home/alice/no>\nDigestEnable off\n"
             "</Directory>\n")
    make_file(d, "no/f.txt", b"data")
    make_file(d, "yes/f.txt", b"data")
    make_file(d, "acc/f.txt", b"data")
    make_file(d, "acc/.ftpaccess", b"DigestEnable off\n")
    ftp = d.login()
    assert err(ftp, "XCRC no/f.txt") == "550 no/f.txt: Operation not permitted"
    assert err(ftp, "HASH no/f.txt") == "552 no/f.txt: Operation not permitted"
    assert err(ftp, "XCRC acc/f.txt") == "550 acc/f.txt: Operation not permitted"
    assert ftp.sendcmd("XCRC yes/f.txt").splitlines()[-1] == f"250 {zlib.crc32(b'data'):08X}"


def test_a_full_cache_refuses(ftpd):
    d = ftpd("DefaultRoot ~\nDigestCache size 1\n")
    ftp = d.login()
    make_file(d, "f.txt", b"data")                        # modified just now: its digest stays cached 30 s
    assert ftp.sendcmd("XCRC f.txt").splitlines()[-1] == f"250 {zlib.crc32(b'data'):08X}"
    assert err(ftp, "XCRC f.txt") == "550 f.txt: Device or resource busy"
    assert err(ftp, "HASH f.txt") == "450 f.txt: Device or resource busy"


def test_notes_for_the_extended_log(ftpd):
    d = ftpd('DefaultRoot ~\nLogFormat digest "%m %{note:mod_digest.algo} %{note:mod_digest.digest}"\n'
             "ExtendedLog {dir}/ext.log ALL digest\n")
    make_file(d, "f.txt", b"data")
    ftp = d.login()
    ftp.sendcmd("XSHA256 f.txt")
    ftp.sendcmd("HASH f.txt")
    ftp.quit()
    lines = (d.dir / "ext.log").read_text().splitlines()
    assert f"XSHA256 SHA256 {hashlib.sha256(b'data').hexdigest()}" in lines
    assert f"HASH SHA1 {hashlib.sha1(b'data').hexdigest()}" in lines


def test_a_long_digest_is_not_idleness(ftpd):
    d = ftpd("DefaultRoot ~\nTimeoutIdle 1\n")
    path = make_file(d, "sparse.bin", b"")
    os.truncate(path, 2 << 30)                              # read as zeros: no disk, only hashing time
    ftp = d.login()
    ftp.sock.settimeout(120)        # 2 GiB hashed: seconds on a quiet machine, far more on a busy one
    began = time.monotonic()
    lines = ftp.sendcmd("XSHA512 sparse.bin").splitlines()
    took = time.monotonic() - began
    assert lines[0] == "250-Computing SHA512 digest" and lines[-1].startswith("250 ")
    assert lines[1:-1] == [" Computing..."] * 13            # one per 40000 reads of 4 KiB, as ProFTPD's
    if took < 1.2:
        pytest.skip(f"the digest took {took:.1f} s, not longer than TimeoutIdle")
    assert ftp.sendcmd("NOOP") == "200 NOOP command successful"


@pytest.mark.parametrize("line, message", [
    ("DigestEngine maybe", "DigestEngine"),
    ("DigestAlgorithms md5 sha384", "unknown/unsupported DigestAlgorithm: sha384"),
    ("DigestDefaultAlgorithm whirlpool", "unknown/unsupported DigestAlgorithm: whirlpool"),
    ("DigestMaxSize 1 PB", "badly formatted size value: 1PB"),
    ("DigestMaxSize 0 KB", "requires a value greater than zero"),
    ("DigestCache size 0", "cache size must be greater than 0"),
    ("DigestCache maxAge", "expected Boolean parameter"),
    ("DigestOptions NoCache", "unknown DigestOption 'NoCache'"),
    ("DigestEnable off", "DigestEnable"),                                # only in <Directory> and .ftpaccess
    ("<Anonymous /tmp>\nDigestDefaultAlgorithm md5\n</Anonymous>", "DigestDefaultAlgorithm"),
])
def test_configuration_errors(tmp_path, line, message):
    stderr = refused_config(tmp_path, line)
    assert "t.conf:" in stderr and message in stderr, stderr
