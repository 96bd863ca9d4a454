"""mod_ldap: users and groups from an LDAP directory (AuthOrder's `mod_ldap.c`), configured with ProFTPD 1.3.8's
LDAP* directives (mod_ldap/2.9.5).

The directory work is in proftpy/auth/ldap.py (the backend), proftpy/auth/ldap_proto.py (the LDAPv3 client) and
proftpy/auth/ldap_filter.py (filters). Here: the directives, each server's `Settings` and backend (offered to
AuthOrder where LDAPUsers or LDAPGroups is set), and what a session does: its LDAPLog opened as root at connect,
ProFTPD's session-start notices, the servers' addresses looked up before the chroot (`core.chroot`), the backend
bound again after HOST (`core.session-reinit`), and an unbind when the session ends.

The lookups other modules ask the session's backend for (ProFTPD's `ldap_quota_lookup` and
`ldap_ssh_publickey_lookup` hooks): `session_backend` hands it to mod_quotatab_ldap (`QuotaLimitTable ldap:`, the
ftpQuota attribute) and mod_sftp (`SFTPAuthorizedUserKeys ldap:`, the sshPublicKey attribute).

LDAPUseSASL makes the LDAPBindDN bind a SASL one (proftpy/auth/ldap_sasl.py, mechanisms in proftpy/auth/sasl*.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import privs
from ..auth import MAX_ID
from ..auth.ldap import LdapBackend, tls_context
from ..auth.ldap_config import (ATTRIBUTES, MOD_LDAP, SCOPE_WORDS, VERSION, ConfigError, ServerInfo, Settings,
                                default_servers, library_defaults, parse_server)
from ..auth.ldap_filter import FilterError, interpolate, parse
from ..auth.ldap_proto import DEREF_ALWAYS, DEREF_FINDING, DEREF_NEVER, DEREF_SEARCHING, SCOPE_BASE, SCOPE_SUB
from ..auth.sasl import PREFERENCE
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Str, bool_word
from ..log import NOTICE
from ..module import Listener, Module
from .modlog import ModuleLog
from .tls_directives import parse_duration

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

DIRECTIVE_NAMES = ("LDAPServer", "LDAPUsers", "LDAPGroups", "LDAPBindDN")


# -- directives ----------------------------------------------------------------------------------------------------
def _server(args: list[str]) -> tuple[ServerInfo, ...]:
    try:
        return parse_server(args)
    except ConfigError as e:
        raise ValueError(str(e)) from None


def _bind_dn(args: list[str]) -> tuple[str, str]:
    if not args:
        raise ValueError("missing parameters")
    return args[0], args[1] if len(args) > 1 else ""


def _base_and_filters(count: int, message: str):
    def parse_args(args: list[str]) -> tuple[str | None, ...]:
        if not args:
            raise ValueError("missing parameters")
        if bool_word(args[0]) is not None:
            raise ValueError(message)
        if len(args) > count + 1:
            raise ValueError("wrong number of parameters")
        return tuple(args) + (None,) * (count + 1 - len(args))
    return parse_args


_users = _base_and_filters(2, "first parameter must be the base DN, not on/off")
_groups = _base_and_filters(3, "first parameter must be the base DN, not on/off.")


def _attr(args: list[str]) -> tuple[str, str]:
    if len(args) < 2:
        raise ValueError("missing parameters")
    known = {a.lower(): a for a in ATTRIBUTES}
    if args[0].lower() not in known:
        raise ValueError(f": unknown attribute name: {args[0]}")
    return known[args[0].lower()], args[1]


def _numeric_id(what: str):
    def parse_args(args: list[str]) -> int:
        if not args:
            raise ValueError("missing parameters")
        word = args[0]
        if not word.isdigit() or int(word) > MAX_ID:
            raise ValueError(f"LDAPDefault{what}: {what} argument must be numeric")
        return int(word)
    return parse_args


def _flag_loose(args: list[str]) -> bool:
    """LDAPForceDefaultUID/GID: ProFTPD reads the first word without counting them."""
    value = bool_word(args[0]) if args else None
    if value is None:
        raise ValueError("expected Boolean parameter")
    return value


def _scope(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    scope = SCOPE_WORDS.get(args[0].lower())
    if scope is None:
        raise ValueError("search scope must be one of: base, onelevel, subtree")
    return scope


DEREF = {"never": DEREF_NEVER, "search": DEREF_SEARCHING, "find": DEREF_FINDING, "always": DEREF_ALWAYS}


def _deref(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    value = DEREF.get(args[0].lower())
    if value is None:
        raise ValueError(f"expected a valid dereference (never, search, find, always): {args[0]}")
    return value


def _protocol(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if not args[0].isdigit():
        raise ValueError("LDAPProtocolVersion: argument must be numeric!")
    return int(args[0])


def _timeout(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    try:
        return parse_duration(args)
    except ValueError:
        raise ValueError(f"error parsing timeout value '{args[0]}': Invalid argument") from None


def _prefix(args: list[str]) -> str:
    word = Str()(args)
    if not word:
        raise ValueError("must not be an empty string")
    return word


def _log(args: list[str]) -> str | None:
    word = Str()(args)
    return None if word.lower() == "none" else word


def _sasl(args: list[str]) -> tuple[str, ...]:
    """ProFTPD's list of mechanisms (upper-cased), less those proftpy has no client for, and EXTERNAL (a TLS client
    certificate: beyond ProFTPD 1.3.8, which refuses it)."""
    if not args:
        raise ValueError("wrong number of parameters")
    mechs = []
    for word in args:
        mech = word.upper()
        if mech not in PREFERENCE:
            if mech.startswith("SCRAM-SHA-"):
                raise ValueError(f"unsupported SASL mechanism: {word} (proftpy's SCRAM mechanisms are "
                                 f"{', '.join(m for m in PREFERENCE if m.startswith('SCRAM-'))})")
            raise ValueError(f"unsupported SASL mechanism: {word} (supported: {', '.join(PREFERENCE)})")
        if mech not in mechs:
            mechs.append(mech)
    return tuple(mechs)


directives = (
    Directive("LDAPServer", Custom(_server, "url|host[:port] ... [ssl-ca:path] [ssl-cert:path] [ssl-key:path] "
                                            "[ssl-ciphers:list] [ssl-verify:on|off|never|allow|try|demand]"),
              SVG, None, Merge.SERVER, "The directory servers, tried in order (`ldap://`, `ldaps://` URLs, whose "
              "scope is `base` unless they name one, or `host[:port]`); several lines add up.", repeat=True),
    Directive("LDAPBindDN", Custom(_bind_dn, "dn [password]"), SVG, None, Merge.SERVER,
              "The DN and password the session binds with to search (without it: anonymous binds)."),
    Directive("LDAPUsers", Custom(_users, "base-dn [name-filter [uid-filter]]"), SVG, None, Merge.SERVER,
              "Look users up under this base (`%u`/`%v` in it or the filters: the name, escaped); without it "
              "mod_ldap answers for no user."),
    Directive("LDAPGroups", Custom(_groups, "base-dn [name-filter [gid-filter [member-filter]]]"), SVG, None,
              Merge.SERVER, "Look groups (posixGroup) up under this base: by name, by GID, and the groups a user is a "
              "memberUid of."),
    Directive("LDAPAttr", Custom(_attr, "attribute new-name"), SVG, None, Merge.SERVER,
              "Use another attribute for uid, uidNumber, gidNumber, homeDirectory, userPassword, loginShell, cn, "
              "memberUid, ftpQuota, ftpQuotaProfileDN (QuotaLimitTable ldap:).", repeat=True),
    Directive("LDAPAuthBinds", Flag, SVG, True, Merge.SERVER,
              "on: check a password by binding as the user's DN; off: compare it with the userPassword attribute."),
    Directive("LDAPDefaultAuthScheme", Str("crypt|clear"), SVG, "crypt", Merge.SERVER,
              "The scheme of a userPassword without a `{scheme}` prefix (LDAPAuthBinds off)."),
    Directive("LDAPDefaultUID", Custom(_numeric_id("UID"), "uid"), SVG, None, Merge.SERVER,
              "UID of users without a uidNumber (else such users are unknown)."),
    Directive("LDAPDefaultGID", Custom(_numeric_id("GID"), "gid"), SVG, None, Merge.SERVER,
              "GID of users without a gidNumber (else such users are unknown)."),
    Directive("LDAPForceDefaultUID", Custom(_flag_loose, "on|off"), SVG, False, Merge.SERVER,
              "Every LDAP user gets LDAPDefaultUID, whatever its uidNumber."),
    Directive("LDAPForceDefaultGID", Custom(_flag_loose, "on|off"), SVG, False, Merge.SERVER,
              "Every LDAP user gets LDAPDefaultGID, whatever its gidNumber."),
    Directive("LDAPGenerateHomedir", Flag, SVG, False, Merge.SERVER,
              "Users without a homeDirectory get LDAPGenerateHomedirPrefix/name (CreateHome makes it)."),
    Directive("LDAPGenerateHomedirPrefix", Custom(_prefix, "path"), SVG, None, Merge.SERVER,
              "Where generated home directories are."),
    Directive("LDAPGenerateHomedirPrefixNoUsername", Flag, SVG, False, Merge.SERVER,
              "The generated home is the prefix itself, without the user's name."),
    Directive("LDAPForceGeneratedHomedir", Flag, SVG, False, Merge.SERVER,
              "Use the generated home even for users with a homeDirectory (needs LDAPGenerateHomedir)."),
    Directive("LDAPQueryTimeout", Custom(_timeout, "seconds"), SVG, 0, Merge.SERVER,
              "Seconds a search (and a bind) may take; 5 by default."),
    Directive("LDAPConnectTimeout", Custom(_timeout, "seconds"), SVG, 0, Merge.SERVER,
              "Seconds a connection to a server may take (by default the query timeout)."),
    Directive("LDAPSearchScope", Custom(_scope, "base|onelevel|subtree"), SVG, SCOPE_SUB, Merge.SERVER,
              "The scope of searches on `host[:port]` servers (a URL's own scope wins)."),
    Directive("LDAPAliasDereference", Custom(_deref, "never|search|find|always"), SVG, DEREF_NEVER, Merge.SERVER,
              "How searches dereference aliases."),
    Directive("LDAPProtocolVersion", Custom(_protocol, "2|3"), SVG, 3, Merge.SERVER,
              "The version sent in binds (2, else 3)."),
    Directive("LDAPUseTLS", Flag, SVG, None, Merge.SERVER,
              "StartTLS on `ldap://` and `host[:port]` servers (never falls back to a clear connection)."),
    Directive("LDAPLog", Custom(_log, "path|none"), SVG, None, Merge.SERVER,
              "mod_ldap's own log: connections, binds, filters, what each lookup found."),
    Directive("LDAPDefaultQuota", Str(), SVG, None, Merge.SERVER,
              "`QuotaLimitTable ldap:`'s limit for users whose entry has no ftpQuota (same layout: "
              "`per-session,hard|soft,bytes-in,bytes-out,bytes-xfer,files-in,files-out,files-xfer`)."),
    Directive("LDAPUseSASL", Custom(_sasl, "mech ..."), SVG, None, Merge.SERVER,
              "LDAPBindDN's bind is a SASL bind: SCRAM-SHA-*, DIGEST-MD5, CRAM-MD5, PLAIN, LOGIN (the strongest "
              "listed; PLAIN and LOGIN on TLS only), EXTERNAL (a TLS client certificate, first when there is one)."),
)


# -- settings and backend ------------------------------------------------------------------------------------------
def configured(server) -> bool:
    return any(server.get(name) is not None for name in DIRECTIVE_NAMES)


def _config_uses(config) -> bool:
    return any(config.sets(name) for name in DIRECTIVE_NAMES)


def settings(server) -> Settings:
    """A server's LDAP* directives (resolved once per configured server)."""
    return server.base.cached(_settings)


