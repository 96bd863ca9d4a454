"""READLINK's answer from the request's path and the stored link text, as ProFTPD 1.3.8's dir_readlink makes it
(checked side by side in tests/integration/test_sftp_readlink.py)."""

import pytest

from proftpy.modules.sftp_fxp import link_answer

JAIL = "/srv/home/bob"


@pytest.mark.parametrize("path, target, jail, expected", [
    ("rel", "a.txt", JAIL, "/a.txt"),
    ("/d/rel", "a.txt", JAIL, "/d/a.txt"),
    ("d/up", "../../../x", JAIL, "/x"),                  # `..` stops at the top
    ("l", f"{JAIL}/a.txt", JAIL, "/a.txt"),
    ("l", f"{JAIL}//d/../a.txt", JAIL, "/a.txt"),
    ("l", JAIL, JAIL, JAIL),                             # the chroot itself: no `/` after the prefix
    ("l", "/x", JAIL, "/x"),                             # shorter than the chroot: as stored
    ("l", "/etc/passwd", JAIL, "/etc/passwd"),
    (f"{JAIL}/l", "a.txt", JAIL, "./a.txt"),             # a relative one landing in the chroot's own path
    ("rel", "a.txt", None, "a.txt"),
    ("/rel", "a.txt", None, "a.txt"),
    ("/d/rel", "a.txt", None, "/d/a.txt"),
    ("d/up", "../a.txt", None, "a.txt"),
    ("d/l", "/abs", None, "/abs"),
])
def test_link_answer(path, target, jail, expected):
    assert link_answer(path, target, jail) == expected
