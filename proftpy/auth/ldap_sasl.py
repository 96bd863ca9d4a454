"""LDAPUseSASL: the LDAPBindDN bind made a SASL bind, as ProFTPD's mod_ldap makes it through
ldap_sasl_interactive_bind_s. Its interaction callback answers libsasl2 with: the authentication id, the value of
LDAPBindDN's first RDN when that is a `cn` (else ldap.conf's SASL_AUTHCID, else empty); the password, LDAPBindDN's;
the authorization id and realm, ldap.conf's SASL_AUTHZID and SASL_REALM (else empty). The DN itself goes in the
BindRequest's name, as libldap sends it. Only that bind is SASL: LDAPAuthBinds' bind as the user stays simple.

EXTERNAL (beyond ProFTPD 1.3.8, which refuses it) authenticates with the TLS client certificate of the server's
`ssl-cert:`/`ssl-key:` (or ldap.conf's TLS_CERT/TLS_KEY); LDAPBindDN's DN and password are not used by it.

The mechanisms themselves are proftpy/auth/sasl*.py."""

from __future__ import annotations

from proftpy import trace
from proftpy.auth.ldap_config import ServerInfo, Settings
from proftpy.auth.ldap_proto import SASL_BIND_IN_PROGRESS, SUCCESS, Connection, LdapError, Result
from proftpy.auth.sasl import (SCRAM_HASHES, CramMd5, External, Identity, Login, Mechanism, Plain, SaslError,
                               choose)
from proftpy.auth.sasl_digest import DigestMd5
from proftpy.auth.sasl_scram import Scram
from proftpy.auth.saslprep import stable

MAX_STEPS = 8                       # SCRAM and DIGEST-MD5 take 2 or 3 round trips
AUTH_UNKNOWN, LOCAL_ERROR = -6, -2  # libldap's codes for "no worthy mechanism" and a failed SASL step


def client(name: str, who: Identity, nonce: bytes | None = None) -> Mechanism:
    """The mechanism `name` (one of PREFERENCE but ANONYMOUS) for `who`; `nonce`: a fixed client nonce (tests)."""
    if name in SCRAM_HASHES:
        return Scram(who, name, SCRAM_HASHES[name], nonce)
    if name == "DIGEST-MD5":
        return DigestMd5(who, nonce)
    return {"EXTERNAL": External, "PLAIN": Plain, "LOGIN": Login, "CRAM-MD5": CramMd5}[name](who)


def first_rdn(dn: str) -> tuple[str, str] | None:
    """(attribute type, value) of a DN's first RDN, as written (escapes kept, as ldap_rdn2str keeps them)."""
    i, n = 0, len(dn)
    while i < n and dn[i] not in ",;":
        i += 2 if dn[i] == "\\" else 1
    attribute, equals, value = dn[:i].partition("=")
    if not equals:
        return None
    return attribute.strip(), value.strip()


def identity(settings: Settings, info: ServerInfo) -> Identity:
    library = settings.library
    authcid = library.get("SASL_AUTHCID", "")
    rdn = first_rdn(settings.bind_dn)
    if rdn is not None and rdn[0].lower() == "cn":
        authcid = rdn[1]
    return Identity(authcid, settings.bind_password, library.get("SASL_AUTHZID", ""), library.get("SASL_REALM", ""),
                    info.host or "localhost")


def sasl_bind(conn: Connection, settings: Settings, info: ServerInfo, deadline: float,
              nonce: bytes | None = None) -> Result:
    """The SASL bind on `conn`: the server's final result; LdapError when no mechanism may be used (-6, libldap's
    "Unknown authentication method") or the server's SASL data is wrong (-2)."""
    name = choose(settings.sasl_mechs, info.tls, bool(info.ssl_cert or settings.library.get("TLS_CERT")))
    if trace.on: trace.msg("ldap", 17, "performing bind using SASL mechs: '%s'", " ".join(settings.sasl_mechs))
    if name is None:
        raise LdapError(AUTH_UNKNOWN, "SASL(-4): no mechanism available: No worthy mechs found")
    if trace.on: trace.msg("ldap", 17, "SASL/%s authentication started", name)
    who = identity(settings, info)
    if trace.on and name in SCRAM_HASHES and not (stable(who.authcid) and stable(who.password)):
        trace.msg("ldap", 8, "SASL/%s: name or password changes under SASLprep (RFC 4013): sent as is, "
                  "as libsasl2 sends it", name)
    try:
        mechanism = client(name, who, nonce)
        credentials = mechanism.start()
        for _ in range(MAX_STEPS):
            result, server = conn.sasl_bind(settings.bind_dn, name, credentials, settings.protocol_version, deadline)
            if result.code != SASL_BIND_IN_PROGRESS:
                if result.code == SUCCESS:
                    mechanism.finish(server)
                return result
            credentials = mechanism.step(server or b"")
    except SaslError as e:
        conn.close()
        raise LdapError(LOCAL_ERROR, str(e)) from None
    conn.close()
    raise LdapError(LOCAL_ERROR, f"SASL/{name}: more than {MAX_STEPS} steps")
