"""mod_auth: USER, PASS, ACCT, REIN; the login sequence and what follows a successful PASS:
supplementary groups -> chroot (DefaultRoot or <Anonymous>) -> setgid/setuid for good -> no_new_privs.

Also the login-phase limits: TimeoutLogin, TimeoutSession, MaxLoginAttempts, RootLogin, RequireValidShell,
UseFtpUsers, UserAlias, AccessGrantMsg/AccessDenyMsg and anonymous logins.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .. import privs
from . import display
from ..access import expr as exprs
from ..access.expr import Condition, parse_condition, pick
from ..auth import Account, AuthChain, parse_auth_order
from ..auth import lastlog
from ..auth.crypt import crypt_verify
from ..auth.home import make_home, parse_create_home
from ..auth.unix import login_denial
from ..config.registry import ANON, SVG, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Int, Str, Text, Words, compile_regex, parse_bool, parse_int
from ..dispatch import LOG_CMD, OPTIONAL, POST_CMD, REQUIRED, Command, Hook, Request
from ..fs import FS
from ..log import NOTICE
from ..module import Listener, MasterView, Module, ModuleSet, States
from ..reply import FtpError, Reply
from .access import login_allowed
from .auth_unix import magic_token
from .xfer import keeps_chown

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_auth.c"
log = logging.getLogger("proftpy")


def _group_expr(words: list[str]) -> str | None:
    """ProFTPD splits every word of a group expression on commas; all terms must hold (AND)."""
    return ",".join(exprs.terms(words)) if words else None


def _root_spec(args: list[str]) -> tuple[str, str | None]:
    """`DefaultRoot path [group-expr ...]`: path is `~`, `~/sub`, `~user[/sub]` or absolute."""
    if not args:
        raise ValueError("expected a path and an optional group expression")
    path = args[0]
    if not path.startswith(("~", "/")):
        raise ValueError(f"'{path}' must start with ~ or /")
    if any(c in path for c in "*?["):
        raise ValueError("wildcards are not allowed")
    return path, _group_expr(args[1:])


def _chdir_spec(args: list[str]) -> tuple[str, str | None]:
    """`DefaultChdir path [group-expr ...]`: `~...`, absolute, or relative to the home directory."""
    if not args:
        raise ValueError("expected a path and an optional group expression")
    return args[0], _group_expr(args[1:])


def _alias(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ValueError("expected alias and real user name")
    return args[0], args[1]


def _reject_passwords(args: list[str]) -> tuple[re.Pattern, bool]:
    """`AnonRejectPasswords [!]regex`: (pattern, refuse when it does NOT match)."""
    if len(args) != 1:
        raise ValueError("expected one regular expression")
    text, negate = (args[0][1:], True) if args[0].startswith("!") else (args[0], False)
    try:
        return compile_regex(text), negate
    except re.error as e:
        raise ValueError(f"'{text}' is not a valid regular expression: {e}") from None


def _revoke(args: list[str]) -> bool | str:
    word = Str()(args)
    if word.lower() == "usenoncompliantactivetransfer":
        return "UseNonCompliantActiveTransfer"
    return parse_bool(word)


@dataclass(frozen=True)
class SessionTimeout:
    """One TimeoutSession line."""

    seconds: int
    condition: Condition | None = None


def _session_timeout(args: list[str]) -> SessionTimeout | None:
    """`TimeoutSession seconds [user|group|class expression]`; 0 is ignored, as in ProFTPD (it cannot switch off
    a timeout set elsewhere)."""
    if not args:
        raise ValueError("expected seconds and an optional user|group|class expression")
    seconds = parse_int(args[0], 0)
    condition = parse_condition(args[1:])
    return SessionTimeout(seconds, condition) if seconds else None


MAX_PASSWORD_SIZE = 1024          # ProFTPD's default MaxPasswordSize


def _user_password(args: list[str]) -> tuple[str, str]:
    """`UserPassword user hash`; a hash crypt(3) cannot check (`!`) locks the user out."""
    if len(args) != 2:
        raise ValueError("expected a user name and an encrypted password")
    return args[0], args[1]


directives = (
    Directive("AuthOrder", Words(), SVG,
              ["mod_radius.c", "mod_auth_otp.c", "mod_ldap.c", "mod_sql.c", "mod_auth_file.c", "mod_auth_unix.c"],
              Merge.SERVER, "Auth modules to ask, in order; a trailing `*` makes a module authoritative (by default "
              "mod_radius, mod_auth_otp, mod_ldap, then mod_sql, where they are configured: ProFTPD asks the module it "
              "loaded last first, and Debian's modules.conf loads mod_sql, mod_ldap, then mod_radius; mod_radius and "
              "mod_auth_otp, auth-only modules, are asked before any password is checked)."),
    Directive("RootLogin", Flag, SVGA, False, Merge.DOWN, "Allow logging in as uid 0."),
    Directive("RewriteHome", Flag, SVG, False, Merge.SERVER,
              "Let mod_rewrite rewrite the home directory at login (`mod_auth.rewrite-home`, %m `REWRITE_HOME`)."),
    Directive("RequireValidShell", Flag, SVGA, True, Merge.DOWN, "Refuse users whose shell is not in /etc/shells."),
    Directive("UseFtpUsers", Flag, SVGA, True, Merge.DOWN, "Refuse users listed in /etc/ftpusers."),
    Directive("DefaultRoot", Custom(_root_spec, "path [group-expression]"), SVG, None, Merge.SERVER,
              "chroot after login: `~` (home) or a path, optionally only for a group expression.", repeat=True),
    Directive("CreateHome", Custom(parse_create_home, "on|off [mode] [skel path] [dirmode mode] [uid n|~] [gid n|~] "
                                                      "[homegid n] [NoRootPrivs]"), SVG, None, Merge.SERVER,
              "Make a missing home directory (and its missing parents) at login, filled from `skel`."),
    Directive("AllowChrootSymlinks", Flag, SVG, True, Merge.SERVER,
              "off: refuse a login whose DefaultRoot (or <Anonymous> directory) is a symbolic link."),
    Directive("DefaultChdir", Custom(_chdir_spec, "path [group-expression]"), SVGA, None, Merge.DOWN,
              "Directory a session starts in.", repeat=True),
    Directive("RootRevoke", Custom(_revoke, "on|off|UseNonCompliantActiveTransfer"), SVGA, True, Merge.DOWN,
              "Give up root for good after login (always done by proftpy); where the server sets it off, or leaves "
              "it unset and has a UserOwner, the session keeps CAP_CHOWN alone (ProFTPD keeps root)."),
    Directive("AccessGrantMsg", Text, SVGA, None, Merge.DOWN, "230 text after a successful login (%u = user)."),
    Directive("AccessDenyMsg", Text, SVGA, None, Merge.DOWN, "530 text after a failed login (%u = user)."),
    Directive("UserAlias", Custom(_alias, "alias real-user"), SVGA, None, Merge.DOWN,
              "Let `alias` log in as `real-user` (e.g. `UserAlias anonymous ftp`).", repeat=True),
    Directive("AuthAliasOnly", Flag, SVGA, False, Merge.SERVER,
              "Only names that are a UserAlias log in (set in the server or in any of its `<Anonymous>` blocks, as "
              "ProFTPD 1.3.8: every other name is refused)."),
    Directive("AnonRequirePassword", Flag, ANON, False, Merge.DOWN, "Anonymous logins need the real password."),
    Directive("UserDirRoot", Flag, ANON, False, Merge.DOWN,
              "A UserAlias login into this `<Anonymous>` is confined to the subdirectory named after the alias."),
    Directive("UseLastlog", Flag, SVG, False, Merge.SERVER,
              "Record each login in /var/log/lastlog (the line `ftpd<pid>`, the client's address), as `lastlog` "
              "shows."),
    Directive("AuthUsingAlias", Flag, ANON, False, Merge.DOWN,
              "With AnonRequirePassword: a UserAlias logs in with the alias's own password, not the User's."),
    Directive("UserPassword", Custom(_user_password, "user encrypted-password"), SVGA, None, Merge.SERVER,
              "A crypt(3) hash (`ftpasswd --hash`) that replaces a user's password (in an `<Anonymous>`: for "
              "its logins).", repeat=True),
    Directive("AnonRejectPasswords", Custom(_reject_passwords, "[!]regex"), ANON, None, Merge.DOWN,
              "Refuse anonymous logins whose password matches the regex (`!`: does not match)."),
    Directive("AllowEmptyPasswords", Flag, SVGA, True, Merge.DOWN,
              "off: an empty password is refused before it is checked (`501 Login incorrect.`)."),
    Directive("MaxLoginAttempts", Int(1), SVG, 3, Merge.SERVER, "Failed PASS commands before disconnecting."),
    Directive("MaxPasswordSize", Int(0), SVG, MAX_PASSWORD_SIZE, Merge.SERVER,
              "A longer password (in bytes) is refused as a wrong one (0: the default, 1024)."),
    Directive("TimeoutLogin", Int(0), SVG, 300, Merge.SERVER, "Seconds allowed to log in."),
    Directive("TimeoutSession", Custom(_session_timeout, "seconds [user|group|class expr]"), SVGA, None, Merge.MULTI,
              "Seconds a logged-in session may last; optionally only for some users, groups or classes.",
              repeat=True),
)


# -- backends ------------------------------------------------------------------------------------------------------
@dataclass
class AuthChains:
    """Each server's AuthChain (its AuthOrder over the loaded modules' backends), built once per process. The
    master builds them before any fork, with the dummy hash that evens out timing and the auth files read, so no
    session pays for either and a chrooted session never opens an auth file again."""

    chains: dict = field(default_factory=dict)          # Server -> AuthChain


def build_chain(modules: ModuleSet, server) -> AuthChain:
    """The server's AuthOrder as an AuthChain over the backends the auth modules offer for it."""
    available = {}
    for name, make in modules.auth_backends().items():
        b = make(server)
        if b is not None:
            available[name] = b
    wanted = [w for w in server.get("AuthOrder") if w.rstrip("*") in available]
    return AuthChain(parse_auth_order(wanted, available))


