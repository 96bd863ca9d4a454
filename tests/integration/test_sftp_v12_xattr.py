"""mod_sftp beside Debian's ProFTPD 1.3.8: SFTP versions 1 and 2 (INIT 1 and 2 answered in kind, statuses without
their text, everything else as version 3), and extended attributes (`SFTPExtensions +xattr`: the
xattr@proftpd.org requests, the EXTENDED block of STAT/LSTAT/FSTAT in version 3, of what a version 4+ client asks
for and of version 6's READDIR, and the pairs a version 4+ client sends with SETSTAT, OPEN and MKDIR). The same
raw requests (tests/ssh_client.py's MiniClient) to both daemons: the same answers, files, extended attributes on
disk and ExtendedLog lines."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import struct
import time
from pathlib import Path

import pytest

from conftest import PROFTPD, listening, make_users, side_by_side, wait_until
from proftpy.net.ssh.wire import Reader
from test_sftp import keygen
from test_sftp_extensions import connect, lftp, request, s
from test_sftp_extensions import parse_attrs as v4_attrs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (logins as the test users, chroot)")

q = struct.pack
NONE = q(">I", 0)
V4_NONE = NONE + b"\x01"
EXT = 0x80000000


def xattrs_block(pairs) -> bytes:
    return q(">I", len(pairs)) + b"".join(s(n) + s(v) for n, v in pairs)


def parse_attrs(r: Reader, version: int) -> tuple:
    """Attributes as both daemons send them, the times left out (the files differ in age); version 4+ as
    test_sftp_extensions.py reads them."""
    if version > 3:
        return v4_attrs(r)
    flags = r.u32()
    out = [hex(flags)]
    if flags & 0x1:
        out.append(r.u64())
    if flags & 0x2:
        out += [r.u32(), r.u32()]
    if flags & 0x4:
        out.append(oct(r.u32()))
    if flags & 0x8:
        r.u32(), r.u32()
    if flags & EXT:
        out.append(sorted((r.text(), r.string()) for _ in range(r.u32())))
    return tuple(out)


def answer(kind: int, r: Reader, version: int):
    """An answer, comparable between the daemons: a status's code and text (version 3+: the language tag aside,
    ProFTPD's `en-US`, proftpy's `en`), a handle's presence, attributes, names, data, an extended reply's bytes."""
    if kind == 101:
        code = r.u32()
        return ("STATUS", code, r.text()) if version >= 3 else ("STATUS", code, r.data[r.pos:])
    if kind == 102:
        return ("HANDLE",)
    if kind == 105:
        return "ATTRS", parse_attrs(r, version)
    if kind == 104:
        entries = []
        for _ in range(r.u32()):
            name = r.text()
            if version <= 3:
                r.text()                                # the long name (its time)
            entries.append((name, parse_attrs(r, version)))
        return "NAME", sorted(entries)
    return kind, r.data[r.pos:]


class Session:
    def __init__(self, c, version: int):
        self.c, self.version, self.out = c, version, []

    def go(self, kind: int, body: bytes, keep: bool = True) -> bytes | None:
        got, r = request(self.c, kind, body)
        start = r.pos
        if keep:
            self.out.append((kind, answer(got, r, self.version)))
        if got == 102:
            r.pos = start
            return r.string()
        return None

    def ext(self, name: str, body: bytes = b"", keep: bool = True) -> bytes | None:
        return self.go(200, s(name) + body, keep)


def old_versions(c, version: int) -> list:
    """Requests of every kind a version 1 or 2 client may send (READLINK and SYMLINK too: ProFTPD serves them),
    good and failing."""
    t = Session(c, version)
    t.go(16, s("."))
    for path in ("a.txt", "nope", "sub", "a.txt/x"):
        t.go(17, s(path))
        t.go(7, s(path))
    h = t.go(3, s("a.txt") + q(">I", 1) + NONE)
    t.go(5, s(h) + q(">QI", 0, 100))
    t.go(5, s(h) + q(">QI", 100, 100))
    t.go(8, s(h))
    t.go(4, s(h))
    h = t.go(3, s("w.txt") + q(">I", 0x1A) + NONE)
    t.go(6, s(h) + q(">Q", 0) + s(b"data"))
    t.go(10, s(h) + q(">II", 4, 0o640))
    t.go(4, s(h))
    t.go(4, s(b"nohandle"))
    d = t.go(11, s("sub"))
    t.go(12, s(d))
    t.go(12, s(d))
    t.go(4, s(d))
    t.go(11, s("nope"))
    t.go(14, s("mk") + NONE)
    t.go(14, s("mk") + NONE)
    t.go(15, s("mk"))
    t.go(15, s("sub"))
    t.go(18, s("w.txt") + s("w2.txt"))
    t.go(18, s("w2.txt") + s("a.txt"))
    t.go(18, s("nope") + s("zz"))
    t.go(20, s("a.txt") + s("ln"))          # (the link's text differs: ProFTPD stores the target's whole path)
    t.go(19, s("nope"))                     # (ProFTPD answers a relative link's text as a whole path)
    t.go(19, s("a.txt"))
    t.go(13, s("ln"))
    t.go(13, s("nope"))
    t.go(9, s("w2.txt") + q(">II", 4, 0o600))
    t.go(3, s("nope") + q(">I", 1) + NONE)
    t.ext("statvfs@openssh.com", s("."), keep=False)
    t.ext("no-such-extension")
    return t.out


def xattr_v3(c) -> list:
    """xattr@proftpd.org's requests in version 3, and STAT/LSTAT/FSTAT/READDIR's attributes."""
    t = Session(c, 3)
    t.ext("setxattr@proftpd.org", s("a.txt") + s("user.one") + s(b"1") + NONE)
    t.ext("setxattr@proftpd.org", s("a.txt") + s("user.two") + s(b"\x00two\xff") + NONE)
    t.ext("setxattr@proftpd.org", s("a.txt") + s("user.one") + s(b"x") + q(">I", 1))        # CREATE: exists
    t.ext("setxattr@proftpd.org", s("a.txt") + s("user.new") + s(b"x") + q(">I", 2))        # REPLACE: missing
    t.ext("setxattr@proftpd.org", s("a.txt") + s("user.one") + s(b"one") + q(">I", 2))
    t.ext("setxattr@proftpd.org", s("a.txt") + s("noprefix") + s(b"x") + NONE)              # no namespace
    t.ext("setxattr@proftpd.org", s("nope") + s("user.x") + s(b"x") + NONE)
    t.ext("setxattr@proftpd.org", s("ro/f") + s("user.x") + s(b"x") + NONE)                 # EACCES
    t.ext("setxattr@proftpd.org", s("sub") + s("user.d") + s(b"dir") + NONE)
    t.ext("getxattr@proftpd.org", s("a.txt") + s("user.one") + q(">I", 64))
    t.ext("getxattr@proftpd.org", s("a.txt") + s("user.two") + q(">I", 64))
    t.ext("getxattr@proftpd.org", s("a.txt") + s("user.two") + q(">I", 2))                  # ERANGE
    t.ext("getxattr@proftpd.org", s("a.txt") + s("user.none") + q(">I", 64))                # ENODATA
    t.ext("getxattr@proftpd.org", s("nope") + s("user.one") + q(">I", 64))
    t.ext("listxattr@proftpd.org", s("a.txt"))
    t.ext("listxattr@proftpd.org", s("sub"))
    t.ext("listxattr@proftpd.org", s("nope"))
    t.ext("removexattr@proftpd.org", s("a.txt") + s("user.two"))
    t.ext("removexattr@proftpd.org", s("a.txt") + s("user.two"))
    t.go(17, s("a.txt"))
    t.go(7, s("a.txt"))
    t.go(17, s("sub"))
    t.go(17, s("nope"))
    h = t.go(3, s("a.txt") + q(">I", 3) + NONE)
    t.go(8, s(h))
    t.ext("fsetxattr@proftpd.org", s(h) + s("user.f") + s(b"ff") + NONE)
    t.ext("fsetxattr@proftpd.org", s(h) + s("user.f") + s(b"ff") + q(">I", 1))
    t.ext("fgetxattr@proftpd.org", s(h) + s("user.f") + q(">I", 16))
    t.ext("fgetxattr@proftpd.org", s(h) + s("user.zz") + q(">I", 16))
    t.ext("fremovexattr@proftpd.org", s(h) + s("user.f"))
    t.ext("fremovexattr@proftpd.org", s(h) + s("user.f"))
    t.ext("fgetxattr@proftpd.org", s(b"nohandle") + s("user.f") + q(">I", 16))
    t.ext("flistxattr@proftpd.org", s(b"nohandle"))
    t.ext("fsetxattr@proftpd.org", s(b"nohandle") + s("user.f") + s(b"x") + NONE)
    t.ext("fremovexattr@proftpd.org", s(b"nohandle") + s("user.f"))
    t.go(4, s(h))
    d = t.go(11, s("."))
    t.go(12, s(d))
    t.go(4, s(d))
    return t.out


def flistxattr_names(c) -> list:
    """flistxattr@proftpd.org: the names (ProFTPD 1.3.8 follows them with stray bytes, left out here)."""
    t = Session(c, 3)
    h = t.go(3, s("a.txt") + q(">I", 1) + NONE, keep=False)
    got, r = request(c, 200, s("flistxattr@proftpd.org") + s(h))
    names = sorted(r.text() for _ in range(r.u32())) if got == 201 else got
    request(c, 4, s(h))
    return names


def xattr_v46(c, version: int) -> list:
    """Version 4+: the EXTENDED block of a STAT that asks for it, of version 6's READDIR, and extended attributes
    sent with SETSTAT, FSETSTAT, OPEN and MKDIR."""
    t = Session(c, version)
    every = q(">I", 0xFFFFFFFF)
    t.go(17, s("a.txt") + every)
    t.go(17, s("a.txt") + q(">I", 0x1))
    t.go(9, s("a.txt") + q(">I", EXT) + b"\x01" + xattrs_block([("user.set", b"s1"), ("user.one", b"1b")]))
    t.go(9, s("a.txt") + q(">I", EXT) + b"\x01" + xattrs_block([("bad", b"x")]))
    t.go(7, s("a.txt") + q(">I", EXT | 0x4))
    t.go(17, s("sub") + q(">I", EXT))
    opening = q(">II", 0x2, 0x3) if version >= 5 else q(">I", 0x1A)
    h = t.go(3, s("new.txt") + opening + q(">I", EXT) + b"\x01" + xattrs_block([("user.up", b"loaded")]))
    t.go(10, s(h) + q(">I", EXT) + b"\x01" + xattrs_block([("user.fset", b"fs")]))
    t.go(8, s(h) + q(">I", EXT))
    t.go(4, s(h))
    t.go(3, s("bad.txt") + opening + q(">I", EXT) + b"\x01" + xattrs_block([("bad", b"x")]))
    t.go(14, s("xd") + q(">I", EXT) + b"\x01" + xattrs_block([("user.mk", b"dir")]))
    d = t.go(11, s("."))
    t.go(12, s(d))
    t.go(4, s(d))
    return t.out


def on_disk(home: Path) -> list:
    out = []
    for p in sorted(home.rglob("*")):
        try:
            pairs = sorted((n, os.getxattr(p, n, follow_symlinks=False))
                           for n in os.listxattr(p, follow_symlinks=False))
        except OSError as e:
            pairs = e.errno
        out.append((str(p.relative_to(home)), p.is_symlink() or p.is_dir() or p.stat().st_size, pairs))
    return out


COMPARED = ("INIT", "EXTENDED", "STAT", "LSTAT", "FSTAT", "SETSTAT", "FSETSTAT", "OPEN", "MKDIR", "READDIR",
            "RENAME", "REMOVE", "READLINK", "SYMLINK", "RMDIR", "RETR", "STOR")


def prepared(base: Path) -> tuple:
    """bob's (uid, gid, home) and a host key under `base`, which must take user extended attributes (the tests
    fail, never skip, without them); skipped without Debian's mod_sftp."""
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp (proftpd-mod-crypto) is not installed")
    (base / "probe").write_text("")
    try:
        os.setxattr(base / "probe", "user.probe", b"1")
    except OSError as e:
        pytest.fail(f"{base} takes no user extended attributes ({e}): these tests need a filesystem that does")
    keygen(base / "host", "ed25519")
    return make_users(base)["bob"]


