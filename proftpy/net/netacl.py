"""Network ACL strings (`Allow from`, `Deny from`, `<Class>` `From`), with ProFTPD's types and outcomes.

An ACL is one of: `all`, `none`, an IP mask (`10.0.0.0/8`), an exact IP, an IP glob (`10.1.*`, or a trailing dot:
`10.1.` = `10.1.*`), a DNS name, or a DNS glob (`*.example.com`, or a leading dot: `.example.com`). A leading `!`
inverts it. `match` answers with ProFTPD's four outcomes (reference §3):

    1 matched  ·  -1 negative (`none`, or a `!acl` whose address matched)  ·  0 no match  ·  -2 error
"""

from __future__ import annotations

import enum
import fnmatch
import ipaddress
from dataclasses import dataclass

from .. import trace
from .netaddr import ClientAddr, IPAddress, parse_ip, unmap

GLOB_CHARS = set("*?[]{}")
IP_CHARS = set("0123456789abcdefABCDEF.:")


class AclType(enum.Enum):
    ALL = "all"
    NONE = "none"
    IPMASK = "IP address mask"
    IPMATCH = "IP address match"
    IPGLOB = "IP address glob"
    DNSMATCH = "DNS hostname match"
    DNSGLOB = "DNS hostname glob"


MATCH, NEGATIVE, NO_MATCH, ERROR = 1, -1, 0, -2


@dataclass(frozen=True)
class NetACL:
    """One parsed ACL entry; `text` is what the administrator wrote (without `!`)."""

    type: AclType
    pattern: str
    negated: bool = False
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    address: IPAddress | None = None

    @property
    def masklen(self) -> int | None:
        """The mask length as written (`::ffff:10.0.0.0/104` says 104 although it is matched as IPv4 /8)."""
        return int(self.pattern.rsplit("/", 1)[1]) if self.type is AclType.IPMASK else None

    def __str__(self) -> str:
        return get_str(self, describe=False)


def create(text: str) -> NetACL:
    """Parse one ACL string; raises ValueError with the reason (the config layer adds FILE:LINE)."""
    if text is None or text == "":
        raise ValueError("empty ACL")
    negated = text.startswith("!")
    body = text[1:] if negated else text
    if body == "":
        raise ValueError(f"'{text}': nothing after '!'")
    low = body.lower()
    if low in ("all", "none"):
        if negated:
            raise ValueError(f"'{text}': '!{low}' is not allowed")
        return NetACL(AclType.ALL if low == "all" else AclType.NONE, low)
    if "/" in body:
        return NetACL(AclType.IPMASK, body, negated, network=_mask(body))
    if any(c in GLOB_CHARS for c in body):
        kind = AclType.IPGLOB if all(c in IP_CHARS or c in GLOB_CHARS or c in ",-" for c in body) \
            else AclType.DNSGLOB
        return NetACL(kind, body, negated)
    if body.startswith("."):
        if all(c.isdigit() or c == "." for c in body):
            raise ValueError(f"'{text}' is not an IP address or host name")
        return NetACL(AclType.DNSGLOB, "*" + body, negated)
    if body.endswith("."):
        return NetACL(AclType.IPGLOB, body + "*", negated)
    if all(c.isdigit() or c == "." for c in body) or ":" in body:
        ip = parse_ip(body)
        if ip is None or "%" in body:
            raise ValueError(f"'{text}' is not a valid IP address")
        return NetACL(AclType.IPMATCH, body, negated, address=ip)
    return NetACL(AclType.DNSMATCH, body, negated)


def _mask(body: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    addr, _, bits = body.partition("/")
    if not addr or not all(c in IP_CHARS for c in addr):
        raise ValueError(f"'{body}': an address mask needs an IP address before '/'")
    if not bits.isdigit():
        raise ValueError(f"'{body}': bad mask length '{bits}'")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise ValueError(f"'{body}': '{addr}' is not a valid IP address") from None
    limit = 32 if ip.version == 4 else 128
    if int(bits) > limit:
        raise ValueError(f"'{body}': mask length {bits} is above {limit}")
    network = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    # `::ffff:a.b.c.d/n` (n >= 96) is the IPv4 network a.b.c.d/(n-96)
    if network.version == 6 and network.prefixlen >= 96 and unmap(network.network_address).version == 4:
        network = ipaddress.ip_network(f"{unmap(network.network_address)}/{network.prefixlen - 96}", strict=False)
    return network


def create_list(words: list[str]) -> list[NetACL]:
    """`acl[,acl] ...` -> entries, split on commas and spaces."""
    return [create(w) for word in words for w in word.split(",") if w != ""]


def _matches(acl: NetACL, client: ClientAddr) -> bool | None:
    """Whether the address part matches; None when this kind of ACL is not consulted (DNS globs, DNS off)."""
    if acl.type is AclType.IPMASK:
        ip = parse_ip(client.ip)
        return ip is not None and ip.version == acl.network.version and ip in acl.network
    if acl.type is AclType.IPMATCH:
        return parse_ip(client.ip) == unmap(acl.address)
    if acl.type is AclType.IPGLOB:
        pattern = acl.pattern.lower()
        if fnmatch.fnmatchcase(client.ip.lower(), pattern):
            return True
        ip = parse_ip(client.ip)
        return ip is not None and fnmatch.fnmatchcase(str(ip).lower(), pattern)
    if acl.type is AclType.DNSMATCH:
        return client.name == acl.pattern
    if acl.type is AclType.DNSGLOB:
        if not client.reverse_dns:
            return None
        return fnmatch.fnmatchcase(client.name.lower(), acl.pattern.lower())
    raise AssertionError(acl.type)


def match(acl: NetACL | None, client: ClientAddr | None) -> int:
    """ProFTPD's `pr_netacl_match`: 1 match, -1 negative, 0 no match, -2 error."""
    if acl is None or client is None:
        return ERROR
    if acl.type is AclType.ALL:
        return MATCH
    if acl.type is AclType.NONE:
        return NEGATIVE
    matched = _matches(acl, client)
    if trace.on: trace.msg("netacl", 7, "checking %s against ACL %s: %s", client.ip, get_str(acl), "matched" if matched else "no match")
    if matched is None:
        return NO_MATCH
    if acl.negated:
        return NEGATIVE if matched else MATCH
    return MATCH if matched else NO_MATCH


def get_str(acl: NetACL, describe: bool = True) -> str:
    """`127.0.0.1 <IP address match>`, `!127.0.0.1 <IP address match, inverted>`, `all <all>` ..."""
    text = ("!" if acl.negated else "") + acl.pattern
    if not describe:
        return text
    desc = acl.type.value
    if acl.type is AclType.IPMASK:
        desc += f", {acl.masklen}-bit mask"
    if acl.negated:
        desc += ", inverted"
    return f"{text} <{desc}>"
