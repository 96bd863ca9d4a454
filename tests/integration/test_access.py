"""Access control against the real daemon: Allow/Deny by IP, CIDR, glob and class; <Limit LOGIN> with an
<Anonymous> exception; a write-only upload directory for one group; .ftpaccess changing under a running session;
DenyAll in a <Directory>. Clients come from 127.0.0.1 or 127.0.0.2 (both loopback)."""

import ftplib
import io
import os

import pytest

from conftest import IS_ROOT, PASSWORDS, make_users
from conftest import error_reply as err

OTHER = "127.0.0.2"


@pytest.fixture
def server(ftpd, tmp_path):
    """ftpd with an extra group `uploaders` (alice only), an `ftp` anonymous account and world-writable
    directories srv/upload, srv/closed and srv/pub under the test directory."""
    from proftpy.auth.crypt import crypt_hash
    users = make_users(tmp_path)
    uid = 2310 if IS_ROOT else os.getuid()
    with open(tmp_path / "ftpd.passwd", "a") as f:
        f.write(f"ftp:{crypt_hash('x', 'sha512')}:{uid}:{uid}:anon:{tmp_path}/anon:/bin/sh\n")
    with open(tmp_path / "ftpd.group", "a") as f:
        f.write("uploaders:x:3000:alice\n")
    for sub in ("srv/upload", "srv/closed", "srv/pub", "anon"):
        (tmp_path / sub).mkdir(parents=True)
        os.chmod(tmp_path / sub, 0o777)
    (tmp_path / "srv" / "pub" / "file.txt").write_text("public\n")
    (tmp_path / "srv" / "closed" / "secret.txt").write_text("secret\n")
    os.chmod(tmp_path / "srv", 0o755)

    def start(config: str):
        d = ftpd("DefaultRoot {dir}\n" + config)       # the session sees the test directory as /
        d.users = users
        return d
    return start


def client(d, source=None, timeout=10) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=timeout, source_address=(source, 0) if source else None)
    ftp.connect(d.host, d.port)
    return ftp


def login(d, user="alice", source=None) -> ftplib.FTP:
    ftp = client(d, source)
    ftp.login(user, PASSWORDS[user])
    return ftp


def stor(ftp, name, data=b"data"):
    return ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def refused_at_connect(d, source) -> bool:
    try:
        ftp = client(d, source, timeout=5)
    except (EOFError, ConnectionError):
        return True
    ftp.close()
    return False


# -- Allow/Deny by address -----------------------------------------------------------------------------------------
def test_limit_login_deny_by_ip_closes_the_connection_without_greeting(server):
    d = server("<Limit LOGIN>\n  Deny from 127.0.0.2\n</Limit>\n")
    assert refused_at_connect(d, OTHER)
    login(d).quit()
    assert "denied" in d.log()


def test_cidr_allow_with_deny_all(server, tmp_path):
    d = server("<Limit STOR>\n  Allow from 127.0.0.0/31\n  DenyAll\n</Limit>\n")
    ftp = login(d, source=OTHER)
    ftp.cwd("/srv/pub")
    with pytest.raises(ftplib.error_perm, match="^550 new.txt: Operation not permitted$"):
        stor(ftp, "new.txt")
    assert not (tmp_path / "srv/pub/new.txt").exists()
    ftp.quit()
    ftp = login(d)
    ftp.cwd("/srv/pub")
    assert stor(ftp, "new.txt").startswith("226")
    ftp.quit()


def test_ip_glob_deny(server, tmp_path):
    d = server("<Limit MKD>\n  Deny from 127.0.0.[2-9]\n</Limit>\n")
    ftp = login(d, source=OTHER)
    with pytest.raises(ftplib.error_perm, match="^550 /srv/pub/d1: Permission denied$"):
        ftp.mkd("/srv/pub/d1")
    ftp.quit()
    ftp = login(d)
    ftp.mkd("/srv/pub/d1")
    ftp.quit()


def test_deny_by_class(server, tmp_path):
    d = server("<Class far>\n  From 127.0.0.2\n</Class>\n<Class near>\n  From 127.0.0.0/8\n</Class>\n"
               "<Limit DELE>\n  DenyClass far\n</Limit>\n")
    (tmp_path / "srv/pub/a").write_text("a")
    (tmp_path / "srv/pub/b").write_text("b")
    ftp = login(d, source=OTHER)
    with pytest.raises(ftplib.error_perm, match="^550 /srv/pub/a: Operation not permitted$"):
        ftp.delete("/srv/pub/a")
    ftp.quit()
    ftp = login(d)
    ftp.delete("/srv/pub/b")
    ftp.quit()
    assert (tmp_path / "srv/pub/a").exists() and not (tmp_path / "srv/pub/b").exists()