@pytest.fixture(scope="module")
def beside():
    """The sessions against Debian's ProFTPD and proftpy: {name: {part: result}}."""
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="proftpy-test-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        uid, gid, home = prepared(base)

        def fresh() -> None:
            for p in list(home.iterdir()):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            (home / "a.txt").write_bytes(b"hello world\n")
            (home / "sub").mkdir()
            (home / "sub" / "x").write_text("x")
            (home / "ro").mkdir(mode=0o755)                 # root's: EACCES for bob
            (home / "ro" / "f").write_text("f")
            os.symlink("a.txt", home / "pre")
            for p in (home / "a.txt", home / "sub", home / "sub" / "x"):
                os.chown(p, uid, gid)

        def drive(port: int, run: Path) -> dict:
            from ssh_client import ServerClosed
            assert wait_until(lambda: listening(port), 10)
            res = {}
            for version in (1, 2):
                fresh()
                c, served, pairs = connect(port, version)
                res[f"v{version}"] = (served, pairs, old_versions(c, version))
                c.close()
                res[f"v{version}-disk"] = on_disk(home)
            for version in (1, 2):
                fresh()
                res[f"lftp{version}"] = lftp(port, version, run)
            c, _, _ = connect(port, 3)
            t = Session(c, 2)                       # version-select to 2: its own answer is version 2's
            t.ext("version-select", s("2"))
            t.go(17, s("nope"))
            t.go(17, s("a.txt"))
            res["select2"] = t.out
            c.close()
            for version in (0, 7):
                try:
                    c, served, pairs = connect(port, version)
                    res[f"init{version}"] = (served, [n for n, _ in pairs])
                    c.close()
                except ServerClosed as e:
                    res[f"init{version}"] = ("closed", e.reason)
            fresh()
            c, served, pairs = connect(port, 3)
            res["xattr-pairs"] = pairs
            res["xattr-v3"] = xattr_v3(c)
            c.close()
            c, _, _ = connect(port, 3)
            res["flistxattr"] = flistxattr_names(c)
            c.close()
            res["xattr-v3-disk"] = on_disk(home)
            for version in (4, 5, 6):
                fresh()
                os.setxattr(home / "a.txt", "user.one", b"1")
                os.setxattr(home / "sub", "user.d", b"dir")
                c, _, pairs = connect(port, version)
                res[f"xattr-v{version}-pairs"] = pairs
                res[f"xattr-v{version}"] = xattr_v46(c, version)
                c.close()
                res[f"xattr-v{version}-disk"] = on_disk(home)
            time.sleep(0.5)
            res["log"] = [re.sub(r"\b[0-9a-f]{9,16}\b", "HANDLE", line)
                          for line in (run / "ext.log").read_text().splitlines() if line.split("|")[0] in COMPARED]
            return res

        yield side_by_side(base, f"""LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey {base}/host
SFTPAuthMethods password
SFTPLog {{dir}}/sftp.log
SFTPExtensions +xattr
LogFormat names "%m|%r|%s|%S|%J"
ExtendedLog {{dir}}/ext.log ALL names
DefaultRoot ~
AllowOverwrite on
""", drive)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _same(beside, key: str) -> None:
    theirs, mine = beside["proftpd"][key], beside["proftpy"][key]
    if isinstance(theirs, tuple) and len(theirs) == 3 and isinstance(theirs[2], list):
        assert mine[:2] == theirs[:2], key
        theirs, mine = theirs[2], mine[2]
    if isinstance(theirs, list):
        diff = [(n, t, m) for n, (t, m) in enumerate(zip(theirs, mine, strict=True)) if t != m]
        assert not diff, (key, diff)
    assert mine == theirs, key


