"""What the database servers the tests run (tests/pgsql_helpers.py, tests/mysql_helpers.py) share: a process
started in a temporary directory of its own (paused, resumed and stopped as tests/server_process.py says), the
administrator's client, a throwaway certificate for its TLS."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from server_process import ServerProcess


def self_signed(cert: Path, key: Path, owner: str | None = None, name: str = "localhost") -> None:
    """A throwaway self-signed certificate for `name`, localhost and 127.0.0.1; the key readable by `owner` only."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True,
                   timeout=60)
    os.chmod(key, 0o600)
    if owner is not None:
        account = pwd.getpwnam(owner)
        os.chown(key, account.pw_uid, account.pw_gid)


@dataclass
class DbServer(ServerProcess):
    """One server process: `dir` its directory, `port` on 127.0.0.1, `proc` the process (its pid is the server's).
    A subclass says how it starts (`start(setup_sql)`), its log file, and the signal that stops it quickly."""

    dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    log_name = "server.log"
    separator = "\t"               # between the columns of the administrator's client's output

    @property
    def cert(self) -> Path:
        """The server's self-signed certificate (TLS is offered): what `ssl-ca:` trusts."""
        return self.dir / "server.crt"

    def start(self, setup_sql: str = "") -> "DbServer":
        raise NotImplementedError

    def run(self, sql: str, database: str | None = None) -> str:
        """`sql` run by the administrator in `database` (the tests' by default); the client's output."""
        raise NotImplementedError

    def rows(self, sql: str) -> list[list[str]]:
        return [line.split(self.separator) for line in self.run(sql).splitlines() if line]

    def client(self, argv: list[str], sql: str) -> str:
        res = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"{os.path.basename(argv[0])} failed: {res.stderr}")
        return res.stdout

    def log(self) -> str:
        try:
            return (self.dir / self.log_name).read_text(errors="replace")
        except OSError:
            return ""

    @classmethod
    def new(cls, prefix: str, setup_sql: str = "") -> "DbServer":
        """A started server in a new directory under /tmp (short: Unix socket paths have a length limit)."""
        base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        os.chmod(base, 0o755)
        server = cls(base)
        try:
            return server.start(setup_sql)
        except BaseException:
            server.remove()
            raise