def _settings(server) -> Settings:
    attrs = {a.lower(): a for a in ATTRIBUTES}
    for p in server.section.all("LDAPAttr"):
        attrs[p.value[0].lower()] = p.value[1]
    scope = server.get("LDAPSearchScope")
    use_tls = server.get("LDAPUseTLS")
    library = library_defaults()
    infos = [info for p in server.section.all("LDAPServer") for info in p.value]
    configured_servers = bool(infos)
    if not infos:
        infos = list(default_servers(library))
    servers = []
    for info in infos:
        if info.scope is None:
            info = replace(info, scope=scope)
        if use_tls is not None and info.scheme == "ldap":
            info = replace(info, starttls=use_tls)
        servers.append(info)
    bind = server.get("LDAPBindDN")
    users = server.get("LDAPUsers")
    groups = server.get("LDAPGroups")
    uid, uid_number, gid_number = attrs["uid"], attrs["uidnumber"], attrs["gidnumber"]
    cn, member = attrs["cn"], attrs["memberuid"]
    return Settings(
        servers=tuple(servers), configured_servers=configured_servers,
        bind_dn=bind[0] if bind else "", bind_password=bind[1] if bind else "",
        users=users is not None, user_base=users[0] if users else None,
        user_name_filter=(users[1] if users and users[1] else f"(&({uid}=%v)(objectclass=posixAccount))"),
        user_uid_filter=(users[2] if users and users[2] else f"(&({uid_number}=%v)(objectclass=posixAccount))"),
        groups=groups is not None, group_base=groups[0] if groups else None,
        group_name_filter=(groups[1] if groups and groups[1] else f"(&({cn}=%v)(objectclass=posixGroup))"),
        group_gid_filter=(groups[2] if groups and groups[2] else f"(&({gid_number}=%v)(objectclass=posixGroup))"),
        group_member_filter=(groups[3] if groups and groups[3] else f"(&({member}=%v)(objectclass=posixGroup))"),
        attrs=attrs, auth_binds=server.get("LDAPAuthBinds"), default_scheme=server.get("LDAPDefaultAuthScheme"),
        default_uid=server.get("LDAPDefaultUID"), default_gid=server.get("LDAPDefaultGID"),
        force_default_uid=server.get("LDAPForceDefaultUID"), force_default_gid=server.get("LDAPForceDefaultGID"),
        generate_home=server.get("LDAPGenerateHomedir"), home_prefix=server.get("LDAPGenerateHomedirPrefix"),
        home_prefix_no_username=server.get("LDAPGenerateHomedirPrefixNoUsername"),
        force_generated_home=server.get("LDAPForceGeneratedHomedir"),
        query_timeout=server.get("LDAPQueryTimeout"), connect_timeout=server.get("LDAPConnectTimeout"),
        deref=server.get("LDAPAliasDereference"), protocol_version=2 if server.get("LDAPProtocolVersion") == 2 else 3,
        library=library, default_quota=server.get("LDAPDefaultQuota"), sasl_mechs=server.get("LDAPUseSASL") or ())