def chain_for(modules: ModuleSet, shared: States, server) -> AuthChain:
    """The server's chain (a session's copy changed by mod_ifsession uses its configured server's)."""
    server = server.base
    chains = shared.get(AuthChains).chains
    chain = chains.get(server)
    if chain is None:
        chain = chains[server] = build_chain(modules, server)
    return chain


def prepare_chains(master: MasterView) -> None:
    """master_preload (at start, after the daemon said it is ready, and after each reload): every server's chain,
    its files warmed and its dummy hash made (this costs a password hash: kept off the start-to-listen path);
    problems go to the log (the daemon still starts, as ProFTPD does: a login against an unusable file just
    fails)."""
    master.state.put(AuthChains())
    for server in master.config.servers:
        try:
            chain = chain_for(master.modules, master.state, server)
        except ValueError as e:                 # AuthOrder naming a module that does not exist
            log.error("%s: %s", server.name, e)
            continue
        for problem in chain.warm():
            log.warning("%s", problem)


# -- session state -------------------------------------------------------------------------------------------------
@dataclass
class AuthState:
    attempts: int = 0                   # failed PASS commands (MaxLoginAttempts)
    anon_password: str | None = None    # what an anonymous user gave as password (logs)
    # RFC 2228 mechanisms that may vouch for a user (ProFTPD's `requires_pass`: mod_tls's TLSUserName and
    # AllowDotLogin): fn(session, user name) -> True when that user logs in at USER, without a password (232)
    no_password: list[Callable[["Session", str], bool]] = field(default_factory=list)
    vouched: str | None = None          # the USER name a mechanism vouched for, while its PASS runs
    logged_in: str | None = None        # "USER alice" / "ANON ftp": the LOG_CMD hook says it logged in