def test_denied_pasv_answers_501(server):
    d = server("<Limit PASV EPSV>\n  DenyAll\n</Limit>\n")
    ftp = login(d)
    with pytest.raises(ftplib.error_perm, match="^501 PASV: Operation not permitted$"):
        ftp.sendcmd("PASV")
    ftp.quit()


# -- LOGIN with an anonymous exception -----------------------------------------------------------------------------
ANON_ONLY_FROM_OUTSIDE = """
<Limit LOGIN>
  Deny from 127.0.0.2
</Limit>
<Anonymous {dir}/anon>
  User ftp
  UserAlias anonymous ftp
  RequireValidShell off
  <Limit LOGIN>
    AllowAll
  </Limit>
</Anonymous>
"""


def test_limit_login_denies_a_network_but_anonymous_is_let_in(server):
    d = server(ANON_ONLY_FROM_OUTSIDE)
    ftp = client(d, OTHER)                  # the <Anonymous> LOGIN limit rescues the connection
    with pytest.raises(ftplib.error_perm, match="^530 Login incorrect.$"):
        ftp.login("alice", PASSWORDS["alice"])
    ftp.close()
    ftp = client(d, OTHER)
    assert ftp.login("anonymous", "me@example.org").startswith("230 Anonymous access granted")
    ftp.quit()
    login(d).quit()                         # from 127.0.0.1 a real user may log in


# -- <Directory> write-only for a group ----------------------------------------------------------------------------
UPLOAD = """
<Directory {dir}/srv/upload>
  <Limit READ DIRS>
    DenyAll
  </Limit>
  <Limit WRITE>
    AllowGroup uploaders
    DenyAll
  </Limit>
</Directory>
"""


def test_upload_directory_is_write_only_for_its_group(server, tmp_path):
    d = server(UPLOAD)
    up = "/srv/upload"
    ftp = login(d, "alice")
    assert stor(ftp, f"{up}/one.txt", b"one").startswith("226")
    # ProFTPD's texts: EPERM for a <Limit> denial, ENOENT for CWD and NLST
    with pytest.raises(ftplib.error_perm, match=f"^550 {up}/one.txt: Operation not permitted$"):
        ftp.retrbinary(f"RETR {up}/one.txt", lambda b: None)
    with pytest.raises(ftplib.error_perm, match=f"^550 {up}: No such file or directory$"):
        ftp.cwd(up)
    with pytest.raises(ftplib.error_temp, match=f"^450 {up}: No such file or directory$"):
        ftp.nlst(up)
    ftp.quit()
    ftp = login(d, "bob")
    with pytest.raises(ftplib.error_perm, match=f"^550 {up}/two.txt: Operation not permitted$"):
        stor(ftp, f"{up}/two.txt")
    ftp.quit()
    assert (tmp_path / "srv/upload/one.txt").read_bytes() == b"one"
    assert not (tmp_path / "srv/upload/two.txt").exists()
    # elsewhere alice reads as usual
    ftp = login(d, "alice")
    ftp.retrbinary("RETR /srv/pub/file.txt", lambda b: None)
    ftp.quit()


# -- DenyAll in <Directory> ----------------------------------------------------------------------------------------
def test_denyall_in_directory(server, tmp_path):
    d = server("<Directory {dir}/srv/closed>\n  DenyAll\n</Directory>\n")
    closed = "/srv/closed"
    ftp = login(d)
    with pytest.raises(ftplib.error_perm, match=f"^550 {closed}: No such file or directory$"):
        ftp.cwd(closed)
    with pytest.raises(ftplib.error_perm, match=f"^550 {closed}/secret.txt: Permission denied$"):
        ftp.retrbinary(f"RETR {closed}/secret.txt", lambda b: None)
    with pytest.raises(ftplib.error_perm, match="Permission denied"):
        stor(ftp, f"{closed}/new.txt")
    ftp.cwd("/srv/pub")
    ftp.quit()


# -- .ftpaccess while a session runs -------------------------------------------------------------------------------
def _bump(path):
    """Make sure a rewritten .ftpaccess is seen as changed even within one mtime tick."""
    st = os.stat(path)
    os.utime(path, (st.st_atime, st.st_mtime + 2))


