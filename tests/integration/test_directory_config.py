"""<Directory> settings apply by their configured (real) path also inside a chroot."""

import ftplib
import io

import pytest


def test_directory_setting_applies_under_default_root(ftpd):
    root = "DefaultRoot ~"
    d = ftpd(f"{root}\nAllowOverwrite off\n<Directory {{home}}/alice/up>\nAllowOverwrite on\n</Directory>\n")
    up = d.home("alice") / "up"
    up.mkdir()
    import os
    os.chown(up, d.uid("alice"), d.users["alice"][1])
    with d.login("alice") as ftp:
        ftp.storbinary("STOR up/f", io.BytesIO(b"1"))
        ftp.storbinary("STOR up/f", io.BytesIO(b"22"))        # allowed by the <Directory>
        ftp.storbinary("STOR g", io.BytesIO(b"1"))
        with pytest.raises(ftplib.error_perm, match="^550 g: Overwrite permission denied$"):
            ftp.storbinary("STOR g", io.BytesIO(b"2"))
    assert (up / "f").read_bytes() == b"22"
