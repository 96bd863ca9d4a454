"""Anonymous logins: `<Anonymous dir>` with User/Group, the `anonymous`/`ftp` aliases, AnonRequirePassword, the
331/230 texts, and the anonymous root as the only thing the session sees."""

import ftplib
import io
import os

import psutil
import pytest

from conftest import IS_ROOT, PASSWORDS, make_users

FTP_UID, FTP_GID = (2310, 2311) if IS_ROOT else (os.getuid(), os.getgid())
FTP_PASSWORD = "ftp-secret"

ANON = """
<Anonymous {dir}/anon>
  User ftp
  Group ftpanon
  UserAlias anonymous ftp
  RequireValidShell off
{extra}
</Anonymous>
"""


@pytest.fixture
def anon_ftpd(ftpd, tmp_path):
    """ftpd with an `ftp` account (shell /usr/sbin/nologin) and group `ftpanon` added to the auth files, an
    anonymous root holding pub/readme.txt, and the <Anonymous> block above."""
    from proftpy.auth.crypt import crypt_hash

    users = make_users(tmp_path)
    with open(tmp_path / "ftpd.passwd", "a") as f:
        f.write(f"ftp:{crypt_hash(FTP_PASSWORD, 'sha512')}:{FTP_UID}:{FTP_UID}:anon:{tmp_path}/anon:"
                "/usr/sbin/nologin\n")
    with open(tmp_path / "ftpd.group", "a") as f:
        f.write(f"ftpanon:x:{FTP_GID}:\n")
    (tmp_path / "anon" / "pub").mkdir(parents=True)
    (tmp_path / "anon" / "pub" / "readme.txt").write_text("hello anonymous\n")

    def start(extra: str = "", config: str = ""):
        d = ftpd(ANON.replace("{extra}", extra) + config)
        d.users = users
        return d
    return start


