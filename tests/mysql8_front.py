"""A stand-in for MySQL 8's caching_sha2_password in front of the tests' MariaDB (Debian has no MySQL 8, and MariaDB
has no caching_sha2_password on its side): it greets a client as MySQL 8 does (caching_sha2_password, a nonce of
its own), always asks for the full authentication (0x04), answers the client's key request (0x02) with the PEM
public key of an RSA key `openssl genrsa` made, has `openssl pkeyutl -decrypt -pkeyopt rsa_padding_mode:oaep` open
the sealed password, XORs the nonce back out, and compares it with its own table. A right password: the front logs
in to MariaDB (as the account the name maps to, with the client's capability flags) and relays the rest of the
conversation both ways, so the client then runs its statements against the real server; a wrong one: MySQL's
`Access denied` ERR packet.

Used by tests/integration/test_mod_sql_mysql_auth.py and scripts/compare_proftpd.py (`-k sql-my-sha2`); Debian's
`mariadb` client (libmariadb's caching_sha2_password plugin) logs in through it too, which shows the exchange is the
one real clients speak. Loopback only, on a free port; a thread per client; `close()` stops it."""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import threading
from pathlib import Path

from proftpy.auth import mysql

SSL, CONNECT_ATTRS = 0x800, 0x100000


def packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    head = sock.recv(4, socket.MSG_WAITALL)
    if len(head) < 4:
        raise EOFError("peer closed")
    payload = sock.recv(int.from_bytes(head[:3], "little"), socket.MSG_WAITALL) if head[:3] != b"\0\0\0" else b""
    return head[3], payload


class Front:
    """`port`: where clients connect; `accounts`: {user: password} the front checks; `backend`: (port, user,
    password) of the MariaDB account every good login becomes."""

    def __init__(self, directory: Path, port: int, backend: tuple[int, str, str], accounts: dict[str, str]) -> None:
        self.key = directory / "mysql8-front.key"
        subprocess.run(["openssl", "genrsa", "-out", str(self.key), "2048"], check=True, capture_output=True,
                       timeout=60)
        self.pem = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-pubout"], check=True,
                                  capture_output=True, timeout=60).stdout
        self.port, self.backend, self.accounts = port, backend, accounts
        self.logins: list[tuple[str, bytes]] = []      # (user, the last packet of its authentication)
        self.opened: list[tuple[str, bytes]] = []      # (user, password + NUL) of the logins let through
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.2)
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    cert = None                 # no TLS (scripts/compare_proftpd.py reads `cert` and `stop` of each SQL server)

    def close(self) -> None:
        self.closing = True
        self.thread.join(5)
        self.listener.close()

    stop = close

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        backend = socket.create_connection(("127.0.0.1", self.backend[0]), timeout=10)
        client.settimeout(10)
        try:
            if self._login(client, backend):
                self._relay(client, backend)
        except (OSError, EOFError, subprocess.SubprocessError):
            pass                # a client or server gone mid-conversation: the test that cares sees it
        finally:
            client.close()
            backend.close()

    def _login(self, client: socket.socket, backend: socket.socket) -> bool:
        _, greeting = read_packet(backend)                     # MariaDB's: its version, capabilities, nonce
        version_end = greeting.index(b"\0", 1)
        caps_at = version_end + 1 + 4 + 8 + 1
        backend_nonce = greeting[version_end + 5:version_end + 13] + greeting[caps_at + 18:caps_at + 30]
        nonce = bytes(b % 94 + 33 for b in os.urandom(20))       # printable, no NUL, as MySQL's
        caps = struct.unpack_from("<H", greeting, caps_at)[0] | struct.unpack_from("<H", greeting, caps_at + 5)[0] << 16
        caps &= ~SSL
        client.sendall(packet(0, greeting[:version_end + 5] + nonce[:8] + b"\0"
                              + struct.pack("<H", caps & 0xFFFF) + greeting[caps_at + 2:caps_at + 5]
                              + struct.pack("<H", caps >> 16) + bytes([21]) + greeting[caps_at + 8:caps_at + 18]
                              + nonce[8:] + b"\0caching_sha2_password\0"))
        _, response = read_packet(client)
        r = mysql.Reader(response)
        flags, max_packet, charset, filler = r.int(4), r.int(4), r.int(1), r.take(23)
        user = r.cstr().decode()
        r.lenenc_bytes() if flags & mysql.PLUGIN_AUTH_LENENC else r.take(r.int(1))   # the scramble: ignored
        database = r.cstr() if flags & mysql.CONNECT_WITH_DB else b""
        client.sendall(packet(2, b"\x01\x04"))                 # "perform full authentication"
        seq, sealed = read_packet(client)
        if sealed == b"\x02":                                  # the key request; else the sealed password
            client.sendall(packet(seq + 1, b"\x01" + self.pem))
            seq, sealed = read_packet(client)
        self.logins.append((user, sealed))
        # as MySQL 8 on a connection without TLS: only what the key opens counts (a password in clear does not)
        mixed = subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", str(self.key), "-pkeyopt",
                                "rsa_padding_mode:oaep"], input=sealed, capture_output=True, timeout=60)
        opened = bytes(c ^ nonce[i % 20] for i, c in enumerate(mixed.stdout))
        if mixed.returncode != 0 or opened != self.accounts.get(user, "\0").encode() + b"\0":
            client.sendall(packet(seq + 1, b"\xff\x15\x04#28000Access denied for user '%s'@'127.0.0.1' "
                                  b"(using password: YES)" % user.encode()))
            return False
        self.opened.append((user, opened))
        flags &= ~(SSL | CONNECT_ATTRS)
        auth = mysql.native_password(self.backend[2], backend_nonce)
        body = (struct.pack("<IIB", flags, max_packet, charset) + filler + self.backend[1].encode() + b"\0"
                + (mysql.lenenc_bytes(auth) if flags & mysql.PLUGIN_AUTH_LENENC else bytes([len(auth)]) + auth)
                + (database + b"\0" if flags & mysql.CONNECT_WITH_DB else b"")
                + (b"mysql_native_password\0" if flags & mysql.PLUGIN_AUTH else b""))
        backend.sendall(packet(1, body))
        _, result = read_packet(backend)
        client.sendall(packet(seq + 1, result))                # MariaDB's OK (or ERR), in the client's sequence
        return result[:1] == b"\x00"

    def _relay(self, client: socket.socket, backend: socket.socket) -> None:
        """Commands reset the sequence numbers: from here on the bytes pass as they are."""
        ends = {client: backend, backend: client}
        while not self.closing:
            ready, _, _ = select.select(list(ends), [], [], 0.2)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                ends[sock].sendall(data)
