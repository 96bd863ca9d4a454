"""mod_tls's OCSP stapling (`TLSStapling on`), as ProFTPD 1.3.8 does it: the master only sets OpenSSL's status
callback on the server's context (and reads the certificate, its issuer and its responder URL once); the work
happens in the session, inside a handshake whose client asks for the certificate's status (status_request), on
the control connection and on data connections alike (a resumed session staples nothing: RFC 6066).

In that handshake: the TLSStaplingCache entry for the certificate (its SHA1 fingerprint) when one is there and
still usable, else the responder (TLSStaplingResponder, or the certificate's AIA URL) asked within
TLSStaplingTimeout, with a nonce unless NoNonce, its answer verified against the issuer and the CA certificates
unless NoVerify. No usable answer: a fake `tryLater` response unless NoFakeTryLater (then nothing). What is
stapled is cached, the fake tryLater too (as ProFTPD's: a dead responder is then asked again only once the entry
is stale).

ProFTPD writes none of this to TLSLog: it goes to the `tls` trace channel, with ProFTPD's texts and levels."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import trace
from ..config.errors import ConfigError
from ..net import ocsp, x509

if TYPE_CHECKING:
    from .tls_ocspcache import FsCache, LinkCache, ShmCache
    Cache = FsCache | LinkCache | ShmCache

log = logging.getLogger("proftpy")

DEFAULT_TIMEOUT = 10                # TLSStaplingTimeout's default (seconds)
GOOD_MAX_AGE = 3600                 # a cached successful response without nextUpdate is asked again after this
FAILED_MAX_AGE = 300                # a cached unsuccessful one (a fake tryLater) after this (ProFTPD 1.3.8's)


def _t(level: int, text: str, *args: object) -> None:
    if trace.on:
        trace.msg("tls", level, text, *args)


@dataclass
class Stapler:
    """One server's stapling: the certificate, where to ask, what to trust, the options."""

    cert: bytes                                 # the server certificate (DER), the first of KEYS configured
    issuer: bytes | None
    trusted: list[bytes]                        # issuer, chain, TLSCACertificateFile: who may sign answers
    url: str | None
    configured_url: bool                        # TLSStaplingResponder (else the certificate's AIA)
    timeout: int = DEFAULT_TIMEOUT
    nonce: bool = True
    verify: bool = True
    fake_try_later: bool = True
    cache: "Cache | None" = None                 # tls_ocspcache.py's
    fingerprint: str = field(init=False)

    def __post_init__(self):
        self.fingerprint = hashlib.sha1(self.cert).hexdigest()

    # -- in the handshake (OpenSSL's status callback) ------------------------------------------------------------
    def respond(self, resumed: bool) -> bytes | None:
        if resumed:
            _t(9, "OCSP stapling requested but ignored for resumed session, per RFC 6066")
            return None
        _t(3, "using fingerprint '%s' for server cert", self.fingerprint)
        der = self._cached()
        if der is not None:
            return der
        der = self._fetch()
        if der is None:
            if not self.fake_try_later:
                return None
            _t(5, "returning fake tryLater OCSP response")
            der = ocsp.TRY_LATER
        if self.cache is not None:
            try:
                self.cache.add(self.fingerprint, der)
                _t(15, "added OCSP response to '%s' cache for fingerprint '%s'", self.cache.kind, self.fingerprint)
            except OSError as e:
                _t(3, "error adding OCSP response to '%s' cache for fingerprint '%s': %s", self.cache.kind,
                   self.fingerprint, e.strerror or e)
        return der

    def _cached(self) -> bytes | None:
        cache = self.cache
        if cache is None:
            _t(17, "no cached OCSP response found (TLSStaplingCache not configured)")
            return None
        try:
            der, age = cache.get(self.fingerprint)
        except OSError as e:
            _t(17, "no cached OCSP response found in '%s' cache for fingerprint '%s': %s", cache.kind,
               self.fingerprint, e.strerror or e)
            return None
        _t(9, "found cached OCSP response for fingerprint '%s': %d %s old", self.fingerprint, age,
           "sec" if age == 1 else "secs")
        if self._usable(der, age):
            return der
        try:
            cache.delete(self.fingerprint)
        except OSError as e:
            _t(3, "error deleting OCSP response from '%s' cache for fingerprint '%s': %s", cache.kind,
               self.fingerprint, e.strerror or e)
        return None

    def _usable(self, der: bytes, age: int) -> bool:
        try:
            found = ocsp.inspect(der)
        except ocsp.OcspError as e:
            _t(3, "error reading cached OCSP response: %s", e)
            return False
        if found.response_status != 0:
            if age > FAILED_MAX_AGE:
                _t(8, "cached %s OCSP response is stale", found.response_status_text)
                return False
            return True
        if not found.valid:
            _t(9, "cached OCSP response has EXPIRED")
            return False
        if found.next_update is None and age > GOOD_MAX_AGE:
            _t(9, "cached OCSP response is stale")
            return False
        return True

    def _fetch(self) -> bytes | None:
        if self.url is None:
            for level in (8, 5):            # ProFTPD says it twice
                _t(level, "no OCSP responder URL found in certificate (fingerprint '%s')", self.fingerprint)
            return None
        if self.configured_url:
            _t(8, "using configured OCSP responder URL '%s'", self.url)
        else:
            _t(8, "found OCSP responder URL '%s' in certificate (fingerprint '%s')", self.url, self.fingerprint)
        if self.issuer is None:
            _t(3, "unable to find issuer of server certificate (fingerprint '%s'): no OCSP request made",
               self.fingerprint)
            return None
        try:
            host, port, path, tls = ocsp.parse_url(self.url)
            _t(9, "parsed OCSP URL '%s' to get host '%s', port '%s', URI '%s'%s", self.url, host, port, path,
               ", using TLS" if tls else "")
            query = ocsp.Query(self.cert, self.issuer, self.nonce)
            try:
                der = ocsp.post(self.url, query.der, self.timeout)
                answer = query.check(der, self.trusted, verify=self.verify, nonce=self.nonce,
                                     warn=lambda message: _t(4, "%s", message))
            finally:
                query.close()
        except ocsp.OcspError as e:
            _t(e.level, "%s", e)
            return None
        _t(8, "found certificate status '%s' in OCSP response", answer.status_text)
        return answer.der


