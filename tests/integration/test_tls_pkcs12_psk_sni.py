"""mod_tls's TLSPKCS12File (and, below, TLSPreSharedKey) against the real daemon with real clients: curl
and lftp (verifying the chain the bundle carries), `openssl s_client -starttls ftp`. Behaviour checked against Debian's
ProFTPD 1.3.8: a password-protected bundle asks TLSPassPhraseProvider with `servername:port PKCS12`; without a
password it is not loaded and the server does not start."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORDS, configtest, wait_until
from tls_helpers import make_pki



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
