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
    cert = peer_certificate(tls)
    _peer(session, tls, cert)
    lines, refused = client_certificate_check(session, tls)
    for line in lines:
        tls_log(session, line)
    if refused:
        tls_log(session, f"{label} negotiation failed on control channel")
        nettls.close_notify(tls)
        session.end("TLS client certificate refused")
        return False
    st.ctrl, st.on_ctrl, st.mechanism = tls, True, True
    _accepted(session, tls, cert)
    session.set_protocol("ftps")
    session.events.emit("mod_tls.protocol", session=session, version=tls.version() or "")
    masq = session.server.get("TLSMasqueradeAddress")
    if masq:
        try:
            session.masquerade = socket.gethostbyname(masq)
        except OSError:
            log.warning("TLSMasqueradeAddress %s: cannot resolve to an IPv4 address; ignored", masq)
    return True


# OpenSSL's verification errors that ProFTPD names as such (the rest get their number too)
FAILED_VERIFICATION = {10, 18, 19, 20, 21, 22, 23, 50}     # X509_V_ERR_CERT_HAS_EXPIRED... APPLICATION_VERIFICATION
INVALID_PURPOSE = 26


def watch_verification(session: "Session", server_tls: "ServerTls | None") -> None:
    """TLSLog gets ProFTPD's lines for each client certificate that verification refuses with these contexts."""
    native = server_tls.native if server_tls is not None else None
    if native is not None:
        native.on_verify_failure = lambda failure: [tls_log(session, line) for line in verify_failure_lines(failure)]


def verify_failure_lines(f: Any) -> list[str]:
    """ProFTPD's TLSLog lines for a refused certificate (`f`: a net.openssl.VerifyFailure)."""
    lines = [f"error: unable to verify certificate at depth {f.depth}", f"error: cert subject: {f.subject}",
             f"error: cert issuer: {f.issuer}"]
    if f.error in FAILED_VERIFICATION or f.error == INVALID_PURPOSE:
        lines.append(f"client certificate failed verification: {f.message}")
        if f.error == INVALID_PURPOSE:
            lines += [f"  purpose #{i}: {name}" for i, name in enumerate(f.purposes, 1)]
    else:
        lines.append(f"error verifying client certificate: [{f.error}] {f.message}")
    return lines


def failure_lines(session: "Session", e: Any, what: str) -> list[str]:
    """The TLSLog lines of a failed handshake (`e`: a net.tls.HandshakeError): why, then the hint ProFTPD adds
    for the failures it explains (a missing client certificate that the server requires, no cipher in common),
    from the settings of the server SNI named, where it named one: they applied in that handshake."""
    if e.timed_out:
        return [e.reason]
    lines = [f"{what}: {e.reason}", *e.errors]
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


def _peer(session: "Session", tls: "ssl.SSLSocket", cert: x509.Certificate | None) -> None:
    """TLSLog's first lines after a control handshake, in ProFTPD's order."""
    st = state(session)
    native = (st.sni_tls or st.tls).native
    if native is not None and native.secure_renegotiation(tls):
        tls_log(session, "client supports secure renegotiations")
    if cert is not None:
        tls_log(session, f"Client: {_subject_text(tls)}")


def _accepted(session: "Session", tls: "ssl.SSLSocket", cert: x509.Certificate | None) -> None:
    st = state(session)
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


# OpenSSL's short names for the attributes Python's getpeercert() names in full
SHORT_NAMES = {"commonName": "CN", "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
               "organizationName": "O", "organizationalUnitName": "OU", "domainComponent": "DC", "surname": "SN",
               "givenName": "GN", "userId": "UID", "streetAddress": "street"}


def _subject_text(tls: "ssl.SSLSocket") -> str:
    """The peer's subject as ProFTPD writes it (OpenSSL's X509_NAME_print_ex with XN_FLAG_ONELINE):
    `C = DE, O = Example, CN = alice`, a multi-valued RDN joined by ` + `."""
    cert = tls.getpeercert() or {}
    return ", ".join(" + ".join(f"{SHORT_NAMES.get(k, k)} = {_oneline_value(v)}" for k, v in rdn)
                     for rdn in cert.get("subject", ()))


