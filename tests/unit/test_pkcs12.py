"""proftpy.net.pkcs12: bundles made by the openssl command, opened through OpenSSL's PKCS12_parse."""

from __future__ import annotations

import subprocess

import pytest

from proftpy.net import pkcs12


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("p12")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", d / "k.pem", "-out", d / "c.pem", "-days", "1", "-subj", "/CN=p12"], check=True,
                   capture_output=True)
    for name, password, extra in (("plain", "", []), ("secret", "s3cret", []), ("chain", "", ["-certfile", d / "c.pem"])):
        subprocess.run(["openssl", "pkcs12", "-export", "-in", d / "c.pem", "-inkey", d / "k.pem", "-out",
                        d / f"{name}.p12", "-passout", f"pass:{password}", *extra], check=True, capture_output=True)
    return d


def test_an_unprotected_bundle_opens_without_a_password(files):
    data = (files / "plain.p12").read_bytes()
    assert not pkcs12.needs_password(data)
    bundle = pkcs12.parse(data, None)
    assert bundle.certificate.strip() == (files / "c.pem").read_bytes().strip()
    assert bundle.key.startswith(b"-----BEGIN PRIVATE KEY-----") and bundle.chain == ()


def test_a_protected_bundle_needs_its_password(files):
    data = (files / "secret.p12").read_bytes()
    assert pkcs12.needs_password(data)
    assert pkcs12.parse(data, b"s3cret").key.startswith(b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(pkcs12.Pkcs12Error, match="wrong password"):
        pkcs12.parse(data, b"other")
    with pytest.raises(pkcs12.Pkcs12Error, match="needs a password"):
        pkcs12.parse(data, None)


def test_the_bundle_s_ca_certificates_are_its_chain(files):
    assert len(pkcs12.parse((files / "chain.p12").read_bytes(), None).chain) == 1


def test_what_is_not_a_bundle_is_refused(files):
    with pytest.raises(pkcs12.Pkcs12Error, match="not a PKCS12 file"):
        pkcs12.needs_password((files / "c.pem").read_bytes())
