"""net/ocsp.py: requests, answers and their checks through libcrypto, against answers `openssl ocsp` signs from an
index (no responder process: `-reqin/-respout`), and the HTTP reading; modules/tls_stapling.py's cache rules."""

from __future__ import annotations

import os
import hashlib
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ocsp_helpers import make_ocsp_pki
from ports import free_port
from proftpy.modules.tls_ocspcache import FsCache
from proftpy.modules.tls_stapling import Stapler
from proftpy.net import ocsp, x509


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("ocsp")
    make_ocsp_pki(d, 9)                 # the AIA names port 9: never asked here
    return d


def der(d: Path, name: str) -> bytes:
    return x509.pem_certificates((d / f"{name}.pem").read_bytes())[0]


def answer(d: Path, request: bytes, *extra: str) -> bytes:
    """What `openssl ocsp` (the responder's logic, signed by ocsp.pem) answers to `request`."""
    (d / "req.der").write_bytes(request)
    subprocess.run(["openssl", "ocsp", "-index", "index.txt", "-rsigner", "ocsp.pem", "-rkey", "ocsp.key", "-CA",
                    "ca.pem", "-reqin", "req.der", "-respout", "resp.der", *extra], cwd=d, check=True,
                   capture_output=True)
    return (d / "resp.der").read_bytes()


def test_good_and_revoked_as_the_index_says(pki):
    ca = der(pki, "ca")
    for name, status in (("good", ocsp.GOOD), ("revoked", ocsp.REVOKED)):
        q = ocsp.Query(der(pki, name), ca)
        got = q.check(answer(pki, q.der, "-nmin", "5"), [ca])
        assert got.status == status and got.status_text == ("good" if status == ocsp.GOOD else "revoked")
        assert abs(got.this_update - time.time()) < 120 and 200 < got.next_update - time.time() < 400


def test_nonce_signature_and_certificate_are_checked(pki):
    ca, good = der(pki, "ca"), der(pki, "good")
    q = ocsp.Query(good, ca)
    resp = answer(pki, q.der)
    with pytest.raises(ocsp.OcspError, match="verifying basic OCSP response"):
        q.check(resp, [der(pki, "noaia")])              # not signed by anyone trusted
    assert q.check(resp, [der(pki, "noaia")], verify=False).status == ocsp.GOOD          # NoVerify
    with pytest.raises(ocsp.OcspError, match="nonce"):
        ocsp.Query(good, ca).check(resp, [ca])          # another request's nonce
    with pytest.raises(ocsp.OcspError, match="locating certificate status"):
        ocsp.Query(der(pki, "revoked"), ca, nonce=False).check(resp, [ca], nonce=False)
    plain = ocsp.Query(good, ca, nonce=False)           # NoNonce: the request has none, no check
    warned = []
    assert plain.check(answer(pki, plain.der), [ca], nonce=False).status == ocsp.GOOD
    q2 = ocsp.Query(good, ca)
    q2.check(answer(pki, plain.der), [ca], warn=warned.append)      # an answer without our nonce: only a warning
    assert warned == ["WARNING: OCSP response is missing request nonce"]
    with pytest.raises(ocsp.OcspError, match="not successful: trylater"):
        q.check(ocsp.TRY_LATER, [ca])
    with pytest.raises(ocsp.OcspError, match="cannot be read"):
        q.check(b"\x30\x03junk", [ca])


def test_expired_answer_is_refused_and_inspected(pki):
    ca = der(pki, "ca")
    q = ocsp.Query(der(pki, "good"), ca, nonce=False)
    old = answer(pki, q.der, "-nmin", "1")
    assert ocsp.inspect(old).valid and ocsp.inspect(old).status == ocsp.GOOD
    assert ocsp.inspect(ocsp.TRY_LATER).response_status == 3
    assert ocsp.inspect(ocsp.TRY_LATER).response_status_text == "trylater"


def test_responders_and_issuer(pki):
    assert ocsp.responders(der(pki, "good")) == ["http://127.0.0.1:9/"]
    assert ocsp.responders(der(pki, "noaia")) == []
    ca = der(pki, "ca")
    assert ocsp.issuer_of(der(pki, "good"), [der(pki, "noaia"), ca]) == ca
    assert ocsp.issuer_of(der(pki, "good"), [der(pki, "noaia")]) is None