def session_init(session: "Session") -> None:
    _use_server_chain(session)
    seconds = session.server.get("TimeoutLogin")
    session.set_timer("login", seconds, _login_expired)


def _use_server_chain(session: "Session", **_) -> None:
    """At connect, and again when HOST chose another server."""
    session.auth = chain_for(session.modules, session.shared, session.server)


def _login_expired(session: "Session") -> None:
    log.info("Login timeout exceeded, disconnected")
    seconds = int(session.timers["login"].seconds)
    session.timeout_exit(421, f"Login timeout ({seconds} second{'s' if seconds != 1 else ''}): closing control "
                         "connection", "core.timeout-login")


def _session_seconds(session: "Session") -> int | None:
    """The TimeoutSession that applies once the user, groups and class are known (called at login)."""
    line = pick(session.context().chain, "TimeoutSession", session.who)
    return None if line is None else line.seconds


def _session_expired(session: "Session") -> None:
    seconds = int(session.timers["session"].seconds)
    session.timeout_exit(421, f"Session Timeout ({seconds} seconds): closing control connection",
                         "core.timeout-session")


# -- anonymous -----------------------------------------------------------------------------------------------------
def resolve_alias(session: "Session", name: str) -> tuple[str, object | None]:
    """(real user name, the <Anonymous> section it logs into or None), applying UserAlias."""
    for anon in session.server.anonymous():
        anon_user = anon.get("User")
        for p in anon.all("UserAlias") + session.server.section.all("UserAlias"):
            alias, real = p.value
            if alias == name and real == anon_user:
                return real, anon
        if anon_user == name and not anon.get("AuthAliasOnly"):    # there: only its aliases reach it
            return name, anon
    for p in session.server.section.all("UserAlias"):
        alias, real = p.value
        if alias == name:
            return real, None
    return name, None


