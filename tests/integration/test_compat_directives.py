"""ProFTPD 1.3.8 directives a proftpd.conf may carry, on the real daemon: UserPassword and AuthUsingAlias (mod_auth),
SetEnv and UnsetEnv (mod_core), AuthUnixOptions MagicTokenChroot (mod_auth_unix, wu-ftpd's `/./` homes), and the
ones accepted for compatibility (PersistentPasswd, RegexOptions)."""

from __future__ import annotations

import ftplib
import os
import time

import pytest

from conftest import IS_ROOT, PASSWORDS, configtest, refused_config, restart_with_mount, wait_until

from proftpy.auth.crypt import crypt_hash

@pytest.fixture
def tmp_path(open_tmp_path):
    """Users without a chroot walk to their homes: the test's tree is reachable."""
    return open_tmp_path


def refused(d, user: str, password: str) -> str:
    ftp = d.connect()
    try:
        ftp.login(user, password)
    except ftplib.error_perm as e:
        return str(e)
    finally:
        ftp.close()
    return "230"


def test_user_password_replaces_the_users_own(ftpd):
    d = ftpd(f"UserPassword alice {crypt_hash('configured')}\nDefaultRoot ~\n")
    assert refused(d, "alice", PASSWORDS["alice"]) == "530 Login incorrect."
    ftp = d.connect()
    ftp.login("alice", "configured")
    assert ftp.pwd() == "/"
    ftp.quit()
    assert refused(d, "bob", PASSWORDS["bob"]) == "230"           # only alice's is replaced


def test_auth_using_alias_checks_the_alias_own_password(ftpd, tmp_path):
    anon = tmp_path / "anon"
    anon.mkdir()
    d = ftpd(f"""<Anonymous {anon}>
User bob
UserAlias alice bob
UserAlias guest bob
AnonRequirePassword on
AuthUsingAlias on
UserPassword guest {crypt_hash('guest-pw')}
</Anonymous>
""")
    ftp = d.connect()
    assert ftp.login("alice", PASSWORDS["alice"]).startswith("230 Anonymous access granted")   # alice's own
    assert ftp.pwd() == "/"
    ftp.quit()
    assert refused(d, "alice", PASSWORDS["bob"]) == "530 Login incorrect."
    # the alias authenticates as an account of its own: guest is none, its UserPassword opens nothing (ProFTPD's)
    assert refused(d, "guest", "guest-pw") == "530 Login incorrect."


def test_configuration_errors_of_these_directives(tmp_path):
    for line, message in (("UserPassword bob", "expected a user name and an encrypted password"),
                          ("SetEnv A=B c", "is not an environment variable name"),
                          ("UnsetEnv", "expected a name"),
                          ("AuthUnixOptions MagicChroot", "unknown AuthUnixOption 'MagicChroot'"),
                          ("RegexOptions MatchLimit", "wrong number of parameters"),
                          ("RegexOptions Engine perl", "unknown regex engine 'perl'"),
                          ("FSCachePolicy size 0 maxAge 30", "FSCachePolicy: size parameter must be greater than 1"),
                          ("FSCachePolicy size 64", "FSCachePolicy: wrong number of parameters"),
                          ("FSCachePolicy bogus 1 maxAge 2", "unknown FSCachePolicy: bogus"),
                          ("FSOptions Foo", "unknown FSOption 'Foo'"),
                          ("TLSStaplingOptions Bad", "unknown TLSStaplingOption 'Bad'"),
                          ("TLSStaplingTimeout x", "error parsing timeout value 'x'"),
                          ('PathDenyFilter "[[:foo:]]"', "t.conf:2: PathDenyFilter: bad regular expression "
                                                         "'[[:foo:]]': unknown POSIX class name"),
                          ("IncludeOptions IgnoreEverything", "unknown IncludeOption 'IgnoreEverything'"),
                          ("<VirtualHost 127.0.0.2>\nIncludeOptions AllowSymlinks\n</VirtualHost>", "not allowed")):
        assert message in refused_config(tmp_path, line), line
    res = configtest(tmp_path, "Port 0\nPersistentPasswd off\nRegexOptions Engine POSIX MatchLimit 1000\n"
                               "AuthUnixOptions NoGetgrouplist noinitgroups\nFSCachePolicy size 64 maxAge 30\n"
                               "FSOptions IgnoreExtendedAttributes\nTLSStaplingCache fs:/path=/tmp\n"
                               "TLSStaplingOptions NoNonce NoVerify\nTLSStaplingResponder http://ocsp.example\n"
                               "TLSStaplingTimeout 10\n")
    assert res.returncode == 0, res.stderr


def test_set_env_and_unset_env_reach_display_files_and_log_times(ftpd, tmp_path):
    (tmp_path / "env.msg").write_text("%{env:GREETING}|%{env:PATH}|%{time:%z}\n")
    d = ftpd("SetEnv GREETING \"hello there\"\nUnsetEnv PATH\nSetEnv TZ XYZ+05\nDisplayConnect {dir}/env.msg\n")
    ftp = d.connect()
    assert ftp.getwelcome().startswith("220-hello there|(none)|-0500\n")     # the session's environment and zone
    ftp.quit()
    stamp = next(line for line in d.log().splitlines() if "STARTUP" in line)[:19]
    logged = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
    assert abs((time.mktime(time.gmtime()) - logged) - 5 * 3600) < 120, stamp   # the daemon's log times too


