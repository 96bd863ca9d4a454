"""mod_sftp's extended attribute blocks (sftp_attrs.py) and fs.py's extended attribute calls inside an emulated
jail: what a client sends is bounded as ProFTPD bounds it, a final link is never followed out of the root."""

from __future__ import annotations

import os
import struct

import pytest

from proftpy.fs import FS
from proftpy.modules import sftp_attrs
from proftpy.net.ssh.wire import Reader, Writer


def block(pairs) -> bytes:
    return struct.pack(">I", len(pairs)) + b"".join(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
                                                    for n, v in pairs)


def test_extended_block_round_trip():
    pairs = [("user.a", b"1"), ("user.b", b"\x00\xff")]
    w = sftp_attrs.write_extended(Writer(), pairs)
    assert sftp_attrs.read_extended(Reader(w.bytes())) == pairs


def test_long_names_and_values_are_skipped_and_the_count_bounded():
    data = block([(b"user." + b"n" * 1100, b"x"), (b"user.ok", b"y"), (b"user.big", b"v" * 1025)])
    assert sftp_attrs.read_extended(Reader(data)) == [("user.ok", b"y")]
    many = block([(b"user.%d" % i, b"x") for i in range(150)])
    assert len(sftp_attrs.read_extended(Reader(many))) == sftp_attrs.MAX_PAIRS


def test_v4_attributes_carry_what_xattrs_gives():
    st = os.stat("/")
    out = Reader(sftp_attrs.write(6, st, sftp_attrs.EXTENDED, str, str, lambda: [("user.x", b"v")]))
    assert (out.u32(), out.byte(), out.u32(), out.text(), out.string()) == (sftp_attrs.EXTENDED, 2, 1, "user.x", b"v")
    read = sftp_attrs.read(Reader(struct.pack(">IB", sftp_attrs.EXTENDED, 1) + block([(b"user.y", b"w")])),
                           lambda _: None, lambda _: None)
    assert read["xattrs"] == [("user.y", b"w")]


@pytest.fixture
def jail(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("f")
    outside = tmp_path / "outside"
    outside.write_text("o")
    try:
        os.setxattr(outside, "user.secret", b"s")
    except OSError as e:
        pytest.fail(f"{tmp_path} takes no user extended attributes: {e}")
    os.symlink(str(outside), root / "d" / "out")          # absolute: inside the jail it means <root>/...
    os.symlink("f", root / "d" / "rel")
    return FS(str(root)), root, outside


def test_xattrs_inside_an_emulated_jail(jail):
    fs, root, outside = jail
    f = fs.resolve("/d/f").real
    fs.setxattr(f, "user.a", b"1")
    assert fs.getxattr(f, "user.a") == b"1" and fs.listxattr(f) == ["user.a"]
    with pytest.raises(FileExistsError):
        fs.setxattr(f, "user.a", b"2", os.XATTR_CREATE)
    fd = os.open(root / "d" / "f", os.O_RDONLY)
    try:
        fs.setxattr(f, "user.b", b"2", fd=fd)
        assert sorted(fs.listxattr(f, fd=fd)) == ["user.a", "user.b"]
        fs.removexattr(f, "user.b", fd=fd)
    finally:
        os.close(fd)
    assert fs.listxattr(fs.resolve("/d/rel", follow_last=False).real, follow=True) == ["user.a"]
    assert fs.listxattr(fs.resolve("/d/rel", follow_last=False).real) == []
    out = fs.resolve("/d/out", follow_last=False).real
    with pytest.raises(FileNotFoundError):              # the link's target is looked for inside the root
        fs.listxattr(out, follow=True)
    with pytest.raises(OSError):                         # the link itself takes no user attribute
        fs.setxattr(out, "user.x", b"x")
    assert os.listxattr(outside) == ["user.secret"]
