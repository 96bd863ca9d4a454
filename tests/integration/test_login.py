"""Logging in with USER/PASS against an AuthUserFile, as a real client does."""

import ftplib
import os

import pytest

from conftest import PASSWORDS


def test_login_and_pwd(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        assert ftp.getwelcome() == "220 ProFTPD Server (proftpy test) [127.0.0.1]"
        assert ftp.sendcmd("USER alice") == "331 Password required for alice"
        assert ftp.sendcmd("PASS " + PASSWORDS["alice"]) == "230 User alice logged in"


def test_wrong_password_gets_login_incorrect(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("alice", "wrong")


def test_unknown_user_gets_the_same_reply(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("nobody-here", "wrong")


def test_pass_before_user(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^503 Login with USER first$"):
            ftp.sendcmd("PASS x")


def test_max_login_attempts_disconnects(ftpd):
    d = ftpd("MaxLoginAttempts 2\n")
    with d.connect() as ftp:
        for _ in range(2):
            with pytest.raises(ftplib.error_perm, match="^530"):
                ftp.login("alice", "wrong")
        with pytest.raises((EOFError, ConnectionError, ftplib.error_temp)):
            ftp.sendcmd("NOOP")


def test_commands_need_login(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Please login with USER and PASS$"):
            ftp.sendcmd("PWD")


def test_access_grant_msg(ftpd):
    d = ftpd('AccessGrantMsg "Welcome, %u"\n')
    with d.connect() as ftp:
        assert ftp.login("bob", PASSWORDS["bob"]) == "230 Welcome, bob"


def test_login_timeout(ftpd):
    d = ftpd("TimeoutLogin 1\n")
    with d.connect() as ftp:
        line = ftp.getline()   # the timeout reply arrives unasked
        assert line == "421 Login timeout (1 second): closing control connection"


def test_default_root_jails_the_user(ftpd):
    d = ftpd("DefaultRoot ~\n")
    (d.home("alice") / "mine.txt").write_text("x")
    with d.login("alice") as ftp:
        assert ftp.pwd() == "/"
        ftp.cwd("..")
        assert ftp.pwd() == "/"


# -- login policy, aliases, roots and start directories (issue 4) -------------------------------------------------
import subprocess  # noqa: E402
import sys  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import stat  # noqa: E402

from conftest import IS_ROOT, REPO, make_users  # noqa: E402

OWN_AUTH = """
AuthOrder mod_auth_file.c
AuthUserFile {dir}/ftpd.passwd
AuthGroupFile {dir}/ftpd.group
UseFtpUsers off
"""


pytestmark = pytest.mark.usefixtures("reachable_homes")


@pytest.fixture
def more_users(tmp_path):
    """Add passwd lines (name, password, uid, shell) to the test's AuthUserFile before the daemon starts."""
    from proftpy.auth.crypt import crypt_hash

    def add(*entries):
        users = make_users(tmp_path)
        with open(tmp_path / "ftpd.passwd", "a") as f:
            for name, password, uid, shell in entries:
                home = tmp_path / "home" / name
                home.mkdir(exist_ok=True)
                f.write(f"{name}:{crypt_hash(password, 'sha512')}:{uid}:{uid}::{home}:{shell}\n")
        return users
    return add


def test_root_login_is_refused_by_default(ftpd, more_users):
    users = more_users(("toor", "toor-secret", 0, "/bin/sh"))
    d = ftpd()
    d.users = users
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("toor", "toor-secret")
    assert "SECURITY VIOLATION: Root login attempted" in d.log()


def test_root_login_on_allows_uid_0(ftpd, more_users):
    more_users(("toor", "toor-secret", 0, "/bin/sh"))
    d = ftpd("RootLogin on\n")
    with d.connect() as ftp:
        assert ftp.login("toor", "toor-secret") == "230 User toor logged in"


def test_require_valid_shell(ftpd, more_users):
    more_users(("carol", "carol-secret", 2302, "/usr/sbin/nologin"))
    d = ftpd(OWN_AUTH + "RequireValidShell on\n", auth=False)
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("carol", "carol-secret")
        assert ftp.login("alice", PASSWORDS["alice"]) == "230 User alice logged in"    # /bin/sh is listed
    assert "USER carol (Login failed): Invalid shell: '/usr/sbin/nologin'" in d.log()


def test_require_valid_shell_off(ftpd, more_users):
    more_users(("carol", "carol-secret", 2302, "/usr/sbin/nologin"))
    d = ftpd(OWN_AUTH + "RequireValidShell off\n", auth=False)
    with d.connect() as ftp:
        assert ftp.login("carol", "carol-secret") == "230 User carol logged in"


def test_user_alias_logs_in_as_the_real_user(ftpd):
    d = ftpd("UserAlias al alice\n")
    with d.connect() as ftp:
        assert ftp.sendcmd("USER al") == "331 Password required for al"
        assert ftp.sendcmd("PASS " + PASSWORDS["alice"]) == "230 User al logged in"
        assert ftp.pwd() == str(d.home("alice"))


def test_auth_alias_only_refuses_real_names(ftpd):
    d = ftpd("UserAlias al alice\nAuthAliasOnly on\nMaxLoginAttempts 5\n")
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("alice", PASSWORDS["alice"])
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("bob", PASSWORDS["bob"])
        assert ftp.login("al", PASSWORDS["alice"]) == "230 User al logged in"
    assert "USER alice: user is not a UserAlias from 127.0.0.1 [127.0.0.1] to 127.0.0.1:" in d.log()


@pytest.mark.parametrize("expr, jailed", [("ftpusers", True), ("!ftpusers", False), ("ftpusers,!admins", True),
                                          ("ftpusers admins", False), ("!admins", True)])
def test_default_root_group_expression(ftpd, expr, jailed):
    d = ftpd(f"DefaultRoot ~ {expr}\n")
    with d.login("alice") as ftp:
        assert ftp.pwd() == ("/" if jailed else str(d.home("alice")))


def test_first_matching_default_root_wins(ftpd):
    d = ftpd("DefaultRoot ~/sub admins\nDefaultRoot ~\n")
    (d.home("alice") / "sub").mkdir()
    (d.home("alice") / "top.txt").write_text("x")
    with d.login("alice") as ftp:
        assert sorted(ftp.nlst()) == ["sub", "top.txt"]


def test_default_root_other_users_home(ftpd):
    d = ftpd("DefaultRoot ~bob\n")
    (d.home("bob") / "shared.txt").write_text("from bob\n")
    with d.login("alice") as ftp:
        assert ftp.pwd() == "/"
        assert ftp.nlst() == ["shared.txt"]


def test_missing_default_root_refuses_the_login(ftpd):
    d = ftpd("DefaultRoot {dir}/no-such-dir\n")
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("alice", PASSWORDS["alice"])
        assert ftp.sendcmd("NOOP") == "200 NOOP command successful"       # the session goes on
    assert "no-such-dir" in d.log()


@pytest.mark.parametrize("chdir, start", [("~/pub", "/pub"), ("pub", "/pub"), ("/pub", "/pub"),
                                          ("{home}/alice/pub", "/pub"), ("~/pub admins", "/"),
                                          ("~/missing", "/")])
def test_default_chdir(ftpd, chdir, start):
    d = ftpd(f"DefaultRoot ~\nDefaultChdir {chdir}\n")
    (d.home("alice") / "pub").mkdir()
    with d.login("alice") as ftp:
        assert ftp.pwd() == start


def test_default_chdir_without_chroot(ftpd):
    d = ftpd("DefaultChdir ~/pub\n")
    (d.home("alice") / "pub").mkdir()
    with d.login("alice") as ftp:
        assert ftp.pwd() == str(d.home("alice") / "pub")


# -- proftpy -t and the master-side preparation -------------------------------------------------------------------
def configtest(tmp_path, auth_lines: str, passwd: str, mode: int = 0o600) -> subprocess.CompletedProcess:
    (tmp_path / "users").write_text(passwd)
    os.chmod(tmp_path / "users", mode)
    os.chmod(tmp_path, 0o755)
    conf = tmp_path / "t.conf"
    conf.write_text(f"Port 0\nAuthUserFile {tmp_path}/users\n{auth_lines}")
    return subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=30)


GOOD = "alice:x:2300:2300::/srv/alice:/bin/sh\n"


def test_configtest_warns_about_skipped_auth_file_lines(tmp_path):
    r = configtest(tmp_path, "", GOOD + "broken line\n")
    assert r.returncode == 0, r.stderr
    assert f"warning: {tmp_path}/users:2: expected 7 ':'-separated fields, found 1" in r.stderr
    assert "Syntax OK" in r.stdout


def test_configtest_fails_for_syntaxcheck_files(tmp_path):
    r = configtest(tmp_path, "AuthFileOptions SyntaxCheck\n", GOOD + "bob:x:2301:2301::relative:/bin/sh\n")
    assert r.returncode == 1
    assert f"error: {tmp_path}/users:2: user 'bob': home directory 'relative' is not an absolute path" in r.stderr
    assert "Syntax OK" not in r.stdout


def test_configtest_warns_about_world_readable_files(tmp_path):
    r = configtest(tmp_path, "", GOOD, mode=0o644)
    assert r.returncode == 0
    assert f"warning: unable to use world-readable AuthUserFile '{tmp_path}/users'" in r.stderr


def test_master_builds_and_warms_auth_chains_before_fork(tmp_path):
    """mod_auth's master_preload (run before any fork, at start and after each reload) builds each server's
    AuthChain (with its dummy hash) and reads the auth files, so sessions inherit both; after a reload it builds
    them again for the new configuration."""
    from proftpy import modules
    from proftpy.master import Options, load_config
    from proftpy.module import States
    from proftpy.modules.auth import MODULE, AuthChains

    (tmp_path / "users").write_text(GOOD)
    os.chmod(tmp_path / "users", 0o600)
    conf = tmp_path / "t.conf"
    conf.write_text(f"Port 0\nAuthOrder mod_auth_file.c\nAuthUserFile {tmp_path}/users\n")
    opts = Options(config_path=str(conf))
    master = SimpleNamespace(config=load_config(opts), modules=modules.loaded(), state=States(), started=0.0)
    MODULE.master_preload(master)
    chain = master.state.get(AuthChains).chains[master.config.main]
    assert chain.entries[0][0].user_file._cache._key is not None      # read by the master
    master.config = load_config(opts)
    MODULE.master_preload(master)
    assert master.state.get(AuthChains).chains[master.config.main] is not chain


def _user_without_home(tmp_path, home) -> tuple[int, int]:
    """A user carol (password carol-pw) whose home, `home`, does not exist yet."""
    from proftpy.auth.crypt import crypt_hash
    users = make_users(tmp_path)
    uid = gid = users["bob"][0] + 10 if IS_ROOT else os.getuid()
    gid = gid if IS_ROOT else os.getgid()
    with open(tmp_path / "ftpd.passwd", "a") as f:
        f.write(f"carol:{crypt_hash('carol-pw', 'sha512')}:{uid}:{gid}::{home}:/bin/sh\n")
    return uid, gid


def test_create_home_makes_the_home_its_parents_and_copies_the_skeleton(ftpd, tmp_path):
    home = tmp_path / "homes" / "c" / "carol"
    uid, gid = _user_without_home(tmp_path, home)
    skel = tmp_path / "skel"
    (skel / "docs").mkdir(parents=True)
    (skel / ".profile").write_text("welcome\n")
    (skel / "docs" / "read.me").write_text("readme\n")
    os.chmod(skel / ".profile", 0o640)
    os.symlink("docs/read.me", skel / "readme")
    d = ftpd(f"CreateHome on 750 skel {skel} dirmode 755\nDefaultRoot ~\n")
    with d.connect() as ftp:
        assert ftp.login("carol", "carol-pw") == "230 User carol logged in"
        assert ftp.pwd() == "/"
        assert sorted(ftp.nlst("-a")) == [".", "..", ".profile", "docs", "readme"]
        lines = []
        ftp.retrlines("RETR readme", lines.append)
        assert lines == ["readme"]
    assert (home / ".profile").read_text() == "welcome\n"
    assert stat.S_IMODE(home.stat().st_mode) == 0o750
    assert stat.S_IMODE((home / ".profile").stat().st_mode) == 0o640
    assert os.readlink(home / "readme") == "docs/read.me"
    assert [stat.S_IMODE(p.stat().st_mode) for p in (home.parent, home.parent.parent)] == [0o755, 0o755]
    if IS_ROOT:
        assert all((p.lstat().st_uid, p.lstat().st_gid) == (uid, gid)
                   for p in (home, home / ".profile", home / "docs" / "read.me", home / "readme"))
        assert (home.parent.stat().st_uid, home.parent.stat().st_gid) == (0, 0)
    (home / ".profile").write_text("changed\n")
    with d.connect() as ftp:                        # a home that exists is left as it is
        ftp.login("carol", "carol-pw")
    assert (home / ".profile").read_text() == "changed\n"


def test_without_create_home_a_missing_home_refuses_the_login(ftpd, tmp_path):
    _user_without_home(tmp_path, tmp_path / "nowhere" / "carol")
    d = ftpd("DefaultRoot ~\n")
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("carol", "carol-pw")
    assert not (tmp_path / "nowhere").exists()


def test_max_password_size_refuses_a_longer_password_as_a_wrong_one(ftpd):
    d = ftpd(f"MaxPasswordSize {len(PASSWORDS['alice']) - 1}\nMaxLoginAttempts 5\n")
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
            ftp.login("alice", PASSWORDS["alice"])
    log = d.log()
    assert f"client-provided password size exceeds MaxPasswordSize ({len(PASSWORDS['alice']) - 1}), rejecting" in log
    assert "USER alice (Login failed): Incorrect password" in log


def test_max_password_size_is_1024_bytes_by_default(ftpd):
    d = ftpd()
    with d.connect() as ftp:
        for size in (1024, 1025):
            with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
                ftp.login("alice", "x" * size)
    assert d.log().count("exceeds MaxPasswordSize (1024)") == 1


@pytest.mark.skipif(not IS_ROOT, reason="NoRootPrivs is about a daemon started as root")
def test_create_home_with_no_root_privs_makes_it_as_the_user(ftpd, tmp_path):
    """The home and its missing parent are made with the user's privileges below a directory the user owns:
    the first login gets in, and what was made is the user's (a chown to root cannot be asked of the user)."""
    base = tmp_path / "userdirs"
    base.mkdir()
    home = base / "p" / "carol"
    uid, gid = _user_without_home(tmp_path, home)
    os.chown(base, uid, gid)
    d = ftpd("CreateHome on 750 dirmode 711 NoRootPrivs\nDefaultRoot ~\n")
    with d.connect() as ftp:
        assert ftp.login("carol", "carol-pw") == "230 User carol logged in"
        assert ftp.nlst() == []
    assert [(p.stat().st_uid, stat.S_IMODE(p.stat().st_mode)) for p in (home.parent, home)] == [(uid, 0o711),
                                                                                           (uid, 0o750)]


def test_new_users_logging_in_at_once_all_find_their_home_complete(ftpd, tmp_path):
    import concurrent.futures
    home = tmp_path / "homes" / "carol"
    _user_without_home(tmp_path, home)
    skel = tmp_path / "skel"
    skel.mkdir()
    for i in range(300):
        (skel / f"f{i:03d}").write_text("x")
    d = ftpd(f"CreateHome on skel {skel}\nDefaultRoot ~\nMaxInstances 20\n")

    def listing():
        with d.connect() as ftp:
            ftp.login("carol", "carol-pw")
            return len(ftp.nlst())

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: listing(), range(4))) == [300] * 4
    assert not [p for p in home.parent.iterdir() if p.name != "carol"]      # the losers' homes are gone