@pytest.mark.skipif(not IS_ROOT, reason="a private /etc/passwd needs a mount namespace, as root")
def test_magic_token_home_chroots_before_the_token_and_starts_after_it(ftpd, tmp_path):
    jail = tmp_path / "jail"
    (jail / "home" / "wu").mkdir(parents=True)
    (jail / "outside.txt").write_text("in the jail's root\n")
    os.chown(jail / "home" / "wu", 2390, 2390)
    passwd = tmp_path / "passwd"
    passwd.write_text(open("/etc/passwd").read() +
                      f"wu:{crypt_hash('wu-pw')}:2390:2390:wu:{jail}/./home/wu:/bin/sh\n")
    d = ftpd("AuthOrder mod_auth_unix.c\nAuthUnixOptions MagicTokenChroot\nRequireValidShell off\n"
             "UseFtpUsers off\nDefaultRoot ~\n", auth=False)
    restart_with_mount(d, f'mount --bind "{passwd}" /etc/passwd')     # its own /etc/passwd
    ftp = d.connect()
    ftp.login("wu", "wu-pw")
    assert ftp.pwd() == "/home/wu"
    ftp.cwd("/")
    assert "outside.txt" in ftp.nlst()                      # the jail is the root, not wu's home
    ftp.cwd("..")
    assert ftp.pwd() == "/"
    ftp.quit()


@pytest.mark.skipif(not IS_ROOT, reason="a private /var/log/lastlog needs a mount namespace, as root")
def test_use_lastlog_records_the_login(ftpd, tmp_path):
    from proftpy.auth import lastlog
    record = tmp_path / "lastlog"
    record.write_bytes(b"")
    d = ftpd("UseLastlog on\nDefaultRoot ~\n")
    restart_with_mount(d, f'mount --bind "{record}" /var/log/lastlog')
    before = int(time.time())
    d.login("bob").quit()
    uid = d.uid("bob")
    assert wait_until(lambda: record.stat().st_size == (uid + 1) * lastlog.RECORD.size)
    when, line, host = lastlog.RECORD.unpack(record.read_bytes()[uid * lastlog.RECORD.size:])
    assert before <= when <= time.time() + 1
    assert line.rstrip(b"\0").startswith(b"ftpd") and host.rstrip(b"\0") == b"127.0.0.1"


def test_user_dir_root_confines_an_alias_to_its_own_directory(ftpd, tmp_path):
    anon = tmp_path / "anon"
    (anon / "guest").mkdir(parents=True)
    (anon / "guest" / "mine.txt").write_text("the guest's\n")
    (anon / "top.txt").write_text("everyone's\n")
    d = ftpd(f"<Anonymous {anon}>\nUser bob\nUserAlias guest bob\nUserAlias anonymous bob\nUserDirRoot on\n"
             "RequireValidShell off\n</Anonymous>\n")
    ftp = d.connect()
    ftp.login("guest", "g@example.org")
    assert ftp.nlst() == ["mine.txt"]
    ftp.quit()
    ftp = d.connect()
    with pytest.raises(ftplib.error_perm, match="530 Login incorrect"):
        ftp.login("anonymous", "a@example.org")            # an alias too, and anon/anonymous does not exist
    ftp.close()


def test_mod_dso_directives_are_accepted_and_reported(tmp_path):
    res = configtest(tmp_path, "Port 0\nLoadFile /usr/lib/x86_64-linux-gnu/libfoo.so\nModuleOrder mod_core.c\n"
                               "AuthPAMOptions NoTTY\n")
    assert res.returncode == 0, res.stderr
    assert "t.conf:2: LoadFile: proftpy loads no shared objects; ignored" in res.stderr
    assert "t.conf:3: ModuleOrder: proftpy loads no shared objects; ignored" in res.stderr


def test_mod_cap_directives_read_as_proftpd_reads_them(tmp_path):
    """mod_cap: what only takes capabilities away loads (a session has none after login), `<IfModule mod_cap.c>`
    holds as with Debian's ProFTPD; what would give a session one is refused, as are ProFTPD's own errors."""
    res = configtest(tmp_path, "Port 0\nCapabilitiesEngine on\nCapabilitiesSet -CAP_CHOWN -CAP_DAC_OVERRIDE\n"
                               "CapabilitiesRootRevoke on\n<IfModule mod_cap.c>\nCapabilitiesEngine off\n</IfModule>\n")
    assert res.returncode == 0, res.stderr
    for line, message in (("CapabilitiesSet +CAP_CHOWN", "'+CAP_CHOWN' cannot be given"),
                          ("CapabilitiesSet CAP_CHOWN", "bad option: 'CAP_CHOWN'"),
                          ("CapabilitiesSet -CAP_NET_BIND_SERVICE", "unknown capability: 'CAP_NET_BIND_SERVICE'"),
                          ("CapabilitiesRootRevoke off", "off is not supported"),
                          ("CapabilitiesEngine maybe", "CapabilitiesEngine")):
        assert message in refused_config(tmp_path, line), line
