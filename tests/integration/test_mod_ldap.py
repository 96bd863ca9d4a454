"""mod_ldap against a real slapd (Debian's, started once for this module on free loopback ports): logins with
auth binds and with userPassword compared, groups in <Limit>, DefaultRoot, generated homes, TLS, a server that is
down or hung, names that try to change the filter."""

import ftplib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, REPO, again, error_reply, login_reply, refused_config, wait_until
from ldap_helpers import (ADMIN_DN, ADMIN_PW, GROUPS, PEOPLE, SASL_NAME, SASL_PW, SUFFIX, UNI_NAME, UNI_PW,
                          PosixGroup, Slapd, User, available, crypt, md5, sasl_account, sha, ssha)
from proftpy.auth.saslprep import saslprep

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="LDAP users have their own uids: the daemon must run as root"),
              pytest.mark.skipif(not available(), reason="slapd is not installed (apt-get install slapd)")]

UID = 2500
WEIRD = "we*(ird)\\x"           # a real user whose name holds every character a filter gives a meaning to
INET_PEOPLE = f"{PEOPLE} (&(uid=%u)(objectclass=inetOrgPerson))"


@pytest.fixture(scope="module")
def directory():
    """slapd with carol ({CRYPT}), dave (clear), erin ({SSHA}), frank ({SHA}), hank ({MD5}), gina (no posixAccount:
    no ids, no home), the weird one, and groups ldapstaff (carol's primary), ldapextra (carol, dave), ldapother."""
    base = Path(tempfile.mkdtemp(prefix="proftpy-ldap-", dir="/tmp"))
    os.chmod(base, 0o755)
    home = base / "home"
    users = [User("carol", crypt("carol-pw"), UID, UID, str(home / "carol"), extra={"roomNumber": str(home / "alt")}),
             User("dave", "dave-pw", UID + 1, UID, str(home / "dave")),
             User("erin", ssha("erin-pw"), UID + 2, UID + 2, str(home / "erin")),
             User("frank", sha("frank-pw"), UID + 3, UID, str(home / "frank"), shell=None),
             User("hank", md5("hank-pw"), UID + 4, UID, str(home / "hank")),
             User("gina", "gina-pw", posix=False),
             User(WEIRD, "weird-pw", UID + 6, UID, str(home / "weird"))]
    groups = [PosixGroup("ldapstaff", UID), PosixGroup("ldapextra", UID + 100, ("carol", "dave")),
              PosixGroup("ldapother", UID + 101, ("erin",))]
    for u in users:
        if u.home:
            Path(u.home).mkdir(parents=True)
            os.chown(u.home, u.uid, u.gid)
    (home / "alt").mkdir()
    os.chown(home / "alt", UID, UID)
    server = Slapd(base / "slapd").start(users, groups, sasl_account() + "\n" + sasl_account(UNI_NAME, UNI_PW))
    server.home = home
    yield server
    server.remove()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tmp_path(open_tmp_path):
    return open_tmp_path


def ldap_config(directory, extra: str = "", server: str | None = None, binds: bool = True,
                users: str = PEOPLE) -> str:
    return f"""\
AuthOrder mod_ldap.c mod_auth_file.c
<IfModule mod_ldap.c>
LDAPServer {server or f"127.0.0.1:{directory.port}"}
LDAPUsers {users}
LDAPGroups {GROUPS}
LDAPLog {{dir}}/ldap.log
{"" if binds else f'LDAPAuthBinds off{chr(10)}LDAPBindDN "{ADMIN_DN}" {ADMIN_PW}'}
{extra}
</IfModule>
"""


def ldap_log(tmp_path) -> str:
    path = tmp_path / "ldap.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_auth_bind_login_is_the_users_uid_in_its_home(ftpd, directory):
    d = ftpd(ldap_config(directory))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER carol") == "331 Password required for carol"
        assert ftp.sendcmd("PASS carol-pw") == "230 User carol logged in"
        assert ftp.pwd() == str(directory.home / "carol")
        ftp.storbinary("STOR up.txt", io.BytesIO(b"data"))
    st = os.stat(directory.home / "carol" / "up.txt")
    assert (st.st_uid, st.st_gid) == (UID, UID)


