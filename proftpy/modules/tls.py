"""mod_tls: FTPS (RFC 4217) as ProFTPD 1.3.8 serves it: AUTH TLS/SSL, PBSZ, PROT, CCC, SSCN, implicit FTPS,
TLSRequired, client certificates (TLSVerifyClient, TLSUserName, AllowDotLogin), TLSLog, and PROT P data
connections bound to the control session.

Where the parts are: the directives in tls_directives.py; the contexts, built in the master before any fork and
rebuilt on HUP, in tls_contexts.py; the control connection's handshake, TLSLog and the session's flags in
tls_session.py; the data connections in tls_data.py. This file is the module: its command rows, the TLSRequired
check of every command, and what a session sets up.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from .. import trace, transfer
from ..config.tree import dir_pattern
from ..ctrls import Action
from ..dispatch import OPTIONAL, POST_CMD, PRE_CMD, Command, Hook, Request
from ..log import NOTICE
from ..module import Listener, MasterView, Module
from ..net import x509
from ..reply import FtpError, Reply
from .auth import AuthState
from .files import named_server
from . import tls_sni
from .tls_directives import NAME, directives
from .tls_session import (TlsState, naming_disabled, open_log, peer_certificate, secure_control, state, tls_log,
                          watch_verification)

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session

log = logging.getLogger("proftpy")

UNWILLING = Reply(534, "Unwilling to accept security parameters")
CTRL_REQUIRED = Reply(550, "SSL/TLS required on the control channel")
DATA_REQUIRED = Reply(522, "SSL/TLS required on the data channel")
EXEMPT = ("SYST", "AUTH", "FEAT", "HOST", "CLNT", "QUIT")         # never hindered by TLSRequired
LOGIN = ("USER", "PASS", "ACCT")
DATA = ("APPE", "LIST", "MLSD", "NLST", "RETR", "STOR", "STOU")


# -- the session -------------------------------------------------------------------------------------------------
def _configure(session: "Session") -> TlsState:
    """The server's settings into the session's state (at connect, and again when HOST or SNI changes it)."""
    st = state(session)
    server = session.server
    st.engine = bool(server.get("TLSEngine"))
    options = server.section.all("TLSOptions")
    st.options = frozenset().union(*(p.value for p in options)) if options else frozenset()
    st.required = server.get("TLSRequired")
    if not st.mechanism:                # after a handshake, its contexts stay: they hold its session cache
        st.tls = None
        if st.engine:
            from .tls_contexts import server_tls
            st.tls = server_tls(session.shared, server, session.config)
            if st.tls is not None and st.tls.external is not None:
                st.tls.external.on_log = lambda message: tls_log(session, message)
            watch_verification(session, st.tls)
        if st.tls is not None and st.tls.native is not None and server.get("TLSSessionTickets"):
            from ..net.openssl import TICKET_KEYS_SIZE
            st.tls.native.set_ticket_keys(os.urandom(TICKET_KEYS_SIZE))     # this session's own (tls_data.py)
    return st


def transport(session: "Session") -> None:
    """Before every other module's session setup: TLSLog, fresh ticket keys, and for `TLSOptions
    UseImplicitSSL` the handshake (so anything said to the client, refusals included, is encrypted). A connection
    that speaks another protocol (mod_sftp's SSH: `command_loop`) is left alone: TLS is off in its session."""
    if session.command_loop is not None:
        return
    st = _configure(session)
    if not st.engine:
        return
    load()                                      # inetd mode has no master that did it
    open_log(session)
    for line in naming_disabled(session, st.options):
        tls_log(session, line)
    session.state.get(AuthState).no_password.append(_passwordless)
    if not st.opt("UseImplicitSSL"):
        return
    tls_log(session, "TLSOption UseImplicitSSL in effect, starting SSL/TLS handshake")
    if st.tls is None:
        tls_log(session, "unable to start session: null SSL_CTX")
        tls_log(session, "implicit SSL/TLS negotiation failed on control channel")
        session.send(Reply(421, "TLS handshake failed"))
        session.end("TLS handshake failed")
        return
    if secure_control(session, "implicit SSL/TLS", tls_sni.callback):
        st.prot_p = st.required.data != -1
        _protect_data(session)
        _switch_by_sni(session)


def _protect_data(session: "Session") -> None:
    """PROT P (or AUTH SSL, or implicit FTPS): data connections are wrapped after their 150 from now on (the
    wrapper itself passes them on untouched while PROT C is in effect)."""
    st = state(session)
    if not st.wrapping:
        from .tls_data import wrapper
        transfer.state(session).wrap.append(wrapper(session))
        st.wrapping = True


def _reinit(session: "Session", **_) -> None:
    """HOST chose another server: its TLS settings from now on (the channel stays as it is)."""
    _configure(session)


def _exit(session: "Session", **_) -> None:
    st = session.state.find(TlsState)
    if st is None or not st.engine:
        return
    if st.opt("EnableDiags") and st.tls is not None:
        stats = st.tls.ctx.session_stats()
        for label, key in (("sessions attempted", "accept"), ("sessions established", "accept_good"),
                           ("sessions renegotiated", "accept_renegotiate"), ("sessions resumed", "hits"),
                           ("sessions in cache", "number"), ("session cache hits", "cb_hits"),
                           ("session cache misses", "misses"), ("session cache timeouts", "timeouts"),
                           ("session cache size exceeded", "cache_full")):
            tls_log(session, f"[stat]: SSL/TLS {label}: {stats.get(key, 0)}")
    if st.on_ctrl and st.ctrl is not None:
        from ..net.tls import close_notify
        close_notify(st.ctrl)                   # a polite end of the control connection's TLS


# -- RFC 2228 mechanism: a login without password ------------------------------------------------------------------
def _passwordless(session: "Session", user: str) -> bool:
    """mod_tls's `requires_pass`: the client certificate of this control connection is in the user's
    ~/.tlslogin (AllowDotLogin), or its TLSUserName attribute is the user's name."""
    st = state(session)
    if not st.engine or not st.on_ctrl or st.ctrl is None:
        return False
    cert = peer_certificate(st.ctrl)
    if cert is None:
        return False
    if st.opt("AllowDotLogin"):
        if _in_dotlogin(session, user, cert):
            tls_log(session, f"TLS/X509 .tlslogin check successful for user '{user}'")
            log.log(NOTICE, "USER %s: TLS/X509 .tlslogin authentication successful", user)
            return True
        tls_log(session, f"TLS/X509 .tlslogin check failed for user '{user}'")
    field = session.server.get("TLSUserName")
    if field:
        if _matches(session, cert, field, user):
            tls_log(session, f"TLS/X509 TLSUserName '{field}' check successful for user '{user}'")
            log.log(NOTICE, "USER %s: TLS/X509 TLSUserName authentication successful", user)
            return True
        tls_log(session, f"TLS/X509 TLSUserName '{field}' check failed for user '{user}'")
    return False


def _in_dotlogin(session: "Session", user: str, cert: x509.Certificate) -> bool:
    account = session.auth.lookup(user) if session.auth is not None else None
    if account is None:
        return False
    try:
        known = x509.read_certificates(os.path.join(account.home, ".tlslogin"))
    except (OSError, x509.BadCertificate) as e:
        tls_log(session, f"error reading {account.home}/.tlslogin: {getattr(e, 'strerror', None) or e}")
        return False
    return any(c.der == cert.der for c in known)


def _matches(session: "Session", cert: x509.Certificate, field: str, user: str) -> bool:
    if field == "CommonName":
        values, what = [v for oid, v in cert.subject if oid == x509.CN], "CommonName"
    elif field == "EmailSubjAltName":
        values, what = cert.alt_emails(), "Email SubjAltName"
    else:
        value = cert.extension_text(field)
        values, what = ([value] if value is not None else []), f"{field} extension"
    for value in values:
        if "\0" in value:
            tls_log(session, f"client cert {what} contains embedded NULs, ignoring as possible spoof attempt")
        elif value == user:
            tls_log(session, f"matched client cert {what} '{value}' to user '{user}'")
            return True
    return False


# -- TLSRequired, before every command ---------------------------------------------------------------------------
def required(session: "Session", cmd: Request) -> Reply | None:
    """ProFTPD's tls_any: what TLSRequired refuses (§1e of the reference), in its order."""
    st = state(session)
    if not st.engine or cmd.name in EXEMPT:
        return None
    if cmd.name in DATA:
        st.command = cmd.name
    need, per_user = st.required, st.opt("AllowPerUser")
    if need.auth == 1 and not st.on_ctrl and not per_user and cmd.name in LOGIN:
        tls_log(session, f"SSL/TLS required but absent for authentication, denying {cmd.name} command")
        return CTRL_REQUIRED
    if need.ctrl == 1 and not st.on_ctrl and (not per_user or session.authenticated):
        tls_log(session, f"SSL/TLS required but absent on control channel, denying {cmd.name} command")
        return CTRL_REQUIRED
    if cmd.name not in DATA or st.prot_p:
        return None
    if need.data == 1:
        tls_log(session, f"SSL/TLS required but absent on data channel, denying {cmd.name} command")
        return DATA_REQUIRED
    where = _directory_requiring(session)
    if where is not None:
        tls_log(session, f"{cmd.name} command denied by TLSRequired in directory '{where}'")
        return DATA_REQUIRED
    return None


def _directory_requiring(session: "Session") -> str | None:
    """The `<Directory>`/.ftpaccess/`<Anonymous>` whose TLSRequired wants data protected where the session is
    (ProFTPD looks at the current directory's configuration), named as ProFTPD logs it."""
    if session.fs is None:
        return None
    try:
        real = session.fs.resolve(".").real
    except FtpError:
        return None
    for section in session.context(real).chain:
        p = section.first("TLSRequired")
        if p is not None:
            if p.value.data != 1:
                return None
            if section.kind == "dir":
                anon_root = session.anon.args[0] if session.anon is not None else None
                return dir_pattern(section, anon_root, session.home) or section.args[0]
            return section.args[0] if section.kind == "anon" else session.server.name
    return None


def after_login(session: "Session", cmd: Request) -> None:
    """After PASS (ProFTPD's tls_post_pass): with AllowPerUser, TLSRequired as the user's configuration has it
    (an <Anonymous> block may require TLS); and `Protocols`. A session that fails is told `530 Login incorrect.`
    instead of its 230, and disconnected."""
    if not session.authenticated or cmd.reply is None or cmd.reply.code != 230:
        return
    st = state(session)
    if st.engine and st.opt("AllowPerUser"):
        st.required = session.context().get("TLSRequired")
        if (st.required.ctrl == 1 or st.required.auth == 1) and not st.on_ctrl:
            tls_log(session, "SSL/TLS required but absent on control channel, disconnecting")
            _refuse_login(session, cmd, "TLSRequired")
            return
    allowed = session.server.get("Protocols")
    if allowed is not None and session.protocol not in {p.lower() for p in allowed}:
        if st.engine:
            tls_log(session, f"{session.protocol} protocol denied by Protocols config")
        log.debug("%s protocol denied by Protocols config", session.protocol)
        _refuse_login(session, cmd, "Denied by Protocols setting")


def _refuse_login(session: "Session", cmd: Request, reason: str) -> None:
    """ProFTPD sends the 530 and disconnects before its queued 230 is flushed: the client sees only the 530. The
    230 here is still unsent, so it becomes the 530 (as mod_core's MaxClients does)."""
    cmd.reply.code, cmd.reply.text, cmd.reply.lines = 530, "Login incorrect.", []
    session.end(reason)


# -- the commands --------------------------------------------------------------------------------------------------
def _declined(cmd: Request) -> Reply:
    return Reply(500, f"{cmd.name} not understood")


def auth(session: "Session", cmd: Request) -> Reply | None:
    st = state(session)
    if not st.engine:
        return _declined(cmd)
    if st.on_ctrl:
        tls_log(session, "Unwilling to accept AUTH after AUTH for this session")
        return Reply(503, "Unwilling to accept second AUTH")
    words = cmd.arg.split()
    if not words:
        return Reply(504, "AUTH requires at least one argument")
    if st.ccc:
        tls_log(session, "Unwilling to accept AUTH after CCC for this session")
        return UNWILLING
    if st.tls is None:
        tls_log(session, f"Unable to accept AUTH {words[0]} due to lack of certificates")
        return Reply(431, "Necessary security resource unavailable")
    if session.authenticated and not st.opt("AllowPerUser"):
        tls_log(session, "Unwilling to accept AUTH after USER/PASS authentication for this session unless "
                "AllowPerUser TLSOption is used")
        return UNWILLING
    mode = words[0].upper()
    if mode in ("TLS", "TLS-C"):
        label = "TLS/TLS-C"
    elif mode in ("SSL", "TLS-P"):
        label = "SSL/TLS-P"
    else:
        tls_log(session, f"AUTH {words[0]} unsupported, declining")
        return _declined(cmd)
    session.send(Reply(234, f"AUTH {mode} successful"))
    tls_log(session, f"{label} requested, starting TLS handshake")
    if secure_control(session, label, tls_sni.callback) and label == "SSL/TLS-P":
        st.prot_p = True
        _protect_data(session)
    _switch_by_sni(session)
    return None


def _switch_by_sni(session: "Session") -> None:
    """A name the client sent in its handshake (SNI) selects that name-based server, as HOST would, unless
    `TLSOptions IgnoreSNI`."""
    st = state(session)
    if not st.sni or st.opt("IgnoreSNI") or session.closing:
        return
    server = named_server(session, st.sni)
    if server is None:
        if trace.on: trace.msg("tls", 5, "client sent SNI '%s', but no matching host found", st.sni)
        return
    if server is session.server:
        return
    log.debug("Changing to server '%s' (ServerAlias %s) due to TLS SNI", server.name, st.sni)
    session.server = server
    session.events.emit("core.session-reinit", session=session, server=server)


def _one_word(session: "Session", cmd: Request) -> str | Reply:
    """PBSZ and PROT: mod_tls declines them before AUTH (`500`) and wants exactly one word (`501`)."""
    st = state(session)
    if not st.engine or not st.mechanism:
        return _declined(cmd)
    words = cmd.arg.split()
    return words[0] if len(words) == 1 else Reply(501, "Invalid number of parameters")


def pbsz(session: "Session", cmd: Request) -> Reply:
    size = _one_word(session, cmd)
    if isinstance(size, Reply):
        return size
    if not state(session).on_ctrl:
        return Reply(503, "PBSZ not allowed on insecure control connection")
    return Reply(200, "PBSZ 0 successful" if size == "0" else "PBSZ=0 successful")


def prot(session: "Session", cmd: Request) -> Reply:
    level = _one_word(session, cmd)
    if isinstance(level, Reply):
        return level
    st = state(session)
    if not st.on_ctrl and not st.ccc:
        return Reply(503, "PROT not allowed on insecure control connection")
    if level == "C":
        if st.required.data == 1:
            tls_log(session, "PROT: TLSRequired requires protection for data transfers")
            tls_log(session, f"PROT: unwilling to accept security parameter ({level})")
            return UNWILLING
        st.prot_p = False
        tls_log(session, "Protection set to Clear")
        return Reply(200, "Protection set to Clear")
    if level == "P":
        if st.required.data == -1:
            tls_log(session, "PROT: TLSRequired does not allow protection for data transfers")
            tls_log(session, f"PROT: unwilling to accept security parameter ({level})")
            return UNWILLING
        st.prot_p = True
        _protect_data(session)
        tls_log(session, "Protection set to Private")
        return Reply(200, "Protection set to Private")
    return Reply(536 if level in ("S", "E") else 504, f"PROT {level} unsupported")


def ccc(session: "Session", cmd: Request) -> Reply | None:
    st = state(session)
    if not st.engine or not st.mechanism:
        return _declined(cmd)
    if not st.on_ctrl:
        return Reply(533, "CCC not allowed on insecure control connection")
    if st.required.ctrl == 1:
        tls_log(session, "CCC: unwilling to accept security parameters: TLSRequired setting does not allow for "
                "unprotected control channel")
        return UNWILLING
    tls_log(session, "received CCC, clearing control channel protection")
    session.send(Reply(200, "Clearing control channel protection"))
    tls, st.ctrl, st.on_ctrl, st.ccc = st.ctrl, None, False, True
    try:
        plain = tls.unwrap()                        # both close_notify: ours, then the client's
    except OSError as e:                            # the client went away instead of answering
        log.debug("CCC: the control channel's TLS shutdown failed: %s", e)
        session.end("CCC failed")
        return None
    session.ctrl.swap(plain)
    return None


def sscn(session: "Session", cmd: Request) -> Reply:
    st = state(session)
    if not st.engine or not st.mechanism:
        return _declined(cmd)
    words = cmd.arg.split()
    if len(words) > 1:
        tls_log(session, f"denying malformed SSCN command: 'SSCN {cmd.arg}'")
        return Reply(504, "SSCN: Invalid argument")
    if not words:
        return Reply(200, f"SSCN:{'CLIENT' if st.sscn_client else 'SERVER'} METHOD")
    if words[0] == "ON":
        st.sscn_client = True
        return Reply(200, "SSCN:CLIENT METHOD")
    if words[0] == "OFF":
        st.sscn_client = False
        return Reply(200, "SSCN:SERVER METHOD")
    tls_log(session, f"denying unsupported SSCN command: 'SSCN {words[0]}'")
    return Reply(501, "SSCN: Invalid argument")


def _engine_on(session: "Session") -> bool:
    return bool(session.server.get("TLSEngine"))


NOT_UNDERSTOOD = "500 <CMD> not understood (TLSEngine off, or before AUTH)"
commands = (
    Command("AUTH", auth, needs_login=False, arg=OPTIONAL, help="<sp> base64-data", help_at=30, limit=False,
            feat=("AUTH TLS",), enabled=_engine_on,
            replies=("234 AUTH TLS successful (TLS, TLS-C; SSL and TLS-P also protect data)",
                     "504 AUTH requires at least one argument", "503 Unwilling to accept second AUTH",
                     "534 Unwilling to accept security parameters (after CCC, or after login)",
                     "431 Necessary security resource unavailable (no certificate)",
                     "421 TLS handshake failed", "500 AUTH not understood (other mechanisms, TLSEngine off)")),
    Command("CCC", ccc, arg=OPTIONAL, help="(clears protection level)", help_at=31, implemented=False,
            feat=("CCC",), enabled=_engine_on, denied=(534, "Unwilling to accept security parameters"),
            replies=("200 Clearing control channel protection", "533 CCC not allowed on insecure control "
                     "connection", "534 Unwilling to accept security parameters", NOT_UNDERSTOOD)),
    Command("PBSZ", pbsz, needs_login=False, arg=OPTIONAL, help="<sp> protection buffer size", help_at=35,
            limit=False, feat=("PBSZ",), enabled=_engine_on,
            replies=("200 PBSZ 0 successful", "200 PBSZ=0 successful (any other size)",
                     "501 Invalid number of parameters", "503 PBSZ not allowed on insecure control connection",
                     NOT_UNDERSTOOD)),
    Command("PROT", prot, needs_login=False, arg=OPTIONAL, help="<sp> protection code", help_at=36,
            feat=("PROT",), enabled=_engine_on, denied=(534, "Unwilling to accept security parameters"),
            replies=("200 Protection set to Private", "200 Protection set to Clear", "536 PROT S unsupported",
                     "504 PROT X unsupported", "501 Invalid number of parameters",
                     "503 PROT not allowed on insecure control connection",
                     "534 Unwilling to accept security parameters (TLSRequired, <Limit PROT>)", NOT_UNDERSTOOD)),
    Command("SSCN", sscn, arg=OPTIONAL, feat=("SSCN",), enabled=_engine_on,
            denied=(550, "{cmd}: Operation not permitted"),
            replies=("200 SSCN:SERVER METHOD", "200 SSCN:CLIENT METHOD", "501 SSCN: Invalid argument",
                     "504 SSCN: Invalid argument", "550 SSCN: Operation not permitted", NOT_UNDERSTOOD)),
)

# -- the master: contexts are built (and ssl loaded) only for a configuration with TLSEngine on ------------------
def _uses_tls(config: "Config") -> bool:
    return any(s.get("TLSEngine") for s in config.servers)


def load() -> None:
    """Import what TLS sessions use: in the master before any fork (children share it), and in any case before a
    session chroots (nothing can be imported after that)."""
    from ..transfer import ktls, stream  # noqa: F401
    from . import tls_contexts, tls_data  # noqa: F401


def _master_init(master: MasterView) -> None:
    if _uses_tls(master.config):
        load()
        from .tls_contexts import master_init
        master_init(master)


def _master_reload(master: MasterView) -> None:
    if _uses_tls(master.config):
        from .tls_contexts import master_reload
        master_reload(master)


def _check(config: "Config") -> list[tuple[str, bool]]:
    if not _uses_tls(config):
        return []
    from .tls_contexts import problems
    return problems(config)


def _engine_anywhere(config: "Config") -> bool:
    """TLSRequired needs TLSEngine: where no section switches it on, sessions go without that hook."""
    return config.sets("TLSEngine")


def _tls_action(master: MasterView, req):
    """`ftpdctl tls sesscache ...` (tls_ctrls.py, loaded when asked)."""
    from .tls_ctrls import tls_action
    return tls_action(master, req)


MODULE = Module(
    NAME, directives=directives, commands=commands, transport=transport,
    ctrls_actions=(Action("tls", _tls_action, acl="TLSControlsACLs", acl_by_arg=True,
                          help="TLS session cache: tls sesscache info [-v]|clear|remove"),),
    hooks=(Hook(PRE_CMD, "*", required, only=lambda row: row.name not in EXEMPT, active=_engine_anywhere),
           Hook(PRE_CMD, "HOST", tls_sni.host_after_handshake, active=_engine_anywhere),
           Hook(POST_CMD, "PASS", after_login)),
    listeners=(Listener("core.session-reinit", _reinit), Listener("core.exit", _exit)),
    check=_check, master_init=_master_init, master_reload=_master_reload)
