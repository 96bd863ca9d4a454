"""mod_tls's TLSPKCS12File (and, below, TLSPreSharedKey) against the real daemon with real clients: curl
and lftp (verifying the chain the bundle carries), `openssl s_client -starttls ftp`. Behaviour checked against Debian's
ProFTPD 1.3.8: a password-protected bundle asks TLSPassPhraseProvider with `servername:port PKCS12`; without a
password it is not loaded and the server does not start."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORDS, configtest, fill, make_users, side_by_side, wait_until
from tls_helpers import make_pki, read_reply

needs_psk = pytest.mark.skipif(not hasattr(ssl.SSLContext, "set_psk_server_callback"),
                               reason="TLS-PSK needs Python 3.13's ssl module (TLSPreSharedKey is refused at load before)")



@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


CONFIG = """\
TLSEngine on
TLSLog {dir}/tls.log
TLSProtocol TLSv1.2 TLSv1.3
DefaultRoot ~
"""


def _p12(pki, out: Path, password: str = "", chain: bool = True, name: str = "server") -> Path:
    args = ["openssl", "pkcs12", "-export", "-in", pki.path(f"{name}.pem"), "-inkey", pki.path(f"{name}.key"),
            "-out", str(out), "-passout", f"pass:{password}"]
    if chain:
        args += ["-certfile", pki.path("ca.pem")]
    subprocess.run(args, check=True, capture_output=True)
    out.chmod(0o600)
    return out


def _provider(d: Path, password: str) -> Path:
    script = d / "provider.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {d}/provider.args\necho "{password}"\n')
    script.chmod(0o755)
    return script


def _subject(port: int, *extra: str) -> str:
    res = subprocess.run(["openssl", "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{port}", "-brief",
                          *extra], input=b"QUIT\r\n", capture_output=True, timeout=20)
    out = res.stderr.decode(errors="replace") + res.stdout.decode(errors="replace")
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Peer certificate:")),
                out)


def _curl_list(port: int, pki) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--ssl-reqd", "--cacert", pki.path("ca.pem"),
                           "--user", f"alice:{PASSWORDS['alice']}", "--list-only",
                           f"ftp://localhost:{port}/"], capture_output=True, timeout=30)


# -- TLSPKCS12File ------------------------------------------------------------------------------------------------
def test_pkcs12_file_without_password_serves_its_certificate_and_chain(ftpd, pki, tmp_path):
    p12 = _p12(pki, tmp_path / "server.p12")
    d = ftpd(CONFIG + f"TLSPKCS12File {p12}\n")
    (d.home("alice") / "seen.txt").write_text("x")
    assert _subject(d.port) == "CN = localhost"
    res = _curl_list(d.port, pki)                 # curl verifies the certificate against the test CA
    assert res.returncode == 0, res.stderr
    assert b"seen.txt" in res.stdout


def test_pkcs12_file_with_password_asks_the_passphrase_provider(ftpd, pki, tmp_path):
    p12 = _p12(pki, tmp_path / "server.p12", password="p12-secret")
    provider = _provider(tmp_path, "p12-secret")
    d = ftpd(CONFIG + f"TLSPKCS12File {p12}\nTLSPassPhraseProvider {provider}\n")
    assert _subject(d.port) == "CN = localhost"
    assert (tmp_path / "provider.args").read_text() == f"proftpy test:{d.port} PKCS12\n"
    (d.home("alice") / "lftp.txt").write_text("x")
    res = subprocess.run(["lftp", "-c", f"set ssl:ca-file {pki.path('ca.pem')}; set ssl:verify-certificate yes; "
                          "set ftp:ssl-force true; set ftp:ssl-protect-data true; "
                          f"open -u alice,{PASSWORDS['alice']} ftp://localhost:{d.port}; cls"],
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert b"lftp.txt" in res.stdout


def test_pkcs12_file_with_a_wrong_password_is_refused_at_load(pki, tmp_path):
    p12 = _p12(pki, tmp_path / "server.p12", password="p12-secret")
    provider = _provider(tmp_path, "not-it")
    res = configtest(tmp_path, f"Port 0\nTLSEngine on\nTLSPKCS12File {p12}\nTLSPassPhraseProvider {provider}\n")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"t.conf:3: TLSPKCS12File: unable to use PKCS12 certificate in '{p12}'" in res.stderr
    assert "wrong password" in res.stderr


def test_pkcs12_file_with_a_password_and_no_provider_is_refused(pki, tmp_path):
    p12 = _p12(pki, tmp_path / "server.p12", password="p12-secret")
    res = configtest(tmp_path, f"Port 0\nTLSEngine on\nTLSPKCS12File {p12}\n")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "t.conf:3: TLSPKCS12File:" in res.stderr and "TLSPassPhraseProvider" in res.stderr


@pytest.mark.parametrize("what", ["pem", "missing"])
def test_a_file_that_is_no_pkcs12_bundle_is_refused(pki, tmp_path, what):
    path = pki.path("server.pem") if what == "pem" else str(tmp_path / "nothing.p12")
    res = configtest(tmp_path, f"Port 0\nTLSEngine on\nTLSPKCS12File {path}\n")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "t.conf:3: TLSPKCS12File:" in res.stderr
    assert ("not a PKCS12 file" if what == "pem" else "cannot read") in res.stderr


def test_pkcs12_file_is_read_again_on_hup(ftpd, pki, tmp_path):
    p12 = _p12(pki, tmp_path / "server.p12")
    d = ftpd(CONFIG + f"TLSPKCS12File {p12}\n")
    assert _subject(d.port) == "CN = localhost"
    _p12(pki, p12, chain=False, name="bob")
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: _subject(d.port) == "CN = bob", 10)


def test_pkcs12_side_by_side_with_proftpd(open_tmp_path, pki):
    """A password-protected bundle and its provider, in Debian's ProFTPD and in proftpy: the same certificate
    served, the provider asked the same way (`servername:port PKCS12`)."""
    base = open_tmp_path
    make_users(base)
    p12 = _p12(pki, base / "server.p12", password="p12-secret")
    provider = _provider(base, "p12-secret")
    args = base / "provider.args"

    def drive(port, run):
        subject = _subject(port)                # served: the provider has run
        asked = args.read_text().replace(str(port), "PORT")
        args.write_text("")
        return subject, asked

    args.touch(mode=0o666)
    args.chmod(0o666)                       # ProFTPD runs the provider as its User

    ran = side_by_side(base, f"LoadModule mod_tls.c\nTLSEngine on\nTLSPKCS12File {p12}\n"
                             f"TLSPassPhraseProvider {provider}\n", drive)
    assert ran["proftpy"] == ("CN = localhost", "compare:PORT PKCS12\n")
    # ProFTPD reads the provider's answer only if the provider is still running when it first looks (waitpid
    # WNOHANG before select); a provider that has already exited leaves an empty answer and the next of its three
    # attempts asks again. So ProFTPD asks the same question once or more.
    subject, asked = ran["proftpd"]
    assert subject == "CN = localhost"
    assert asked and set(asked.splitlines()) == {"compare:PORT PKCS12"}, asked


# -- TLSPreSharedKey ----------------------------------------------------------------------------------------------
PSK = "5c1a0e" * 10 + "77"                         # 31 bytes
PSK_CONFIG = CONFIG + """\
TLSECCertificateFile {pki}/server.pem
TLSECCertificateKeyFile {pki}/server.key
TLSPreSharedKey ftpclient hex:{dir}/psk.hex
"""


def _cert(pki) -> str:
    return f"TLSECCertificateFile {pki.path('server.pem')}\nTLSECCertificateKeyFile {pki.path('server.key')}\n"


def _psk_file(d: Path, text: str = PSK + "\n", mode: int = 0o600, name: str = "psk.hex") -> Path:
    path = d / name
    path.write_text(text)
    path.chmod(mode)
    return path


def _s_client(port: int, *args: str) -> str:
    res = subprocess.run(["openssl", "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{port}", "-brief",
                          *args], input=b"QUIT\r\n", capture_output=True, timeout=20)
    return res.stderr.decode(errors="replace") + res.stdout.decode(errors="replace")


def _psk_client(port: int, key: str = PSK, identity: str = "ftpclient", tls13: bool = False) -> str:
    version = ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"] if tls13 else ["-tls1_2", "-cipher", "PSK"]
    return _s_client(port, *version, "-psk", key, "-psk_identity", identity)


@pytest.fixture
def psk_server(ftpd, pki, tmp_path):
    _psk_file(tmp_path)
    return ftpd(fill(PSK_CONFIG, {"pki": pki.dir}))


@needs_psk
def test_psk_client_with_the_key_gets_a_psk_cipher_suite(psk_server):
    out = _psk_client(psk_server.port)
    assert "CONNECTION ESTABLISHED" in out and "Protocol version: TLSv1.2" in out, out
    assert re.search(r"Ciphersuite: \S*PSK\S*", out), out
    assert "No peer certificate" in out                  # the key authenticated the server, no certificate sent


@needs_psk
def test_psk_client_with_a_wrong_key_is_refused(psk_server):
    out = _psk_client(psk_server.port, key="11" + PSK)
    assert "CONNECTION ESTABLISHED" not in out and "bad record mac" in out, out
    log = (psk_server.dir / "tls.log").read_text()
    assert "unable to accept TLS connection: protocol error" in log
    assert "not configured" not in log


@needs_psk
def test_unknown_psk_identity_gets_a_fake_key_and_a_tlslog_warning(psk_server):
    out = _psk_client(psk_server.port, identity="nobody")
    assert "CONNECTION ESTABLISHED" not in out and "bad record mac" in out, out      # as for a wrong key
    log = (psk_server.dir / "tls.log").read_text()
    assert "warning: requested PSK identity 'nobody' not configured, providing random fake PSK" in log


@needs_psk
def test_tls13_external_psk_is_accepted_with_a_sha256_suite(psk_server):
    out = _psk_client(psk_server.port, tls13=True)
    assert "CONNECTION ESTABLISHED" in out and "Protocol version: TLSv1.3" in out, out
    assert "No peer certificate" in out


@needs_psk
def test_certificate_clients_are_still_served_beside_psk(psk_server):
    assert _subject(psk_server.port) == "CN = localhost"


@needs_psk
def test_psk_suites_taken_out_of_the_cipher_list_are_not_offered(ftpd, pki, tmp_path):
    _psk_file(tmp_path)
    d = ftpd(fill(PSK_CONFIG + "TLSCipherSuite DEFAULT:!PSK\n", {"pki": pki.dir}))
    out = _psk_client(d.port)
    assert "CONNECTION ESTABLISHED" not in out and "handshake failure" in out, out


@pytest.mark.parametrize("text,mode,message", [
    (PSK + "\n", 0o644, "file is world-readable"),
    ("0123456789abcdef01\n", 0o600, "read 19 bytes from TLSPreSharedKey file '{path}', need at least 20 bytes"),
    ("zz" + PSK + "\n", 0o600, "not a hex number"),
    (PSK + "\n\n", 0o600, "not a hex number"),
])
@needs_psk
def test_unusable_psk_file_is_refused_at_load(pki, tmp_path, text, mode, message):
    path = _psk_file(tmp_path, text, mode)
    res = configtest(tmp_path, f"Port 0\nTLSEngine on\nTLSPreSharedKey ftpclient hex:{path}\n" + _cert(pki))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "t.conf:3: TLSPreSharedKey:" in res.stderr and message.format(path=path) in res.stderr, res.stderr


@pytest.mark.parametrize("line,message", [
    ("TLSPreSharedKey ftpclient /etc/psk.hex", "unsupported TLSPreSharedKey format: /etc/psk.hex"),
    ("TLSPreSharedKey ftpclient hex:/no/such.hex", "error opening TLSPreSharedKey file '/no/such.hex'"),
    ("TLSPreSharedKey ftpclient", "wrong number of parameters"),
    ("TLSPreSharedKey " + "i" * 257 + " hex:/x", "exceed maximum length 256"),
])
def test_bad_tlspresharedkey_lines_are_refused(pki, tmp_path, line, message):
    res = configtest(tmp_path, f"Port 0\nTLSEngine on\n{line}\n" + _cert(pki))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "t.conf:3: TLSPreSharedKey" in res.stderr and message in res.stderr, res.stderr


@needs_psk
def test_psk_side_by_side_with_proftpd(open_tmp_path, pki):
    """The same configuration in Debian's ProFTPD and in proftpy: the right key, a wrong one, an unknown identity,
    TLSv1.3."""
    base = open_tmp_path
    make_users(base)
    _psk_file(base)
    config = fill("LoadModule mod_tls.c\n" + PSK_CONFIG.replace("{dir}/psk.hex", "{base}/psk.hex"),
                  {"pki": pki.dir})

    def drive(port, run):
        outs = [_psk_client(port), _psk_client(port, key="11" + PSK), _psk_client(port, identity="nobody"),
                _psk_client(port, tls13=True)]
        log = (run / "tls.log").read_text()
        return ([("CONNECTION ESTABLISHED" in o, "No peer certificate" in o,
                  re.search(r"Protocol version: (\S+)", o) and re.search(r"Protocol version: (\S+)", o).group(1))
                 for o in outs],
                "requested PSK identity 'nobody' not configured, providing random fake PSK" in log)

    ran = side_by_side(base, config, drive)
    assert ran["proftpd"] == ran["proftpy"]
    assert [ok for ok, _, _ in ran["proftpy"][0]] == [True, False, False, True] and ran["proftpy"][1]


# -- SNI ----------------------------------------------------------------------------------------------------------
SNI_CONFIG = """\
ServerAlias main.test
TLSEngine on
TLSLog {dir}/tls.log
TLSECCertificateFile {pki}/server.pem
TLSECCertificateKeyFile {pki}/server.key
DefaultRoot ~
<VirtualHost 127.0.0.1>
  ServerName "other"
  ServerAlias other.test localhost
  Port {port}
  TLSEngine on
  TLSLog {dir}/tls.log
  TLSECCertificateFile {pki}/bob.pem
  TLSECCertificateKeyFile {pki}/bob.key
  AuthOrder mod_auth_file.c
  AuthUserFile {passwd}
  AuthGroupFile {group}
  RequireValidShell off
  DefaultRoot ~/other
