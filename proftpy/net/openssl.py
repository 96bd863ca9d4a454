"""The OpenSSL settings of a server context that Python's ssl module does not offer, set with the library's own
calls on the context's SSL_CTX (ctypes, through the _ssl extension's own libssl, so it is the very library and
context Python uses):

- TLSv1.3 cipher suites (`SSL_CTX_set_ciphersuites`; `set_ciphers` covers TLSv1.2 and older only);
- the session cache: its lifetime and mode (`TLSSessionCache internal: N`, `off`, and no storing of the sessions
  that data connections negotiate, so only the control connection's session can ever be resumed);
- session ticket keys of the process's own (a session child renews them at connect);
- read-ahead with a large read buffer for the connections made from now on (uploads: many records per recv(2)
  instead of two system calls for each 16 KiB record);
- whether a connection's client supports secure renegotiation (RFC 5746; TLSLog says so, as ProFTPD's does);
- several ECDH curves at once (`set_ecdh_curve` takes one), the client-certificate verify depth;
- DH parameters chosen by OpenSSL (`SSL_CTX_set_dh_auto`) for DHE suites when no TLSDHParamFile gives them;
- an external session cache (`TLSSessionCache shm:|redis:|memcache:`): OpenSSL's new/get/remove callbacks
  (`SessionStore`), with sessions in and out as DER (i2d/d2i_SSL_SESSION);
- the certificates that client verification refuses (depth, subject, issuer, OpenSSL's reason), for TLSLog, through
  a verify callback that keeps OpenSSL's verdict;
- OCSP stapling (`TLSStapling on`): the status callback (SSL_CTX_set_tlsext_status_cb) and the response it hands
  OpenSSL for one connection (SSL_set_tlsext_status_ocsp_resp);
- OpenSSL's text of a failed handshake's error (`error:0A00010B:SSL routines::wrong version number`, TLSLog's line
  after `protocol error:`): Python's ssl empties the error queue before it raises, and its SSLError keeps only the
  library's and the reason's names, so `error_text` finds the packed code again among the library's reason strings.

The SSL_CTX pointer is the first field after the object header of CPython's PySSLContext. `Native.of` checks it
before any use: the options OpenSSL reports through it must be the ones Python reports, else `Unsupported` is
raised and nothing is written (the directives that need it then say so). A connection's SSL pointer (the second
field of CPython's _ssl._SSLSocket) is only read, and only once OpenSSL confirms it belongs to this SSL_CTX."""

from __future__ import annotations

import ctypes
import ssl
from typing import Any, Callable

SESS_CACHE_OFF = 0x0000
SESS_CACHE_SERVER = 0x0002
SESS_CACHE_NO_INTERNAL_STORE = 0x0200
_SET_SESS_CACHE_MODE, _GET_SESS_CACHE_MODE, _SET_GROUPS_LIST, _SET_TICKET_KEYS = 44, 45, 92, 59
_GET_READ_AHEAD, _SET_READ_AHEAD = 40, 41
_GET_RI_SUPPORT = 76                # SSL_get_secure_renegotiation_support
_SET_DH_AUTO = 118                  # SSL_CTRL_SET_DH_AUTO
_SET_STATUS_CB, _SET_STATUS_RESP = 63, 71   # SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB, _REQ_OCSP_RESP
STATUS_OK, STATUS_NOACK = 0, 3      # SSL_TLSEXT_ERR_OK (a response is sent), SSL_TLSEXT_ERR_NOACK (none)
TICKET_KEYS_SIZE = 80            # key name, HMAC secret, AES key
XN_FLAG_ONELINE = 0x82031F       # X509_NAME_print_ex: `C = DE, CN = alice` (RFC 2253 escapes, quoted)
_BIO_CTRL_PENDING = 10
_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
_VERIFY_MODE = {ssl.CERT_NONE: 0x00, ssl.CERT_OPTIONAL: 0x01, ssl.CERT_REQUIRED: 0x03}   # SSL_VERIFY_PEER|FAIL_IF_NO..


class Unsupported(RuntimeError):
    """This Python's ssl module cannot be reached underneath."""


