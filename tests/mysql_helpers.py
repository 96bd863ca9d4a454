"""A real MariaDB server for mod_sql_mysql's tests and scripts/compare_proftpd.py: Debian's MariaDB 10.11
(mariadb-server; its packaged service is never started), a data directory made by mariadb-install-db in a temporary
directory, `mariadbd` run as the `mysql` user on 127.0.0.1 at a free port and on a Unix socket in that directory,
stopped by its pid.

Accounts: root over the Unix socket (the OS user root, sets the database up with the `mariadb` client) and, for the
FTP server's connection, `ftp_native` (mysql_native_password, MariaDB's default) and `ftp_ed` (MariaDB's ed25519,
auth_ed25519 loaded: the server switches the client to client_ed25519) from 127.0.0.1 and localhost."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from dbserver_helpers import DbServer, self_signed
from ports import free_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"
DATABASE = "ftpdb"
HOSTS = ("127.0.0.1", "localhost")
USER, PASSWORD = "ftp_native", "native-secret"
ED_USER, ED_PASSWORD = "ftp_ed", "ed-secret ü"      # a non-ASCII password: the key comes from its UTF-8 bytes


def available() -> bool:
    return all(os.path.exists(p) for p in (MARIADBD, INSTALL_DB, CLIENT))


def _as_mysql() -> list[str]:
    return ["setpriv", "--reuid=mysql", "--regid=mysql", "--init-groups", "--reset-env"]


class MariaDB(DbServer):
    """One running server: `port` (127.0.0.1), `socket` (its Unix socket)."""

    log_name = "error.log"

    @property
    def socket(self) -> Path:
        return self.dir / "mysqld.sock"

    def start(self, setup_sql: str = "") -> "MariaDB":
        """mariadb-install-db, the server, the `ftpdb` database and its account, then `setup_sql` run in it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        owner = pwd.getpwnam("mysql")
        os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self_signed(self.cert, self.dir / "server.key", "mysql")
        subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={self.dir / 'data'}", "--user=mysql",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120, cwd=self.dir)
        for _ in range(5):                      # a port taken between the probe and the server's bind: try others
            self.port = free_port()
            if self._launch():
                break
        else:
            raise RuntimeError("mariadbd did not start: " + self.log())
        self.run(f"CREATE DATABASE {DATABASE}; INSTALL SONAME 'auth_ed25519';" + "".join(
            f"CREATE USER {USER}@'{host}' IDENTIFIED BY '{PASSWORD}';"
            f"CREATE USER {ED_USER}@'{host}' IDENTIFIED VIA ed25519 USING PASSWORD('{ED_PASSWORD}');"
            + self.grants(DATABASE, host) for host in HOSTS), database="")
        if setup_sql:
            self.run(setup_sql)
        return self

    @staticmethod
    def grants(database: str, host: str) -> str:
        """The FTP server's accounts may do anything in `database`."""
        return "".join(f"GRANT ALL ON {database}.* TO {user}@'{host}';" for user in (USER, ED_USER))

    def _launch(self) -> bool:
        self.proc = subprocess.Popen(
            _as_mysql() + [MARIADBD, "--no-defaults", f"--datadir={self.dir / 'data'}", f"--socket={self.socket}",
                           f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.dir / 'mysqld.pid'}",
                           f"--log-error={self.dir / 'error.log'}", "--skip-name-resolve",
                           "--innodb-buffer-pool-size=16M", "--skip-log-bin", "--max-connections=40",
                           f"--ssl-cert={self.cert}", f"--ssl-key={self.dir / 'server.key'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.wait_ready()

    def ready(self) -> bool:
        return self.socket.exists()

    def run(self, sql: str, database: str | None = DATABASE) -> str:
        """As root over the Unix socket; tab-separated output, no column names (`database` "": none)."""
        return self.client([CLIENT, "--no-defaults", "-S", str(self.socket), "-u", "root", "-N", "-B"]
                           + ([database] if database else []), sql)


def new(setup_sql: str = "") -> MariaDB:
    return MariaDB.new("proftpy-my-", setup_sql)