def test_wrong_password_and_unknown_user_get_530(ftpd, directory, tmp_path):
    d = ftpd(ldap_config(directory))
    assert login_reply(d, "carol", "wrong") == "530 Login incorrect."
    assert login_reply(d, "carol", "") == "530 Login incorrect."      # never an unauthenticated bind
    assert login_reply(d, "nobody", "x") == "530 Login incorrect."
    assert wait_until(lambda: "USER nobody: no such user found" in d.log())
    assert "invalid credentials used for uid=carol,ou=people" in ldap_log(tmp_path)
    assert "no entries for filter (&(uid=nobody)(objectclass=posixAccount))" in ldap_log(tmp_path)


def test_password_schemes_without_auth_binds(ftpd, directory):
    d = ftpd(ldap_config(directory, "LDAPDefaultAuthScheme clear", binds=False))
    for user in ("carol", "dave", "erin", "hank"):          # {CRYPT}, bare (clear), {SSHA}, {MD5}
        assert login_reply(d, user, user + "-pw") == f"230 User {user} logged in"
        assert login_reply(d, user, user + "-pwx") == "530 Login incorrect."


def test_bare_password_is_crypt_by_default_and_a_shell_is_optional(ftpd, directory):
    d = ftpd(ldap_config(directory, binds=False))
    assert login_reply(d, "dave", "dave-pw") == "530 Login incorrect."         # "dave-pw" read as a crypt hash
    assert login_reply(d, "frank", "frank-pw") == "230 User frank logged in"   # {SHA}; no loginShell


def test_groups_from_ldap_in_limit(ftpd, directory):
    d = ftpd(ldap_config(directory) + "<Limit MKD>\nAllowGroup ldapextra\nDenyAll\n</Limit>\n")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.mkd("allowed").endswith("allowed")
    with d.connect() as ftp:
        ftp.login("erin", "erin-pw")
        assert error_reply(ftp, "MKD denied").startswith("550 denied: Permission denied")


def test_default_root_chroots_to_the_ldap_home_and_lists_ldap_names(ftpd, directory):
    (directory.home / "carol" / "mine.txt").write_text("x")
    os.chown(directory.home / "carol" / "mine.txt", UID, UID + 100)
    d = ftpd(ldap_config(directory) + "DefaultRoot ~\n")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.pwd() == "/"
        lines = []
        ftp.retrlines("LIST mine.txt", lines.append)
    assert lines and lines[0].split()[2:4] == ["carol", "ldapextra"]


def test_a_restarted_server_is_searched_again_on_a_new_connection(ftpd, directory, tmp_path):
    (directory.home / "carol" / "again.txt").write_text("x")
    os.chown(directory.home / "carol" / "again.txt", UID, UID + 101)
    d = ftpd(ldap_config(directory) + "DefaultRoot ~\n")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        directory.restart()                         # the session's connection to it is gone now
        lines = []
        ftp.retrlines("LIST again.txt", lines.append)
    assert lines and lines[0].split()[2:4] == ["carol", "ldapother"]
    assert "LDAP connection went away, retrying search operation" in ldap_log(tmp_path)
    assert "Traceback" not in d.log()


def test_ldaplog_in_a_world_writable_directory_is_refused(ftpd, directory):
    d = ftpd(ldap_config(directory).replace("LDAPLog {dir}/ldap.log", "LDAPLog /tmp/proftpy-ldap-test.log"))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    assert wait_until(lambda: "unable to open log '/tmp/proftpy-ldap-test.log'" in d.log())
    assert not os.path.exists("/tmp/proftpy-ldap-test.log")


