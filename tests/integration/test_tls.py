"""FTPS (mod_tls) against the real daemon with real clients: ftplib's FTP_TLS (resuming the control session, and
not), curl (explicit, control-only and implicit FTPS), lftp (mirror both ways), `openssl s_client -starttls ftp`.

One daemon serves most tests (module scope): its main server is explicit FTPS, and each `<VirtualHost>` on a port
of its own holds one configuration under test (implicit FTPS, a TLSRequired form, client certificates...). The
replies are ProFTPD 1.3.8's, byte for byte (reference/modules.md §1d, §1e); TLSLog lines are its too (§1h)."""

from __future__ import annotations

import ftplib
import io
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PASSWORDS, REPO, Daemon, fill, free_port, start_daemon, wait_until
from tls_helpers import FTPS, ftps, module_daemon, pki, plain, raw_reply  # noqa: F401 - pki is a fixture

TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
REQUIRED_FORMS = ["on", "both", "ctrl+data", "ctrl", "control", "data", "!data", "ctrl+!data", "auth", "auth+data",
                  "auth+!data"]
VHOSTS = {
    "implicit": "TLSOptions UseImplicitSSL",
    "noreuse": "TLSOptions NoSessionReuseRequired",
    "verify": "TLSVerifyClient on",
    "dotlogin": "TLSOptions AllowDotLogin\nTLSVerifyClient optional",
    "peruser": "TLSRequired on\nTLSOptions AllowPerUser",
    "protocols": "Protocols ftps",
    "slow": "TLSTimeoutHandshake 1",
    "patient": "TLSTimeoutHandshake 2147483647",          # longer than poll() can wait at once
    "nocert": "",
    "dirs": "<Directory ~/secure>\n  TLSRequired on\n</Directory>\nAllowOverride on",
    "masq": "TLSMasqueradeAddress 127.0.0.9",
    "tls12": "TLSProtocol TLSv1.2\nTLSCipherSuite ECDHE-ECDSA-AES128-GCM-SHA256",
    "tls13": "TLSProtocol ALL -TLSv1.2\nTLSCipherSuite TLSv1.3 TLS_CHACHA20_POLY1305_SHA256",
    "tickets": "TLSSessionTickets on",
    **{f"required:{form}": f"TLSRequired {form}" for form in REQUIRED_FORMS},
}
CONFIG = """\
ServerName "proftpy test"
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
DefaultServer on
UseIPv6 off
UseReverseDNS off
PidFile {dir}/proftpy.pid
ScoreboardFile {dir}/proftpy.scoreboard
DelayTable {dir}/proftpy.delay
SystemLog {dir}/system.log
ControlsSocket {dir}/proftpy.sock
LogFormat tls "%{protocol} [%{note:TLS_PROTOCOL}] %m %s"
TLSVerifyClient optional
TLSUserName CommonName
<Global>
  AuthOrder mod_auth_file.c
  AuthUserFile {dir}/ftpd.passwd
  AuthGroupFile {dir}/ftpd.group
  RequireValidShell off
  UseFtpUsers off
  AllowOverwrite on
  DefaultRoot ~
  TimeoutIdle 20
  TLSEngine on
  TLSCACertificateFile {pki}/ca.pem
  TLSLog {dir}/tls.log
  TransferLog {dir}/xferlog
  ExtendedLog {dir}/ext.log ALL tls
  <Directory ~/capped>
    MaxStoreFileSize 64 KB
  </Directory>
</Global>
"""
CERTS = "TLSECCertificateFile {pki}/server.pem\nTLSECCertificateKeyFile {pki}/server.key\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pki):
    d = module_daemon(tmp_path_factory, "ftps")
    d.ports = {name: free_port() for name in VHOSTS}
    # clients send SNI `localhost` (the certificate's name): with a name-based server on the main port, a name no
    # server answers to is refused in the handshake (ProFTPD 1.3.8), so the main server answers to it
    text = CONFIG + CERTS + "ServerAlias localhost\n"
    for name, body in VHOSTS.items():
        certs = "" if name == "nocert" else CERTS           # a TLS server without a certificate
        text += f'<VirtualHost 127.0.0.1>\nServerName "{name}"\nPort {d.ports[name]}\n{certs}{body}\n</VirtualHost>\n'
    # a name-based server on the main port: a client naming it in its handshake (SNI) gets it
    text += f'<VirtualHost 127.0.0.1>\nServerName "named"\nPort {d.port}\nServerAlias ftp.example.test\n{CERTS}' \
            'TLSRequired data\n</VirtualHost>\n'
    d.conf.write_text(fill(text, dict(port=d.port, dir=d.dir, pki=pki.dir)))
    start_daemon(d)
    yield d
    d.stop()
    log = d.log()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]


def port(d: Daemon, name: str) -> int:
    return d.ports[name]


