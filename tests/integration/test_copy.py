"""mod_copy against the real daemon, driven by ftplib, curl and lftp: SITE CPFR/CPTO and SITE COPY of files, links
and trees, the TransferLog lines, AllowOverwrite, <Limit>, PathDenyFilter, CopyEngine, the chroot, a tree copied into
itself, and configuration errors."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from conftest import PASSWORDS, make_file, refused_config
from conftest import error_reply as err

from proftpy.log import xferlog


def tree(d, user: str = "alice") -> None:
    """dir/{a.txt, sub dir/b.bin, link -> a.txt} in the user's home, owned by the user."""
    make_file(d, "dir/a.txt", b"alpha\n", user)
    make_file(d, "dir/sub dir/b.bin", os.urandom(300_000), user)
    os.symlink("a.txt", d.home(user) / "dir" / "link")
    os.lchown(d.home(user) / "dir" / "link", d.uid(user), d.users[user][1])


@pytest.fixture
def server(ftpd):
    return ftpd("DefaultRoot ~\nUmask 027\nTransferLog {dir}/xferlog\n")


def test_cpfr_cpto_copies_a_file_with_the_sessions_umask(server):
    src = make_file(server, "f.txt", b"some data\n" * 1000)
    os.chmod(src, 0o644)
    ftp = server.login()
    assert ftp.sendcmd("SITE CPFR f.txt") == "350 File or directory exists, ready for destination name"
    assert ftp.sendcmd("SITE CPTO g.txt") == "250 Copy successful"
    copy = server.home("alice") / "g.txt"
    assert copy.read_bytes() == b"some data\n" * 1000
    assert stat.S_IMODE(copy.stat().st_mode) == 0o640 and copy.stat().st_uid == server.uid("alice")
    assert err(ftp, "SITE CPTO h.txt") == "503 Bad sequence of commands"      # the source went with the CPTO
    line = xferlog.parse(open(server.dir / "xferlog").read().splitlines()[-1])
    assert (line["filename"], line["bytes"], line["direction"], line["completion"]) == (
        str(copy), "10000", "d", "c")


def test_site_copy_and_its_replies(server):
    make_file(server, "f.txt", b"x" * 10)
    ftp = server.login()
    assert ftp.sendcmd("SITE COPY f.txt c.txt") == "200 SITE COPY command successful"
    assert (server.home("alice") / "c.txt").read_bytes() == b"x" * 10
    assert err(ftp, "SITE COPY f.txt") == "500 'SITE COPY' not understood"
    assert err(ftp, "SITE COPY f.txt c.txt") == "550 COPY: Permission denied"           # AllowOverwrite off
    assert err(ftp, "SITE COPY nothere d.txt") == "550 COPY: No such file or directory"
    assert err(ftp, "SITE CPFR nothere") == "550 /nothere: No such file or directory"
    lines = ftp.sendcmd("SITE HELP").splitlines()
    assert lines[3:5] == [" CPFR <sp> pathname", " CPTO <sp> pathname"]      # below mod_ratio's two lines
    assert " SITE COPY" in ftp.sendcmd("FEAT").splitlines()


def test_a_tree_is_copied_with_its_links_and_each_file_logged(server):
    tree(server)
    ftp = server.login()
    ftp.sendcmd("SITE CPFR dir")
    assert ftp.sendcmd("SITE CPTO new/copy") == "250 Copy successful"
    home = server.home("alice")
    assert (home / "new/copy/sub dir/b.bin").read_bytes() == (home / "dir/sub dir/b.bin").read_bytes()
    assert os.readlink(home / "new/copy/link") == "a.txt"
    assert stat.S_IMODE((home / "new/copy/sub dir").stat().st_mode) == 0o750
    names = sorted(xferlog.parse(line)["filename"] for line in open(server.dir / "xferlog"))
    assert names == [str(home / "new/copy/a.txt"), str(home / "new/copy/sub_dir/b.bin")]   # spaces as `_`


def test_a_copy_onto_itself_keeps_the_data(ftpd):
    d = ftpd("DefaultRoot ~\nAllowOverwrite on\n")
    make_file(d, "f.txt", b"precious")
    ftp = d.login()
    ftp.sendcmd("SITE CPFR f.txt")
    assert ftp.sendcmd("SITE CPTO /f.txt") == "250 Copy successful"
    assert ftp.sendcmd("SITE COPY f.txt ./f.txt") == "200 SITE COPY command successful"
    assert (d.home("alice") / "f.txt").read_bytes() == b"precious"


def test_allow_overwrite_on_replaces_a_file_but_not_a_directory(ftpd):
    d = ftpd("DefaultRoot ~\nAllowOverwrite on\n")
    make_file(d, "f.txt", b"new")
    make_file(d, "old.txt", b"old and longer")
    make_file(d, "dir/x", b"")
    ftp = d.login()
    assert ftp.sendcmd("SITE COPY f.txt old.txt") == "200 SITE COPY command successful"
    assert (d.home("alice") / "old.txt").read_bytes() == b"new"
    assert err(ftp, "SITE COPY f.txt dir") == "550 COPY: Is a directory"


def test_a_tree_is_not_copied_into_itself(server):
    tree(server)
    ftp = server.login()
    ftp.sendcmd("SITE CPFR dir")
    assert err(ftp, "SITE CPTO dir/sub dir/again") == "550 CPTO: Invalid argument"
    assert not (server.home("alice") / "dir/sub dir/again").exists()
    assert err(ftp, "SITE COPY dir /dir") == "550 COPY: Invalid argument"


def test_inside_a_tree_allow_overwrite_still_holds(server):
    tree(server)
    make_file(server, "copy/a.txt", b"keep me")
    ftp = server.login()
    assert err(ftp, "SITE COPY dir copy") == "550 COPY: Permission denied"
    assert (server.home("alice") / "copy/a.txt").read_bytes() == b"keep me"


