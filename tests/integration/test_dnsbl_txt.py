"""mod_dnsbl's reason of a listing: the TXT record of a listed client's name, logged raw in DNSBLLog. The resolver
only asks port 53, so the whole scenario (dnsmasq with the lists, Debian's ProFTPD, proftpy and the clients) runs in
a private network namespace (tests/dns_helpers.py), side by side: the same clients refused, the same DNSBLLog."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import sys
from pathlib import Path

import pytest

from conftest import IS_ROOT

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="a private network namespace needs root")

A = {f"{x}.0.0.127.bl.test": "127.0.0.2" for x in "245"}     # listed: 127.0.0.2, .4 and .5; not: .3
TXT = {"2.0.0.127.bl.test": [["listed for testing"]],                                  # one record
       "5.0.0.127.bl.test": [["two strings", "in one record"], ["and a second record"]]}  # .4: no TXT record
CONFIG = ("LoadModule mod_dnsbl.c\nDNSBLEngine on\nDNSBLPolicy allow,deny\nDNSBLDomain bl.test\n"
          "DNSBLLog {dir}/dnsbl.log\n")
REASON = "reason for blacklisting client address: "


@pytest.fixture
def tmp_path(open_tmp_path):
    """Debian's ProFTPD's sessions run as nobody and as the test users: the files live where they can reach them."""
    return open_tmp_path


def raw_lines(path: Path) -> list[str]:
    """The log's lines after their prefix, split at newlines only: a reason's length bytes may be \\v or \\r."""
    return [re.sub(r"^.*?\]: ", "", line) for line in
            path.read_bytes().decode("utf-8", "surrogateescape").split("\n")[:-1]]


class SilentOnTxt:
    """A name server on 127.0.0.1:53 of the private network that lists every name under bl.test (A 127.0.0.2, no
    AAAA) and never answers a TXT question: a reason lookup that can only end at the deadline."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return                                  # closed: the scenario is over
            end = query.index(b"\0", 12) + 5           # the question: name, type, class
            qtype = struct.unpack("!H", query[end - 4:end - 2])[0]
            if qtype == 16:
                continue                                # TXT: silence
            answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([127, 0, 0, 2]) if qtype == 1 else b""
            self.sock.sendto(query[:2] + struct.pack("!HHHHH", 0x8180, 1, answer != b"", 0, 0) + query[12:end]
                             + answer, peer)

    def close(self) -> None:
        self.sock.close()


def timed_refusal(base: Path) -> dict:
    """In the private network, with SilentOnTxt: how long a listed client waits to be closed, and the DNSBLLog."""
    from conftest import make_users, side_by_side
    from test_dnsbl import RESOLV, attempt
    dns = SilentOnTxt()

    def drive(port: int, run: Path):
        start = time.monotonic()
        outcome = attempt(port, "127.0.0.2")
        return outcome, time.monotonic() - start, raw_lines(run / "dnsbl.log")
    try:
        make_users(base)
        return side_by_side(base, CONFIG, drive, env=RESOLV, only={"proftpy": "DNSBLLookupTimeout 1\n"})
    finally:
        dns.close()


def scenario(base: Path) -> dict:
    """In the private network: dnsmasq, then both daemons in turn, each asked by 127.0.0.2..5."""
    from conftest import make_users, side_by_side
    from dns_helpers import Dnsmasq
    from test_dnsbl import RESOLV, attempt
    dns = Dnsmasq(base, A, TXT)
    try:
        make_users(base)
        return side_by_side(base, CONFIG, lambda port, run: (
            [attempt(port, f"127.0.0.{x}") for x in "2345"], raw_lines(run / "dnsbl.log")), env=RESOLV)
    finally:
        dns.stop()


@pytest.mark.slow
def test_the_txt_reason_is_logged_as_proftpd_logs_it(tmp_path):
    from dns_helpers import in_private_network
    ran = in_private_network(tmp_path, Path(__file__), str(tmp_path))
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout.splitlines()[-1])
    assert seen["proftpy"] == seen["proftpd"]
    outcomes, lines = seen["proftpd"]
    assert outcomes == ["closed", "in", "closed", "closed"]
    reasons = [line for line in lines if line.startswith(REASON)]
    # the raw rdata: each character-string's length byte, then its text; none for .4 (no TXT record)
    assert reasons[0] == REASON + "'\x12listed for testing'"
    assert sorted(reasons[1:]) == [REASON + "'\x0btwo strings\x0din one record'", REASON + "'\x13and a second record'"]
    found = lines.index("found record for DNS name '2.0.0.127.bl.test', client address has been blacklisted")
    assert lines[found + 1] == reasons[0]
    assert lines[found + 2].startswith("client address '127.0.0.2' is listed")


@pytest.mark.slow
def test_a_reason_that_does_not_come_ends_at_the_lookup_deadline(tmp_path):
    """ProFTPD waits for res_query (here resolv.conf's 2 s); proftpy's DNSBLLookupTimeout 1 bounds the TXT question
    too: the client is closed within it, listed, with no reason line; the same lines as ProFTPD's."""
    from dns_helpers import in_private_network
    ran = in_private_network(tmp_path, Path(__file__), str(tmp_path), "timed")
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout.splitlines()[-1])
    (ours, our_time, our_lines), (theirs, their_time, their_lines) = seen["proftpy"], seen["proftpd"]
    assert (ours, theirs) == ("closed", "closed"), seen
    assert our_lines == their_lines
    assert not [line for line in our_lines if line.startswith(REASON)]
    assert "client address '127.0.0.2' is listed by DNSBLDomain 'bl.test', rejecting connection" in our_lines
    assert our_time < 1.7 < their_time


if __name__ == "__main__":          # inside the private network (in_private_network)
    run = timed_refusal if sys.argv[2:] == ["timed"] else scenario
    print(json.dumps(run(Path(sys.argv[1]))))
