"""PKCS#12 files (TLSPKCS12File): the certificate, its private key and any CA certificates in the bundle, turned
into PEM so that Python's ssl module can load them. Python has no PKCS#12 reader and proftpy takes no third-party
crypto package, so OpenSSL's own PKCS12_parse is called through ctypes, on the very library the _ssl extension
uses (imported only when a TLSPKCS12File is configured)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from .openssl import from_der

_BIO_CTRL_INFO = 3              # BIO_get_mem_data


class Pkcs12Error(ValueError):
    """The file is no PKCS#12 bundle, or the password does not open it."""


@dataclass(frozen=True)
class Bundle:
    certificate: bytes          # PEM
    key: bytes                  # PEM, unencrypted: it only ever goes into a memfd of the master's
    chain: tuple[bytes, ...]    # the bundle's other certificates, PEM


_lib: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)        # dlsym() finds libcrypto's symbols through _ssl's dependencies
        vp, pvp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
        for name, res, args in (
                ("d2i_PKCS12", vp, [vp, pvp, ctypes.c_long]),
                ("PKCS12_verify_mac", ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_int]),
                ("PKCS12_parse", ctypes.c_int, [vp, ctypes.c_char_p, pvp, pvp, pvp]),
                ("PKCS12_free", None, [vp]),
                ("BIO_s_mem", vp, []),
                ("BIO_new", vp, [vp]),
                ("BIO_ctrl", ctypes.c_long, [vp, ctypes.c_int, ctypes.c_long, vp]),
                ("BIO_free", ctypes.c_int, [vp]),
                ("PEM_write_bio_X509", ctypes.c_int, [vp, vp]),
                ("PEM_write_bio_PrivateKey", ctypes.c_int, [vp, vp, vp, vp, ctypes.c_int, vp, vp]),
                ("X509_free", None, [vp]),
                ("EVP_PKEY_free", None, [vp]),
                ("OPENSSL_sk_num", ctypes.c_int, [vp]),
                ("OPENSSL_sk_value", vp, [vp, ctypes.c_int]),
                ("OPENSSL_sk_free", None, [vp]),
                ("ERR_clear_error", None, [])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _lib = lib
    return _lib


def needs_password(data: bytes) -> bool:
    """Whether the bundle is protected by a password (its MAC verifies with none, or with the empty one, when
    not: the test ProFTPD makes before it asks for one)."""
    lib = _library()
    p12 = _p12(lib, data)
    try:
        return not (lib.PKCS12_verify_mac(p12, None, 0) == 1 or lib.PKCS12_verify_mac(p12, b"", 0) == 1)
    finally:
        lib.PKCS12_free(p12)
        lib.ERR_clear_error()


def parse(data: bytes, password: bytes | None) -> Bundle:
    """The bundle opened with `password` (None: no password). Raises Pkcs12Error."""
    lib = _library()
    p12 = _p12(lib, data)
    key, cert, ca = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    try:
        if password is None and lib.PKCS12_verify_mac(p12, None, 0) != 1:
            password = b""
        if lib.PKCS12_parse(p12, password, ctypes.byref(key), ctypes.byref(cert), ctypes.byref(ca)) != 1:
            raise Pkcs12Error("wrong password for this PKCS12 file" if password else "PKCS12 file needs a password")
        if not cert.value or not key.value:
            raise Pkcs12Error("no " + ("certificate" if not cert.value else "private key") + " in the PKCS12 file")
        chain = tuple(_pem(lib, lib.PEM_write_bio_X509, lib.OPENSSL_sk_value(ca, i))
                      for i in range(lib.OPENSSL_sk_num(ca))) if ca.value else ()
        return Bundle(_pem(lib, lib.PEM_write_bio_X509, cert),
                      _pem(lib, lambda bio, k: lib.PEM_write_bio_PrivateKey(bio, k, None, None, 0, None, None), key),
                      chain)
    finally:
        if ca.value:
            for i in range(lib.OPENSSL_sk_num(ca)):
                lib.X509_free(lib.OPENSSL_sk_value(ca, i))
            lib.OPENSSL_sk_free(ca)
        if cert.value:
            lib.X509_free(cert)
        if key.value:
            lib.EVP_PKEY_free(key)
        lib.PKCS12_free(p12)
        lib.ERR_clear_error()


def _p12(lib: ctypes.CDLL, data: bytes) -> int:
    p12 = from_der(lib.d2i_PKCS12, data)
    if not p12:
        lib.ERR_clear_error()
        raise Pkcs12Error("not a PKCS12 file (DER)")
    return p12


def _pem(lib: ctypes.CDLL, write, obj) -> bytes:
    bio = lib.BIO_new(lib.BIO_s_mem())
    if not bio:
        raise MemoryError("BIO_new")
    try:
        if write(bio, obj) != 1:
            raise Pkcs12Error("cannot write the bundle's contents as PEM")
        data = ctypes.c_void_p()
        size = lib.BIO_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(data))
        return ctypes.string_at(data, size)
    finally:
        lib.BIO_free(bio)