def _library() -> ctypes.CDLL:
    import _ssl
    lib = ctypes.CDLL(_ssl.__file__)
    lib.SSL_CTX_get_options.restype = ctypes.c_uint64
    lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_set_timeout.restype = ctypes.c_long
    lib.SSL_CTX_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_long]
    lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
    lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.SSL_CTX_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.SSL_CTX_set_default_read_buffer_len.restype = None
    lib.SSL_CTX_set_default_read_buffer_len.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.SSL_CTX_set_verify_depth.restype = None
    lib.SSL_CTX_set_verify_depth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
    lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
    lib.SSL_version.restype = ctypes.c_int
    lib.SSL_version.argtypes = [ctypes.c_void_p]
    lib.SSL_set_verify.restype = None
    lib.SSL_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.SSL_CTX_get_verify_depth.restype = ctypes.c_int
    lib.SSL_CTX_get_verify_depth.argtypes = [ctypes.c_void_p]
    lib.SSL_set_verify_depth.restype = None
    lib.SSL_set_verify_depth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.SSL_ctrl.restype = ctypes.c_long
    lib.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.ERR_clear_error.restype = None
    lib.ERR_reason_error_string.restype = ctypes.c_char_p
    lib.ERR_reason_error_string.argtypes = [ctypes.c_ulong]
    lib.ERR_error_string_n.restype = None
    lib.ERR_error_string_n.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]
    lib.SSL_CTX_set_session_id_context.restype = ctypes.c_int
    lib.SSL_CTX_set_session_id_context.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint]
    lib.SSL_set_session_id_context.restype = ctypes.c_int
    lib.SSL_set_session_id_context.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint]
    for name, cb in (("SSL_CTX_sess_set_new_cb", NEW_CB), ("SSL_CTX_sess_set_get_cb", GET_CB),
                     ("SSL_CTX_sess_set_remove_cb", REMOVE_CB)):
        getattr(lib, name).restype = None
        getattr(lib, name).argtypes = [ctypes.c_void_p, cb]
    lib.SSL_CTX_callback_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_callback_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, STATUS_CB]
    lib.CRYPTO_malloc.restype = ctypes.c_void_p
    lib.CRYPTO_malloc.argtypes = [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int]
    lib.SSL_CTX_set_verify.restype = None
    lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
    lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    for name in ("X509_STORE_CTX_get_error", "X509_STORE_CTX_get_error_depth"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    for name in ("X509_STORE_CTX_get_current_cert", "X509_get_subject_name", "X509_get_issuer_name", "BIO_new"):
        getattr(lib, name).restype = ctypes.c_void_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.BIO_s_mem.restype = ctypes.c_void_p
    lib.BIO_s_mem.argtypes = []
    lib.BIO_ctrl.restype = ctypes.c_long
    lib.BIO_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.BIO_read.restype = ctypes.c_int
    lib.BIO_read.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.BIO_free.restype = ctypes.c_int
    lib.BIO_free.argtypes = [ctypes.c_void_p]
    lib.X509_NAME_print_ex.restype = ctypes.c_int
    lib.X509_NAME_print_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_ulong]
    lib.X509_verify_cert_error_string.restype = ctypes.c_char_p
    lib.X509_verify_cert_error_string.argtypes = [ctypes.c_long]
    lib.X509_PURPOSE_get_count.restype = ctypes.c_int
    lib.X509_PURPOSE_get_count.argtypes = []
    lib.X509_PURPOSE_get0.restype = ctypes.c_void_p
    lib.X509_PURPOSE_get0.argtypes = [ctypes.c_int]
    lib.X509_PURPOSE_get0_name.restype = ctypes.c_char_p
    lib.X509_PURPOSE_get0_name.argtypes = [ctypes.c_void_p]
    lib.SSL_session_reused.restype = ctypes.c_int
    lib.SSL_session_reused.argtypes = [ctypes.c_void_p]
    lib.i2d_SSL_SESSION.restype = ctypes.c_int
    lib.i2d_SSL_SESSION.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.d2i_SSL_SESSION.restype = ctypes.c_void_p
    lib.d2i_SSL_SESSION.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_long]
    lib.SSL_SESSION_get_id.restype = ctypes.c_void_p
    lib.SSL_SESSION_get_id.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)]
    lib.SSL_SESSION_get_time.restype = ctypes.c_long
    lib.SSL_SESSION_get_time.argtypes = [ctypes.c_void_p]
    lib.SSL_SESSION_get_timeout.restype = ctypes.c_long
    lib.SSL_SESSION_get_timeout.argtypes = [ctypes.c_void_p]
    return lib


