"""mod_sftp's extensions (sftp_ext.py): SFTPExtensions' parsing, the VERSION reply's pairs and the errno -> status
table, as ProFTPD 1.3.8's mod_sftp has them."""

from __future__ import annotations

import errno
import re

import pytest

from proftpy.modules import sftp_ext
from proftpy.net.ssh.wire import Reader


def test_default_set_is_proftpds():
    assert sftp_ext.DEFAULT == {"checkFile", "copyFile", "fsync", "versionSelect", "posixRename", "spaceAvailable",
                                "statvfs", "hardlink", "homeDirectory"}


def test_flags_in_order_and_without_case():
    assert sftp_ext.parse_extensions(["+VENDORid", "-hardlink", "-Hardlink"]) == \
        sftp_ext.DEFAULT - {"hardlink"} | {"vendorID"}
    assert sftp_ext.parse_extensions(["-fsync", "+fsync"]) == sftp_ext.DEFAULT
    assert sftp_ext.parse_extensions(["-xattr"]) == sftp_ext.DEFAULT
    assert sftp_ext.parse_extensions(["+XAttr"]) == sftp_ext.DEFAULT | {"xattr"}


@pytest.mark.parametrize("args, message", [
    ([], "wrong number of parameters"),
    (["vendorID"], "bad option: 'vendorID'"),
    (["+limits"], "unknown extension: 'limits'"),
    (["+"], "unknown extension: ''"),
])
def test_refused(args, message):
    with pytest.raises(ValueError, match=message):
        sftp_ext.parse_extensions(args)


def test_version_pairs_in_proftpds_order():
    names = [n for n, _ in sftp_ext.version_pairs(sftp_ext.DEFAULT)]
    assert names == ["versions", "fsync@openssh.com", "posix-rename@openssh.com", "statvfs@openssh.com",
                     "fstatvfs@openssh.com", "hardlink@openssh.com", "home-directory"]
    pairs = dict(sftp_ext.version_pairs(sftp_ext.parse_extensions(["+vendorID", "-statvfs", "-versionSelect"])))
    assert list(pairs)[0] == "vendor-id" and "statvfs@openssh.com" not in pairs and "versions" not in pairs
    r = Reader(pairs["vendor-id"])
    assert (r.text(), r.text(), r.text(), r.u64()) == ("ProFTPD Project", "mod_sftp", "mod_sftp/1.1.1", 0x01030805)
    assert pairs["fsync@openssh.com"] == b"1" and pairs["home-directory"] == b"1"
    assert sftp_ext.version_pairs(sftp_ext.DEFAULT | {"xattr"})[-1] == ("xattr@proftpd.org", b"1")


@pytest.mark.parametrize("served, text", [((1, 6), b"2,3,4,5,6"), ((1, 1), b""), ((2, 3), b"2,3"), ((4, 4), b"4")])
def test_versions_pair_leaves_version_1_out(served, text):
    assert dict(sftp_ext.version_pairs(sftp_ext.DEFAULT, 3, served))["versions"] == text


def test_version_pairs_of_later_versions_as_proftpds():
    """`newline` from version 4, `supported` (5) and `supported2` (6) with the bytes ProFTPD 1.3.8 sends (6's
    attribute mask with the EXTENDED bit)."""
    names = b"".join(len(n).to_bytes(4, "big") + n for n in (b"check-file", b"copy-file", b"space-available",
                                                             b"vendor-id"))
    fixed = bytes.fromhex("000000ad" "00000000" "00000187" "0000001f" "00000000")
    for version, head in ((4, []), (5, [("supported", fixed + names)]),
                          (6, [("supported2", b"\x80" + fixed[1:] + bytes.fromhex("00010c01" "00000000" "00000004")
                                + names)])):
        pairs = sftp_ext.version_pairs(sftp_ext.DEFAULT, version)
        assert pairs[:2 + len(head)] == [("versions", b"2,3,4,5,6"), ("newline", b"\n")] + head
    five = dict(sftp_ext.version_pairs(sftp_ext.DEFAULT - {"copyFile"}, 5))["supported"]
    assert b"copy-file" not in five and five.endswith(b"vendor-id")


