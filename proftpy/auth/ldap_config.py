"""mod_ldap's configuration: LDAPServer's words (`ldap://` and `ldaps://` URLs, `host[:port]`, the `ssl-*:` options;
a host without a URL becomes `ldap://host:port/??<LDAPSearchScope>`, and a URL's scope, `base` when it names none
(RFC 4516), wins over LDAPSearchScope, as in ProFTPD), ldap.conf's defaults, and `Settings`, what a server's LDAP*
directives say (built by proftpy/modules/ldap.py, used by proftpy/auth/ldap.py's backend)."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field, replace

from proftpy.auth import MAX_ID
from proftpy.auth.ldap_proto import DEREF_NEVER, SCOPE_BASE, SCOPE_ONE, SCOPE_SUB

MOD_LDAP = "mod_ldap.c"
VERSION = "mod_ldap/2.9.5"
LDAP_PORT, LDAPS_PORT = 389, 636
QUERY_TIMEOUT = 5               # ProFTPD's PR_LDAP_QUERY_TIMEOUT_DEFAULT, when LDAPQueryTimeout is not set
LDAP_CONF = "/etc/ldap/ldap.conf"
SCOPE_WORDS = {"base": SCOPE_BASE, "one": SCOPE_ONE, "onelevel": SCOPE_ONE, "sub": SCOPE_SUB, "subtree": SCOPE_SUB}
SCOPE_NAMES = {SCOPE_BASE: "base", SCOPE_ONE: "one", SCOPE_SUB: "sub"}
# LDAPAttr's names (ProFTPD's spelling) and the attribute each stands for by default
ATTRIBUTES = ("uid", "uidNumber", "gidNumber", "homeDirectory", "userPassword", "loginShell", "cn", "memberUid",
              "ftpQuota", "ftpQuotaProfileDN")


class ConfigError(ValueError):
    """An LDAPServer word ProFTPD refuses too."""


# -- LDAPServer ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerInfo:
    """One directory server of LDAPServer: where it is and how to talk to it."""

    text: str                           # as configured (ProFTPD's info_text)
    scheme: str = "ldap"                # ldap or ldaps
    host: str = ""                      # "" is the library's default (localhost)
    port: int = LDAP_PORT
    scope: int | None = None            # a URL's scope; None: a host[:port] (LDAPSearchScope decides)
    starttls: bool = False              # LDAPUseTLS on an ldap:// server
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    ssl_ciphers: str | None = None
    ssl_verify: str | None = None       # never, allow, try, demand (on), hard

    @property
    def url(self) -> str:
        """The URL the connection is made to (ProFTPD's url_text)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/??{SCOPE_NAMES.get(self.scope, 'sub')}"

    @property
    def tls(self) -> bool:
        return self.scheme == "ldaps" or self.starttls


VERIFY_WORDS = {"allow": "allow", "demand": "demand", "never": "never", "try": "try", "hard": "hard"}


def _verify(word: str) -> str:
    low = word.lower()
    if low in ("on", "yes", "true", "1"):
        return "demand"
    if low in ("off", "no", "false", "0"):
        return "never"
    if low in ("allow", "demand", "never", "try"):
        return low
    raise ConfigError(f"unknown/unsupported 'ssl-verify' value: {word}")


def parse_url(text: str) -> ServerInfo:
    """An LDAP URL (RFC 4516) as LDAPServer takes it: scheme ldap or ldaps, a host and port, a scope; a DN or a
    filter is refused (they belong to LDAPUsers/LDAPGroups)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ConfigError(f"invalid LDAP URL '{text}': Bad parameter to an ldap routine")
    scheme = scheme.lower()
    if scheme not in ("ldap", "ldaps"):
        raise ConfigError(f"invalid scheme specified by URL '{text}': valid schemes are 'ldap' or 'ldaps'")
    hostport, slash, tail = rest.partition("/")
    host, port = hostport, 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ConfigError(f"invalid LDAP URL '{text}': Bad parameter to an ldap routine")
        host, after = hostport[1:end], hostport[end + 1:]
        if after:
            if not after.startswith(":"):
                raise ConfigError(f"invalid LDAP URL '{text}': Bad parameter to an ldap routine")
            port = _url_port(text, after[1:])
    elif ":" in hostport:
        host, _, digits = hostport.partition(":")
        port = _url_port(text, digits)
    host = urllib.parse.unquote(host)
    fields = tail.split("?") if slash else [""]
    if len(fields) > 5:
        raise ConfigError(f"invalid LDAP URL '{text}': Bad parameter to an ldap routine")
    fields += [""] * (5 - len(fields))
    dn, _, scope_word, filter_text, _ = fields
    if urllib.parse.unquote(dn):
        raise ConfigError(f"{text}: a base DN may not be specified by an LDAPServer URL, only by LDAPUsers or "
                          "LDAPGroups")
    if urllib.parse.unquote(filter_text):
        raise ConfigError(f"{text}: a search filter may not be specified by an LDAPServer URL, only by LDAPUsers or "
                          "LDAPGroups")
    if scope_word and scope_word.lower() not in ("base", "one", "sub"):
        raise ConfigError(f"invalid LDAP URL '{text}': Bad parameter to an ldap routine")
    scope = SCOPE_WORDS[scope_word.lower()] if scope_word else SCOPE_BASE     # RFC 4516: base by default
    return ServerInfo(text, scheme, host, port or (LDAPS_PORT if scheme == "ldaps" else LDAP_PORT), scope)


def _url_port(text: str, digits: str) -> int:
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise ConfigError(f"invalid LDAP URL '{text}': Bad parameter to an ldap routine")
    return int(digits)


def is_url(word: str) -> bool:
    return "://" in word and word.split("://", 1)[0].lower() in ("ldap", "ldaps", "ldapi", "cldap")


def parse_server(args: list[str]) -> tuple[ServerInfo, ...]:
    """`LDAPServer url|host[:port] ... [ssl-ca:path] [ssl-cert:path] [ssl-key:path] [ssl-ciphers:list]
    [ssl-verify:word]`: the servers in order, each `ssl-*:` option applying to the server before it; a word may
    hold several servers separated by white space (ProFTPD splits them)."""
    if not args:
        raise ConfigError("wrong number of parameters")
    items = [w for arg in args for w in arg.split()]
    servers: list[ServerInfo] = []
    options = {"ssl-ca:": "ssl_ca", "ssl-cert:": "ssl_cert", "ssl-key:": "ssl_key", "ssl-ciphers:": "ssl_ciphers",
               "ssl-verify:": "ssl_verify"}
    what = {"ssl-ca:": "SSL CA file", "ssl-cert:": "SSL certificate file", "ssl-key:": "SSL certificate key file"}
    for item in items:
        prefix = next((p for p in options if item.startswith(p)), None)
        if prefix is not None:
            if not servers:
                raise ConfigError("wrong order of parameters")
            value = item[len(prefix):]
            if prefix in what and not os.path.exists(value):
                raise ConfigError(f"{what[prefix]} '{value}': No such file or directory")
            if prefix == "ssl-verify:":
                value = _verify(value)
            servers[-1] = replace(servers[-1], **{options[prefix]: value})
            continue
        if is_url(item):
            servers.append(parse_url(item))
            continue
        host, colon, digits = item.partition(":")
        port = LDAP_PORT
        if colon:
            port = _atoi(digits)
            if port <= 0 or port > 65535:
                raise ConfigError(f"unable to parse '{digits}' as a port number for '{item}'")
        servers.append(ServerInfo(item, "ldap", host, port, None))
    return tuple(servers)


def _atoi(text: str) -> int:
    """C's atoi: the leading digits (and sign), 0 when there are none."""
    text = text.lstrip()
    sign, digits = 1, ""
    if text[:1] in "+-" and text[:1]:
        sign, text = (-1 if text[0] == "-" else 1), text[1:]
    for c in text:
        if not c.isdigit():
            break
        digits += c
    return sign * int(digits) if digits else 0


def strtoul(text: str) -> int | None:
    """An id as ProFTPD's strtoul reads it (leading digits; none is 0); None when it is no uid_t/gid_t one could
    log in with (proftpy refuses what would wrap around)."""
    text = text.strip()
    digits = ""
    for c in text.lstrip("+"):
        if not c.isdigit():
            break
        digits += c
    value = int(digits) if digits else 0
    if text.startswith("-") or value > MAX_ID:
        return None
    return value


LIBRARY_KEYS = ("URI", "TLS_CACERT", "TLS_CACERTDIR", "TLS_REQCERT", "TLS_CERT", "TLS_KEY", "SASL_AUTHCID",
                "SASL_AUTHZID", "SASL_REALM")


def library_defaults(path: str = LDAP_CONF) -> dict[str, str]:
    """The few settings of ldap.conf(5) that apply to a connection ProFTPD's libldap makes without being told: URI
    (when no LDAPServer is configured), TLS_CACERT, TLS_CACERTDIR, TLS_REQCERT, TLS_CERT, TLS_KEY, and for
    LDAPUseSASL SASL_AUTHCID, SASL_AUTHZID, SASL_REALM."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = line.split(None, 1)
                if len(words) == 2 and not words[0].startswith("#"):
                    key = words[0].upper()
                    if key in LIBRARY_KEYS:
                        out.setdefault(key, words[1].strip())
    except OSError:
        pass                        # no ldap.conf: libldap's built-in defaults
    return out


def default_servers(defaults: dict[str, str]) -> tuple[ServerInfo, ...]:
    """No LDAPServer: ldap.conf's URI, else libldap's default, localhost."""
    for word in defaults.get("URI", "").split():
        try:
            return (parse_url(word),)
        except ConfigError:
            continue
    return (ServerInfo("localhost", "ldap", "localhost", LDAP_PORT, None),)


# -- settings ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """What a server's LDAP* directives say (defaults: ProFTPD's)."""

    servers: tuple[ServerInfo, ...] = ()
    configured_servers: bool = True     # False: LDAPServer missing (ldap.conf's URI or localhost)
    bind_dn: str = ""
    bind_password: str = ""
    users: bool = False
    user_base: str | None = None
    user_name_filter: str = "(&(uid=%v)(objectclass=posixAccount))"
    user_uid_filter: str = "(&(uidNumber=%v)(objectclass=posixAccount))"
    groups: bool = False
    group_base: str | None = None
    group_name_filter: str = "(&(cn=%v)(objectclass=posixGroup))"
    group_gid_filter: str = "(&(gidNumber=%v)(objectclass=posixGroup))"
    group_member_filter: str = "(&(memberUid=%v)(objectclass=posixGroup))"
    attrs: dict[str, str] = field(default_factory=lambda: {a.lower(): a for a in ATTRIBUTES})
    auth_binds: bool = True
    default_scheme: str = "crypt"
    default_uid: int | None = None
    default_gid: int | None = None
    force_default_uid: bool = False
    force_default_gid: bool = False
    generate_home: bool = False
    home_prefix: str | None = None
    home_prefix_no_username: bool = False
    force_generated_home: bool = False
    query_timeout: int = 0              # 0: QUERY_TIMEOUT
    connect_timeout: int = 0            # 0: the query timeout
    deref: int = DEREF_NEVER
    protocol_version: int = 3
    library: dict = field(default_factory=dict)     # ldap.conf's TLS defaults
    default_quota: str | None = None                # LDAPDefaultQuota: an ftpQuota value for entries without one
    sasl_mechs: tuple[str, ...] = ()                # LDAPUseSASL: the LDAPBindDN bind is a SASL one

    def attr(self, name: str) -> str:
        return self.attrs[name.lower()]

    @property
    def timeout(self) -> float:
        return float(self.query_timeout if self.query_timeout > 0 else QUERY_TIMEOUT)
