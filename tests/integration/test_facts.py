"""MLSD/MLST and OPTS MLST against the real daemon (ftplib, lftp)."""

from __future__ import annotations

import ftplib
import os
import re
import subprocess

import pytest

from conftest import IS_ROOT, PASSWORDS
from test_ls import make_tree, own

FACT_ORDER = ["modify", "perm", "size", "type", "unique", "UNIX.group", "UNIX.groupname", "UNIX.mode",
              "UNIX.owner", "UNIX.ownername"]


@pytest.fixture
def server(ftpd):
    def start(extra: str = ""):
        d = ftpd(extra + "\nDefaultRoot ~")
        make_tree(d.home("alice"))
        return d
    return start


def mlsd(ftp, path=""):
    """ftplib.mlsd as a dict (ftplib lower-cases fact names)."""
    return dict(ftp.mlsd(path))


def test_mlsd_facts(server):
    d = server()
    ftp = d.login("alice")
    entries = mlsd(ftp)
    assert set(entries) == {".", "..", ".hidden", "a.txt", "b.txt", "c.bin", "dir", "link"}
    assert entries["."]["type"] == "cdir" and entries[".."]["type"] == "pdir"
    assert entries["dir"]["type"] == "dir" and "size" not in entries["dir"]
    a = entries["a.txt"]
    st = os.stat(d.home("alice") / "a.txt")
    assert a["type"] == "file" and a["size"] == "5"
    assert a["modify"] == "20010909014640"
    assert a["unique"] == f"{st.st_dev:X}U{st.st_ino:X}"
    assert a["unix.mode"] == "0644"
    assert a["unix.owner"] == str(st.st_uid) and a["unix.group"] == str(st.st_gid)
    if IS_ROOT:
        assert a["unix.ownername"] == "alice" and a["unix.groupname"] == "ftpusers"
    assert a["perm"] == "adfrw"
    assert entries["dir"]["perm"] == "flcdmpe"
    assert entries["link"]["type"] == "OS.unix=symlink"
    assert entries["link"]["unique"] == a["unique"]          # a link's unique fact is its target's


def test_mlsd_line_order_follows_mod_facts(server):
    ftp = server().login("alice")
    lines = []
    ftp.retrlines("MLSD", lines.append)
    line = next(l for l in lines if l.endswith("; a.txt"))
    assert [f.split("=")[0] for f in line.split(" ")[0].split(";") if f] == FACT_ORDER


def test_perm_reflects_access_of_the_session_user(server):
    d = server()
    os.chmod(d.home("alice") / "b.txt", 0o444)
    ftp = d.login("alice")
    if IS_ROOT or os.geteuid() != 0:
        assert mlsd(ftp)["b.txt"]["perm"] == "adfr"


def test_mlsd_errors(server):
    ftp = server().login("alice")
    with pytest.raises(ftplib.error_perm, match="^550 'a.txt' is not a directory$"):
        mlsd(ftp, "a.txt")
    with pytest.raises(ftplib.error_perm, match="^550 nothere: No such file or directory$"):
        mlsd(ftp, "nothere")


def test_mlsd_of_subdirectory(server):
    ftp = server().login("alice")
    entries = mlsd(ftp, "dir")
    assert set(entries) == {".", "..", "inner.txt", "sub"}
    assert entries["inner.txt"]["size"] == "5"


def test_mlst(server):
    ftp = server().login("alice")
    lines = ftp.sendcmd("MLST a.txt").split("\n")
    assert lines[0] == "250-Start of list for a.txt"
    assert lines[-1] == "250 End of list"
    assert re.fullmatch(r" modify=20010909014640;perm=adfrw;size=5;type=file;unique=[0-9A-F]+U[0-9A-F]+;"
                        r"UNIX\.group=\d+;UNIX\.groupname=[^;]+;UNIX\.mode=0644;UNIX\.owner=\d+;"
                        r"UNIX\.ownername=[^;]+; /a\.txt", lines[1])
    lines = ftp.sendcmd("MLST").split("\n")
    assert lines[0] == "250-Start of list for /" and ";type=dir;" in lines[1] and lines[1].endswith("; /")
    ftp.cwd("dir")
    assert ftp.sendcmd("MLST sub").split("\n")[1].endswith("; /dir/sub")
    with pytest.raises(ftplib.error_perm, match="^550 'nothere' cannot be listed$"):
        ftp.sendcmd("MLST nothere")


