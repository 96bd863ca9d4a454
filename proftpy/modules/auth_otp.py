"""mod_auth_otp: one-time passwords (HOTP, TOTP) given as the PASS of an FTP login, the secrets and HOTP counters in
an SQL table read and written through mod_sql's named queries (`sql:/get-query/update-query`).

Like ProFTPD's, it is an "auth-only" module: where AuthOrder names `mod_auth_otp.c` it is asked before any password
is checked (`AuthChain`'s vouchers) and knows no account (the account comes from the other modules). A user with a
row whose PASS is a right code logs in; a wrong code ends the login only when the module is authoritative
(`mod_auth_otp.c*`), else the other modules check the PASS as a password. A user without a row (or whose row
cannot be read) is left to the other modules, unless the module is authoritative with `RequireTableEntry`.
Over SSH the same check serves mod_sftp's password method, and `kbdint` is mod_auth_otp's keyboard-interactive
driver (the `Verification code: ` prompt), which sftp_session.Auth asks before PAM's. The codes are computed in
proftpy/auth/otp.py.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import privs, trace
from ..auth.otp import ALGORITHMS, Base32Error, base32_decode, candidates
from ..auth.sql import atol
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Options, Str
from ..dispatch import POST_CMD, POST_CMD_ERR, PRE_CMD, Hook, Request
from ..log import NOTICE
from ..module import Listener, Module
from ..reply import Reply
from . import sql
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_auth_otp.c"
VERSION = "mod_auth_otp/0.3"
log = logging.getLogger("proftpy")

NO_SUCH_USER = "No such user found"
STANDARD_RESPONSE = "FTPStandardResponse"
REQUIRE_TABLE_ENTRY = "RequireTableEntry"
DISPLAY_VERIFICATION_CODE = "DisplayVerificationCode"


# -- directives ----------------------------------------------------------------------------------------------------
def _algorithm(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    name = args[0].lower()
    if name not in ALGORITHMS:
        raise ValueError("expected supported OTP algorithm (hotp, totp, totp-sha1, totp-sha256, totp-sha512)")
    return "totp-sha1" if name == "totp" else name


@dataclass(frozen=True)
class Table:
    """AuthOTPTable's two SQLNamedQuery names."""
    select: str
    update: str


def _table(args: list[str]) -> Table:
    """`sql:/get-query/update-query` (ProFTPD ignores what follows a third `/`; an empty name is refused here,
    where ProFTPD's sessions would log "badly formatted table info" at each USER)."""
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if not args[0].lower().startswith("sql:/"):
        raise ValueError("badly formatted parameter: expected sql:/get-query/update-query")
    select, _, rest = args[0][5:].partition("/")
    update = rest.partition("/")[0]
    if not select or not update:
        raise ValueError(f"badly formatted table info '{args[0][4:]}': expected sql:/get-query/update-query")
    return Table(select, update)


def _log_path(args: list[str]) -> str | None:
    path = Str()(args)
    return None if path.lower() == "none" else path


directives = (
    Directive("AuthOTPEngine", Flag, SVG, False, Merge.SERVER,
              "Check one-time passwords at login (needs AuthOTPTable)."),
    Directive("AuthOTPAlgorithm", Custom(_algorithm, "hotp|totp|totp-sha1|totp-sha256|totp-sha512"), SVG,
              "totp-sha1", Merge.SERVER, "HOTP (counter-based) or TOTP (time-based, 30-second steps) codes."),
    Directive("AuthOTPTable", Custom(_table, "sql:/get-query/update-query"), SVG, None, Merge.SERVER,
              "The SQLNamedQuery reading a user's base32 secret (and HOTP counter) and the one storing the counter."),
    Directive("AuthOTPTableLock", Str(), SVG, None, Merge.SERVER,
              "A lock file held while a user's row is read (and the HOTP counter moved)."),
    Directive("AuthOTPOptions", Options((STANDARD_RESPONSE, REQUIRE_TABLE_ENTRY, DISPLAY_VERIFICATION_CODE),
                                        "AuthOTPOption", aliases=(("StandardResponse", STANDARD_RESPONSE),)),
              SVG, None, Merge.SERVER, "FTPStandardResponse (keep USER's usual 331), RequireTableEntry (with "
              "`mod_auth_otp.c*`: no row, no login), DisplayVerificationCode (SSH prompts echo the code).",
              repeat=True),
    Directive("AuthOTPLog", Custom(_log_path, "path|none"), SVG, None, Merge.SERVER,
              "mod_auth_otp's own log: each success and failure."),
)


