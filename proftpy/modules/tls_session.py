"""mod_tls in a session: its state (ProFTPD's tls_flags), TLSLog, and the control connection's handshake, shared by
`AUTH TLS` (explicit FTPS) and `TLSOptions UseImplicitSSL` (the handshake before the greeting).

After a good handshake the control channel's transport is swapped (`ControlChannel.swap`: whatever the client
sent behind AUTH before its handshake is dropped, never run), the session's protocol becomes `ftps` (the
scoreboard, ftpwho, ftptop and the logs' %{protocol} follow), and the notes ProFTPD sets are set (FTPS,
TLS_PROTOCOL, TLS_CIPHER, TLS_LIBRARY_VERSION, TLS_SERVER_NAME, TLS_CLIENT_S_DN_CN; `%{note:...}` and mod_exec
read them), plus the process environment under StdEnvVars / ExportCertData.

Events (session bus), for mod_ban and mod_exec:
- `mod_tls.ctrl-handshake(session)`: a control-channel handshake starts (ProFTPD's; mod_ban's TLSHandshake
  counts these);
- `mod_tls.ctrl-handshake-failed(session, reason)`: it failed or timed out (`421 TLS handshake failed` follows);
- `mod_tls.data-handshake-failed(session, reason)`: a data connection's handshake failed (the client gets 425).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..net import x509
from ..reply import Reply
from ..log.files import open_logfile, write_line
from .tls_directives import Required

if TYPE_CHECKING:
    import ssl

    from ..session import Session
    from .tls_contexts import ServerTls

# ssl (and what imports it) is loaded only by a session of a server with TLSEngine on: it costs a plain session
# memory for nothing (tests/unit/test_transfer_stream.py).

log = logging.getLogger("proftpy")
IDENT = "mod_tls/2.9.2"                 # ProFTPD 1.3.8's mod_tls version, the ident of TLSLog lines
HANDSHAKE_FAILED = Reply(421, "TLS handshake failed")


@dataclass
class TlsState:
    """ProFTPD's tls_flags and what goes with them, for one session."""

    tls: "ServerTls | None" = None          # the server's contexts (None: TLSEngine off, or no certificate)
    engine: bool = False
    options: frozenset[str] = frozenset()   # TLSOptions
    required: Required = field(default_factory=Required)   # TLSRequired at the session level
    mechanism: bool = False                 # session.rfc2228_mech == "TLS": AUTH (or implicit TLS) happened
    on_ctrl: bool = False                   # the control connection is encrypted now
    ccc: bool = False                       # CCC cleared it
    prot_p: bool = False                    # PROT P: data connections are encrypted
    wrapping: bool = False                  # our wrapper is in the session's DataState.wrap
    sscn_client: bool = False               # SSCN ON: we are the TLS client of data connections
    ctrl: Any = None                        # the control connection's ssl.SSLSocket
    sni: str | None = None                  # the name the client asked for (SNI)
    sni_server: Any = None                  # the server SNI moved the control handshake to (its settings apply)
    sni_tls: "ServerTls | None" = None      # and its contexts, which the connection uses from then on
    log_fd: int | None = None               # TLSLog
    logged_data: bool = False               # the first data connection's "accepted" line is written
    command: str = ""                       # the data command being served (SSCN: listings stay server side)

    def opt(self, name: str) -> bool:
        return name in self.options


def state(session: "Session") -> TlsState:
    return session.state.get(TlsState)


# -- TLSLog ------------------------------------------------------------------------------------------------------
def open_log(session: "Session") -> None:
    """TLSLog is opened at connect, while the session is still root and not chrooted (as ProFTPD does)."""
    path = session.server.get("TLSLog")
    if not path:
        return
    try:
        state(session).log_fd = open_logfile(path, bool(session.server.get("AllowLogSymlinks")))
    except OSError as e:
        log.warning("unable to open TLSLog '%s': %s", path, e.strerror or e)


def tls_log(session: "Session", message: str) -> None:
    """One TLSLog line: `YYYY-MM-DD HH:MM:SS,mmm mod_tls/2.9.2[pid]: message` (local time)."""
    fd = state(session).log_fd
    if fd is None:
        return
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now * 1000) % 1000:03d}"
    write_line(fd, f"{stamp} {IDENT}[{os.getpid()}]: {message}\n", "TLSLog")


