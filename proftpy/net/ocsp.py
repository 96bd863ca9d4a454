"""OCSP (RFC 6960) for stapling: the request for one certificate, its HTTP POST to a responder within one
deadline, and the checks of the answer (status, nonce, signature, the certificate's status, time validity), all by
libcrypto through ctypes (the library Python's ssl module uses: no new dependency); https:// responders through
Python's ssl. No FTP here: mod_tls's
stapling (modules/tls_stapling.py) decides when to ask and what to log."""

from __future__ import annotations

import calendar
import ctypes
import ipaddress
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass

from .openssl import from_der

# OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL), DER: what ProFTPD staples when it has no answer
TRY_LATER = bytes.fromhex("30030a0103")
MAX_RESPONSE = 1 << 20                  # bytes an answer may have (a responder that never stops is cut here)
VALIDITY_SLACK = 300                    # seconds of clock skew OCSP_check_validity allows (ProFTPD's, OpenSSL's)
GOOD, REVOKED, UNKNOWN = 0, 1, 2        # V_OCSP_CERTSTATUS_*


class OcspError(ValueError):
    """The request could not be made, the responder not reached, or its answer not accepted; `level`: the trace
    level ProFTPD logs it at."""

    def __init__(self, message: str, level: int = 4):
        super().__init__(message)
        self.level = level


class _Tm(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ("sec", "min", "hour", "mday", "mon", "year", "wday", "yday", "isdst")] \
        + [("gmtoff", ctypes.c_long), ("zone", ctypes.c_char_p)]


_P, _I, _L = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
_SIGNATURES = {
    "d2i_X509": (_P, [_P, ctypes.POINTER(_P), _L]), "X509_free": (None, [_P]),
    "OCSP_cert_to_id": (_P, [_P, _P, _P]), "OCSP_CERTID_dup": (_P, [_P]), "OCSP_CERTID_free": (None, [_P]),
    "OCSP_REQUEST_new": (_P, []), "OCSP_REQUEST_free": (None, [_P]), "OCSP_request_add0_id": (_P, [_P, _P]),
    "OCSP_request_add1_nonce": (_I, [_P, _P, _I]), "i2d_OCSP_REQUEST": (_I, [_P, ctypes.POINTER(_P)]),
    "d2i_OCSP_REQUEST": (_P, [_P, ctypes.POINTER(_P), _L]),
    "d2i_OCSP_RESPONSE": (_P, [_P, ctypes.POINTER(_P), _L]), "OCSP_RESPONSE_free": (None, [_P]),
    "OCSP_response_status": (_I, [_P]), "OCSP_response_get1_basic": (_P, [_P]),
    "OCSP_BASICRESP_free": (None, [_P]), "OCSP_check_nonce": (_I, [_P, _P]),
    "OCSP_basic_verify": (_I, [_P, _P, _P, ctypes.c_ulong]),
    "OCSP_resp_find_status": (_I, [_P, _P, ctypes.POINTER(_I), ctypes.POINTER(_I), ctypes.POINTER(_P),
                                   ctypes.POINTER(_P), ctypes.POINTER(_P)]),
    "OCSP_check_validity": (_I, [_P, _P, _L, _L]), "ASN1_TIME_to_tm": (_I, [_P, ctypes.POINTER(_Tm)]),
    "OCSP_response_status_str": (ctypes.c_char_p, [_L]), "OCSP_cert_status_str": (ctypes.c_char_p, [_L]),
    "X509_STORE_new": (_P, []), "X509_STORE_free": (None, [_P]), "X509_STORE_add_cert": (_I, [_P, _P]),
    "OPENSSL_sk_new_null": (_P, []), "OPENSSL_sk_push": (_I, [_P, _P]), "OPENSSL_sk_free": (None, [_P]),
    "X509_get1_ocsp": (_P, [_P]), "X509_email_free": (None, [_P]), "OPENSSL_sk_num": (_I, [_P]),
    "OPENSSL_sk_value": (ctypes.c_char_p, [_P, _I]), "X509_check_issued": (_I, [_P, _P]),
    "OCSP_resp_get0": (_P, [_P, _I]),
    "OCSP_single_get0_status": (_I, [_P, ctypes.POINTER(_I), ctypes.POINTER(_P), ctypes.POINTER(_P),
                                     ctypes.POINTER(_P)]),
    "ERR_clear_error": (None, []), "ERR_get_error": (ctypes.c_ulong, []),
    "ERR_error_string_n": (None, [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]),
}
_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """libcrypto, reached through the _ssl extension (its dependency), typed once."""
    global _lib
    if _lib is None:
        import _ssl
        found = ctypes.CDLL(_ssl.__file__)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(found, name)
            fn.restype, fn.argtypes = restype, argtypes
        _lib = found
    return _lib


