"""mod_auth_otp: HOTP and TOTP codes given as PASS (ftplib, curl), the HOTP counter in the SQLite table, reused and
wrong codes, users without a row, AuthOrder's `*`, the options, the lock file, a database that fails, bad lines."""

import fcntl
import ftplib
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import PASSWORDS, configtest, refused_config, wait_until
from proftpy.auth.otp import base32_decode, base32_encode, hotp, totp
from test_mod_sql import login_reply as login

KEY = b"12345678901234567890"               # RFC 4226's test key
SECRET = base32_encode(KEY)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "otp.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE auth_otp (user TEXT PRIMARY KEY, secret TEXT, counter INTEGER)")
        conn.execute("INSERT INTO auth_otp VALUES ('alice', ?, 0)", (SECRET,))
    conn.close()
    os.chmod(path, 0o600)
    return path


def otp_config(db, algorithm="hotp", order="mod_auth_otp.c* mod_auth_file.c", extra=""):
    return f"""\
AuthOrder {order}
SQLBackend sqlite3
SQLConnectInfo {db}
SQLAuthenticate off
SQLNamedQuery get-otp SELECT "secret, counter FROM auth_otp WHERE user = '%{{0}}'"
SQLNamedQuery set-otp UPDATE "counter = %{{1}} WHERE user = '%{{0}}'" auth_otp
AuthOTPEngine on
AuthOTPAlgorithm {algorithm}
AuthOTPTable sql:/get-otp/set-otp
AuthOTPLog {db.parent}/otp.log
{extra}
"""


def counter(db) -> int:
    with sqlite3.connect(db) as conn:
        value = conn.execute("SELECT counter FROM auth_otp WHERE user = 'alice'").fetchone()[0]
    conn.close()
    return value


def test_hotp_code_logs_in_and_moves_the_counter(ftpd, db):
    d = ftpd(otp_config(db))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER alice") == "331 One-time password required for alice"
        assert ftp.sendcmd("PASS " + hotp(KEY, 0)) == "230 User alice logged in"
        assert ftp.pwd() == "/"                                # DefaultRoot ~ (the test configuration)
    assert counter(db) == 1
    assert "SUCCESS: user 'alice' provided valid OTP code" in (db.parent / "otp.log").read_text()


def test_a_reused_hotp_code_passes_once_more_then_no_more(ftpd, db):
    """ProFTPD accepts the code one step behind the stored counter, and stores the counter plus one."""
    d = ftpd(otp_config(db, extra=f"TraceLog {db.parent}/trace.log\nTrace auth_otp:20"))
    code = hotp(KEY, 0)
    assert login(d, "alice", code) == "230 User alice logged in"
    assert login(d, "alice", code) == "230 User alice logged in"
    assert counter(db) == 2
    assert wait_until(lambda: "counter check SUCCEEDED for one counter window behind; client is out-of-sync" in
                      (db.parent / "trace.log").read_text(), 5)
    assert login(d, "alice", code) == "530 Login incorrect."
    assert counter(db) == 2
    assert login(d, "alice", hotp(KEY, 3)) == "230 User alice logged in"        # one step ahead
    assert counter(db) == 3


def test_wrong_code_and_real_password_refused_when_authoritative(ftpd, db):
    d = ftpd(otp_config(db))
    assert login(d, "alice", "000000") == "530 Login incorrect."
    assert login(d, "alice", PASSWORDS["alice"]) == "530 Login incorrect."
    assert login(d, "alice", hotp(KEY, 2)) == "530 Login incorrect."            # beyond the window
    assert counter(db) == 0
    assert "FAILED: user 'alice' provided invalid OTP code" in (db.parent / "otp.log").read_text()


