"""DNS blacklist lookups (mod_dnsbl's): the name asked for a client in a list's domain, and the question itself.

An IPv4 client `a.b.c.d` is asked as `d.c.b.a.<domain>`; a v4-mapped IPv6 client as its IPv4 address, as ProFTPD
does; any other IPv6 client as its 32 nibbles in reverse (RFC 5782 section 2.4: `::1` is `1.0.0...0.<domain>`),
where ProFTPD 1.3.8 skips the client. The answer comes from the system resolver (getaddrinfo: nsswitch, so
/etc/hosts entries count, as for ProFTPD's pr_netaddr_get_addr): any address means the client is listed. The
resolver cannot be given a deadline, so the lookup runs in a thread the caller stops waiting for.
"""

from __future__ import annotations

import ipaddress
import socket
import threading

from .netaddr import unmap


def reversed_name(ip: str) -> str:
    """The client's part of the name asked, for the IP string `ip`."""
    addr = unmap(ipaddress.ip_address(ip.split("%", 1)[0]))
    if isinstance(addr, ipaddress.IPv4Address):
        return ".".join(reversed(str(addr).split(".")))
    return ".".join(reversed(addr.exploded.replace(":", "")))


def query_name(client: str, domain: str) -> str:
    return f"{client}.{domain}"


def listed(name: str, timeout: float) -> bool | None:
    """Whether `name` resolves to an address: True, False, or None when the resolver gave no answer in time."""
    answer: list[bool] = []

    def ask() -> None:
        try:
            answer.append(bool(socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)))
        except (OSError, UnicodeError):      # no such name (or one the resolver refuses): not listed
            answer.append(False)

    worker = threading.Thread(target=ask, name="dnsbl", daemon=True)
    worker.start()
    worker.join(timeout)
    return answer[0] if answer else None