def _oneline_value(value: str) -> str:
    """RFC 2253 escaping with quotes (ASN1_STRFLGS_ESC_QUOTE): a value with a special character is quoted,
    `"` and `\\` are escaped, control and non-ASCII bytes written as `\\XX`."""
    out = []
    for byte in value.encode():
        c = chr(byte)
        if c in '"\\':
            out.append("\\" + c)
        elif byte < 0x20 or byte >= 0x7f:
            out.append(f"\\{byte:02X}")
        else:
            out.append(c)
    text = "".join(out)
    special = any(c in ",+<>;" for c in value) or value[:1] in ("#", " ") or value.endswith(" ")
    return f'"{text}"' if special else text


# TLSOptions that make the client certificate name the client, in the order ProFTPD checks them
NAMING = ("dNSNameRequired", "iPAddressRequired", "CommonNameRequired")


def handshake_options(session: "Session") -> frozenset[str]:
    """The TLSOptions of the control handshake: ProFTPD adds those of the server SNI named to the session's."""
    st = state(session)
    if st.sni_server is None:
        return st.options
    return st.options.union(*(p.value for p in st.sni_server.section.all("TLSOptions")))


def naming_disabled(session: "Session", options: frozenset[str]) -> list[str]:
    """ProFTPD's TLSLog lines for the naming options that `UseReverseDNS off` leaves without a name to compare
    (they are then not checked)."""
    if session.client.reverse_dns:
        return []
    return [f"reverse DNS off, disabling TLSOption {o}" for o in ("dNSNameRequired", "CommonNameRequired")
            if o in options]


def client_certificate_check(session: "Session", tls: "ssl.SSLSocket") -> tuple[list[str], bool]:
    """ProFTPD's checks after a control handshake under `TLSVerifyClient on` (of the server SNI named, where it
    named one) with TLSOptions dNSNameRequired / iPAddressRequired / CommonNameRequired: the certificate must name
    the client (its name, the address when UseReverseDNS is off; its address for iPAddress). The TLSLog lines, and
    whether the client is refused (a client without a certificate is: a PSK handshake asks for none)."""
    server = state(session).sni_server or session.server
    wanted = [o for o in NAMING if o in handshake_options(session)
              and (o == "iPAddressRequired" or session.client.reverse_dns)]
    if server.get("TLSVerifyClient") != "on" or not wanted:
        return [], False
    info = tls.getpeercert()
    if not info:
        return [f"unable to verify '{session.remote_name}': client did not provide certificate"], True
    lines = []
    for option in wanted:
        if option == "iPAddressRequired":
            ip = session.remote_addr
            ok = any(_same_ip(v, ip) for k, v in info.get("subjectAltName", ()) if k == "IP Address")
            lines.append(f"client cert iPAddress SAN matches client IP '{ip}'" if ok else
                         f"client cert iPAddress SANs do not match client IP '{ip}'")
        else:
            name = session.remote_name
            if option == "dNSNameRequired":
                ok = any(v.lower() == name.lower() for k, v in info.get("subjectAltName", ()) if k == "DNS")
                what = ("dNSName SAN matches remote name", "dNSName SANs do not match remote name")
            else:
                cn = next((v for rdn in info.get("subject", ()) for k, v in rdn if k == "commonName"), None)
                ok = cn is not None and cn.lower() == name.lower()
                what = ("CommonName matches client FQDN", "CommonName does not match client FQDN")
            lines.append(f"client cert {what[0] if ok else what[1]} '{name}'")
        if not ok:
            return lines, True
    return lines, False


def _same_ip(san: str, ip: str) -> bool:
    """An iPAddress SAN (as Python prints it) names `ip`, also as an IPv4-mapped IPv6 address."""
    import ipaddress
    try:
        a, b = ipaddress.ip_address(san.strip()), ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a == b or getattr(a, "ipv4_mapped", None) == b


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