def test_opts_mlst_chooses_facts(server):
    ftp = server().login("alice")
    assert ftp.sendcmd("OPTS MLST size;type;bogus;") == "200 MLST OPTS size;type;"
    assert ftp.sendcmd("MLST a.txt").split("\n")[1] == " size=5;type=file; /a.txt"
    lines = []
    ftp.retrlines("MLSD", lines.append)
    assert "size=5;type=file; a.txt" in lines
    assert ftp.sendcmd("OPTS MLST") == "200 MLST OPTS"
    assert ftp.sendcmd("MLST a.txt").split("\n")[1] == "  /a.txt"


def test_feat_advertises_mlst(server):
    ftp = server().login("alice")
    feat = ftp.sendcmd("FEAT").split("\n")
    assert (" MLST modify*;perm*;size*;type*;unique*;UNIX.group*;UNIX.groupname*;UNIX.mode*;UNIX.owner*;"
            "UNIX.ownername*;") in feat
    assert " TVFS" in feat


def mlst_feat(ftp) -> str:
    return next(line for line in ftp.sendcmd("FEAT").split("\n") if line.startswith(" MLST "))


def test_feat_stars_the_facts_opts_mlst_chose(server):
    ftp = server().login("alice")
    ftp.sendcmd("OPTS MLST type;size;")
    assert mlst_feat(ftp) == (" MLST modify;perm;size*;type*;unique;UNIX.group;UNIX.groupname;UNIX.mode;"
                              "UNIX.owner;UNIX.ownername;")
    ftp.sendcmd("OPTS MLST")
    assert "*" not in mlst_feat(ftp)


def test_facts_default_until_opts_mlst(server):
    ftp = server("FactsDefault Size unix.MODE").login("alice")
    assert mlst_feat(ftp) == (" MLST modify;perm;size*;type;unique;UNIX.group;UNIX.groupname;UNIX.mode*;"
                              "UNIX.owner;UNIX.ownername;")
    assert ftp.sendcmd("MLST a.txt").split("\n")[1] == " size=5;UNIX.mode=0644; /a.txt"
    assert mlsd(ftp)["a.txt"] == {"size": "5", "unix.mode": "0644"}
    ftp.sendcmd("OPTS MLST type;")
    assert ftp.sendcmd("MLST a.txt").split("\n")[1] == " type=file; /a.txt"


def test_facts_advertise_off_hides_the_features_not_the_commands(server):
    ftp = server("FactsAdvertise off").login("alice")
    feat = ftp.sendcmd("FEAT").split("\n")
    assert not any(line.startswith((" MLST", " MFF", " MFMT", " TVFS")) for line in feat)
    assert " SIZE" in feat and " MDTM" in feat
    assert ftp.sendcmd("MLST a.txt").startswith("250-")
    assert ftp.sendcmd("MFMT 20200102030405 a.txt") == "213 Modify=20200102030405; a.txt"


def test_facts_options_no_names(server):
    ftp = server("FactsOptions NoNames").login("alice")
    a = mlsd(ftp)["a.txt"]
    assert "unix.ownername" not in a and "unix.groupname" not in a and "unix.owner" in a


def test_mlsd_does_not_leave_the_root(server):
    d = server()
    os.symlink("/", d.home("alice") / "top")
    own(d.home("alice"))
    ftp = d.login("alice")
    assert "a.txt" in mlsd(ftp, "top")          # "/" inside the session is the home
    assert ".." in mlsd(ftp, "/") and mlsd(ftp, "/")[".."]["unique"] == mlsd(ftp, "/")["."]["unique"]


def test_lftp_uses_mlsd(server):
    d = server()
    cmd = ["lftp", "-c", "set net:max-retries 1; set net:timeout 10; set ftp:use-mlsd on; "
           f"open -u alice,{PASSWORDS['alice']} -p {d.port} 127.0.0.1; debug 5; cls -l dir"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "MLSD" in out.stderr
    assert "inner.txt" in out.stdout and "sub" in out.stdout
