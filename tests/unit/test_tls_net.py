"""net/tls.py, net/x509.py and net/openssl.py over real TLS connections on loopback: handshakes with a deadline,
close_notify and what OpenSSL does without it, the kernel-TLS probe (and the strategy it picks), the certificate
reader, the SSL_CTX settings Python's ssl lacks."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from proftpy.net import openssl, x509
from proftpy.net import tls as nettls
from proftpy.transfer.ktls import Ktls
from proftpy.transfer.strategy import pick
from proftpy.transfer.stream import Stream


def pair() -> tuple[socket.socket, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=10)
    server, _ = listener.accept()
    listener.close()
    return server, client


def serve(ctx: ssl.SSLContext, sock: socket.socket, **kw) -> dict:
    """Run `nettls.handshake` on `sock` in a thread; the result (or the error) lands in the returned dict."""
    out: dict = {}

    def run() -> None:
        try:
            out["tls"] = nettls.handshake(sock, ctx, kw.pop("timeout", 5), **kw)
        except nettls.HandshakeError as e:
            out["error"] = e
    out["thread"] = threading.Thread(target=run)
    out["thread"].start()
    return out


def test_handshake_keeps_the_sockets_mode_and_nodelay(tls):
    server, client = pair()
    server.settimeout(7.5)
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    got = serve(tls.server(), server)
    peer = tls.client().wrap_socket(client, server_hostname="localhost")
    got["thread"].join(10)
    wrapped = got["tls"]
    assert wrapped.version() in ("TLSv1.2", "TLSv1.3")
    assert wrapped.gettimeout() == 7.5
    assert wrapped.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    wrapped.sendall(b"ok")
    assert peer.recv(2) == b"ok"
    wrapped.close()
    peer.close()


def test_a_handshake_that_never_comes_times_out_and_gives_the_plain_socket_back(tls):
    server, client = pair()
    got = serve(tls.server(), server, timeout=0.3)
    got["thread"].join(10)
    e = got["error"]
    assert e.timed_out and e.reason == "TLS negotiation timed out (0.3 seconds)"
    e.sock.sendall(b"421 TLS handshake failed\r\n")           # the caller can still answer in the clear
    assert client.recv(100) == b"421 TLS handshake failed\r\n"
    e.sock.close()
    client.close()


def test_a_peer_that_is_no_tls_client(tls):
    server, client = pair()
    client.sendall(b"USER alice\r\n")
    got = serve(tls.server(), server)
    got["thread"].join(10)
    assert got["error"].reason == "protocol error: "
    assert got["error"].errors == ("  (1) error:0A00010B:SSL routines::wrong version number",)
    got["error"].sock.close()
    client.close()


def _resumes_after(tls_fixture, ending) -> bool:
    """Whether a second connection resumes the first one's session when the server ended the first with
    `ending(server_side_tls)`."""
    ctx = tls_fixture.server(ssl.TLSVersion.TLSv1_2)
    ctx.options |= ssl.OP_NO_TICKET
    client_ctx = tls_fixture.client(ssl.TLSVersion.TLSv1_2)
    resumed = []
    session = None
    for _ in range(2):
        server, client = pair()
        got = serve(ctx, server)
        peer = client_ctx.wrap_socket(client, server_hostname="localhost", session=session)
        got["thread"].join(10)
        resumed.append(got["tls"].session_reused)
        session = peer.session
        ending(got["tls"])
        peer.close()
    return resumed[1]


def test_close_notify_keeps_the_session_resumable(tls):
    def polite(s):
        nettls.close_notify(s)
        s.close()
    assert _resumes_after(tls, polite)
    # Without a close_notify, OpenSSL invalidates the session when the SSL object is freed (3.11, 3.12.1 and
    # 3.13.0 here): so Stream.close sends one even on an aborted transfer. Later CPython releases mark every
    # socket shut down before freeing it (gh-116810, Modules/_ssl.c PySSL_dealloc; 3.13.5 here), where the abrupt
    # ending resumes too: what it gives depends on the interpreter, only the polite one is ours.


def _ktls_module_loaded() -> bool:
    return Path("/sys/module/tls").exists()


def test_the_kernel_tls_probe_and_the_strategy_it_picks(tls):
    """Kernel TLS offered on both sides (OP_ENABLE_KTLS); on a kernel without the `tls` module (these test
    machines) the probe says no and the user-space `stream` strategy is used, never sendfile(2)."""
    ctx = tls.server()
    ctx.options |= nettls.OP_ENABLE_KTLS
    client_ctx = tls.client()
    client_ctx.options |= nettls.OP_ENABLE_KTLS
    server, client = pair()
    got = serve(ctx, server)
    peer = client_ctx.wrap_socket(client, server_hostname="localhost")
    got["thread"].join(10)
    offloaded = nettls.kernel_tx(got["tls"])
    assert offloaded == _ktls_module_loaded()
    assert pick(got["tls"]) is (Ktls if offloaded else Stream)
    with socket.socket() as plain_tcp:
        assert not nettls.kernel_tx(plain_tcp)                  # plain TCP: no
    got["tls"].close()
    peer.close()


def test_x509_reads_dates_names_and_extensions(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", "k.pem", "-out", "c.pem", "-days", "3", "-subj", "/O=Example/CN=carol",
                    "-addext", "subjectAltName=email:carol@example.org,DNS:ftp.example.org",
                    "-addext", "1.2.3.4.5=ASN1:UTF8String:carol-oid"], cwd=tmp_path, check=True, capture_output=True)
    cert = x509.read_certificates(str(tmp_path / "c.pem"))[0]
    assert cert.common_name == "carol"
    assert cert.alt_emails() == ["carol@example.org"]
    assert cert.extension_text("1.2.3.4.5") == "carol-oid"
    assert 2 * 86400 < (cert.not_after - cert.not_before).total_seconds() <= 3 * 86400 + 1
    assert cert.der == ssl.PEM_cert_to_DER_cert((tmp_path / "c.pem").read_text())
    with pytest.raises(x509.BadCertificate):
        x509.Certificate.parse(b"\x30\x82\x01")


def test_openssl_settings_python_lacks(tls):
    ctx = tls.server()
    native = openssl.Native.of(ctx)
    native.set_ciphersuites("TLS_AES_128_GCM_SHA256")
    with pytest.raises(ValueError, match="no usable TLSv1.3 cipher suite"):
        native.set_ciphersuites("TLS_NOT_A_SUITE")
    before = native.set_cache_mode(openssl.SESS_CACHE_OFF)
    assert before == openssl.SESS_CACHE_SERVER and native.cache_mode() == openssl.SESS_CACHE_OFF
    native.set_groups("secp384r1:prime256v1")
    with pytest.raises(ValueError):
        native.set_groups("no-such-curve")
    native.set_ticket_keys(os.urandom(openssl.TICKET_KEYS_SIZE))
    with pytest.raises(ValueError):
        native.set_ticket_keys(b"short")
    server, client = pair()                     # the context still works after all that
    got = serve(ctx, server)
    peer = tls.client(ssl.TLSVersion.TLSv1_3).wrap_socket(client, server_hostname="localhost")
    got["thread"].join(10)
    assert got["tls"].cipher()[0] == "TLS_AES_128_GCM_SHA256"
    assert native.secure_renegotiation(got["tls"]) is True          # OpenSSL clients announce it (RFC 5746)
    assert openssl.Native.of(tls.server()).secure_renegotiation(got["tls"]) is None   # not that context's SSL
    got["tls"].close()
    peer.close()


def test_openssl_error_text_found_again_from_the_names():
    from proftpy.net.openssl import error_text
    assert error_text("SSL", "WRONG_VERSION_NUMBER") == "error:0A00010B:SSL routines::wrong version number"
    assert (error_text("SSL", "TLSV1_ALERT_UNKNOWN_CA")
            == "error:0A000418:SSL routines::tlsv1 alert unknown ca [SSL alert number 48]")
    assert error_text("SSL", "NOT_A_REASON") is None and error_text("X509", "CERT_ALREADY_IN_HASH_TABLE") is None
    assert error_text(None, None) is None