def test_paths_stay_inside_the_session_root(server, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours")
    make_file(server, "f.txt", b"mine")
    os.symlink("/etc", server.home("alice") / "etc-link")
    ftp = server.login()
    assert err(ftp, "SITE CPFR ../../outside.txt") == "550 /outside.txt: No such file or directory"
    assert ftp.sendcmd("SITE COPY f.txt ../../../escaped.txt") == "200 SITE COPY command successful"
    assert (server.home("alice") / "escaped.txt").read_bytes() == b"mine"
    assert ftp.sendcmd("SITE COPY etc-link etc2") == "200 SITE COPY command successful"
    assert os.readlink(server.home("alice") / "etc2") == "/etc"      # the link, not what it names


def test_limits_and_filters(ftpd):
    d = ftpd("DefaultRoot ~\nPathDenyFilter \\.exe$\n<Directory ~/ro>\n<Limit WRITE>\nDenyAll\n</Limit>\n</Directory>\n"
             "<Directory ~/top/secret>\n<Limit READ>\nDenyAll\n</Limit>\n</Directory>\n"
             "<Limit SITE_CPFR>\nDenyUser bob\n</Limit>\n")
    make_file(d, "f.txt", b"data")
    make_file(d, "ro/keep", b"")
    make_file(d, "top/secret/s.txt", b"secret")
    ftp = d.login()
    assert err(ftp, "SITE COPY f.txt x.exe") == "550 COPY: Operation not permitted"
    assert err(ftp, "SITE COPY f.txt ro/f.txt") == "550 ro/f.txt: Operation not permitted"
    ftp.sendcmd("SITE CPFR f.txt")
    assert err(ftp, "SITE CPTO ro/f.txt") == "550 /ro/f.txt: Operation not permitted"
    assert err(ftp, "SITE COPY top/secret/s.txt s.txt") == "550 top/secret/s.txt: Operation not permitted"
    assert err(ftp, "SITE COPY top out") == "550 COPY: Operation not permitted"        # checked inside a tree
    assert err(ftp, "SITE CPFR top/secret/s.txt") == "550 top/secret/s.txt: Operation not permitted"
    assert not (d.home("alice") / "s.txt").exists() and not (d.home("alice") / "ro/f.txt").exists()
    assert not (d.home("alice") / "out/secret/s.txt").exists()
    make_file(d, "g.txt", b"", "bob")
    assert err(d.login("bob"), "SITE CPFR g.txt") == "550 g.txt: Operation not permitted"


def test_copy_engine_off(ftpd):
    d = ftpd("DefaultRoot ~\nCopyEngine off\n")
    make_file(d, "f.txt")
    ftp = d.login()
    assert err(ftp, "SITE CPFR f.txt") == "500 'SITE CPFR' not understood"
    assert err(ftp, "SITE COPY f.txt g.txt") == "500 'SITE COPY' not understood"
    assert " SITE COPY" not in ftp.sendcmd("FEAT").splitlines()
    assert "CPFR" not in ftp.sendcmd("SITE HELP")


def test_curl_and_lftp_copy(server):
    make_file(server, "f.txt", b"from curl and lftp")
    url = f"ftp://127.0.0.1:{server.port}/"
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-u", f"alice:{PASSWORDS['alice']}", url,
                          "-Q", "SITE CPFR f.txt", "-Q", "SITE CPTO by-curl.txt"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(["lftp", "-c", f"set cmd:fail-exit yes; open -u alice,{PASSWORDS['alice']} {url}; "
                          "site COPY f.txt by-lftp.txt; quote SITE CPFR f.txt; quote SITE CPTO by-lftp2.txt"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in ("by-curl.txt", "by-lftp.txt", "by-lftp2.txt"):
        assert (server.home("alice") / name).read_bytes() == b"from curl and lftp"
    out = subprocess.run(["lftp", "-c", f"set cmd:fail-exit yes; open -u alice,{PASSWORDS['alice']} {url}; "
                          "site COPY f.txt by-lftp.txt"], capture_output=True, text=True, timeout=60)
    assert "550 COPY: Permission denied" in out.stdout + out.stderr         # lftp's `site` prints the reply


@pytest.mark.parametrize("line, message", [
    ("CopyOptions Bogus", "unknown CopyOption 'Bogus'"),
    ("CopyOptions", "wrong number of parameters"),
    ("CopyEngine maybe", "t.conf:2: CopyEngine: expected on or off, got 'maybe'"),
    ("<Directory /tmp>\nCopyEngine off\n</Directory>", "t.conf:3: CopyEngine is not allowed in <Directory> context"),
])
def test_configuration_errors(tmp_path, line, message):
    assert message in refused_config(tmp_path, line)


def test_each_file_and_directory_of_a_tree_is_logged_as_a_command(ftpd):
    d = ftpd('DefaultRoot ~\nLogFormat cmds "%r %s"\nExtendedLog {dir}/ext.log ALL cmds\n')
    tree(d)
    ftp = d.login()
    ftp.sendcmd("SITE CPFR dir")
    ftp.sendcmd("SITE CPTO copy")
    lines = (d.dir / "ext.log").read_text().splitlines()
    assert lines[-1] == "SITE CPTO copy 250"            # the tree's made-up commands first, in directory order
    assert sorted(lines[-6:-1]) == ["MKD /copy 257", "MKD /copy/sub dir 257", "SITE COPY /dir/a.txt /copy/a.txt 200",
                                    "SITE COPY /dir/sub dir/b.bin /copy/sub dir/b.bin 200", "SITE CPFR dir 350"]
