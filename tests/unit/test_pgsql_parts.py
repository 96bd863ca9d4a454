"""proftpy's PostgreSQL client, its pure parts: SCRAM-SHA-256 (RFC 7677's example), md5, the `?` -> `$n`
rewrite, message framing, and a conversation with a scripted server over a socket pair."""

import hashlib
import socket
import struct
import threading

import pytest

from proftpy.auth import pgsql
from proftpy.auth.pgsql import Connection, PgError, Scram, extended_query, md5_password, placeholders


def test_scram_rfc7677_example():
    s = Scram("pencil", user="user", nonce="rOprNGfwEbeRWgbNEkqO")
    assert s.first() == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    assert s.final(server_first) == ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    s.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(PgError, match="signature is wrong"):
        s.verify("v=" + "A" * 43 + "=")


def test_scram_refuses_a_nonce_the_client_did_not_start():
    s = Scram("pencil", nonce="abc")
    with pytest.raises(PgError, match="server-first"):
        s.final("r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


def test_md5_password():
    inner = hashlib.md5(b"secretbob").hexdigest()
    assert md5_password("bob", "secret", b"\x01\x02\x03\x04") == \
        "md5" + hashlib.md5(inner.encode() + b"\x01\x02\x03\x04").hexdigest()


@pytest.mark.parametrize("sql,expected", [
    ("SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"),
    ("SELECT '?', ? FROM t", "SELECT '?', $1 FROM t"),
    ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"),
    ("SELECT E'a\\' ?', ?", "SELECT E'a\\' ?', $1"),
    ('SELECT "we?rd" FROM t WHERE x = ?', 'SELECT "we?rd" FROM t WHERE x = $1'),
    ("SELECT $$ ? $$, $tag$ ?'$tag$, ?", "SELECT $$ ? $$, $tag$ ?'$tag$, $1"),
    ("SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2"),
    ("SELECT /* ? */ ?", "SELECT /* ? */ $1"),
    ("SELECT 'unterminated ?", "SELECT 'unterminated ?"),
    ("UPDATE t SET n = n + ? WHERE u = ?", "UPDATE t SET n = n + $1 WHERE u = $2"),
])
def test_placeholders(sql, expected):
    assert placeholders(sql) == expected


def _messages(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("!I", data, pos + 1)
        out.append((data[pos:pos + 1], data[pos + 5:pos + 1 + length]))
        pos += 1 + length
    return out


def test_extended_query_framing():
    msgs = _messages(extended_query("SELECT $1, $2, $3, $4", ["a'b", 7, 1.5, None]))
    assert [k for k, _ in msgs] == [b"P", b"B", b"E", b"S"]
    parse = msgs[0][1]
    assert parse == b"\0SELECT $1, $2, $3, $4\0" + struct.pack("!H4I", 4, 0, pgsql.INT8, pgsql.NUMERIC, 0)
    bind = msgs[1][1]
    assert bind == (b"\0\0" + struct.pack("!HH", 0, 4) + struct.pack("!i", 3) + b"a'b" + struct.pack("!i", 1) + b"7"
                    + struct.pack("!i", 3) + b"1.5" + struct.pack("!i", -1) + struct.pack("!H", 0))
    assert msgs[2][1] == b"\0" + struct.pack("!I", 0) and msgs[3][1] == b""
    with pytest.raises(PgError, match="NUL"):
        extended_query("SELECT 1\0", [])


def test_startup_message():
    data = pgsql.startup("ftp", "ftpdb")
    (length, version) = struct.unpack_from("!II", data)
    assert length == len(data) and version == 196608
    assert data[8:].split(b"\0")[:4] == [b"user", b"ftp", b"database", b"ftpdb"] and data.endswith(b"\0\0")


def test_data_row_and_errors():
    body = struct.pack("!H", 3) + struct.pack("!i", 2) + b"ab" + struct.pack("!i", -1) + struct.pack("!i", 0)
    assert pgsql.parse_data_row(body) == ("ab", None, "")
    assert pgsql.error_fields(b"SERROR\0C42703\0Mcolumn \"x\" does not exist\0\0") == {
        "S": "ERROR", "C": "42703", "M": 'column "x" does not exist'}


def _backend(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def test_conversation_with_a_scripted_server():
    """Cleartext login, then a statement whose rows arrive split across reads, then one the server refuses (the
    error is raised once ReadyForQuery came: the connection stays usable)."""
    ours, theirs = socket.socketpair()
    conn = Connection("127.0.0.1", 5432, "db", "u", "pw", 5.0)
    conn.sock = ours
    got = []

    def server():
        got.append(theirs.recv(4096))
        theirs.sendall(_backend(b"R", struct.pack("!I", 3)))
        got.append(theirs.recv(4096))
        theirs.sendall(_backend(b"R", struct.pack("!I", 0)) + _backend(b"S", b"server_version\x0015.0\0")
                       + _backend(b"Z", b"I"))
        got.append(theirs.recv(4096))
        reply = (_backend(b"1", b"") + _backend(b"2", b"") + _backend(b"D", struct.pack("!Hi", 1, 1) + b"x")
                 + _backend(b"C", b"SELECT 1\0") + _backend(b"Z", b"I"))
        for i in range(0, len(reply), 3):
            theirs.sendall(reply[i:i + 3])
        got.append(theirs.recv(4096))
        theirs.sendall(_backend(b"E", b"SERROR\0C42P01\0Mrelation \"t\" does not exist\0\0") + _backend(b"Z", b"I"))
    t = threading.Thread(target=server)
    t.start()
    try:
        conn._send(pgsql.startup("u", "db"))
        conn._authenticate()
        assert conn.parameters == {"server_version": "15.0"}
        assert conn.query("SELECT $1", ["a"]) == [("x",)]
        with pytest.raises(PgError, match='relation "t" does not exist') as err:
            conn.query("SELECT * FROM t")
        assert err.value.code == "42P01" and not err.value.broken
    finally:
        t.join(5)
        ours.close()
        theirs.close()
    assert got[1] == _backend(b"p", b"pw\0")


def test_a_silent_server_times_out():
    ours, theirs = socket.socketpair()
    conn = Connection("127.0.0.1", 5432, "db", "u", None, 0.2)
    ours.settimeout(0.2)
    conn.sock = ours
    try:
        with pytest.raises(PgError, match="timed out") as err:
            conn.query("SELECT 1")
        assert err.value.broken and conn.sock is None
    finally:
        theirs.close()
