"""mod_tls's directives (ProFTPD 1.3.8's names, forms, defaults and contexts), with the parsers that turn their
words into values. What the values do is in tls_contexts.py (the master: certificates, protocols, ciphers) and
tls.py (the session: TLSRequired, TLSOptions, AUTH/PROT...)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config.registry import ALL_DIRS, SERVER, SVG, VHOST, Directive, Merge
from ..config.types import INT_MAX, Custom, Flag, Int, Options, Path, Str, parse_bool, parse_int
from ..ctrls import ActionAcl

NAME = "mod_tls.c"

VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")        # what OpenSSL 3 can speak (SSLv3 is gone)
DEFAULT_PROTOCOLS = VERSIONS                                 # ProFTPD 1.3.8 with OpenSSL >= 1.1.1
DEFAULT_CIPHERS = "DEFAULT:!ADH:!EXPORT:!DES"
DEFAULT_CACHE_LIFETIME = 15840                               # ProFTPD's internal session cache lifetime
CTRLS_ACTIONS = {"all", "clear", "info", "ocspcache", "sesscache"}   # TLSControlsACLs' words, as ProFTPD's
# (its action table has no `remove`: naming it is fatal; `remove` needs only the sesscache/ocspcache ACL)


# -- TLSProtocol -------------------------------------------------------------------------------------------------
ALL_PROTOCOLS = ("SSLv3",) + VERSIONS


def _protocol(word: str) -> set[str]:
    low = word.lower()
    if low == "sslv23":
        return set(ALL_PROTOCOLS)
    if low in ("tlsv1", "tlsv1.0"):
        return {"TLSv1"}
    for name in ALL_PROTOCOLS:
        if low == name.lower():
            return {name}
    raise ValueError(f"unknown protocol: '{word}'")


def parse_protocols(args: list[str]) -> tuple[str, ...]:
    """`TLSProtocol TLSv1.2 TLSv1.3` (a list) or `TLSProtocol ALL -TLSv1 -TLSv1.1` (all, then +/- each); the
    versions named, oldest first."""
    if not args:
        raise ValueError("wrong number of parameters")
    if args[0].lower() == "all":
        protocols = set(ALL_PROTOCOLS)
        for word in args[1:]:
            if word[:1] not in "+-" or len(word) < 2:
                raise ValueError(f"missing required +/- prefix: {word}")
            names = _protocol(word[1:])
            protocols = protocols - names if word[0] == "-" else protocols | names
    else:
        protocols = set()
        for word in args:
            protocols |= _protocol(word)
    return tuple(p for p in ALL_PROTOCOLS if p in protocols)


# -- TLSCipherSuite ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CipherSuite:
    protocol: str | None        # "TLSv1.3" for the TLSv1.3 suites; None (or an older version) for the cipher list
    suite: str


def parse_cipher_suite(args: list[str]) -> CipherSuite:
    """`TLSCipherSuite list` or `TLSCipherSuite TLSv1.3 TLS_AES_256_GCM_SHA384:...` (one line each)."""
    if len(args) == 1:
        if "_" in args[0]:
            raise ValueError(f"use of TLSv1.3 ciphersuite in '{args[0]}' requires protocol parameter; use "
                             f"'TLSCipherSuite TLSv1.3 {args[0]}'")
        return CipherSuite(None, args[0])
    if len(args) == 2:
        proto = {"tlsv1.3": "TLSv1.3", "tlsv1.2": "TLSv1.2", "tlsv1.1": "TLSv1.1", "tlsv1.0": "TLSv1"}.get(
            args[0].lower())
        if proto is None:
            raise ValueError(f"unknown/unsupported protocol specifier: {args[0]}")
        return CipherSuite(proto, args[1])
    raise ValueError("expected [protocol] cipher-list")


def cipher_list(suite: str) -> str:
    """ProFTPD never allows EXPORT ciphers: `:!EXPORT` is added to a cipher list (not to a system PROFILE=)."""
    return suite if suite.startswith("PROFILE=") else suite + ":!EXPORT"


# -- TLSRequired -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Required:
    """ProFTPD's three TLSRequired flags: ctrl (every command), auth (USER/PASS/ACCT), data (1: PROT P is a
    must, -1: PROT P is refused, 0: either)."""

    ctrl: int = 0
    auth: int = 0
    data: int = 0

    def __str__(self) -> str:
        """The directive's word for these flags (`off`, `on`, `auth+data`...)."""
        if self == Required():
            return "off"
        if self == Required(1, 1, 1):
            return "on"
        return next(word for word, flags in REQUIRED_FORMS.items() if flags == self)