def _openssl_error(what: str, level: int = 4) -> OcspError:
    c = lib()
    code = c.ERR_get_error()
    c.ERR_clear_error()
    if not code:
        return OcspError(what, level)
    buf = ctypes.create_string_buffer(256)
    c.ERR_error_string_n(code, buf, len(buf))
    return OcspError(f"{what}: {buf.value.decode('ascii', 'replace')}", level)


def _d2i(decode, der: bytes, what: str) -> int:
    """An OpenSSL object (the caller frees it) from DER; OcspError naming `what` when it cannot be read."""
    obj = from_der(decode, der)
    if not obj:
        raise _openssl_error(f"{what} cannot be read")
    return obj


def _x509(der: bytes) -> int:
    return _d2i(lib().d2i_X509, der, "certificate")


def _response(der: bytes) -> int:
    return _d2i(lib().d2i_OCSP_RESPONSE, der, "OCSP response")


def response_status_text(code: int) -> str:
    return (lib().OCSP_response_status_str(code) or b"(unknown)").decode()


def cert_status_text(code: int) -> str:
    return (lib().OCSP_cert_status_str(code) or b"(unknown)").decode()


def responders(cert: bytes) -> list[str]:
    """The OCSP URLs of the certificate's AuthorityInfoAccess extension, in order."""
    c = lib()
    x = _x509(cert)
    try:
        sk = c.X509_get1_ocsp(x)
        if not sk:
            return []
        try:
            return [c.OPENSSL_sk_value(sk, i).decode("latin-1") for i in range(c.OPENSSL_sk_num(sk))]
        finally:
            c.X509_email_free(sk)
    finally:
        c.X509_free(x)


def issuer_of(cert: bytes, candidates: list[bytes]) -> bytes | None:
    """The first of `candidates` (DER) that issued `cert` (names and key identifiers match: X509_check_issued)."""
    c = lib()
    x = _x509(cert)
    try:
        for der in candidates:
            try:
                i = _x509(der)
            except OcspError:
                continue
            try:
                if c.X509_check_issued(i, x) == 0:
                    return der
            finally:
                c.X509_free(i)
        return None
    finally:
        c.X509_free(x)
        c.ERR_clear_error()


@dataclass(frozen=True)
class Answer:
    """An accepted response: the certificate's status and the response's times (seconds since the epoch)."""

    der: bytes
    status: int                         # GOOD, REVOKED, UNKNOWN
    this_update: int
    next_update: int | None

    @property
    def status_text(self) -> str:
        return cert_status_text(self.status)