def options(server) -> frozenset[str]:
    """Every AuthOTPOptions line's words (ProFTPD ORs them)."""
    return frozenset(o for p in server.section.all("AuthOTPOptions") for o in p.value)


# -- session -------------------------------------------------------------------------------------------------------
@dataclass
class OtpState:
    engine: bool = False
    table: Table | None = None          # "open" between USER and the end of PASS, as ProFTPD's handle
    logfile: ModuleLog | None = None
    lock_fd: int | None = None


def _state(session: "Session") -> OtpState:
    return session.state.get(OtpState)


def _write(session: "Session", text: str) -> None:
    st = _state(session)
    if st.logfile is not None:
        st.logfile.write(text)


def session_init(session: "Session") -> None:
    """ProFTPD's auth_otp_sess_init: the AuthOTPLog and AuthOTPTableLock opened as root; without AuthOTPTable the
    module is off for the session."""
    server = session.server
    st = _state(session)
    st.engine = bool(server.get("AuthOTPEngine"))
    if not st.engine:
        return
    path = server.get("AuthOTPLog")
    if path is not None:
        st.logfile = ModuleLog(VERSION)
        with privs.default_privs().root():
            st.logfile.open(path, bool(server.get("AllowLogSymlinks")))
    if server.get("AuthOTPTable") is None:
        _write(session, "missing required AuthOTPTable directive, disabling module")
        log.log(NOTICE, "%s: missing required AuthOTPTable directive, disabling module", VERSION)
        st.engine = False
        return
    lock = server.get("AuthOTPTableLock")
    if lock is not None:
        try:
            with privs.default_privs().root():
                st.lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            _write(session, f"unable to open AuthOTPTableLock '{lock}': {e.strerror}")
    _bind(session)


def _bind(session: "Session", **_: Any) -> None:
    """The server's backend (in the session's auth chain) checks codes for this session."""
    for backend, required in session.auth.vouchers if session.auth is not None else ():
        if isinstance(backend, OtpBackend):
            backend.verify = functools.partial(verify, session, backend, required)


def _reinit(session: "Session", **_: Any) -> None:
    """HOST chose another server: start again with its settings."""
    _exit(session)
    session.state.put(OtpState())
    session_init(session)


def _exit(session: "Session", **_: Any) -> None:
    st = _state(session)
    if st.logfile is not None:
        st.logfile.close()
    if st.lock_fd is not None:
        os.close(st.lock_fd)
        st.lock_fd = None


def _open_table(session: "Session") -> Table | None:
    """The table "opened": both named queries must exist, else the module sits this login out (logged)."""
    table = session.server.get("AuthOTPTable")
    known = sql.queries(session.server)
    missing = next((name for name in (table.select, table.update) if name not in known), None)
    if missing is None:
        return table
    _write(session, f"error: unable to resolve SQLNamedQuery name '{missing}'")
    _write(session, "unable to open AuthOTPTable: Invalid argument")
    return None


def _pre_user(session: "Session", req: Request) -> None:
    """PRE_CMD USER: the table is opened for this login."""
    st = _state(session)
    if st.engine:
        st.table = _open_table(session)


def _post_user(session: "Session", req: Request) -> None:
    """POST_CMD USER: the 331 says a one-time password is wanted, unless FTPStandardResponse."""
    st = _state(session)
    if st.table is None or req.reply is None or STANDARD_RESPONSE in options(session.server):
        return
    req.reply = Reply(331, f"One-time password required for {req.arg.split(' ', 1)[0]}")


def _post_pass(session: "Session", req: Request) -> None:
    _state(session).table = None


LOCK_TRIES, LOCK_PAUSE = 50, 0.1    # AuthOTPTableLock: how long a login waits for another's lock (5 s)


@contextmanager
def _locked(session: "Session", kind: int):
    """AuthOTPTableLock held (fcntl, whole file) for the block, when configured. A lock not had within 5 s is
    logged and the block runs without it (ProFTPD gives up after ten quick tries), so a stuck holder delays logins
    and never hangs them."""
    fd = _state(session).lock_fd
    held = False
    for attempt in range(LOCK_TRIES if fd is not None else 0):
        try:
            fcntl.lockf(fd, kind | fcntl.LOCK_NB)
            held = True
            break
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN) or attempt == LOCK_TRIES - 1:
                what = "write" if kind == fcntl.LOCK_EX else "read"
                _write(session, f"failed to {what}-lock AuthOTPTable: {e.strerror}")
                break
            time.sleep(LOCK_PAUSE)
    try:
        yield
    finally:
        if held:
            fcntl.lockf(fd, fcntl.LOCK_UN)


