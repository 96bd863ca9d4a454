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
- several ECDH curves at once (`set_ecdh_curve` takes one), the client-certificate verify depth.

The SSL_CTX pointer is the first field after the object header of CPython's PySSLContext. `Native.of` checks it
before any use: the options OpenSSL reports through it must be the ones Python reports, else `Unsupported` is
raised and nothing is written (the directives that need it then say so). A connection's SSL pointer (the second
field of CPython's _ssl._SSLSocket) is only read, and only once OpenSSL confirms it belongs to this SSL_CTX."""

from __future__ import annotations

import ctypes
import ssl

SESS_CACHE_OFF = 0x0000
SESS_CACHE_SERVER = 0x0002
SESS_CACHE_NO_INTERNAL_STORE = 0x0200
_SET_SESS_CACHE_MODE, _GET_SESS_CACHE_MODE, _SET_GROUPS_LIST, _SET_TICKET_KEYS = 44, 45, 92, 59
_GET_READ_AHEAD, _SET_READ_AHEAD = 40, 41
_GET_RI_SUPPORT = 76                # SSL_get_secure_renegotiation_support
TICKET_KEYS_SIZE = 80            # key name, HMAC secret, AES key


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
    lib.SSL_ctrl.restype = ctypes.c_long
    lib.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.ERR_clear_error.restype = None
    return lib


_lib: ctypes.CDLL | None = None


class Native:
    """One SSLContext's SSL_CTX, checked."""

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
        obj = getattr(tls, "_sslobj", None)
        if obj is None:
            return None
        ssl_ptr = ctypes.c_void_p.from_address(id(obj) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)).value
        if not ssl_ptr or self.lib.SSL_get_SSL_CTX(ssl_ptr) != self.ptr:
            return None
        return bool(self.lib.SSL_ctrl(ssl_ptr, _GET_RI_SUPPORT, 0, None))

    def set_verify_depth(self, depth: int) -> None:
        self.lib.SSL_CTX_set_verify_depth(self.ptr, depth)
