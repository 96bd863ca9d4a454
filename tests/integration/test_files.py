"""File and directory commands against the real daemon: PWD CWD CDUP MKD RMD DELE RNFR/RNTO SIZE MDTM MFMT MFF,
OPTS HOST CLNT, and the path-safety rules (long paths, `..`, symlinks leading out of the root)."""

from __future__ import annotations

import os
import subprocess


import pytest

from conftest import PASSWORDS, make_file
from conftest import error_reply as err


@pytest.fixture
def server(ftpd):
    return ftpd("DefaultRoot ~\n")


# -- directories ---------------------------------------------------------------------------------------------------
def test_pwd_starts_at_the_root_of_a_chrooted_session(server):
    ftp = server.login()
    assert ftp.sendcmd("PWD") == '257 "/" is the current directory'
    assert ftp.sendcmd("XPWD") == '257 "/" is the current directory'


def test_mkd_cwd_cdup_walk_the_tree(server):
    ftp = server.login()
    assert ftp.sendcmd("MKD sub") == '257 "/sub" - Directory successfully created'
    assert os.path.isdir(server.home("alice") / "sub")
    assert ftp.sendcmd("CWD sub") == "250 CWD command successful"
    assert ftp.sendcmd("PWD") == '257 "/sub" is the current directory'
    assert ftp.sendcmd("XMKD deeper") == '257 "/sub/deeper" - Directory successfully created'
    assert ftp.sendcmd("XCWD deeper") == "250 XCWD command successful"
    assert ftp.sendcmd("CDUP") == "250 CDUP command successful"
    assert ftp.sendcmd("XCUP") == "250 XCUP command successful"
    assert ftp.sendcmd("PWD") == '257 "/" is the current directory'


def test_pwd_doubles_quotes_in_directory_names(server):
    ftp = server.login()
    assert ftp.sendcmd('MKD say"hi') == '257 "/say""hi" - Directory successfully created'
    ftp.sendcmd('CWD say"hi')
    assert ftp.sendcmd("PWD") == '257 "/say""hi" is the current directory'


def test_cwd_to_missing_directory_is_550(server):
    ftp = server.login()
    assert err(ftp, "CWD nowhere") == "550 nowhere: No such file or directory"
    make_file(server, "plain")
    assert err(ftp, "CWD plain") == "550 plain: Not a directory"


def test_cwd_without_argument_is_501(server):
    ftp = server.login()
    assert err(ftp, "CWD") == "501 Invalid number of parameters"


def test_mkd_uses_the_directory_umask(ftpd):
    d = ftpd("DefaultRoot ~\nUmask 022 027\n")
    ftp = d.login()
    ftp.sendcmd("MKD private")
    assert os.stat(d.home("alice") / "private").st_mode & 0o777 == 0o750


def test_mkd_existing_and_star_names_are_refused(server):
    ftp = server.login()
    ftp.sendcmd("MKD twice")
    assert err(ftp, "MKD twice") == "550 twice: File exists"
    assert err(ftp, "MKD a*b") == "550 a*b: Invalid directory name"


def test_rmd_removes_an_empty_directory(server):
    ftp = server.login()
    ftp.sendcmd("MKD gone")
    assert ftp.sendcmd("RMD gone") == "250 RMD command successful"
    assert not os.path.exists(server.home("alice") / "gone")
    assert err(ftp, "XRMD gone") == "550 gone: No such file or directory"


# -- files ---------------------------------------------------------------------------------------------------------
def test_dele_removes_a_file_but_not_a_directory(server):
    ftp = server.login()
    make_file(server, "f.txt")
    assert ftp.sendcmd("DELE f.txt") == "250 DELE command successful"
    assert not os.path.exists(server.home("alice") / "f.txt")
    ftp.sendcmd("MKD adir")
    assert err(ftp, "DELE adir") == "550 adir: Is a directory"
    assert err(ftp, "DELE f.txt") == "550 f.txt: No such file or directory"


def test_rename_a_file(server):
    ftp = server.login()
    make_file(server, "a")
    assert ftp.sendcmd("RNFR a") == "350 File or directory exists, ready for destination name"
    assert ftp.sendcmd("RNTO b") == "250 Rename successful"
    assert (server.home("alice") / "b").read_bytes() == b"hello"