def _alias_only(session: "Session") -> bool:
    """AuthAliasOnly, set in the server or in any of its `<Anonymous>` blocks: as ProFTPD 1.3.8, either refuses
    every login whose name is not a UserAlias on the server."""
    server = session.server
    return server.get("AuthAliasOnly") or any(anon.get("AuthAliasOnly") for anon in server.anonymous())


def _is_alias(session: "Session", name: str) -> bool:
    sections = [session.server.section, *session.server.anonymous()]
    return any(p.value[0] == name for section in sections for p in section.all("UserAlias"))


# -- commands ------------------------------------------------------------------------------------------------------
def user(session: "Session", cmd: Request) -> Reply:
    if session.authenticated:
        if cmd.arg == session.user_arg:         # the name it logged in with: nothing to do (ProFTPD's Bug#4217)
            return Reply(230, f"User {cmd.arg} logged in")
        return Reply(501, "Reauthentication not supported")
    session.user_arg = cmd.arg
    session.notes["mod_auth.orig-user"] = cmd.arg       # ProFTPD's note (%{note:mod_auth.orig-user})
    real, anon = resolve_alias(session, cmd.arg)
    if anon is not None and not anon.get("AnonRequirePassword"):
        return Reply(331, "Anonymous login ok, send your complete email address as your password")
    st = session.state.get(AuthState)
    if any(vouch(session, real) for vouch in st.no_password):
        log.log(NOTICE, "USER %s: Authenticated without password", cmd.arg)
        st.vouched = cmd.arg                # ProFTPD then dispatches a PASS of its own, through every phase
        try:
            reply = session.dispatcher.dispatch(session, Request("PASS", "", "PASS"))
        finally:
            st.vouched = None
        return Reply(232, reply.text, reply.lines) if reply is not None and reply.code == 230 else reply
    return Reply(331, f"Password required for {cmd.arg.split(' ', 1)[0]}")     # ProFTPD names argv[1]


