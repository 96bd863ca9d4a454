"""proftpy's MySQL/MariaDB client, its pure parts: the scrambles, length-encoded values, COM_STMT_EXECUTE's
framing, binary result rows as text, ERR packets, and a handshake with an auth switch against a scripted server."""

import contextlib
import hashlib
import socket
import struct
import subprocess
import threading

import pytest

from proftpy.auth import ed25519, mysql
from proftpy.auth.mysql import Connection, MySqlError, Reader
from proftpy.net.ssh import crypto
from mysql8_front import packet as _packet, read_packet


def test_native_password_scramble():
    nonce = bytes(range(1, 21))
    stage1 = hashlib.sha1(b"secret").digest()
    mix = hashlib.sha1(nonce + hashlib.sha1(stage1).digest()).digest()
    assert mysql.native_password("secret", nonce + b"\0") == bytes(a ^ b for a, b in zip(stage1, mix))
    assert mysql.native_password("", nonce) == b""
    # what the server checks: SHA1(nonce + stored) XOR scramble == SHA1(password), stored = SHA1(SHA1(password))
    stored = hashlib.sha1(stage1).digest()
    scramble = mysql.native_password("secret", nonce)
    assert hashlib.sha1(bytes(a ^ b for a, b in zip(hashlib.sha1(nonce + stored).digest(), scramble))).digest() \
        == stored


@pytest.mark.parametrize("n", [0, 250, 251, 65535, 65536, 1 << 24, 1 << 40])
def test_lenenc_round_trip(n):
    assert Reader(mysql.lenenc_int(n)).lenenc() == n


def test_reader_null_and_short_packets():
    assert Reader(b"\xfb").lenenc_bytes() is None
    with pytest.raises(MySqlError, match="malformed"):
        Reader(b"\x05ab").lenenc_bytes()


def test_execute_payload():
    data = mysql.execute_payload(7, ["a'b", 5, 1.5, None])
    assert data[:10] == struct.pack("<BIBI", 0x17, 7, 0, 1)
    rest = data[10:]
    assert rest[0] == 0b1000 and rest[1] == 1                          # NULL bitmap (4th), new-params-bound
    assert rest[2:10] == bytes([mysql.T_VAR_STRING, 0, mysql.T_LONGLONG, 0, mysql.T_DOUBLE, 0, mysql.T_NULL, 0])
    assert rest[10:] == b"\x03a'b" + struct.pack("<q", 5) + struct.pack("<d", 1.5)
    assert mysql.execute_payload(7, []) == struct.pack("<BIBI", 0x17, 7, 0, 1)


def test_binary_rows_read_as_text():
    columns = [(mysql.T_LONG, 0, 0), (mysql.T_LONGLONG, mysql.UNSIGNED, 0), (mysql.T_VAR_STRING, 0, 0),
               (mysql.T_DATETIME, 0, 0), (mysql.T_DATE, 0, 0), (mysql.T_TIME, 0, 0), (mysql.T_DOUBLE, 0, 31),
               (mysql.T_TINY, 0, 0), (0xF6, 0, 2)]
    bitmap = bytes([0, 0b10])                                           # column 7 (bit 9) is NULL
    values = (struct.pack("<i", -3) + struct.pack("<Q", (1 << 64) - 1) + b"\x02hi"
              + bytes([7]) + struct.pack("<HBBBBB", 2024, 1, 2, 3, 4, 5) + bytes([4]) + struct.pack("<HBB", 2024, 1, 2)
              + bytes([8, 1]) + struct.pack("<I", 1) + bytes([3, 1, 2]) + struct.pack("<d", 1.5) + b"\x0512.30")
    assert mysql.binary_row(b"\x00" + bitmap + values, columns) == (
        "-3", "18446744073709551615", "hi", "2024-01-02 03:04:05", "2024-01-02", "-27:01:02", "1.5", None, "12.30")


