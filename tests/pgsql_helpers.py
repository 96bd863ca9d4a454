"""A real PostgreSQL server for mod_sql_postgres's tests and scripts/compare_proftpd.py: Debian's PostgreSQL 15, a
cluster made by initdb in a temporary directory, run by a user that is not root (postgres refuses root: the
`postgres` system user when the tests run as root), listening on 127.0.0.1 at a free port and on a Unix socket in
that directory, stopped by its pid.

Roles: `pgadmin` (the superuser, trusted on the Unix socket, sets the database up with psql), and for the FTP
server's connection `ftp_scram` (SCRAM-SHA-256), `ftp_md5` (md5, its password stored as md5), `ftp_clear` (the
cleartext `password` method) and `ftp_trust` (trust), each owning nothing but allowed to read and write the
tables."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ports import free_port

BIN = "/usr/lib/postgresql/15/bin"
ADMIN = "pgadmin"
DATABASE = "ftpdb"
PASSWORDS = {"ftp_scram": "scram-secret", "ftp_md5": "md5-secret", "ftp_clear": "clear-secret"}

HBA = """\
local all all trust
host all ftp_trust 127.0.0.1/32 trust
host all ftp_md5 127.0.0.1/32 md5
host all ftp_clear 127.0.0.1/32 password
host all all 127.0.0.1/32 scram-sha-256
"""


def available() -> bool:
    return os.path.exists(f"{BIN}/initdb") and os.path.exists(f"{BIN}/postgres")


def _runner() -> list[str]:
    """What runs a PostgreSQL program: as `postgres` (setpriv execs: the pid is the program's) when we are root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--reset-env"]


@dataclass
class Postgres:
    """One running cluster: `port` (127.0.0.1), `dir` (the data directory's parent, the Unix socket's directory)."""

    dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def start(self, setup_sql: str = "") -> "Postgres":
        """initdb, the roles, the `ftpdb` database, then `setup_sql` run in it (as pgadmin, with grants to every
        ftp_ role on every table)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        subprocess.run(_runner() + [f"{BIN}/initdb", "-D", str(self.data), "-U", ADMIN, "--auth=trust", "-E",
                                    "UTF8", "--no-sync", "--locale=C"], check=True, capture_output=True, timeout=120)
        (self.data / "pg_hba.conf").write_text(HBA)
        for _ in range(5):                      # a port taken between the probe and the server's bind: try others
            self.port = free_port()
            if self._launch():
                break
        else:
            raise RuntimeError("postgres did not start: " + self.log())
        roles = "".join(
            f"SET password_encryption = '{'md5' if role == 'ftp_md5' else 'scram-sha-256'}';"
            f"CREATE ROLE {role} LOGIN PASSWORD '{pw}';" for role, pw in PASSWORDS.items()) + \
            "CREATE ROLE ftp_trust LOGIN;"
        self.psql(roles, database="postgres")
        self.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        if setup_sql:
            self.psql(setup_sql)
        self.grant()
        return self

    def grant(self, database: str = DATABASE) -> None:
        roles = ", ".join(list(PASSWORDS) + ["ftp_trust"])
        self.psql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {roles};"
                  f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {roles};", database=database)

    def _launch(self) -> bool:
        log = open(self.dir / "postgres.log", "ab")
        if os.geteuid() == 0:
            os.chown(self.dir / "postgres.log", pwd.getpwnam("postgres").pw_uid, -1)
        self.proc = subprocess.Popen(
            _runner() + [f"{BIN}/postgres", "-D", str(self.data), "-p", str(self.port), "-c",
                         "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}", "-c", "fsync=off",
                         "-c", "max_connections=40", "-c", "shared_buffers=16MB"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if subprocess.run(_runner() + [f"{BIN}/pg_isready", "-q", "-h", str(self.dir), "-p",
                                               str(self.port)], timeout=10).returncode == 0:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        return False

    def psql(self, sql: str, database: str = DATABASE) -> str:
        """`sql` run by the superuser over the Unix socket; its output (unaligned, tuples only)."""
        res = subprocess.run(_runner() + [f"{BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-h",
                                          str(self.dir), "-p", str(self.port), "-U", ADMIN, "-d", database],
                             input=sql, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"psql failed: {res.stderr}")
        return res.stdout

    def rows(self, sql: str) -> list[list[str]]:
        return [line.split("|") for line in self.psql(sql).splitlines() if line]

    def log(self) -> str:
        try:
            return (self.dir / "postgres.log").read_text(errors="replace")
        except OSError:
            return ""

    def pause(self) -> None:
        """SIGSTOP to the postmaster: connections are accepted (by the kernel) and never answered."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """A fast shutdown (SIGINT) of the postmaster we started, then SIGKILL if it does not go."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def new(setup_sql: str = "") -> Postgres:
    """A started cluster in a new directory under /tmp (short: the Unix socket path has a length limit)."""
    base = Path(tempfile.mkdtemp(prefix="proftpy-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    pg = Postgres(base)
    try:
        return pg.start(setup_sql)
    except BaseException:
        pg.remove()
        raise
