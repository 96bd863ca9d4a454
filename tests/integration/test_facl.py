"""mod_facl on the real daemon (ftplib): MLSx's perm fact and HideNoAccess honour POSIX ACLs (set with Debian's
setfacl), and `FACLEngine off` answers from the mode bits alone, as ProFTPD without mod_facl."""

from __future__ import annotations

import ftplib
import os
import re
import subprocess

import pytest

from conftest import IS_ROOT, make_file, refused_config

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="files of another owner and ACLs for alice need root")


def perm(ftp, name: str) -> str:
    facts = ftp.sendcmd(f"MLST {name}").splitlines()[1]
    return re.search(r"perm=([a-z]*);", facts).group(1)


@pytest.mark.parametrize("engine, acl_counts", [("", True), ("FACLEngine off\n", False)])
def test_perm_fact_and_hidden_files(ftpd, engine, acl_counts):
    """bob's acl.txt (0600) has an ACL that lets alice read it: by default the perm fact says so and HideNoAccess
    (in hiding/) shows it; with FACLEngine off the mode bits say no (what ProFTPD says without mod_facl), while the kernel
    still lets alice read it. bob's secret.txt (0600, no ACL) is hers in neither."""
    d = ftpd("DefaultRoot ~\n" + engine + "<Directory ~/hiding>\nHideNoAccess on\n</Directory>\n")
    _acl_tree(d)
    ftp = d.login()
    assert perm(ftp, "acl.txt") == ("adfr" if acl_counts else "dfr")        # mod_facts' words for a file
    assert perm(ftp, "secret.txt") == "dfr"
    assert ftp.retrbinary("RETR acl.txt", lambda b: None).startswith("226")
    with pytest.raises(ftplib.error_perm, match="Permission denied"):
        ftp.retrbinary("RETR secret.txt", lambda b: None)
    assert sorted(ftp.nlst("hiding")) == (["hiding/acl.txt"] if acl_counts else [])


def _acl_tree(d) -> None:
    """acl.txt and secret.txt, in the home and in hiding/."""
    for name in ("acl.txt", "secret.txt", "hiding/acl.txt", "hiding/secret.txt"):
        path = make_file(d, name, b"bob's")
        os.chown(path, d.uid("bob"), d.users["bob"][1])
        os.chmod(path, 0o600)
        if name.endswith("acl.txt"):
            subprocess.run(["setfacl", "-m", f"u:{d.uid('alice')}:r", path], check=True)


@pytest.mark.parametrize("line, message", [
    ("FACLEngine maybe", "t.conf:2:"),
    ("FACLEngine", "t.conf:2:"),
    ("<VirtualHost 127.0.0.2>\nFACLEngine off\n</VirtualHost>", "t.conf:3:"),
])
def test_configuration_errors(tmp_path, line, message):
    assert message in refused_config(tmp_path, line)