def backend(server) -> LdapBackend | None:
    """AuthOrder's `mod_ldap.c`: offered where LDAPUsers or LDAPGroups is set (elsewhere ProFTPD's mod_ldap
    declines every request)."""
    if server.get("LDAPUsers") is None and server.get("LDAPGroups") is None:
        return None
    return LdapBackend(settings(server))


# -- session -------------------------------------------------------------------------------------------------------
@dataclass
class LdapState:
    logfile: ModuleLog | None = None
    backend: LdapBackend | None = None


def _state(session: "Session") -> LdapState:
    return session.state.get(LdapState)


def session_init(session: "Session") -> None:
    """ProFTPD's ldap_sess_init: the LDAPLog (opened as root) and the notices a session starts with."""
    server = session.server
    if not configured(server):
        return
    st = _state(session)
    path = server.get("LDAPLog")
    if path is not None:
        st.logfile = ModuleLog(VERSION)
        with privs.default_privs().root():
            st.logfile.open(path, bool(server.get("AllowLogSymlinks")))
    s = settings(server)
    if not s.configured_servers:
        log.log(NOTICE, "%s: no LDAPServer configured, using LDAP library defaults", VERSION)
    if not s.users:
        log.warning("%s: LDAPUsers not configured, skipping LDAP-based user authentication", VERSION)
    if not s.groups:
        log.log(NOTICE, "%s: LDAPGroups not configured, skipping LDAP-based group memberships", VERSION)
    _bind(session)