def test_each_virtual_host_has_its_own_ldap_settings(ftpd, directory):
    from conftest import free_port
    other = free_port()
    vhost = (f"<VirtualHost 127.0.0.1>\nPort {other}\nAuthOrder mod_ldap.c\nLDAPServer 127.0.0.1:{directory.port}\n"
             f"LDAPUsers ou=nobody,dc=example,dc=com\nRequireValidShell off\n</VirtualHost>\n")
    d = ftpd(ldap_config(directory) + vhost)
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", other, timeout=10)
        ftp.sendcmd("USER carol")
        assert error_reply(ftp, "PASS carol-pw") == "530 Login incorrect."


def test_site_chgrp_finds_an_ldap_group(ftpd, directory):
    (directory.home / "dave" / "f.txt").write_text("x")
    os.chown(directory.home / "dave" / "f.txt", UID + 1, UID)
    d = ftpd(ldap_config(directory))
    with d.connect() as ftp:
        ftp.login("dave", "dave-pw")
        assert ftp.sendcmd("SITE CHGRP ldapextra f.txt").startswith("200")
    assert os.stat(directory.home / "dave" / "f.txt").st_gid == UID + 100


def test_ldapattr_renames_an_attribute(ftpd, directory):
    d = ftpd(ldap_config(directory, "LDAPAttr homeDirectory roomNumber"))
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.pwd() == str(directory.home / "alt")


def test_defaults_and_generated_home_for_a_user_without_posix_attributes(ftpd, directory, tmp_path):
    prefix = tmp_path / "gen"
    prefix.mkdir()
    extra = (f"LDAPDefaultUID {UID + 50}\nLDAPDefaultGID {UID + 50}\nLDAPGenerateHomedir on\n"
             f"LDAPGenerateHomedirPrefix {prefix}\n")
    d = ftpd(ldap_config(directory, extra, users=INET_PEOPLE) + "CreateHome on\n")
    with d.connect() as ftp:
        assert ftp.login("gina", "gina-pw").startswith("230")
        assert ftp.pwd() == str(prefix / "gina")
    st = os.stat(prefix / "gina")
    assert (st.st_uid, st.st_gid) == (UID + 50, UID + 50)


def test_without_defaults_a_user_without_uid_number_is_unknown(ftpd, directory, tmp_path):
    d = ftpd(ldap_config(directory, users=INET_PEOPLE))
    assert login_reply(d, "gina", "gina-pw") == "530 Login incorrect."
    assert "no uidNumber attribute for DN uid=gina" in ldap_log(tmp_path)


def test_forced_generated_home_and_default_ids(ftpd, directory, tmp_path):
    prefix = tmp_path / "forced"
    prefix.mkdir()
    extra = (f"LDAPGenerateHomedir on\nLDAPGenerateHomedirPrefix {prefix}\nLDAPForceGeneratedHomedir on\n"
             f"LDAPDefaultUID {UID + 60}\nLDAPForceDefaultUID on\n")
    d = ftpd(ldap_config(directory, extra) + "CreateHome on\n")
    with d.connect() as ftp:
        ftp.login("carol", "carol-pw")
        assert ftp.pwd() == str(prefix / "carol")
    assert os.stat(prefix / "carol").st_uid == UID + 60
    d2 = again(ftpd, d, ldap_config(directory, f"LDAPGenerateHomedir on\nLDAPGenerateHomedirPrefix {prefix}\n"
                                     "LDAPForceGeneratedHomedir on\nLDAPGenerateHomedirPrefixNoUsername on"))
    with d2.connect() as ftp:
        ftp.login("dave", "dave-pw")
        assert ftp.pwd() == str(prefix)


def test_names_cannot_change_the_filter(ftpd, directory, tmp_path):
    d = ftpd(ldap_config(directory, binds=False))
    for name in ("*", "carol)(uid=*", "*)(|(uid=*", "carol*", "c\\2a", "(uid=carol)"):
        assert login_reply(d, name, "carol-pw") == "530 Login incorrect.", name
    log = ldap_log(tmp_path)
    assert "no entries for filter (&(uid=\\*)(objectclass=posixAccount))" in log
    assert "no entries for filter (&(uid=carol\\)\\(uid=\\*)(objectclass=posixAccount))" in log
    assert "LDAP search returned multiple entries" not in log and "found user" not in log