# -- the control connection's handshake ------------------------------------------------------------------------
def secure_control(session: "Session", label: str, sni: Callable | None = None) -> bool:
    """Run the handshake on the control connection (its plaintext buffer dropped), with TLSTimeoutHandshake;
    `sni(session)` makes the callback that checks the name the client sends (tls_sni.py). False when it failed:
    then `421 TLS handshake failed` went out in plaintext and the session is ending."""
    from ..net import tls as nettls
    st = state(session)
    session.events.emit("mod_tls.ctrl-handshake", session=session)
    timeout = session.server.get("TLSTimeoutHandshake")
    st.sni, st.sni_server, st.sni_tls = None, None, None
    ctx = st.tls.ctx
    ctx.sni_callback = (sni(session) if sni is not None       # the control connection's only
                        else lambda _obj, name, _ctx: setattr(st, "sni", name))
    try:
        tls = nettls.handshake(session.ctrl.sock, ctx, timeout, prepare=st.tls.prepare)
    except nettls.HandshakeError as e:
        _psk_misses(session)
        for line in failure_lines(session, e, "unable to accept TLS connection"):
            tls_log(session, line)
        tls_log(session, f"{label} negotiation failed on control channel")
        session.ctrl.swap(e.sock)
        session.send(HANDSHAKE_FAILED)
        session.events.emit("mod_tls.ctrl-handshake-failed", session=session, reason=e.reason)
        session.end("TLS handshake failed")
        return False
    finally:
        ctx.sni_callback = None
    _psk_misses(session)
    dropped = session.ctrl.swap(tls, tls.pending)
    if dropped:
        tls_log(session, f"discarded {dropped} bytes sent in the clear before the TLS handshake")
    problem = client_certificate_problem(session, tls)
    if problem is not None:
        tls_log(session, problem)
        nettls.close_notify(tls)
        session.end("TLS client certificate refused")
        return False
    st.ctrl, st.on_ctrl, st.mechanism = tls, True, True
    _accepted(session, tls)
    session.set_protocol("ftps")
    session.events.emit("mod_tls.protocol", session=session, version=tls.version() or "")
    masq = session.server.get("TLSMasqueradeAddress")
    if masq:
        try:
            session.masquerade = socket.gethostbyname(masq)
        except OSError:
            log.warning("TLSMasqueradeAddress %s: cannot resolve to an IPv4 address; ignored", masq)
    return True


def failure_lines(session: "Session", e: Any, what: str) -> list[str]:
    """The TLSLog lines of a failed handshake (`e`: a net.tls.HandshakeError): why, then the hint ProFTPD adds
    for the failures it explains (a missing client certificate that the server requires, no cipher in common),
    from the settings of the server SNI named, where it named one: they applied in that handshake."""
    if e.timed_out:
        return [e.reason]
    lines = [f"{what}: {e.reason}"]
    server = state(session).sni_server or session.server
    if e.code == "PEER_DID_NOT_RETURN_A_CERTIFICATE" and server.get("TLSVerifyClient") == "on":
        lines.append(f"{what}: client did not provide certificate, but one is required via 'TLSVerifyClient on'")
    elif e.code == "NO_SHARED_CIPHER":
        from .tls_contexts import cipher_suites
        suite, modern = cipher_suites(server)
        also = f" or 'TLSCipherSuite TLSv1.3 {modern.value.suite}'" if modern is not None else ""
        lines.append(f"{what}: client does not support any cipher from 'TLSCipherSuite {suite}'{also} (see "
                     f"`openssl ciphers{'' if also else ' ' + suite}` for full list)")
    return lines


def _psk_misses(session: "Session") -> None:
    psk = state(session).tls.psk
    if psk is not None:
        from .tls_psk import missed
        for line in missed(psk):
            tls_log(session, line)