def test_url_and_http_reading():
    assert ocsp.parse_url("http://ocsp.example:8080/a?b=1") == ("ocsp.example", 8080, "/a?b=1", False)
    assert ocsp.parse_url("http://127.0.0.1") == ("127.0.0.1", 80, "/", False)
    assert ocsp.parse_url("HTTPS://ocsp.example/x") == ("ocsp.example", 443, "/x", True)
    for bad in ("ftp://x/", "ldap://x", "http://", "https://", "http://x:99999/"):
        with pytest.raises(ocsp.OcspError):
            ocsp.parse_url(bad)
    assert ocsp.http_body(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabcdef") == b"abc"
    assert ocsp.http_body(b"HTTP/1.1 200 OK\r\n\r\nabc") == b"abc"
    for bad in (b"HTTP/1.0 404 Not Found\r\n\r\n", b"HTTP/1.0 200 OK\r\n", b"junk\r\n\r\n",
                b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nabc"):
        with pytest.raises(ocsp.OcspError):
            ocsp.http_body(bad)


def test_dead_responder_is_an_error_within_the_timeout():
    with socket.socket() as s:          # listens, never accepts nor answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        start = time.monotonic()
        with pytest.raises(ocsp.OcspError, match="timed out"):
            ocsp.post(f"http://127.0.0.1:{s.getsockname()[1]}/", b"x", 0.5)
        assert time.monotonic() - start < 2
        start = time.monotonic()        # https://: the TLS handshake is within the same deadline
        with pytest.raises(ocsp.OcspError, match="timed out"):
            ocsp.post(f"https://127.0.0.1:{s.getsockname()[1]}/", b"x", 0.5)
        assert time.monotonic() - start < 2


def test_a_responder_that_does_not_speak_tls_is_an_error():
    with socket.socket() as s:          # answers the ClientHello with plain HTTP
        s.bind(("127.0.0.1", free_port()))
        s.listen(1)

        def answer():
            conn, _ = s.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        t = threading.Thread(target=answer)
        t.start()
        with pytest.raises(ocsp.OcspError, match="error connecting to OCSP responder 127.0.0.1"):
            ocsp.post(f"https://127.0.0.1:{s.getsockname()[1]}/", b"x", 5)
        t.join(5)


def stapler(pki: Path, cache: FsCache | None, **kw) -> Stapler:
    return Stapler(der(pki, "good"), der(pki, "ca"), [der(pki, "ca")], None, False, cache=cache, **kw)


def test_fake_try_later_is_cached_and_goes_stale(pki, tmp_path):
    cache = FsCache(str(tmp_path))
    st = stapler(pki, cache)                    # no URL: no answer
    assert st.fingerprint == hashlib.sha1(der(pki, "good")).hexdigest()
    assert st.respond(False) == ocsp.TRY_LATER
    path = tmp_path / f"{st.fingerprint}.der"
    assert path.read_bytes() == ocsp.TRY_LATER
    assert st.respond(True) is None                     # resumed: nothing (RFC 6066)
    assert stapler(pki, cache, fake_try_later=False).respond(False) == ocsp.TRY_LATER      # from the cache
    old = time.time() - 3 * 3600
    os.utime(path, (old, old))
    assert stapler(pki, cache, fake_try_later=False).respond(False) is None    # stale: deleted, none anew
    assert not path.exists()
    assert stapler(pki, None, fake_try_later=False).respond(False) is None


def test_cached_good_answer_is_used_until_it_expires(pki, tmp_path):
    cache = FsCache(str(tmp_path))
    st = stapler(pki, cache)
    q = ocsp.Query(der(pki, "good"), der(pki, "ca"), nonce=False)
    fresh = answer(pki, q.der, "-nmin", "5")
    cache.add(st.fingerprint, fresh)
    assert st.respond(False) == fresh
    old = time.time() - 2 * 3600
    os.utime(tmp_path / f"{st.fingerprint}.der", (old, old))
    assert st.respond(False) == fresh                   # old, but within its nextUpdate
