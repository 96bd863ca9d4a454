"""Host keys (private key files as OpenSSH and OpenSSL write them), public keys in SSH's wire form, signatures,
and the RFC 4716 files SFTPAuthorizedUserKeys names.

Host key files read (`load_host_key`): OpenSSH's own format (`-----BEGIN OPENSSH PRIVATE KEY-----`,
openssh-key-v1, what ssh-keygen writes) with an Ed25519 or RSA key; PEM RSA keys (`BEGIN RSA PRIVATE KEY`, PKCS#1)
and PKCS#8 (`BEGIN PRIVATE KEY`) with RSA or Ed25519. A key protected by a passphrase, an ECDSA or DSA key:
`UnsupportedKey`, with the reason (mod_sftp then skips that key with a warning, as ProFTPD skips a key it cannot
load). Every length read is bounded by the file's own size; a file that does not parse is `KeyFileError`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from .. import x509
from . import crypto
from .wire import Reader, WireError, Writer, mpint, string

MAX_KEY_FILE = 64 * 1024            # a private key file is a few KiB; a larger one is refused unread
MIN_RSA_BITS = 1024                 # an RSA key below this neither signs for us nor logs a user in
MAX_RSA_BITS = 16384                # ... and above this is refused (the cost of pow on it)


class KeyFileError(ValueError):
    """A key file (or public key) that cannot be read."""


class UnsupportedKey(KeyFileError):
    """A well-formed key of a kind mod_sftp does not use here (ECDSA, DSA, a passphrase-protected file)."""


# -- host keys (private) -------------------------------------------------------------------------------------------
class HostKey:
    kind = ""                       # the key's type: "ssh-ed25519", "ssh-rsa"
    algorithms: tuple[str, ...] = ()    # the signature algorithms it can make, preferred first

    def __init__(self, path: str = ""):
        self.path = path

    def public_blob(self) -> bytes:
        raise NotImplementedError

    def sign(self, algorithm: str, data: bytes) -> bytes:
        """The signature blob (string algorithm, string signature)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        return fingerprint(self.public_blob())


class Ed25519Key(HostKey):
    kind = "ssh-ed25519"
    algorithms = ("ssh-ed25519",)

    def __init__(self, seed: bytes, public: bytes | None = None, path: str = ""):
        super().__init__(path)
        if len(seed) != 32:
            raise KeyFileError("Ed25519 private key is not 32 bytes")
        derived = crypto.ed25519_public(seed)
        if public is not None and public != derived:
            raise KeyFileError("Ed25519 public key does not match its private key")
        self.public = derived
        self._secret = seed + derived

    def public_blob(self) -> bytes:
        return Writer().string(b"ssh-ed25519").string(self.public).bytes()

    def sign(self, algorithm: str, data: bytes) -> bytes:
        return Writer().string(b"ssh-ed25519").string(crypto.ed25519_sign(self._secret, data)).bytes()


RSA_DIGESTS = {"rsa-sha2-512": "sha512", "rsa-sha2-256": "sha256", "ssh-rsa": "sha1"}


class RsaKey(HostKey):
    kind = "ssh-rsa"
    algorithms = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")

    def __init__(self, n: int, e: int, d: int, p: int, q: int, iqmp: int | None = None, path: str = ""):
        super().__init__(path)
        bits = n.bit_length()
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise UnsupportedKey(f"RSA key of {bits} bits (between {MIN_RSA_BITS} and {MAX_RSA_BITS} are used)")
        try:
            self.key = crypto.RsaPrivate(n, e, d, p, q, iqmp)
        except ValueError as e_:
            raise KeyFileError(str(e_)) from None
        self.bits = bits

    def public_blob(self) -> bytes:
        return Writer().string(b"ssh-rsa").mpint(self.key.e).mpint(self.key.n).bytes()

    def sign(self, algorithm: str, data: bytes) -> bytes:
        return Writer().string(algorithm).string(self.key.sign(data, RSA_DIGESTS[algorithm])).bytes()


class EcdsaKey(HostKey):
    """An ECDSA host key (nistp256, nistp384, nistp521), signing in libcrypto."""

    def __init__(self, curve: str, point: bytes, private: int, path: str = ""):
        super().__init__(path)
        try:
            self.key = crypto.EcKey(curve, point, private)
        except (ValueError, crypto.CryptoUnavailable) as e:
            raise KeyFileError(f"ECDSA key: {e}") from None
        self.kind = f"ecdsa-sha2-{curve}"
        self.algorithms = (self.kind,)
        self.curve, self.point = curve, point

    def public_blob(self) -> bytes:
        return Writer().string(self.kind).string(self.curve).string(self.point).bytes()

    def sign(self, algorithm: str, data: bytes) -> bytes:
        r, s = self.key.sign(data)
        return Writer().string(self.kind).string(mpint(r) + mpint(s)).bytes()