@pytest.mark.parametrize("version", [1, 2])
def test_versions_1_and_2_as_proftpds(beside, version):
    """INIT 1 and INIT 2 are answered VERSION 1 and 2 with ProFTPD's pairs (`versions` is "2,3,4,5,6": version 1
    is no version string); each request gets ProFTPD's answer (statuses carry only their code), the files end the
    same."""
    served, pairs, answers = beside["proftpy"][f"v{version}"]
    assert served == version and dict(pairs)["versions"] == b"2,3,4,5,6"
    assert ("STATUS", 2, b"") in [a for _, a in answers]           # a code, no text
    _same(beside, f"v{version}")
    _same(beside, f"v{version}-disk")


@pytest.mark.parametrize("version", [1, 2])
def test_lftp_in_versions_1_and_2(beside, version):
    """lftp (`sftp:protocol-version` 1 or 2): an upload, listings, a download (the same bytes), mkdir, mv, chmod,
    rm, rmdir print the same as with ProFTPD (lftp itself refuses `mv` in these versions, `Operation not
    supported`, sending nothing: the rest goes on)."""
    mine = beside["proftpy"][f"lftp{version}"]
    assert mine == beside["proftpd"][f"lftp{version}"]
    assert mine[0] == 0 and "lf.txt" in mine[1] and mine[2] == 2       # (INIT and VERSION seen)


