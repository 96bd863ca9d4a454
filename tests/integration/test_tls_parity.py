"""Side by side with Debian's ProFTPD 1.3.8 (mod_tls 2.9.2), where the two differed before: HOST after USER (the
name-based server it picks is the one whose PASS applies), TLSLog's line for a client that sends no certificate
to a server that requires one, the cipher suites a TLS-PSK client gets (ProFTPD's DH parameters make DHE-PSK
the choice), and the TLSCipherSuite of the server SNI names, in that handshake."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PASSWORDS, fill, make_users, side_by_side
from tls_helpers import make_pki, read_reply

pytestmark = pytest.mark.slow
needs_psk = pytest.mark.skipif(not hasattr(ssl.SSLContext, "set_psk_server_callback"),
                               reason="TLS-PSK needs Python 3.13's ssl module (TLSPreSharedKey is refused at load)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def _dialogue(port: int, before=(), sni: str | None = None, after=()) -> list[str]:
    """The replies to `before`, then (with `sni` or `after`) AUTH TLS, a handshake sending `sni`, and `after`."""
    sock = socket.create_connection(("127.0.0.1", port), 10)
    with sock:
        f = sock.makefile("rb")
        out = [read_reply(f)]
        for line in (*before, *(("AUTH TLS",) if sni or after else ())):
            sock.sendall(line.encode() + b"\r\n")
            out.append(f"{line} -> {read_reply(f)}")
        if not (sni or after):
            return out
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            g = tls.makefile("rb")
            for line in after:
                tls.sendall(line.encode() + b"\r\n")
                out.append(f"{line} -> {read_reply(g)}")
    return out


def _settled(path) -> str:
    """A log's text once it has stopped growing: a session writes its failure line after the alert that ends the
    client (which is when a drive reads the log), so wait until 0.3 s pass without a change (at most 5 s)."""
    def read() -> str:
        return path.read_text() if path.exists() else ""
    text, deadline = read(), time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = read()
        if now == text:
            break
        text = now
    return text


def _tls_log(run) -> list[str]:
    """TLSLog without the time stamps and process ids (once it has settled)."""
    text = _settled(run / "tls.log")
    return re.sub(r"^\S+ \S+ mod_tls/2\.9\.2\[\d+\]: ", "", text, flags=re.M).splitlines()


# -- HOST after USER -----------------------------------------------------------------------------------------------
HOST_CONFIG = """\
LoadModule mod_tls.c
TLSEngine on
TLSLog {dir}/tls.log
TLSECCertificateFile {pki}/server.pem
TLSECCertificateKeyFile {pki}/server.key
<VirtualHost 127.0.0.1>
  ServerName "other"
  ServerAlias other.test
  Port {port}
  AuthOrder mod_auth_file.c
  AuthUserFile {base}/bob.passwd
  AuthGroupFile {base}/ftpd.group
  RequireValidShell off
  TLSEngine on
  TLSECCertificateFile {pki}/bob.pem
  TLSECCertificateKeyFile {pki}/bob.key