def session_status(d) -> dict[str, str]:
    (child,) = psutil.Process(d.master_pid).children()
    with open(f"/proc/{child.pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    status["root"] = os.readlink(f"/proc/{child.pid}/root")
    return status


@pytest.mark.parametrize("name", ["anonymous", "ftp"])
def test_anonymous_texts(anon_ftpd, name):
    d = anon_ftpd()
    with d.connect() as ftp:
        assert ftp.sendcmd(f"USER {name}") == \
            "331 Anonymous login ok, send your complete email address as your password"
        assert ftp.sendcmd("PASS someone@example.org") == "230 Anonymous access granted, restrictions apply"


def test_anonymous_sees_only_its_root(anon_ftpd):
    d = anon_ftpd()
    with d.connect() as ftp:
        ftp.login("anonymous", "me@example.org")
        assert ftp.pwd() == "/"
        assert ftp.nlst() == ["pub"]
        ftp.cwd("../../..")
        assert ftp.nlst() == ["pub"]
        out = io.BytesIO()
        ftp.retrbinary("RETR /../pub/readme.txt", out.write)
        assert out.getvalue() == b"hello anonymous\n"
        for path in ("../ftpd.passwd", "/../../ftpd.passwd", str(d.dir / "ftpd.passwd"), "/etc/passwd"):
            with pytest.raises(ftplib.error_perm, match=r"^550 .*No such file or directory$"):
                ftp.retrbinary(f"RETR {path}", out.write)
        with pytest.raises(ftplib.error_perm, match=r"^550 "):
            ftp.cwd(str(d.home("alice")))


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_anonymous_session_is_chrooted_as_user_and_group(anon_ftpd):
    d = anon_ftpd()
    with d.connect() as ftp:
        ftp.login("ftp", "me@example.org")
        status = session_status(d)
    assert status["root"] == str(d.dir / "anon")
    assert status["Uid"].split() == [str(FTP_UID)] * 4
    assert status["Gid"].split() == [str(FTP_GID)] * 4        # Group inside <Anonymous> wins over the primary gid
    assert status["Groups"].split() == [str(FTP_GID)]
    assert status["NoNewPrivs"].strip() == "1"


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_anonymous_cannot_write_a_root_owned_tree(anon_ftpd):
    d = anon_ftpd()
    with d.connect() as ftp:
        ftp.login("anonymous", "me@example.org")
        with pytest.raises(ftplib.error_perm, match=r"^550 .*Permission denied$"):
            ftp.storbinary("STOR pub/new.txt", io.BytesIO(b"x"))
    assert not (d.dir / "anon" / "pub" / "new.txt").exists()


def test_anon_require_password(anon_ftpd):
    d = anon_ftpd("  AnonRequirePassword on")
    with d.connect() as ftp:
        assert ftp.sendcmd("USER anonymous") == "331 Password required for anonymous"
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.sendcmd("PASS me@example.org")
        ftp.sendcmd("USER anonymous")
        assert ftp.sendcmd(f"PASS {FTP_PASSWORD}") == "230 Anonymous access granted, restrictions apply"
        assert ftp.nlst() == ["pub"]


def test_real_users_are_not_anonymous(anon_ftpd):
    d = anon_ftpd(config="DefaultRoot ~\n")
    (d.home("alice") / "mine.txt").write_text("x")
    with d.login("alice") as ftp:
        assert ftp.nlst() == ["mine.txt"]


def test_anonymous_with_missing_account_is_refused(ftpd):
    d = ftpd("<Anonymous {dir}>\n  User nosuchuser\n</Anonymous>\n")
    with d.connect() as ftp:
        assert ftp.sendcmd("USER nosuchuser").startswith("331 Anonymous login ok")
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.sendcmd("PASS me@example.org")


def test_access_grant_msg_inside_anonymous(anon_ftpd):
    d = anon_ftpd('  AccessGrantMsg "Guest login ok, access restrictions apply (%u)."')
    with d.connect() as ftp:
        assert ftp.login("anonymous", "x@y") == "230 Guest login ok, access restrictions apply (anonymous)."


def test_alice_password_still_required_for_alice(anon_ftpd):
    d = anon_ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("alice", "not-" + PASSWORDS["alice"])


def test_a_missing_robots_txt_keeps_robots_out_unless_allowed(anon_ftpd, tmp_path):
    """ProFTPD 1.3.8's AnonAllowRobots off (the default): RETR of the anonymous root's robots.txt, when there is
    none, sends one that disallows everything; a real one is sent as it is; other sessions see nothing of it."""
    d = anon_ftpd()
    no_robots = b"User-agent: *\nDisallow: /\n"
    with d.connect() as ftp:
        ftp.login("anonymous", "guest@example.org")
        got = io.BytesIO()
        assert ftp.retrbinary("RETR /pub/../robots.txt", got.write) == "226 Transfer complete"
        assert got.getvalue() == no_robots
        lines = []
        ftp.retrlines("RETR robots.txt", lines.append)
        assert lines == ["User-agent: *", "Disallow: /"]
        ftp.voidcmd("TYPE I")
        with pytest.raises(ftplib.error_perm, match="^550 robots.txt: No such file or directory$"):
            ftp.size("robots.txt")
        ftp.cwd("pub")
        with pytest.raises(ftplib.error_perm, match="^550 robots.txt: No such file or directory$"):
            ftp.retrbinary("RETR robots.txt", got.write)
    (tmp_path / "anon" / "robots.txt").write_bytes(b"User-agent: *\nAllow: /\n")
    with d.connect() as ftp:
        ftp.login("anonymous", "guest@example.org")
        got = io.BytesIO()
        ftp.retrbinary("RETR robots.txt", got.write)
        assert got.getvalue() == b"User-agent: *\nAllow: /\n"


def test_anon_allow_robots_on_sends_nothing_made_up(anon_ftpd):
    d = anon_ftpd("  AnonAllowRobots on")
    with d.connect() as ftp:
        ftp.login("anonymous", "guest@example.org")
        with pytest.raises(ftplib.error_perm, match="^550 robots.txt: No such file or directory$"):
            ftp.retrbinary("RETR robots.txt", io.BytesIO().write)
    with d.login("alice") as ftp:
        with pytest.raises(ftplib.error_perm, match="^550 robots.txt: No such file or directory$"):
            ftp.retrbinary("RETR robots.txt", io.BytesIO().write)


def test_auth_alias_only_in_anonymous(anon_ftpd):
    """As ProFTPD 1.3.8: the anonymous account's own name no longer reaches the block (a normal login, refused), and
    every other name that is not an alias is refused on the server too."""
    d = anon_ftpd("  AuthAliasOnly on", "MaxLoginAttempts 5\n")
    with d.connect() as ftp:
        assert ftp.sendcmd("USER ftp") == "331 Password required for ftp"
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.sendcmd("PASS " + FTP_PASSWORD)
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("alice", PASSWORDS["alice"])
        assert ftp.login("anonymous", "guest@example.org") == "230 Anonymous access granted, restrictions apply"