REQUIRED_FORMS = {
    "ctrl": Required(1, 1, 0), "control": Required(1, 1, 0), "data": Required(0, 0, 1),
    "!data": Required(0, 0, -1), "both": Required(1, 1, 1), "ctrl+data": Required(1, 1, 1),
    "ctrl+!data": Required(1, 1, -1), "auth": Required(0, 1, 0), "auth+data": Required(0, 1, 1),
    "auth+!data": Required(0, 1, -1),
}


def parse_required(args: list[str]) -> Required:
    """on/off (and ProFTPD's other boolean words), or one of the forms above (case matters, as in ProFTPD)."""
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    try:
        return Required(1, 1, 1) if parse_bool(args[0]) else Required()
    except ValueError:
        pass
    form = REQUIRED_FORMS.get(args[0])
    if form is None:
        raise ValueError("bad parameter")
    return form


# -- TLSOptions --------------------------------------------------------------------------------------------------
OPTIONS = ("AllowClientRenegotiations", "AllowDotLogin", "AllowPerUser", "AllowWeakDH", "AllowWeakSecurity",
           "CommonNameRequired", "dNSNameRequired", "iPAddressRequired", "EnableDiags", "ExportCertData", "IgnoreSNI",
           "NoAutoECDH", "NoEmptyFragments", "NoSessionReuseRequired", "StdEnvVars", "UseImplicitSSL")
parse_options = Options(OPTIONS, "TLSOption", aliases=(("AllowClientRenegotiation", "AllowClientRenegotiations"),))


# -- the others --------------------------------------------------------------------------------------------------
def parse_verify_client(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if args[0].lower() == "optional":
        return "optional"
    try:
        return "on" if parse_bool(args[0]) else "off"
    except ValueError:
        raise ValueError("expected Boolean parameter") from None


def parse_user_name(args: list[str]) -> str:
    """CommonName, EmailSubjAltName or a custom OID."""
    word = Str()(args)
    if word not in ("CommonName", "EmailSubjAltName") and not re.fullmatch(r"[0-9.]+", word):
        raise ValueError("badly formatted OID parameter")
    return word


def parse_duration(args: list[str]) -> int:
    """Seconds: `300`, `5m`, `1h`, `hh:mm:ss` (ProFTPD's duration forms)."""
    word = Str()(args)
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d)", word)
    if m:
        seconds = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
    else:
        m = re.fullmatch(r"(\d+)\s*([smhSMH]?)", word)
        if not m:
            raise ValueError(f"error parsing timeout value '{word}'")
        seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2).lower()]
    if seconds > INT_MAX:
        raise ValueError(f"error parsing timeout value '{word}': Numerical result out of range")
    return seconds


EXTERNAL_CACHES = ("shm", "redis", "memcache")
DEFAULT_EXTERNAL_LIFETIME = 1800                             # ProFTPD's timeout for an external cache
SHM_DEFAULT_SIZE = 1538 * 1024                               # mod_tls_shmcache's default segment size


@dataclass(frozen=True)
class SessionCache:
    kind: str                   # "internal", "off", or an external cache: "shm", "redis", "memcache"
    lifetime: int | None = None
    path: str | None = None     # shm: the file
    size: int = SHM_DEFAULT_SIZE
    json: bool = False          # memcache:/json (else ProFTPD's tpl images)

    @property
    def external(self) -> bool:
        return self.kind in EXTERNAL_CACHES


def _shm_info(info: str, minimum: int | None = None) -> tuple[str, int]:
    """`/file=PATH[&size=BYTES]`: stricter than ProFTPD, which logs a bad size and takes its default. `minimum`:
    the smallest size (default: one TLS session's)."""
    if not info.startswith("/file="):
        raise ValueError(f"shm: needs /file=PATH (badly formatted info '{info}')")
    path, amp, rest = info[len("/file="):].partition("&")
    size = SHM_DEFAULT_SIZE
    if amp:
        if not rest.startswith("size=") or not rest[5:].isdigit():
            raise ValueError(f"badly formatted size parameter '{rest}' (expected size=BYTES)")
        size = int(rest[5:])
        if minimum is None:
            from ..tlscachetable import MIN_SIZE as minimum
        if size < minimum:
            raise ValueError(f"requested size ({size} bytes) smaller than minimum size ({minimum} bytes)")
    if not path.startswith("/"):
        raise ValueError(f"file '{path}' not an absolute path")
    return path, size