# OpenSSL's session cache callbacks: new (SSL *, SSL_SESSION *) -> 0 (we keep no reference), get (SSL *, id,
# id length, int *copy) -> SSL_SESSION * or NULL, remove (SSL_CTX *, SSL_SESSION *).
NEW_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
GET_CB = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int,
                          ctypes.POINTER(ctypes.c_int))
REMOVE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
# the status callback (SSL *, void *arg) -> SSL_TLSEXT_ERR_*
STATUS_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
# the verify callback (preverify_ok, X509_STORE_CTX *) -> ok
VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


class VerifyFailure:
    """A certificate the verification refused: where in the chain, why (OpenSSL's code and words), whose."""

    def __init__(self, lib: ctypes.CDLL, store: int):
        cert = lib.X509_STORE_CTX_get_current_cert(store)
        self.depth = lib.X509_STORE_CTX_get_error_depth(store)
        self.error = lib.X509_STORE_CTX_get_error(store)
        self.message = (lib.X509_verify_cert_error_string(self.error) or b"").decode(errors="replace")
        self.subject = name_text(lib, lib.X509_get_subject_name(cert)) if cert else ""
        self.issuer = name_text(lib, lib.X509_get_issuer_name(cert)) if cert else ""
        self.purposes = [(lib.X509_PURPOSE_get0_name(lib.X509_PURPOSE_get0(i)) or b"").decode(errors="replace")
                         for i in range(lib.X509_PURPOSE_get_count())]


def name_text(lib: ctypes.CDLL, name: int) -> str:
    """An X509_NAME in OpenSSL's one-line form (X509_NAME_print_ex, XN_FLAG_ONELINE)."""
    bio = lib.BIO_new(lib.BIO_s_mem())
    if not bio:
        return ""
    try:
        if lib.X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE) < 0:
            return ""
        size = lib.BIO_ctrl(bio, _BIO_CTRL_PENDING, 0, None)
        buf = ctypes.create_string_buffer(max(size, 1))
        got = lib.BIO_read(bio, buf, size)
        return buf.raw[:max(got, 0)].decode(errors="replace")
    finally:
        lib.BIO_free(bio)


_lib: ctypes.CDLL | None = None