</VirtualHost>
"""
ALICE, BOB = f"PASS {PASSWORDS['alice']}", f"PASS {PASSWORDS['bob']}"
HOST_CASES = [
    # the server HOST picks after USER is the one whose users and PASS count: alice is not one of other's
    (("USER alice", "HOST other.test", ALICE), None, ()),
    (("USER bob", "HOST other.test", BOB, "PWD"), None, ()),
    (("USER alice", "HOST other.test", "USER bob", BOB), None, ()),
    (("USER alice", "HOST other.test", "HOST other.test", "PASS x", "PASS y"), None, ()),
    (("USER alice", "HOST 127.0.0.1", ALICE), None, ()),
    (("USER alice", "HOST unknown.test", ALICE), None, ()),
    (("USER alice", "PASS wrong", "HOST other.test", "USER bob", BOB), None, ()),
    (("USER alice", ALICE, "HOST other.test"), None, ()),
    (("USER bob", "HOST", "HOST a b"), None, ()),
    # with TLS: after SNI the same name is accepted after USER; without SNI, HOST after the handshake is 503
    ((), "other.test", ("USER bob", "HOST other.test", BOB, "PWD")),
    ((), None, ("USER alice", "HOST other.test", ALICE)),
    (("USER bob", "HOST other.test"), "other.test", (BOB,)),
]


def _host_users(base) -> None:
    """alice and bob for the main server, bob alone for the server named `other.test`."""
    make_users(base)
    bob = [line for line in (base / "ftpd.passwd").read_text().splitlines() if line.startswith("bob:")]
    (base / "bob.passwd").write_text("\n".join(bob) + "\n")
    os.chmod(base / "bob.passwd", 0o600)


def test_host_after_user_side_by_side_with_proftpd(open_tmp_path, pki):
    base = open_tmp_path
    _host_users(base)

    def drive(port, run):
        return [_dialogue(port, before, sni, after) for before, sni, after in HOST_CASES]

    ran = side_by_side(base, fill(HOST_CONFIG, {"pki": pki.dir}), drive)
    for theirs, ours in zip(ran["proftpd"], ran["proftpy"]):
        assert ours == theirs
    first, second = ran["proftpy"][:2]
    assert first[2:] == ["HOST other.test -> 220 ProFTPD Server (other) [127.0.0.1]",
                         f"{ALICE} -> 530 Login incorrect."]
    assert second[3] == f"{BOB} -> 230 User bob logged in"


def test_host_denied_by_limit_after_user_side_by_side_with_proftpd(open_tmp_path, pki):
    """`<Limit HOST> DenyAll`: between USER and PASS HOST is refused as before USER (`504 NAME: Permission denied`),
    after login it is `503 Bad sequence of commands`."""
    base = open_tmp_path
    _host_users(base)
    cases = [("HOST other.test", "USER alice", "HOST other.test", "HOST 127.0.0.1", ALICE, "HOST other.test")]

    def drive(port, run):
        return [_dialogue(port, before) for before in cases]

    ran = side_by_side(base, fill("<Limit HOST>\nDenyAll\n</Limit>\n" + HOST_CONFIG, {"pki": pki.dir}), drive)
    assert ran["proftpy"] == ran["proftpd"]
    assert ran["proftpy"][0][1:] == [
        "HOST other.test -> 504 other.test: Permission denied", "USER alice -> 331 Password required for alice",
        "HOST other.test -> 504 other.test: Permission denied", "HOST 127.0.0.1 -> 504 127.0.0.1: Permission denied",
        f"{ALICE} -> 230 User alice logged in", "HOST other.test -> 503 Bad sequence of commands"]


# -- TLSVerifyClient: a client without a certificate ---------------------------------------------------------------
VERIFY_TLS = """\
TLSEngine on
TLSLog {dir}/tls.log
TLSECCertificateFile {pki}/server.pem
TLSECCertificateKeyFile {pki}/server.key
TLSCACertificateFile {pki}/ca.pem
"""


def _vhost(alias: str, verify: str) -> str:
    return (f"<VirtualHost 127.0.0.1>\nPort {{port}}\nServerAlias {alias}\n{VERIFY_TLS}TLSVerifyClient {verify}\n"
            "</VirtualHost>\n")


VERIFY_CONFIG = ("LoadModule mod_tls.c\n" + VERIFY_TLS + "TLSVerifyClient on\n" + _vhost("optional.test", "optional")
                 + _vhost("required.test", "on"))


def _s_client(port: int, *args: str) -> str:
    res = subprocess.run(["openssl", "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{port}", *args],
                         input=b"QUIT\r\n", capture_output=True, timeout=20)
    return res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")


PROTOCOL_ERROR = ()        # nothing left out: the protocol error lines match too (test_tls_errors.py)


def _logs_side_by_side(base, config: str, clients, skip=PROTOCOL_ERROR) -> dict[str, list[str]]:
    """`openssl s_client` with each of `clients`' arguments against Debian's ProFTPD and proftpy, both on `config`:
    their TLSLogs, without the lines that start with `skip` (by default none)."""
    def drive(port, run):
        for args in clients:
            _s_client(port, *args)
        return [line for line in _tls_log(run) if not line.startswith(skip)]
    return side_by_side(base, config, drive)


def test_missing_client_certificate_tlslog_side_by_side_with_proftpd(open_tmp_path, pki):
    """`openssl s_client` without -cert: TLSVerifyClient on refuses it, with ProFTPD's hint in TLSLog (also for
    the server SNI names); `optional` lets it in, without the hint."""
    base = open_tmp_path
    make_users(base)
    clients = [("-tls1_2",), ("-tls1_3",), ("-tls1_2", "-servername", "optional.test"),
               ("-tls1_3", "-servername", "optional.test"), ("-tls1_2", "-servername", "required.test")]
    ran = _logs_side_by_side(base, fill(VERIFY_CONFIG, {"pki": pki.dir}), clients)
    assert ran["proftpy"] == ran["proftpd"]
    hint = ("unable to accept TLS connection: client did not provide certificate, but one is required via "
            "'TLSVerifyClient on'")
    assert ran["proftpy"].count(hint) == 3
    assert ran["proftpy"].count("client supports secure renegotiations") == 2     # the optional.test ones


# -- DH parameters by default: DHE suites, DHE-PSK for TLS-PSK clients -------------------------------------------
TLS_MAIN = """\
LoadModule mod_tls.c
TLSEngine on
TLSLog {dir}/tls.log
TLSProtocol TLSv1.2 TLSv1.3
TLSECCertificateFile {pki}/server.pem
TLSECCertificateKeyFile {pki}/server.key
"""
PSK = "5c1a0e" * 10 + "77"
DH_CONFIG = TLS_MAIN + """\
TLSRSACertificateFile {base}/rsa.pem
TLSRSACertificateKeyFile {base}/rsa.key
TLSPreSharedKey ftpclient hex:{base}/psk.hex
"""


def _cipher(port: int, *args: str) -> str:
    """`Cipher is X` of an s_client handshake, with the kind of its key exchange's key (`DH`, `X25519`)."""
    out = _s_client(port, *args)
    cipher = re.search(r"Cipher is (\S+)", out)
    key = re.search(r"Server Temp Key: (\w+)", out)
    return f"{cipher.group(1) if cipher else out[-300:]} {key.group(1) if key else '-'}"