def test_rnto_without_rnfr_is_a_bad_sequence(server):
    ftp = server.login()
    assert err(ftp, "RNTO b") == "503 Bad sequence of commands"
    assert err(ftp, "RNFR missing") == "550 missing: No such file or directory"
    assert err(ftp, "RNTO b") == "503 Bad sequence of commands"


def test_rnto_onto_existing_file_needs_allow_overwrite(server):
    ftp = server.login()
    make_file(server, "src", b"new")
    make_file(server, "dst", b"old")
    ftp.sendcmd("RNFR src")
    assert err(ftp, "RNTO dst") == "550 dst: Rename permission denied"
    assert (server.home("alice") / "dst").read_bytes() == b"old"


def test_rnto_replaces_with_allow_overwrite_on(ftpd):
    d = ftpd("DefaultRoot ~\nAllowOverwrite on\n")
    ftp = d.login()
    make_file(d, "src", b"new")
    make_file(d, "dst", b"old")
    ftp.sendcmd("RNFR src")
    assert ftp.sendcmd("RNTO dst") == "250 Rename successful"
    assert (d.home("alice") / "dst").read_bytes() == b"new"


def test_size_is_refused_in_ascii_mode(server):
    ftp = server.login()
    make_file(server, "five", b"12345")
    assert err(ftp, "SIZE five") == "550 SIZE not allowed in ASCII mode"
    ftp.sendcmd("TYPE I")
    assert ftp.sendcmd("SIZE five") == "213 5"
    ftp.sendcmd("MKD dir")
    assert err(ftp, "SIZE dir") == "550 dir: not a regular file"


def test_mdtm_reports_gmt(server):
    ftp = server.login()
    path = make_file(server, "stamp")
    os.utime(path, (1577934245, 1577934245))       # 2020-01-02 03:04:05 UTC
    assert ftp.sendcmd("MDTM stamp") == "213 20200102030405"
    ftp.sendcmd("MKD d")
    assert err(ftp, "MDTM d") == "550 d: not a plain file"


def test_mfmt_sets_the_modification_time(server):
    ftp = server.login()
    path = make_file(server, "m")
    assert ftp.sendcmd("MFMT 20200102030405 m") == "213 Modify=20200102030405; m"
    assert os.stat(path).st_mtime == 1577934245
    assert err(ftp, "MFMT 2020 m") == "501 2020: Invalid argument"
    assert err(ftp, "MFMT 20201302030405 m") == "501 m: Invalid argument"
    assert err(ftp, "MFMT 20200102030405 nothere") == "550 nothere: No such file or directory"
    assert err(ftp, "MFMT 20200102030405") == "501 Invalid number of parameters"


def test_mff_modifies_facts(server):
    ftp = server.login()
    path = make_file(server, "facts file")
    reply = ftp.sendcmd("MFF modify=20200102030405;UNIX.mode=0600; facts file")
    assert reply == "213 modify=20200102030405;UNIX.mode=0600; facts file"
    st = os.stat(path)
    assert (st.st_mtime, st.st_mode & 0o777) == (1577934245, 0o600)
    assert err(ftp, "MFF size=1; facts file") == "504 Cannot modify fact 'size=1'"


def test_feat_lists_the_file_features(server):
    ftp = server.connect()
    lines = ftp.sendcmd("FEAT").splitlines()
    for feature in (" MDTM", " SIZE", " MFMT", " MFF modify;UNIX.group;UNIX.mode;", " HOST", " CLNT", " TVFS"):
        assert feature in lines


# -- control commands ----------------------------------------------------------------------------------------------
def test_opts_utf8(server):
    ftp = server.connect()
    assert ftp.sendcmd("OPTS UTF8 ON") == "200 UTF8 set to on"
    assert ftp.sendcmd("OPTS UTF8 off") == "200 UTF8 set to off"
    assert err(ftp, "OPTS UTF8 maybe") == "501 'OPTS UTF8' not understood"
    assert err(ftp, "OPTS FROB x") == "500 OPTS FROB not understood"
    assert err(ftp, "OPTS") == "501 Invalid number of parameters"


def test_clnt_is_acknowledged_before_login(server):
    ftp = server.connect()
    assert ftp.sendcmd("CLNT curl 8.0") == "200 OK"