def parse_session_cache(args: list[str]) -> SessionCache:
    """`off`, `internal: [seconds]`, or an external cache shared by every session process: `shm:/file=PATH
    [&size=BYTES]`, `redis:` (mod_redis's server), `memcache:[/json]` (mod_memcache's), each with a timeout
    (default 1800 s). Anything else is ProFTPD's error (its mod_tls_fscache is an OCSP stapling cache,
    `TLSStaplingCache fs:`: there is no `fscache:` session cache in ProFTPD either)."""
    if not 1 <= len(args) <= 2:
        raise ValueError("wrong number of parameters")
    try:
        if not parse_bool(args[0]):
            if len(args) > 1:
                raise ValueError("'off' takes no timeout")
            return SessionCache("off")
    except ValueError as e:
        if "takes no" in str(e):
            raise
    kind, colon, info = args[0].partition(":")
    if not colon:
        raise ValueError("badly formatted parameter")
    if kind != "internal" and kind not in EXTERNAL_CACHES:
        raise ValueError(f"session cache type '{kind}' not available: proftpy has 'internal:', 'shm:', "
                         "'redis:', 'memcache:' and 'off'")
    lifetime = None
    if len(args) == 2:
        if not args[1].lstrip("-").isdigit():
            raise ValueError(f"'{args[1]}' is not a valid timeout value")
        lifetime = parse_int(args[1], 1)
    if kind == "shm":
        path, size = _shm_info(info)
        return SessionCache("shm", lifetime, path, size)
    if kind == "memcache":
        if info not in ("", "/json") and info.lower() != "/json":
            raise ValueError(f"unknown memcache: info '{info}' (expected nothing or /json)")
        return SessionCache("memcache", lifetime, json=bool(info))
    if kind == "redis" and info:
        raise ValueError(f"unknown redis: info '{info}' (the server is mod_redis's RedisServer)")
    return SessionCache(kind, lifetime)


def parse_renegotiate(args: list[str]) -> str:
    """Accepted as ProFTPD 1.3.8 writes it; proftpy never renegotiates (ProFTPD's default since 1.3.8rc2)."""
    if args == ["none"]:
        return "none"
    i = 0
    while i < len(args):
        key = args[i].lower()
        if key not in ("ctrl", "data", "timeout", "required") or i + 1 >= len(args):
            raise ValueError(f"unknown TLSRenegotiate parameter '{args[i]}'")
        if key == "required":
            parse_bool(args[i + 1])
        else:
            parse_int(args[i + 1], 1)
        i += 2
    if not args:
        raise ValueError("wrong number of parameters")
    return " ".join(args)


def parse_ticket_keys(args: list[str]) -> str:
    i = 0
    while i < len(args):
        if args[i].lower() not in ("age", "count") or i + 1 >= len(args):
            raise ValueError(f"unknown TLSSessionTicketKeys parameter '{args[i]}'")
        parse_int(args[i + 1], 1)
        i += 2
    return " ".join(args)


def parse_verify_order(args: list[str]) -> list[str]:
    if not args or any(a.lower() not in ("crl", "ocsp") for a in args):
        raise ValueError("expected crl and/or ocsp")
    return [a.lower() for a in args]


PSK_MAX_IDENTITY_LEN = 256         # OpenSSL 3's


@dataclass(frozen=True)
class PreSharedKey:
    identity: str
    path: str                       # the key file (hex)


def parse_psk(args: list[str]) -> PreSharedKey:
    """`TLSPreSharedKey identity hex:/path`: ProFTPD 1.3.8 knows the `hex:` format only."""
    if len(args) != 2:
        raise ValueError("wrong number of parameters")
    identity, path = args
    if len(identity) > PSK_MAX_IDENTITY_LEN:
        raise ValueError(f"TLSPreSharedKey identity '{identity}' exceed maximum length {PSK_MAX_IDENTITY_LEN}")
    if len(path) < 5 or not path.startswith("hex:"):
        raise ValueError(f"unsupported TLSPreSharedKey format: {path}")
    if not path[4:].startswith("/"):
        raise ValueError(f"'{path[4:]}' is not an absolute path")
    return PreSharedKey(identity, path[4:])


def _unsupported(why: str):
    """A ProFTPD directive proftpy does not implement: a clear `FILE:LINE` error, never a silent no-op."""
    def refuse(args: list[str]) -> None:
        raise ValueError(f"not supported by proftpy: {why}")
    return Custom(refuse, "...")