</VirtualHost>
<VirtualHost 127.0.0.1>
  ServerName "plain"
  ServerAlias plain.test
  Port {port}
</VirtualHost>
<VirtualHost 127.0.0.1>
  ServerName "strict"
  ServerAlias strict.test
  Port {port}
  TLSEngine on
  TLSVerifyClient on
  TLSCACertificateFile {pki}/ca.pem
  TLSECCertificateFile {pki}/bob.pem
  TLSECCertificateKeyFile {pki}/bob.key
</VirtualHost>
<VirtualHost 127.0.0.1>
  ServerName "old"
  ServerAlias old.test
  Port {port}
  TLSEngine on
  TLSProtocol TLSv1.2
  TLSECCertificateFile {pki}/bob.pem
  TLSECCertificateKeyFile {pki}/bob.key
</VirtualHost>
"""
# (SNI, commands before AUTH TLS, commands after the handshake): ProFTPD 1.3.8's answers are the test's expectations
SNI_CASES = [
    ("other.test", (), ("HOST other.test",)),
    ("OTHER.test", (), ("HOST main.test",)),
    ("other.test", ("HOST other.test",), ("NOOP",)),
    ("main.test", ("HOST other.test",), ()),
    ("unknown.test", (), ()),
    ("plain.test", (), ()),
    (None, (), ("HOST other.test",)),
    ("127.0.0.1", (), ("NOOP",)),
    ("old.test", (), ("NOOP",)),                    # TLSv1.3 offered, the server named speaks TLSv1.2 only
    ("strict.test", (), ("NOOP",)),                 # the server named wants a client certificate
]


def _sni_session(port: int, sni: str | None, before=(), after=(), cert=None) -> list[str]:
    """The replies one control connection gets, the subject of the certificate its handshake sees (or the
    handshake's failure)."""
    import socket
    import ssl
    sock = socket.create_connection(("127.0.0.1", port), 10)
    out = []
    with sock:
        f = sock.makefile("rb")
        out.append(read_reply(f))
        for line in (*before, "AUTH TLS"):
            sock.sendall(line.encode() + b"\r\n")
            out.append(f"{line} -> {read_reply(f)}")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        if cert is not None:
            ctx.load_cert_chain(*cert)
        try:
            tls = ctx.wrap_socket(sock, server_hostname=sni)
        except ssl.SSLError as e:
            return out + [f"handshake failed: {e.reason}"]
        with tls:
            der = tls.getpeercert(binary_form=True)
            subject = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                                     capture_output=True).stdout.decode().strip()
            out.append(subject)
            g = tls.makefile("rb")
            for line in after:
                try:
                    tls.sendall(line.encode() + b"\r\n")
                    out.append(f"{line} -> {read_reply(g)}")
                except OSError:         # TLSv1.3: a refused client certificate shows here (an alert, or a reset)
                    return out + [f"{line} -> no reply"]
    return out


