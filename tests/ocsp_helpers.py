"""What the OCSP stapling tests share: a PKI of their own (a CA, an OCSP-signing certificate, server certificates
whose AIA names a loopback responder; openssl command, EC keys: fast), the index `openssl ocsp` answers from, and
that responder as a process of the test's own on a free loopback port, stopped by its pid; a TLS relay in front
of it for https:// responder URLs."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import tempfile
import time
from pathlib import Path

from server_process import ServerProcess
from tls_helpers import EC, _openssl

GOOD_SERIAL, REVOKED_SERIAL, NOAIA_SERIAL = "1001", "1002", "1003"


def make_ocsp_pki(d: Path, responder_port: int) -> None:
    """ca.pem/ca.key, ocsp.pem/ocsp.key (OCSPSigning), good.pem, revoked.pem (AIA OCSP
    http://127.0.0.1:PORT/), noaia.pem (no AIA), each with its .key; index.txt: good valid, revoked revoked."""
    _openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ocsp test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=d)
    aia = f"authorityInfoAccess=OCSP;URI:http://127.0.0.1:{responder_port}/\n"
    certs = [("ocsp", "2001", "/CN=ocsp responder", "extendedKeyUsage=OCSPSigning\n"),
             ("good", GOOD_SERIAL, "/CN=localhost", "subjectAltName=DNS:localhost\n" + aia),
             ("revoked", REVOKED_SERIAL, "/CN=localhost", "subjectAltName=DNS:localhost\n" + aia),
             ("noaia", NOAIA_SERIAL, "/CN=localhost", "subjectAltName=DNS:localhost\n")]
    for name, serial, subject, ext in certs:
        _openssl("req", "-new", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
        (d / f"{name}.ext").write_text(ext)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
                 f"0x{serial}", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    expiry = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 2 * 86400))
    revoked_at = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 60))
    (d / "index.txt").write_text(f"V\t{expiry}\t\t{GOOD_SERIAL}\tunknown\t/CN=localhost\n"
                                 f"R\t{expiry}\t{revoked_at}\t{REVOKED_SERIAL}\tunknown\t/CN=localhost\n"
                                 f"V\t{expiry}\t\t{NOAIA_SERIAL}\tunknown\t/CN=localhost\n")
    (d / "index.txt.attr").write_text("unique_subject = no\n")


class Responder(ServerProcess):
    """An OCSP responder on 127.0.0.1:port answering from d/index.txt: this file run as a script, an HTTP server
    bound to loopback (OpenSSL 3.0's `openssl ocsp -port` binds every address) that hands each request to
    `openssl ocsp -reqin/-respout` (the real responder logic, signed by ocsp.pem). `minutes`: the nextUpdate it
    sets (None: none); `signer`: the certificate (and key) that signs the answers (not `ocsp`: one without
    OCSPSigning, whose answers do not verify). Each request it answered is a line in d/requests.log."""

    stop_wait = 5.0

    def __init__(self, d: Path, port: int, minutes: int | None = 5, signer: str = "ocsp"):
        self.dir, self.port, self.proc = d, port, None
        self.args = [sys.executable, __file__, str(d), str(port), str(minutes or 0), signer]

    def start(self) -> "Responder":
        (self.dir / "requests.log").write_text("")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.wait_ready(10):
            raise RuntimeError("the OCSP responder did not start")
        return self

    def requests(self) -> int:
        log = self.dir / "requests.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def remove(self) -> None:
        self.stop()                     # the directory is the test's


def _serve(d: Path, port: int, minutes: int, signer: str) -> None:
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with tempfile.TemporaryDirectory(dir=d) as tmp:
                (Path(tmp) / "req.der").write_bytes(body)
                args = ["openssl", "ocsp", "-index", "index.txt", "-rsigner", f"{signer}.pem", "-rkey",
                        f"{signer}.key", "-CA", "ca.pem", "-reqin", f"{tmp}/req.der", "-respout", f"{tmp}/resp.der"]
                subprocess.run(args + (["-nmin", str(minutes)] if minutes else []), cwd=d, capture_output=True,
                               timeout=20)
                answer = (Path(tmp) / "resp.der").read_bytes()
            with open(d / "requests.log", "a") as f:
                f.write(f"{len(body)}\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()


class TlsRelay:
    """An https:// responder for the tests: a TLS listener on 127.0.0.1:port (certificate `cert`, signed by the
    test CA: a responder's certificate that nobody here is asked to trust) whose connections are relayed, in
    threads of the test's process, to the plain HTTP responder on `target`. `connections`: how many came."""

    def __init__(self, d: Path, port: int, target: int, cert: str = "noaia"):
        self.port, self.target, self.connections = port, target, 0
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(d / f"{cert}.pem"), str(d / f"{cert}.key"))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> "TlsRelay":
        self.thread.start()
        return self

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)        # wakes the accept (a close alone does not)
        except OSError:
            pass                                        # stopped before
        self.sock.close()
        self.thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return                              # stopped
            self.connections += 1
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            with self.ctx.wrap_socket(conn, server_side=True) as tls, \
                    socket.create_connection(("127.0.0.1", self.target), timeout=10) as up:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += tls.recv(65536) or b"\r\n\r\n"
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                up.sendall(head + b"\r\n\r\n" + body)
                while chunk := up.recv(65536):
                    tls.sendall(chunk)
        except OSError:
            pass                                    # the client gave up: its test says so
        finally:
            conn.close()


def query(d: Path, cert: str, port: int) -> str:
    """`openssl ocsp` as a client: the status line of `cert` (e.g. 'good.pem: good')."""
    done = subprocess.run(["openssl", "ocsp", "-issuer", "ca.pem", "-cert", cert, "-url",
                           f"http://127.0.0.1:{port}/", "-CAfile", "ca.pem", "-timeout", "5"],
                          cwd=d, capture_output=True, text=True, timeout=20)
    return done.stdout


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