def pass_(session: "Session", cmd: Request) -> Reply | None:
    if session.authenticated:
        session.user_arg = None                 # a failed PASS forgets the USER name, even now (ProFTPD's note)
        return Reply(503, "You are already logged in")
    if session.user_arg is None:
        return Reply(503, "Login with USER first")
    name = session.user_arg
    vouched = session.state.get(AuthState).vouched == name
    real, anon = resolve_alias(session, name)
    if _alias_only(session) and not _is_alias(session, name):
        log.log(NOTICE, "USER %s: user is not a UserAlias from %s [%s] to %s:%d", name, session.remote_name,
                session.remote_addr, session.local_addr, session.local_port)
        return _failed(session, name, None)
    chain = session.auth
    ctx = session.server.context(anon)
    if not cmd.arg and not vouched and not ctx.get("AllowEmptyPasswords"):
        log.log(NOTICE, "Refusing empty password from user '%s'", name)
        session.events.emit("mod_auth.empty-password", session=session, user=name)
        return Reply(501, "Login incorrect.")
    target = chain.lookup(real)
    if target is not None and target.uid == 0:
        session.events.emit("mod_auth.root-login", session=session)
        if not ctx.get("RootLogin"):          # refused before the password is looked at, as ProFTPD does
            log.log(NOTICE, "SECURITY VIOLATION: Root login attempted")
            return _failed(session, name, None)
    if anon is not None and _anon_password_rejected(anon, cmd.arg):
        log.log(NOTICE, "ANON %s: AnonRejectPasswords denies login", name)
        session.events.emit("mod_auth.anon-reject-passwords", session=session, user=name)
        return _failed(session, name, None)
    if (anon is not None and not anon.get("AnonRequirePassword")) or vouched:
        account = target
    else:
        account = _authenticate(session, anon, name, target, real, cmd.arg)
        limit = ctx.get("MaxPasswordSize") or MAX_PASSWORD_SIZE
        if target is not None and len(cmd.arg.encode("utf-8", "surrogateescape")) > limit:
            # refused after the same work as any password, so the time tells nothing about the user
            log.log(NOTICE, "client-provided password size exceeds MaxPasswordSize (%d), rejecting", limit)
            account = None
    if account is None:
        if target is None:
            log.log(NOTICE, "%s %s: no such user found from %s [%s] to %s:%d", "USER" if anon is None else "ANON",
                    name, session.remote_name, session.remote_addr, session.local_addr, session.local_port)
            return _failed(session, name, None)
        reason = chain.refusal or "Incorrect password"
    else:
        reason = login_denial(account, root_login=ctx.get("RootLogin"),
                              require_valid_shell=ctx.get("RequireValidShell"), use_ftpusers=ctx.get("UseFtpUsers"))
    names = None
    if reason is None:
        session.anon = anon
        names = group_names(chain, account)
        if not login_allowed(session, account.name, names):
            reason = "Limit access denies login"
    if reason is not None:
        session.anon = None
        return _failed(session, name, reason)
    try:
        start_session(session, account, anon, name, cmd.arg, names)
    except RootRefused as e:
        log.error("error: %s", e)
        session.anon = None
        session.send(Reply(530, (session.server.context().get("AccessDenyMsg") or "Login incorrect.")
                           .replace("%u", name)))
        session.end("bad DefaultRoot")
        return None
    except SessionUnsafe as e:
        log.error("login of %s aborted, ending the session: %s", name, e)
        session.end("privilege drop failed")
        return Reply(421, "Service not available, closing control connection")
    except OSError as e:
        log.error("login of %s failed: %s", name, e.strerror or e)
        session.anon = session.account = session.groups = None
        return _failed(session, name, f"cannot set up the session: {e.strerror or e}")
    session.state.get(AuthState).logged_in = f"ANON {real}" if anon is not None else f"USER {name}"
    text = session.context().get("AccessGrantMsg")
    if anon is not None:
        text = text or "Anonymous access granted, restrictions apply"
    else:
        text = text or f"User {name} logged in"
    return Reply(230, text.replace("%u", name))


def _log_login(session: "Session", cmd: Request) -> None:
    """LOG_CMD PASS: `Login successful.` once the login stood through POST_CMD (mod_ifsession's `<Limit LOGIN>` may
    still refuse it, and its SyslogLevel counts by now), as ProFTPD's auth_log_pass writes it."""
    st = session.state.get(AuthState)
    who, st.logged_in = st.logged_in, None
    if who is not None and session.authenticated and not session.closing and cmd.reply is not None:
        log.info("%s: Login successful.", who)


def _display_login(session: "Session", cmd: Request) -> None:
    """POST_CMD PASS: DisplayLogin's lines lead the 230, read after the other modules' PASS work (mod_ifsession's
    merge included, as ProFTPD shows an `<IfUser>`'s DisplayLogin)."""
    if session.authenticated and cmd.reply is not None and cmd.reply.code == 230:
        cmd.reply.lines = display.login_lines(session) + cmd.reply.lines


def _authenticate(session: "Session", anon, name: str, target: Account | None, real: str,
                  password: str) -> Account | None:
    """The account `real` (`target`, looked up already) when the password is right: the user's own, or its
    UserPassword (the `<Anonymous>`'s for its logins, else the server's); with AuthUsingAlias, an alias's own
    password lets it log in as `real`. Unknown users and wrong passwords cost the same."""
    who = real
    if anon is not None and name != real and anon.get("AuthUsingAlias"):
        who = name
        log.info("ANON AUTH: User %s, authenticating using alias %s", real, name)
    section = anon if anon is not None else session.server.section
    configured = next((p.value[1] for p in section.all("UserPassword") if p.value[0] == who), None)
    session.auth.refusal = None
    if configured is None:
        account = session.auth.authenticate(who, password)
    else:
        account = session.auth.lookup(who)
        if account is None:
            log.log(NOTICE, "no such user '%s'", who)
        if not crypt_verify(password, configured):
            account = None
    return account if account is None or who == real else target


def _anon_password_rejected(anon, password: str) -> bool:
    rule = anon.get("AnonRejectPasswords")
    if rule is None:
        return False
    pattern, negate = rule
    return (pattern.search(password) is None) if negate else (pattern.search(password) is not None)


