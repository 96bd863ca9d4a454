"""The cryptography of mod_sftp's SSH transport, from the libraries the system already has:

* libsodium (ctypes; the library proftpy's mod_sql_passwd loads: `auth.sql_passwd.sodium`): ChaCha20 and
  Poly1305 for chacha20-poly1305@openssh.com, X25519 for curve25519-sha256, Ed25519 signatures;
* libcrypto (ctypes, the very library Python's ssl module is linked with): AES in CTR mode (aes128/192/256-ctr)
  and in GCM mode (aes128/256-gcm@openssh.com);
* Python itself: HMAC-SHA2/SHA1 (hashlib's, which is libcrypto's), Diffie-Hellman and RSA with `pow` (RSA
  signatures with the CRT and blinding, checked before they leave).

Each direction of a connection has a `Sealer` (packets out) or an `Opener` (packets in) made from the keys the key
exchange derived (`make_sealer`, `make_opener`); before the first key exchange both are the null ones. An Opener
tells the transport how many bytes it needs to learn a packet's length (`head`), the length, and then the
packet's plaintext, or raises `BadMac`."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import hmac
import os
import struct

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class CryptoUnavailable(RuntimeError):
    """A library this algorithm needs is not there."""


class BadMac(ValueError):
    """A packet's MAC or authentication tag does not match: the connection is ended."""


# -- libraries -----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def sodium() -> ctypes.CDLL:
    from ...auth.sql_passwd import sodium as load
    lib = load()
    if lib is None:
        raise CryptoUnavailable("libsodium is not available")
    c_p, c_ull, c_ul = ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_uint64
    lib.crypto_stream_chacha20.argtypes = [c_p, c_ull, c_p, c_p]
    lib.crypto_stream_chacha20_xor_ic.argtypes = [c_p, c_p, c_ull, c_p, c_ul, c_p]
    lib.crypto_onetimeauth_poly1305.argtypes = [c_p, c_p, c_ull, c_p]
    lib.crypto_onetimeauth_poly1305_verify.argtypes = [c_p, c_p, c_ull, c_p]
    lib.crypto_scalarmult_curve25519.argtypes = [c_p, c_p, c_p]
    lib.crypto_scalarmult_curve25519_base.argtypes = [c_p, c_p]
    lib.crypto_sign_ed25519_detached.argtypes = [c_p, ctypes.c_void_p, c_p, c_ull, c_p]
    lib.crypto_sign_ed25519_verify_detached.argtypes = [c_p, c_p, c_ull, c_p]
    lib.crypto_sign_ed25519_seed_keypair.argtypes = [c_p, c_p, c_p]
    return lib


@functools.lru_cache(maxsize=1)
def libcrypto() -> ctypes.CDLL:
    """libcrypto as Python's ssl module is linked with it (found through _ssl's own dependencies), else the
    system's."""
    lib = None
    try:
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)
        lib.EVP_CIPHER_CTX_new          # noqa: B018 -- reachable from here?
    except (ImportError, OSError, AttributeError):
        name = ctypes.util.find_library("crypto")
        if name is None:
            raise CryptoUnavailable("libcrypto is not available") from None
        lib = ctypes.CDLL(name)
    vp, c_p, c_int = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.EVP_CIPHER_CTX_new.restype = vp
    lib.EVP_CIPHER_CTX_new.argtypes = []
    lib.EVP_CIPHER_CTX_free.restype = None
    lib.EVP_CIPHER_CTX_free.argtypes = [vp]
    for name in ("EVP_aes_128_ctr", "EVP_aes_192_ctr", "EVP_aes_256_ctr", "EVP_aes_128_gcm", "EVP_aes_256_gcm"):
        getattr(lib, name).restype = vp
        getattr(lib, name).argtypes = []
    lib.EVP_CipherInit_ex.restype = c_int
    lib.EVP_CipherInit_ex.argtypes = [vp, vp, vp, c_p, c_p, c_int]
    lib.EVP_CipherUpdate.restype = c_int
    lib.EVP_CipherUpdate.argtypes = [vp, c_p, ctypes.POINTER(c_int), c_p, c_int]
    lib.EVP_CipherFinal_ex.restype = c_int
    lib.EVP_CipherFinal_ex.argtypes = [vp, c_p, ctypes.POINTER(c_int)]
    lib.EVP_CIPHER_CTX_ctrl.restype = c_int
    lib.EVP_CIPHER_CTX_ctrl.argtypes = [vp, c_int, c_int, vp]
    return lib