@needs_psk
def test_dhe_suites_are_chosen_as_by_proftpd(open_tmp_path, pki):
    """ProFTPD always has DH parameters (built-in groups), so a TLS-PSK client that offers DHE-PSK gets it, in
    either order of its offer (the server's order: DHE-PSK-AES128-GCM before ECDHE-PSK-AES128-CBC), and a client
    offering DHE-RSA only is served; proftpy without DH parameters chose ECDHE-PSK, and refused DHE-only clients."""
    base = open_tmp_path
    make_users(base)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", base / "rsa.key", "-out",
                    base / "rsa.pem", "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    (base / "psk.hex").write_text(PSK + "\n")
    for name in ("psk.hex", "rsa.key"):
        os.chmod(base / name, 0o600)
    psk = ("-psk", PSK, "-psk_identity", "ftpclient")
    clients = [("-tls1_2", "-cipher", "DHE-PSK-AES128-GCM-SHA256:ECDHE-PSK-AES128-CBC-SHA256", *psk),
               ("-tls1_2", "-cipher", "ECDHE-PSK-AES128-CBC-SHA256:DHE-PSK-AES128-GCM-SHA256", *psk),
               ("-tls1_2", "-cipher", "DHE-PSK-AES256-GCM-SHA384", *psk),
               ("-tls1_2", "-cipher", "PSK", *psk),
               ("-tls1_2", "-cipher", "DHE-RSA-AES256-GCM-SHA384"),
               ("-tls1_2", "-cipher", "kDHE"),
               ("-tls1_2", "-cipher", "DHE-RSA-AES128-SHA:ECDHE-RSA-AES128-SHA"),
               ("-tls1_2",)]

    def drive(port, run):
        return [_cipher(port, *args) for args in clients]

    ran = side_by_side(base, fill(DH_CONFIG, {"pki": pki.dir}), drive)
    assert ran["proftpy"] == ran["proftpd"]
    assert ran["proftpy"][:3] == ["DHE-PSK-AES128-GCM-SHA256 DH", "DHE-PSK-AES128-GCM-SHA256 DH",
                                  "DHE-PSK-AES256-GCM-SHA384 DH"]
    assert ran["proftpy"][4] == "DHE-RSA-AES256-GCM-SHA384 DH"