def _failed(session: "Session", name: str, reason: str | None) -> Reply | None:
    """530, or the end of the session after MaxLoginAttempts. `reason` is ProFTPD's text for the
    `USER x (Login failed): reason` line; None when the caller has logged the failure its own way."""
    st = session.state.get(AuthState)
    st.attempts += 1
    session.events.emit("mod_auth.login-failed", session=session, user=name, reason=reason)
    if reason is not None:
        log.log(NOTICE, "USER %s (Login failed): %s", name, reason)
    text = (session.server.context().get("AccessDenyMsg") or "Login incorrect.").replace("%u", name)
    session.user_arg = None
    if st.attempts >= session.server.get("MaxLoginAttempts"):
        session.send(Reply(530, text))
        log.log(NOTICE, "Maximum login attempts (%d) exceeded, connection refused", st.attempts)
        session.events.emit("mod_auth.max-login-attempts", session=session, user=name)
        session.end("max login attempts")
        return None
    return Reply(530, text)


class RootRefused(Exception):
    """The session root may not be used (AllowChrootSymlinks off): ProFTPD answers 530 and disconnects."""


class SessionUnsafe(Exception):
    """The process changed identity only half way: it must not serve anything any more."""


def start_session(session: "Session", account: Account, anon, name: str, password: str,
                  listed: tuple[str, ...] | None = None) -> None:
    """Everything after a good password, in ProFTPD's order: supplementary groups -> chroot -> setgid/setuid for
    good -> no_new_privs and not dumpable. Raises OSError when a step before the identity change fails (the
    process is then as before: 530, the client may try again) and SessionUnsafe when the change itself fails.
    `listed`: the account's group names as PASS already listed them (`group_names`), else listed here."""
    chain = session.auth
    account = _rewritten_home(session, account)
    groups = chain.groups_for(account)
    gid = _anon_gid(chain, anon, account) if anon is not None else account.gid
    gids = list(dict.fromkeys([gid] + [g.gid for g in groups]))
    names = {g.name for g in groups}
    if anon is None:
        _create_home(session, account, gid)
    magic = magic_token(session.server, account) if anon is None else None
    if magic is not None:                           # AuthUnixOptions MagicTokenChroot: home /srv/./home/u
        account = dataclasses.replace(account, home=magic[0])
        log.debug("AuthUnixOption magicTokenChroot: using 'DefaultRoot %s' and 'DefaultChdir %s'", *magic)
    root = _usable_root(magic[0]) if magic is not None else _session_root(session, account, anon, names, name)
    # core.chroot comes before the root changes (as ProFTPD's), so listeners may open files outside it
    session.account, session.anon = account, anon
    session.groups = listed if listed is not None else group_names(chain, account)
    session.events.emit("core.chroot", session=session, root=root)
    p = privs.default_privs()
    if session.server.get("UseLastlog"):
        _record_lastlog(session, account, p)
    if not p.nonroot_daemon:
        _enter_root(p, gids, root)
        keep = (privs.CAP_CHOWN,) if keeps_chown(session.server) else ()
        try:
            p.drop_to_user(account.uid, gid, gids, keep=keep)
        except OSError as e:
            raise SessionUnsafe(f"setgid/setuid to {account.uid}/{gid}: {e.strerror or e}") from e
        refusal = privs.regain_refusal()
        if refusal is None and account.uid != 0:
            raise SessionUnsafe("seteuid(0) still succeeds after the privilege drop")
        log.debug("%s: root privileges revoked (seteuid(0): %s)%s", name, refusal or "is root: RootLogin on",
                  ", CAP_CHOWN kept for UserOwner" if keep else "")
        fs = FS("/", chroot=root)
    else:
        privs.harden_process()     # one user already: the userland jail in fs.py stands in for chroot
        fs = FS(root or "/")
    umask = file_umask(session)
    os.umask(umask)
    home = (root or "/") if anon is not None else account.home
    session.home = home
    fs.home = _within(home, root) if root else home
    fs.user_home = lambda user: getattr(chain.lookup(user), "home", None)
    try:
        fs.chdir(magic[1] if magic is not None else _start_dir(session, home, root, names))
    except (OSError, FtpError) as e:
        log.info("%s: cannot start in the home or DefaultChdir directory (%s); starting in /", name, e)
        fs.cwd = "/"
    session.fs = fs
    session.user = account.name if anon is None else name
    session.authenticated = True
    session.state.get(AuthState).anon_password = password if anon is not None else None
    session.set_timer("login", None, _login_expired)
    session.set_timer("session", _session_seconds(session), _session_expired)
    session.events.emit("mod_auth.authenticated", session=session)