def test_host_with_the_connected_address(server):
    ftp = server.connect()
    assert ftp.sendcmd("HOST 127.0.0.1") == "220 HOST command successful"
    assert err(ftp, "HOST 10.9.8.7") == "504 10.9.8.7: Unknown hostname provided"
    assert err(ftp, "HOST bad:name") == "501 bad:name: Invalid hostname provided"
    assert err(ftp, "HOST [::zz]") == "501 [::zz]: Invalid hostname provided"    # UseIPv6 off (ProFTPD 1.3.8)
    assert err(ftp, "HOST nobody.example") == "504 nobody.example: Unknown hostname provided"
    assert err(ftp, "HOST a b") == "500 'HOST' not understood"


def test_host_selects_the_server_by_alias_and_greets(ftpd):
    d = ftpd("ServerAlias ftp.example.com *.example.org\n")
    ftp = d.connect()
    assert ftp.sendcmd("HOST FTP.example.com").startswith("220 ProFTPD Server (proftpy test)")
    assert ftp.sendcmd("HOST www.example.org").startswith("220 ")
    ftp.login("alice", PASSWORDS["alice"])
    assert err(ftp, "HOST ftp.example.com") == "503 Bad sequence of commands"


def test_file_commands_need_login(server):
    ftp = server.connect()
    assert err(ftp, "MKD x") == "530 Please login with USER and PASS"
    assert not os.path.exists(server.home("alice") / "x")


# -- path safety ---------------------------------------------------------------------------------------------------
def test_dotdot_cannot_leave_the_root(server):
    ftp = server.login()
    ftp.sendcmd("CWD ../../../..")
    assert ftp.sendcmd("PWD") == '257 "/" is the current directory'
    assert ftp.sendcmd("MKD ../../escape") == '257 "/escape" - Directory successfully created'
    assert os.path.isdir(server.home("alice") / "escape")
    assert not os.path.exists(server.home("alice").parent.parent / "escape")


def test_overlong_paths_are_refused(server):
    ftp = server.login()
    name = "x" * 4096
    assert err(ftp, f"MKD {name}") == f"550 {name}: File name too long"
    assert err(ftp, f"DELE {name}") == f"550 {name}: File name too long"


def test_nul_in_a_command_touches_nothing(server):
    ftp = server.login()
    reply = err(ftp, "MKD a\0b")
    assert reply.startswith("501")
    assert os.listdir(server.home("alice")) == []


def test_symlinks_pointing_outside_stay_inside(server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    os.symlink(str(outside), server.home("alice") / "link")
    ftp = server.login()
    assert err(ftp, "DELE link/precious").startswith("550 link/precious: ")
    assert err(ftp, "RMD link").startswith("550 link: ")
    assert err(ftp, "MKD link/new").startswith("550 link/new: ")
    assert err(ftp, "CWD link").startswith("550 link: ")
    make_file(server, "f")
    ftp.sendcmd("RNFR f")
    assert err(ftp, "RNTO link/f").startswith("550 link/f: ")
    assert (outside / "precious").read_text() == "keep"
    assert sorted(os.listdir(outside)) == ["precious"]
    assert ftp.sendcmd("DELE link") == "250 DELE command successful"      # removes the link itself
    assert outside.is_dir()


# -- real clients --------------------------------------------------------------------------------------------------
def test_curl_quote_commands(server):
    make_file(server, "orig")
    url = f"ftp://127.0.0.1:{server.port}/"
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-u", f"alice:{PASSWORDS['alice']}", url,
                          "-Q", "MKD qdir", "-Q", "RNFR orig", "-Q", "RNTO qdir/moved", "-Q", "DELE qdir/moved",
                          "-Q", "RMD qdir"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert os.listdir(server.home("alice")) == []


def test_lftp_mkdir_mv_rm(server):
    make_file(server, "doc.txt")
    script = "mkdir box; mv doc.txt box/doc.txt; chmod 600 box/doc.txt; rm box/doc.txt; rmdir box; bye"
    out = subprocess.run(["lftp", "-u", f"alice,{PASSWORDS['alice']}", "-p", str(server.port),
                          "-e", "set cmd:fail-exit yes; set net:max-retries 1; " + script, "127.0.0.1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr + out.stdout
    assert os.listdir(server.home("alice")) == []


def test_lftp_chmod_sets_the_mode(server):
    path = make_file(server, "doc.txt")
    out = subprocess.run(["lftp", "-u", f"alice,{PASSWORDS['alice']}", "-p", str(server.port),
                          "-e", "set cmd:fail-exit yes; set net:max-retries 1; chmod 640 doc.txt; bye",
                          "127.0.0.1"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr + out.stdout
    assert os.stat(path).st_mode & 0o777 == 0o640