@needs_psk
def test_tlsdhparamfile_still_gives_the_parameters(ftpd, pki, tmp_path):
    """With TLSDHParamFile its parameters serve DHE (a 2048-bit file: a DHE-PSK AES-256 client, which OpenSSL's own
    choice would give 3072 bits, gets 2048)."""
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out",
                    tmp_path / "dh.pem"], check=True, capture_output=True)
    (tmp_path / "psk.hex").write_text(PSK + "\n")
    os.chmod(tmp_path / "psk.hex", 0o600)
    common = (f"TLSEngine on\nTLSECCertificateFile {pki.path('server.pem')}\n"
              f"TLSECCertificateKeyFile {pki.path('server.key')}\nTLSPreSharedKey ftpclient hex:{tmp_path}/psk.hex\n")
    psk = ("-tls1_2", "-cipher", "DHE-PSK-AES256-GCM-SHA384", "-psk", PSK, "-psk_identity", "ftpclient")
    d = ftpd(common + f"TLSDHParamFile {tmp_path}/dh.pem\n")
    assert "Server Temp Key: DH, 2048 bits" in _s_client(d.port, *psk)
    d.stop()
    d = ftpd(common)
    assert "Server Temp Key: DH, 3072 bits" in _s_client(d.port, *psk)


# -- the TLSCipherSuite of the server SNI names ------------------------------------------------------------------
SNI_CIPHER_CONFIG = TLS_MAIN + """\
<VirtualHost 127.0.0.1>
  Port {port}
  ServerAlias narrow.test
  TLSEngine on
  TLSLog {dir}/tls.log
  TLSProtocol TLSv1.2 TLSv1.3
  TLSECCertificateFile {pki}/bob.pem
  TLSECCertificateKeyFile {pki}/bob.key
  TLSCipherSuite ECDHE-ECDSA-AES128-SHA
  TLSCipherSuite TLSv1.3 TLS_CHACHA20_POLY1305_SHA256
</VirtualHost>
<VirtualHost 127.0.0.1>
  Port {port}
  ServerAlias wide.test
  TLSEngine on
  TLSLog {dir}/tls.log
  TLSECCertificateFile {pki}/bob.pem
  TLSECCertificateKeyFile {pki}/bob.key
</VirtualHost>
"""