class Query:
    """The OCSP request for `cert` (DER) issued by `issuer` (DER), with a nonce unless `nonce` is False. `der` is
    what goes to the responder; `check` reads what comes back."""

    def __init__(self, cert: bytes, issuer: bytes, nonce: bool = True):
        c = lib()
        self._req = self._id = None
        x, i = _x509(cert), _x509(issuer)
        try:
            cid = c.OCSP_cert_to_id(None, x, i)
            if not cid:
                raise _openssl_error("error obtaining cert ID")
            self._id = c.OCSP_CERTID_dup(cid)
            self._req = c.OCSP_REQUEST_new()
            if not self._req or not c.OCSP_request_add0_id(self._req, cid):
                c.OCSP_CERTID_free(cid)
                raise _openssl_error("error adding ID to OCSP request")
            if nonce and c.OCSP_request_add1_nonce(self._req, None, -1) != 1:
                raise _openssl_error("error adding nonce to OCSP request")
            size = c.i2d_OCSP_REQUEST(self._req, None)
            buf = ctypes.create_string_buffer(max(size, 1))
            ptr = _P(ctypes.addressof(buf))
            if size <= 0 or c.i2d_OCSP_REQUEST(self._req, ctypes.byref(ptr)) != size:
                raise _openssl_error("error encoding OCSP request")
            self.der = buf.raw[:size]
        except BaseException:
            self.close()
            raise
        finally:
            c.X509_free(x)
            c.X509_free(i)

    def close(self) -> None:
        if not (self._req or self._id):
            return
        c = lib()
        if self._req:
            c.OCSP_REQUEST_free(self._req)
        if self._id:
            c.OCSP_CERTID_free(self._id)
        self._req = self._id = None

    def __del__(self):
        self.close()

    def check(self, der: bytes, trusted: list[bytes], *, verify: bool = True, nonce: bool = True,
              warn=lambda message: None) -> Answer:
        """Accept the responder's answer: successful, the nonce echoed (a missing one is only `warn`ed, as
        ProFTPD does), signed by a responder `trusted` (issuer, CA certificates) vouches for unless not
        `verify`, this certificate's status in it, within its validity period. Raises OcspError saying why."""
        c = lib()
        resp = _response(der)
        basic = store = None
        try:
            code = c.OCSP_response_status(resp)
            if code != 0:
                raise OcspError(f"OCSP response not successful: {response_status_text(code)} ({code})")
            basic = c.OCSP_response_get1_basic(resp)
            if not basic:
                raise _openssl_error("error getting basic OCSP response")
            if nonce:
                found = c.OCSP_check_nonce(self._req, basic)
                if found == -1:
                    warn("WARNING: OCSP response is missing request nonce")
                elif found <= 0:
                    raise _openssl_error("error verifying OCSP response nonce")
            if verify:
                store = _store(trusted)
                if c.OCSP_basic_verify(basic, None, store, 0) != 1:
                    raise _openssl_error("error verifying basic OCSP response data", 3)
            return self._status(der, basic)
        finally:
            if store:
                c.X509_STORE_free(store)
            if basic:
                c.OCSP_BASICRESP_free(basic)
            c.OCSP_RESPONSE_free(resp)
            c.ERR_clear_error()

    def _status(self, der: bytes, basic: int) -> Answer:
        c = lib()
        status, reason = _I(-1), _I(-1)
        rev, this, nxt = _P(), _P(), _P()
        if c.OCSP_resp_find_status(basic, self._id, ctypes.byref(status), ctypes.byref(reason), ctypes.byref(rev),
                                   ctypes.byref(this), ctypes.byref(nxt)) != 1:
            raise _openssl_error("error locating certificate status in OCSP response")
        if c.OCSP_check_validity(this, nxt, VALIDITY_SLACK, -1) != 1:
            raise _openssl_error("failed time-based validity check of OCSP response")
        return Answer(der, status.value, _epoch(this), _epoch(nxt) if nxt.value else None)


def _store(trusted: list[bytes]) -> int:
    c = lib()
    store = c.X509_STORE_new()
    for der in trusted:
        x = _x509(der)
        c.X509_STORE_add_cert(store, x)        # takes its own reference (a duplicate is ignored)
        c.X509_free(x)
    c.ERR_clear_error()
    return store


def _epoch(asn1_time: _P) -> int:
    tm = _Tm()
    if lib().ASN1_TIME_to_tm(asn1_time, ctypes.byref(tm)) != 1:
        raise _openssl_error("bad time in OCSP response")
    return calendar.timegm((tm.year + 1900, tm.mon + 1, tm.mday, tm.hour, tm.min, tm.sec))


@dataclass(frozen=True)
class Cached:
    """What a stored response says of itself (no signature check: it was checked before it was stored)."""

    response_status: int                # 0: successful; 3: tryLater...
    status: int | None = None           # the first certificate's status (successful responses)
    next_update: int | None = None
    valid: bool = True                  # within thisUpdate/nextUpdate (OCSP_check_validity)

    @property
    def response_status_text(self) -> str:
        return response_status_text(self.response_status)