def test_version_select_down_to_2(beside):
    """version-select "2" after INIT 3: its OK and the statuses after it carry their code alone, as ProFTPD's."""
    assert beside["proftpy"]["select2"][:2] == [(200, ("STATUS", 0, b"")), (17, ("STATUS", 2, b""))]
    _same(beside, "select2")


def test_init_below_and_above_the_range(beside):
    """INIT 0 ends the session (PROTOCOL_VERSION_NOT_SUPPORTED), INIT 7 gets version 6, as ProFTPD's."""
    assert beside["proftpy"]["init0"] == beside["proftpd"]["init0"] == ("closed", 8)
    assert beside["proftpy"]["init7"] == beside["proftpd"]["init7"]
    assert beside["proftpy"]["init7"][0] == 6


def test_xattr_extension_announced(beside):
    """`SFTPExtensions +xattr`: the VERSION reply ends with `xattr@proftpd.org` "1"; version 6's supported2 has the
    EXTENDED attribute bit, as ProFTPD's."""
    assert beside["proftpy"]["xattr-pairs"][-1] == ("xattr@proftpd.org", b"1")
    for key in ("xattr-pairs", "xattr-v4-pairs", "xattr-v5-pairs", "xattr-v6-pairs"):
        _same(beside, key)


def test_xattr_requests_as_proftpds(beside):
    """setxattr/getxattr/listxattr/removexattr@proftpd.org and their handle forms: the same statuses (ENODATA No
    such file, EEXIST on CREATE, ERANGE for too small a size, a name without namespace unsupported, EACCES), the
    same values read back; version 3's STAT, LSTAT and FSTAT carry the EXTENDED block, its READDIR not."""
    mine = beside["proftpy"]["xattr-v3"]
    assert (200, (201, b"\x00\x00\x00\x05\x00two\xff")) in mine
    assert any(kind == 17 and a[0] == "ATTRS" and a[1][0] == hex(0x8000000F) for kind, a in mine)
    _same(beside, "xattr-v3")
    _same(beside, "xattr-v3-disk")
    assert beside["proftpy"]["flistxattr"] == beside["proftpd"]["flistxattr"] == ["user.one"]