def tls_log(d: Daemon) -> str:
    path = d.dir / "tls.log"
    return path.read_text() if path.exists() else ""


def new_lines(d: Daemon, start: int) -> str:
    return tls_log(d)[start:]


def own_file(d: Daemon, user: str, rel: str, data: bytes) -> Path:
    path = d.home(user) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    uid, gid, _ = d.users[user]
    for p in (path, path.parent):
        os.chown(p, uid, gid)
    return path


def error(fn, *args) -> str:
    with pytest.raises(ftplib.Error) as e:
        fn(*args)
    return str(e.value)


# == FEAT, HELP and the replies of §1d ============================================================================
def test_feat_help_and_the_commands_before_auth(srv):
    ftp = plain(srv.port)
    feat = ftp.sendcmd("FEAT").splitlines()
    for line in (" AUTH TLS", " CCC", " PBSZ", " PROT", " SSCN"):
        assert line in feat
    assert " AUTH SSL" not in feat
    helped = ftp.sendcmd("HELP")
    assert "AUTH    CCC*    CONF*" in helped and "ENC*    MIC*    PBSZ    PROT    " in helped
    assert ftp.sendcmd("HELP AUTH") == "214 Syntax: AUTH <sp> base64-data"
    assert error(ftp.sendcmd, "PBSZ 0") == "500 PBSZ not understood"
    assert error(ftp.sendcmd, "PROT P") == "500 PROT not understood"
    assert error(ftp.sendcmd, "AUTH") == "504 AUTH requires at least one argument"
    assert error(ftp.sendcmd, "AUTH FOO") == "500 AUTH not understood"
    assert error(ftp.sendcmd, "CCC") == "530 Please login with USER and PASS"
    assert error(ftp.sendcmd, "SSCN") == "530 Please login with USER and PASS"
    ftp.quit()


def test_replies_on_an_encrypted_control_connection(srv, pki):
    ftp = ftps(srv.port, pki.client(), user=None, prot_p=False)
    assert error(ftp.sendcmd, "AUTH TLS") == "503 Unwilling to accept second AUTH"
    assert ftp.sendcmd("PBSZ 0") == "200 PBSZ 0 successful"
    assert ftp.sendcmd("PBSZ 16384") == "200 PBSZ=0 successful"
    assert error(ftp.sendcmd, "PBSZ") == "501 Invalid number of parameters"
    assert error(ftp.sendcmd, "PROT") == "501 Invalid number of parameters"
    assert error(ftp.sendcmd, "PROT S") == "536 PROT S unsupported"
    assert error(ftp.sendcmd, "PROT E") == "536 PROT E unsupported"
    assert error(ftp.sendcmd, "PROT X") == "504 PROT X unsupported"
    assert ftp.sendcmd("PROT C") == "200 Protection set to Clear"
    assert ftp.sendcmd("PROT P") == "200 Protection set to Private"
    ftp.login("alice", PASSWORDS["alice"])
    assert ftp.sendcmd("SSCN") == "200 SSCN:SERVER METHOD"
    assert ftp.sendcmd("SSCN ON") == "200 SSCN:CLIENT METHOD"
    assert ftp.sendcmd("SSCN") == "200 SSCN:CLIENT METHOD"
    assert ftp.sendcmd("SSCN OFF") == "200 SSCN:SERVER METHOD"
    assert error(ftp.sendcmd, "SSCN MAYBE") == "501 SSCN: Invalid argument"
    assert error(ftp.sendcmd, "SSCN ON OFF") == "504 SSCN: Invalid argument"
    ftp.quit()


def test_auth_after_a_plaintext_login_and_without_a_certificate(srv, pki):
    ftp = plain(srv.port)
    ftp.login("alice", PASSWORDS["alice"])
    assert error(ftp.sendcmd, "AUTH TLS") == "534 Unwilling to accept security parameters"
    ftp.quit()
    ftp = plain(port(srv, "nocert"))
    assert error(ftp.sendcmd, "AUTH TLS") == "431 Necessary security resource unavailable"
    ftp.quit()


def test_auth_ssl_protects_data_connections_without_prot(srv, pki):
    own_file(srv, "alice", "ssl.txt", b"via AUTH SSL\n")
    ftp = FTPS(pki.client())
    ftp.connect("127.0.0.1", srv.port)
    assert ftp.sendcmd("AUTH SSL") == "234 AUTH SSL successful"
    ftp.sock = ftp.context.wrap_socket(ftp.sock, server_hostname="localhost")
    ftp.file = ftp.sock.makefile("r", encoding=ftp.encoding)
    ftp.login("alice", PASSWORDS["alice"])
    ftp._prot_p = True                          # the client's side of it: the server protects without PROT P
    lines: list[str] = []
    ftp.retrlines("RETR ssl.txt", lines.append)
    assert lines == ["via AUTH SSL"]
    ftp.quit()


