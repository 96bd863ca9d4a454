"""What the FTPS tests share: a throwaway PKI made once per test run (openssl command, EC keys: fast), and FTPS
clients built on ftplib (`FTPS` resumes the control connection's TLS session on its data connections, which
Python's FTP_TLS does not do by itself: cpython issue #63699)."""

from __future__ import annotations

import ftplib
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def read_reply(f) -> str:
    """One FTP reply from a file over the control connection, its lines joined by ` | `."""
    lines = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] == " ":
            return " | ".join(lines)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class Pki:
    """Files in `dir`: ca.pem; server.pem/server.key (CN localhost, signed by the CA); client certificates
    alice.pem/alice.key and bob.pem/bob.key (signed by the CA, CN = the user, an e-mail SAN user@example.org);
    stranger.pem/stranger.key (self-signed); expired.pem/expired.key; other.key (matches nothing)."""

    dir: Path

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def client(self, version: ssl.TLSVersion | None = None, cert: str | None = None) -> ssl.SSLContext:
        """A client context that trusts the test CA (and presents `cert`.pem/.key when given)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.path("ca.pem"))
        ctx.check_hostname = False
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        if cert is not None:
            ctx.load_cert_chain(self.path(f"{cert}.pem"), self.path(f"{cert}.key"))
        return ctx


def make_pki(d: Path) -> Pki:
    _openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=proftpy test CA",
             cwd=d)
    signed = [("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
              ("alice", "/CN=alice", "subjectAltName=email:alice@example.org"),
              ("bob", "/CN=bob", "subjectAltName=email:bob@example.org")]
    for name, subject, ext in signed:
        _openssl("req", "-new", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    _openssl("req", "-x509", *EC, "-keyout", "stranger.key", "-out", "stranger.pem", "-days", "2", "-subj",
             "/CN=alice", cwd=d)
    _openssl("req", "-new", *EC, "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "expired.csr", "-signkey", "expired.key", "-days", "-1", "-out", "expired.pem",
             cwd=d)
    _openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.key", cwd=d)
    for p in d.iterdir():
        p.chmod(0o644)
    d.chmod(0o755)
    return Pki(d)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def module_daemon(tmp_path_factory, name: str):
    """A Daemon of a test module's own (not started): its directory, a free port, the users alice and bob."""
    from conftest import Daemon, free_port, make_users
    base = tmp_path_factory.mktemp(name)
    d = Daemon(dir=base, port=free_port(), conf=base / "proftpy.conf")
    d.users = make_users(base)
    base.chmod(0o755)
    return d


class FTPS(ftplib.FTP_TLS):
    """ftplib's FTP_TLS whose data connections resume the control connection's TLS session (as curl, lftp and
    FileZilla do); `reuse=False` behaves as plain ftplib (a full handshake per data connection)."""

    def __init__(self, context: ssl.SSLContext, reuse: bool = True, timeout: float = 10):
        super().__init__(context=context, timeout=timeout)
        self.reuse = reuse

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session if self.reuse else None)
        return conn, size


def ftps(port: int, ctx: ssl.SSLContext, *, user: str | None = "alice", password: str | None = None,
         prot_p: bool = True, reuse: bool = True) -> FTPS:
    """Connected, AUTH TLS done, logged in (unless `user` is None), PBSZ 0 and PROT P (unless `prot_p` False)."""
    from conftest import PASSWORDS
    client = FTPS(ctx, reuse=reuse)
    client.connect("127.0.0.1", port)
    client.auth()
    if user is not None:
        client.login(user, password if password is not None else PASSWORDS[user])
    if prot_p:
        client.prot_p()
    return client


def plain(port: int, timeout: float = 10) -> ftplib.FTP:
    client = ftplib.FTP(timeout=timeout)
    client.connect("127.0.0.1", port)
    return client


def raw_reply(sock: socket.socket | ssl.SSLSocket) -> bytes:
    """One reply line (or a whole multi-line reply) read byte by byte, so nothing behind it is consumed."""
    out = bytearray()
    while not out.endswith(b"\r\n") or (out[3:4] == b"-" and not _last_line(out)):
        chunk = sock.recv(1)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _last_line(buf: bytearray) -> bool:
    lines = bytes(buf).split(b"\r\n")
    return len(lines) >= 2 and lines[-2][:4] == bytes(buf[:3]) + b" "
