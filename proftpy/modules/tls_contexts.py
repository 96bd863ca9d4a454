"""mod_tls in the master: each server's TLS context, built from its directives before any fork (ProFTPD's
sessions spend about 45 ms building their TLS state; ours inherit it), rebuilt on HUP. A certificate or key that
cannot be read, does not match, or has expired is `FILE:LINE: message` at `-t` and at start; after a HUP that
breaks one, the server keeps its old context and the log says why.

Every session child inherits the contexts with an empty session cache of its own, so a session resumed on a data
connection can only come from this child's control connection (see tls_data.py for the exact check). With an
external TLSSessionCache (tls_cache.py), made and opened here too, a control connection also resumes sessions
made by other session processes.
"""

from __future__ import annotations

import logging
import os
import ssl
import struct
import subprocess
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from ..config.errors import ConfigError
from ..net import openssl, x509
from ..net.tls import OP_ENABLE_KTLS
from .tls_directives import DEFAULT_CACHE_LIFETIME, DEFAULT_CIPHERS, KEYS, cipher_list

if TYPE_CHECKING:
    from .tls_cache import ExternalCache
    from .tls_psk import PskServer

if TYPE_CHECKING:
    from ..config.tree import Config, Server
    from ..module import MasterView

log = logging.getLogger("proftpy")

OP_DONT_INSERT_EMPTY_FRAGMENTS = 0x00000800          # SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS (no ssl constant)
_VERSION = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
            "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_NO = {"TLSv1": ssl.OP_NO_TLSv1, "TLSv1.1": ssl.OP_NO_TLSv1_1, "TLSv1.2": ssl.OP_NO_TLSv1_2,
       "TLSv1.3": ssl.OP_NO_TLSv1_3}
PROVIDER_TIMEOUT = 30


@dataclass
class ServerTls:
    """One server's TLS, made in the master."""

    ctx: ssl.SSLContext                     # the server side: control and data connections
    native: openssl.Native | None           # its SSL_CTX, for the session cache mode of data connections
    client_ctx: ssl.SSLContext              # SSCN client mode: we connect the data connection as TLS client
    certificates: list[str] = field(default_factory=list)   # the server's certificates, PEM (ExportCertData)
    external: "ExternalCache | None" = None                  # TLSSessionCache shm:/redis:/memcache:
    prepare: Callable[[ssl.SSLSocket], Any] | None = None    # each connection before its handshake (external)
    psk: "PskServer | None" = None                           # TLSPreSharedKey's callback


@dataclass
class TlsContexts:
    """The master's state (inherited by sessions): each TLS server's ServerTls. A server with TLSEngine on and
    no certificate has none (AUTH then answers `431`)."""

    by_server: dict = field(default_factory=dict)           # Server -> ServerTls
    passphrases: dict[str, bytes] = field(default_factory=dict)   # key file -> what TLSPassPhraseProvider said
    cache: "ExternalCache | None" = None                    # the external session cache, opened
    built: bool = False


def tls_servers(config: "Config") -> list["Server"]:
    return [s for s in config.servers if s.get("TLSEngine")]


def has_certificate(server: "Server") -> bool:
    return any(server.get(cert) for cert, _, _ in KEYS) or bool(server.get("TLSPKCS12File"))


def _where(server: "Server", name: str):
    p = server.context().param(name)
    return p.where if p is not None else server.section.where


def _error(server: "Server", name: str, message: str) -> ConfigError:
    return ConfigError(f"{name}: {message}", _where(server, name))


