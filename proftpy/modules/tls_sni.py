"""The name a client sends in its TLS handshake (SNI), as ProFTPD 1.3.8's mod_tls treats it: checked inside the
handshake (the callback OpenSSL runs when the ClientHello names a server), where the context of the name-based
server it names is put in place, so the client sees that server's certificate and its TLSVerifyClient applies; the
session then changes to that server after the handshake (tls.py), as HOST would.

In the handshake, in ProFTPD's order: a name that differs from what HOST chose before is refused (alert
access_denied); `TLSOptions IgnoreSNI` and an IP address are ignored; without name-based servers on the
connection's address and port the name is ignored; a name no server answers to, or that names a server without
TLSEngine (or without a certificate), is refused (alert unrecognized_name), and so is a server whose TLSProtocol
lacks the version being negotiated (alert protocol_version). Each refusal has ProFTPD's TLSLog line; the names
ignored are written to the `tls` trace channel (level 5), as ProFTPD traces them.
After the handshake, HOST must name the same server as SNI did (`504 NAME: Unknown hostname provided`), and HOST
after a handshake without SNI is `503 Bad sequence of commands` (RFC 7151: HOST comes before AUTH).

The data connections keep the context the control connection started with: its session (and TLSv1.3 ticket) was
cached there, and a resumed data connection sends no certificate, so nothing of the other server's is needed."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Callable

from .. import trace
from ..reply import Reply
from .files import FilesState, named_server
from .tls_session import handshake_options, log, naming_disabled, state, tls_log, watch_verification

if TYPE_CHECKING:
    import ssl

    from ..dispatch import Request
    from ..session import Session

NOTE = "mod_tls.sni"            # ProFTPD's session note: the SNI the handshake accepted


def callback(session: "Session") -> Callable:
    """The sni_callback for the control connection's handshake in `session`."""
    def check(tls: "ssl.SSLSocket", name: str | None, _ctx: "ssl.SSLContext") -> int | None:
        if not name:
            return None
        return _check(session, tls, name)
    return check


def _check(session: "Session", tls: "ssl.SSLSocket", name: str) -> int | None:
    import ssl                                  # loaded already: a handshake is running (a plain session never)
    if trace.on: trace.msg("tls", 5, "received SNI '%s'", name)
    st = state(session)
    host = session.state.get(FilesState).host
    if host is not None and host.lower() != name.lower():
        tls_log(session, f"warning: SNI '{name}' does not match HOST '{host}', rejecting SSL/TLS connection")
        log.warning("mod_tls/2.9.2: SNI '%s' does not match HOST '%s', rejecting SSL/TLS connection", name, host)
        return ssl.ALERT_DESCRIPTION_ACCESS_DENIED
    if st.opt("IgnoreSNI"):
        if trace.on: trace.msg("tls", 5, "client sent SNI '%s', ignoring due to IgnoreSNI TLSOption", name)
        return None
    if _is_address(name):
        if trace.on: trace.msg("tls", 5, "client sent IP address SNI '%s', ignoring", name)
        return None
    st.sni = name
    session.notes[NOTE] = name
    if not _name_based(session):
        if trace.on: trace.msg("tls", 5, "no name-based <VirtualHost> configured, ignoring SNI '%s'", name)
        return None
    server = named_server(session, name)
    if server is None:
        tls_log(session, f"no matching server found for client-sent SNI '{name}', rejecting SSL/TLS connection")
        log.warning("mod_tls/2.9.2: no matching server found for client-sent SNI '%s', rejecting SSL/TLS "
                    "connection", name)
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
    if server is session.server:
        return None
    if not server.get("TLSEngine"):
        tls_log(session, f"TLSEngine not enabled for SNI '{name}', rejecting client")
        log.warning("mod_tls/2.9.2: TLSEngine not enabled for SNI '%s', rejecting client", name)
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
    from .tls_contexts import server_tls
    theirs = server_tls(session.shared, server, session.config)
    if theirs is None:
        tls_log(session, f"error initializing OpenSSL session for SNI '{name}'")
        log.warning("mod_tls/2.9.2: error initializing OpenSSL session for SNI '%s'", name)
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
    native = st.tls.native if st.tls is not None else None
    version = native.connection_version(tls) if native is not None else None
    if version is not None and version not in server.get("TLSProtocol"):
        tls_log(session, f"client-requested protocol version {version} not supported by SNI '{name}' host")
        log.warning("mod_tls/2.9.2: client-requested protocol version %s not supported by SNI '%s' host", version,
                    name)
        return ssl.ALERT_DESCRIPTION_PROTOCOL_VERSION
    tls.context = theirs.ctx                    # its certificate from here on in this handshake
    st.sni_server, st.sni_tls = server, theirs
    watch_verification(session, theirs)
    for line in naming_disabled(session, handshake_options(session)):
        tls_log(session, line)
    if theirs.native is not None:
        theirs.native.adopt_verify(tls)         # and its TLSVerifyClient
    return None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def _name_based(session: "Session") -> bool:
    """Whether a server on this connection's address and port answers to names (ServerAlias, or a
    `<VirtualHost name>`) other than the one the session is on."""
    for server in session.config.servers:
        if server is session.server or server.get("Port") != session.local_port:
            continue
        if session.local_addr in server.addresses and (server.context().all("ServerAlias") or any(
                not _is_address(a) for a in server.section.args)):
            return True
    return False


def host_after_handshake(session: "Session", cmd: "Request") -> Reply | None:
    """PRE_CMD HOST: once the control connection is TLS, HOST may only name what SNI named."""
    st = state(session)
    if not st.mechanism:
        return None
    words = cmd.arg.split()
    sni = session.notes.get(NOTE)
    if sni is None:
        return Reply(503, "Bad sequence of commands")
    if len(words) == 1 and words[0].lower() != sni.lower():
        log.debug("HOST '%s' does not match TLS SNI '%s', rejecting", words[0], sni)
        return Reply(504, f"{words[0]}: Unknown hostname provided")
    return None