def _accepted(args: list[str]) -> str:
    return " ".join(args)


STAPLING_CACHES = ("fs", "shm", "redis", "memcache")    # Debian's mod_tls_fscache, _shmcache, _redis, _memcache


@dataclass(frozen=True)
class StaplingCache:
    kind: str                   # "fs", "shm", "redis" (mod_redis's server), "memcache" (mod_memcache's)
    path: str                   # fs: the directory; shm: the file
    size: int = 0               # shm: bytes


def _stapling_cache(args: list[str]) -> StaplingCache:
    """`fs:/path=DIR` (mod_tls_fscache: a directory of responses), `shm:/file=PATH[&size=BYTES]`
    (mod_tls_shmcache), `redis:` (mod_tls_redis), `memcache:` (mod_tls_memcache); an unknown type is ProFTPD's
    error."""
    word = Str()(args)
    kind, colon, info = word.partition(":")
    if not colon:
        raise ValueError("badly formatted parameter")
    if kind not in STAPLING_CACHES:
        raise ValueError(f"OCSP stapling cache type '{kind}' not available")
    if kind in ("redis", "memcache"):
        if info:
            raise ValueError(f"unknown {kind}: info '{info}' (the server is mod_{kind}'s "
                             f"{'RedisServer' if kind == 'redis' else 'MemcacheServers'})")
        return StaplingCache(kind, "")
    if kind == "shm":
        from ..ocsptable import MIN_SIZE
        path, size = _shm_info(info, MIN_SIZE)
        return StaplingCache(kind, path, size)
    if not info.startswith("/path="):
        raise ValueError(f"fs: needs /path=DIR (badly formatted info '{info}')")
    path = info[len("/path="):]
    if not path.startswith("/"):
        raise ValueError(f"path '{path}' not an absolute path")
    return StaplingCache(kind, path.rstrip("/") or "/")


