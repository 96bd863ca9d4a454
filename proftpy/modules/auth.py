"""mod_auth: USER, PASS, ACCT, REIN; the login sequence and what follows a successful PASS:
supplementary groups -> chroot (DefaultRoot or <Anonymous>) -> setgid/setuid for good -> no_new_privs.

Also the login-phase limits: TimeoutLogin, TimeoutSession, MaxLoginAttempts, RootLogin, RequireValidShell,
UseFtpUsers, UserAlias, AccessGrantMsg/AccessDenyMsg and anonymous logins.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from .. import privs
from ..auth import Account, AuthChain, login_denial, parse_auth_order
from ..config.registry import ANON, SVG, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Int, Str, Text, Words, parse_bool, parse_int
from ..dispatch import NONE, OPTIONAL, REQUIRED, Cmd, Command
from ..fs import FS
from ..reply import Reply

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_auth.c"
log = logging.getLogger("proftpy")


def _root_spec(args: list[str]) -> tuple[str, str | None]:
    """`DefaultRoot path [group-expr]`: path is `~`, `~/sub` or absolute."""
    if not 1 <= len(args) <= 2:
        raise ValueError("expected a path and an optional group expression")
    path = args[0]
    if not (path == "~" or path.startswith("~/") or path.startswith("/")):
        raise ValueError(f"'{path}' must be ~ or an absolute path")
    if any(c in path for c in "*?["):
        raise ValueError("wildcards are not allowed")
    return path, (args[1] if len(args) == 2 else None)


def _alias(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ValueError("expected alias and real user name")
    return args[0], args[1]


def _revoke(args: list[str]) -> bool | str:
    word = Str()(args)
    if word.lower() == "usenoncompliantactivetransfer":
        return "UseNonCompliantActiveTransfer"
    return parse_bool(word)


def _session_timeout(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("expected seconds (user/group/class conditions are not supported yet)")
    return parse_int(args[0], 0)


directives = [
    Directive("AuthOrder", Words(), SVG, ["mod_auth_file.c", "mod_auth_unix.c"], Merge.SERVER,
              "Auth modules to ask, in order; a trailing `*` makes a module authoritative."),
    Directive("RootLogin", Flag, SVGA, False, Merge.DOWN, "Allow logging in as uid 0."),
    Directive("RequireValidShell", Flag, SVGA, True, Merge.DOWN, "Refuse users whose shell is not in /etc/shells."),
    Directive("UseFtpUsers", Flag, SVGA, True, Merge.DOWN, "Refuse users listed in /etc/ftpusers."),
    Directive("DefaultRoot", Custom(_root_spec, "path [group-expression]"), SVG, None, Merge.SERVER,
              "chroot after login: `~` (home) or a path, optionally only for a group expression.", repeat=True),
    Directive("DefaultChdir", Custom(_root_spec, "path [group-expression]"), SVGA, None, Merge.DOWN,
              "Directory a session starts in.", repeat=True),
    Directive("RootRevoke", Custom(_revoke, "on|off|UseNonCompliantActiveTransfer"), SVGA, True, Merge.DOWN,
              "Give up root for good after login (always done by proftpy; accepted for compatibility)."),
    Directive("AccessGrantMsg", Text, SVGA, None, Merge.DOWN, "230 text after a successful login (%u = user)."),
    Directive("AccessDenyMsg", Text, SVGA, None, Merge.DOWN, "530 text after a failed login (%u = user)."),
    Directive("UserAlias", Custom(_alias, "alias real-user"), SVGA, None, Merge.DOWN,
              "Let `alias` log in as `real-user` (e.g. `UserAlias anonymous ftp`).", repeat=True),
    Directive("AnonRequirePassword", Flag, ANON, False, Merge.DOWN, "Anonymous logins need the real password."),
    Directive("MaxLoginAttempts", Int(1), SVG, 3, Merge.SERVER, "Failed PASS commands before disconnecting."),
    Directive("TimeoutLogin", Int(0), SVG, 300, Merge.SERVER, "Seconds allowed to log in."),
    Directive("TimeoutSession", Custom(_session_timeout, "seconds"), SVGA, None, Merge.DOWN,
              "Seconds a logged-in session may last."),
]


# -- backends ------------------------------------------------------------------------------------------------------
def auth_chain(server) -> AuthChain:
    """The server's AuthOrder as an AuthChain, built once per server per process (cached on the server)."""
    cache = server.__dict__.setdefault("cache", {})
    chain = cache.get("auth_chain")
    if chain is None:
        from . import auth_file, auth_pam, auth_unix
        available = {}
        for mod in (auth_file, auth_unix, auth_pam):
            b = mod.backend(server)
            if b is not None:
                available[mod.NAME] = b
        order = server.get("AuthOrder")
        wanted = [w for w in order if w.rstrip("*") in available]
        chain = cache["auth_chain"] = AuthChain(parse_auth_order(wanted, available))
    return chain