# == data connections and session reuse ===========================================================================
@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_transfers_over_protected_data_connections(srv, pki, version):
    start = len(tls_log(srv))
    data = os.urandom(3 << 20)
    ftp = ftps(srv.port, pki.client(version))
    name = f"up-{version.name}.bin"
    ftp.storbinary(f"STOR {name}", io.BytesIO(data))
    assert (srv.home("alice") / name).read_bytes() == data
    got = bytearray()
    ftp.retrbinary(f"RETR {name}", got.extend)
    assert got == data
    assert name in ftp.nlst()
    assert any(name in line for line in _listing(ftp))
    ftp.quit()
    log = new_lines(srv, start)
    wanted = "TLSv1.3" if version == TLS13 else "TLSv1.2"
    assert re.search(rf"mod_tls/2\.9\.2\[\d+\]: {wanted} connection accepted, using cipher \S+ \(\d+ bits\)", log)
    assert re.search(rf"{wanted} data connection accepted, using cipher \S+ \(\d+ bits, resumed session\)", log)
    assert log.count("client reused TLS session for data connection") == 4
    assert "Protection set to Private" in log and "client supports secure renegotiations" in log


def _listing(ftp: ftplib.FTP) -> list[str]:
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    return lines


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_a_client_that_does_not_resume_gets_150_then_425(srv, pki, version):
    start = len(tls_log(srv))
    ftp = ftps(srv.port, pki.client(version), reuse=False)
    host, p = ftplib.parse227(ftp.sendcmd("PASV"))
    ftp.putcmd("LIST")
    conn = socket.create_connection((host, p), timeout=10)
    assert ftp.getline() == "150 Opening ASCII mode data connection for file list"
    tls = pki.client(version).wrap_socket(conn, server_hostname="localhost")
    assert ftp.getline() == "425 Unable to build data connection: Operation not permitted"
    tls.close()
    assert ftp.sendcmd("NOOP") == "200 NOOP command successful"
    ftp.quit()
    assert ("client did not reuse TLS session, rejecting data connection (see the NoSessionReuseRequired "
            "TLSOptions parameter)\n") in new_lines(srv, start)
    assert "unable to open data connection: TLS negotiation failed" in new_lines(srv, start)


def assert_foreign_session_refused(ftp, other, ctx) -> None:
    """A PROT P data connection of `ftp` that resumes `other`'s control-channel TLS session: 150, then 425."""
    host, p = ftplib.parse227(ftp.sendcmd("PASV"))
    ftp.putcmd("NLST")
    conn = socket.create_connection((host, p), timeout=10)
    assert ftp.getline().startswith("150 ")
    tls = ctx.wrap_socket(conn, server_hostname="localhost", session=other.sock.session)
    assert ftp.getline() == "425 Unable to build data connection: Operation not permitted"
    tls.close()


def test_another_control_sessions_tls_session_is_not_accepted(srv, pki):
    """A TLS session of another FTP session (another child) cannot be resumed here: 425."""
    ctx = pki.client(TLS12)
    other = ftps(srv.port, ctx, user="bob")
    ftp = ftps(srv.port, ctx)
    ftp.sock_session = other.sock.session
    assert_foreign_session_refused(ftp, other, ctx)
    ftp.quit()
    other.quit()


def test_uploads_and_aborts_without_close_notify_keep_the_session_resumable(srv, pki):
    """OpenSSL forgets a session after a fatal error or a connection freed without close_notify: a client that
    ends an upload by just closing, or a RETR aborted half-way, must not make later data connections fail."""
    ftp = ftps(srv.port, pki.client(TLS12))
    ftp.voidcmd("TYPE I")
    for _ in range(2):
        conn = ftp.transfercmd("STOR sloppy.bin")
        conn.sendall(os.urandom(300_000))
        conn.close()                                # no unwrap(): no close_notify
        assert ftp.voidresp() == "226 Transfer complete"
    own_file(srv, "alice", "long.bin", os.urandom(8 << 20))
    conn = ftp.transfercmd("RETR long.bin")
    conn.recv(1000)
    ftp.putcmd("ABOR")                              # mid-transfer: 426, then 226
    assert ftp.getline() == "426 Transfer aborted. Data connection closed."
    assert ftp.getline() == "226 Abort successful"
    conn.close()
    got = bytearray()
    ftp.retrbinary("RETR sloppy.bin", got.extend)
    assert len(got) == 300_000
    ftp.quit()