def _rewritten_home(session: "Session", account: Account) -> Account:
    """RewriteHome: the home directory offered to the `mod_auth.rewrite-home` listeners (mod_rewrite) in the
    `mod_auth.home-dir` note, as ProFTPD's pr_auth_get_home does; the account with what they left there."""
    if not session.server.get("RewriteHome") or not account.home:
        return account
    session.notes["mod_auth.home-dir"] = account.home
    session.events.emit("mod_auth.rewrite-home", session=session)
    home = session.notes.pop("mod_auth.home-dir", None)
    if not isinstance(home, str) or not home or home == account.home:
        return account
    log.debug("returning rewritten home directory '%s' for original home directory '%s'", home, account.home)
    return dataclasses.replace(account, home=home)


def _record_lastlog(session: "Session", account: Account, p: "privs.Privs") -> None:
    """UseLastlog: the login in /var/log/lastlog, written as root before the chroot; a failure is a log line."""
    with p.root():
        try:
            lastlog.record(account.uid, account.name, f"ftpd{os.getpid()}", session.client.ip)
        except OSError as e:
            log.log(NOTICE, "unable to update lastlog '%s': %s", lastlog.LASTLOG, e.strerror or e)


def _create_home(session: "Session", account: Account, gid: int) -> None:
    """CreateHome: the missing home made with root's privileges (NoRootPrivs: the user's), before the chroot. An
    OSError fails the login as a missing home would."""
    spec = session.server.get("CreateHome")
    if spec is None or not account.home:
        return
    p = privs.default_privs()
    try:
        if spec.root_privs or p.nonroot_daemon:
            with p.as_root():
                make_home(account.home, account.name, account.uid, gid, spec)
            return
        p.set_login(account.uid, gid)
        with p.as_user():
            make_home(account.home, account.name, account.uid, gid, spec)
    except OSError as e:                        # the log names the home (the OSError alone may not)
        raise OSError(e.errno, f"CreateHome {account.home}: {e.strerror or e}") from None


def _enter_root(p: "privs.Privs", gids: list[int], root: str | None) -> None:
    """Steps 1 and 2 with root privileges: the user's groups (none of root's), then chroot. On failure the groups
    are put back, so a refused login leaves the process as it was."""
    with p.as_root():
        before = os.getgroups()
        os.setgroups(gids)
        try:
            if root is not None:
                os.chroot(root)
                os.chdir("/")
        except OSError:
            os.setgroups(before)
            raise


def _anon_gid(chain: AuthChain, anon, account: Account) -> int:
    """`Group` inside `<Anonymous>` replaces the anonymous user's primary group."""
    name = anon.get("Group")
    if not name:
        return account.gid
    group = chain.getgrnam(name)
    if group is None:
        raise OSError(errno.ENOENT, f"no such group '{name}' for <Anonymous {anon.args[0]}>")
    return group.gid


def group_names(chain: AuthChain, account: Account) -> tuple[str, ...]:
    """The account's group names as `<Limit>` sees them: its primary group first. A backend failing gives no
    groups (and a log line): then no group rule can match."""
    try:
        names = []
        primary = chain.getgrgid(account.gid)
        if primary is not None:
            names.append(primary.name)
        names += [g.name for g in chain.groups_for(account) if g.name not in names]
        return tuple(names)
    except Exception as e:
        log.warning("cannot list the groups of %s: %s", account.name, e)
        return ()


# -- umask ---------------------------------------------------------------------------------------------------------
def file_umask(session: "Session", path: str | None = None) -> int:
    """The file creation mask at `path` (a real directory path; None = the session level)."""
    return session.conf("Umask", path=path)[0]


def dir_umask(session: "Session", path: str | None = None) -> int:
    """The directory creation mask at `path`: Umask's second argument, else its first (for MKD)."""
    file_mask, dir_mask = session.conf("Umask", path=path)
    return file_mask if dir_mask is None else dir_mask


