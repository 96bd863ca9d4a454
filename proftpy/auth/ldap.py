"""mod_ldap: users and groups from an LDAP directory (AuthOrder's `mod_ldap.c`), with ProFTPD 1.3.8's rules
(contrib/mod_ldap.c, mod_ldap/2.9.5), over proftpy's own LDAPv3 client (proftpy/auth/ldap_proto.py).

- LDAPServer's words and `Settings` (what a server's LDAP* directives say) are proftpy/auth/ldap_config.py's.
- `LdapBackend`: the auth module. A session connects to the first server that answers and binds with LDAPBindDN
  (anonymously without it), keeps that connection and searches over it (sizeLimit 2 for a user or a group: two
  answers are no answer), reconnects once when the server went away, and tries the next LDAPServer when one fails.
  `LDAPAuthBinds on` (the default) checks a password by binding as the user's DN on a connection of its own;
  `off` compares the userPassword attribute (`{crypt}`, `{clear}` and a bare value read as LDAPDefaultAuthScheme,
  as ProFTPD; beyond ProFTPD 1.3.8, which declines them, `{MD5}`, `{SMD5}`, `{SHA}`, `{SSHA}` and the SHA-2
  forms of OpenLDAP's slappasswd).
- Every name a client sends reaches a filter escaped (ldap_filter.interpolate) and then parsed into BER: it stays
  one value whatever it holds.

What a directory cannot answer (no server reachable, a timeout, a failed search) is a declined lookup: the next
module in AuthOrder is asked, and an unknown user gets 530. The details go to the LDAPLog (`journal`), as in
ProFTPD, and the first unreachable directory of a session to the SystemLog.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import socket
import time
from typing import TYPE_CHECKING, Callable, Sequence

from proftpy import privs, trace
from proftpy.auth import Account, Group
from proftpy.auth import ldap_filter
from proftpy.auth.crypt import crypt_verify
from proftpy.auth.ldap_config import MOD_LDAP, VERSION, ServerInfo, Settings, strtoul
from proftpy.auth.ldap_proto import (INVALID_CREDENTIALS, SCOPE_BASE, SCOPE_SUB, SUCCESS, Connection, Entry, LdapError,
                                     ServerDown)
from proftpy.auth.ldap_sasl import sasl_bind

if TYPE_CHECKING:
    import ssl                  # loaded only for a TLS server: a plain session never loads ssl

log = logging.getLogger("proftpy.auth.ldap")

# -- passwords -----------------------------------------------------------------------------------------------------
def _bytes(text: str | bytes) -> bytes:
    return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)


def _digest(name: str, salted: bool, size: int) -> Callable[[bytes, str], bool]:
    """`{SCHEME}base64(digest(password [+ salt]) [+ salt])`, the salt being what follows the digest's `size`."""
    def check(password: bytes, value: str) -> bool:
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except ValueError:
            return False
        if len(raw) < size or (not salted and len(raw) != size) or (salted and len(raw) == size):
            return False
        salt = raw[size:]
        return hmac.compare_digest(hashlib.new(name, password + salt).digest(), raw[:size])
    return check


# beyond ProFTPD 1.3.8 (which declines any scheme but crypt and clear): OpenLDAP's slappasswd schemes
DIGEST_SCHEMES = {
    "md5": _digest("md5", False, 16), "smd5": _digest("md5", True, 16),
    "sha": _digest("sha1", False, 20), "ssha": _digest("sha1", True, 20),
    "sha256": _digest("sha256", False, 32), "ssha256": _digest("sha256", True, 32),
    "sha384": _digest("sha384", False, 48), "ssha384": _digest("sha384", True, 48),
    "sha512": _digest("sha512", False, 64), "ssha512": _digest("sha512", True, 64),
}


def split_scheme(stored: str, default_scheme: str) -> tuple[str, str]:
    """(scheme, value) of a userPassword as ProFTPD reads it: the scheme runs from the second character to the
    first `}` after it; without one, the whole value is of LDAPDefaultAuthScheme's scheme."""
    close = stored.find("}", 1)
    if close < 0:
        return default_scheme, stored
    return stored[1:close], stored[close + 1:]