def test_max_store_file_size_over_tls(srv, pki):
    """The TLS strategy writes what it decrypted buffer by buffer: the one that would pass MaxStoreFileSize is not
    written, the upload ends with 552 and the session goes on."""
    own_file(srv, "alice", "capped/.keep", b"")
    ftp = ftps(srv.port, pki.client(TLS12))
    ftp.voidcmd("TYPE I")
    ftp.storbinary("STOR capped/fits.bin", io.BytesIO(b"x" * (64 << 10)))
    conn = ftp.transfercmd("STOR capped/big.bin")
    try:
        conn.sendall(b"y" * (1 << 20))
        conn.unwrap()
    except OSError:
        pass                                        # expected: the server stopped reading
    conn.close()
    assert error(ftp.voidresp) == "552 Transfer aborted. File too large"
    assert (srv.home("alice") / "capped" / "fits.bin").stat().st_size == 64 << 10
    assert (srv.home("alice") / "capped" / "big.bin").stat().st_size <= 64 << 10
    assert ftp.sendcmd("NOOP") == "200 NOOP command successful"
    ftp.quit()


def test_the_longest_handshake_timeout_works(srv, pki):
    ftp = ftps(port(srv, "patient"), pki.client())
    assert isinstance(ftp.nlst(), list)
    ftp.quit()


def test_no_session_reuse_required_lifts_the_check(srv, pki):
    ftp = ftps(port(srv, "noreuse"), pki.client(), reuse=False)
    assert isinstance(ftp.nlst(), list)
    ftp.quit()


def test_ccc_clears_the_control_channel_and_keeps_data_protection(srv, pki):
    own_file(srv, "alice", "ccc.txt", b"after CCC\n")
    ftp = ftps(srv.port, pki.client(), reuse=False)
    assert ftp.ccc() == "200 Clearing control channel protection"
    assert ftp.sendcmd("NOOP") == "200 NOOP command successful"
    lines: list[str] = []
    ftp.retrlines("RETR ccc.txt", lines.append)         # TLS, and no reuse demanded after CCC (Bug#3465)
    assert lines == ["after CCC"]
    assert error(ftp.sendcmd, "AUTH TLS") == "534 Unwilling to accept security parameters"
    assert error(ftp.sendcmd, "PBSZ 0") == "503 PBSZ not allowed on insecure control connection"
    assert error(ftp.sendcmd, "CCC") == "533 CCC not allowed on insecure control connection"
    ftp.quit()


def test_tls_masquerade_address_only_for_ftps(srv, pki):
    clear = plain(port(srv, "masq"))
    clear.login("alice", PASSWORDS["alice"])
    assert clear.sendcmd("PASV").startswith("227 Entering Passive Mode (127,0,0,1,")
    clear.quit()
    ftp = ftps(port(srv, "masq"), pki.client())
    assert ftp.sendcmd("PASV").startswith("227 Entering Passive Mode (127,0,0,9,")
    ftp.quit()


def test_protocol_and_cipher_suites(srv, pki):
    ftp = ftps(port(srv, "tls12"), pki.client())
    assert ftp.sock.version() == "TLSv1.2" and ftp.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert isinstance(ftp.nlst(), list)
    ftp.quit()
    ftp = ftps(port(srv, "tls13"), pki.client())
    assert ftp.sock.version() == "TLSv1.3" and ftp.sock.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"
    ftp.quit()
    client = FTPS(pki.client(TLS12))                # TLSv1.2 only, against a TLSv1.3-only server
    client.connect("127.0.0.1", port(srv, "tls13"))
    with pytest.raises(ssl.SSLError):
        client.auth()
    client.close()


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
def test_session_tickets_bind_data_connections_too(srv, pki, version):
    """TLSSessionTickets on: TLSv1.2 resumes by ticket (no session ID to compare); each session's own ticket
    keys still refuse a ticket of another session."""
    ctx = pki.client(version)
    ftp = ftps(port(srv, "tickets"), ctx)
    for _ in range(3):
        assert isinstance(ftp.nlst(), list)
    other = ftps(port(srv, "tickets"), ctx, user="bob")
    assert_foreign_session_refused(ftp, other, ctx)
    assert isinstance(ftp.nlst(), list)
    ftp.quit()
    other.quit()


def test_sni_selects_a_name_based_server(srv, pki):
    by_name = FTPS(pki.client())
    by_name.connect("127.0.0.1", srv.port)
    by_name.host = "ftp.example.test"            # ftplib sends it as SNI
    by_name.auth()
    by_name.login("alice", PASSWORDS["alice"])
    assert error(by_name.nlst) == "522 SSL/TLS required on the data channel"      # the named server's TLSRequired
    by_name.quit()
    ftp = ftps(srv.port, pki.client(), prot_p=False)                              # no SNI: the main server
    assert isinstance(ftp.nlst(), list)
    ftp.quit()


# == real clients ===================================================================================================
def _curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=timeout)