def test_cipher_suites_of_the_server_sni_names_side_by_side_with_proftpd(open_tmp_path, pki):
    """In the handshake of a client naming a server (SNI), that server's TLSv1.2 cipher list applies (OpenSSL
    reads the list through the connection's SSL_CTX, which the SNI callback switched); TLSv1.3 suites are chosen
    before the callback runs, so the first server's apply there, in ProFTPD as in proftpy. A client with no cipher
    in common gets ProFTPD's TLSLog hint naming the list that applied."""
    base = open_tmp_path
    make_users(base)
    clients = [("-tls1_2", "-servername", "narrow.test"),
               ("-tls1_2", "-servername", "narrow.test", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"),
               ("-tls1_2", "-servername", "narrow.test", "-cipher",
                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA"),
               ("-tls1_3", "-servername", "narrow.test"),
               ("-tls1_3", "-servername", "narrow.test", "-ciphersuites", "TLS_AES_128_GCM_SHA256"),
               ("-tls1_2", "-servername", "wide.test"),
               ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA")]

    def drive(port, run):
        ciphers = [_cipher(port, *args) for args in clients]
        return ciphers, _tls_log(run)

    ran = side_by_side(base, fill(SNI_CIPHER_CONFIG, {"pki": pki.dir}), drive)
    assert ran["proftpy"] == ran["proftpd"]
    ciphers, log = ran["proftpy"]
    assert ciphers[:2] == ["ECDHE-ECDSA-AES128-SHA X25519", "(NONE) -"]
    assert ciphers[3] == "TLS_AES_256_GCM_SHA384 X25519"
    assert ("unable to accept TLS connection: client does not support any cipher from 'TLSCipherSuite "
            "ECDHE-ECDSA-AES128-SHA:!EXPORT' or 'TLSCipherSuite TLSv1.3 TLS_CHACHA20_POLY1305_SHA256' (see `openssl "
            "ciphers` for full list)") in log


# -- TLSOptions dNSNameRequired, iPAddressRequired, CommonNameRequired ------------------------------------------
def _vhost_with(alias: str, lines: str) -> str:
    return f"<VirtualHost 127.0.0.1>\nPort {{port}}\nServerAlias {alias}\n{VERIFY_TLS}{lines}</VirtualHost>\n"


NAMING_CONFIG = ("LoadModule mod_tls.c\n" + VERIFY_TLS + "TLSVerifyClient on\nTLSOptions iPAddressRequired\n"
                 "TLSPreSharedKey ftpclient hex:{base}/psk.hex\n"
                 + _vhost_with("optional.test", "TLSVerifyClient optional\nTLSOptions iPAddressRequired\n")
                 + _vhost_with("names.test", "TLSVerifyClient on\nTLSOptions dNSNameRequired CommonNameRequired\n"))


@needs_psk
def test_client_certificate_naming_checks_side_by_side_with_proftpd(open_tmp_path, pki):
    """Under `TLSVerifyClient on` the certificate must name the client (in ProFTPD's order: dNSName SAN, iPAddress
    SAN, CommonName, each logged when it matches or not; the name checks only with UseReverseDNS on); a PSK client
    sends no certificate and is refused (`unable to verify '127.0.0.1': client did not provide certificate`);
    `optional` checks nothing. The options of the server SNI names add to the first server's. TLSLog's `Client:`
    line is OpenSSL's one-line subject (`CN = alice`)."""
    base = open_tmp_path
    make_users(base)
    (base / "psk.hex").write_text(PSK + "\n")
    os.chmod(base / "psk.hex", 0o600)
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", base / "local.key", "-subj", "/CN=127.0.0.1", "-out", base / "local.csr"],
                   check=True, capture_output=True)
    (base / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\n")
    subprocess.run(["openssl", "x509", "-req", "-in", base / "local.csr", "-CA", pki.path("ca.pem"), "-CAkey",
                    pki.path("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", base / "san.ext", "-out",
                    base / "local.pem"], check=True, capture_output=True)
    alice = ("-cert", pki.path("alice.pem"), "-key", pki.path("alice.key"))
    local = ("-cert", str(base / "local.pem"), "-key", str(base / "local.key"))
    clients = [("-tls1_2", "-cipher", "PSK", "-psk", PSK, "-psk_identity", "ftpclient"),
               ("-tls1_2", *alice), ("-tls1_2", *local),
               ("-tls1_2", "-servername", "optional.test", *alice),
               ("-tls1_2", "-servername", "names.test", *alice), ("-tls1_2", "-servername", "names.test", *local)]
    # ProFTPD then writes its 421 over the TLS session it has just ended: a `panic:` line, OpenSSL's error queue,
    # `unexpected OpenSSL error, disconnecting` (the client sees the connection close, as with proftpy)
    ran = _logs_side_by_side(base, fill(NAMING_CONFIG, {"pki": pki.dir}), clients,
                             skip=("  (", "panic: ", "unexpected OpenSSL"))
    assert ran["proftpy"] == ran["proftpd"]
    log = ran["proftpy"]
    assert "unable to verify '127.0.0.1': client did not provide certificate" in log
    assert "client cert iPAddress SANs do not match client IP '127.0.0.1'" in log
    assert "client cert iPAddress SAN matches client IP '127.0.0.1'" in log
    assert "Client: CN = alice" in log
    # UseReverseDNS off (both servers here): no name to compare, so the named server's name checks are dropped
    assert log.count("reverse DNS off, disabling TLSOption dNSNameRequired") == 2
    assert log.count("reverse DNS off, disabling TLSOption CommonNameRequired") == 2
    assert sum("connection accepted" in line for line in log) == 3


def test_sni_names_ignored_are_traced_not_logged_side_by_side_with_proftpd(open_tmp_path, pki):
    """A name sent without name-based servers on the port, or an IP address, is ignored: ProFTPD writes that to its
    `tls` trace channel, not to TLSLog."""
    base = open_tmp_path
    make_users(base)
    config = TLS_MAIN + "TraceLog {dir}/trace.log\nTrace tls:5\n"

    def drive(port, run):
        for name in ("some.test", "127.0.0.1"):
            _s_client(port, "-tls1_2", "-servername", name)
        trace = _settled(run / "trace.log")
        return _tls_log(run), [m.group(1) for m in re.finditer(r"<tls:5>: (.*SNI.*)", trace)]

    ran = side_by_side(base, fill(config, {"pki": pki.dir}), drive)
    assert ran["proftpy"] == ran["proftpd"]
    log, traced = ran["proftpy"]
    assert not any("SNI" in line for line in log)
    assert traced == ["received SNI 'some.test'", "no name-based <VirtualHost> configured, ignoring SNI 'some.test'",
                      "client sent SNI 'some.test', but no matching host found",    # after AUTH, as HOST would
                      "received SNI '127.0.0.1'", "client sent IP address SNI '127.0.0.1', ignoring"]


def _signed(base, name: str, ca: tuple[str, str], days: str = "2") -> tuple[str, ...]:
    """A client certificate `CN=name` signed by `ca` (certificate, key), valid for `days` (negative: expired)."""
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", base / f"{name}.key", "-subj", f"/CN={name}", "-out", base / f"{name}.csr"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", base / f"{name}.csr", "-CA", ca[0], "-CAkey", ca[1],
                    "-CAcreateserial", "-days", days, "-out", base / f"{name}.pem"], check=True, capture_output=True)
    return "-cert", str(base / f"{name}.pem"), "-key", str(base / f"{name}.key")


def test_refused_client_certificates_tlslog_side_by_side_with_proftpd(open_tmp_path, pki):
    """A certificate that verification refuses gets ProFTPD's lines: depth, subject, issuer (OpenSSL's one-line
    form), then why (self-signed, expired, unknown issuer), also for the server SNI names (its TLSVerifyClient
    optional: a certificate sent is still verified)."""
    base = open_tmp_path
    make_users(base)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", base / "other-ca.key", "-out", base / "other-ca.pem", "-days", "2", "-subj",
                    "/O=Elsewhere/CN=other CA"], check=True, capture_output=True)
    stranger = ("-cert", pki.path("stranger.pem"), "-key", pki.path("stranger.key"))
    expired = _signed(base, "late", (pki.path("ca.pem"), pki.path("ca.key")), days="-1")
    foreign = _signed(base, "foreign", (str(base / "other-ca.pem"), str(base / "other-ca.key")))
    clients = [("-tls1_2", *stranger), ("-tls1_3", *expired), ("-tls1_2", *foreign),
               ("-tls1_2", "-servername", "optional.test", *stranger)]
    ran = _logs_side_by_side(base, fill(VERIFY_CONFIG, {"pki": pki.dir}), clients)
    assert ran["proftpy"] == ran["proftpd"]
    log = ran["proftpy"]
    assert log.count("client certificate failed verification: self-signed certificate") == 2
    assert "client certificate failed verification: certificate has expired" in log
    assert "error: cert issuer: O = Elsewhere, CN = other CA" in log
    assert "client certificate failed verification: unable to get local issuer certificate" in log