# -- session state -------------------------------------------------------------------------------------------------
def _st(session: "Session") -> dict:
    return session.state.setdefault(NAME, {"attempts": 0, "user_arg": None})


def session_init(session: "Session") -> None:
    seconds = session.server.get("TimeoutLogin")
    session.set_timer("login", seconds, _login_expired)


def _login_expired(session: "Session") -> None:
    seconds = int(session.timers["login"].seconds)
    session.timeout_exit(421, f"Login timeout ({seconds} second{'s' if seconds != 1 else ''}): closing control "
                         "connection", "core.timeout-login")


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
        if anon_user == name:
            return name, anon
    for p in session.server.section.all("UserAlias"):
        alias, real = p.value
        if alias == name:
            return real, None
    return name, None


# -- commands ------------------------------------------------------------------------------------------------------
def user(session: "Session", cmd: Cmd) -> Reply:
    if session.authenticated:
        return Reply(503, "You are already logged in")
    st = _st(session)
    st["user_arg"] = cmd.arg
    real, anon = resolve_alias(session, cmd.arg)
    st["anon"] = anon
    if anon is not None and not anon.get("AnonRequirePassword"):
        return Reply(331, "Anonymous login ok, send your complete email address as your password")
    return Reply(331, f"Password required for {cmd.arg}")


def pass_(session: "Session", cmd: Cmd) -> Reply | None:
    if session.authenticated:
        return Reply(503, "You are already logged in")
    st = _st(session)
    if st["user_arg"] is None:
        return Reply(503, "Login with USER first")
    name = st["user_arg"]
    real, anon = resolve_alias(session, name)
    chain = auth_chain(session.server)
    if anon is not None:
        account = chain.lookup(real)
        if account is not None and anon.get("AnonRequirePassword"):
            account = chain.authenticate(real, cmd.arg)
        reason = None if account else f"no such anonymous account '{real}'"
    else:
        account = chain.authenticate(real, cmd.arg)
        reason = None if account else "incorrect password or no such user"
        if account is not None:
            ctx = session.server.context()
            reason = login_denial(account, root_login=ctx.get("RootLogin"),
                                  require_valid_shell=ctx.get("RequireValidShell"),
                                  use_ftpusers=ctx.get("UseFtpUsers"))
            if account.uid == 0 and not ctx.get("RootLogin"):
                session.events.emit("mod_auth.root-login", session=session)
    if reason is None:
        limits = session.state.get("login_allowed")
        session.anon = anon
        if limits is not None and not limits(session):
            reason = "denied by <Limit LOGIN>"
    if reason is not None:
        session.anon = None
        return _failed(session, name, reason)
    try:
        start_session(session, account, anon, name, cmd.arg)
    except OSError as e:
        log.error("login of %s failed: %s", name, e)
        session.anon = None
        return _failed(session, name, f"cannot set up the session: {e.strerror or e}")
    text = session.context().get("AccessGrantMsg")
    if anon is not None:
        text = text or "Anonymous access granted, restrictions apply"
    else:
        text = text or f"User {name} logged in"
    return Reply(230, text.replace("%u", name), _login_lines(session))


def _login_lines(session: "Session") -> list[str]:
    try:
        from .. import display
    except ImportError:
        return []
    fn = getattr(display, "login_lines", None)
    return fn(session) if fn else []