def test_curl_explicit_ftps_upload_download_listing(srv, tmp_path):
    url = f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{srv.port}"
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1 << 20))
    up = _curl("--ssl-reqd", "-k", "-T", str(src), f"{url}/curl.bin")
    assert up.returncode == 0, up.stderr
    assert (srv.home("alice") / "curl.bin").read_bytes() == src.read_bytes()
    down = _curl("--ssl-reqd", "-k", f"{url}/curl.bin")
    assert down.returncode == 0 and down.stdout == src.read_bytes(), down.stderr
    listing = _curl("--ssl-reqd", "-k", "--list-only", f"{url}/")
    assert b"curl.bin" in listing.stdout.split(b"\r\n") or b"curl.bin" in listing.stdout.split(), listing.stderr
    control_only = _curl("--ftp-ssl-control", "-k", f"{url}/curl.bin")    # data connections in the clear
    assert control_only.returncode == 0 and control_only.stdout == src.read_bytes(), control_only.stderr


def test_curl_implicit_ftps(srv, tmp_path):
    own_file(srv, "alice", "implicit.txt", b"implicit FTPS\n")
    url = f"ftps://alice:{PASSWORDS['alice']}@127.0.0.1:{port(srv, 'implicit')}"
    got = _curl("-k", f"{url}/implicit.txt")
    assert got.returncode == 0 and got.stdout == b"implicit FTPS\n", got.stderr
    src = tmp_path / "up.txt"
    src.write_bytes(b"uploaded over implicit FTPS\n")
    assert _curl("-k", "-T", str(src), f"{url}/implicit-up.txt").returncode == 0
    assert (srv.home("alice") / "implicit-up.txt").read_bytes() == src.read_bytes()


def test_implicit_ftps_greets_only_after_the_handshake(srv, pki):
    sock = socket.create_connection(("127.0.0.1", port(srv, "implicit")), timeout=10)
    tls = pki.client().wrap_socket(sock, server_hostname="localhost")
    assert raw_reply(tls).startswith(b"220 ")
    tls.sendall(b"PBSZ 0\r\n")                  # AUTH is implied: PBSZ/PROT work at once
    assert raw_reply(tls) == b"200 PBSZ 0 successful\r\n"
    tls.close()
    plain_client = socket.create_connection(("127.0.0.1", port(srv, "implicit")), timeout=10)
    plain_client.sendall(b"USER alice\r\n")     # not a ClientHello: the handshake fails, no FTP is spoken
    try:
        got = plain_client.recv(100)
    except ConnectionResetError:                # the server closed with the client's bytes unread
        got = b""
    assert got in (b"", b"421 TLS handshake failed\r\n")
    plain_client.close()


