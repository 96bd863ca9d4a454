"""mod_dnsbl's reason of a listing: the TXT record of a listed client's name, logged raw in DNSBLLog. The resolver
only asks port 53, so the whole scenario (dnsmasq with the lists, Debian's ProFTPD, proftpy and the clients) runs in
a private network namespace (tests/dns_helpers.py), side by side: the same clients refused, the same DNSBLLog."""

from __future__ import annotations

import json
import re
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


if __name__ == "__main__":          # inside the private network (in_private_network)
    print(json.dumps(scenario(Path(sys.argv[1]))))