def _failed(session: "Session", name: str, reason: str) -> Reply | None:
    st = _st(session)
    st["attempts"] += 1
    log.info("USER %s (Login failed): %s", name, reason)
    text = (session.server.context().get("AccessDenyMsg") or "Login incorrect.").replace("%u", name)
    st["user_arg"] = None
    if st["attempts"] >= session.server.get("MaxLoginAttempts"):
        session.send(Reply(530, text))
        log.info("Maximum login attempts (%d) exceeded", st["attempts"])
        session.events.emit("mod_auth.max-login-attempts", session=session)
        session.end("max login attempts")
        return None
    return Reply(530, text)


def start_session(session: "Session", account: Account, anon, name: str, password: str) -> None:
    """Everything after a good password, in ProFTPD's order; raises OSError when a step fails."""
    chain = auth_chain(session.server)
    gids = [g.gid for g in chain.groups_for(account)]
    group_names = {g.name for g in chain.groups_for(account)}
    root = _session_root(session, account, anon, group_names)
    session.events.emit("core.chroot", session=session, root=root)
    p = privs.default_privs()
    kernel_chroot = root is not None and os.geteuid() == 0
    if kernel_chroot:
        os.chroot(root)
        os.chdir("/")
        fs = FS("/")
        fs.mark_kernel_chroot()
    else:
        fs = FS(root or "/")
    if os.geteuid() == 0:
        p.drop_to_user(account.uid, account.gid, [account.gid] + gids)
    umask, _ = session.context().get("Umask")
    os.umask(umask)
    home = account.home if anon is None else (root or account.home)
    session.state["home"] = home
    start = _within(home, root) if root else home
    chdir_spec = session.context().get("DefaultChdir")
    if chdir_spec and _group_match(chdir_spec[1], group_names):
        start = chdir_spec[0].replace("~", _within(home, root) if root else home, 1)
    try:
        fs.chdir(start)
    except Exception:
        log.info("cannot chdir to %s; starting in /", start)
        fs.cwd = "/"
    session.fs = fs
    session.account = account
    session.user = account.name if anon is None else name
    session.anon = anon
    session.authenticated = True
    session.state["anon_password"] = password if anon is not None else None
    session.set_timer("login", None, _login_expired)
    session.set_timer("session", session.context().get("TimeoutSession"), _session_expired)
    session.events.emit("mod_auth.authenticated", session=session)


def _session_root(session: "Session", account: Account, anon, group_names: set[str]) -> str | None:
    """The directory to confine the session to: the <Anonymous> directory, else the first matching DefaultRoot."""
    if anon is not None:
        path = anon.args[0]
        return _expand_home(path, account, session)
    for p in session.server.section.all("DefaultRoot"):
        path, expr = p.value
        if _group_match(expr, group_names):
            if path == "/":
                return None
            return _expand_home(path, account, session)
    return None


def _expand_home(path: str, account: Account, session: "Session") -> str:
    if path == "~" or path.startswith("~/"):
        return os.path.normpath(account.home + path[1:])
    if path.startswith("~"):
        name, _, rest = path[1:].partition("/")
        other = auth_chain(session.server).lookup(name)
        if other is None:
            raise OSError(2, f"no such user '{name}' for {path}")
        return os.path.normpath(os.path.join(other.home, rest))
    return os.path.normpath(path)


def _within(home: str, root: str) -> str:
    """The home directory as seen from inside the chroot ("/" when home is outside it)."""
    root = root.rstrip("/")
    if home == root:
        return "/"
    if home.startswith(root + "/"):
        return home[len(root):]
    return "/"


def _group_match(expr: str | None, names: set[str]) -> bool:
    """ProFTPD group expressions: a comma list that must all hold; `!grp` means not a member."""
    if not expr:
        return True
    for term in expr.split(","):
        term = term.strip()
        if term.startswith("!"):
            if term[1:] in names:
                return False
        elif term not in names:
            return False
    return True


def acct(session: "Session", cmd: Cmd) -> Reply:
    return Reply(502, "ACCT command not implemented")


def rein(session: "Session", cmd: Cmd) -> Reply:
    return Reply(502, "REIN command not implemented")


commands = [
    Command("USER", user, needs_login=False, arg=REQUIRED, help="<sp> username"),
    Command("PASS", pass_, needs_login=False, arg=OPTIONAL, help="<sp> password"),
    Command("ACCT", acct, needs_login=False, arg=OPTIONAL, help="is not implemented"),
    Command("REIN", rein, needs_login=False, arg=OPTIONAL, help="is not implemented"),
]