def _user_info(session: "Session", table: Table, name: str, hotp: bool) -> tuple[bytes, int] | str:
    """(secret, counter) from the user's row, or why there is none (the log line's reason)."""
    values = sql.lookup(session, table.select, [name])
    if values is None:
        _write(session, f"error processing SQLNamedQuery '{table.select}'")
        return "Operation not permitted"
    wanted = 2 if hotp else 1
    if len(values) < wanted:
        if values:
            _write(session, f"error: SQLNamedQuery '{table.select}' returned incorrect number of values "
                            f"({len(values)})")
            return "Invalid argument"
        return ""
    try:
        secret = base32_decode(str(values[0]) if values[0] is not None else "")
    except Base32Error:
        _write(session, "error base32-decoding value from database: Operation not permitted")
        return "Operation not permitted"
    return secret, (atol(values[1]) if hotp else 0)


_WINDOWS = ("current counter", "one counter window behind", "one counter window ahead")


def _matches(codes: list[str], password: str) -> bool:
    """Whether `password` is one of the window's codes, traced as ProFTPD's `auth_otp` channel tells it."""
    for i, code in enumerate(codes):
        if trace.on: trace.msg("auth_otp", 13, "computed code '%s', client sent code '%s'", code, password)
        if code == password:
            if i and trace.on: trace.msg("auth_otp", 3, "counter check SUCCEEDED for %s; client is out-of-sync",
                                         _WINDOWS[i])
            return True
        if trace.on: trace.msg("auth_otp", 3, "%s check failed", _WINDOWS[i])
    return False


def verify(session: "Session", backend: "OtpBackend | None", required: bool, name: str,
           password: str) -> bool | None:
    """ProFTPD's handle_user_otp: True (a right code: log in), False (refuse the login), None (no say: the other
    modules check the password). `required`: AuthOrder's `*` on `mod_auth_otp.c`; `backend` (None: not in
    AuthOrder) is told why a refusal is not a wrong code."""
    if backend is not None:
        backend.refusal = None
    st = _state(session)
    table = st.table
    if not st.engine or table is None:
        return None
    if not password:
        _write(session, f"FAILED: user '{name}' provided invalid OTP code")
        return False
    algorithm = session.server.get("AuthOTPAlgorithm")
    hotp = algorithm == "hotp"
    with _locked(session, fcntl.LOCK_EX if hotp else fcntl.LOCK_SH):
        info = _user_info(session, table, name, hotp)
        if isinstance(info, str):
            _write(session, f"user '{name}' has no OTP info in AuthOTPTable" if not info else
                   f"unable to retrieve OTP info for user '{name}': {info}")
            if required and REQUIRE_TABLE_ENTRY in options(session.server):
                _write(session, f"FAILED: user '{name}' does not have entry in OTP tables")
                if backend is not None:
                    backend.refusal = NO_SUCH_USER      # ProFTPD's PR_AUTH_NOPWD
                return False
            return None
        secret, counter = info
        if not secret:
            _write(session, f"error generating {'HOTP' if hotp else 'TOTP'} code for user '{name}': "
                            "Invalid argument")
            codes: list[str] = []
        else:
            codes = candidates(algorithm, secret, counter if hotp else int(time.time()))
        if _matches(codes, password):
            _write(session, f"SUCCESS: user '{name}' provided valid OTP code")
            if hotp and not sql.change(session, table.update, [name, str(counter + 1)]):
                _write(session, f"error updating AuthOTPTable for HOTP counter for user '{name}': "
                                "Operation not permitted")
            return True
    if required:
        _write(session, f"FAILED: user '{name}' provided invalid OTP code")
        return False
    return None


# -- mod_sftp's keyboard-interactive driver --------------------------------------------------------------------------
PROMPT = "Verification code: "


def kbdint_offered(session: "Session") -> bool:
    """Whether this driver is there for mod_sftp's keyboard-interactive method (AuthOTPEngine with a table)."""
    return _state(session).engine