def available() -> dict[str, str | None]:
    """Which library each family needs and why it is missing (None: usable)."""
    out: dict[str, str | None] = {}
    for name, load in (("libsodium", sodium), ("libcrypto", libcrypto)):
        try:
            load()
            out[name] = None
        except (CryptoUnavailable, OSError, AttributeError) as e:
            out[name] = str(e)
    return out


# -- primitives ----------------------------------------------------------------------------------------------------
def chacha20_stream(key: bytes, nonce8: bytes, length: int) -> bytes:
    """The original ChaCha20's keystream (64-bit nonce and counter, counter 0)."""
    out = ctypes.create_string_buffer(length)
    sodium().crypto_stream_chacha20(out, length, nonce8, key)
    return out.raw


def chacha20_xor(key: bytes, nonce8: bytes, data: bytes, counter: int = 0) -> bytes:
    out = ctypes.create_string_buffer(len(data))
    sodium().crypto_stream_chacha20_xor_ic(out, data, len(data), nonce8, counter, key)
    return out.raw


def poly1305(key: bytes, data: bytes) -> bytes:
    out = ctypes.create_string_buffer(16)
    sodium().crypto_onetimeauth_poly1305(out, data, len(data), key)
    return out.raw


def poly1305_verify(key: bytes, data: bytes, tag: bytes) -> bool:
    return len(tag) == 16 and sodium().crypto_onetimeauth_poly1305_verify(tag, data, len(data), key) == 0


def x25519(scalar: bytes, point: bytes) -> bytes:
    """X25519 (RFC 7748); ValueError for a point that gives the all-zero secret (libsodium refuses it)."""
    if len(scalar) != 32 or len(point) != 32:
        raise ValueError("X25519 keys are 32 bytes")
    out = ctypes.create_string_buffer(32)
    if sodium().crypto_scalarmult_curve25519(out, scalar, point) != 0:
        raise ValueError("X25519: the peer's key gives no shared secret")
    return out.raw