def check_password(stored: str, password: str | bytes, default_scheme: str = "crypt") -> tuple[bool, str]:
    """Whether `password` matches the userPassword value `stored`, and the scheme it was read as. ProFTPD's test
    of the scheme is a prefix one (`{c}` is crypt): kept, so a directory ProFTPD reads is read the same."""
    if not stored:
        return False, ""
    scheme, value = split_scheme(stored, default_scheme)
    low = scheme.lower()
    secret = _bytes(password)
    if "crypt".startswith(low):
        return bool(value) and crypt_verify(secret, value), scheme
    if "clear".startswith(low):
        return hmac.compare_digest(secret, _bytes(value)), scheme
    check = DIGEST_SCHEMES.get(low)
    if check is None:
        return False, scheme
    return check(secret, value), scheme


# -- the backend ---------------------------------------------------------------------------------------------------
def _resolve(info: ServerInfo) -> list[tuple]:
    return socket.getaddrinfo(info.host or "localhost", info.port, type=socket.SOCK_STREAM)


def tls_context(info: ServerInfo, defaults: dict[str, str]) -> ssl.SSLContext:
    """The TLS client context of one server: ssl-ca (else ldap.conf's TLS_CACERT, else the system's CAs),
    ssl-cert/ssl-key, ssl-ciphers (OpenSSL's syntax), ssl-verify (else ldap.conf's TLS_REQCERT, else demand:
    the certificate and the host name are checked)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    verify = (info.ssl_verify or defaults.get("TLS_REQCERT", "demand")).lower()
    if verify in ("never", "allow"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif verify == "try":
        ctx.check_hostname = False
    ca = info.ssl_ca or defaults.get("TLS_CACERT")
    cadir = None if info.ssl_ca else defaults.get("TLS_CACERTDIR")
    if ctx.verify_mode != ssl.CERT_NONE:
        if ca or cadir:
            ctx.load_verify_locations(cafile=ca or None, capath=cadir or None)
        else:
            ctx.load_default_certs()
    cert = info.ssl_cert or defaults.get("TLS_CERT")
    if cert:
        ctx.load_cert_chain(cert, info.ssl_key or defaults.get("TLS_KEY") or None)
    if info.ssl_ciphers:
        ctx.set_ciphers(info.ssl_ciphers)
    return ctx


_MISS = object()
SSH_PUBLIC_KEY = "sshPublicKey"          # ProFTPD's mod_ldap reads this attribute (LDAPAttr cannot rename it)


class LdapBackend:
    """The `mod_ldap.c` auth module. It answers for the users (LDAPUsers) and groups (LDAPGroups) its directory
    holds and declines the rest; a wrong password for a user it found ends the login (ProFTPD: "if we've found
    their LDAP entry, chances are that nothing else will be able to auth them").

    A session sets `journal` (the LDAPLog's writer) and `on_unreachable` (the SystemLog line when no server
    answers). Lookups are remembered for the session (a login asks for the same user and groups several times)."""

    name = MOD_LDAP
    declines_on_failure = False
    uses_crypt = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.journal: Callable[[str], None] | None = None
        self.on_unreachable: Callable[[str], None] | None = None
        self._conn: Connection | None = None             # the search connection, and its server
        self._conn_info: ServerInfo | None = None
        self._index = 0                                 # the server in use (ProFTPD's curr_server_index)
        self._addresses: dict[int, list[tuple]] = {}    # server index -> resolved addresses
        self._tls: dict[int, ssl.SSLContext | Exception] = {}
        self._dn: dict[Account, str] = {}               # the entry each account came from (auth binds)
        self._users: dict = {}
        self._groups: dict = {}
        self._memberships: dict[str, list[Group]] = {}
        self._quotas: dict[str, list[str] | None] = {}
        self._ssh_keys: dict[str, list[str] | None] = {}
        self._warned = False

    # logging -------------------------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        """A line for the LDAPLog (ProFTPD's pr_log_writefile(ldap_logfd, ...)) and the `ldap` trace channel."""
        if trace.on: trace.msg("ldap", 10, "%s", text)
        if self.journal is not None:
            self.journal(text)

    # setup (master and session, before the chroot) -----------------------------------------------------------
    def warm(self) -> list[str]:
        """In the master before any fork: each TLS server's context (certificate files are read as root now);
        the problems, for the SystemLog. Nothing is connected here: a connection must not cross a fork."""
        problems = []
        for i, info in enumerate(self.settings.servers):
            if info.tls and i not in self._tls:
                context = self._make_tls(i, info)
                if isinstance(context, Exception):
                    problems.append(f"{VERSION}: TLS settings for '{info.text}' unusable: {context}")
        return problems

    def _make_tls(self, i: int, info: ServerInfo) -> ssl.SSLContext | Exception:
        try:
            with privs.default_privs().root():
                context: ssl.SSLContext | Exception = tls_context(info, self.settings.library)
        except (OSError, ValueError) as e:          # ssl.SSLError is an OSError
            context = e
        self._tls[i] = context
        return context

    def prepare(self) -> None:
        """Before the session's chroot: every server's addresses looked up now (the resolver's files are out of
        reach afterwards), and the TLS contexts made if the master did not make them."""
        for i, info in enumerate(self.settings.servers):
            self._lookup_addresses(i, info)
            if info.tls and i not in self._tls:
                self._make_tls(i, info)

    def _lookup_addresses(self, i: int, info: ServerInfo) -> list[tuple]:
        found = self._addresses.get(i)
        if found is None:
            try:
                found = _resolve(info)
            except (OSError, UnicodeError) as e:
                self.note(f"unable to resolve '{info.host or 'localhost'}': {e}")
                return []
            self._addresses[i] = found
        return found

    def sample_hash(self) -> str | None:
        return None                 # the master never asks the directory

    # connections ---------------------------------------------------------------------------------------------
    def _open(self, i: int, info: ServerInfo, bind: bool) -> Connection:
        """One server's connection, TLS started and (`bind`) bound as LDAPBindDN; LdapError when any step fails."""
        s = self.settings
        self.note(f"attempting connection to URL {info.url}")
        addresses = self._lookup_addresses(i, info)
        if not addresses:
            raise ServerDown(f"cannot resolve '{info.host or 'localhost'}'")
        conn = Connection.open(addresses, s.connect_timeout or s.timeout, info.url)
        stage = "tls"
        try:
            self.note(f"set LDAP protocol version to {s.protocol_version}")
            deadline = time.monotonic() + s.timeout
            if info.tls:
                context = self._tls.get(i) or self._make_tls(i, info)
                if isinstance(context, Exception):
                    raise LdapError(-11, f"TLS settings unusable: {context}")
                if info.scheme == "ldap":
                    self.note(f"LDAPUseTLS in effect, performing STARTTLS handshake on '{info.text}'")
                    result = conn.start_tls(deadline)
                    if result.code != SUCCESS:
                        raise LdapError(result.code, result.message)
                conn.wrap(context, info.host or "localhost", deadline)
                self.note(f"enabled TLS for connection to '{info.text}'")
            stage = "bind"
            if bind:
                if s.sasl_mechs:
                    result = sasl_bind(conn, s, info, deadline)
                else:
                    result = conn.bind(s.bind_dn, s.bind_password, s.protocol_version, deadline)
                if result.code != SUCCESS:
                    raise LdapError(result.code, result.message)
                self.note(f"successfully bound as DN '{s.bind_dn or '(anonymous)'}' with password "
                          f"{'(see config)' if s.bind_password else '(none)'} for '{info.text}'")
            self.note(f"set dereferencing to {s.deref}")
            self.note(f"set query timeout to {int(s.timeout)} secs")
            return conn
        except LdapError as e:
            conn.close()
            e.stage = stage
            raise

    def _connect(self, bind: bool) -> tuple[Connection, ServerInfo] | None:
        """The first server, from the one in use on, that connects (ProFTPD's pr_ldap_connect); None after a log
        line for each failure."""
        servers = self.settings.servers
        errors = []
        for k in range(len(servers)):
            i = (self._index + k) % len(servers)
            info = servers[i]
            try:
                conn = self._open(i, info, bind)
            except LdapError as e:
                # libldap connects at the first operation: ProFTPD's line for a server that does not answer is
                # the bind's (or, LDAPAuthBinds' connection, the user's bind)
                stage = getattr(e, "stage", "connect")
                if stage == "tls":
                    self.note(f"failed to start TLS: {e.text}")
                elif bind:
                    self.note(f"bind as DN '{self.settings.bind_dn or '(anonymous)'}' failed for '{info.text}': "
                              f"{e.text}")
                else:
                    self.note(f"unable to connect to '{info.text}': {e.text}")
                errors.append(f"{info.url}: {e.text}")
                continue
            self._index = i
            return conn, info
        if not self._warned:
            self._warned = True
            message = "; ".join(errors) or "no LDAPServer"
            if self.on_unreachable is not None:
                self.on_unreachable(message)
            else:
                log.warning("%s: no LDAP server could be used: %s", VERSION, message)
        return None

    def _connection(self) -> tuple[Connection, ServerInfo] | None:
        """The search connection (bound as LDAPBindDN), made when there is none or the last one went away."""
        if self._conn is not None and not self._conn.closed and self._conn_info is not None:
            return self._conn, self._conn_info
        found = self._connect(bind=True)
        self._conn, self._conn_info = found if found is not None else (None, None)
        return found

    def close(self) -> None:
        """Unbind and close (the session ends; a HOST to another server)."""
        if self._conn is not None:
            self._conn.unbind()
            self._conn = None

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # searching -----------------------------------------------------------------------------------------------
    def search(self, base: str | None, filter_text: str, attributes: Sequence[str], size_limit: int,
               retry: bool = True, scope: int | None = None) -> list[Entry] | None:
        """ProFTPD's pr_ldap_search: the entries, or None (no base, a filter that does not parse, no server, a
        failed search; each logged)."""
        if base is None:
            self.note(f"no LDAP base DN specified for search filter {filter_text}, declining request")
            return None
        try:
            filter_ber = ldap_filter.parse(filter_text)
        except ldap_filter.FilterError as e:
            self.note(f"LDAP search use DN '{base}', filter '{filter_text}' failed: Bad search filter ({e})")
            return None
        found = self._connection()
        if found is None:
            return None
        conn, info = found
        s = self.settings
        if scope is None:
            scope = info.scope if info.scope is not None else SCOPE_SUB
        try:
            result, entries = conn.search(base, scope, s.deref, size_limit, int(s.timeout), filter_ber,
                                          list(attributes), time.monotonic() + s.timeout)
        except LdapError as e:
            self._drop()
            if e.code != -1:
                self.note(f"LDAP search use DN '{base}', filter '{filter_text}' failed: {e.text}")
                return None
            if not retry:
                self.note("LDAP connection went away, search failed")
                return None
            self.note("LDAP connection went away, retrying search operation")
            return self.search(base, filter_text, attributes, size_limit, False, scope)
        if result.code != SUCCESS:
            self.note(f"LDAP search use DN '{base}', filter '{filter_text}' failed: {result.text}")
            return None
        self.note(f"searched under base DN {base} using filter {filter_text}")
        return entries

    def _filter(self, template: str, value: str) -> str:
        text = ldap_filter.interpolate(template, value)
        self.note(f"generated filter {text} from template {template} and value {value}")
        return text

    # users ---------------------------------------------------------------------------------------------------
    def user_lookup(self, template: str, value: str, base: str | None, attributes: list[str]
                    ) -> tuple[Account, str] | None:
        """ProFTPD's pr_ldap_user_lookup: the one entry the filter finds, made an account with the LDAPDefault*,
        LDAPForce* and LDAPGenerateHomedir* rules; None (declined) when there is none, more than one, or an
        attribute it cannot do without."""
        s = self.settings
        filter_text = self._filter(template, value)
        entries = self.search(base, filter_text, attributes, 2)
        if entries is None:
            return None
        if len(entries) > 1:
            self.note("LDAP search returned multiple entries during user lookup, aborting query")
            return None
        if not entries:
            self.note(f"no entries for filter {filter_text} under base DN {base}")
            return None
        e = entries[0]
        a = s.attr
        name = passwd = home = shell = None
        uid = gid = 0
        for attribute in attributes:
            self.note(f"fetching values for attribute {attribute}")
            value_text = e.first(attribute)
            low = attribute.lower()
            if value_text is None:
                self.note(f"no values for attribute {attribute}, trying defaults")
                if low == a("uidNumber").lower():
                    if s.default_uid is None:
                        self.note(f"no {a('uidNumber')} attribute for DN {e.dn} found, and LDAPDefaultUID not "
                                  "configured")
                        return None
                    uid = s.default_uid
                    self.note(f"using LDAPDefaultUID {uid}")
                elif low == a("gidNumber").lower():
                    if s.default_gid is None:
                        self.note(f"no {a('gidNumber')} attribute found for DN {e.dn},  and LDAPDefaultGID not "
                                  "configured")
                        return None
                    gid = s.default_gid
                    self.note(f"using LDAPDefaultGID {gid}")
                elif low == a("homeDirectory").lower():
                    if not s.generate_home or s.home_prefix is None:
                        self.note(f"no {a('homeDirectory')} attribute for DN {e.dn}, LDAPGenerateHomedir "
                                  + ("not enabled" if not s.generate_home else
                                     "enabled but LDAPGenerateHomedirPrefix not configured"))
                        return None
                    home = self._generated_home(e)
                    if home is None:
                        return None
                    self.note(f"using default homedir {home}")
                elif low == a("loginShell").lower():
                    shell = ""
                else:
                    self.note(f"could not get values for attribute {attribute} for DN {e.dn}, ignoring request "
                              "(perhaps this DN's entry does not have the attribute?)")
                    return None
                continue
            if low == a("uid").lower():
                name = value_text
            elif low == a("userPassword").lower():
                passwd = value_text
            elif low == a("uidNumber").lower():
                uid = self._id_value(value_text, s.force_default_uid, s.default_uid, a("uidNumber"), "UID", e.dn)
                if uid is None:
                    return None
            elif low == a("gidNumber").lower():
                gid = self._id_value(value_text, s.force_default_gid, s.default_gid, a("gidNumber"), "GID", e.dn)
                if gid is None:
                    return None
            elif low == a("homeDirectory").lower():
                if s.force_generated_home:
                    if not s.generate_home or s.home_prefix is None:
                        self.note("LDAPForceGeneratedHomedir enabled but LDAPGenerateHomedir is not enabled"
                                  if not s.generate_home else "LDAPForceGeneratedHomedir and LDAPGenerateHomedir "
                                  "enabled, but missing required LDAPGenerateHomedirPrefix")
                        return None
                    home = self._generated_home(e)
                    if home is None:
                        return None
                else:
                    home = value_text
            elif low == a("loginShell").lower():
                shell = value_text
        account = Account(name or "", passwd or "", uid, gid, "", home or "", shell if shell is not None else "",
                          MOD_LDAP)
        self.note(f"found user {account.name}, UID {uid}, GID {gid}, homedir {account.home}, shell {account.shell}")
        return account, e.dn

    def _id_value(self, text: str, forced: bool, default: int | None, attr: str, kind: str, dn: str) -> int | None:
        """A uidNumber/gidNumber value: LDAPForceDefaultUID/GID's id, else the number; None (noted) when the value
        is no number."""
        if forced and default is not None:
            return default
        number = strtoul(text)
        if number is None:
            self.note(f"{attr} '{text}' of DN {dn} is no {kind}, ignoring request")
        return number

    def _generated_home(self, e: Entry) -> str | None:
        s = self.settings
        if s.home_prefix_no_username:
            return s.home_prefix
        canonical = e.first(s.attr("uid"))
        if canonical is None:
            self.note(f"could not get {s.attr('uid')} attribute for canonical username for DN {e.dn}")
            return None
        return f"{s.home_prefix}/{canonical}"

    def _name_attributes(self) -> list[str]:
        a = self.settings.attr
        names = [a("userPassword"), a("uid"), a("uidNumber"), a("gidNumber"), a("homeDirectory"), a("loginShell")]
        return names[1:] if self.settings.auth_binds else names

    def _remember(self, found: tuple[Account, str] | None) -> Account | None:
        if found is None:
            return None
        account, dn = found
        self._dn[account] = dn
        return account

    def getpwnam(self, name: str) -> Account | None:
        s = self.settings
        if not s.users:
            return None
        cached = self._users.get(("name", name), _MISS)
        if cached is not _MISS:
            return cached               # type: ignore[return-value]
        base = ldap_filter.interpolate_dn(s.user_base, name) if s.user_base is not None else None
        account = self._remember(self.user_lookup(s.user_name_filter, name, base, self._name_attributes()))
        if account is not None:
            self._users[("name", name)] = account
            # ProFTPD's auth cache: the uid of a user found by name is that user's name in listings, even when no
            # entry has that uidNumber (LDAPDefaultUID)
            self._users.setdefault(("uid", account.uid), account)
        return account

    def getpwuid(self, uid: int) -> Account | None:
        s = self.settings
        if not s.users:
            return None
        cached = self._users.get(("uid", uid), _MISS)
        if cached is not _MISS:
            return cached               # type: ignore[return-value]
        a = s.attr
        attributes = [a("uid"), a("uidNumber"), a("gidNumber"), a("homeDirectory"), a("loginShell")]
        account = self._remember(self.user_lookup(s.user_uid_filter, str(uid), s.user_base, attributes))
        if account is not None:
            self._users[("uid", uid)] = account
        return account

    def check(self, account: Account, password: str | bytes) -> bool:
        """ProFTPD's ldap_auth_check: a bind as the user (LDAPAuthBinds on), else userPassword compared."""
        s = self.settings
        if s.auth_binds:
            return self._bind_as(account, password)
        ok, scheme = check_password(account.passwd, password, s.default_scheme)
        if not ok:
            low = scheme.lower()
            if "crypt".startswith(low) or "clear".startswith(low) or low in DIGEST_SCHEMES:
                if trace.on: trace.msg("ldap", 19, "using '%s' auth scheme, comparison failed", scheme)
            else:
                if trace.on: trace.msg("ldap", 3, "unsupported userPassword auth scheme: %s", scheme)
            self.note(f"bad password for user {account.name}")
        return ok

    def _bind_as(self, account: Account, password: str | bytes) -> bool:
        if not password:
            self.note("LDAPAuthBinds is enabled, but no user-supplied cleartext password was found")
            self.note(f"bad password for user {account.name}")
            return False
        dn = self._dn.get(account)
        if not dn:
            self.note("LDAPAuthBinds is enabled, but no LDAP DN was found")
            self.note(f"bad password for user {account.name}")
            return False
        found = self._connect(bind=False)
        if found is None:
            self.note("unable to check login: LDAP connection failed")
            self.note(f"bad password for user {account.name}")
            return False
        conn, _ = found
        try:
            result = conn.bind(dn, password, self.settings.protocol_version,
                               time.monotonic() + self.settings.timeout)
            code, text = result.code, result.text
        except LdapError as e:
            code, text = e.code, e.text
        finally:
            conn.unbind()
        if code != SUCCESS:
            if code != INVALID_CREDENTIALS:
                self.note(f"unable to check login: bind as {dn} failed: {text}")
            self.note(f"invalid credentials used for {dn}")
            self.note(f"bad password for user {account.name}")
            return False
        return True

    # quotas and SSH keys (ProFTPD's ldap_quota_lookup and ldap_ssh_publickey_lookup hooks) -------------------
    def quota(self, name: str) -> list[str] | None:
        """The user's limit as mod_quotatab_ldap reads it: the name, then the comma-separated fields of the entry's
        ftpQuota (or of the ftpQuota of the entry its ftpQuotaProfileDN names, or LDAPDefaultQuota); None when there
        is none (declined: no LDAPUsers, no entry and no default, a failed search). Remembered for the session."""
        s = self.settings
        if name in self._quotas:
            self.note(f"returning cached quota for user {name}")
            return self._quotas[name]
        if s.user_base is None:
            return None
        base = ldap_filter.interpolate_dn(s.user_base, name)
        found = self._quota_lookup(self._filter(s.user_name_filter, name), name, base)
        self._quotas[name] = found
        return found

    def _quota_lookup(self, filter_text: str | None, name: str, base: str) -> list[str] | None:
        """ProFTPD's pr_ldap_quota_lookup; `filter_text` None: the profile entry `base` itself (scope base)."""
        s = self.settings
        attrs = [s.attr("ftpQuota"), s.attr("ftpQuotaProfileDN")]
        where = f"DN {base}" if filter_text is None else f"filter {filter_text}"
        entries = self.search(base, filter_text or "(objectClass=*)", attrs, 2,
                              scope=SCOPE_BASE if filter_text is None else None)
        if entries is None:
            return None
        default = s.default_quota
        if len(entries) > 1:
            if default is None:
                self.note(f"multiple entries found for DN {base}, aborting query")
                return None
            self.note(f"multiple entries found for DN {base}, using default quota {default}")
            return self._parse_quota(name, default)
        if not entries:
            if default is None:
                self.note(f"no entries for {where}, and no default quota defined")
                return None
            self.note(f"no entries for {where}, using default quota {default}")
            return self._parse_quota(name, default)
        e = entries[0]
        value = e.first(attrs[0])
        if value is not None:
            return self._parse_quota(name, value)
        if filter_text is None:
            if default is None:
                self.note(f"referenced DN {base} does not have an ftpQuota attribute, and no default quota defined")
                return None
            self.note(f"no ftpQuota attribute found for DN {base}, using default quota {default}")
            return self._parse_quota(name, default)
        profile = e.first(attrs[1])
        if profile is not None:
            return self._quota_lookup(None, name, profile)
        if default is None:
            self.note(f"no {attrs[0]} or {attrs[1]} attribute, and no default quota defined")
            return None
        self.note(f"no {attrs[0]} or {attrs[1]} attribute, using default quota {default}")
        return self._parse_quota(name, default)

    def _parse_quota(self, name: str, value: str) -> list[str]:
        self.note(f"parsing ftpQuota attribute value '{value}'")
        return [name, *value.split(",")]

    def ssh_keys(self, name: str) -> list[str] | None:
        """ProFTPD's pr_ldap_ssh_pubkey_lookup: the sshPublicKey values of the user's entry (LDAPUsers' base and
        name filter); None when there is no LDAPUsers, no single entry or no such attribute. Remembered for the
        session (a key query and the signed request ask twice)."""
        s = self.settings
        if name in self._ssh_keys:
            self.note(f"returning cached SSH public keys for user {name}")
            return self._ssh_keys[name]
        if not s.users or s.user_base is None:
            self.note("no LDAP base DN specified for user lookups, declining SSH publickey lookup request")
            return None
        base = ldap_filter.interpolate_dn(s.user_base, name)
        filter_text = self._filter(s.user_name_filter, name)
        entries = self.search(base, filter_text, [SSH_PUBLIC_KEY], 2)
        keys: list[str] | None = None
        if entries is not None and len(entries) > 1:
            self.note(f"LDAP search for SSH publickey using DN {base}, filter {filter_text} returned multiple "
                      "entries, aborting query")
        elif entries is not None and not entries:
            self.note(f"LDAP search for SSH publickey using DN {base}, filter {filter_text} returned no entries")
        elif entries is not None:
            values = entries[0].values(SSH_PUBLIC_KEY)
            keys = [v.decode("utf-8", "replace") for v in values] if values else None
        self._ssh_keys[name] = keys
        return keys

    # groups --------------------------------------------------------------------------------------------------
    def group_lookup(self, template: str, value: str) -> Group | None:
        """ProFTPD's pr_ldap_group_lookup: the first entry's cn, gidNumber and memberUid values."""
        s = self.settings
        if s.group_base is None:
            self.note("no LDAP base DN specified for group lookups")
            return None
        filter_text = self._filter(template, value)
        entries = self.search(s.group_base, filter_text, [s.attr("cn"), s.attr("gidNumber"), s.attr("memberUid")], 2)
        if entries is None:
            return None
        if not entries:
            self.note(f"no group entries for filter {filter_text}")
            return None
        e = entries[0]
        name = e.first(s.attr("cn"))
        gid_text = e.first(s.attr("gidNumber"))
        for attribute, got in ((s.attr("cn"), name), (s.attr("gidNumber"), gid_text)):
            self.note(f"fetching values for attribute {attribute}")
            if got is None:
                self.note(f"could not get values for attribute {attribute} for DN {e.dn}, ignoring request "
                          "(perhaps that DN does not have that attribute?)")
                return None
        gid = strtoul(gid_text or "")
        if gid is None:
            self.note(f"{s.attr('gidNumber')} '{gid_text}' of DN {e.dn} is no GID, ignoring request")
            return None
        members = tuple(v.decode("utf-8", "surrogateescape") for v in e.values(s.attr("memberUid")) or ())
        self.note(f"found group {name}, GID {gid}")
        for member in members:
            self.note(f"+ member: {member}")
        return Group(name or "", gid, members)

    def getgrnam(self, name: str) -> Group | None:
        s = self.settings
        if not s.groups:
            return None
        key = ("name", name)
        if key not in self._groups:
            group = self.group_lookup(s.group_name_filter, name)
            if group is None:
                return None
            self._groups[key] = group
        return self._groups[key]

    def getgrgid(self, gid: int) -> Group | None:
        s = self.settings
        if not s.groups:
            return None
        key = ("gid", gid)
        if key not in self._groups:
            group = self.group_lookup(s.group_gid_filter, str(gid))
            if group is None:
                return None
            self._groups[key] = group
        return self._groups[key]

    def groups_for(self, name: str, primary_gid: int) -> list[Group]:
        """ProFTPD's ldap_auth_getgroups: the user's primary group (when the user is an LDAP one), then every group
        whose memberUid names the login name (the primary one left out); empty is declined."""
        s = self.settings
        if not s.groups:
            return []
        if name in self._memberships:
            return list(self._memberships[name])
        out: list[Group] = []
        account = self.getpwnam(name) if s.users and s.user_base is not None else None
        if account is not None:
            primary = self.getgrgid(account.gid)
            if primary is not None:
                self.note(f"adding user {account.name} primary group {primary.name}/{account.gid}")
                out.append(primary)
            else:
                self.note(f"unable to determine group name for user {account.name} primary GID {account.gid}, "
                          "skipping")
        if s.group_base is None:
            self.note("no LDAP base DN specified for group lookups")
            return out
        filter_text = self._filter(s.group_member_filter, name)
        entries = self.search(s.group_base, filter_text, [s.attr("gidNumber"), s.attr("cn")], 0)
        if entries is None:
            return []
        if not entries:
            self.note(f"no entries found for filter {filter_text}")
        for e in entries:
            gid_text, cn = e.first(s.attr("gidNumber")), e.first(s.attr("cn"))
            if gid_text is None or cn is None:
                missing = s.attr("gidNumber") if gid_text is None else s.attr("cn")
                self.note(f"could not get values for {missing} attribute for getgroups(2), skipping current group")
                continue
            gid = strtoul(gid_text)
            if gid is None:
                continue
            if account is None or gid != account.gid:
                out.append(Group(cn, gid, (name,)))
                self.note(f"added user {account.name if account else name} secondary group {cn}/{gid_text}")
        self._memberships[name] = out
        return list(out)