def kbdint(session: "Session", user: str, ask: Callable[[str, bool], str]) -> bool | None:
    """ProFTPD's auth_otp kbdint driver: None when it has nothing to ask `user` (no table, no row: the next driver's
    turn, and no prompt sent), else whether the answer to `ask(prompt, echo)` is a right code (the HOTP counter
    moved as for a PASS). Where AuthOrder does not name the module, it asks and the answer fails, as in ProFTPD."""
    st = _state(session)
    if not st.engine or (table := _open_table(session)) is None:
        return None
    entry = next(((b, r) for b, r in session.auth.vouchers if isinstance(b, OtpBackend)), (None, False)) \
        if session.auth is not None else (None, False)
    with _locked(session, fcntl.LOCK_SH):
        info = _user_info(session, table, user, False)
    if isinstance(info, str):
        _write(session, f"no info for user '{user}' found in AuthOTPTable, skipping SSH2 keyboard-interactive "
                        "challenge")
        return None
    answer = ask(PROMPT, DISPLAY_VERIFICATION_CODE in options(session.server))
    if entry[0] is None:        # ProFTPD then compares the code through the other modules' password checks
        _write(session, f"code of user '{user}' not checked: AuthOrder does not name {NAME}")
        return False
    st.table = table
    try:
        return verify(session, entry[0], entry[1], user, answer) is True
    finally:
        st.table = None


# -- the auth module -------------------------------------------------------------------------------------------------
class OtpBackend:
    """AuthOrder's `mod_auth_otp.c`: an auth-only module (it knows no account); `vouch` is the session's verdict
    on a PASS (`verify`), bound when the session starts."""

    name = NAME
    auth_only = True                    # asked only before the password checks, never for accounts or groups
    declines_on_failure = True
    uses_crypt = False

    def __init__(self) -> None:
        self.verify: Callable[[str, str], bool | None] | None = None
        self.refusal: str | None = None     # mod_auth's words for the last refusal, when not a wrong code

    def vouch(self, name: str, password: str | bytes = "") -> bool | None:
        if self.verify is None:
            return None
        if isinstance(password, bytes):
            password = password.decode("utf-8", "surrogateescape")
        return self.verify(name, password)

    def getpwnam(self, name: str) -> None:
        return None

    def getpwuid(self, uid: int) -> None:
        return None

    def getgrnam(self, name: str) -> None:
        return None

    def getgrgid(self, gid: int) -> None:
        return None

    def groups_for(self, name: str, primary_gid: int) -> list:
        return []

    def check(self, account, password: str | bytes) -> bool:
        return False

    def sample_hash(self) -> None:
        return None


def backend(server) -> OtpBackend | None:
    """Offered where AuthOTPEngine is on with an AuthOTPTable."""
    return OtpBackend() if server.get("AuthOTPEngine") and server.get("AuthOTPTable") is not None else None


def _configured(config) -> bool:
    return config.sets("AuthOTPEngine")


def problems(config) -> list[tuple[str, bool]]:
    """`proftpy -t`: what every session of a server would log (a missing table or named query: OTP not used)."""
    out: list[tuple[str, bool]] = []
    for server in config.servers:
        if not server.get("AuthOTPEngine"):
            continue
        table = server.get("AuthOTPTable")
        if table is None:
            out.append((f"{server.name}: {VERSION}: missing required AuthOTPTable directive, disabling module", False))
            continue
        known = sql.queries(server)
        out += [(f"{server.name}: {VERSION}: AuthOTPTable: no SQLNamedQuery '{n}'", False)
                for n in (table.select, table.update) if n not in known]
        if sql.database(server) is None:
            out.append((f"{server.name}: {VERSION}: AuthOTPTable: no SQLConnectInfo, no row can be read", False))
    return out


MODULE = Module(NAME, directives=directives, auth_backend=backend, session_init=session_init,
                session_active=_configured, check=problems,
                hooks=(Hook(PRE_CMD, "USER", _pre_user, active=_configured),
                       Hook(POST_CMD, "USER", _post_user, active=_configured),
                       Hook(POST_CMD, "PASS", _post_pass, active=_configured),
                       Hook(POST_CMD_ERR, "PASS", _post_pass, active=_configured)),
                listeners=(Listener("core.session-reinit", _reinit, _configured),
                           Listener("core.exit", _exit, _configured)))
