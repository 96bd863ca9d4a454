#!/usr/bin/env python3
"""FTPS side by side with Debian's ProFTPD 1.3.8 (`LoadModule mod_tls.c`): the replies of AUTH, PBSZ, PROT, CCC,
SSCN and TLSRequired (`TLSRequired auth+data`) for the same command lines, then the TLSLog lines of the same
sessions (a transfer resuming the session, PROT C, CCC, a client that does not resume, a handshake that never
comes). A developer tool, not part of `make test`; it uses the servers and the certificate of scripts/bench.py.

    .venv/bin/python scripts/compare_tls.py          # as root: the differing replies, then both TLSLogs
Exit status: 0 when every reply matches, 1 otherwise.
"""

from __future__ import annotations

import ftplib
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

BEFORE_AUTH = ["PBSZ 0", "PROT P", "CCC", "SSCN", "USER bench", "NOOP", "AUTH", "AUTH FOO", "AUTH tls"]
AFTER_AUTH = ["AUTH TLS", "PBSZ", "PBSZ 0", "PBSZ 7", "PROT", "PROT S", "PROT E", "PROT Q", "PROT p", "PROT C",
              "SSCN", "USER bench", "PASS " + bench.PASSWORD, "LIST", "PROT P", "SSCN", "SSCN ON", "SSCN ON OFF",
              "SSCN x", "SSCN OFF", "HELP CCC", "HELP PROT", "CCC"]
CLIENT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CLIENT.check_hostname = False
CLIENT.verify_mode = ssl.CERT_NONE


def replies(port: int) -> list[tuple[str, str]]:
    out = []
    ftp = ftplib.FTP_TLS(context=CLIENT, timeout=10)
    ftp.connect("127.0.0.1", port)

    def send(line: str) -> None:
        try:
            out.append((line, ftp.sendcmd(line)))
        except ftplib.Error as e:
            out.append((line, str(e)))
    for line in BEFORE_AUTH:
        send(line)
    ftp.sock = CLIENT.wrap_socket(ftp.sock, server_hostname="localhost")
    ftp.file = ftp.sock.makefile("r", encoding="utf-8")
    for line in AFTER_AUTH:
        send(line)
    ftp.close()
    return out


def sessions(port: int) -> None:
    """What fills the TLSLog: a good session with CCC, one that does not resume, a handshake that never comes."""
    ftp = bench.ftps_login(port)
    ftp.nlst()
    ftp.nlst()
    try:
        ftp.sendcmd("PROT C")
    except ftplib.Error:
        pass                                # 534 under TLSRequired auth+data: logged by both
    ftp.ccc()
    ftp.quit()
    ftp = ftplib.FTP_TLS(context=CLIENT, timeout=10)
    ftp.connect("127.0.0.1", port)
    ftp.auth()
    ftp.login(bench.USER, bench.PASSWORD)
    ftp.prot_p()
    try:
        ftp.nlst()
    except ftplib.Error:
        pass                                # 425: expected
    ftp.close()
    raw = socket.create_connection(("127.0.0.1", port))
    raw.recv(100)
    raw.sendall(b"AUTH TLS\r\n")
    raw.recv(100)
    time.sleep(1.5)                         # TLSTimeoutHandshake 1
    raw.close()
    time.sleep(0.3)


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="proftpy-compare-tls-"))
    os.chmod(base, 0o755)
    bench.CERT = bench.make_certificate(base)
    tls_conf = bench.tls_conf
    bench.tls_conf = lambda s, load="": tls_conf(s, load) + (
        f"TLSRequired auth+data\nTLSLog {s.work}/tls.log\nTLSTimeoutHandshake 1\n" if s.tls else "")
    results, logs = {}, {}
    try:
        for cls in (bench.Proftpy, bench.Proftpd):
            work = base / cls.__name__
            work.mkdir()
            home, _, _ = bench.make_user(work)
            server = cls(cls.__name__.lower(), work, home=home, tls=True)
            server.start()
            try:
                results[cls.__name__] = replies(server.port)
                sessions(server.port)
            finally:
                server.stop()
            logs[cls.__name__] = [re.sub(r"^\S+ \S+ (\S+)\[\d+\]", r"\1", line)
                                  for line in (work / "tls.log").read_text().splitlines()]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    differ = 0
    for (line, ours), (_, theirs) in zip(results["Proftpy"], results["Proftpd"]):
        if ours != theirs:
            differ += 1
            print(f"{line}\n  proftpy: {ours!r}\n  proftpd: {theirs!r}")
    print(f"{len(results['Proftpy']) - differ} replies match, {differ} differ")
    for name, lines in logs.items():
        print(f"\n== TLSLog of {name}")
        print("\n".join("   " + line for line in lines))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
