"""RADIUS servers for mod_radius's tests and compare_proftpd.py's radius-* scenarios.

`FreeRadius` runs Debian's freeradius (in the foreground, `-f`) from a copy of /etc/freeradius/3.0 in a temporary
directory: its own site listening on private loopback ports (auth, acct), one client (127.0.0.1) with SECRET, the
users below (Reply-Message, Session-Timeout, Class, Vendor-Specific attributes of vendor Unix (4), the ones
ProFTPD's RadiusUserInfo reads), and a `detail` file of the accounting records it received (`records()`). Stopped
by its pid.

`FakeRadius` is a few lines of Python answering on a loopback port as a test tells it (a Message-Authenticator or
not, a wrong one, a wrong secret, an Access-Challenge), for what freeradius 3.2.1 never does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ports import free_port

FREERADIUS = shutil.which("freeradius") or "/usr/sbin/freeradius"
RADDB = Path("/etc/freeradius/3.0")
SECRET = "radius-test-secret"

# users: name -> (password, reply items)
USERS = {
    "radalice": ("alice-radius", ["Class := 0x676f6c64", 'Reply-Message := "Welcome, radalice"']),
    "radbob": ("bob-radius", []),
    "radwelcome": ("welcome-radius", ['Reply-Message := "Welcome aboard"']),
    "radmsg": ("msg-radius", ['Reply-Message := "First line"', 'Reply-Message += "Second line"']),
    "radtimeout": ("timeout-radius", ["Session-Timeout := 2"]),
    "radidle": ("idle-radius", ["Idle-Timeout := 2"]),
    "radvsa": ("vsa-radius", ["Unix-FTP-UID := {uid}", "Unix-FTP-GID := {gid}", 'Unix-FTP-Home := "{home}"',
                              'Unix-FTP-Shell := "/bin/sh"', 'Unix-FTP-Group-Names := "radgroup,radextra"',
                              'Unix-FTP-Group-Ids := "{gid2},{gid3}"']),
    "radquota": ("quota-radius", ['Unix-FTP-Quota-Bytes-In := "64"']),
    "radname": ("name-radius", ['User-Name := "radname-canonical"']),
    "alice@example.test": ("alice-realm", []),
    "alice": ("alice-radius", []),       # a local (AuthUserFile) user whose RADIUS password differs
}
REJECTED = {"radreject": 'Reply-Message := "Go away"'}
DICTIONARY = """\
BEGIN-VENDOR Unix
ATTRIBUTE Unix-FTP-Quota-Per-Session 16 string
ATTRIBUTE Unix-FTP-Quota-Limit-Type 17 string
ATTRIBUTE Unix-FTP-Quota-Bytes-In 18 string
END-VENDOR Unix
"""

SITE = """\
server proftpy_test {{
listen {{
	type = auth
	ipaddr = 127.0.0.1
	port = {auth}
}}
listen {{
	type = acct
	ipaddr = 127.0.0.1
	port = {acct}
}}
authorize {{
	files
	pap
}}
authenticate {{
	Auth-Type PAP {{
		pap
	}}
}}
preacct {{
}}
accounting {{
	proftpy_detail
	ok
}}
post-auth {{
	Post-Auth-Type REJECT {{
		ok
	}}
}}
}}
"""


def free_udp_port() -> int:
    return free_port(kind=socket.SOCK_DGRAM)


def free_udp_pair() -> tuple[int, int]:
    """Two free loopback UDP ports (auth, acct)."""
    return free_udp_port(), free_udp_port()


@dataclass
class FreeRadius:
    """Debian's freeradius on private loopback ports; `values` fill the users file's {placeholders}."""

    base: Path
    values: dict = field(default_factory=dict)
    auth_port: int = 0
    acct_port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def detail(self) -> Path:
        return self.base / "acct" / "detail"

    def start(self, timeout: float = 20) -> "FreeRadius":
        raddb = self.base / "raddb"
        if not raddb.exists():
            shutil.copytree(RADDB, raddb, symlinks=True)
            for d in ("sites-enabled", "mods-enabled"):
                for entry in (raddb / d).iterdir():
                    entry.unlink()
            for name in ("always", "expr", "files", "pap"):
                (raddb / "mods-enabled" / name).symlink_to(f"../mods-available/{name}")
            for d in ("log", "run", "acct"):
                (self.base / d).mkdir(exist_ok=True)
            conf = (raddb / "radiusd.conf").read_text()
            conf = re.sub(r"(?m)^(\s*)(user|group) = freerad", r"\1#\2 = freerad", conf)
            conf = re.sub(r"(?m)^logdir = .*", f"logdir = {self.base / 'log'}", conf)
            conf = re.sub(r"(?m)^run_dir = .*", f"run_dir = {self.base / 'run'}", conf)
            conf = re.sub(r"(?m)^(\s*)proxy_requests\s*=\s*yes", r"\1proxy_requests = no", conf)
            conf = re.sub(r"(?m)^(\s*)reject_delay = 1", r"\1reject_delay = 0", conf)     # rejects at once
            (raddb / "radiusd.conf").write_text(conf)
            (raddb / "mods-enabled" / "proftpy_detail").write_text(
                f"detail proftpy_detail {{\n\tfilename = {self.detail}\n\tescape_filenames = no\n"
                "\tpermissions = 0600\n}\n")
            (raddb / "clients.conf").write_text(f'client localhost {{\n\tipaddr = 127.0.0.1\n\tsecret = {SECRET}\n}}\n')
            (raddb / "dictionary").write_text(DICTIONARY)
            users = []
            for name, (password, items) in USERS.items():
                users.append(f'"{name}" Cleartext-Password := "{password}"')
                filled = [fill(item, self.values) for item in items]
                users += [f"\t{item}{',' if i < len(filled) - 1 else ''}" for i, item in enumerate(filled)]
            for name, message in REJECTED.items():
                users += [f'"{name}" Auth-Type := Reject', f"\t{message}"]
            (raddb / "mods-config" / "files" / "authorize").write_text("\n".join(users) + "\n")
        self.auth_port, self.acct_port = free_udp_pair()
        (raddb / "sites-enabled" / "proftpy_test").write_text(SITE.format(auth=self.auth_port, acct=self.acct_port))
        log = open(self.base / "log" / "stdout.log", "ab")
        self.proc = subprocess.Popen([FREERADIUS, "-f", "-l", "stdout", "-d", str(raddb)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None:
                raise RuntimeError("freeradius exited: " + (self.base / "log" / "stdout.log").read_text()[-3000:])
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("freeradius did not answer within %d s" % timeout)
            time.sleep(0.1)
        return self

    def answers(self) -> bool:
        """Whether the server answers an Access-Request (one it accepts: a reject comes a second late)."""
        from proftpy.net import radius as rad
        raw, req = rad.access_request(1, SECRET.encode(), [(rad.USER_NAME, b"radbob")], USERS["radbob"][0].encode())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            try:
                s.sendto(raw, ("127.0.0.1", self.auth_port))
                s.recvfrom(4096)
                return True
            except OSError:
                return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def records(self) -> list[dict[str, str]]:
        """The accounting records of the detail file, oldest first: attribute -> value (quotes removed)."""
        if not self.detail.exists():
            return []
        out = []
        for block in self.detail.read_text().split("\n\n"):
            rec = {}
            for line in block.splitlines():
                if line.startswith("\t") and " = " in line:
                    key, _, value = line.strip().partition(" = ")
                    rec[key] = value.strip('"')
            if rec:
                out.append(rec)
        return out

    def wait_records(self, predicate: Callable[[list[dict]], bool], timeout: float = 10) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records()
            if predicate(recs) or time.monotonic() > deadline:
                return recs
            time.sleep(0.05)


def fill(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def start_freeradius(values: dict | None = None) -> FreeRadius:
    base = Path(tempfile.mkdtemp(prefix="proftpy-radius-"))
    os.chmod(base, 0o755)
    return FreeRadius(base, values or {}).start()


class FakeRadius:
    """A RADIUS server in a thread: `respond(request_packet, raw) -> bytes | None` makes each answer (None: none)."""

    def __init__(self, respond: Callable):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.respond = respond
        self.requests: list = []
        self.peers: dict = {}
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from proftpy.net import radius as rad
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            packet = rad.Packet.decode(data)
            self.peers[id(packet)] = peer
            self.requests.append(packet)
            answer = self.respond(packet, data)
            if answer is not None:
                self.sock.sendto(answer, peer)

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def answer(request, code: int, secret: bytes, attributes: list | None = None, mac: str = "none") -> bytes:
    """An answer to `request`: signed with `secret`; `mac` "none", "good" or "bad" (a Message-Authenticator)."""
    from proftpy.net import radius as rad
    attrs = list(attributes or [])
    if mac != "none":
        attrs.append((rad.MESSAGE_AUTHENTICATOR, bytes(16)))
    packet = rad.Packet(code, request.identifier, bytes(16), attrs)
    raw = packet.encode()
    if mac == "good":
        raw = rad.sign_message_authenticator(raw, secret, request.authenticator)
    elif mac == "bad":
        raw = raw[:-16] + b"\x01" * 16
    auth = rad.response_authenticator(raw, request.authenticator, secret)
    return raw[:4] + auth + raw[20:]