@pytest.fixture
def sni_server(ftpd, pki, tmp_path):
    d = ftpd(fill(SNI_CONFIG, {"pki": pki.dir, "passwd": tmp_path / "ftpd.passwd", "group": tmp_path / "ftpd.group"}))
    (d.home("alice") / "other").mkdir(exist_ok=True)
    (d.home("alice") / "other" / "other-side.txt").write_text("x")
    return d


def test_sni_presents_the_named_server_s_certificate(sni_server):
    assert _subject(sni_server.port, "-servername", "other.test") == "CN = bob"
    assert _subject(sni_server.port, "-servername", "main.test") == "CN = localhost"
    assert _subject(sni_server.port, "-noservername") == "CN = localhost"


def test_sni_refusals_have_proftpd_s_tlslog_lines(sni_server):
    assert _sni_session(sni_server.port, "unknown.test")[-1] == "handshake failed: TLSV1_UNRECOGNIZED_NAME"
    assert _sni_session(sni_server.port, "plain.test")[-1] == "handshake failed: TLSV1_UNRECOGNIZED_NAME"
    assert _sni_session(sni_server.port, "main.test", ("HOST other.test",))[-1] == \
        "handshake failed: TLSV1_ALERT_ACCESS_DENIED"
    assert _sni_session(sni_server.port, "old.test")[-1] == "handshake failed: TLSV1_ALERT_PROTOCOL_VERSION"
    log = (sni_server.dir / "tls.log").read_text()
    assert "client-requested protocol version TLSv1.3 not supported by SNI 'old.test' host" in log
    assert "no matching server found for client-sent SNI 'unknown.test', rejecting SSL/TLS connection" in log
    assert "TLSEngine not enabled for SNI 'plain.test', rejecting client" in log
    assert "warning: SNI 'main.test' does not match HOST 'other.test', rejecting SSL/TLS connection" in log