def x25519_base(scalar: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    sodium().crypto_scalarmult_curve25519_base(out, scalar)
    return out.raw


def ed25519_sign(secret64: bytes, message: bytes) -> bytes:
    """secret64: libsodium's secret key (the 32-byte seed, then the public key), as OpenSSH stores it."""
    sig = ctypes.create_string_buffer(64)
    sodium().crypto_sign_ed25519_detached(sig, None, message, len(message), secret64)
    return sig.raw


def ed25519_verify(public: bytes, message: bytes, sig: bytes) -> bool:
    if len(public) != 32 or len(sig) != 64:
        return False
    return sodium().crypto_sign_ed25519_verify_detached(sig, message, len(message), public) == 0


def ed25519_public(seed: bytes) -> bytes:
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
    sodium().crypto_sign_ed25519_seed_keypair(pk, sk, seed)
    return pk.raw


_EVP_CTRL_GCM_SET_IVLEN, _EVP_CTRL_GCM_GET_TAG, _EVP_CTRL_GCM_SET_TAG = 0x9, 0x10, 0x11


class _Evp:
    """One EVP_CIPHER_CTX, freed with the object."""

    def __init__(self, cipher: str, key: bytes, iv: bytes | None, encrypt: bool, ivlen: int | None = None):
        lib = self.lib = libcrypto()
        self.ctx = lib.EVP_CIPHER_CTX_new()
        if not self.ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        enc = 1 if encrypt else 0
        kind = getattr(lib, cipher)()
        if ivlen is not None:
            if lib.EVP_CipherInit_ex(self.ctx, kind, None, None, None, enc) != 1 or \
                    lib.EVP_CIPHER_CTX_ctrl(self.ctx, _EVP_CTRL_GCM_SET_IVLEN, ivlen, None) != 1:
                raise CryptoUnavailable(f"{cipher}: cannot set up")
            kind = None
        if lib.EVP_CipherInit_ex(self.ctx, kind, None, key, iv, enc) != 1:
            raise CryptoUnavailable(f"{cipher}: cannot set up")
        self._outl = ctypes.c_int(0)

    def update(self, data: bytes) -> bytes:
        out = ctypes.create_string_buffer(len(data) + 16)
        if self.lib.EVP_CipherUpdate(self.ctx, out, ctypes.byref(self._outl), data, len(data)) != 1:
            raise BadMac("cipher update failed")
        return out.raw[:self._outl.value]

    def __del__(self) -> None:
        ctx, self.ctx = getattr(self, "ctx", None), None
        if ctx:
            self.lib.EVP_CIPHER_CTX_free(ctx)


class AesCtr:
    def __init__(self, key: bytes, iv: bytes, encrypt: bool):
        self.evp = _Evp({16: "EVP_aes_128_ctr", 24: "EVP_aes_192_ctr", 32: "EVP_aes_256_ctr"}[len(key)], key, iv,
                        encrypt)
        self.update = self.evp.update


class AesGcm:
    """RFC 5647 as OpenSSH uses it: a 12-byte IV whose last 8 bytes count the packets, a 16-byte tag, the
    packet length as additional data."""

    def __init__(self, key: bytes, iv: bytes, encrypt: bool):
        self.encrypt = encrypt
        self.fixed, self.counter = iv[:4], int.from_bytes(iv[4:12], "big")
        self.evp = _Evp({16: "EVP_aes_128_gcm", 32: "EVP_aes_256_gcm"}[len(key)], key, None, encrypt, ivlen=12)
        self._outl = ctypes.c_int(0)

    def _start(self) -> None:
        iv = self.fixed + _U64.pack(self.counter)
        self.counter = (self.counter + 1) & 0xFFFFFFFFFFFFFFFF
        lib, ctx = self.evp.lib, self.evp.ctx
        if lib.EVP_CipherInit_ex(ctx, None, None, None, iv, -1) != 1:
            raise BadMac("GCM: cannot set the IV")

    def seal(self, aad: bytes, plain: bytes) -> bytes:
        self._start()
        lib, ctx = self.evp.lib, self.evp.ctx
        if lib.EVP_CipherUpdate(ctx, None, ctypes.byref(self._outl), aad, len(aad)) != 1:
            raise BadMac("GCM: additional data refused")
        body = self.evp.update(plain)
        tail = ctypes.create_string_buffer(16)
        if lib.EVP_CipherFinal_ex(ctx, tail, ctypes.byref(self._outl)) != 1:
            raise BadMac("GCM: cannot finish")
        tag = ctypes.create_string_buffer(16)
        if lib.EVP_CIPHER_CTX_ctrl(ctx, _EVP_CTRL_GCM_GET_TAG, 16, ctypes.cast(tag, ctypes.c_void_p)) != 1:
            raise BadMac("GCM: no tag")
        return body + tag.raw

    def open(self, aad: bytes, cipher: bytes, tag: bytes) -> bytes:
        self._start()
        lib, ctx = self.evp.lib, self.evp.ctx
        if lib.EVP_CipherUpdate(ctx, None, ctypes.byref(self._outl), aad, len(aad)) != 1:
            raise BadMac("GCM: additional data refused")
        plain = self.evp.update(cipher)
        tag_buf = ctypes.create_string_buffer(tag, 16)
        if lib.EVP_CIPHER_CTX_ctrl(ctx, _EVP_CTRL_GCM_SET_TAG, 16, ctypes.cast(tag_buf, ctypes.c_void_p)) != 1:
            raise BadMac("GCM: cannot set the tag")
        tail = ctypes.create_string_buffer(16)
        if lib.EVP_CipherFinal_ex(ctx, tail, ctypes.byref(self._outl)) != 1:
            raise BadMac("GCM tag mismatch")
        return plain


# -- algorithm tables ----------------------------------------------------------------------------------------------
class CipherSpec:
    def __init__(self, name: str, key_len: int, iv_len: int, block: int, kind: str, library: str):
        self.name, self.key_len, self.iv_len, self.block, self.kind, self.library = (name, key_len, iv_len, block,
                                                                                     kind, library)

    @property
    def aead(self) -> bool:
        return self.kind in ("chacha", "gcm")


CIPHERS = {c.name: c for c in (
    CipherSpec("chacha20-poly1305@openssh.com", 64, 0, 8, "chacha", "libsodium"),
    CipherSpec("aes256-ctr", 32, 16, 16, "ctr", "libcrypto"),
    CipherSpec("aes192-ctr", 24, 16, 16, "ctr", "libcrypto"),
    CipherSpec("aes128-ctr", 16, 16, 16, "ctr", "libcrypto"),
    CipherSpec("aes256-gcm@openssh.com", 32, 12, 16, "gcm", "libcrypto"),
    CipherSpec("aes128-gcm@openssh.com", 16, 12, 16, "gcm", "libcrypto"),
)}


class MacSpec:
    def __init__(self, name: str, digest: str, length: int, etm: bool):
        self.name, self.digest, self.length, self.etm = name, digest, length, etm
        self.key_len = hashlib.new(digest).digest_size


MACS = {m.name: m for m in (
    MacSpec("hmac-sha2-256", "sha256", 32, False),
    MacSpec("hmac-sha2-256-etm@openssh.com", "sha256", 32, True),
    MacSpec("hmac-sha2-512", "sha512", 64, False),
    MacSpec("hmac-sha2-512-etm@openssh.com", "sha512", 64, True),
    MacSpec("hmac-sha1", "sha1", 20, False),
    MacSpec("hmac-sha1-etm@openssh.com", "sha1", 20, True),
)}


# -- packet protection ---------------------------------------------------------------------------------------------
class Sealer:
    """Packets out, before any key exchange: no cipher, no MAC (block 8)."""

    block = 8
    length_in_padding = True        # the packet length counts towards the padding's block multiple
    name = "none"
    mac_name = "none"

    def seal(self, packet: bytes, seq: int) -> bytes:
        """`packet`: packet_length, padding_length, payload, padding (plaintext)."""
        return packet


class Opener:
    """Packets in, before any key exchange."""

    head = 8                        # bytes read to learn the length
    block = 8
    length_in_padding = True
    mac_len = 0
    name = "none"
    mac_name = "none"

    def length(self, head: bytes, seq: int) -> int:
        self._head = head
        return _U32.unpack_from(head)[0]

    def open(self, rest: bytes, seq: int) -> bytes:
        """The whole plaintext packet (length, padding length, payload, padding) from the bytes after `head`
        (ciphertext and MAC)."""
        return self._head + rest


class _StreamSealer(Sealer):
    def __init__(self, cipher: CipherSpec, key: bytes, iv: bytes, mac: MacSpec, mac_key: bytes):
        self.cipher = AesCtr(key, iv, True)
        self.block = cipher.block
        self.mac, self.mac_key, self.etm = mac, mac_key, mac.etm
        self.length_in_padding = not mac.etm
        self.name, self.mac_name = cipher.name, mac.name

    def seal(self, packet: bytes, seq: int) -> bytes:
        if self.etm:
            body = packet[:4] + self.cipher.update(packet[4:])
            return body + hmac.digest(self.mac_key, _U32.pack(seq) + body, self.mac.digest)[:self.mac.length]
        tag = hmac.digest(self.mac_key, _U32.pack(seq) + packet, self.mac.digest)[:self.mac.length]
        return self.cipher.update(packet) + tag


class _StreamOpener(Opener):
    def __init__(self, cipher: CipherSpec, key: bytes, iv: bytes, mac: MacSpec, mac_key: bytes):
        self.cipher = AesCtr(key, iv, False)
        self.block = cipher.block
        self.mac, self.mac_key, self.etm = mac, mac_key, mac.etm
        self.mac_len = mac.length
        self.head = 4 if mac.etm else cipher.block
        self.length_in_padding = not mac.etm
        self.name, self.mac_name = cipher.name, mac.name

    def length(self, head: bytes, seq: int) -> int:
        self._head = head if self.etm else self.cipher.update(head)
        return _U32.unpack_from(self._head)[0]

    def open(self, rest: bytes, seq: int) -> bytes:
        body, tag = rest[:len(rest) - self.mac_len], rest[len(rest) - self.mac_len:]
        if self.etm:
            want = hmac.digest(self.mac_key, _U32.pack(seq) + self._head + body, self.mac.digest)[:self.mac_len]
            if not hmac.compare_digest(want, tag):
                raise BadMac("MAC mismatch")
            return self._head + self.cipher.update(body)
        packet = self._head + self.cipher.update(body)
        want = hmac.digest(self.mac_key, _U32.pack(seq) + packet, self.mac.digest)[:self.mac_len]
        if not hmac.compare_digest(want, tag):
            raise BadMac("MAC mismatch")
        return packet


class _ChachaSealer(Sealer):
    """chacha20-poly1305@openssh.com (OpenSSH's PROTOCOL.chacha20poly1305): the 64-byte key is the payload key
    then the length key; the nonce is the sequence number."""

    block = 8
    length_in_padding = False
    name = "chacha20-poly1305@openssh.com"

    def __init__(self, key: bytes):
        self.main, self.header = key[:32], key[32:64]

    def seal(self, packet: bytes, seq: int) -> bytes:
        nonce = _U64.pack(seq)
        enc_len = chacha20_xor(self.header, nonce, packet[:4])
        body = chacha20_xor(self.main, nonce, packet[4:], 1)
        poly_key = chacha20_stream(self.main, nonce, 32)
        return enc_len + body + poly1305(poly_key, enc_len + body)


class _ChachaOpener(Opener):
    head = 4
    block = 8
    length_in_padding = False
    mac_len = 16
    name = "chacha20-poly1305@openssh.com"

    def __init__(self, key: bytes):
        self.main, self.header = key[:32], key[32:64]

    def length(self, head: bytes, seq: int) -> int:
        self._head = head
        return _U32.unpack(chacha20_xor(self.header, _U64.pack(seq), head))[0]

    def open(self, rest: bytes, seq: int) -> bytes:
        nonce = _U64.pack(seq)
        body, tag = rest[:-16], rest[-16:]
        poly_key = chacha20_stream(self.main, nonce, 32)
        if not poly1305_verify(poly_key, self._head + body, tag):
            raise BadMac("Poly1305 tag mismatch")
        return chacha20_xor(self.header, nonce, self._head) + chacha20_xor(self.main, nonce, body, 1)


class _GcmSealer(Sealer):
    block = 16
    length_in_padding = False

    def __init__(self, cipher: CipherSpec, key: bytes, iv: bytes):
        self.gcm = AesGcm(key, iv, True)
        self.name = cipher.name

    def seal(self, packet: bytes, seq: int) -> bytes:
        return packet[:4] + self.gcm.seal(packet[:4], packet[4:])


class _GcmOpener(Opener):
    head = 4
    block = 16
    length_in_padding = False
    mac_len = 16

    def __init__(self, cipher: CipherSpec, key: bytes, iv: bytes):
        self.gcm = AesGcm(key, iv, False)
        self.name = cipher.name

    def length(self, head: bytes, seq: int) -> int:
        self._head = head
        return _U32.unpack(head)[0]

    def open(self, rest: bytes, seq: int) -> bytes:
        return self._head + self.gcm.open(self._head, rest[:-16], rest[-16:])


def make_sealer(cipher: str, key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Sealer:
    spec = CIPHERS[cipher]
    if spec.kind == "chacha":
        return _ChachaSealer(key)
    if spec.kind == "gcm":
        return _GcmSealer(spec, key, iv)
    assert mac is not None
    return _StreamSealer(spec, key, iv, MACS[mac], mac_key)


def make_opener(cipher: str, key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Opener:
    spec = CIPHERS[cipher]
    if spec.kind == "chacha":
        return _ChachaOpener(key)
    if spec.kind == "gcm":
        return _GcmOpener(spec, key, iv)
    assert mac is not None
    return _StreamOpener(spec, key, iv, MACS[mac], mac_key)


def padded(payload: bytes, block: int, length_in_padding: bool) -> bytes:
    """The plaintext packet: packet_length, padding_length, payload, 4 or more random bytes of padding so that the
    encrypted part is a whole number of blocks."""
    covered = (5 if length_in_padding else 1) + len(payload)
    pad = block - covered % block
    if pad < 4:
        pad += block
    return _U32.pack(1 + len(payload) + pad) + bytes((pad,)) + payload + os.urandom(pad)


# -- key exchange --------------------------------------------------------------------------------------------------
_GROUP14 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
_GROUP16 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6"
    "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
    , 16)
_GROUP18 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6"
    "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026C1D4DCB2602646DEC9751E763DBA37BD"
    "F8FF9406AD9E530EE5DB382F413001AEB06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B"
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92ECF032EA15D1721D03F482D7CE6E74FEF6"
    "D55E702F46980C82B5A84031900B1C9E59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA"
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76F550AA3D8A1FBFF0EB19CCB1A313D55C"
    "DA56C9EC2EF29632387FE8D76E3C0468043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4"
    "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED2576F6936BA424663AAB639C5AE4F568"
    "3423B4742BF1C978238F16CBE39D652DE3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B"
    "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A66D2A13F83F44F82DDF310EE074AB6A36"
    "4597E899A0255DC164F31CC50846851DF9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92"
    "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA9E3050E2765694DFC81F56E880B96E71"
    "60C980DD98EDD3DFFFFFFFFFFFFFFFFF"
    , 16)

DH_GROUPS = {"diffie-hellman-group14-sha256": (_GROUP14, "sha256"),
             "diffie-hellman-group16-sha512": (_GROUP16, "sha512"),
             "diffie-hellman-group18-sha512": (_GROUP18, "sha512")}
CURVE25519 = {"curve25519-sha256": "sha256", "curve25519-sha256@libssh.org": "sha256"}


def dh_private(prime: int) -> int:
    """A private exponent of 512 random bits (twice the strength of the largest group's 256, as OpenSSH picks
    twice the key's need), never 0 or 1."""
    while True:
        x = int.from_bytes(os.urandom(64), "big")
        if 1 < x < prime - 1:
            return x


def dh_check(prime: int, e: int) -> bool:
    """The peer's public value is in range (RFC 4253 section 8: 1 < e < p-1)."""
    return 1 < e < prime - 1


# -- RSA -----------------------------------------------------------------------------------------------------------
DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def emsa_pkcs1(message: bytes, digest: str, k: int) -> int:
    """EMSA-PKCS1-v1_5 (RFC 8017 section 9.2) of `message` for a k-byte modulus, as an integer."""
    t = DIGEST_INFO[digest] + hashlib.new(digest, message).digest()
    if k < len(t) + 11:
        raise ValueError("RSA key too short for this digest")
    return int.from_bytes(b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t, "big")


class RsaPrivate:
    """An RSA private key with its CRT values."""

    def __init__(self, n: int, e: int, d: int, p: int, q: int, iqmp: int | None = None):
        if p * q != n:
            raise ValueError("RSA key: p * q is not n")
        self.n, self.e, self.d, self.p, self.q = n, e, d, p, q
        self.dp, self.dq = d % (p - 1), d % (q - 1)
        self.qinv = iqmp if iqmp is not None and (iqmp * q) % p == 1 else pow(q, -1, p)
        self.k = (n.bit_length() + 7) // 8

    def sign(self, message: bytes, digest: str) -> bytes:
        """RSASSA-PKCS1-v1_5: the CRT with blinding (the exponentiation's time tells nothing of the message), and
        the result checked with the public key before it is given out (a fault never leaks a factor)."""
        m = emsa_pkcs1(message, digest, self.k)
        while True:
            r = int.from_bytes(os.urandom(self.k), "big") % self.n
            if r > 1:
                try:
                    r_inv = pow(r, -1, self.n)
                    break
                except ValueError:
                    continue
        c = (m * pow(r, self.e, self.n)) % self.n
        m1, m2 = pow(c, self.dp, self.p), pow(c, self.dq, self.q)
        h = (self.qinv * (m1 - m2)) % self.p
        s = ((m2 + h * self.q) * r_inv) % self.n
        if pow(s, self.e, self.n) != m:
            raise ValueError("RSA signature failed its own check")
        return s.to_bytes(self.k, "big")


def rsa_verify(n: int, e: int, message: bytes, sig: bytes, digest: str) -> bool:
    k = (n.bit_length() + 7) // 8
    if len(sig) > k or not sig:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    try:
        return pow(s, e, n) == emsa_pkcs1(message, digest, k)
    except ValueError:
        return False


# -- ECDSA (libcrypto: its signing is constant-time, which Python's integers could not be) -------------------------
EC_CURVES = {   # SSH's curve name -> (DER OID of the named curve, field bytes, digest)
    "nistp256": (bytes.fromhex("06082a8648ce3d030107"), 32, "sha256"),
    "nistp384": (bytes.fromhex("06052b81040022"), 48, "sha384"),
    "nistp521": (bytes.fromhex("06052b81040023"), 66, "sha512"),
}
_EC_PUBLIC_OID = bytes.fromhex("06072a8648ce3d0201")


@functools.lru_cache(maxsize=1)
def _evp_pkey() -> ctypes.CDLL:
    lib = libcrypto()
    vp, c_int, c_long, c_size = ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_size_t
    for name, res, args in (
            ("d2i_AutoPrivateKey", vp, [vp, ctypes.POINTER(vp), c_long]),
            ("d2i_PUBKEY", vp, [vp, ctypes.POINTER(vp), c_long]),
            ("EVP_PKEY_free", None, [vp]),
            ("EVP_MD_CTX_new", vp, []),
            ("EVP_MD_CTX_free", None, [vp]),
            ("EVP_sha256", vp, []), ("EVP_sha384", vp, []), ("EVP_sha512", vp, []),
            ("EVP_DigestSignInit", c_int, [vp, vp, vp, vp, vp]),
            ("EVP_DigestSign", c_int, [vp, ctypes.c_char_p, ctypes.POINTER(c_size), ctypes.c_char_p, c_size]),
            ("EVP_DigestVerifyInit", c_int, [vp, vp, vp, vp, vp]),
            ("EVP_DigestVerify", c_int, [vp, ctypes.c_char_p, c_size, ctypes.c_char_p, c_size]),
            ("ERR_clear_error", None, [])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        head = bytes((tag, n))
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes((tag, 0x80 | len(raw))) + raw
    return head + content


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


class EcKey:
    """An ECDSA key held by libcrypto (an EVP_PKEY): a private one signs, a public one verifies."""

    def __init__(self, curve: str, point: bytes, private: int | None = None):
        if curve not in EC_CURVES:
            raise ValueError(f"unknown curve '{curve}'")
        oid, size, self.digest = EC_CURVES[curve]
        if len(point) != 1 + 2 * size or point[0] != 4:
            raise ValueError("the EC point is not an uncompressed point of its curve")
        self.curve, self.point, self.size = curve, point, size
        if private is not None:
            der = _der(0x30, _der_int(1) + _der(0x04, private.to_bytes(size, "big")) + _der(0xA0, oid)
                       + _der(0xA1, _der(0x03, b"\0" + point)))
        else:
            der = _der(0x30, _der(0x30, _EC_PUBLIC_OID + oid) + _der(0x03, b"\0" + point))
        lib = self.lib = _evp_pkey()
        buf = ctypes.create_string_buffer(der, len(der))
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        decode = lib.d2i_AutoPrivateKey if private is not None else lib.d2i_PUBKEY
        self.pkey = decode(None, ctypes.byref(ptr), len(der))
        if not self.pkey:
            lib.ERR_clear_error()
            raise ValueError("libcrypto refused the EC key (not a point of its curve, or a bad private value)")
        self.private = private is not None

    def _md(self):
        return getattr(self.lib, "EVP_" + self.digest)()

    def sign(self, data: bytes) -> tuple[int, int]:
        lib = self.lib
        ctx = lib.EVP_MD_CTX_new()
        try:
            if lib.EVP_DigestSignInit(ctx, None, self._md(), None, self.pkey) != 1:
                raise ValueError("ECDSA: cannot sign")
            out = ctypes.create_string_buffer(2 * self.size + 16)
            n = ctypes.c_size_t(len(out))
            if lib.EVP_DigestSign(ctx, out, ctypes.byref(n), data, len(data)) != 1:
                raise ValueError("ECDSA: signing failed")
        finally:
            lib.EVP_MD_CTX_free(ctx)
        sig = out.raw[:n.value]             # ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }
        body = sig[2:] if sig[1] < 0x80 else sig[3:]
        r_len = body[1]
        r = int.from_bytes(body[2:2 + r_len], "big")
        s_len = body[3 + r_len]
        s = int.from_bytes(body[4 + r_len:4 + r_len + s_len], "big")
        return r, s

    def verify(self, data: bytes, r: int, s: int) -> bool:
        if not (0 < r and 0 < s and r.bit_length() <= 8 * self.size and s.bit_length() <= 8 * self.size):
            return False
        lib = self.lib
        sig = _der(0x30, _der_int(r) + _der_int(s))
        ctx = lib.EVP_MD_CTX_new()
        try:
            if lib.EVP_DigestVerifyInit(ctx, None, self._md(), None, self.pkey) != 1:
                lib.ERR_clear_error()
                return False
            ok = lib.EVP_DigestVerify(ctx, sig, len(sig), data, len(data)) == 1
        finally:
            lib.EVP_MD_CTX_free(ctx)
        lib.ERR_clear_error()
        return ok

    def __del__(self) -> None:
        pkey, self.pkey = getattr(self, "pkey", None), None
        if pkey:
            self.lib.EVP_PKEY_free(pkey)


ECDH = {"ecdh-sha2-nistp256": ("nistp256", "P-256", "sha256"), "ecdh-sha2-nistp384": ("nistp384", "P-384", "sha384"),
        "ecdh-sha2-nistp521": ("nistp521", "P-521", "sha512")}


@functools.lru_cache(maxsize=1)
def _evp_derive() -> ctypes.CDLL:
    lib = _evp_pkey()
    vp, c_int, c_size = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    for name, res, args in (
            ("EVP_PKEY_CTX_new_from_name", vp, [vp, ctypes.c_char_p, ctypes.c_char_p]),
            ("EVP_PKEY_CTX_new", vp, [vp, vp]),
            ("EVP_PKEY_CTX_free", None, [vp]),
            ("EVP_PKEY_keygen_init", c_int, [vp]),
            ("EVP_PKEY_CTX_set_group_name", c_int, [vp, ctypes.c_char_p]),
            ("EVP_PKEY_generate", c_int, [vp, ctypes.POINTER(vp)]),
            ("EVP_PKEY_get_octet_string_param", c_int, [vp, ctypes.c_char_p, ctypes.c_char_p, c_size,
                                                        ctypes.POINTER(c_size)]),
            ("EVP_PKEY_derive_init", c_int, [vp]),
            ("EVP_PKEY_derive_set_peer", c_int, [vp, vp]),
            ("EVP_PKEY_derive", c_int, [vp, ctypes.c_char_p, ctypes.POINTER(c_size)])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def ecdh(kex: str, peer_point: bytes) -> tuple[bytes, bytes]:
    """ECDH (RFC 5656) in libcrypto: (our ephemeral public point, the shared secret's x-coordinate). ValueError
    for a peer point that is not on the curve."""
    curve, group, _ = ECDH[kex]
    peer = EcKey(curve, peer_point)             # decoding checks the point
    lib = _evp_derive()
    gen = lib.EVP_PKEY_CTX_new_from_name(None, b"EC", None)
    ours = ctypes.c_void_p()
    try:
        if (not gen or lib.EVP_PKEY_keygen_init(gen) != 1 or lib.EVP_PKEY_CTX_set_group_name(gen, group.encode()) != 1
                or lib.EVP_PKEY_generate(gen, ctypes.byref(ours)) != 1):
            raise ValueError("ECDH: cannot make a key")
    finally:
        if gen:
            lib.EVP_PKEY_CTX_free(gen)
    try:
        point = ctypes.create_string_buffer(1 + 2 * EC_CURVES[curve][1])
        n = ctypes.c_size_t(0)
        if lib.EVP_PKEY_get_octet_string_param(ours, b"encoded-pub-key", point, len(point), ctypes.byref(n)) != 1:
            raise ValueError("ECDH: no public point")
        ctx = lib.EVP_PKEY_CTX_new(ours, None)
        try:
            size = ctypes.c_size_t(0)
            if (not ctx or lib.EVP_PKEY_derive_init(ctx) != 1 or lib.EVP_PKEY_derive_set_peer(ctx, peer.pkey) != 1
                    or lib.EVP_PKEY_derive(ctx, None, ctypes.byref(size)) != 1):
                raise ValueError("ECDH: cannot derive")
            secret = ctypes.create_string_buffer(size.value)
            if lib.EVP_PKEY_derive(ctx, secret, ctypes.byref(size)) != 1:
                raise ValueError("ECDH: cannot derive")
        finally:
            if ctx:
                lib.EVP_PKEY_CTX_free(ctx)
        return point.raw[:n.value], secret.raw[:size.value]
    finally:
        lib.EVP_PKEY_free(ours)
        lib.ERR_clear_error()