@pytest.mark.parametrize("version", [4, 5, 6])
def test_xattrs_in_attributes_of_later_versions(beside, version):
    """Version 4+: STAT's EXTENDED block when asked for, SETSTAT/FSETSTAT/OPEN/MKDIR set the pairs sent (a bad
    name fails the request, an over-long one is skipped), version 6's READDIR lists them: as ProFTPD's."""
    _same(beside, f"xattr-v{version}")
    _same(beside, f"xattr-v{version}-disk")
    disk = dict((p, x) for p, _, x in beside["proftpy"][f"xattr-v{version}-disk"])
    assert ("user.up", b"loaded") in disk["new.txt"] and ("user.set", b"s1") in disk["a.txt"]


def test_extended_log_lines_as_proftpds(beside):
    """The ExtendedLog (ALL) lines of these sessions, INIT 1 and 2 and the xattr@proftpd.org EXTENDED lines
    among them, as ProFTPD's (but for MKDIR's status and FSETSTAT's `%J`, kept apart as in version 3:
    test_sftp_compat.py)."""
    theirs, mine = ([line.rsplit("|", 1)[0] if line.startswith("FSETSTAT|") else line
                     for line in beside[name]["log"] if not line.startswith("MKDIR|")]
                    for name in ("proftpd", "proftpy"))
    assert any(line.startswith("INIT|INIT 1|") for line in mine) and any("xattr@proftpd.org" in x for x in mine)
    assert mine == theirs, "\n".join(difflib.unified_diff(theirs, mine, lineterm=""))


