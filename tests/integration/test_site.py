"""SITE commands against the real daemon: HELP, CHMOD (octal and symbolic), CHGRP, and mod_site_misc's MKDIR,
RMDIR, SYMLINK, UTIME (both forms)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import PASSWORDS, make_file
from conftest import error_reply as err


@pytest.fixture
def server(ftpd):
    return ftpd("DefaultRoot ~\n")


def test_site_help_lists_the_site_commands(server):
    ftp = server.connect()
    lines = ftp.sendcmd("SITE HELP").splitlines()
    assert lines[0] == "214-The following SITE commands are recognized (* =>'s unimplemented)"
    assert lines[-1] == "214 Direct comments to root@127.0.0.1"     # ServerAdmin's default, UseReverseDNS off
    body = [line.strip() for line in lines[1:-1]]
    assert {"HELP", "CHGRP", "CHMOD", "UTIME <sp> YYYYMMDDhhmm[ss] <sp> path", "MKDIR <sp> path"} <= set(body)
    assert ftp.sendcmd("SITE HELP chmod").splitlines()[-2] == " Syntax: SITE CHMOD <sp> mode <sp> pathname"
    assert err(ftp, "SITE HELP FROB") == "502 Unknown command 'SITE HELP FROB'"


def test_unknown_and_empty_site_commands(server):
    ftp = server.connect()
    assert err(ftp, "SITE FROB x") == "500 'SITE FROB' not understood"
    assert err(ftp, "SITE") == "500 'SITE' requires parameters"
    assert err(ftp, "SITE CHMOD 600 f") == "530 Please login with USER and PASS"


def test_site_chmod_octal(server):
    path = make_file(server, "f")
    ftp = server.login()
    assert ftp.sendcmd("SITE CHMOD 600 f") == "200 SITE CHMOD command successful"
    assert os.stat(path).st_mode & 0o7777 == 0o600
    ftp.sendcmd("SITE CHMOD 0751 f")
    assert os.stat(path).st_mode & 0o7777 == 0o751


def test_site_chmod_symbolic(server):
    path = make_file(server, "f")
    os.chmod(path, 0o600)
    ftp = server.login()
    ftp.sendcmd("SITE CHMOD go+r f")
    assert os.stat(path).st_mode & 0o777 == 0o644
    ftp.sendcmd("SITE CHMOD u-w f")
    assert os.stat(path).st_mode & 0o777 == 0o444


def test_site_chmod_errors(server):
    make_file(server, "f")
    ftp = server.login()
    assert err(ftp, "SITE CHMOD 600") == "500-'SITE CHMOD 600' not understood\n500 SITE not understood"
    assert err(ftp, "SITE CHMOD zz+q f") == "550 'zz+q': invalid mode"
    assert err(ftp, "SITE CHMOD 600 missing") == "550 missing: No such file or directory"


def test_site_chmod_on_a_name_with_spaces(server):
    path = make_file(server, "my file")
    ftp = server.login()
    assert ftp.sendcmd("SITE CHMOD 640 my file") == "200 SITE CHMOD command successful"
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_site_chgrp_by_name_and_number(server):
    path = make_file(server, "f")
    gid = server.users["alice"][1]
    ftp = server.login()
    assert ftp.sendcmd(f"SITE CHGRP {gid} f") == "200 SITE CHGRP command successful"
    assert ftp.sendcmd("SITE CHGRP ftpusers f") == "200 SITE CHGRP command successful"
    assert os.stat(path).st_gid == gid
    assert err(ftp, "SITE CHGRP nosuchgroup f") == "550 f: Invalid argument"


@pytest.mark.parametrize("gid", ["4294967295", "20200101000000"])
def test_site_chgrp_to_a_number_no_gid_holds_is_refused(server, gid):
    """(uid_t)-1 means "no change" to chown(2), larger numbers no gid_t holds: both are refused, not an internal
    error."""
    path = make_file(server, "f")
    before = os.stat(path).st_gid
    ftp = server.login()
    assert err(ftp, f"SITE CHGRP {gid} f") == "550 f: Invalid argument"
    assert os.stat(path).st_gid == before
    assert ftp.sendcmd("NOOP").startswith("200")


def test_site_utime_mtime_form(server):
    path = make_file(server, "f")
    ftp = server.login()
    assert ftp.sendcmd("SITE UTIME 202001020304 f") == "200 SITE UTIME command successful"
    assert os.stat(path).st_mtime == 1577934240
    ftp.sendcmd("SITE UTIME 20200102030405 f")
    assert os.stat(path).st_mtime == 1577934245
    assert err(ftp, "SITE UTIME 2020 f") == "500 UTIME 2020 f: Invalid argument"


def test_site_utime_five_argument_form(server):
    path = make_file(server, "a file")
    ftp = server.login()
    reply = ftp.sendcmd("SITE UTIME a file 20210102030405 20200102030405 20200102030405 UTC")
    assert reply == "200 SITE UTIME command successful"
    st = os.stat(path)
    assert (st.st_atime, st.st_mtime) == (1609556645, 1577934245)


def test_site_mkdir_makes_parents_and_rmdir_removes_the_tree(server):
    ftp = server.login()
    assert ftp.sendcmd("SITE MKDIR a/b/c") == "200 SITE MKDIR command successful"
    assert os.path.isdir(server.home("alice") / "a/b/c")
    make_file(server, "a/b/file")
    assert ftp.sendcmd("SITE RMDIR a") == "200 SITE RMDIR command successful"
    assert not os.path.exists(server.home("alice") / "a")


def test_site_rmdir_does_not_follow_links_out(server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("k")
    tree = server.home("alice") / "tree"
    tree.mkdir()
    os.chown(tree, server.uid("alice"), server.users["alice"][1])
    os.symlink(str(outside), tree / "link")
    ftp = server.login()
    assert ftp.sendcmd("SITE RMDIR tree") == "200 SITE RMDIR command successful"
    assert (outside / "keep").read_text() == "k"
    make_file(server, "plain")
    assert err(ftp, "SITE RMDIR plain") == "550 RMDIR plain: Invalid argument"


def test_site_symlink(server):
    make_file(server, "target", b"data")
    ftp = server.login()
    assert ftp.sendcmd("SITE SYMLINK target alias") == "200 SITE SYMLINK command successful"
    assert os.readlink(server.home("alice") / "alias") == "/target"     # the path as seen inside the root
    ftp.sendcmd("TYPE I")
    assert ftp.sendcmd("SIZE alias") == "213 4"
    assert err(ftp, "SITE SYMLINK missing other").startswith("550 SYMLINK missing other: ")


def test_feat_shows_site_misc_lines(server):
    lines = server.connect().sendcmd("FEAT").splitlines()
    for name in ("MKDIR", "RMDIR", "SYMLINK", "UTIME"):
        assert f" SITE {name}" in lines


def test_site_misc_engine_off_hides_them(ftpd):
    d = ftpd("SiteMiscEngine off\n")
    ftp = d.connect()
    assert " SITE UTIME" not in ftp.sendcmd("FEAT").splitlines()
    ftp.login("alice", PASSWORDS["alice"])
    assert err(ftp, "SITE MKDIR x") == "500 'SITE MKDIR' not understood"


def test_site_chmod_denied_by_limit(ftpd):
    d = ftpd("DefaultRoot ~\n<Limit SITE_CHMOD>\n  DenyAll\n</Limit>\n")
    path = make_file(d, "f")
    os.chmod(path, 0o644)
    ftp = d.login()
    assert err(ftp, "SITE CHMOD 600 f") == "550 CHMOD 600 f: Permission denied"
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_site_mkdir_denied_by_write_limit(ftpd):
    d = ftpd("DefaultRoot ~\n<Limit WRITE>\n  DenyAll\n</Limit>\n")
    ftp = d.login()
    assert err(ftp, "SITE MKDIR a/b") == "550 MKDIR a/b: Operation not permitted"
    assert not os.path.exists(d.home("alice") / "a")


def test_curl_quote_site_chmod(server):
    path = make_file(server, "f")
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-u", f"alice:{PASSWORDS['alice']}",
                          f"ftp://127.0.0.1:{server.port}/", "-Q", "SITE CHMOD 604 f"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert os.stat(path).st_mode & 0o777 == 0o604