def inspect(der: bytes) -> Cached:
    """Read a stored response; OcspError when it cannot be read."""
    c = lib()
    resp = _response(der)
    basic = None
    try:
        code = c.OCSP_response_status(resp)
        if code != 0:
            return Cached(code)
        basic = c.OCSP_response_get1_basic(resp)
        single = c.OCSP_resp_get0(basic, 0) if basic else None
        if not single:
            raise _openssl_error("error getting basic OCSP response")
        reason, rev, this, nxt = _I(), _P(), _P(), _P()
        status = c.OCSP_single_get0_status(single, ctypes.byref(reason), ctypes.byref(rev), ctypes.byref(this),
                                           ctypes.byref(nxt))
        valid = c.OCSP_check_validity(this, nxt, VALIDITY_SLACK, -1) == 1
        return Cached(code, status, _epoch(nxt) if nxt.value else None, valid)
    finally:
        if basic:
            c.OCSP_BASICRESP_free(basic)
        c.OCSP_RESPONSE_free(resp)
        c.ERR_clear_error()


# -- the responder -----------------------------------------------------------------------------------------------
def parse_url(url: str) -> tuple[str, int, str, bool]:
    """(host, port, path, TLS) of an http:// or https:// responder URL; OcspError for anything else."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise OcspError(f"unsupported OCSP URL '{url}' (only http:// and https:// responders)")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise OcspError(f"bad port in OCSP URL '{url}'") from None
    path = parts.path or "/"
    return parts.hostname, port, path + (f"?{parts.query}" if parts.query else ""), scheme == "https"


def _tls_client(sock: socket.socket, host: str) -> ssl.SSLSocket:
    """The TLS side of an https:// responder as ProFTPD's mod_tls speaks it: the responder's certificate is not
    verified (ProFTPD's client context verifies nothing; the answer's signature is what is checked), SNI sent
    for a name (ProFTPD sends none: a responder behind a name-based TLS front end needs it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ipaddress.ip_address(host)
        name = None
    except ValueError:
        name = host
    return ctx.wrap_socket(sock, server_hostname=name)


def post(url: str, request: bytes, timeout: float) -> bytes:
    """POST `request` (application/ocsp-request) to the responder (over TLS for https://) and return the response
    body, all within `timeout` seconds (connection, handshake, answer); OcspError when it is not reached, times
    out, or does not answer 200."""
    host, port, path, tls = parse_url(url)
    deadline = time.monotonic() + timeout
    head = (f"POST {path} HTTP/1.0\r\nHost: {host}:{port}\r\nContent-Type: application/ocsp-request\r\n"
            f"Accept: application/ocsp-response\r\nContent-Length: {len(request)}\r\n\r\n").encode()
    try:
        with socket.create_connection((host, port), timeout=max(timeout, 0.001)) as raw:
            sock = raw
            if tls:
                raw.settimeout(max(deadline - time.monotonic(), 0.001))
                sock = _tls_client(raw, host)
            try:
                sock.sendall(head + request)
                data = b""
                while len(data) <= MAX_RESPONSE:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    sock.settimeout(left)
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            finally:
                if sock is not raw:
                    sock.close()
    except TimeoutError:
        raise OcspError(f"timed out talking to OCSP responder '{host}{path}'", 3) from None       # ProFTPD's words
    except ssl.SSLError as e:
        raise OcspError(f"error connecting to OCSP responder {host}:{port}: {e.reason or e}", 3) from None
    except OSError as e:
        raise OcspError(f"error obtaining OCSP response from responder: {e.strerror or e}") from None
    return http_body(data)


def http_body(data: bytes) -> bytes:
    """The body of an HTTP/1.x 200 answer (Content-Length honoured when given); OcspError otherwise."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise OcspError("error obtaining OCSP response from responder: incomplete HTTP answer")
    lines = head.split(b"\r\n")
    words = lines[0].split(None, 2)
    if len(words) < 2 or not words[0].startswith(b"HTTP/") or words[1] != b"200":
        raise OcspError(f"error obtaining OCSP response from responder: "
                        f"{lines[0].decode('latin-1', 'replace')!r}")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            n = int(value.strip())
            if len(body) < n:
                raise OcspError("error obtaining OCSP response from responder: truncated body")
            body = body[:n]
    return body