def test_not_authoritative_the_password_still_works(ftpd, db):
    d = ftpd(otp_config(db, order="mod_auth_otp.c mod_auth_file.c"))
    assert login(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"
    assert login(d, "alice", hotp(KEY, 0)) == "230 User alice logged in"
    assert counter(db) == 1


def test_user_without_row_uses_the_password_unless_a_row_is_required(ftpd, db):
    d = ftpd(otp_config(db))
    assert login(d, "bob", PASSWORDS["bob"]) == "230 User bob logged in"
    assert "user 'bob' has no OTP info in AuthOTPTable" in (db.parent / "otp.log").read_text()
    d.stop()
    d = ftpd(otp_config(db, extra="AuthOTPOptions RequireTableEntry"))
    assert login(d, "bob", PASSWORDS["bob"]) == "530 Login incorrect."
    assert login(d, "alice", "000000") == "530 Login incorrect."
    assert login(d, "alice", hotp(KEY, 0)) == "230 User alice logged in"
    assert wait_until(lambda: "USER bob (Login failed): No such user found" in d.log(), 5), d.log()
    assert "USER alice (Login failed): Incorrect password" in d.log()


@pytest.mark.parametrize("algorithm,digest", [("totp", "sha1"), ("totp-sha256", "sha256"),
                                              ("totp-sha512", "sha512")])
def test_totp_code_of_now_logs_in(ftpd, db, algorithm, digest):
    d = ftpd(otp_config(db, algorithm))
    assert login(d, "alice", totp(KEY, time.time(), digest)) == "230 User alice logged in"
    assert login(d, "alice", totp(KEY, time.time() - 90, digest)) == "530 Login incorrect."
    assert counter(db) == 0                                    # TOTP never writes the table


def test_totp_code_replayed_within_its_window_passes(ftpd, db):
    """ProFTPD keeps no record of used TOTP codes: the same code works until it leaves the window."""
    d = ftpd(otp_config(db, "totp"))
    code = totp(KEY, time.time())
    assert login(d, "alice", code) == "230 User alice logged in"
    assert login(d, "alice", code) == "230 User alice logged in"


def test_totp_with_curl(ftpd, db):
    d = ftpd(otp_config(db, "totp"))
    res = subprocess.run(["curl", "-sS", "--max-time", "10", "-l",
                          f"ftp://alice:{totp(KEY, time.time())}@127.0.0.1:{d.port}/"],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["curl", "-sS", "--max-time", "10", "-l", f"ftp://alice:000000@127.0.0.1:{d.port}/"],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 67, res.stderr                   # CURLE_LOGIN_DENIED


def test_standard_response_keeps_the_usual_331(ftpd, db):
    d = ftpd(otp_config(db, extra="AuthOTPOptions FTPStandardResponse"))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER alice") == "331 Password required for alice"
        assert ftp.sendcmd("PASS " + hotp(KEY, 0)) == "230 User alice logged in"


def test_missing_named_query_leaves_otp_out(ftpd, db):
    d = ftpd(otp_config(db).replace("sql:/get-otp/set-otp", "sql:/get-otp/nothere"))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER alice") == "331 Password required for alice"
        assert ftp.sendcmd("PASS " + PASSWORDS["alice"]) == "230 User alice logged in"
    assert "unable to resolve SQLNamedQuery name 'nothere'" in (db.parent / "otp.log").read_text()


def test_database_error_ends_the_session_as_mod_sql_does(ftpd, db):
    d = ftpd(otp_config(db).replace("FROM auth_otp WHERE", "FROM missing WHERE"))
    with d.connect() as ftp:
        ftp.sendcmd("USER alice")
        with pytest.raises((EOFError, ftplib.Error, OSError)):
            ftp.sendcmd("PASS " + hotp(KEY, 0))
    assert wait_until(lambda: "unrecoverable backend error" in d.log(), 5), d.log()


def test_bad_secret_is_as_no_row(ftpd, db):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE auth_otp SET secret = 'not=base32'")
    conn.close()
    d = ftpd(otp_config(db, order="mod_auth_otp.c mod_auth_file.c"))
    assert login(d, "alice", PASSWORDS["alice"]) == "230 User alice logged in"
    assert "error base32-decoding value from database" in (db.parent / "otp.log").read_text()


def test_engine_off_changes_nothing(ftpd, db):
    d = ftpd(otp_config(db).replace("AuthOTPEngine on", "AuthOTPEngine off"))
    with d.connect() as ftp:
        assert ftp.sendcmd("USER alice") == "331 Password required for alice"
        assert ftp.sendcmd("PASS " + PASSWORDS["alice"]) == "230 User alice logged in"


def test_table_lock_is_held_while_the_counter_moves(ftpd, db, tmp_path):
    lock = tmp_path / "otp.lock"
    d = ftpd(otp_config(db, extra=f"AuthOTPTableLock {lock}"))
    assert login(d, "alice", hotp(KEY, 0)) == "230 User alice logged in"
    assert lock.exists()
    fd = os.open(lock, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)                            # another holder: the next login waits for it
    result = []
    worker = threading.Thread(target=lambda: result.append(login(d, "alice", hotp(KEY, 1))))
    worker.start()
    time.sleep(1)
    assert not result and counter(db) == 1
    fcntl.lockf(fd, fcntl.LOCK_UN)
    os.close(fd)
    worker.join(10)
    assert result == ["230 User alice logged in"]
    assert counter(db) == 2
    fd = os.open(lock, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)                            # held for good: the login goes on after 5 s
    try:
        started = time.monotonic()
        assert login(d, "alice", hotp(KEY, 2)) == "230 User alice logged in"
        assert 4 < time.monotonic() - started < 15
    finally:
        os.close(fd)
    assert "failed to write-lock AuthOTPTable" in (db.parent / "otp.log").read_text()


BAD_LINES = {"AuthOTPTable file:/x/y": "badly formatted parameter",
             "AuthOTPTable sql:/only": "badly formatted table info",
             "AuthOTPAlgorithm md5": "expected supported OTP algorithm",
             "AuthOTPOptions RequireTableEntry Bogus": "unknown AuthOTPOption 'Bogus'",
             "AuthOTPEngine maybe": "AuthOTPEngine"}


def test_bad_lines_are_refused_when_the_configuration_loads(tmp_path):
    for line, message in BAD_LINES.items():
        err = refused_config(tmp_path, line)
        assert "t.conf:2:" in err and message in err, (line, err)


def test_configtest_warns_of_what_sessions_would_ignore(tmp_path):
    res = configtest(tmp_path, "Port 0\nAuthOTPEngine on\n<VirtualHost 127.0.0.1>\nPort 0\nAuthOTPEngine on\n"
                               "AuthOTPTable sql:/get/set\nSQLNamedQuery get SELECT \"secret FROM t\"\n"
                               "</VirtualHost>\n")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "missing required AuthOTPTable directive, disabling module" in out
    assert "AuthOTPTable: no SQLNamedQuery 'set'" in out and "no SQLNamedQuery 'get'" not in out
    assert "AuthOTPTable: no SQLConnectInfo, no row can be read" in out


def test_secret_helpers_agree_with_the_table(db):
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT secret FROM auth_otp").fetchone()[0]
    conn.close()
    assert base32_decode(stored) == KEY


# -- mod_sftp: the keyboard-interactive driver, the password method -------------------------------------------------
def _sftp(d, tmp_path, user: str, answer: str, method: str) -> subprocess.CompletedProcess:
    """OpenSSH's sftp, `answer` given to every prompt (SSH_ASKPASS), with one authentication method."""
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{answer}'\n")
    askpass.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    return subprocess.run(["setsid", "-w", "sftp", "-o", "StrictHostKeyChecking=no", "-o",
                           "UserKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1", "-o",
                           f"PreferredAuthentications={method}", "-o",
                           "PubkeyAuthentication=no", "-o", "KbdInteractiveAuthentication=yes", "-P", str(d.port),
                           f"{user}@127.0.0.1"], capture_output=True, text=True, timeout=60, env=env, input="pwd\n")


def sftp_config(db, tmp_path, methods: str, order="mod_auth_otp.c* mod_auth_file.c") -> str:
    if not (tmp_path / "host_ed25519").exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host_ed25519")],
                       check=True)
    return (f"SFTPEngine on\nSFTPHostKey {tmp_path}/host_ed25519\nSFTPLog {tmp_path}/sftp.log\n"
            f"SFTPAuthMethods {methods}\nSFTPPAMEngine off\n" + otp_config(db, order=order))


def test_keyboard_interactive_asks_for_the_verification_code(ftpd, db, tmp_path):
    d = ftpd(sftp_config(db, tmp_path, "keyboard-interactive"))
    res = _sftp(d, tmp_path, "alice", hotp(KEY, 0), "keyboard-interactive")
    assert res.returncode == 0 and "Remote working directory: /" in res.stdout, res.stderr
    assert counter(db) == 1
    assert "user 'alice' authenticated via 'keyboard-interactive' method" in (tmp_path / "sftp.log").read_text()
    res = _sftp(d, tmp_path, "alice", "000000", "keyboard-interactive")
    assert res.returncode != 0 and "Permission denied" in res.stderr
    assert "keyboard-interactive authentication of 'alice' failed: wrong verification code" in \
        (tmp_path / "sftp.log").read_text()
    res = _sftp(d, tmp_path, "bob", PASSWORDS["bob"], "keyboard-interactive")     # no row: nothing to ask
    assert res.returncode != 0
    assert "no info for user 'bob' found in AuthOTPTable, skipping SSH2 keyboard-interactive challenge" in \
        (tmp_path / "otp.log").read_text()
    assert counter(db) == 1


@pytest.mark.parametrize("option,echo", [("", False), ("AuthOTPOptions DisplayVerificationCode", True)])
def test_verification_code_prompt_and_its_echo_flag(ftpd, db, tmp_path, option, echo):
    """The INFO_REQUEST: one prompt, `Verification code: `, echoed only with DisplayVerificationCode; a wrong
    answer is a USERAUTH_FAILURE."""
    from proftpy.net.ssh.wire import Reader, Writer
    from ssh_client import MiniClient
    d = ftpd(sftp_config(db, tmp_path, "keyboard-interactive") + option)
    c = MiniClient(d.port)
    try:
        c.send(Writer().byte(5).string(b"ssh-userauth").bytes())
        assert c.recv()[0] == 6
        c.send(Writer().byte(50).string(b"alice").string(b"ssh-connection").string(b"keyboard-interactive")
               .string(b"").string(b"").bytes())
        r = Reader(c.recv())
        assert r.byte() == 60
        r.string(), r.string(), r.string()                      # name, instruction, language
        assert (r.u32(), r.text(), r.boolean()) == (1, "Verification code: ", echo)
        c.send(Writer().byte(61).u32(1).string(b"000000").bytes())
        assert c.recv()[0] == 51
    finally:
        c.close()


def test_sftp_password_method_takes_the_code(ftpd, db, tmp_path):
    d = ftpd(sftp_config(db, tmp_path, "password"))
    res = _sftp(d, tmp_path, "alice", hotp(KEY, 0), "password")
    assert res.returncode == 0 and "Remote working directory: /" in res.stdout, res.stderr
    res = _sftp(d, tmp_path, "alice", PASSWORDS["alice"], "password")
    assert res.returncode != 0
    assert counter(db) == 1


def test_same_keyboard_interactive_logins_as_proftpd(open_tmp_path):
    """mod_auth_otp's keyboard-interactive driver against Debian's ProFTPD (mod_sftp, mod_sql_sqlite, mod_auth_otp)
    and proftpy on the same SQLite table: who gets in, and the HOTP counter after each try (not authoritative: the
    password method still takes the password)."""
    from conftest import PROFTPD, make_users, side_by_side
    tmp_path = open_tmp_path
    assert os.path.exists("/usr/lib/proftpd/mod_auth_otp.so"), "Debian's proftpd-core ships mod_auth_otp"
    make_users(tmp_path)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host")], check=True)
    config = f"""AuthOrder mod_auth_otp.c mod_auth_file.c
LoadModule mod_sql.c
LoadModule mod_sql_sqlite.c
LoadModule mod_sftp.c
LoadModule mod_auth_otp.c
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPAuthMethods keyboard-interactive password
SFTPLog {{dir}}/sftp.log
SQLBackend sqlite3
SQLConnectInfo {tmp_path}/otp.db
SQLAuthenticate off
SQLNamedQuery get-otp SELECT "secret, counter FROM auth_otp WHERE user = '%{{0}}'"
SQLNamedQuery set-otp UPDATE "counter = %{{1}} WHERE user = '%{{0}}'" auth_otp
AuthOTPEngine on
AuthOTPAlgorithm hotp
AuthOTPTable sql:/get-otp/set-otp
"""

    def drive(port: int, run) -> list:
        (tmp_path / "otp.db").unlink(missing_ok=True)
        with sqlite3.connect(tmp_path / "otp.db") as conn:
            conn.execute("CREATE TABLE auth_otp (user TEXT PRIMARY KEY, secret TEXT, counter INTEGER)")
            conn.execute("INSERT INTO auth_otp VALUES ('alice', ?, 0)", (SECRET,))
        conn.close()
        d = type("Server", (), {"port": port})
        out = []
        for user, answer, method in (("alice", hotp(KEY, 0), "keyboard-interactive"),
                                     ("alice", hotp(KEY, 0), "keyboard-interactive"),
                                     ("alice", hotp(KEY, 0), "keyboard-interactive"),
                                     ("alice", "000000", "keyboard-interactive"),
                                     ("bob", PASSWORDS["bob"], "keyboard-interactive"),
                                     ("alice", PASSWORDS["alice"], "password")):
            res = _sftp(d, run, user, answer, method)
            out.append((user, answer, method, res.returncode, counter(tmp_path / "otp.db")))
        return out

    assert os.path.exists(PROFTPD)
    results = side_by_side(tmp_path, config, drive)
    assert [r[3:] for r in results["proftpd"]] == [(0, 1), (0, 2), (255, 2), (255, 2), (255, 2), (0, 2)]
    assert results["proftpy"] == results["proftpd"]
    # outside AuthOrder the prompt comes and no code is right (ProFTPD checks it through mod_auth_file's crypt)
    other = tmp_path / "outside"
    other.mkdir()
    make_users(other)
    results = side_by_side(other, config.replace("AuthOrder mod_auth_otp.c mod_auth_file.c\n", ""), drive)
    assert [r[3:] for r in results["proftpd"]][:2] == [(255, 0), (255, 0)]
    assert results["proftpy"] == results["proftpd"]