def test_ftpaccess_added_changed_and_removed_during_a_session(server, tmp_path):
    d = server("")
    pub = tmp_path / "srv/pub"
    ftp = login(d)
    ftp.cwd("/srv/pub")
    ftp.retrbinary("RETR file.txt", lambda b: None)
    (pub / ".ftpaccess").write_text("<Limit RETR>\n  DenyAll\n</Limit>\n")
    with pytest.raises(ftplib.error_perm, match="^550 file.txt: Operation not permitted$"):
        ftp.retrbinary("RETR file.txt", lambda b: None)
    assert stor(ftp, "up.txt").startswith("226")
    (pub / ".ftpaccess").write_text("<Limit STOR>\n  DenyUser alice\n</Limit>\n")
    _bump(pub / ".ftpaccess")
    ftp.retrbinary("RETR file.txt", lambda b: None)
    with pytest.raises(ftplib.error_perm, match="^550 up2.txt: Operation not permitted$"):
        stor(ftp, "up2.txt")
    (pub / ".ftpaccess").unlink()
    assert stor(ftp, "up2.txt").startswith("226")
    ftp.quit()


def test_ftpaccess_hides_entries_where_the_configuration_hides_nothing(server, tmp_path):
    """A listing skips its per-entry hiding checks only when neither the configuration nor a .ftpaccess hides."""
    d = server("")
    pub = tmp_path / "srv/pub"
    ftp = login(d)
    assert "/srv/pub/file.txt" in ftp.nlst("/srv/pub")
    (pub / ".ftpaccess").write_text("HideFiles ^file\\.txt$\n")
    assert "/srv/pub/file.txt" not in ftp.nlst("/srv/pub")
    ftp.cwd("/srv/pub")
    listed = []
    ftp.retrlines("LIST", listed.append)
    assert not any(line.endswith(" file.txt") for line in listed)
    ftp.quit()


def test_ftpaccess_ignored_with_allowoverride_off(server, tmp_path):
    d = server("<Directory {dir}/srv>\n  AllowOverride off\n</Directory>\n")
    (tmp_path / "srv/pub/.ftpaccess").write_text("<Limit RETR>\n  DenyAll\n</Limit>\n")
    ftp = login(d)
    ftp.retrbinary("RETR /srv/pub/file.txt", lambda b: None)
    ftp.quit()


def test_broken_ftpaccess_is_ignored_and_logged(server, tmp_path):
    d = server("")
    (tmp_path / "srv/pub/.ftpaccess").write_text("<Limit RETR>\n  NoSuchDirective on\n</Limit>\n")
    ftp = login(d)
    ftp.retrbinary("RETR /srv/pub/file.txt", lambda b: None)
    ftp.quit()
    assert "NoSuchDirective" in d.log()


@pytest.mark.parametrize("pattern", ["a{99999999999}", "(" * 2000 + ")" * 2000])
def test_an_ftpaccess_regex_python_cannot_compile_is_ignored_and_logged(server, tmp_path, pattern):
    """A user may write any .ftpaccess: a pattern re.compile refuses with OverflowError or RecursionError (not
    re.error) must be logged and ignored like any broken file, not fail the command with 451."""
    d = server("")
    (tmp_path / "srv/pub/.ftpaccess").write_text(f"HideFiles {pattern}\nPathDenyFilter {pattern}\n")
    ftp = login(d)
    assert ftp.cwd("/srv/pub") == "250 CWD command successful"
    ftp.retrbinary("RETR file.txt", lambda b: None)
    assert ftp.sendcmd("STAT .").startswith("212")
    ftp.quit()
    log = d.log()
    assert "HideFiles: bad regular expression" in log and "internal error" not in log


# -- filters -------------------------------------------------------------------------------------------------------
def test_path_deny_filter_and_deny_filter(server, tmp_path):
    d = server("PathDenyFilter \\.exe$\nDenyFilter \\*\\*\n")
    ftp = login(d)
    ftp.cwd("/srv/pub")
    with pytest.raises(ftplib.error_perm, match="^550 bad.exe: Forbidden filename$"):
        stor(ftp, "bad.exe")
    assert stor(ftp, "good.txt").startswith("226")
    with pytest.raises(ftplib.error_perm, match=r"^550 \*\*: Forbidden command argument$"):
        ftp.sendcmd("SIZE **")
    ftp.quit()


def test_ignore_hidden_answers_no_such_file(server, tmp_path):
    d = server("<Directory {dir}/srv/pub>\n  HideFiles ^file\\.txt$\n  <Limit RETR>\n    IgnoreHidden on\n"
               "  </Limit>\n</Directory>\n")
    ftp = login(d)
    ftp.cwd("/srv/pub")
    with pytest.raises(ftplib.error_perm, match="^550 file.txt: No such file or directory$"):
        ftp.retrbinary("RETR file.txt", lambda b: None)
    ftp.quit()