def options_session(port: int, home: Path) -> dict:
    """What the options change: version 3's STAT, the xattr@proftpd.org requests, a version 4 SETSTAT and OPEN
    with extended attributes, a version 4 STAT asking for them, version 6's READDIR."""
    res = {}
    c, _, pairs = connect(port, 3)
    res["pairs"] = [n for n, _ in pairs]
    t = Session(c, 3)
    t.go(17, s("a.txt"))
    t.ext("setxattr@proftpd.org", s("a.txt") + s("user.x") + s(b"x") + NONE)
    t.ext("getxattr@proftpd.org", s("a.txt") + s("user.one") + q(">I", 16))
    t.ext("listxattr@proftpd.org", s("a.txt"))
    res["v3"] = t.out
    c.close()
    c, _, _ = connect(port, 4)
    t = Session(c, 4)
    t.go(9, s("a.txt") + q(">I", EXT) + b"\x01" + xattrs_block([("user.set", b"s")]))
    h = t.go(3, s("up.txt") + q(">I", 0x1A) + q(">I", EXT) + b"\x01" + xattrs_block([("user.up", b"u")]))
    if h is not None:
        t.go(4, s(h))
    t.go(17, s("a.txt") + q(">I", EXT | 0x1))
    res["v4"] = t.out
    c.close()
    c, _, _ = connect(port, 6)
    t = Session(c, 6)
    d = t.go(11, s("."))
    t.go(12, s(d))
    res["v6"] = t.out
    c.close()
    res["disk"] = on_disk(home)
    return res


@pytest.mark.parametrize("options", ["SFTPOptions IgnoreSFTPSetExtendedAttributes IgnoreSFTPUploadExtendedAttributes",
                                     "FSOptions IgnoreExtendedAttributes", "SFTPExtensions -xattr"])
def test_xattr_options_as_proftpds(open_tmp_path, options):
    """SFTPOptions IgnoreSFTPSetExtendedAttributes and IgnoreSFTPUploadExtendedAttributes (what SETSTAT and OPEN
    send is not set, OK all the same), FSOptions IgnoreExtendedAttributes (no EXTENDED block in version 3's STAT
    nor version 6's READDIR, an empty one asked for, the requests `Unsupported operation`), and the extension left
    off (its requests unsupported, the blocks still sent): as Debian's ProFTPD 1.3.8."""
    tmp_path = open_tmp_path
    uid, gid, home = prepared(tmp_path)

    def drive(port: int, run: Path) -> dict:
        assert wait_until(lambda: listening(port), 10)
        for p in list(home.iterdir()):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        (home / "a.txt").write_bytes(b"hello\n")
        os.chown(home / "a.txt", uid, gid)
        os.setxattr(home / "a.txt", "user.one", b"1")
        return options_session(port, home)

    extensions = "" if options.startswith("SFTPExtensions") else "SFTPExtensions +xattr\n"
    results = side_by_side(tmp_path, f"""LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPAuthMethods password
SFTPLog {{dir}}/sftp.log
{extensions}{options}
DefaultRoot ~
AllowOverwrite on
""", drive)
    theirs, mine = results["proftpd"], results["proftpy"]
    for key in ("pairs", "v3", "v4", "v6", "disk"):
        assert mine[key] == theirs[key], (key, theirs[key], mine[key])
    disk = dict((p, x) for p, _, x in mine["disk"])
    if options.startswith("SFTPExtensions"):
        assert ("user.set", b"s") in disk["a.txt"] and (200, ("STATUS", 8, "Unsupported operation")) in mine["v3"]
    elif options.startswith("FSOptions"):
        assert disk["a.txt"] == [("user.one", b"1")] and mine["v3"][0][1][1][0] == hex(0xF)
    else:                                                   # only the pairs SETSTAT and OPEN sent are left out
        assert disk["a.txt"] == [("user.one", b"1"), ("user.x", b"x")] and disk["up.txt"] == []