def test_a_name_with_filter_characters_logs_in(ftpd, directory):
    d = ftpd(ldap_config(directory))
    assert login_reply(d, WEIRD, "weird-pw") == f"230 User {WEIRD} logged in"
    assert login_reply(d, WEIRD.replace("*", "\\2a"), "weird-pw") == "530 Login incorrect."


def test_server_down_is_a_530_and_a_log_line(ftpd, directory, tmp_path):
    from conftest import free_port
    down = free_port()
    d = ftpd(ldap_config(directory, server=f"127.0.0.1:{down}"))
    with d.connect() as ftp:
        ftp.sendcmd("USER carol")
        assert error_reply(ftp, "PASS carol-pw") == "530 Login incorrect."
        assert ftp.sendcmd("NOOP").startswith("200")
        assert ftp.quit().startswith("221")
    assert wait_until(lambda: "unable to use any LDAP server" in d.log())
    assert "Traceback" not in d.log()
    assert f"failed for '127.0.0.1:{down}': Can't contact LDAP server" in ldap_log(tmp_path)


def test_failover_to_the_next_server(ftpd, directory, tmp_path):
    from conftest import free_port
    d = ftpd(ldap_config(directory, server=f"ldap://127.0.0.1:{free_port()}/??sub ldap://127.0.0.1:{directory.port}/??sub"))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"


def test_url_without_scope_searches_the_base_only(ftpd, directory):
    d = ftpd(ldap_config(directory, server=directory.url))
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."       # as ProFTPD: RFC 4516's "base"
    d2 = again(ftpd, d, ldap_config(directory, server=directory.url + "/??sub"))
    assert login_reply(d2, "carol", "carol-pw") == "230 User carol logged in"


def test_user_dn_template_in_the_base(ftpd, directory):
    d = ftpd(ldap_config(directory, "LDAPSearchScope base", users=f'"uid=%u,{PEOPLE}" (objectclass=posixAccount)'))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    assert login_reply(d, "carol,ou=people", "carol-pw") == "530 Login incorrect."


@pytest.mark.slow
def test_hung_server_times_out(ftpd, directory, tmp_path):
    d = ftpd(ldap_config(directory, "LDAPQueryTimeout 1"))
    directory.pause()
    try:
        start = time.monotonic()
        assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
        assert time.monotonic() - start < 8
    finally:
        directory.resume()
    assert "Timed out" in ldap_log(tmp_path)
    assert "Traceback" not in d.log()


def test_ldaps_and_starttls(ftpd, directory, tmp_path):
    d = ftpd(ldap_config(directory, server=f"ldaps://127.0.0.1:{directory.tls_port}/??sub ssl-ca:{directory.ca}"))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    d2 = again(ftpd, d, ldap_config(directory, "LDAPUseTLS on", server=f"localhost:{directory.port} ssl-ca:{directory.ca}"))
    assert login_reply(d2, "dave", "dave-pw") == "230 User dave logged in"
    assert "enabled TLS for connection" in ldap_log(tmp_path)


def test_untrusted_certificate_is_refused(ftpd, directory, tmp_path, tls):
    d = ftpd(ldap_config(directory, "LDAPUseTLS on", server=f"127.0.0.1:{directory.port} ssl-ca:{tls.cert}"))
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert "failed to start TLS" in ldap_log(tmp_path)
    assert "Traceback" not in d.log()


def test_default_auth_order_asks_mod_ldap_then_the_files(ftpd, directory):
    conf = ldap_config(directory).replace("AuthOrder mod_ldap.c mod_auth_file.c\n", "")
    d = ftpd(conf + "AuthUserFile {dir}/ftpd.passwd\nAuthGroupFile {dir}/ftpd.group\nRequireValidShell off\n"
             "UseFtpUsers off\nTransferLog none\n", auth=False)
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    assert login_reply(d, "alice", "alice-secret") == "230 User alice logged in"