class Native:
    """One SSLContext's SSL_CTX, checked."""

    on_verify_failure: "Callable[[VerifyFailure], None] | None" = None    # see set_verify_callback

    def __init__(self, ctx: ssl.SSLContext, ptr: int, lib: ctypes.CDLL):
        self.ctx = ctx              # kept alive as long as the pointer is used
        self.ptr = ptr
        self.lib = lib

    @classmethod
    def of(cls, ctx: ssl.SSLContext) -> "Native":
        global _lib
        try:
            if _lib is None:
                _lib = _library()
            ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        except (OSError, AttributeError, ImportError) as e:
            raise Unsupported(f"OpenSSL is not reachable from this Python ({e})") from None
        if not ptr or _lib.SSL_CTX_get_options(ptr) != ctx.options:
            raise Unsupported("this Python's SSLContext layout is not the one expected")
        return cls(ctx, ptr, _lib)

    def _failed(self, what: str) -> ValueError:
        self.lib.ERR_clear_error()
        return ValueError(what)

    def set_ciphersuites(self, suites: str) -> None:
        """TLSv1.3 cipher suites (`TLS_AES_256_GCM_SHA384:...`); ValueError for a list OpenSSL refuses."""
        if self.lib.SSL_CTX_set_ciphersuites(self.ptr, suites.encode()) != 1:
            raise self._failed(f"no usable TLSv1.3 cipher suite in '{suites}'")

    def set_session_timeout(self, seconds: int) -> None:
        self.lib.SSL_CTX_set_timeout(self.ptr, seconds)

    def cache_mode(self) -> int:
        return self.lib.SSL_CTX_ctrl(self.ptr, _GET_SESS_CACHE_MODE, 0, None)

    def set_cache_mode(self, mode: int) -> int:
        """Set the session cache mode; returns the one before."""
        return self.lib.SSL_CTX_ctrl(self.ptr, _SET_SESS_CACHE_MODE, mode, None)

    def set_groups(self, curves: str) -> None:
        """ECDH curves (groups), colon-separated; ValueError when OpenSSL knows none of them."""
        if self.lib.SSL_CTX_ctrl(self.ptr, _SET_GROUPS_LIST, 0, ctypes.c_char_p(curves.encode())) != 1:
            raise self._failed(f"unknown curve in '{curves}'")

    def set_ticket_keys(self, keys: bytes) -> None:
        """Encrypt (and accept) session tickets with these keys from now on; tickets made with others no longer
        resume."""
        if len(keys) != TICKET_KEYS_SIZE:
            raise ValueError(f"ticket keys are {TICKET_KEYS_SIZE} bytes")
        buf = ctypes.create_string_buffer(keys, len(keys))
        if self.lib.SSL_CTX_ctrl(self.ptr, _SET_TICKET_KEYS, len(keys), buf) != 1:
            raise self._failed("OpenSSL refused the ticket keys")

    def set_dh_auto(self) -> None:
        """DHE suites get DH parameters sized by OpenSSL (RFC 3526 groups: 2048 bits for RSA-2048 and PSK suites
        of 128-bit strength, 3072 for RSA-3072 or 256-bit PSK suites, 4096 for RSA-4096), where Python's ssl
        leaves a context without any, so no DHE suite can be chosen."""
        self.lib.SSL_CTX_ctrl(self.ptr, _SET_DH_AUTO, 1, None)

    def read_ahead(self) -> bool:
        return bool(self.lib.SSL_CTX_ctrl(self.ptr, _GET_READ_AHEAD, 0, None))

    def set_read_ahead(self, on: bool, buffer: int = 0) -> None:
        """Connections made from now on read ahead (as much as the socket has, into a `buffer`-byte buffer; 0:
        OpenSSL's default of one record). Not for a control connection: after CCC the client's next command
        comes in the clear, and read-ahead would take it into the TLS layer."""
        self.lib.SSL_CTX_ctrl(self.ptr, _SET_READ_AHEAD, 1 if on else 0, None)
        self.lib.SSL_CTX_set_default_read_buffer_len(self.ptr, buffer)

    def secure_renegotiation(self, tls: ssl.SSLSocket) -> bool | None:
        """Whether the client of `tls` (a connection made from this context) announced secure renegotiation;
        None when its SSL object cannot be reached (the same check as for the context: the SSL is the one whose
        SSL_CTX is ours)."""
        ssl_ptr = self._ssl(tls)
        return bool(self.lib.SSL_ctrl(ssl_ptr, _GET_RI_SUPPORT, 0, None)) if ssl_ptr else None

    def connection_version(self, tls: ssl.SSLSocket) -> str | None:
        """The protocol version a connection made from this context is negotiating, already known inside its
        handshake's callbacks, where Python's `version()` still says None (`TLSv1.2`...; None when unknown)."""
        ssl_ptr = self._ssl(tls)
        return _VERSIONS.get(self.lib.SSL_version(ssl_ptr)) if ssl_ptr else None

    def adopt_verify(self, tls: ssl.SSLSocket) -> bool:
        """Give a connection just moved to this context (`SSLSocket.context = ...` in an SNI callback) this
        context's client-certificate settings: SSL_set_SSL_CTX moves the certificate and the CA store, not the
        verify mode and depth. False when the connection cannot be reached."""
        ssl_ptr = self._ssl(tls)
        if not ssl_ptr:
            return False
        callback = getattr(self, "_verify_callback", None)
        self.lib.SSL_set_verify(ssl_ptr, _VERIFY_MODE[self.ctx.verify_mode],
                                ctypes.cast(callback, ctypes.c_void_p) if callback is not None else None)
        self.lib.SSL_set_verify_depth(ssl_ptr, self.lib.SSL_CTX_get_verify_depth(self.ptr))
        return True

    def _ssl(self, tls: ssl.SSLSocket) -> int | None:
        """The SSL pointer of a connection made from this context (None when it cannot be reached)."""
        obj = getattr(tls, "_sslobj", None)
        if obj is None:
            return None
        ssl_ptr = ctypes.c_void_p.from_address(id(obj) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)).value
        if not ssl_ptr or self.lib.SSL_get_SSL_CTX(ssl_ptr) != self.ptr:
            return None
        return ssl_ptr

    def set_connection_session_id_context(self, tls: ssl.SSLSocket, context: bytes) -> bool:
        """The session id context of one connection, before its handshake: CPython gives every connection
        `Python`, whatever the context says, so the server's own value must be set on each. False when the
        connection cannot be reached."""
        ssl_ptr = self._ssl(tls)
        return bool(ssl_ptr) and self.lib.SSL_set_session_id_context(ssl_ptr, context, len(context)) == 1

    def set_verify_depth(self, depth: int) -> None:
        self.lib.SSL_CTX_set_verify_depth(self.ptr, depth)

    def set_session_store(self, store: "SessionStore") -> None:
        """OpenSSL asks `store` for the sessions its own cache does not have, and gives it each new one. The
        callbacks run inside a handshake (Python's ssl has let go of the GIL; ctypes takes it back) and are kept
        alive by `store`, which lives as long as the context."""
        callbacks = store.callbacks(self.lib)
        self.lib.SSL_CTX_sess_set_new_cb(self.ptr, callbacks[0])
        self.lib.SSL_CTX_sess_set_get_cb(self.ptr, callbacks[1])
        self.lib.SSL_CTX_sess_set_remove_cb(self.ptr, callbacks[2])

    def set_verify_callback(self, failed: Callable[[BaseException], None]) -> None:
        """Client verification calls `self.on_verify_failure(VerifyFailure)` (when set: a session sets it, to log)
        for each certificate it refuses; OpenSSL's verdict stands. Python's ssl keeps this callback when the verify
        mode changes. An exception goes to `failed`."""
        lib = self.lib

        def callback(ok: int, store: int) -> int:
            if not ok and self.on_verify_failure is not None:
                try:
                    self.on_verify_failure(VerifyFailure(lib, store))
                except Exception as e:          # noqa: BLE001 -- inside OpenSSL: reported, the verdict stands
                    failed(e)
            return ok
        self._verify_callback = VERIFY_CB(callback)             # alive as long as this Native (the ServerTls's)
        lib.SSL_CTX_set_verify(self.ptr, lib.SSL_CTX_get_verify_mode(self.ptr),
                               ctypes.cast(self._verify_callback, ctypes.c_void_p))

    def set_status_callback(self, respond: Callable[[bool], bytes | None], failed: Callable[[BaseException], None]
                            ) -> None:
        """OCSP stapling: in each handshake whose client asks for the certificate's status (status_request),
        `respond(resumed)` gives the DER response to staple, or None for none. It runs inside the handshake
        (ctypes takes the GIL back); an exception goes to `failed` and nothing is stapled."""
        lib = self.lib

        def callback(ssl_ptr: int, _arg: int) -> int:
            try:
                der = respond(bool(lib.SSL_session_reused(ssl_ptr)))
                if not der:
                    return STATUS_NOACK
                buf = lib.CRYPTO_malloc(len(der), b"proftpy-ocsp", 0)     # OpenSSL frees it with the SSL
                if not buf:
                    return STATUS_NOACK
                ctypes.memmove(buf, der, len(der))
                lib.SSL_ctrl(ssl_ptr, _SET_STATUS_RESP, len(der), buf)
                return STATUS_OK
            except Exception as e:          # noqa: BLE001 -- inside OpenSSL: reported, the handshake goes on
                failed(e)
                return STATUS_NOACK
        self._status_callback = STATUS_CB(callback)            # alive as long as this Native (the ServerTls's)
        lib.SSL_CTX_callback_ctrl(self.ptr, _SET_STATUS_CB, self._status_callback)