@pytest.mark.parametrize("err, version, expect", [
    (errno.ENOENT, 3, (2, "No such file")),
    (errno.EPERM, 3, (3, "Permission denied")),
    (errno.EXDEV, 3, (4, "Invalid cross-device link")),
    (errno.EINVAL, 3, (8, "Invalid parameter")),
    (errno.EINVAL, 6, (23, "Invalid parameter")),
    (errno.EEXIST, 3, (4, "File already exists")),
    (errno.EEXIST, 4, (11, "File already exists")),
    (errno.EISDIR, 3, (4, "File is a directory")),
    (errno.EISDIR, 6, (24, "File is a directory")),
    (errno.ENOSPC, 5, (14, "Out of disk space")),
    (errno.EROFS, 3, (4, "Failure")),
    # version 3 as Debian's ProFTPD 1.3.8 answers it (test_sftp_compat.py): FAILURE with the draft's text
    (errno.ENOTDIR, 3, (4, "Not a directory")),
    (errno.ELOOP, 3, (4, "Link loop")),
    (errno.ENAMETOOLONG, 3, (4, "Invalid filename")),
    (errno.ENOTEMPTY, 3, (4, "Directory is not empty")),
    (errno.EACCES, 3, (3, "Permission denied")),
    (errno.ENOSPC, 3, (4, "Out of disk space")),
])
def test_errno_status_as_proftpd(err, version, expect):
    assert sftp_ext.errno_status(err, version) == expect


@pytest.mark.parametrize("err, creating, expect", [
    (errno.EISDIR, False, errno.EACCES), (errno.EISDIR, True, errno.EACCES), (errno.ELOOP, True, errno.EACCES),
    (errno.ENOTDIR, False, errno.EACCES), (errno.ENOTDIR, True, errno.ENOTDIR),
    (errno.ENAMETOOLONG, False, errno.EACCES), (errno.ENAMETOOLONG, True, errno.ENAMETOOLONG),
    (errno.ENOENT, False, errno.ENOENT), (errno.EEXIST, True, errno.EEXIST),
])
def test_open_errno_as_proftpd(err, creating, expect):
    from proftpy.modules.sftp_fxp import open_errno
    assert open_errno(err, creating) == expect


@pytest.mark.parametrize("text, expect", [("3", (3, 3)), ("1-6", (1, 6)), ("4-5", (4, 5)),
                                          ("7", "must be between 1 and 6"), ("0-3", "must be between 1 and 6"),
                                          ("x", "badly formatted"), ("3-", "badly formatted"), ("-3", "badly")])
def test_sftp_protocol_version_values(text, expect):
    from proftpy.modules.sftp_state import protocol_range
    if isinstance(expect, tuple):
        assert protocol_range(text) == expect
    else:
        with pytest.raises(ValueError, match=expect):
            protocol_range(text)


@pytest.mark.parametrize("key, text, expect", [
    ("channelWindowSize", "1MB", 1024 * 1024), ("channelWindowSize", "100000", 100000),
    ("channelWindowSize", "64kb", 65536), ("channelWindowSize", "3GB", 3 * 1024 ** 3),
    ("channelPacketSize", "16KB", 16384), ("channelPacketSize", "20000B", 20000),
    ("channelWindowSize", "1XB", "error parsing 'channelWindowSize' value 1XB: Invalid argument"),
    ("channelWindowSize", "4GB", "must be between 1 byte and 4294967295 bytes"),
    ("channelWindowSize", "0", "must be between"), ("channelPacketSize", "1MB", "262144 bytes"),
])
def test_client_match_channel_sizes(key, text, expect):
    from proftpy.modules.sftp_state import channel_size
    if isinstance(expect, int):
        assert channel_size(key, text) == expect
    else:
        with pytest.raises(ValueError, match=expect):
            channel_size(key, text)


@pytest.mark.parametrize("args, expect", [
    ([".*", "foo", "1"], "unknown SFTPClientMatch key: 'foo'"),
    ([".*", "pessimisticNewkeys", "maybe"], "expected Boolean parameter"),
    ([".*", "sftpUTF8ProtocolVersion", "7"], "'sftpUTF8ProtocolVersion' value 7"),
    ([".*", "sftpUTF8ProtocolVersion", "x"], "badly formatted 'sftpUTF8ProtocolVersion' value: x"),
    ([".*", "channelPacketSize", "1XB"], "error parsing 'channelPacketSize'"),
    ([".*", "channelWindowSize", "1MB", "channelPacketSize", "16KB", "pessimisticNewkeys", "on",
      "sftpUTF8ProtocolVersion", "4", "sftpProtocolVersion", "3-6"], None),
])
def test_client_match_keys_checked_as_proftpd(args, expect):
    """Every key ProFTPD 1.3.8 knows is checked when the line is read, with its messages; others are refused."""
    from proftpy.modules.sftp import _client_match
    if expect is None:
        assert _client_match(args) == tuple(args)
    else:
        with pytest.raises(ValueError, match=re.escape(expect)):
            _client_match(args)
