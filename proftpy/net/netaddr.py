"""Client addresses as access control sees them: the IP string (a v4-mapped IPv6 address is its IPv4 address)
and the "DNS name", which is the IP string itself unless UseReverseDNS is on and the reverse lookup is confirmed
by a forward lookup (ProFTPD's `pr_netaddr_get_dnsstr`). A session resolves once, at connect; the `Resolver`
keeps what it learned so a second question costs nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Callable

from .. import trace

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> IPAddress | None:
    """The address in `text` (v4-mapped IPv6 unwrapped to IPv4), or None when it is not an IP address."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    return unmap(ip)


def unmap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def ip_string(text: str) -> str:
    """Canonical IP string (`::ffff:1.2.3.4` -> `1.2.3.4`); anything else unchanged."""
    try:
        if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text:
            return text         # already a canonical IPv4 address: the common case, without the ipaddress module
    except OSError:
        pass                    # not dotted IPv4: ipaddress decides below
    ip = parse_ip(text)
    return str(ip) if ip is not None else text


@dataclass(frozen=True)
class ClientAddr:
    """What an ACL is matched against."""

    ip: str                       # canonical IP string
    name: str                     # DNS name, or the IP string when not resolved
    reverse_dns: bool = False     # UseReverseDNS: DNS globs are only consulted when on

    @property
    def address(self) -> IPAddress:
        ip = parse_ip(self.ip)
        if ip is None:
            raise ValueError(f"not an IP address: {self.ip}")
        return ip

    @classmethod
    def plain(cls, ip: str) -> "ClientAddr":
        """An address with UseReverseDNS off: its name is its IP string."""
        ip = ip_string(ip)
        return cls(ip, ip, False)


@dataclass
class Resolver:
    """Reverse and forward DNS with a cache. The lookup functions are injectable so tests need no DNS."""

    reverse_fn: Callable[[str], str] = field(default=lambda ip: socket.gethostbyaddr(ip)[0])
    forward_fn: Callable[[str], list[str]] = field(
        default=lambda name: sorted({ai[4][0] for ai in socket.getaddrinfo(name, None)}))
    names: dict[str, str] = field(default_factory=dict)
    addrs: dict[str, list[str]] = field(default_factory=dict)

    def forward(self, name: str) -> list[str]:
        """Canonical IP strings for a host name ([] when it does not resolve)."""
        if name not in self.addrs:
            try:
                self.addrs[name] = [ip_string(a) for a in self.forward_fn(name)]
            except (OSError, UnicodeError):
                self.addrs[name] = []
        return self.addrs[name]

    def reverse(self, ip: str) -> str:
        """The confirmed host name of `ip`, else the IP string (a PTR name that does not resolve back to the
        same address is not trusted, as in ProFTPD)."""
        ip = ip_string(ip)
        if ip not in self.names:
            try:
                name = self.reverse_fn(ip)
            except (OSError, UnicodeError):
                name = ""
            self.names[ip] = name if name and ip in self.forward(name) else ip
            if trace.on: trace.msg("dns", 5, "reverse DNS of %s: %s", ip, self.names[ip] if self.names[ip] != ip else f"none confirmed (PTR '{name}')")
        return self.names[ip]

    def client(self, ip: str, use_reverse_dns: bool) -> ClientAddr:
        ip = ip_string(ip)
        if not use_reverse_dns:
            return ClientAddr(ip, ip, False)
        return ClientAddr(ip, self.reverse(ip), True)
