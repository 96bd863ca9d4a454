"""`make run`: prepare ./run (served directory, demo account with a fresh random password, a self-signed certificate
for explicit FTPS) and start proftpy in the foreground on 127.0.0.1:2121 with conf/proftpy-dev.conf. Works as root
and as a normal user."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proftpy.auth.crypt import crypt_hash  # noqa: E402


def demo_identity() -> tuple[int, int]:
    """As root the demo account maps to the invoking sudo user, else to nobody; otherwise to ourselves."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    if os.environ.get("SUDO_UID"):
        return int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", os.environ["SUDO_UID"]))
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def make_certificate(run: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost, made for this run (openssl command)."""
    tls = run / "tls"
    tls.mkdir(exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem"), "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.chmod(tls / "key.pem", 0o600)
    return tls


def main() -> int:
    run = REPO / "run"
    srv = run / "srv"
    srv.mkdir(parents=True, exist_ok=True)
    os.chmod(run, 0o755)
    uid, gid = demo_identity()
    readme = srv / "README.txt"
    if not readme.exists():
        readme.write_text("Welcome to the proftpy development server.\n")
    if os.geteuid() == 0:
        for path in [srv, *srv.rglob("*")]:
            os.lchown(path, uid, gid)
    password = secrets.token_urlsafe(12)
    passwd = run / "ftpd.passwd"
    passwd.write_text(f"demo:{crypt_hash(password, 'sha512')}:{uid}:{gid}:demo:{srv}:/bin/sh\n")
    group = run / "ftpd.group"
    group.write_text(f"demo:x:{gid}:demo\n")
    for path in (passwd, group):
        os.chmod(path, 0o600)
    make_certificate(run)
    print("proftpy development server on ftp://127.0.0.1:2121/ (plain FTP and explicit FTPS)")
    print(f"  user: demo   password: {password}")
    print(f"  try:  curl ftp://demo:{password}@127.0.0.1:2121/")
    print(f"  FTPS: curl --ssl-reqd -k ftp://demo:{password}@127.0.0.1:2121/")
    print(f'        lftp -e "set ssl:verify-certificate no; set ftp:ssl-force true" -u demo,{password} 127.0.0.1:2121')
    print(f"        (the certificate is self-signed, made for this run: {run / 'tls' / 'cert.pem'})")
    print("  stop: Ctrl-C", flush=True)
    os.environ["PROFTPY_RUN"] = str(run)
    args = [sys.executable, "-m", "proftpy", "-n", "-c", str(REPO / "conf" / "proftpy-dev.conf")]
    os.execv(sys.executable, args)


if __name__ == "__main__":
    sys.exit(main())