def _accepted(session: "Session", tls: "ssl.SSLSocket") -> None:
    st = state(session)
    cert = peer_certificate(tls)
    if cert is not None:
        tls_log(session, f"Client: {_subject_text(tls)}")
    native = (st.sni_tls or st.tls).native
    if native is not None and native.secure_renegotiation(tls):
        tls_log(session, "client supports secure renegotiations")
    name, _, bits = tls.cipher()
    resumed = tls.session_reused
    tls_log(session, f"{tls.version()} connection accepted, using cipher {name} ({bits} bits"
            f"{', resumed session' if resumed else ''})")
    if resumed:
        tls_log(session, "client reused previous TLS session for control connection")
    _notes(session, tls, cert)
    if st.opt("StdEnvVars") or st.opt("ExportCertData"):
        _environment(session, tls, cert)


def peer_certificate(tls: "ssl.SSLSocket") -> x509.Certificate | None:
    der = tls.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return x509.Certificate.parse(der)
    except x509.BadCertificate:
        return None


def _subject_text(tls: "ssl.SSLSocket") -> str:
    cert = tls.getpeercert() or {}
    return "/" + "/".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)


def client_certificate_problem(session: "Session", tls: "ssl.SSLSocket") -> str | None:
    """TLSOptions CommonNameRequired / dNSNameRequired / iPAddressRequired: the client's certificate must name
    the client (its reverse DNS name, or its address). None when fine or not asked for."""
    st = state(session)
    wanted = [o for o in ("CommonNameRequired", "dNSNameRequired", "iPAddressRequired") if st.opt(o)]
    info = tls.getpeercert() if wanted else None
    if not wanted or not info:
        return None
    names = {"CommonNameRequired": [v for rdn in info.get("subject", ()) for k, v in rdn if k == "commonName"],
             "dNSNameRequired": [v for k, v in info.get("subjectAltName", ()) if k == "DNS"],
             "iPAddressRequired": [v for k, v in info.get("subjectAltName", ()) if k == "IP Address"]}
    for option in wanted:
        if option == "iPAddressRequired":
            if session.remote_addr not in names[option]:
                return f"client certificate iPAddress SAN does not match client IP address {session.remote_addr}"
        elif session.client.reverse_dns and session.remote_name not in names[option]:
            what = "CommonName" if option == "CommonNameRequired" else "dNSName SAN"
            return f"client certificate {what} does not match client FQDN '{session.remote_name}'"
    return None


def _notes(session: "Session", tls: "ssl.SSLSocket", cert: x509.Certificate | None) -> None:
    import ssl
    notes = session.notes
    notes["FTPS"] = "1"
    notes["TLS_PROTOCOL"] = tls.version()
    notes["TLS_CIPHER"] = tls.cipher()[0]
    notes["TLS_LIBRARY_VERSION"] = ssl.OPENSSL_VERSION
    if state(session).sni:
        notes["TLS_SERVER_NAME"] = state(session).sni
    if cert is not None and cert.common_name:
        notes["TLS_CLIENT_S_DN_CN"] = cert.common_name


def _environment(session: "Session", tls: "ssl.SSLSocket", cert: x509.Certificate | None) -> None:
    """The process environment ProFTPD sets (for programs mod_exec runs)."""
    import ssl
    st = state(session)
    env: dict[str, str] = {}
    if st.opt("StdEnvVars"):
        name, _, bits = tls.cipher()
        env.update(FTPS="1", TLS_PROTOCOL=tls.version(), TLS_CIPHER=name,
                   TLS_SESSION_ID=(tls.session.id.hex().upper() if tls.session else ""),
                   TLS_CIPHER_KEYSIZE_POSSIBLE=str(bits), TLS_CIPHER_KEYSIZE_USED=str(bits),
                   TLS_LIBRARY_VERSION=ssl.OPENSSL_VERSION)
        if st.sni:
            env["TLS_SERVER_NAME"] = st.sni
        if cert is not None:
            env["TLS_CLIENT_S_DN"] = _subject_text(tls)
            if cert.common_name:
                env["TLS_CLIENT_S_DN_CN"] = cert.common_name
    if st.opt("ExportCertData"):
        if st.tls is not None and st.tls.certificates:
            env["TLS_SERVER_CERT"] = st.tls.certificates[0]
        if cert is not None:
            env["TLS_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(cert.der)
    os.environ.update(env)