def _bind(session: "Session", **_: Any) -> None:
    """The server's mod_ldap backend (in the session's auth chain) writes this session's LDAPLog; again after HOST
    chose another server (core.session-reinit)."""
    st = _state(session)
    if st.backend is not None:
        st.backend.close()
        st.backend = None
    for b, _ in session.auth.entries if session.auth is not None else ():
        if isinstance(b, LdapBackend):
            st.backend = b
            b.journal = st.logfile.write if st.logfile is not None else None
            b.on_unreachable = _unreachable
            break


def session_backend(session: "Session") -> LdapBackend | None:
    """The session's mod_ldap backend (None where mod_ldap answers for no user), for the quota and key lookups."""
    st = session.state.find(LdapState)
    return st.backend if st is not None else None


def _reinit(session: "Session", **_: Any) -> None:
    st = _state(session)
    if st.logfile is not None:
        st.logfile.close()
        st.logfile = None
    if st.backend is not None:
        st.backend.close()
        st.backend = None
    session_init(session)


def _unreachable(message: str) -> None:
    log.error("%s: unable to use any LDAP server: %s", VERSION, message)


def _before_chroot(session: "Session", **_: Any) -> None:
    """core.chroot: the servers' addresses and TLS settings while /etc is still the system's."""
    st = _state(session)
    if st.backend is not None:
        st.backend.prepare()


