"""mod_proxy_protocol: the client's address from the PROXY protocol header a load balancer (HAProxy, AWS NLB,
...) sends before the client's first byte. Directives as ProFTPD's mod_proxy_protocol 0.6.1 has them, plus
`ProxyProtocolTrustedProxies` (which sources may send a header).

It is the master's pre-step (module.PreStep): the header is read in the master before the vetoes run (so bans,
MaxConnectionRate and the rest see the client, not the proxy) and before the vhost is chosen; the bytes after it (a
command, a TLS ClientHello for implicit FTPS) stay for the session. From then on the proxied address is the
client's for everything: `<Class>`, `<Limit>`, Max*PerHost, the scoreboard and ftpwho, the logs, reverse DNS.
The socket's own addresses stay known to the session (`session.socket_peer`, `session.socket_local`): passive data
connections come through the proxy, so the port-stealing check accepts the proxy's address (transfer/connection.py).

Who must send what, on a server with `ProxyProtocolEngine on`:
- without `ProxyProtocolTrustedProxies` (ProFTPD's behaviour): every connection starts with a header;
- with it: a connection from a listed source must start with a header; any other source is a direct client,
  served with its own address, and a header from it is refused: nobody else can claim an address. (A header
  already there at accept closes the connection without a word; one that comes a moment later reaches the
  session as a `PROXY` command line, which ends the session; a v2 header ends in `QUIT` by design.)
A refused connection (bad, cut short or late header, header from an untrusted source) is closed without a reply
and logged at NOTICE. The parser is net/proxy.py.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import time

from .. import transfer
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Int, Options
from ..log import NOTICE
from ..module import Listener, MasterView, Module, PreStep, Veto
from ..net import netacl, proxy
from ..net.connection import Connection
from ..net.netaddr import ClientAddr

NAME = "mod_proxy_protocol.c"
log = logging.getLogger("proftpy")
VERSIONS = {"haproxyv1": proxy.V1, "haproxyv2": proxy.V2}
_IP_ACLS = (netacl.AclType.ALL, netacl.AclType.IPMASK, netacl.AclType.IPMATCH, netacl.AclType.IPGLOB)


def _version(args: list[str]) -> str:
    if len(args) != 1 or args[0].lower() not in VERSIONS:
        raise ValueError("expected haproxyV1 or haproxyV2")
    return "haproxyV1" if VERSIONS[args[0].lower()] == proxy.V1 else "haproxyV2"


OPTIONS = ("UseProxiedServerAddress", "HeaderOnDataConnections")


def _trusted(args: list[str]) -> tuple[netacl.NetACL, ...]:
    """`ProxyProtocolTrustedProxies addr|network|glob[,...] ...`: IP ACLs only (netacl syntax; `!` excludes):
    the master decides before any DNS lookup, so a host name cannot be matched."""
    acls = netacl.create_list(args)
    if not acls:
        raise ValueError("expected at least one address or network")
    for acl in acls:
        if acl.type not in _IP_ACLS:
            raise ValueError(f"'{acl.pattern}' is a host name: only addresses and networks can be trusted here")
    return tuple(acls)


directives = (
    Directive("ProxyProtocolEngine", Flag, SVG, False, Merge.SERVER,
              "Read a PROXY protocol header at the start of every connection (see ProxyProtocolTrustedProxies)."),
    Directive("ProxyProtocolVersion", Custom(_version, "haproxyV1|haproxyV2"), SVG, "haproxyV1", Merge.SERVER,
              "The header's version (configured, never guessed): haproxyV1 (text) or haproxyV2 (binary)."),
    Directive("ProxyProtocolTimeout", Int(1), SVG, 3, Merge.SERVER,
              "Seconds the header may take; then the connection is closed without a reply."),
    Directive("ProxyProtocolIgnore", Flag, SVG, False, Merge.SERVER,
              "Read (and check) the header but keep the connection's own addresses."),
    Directive("ProxyProtocolOptions", Options(OPTIONS, "ProxyProtocolOption", nocase=True),
              SVG, None, Merge.SERVER,
              "UseProxiedServerAddress: the address the client connected to (on the proxy) is the server's "
              "address for this session: the vhost bound to it serves it, PASV announces it. "
              "HeaderOnDataConnections (proftpy's own): passive data connections of proxied sessions start with "
              "a header too (curl --haproxy-protocol, proxies that send one on every connection): it is read "
              "off and must name the session's client."),
    Directive("ProxyProtocolTrustedProxies", Custom(_trusted, "address|network[,...] ..."), SVG, None,
              Merge.SERVER, "Sources that must send a header (proftpy's own): other sources are served as direct "
              "clients and a header from them is refused. Unset: every connection must send one."),
)


# -- the pre-step ----------------------------------------------------------------------------------------------------
def _server(master: MasterView, conn: Connection):
    server = master.server_for(conn.sock_local)
    return server if server is not None and server.get("ProxyProtocolEngine") else None


def trusted(server, ip: str) -> bool:
    """Whether `ip` may (and must) send a header to `server`: the first matching entry decides (a `!` entry
    excludes); no list trusts everyone."""
    acls = server.get("ProxyProtocolTrustedProxies")
    if acls is None:
        return True
    client = ClientAddr.plain(ip)
    for acl in acls:
        outcome = netacl.match(acl, client)
        if outcome == netacl.MATCH:
            return True
        if outcome == netacl.NEGATIVE:
            return False
    return False


def timeout(master: MasterView, conn: Connection) -> float | None:
    server = _server(master, conn)
    return None if server is None else float(server.get("ProxyProtocolTimeout"))


def parse(master: MasterView, conn: Connection, data: bytes, eof: bool) -> int | Veto | None:
    server = _server(master, conn)
    if server is None:                  # a reload turned the engine off meanwhile
        return 0
    peer = conn.sock_remote[0]
    if not trusted(server, peer):
        if _looks_like_header(data):
            return _refused(f"PROXY protocol header from untrusted source {peer} refused")
        return 0                        # a direct client: served with its own address
    version = VERSIONS[server.get("ProxyProtocolVersion").lower()]
    try:
        header = proxy.parse(data, version)
    except proxy.Invalid as e:
        return _refused(f"bad PROXY protocol data from {peer}: {e}")
    if header is None:
        if eof:
            return _refused(f"PROXY protocol header from {peer} cut short: the connection was closed")
        return None
    if not server.get("ProxyProtocolIgnore"):
        _apply(master, server, conn, header)
    return header.size


def _apply(master: MasterView, server, conn: Connection, header: proxy.Header) -> None:
    if header.source is None:           # LOCAL (the proxy's health check), UNKNOWN, UNSPEC: real addresses
        log.debug("PROXY protocol: %s %s from %s, keeping the connection's addresses",
                  "LOCAL" if header.local else "PROXY", header.family, conn.remote[0])
        return
    log.info("UPDATED client remote address/port: %s#%d (WAS %s#%d)", *header.source, *conn.remote)
    conn.remote = header.source
    conn.notes.update(proxy.notes(header))
    if "UseProxiedServerAddress" in (server.get("ProxyProtocolOptions") or ()):
        if master.server_for(header.destination) is not None:
            log.info("UPDATED server local address/port: %s#%d (WAS %s#%d)", *header.destination, *conn.local)
            conn.local = header.destination
        else:
            log.info("PROXY protocol: no server for the proxied address %s#%d, keeping %s#%d",
                     *header.destination, *conn.local)


def _looks_like_header(data: bytes) -> bool:
    """The first bytes of either header version (an FTP client sends nothing before the greeting)."""
    return bool(data) and any(data[:len(p)] == p[:len(data)] for p in (proxy.V1_PREFIX, proxy.V2_SIGNATURE))


def _refused(message: str) -> Veto:
    return Veto(message + ", disconnecting client")


# -- in the session ---------------------------------------------------------------------------------------------------
def session_init(session) -> None:
    """HeaderOnDataConnections: every passive data connection of a proxied session is checked (DataState.on_passive:
    before TLS, before the transfer)."""
    server = session.server
    if (server.get("ProxyProtocolEngine") and "HeaderOnDataConnections" in (server.get("ProxyProtocolOptions") or ())
            and trusted(server, session.socket_peer)):
        transfer.state(session).on_passive = lambda sock: data_header(session, sock)


def data_header(session, sock: socket.socket) -> None:
    """Read the PROXY header off a passive data connection (peeked until whole, then consumed exactly: what
    follows is the upload); it must name the session's client. Raises OSError (the transfer gets 425)."""
    server = session.server
    version = VERSIONS[server.get("ProxyProtocolVersion").lower()]
    deadline = time.monotonic() + server.get("ProxyProtocolTimeout")
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _data_refused(session, errno.ETIMEDOUT, "no PROXY protocol header on the data connection in time")
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            seen = len(data)
            try:
                data = sock.recv(proxy.V2_MAX, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if not data:
                raise _data_refused(session, errno.ECONNRESET, "data connection closed before its PROXY header")
            try:
                header = proxy.parse(data, version)
            except proxy.Invalid as e:
                raise _data_refused(session, errno.EPROTO, f"bad PROXY protocol data on the data connection: {e}")
            if header is not None:
                break
            if len(data) == seen:
                time.sleep(0.01)        # the peeked bytes keep the socket readable: wait for the rest
    if header.source is not None and header.source[0] != session.remote_addr:
        raise _data_refused(session, errno.EPERM, f"PROXY header on the data connection names {header.source[0]}, "
                                                  f"not the client {session.remote_addr}")
    left = header.size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise _data_refused(session, errno.ECONNRESET, "data connection closed during its PROXY header")
        left -= len(chunk)


def _data_refused(session, code: int, why: str) -> OSError:
    log.log(NOTICE, "%s", why)
    return OSError(code, why)


def _unhandled(session, cmd) -> None:
    """A `PROXY ...` line from a direct client of a server that reads headers: a header from an untrusted source
    that came after the accept (the 500 reply goes out, then the session ends)."""
    if cmd.name == "PROXY" and session.server.get("ProxyProtocolEngine"):
        log.log(NOTICE, "PROXY protocol header from untrusted source %s refused, disconnecting client",
                session.socket_peer)
        session.end("PROXY protocol header from an untrusted source")


def expired(master: MasterView, conn: Connection) -> Veto:
    server = _server(master, conn)
    seconds = server.get("ProxyProtocolTimeout") if server is not None else 0
    return Veto(f"proxy protocol timeout ({seconds} secs) reached, disconnecting client {conn.sock_remote[0]}")


MODULE = Module(NAME, directives=directives, session_init=session_init,
                listeners=(Listener("core.unhandled-command", _unhandled),),
                prestep=PreStep(timeout, parse, expired, peek=proxy.V2_MAX))