def test_xattrs_stay_inside_the_jail_without_root():
    """proftpy started by an ordinary user (fs.py's jail, no kernel chroot), `SFTPExtensions +xattr`: a user's
    own file takes and gives back its attributes; a link to a file outside the root (by its absolute path) and a
    path climbing out neither list, read nor change the outside file's attributes."""
    from test_sftp import jailed_daemon
    with jailed_daemon("SFTPExtensions +xattr\n") as d:
        secret = d.dir / "outside" / "secret.txt"
        os.setxattr(secret, "user.secret", b"s")
        mine = d.home("bob") / "mine.txt"
        mine.write_text("mine\n")
        os.chown(mine, d.uid("bob"), d.uid("bob"))
        os.symlink(str(secret), d.home("bob") / "out")
        c, _, _ = connect(d.port, 3)
        t = Session(c, 3)
        t.ext("setxattr@proftpd.org", s("mine.txt") + s("user.a") + s(b"1") + NONE)
        t.ext("getxattr@proftpd.org", s("/mine.txt") + s("user.a") + q(">I", 0))
        for path in ("out", "../../outside/secret.txt", str(secret)):
            t.ext("listxattr@proftpd.org", s(path))
            t.ext("getxattr@proftpd.org", s(path) + s("user.secret") + q(">I", 16))
            t.ext("setxattr@proftpd.org", s(path) + s("user.planted") + s(b"x") + NONE)
            t.ext("removexattr@proftpd.org", s(path) + s("user.secret"))
            t.go(7, s(path))
        c.close()
        assert t.out[:2] == [(200, ("STATUS", 0, "OK")), (200, (201, b"\0\0\0\x011"))]
        assert os.getxattr(mine, "user.a") == b"1"
        assert all(a[0] == "STATUS" and a[1] in (2, 3) or a[0] == "ATTRS" and a[1][-1] == [] for _, a in t.out[2:]), \
            t.out
        assert os.listxattr(secret) == ["user.secret"] and os.getxattr(secret, "user.secret") == b"s"
        assert "Traceback" not in d.log()


def test_fuzzed_xattr_and_old_version_requests_never_crash_the_session():
    """Random bodies for the xattr@proftpd.org requests (versions 3 and 6) and for every request type in versions
    1 and 2, to a daemon in fs.py's jail: each is answered, the session goes on, the log has no traceback."""
    import random
    from test_sftp import jailed_daemon
    rng = random.Random(1212)
    names = ["getxattr", "fgetxattr", "listxattr", "flistxattr", "setxattr", "fsetxattr", "removexattr",
             "fremovexattr"]
    with jailed_daemon("SFTPExtensions +xattr\n") as d:
        mine = d.home("bob") / "f.txt"
        mine.write_text("f")
        os.chown(mine, d.uid("bob"), d.uid("bob"))
        for version in (1, 2, 3, 6):
            c, _, _ = connect(d.port, version)
            t = Session(c, version)
            h = t.go(3, s("f.txt") + (q(">II", 1, 2) if version >= 5 else q(">I", 1)) + NONE
                     + (b"\x01" if version > 3 else b""))
            assert h is not None, (version, t.out)
            for _ in range(120):
                body = bytes(rng.randrange(256) for _ in range(rng.randrange(30)))
                head = rng.choice([s("f.txt"), s(h), s("user.a"), b""])
                if version >= 3:
                    got, _ = request(c, 200, s(rng.choice(names) + "@proftpd.org") + head + body)
                else:
                    got, _ = request(c, rng.choice([3, 5, 7, 8, 9, 10, 11, 14, 16, 17, 18, 19, 20]), head + body)
                assert got in (101, 102, 103, 104, 105, 201)
            assert request(c, 17, s("f.txt") + (q(">I", 1) if version > 3 else b""))[0] == 105   # still served
            c.close()
        assert "Traceback" not in d.log()