# -- roots and start directories -----------------------------------------------------------------------------------
def _session_root(session: "Session", account: Account, anon, group_names: set[str], name: str) -> str | None:
    """The directory to confine the session to: the <Anonymous> directory (with UserDirRoot, its subdirectory
    named after the alias that logged in), else the first DefaultRoot (config order) whose group expression holds;
    None for no confinement (also for `DefaultRoot /`)."""
    if anon is not None:
        path = _expand_home(anon.args[0], account, session)
        if anon.get("UserDirRoot") and name != account.name:
            path = os.path.join(path, name)
    else:
        for p in session.server.section.all("DefaultRoot"):
            spec, expr = p.value
            if _group_match(expr, group_names):
                path = _expand_home(spec, account, session)
                break
        else:
            return None
        if not session.server.get("AllowChrootSymlinks") and os.path.islink(path.rstrip("/") or "/"):
            log.error("error: DefaultRoot %s is a symlink (denied by AllowChrootSymlinks config)", path)
            raise RootRefused("unable to determine DefaultRoot directory")
    return _usable_root(path)


def _usable_root(path: str) -> str | None:
    """The real directory to chroot to; None for `/` (no confinement); OSError when it is not there."""
    path = os.path.realpath(path)
    if path == "/":
        return None
    if not os.path.isdir(path):
        raise OSError(errno.ENOENT, f"root directory {path} does not exist")
    return path


def _expand_home(path: str, account: Account, session: "Session") -> str:
    """`~` and `~/sub` -> the user's home; `~name[/sub]` -> that user's home; absolute paths unchanged."""
    if path == "~" or path.startswith("~/"):
        return os.path.normpath(account.home + path[1:])
    if path.startswith("~"):
        name, _, rest = path[1:].partition("/")
        other = session.auth.lookup(name)
        if other is None:
            raise OSError(errno.ENOENT, f"no such user '{name}' for {path}")
        return os.path.normpath(os.path.join(other.home, rest))
    return os.path.normpath(path)


def _start_dir(session: "Session", home: str, root: str | None, group_names: set[str]) -> str:
    """The client-visible directory a session starts in: the first DefaultChdir whose group expression holds,
    else the home directory ("/" when the home is outside the root)."""
    home_v = _within(home, root) if root else home
    for spec, expr in session.context().all("DefaultChdir"):
        if not _group_match(expr, group_names):
            continue
        if spec == "~" or spec.startswith("~/"):
            return posixpath.normpath(home_v + spec[1:])
        if spec.startswith("/"):
            return _within(spec, root) if root and (spec + "/").startswith(root + "/") else spec
        return posixpath.join(home_v, spec)
    return home_v


def _within(home: str, root: str) -> str:
    """A real path as seen from inside the chroot ("/" when it is outside)."""
    root = root.rstrip("/")
    if home == root:
        return "/"
    if home.startswith(root + "/"):
        return home[len(root):]
    return "/"


def _group_match(spec: str | None, names: set[str]) -> bool:
    """ProFTPD group expressions: a comma list that must all hold; `!grp` means not a member."""
    return not spec or exprs.eval_and(spec.split(","), names)


def acct(session: "Session", cmd: Request) -> Reply:
    return Reply(502, "ACCT command not implemented")


def rein(session: "Session", cmd: Request) -> Reply:
    return Reply(502, "REIN command not implemented")


commands = (
    Command("USER", user, needs_login=False, arg=REQUIRED, help="<sp> username", help_at=47, limit=False,
            replies=("331 Password required for %u", "331 Anonymous login ok, send your complete email address as "
                     "your password", "500 USER: command requires a parameter",
                     "501 Reauthentication not supported (after login)")),
    Command("PASS", pass_, needs_login=False, arg=OPTIONAL, help="<sp> password", help_at=48, limit=False,
            replies=("230 User %u logged in", "230 Anonymous access granted, restrictions apply",
                     "530 Login incorrect.", "503 Login with USER first", "503 You are already logged in")),
    Command("ACCT", acct, needs_login=False, arg=OPTIONAL, help="is not implemented", help_at=49,
            implemented=False, limit=False, replies=("502 ACCT command not implemented",)),
    Command("REIN", rein, needs_login=False, arg=OPTIONAL, help="is not implemented", help_at=50,
            implemented=False, limit=False, replies=("502 REIN command not implemented",)),
)

MODULE = Module(NAME, directives=directives, commands=commands, session_init=session_init,
                hooks=(Hook(POST_CMD, "PASS", _display_login), Hook(LOG_CMD, "PASS", _log_login)),
                listeners=(Listener("core.session-reinit", _use_server_chain),),
                master_preload=prepare_chains)