def test_error_packet():
    e = mysql.error_of(b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied for user 'x'@'y'")
    assert (str(e), e.code, e.broken) == ("Access denied for user 'x'@'y'", 1045, False)


def _read_packet(sock) -> bytes:
    return read_packet(sock)[1]


def _greeting(nonce: bytes, plugin: bytes, version: bytes = b"8.0.0-test") -> bytes:
    """A server's handshake v10 packet."""
    caps = mysql.CLIENT_FLAGS | mysql.PROTOCOL_41
    return _packet(0, b"\x0a" + version + b"\0" + struct.pack("<I", 1) + nonce[:8] + b"\0"
                   + struct.pack("<HBHH", caps & 0xFFFF, 45, 2, caps >> 16) + bytes([21]) + bytes(10) + nonce[8:]
                   + b"\0" + plugin + b"\0")


@contextlib.contextmanager
def scripted(script, password: str | None = "secret"):
    """A Connection whose server is `script(sock)`, run in a thread; both ends closed afterwards."""
    ours, theirs = socket.socketpair()
    t = threading.Thread(target=script, args=(theirs,))
    t.start()
    conn = Connection("127.0.0.1", "ftpdb", "proftpd", password, 5.0)
    conn.sock = ours
    try:
        yield conn
    finally:
        t.join(5)
        ours.close()
        theirs.close()


def test_handshake_with_an_auth_switch_then_a_prepared_statement():
    """The server offers caching_sha2_password, switches the client to mysql_native_password with a new nonce,
    accepts it; a prepared SELECT with one parameter returns a row."""
    got = []
    nonce1, nonce2 = b"A" * 20, b"B" * 20

    def server(theirs):
        theirs.sendall(_greeting(nonce1, b"caching_sha2_password", b"10.11.0-test"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(2, b"\xfe" + b"mysql_native_password\0" + nonce2 + b"\0"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(4, b"\x00\x00\x00\x02\x00\x00\x00"))
        got.append(_read_packet(theirs))                               # COM_STMT_PREPARE
        coldef = (b"\x03def" + b"\x00" * 5 + b"\x0c" + struct.pack("<HIBHB", 45, 10, mysql.T_VAR_STRING, 0, 0)
                  + b"\0\0")
        eof = b"\xfe\x00\x00\x02\x00"
        theirs.sendall(_packet(1, b"\x00" + struct.pack("<IHHBH", 9, 1, 1, 0, 0)) + _packet(2, coldef)
                       + _packet(3, eof) + _packet(4, coldef) + _packet(5, eof))
        got.append(_read_packet(theirs))                               # COM_STMT_EXECUTE
        theirs.sendall(_packet(1, b"\x01") + _packet(2, coldef) + _packet(3, eof)
                       + _packet(4, b"\x00\x00\x05carol") + _packet(5, eof))
        got.append(_read_packet(theirs))                               # COM_STMT_CLOSE
    with scripted(server) as conn:
        conn._handshake()
        assert conn.server_version == "10.11.0-test"
        assert conn.query("SELECT name FROM users WHERE name = ?", ["carol"]) == [("carol",)]
    response = got[0]
    assert b"proftpd\0" in response and response.endswith(b"ftpdb\0caching_sha2_password\0")
    assert got[1] == mysql.native_password("secret", nonce2)
    assert got[2] == b"\x16SELECT name FROM users WHERE name = ?"
    assert got[3] == mysql.execute_payload(9, ["carol"]) and got[4] == struct.pack("<BI", 0x19, 9)


def test_a_silent_server_times_out():
    ours, theirs = socket.socketpair()
    conn = Connection("127.0.0.1", "db", "u", None, 0.2)
    ours.settimeout(0.2)
    conn.sock = ours
    try:
        with pytest.raises(MySqlError, match="timed out") as err:
            conn.query("SELECT 1")
        assert err.value.broken and conn.sock is None
    finally:
        theirs.close()


def test_caching_sha2_password_fast_path():
    """MySQL 8's default: the server had the password cached (0x03), OK follows; nothing more is sent."""
    nonce = b"C" * 20
    got = []

    def server(theirs):
        theirs.sendall(_greeting(nonce, b"caching_sha2_password"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(2, b"\x01\x03") + _packet(3, b"\x00\x00\x00\x02\x00\x00\x00"))
    with scripted(server) as conn:
        conn._handshake()
    scramble = mysql.caching_sha2_password("secret", nonce)
    assert mysql.lenenc_bytes(scramble) in got[0]
    stage1 = hashlib.sha256(b"secret").digest()
    assert scramble == bytes(a ^ b for a, b in zip(
        stage1, hashlib.sha256(hashlib.sha256(stage1).digest() + nonce).digest()))


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    """(private key file, its public key as the server sends it: SubjectPublicKeyInfo PEM), made by openssl."""
    path = tmp_path_factory.mktemp("rsa") / "server.key"
    subprocess.run(["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True, timeout=60)
    return path, subprocess.run(["openssl", "rsa", "-in", str(path), "-pubout"], check=True, capture_output=True,
                                timeout=60).stdout


def rsa_opened(key_path, sealed: bytes, nonce: bytes) -> bytes:
    """What the server reads: OpenSSL's RSA-OAEP decryption, XOR the nonce (repeated)."""
    mixed = subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", str(key_path), "-pkeyopt",
                            "rsa_padding_mode:oaep"], input=sealed, check=True, capture_output=True, timeout=60).stdout
    return bytes(c ^ nonce[i % 20] for i, c in enumerate(mixed))


LONG_PASSWORD = "a password longer than the nonce, ü"


def test_caching_sha2_full_authentication_with_the_servers_rsa_key(rsa_key):
    """No TLS, TCP: after 0x04 (full authentication) the client asks for the key (0x02), the server sends its PEM,
    the client answers (password + NUL) XOR nonce sealed with RSA-OAEP, which OpenSSL opens."""
    key_path, pem = rsa_key
    nonce = bytes(range(40, 60))
    got = []

    def server(theirs):
        theirs.sendall(_greeting(nonce, b"caching_sha2_password"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(2, b"\x01\x04"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(4, b"\x01" + pem))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(6, b"\x00\x00\x00\x02\x00\x00\x00"))
    with scripted(server, LONG_PASSWORD) as conn:
        conn._handshake()
    assert got[1] == b"\x02" and len(got[2]) == 256
    assert rsa_opened(key_path, got[2], nonce) == LONG_PASSWORD.encode() + b"\0"


def test_caching_sha2_full_authentication_over_a_unix_socket_is_in_clear():
    """A Unix socket is a secure transport for MySQL (as libmariadb treats it): the password, no key asked."""
    got = []

    def server(theirs):
        theirs.sendall(_greeting(b"D" * 20, b"caching_sha2_password"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(2, b"\x01\x04"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(4, b"\x00\x00\x00\x02\x00\x00\x00"))
    with scripted(server) as conn:
        conn.unix_socket = True
        conn._handshake()
    assert got[1] == b"secret\0"


@pytest.mark.parametrize("switch", [False, True])
def test_sha256_password_with_the_servers_rsa_key(rsa_key, switch):
    """sha256_password (named in the greeting, or switched to): the first answer asks for the key (0x01), the
    second is the sealed password."""
    key_path, pem = rsa_key
    nonce = bytes(range(70, 90))
    got = []

    def server(theirs):
        theirs.sendall(_greeting(b"E" * 20 if switch else nonce,
                                 b"mysql_native_password" if switch else b"sha256_password"))
        got.append(_read_packet(theirs))
        seq = 2
        if switch:
            theirs.sendall(_packet(2, b"\xfe" + b"sha256_password\0" + nonce + b"\0"))
            got.append(_read_packet(theirs))
            seq = 4
        theirs.sendall(_packet(seq, b"\x01" + pem))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(seq + 2, b"\x00\x00\x00\x02\x00\x00\x00"))
    with scripted(server, LONG_PASSWORD) as conn:
        conn._handshake()
    if switch:
        assert got[1] == b"\x01"
    else:
        assert got[0].endswith(b"\x01\x01ftpdb\0sha256_password\0")           # lenenc 1, the request
    assert rsa_opened(key_path, got[-1], nonce) == LONG_PASSWORD.encode() + b"\0"


@pytest.mark.parametrize("after_scramble,error", [
    (b"\x01-----BEGIN PUBLIC KEY-----\n", "unexpected packet"),     # a key nobody asked for: no password sent
    (b"\x01\x05", "unexpected packet"),
])
def test_caching_sha2_unexpected_more_data(after_scramble, error):
    def server(theirs):
        theirs.sendall(_greeting(b"F" * 20, b"caching_sha2_password"))
        _read_packet(theirs)
        theirs.sendall(_packet(2, after_scramble))
    with scripted(server) as conn:
        with pytest.raises(MySqlError, match=error) as err:
            conn._handshake()
        assert err.value.broken


@pytest.mark.parametrize("key", [b"not a key", b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"])
def test_caching_sha2_bad_server_key(key):
    got = []

    def server(theirs):
        theirs.sendall(_greeting(b"G" * 20, b"caching_sha2_password"))
        _read_packet(theirs)
        theirs.sendall(_packet(2, b"\x01\x04"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(4, b"\x01" + key))
    with scripted(server) as conn:
        with pytest.raises(MySqlError, match="RSA public key") as err:
            conn._handshake()
        assert err.value.broken
    assert got == [b"\x02"]


@pytest.mark.parametrize("nonce", [bytes(range(1, 33)), bytes(range(1, 31)) + b"\0\0"])
def test_auth_switch_to_client_ed25519(nonce):
    """MariaDB's greeting names mysql_native_password; for an ed25519 account the server switches the client to
    client_ed25519 with a 32-byte nonce (its last bytes may be zero), the answer is that nonce signed with the
    password's key, which the stored public key verifies."""
    got = []

    def server(theirs):
        theirs.sendall(_greeting(b"N" * 20, b"mysql_native_password", b"10.11.0-test"))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(2, b"\xfe" + b"client_ed25519\0" + nonce))
        got.append(_read_packet(theirs))
        theirs.sendall(_packet(4, b"\x00\x00\x00\x02\x00\x00\x00"))
    with scripted(server, "pässword") as conn:
        conn._handshake()
    assert got[0].endswith(b"ftpdb\0mysql_native_password\0")
    public = ed25519.public_key("pässword".encode())
    assert len(got[1]) == 64 and crypto.ed25519_verify(public, nonce, got[1])


def test_client_ed25519_with_a_short_nonce_is_refused():
    def server(theirs):
        theirs.sendall(_greeting(b"N" * 20, b"mysql_native_password"))
        _read_packet(theirs)
        theirs.sendall(_packet(2, b"\xfe" + b"client_ed25519\0" + b"x" * 20))
    with scripted(server) as conn:
        with pytest.raises(MySqlError, match="not 32 bytes") as err:
            conn._handshake()
        assert err.value.broken