def _exit(session: "Session", **_: Any) -> None:
    st = _state(session)
    if st.backend is not None:
        st.backend.close()
    if st.logfile is not None:
        st.logfile.close()


def problems(config) -> list[tuple[str, bool]]:
    """`proftpy -t`: filter templates that are no filters, LDAPForceGeneratedHomedir without what it needs, TLS
    settings that do not load, URLs searching with scope base (warnings: ProFTPD starts too, and such lookups find
    nobody)."""
    out: list[tuple[str, bool]] = []

    def add(message: str) -> None:
        if (message, False) not in out:
            out.append((message, False))
    for server in config.servers:
        if not configured(server):
            continue
        s = settings(server)
        templates = [("LDAPUsers", s.user_name_filter), ("LDAPUsers", s.user_uid_filter)] if s.users else []
        if s.groups:
            templates += [("LDAPGroups", s.group_name_filter), ("LDAPGroups", s.group_gid_filter),
                          ("LDAPGroups", s.group_member_filter)]
        for name, template in templates:
            try:
                parse(interpolate(template, "name"))
            except FilterError as e:
                add(f"{VERSION}: {name} filter '{template}' is not a search filter ({e}): lookups with it fail")
        if s.force_generated_home and (not s.generate_home or s.home_prefix is None):
            add(f"{VERSION}: LDAPForceGeneratedHomedir needs LDAPGenerateHomedir on and LDAPGenerateHomedirPrefix: "
                "every LDAP user with a homeDirectory is unknown")
        for info in s.servers:
            if info.tls:
                try:
                    tls_context(info, s.library)
                except (OSError, ValueError) as e:
                    add(f"{VERSION}: TLS settings for '{info.text}' unusable: {e}: this server is never used")
            if info.scope == SCOPE_BASE and "://" in info.text and "??base" not in info.text.lower():
                add(f"{VERSION}: WARNING: '{info.text}': LDAP URL search scopes default to 'base', not 'subtree', "
                    "and may not be what you want (see LDAPSearchScope)")
    return out


MODULE = Module(MOD_LDAP, directives=directives, auth_backend=backend, session_init=session_init,
                session_active=_config_uses, check=problems,
                listeners=(Listener("core.chroot", _before_chroot, _config_uses),
                           Listener("core.session-reinit", _reinit, _config_uses),
                           Listener("core.exit", _exit, _config_uses)))