def test_ignore_hidden_keeps_each_command_s_own_answer(server, tmp_path):
    """SIZE still says ASCII mode first, STAT lists nothing, RNTO onto a hidden existing name is AllowOverwrite's
    refusal and else EPERM: ProFTPD's answers."""
    d = server("<Directory {dir}/srv/pub>\n  HideFiles ^file\\.txt$\n  <Limit ALL>\n    IgnoreHidden on\n"
               "  </Limit>\n</Directory>\n")
    ftp = login(d)
    ftp.cwd("/srv/pub")
    assert err(ftp, "SIZE file.txt") == "550 SIZE not allowed in ASCII mode"
    ftp.voidcmd("TYPE I")
    assert err(ftp, "SIZE file.txt") == "550 file.txt: No such file or directory"
    assert ftp.sendcmd("STAT file.txt").splitlines() == ["213-Status of file.txt:", "213 End of status"]
    stor(ftp, "new.txt")
    ftp.sendcmd("RNFR new.txt")
    assert err(ftp, "RNTO file.txt") == "550 file.txt: Rename permission denied"
    ftp.quit()


def test_a_denied_rnto_onto_an_existing_name_is_allow_overwrite_s_refusal(server, tmp_path):
    d = server("<Limit RNTO>\n  DenyAll\n</Limit>\n")
    ftp = login(d)
    ftp.cwd("/srv/pub")
    stor(ftp, "new.txt")
    ftp.sendcmd("RNFR new.txt")
    assert err(ftp, "RNTO file.txt") == "550 file.txt: Rename permission denied"
    ftp.sendcmd("RNFR new.txt")
    assert err(ftp, "RNTO other.txt") == "550 other.txt: Operation not permitted"
    ftp.quit()


# -- proftpy check-access ------------------------------------------------------------------------------------------
def check_access(conf_path, *args, config_first=False):
    """`proftpy check-access -c FILE ...`, or with the global option first: `proftpy -c FILE check-access ...`."""
    import subprocess
    import sys
    from conftest import REPO
    argv = (["-c", str(conf_path), "check-access"] if config_first else ["check-access", "-c", str(conf_path)])
    return subprocess.run([sys.executable, "-m", "proftpy", *argv, *args],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=30)


def test_check_access_names_the_deciding_line(tmp_path):
    conf = tmp_path / "p.conf"
    conf.write_text("UseReverseDNS off\n<Class far>\n  From 10.0.0.0/8\n</Class>\n"
                    f"<Directory {tmp_path}/upload>\n  <Limit WRITE>\n    AllowGroup uploaders\n    DenyAll\n"
                    "  </Limit>\n</Directory>\n<Limit LOGIN>\n  DenyClass far\n</Limit>\n")
    r = check_access(conf, "--user", "bob", "--from", "127.0.0.1", "--groups", "staff", "STOR",
                     f"{tmp_path}/upload/x.bin")
    assert r.returncode == 1, r.stderr
    assert f"STOR {tmp_path}/upload/x.bin: denied" in r.stdout
    assert f"decided by {conf}:8: DenyAll" in r.stdout
    r = check_access(conf, "--user", "alice", "--from", "127.0.0.1", "--groups", "uploaders", "STOR",
                     f"{tmp_path}/upload/x.bin")
    assert r.returncode == 0 and f"decided by {conf}:7: AllowGroup uploaders" in r.stdout
    r = check_access(conf, "--user", "alice", "--from", "10.1.1.1", "LOGIN")
    assert r.returncode == 1 and "class far" in r.stdout and f"{conf}:12: DenyClass far" in r.stdout
    r = check_access(conf, "--user", "alice", "--from", "nonsense", "LOGIN")
    assert r.returncode == 2 and "not an IP address" in r.stderr


def test_check_access_after_global_options(tmp_path):
    """As an administrator types it: `proftpy -c FILE check-access ...` reads FILE."""
    conf = tmp_path / "p.conf"
    conf.write_text("UseReverseDNS off\n<Limit LOGIN>\n  Deny 10.0.0.0/8\n</Limit>\n")
    r = check_access(conf, "--user", "alice", "--from", "10.1.1.1", "LOGIN", config_first=True)
    assert r.returncode == 1 and f"decided by {conf}:3: Deny 10.0.0.0/8" in r.stdout, r.stderr
    r = check_access(conf, "--user", "alice", "--from", "192.0.2.1", "LOGIN", config_first=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hidefiles_takes_names_out_of_listings(server, tmp_path):
    d = server("<Directory {dir}/srv/pub>\n  HideFiles ^file\\.txt$\n</Directory>\n")
    (tmp_path / "srv/pub/other.txt").write_text("x")
    ftp = login(d)
    assert sorted(n.rsplit("/", 1)[-1] for n in ftp.nlst("/srv/pub")) == ["other.txt"]
    ftp.quit()