def test_sni_applies_the_named_server_s_tlsverifyclient(sni_server, pki):
    assert _sni_session(sni_server.port, "strict.test", (), ("NOOP",))[-1] == "NOOP -> no reply"
    assert "unable to accept TLS connection" in (sni_server.dir / "tls.log").read_text()
    with_cert = _sni_session(sni_server.port, "strict.test", (), ("NOOP",),
                             cert=(pki.path("alice.pem"), pki.path("alice.key")))
    assert with_cert[-1] == "NOOP -> 200 NOOP command successful"
    assert _sni_session(sni_server.port, "other.test", (), ("NOOP",))[-1] == "NOOP -> 200 NOOP command successful"


def test_host_after_the_handshake_must_name_what_sni_named(sni_server):
    out = _sni_session(sni_server.port, "other.test", (), ("HOST main.test", "HOST other.test"))
    assert out[-2:] == ["HOST main.test -> 504 main.test: Unknown hostname provided",
                        'HOST other.test -> 220 ProFTPD Server (other) [127.0.0.1]']
    assert _sni_session(sni_server.port, None, (), ("HOST other.test",))[-1] == \
        "HOST other.test -> 503 Bad sequence of commands"


def test_curl_with_sni_lands_on_the_named_server_and_transfers(sni_server):
    """curl sends SNI for a host name: the session is the other server's (its DefaultRoot), and PROT P data
    connections resume the control session made with that server's certificate."""
    res = subprocess.run(["curl", "-sS", "--max-time", "20", "--ssl-reqd", "-k", "--resolve",
                          f"other.test:{sni_server.port}:127.0.0.1", "--user", f"alice:{PASSWORDS['alice']}",
                          "--list-only", f"ftp://other.test:{sni_server.port}/"], capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [b"other-side.txt"]


def test_lftp_with_sni_lands_on_the_named_server(sni_server):
    """lftp sends SNI for a host name (here `localhost`, an alias of the other server)."""
    res = subprocess.run(["lftp", "-c", "set ssl:verify-certificate no; set ftp:ssl-force true; "
                          "set ftp:ssl-protect-data true; set dns:order inet; "
                          f"open -u alice,{PASSWORDS['alice']} ftp://localhost:{sni_server.port}; cls"],
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [b"other-side.txt"]


def test_sni_side_by_side_with_proftpd(open_tmp_path, pki):
    base = open_tmp_path
    make_users(base)
    config = "LoadModule mod_tls.c\n" + fill(SNI_CONFIG, {"pki": pki.dir, "passwd": "{base}/ftpd.passwd",
                                                           "group": "{base}/ftpd.group"})

    def drive(port, run):
        return [_sni_session(port, *case)[1:] for case in SNI_CASES]     # the greetings name different servers

    ran = side_by_side(base, config, drive)
    assert ran["proftpd"] == ran["proftpy"]
    assert ran["proftpy"][0][-1] == 'HOST other.test -> 220 ProFTPD Server (other) [127.0.0.1]'


def test_implicit_ftps_sni_greets_as_the_named_server(ftpd, pki, tmp_path):
    config = SNI_CONFIG.replace("TLSEngine on\n", "TLSEngine on\nTLSOptions UseImplicitSSL\n")
    d = ftpd(fill(config, {"pki": pki.dir, "passwd": tmp_path / "ftpd.passwd", "group": tmp_path / "ftpd.group"}))
    import socket
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.port), 10), server_hostname="other.test") as tls:
        assert "CN=bob" in subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-nameopt",
                                           "compat"], input=tls.getpeercert(binary_form=True),
                                          capture_output=True).stdout.decode()
        assert read_reply(tls.makefile("rb")) == "220 ProFTPD Server (other) [127.0.0.1]"