# -- LDAPUseSASL: LDAPBindDN's bind made with a SASL mechanism --------------------------------------------------------
# The DN is one no entry has: a simple bind with it fails, a SASL bind authenticates its first RDN's cn (ftpbind)
SASL_BIND = f"cn={SASL_NAME},ou=nowhere,{SUFFIX}"


def sasl_config(directory, mechs: str, password: str = SASL_PW, server: str | None = None) -> str:
    return ldap_config(directory, f'LDAPBindDN "{SASL_BIND}" {password}\nLDAPUseSASL {mechs}', server=server)


@pytest.mark.slow
@pytest.mark.parametrize("mechs", ["SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-512", "DIGEST-MD5", "CRAM-MD5",
                                   "PLAIN CRAM-MD5 SCRAM-SHA-1 DIGEST-MD5"])
def test_sasl_bind_finds_the_users(ftpd, directory, tmp_path, mechs):
    d = ftpd(sasl_config(directory, mechs))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    assert login_reply(d, "carol", "wrong") == "530 Login incorrect."
    assert f"successfully bound as DN '{SASL_BIND}' with password (see config)" in ldap_log(tmp_path)
    d2 = again(ftpd, d, sasl_config(directory, mechs, password="not-it"))
    assert login_reply(d2, "carol", "carol-pw") == "530 Login incorrect."
    assert f"bind as DN '{SASL_BIND}' failed for '127.0.0.1:{directory.port}': Invalid credentials" in \
        ldap_log(tmp_path)
    assert "Traceback" not in d.log() + d2.log()


@pytest.mark.parametrize("mechs", ["SCRAM-SHA-256", "DIGEST-MD5"])
def test_sasl_non_ascii_password_is_sent_as_typed(ftpd, directory, tmp_path, mechs):
    """Not SASLprep'ed, as libsasl2 does not prepare it (slapd's libsasl2 neither): the password with its soft
    hyphen binds; SASLprep's form of it (the soft hyphen gone) does not."""
    bind = f'LDAPBindDN "cn={UNI_NAME},ou=nowhere,{SUFFIX}" {UNI_PW}\nLDAPUseSASL {mechs}\n'
    d = ftpd(ldap_config(directory, bind + "Trace ldap:10\nTraceLog {dir}/trace.log"))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    trace = (tmp_path / "trace.log").read_text(errors="replace")
    assert ("changes under SASLprep" in trace) == mechs.startswith("SCRAM")
    d2 = again(ftpd, d, ldap_config(directory, bind.replace(UNI_PW, saslprep(UNI_PW))))
    assert login_reply(d2, "carol", "carol-pw") == "530 Login incorrect."
    assert "Invalid credentials" in ldap_log(tmp_path)


def test_sasl_simple_bind_would_fail(ftpd, directory, tmp_path):
    """The same LDAPBindDN without LDAPUseSASL: a simple bind with a DN no entry has."""
    d = ftpd(ldap_config(directory, f'LDAPBindDN "{SASL_BIND}" {SASL_PW}'))
    assert login_reply(d, "carol", "carol-pw") == "530 Login incorrect."
    assert f"bind as DN '{SASL_BIND}' failed" in ldap_log(tmp_path)


def test_sasl_plain_only_over_tls(ftpd, directory, tmp_path):
    ldaps = f"ldaps://127.0.0.1:{directory.tls_port}/??sub ssl-ca:{directory.ca}"
    d = ftpd(sasl_config(directory, "PLAIN", server=ldaps))
    assert login_reply(d, "dave", "dave-pw") == "230 User dave logged in"
    d2 = again(ftpd, d, sasl_config(directory, "LOGIN", password="not-it", server=ldaps))
    assert login_reply(d2, "dave", "dave-pw") == "530 Login incorrect."
    assert "Invalid credentials" in ldap_log(tmp_path)
    # without TLS libldap refuses to send a password in the clear: so does proftpy, before any bind
    d3 = again(ftpd, d2, sasl_config(directory, "PLAIN LOGIN ANONYMOUS"))
    assert login_reply(d3, "dave", "dave-pw") == "530 Login incorrect."
    assert (f"bind as DN '{SASL_BIND}' failed for '127.0.0.1:{directory.port}': Unknown authentication method"
            in ldap_log(tmp_path))


