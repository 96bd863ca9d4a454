"""A private network for DNS tests: the glibc resolver (and libresolv's res_query) only ever asks port 53, so a
test that needs a real DNS server runs its whole scenario in a network namespace of its own (`unshare -n`, its own
loopback: port 53 there is nobody else's) and a mount namespace where /etc/resolv.conf says `nameserver
127.0.0.1`. `in_private_network` runs a Python script that way; inside it `Dnsmasq` serves the test's A and TXT
records (Debian's dnsmasq-base, from the command line: no configuration file, no service). Stopped by its pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
REPO = Path(__file__).resolve().parent.parent


def in_private_network(base: Path, script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python script args` in a new network namespace (lo up) and mount namespace (resolv.conf: 127.0.0.1)."""
    resolv = base / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    setup = f'ip link set lo up && mount --bind "{resolv}" /etc/resolv.conf && exec "$@"'
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), str(REPO / "tests" / "integration")])
    return subprocess.run([shutil.which("unshare"), "-n", "-m", "--propagation", "private", "sh", "-c", setup, "sh",
                           sys.executable, str(script), *args], env=dict(os.environ, PYTHONPATH=path),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


class Dnsmasq:
    """dnsmasq on 127.0.0.1:53 of the private network, answering `a` (name -> address) and `txt` (name -> list of
    records, each a list of character-strings) and nothing else (no upstream, no hosts file)."""

    def __init__(self, base: Path, a: dict[str, str], txt: dict[str, list[list[str]]]):
        assert os.path.exists(DNSMASQ), "dnsmasq (Debian's dnsmasq-base) is missing: scripts/install-deps.sh"
        args = [f"--address=/{name}/{ip}" for name, ip in a.items()]
        args += [f"--txt-record={name}," + ",".join(strings)
                 for name, records in txt.items() for strings in records]
        self.proc = subprocess.Popen([DNSMASQ, "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--port", "53",
                                      "--listen-address", "127.0.0.1", "--bind-interfaces", "--user=root",
                                      "--pid-file=", f"--log-facility={base / 'dnsmasq.log'}", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        from proftpy.net import dnstxt
        deadline = time.monotonic() + 10
        while dnstxt.txt_records("ready.test", time.monotonic() + 0.2, "127.0.0.1") is None:
            assert self.proc.poll() is None, f"dnsmasq did not start: {self.proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "dnsmasq does not answer"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