def test_lftp_ssl_force_protect_data_mirror_both_ways(srv, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    for i in range(3):
        (local / f"f{i}.bin").write_bytes(os.urandom(100_000 + i))
    script = (f"set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; "
              f"set net:max-retries 1; open -u alice,{PASSWORDS['alice']} ftp://127.0.0.1:{srv.port}; "
              f"mkdir -f lmirror; mirror -R {local} lmirror; mirror lmirror {tmp_path / 'back'}; bye")
    res = subprocess.run(["lftp", "-c", script], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    for i in range(3):
        want = (local / f"f{i}.bin").read_bytes()
        assert (srv.home("alice") / "lmirror" / f"f{i}.bin").read_bytes() == want
        assert (tmp_path / "back" / f"f{i}.bin").read_bytes() == want


def test_openssl_s_client_starttls_ftp(srv):
    commands = f"USER alice\r\nPASS {PASSWORDS['alice']}\r\nPWD\r\nQUIT\r\n".encode()
    res = subprocess.run(["openssl", "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{srv.port}", "-quiet",
                          "-crlf"], input=commands, capture_output=True, timeout=30)
    out = res.stdout.decode()
    assert "230 User alice logged in" in out and '257 "/' in out and "221 Goodbye." in out, (out, res.stderr)


# == client certificates ==========================================================================================
def test_tls_user_name_logs_in_without_password_232(srv, pki):
    ftp = ftps(srv.port, pki.client(cert="alice"), user=None, prot_p=False)
    assert ftp.sendcmd("USER alice") == "232 User alice logged in"
    assert ftp.sendcmd("PWD").startswith("257 ")
    ftp.quit()
    ftp = ftps(srv.port, pki.client(cert="alice"), user=None, prot_p=False)
    assert ftp.sendcmd("USER bob") == "331 Password required for bob"      # another user's certificate
    ftp.quit()
    assert "TLS/X509 TLSUserName 'CommonName' check successful for user 'alice'" in tls_log(srv)


def test_client_certificate_required(srv, pki):
    ftp = ftps(port(srv, "verify"), pki.client(cert="bob"), user="bob")
    assert isinstance(ftp.nlst(), list)
    ftp.quit()
    for cert in (None, "stranger"):             # none, or one no CA of ours signed: the handshake fails
        client = FTPS(pki.client(cert=cert))
        client.connect("127.0.0.1", port(srv, "verify"))
        with pytest.raises((ssl.SSLError, ConnectionError, EOFError, ftplib.Error)):
            client.auth()
            client.login("bob", PASSWORDS["bob"])
        client.close()


def test_client_certificate_optional(srv, pki):
    for cert in (None, "bob"):
        ftp = ftps(srv.port, pki.client(cert=cert), user="bob")
        assert isinstance(ftp.nlst(), list)
        ftp.quit()
    client = FTPS(pki.client(cert="stranger"))   # optional still verifies a certificate that is sent
    client.connect("127.0.0.1", srv.port)
    with pytest.raises((ssl.SSLError, ConnectionError, EOFError, ftplib.Error)):
        client.auth()
        client.voidcmd("NOOP")
    client.close()


def test_allow_dot_login(srv, pki):
    own_file(srv, "bob", ".tlslogin", Path(pki.path("bob.pem")).read_bytes())
    ftp = ftps(port(srv, "dotlogin"), pki.client(cert="bob"), user=None, prot_p=False)
    assert ftp.sendcmd("USER bob") == "232 User bob logged in"
    ftp.quit()
    ftp = ftps(port(srv, "dotlogin"), pki.client(cert="alice"), user=None, prot_p=False)
    assert ftp.sendcmd("USER bob") == "331 Password required for bob"
    ftp.quit()


# == TLSRequired ====================================================================================================
def _expected(form: str) -> dict[str, bool]:
    flags = {"on": (1, 1, 1), "both": (1, 1, 1), "ctrl+data": (1, 1, 1), "ctrl": (1, 1, 0), "control": (1, 1, 0),
             "data": (0, 0, 1), "!data": (0, 0, -1), "ctrl+!data": (1, 1, -1), "auth": (0, 1, 0),
             "auth+data": (0, 1, 1), "auth+!data": (0, 1, -1)}[form]
    return {"ctrl": flags[0] == 1, "auth": flags[1] == 1, "data": flags[2]}


@pytest.mark.parametrize("form", REQUIRED_FORMS)
def test_tls_required_forms(srv, pki, form):
    want = _expected(form)
    p = port(srv, f"required:{form}")
    start = len(tls_log(srv))
    clear = plain(p)
    assert clear.sendcmd("SYST") == "215 UNIX Type: L8"                 # never hindered
    if want["auth"]:
        assert error(clear.sendcmd, "USER alice") == "550 SSL/TLS required on the control channel"
    else:
        assert clear.sendcmd("USER alice").startswith("331 ")
    if want["ctrl"]:
        assert error(clear.sendcmd, "NOOP") == "550 SSL/TLS required on the control channel"
    else:
        assert clear.sendcmd("NOOP") == "200 NOOP command successful"
    if not want["auth"]:
        clear.sendcmd(f"PASS {PASSWORDS['alice']}")
        if want["data"] == 1:
            assert error(clear.nlst) == "522 SSL/TLS required on the data channel"
        else:
            assert isinstance(clear.nlst(), list)
    clear.quit()
    secure = ftps(p, pki.client(), prot_p=False)
    if want["data"] == 1:
        assert error(secure.sendcmd, "PROT C") == "534 Unwilling to accept security parameters"
        assert error(secure.nlst) == "522 SSL/TLS required on the data channel"
    else:
        assert isinstance(secure.nlst(), list)
    if want["data"] == -1:
        assert error(secure.sendcmd, "PROT P") == "534 Unwilling to accept security parameters"
    else:
        secure.prot_p()
        assert isinstance(secure.nlst(), list)
    if want["ctrl"]:
        assert error(secure.sendcmd, "CCC") == "534 Unwilling to accept security parameters"
    secure.quit()
    log = new_lines(srv, start)
    if want["auth"]:
        assert "SSL/TLS required but absent for authentication, denying USER command" in log
    if want["ctrl"]:
        assert "SSL/TLS required but absent on control channel, denying NOOP command" in log


def test_tls_required_in_a_directory_covers_data_commands_there(srv, pki):
    secure_dir = srv.home("alice") / "secure"
    own_file(srv, "alice", "secure/inside.txt", b"x")
    ftp = ftps(port(srv, "dirs"), pki.client(), prot_p=False)
    assert isinstance(ftp.nlst(), list)
    ftp.cwd("secure")
    start = len(tls_log(srv))
    assert error(ftp.nlst) == "522 SSL/TLS required on the data channel"
    assert f"NLST command denied by TLSRequired in directory '{secure_dir}'" in new_lines(srv, start)
    ftp.prot_p()
    assert ftp.nlst() == ["inside.txt"]
    ftp.quit()


def test_tls_required_in_ftpaccess(srv, pki):
    own_file(srv, "alice", "guarded/.ftpaccess", b"TLSRequired on\n")
    own_file(srv, "alice", "guarded/file.txt", b"x")
    ftp = ftps(port(srv, "dirs"), pki.client(), prot_p=False)
    ftp.cwd("guarded")
    assert error(ftp.nlst) == "522 SSL/TLS required on the data channel"
    ftp.quit()


def test_allow_per_user_checks_after_pass(srv, pki):
    clear = plain(port(srv, "peruser"))
    assert clear.sendcmd("USER alice").startswith("331 ")
    clear.putcmd(f"PASS {PASSWORDS['alice']}")
    assert clear.getline() == "530 Login incorrect."          # instead of the 230, as ProFTPD
    assert clear.sock.recv(10) == b""
    clear.close()
    ftp = ftps(port(srv, "peruser"), pki.client())
    assert isinstance(ftp.nlst(), list)
    ftp.quit()


def test_protocols_refuses_plain_ftp_after_pass(srv, pki):
    clear = plain(port(srv, "protocols"))
    clear.sendcmd("USER alice")
    clear.putcmd(f"PASS {PASSWORDS['alice']}")
    assert clear.getline() == "530 Login incorrect."
    clear.close()
    ftp = ftps(port(srv, "protocols"), pki.client())
    assert ftp.sendcmd("NOOP") == "200 NOOP command successful"
    ftp.quit()


# == hostile clients ================================================================================================
def test_commands_pipelined_behind_auth_are_never_run(srv, pki):
    start = len(tls_log(srv))
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    assert raw_reply(sock).startswith(b"220 ")
    sock.sendall(f"AUTH TLS\r\nUSER alice\r\nPASS {PASSWORDS['alice']}\r\nMKD injected\r\n".encode())
    assert raw_reply(sock) == b"234 AUTH TLS successful\r\n"
    tls = pki.client().wrap_socket(sock, server_hostname="localhost")
    tls.sendall(b"NOOP\r\n")
    assert raw_reply(tls) == b"200 NOOP command successful\r\n"       # the next reply is ours, not 331
    tls.sendall(b"PWD\r\n")
    assert raw_reply(tls) == b"530 Please login with USER and PASS\r\n"
    tls.close()
    assert not (srv.home("alice") / "injected").exists()
    assert re.search(r"discarded \d+ bytes sent in the clear before the TLS handshake", new_lines(srv, start))


def test_a_handshake_that_never_finishes_ends_with_421(srv):
    start = len(tls_log(srv))
    sock = socket.create_connection(("127.0.0.1", port(srv, "slow")), timeout=10)
    assert raw_reply(sock).startswith(b"220 ")
    sock.sendall(b"AUTH TLS\r\n")
    assert raw_reply(sock) == b"234 AUTH TLS successful\r\n"
    began = time.monotonic()
    assert raw_reply(sock) == b"421 TLS handshake failed\r\n"          # TLSTimeoutHandshake 1
    assert 0.8 < time.monotonic() - began < 5
    assert sock.recv(10) == b""
    sock.close()
    log = new_lines(srv, start)
    assert "TLS negotiation timed out (1 seconds)" in log
    assert "TLS/TLS-C negotiation failed on control channel" in log


def test_a_broken_handshake_ends_with_421(srv):
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    raw_reply(sock)
    sock.sendall(b"AUTH TLS\r\n")
    assert raw_reply(sock) == b"234 AUTH TLS successful\r\n"
    sock.sendall(b"\x16\x03\x01\x00\x05hello")       # a handshake record, but no ClientHello in it
    rest = b""
    while chunk := sock.recv(4096):
        rest += chunk
    assert rest.endswith(b"421 TLS handshake failed\r\n")        # after OpenSSL's alert
    sock.close()


# == what the logs and the tools say ================================================================================
def test_scoreboard_and_logs_say_ftps(srv, pki):
    own_file(srv, "alice", "logged.txt", b"logged\n")
    ftp = ftps(srv.port, pki.client(TLS13))
    ftp.retrbinary("RETR logged.txt", lambda b: None)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    who = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpwho", "-v", "-f", str(srv.dir / "proftpy.scoreboard")],
                         capture_output=True, text=True, env=env, timeout=30).stdout
    assert "\tprotocol: ftps\n" in who
    ftp.quit()
    assert wait_until(lambda: "logged.txt" in (srv.dir / "xferlog").read_text())
    xfer = next(line for line in (srv.dir / "xferlog").read_text().splitlines() if "logged.txt" in line)
    assert " r alice ftps 0 * c" in xfer
    ext = (srv.dir / "ext.log").read_text()
    assert "ftps [TLSv1.3] RETR 226" in ext


# == SSCN: we are the TLS client of the data connection =============================================================
def test_sscn_on_makes_the_server_the_tls_client_of_port_transfers(srv, pki):
    own_file(srv, "alice", "fxp.bin", b"server to server\n")
    ftp = ftps(srv.port, pki.client())
    assert ftp.sendcmd("SSCN ON") == "200 SSCN:CLIENT METHOD"
    ftp.voidcmd("TYPE I")
    listener = socket.create_server(("127.0.0.1", 0))
    p = listener.getsockname()[1]
    ftp.sendcmd(f"PORT 127,0,0,1,{p >> 8},{p & 255}")
    ftp.putcmd("RETR fxp.bin")
    conn, _ = listener.accept()
    assert ftp.getline().startswith("150 ")
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(pki.path("server.pem"), pki.path("server.key"))
    tls = server_side.wrap_socket(conn, server_side=True)
    got = b""
    while chunk := tls.recv(65536):
        got += chunk
    assert got == b"server to server\n"
    assert ftp.getline() == "226 Transfer complete"
    tls.close()
    listener.close()
    ftp.quit()


# == HUP with a broken certificate, and `proftpy -t` ================================================================
@pytest.fixture
def own_pki(tmp_path, pki):
    """Copies of the server certificate and key a test may break."""
    d = tmp_path / "certs"
    d.mkdir()
    for name in ("server.pem", "server.key", "expired.pem", "expired.key", "other.key", "ca.pem"):
        (d / name).write_bytes(Path(pki.path(name)).read_bytes())
    return d


def _single(ftpd, certs: Path, extra: str = ""):
    return ftpd(f"TLSEngine on\nTLSECCertificateFile {certs}/server.pem\nTLSECCertificateKeyFile {certs}/server.key\n"
                f"TLSLog {{dir}}/tls.log\n{extra}", wait=True)


def test_hup_with_a_broken_certificate_keeps_the_old_one(ftpd, own_pki, pki):
    d = _single(ftpd, own_pki)
    before = ftps(d.port, pki.client(), user="alice", prot_p=False)
    cert_before = before.sock.getpeercert(binary_form=True)
    before.quit()
    (own_pki / "server.pem").write_text("not a certificate\n")
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: "keeping its running certificate" in d.log(), timeout=10), d.log()
    assert "holds no certificate" in d.log()
    after = ftps(d.port, pki.client(), user="alice")
    assert after.sock.getpeercert(binary_form=True) == cert_before
    assert isinstance(after.nlst(), list)
    after.quit()


