"""mod_dnsbl: refuse (or admit only) clients that DNS blacklists list (ProFTPD 1.3.8's contrib mod_dnsbl/0.1.5).

Where: in the session, when it starts (and again when HOST picks another server), as ProFTPD's sess_init does, not
in the master's veto: a lookup is a DNS question that may take seconds, and the master never waits. A refused
client gets no greeting: the connection is closed, SystemLog says `mod_dnsbl.c: error initializing session:
Permission denied` (ProFTPD's words) and DNSBLLog says why.

What: for each DNSBLDomain in turn, the client's reversed address under that domain is resolved
(proftpy/net/dnsbl.py); an address means "listed". DNSBLPolicy `allow,deny` refuses a client any list names;
`deny,allow` admits only a client some list names. Without DNSBLPolicy the policy is `deny,allow`: the
documentation says nothing, and that is what ProFTPD 1.3.8's code does (a client no list names is refused).

Beyond ProFTPD: IPv6 clients are looked up (RFC 5782 nibbles; ProFTPD skips them and admits them under either
policy), and the lookups have a deadline, `DNSBLLookupTimeout` (ProFTPD waits for the resolver as long as it
takes): a lookup without an answer in time counts as "not listed". For a listed client the TXT record of the name
is asked too, as ProFTPD does, and its raw rdata logged as the reason (proftpy/net/dnstxt.py: a small UDP question
to resolv.conf's name server, under the same deadline; no answer in time is no reason line).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Int, Path, Str
from ..log import NOTICE
from ..module import Listener, Module
from ..net import dnsbl, dnstxt
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..config.tree import Server
    from ..session import Session

NAME = "mod_dnsbl.c"
TAG = "mod_dnsbl/0.1.5"             # ProFTPD 1.3.8's mod_dnsbl, as its DNSBLLog lines name it
POLICIES = ("allow,deny", "deny,allow")
log = logging.getLogger("proftpy")


def _domain(args: list[str]) -> str:
    domain = Str()(args)
    return domain[1:] if domain.startswith(".") else domain        # a leading dot is ignored, as in ProFTPD


def _policy(args: list[str]) -> str:
    word = Str()(args)
    if word.lower() not in POLICIES:
        raise ValueError(f"'{word}' is not one of the approved DNSBLPolicy settings")
    return word.lower()


directives = (
    Directive("DNSBLEngine", Flag, SVG, False, Merge.SERVER, "Check the client against the DNSBLDomain lists."),
    Directive("DNSBLDomain", Custom(_domain, "domain"), SVG, None, Merge.MULTI,
              "A DNS blacklist's domain, asked in the order of the lines (a leading dot is ignored).", repeat=True),
    Directive("DNSBLPolicy", Custom(_policy, "allow,deny|deny,allow"), SVG, "deny,allow", Merge.SERVER,
              "allow,deny: refuse a listed client; deny,allow (ProFTPD's default): admit only a listed one."),
    Directive("DNSBLLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_dnsbl's own log file (`none`: none)."),
    Directive("DNSBLLookupTimeout", Int(1, 3600), SVG, 5, Merge.SERVER,
              "Seconds all of a client's DNSBL lookups may take (proftpy's; ProFTPD waits for the resolver)."),
)


@dataclass
class DnsblState:
    """A session's DNSBLLog, open while a check runs (ProFTPD closes it once the check is made)."""

    log: ModuleLog = field(default_factory=lambda: ModuleLog(TAG))


def _domains(server: "Server") -> list[str]:
    return [p.value for p in server.section.all("DNSBLDomain")]


def rejected(session: "Session", wlog: ModuleLog) -> bool:
    """ProFTPD's dnsbl_reject_conn: whether the policy and the lists refuse this client."""
    server = session.server
    allow_deny = server.get("DNSBLPolicy") == "allow,deny"
    ip = session.remote_addr
    client = dnsbl.reversed_name(ip)           # (a v4-mapped address is its IPv4 address already)
    deadline = time.monotonic() + server.get("DNSBLLookupTimeout")
    for domain in _domains(server):
        name = dnsbl.query_name(client, domain)
        wlog.write(f"for DNSBLDomain '{domain}', resolving DNS name '{name}'")
        found = dnsbl.listed(name, max(0.0, deadline - time.monotonic()))
        if found is None:
            wlog.write(f"no answer for DNS name '{name}' within DNSBLLookupTimeout "
                       f"({server.get('DNSBLLookupTimeout')} s), client address is not blacklisted")
            continue
        if not found:
            wlog.write(f"no record returned for DNS name '{name}', client address is not blacklisted")
            continue
        wlog.write(f"found record for DNS name '{name}', client address has been blacklisted")
        for reason in dnstxt.txt_records(name, deadline) or ():        # ProFTPD's lookup_reason
            wlog.write(f"reason for blacklisting client address: '{dnstxt.logged_text(reason)}'")
        wlog.write(f"client address '{ip}' is listed by DNSBLDomain '{domain}', "
                   f"{'rejecting' if allow_deny else 'allowing'} connection")
        return allow_deny
    return not allow_deny


def session_init(session: "Session", **_: Any) -> None:
    server = session.server
    if not server.get("DNSBLEngine") or session.closing:
        return
    wlog = session.state.get(DnsblState).log
    wlog.open(server.get("DNSBLLog"), server.get("AllowLogSymlinks"))
    try:
        if rejected(session, wlog):
            wlog.write("client not allowed by DNSBLPolicy, rejecting connection")
            log.log(NOTICE, "%s: error initializing session: Permission denied", NAME)
            session.end("refused by mod_dnsbl", cause="module-acl")
    finally:
        wlog.close()


def _configured(config) -> bool:
    return any(s.get("DNSBLEngine") for s in config.servers)


MODULE = Module(NAME, directives=directives, session_init=session_init, session_active=_configured,
                listeners=(Listener("core.session-reinit", session_init, _configured),))
