"""TLSLog's lines for a failed control handshake, side by side with Debian's ProFTPD 1.3.8: the `protocol error`
line and OpenSSL's error after it (`  (1) error:0A00010B:SSL routines::wrong version number`), for the common
failures: a protocol version the server refuses, no cipher in common, plain text where the handshake should be,
a client that refuses the server's certificate, a client certificate the server refuses."""

from __future__ import annotations

import socket

import pytest

from conftest import fill, make_users, side_by_side
from tls_helpers import make_pki, read_reply
from test_tls_parity import TLS_MAIN, _s_client, _tls_log

pytestmark = pytest.mark.slow

CONFIG = TLS_MAIN + "TLSCACertificateFile {pki}/ca.pem\nTLSVerifyClient optional\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def _plain_text(port: int) -> None:
    """AUTH TLS, then an FTP command in the clear where the ClientHello should be."""
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        f = sock.makefile("rb")
        read_reply(f)
        sock.sendall(b"AUTH TLS\r\n")
        read_reply(f)
        sock.sendall(b"USER alice\r\n")
        try:
            sock.recv(4096)
        except OSError:
            pass


def test_protocol_error_lines_side_by_side_with_proftpd(open_tmp_path, pki):
    base = open_tmp_path
    make_users(base)
    clients = [("-tls1_1",),                                                    # a version the server refuses
               ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"),           # an EC key: no RSA suite
               ("-tls1_2", "-verify_return_error", "-CAfile", f"{pki.dir}/stranger.pem"),  # untrusted server
               ("-tls1_3", "-verify_return_error", "-CAfile", f"{pki.dir}/stranger.pem"),
               ("-tls1_2", "-cert", f"{pki.dir}/stranger.pem", "-key", f"{pki.dir}/stranger.key")]

    def drive(port, run):
        for args in clients:
            _s_client(port, *args)
        _plain_text(port)
        return _tls_log(run)
    ran = side_by_side(base, fill(CONFIG, {"pki": pki.dir}), drive)
    assert ran["proftpy"] == ran["proftpd"]
    log = ran["proftpy"]
    assert log.count("unable to accept TLS connection: protocol error: ") == 6
    for text in ("unsupported protocol", "no shared cipher", "certificate verify failed", "wrong version number"):
        assert any(line.startswith("  (1) error:0A") and line.endswith(text) for line in log), text
    assert log.count("  (1) error:0A000418:SSL routines::tlsv1 alert unknown ca [SSL alert number 48]") == 2