_FILE = Path()
_CERT = "A PEM file; checked at `-t` and at start (readable, not expired, matching its key)."
directives = (
    Directive("TLSEngine", Flag, SVG, False, Merge.SERVER,
              "Offer FTPS on this server: AUTH TLS, PBSZ, PROT, CCC, SSCN and their FEAT lines."),
    Directive("TLSProtocol", Custom(parse_protocols, "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3 | ALL [-+]proto ..."), SVG,
              DEFAULT_PROTOCOLS, Merge.SERVER,
              "TLS versions offered (SSLv23 = all). SSLv3 is accepted but never spoken: OpenSSL 3 has none. "
              "TLSv1 and TLSv1.1 also need `TLSOptions AllowWeakSecurity` (OpenSSL's security level)."),
    Directive("TLSCipherSuite", Custom(parse_cipher_suite, "[TLSv1.3] cipher-list"), SVG, None, Merge.SERVER,
              f"OpenSSL cipher list for TLSv1.2 and older (default `{DEFAULT_CIPHERS}`; `:!EXPORT` is always "
              "added); a `TLSv1.3` line sets the TLSv1.3 suites.", repeat=True),
    Directive("TLSServerCipherPreference", Flag, SVG, True, Merge.SERVER,
              "Pick the cipher by the server's order, not the client's."),
    Directive("TLSECDHCurve", Str("curve[:curve...]|auto"), SVG, None, Merge.SERVER,
              "ECDHE curves (groups), e.g. `secp384r1:prime256v1`; default: OpenSSL's choice."),
    Directive("TLSDHParamFile", _FILE, SVG, None, Merge.SERVER,
              "DH parameters (PEM) for DHE suites; without it OpenSSL's groups serve."),
    Directive("TLSRSACertificateFile", _FILE, SVG, None, Merge.SERVER, "The server's RSA certificate. " + _CERT),
    Directive("TLSRSACertificateKeyFile", _FILE, SVG, None, Merge.SERVER,
              "Its private key (default: in the certificate file)."),
    Directive("TLSECCertificateFile", _FILE, SVG, None, Merge.SERVER, "The server's EC certificate. " + _CERT),
    Directive("TLSECCertificateKeyFile", _FILE, SVG, None, Merge.SERVER,
              "Its private key (default: in the certificate file)."),
    Directive("TLSDSACertificateFile", _FILE, SVG, None, Merge.SERVER, "The server's DSA certificate. " + _CERT),
    Directive("TLSDSACertificateKeyFile", _FILE, SVG, None, Merge.SERVER,
              "Its private key (default: in the certificate file)."),
    Directive("TLSCertificateChainFile", _FILE, SVG, None, Merge.SERVER,
              "Intermediate CA certificates sent with the server's certificate."),
    Directive("TLSCACertificateFile", _FILE, SVG, None, Merge.SERVER, "CA certificates that verify clients."),
    Directive("TLSCACertificatePath", _FILE, SVG, None, Merge.SERVER,
              "Directory of hashed CA certificates (c_rehash) that verify clients."),
    Directive("TLSCARevocationFile", _FILE, SVG, None, Merge.SERVER,
              "CRLs (PEM) checked against client certificates."),
    Directive("TLSCARevocationPath", _FILE, SVG, None, Merge.SERVER, "Directory of hashed CRLs."),
    Directive("TLSVerifyClient", Custom(parse_verify_client, "on|off|optional"), SVG, "off", Merge.SERVER,
              "Ask for a client certificate: on requires one, optional verifies one if sent."),
    Directive("TLSVerifyDepth", Int(0), SVG, 9, Merge.SERVER, "Longest client certificate chain accepted."),
    Directive("TLSVerifyOrder", Custom(parse_verify_order, "crl|ocsp ..."), SVG, ["crl"], Merge.SERVER,
              "Accepted for compatibility: CRLs are checked; OCSP responders are not queried by proftpy."),
    Directive("TLSVerifyServer", Flag, SVG, True, Merge.SERVER,
              "SSCN client mode: verify the other server's certificate chain (against TLSCACertificate*, "
              "else the system's CAs)."),
    Directive("TLSUserName", Custom(parse_user_name, "CommonName|EmailSubjAltName|OID"), SVG, None, Merge.SERVER,
              "A client certificate whose attribute equals the USER name logs in without a password (`232`)."),
    Directive("TLSTimeoutHandshake", Custom(parse_duration, "seconds"), SVG, 300, Merge.SERVER,
              "Seconds a TLS handshake may take (0: no limit); then `421 TLS handshake failed`."),
    Directive("TLSLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_tls's own log (ProFTPD's line format)."),
    Directive("TLSSessionCache", Custom(parse_session_cache, "off | internal: | shm:/file=PATH[&size=BYTES] | "
                                        "redis: | memcache:[/json] [seconds]"), SERVER, None,
              Merge.SERVER, f"Each session's OpenSSL cache (`internal:`, lifetime {DEFAULT_CACHE_LIFETIME} s "
              "unless given), `off` (which also lifts the data connection's reuse requirement), or a cache "
              "shared by every session process, so a client that reconnects resumes its TLSv1.2/TLSv1.3 "
              "session (lifetime 1800 s unless given): `shm:` a file mapped by all (default size 1538 KiB), "
              "`redis:` mod_redis's server, `memcache:` mod_memcache's server (docs/tls.md)."),
    Directive("TLSSessionTickets", Flag, SVG, False, Merge.SERVER,
              "TLS session tickets (RFC 5077) for TLSv1.2; off (the default): session IDs. TLSv1.3 always "
              "resumes through tickets, kept in the session cache while this is off."),
    Directive("TLSSessionTicketKeys", Custom(parse_ticket_keys, "[age secs] [count n]"), SERVER, None,
              Merge.SERVER, "Accepted for compatibility: ticket keys are made by OpenSSL for each context, "
              "never written to disk, and die with it."),
    Directive("TLSRenegotiate", Custom(parse_renegotiate, "[ctrl secs] [data KB] [timeout secs] [required "
                                       "on|off] | none"), SVG, "none", Merge.SERVER,
              "Accepted for compatibility: proftpy never renegotiates (ProFTPD 1.3.8's default)."),
    Directive("TLSMasqueradeAddress", Str("address|name"), SERVER | VHOST, None, Merge.SERVER,
              "MasqueradeAddress for FTPS sessions only (wins over MasqueradeAddress there)."),
    Directive("TLSRequired", Custom(parse_required, "on|off|ctrl|[!]data|auth|auth+[!]data|ctrl+[!]data"),
              ALL_DIRS, Required(), Merge.DOWN,
              "What must be protected; in `<Directory>`/.ftpaccess only the data part counts (for "
              "APPE LIST MLSD NLST RETR STOR STOU)."),
    Directive("TLSOptions", parse_options, SVG, frozenset(), Merge.SERVER,
              "AllowClientRenegotiations AllowDotLogin AllowPerUser AllowWeakSecurity CommonNameRequired "
              "dNSNameRequired iPAddressRequired EnableDiags (session statistics at exit; OpenSSL's message "
              "tracing is not reachable from Python) ExportCertData IgnoreSNI NoEmptyFragments "
              "NoSessionReuseRequired StdEnvVars UseImplicitSSL; AllowWeakDH and NoAutoECDH do nothing "
              "(OpenSSL 3 sizes DH by its security level and always picks curves itself).", repeat=True),
    Directive("TLSPassPhraseProvider", _FILE, SERVER, None, Merge.SERVER,
              "Program run at start (`servername:port RSA|EC|DSA`) that prints the passphrase of an "
              "encrypted key."),
    Directive("TLSNextProtocol", Flag, SVG, True, Merge.SERVER, "Answer ALPN with `ftp`."),
    Directive("TLSRandomSeed", Custom(_accepted, "path"), SERVER, None, Merge.SERVER,
              "Accepted for compatibility: OpenSSL 3 seeds itself from the kernel."),
    Directive("TLSControlsACLs", Custom(ActionAcl.parser(CTRLS_ACTIONS, "action"),
                                        "actions|all allow|deny user|group list"), SERVER, None, Merge.SERVER,
              "Who may use `ftpdctl tls sesscache|ocspcache info|clear|remove` (actions sesscache, ocspcache, info, "
              "clear; `remove` goes with sesscache/ocspcache, as ProFTPD); default: nobody.", repeat=True),
    Directive("TLSStapling", Flag, SVG, False, Merge.SERVER,
              "OCSP stapling: a client that asks (status_request) gets the certificate's OCSP response in the "
              "handshake, control and data connections (docs/tls.md)."),
    Directive("TLSStaplingCache", Custom(_stapling_cache, "fs:/path=DIR | shm:/file=PATH[&size=N] | redis: | "
                                         "memcache:"), SERVER, None, Merge.SERVER,
              "Where stapled responses are kept between sessions: `fs:/path=DIR` (a file per certificate), `shm:` (a "
              "table shared by this daemon's sessions), `redis:` or `memcache:` (ProFTPD's keys)."),
    Directive("TLSStaplingOptions", Options(("NoNonce", "NoVerify", "NoFakeTryLater"), "TLSStaplingOption"), SVG,
              None, Merge.SERVER, "NoNonce (no nonce in requests), NoVerify (responses not verified), "
              "NoFakeTryLater (no response: staple nothing, not a fake tryLater)."),
    Directive("TLSStaplingResponder", Str("url"), SVG, None, Merge.SERVER,
              "The http:// or https:// OCSP responder to ask (default: the certificate's AuthorityInfoAccess URL)."),
    Directive("TLSStaplingTimeout", Custom(parse_duration, "seconds"), SVG, None, Merge.SERVER,
              "How long one request to the responder may take (default 10 s)."),
    Directive("TLSPKCS12File", _FILE, SVG, None, Merge.SERVER,
              "The server's certificate, private key and CA chain in one PKCS#12 file (a password-protected one "
              "asks TLSPassPhraseProvider, argument `PKCS12`); read at start and on HUP."),
    Directive("TLSPreSharedKey", Custom(parse_psk, "identity hex:/path"), SVG, None, Merge.SERVER,
              "A TLS-PSK identity and its key file (hex digits, at least 20 bytes, not world-readable), for TLSv1.2's "
              "PSK cipher suites and TLSv1.3's external PSKs; read at start and on HUP.",
              repeat=True),
    Directive("TLSCryptoDevice", _unsupported("OpenSSL engines"), SERVER, None, Merge.SERVER,
              "Not supported: a clear error."),
    Directive("TLSServerInfoFile", _unsupported("server info extensions"), SVG, None,
              Merge.SERVER, "Not supported: a clear error."),
    Directive("TLSKernelOffload", Flag, SVG, True, Merge.SERVER,
              "proftpy: offer kernel TLS to OpenSSL; downloads then go by sendfile(2) on each connection the "
              "kernel took over (checked per connection), else through user space as always."),
)
KEYS = (("TLSRSACertificateFile", "TLSRSACertificateKeyFile", "RSA"),
        ("TLSECCertificateFile", "TLSECCertificateKeyFile", "EC"),
        ("TLSDSACertificateFile", "TLSDSACertificateKeyFile", "DSA"))
