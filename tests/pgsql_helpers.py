"""A real PostgreSQL server for mod_sql_postgres's tests and scripts/compare_proftpd.py: Debian's PostgreSQL 15, a
cluster made by initdb in a temporary directory, run by a user that is not root (postgres refuses root: the
`postgres` system user when the tests run as root), listening on 127.0.0.1 at a free port and on a Unix socket in
that directory (TLS offered, with a self-signed certificate), stopped by its pid.

Roles: `pgadmin` (the superuser, trusted on the Unix socket, sets the database up with psql), and for the FTP
server's connection `ftp_scram` (SCRAM-SHA-256), `ftp_md5` (md5, its password stored as md5), `ftp_clear` (the
cleartext `password` method) and `ftp_trust` (trust), each owning nothing but allowed to read and write the
tables."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path

from dbserver_helpers import DbServer, self_signed
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


class Postgres(DbServer):
    """One running cluster: `port` (127.0.0.1), `dir` (the data directory's parent, the Unix socket's directory)."""

    log_name = "postgres.log"
    separator = "|"
    stop_signal = signal.SIGINT             # a fast shutdown

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
        self._certificate()
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
        self.run(roles, database="postgres")
        self.run(f"CREATE DATABASE {DATABASE}", database="postgres")
        if setup_sql:
            self.run(setup_sql)
        self.grant()
        return self

    def _certificate(self) -> None:
        self_signed(self.cert, self.dir / "server.key", "postgres" if os.geteuid() == 0 else None)

    def grant(self, database: str = DATABASE) -> None:
        roles = ", ".join(list(PASSWORDS) + ["ftp_trust"])
        self.run(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {roles};"
                  f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {roles};", database=database)

    def _launch(self) -> bool:
        log = open(self.dir / "postgres.log", "ab")
        if os.geteuid() == 0:
            os.chown(self.dir / "postgres.log", pwd.getpwnam("postgres").pw_uid, -1)
        self.proc = subprocess.Popen(
            _runner() + [f"{BIN}/postgres", "-D", str(self.data), "-p", str(self.port), "-c",
                         "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}", "-c", "fsync=off",
                         "-c", "max_connections=40", "-c", "shared_buffers=16MB", "-c", "ssl=on", "-c",
                         f"ssl_cert_file={self.cert}", "-c", f"ssl_key_file={self.dir / 'server.key'}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self.wait_ready()

    def ready(self) -> bool:
        return subprocess.run(_runner() + [f"{BIN}/pg_isready", "-q", "-h", str(self.dir), "-p", str(self.port)],
                              timeout=10).returncode == 0

    def run(self, sql: str, database: str | None = DATABASE) -> str:
        """As the superuser over the Unix socket (psql: unaligned, tuples only)."""
        return self.client(_runner() + [f"{BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-h",
                                        str(self.dir), "-p", str(self.port), "-U", ADMIN, "-d", database or DATABASE],
                           sql)


def new(setup_sql: str = "") -> Postgres:
    return Postgres.new("proftpy-pg-", setup_sql)
