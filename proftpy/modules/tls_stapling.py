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

import base64
import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field

from .. import trace
from ..config.errors import ConfigError
from ..net import ocsp, x509

log = logging.getLogger("proftpy")

DEFAULT_TIMEOUT = 10                # TLSStaplingTimeout's default (seconds)
GOOD_MAX_AGE = 3600                 # a cached successful response without nextUpdate is asked again after this
FAILED_MAX_AGE = 300                # a cached unsuccessful one (a fake tryLater) after this (ProFTPD 1.3.8's)


def _t(level: int, text: str, *args: object) -> None:
    if trace.on:
        trace.msg("tls", level, text, *args)


class FsCache:
    """`TLSStaplingCache fs:/path=DIR` (mod_tls_fscache): one file per certificate, DIR/<fingerprint>.der, the
    response as DER, its age the file's modification time. Written by the session with the privileges it has in
    that handshake, through a temporary file renamed into place."""

    kind = "fs"

    def __init__(self, path: str):
        self.path = path

    def _file(self, fingerprint: str) -> str:
        return os.path.join(self.path, f"{fingerprint}.der")

    def get(self, fingerprint: str) -> tuple[bytes, int]:
        """(DER, age in seconds); OSError when there is none."""
        name = self._file(fingerprint)
        with open(name, "rb") as f:
            st = os.fstat(f.fileno())
            return f.read(ocsp.MAX_RESPONSE), max(0, int(time.time() - st.st_mtime))

    def add(self, fingerprint: str, der: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path)
        try:
            os.write(fd, der)
            os.close(fd)
            fd = -1
            os.rename(tmp, self._file(fingerprint))
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def delete(self, fingerprint: str) -> None:
        os.unlink(self._file(fingerprint))

    def names(self) -> list[str]:
        """The fingerprints of the responses held (OSError when the directory cannot be read)."""
        return sorted(n[:-4] for n in os.listdir(self.path) if n.endswith(".der"))

    def clear(self) -> int:
        """Delete every response; how many were deleted."""
        n = 0
        for fingerprint in self.names():
            try:
                self.delete(fingerprint)
                n += 1
            except OSError:
                pass                # gone meanwhile (another process cleared it)
        return n

    def check(self) -> str | None:
        """Why the cache cannot be used (None: it can)."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            return f"cannot use '{self.path}': {e.strerror}"
        if not stat.S_ISDIR(st.st_mode):
            return f"'{self.path}' is not a directory"
        if st.st_mode & stat.S_IWOTH:
            return f"'{self.path}' is world-writable (ProFTPD's sessions then ignore the cache)"
        return None


class RedisCache:
    """`TLSStaplingCache redis:` (mod_tls_redis, over mod_redis's RedisServer), with ProFTPD's keys and values:
    b"mod_tls_redis.ocsp." + {"fingerprint":"<hex>"} + b"\\0" -> {"expires":<time stored>,"response":"<base64
    DER>","response_len":N} + b"\\0", no TTL (the age rules decide); its counters cache_stores and cache_hits
    under the same prefix. A Redis that is down costs one bounded call and a log line per process (the link's)."""

    kind = "redis"
    PREFIX = b"mod_tls_redis.ocsp."

    def __init__(self, settings):
        from ..bancache import ProcessDown
        from .tls_cache import StatsRedisLink
        self.link = StatsRedisLink(settings)
        self.link.state = ProcessDown()
        self.link.keeping = "OCSP responses are asked of the responder until it is back"
        self.link.sharing = "OCSP responses are shared again"

    def _key(self, fingerprint: str) -> bytes:
        from ..bancache import json_text
        return self.PREFIX + json_text([("fingerprint", fingerprint)]).encode() + b"\0"

    def _call(self, op: str, *args):
        from ..bancache import CacheDown
        try:
            return getattr(self.link, op)(*args)
        except CacheDown as e:
            raise OSError(errno.EIO, str(e)) from None

    def get(self, fingerprint: str) -> tuple[bytes, int]:
        raw = self._call("get", self._key(fingerprint))
        if raw is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        try:
            value = json.loads(raw.rstrip(b"\0"))
            der = base64.b64decode(value["response"], validate=True)
            stored = int(value["expires"])
        except (ValueError, KeyError, TypeError):
            raise OSError(errno.EINVAL, "badly formatted cache entry") from None
        self._count("cache_hits")
        return der, max(0, int(time.time()) - stored)

    def add(self, fingerprint: str, der: bytes) -> None:
        from ..bancache import json_text
        value = json_text([("expires", int(time.time())), ("response", base64.b64encode(der).decode()),
                           ("response_len", len(der))]).encode() + b"\0"
        self._call("put", self._key(fingerprint), value, 0)
        self._count("cache_stores")

    def delete(self, fingerprint: str) -> None:
        self._call("delete", self._key(fingerprint))

    def _count(self, name: str) -> None:
        try:
            self._call("count", self.PREFIX + name.encode(), 0)
        except OSError:
            pass                    # a statistic lost, as ProFTPD loses it (the link has logged the failure)

    def check(self) -> str | None:
        return None


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
    cache: FsCache | RedisCache | None = None
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
            host, port, path = ocsp.parse_url(self.url)
            _t(9, "parsed OCSP URL '%s' to get host '%s', port '%s', URI '%s'", self.url, host, port, path)
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


def _cache(server) -> FsCache | RedisCache | None:
    spec = server.get("TLSStaplingCache")
    if spec is None:
        return None
    p = server.context().param("TLSStaplingCache")
    where = p.where if p is not None else server.section.where
    if spec.kind == "redis":
        from .redis import settings_for
        settings = settings_for(server)
        if settings is None:
            raise ConfigError("TLSStaplingCache: redis: needs RedisEngine on and a RedisServer (or RedisSentinel) in "
                              "the server config", where)
        return RedisCache(settings)
    cache = FsCache(spec.path)
    problem = cache.check()
    if problem is not None:
        raise ConfigError(f"TLSStaplingCache: {problem}", where)
    return cache
