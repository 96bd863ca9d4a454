"""What the external servers the tests start share (tests/dbserver_helpers.py's PostgreSQL and MariaDB,
tests/ldap_helpers.py's slapd): one process of ours in a directory of its own, waited for until it listens on its
loopback port, paused (SIGSTOP: the kernel still accepts connections, nobody answers) and resumed, stopped by its
pid, its directory removed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time


class ServerProcess:
    """A server a test started: `dir`, `port` (127.0.0.1) and `proc` are the subclass's fields; `stop_signal`
    ends it quickly, SIGKILL when it is still there after `stop_wait` seconds."""

    dir: "os.PathLike"
    port: int
    proc: subprocess.Popen | None
    stop_signal = signal.SIGTERM
    stop_wait = 30.0

    def ready(self) -> bool:
        """Whether the started server answers (beyond the listening port)."""
        return True

    def wait_ready(self, seconds: float = 30) -> bool:
        """Until the process listens on its port and is `ready`; False (and stopped) when it exits or takes
        longer."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if self.ready():
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        return False

    def pause(self) -> None:
        """SIGSTOP: the server accepts connections (the kernel does) but answers nothing."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """The server we started, by its pid (resumed first, should it be paused)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(self.stop_wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