_CURVE_OIDS = {oid[2:]: name for name, (oid, _, _) in crypto.EC_CURVES.items()}


def load_host_key(path: str, data: bytes | None = None) -> HostKey:
    """The private key in the file at `path` (or in `data`)."""
    if data is None:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"larger than {MAX_KEY_FILE} bytes: not a private key file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError("not a PEM or OpenSSH private key file (binary data)") from None
    m = re.search(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", text, re.S)
    if m is None:
        raise KeyFileError("no '-----BEGIN ... PRIVATE KEY-----' block found")
    label, body = m.group(1), m.group(2)
    headers, b64 = _pem_headers(body)
    if "Proc-Type" in headers and "ENCRYPTED" in headers["Proc-Type"]:
        raise UnsupportedKey("the key is protected by a passphrase (SFTPPassPhraseProvider is not supported)")
    try:
        der = base64.b64decode("".join(b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError("bad base64 in the key file") from None
    if label == "OPENSSH PRIVATE KEY":
        return _openssh_key(der, path)
    if label == "RSA PRIVATE KEY":
        return _pkcs1_rsa(der, path)
    if label == "PRIVATE KEY":
        return _pkcs8(der, path)
    if label == "ENCRYPTED PRIVATE KEY":
        raise UnsupportedKey("the key is protected by a passphrase (SFTPPassPhraseProvider is not supported)")
    if label == "EC PRIVATE KEY":
        return _sec1(der, None, path)
    if label == "DSA PRIVATE KEY":
        raise UnsupportedKey("DSA keys are not supported (use an Ed25519, ECDSA or RSA key)")
    raise KeyFileError(f"unknown key file type '{label}'")


def _pem_headers(body: str) -> tuple[dict[str, str], str]:
    headers: dict[str, str] = {}
    lines = body.splitlines()
    if lines and ":" in lines[0]:
        while lines and lines[0].strip():
            key, _, value = lines.pop(0).partition(":")
            headers[key.strip()] = value.strip()
    return headers, "\n".join(lines)


def _openssh_key(blob: bytes, path: str) -> HostKey:
    magic = b"openssh-key-v1\0"
    if not blob.startswith(magic):
        raise KeyFileError("not an openssh-key-v1 key")
    r = Reader(blob, len(magic))
    try:
        cipher, kdf = r.string(64), r.string(64)
        r.string(1024)                          # kdf options
        count = r.u32()
        if cipher != b"none" or kdf != b"none":
            raise UnsupportedKey("the key is protected by a passphrase (SFTPPassPhraseProvider is not supported)")
        if count != 1:
            raise KeyFileError(f"{count} keys in one file (one is expected)")
        r.string()                              # the public key, repeated below
        priv = Reader(r.string())
        if priv.u32() != priv.u32():
            raise KeyFileError("corrupt private section (check numbers differ)")
        kind = priv.string(64)
        if kind == b"ssh-ed25519":
            public = priv.string(64)
            secret = priv.string(128)
            if len(public) != 32 or len(secret) != 64 or secret[32:] != public:
                raise KeyFileError("corrupt Ed25519 key")
            return Ed25519Key(secret[:32], public, path)
        if kind == b"ssh-rsa":
            n, e, d, iqmp, p, q = (priv.mpint(2048 + 1) for _ in range(6))
            return RsaKey(n, e, d, p, q, iqmp, path)
        if kind in (b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521"):
            curve, point, d = priv.string(16).decode("ascii"), priv.string(256), priv.mpint(80)
            if f"ecdsa-sha2-{curve}".encode() != kind:
                raise KeyFileError("corrupt ECDSA key (its curve is not its type's)")
            return EcdsaKey(curve, point, d, path)
        raise UnsupportedKey(f"'{kind.decode('ascii', 'replace')}' keys are not supported")
    except WireError as e:
        raise KeyFileError(f"corrupt OpenSSH key: {e}") from None


# -- DER (what PKCS#1 and PKCS#8 keys need of it) ------------------------------------------------------------------
def _der(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, content, position after it) of the element at `pos` (x509's reader of DER)."""
    try:
        tag, start, end = x509.tlv(data, pos)
    except x509.BadCertificate as e:
        raise KeyFileError(f"{e} DER") from None
    return tag, data[start:end], end


def _der_seq(data: bytes) -> list[tuple[int, bytes]]:
    tag, content, _ = _der(data, 0)
    if tag != 0x30:
        raise KeyFileError("DER: a SEQUENCE was expected")
    out, pos = [], 0
    while pos < len(content):
        t, c, pos = _der(content, pos)
        out.append((t, c))
    return out


def _der_int(item: tuple[int, bytes]) -> int:
    if item[0] != 0x02:
        raise KeyFileError("DER: an INTEGER was expected")
    return int.from_bytes(item[1], "big", signed=True)


_OID_RSA = bytes.fromhex("2a864886f70d010101")
_OID_ED25519 = bytes.fromhex("2b6570")
_OID_EC = bytes.fromhex("2a8648ce3d0201")


def _pkcs1_rsa(der: bytes, path: str) -> HostKey:
    items = _der_seq(der)
    if len(items) < 9:
        raise KeyFileError("not an RSA private key")
    _, n, e, d, p, q, _, _, iqmp = (_der_int(i) for i in items[:9])
    return RsaKey(n, e, d, p, q, iqmp, path)


def _sec1(der: bytes, curve: str | None, path: str) -> HostKey:
    """SEC 1's ECPrivateKey: version, the private value, [0] the curve, [1] the public point."""
    items = _der_seq(der)
    if len(items) < 2 or items[1][0] != 0x04:
        raise KeyFileError("not an EC private key")
    d = int.from_bytes(items[1][1], "big")
    point = None
    for tag, content in items[2:]:
        if tag == 0xA0:
            curve = _CURVE_OIDS.get(content[2:]) if content[:1] == b"\x06" else None
            if curve is None:
                raise UnsupportedKey("ECDSA keys on curves other than nistp256, nistp384, nistp521 are not supported")
        elif tag == 0xA1:
            _, bits, _ = _der(content, 0)
            point = bits[1:]
    if curve is None or point is None:
        raise KeyFileError("EC private key without its curve or public point")
    return EcdsaKey(curve, point, d, path)


def _pkcs8(der: bytes, path: str) -> HostKey:
    items = _der_seq(der)
    if len(items) < 3 or items[1][0] != 0x30 or items[2][0] != 0x04:
        raise KeyFileError("not a PKCS#8 private key")
    _, oid, _ = _der(items[1][1], 0)
    if oid == _OID_RSA:
        return _pkcs1_rsa(items[2][1], path)
    if oid == _OID_ED25519:
        tag, seed, _ = _der(items[2][1], 0)
        if tag != 0x04 or len(seed) != 32:
            raise KeyFileError("corrupt Ed25519 key")
        return Ed25519Key(seed, None, path)
    if oid == _OID_EC:
        _, params, _ = _der(items[1][1], len(oid) + 2)
        return _sec1(items[2][1], _CURVE_OIDS.get(params), path)
    raise UnsupportedKey("unknown PKCS#8 key algorithm")


# -- public keys ---------------------------------------------------------------------------------------------------
class PublicKey:
    """A user's public key as a client sends it (the blob), able to check signatures."""

    def __init__(self, blob: bytes, kind: str, ed25519: bytes | None = None, rsa: tuple[int, int] | None = None,
                 ec: "crypto.EcKey | None" = None):
        self.blob, self.kind, self.ed25519, self.rsa, self.ec = blob, kind, ed25519, rsa, ec

    def accepts(self, algorithm: str) -> bool:
        """Whether a signature algorithm goes with this key's type."""
        if self.kind == "ssh-rsa":
            return algorithm in RSA_DIGESTS
        return algorithm == self.kind

    def verify(self, algorithm: str, data: bytes, signature_blob: bytes) -> bool:
        try:
            r = Reader(signature_blob)
            sig_algorithm = r.string(64).decode("ascii")
            sig = r.string(4096)
        except (WireError, UnicodeDecodeError):
            return False
        if sig_algorithm != algorithm or not self.accepts(algorithm):
            return False
        if self.kind == "ssh-ed25519":
            return crypto.ed25519_verify(self.ed25519, data, sig)
        if self.ec is not None:
            try:
                rs = Reader(sig)
                r, s = rs.mpint(80), rs.mpint(80)
                rs.end()
            except WireError:
                return False
            return self.ec.verify(data, r, s)
        n, e = self.rsa
        return crypto.rsa_verify(n, e, data, sig, RSA_DIGESTS[algorithm])

    def fingerprint(self) -> str:
        return fingerprint(self.blob)


def parse_public_blob(blob: bytes) -> PublicKey:
    """The public key in SSH's wire form; UnsupportedKey for a type not used here, KeyFileError if malformed."""
    try:
        r = Reader(blob)
        kind = r.string(64)
        if kind == b"ssh-ed25519":
            pk = r.string(64)
            r.end()
            if len(pk) != 32:
                raise KeyFileError("Ed25519 public key is not 32 bytes")
            return PublicKey(blob, "ssh-ed25519", ed25519=pk)
        if kind == b"ssh-rsa":
            e, n = r.mpint(64), r.mpint(MAX_RSA_BITS // 8 + 1)
            r.end()
            if n <= 0 or e <= 1 or e % 2 == 0 or not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
                raise UnsupportedKey(f"RSA key of {n.bit_length()} bits")
            return PublicKey(blob, "ssh-rsa", rsa=(n, e))
        if kind in (b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521"):
            curve, point = r.string(16).decode("ascii", "replace"), r.string(256)
            r.end()
            if f"ecdsa-sha2-{curve}".encode() != kind:
                raise KeyFileError("ECDSA public key of another curve than its type")
            try:
                return PublicKey(blob, kind.decode(), ec=crypto.EcKey(curve, point))
            except ValueError as e_:
                raise KeyFileError(f"ECDSA public key: {e_}") from None
    except WireError as e_:
        raise KeyFileError(f"malformed public key: {e_}") from None
    raise UnsupportedKey(f"'{kind.decode('ascii', 'replace')}' keys are not supported")


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint: base64 without padding."""
    return base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


RFC4716_BEGIN = "---- BEGIN SSH2 PUBLIC KEY ----"


def rfc4716_keys(text: str) -> list[tuple[bytes, str | None]]:
    """The keys of an RFC 4716 file ("---- BEGIN SSH2 PUBLIC KEY ----" ... "---- END SSH2 PUBLIC KEY ----"), with
    each key's Subject header (None without one), as ProFTPD's mod_sftp reads them: header lines (a `:` in them)
    may continue on the next line after a trailing backslash; lines outside a block are ignored; a key whose
    base64 does not decode is skipped."""
    keys: list[tuple[bytes, str | None]] = []
    inside, body, subject, continued = False, [], None, False
    for raw in text.splitlines():
        line = raw.strip()
        if not inside:
            if line == RFC4716_BEGIN:
                inside, body, subject, continued = True, [], None, False
            continue
        if line == "---- END SSH2 PUBLIC KEY ----":
            try:
                keys.append((base64.b64decode("".join(body), validate=True), subject))
            except (binascii.Error, ValueError):
                pass
            inside = False
            continue
        if continued:
            continued = line.endswith("\\")
            continue
        if ":" in line:
            tag, _, value = line.partition(":")
            if tag.strip().lower() == "subject":
                subject = value.strip().rstrip("\\")
            continued = line.endswith("\\")
            continue
        body.append(line)
    return keys


def stored_keys(value: str) -> list[tuple[bytes, str | None]]:
    """The keys of one stored value (an LDAP sshPublicKey, as ProFTPD's mod_sftp_ldap reads it): RFC 4716 blocks
    (with their Subject), else OpenSSH's `type base64 [comment]` lines, else the bare base64 of a key. A line whose
    base64 does not decode, or whose type is not the one its blob names, is skipped."""
    if RFC4716_BEGIN in value:
        return rfc4716_keys(value)
    keys: list[tuple[bytes, str | None]] = []
    for raw in value.splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        kind, text = (words[0], words[1]) if len(words) > 1 else (None, words[0])
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(blob) < 4 or (kind is not None and blob[4:4 + int.from_bytes(blob[:4], "big")] != kind.encode()):
            continue
        keys.append((blob, None))
    return keys


def openssh_public_line(key: HostKey | PublicKey, comment: str = "") -> str:
    """`type base64 comment` (what ssh-keygen -y prints), for tests and messages."""
    blob = key.public_blob() if isinstance(key, HostKey) else key.blob
    kind = key.kind
    return f"{kind} {base64.b64encode(blob).decode('ascii')}{' ' + comment if comment else ''}"


__all__ = ["HostKey", "Ed25519Key", "RsaKey", "PublicKey", "KeyFileError", "UnsupportedKey", "load_host_key",
           "parse_public_blob", "fingerprint", "rfc4716_keys", "stored_keys", "string", "mpint"]