# -- the master: one Stapler per server with TLSStapling on --------------------------------------------------------
def stapler(server, main, native, certificates: list[str]) -> Stapler | None:
    """The server's Stapler set on its context's status callback (None: TLSStapling off); `main`: the server
    config (TLSStaplingCache). Raises ConfigError for what cannot work (no OpenSSL underneath, no certificate)."""
    if not server.get("TLSStapling"):
        return None
    where = server.context().param("TLSStapling")
    where = where.where if where is not None else server.section.where
    if native is None:
        raise ConfigError("TLSStapling: OCSP stapling needs OpenSSL reachable from this Python's ssl module, "
                          "which it is not", where)
    chain = []
    for pem in certificates:
        chain += x509.pem_certificates(pem.encode())
    for name in ("TLSCertificateChainFile", "TLSCACertificateFile"):
        path = server.get(name)
        if path:
            try:
                with open(path, "rb") as f:
                    chain += x509.pem_certificates(f.read())
            except (OSError, x509.BadCertificate):
                pass                    # already a FILE:LINE error of tls_contexts when unusable
    if not chain:
        raise ConfigError("TLSStapling: no server certificate to staple a response for", where)
    cert = chain[0]
    issuer = ocsp.issuer_of(cert, chain[1:])
    configured = server.get("TLSStaplingResponder")
    urls = ocsp.responders(cert)
    options = server.get("TLSStaplingOptions") or frozenset()
    timeout = server.get("TLSStaplingTimeout")
    st = Stapler(cert, issuer, ([issuer] if issuer else []) + chain[1:], configured or (urls[0] if urls else None),
                 bool(configured), DEFAULT_TIMEOUT if timeout is None else timeout, "NoNonce" not in options,
                 "NoVerify" not in options, "NoFakeTryLater" not in options, _cache(main))
    native.set_status_callback(st.respond, lambda e: log.warning("TLS: OCSP stapling failed: %s", e))
    return st


def _cache(server) -> "Cache | None":
    from .tls_ocspcache import make
    return make(server)
