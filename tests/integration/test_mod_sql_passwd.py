"""mod_sql_passwd: logins against an SQLite table of hashed passwords (each digest and encoding, salts from a file,
the user name and a query, options, rounds, PBKDF2, scrypt), and its directives' refusals. The expected column
values are computed here with hashlib."""

import base64
import hashlib
import sqlite3

import pytest

from conftest import IS_ROOT, refused_config
from test_mod_sql import UID, login_reply, make_db, sql_config, tmp_path  # noqa: F401  (tmp_path: a fixture)

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="SQL users have their own uids: the daemon must run as root")

PEPPER = b"pepper"


def h(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def passwd_db(tmp_path, users: list[tuple]) -> str:
    """The users (name, password column[, salt column[, pbkdf2 digest, iterations, length]]), homes made."""
    home = tmp_path / "sqlhome"
    path = make_db(tmp_path, [(u[0], u[1], UID + i, UID, str(home / u[0]), "/bin/sh") for i, u in enumerate(users)])
    conn = sqlite3.connect(path)
    for column in ("salt TEXT", "pdigest TEXT", "piter INTEGER", "plen INTEGER"):
        conn.execute(f"ALTER TABLE users ADD COLUMN {column}")
    for u in users:
        conn.execute("UPDATE users SET salt = ?, pdigest = ?, piter = ?, plen = ?  WHERE userid = ?",
                     [*(list(u[2:]) + [None] * 4)[:4], u[0]])
    conn.commit()
    conn.close()
    return path


def conf(db: str, types: str, extra: str = "", engine: bool = True) -> str:
    return sql_config(db, ("SQLPasswordEngine on\n" if engine else "") + extra, types=types)


@pytest.mark.parametrize("name,encoding,enc", [
    ("md5", "hex", lambda d: d.hex()), ("sha1", "HEX", lambda d: d.hex().upper()),
    ("sha256", "base64", lambda d: base64.b64encode(d).decode()), ("sha512", "hex", lambda d: d.hex())])
def test_digest_logins_in_each_encoding(ftpd, tmp_path, name, encoding, enc):
    db = passwd_db(tmp_path, [("ivy", enc(h(name, b"ivy-pw"))), ("jay", h(name, b"jay-pw").hex() + "0")])
    d = ftpd(conf(db, name, f"SQLPasswordEncoding {encoding}\n"))
    assert login_reply(d, "ivy", "ivy-pw") == "230 User ivy logged in"
    assert login_reply(d, "ivy", "ivy-pW") == "530 Login incorrect."
    assert login_reply(d, "jay", "jay-pw") == "530 Login incorrect."          # one character too many


def test_engine_off_refuses_hashed_passwords(ftpd, tmp_path):
    db = passwd_db(tmp_path, [("ivy", h("md5", b"ivy-pw").hex())])
    assert login_reply(ftpd(conf(db, "md5", engine=False)), "ivy", "ivy-pw") == "530 Login incorrect."


@pytest.mark.parametrize("where", ["Append", "Prepend"])
def test_salt_file_appended_or_prepended(ftpd, tmp_path, where):
    (tmp_path / "salt.hex").write_text(PEPPER.hex() + "\n")
    data = b"ivy-pw" + PEPPER if where == "Append" else PEPPER + b"ivy-pw"
    db = passwd_db(tmp_path, [("ivy", h("sha256", data).hex()), ("jay", h("sha256", b"jay-pw").hex())])
    d = ftpd(conf(db, "sha256", f"SQLPasswordSaltEncoding hex\nSQLPasswordSaltFile {tmp_path}/salt.hex {where}\n"))
    assert login_reply(d, "ivy", "ivy-pw") == "230 User ivy logged in"
    assert login_reply(d, "jay", "jay-pw") == "530 Login incorrect."          # unsalted digest


def test_user_salt_from_the_name(ftpd, tmp_path):
    db = passwd_db(tmp_path, [("ivy", h("sha1", b"ivy" + b"ivy-pw").hex())])
    d = ftpd(conf(db, "sha1", "SQLPasswordUserSalt name Prepend\n"))
    assert login_reply(d, "ivy", "ivy-pw") == "230 User ivy logged in"
    assert login_reply(d, "ivy", "wrong") == "530 Login incorrect."


def test_user_salt_from_a_query_and_salted_options(ftpd, tmp_path):
    """The salt column (base64) hashed and hex-encoded, the password too: HashEncodeSalt and HashEncodePassword."""
    def column(user: bytes, salt: bytes) -> str:
        return h("sha512", h("sha512", user + b"-pw").hex().encode() + h("sha512", salt).hex().encode()).hex()
    db = passwd_db(tmp_path, [("ivy", column(b"ivy", b"\0ivy"), base64.b64encode(b"\0ivy").decode()),
                              ("jay", column(b"jay", b"other"), base64.b64encode(b"jay-salt").decode())])
    d = ftpd(conf(db, "sha512", "SQLPasswordSaltEncoding base64\nSQLPasswordUserSalt sql:/salt\n"
                  "SQLNamedQuery salt SELECT \"salt FROM users WHERE userid = '%{0}'\"\n"
                  "SQLPasswordOptions HashEncodeSalt HashEncodePassword\n"))
    assert login_reply(d, "ivy", "ivy-pw") == "230 User ivy logged in"
    assert login_reply(d, "jay", "jay-pw") == "530 Login incorrect."          # hashed with another salt


def test_rounds(ftpd, tmp_path):
    text = h("md5", b"ivy-pw").hex().encode()
    for _ in range(4):
        text = h("md5", text).hex().encode()
    db = passwd_db(tmp_path, [("ivy", text.decode())])
    five = ftpd(conf(db, "md5", "SQLPasswordRounds 5\n"))
    assert login_reply(five, "ivy", "ivy-pw") == "230 User ivy logged in"
    five.stop()                             # one daemon at a time: they share the test's directory
    assert login_reply(ftpd(conf(db, "md5", "SQLPasswordRounds 4\n")), "ivy", "ivy-pw") == "530 Login incorrect."


def test_pbkdf2_with_fixed_and_per_user_parameters(ftpd, tmp_path):
    db = passwd_db(tmp_path, [
        ("ivy", hashlib.pbkdf2_hmac("sha256", b"ivy-pw", b"ivy", 1000, 32).hex(), "ivy", "sha1", 10, 16),
        ("jay", hashlib.pbkdf2_hmac("sha1", b"jay-pw", b"jay", 10, 16).hex(), "jay", "sha1", 10, 16)])
    fixed = ftpd(conf(db, "pbkdf2", "SQLPasswordPBKDF2 sha256 1000 32\nSQLPasswordUserSalt name\n"))
    assert login_reply(fixed, "ivy", "ivy-pw") == "230 User ivy logged in"
    assert login_reply(fixed, "jay", "jay-pw") == "530 Login incorrect."
    fixed.stop()
    per_user = ftpd(conf(db, "pbkdf2", "SQLPasswordPBKDF2 sql:/params\nSQLPasswordUserSalt sql:/salt\n"
                         "SQLNamedQuery salt SELECT \"salt FROM users WHERE userid = '%{0}'\"\n"
                         "SQLNamedQuery params SELECT \"pdigest, piter, plen FROM users WHERE userid = '%{0}'\"\n"))
    assert login_reply(per_user, "jay", "jay-pw") == "230 User jay logged in"
    assert login_reply(per_user, "ivy", "ivy-pw") == "530 Login incorrect."


def test_scrypt_with_a_32_byte_salt(ftpd, tmp_path):
    salt = bytes(range(32))
    (tmp_path / "salt.bin").write_bytes(salt)
    key = hashlib.scrypt(b"ivy-pw", salt=salt, n=16384, r=8, p=1, dklen=32)          # libsodium's interactive cost
    db = passwd_db(tmp_path, [("ivy", key.hex())])
    d = ftpd(conf(db, "scrypt", f"SQLPasswordSaltFile {tmp_path}/salt.bin\n"))
    assert login_reply(d, "ivy", "ivy-pw") == "230 User ivy logged in"
    assert login_reply(d, "ivy", "wrong") == "530 Login incorrect."


@pytest.mark.parametrize("line,message", [
    ("SQLPasswordEncoding Hex", "unsupported encoding 'Hex' configured"),
    ("SQLPasswordSaltEncoding b64", "unsupported encoding 'b64' configured"),
    ("SQLPasswordOptions HashPepper", "unknown SQLPasswordOption 'HashPepper'"),
    ("SQLPasswordRounds 0", "insufficient number of rounds (0)"),
    ("SQLPasswordSaltFile /etc/salt Middle", "unknown salt flag 'Middle'"),
    ("SQLPasswordUserSalt column", "badly formatted parameter"),
    ("SQLPasswordPBKDF2 sha999 1000 32", "unsupported digest algorithm 'sha999' configured"),
    ("SQLPasswordPBKDF2 sha1 0 32", "insufficient number of rounds (0)"),
    ("SQLPasswordPBKDF2 sha1 1000", "wrong number of parameters"),
    ("SQLPasswordCost cheap", "unknown/unsupported cost: 'cheap'"),
    ("SQLPasswordScrypt 0", "length must be greater than 0"),
    ("SQLPasswordEngine maybe", "SQLPasswordEngine"),
    ("SQLAuthTypes sha384", "unknown SQLAuthType 'sha384'"),
])
def test_bad_passwd_directives_are_refused(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert "t.conf:2:" in err and message in err, err


def test_module_is_listed_and_ifmodule_holds(ftpd, tmp_path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "proftpy", "-l"], capture_output=True, text=True).stdout.splitlines()
    assert "  mod_sql_passwd.c" in out
    db = passwd_db(tmp_path, [("ivy", h("md5", b"ivy-pw").hex())])
    d = ftpd("LoadModule mod_sql_passwd.c\n<IfModule mod_sql_passwd.c>\n" + conf(db, "md5") + "</IfModule>\n")
    assert login_reply(d, "ivy", "ivy-pw") == "230 User ivy logged in"