def test_sasl_external_with_a_client_certificate(ftpd, directory, tmp_path):
    """Beyond ProFTPD 1.3.8: EXTERNAL, the TLS client certificate as the credential (no password)."""
    ldaps = f"ldaps://127.0.0.1:{directory.tls_port}/??sub ssl-ca:{directory.ca}"
    d = ftpd(ldap_config(directory, "LDAPUseSASL EXTERNAL SCRAM-SHA-256", server=f"{ldaps} ssl-cert:"
                         f"{directory.client_cert} ssl-key:{directory.client_key}"))
    assert login_reply(d, "carol", "carol-pw") == "230 User carol logged in"
    assert "successfully bound as DN '(anonymous)' with password (none)" in ldap_log(tmp_path)
    # a certificate slapd does not trust: the TLS handshake fails (slapd's TLSVerifyClient try)
    d2 = again(ftpd, d, ldap_config(directory, "LDAPUseSASL EXTERNAL", server=f"{ldaps} ssl-cert:"
                                    f"{directory.stranger_cert} ssl-key:{directory.stranger_key}"))
    assert login_reply(d2, "carol", "carol-pw") == "530 Login incorrect."
    assert "failed for 'ldaps://127.0.0.1" in ldap_log(tmp_path)
    # no certificate: EXTERNAL is not worthy, nothing is sent
    d3 = again(ftpd, d2, ldap_config(directory, "LDAPUseSASL EXTERNAL", server=ldaps))
    assert login_reply(d3, "carol", "carol-pw") == "530 Login incorrect."
    assert "Unknown authentication method" in ldap_log(tmp_path)
    assert "Traceback" not in d.log() + d2.log() + d3.log()


@pytest.mark.parametrize("line,message", [
    ("LDAPUseSASL SCRAM-SHA-3", "unsupported SASL mechanism: SCRAM-SHA-3"),
    ("LDAPUseSASL PLAIN GSSAPI", "unsupported SASL mechanism: GSSAPI"),
    ("LDAPUseSASL", "wrong number of parameters"),
    ("LDAPServer ldap://h/dc=example", "a base DN may not be specified"),
    ("LDAPServer ldap://h/??sub?(uid=x)", "a search filter may not be specified"),
    ("LDAPServer ldapi://%2Frun%2Fslapd", "valid schemes are 'ldap' or 'ldaps'"),
    ("LDAPServer host:abc", "unable to parse 'abc' as a port number"),
    ("LDAPServer ssl-ca:/etc/hosts", "wrong order of parameters"),
    ("LDAPUsers on", "first parameter must be the base DN"),
    ("LDAPSearchScope everything", "search scope must be one of"),
    ("LDAPAttr shoeSize size", "unknown attribute name: shoeSize"),
    ("LDAPDefaultUID abc", "UID argument must be numeric"),
    ("LDAPProtocolVersion three", "argument must be numeric"),
    ("LDAPAliasDereference sometimes", "expected a valid dereference"),
    ("LDAPQueryTimeout soon", "error parsing timeout value"),
])
def test_bad_directives_are_refused(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert "t.conf:2:" in err and message in err, err


def test_proftpy_lists_mod_ldap_and_configtest_warns(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "proftpy", "-l"], capture_output=True, text=True, env=env).stdout
    assert "mod_ldap.c" in out
    conf = tmp_path / "w.conf"
    conf.write_text("Port 0\n<IfModule mod_ldap.c>\nLDAPServer ldap://127.0.0.1:1\nLDAPUsers dc=x (uid=%u\n"
                    "LDAPServer ldaps://127.0.0.1:2/??sub ssl-cert:/etc/hosts\n</IfModule>\n")
    res = subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0 and "Syntax OK" in res.stdout
    assert "is not a search filter" in res.stderr and "scopes default to 'base'" in res.stderr
    assert "TLS settings for 'ldaps://127.0.0.1:2/??sub' unusable" in res.stderr