class SessionStore:
    """Where sessions go beyond this process (a subclass says how: `add`, `get`, `delete`, each given the session
    ID as bytes and never raising). `paused` (data connections) stops adding and looking up; a session OpenSSL
    removes is still deleted. An exception inside a callback would only be printed by ctypes, so each one is
    caught and reported through `failed`."""

    paused = False

    def add(self, sid: bytes, der: bytes, expires: int) -> None:
        raise NotImplementedError

    def get(self, sid: bytes) -> bytes | None:
        raise NotImplementedError

    def delete(self, sid: bytes) -> None:
        raise NotImplementedError

    def failed(self, what: str, e: BaseException) -> None:
        raise NotImplementedError

    def callbacks(self, lib: ctypes.CDLL) -> tuple:
        found = getattr(self, "_callbacks", None)
        if found is None:
            found = self._callbacks = (NEW_CB(lambda ssl_, sess: self._new(lib, sess)),
                                       GET_CB(lambda ssl_, data, n, copy: self._get(lib, data, n, copy)),
                                       REMOVE_CB(lambda ctx, sess: self._remove(lib, sess)))
        return found

    def _new(self, lib: ctypes.CDLL, sess: int) -> int:
        if self.paused:
            return 0
        try:
            der = session_der(lib, sess)
            expires = lib.SSL_SESSION_get_time(sess) + lib.SSL_SESSION_get_timeout(sess)
            self.add(session_id(lib, sess), der, expires)
        except Exception as e:          # noqa: BLE001 -- inside OpenSSL: reported, the handshake goes on
            self.failed("adding session to", e)
        return 0                        # OpenSSL keeps its reference

    def _get(self, lib: ctypes.CDLL, data, length: int, copy) -> int | None:
        copy[0] = 0                     # the reference we return is OpenSSL's
        if self.paused or length <= 0:
            return None
        try:
            der = self.get(ctypes.string_at(data, length))
            return session_of(lib, der) if der is not None else None
        except Exception as e:          # noqa: BLE001 -- inside OpenSSL: reported, a full handshake follows
            self.failed("getting session from", e)
            return None

    def _remove(self, lib: ctypes.CDLL, sess: int) -> None:
        try:
            self.delete(session_id(lib, sess))
        except Exception as e:          # noqa: BLE001 -- inside OpenSSL: reported
            self.failed("removing session from", e)