@pytest.mark.parametrize("case,message", [
    ("unreadable", r"TLSECCertificateFile: cannot read /\S+/missing\.pem: No such file or directory"),
    ("mismatch", r"TLSECCertificateKeyFile: /\S+/other\.key does not match the certificate /\S+/server\.pem"),
    ("expired", r"TLSECCertificateFile: the certificate in /\S+/expired\.pem expired on \d{4}-\d\d-\d\d"),
])
def test_configtest_and_start_report_certificate_problems(tmp_path, own_pki, case, message):
    cert, key = {"unreadable": ("missing.pem", "server.key"), "mismatch": ("server.pem", "other.key"),
                 "expired": ("expired.pem", "expired.key")}[case]
    conf = tmp_path / "proftpy.conf"
    conf.write_text(f"ServerName test\nPort {free_port()}\nDefaultAddress 127.0.0.1\nScoreboardFile none\n"
                    f"PidFile {tmp_path}/pid\nTLSEngine on\nTLSECCertificateFile {own_pki}/{cert}\n"
                    f"TLSECCertificateKeyFile {own_pki}/{key}\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    line = 7 if case != "mismatch" else 8
    for args in (["-t"], ["-n", "-q"]):
        res = subprocess.run([sys.executable, "-m", "proftpy", *args, "-c", str(conf)], capture_output=True,
                             text=True, env=env, timeout=30)
        assert res.returncode == 1
        assert re.search(rf"{re.escape(str(conf))}:{line}: {message}", res.stderr), res.stderr


def test_ban_on_tls_handshakes(ftpd, pki):
    """BanOnEvent TLSHandshake counts the control connection's TLS handshakes (mod_tls.ctrl-handshake), as
    ProFTPD's mod_ban does against renegotiation floods: the second one bans, the next client is refused."""
    from conftest import wait_until
    d = ftpd(f"TLSEngine on\nTLSECCertificateFile {pki.path('server.pem')}\n"
             f"TLSECCertificateKeyFile {pki.path('server.key')}\nBanEngine on\nBanTable {{dir}}/ban.tab\n"
             "BanMessage \"too many handshakes from %a\"\nBanOnEvent TLSHandshake 2/00:01:00 00:01:00\n")
    ftps(d.port, pki.client()).quit()
    try:                                    # the second handshake makes the ban, which ends its session
        ftps(d.port, pki.client()).quit()
    except (ssl.SSLError, OSError, EOFError, ftplib.Error):
        pass

    def refused() -> bool:
        try:
            plain(d.port).close()
            return False
        except ftplib.error_perm as e:
            return str(e) == "530 too many handshakes from 127.0.0.1"
    assert wait_until(refused)