# -- building ----------------------------------------------------------------------------------------------------
def build(server: "Server", main: "Server", passphrase: Callable[["Server", str, str], bytes | None],
          cache: "ExternalCache | None" = None, sid: int = 0) -> ServerTls:
    """The server's contexts from its directives (`main`: the server config, for TLSSessionCache; `cache` its
    external cache, `sid` the server's id for it); raises ConfigError naming the line at fault."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # TLSv1/TLSv1.1 names, when configured
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _versions(server, ctx)
    native = _native(ctx)
    options = server.section.all("TLSOptions")
    flags = frozenset().union(*(p.value for p in options)) if options else frozenset()
    ctx.options |= ssl.OP_NO_RENEGOTIATION if "AllowClientRenegotiations" not in flags else 0
    if not server.get("TLSServerCipherPreference"):
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if not server.get("TLSSessionTickets"):
        ctx.options |= ssl.OP_NO_TICKET         # TLSv1.2: session IDs; TLSv1.3: tickets kept in the cache
    if "NoEmptyFragments" in flags:
        ctx.options |= OP_DONT_INSERT_EMPTY_FRAGMENTS
    if server.get("TLSKernelOffload"):
        ctx.options |= OP_ENABLE_KTLS
    ctx.num_tickets = 1                         # one TLSv1.3 ticket per handshake: its session is the control's
    _ciphers(server, ctx, native, "AllowWeakSecurity" in flags)
    psk = None
    if server.section.all("TLSPreSharedKey"):
        from .tls_psk import install
        psk = install(server, ctx)
    _curves(server, ctx, native)
    _dh_params(server, ctx, native)
    certificates = _certificates(server, ctx, passphrase)
    _client_verification(server, ctx, native)
    _session_cache(main, native, cache)
    if server.get("TLSNextProtocol"):
        ctx.set_alpn_protocols(["ftp"])
    prepare = _session_context(native, sid) if cache is not None and native is not None else None
    if server.get("TLSStapling"):
        from .tls_stapling import stapler
        stapler(server, main, native, certificates)
    return ServerTls(ctx, native, _client_context(server), certificates, cache, prepare, psk)


def _session_context(native: openssl.Native, sid: int) -> Callable[[ssl.SSLSocket], Any]:
    """With an external cache, each connection gets ProFTPD's session id context (the server's id, where CPython
    puts `Python` for every connection): a session resumes only on the server that made it, and sessions are
    shared with ProFTPD nodes on the same cache."""
    context = struct.pack("=I", sid)
    return lambda tls: native.set_connection_session_id_context(tls, context)


def _native(ctx: ssl.SSLContext) -> openssl.Native | None:
    try:
        return openssl.Native.of(ctx)
    except openssl.Unsupported as e:
        log.debug("TLS: %s", e)
        return None


def _versions(server: "Server", ctx: ssl.SSLContext) -> None:
    wanted = [v for v in _VERSION if v in server.get("TLSProtocol")]
    if not wanted:
        raise _error(server, "TLSProtocol", "no protocol left that OpenSSL 3 can speak (SSLv3 is gone)")
    ctx.minimum_version = _VERSION[wanted[0]]
    ctx.maximum_version = _VERSION[wanted[-1]]
    for name in _VERSION:
        if _VERSION[wanted[0]] < _VERSION[name] < _VERSION[wanted[-1]] and name not in wanted:
            ctx.options |= _NO[name]


def cipher_suites(server: "Server") -> tuple[str, Any]:
    """The server's cipher list for TLSv1.2 and older, as OpenSSL is given it (ProFTPD's `:!EXPORT` added), and
    its `TLSCipherSuite TLSv1.3 ...` line (None: OpenSSL's own TLSv1.3 suites)."""
    lines = server.section.all("TLSCipherSuite")
    classic = next((p for p in lines if p.value.protocol != "TLSv1.3"), None)
    modern = next((p for p in lines if p.value.protocol == "TLSv1.3"), None)
    return (cipher_list(classic.value.suite) if classic is not None else DEFAULT_CIPHERS), modern


def _ciphers(server: "Server", ctx: ssl.SSLContext, native: openssl.Native | None, weak: bool) -> None:
    suite, modern = cipher_suites(server)
    if weak:
        suite += ":@SECLEVEL=0"
    try:
        ctx.set_ciphers(suite)
    except ssl.SSLError:
        raise _error(server, "TLSCipherSuite", f"unable to use ciphersuite '{suite}'") from None
    if modern is not None:
        if native is None:
            raise ConfigError("TLSCipherSuite: TLSv1.3 suites cannot be set with this Python's ssl module",
                              modern.where)
        try:
            native.set_ciphersuites(modern.value.suite)
        except ValueError as e:
            raise ConfigError(f"TLSCipherSuite: {e}", modern.where) from None


def _curves(server: "Server", ctx: ssl.SSLContext, native: openssl.Native | None) -> None:
    curves = server.get("TLSECDHCurve")
    if not curves or curves.lower() == "auto":
        return
    try:
        if native is not None:
            native.set_groups(curves)
        else:
            ctx.set_ecdh_curve(curves)
    except (ValueError, ssl.SSLError):
        raise _error(server, "TLSECDHCurve", f"unable to use ECDH curves '{curves}'") from None


def _dh_params(server: "Server", ctx: ssl.SSLContext, native: openssl.Native | None) -> None:
    """TLSDHParamFile, else DH parameters of OpenSSL's choosing: ProFTPD always has some (its built-in groups,
    2048 bits or the RSA key's size), so DHE suites (DHE-PSK for a TLS-PSK client, DHE-RSA) are chosen as there."""
    dh = server.get("TLSDHParamFile")
    if dh:
        try:
            ctx.load_dh_params(dh)
        except (OSError, ssl.SSLError) as e:
            raise _error(server, "TLSDHParamFile", f"cannot use {dh}: {_why(e)}") from None
    elif native is not None:
        native.set_dh_auto()


def _certificates(server: "Server", ctx: ssl.SSLContext,
                  passphrase: Callable[["Server", str, str], bytes | None]) -> list[str]:
    chain = server.get("TLSCertificateChainFile")
    chain_pem = _read(server, "TLSCertificateChainFile", chain) if chain else b""
    pems = []
    for cert_name, key_name, kind in KEYS:
        cert = server.get(cert_name)
        if not cert:
            continue
        key = server.get(key_name) or cert
        data = _read(server, cert_name, cert)
        _valid(server, cert_name, cert, data)
        key_data = data if key == cert else _read(server, key_name, key)
        secret = passphrase(server, key, kind) if _encrypted(key_data) else None
        if _encrypted(key_data) and secret is None:
            raise _error(server, key_name, f"{key} is encrypted and no TLSPassPhraseProvider gives its passphrase")
        try:
            _load_pair(ctx, data + b"\n" + chain_pem, key, secret)
        except ssl.SSLError as e:
            if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
                raise _error(server, key_name, f"{key} does not match the certificate {cert}") from None
            raise _error(server, cert_name, f"cannot use {cert} with the key {key}: {_why(e)}") from None
        pems.append(data.decode("ascii", "replace"))
    if server.get("TLSPKCS12File"):
        pems.append(_pkcs12(server, ctx, chain_pem, passphrase))
    return pems


def _pkcs12(server: "Server", ctx: ssl.SSLContext, chain_pem: bytes,
            passphrase: Callable[["Server", str, str], bytes | None]) -> str:
    """TLSPKCS12File: its certificate and key, its CA certificates sent as the chain (after the chain file's).
    A password-protected file asks TLSPassPhraseProvider (`servername:port PKCS12`), as ProFTPD does."""
    from ..net import pkcs12
    path = server.get("TLSPKCS12File")
    data = _read(server, "TLSPKCS12File", path)
    try:
        protected = pkcs12.needs_password(data)
        secret = passphrase(server, path, "PKCS12") if protected else None
        if protected and secret is None:
            raise pkcs12.Pkcs12Error(f"{path} is password-protected and no TLSPassPhraseProvider gives its password")
        bundle = pkcs12.parse(data, secret)
    except pkcs12.Pkcs12Error as e:
        raise _error(server, "TLSPKCS12File", f"unable to use PKCS12 certificate in '{path}': {e}") from None
    _valid(server, "TLSPKCS12File", path, bundle.certificate)
    key = os.memfd_create("proftpy-key", os.MFD_CLOEXEC)
    try:
        os.write(key, bundle.key)
        _load_pair(ctx, b"\n".join((bundle.certificate, chain_pem, *bundle.chain)), f"/proc/self/fd/{key}", None)
    except ssl.SSLError as e:
        raise _error(server, "TLSPKCS12File", f"cannot use {path}: {_why(e)}") from None
    finally:
        os.close(key)
    return bundle.certificate.decode("ascii", "replace")


def _read(server: "Server", name: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise _error(server, name, f"cannot read {path}: {e.strerror}") from None


def _valid(server: "Server", name: str, path: str, data: bytes) -> None:
    """The file's first certificate is there, readable and within its validity period."""
    try:
        certs = [x509.Certificate.parse(der) for der in x509.pem_certificates(data)]
    except x509.BadCertificate as e:
        raise _error(server, name, f"{path} holds no usable certificate ({e})") from None
    if not certs:
        raise _error(server, name, f"{path} holds no certificate")
    now = datetime.now(timezone.utc)
    if certs[0].not_after < now:
        raise _error(server, name, f"the certificate in {path} expired on {certs[0].not_after:%Y-%m-%d %H:%M:%S} UTC")
    if certs[0].not_before > now:
        raise _error(server, name,
                     f"the certificate in {path} is not valid before {certs[0].not_before:%Y-%m-%d %H:%M:%S} UTC")


def _encrypted(pem: bytes) -> bool:
    return b"ENCRYPTED" in pem and b"PRIVATE KEY" in pem


def _load_pair(ctx: ssl.SSLContext, certs: bytes, key: str, secret: bytes | None) -> None:
    """load_cert_chain from memory: the certificate and the chain file, as one file only this process sees."""
    fd = os.memfd_create("proftpy-cert", os.MFD_CLOEXEC)
    try:
        os.write(fd, certs)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}", key, password=secret if secret is not None else _no_password)
    finally:
        os.close(fd)


def _no_password() -> bytes:
    raise ssl.SSLError("the key is encrypted")


def _client_verification(server: "Server", ctx: ssl.SSLContext, native: openssl.Native | None) -> None:
    cafile, capath = server.get("TLSCACertificateFile"), server.get("TLSCACertificatePath")
    crlfile, crlpath = server.get("TLSCARevocationFile"), server.get("TLSCARevocationPath")
    for name, kw in (("TLSCACertificateFile", {"cafile": cafile}), ("TLSCACertificatePath", {"capath": capath}),
                     ("TLSCARevocationFile", {"cafile": crlfile}), ("TLSCARevocationPath", {"capath": crlpath})):
        if next(iter(kw.values())):
            try:
                ctx.load_verify_locations(**kw)
            except (OSError, ssl.SSLError) as e:
                raise _error(server, name, f"cannot use {next(iter(kw.values()))}: {_why(e)}") from None
    if crlfile or crlpath:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    mode = server.get("TLSVerifyClient")
    if mode == "off":
        return
    if not (cafile or capath):
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    ctx.verify_mode = ssl.CERT_REQUIRED if mode == "on" else ssl.CERT_OPTIONAL
    if native is not None:
        native.set_verify_depth(server.get("TLSVerifyDepth"))
        native.set_verify_callback(lambda e: log.warning("TLS: client certificate verification report failed: %s", e))


def _session_cache(main: "Server", native: openssl.Native | None, external: "ExternalCache | None") -> None:
    cache = main.get("TLSSessionCache")             # server config only, as in ProFTPD
    if native is None:
        if external is not None:
            raise _error(main, "TLSSessionCache", "external session caches need OpenSSL reachable from this "
                         "Python's ssl module, which it is not")
        return                                  # OpenSSL's defaults: on, 7200 s
    if cache is not None and cache.kind == "off":
        native.set_cache_mode(openssl.SESS_CACHE_OFF)
        return
    if external is not None:                    # OpenSSL's own cache stays on: the data connections use it
        native.set_session_timeout(external.lifetime)
        native.set_session_store(external)
        return
    native.set_session_timeout(cache.lifetime if cache is not None and cache.lifetime else DEFAULT_CACHE_LIFETIME)


def _client_context(server: "Server") -> ssl.SSLContext:
    """SSCN ON: we are the TLS client of the data connection (server-to-server transfers)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if server.get("TLSVerifyServer"):
        cafile, capath = server.get("TLSCACertificateFile"), server.get("TLSCACertificatePath")
        if cafile or capath:
            ctx.load_verify_locations(cafile=cafile, capath=capath)
        else:
            ctx.load_default_certs()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _why(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError):
        return e.reason or str(e)
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e)


# -- passphrases -------------------------------------------------------------------------------------------------
def provider_passphrase(config: "Config", cache: dict[str, bytes]) -> Callable[["Server", str, str], bytes | None]:
    """TLSPassPhraseProvider: run once per encrypted key, with `servername:port` and the key's type, as ProFTPD
    does; its first output line is the passphrase (kept in the master's memory for reloads)."""
    program = config.main.get("TLSPassPhraseProvider")

    def ask(server: "Server", key: str, kind: str) -> bytes | None:
        if key in cache:
            return cache[key]
        if program is None:
            return None
        try:
            done = subprocess.run([program, f"{server.name}:{server.get('Port')}", kind], capture_output=True,
                                  timeout=PROVIDER_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise _error(server, "TLSPassPhraseProvider", f"cannot run {program}: {e}") from None
        if done.returncode != 0:
            raise _error(server, "TLSPassPhraseProvider", f"{program} exited with status {done.returncode}")
        cache[key] = done.stdout.splitlines()[0] if done.stdout else b""
        return cache[key]
    return ask


def build_all(config: "Config", passphrases: dict[str, bytes],
              cache: "ExternalCache | None" = None) -> tuple[dict, list[ConfigError]]:
    """(Server -> ServerTls for every TLS server that has a certificate, the problems found)."""
    ask = provider_passphrase(config, passphrases)
    out, problems = {}, []
    for server in tls_servers(config):
        if not has_certificate(server):
            continue
        try:
            out[server] = build(server, config.main, ask, cache, config.sid(server))
        except ConfigError as e:
            problems.append(e)
    return out, problems


def _external(config: "Config") -> bool:
    """An external TLSSessionCache for TLS servers (without one, tls_cache.py is never imported)."""
    cache = config.main.get("TLSSessionCache")
    return cache is not None and cache.external and bool(tls_servers(config))


def external_cache(config: "Config", old: "ExternalCache | None" = None) -> "ExternalCache | None":
    """The configuration's external session cache, opened (the one before, `old`, when it is the same file);
    None without one. Raises ConfigError."""
    if not _external(config):
        return None
    from .tls_cache import make, open_cache
    cache = make(config)
    if cache is not None and old is not None and cache.same(old):
        old.lifetime = cache.lifetime
        return old
    if cache is not None:
        open_cache(cache, config)
    return cache


# -- the master's hooks --------------------------------------------------------------------------------------------
def master_init(master: "MasterView") -> None:
    """Before the first accept: every context, or no start at all (FILE:LINE: why)."""
    st = master.state.get(TlsContexts)
    try:
        st.cache = external_cache(master.config)
    except ConfigError as e:
        raise SystemExit(f"proftpy: {e}") from None
    st.by_server, problems = build_all(master.config, st.passphrases, st.cache)
    st.built = True
    if problems:
        raise SystemExit(f"proftpy: {problems[0]}")
    if st.by_server:
        log.info("TLS: contexts ready for %d server%s", len(st.by_server), "s" if len(st.by_server) != 1 else "")


def master_reload(master: "MasterView") -> None:
    """After a HUP: new contexts; a server whose new certificate is broken keeps its old context (matched by
    name, addresses and port), as a broken configuration keeps the old one."""
    st = master.state.get(TlsContexts)
    try:
        cache = external_cache(master.config, st.cache)
    except ConfigError as e:
        log.error("TLS: %s; TLS sessions are cached by each session process only", e)
        cache = None
    if st.cache is not None and st.cache is not cache:
        st.cache.close()                    # sessions forked before keep their own mapping and links
    st.cache = cache
    new, problems = build_all(master.config, st.passphrases, cache)
    old = {_identity(s): tls for s, tls in st.by_server.items()}
    for e in problems:
        server = next((s for s in tls_servers(master.config) if s not in new and _broke(s, e)), None)
        kept = old.get(_identity(server)) if server is not None else None
        if server is not None and kept is not None:
            new[server] = kept
            log.error("TLS: reload of %s refused, keeping its running certificate: %s", server.name, e)
        else:
            log.error("TLS: %s", e)
    st.by_server = new


def _broke(server: "Server", e: ConfigError) -> bool:
    """Whether this problem is this server's (its place is one of the server's own lines)."""
    return any(p.where == e.where for p in server.section.params) or e.where == server.section.where


def _identity(server: "Server") -> tuple:
    return (server.section.kind, tuple(server.section.args), server.name, server.get("Port"))


def problems(config: "Config") -> list[tuple[str, bool]]:
    """`proftpy -t`: every TLS server's context is built once, as at start; each failure is fatal. An external
    cache is checked, not opened (no file is made)."""
    cache = None
    if _external(config):
        from .tls_cache import make
        try:
            cache = make(config)
        except ConfigError as e:
            return [(str(e), True)]
    from .tls_ocspcache import checking
    with checking():                                # nor is a stapling shm: file
        return [(str(e), True) for e in build_all(config, {}, cache)[1]]


def server_tls(shared, server: "Server", config: "Config") -> ServerTls | None:
    """The server's TLS as the master built it (inetd mode has no master: built here on first use)."""
    st = shared.get(TlsContexts)
    if not st.built:
        try:
            st.cache = external_cache(config)
        except ConfigError as e:
            log.error("TLS: %s", e)
        st.by_server, errors = build_all(config, st.passphrases, st.cache)
        st.built = True
        for e in errors:
            log.error("TLS: %s", e)
    return st.by_server.get(server)