def session_id(lib: ctypes.CDLL, sess: int) -> bytes:
    n = ctypes.c_uint(0)
    ptr = lib.SSL_SESSION_get_id(sess, ctypes.byref(n))
    return ctypes.string_at(ptr, n.value) if ptr and n.value else b""


def session_der(lib: ctypes.CDLL, sess: int) -> bytes:
    """The session serialized (i2d_SSL_SESSION)."""
    size = lib.i2d_SSL_SESSION(sess, None)
    if size <= 0:
        raise ValueError("i2d_SSL_SESSION failed")
    buf = ctypes.create_string_buffer(size)
    ptr = ctypes.c_void_p(ctypes.addressof(buf))
    if lib.i2d_SSL_SESSION(sess, ctypes.byref(ptr)) != size:
        raise ValueError("i2d_SSL_SESSION failed")
    return buf.raw


def from_der(decode: Any, der: bytes) -> int:
    """An OpenSSL object from its DER form through one of its d2i_* functions (the caller frees it); 0 when it
    cannot be read, OpenSSL's error queue left to the caller."""
    buf = ctypes.create_string_buffer(der, len(der))
    ptr = ctypes.c_void_p(ctypes.addressof(buf))
    return decode(None, ctypes.byref(ptr), len(der)) or 0


def session_of(lib: ctypes.CDLL, der: bytes) -> int | None:
    """A new SSL_SESSION (one reference, the caller's) from its DER form; None when OpenSSL cannot read it."""
    sess = from_der(lib.d2i_SSL_SESSION, der)
    if not sess:
        lib.ERR_clear_error()
        raise ValueError("cached session data cannot be read (d2i_SSL_SESSION)")
    return sess


_LIBRARY_CODES = {"SSL": 20}                # ERR_LIB_SSL: the handshake's errors
_ALERT_OFFSET = 1000                        # SSL_AD_REASON_OFFSET: reasons for the alerts a peer sends
_reasons: dict[str, int] = {}               # "SSL:WRONG_VERSION_NUMBER" -> packed code, filled once


def error_text(library: str | None, reason: str | None) -> str | None:
    """ERR_error_string_n's text for an ssl.SSLError's `library` and `reason` names, with the ` [SSL alert number
    N]` OpenSSL adds for an alert the peer sent; None when the code cannot be found again (another library, a
    name that is not its reason string's, OpenSSL out of reach)."""
    number = _LIBRARY_CODES.get(library or "")
    if number is None or not reason:
        return None
    try:
        lib = _errors_library()
    except (OSError, AttributeError, ImportError):
        return None
    if not _reasons:
        for r in range(1, 1300):
            code = (number << 23) | r
            text = lib.ERR_reason_error_string(code)
            if text:
                _reasons.setdefault(f"{library}:" + text.decode(errors="replace").upper().replace(" ", "_"), code)
    code = _reasons.get(f"{library}:{reason}")
    if code is None:
        return None
    buf = ctypes.create_string_buffer(256)
    lib.ERR_error_string_n(code, buf, len(buf))
    r = code & 0x7FFFFF
    alert = f" [SSL alert number {r - _ALERT_OFFSET}]" if _ALERT_OFFSET <= r < _ALERT_OFFSET + 256 else ""
    return buf.value.decode(errors="replace") + alert


def _errors_library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _library()
    return _lib
