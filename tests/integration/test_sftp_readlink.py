"""READLINK side by side with Debian's ProFTPD 1.3.8's mod_sftp: raw requests for relative, `..`, dangling and
absolute links, in and out of a DefaultRoot chroot, in versions 3 and 6; the same NAME answers (ProFTPD answers a
relative link by a path joined to the request's directory, an absolute one inside the chroot without its prefix)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import IS_ROOT, PROFTPD
from test_sftp import beside_config, beside_proftpd
from test_sftp_extensions import connect, request, s

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root (ProFTPD's logins, chroot)")

READLINK = 19


def _links(home: Path) -> None:
    (home / "sub").mkdir(exist_ok=True)
    (home / "a.txt").write_text("a\n")
    for name, target in (("rel", "a.txt"), ("sub/up", "../a.txt"), ("sub/deep", "../../../etc/passwd"),
                         ("sub/same", "./x/../b"), ("dangling", "nothere"), ("abs_in", f"{home}/a.txt"),
                         ("abs_out", "/etc/passwd"), ("short", "/x"), ("abs_dir", f"{home}"),
                         ("abs_messy", f"{home}//sub/../a.txt")):
        if not (home / name).is_symlink():
            os.symlink(target, home / name)


def _answers(port: int, home: Path, version: int) -> list:
    c, _, _ = connect(port, version)
    out = []
    try:
        for path in ("rel", "/rel", "./rel", "sub/up", "/sub/up", "sub/deep", "sub/same", "dangling", "abs_in",
                     "abs_out", "short", "abs_dir", "abs_messy", "sub/../rel", "a.txt", "nope",
                     f"{home}/rel", f"{home}/sub/up"):
            kind, r = request(c, READLINK, s(path))
            out.append((path, kind, r.u32(), r.text()) if kind in (101, 104) else (path, kind))
    finally:
        c.close()
    return out


@pytest.mark.parametrize("chroot", [True, False])
@pytest.mark.parametrize("version", [3, 6])
def test_readlink_as_proftpd(open_tmp_path, chroot, version):
    from conftest import side_by_side
    tmp_path = open_tmp_path
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp (proftpd-mod-crypto) is not installed")
    home = beside_proftpd(tmp_path)["bob"][2]
    _links(home)
    config = beside_config(tmp_path).replace("SFTPAuthMethods publickey\n", "SFTPAuthMethods password\n")
    if not chroot:
        config = config.replace("DefaultRoot ~\n", "")
    results = side_by_side(tmp_path, config, lambda port, run: _answers(port, home, version))
    assert ("rel", 104, 1, "/a.txt" if chroot else "a.txt") in results["proftpd"], results["proftpd"]
    assert results["proftpy"] == results["proftpd"], [(a, b) for a, b in zip(results["proftpy"],
                                                                             results["proftpd"]) if a != b]
