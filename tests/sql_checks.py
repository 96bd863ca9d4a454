"""What mod_sql's tests check of every backend (tests/integration/test_mod_sql.py: SQLite; test_mod_sql_servers.py:
PostgreSQL and MariaDB), the same users in each: carol (crypt, carol-pw, in sqlstaff as her primary group and in
sqlextra) with her home under `sqlhome`."""

from __future__ import annotations

import ftplib
import io
import os
from pathlib import Path

import pytest

from conftest import error_reply

# SQLLog of PASS (a counter) and of transfers (a row each), for `transfers` below
SQLLOG = """\
SQLNamedQuery count UPDATE "count = count + 1 WHERE userid = '%u'" users
SQLNamedQuery xfer INSERT "'%u', '%m', '%f', %b, '%s'" xferlog
SQLLog PASS count
SQLLog RETR,STOR xfer
SQLLog ERR_RETR xfer
"""


# SQLUserInfo custom:/by-name/by-id's queries (`custom_user_info`)
USER_QUERIES = """\
SQLNamedQuery by-name SELECT "userid, passwd, uid, gid, homedir, shell FROM users WHERE userid = '%{0}'"
SQLNamedQuery by-id SELECT "userid, passwd, uid, gid, homedir, shell FROM users WHERE uid = %{0}"
"""


def custom_user_info(conf: str) -> str:
    """`conf` with SQLUserInfo custom:/by-name/by-id (USER_QUERIES) instead of the users table's columns."""
    return conf.replace("SQLUserInfo users userid passwd uid gid homedir shell", "SQLUserInfo custom:/by-name/by-id")


def logs_in_as_its_uid(d, home: Path, uid: int, gid: int) -> None:
    """carol's USER and PASS replies; her upload is hers, in her home (no chroot)."""
    with d.connect() as ftp:
        assert ftp.sendcmd("USER carol") == "331 Password required for carol"
        assert ftp.sendcmd("PASS carol-pw") == "230 User carol logged in"
        ftp.storbinary("STOR up.txt", io.BytesIO(b"data"))
        assert ftp.pwd() == str(home)
    st = os.stat(home / "up.txt")
    assert (st.st_uid, st.st_gid) == (uid, gid)


def chrooted_by_group(d) -> None:
    """A `DefaultRoot ~ GROUP` that names one of carol's groups: chrooted, and LIST names her primary group."""
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.pwd() == "/"
        ftp.storbinary("STOR c.txt", io.BytesIO(b"x"))
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
    assert "-rw-r--r--   1 carol    sqlstaff" in "\n".join(lines)


def shows_info(d) -> None:
    """SQLShowInfo PASS "230" "You've logged on %{getcount} times, %u" and ERR_CWD "550" "no such dir for %u": PASS's
    lines lead its 230 (ProFTPD's mod_auth adds the 230 text after mod_sql's POST_CMD); others follow."""
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        assert ftp.sendcmd("PASS carol-pw") == "230-You've logged on 0 times, carol\n230 User carol logged in"
        assert error_reply(ftp, "CWD nowhere") == "550-nowhere: No such file or directory\n550 no such dir for carol"


def transfers(d, name: str) -> None:
    """carol's STOR and RETR of `name`, and a RETR of a file that is not there: what SQLLog RETR,STOR and
    ERR_RETR record."""
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        ftp.storbinary(f"STOR {name}", io.BytesIO(b"12345"))
        ftp.retrbinary(f"RETR {name}", lambda b: None)
        with pytest.raises(ftplib.error_perm):
            ftp.retrbinary("RETR missing", lambda b: None)
