"""mod_sftp's SSH session: the transport, user authentication (RFC 4252) and the connection layer with the sftp
subsystem and scp (sftp_scp.py), run as the session's command loop (modules/sftp.py sets it).

User authentication is mod_auth's login: a password login dispatches USER then PASS (every module's hooks, the
auth chain, `<Limit LOGIN>`, mod_delay, mod_ban, DefaultRoot's chroot and the privilege drop); a publickey login,
once the key is found in an SFTPAuthorizedUserKeys store (sftp_keystore.py) and its signature checked, and a
hostbased login (RFC 4252 section 9), once the client host's key is found in an SFTPAuthorizedHostKeys store and its
signature checked, dispatch USER with mod_auth told that this user needs no password (`AuthState.no_password`,
the RFC 2228 way mod_tls's TLSUserName uses), so everything but the password check is the same; a
keyboard-interactive login (RFC 4256) is the same once PAM (mod_sftp_pam's SFTPPAMServiceName) said yes to the
answers its own prompts got. SFTPAuthMethods' chains (`publickey+password`): a method that does not end a chain is a
partial success (a password is checked by the auth chain then, and again by the final login's PASS); the login runs
when a chain is complete. `<Anonymous>` logins are refused (ProFTPD's mod_sftp has none).
Failed attempts count against MaxLoginAttempts as ProFTPD's mod_sftp counts them (6 unless the directive is set):
a failed password or signature, a method not offered; not the "none" method nor a key query."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from .. import privs, transfer
from ..auth import pam_conv
from ..config.types import bool_word
from ..dispatch import Request
from ..log import NOTICE
from ..net.ssh import blacklist, keys as sshkeys
from ..net.ssh.channel import PACKET, WINDOW, Connection
from ..net.ssh.transport import (BY_APPLICATION, ILLEGAL_USER_NAME, KEY_EXCHANGE_FAILED, NEWKEYS, PROTOCOL_ERROR,
                                 SERVICE_ACCEPT, SERVICE_NOT_AVAILABLE, SERVICE_REQUEST, Closed, Disconnect, Settings,
                                 Transport)
from ..net.ssh.wire import Reader, WireError, Writer
from . import auth_otp, display, sftp_keystore
from .access import AccessState
from .auth import AuthState, resolve_alias
from .log import LOG_CLASSES, LogState
from .sftp_state import CHANNEL_SIZES, VERSION, SftpState, channel_size, client_match, host_keys
from .sftp_fxp import open_subsystem
from .sftp_scp import open_command
from .sftp_sshlog import AUTH_SSH, SshLog

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

USERAUTH_REQUEST, USERAUTH_FAILURE, USERAUTH_SUCCESS, USERAUTH_BANNER, USERAUTH_PK_OK = 50, 51, 52, 53, 60
USERAUTH_INFO_REQUEST, USERAUTH_INFO_RESPONSE = 60, 61
MAX_USER = 256                  # bytes of a user name (longer: disconnect, as no account has one)
MAX_PASSWORD = 4096
DEFAULT_ATTEMPTS = 6            # ProFTPD's mod_sftp without MaxLoginAttempts
COMPRESSION = {"off": ("none",), "on": ("zlib", "none"), "delayed": ("zlib@openssh.com", "zlib", "none")}


def settings(session: "Session") -> Settings:
    server = session.server
    opts = server.get("SFTPOptions")
    version = "SSH-2.0-mod_sftp"
    on, text = server.get("ServerIdent")
    if on and text:                     # ProFTPD: "ServerIdent on text" names the software, off is mod_sftp's
        version = "SSH-2.0-" + text.replace("\r", "").replace("\n", "")[:200]
    s = Settings(version=version, pessimistic="PessimisticKexinit" in opts or "OldProtocolCompat" in opts,
                 old_protocol="OldProtocolCompat" in opts, ext_info="NoExtensionNegotiation" not in opts)
    if server.get("SFTPKeyExchanges"):
        s.kex = server.get("SFTPKeyExchanges")
    if server.get("SFTPCiphers"):
        s.ciphers = server.get("SFTPCiphers")
    if server.get("SFTPDigests"):
        s.macs = server.get("SFTPDigests")
    s.compression = COMPRESSION[server.get("SFTPCompression")]
    s.chaff = server.get("SFTPTrafficPolicy")
    return s


def serve(session: "Session") -> None:
    st = session.state.get(SftpState)
    access = session.state.find(AccessState)
    if access is not None:
        access.rate = None              # MaxCommandRate is the FTP command loop's (ProFTPD's too)
    transfer.state(session).ascii = False   # SFTP moves bytes as they are (ProFTPD's xferlog says "b")
    st.log.write(f"client ({session.remote_addr}:{session.remote_port}) connected to server "
                 f"({session.local_addr}:{session.local_port})")
    keys = host_keys(session)
    if not keys:
        st.log.write("no available host keys, unable to handle session")
        log.error("%s: no available host keys, unable to handle session", VERSION)
        session.end("no host keys")
        return
    server_keys = session.server.get("SFTPHostKeys")
    t = Transport(session.ctrl.sock, settings(session), keys, lambda: _wait(session), st.log.write,
                  lambda: session.reset_timer("idle"))
    if server_keys:
        t.host_keys = {alg: k for alg, k in t.host_keys.items() if alg in server_keys}
    sshlog = SshLog(session)
    if sshlog.messages:
        t.note = sshlog.message
    session.notes["SFTP"] = "1"
    session.notes["SSH_CONNECTION"] = (f"{session.remote_addr} {session.remote_port} {session.local_addr} "
                                       f"{session.local_port}")
    conn = None
    try:
        t.start()
        session.notes["SFTP_CLIENT_BANNER"] = t.client_version[8:]
        matched = client_match(session)         # SFTPClientMatch's keys for this client's version text
        t.pessimistic_newkeys = bool_word(matched.get("pessimisticNewkeys", "off")) or False
        Auth(session, t, sshlog).run()
        sizes = {key: channel_size(key, value) for key, value in matched.items() if key in CHANNEL_SIZES}
        conn = Connection(t, lambda name, chan: _subsystem(session, name, chan), st.log.write,
                          session.server.get("SFTPMaxChannels"),
                          commands=lambda command, chan: open_command(session, command, chan),
                          idle=lambda: session.set_protocol("ssh2"),
                          window=sizes.get("channelWindowSize", WINDOW), packet=sizes.get("channelPacketSize", PACKET))
        alive = session.server.get("SFTPClientAlive")
        if alive is not None:
            checks = ClientAlive(session, t, conn, *alive)
            t.wait, conn.answered = checks.wait, checks.answered
        rekey = session.server.get("SFTPRekey")
        if rekey is not None:
            Rekey(session, t, *rekey)
        while True:
            while conn.work():
                if session.closing:
                    raise Closed(session.end_reason)
            if session.closing:
                raise Closed(session.end_reason)
            if conn.resume is not None and not t.buffered:
                ready = session.wait_readable(conn.resume)     # a transfer held back (TransferRate): the other
                if ready is None:                               # channels and the client's messages go on meanwhile
                    continue
                if not ready:
                    raise Closed("")
            kind, payload = t.next_message()
            if 50 <= kind <= 79 or kind == NEWKEYS:
                continue                        # user authentication messages after success: ignored (RFC 4252);
                                                # a rekey over: what waited for it goes on
            conn.handle(kind, payload)
    except Disconnect as d:
        if d.log:
            st.log.write(d.log)
        log.log(NOTICE, "%s: disconnecting client: %s", VERSION, d.log or d.description)
        t.disconnect(d.reason, d.description)
        session.end("ssh2 disconnect")
    except Closed as c:
        if session.closing and not t.closed:
            reason, text = st.disconnect or (BY_APPLICATION, _end_text(session))
            t.disconnect(reason, text)
        elif str(c):
            st.log.write(f"{c}")
        session.end(session.end_reason or "disconnected")
    except Exception:
        log.exception("%s: internal error in the SSH session", VERSION)
        st.log.write("internal error, disconnecting")
        t.disconnect(BY_APPLICATION, "internal error")
        session.end("internal error", "error")
    finally:
        if conn is not None:
            conn.close_all()


def _subsystem(session: "Session", name: str, chan):
    """The sftp subsystem on a channel: the session's protocol is `sftp` from its request on (ProFTPD's)."""
    sub = open_subsystem(session, name, chan)
    if sub is not None:
        session.set_protocol("sftp")
    return sub


def _end_text(session: "Session") -> str:
    reason = session.end_reason
    if reason.startswith("core.timeout-"):
        return {"core.timeout-idle": "Idle timeout", "core.timeout-login": "Login timeout",
                "core.timeout-session": "Session timeout"}.get(reason, "Timeout")
    return "Goodbye" if not reason else reason.replace("_", " ")


def _wait(session: "Session") -> None:
    if not session.wait_readable():
        raise Closed("")


class Rekey:
    """SFTPRekey required interval MB timeout, as ProFTPD's mod_sftp asks for new keys (kex.c, packet.c): once the
    client has logged in, after `interval` seconds since the last key exchange, or once the packets received, or
    those sent, since it reach `size` bytes (the transport counts them); a client that has not finished the
    exchange `timeout` seconds after our KEXINIT is disconnected ("Key exchange failed")."""

    def __init__(self, session: "Session", t: Transport, interval: int, size: int, timeout: int):
        self.session, self.t = session, t
        self.interval, self.timeout = interval, timeout
        self.log = session.state.get(SftpState).log
        t.rekey_size, t.on_rekey_sent, t.on_rekeyed = size, self._sent, self._arm
        self._arm()

    def _arm(self) -> None:
        self.session.set_timer("sftp-rekey-timeout", None, self._late)
        self.session.set_timer("sftp-rekey", self.interval, self._due)

    def _due(self, session: "Session") -> None:
        self.log.write(f"SFTPRekey timer ({self.interval} {'secs' if self.interval != 1 else 'sec'}) expired, "
                       "requesting rekey")
        self.t.request_rekey()          # (an exchange of the client's under way: the timer starts again after it)

    def _sent(self) -> None:
        self.session.set_timer("sftp-rekey", None, self._due)
        self.session.set_timer("sftp-rekey-timeout", self.timeout, self._late)

    def _late(self, session: "Session") -> None:
        self.log.write(f"Failed to rekey before {self.timeout} {'seconds' if self.timeout != 1 else 'second'} "
                       "timeout, disconnecting client")
        session.state.get(SftpState).disconnect = (KEY_EXCHANGE_FAILED, "Key exchange failed")
        session.end("rekey timeout")


class ClientAlive:
    """SFTPClientAlive count interval, as ProFTPD's mod_sftp checks (packet.c): once the client has authenticated
    and outside a rekey, each `interval` seconds the session waits for the client in vain it sends a
    keepalive@proftpd.org request wanting an answer (a CHANNEL_REQUEST on an open channel, else a
    GLOBAL_REQUEST); an answer, success or failure, counts the client alive again. The check after `count`
    unanswered ones disconnects it ("client alive threshold reached"), and so does a fourth interval in a row
    without a byte from it (ProFTPD's poll gives up then, whatever the count)."""

    POLLS = 3                                   # ProFTPD's MAX_POLL_TIMEOUTS

    def __init__(self, session: "Session", t: Transport, conn: Connection, count: int, interval: int):
        self.session, self.t, self.conn = session, t, conn
        self.count, self.interval = count, interval
        self.unanswered = 0

    def answered(self) -> None:
        self.unanswered = 0

    def wait(self) -> None:
        if self.t.rekeying:
            return _wait(self.session)
        silent = 0
        while True:
            ready = self.session.wait_readable(time.monotonic() + self.interval)
            if ready:
                return
            if ready is False:
                raise Closed("")
            silent += 1
            if silent > self.POLLS:
                raise Disconnect(BY_APPLICATION, "Application disconnected",
                                 f"polling on socket {self.t.sock.fileno()} timed out after {self.interval} sec, "
                                 "failing")
            self.unanswered += 1
            if self.unanswered > self.count:
                raise Disconnect(BY_APPLICATION, "client alive threshold reached",
                                 f"SFTPClientAlive threshold (max {self.count} checks, {self.interval} sec interval) "
                                 "reached, disconnecting client")
            self.conn.keepalive("keepalive@proftpd.org")


class _Abandoned(Exception):
    """The client sent something else than an INFO_RESPONSE during a keyboard-interactive exchange."""


class Auth:
    """RFC 4252 for one connection: the methods of SFTPAuthMethods' chains, keyboard-interactive by RFC 4256."""

    def __init__(self, session: "Session", t: Transport, sshlog: SshLog):
        self.session, self.t, self.sshlog = session, t, sshlog
        self.st = session.state.get(SftpState)
        server = session.server
        chains = server.get("SFTPAuthMethods")
        if chains is None:
            chains = ((("publickey",),) if server.get("SFTPAuthorizedUserKeys") else ()) + \
                ((("hostbased",),) if server.get("SFTPAuthorizedHostKeys") else ()) + \
                (("keyboard-interactive",), ("password",))     # ProFTPD's order; the former only with a driver
        if any("keyboard-interactive" in c for c in chains) and not self._kbdint_driver():
            chains = tuple(c for c in chains if "keyboard-interactive" not in c)
        self.chains = chains
        self.done: list[str] = []           # the methods of a chain completed so far
        self.password: str | None = None    # a chain's password: the final login's PASS checks it
        self.pending: tuple[int, bytes] | None = None   # a message read while a PAM conversation waited
        param = server.section.first("MaxLoginAttempts")
        self.max_attempts = param.value if param is not None else DEFAULT_ATTEMPTS
        self.attempts = 0
        self.user: str | None = None
        self.service: str | None = None
        self.have_service = False
        self.banner_sent = False
        self.used_keys: set[bytes] = set()
        self.dispatched = False             # mod_auth's PASS ran (its line is logged)
        self.partial = False                # this request was a partial success
        self.maxed = False                  # this request's failure reached MaxLoginAttempts

    def run(self) -> None:
        while True:
            if self.pending is not None:
                (kind, payload), self.pending = self.pending, None
            else:
                kind, payload = self.t.next_message()
            if kind == SERVICE_REQUEST:
                try:
                    name = Reader(payload, 1).text(64)
                except WireError:
                    raise Disconnect(PROTOCOL_ERROR, "bad service request", "unable to read SERVICE_REQUEST") from None
                if self.t.note is not None:
                    self.t.note("SERVICE_REQUEST", "")
                if name != "ssh-userauth":
                    raise Disconnect(SERVICE_NOT_AVAILABLE, f"service '{name[:64]}' not available",
                                     f"client requested unsupported '{name[:64]}' service, disconnecting")
                self.have_service = True
                self.t.send(Writer().byte(SERVICE_ACCEPT).string(name).bytes())
            elif kind == USERAUTH_REQUEST and self.have_service:
                if self.request(payload):
                    return
            else:
                raise Disconnect(PROTOCOL_ERROR, "unexpected message",
                                 f"client sent message type {kind} before authenticating, disconnecting")

    # -- one request -----------------------------------------------------------------------------------------------
    def request(self, payload: bytes) -> bool:
        try:
            r = Reader(payload, 1)
            user_raw = r.string(MAX_USER)
            service, method = r.text(64), r.text(64)
        except WireError:
            raise Disconnect(PROTOCOL_ERROR, "bad USERAUTH_REQUEST", "unable to read USERAUTH_REQUEST") from None
        user = user_raw.decode("utf-8", "surrogateescape")
        if "\0" in user or not user:
            raise Disconnect(ILLEGAL_USER_NAME, "illegal user name", "client sent an empty or NUL-bearing user name")
        self._banner()
        if self.user is not None and user != self.user:
            raise Disconnect(PROTOCOL_ERROR, "user name changed", f"client used different user name '{user}' in "
                             f"USERAUTH_REQUEST (was '{self.user}'), disconnecting")
        if self.service is not None and service != self.service:
            raise Disconnect(PROTOCOL_ERROR, "service name changed", f"client used different service name "
                             f"'{service}' in USERAUTH_REQUEST (was '{self.service}'), disconnecting")
        if service not in ("ssh-connection", "ssh-userauth"):
            raise Disconnect(SERVICE_NOT_AVAILABLE, "service not available", f"client requested unknown/unsupported "
                             f"service name '{service}' in USERAUTH_REQUEST, disconnecting")
        self.user, self.service = user, service
        if self.sshlog.auth:
            self.sshlog.user(user)          # ProFTPD's USER line of every request, before its orig-user note
        self.session.state.get(LogState).orig_user = user   # %U from now on (ProFTPD's mod_auth.orig-user note)
        if method != "none":
            self.session.notes["SFTP_USER_AUTH_METHOD"] = method
        self.dispatched = self.partial = self.maxed = False
        attempted = method != "none" and method in self.offered()
        ok = False
        try:
            ok = self._method(user, service, method, user_raw, r)
        finally:
            if self.sshlog.auth or self.sshlog.messages:
                self._log_request(user, method, attempted and not ok and not self.partial)
        return ok

    def _method(self, user: str, service: str, method: str, user_raw: bytes, r: Reader) -> bool:
        if method == "none":
            self._failure()
            return False
        if method not in self.offered():
            self.st.log.write(f"auth method '{method[:64]}' not enabled")
            self._failure()
            self._failed_attempt(user)
            return False
        try:
            if method == "password":
                return self._password(user, r)
            if method == "keyboard-interactive":
                return self._kbdint(user, r)
            if method == "hostbased":
                return self._hostbased(user, service, user_raw, r)
            return self._publickey(user, service, user_raw, r)
        except WireError:
            raise Disconnect(PROTOCOL_ERROR, "bad USERAUTH_REQUEST",
                             f"unable to read '{method}' USERAUTH_REQUEST") from None

    def _log_request(self, user: str, method: str, failed: bool) -> None:
        """The request's ExtendedLog lines after its USER line, in ProFTPD's order: PASS (530) for a failed
        attempt that ran no PASS of mod_auth's, the USERAUTH_REQUEST itself, and one more PASS (530) when
        MaxLoginAttempts ends the session."""
        log = self.sshlog
        if failed:
            if log.auth and not self.dispatched:
                log.failed_pass()
            log.forget_user()
        if log.messages:
            log.message("USERAUTH_REQUEST", f"{user} {method}")
        if log.auth and self.maxed:
            self.session.state.get(LogState).orig_user = user     # (ProFTPD sets it again for this PASS)
            log.failed_pass()

    def _password(self, user: str, r: Reader) -> bool:
        if r.boolean():
            self.st.log.write("client says they have provided a new password; this functionality is not currently "
                              "supported")
        password = r.text(MAX_PASSWORD)
        if self._completes("password") or self._password_ok(user, password):
            self.password = password
            return self._method_ok(user, "password")
        self._failure()
        self._failed_attempt(user)
        return False

    def _publickey(self, user: str, service: str, user_raw: bytes, r: Reader) -> bool:
        signed = r.boolean()
        algorithm = r.text(64)
        blob = r.string(16384)
        try:
            key = sshkeys.parse_public_blob(blob)
        except sshkeys.KeyFileError as e:
            self.st.log.write(f"unsupported public key algorithm '{algorithm}' requested, rejecting request ({e})")
            log.log(NOTICE, "USER %s (Login failed): unsupported public key algorithm '%s' requested", user,
                    algorithm)
            self._failure()
            if signed:
                self._failed_attempt(user)
            return False
        if not key.accepts(algorithm):
            self.st.log.write(f"unable to verify that given public key matches given '{algorithm}' algorithm")
            self._failure()
            if signed:
                self._failed_attempt(user)
            return False
        self.st.log.write(f"public key SHA256 fingerprint: {key.fingerprint()}")
        if self._blacklisted(blob):
            self._failure()
            if signed:
                self._failed_attempt(user)
            return False
        if not signed:
            if self._authorized(user, blob):
                self.t.send(Writer().byte(USERAUTH_PK_OK).string(algorithm).string(blob).bytes())
            else:
                self._failure()
            return False
        signature = r.string(16384)
        data = (Writer().string(self.t.session_id).byte(USERAUTH_REQUEST).string(user_raw).string(service)
                .string(b"publickey").boolean(True).string(algorithm).string(blob).bytes())
        if not self._authorized(user, blob):
            log.log(NOTICE, "USER %s (Login failed): authentication via '%s' public key failed", user, algorithm)
        elif not key.verify(algorithm, data, signature):
            self.st.log.write(f"failed to verify '{algorithm}' signature on public key auth request for user '{user}'")
            log.log(NOTICE, "USER %s (Login failed): signature verification of '%s' public key failed", user,
                    algorithm)
        elif blob in self.used_keys:
            self.st.log.write(f"publickey request reused previously verified publickey (fingerprint "
                              f"{key.fingerprint()}), rejecting")
        else:
            self.used_keys.add(blob)
            self.session.notes["SFTP_USER_PUBLICKEY_ALGO"] = algorithm
            self.session.notes["SFTP_USER_PUBLICKEY_FINGERPRINT"] = key.fingerprint()
            self.session.notes["SFTP_USER_PUBLICKEY_FINGERPRINT_ALGO"] = "SHA256"
            return self._method_ok(user, "publickey")
        self._failure()
        self._failed_attempt(user)
        return False

    def _hostbased(self, user: str, service: str, user_raw: bytes, r: Reader) -> bool:
        """RFC 4252 section 9: the client host's key, found in an SFTPAuthorizedHostKeys store, signed the request;
        then the login is mod_auth's, as for a user's key (ProFTPD's mod_sftp: which user of the client host asks
        is not looked at; the host name the client sent is checked against its DNS name with UseReverseDNS on)."""
        algorithm = r.text(64)
        blob = r.string(16384)
        host_raw, host_user_raw = r.string(1024), r.string(MAX_USER)
        signature = r.string(16384)
        host = host_raw.decode("utf-8", "replace")
        try:
            key = sshkeys.parse_public_blob(blob)
        except sshkeys.KeyFileError:
            key = None
        if key is None or not key.accepts(algorithm):
            if key is None:
                self.st.log.write(f"unsupported host key algorithm '{algorithm}' requested, rejecting request")
                log.log(NOTICE, "USER %s (Login failed): unsupported host key algorithm '%s' requested", user,
                        algorithm)
            else:
                self.st.log.write(f"unable to verify that given host key matches given '{algorithm}' algorithm")
            return self._refuse(user)
        self.st.log.write(f"public key SHA256 fingerprint: {key.fingerprint()}")
        if self._blacklisted(blob):
            return self._refuse(user)
        real, anon = resolve_alias(self.session, user)
        if anon is not None or self.session.auth is None or self.session.auth.lookup(real) is None:
            self.st.log.write(f"no account for user '{user}' found")
            log.log(NOTICE, "USER %s: no such user found from %s [%s] to %s:%d", user, self.session.remote_name,
                    self.session.remote_addr, self.session.local_addr, self.session.local_port)
            return self._refuse(user)
        data = (Writer().string(self.t.session_id).byte(USERAUTH_REQUEST).string(user_raw).string(service)
                .string(b"hostbased").string(algorithm).string(blob).string(host_raw).string(host_user_raw).bytes())
        if not self._host_authorized(user, host, host_user_raw.decode("utf-8", "replace"), blob):
            log.log(NOTICE, "USER %s (Login failed): authentication via '%s' host key failed", user, algorithm)
        elif not key.verify(algorithm, data, signature):
            self.st.log.write(f"failed to verify '{algorithm}' signature on hostbased auth request for user "
                              f"'{user}', host {host}")
            log.log(NOTICE, "USER %s (Login failed): signature verification of '%s' host key failed", user,
                    algorithm)
        else:
            return self._method_ok(user, "hostbased")
        return self._refuse(user)

    def _blacklisted(self, blob: bytes) -> bool:
        """Is the key in SFTPKeyBlacklist's file? As ProFTPD, a file that cannot be read refuses nothing."""
        path = self.session.server.get("SFTPKeyBlacklist")
        if path is None:
            return False
        try:
            if not blacklist.listed(path, blob):
                return False
        except blacklist.BlacklistError as e:
            self.st.log.write(f"unable to use SFTPKeyBlacklist '{path}': {e}")
            return False
        self.st.log.write("public key is blacklisted")
        log.log(NOTICE, "public key %s refused: listed in SFTPKeyBlacklist '%s'", sshkeys.fingerprint(blob), path)
        return True

    def _host_authorized(self, user: str, host: str, host_user: str, blob: bytes) -> bool:
        """The client's host key is in an SFTPAuthorizedHostKeys store (sftp_keystore.py) and, with UseReverseDNS
        on, the host name it sent is its DNS name (one trailing dot, which OpenSSH adds, aside)."""
        session = self.session
        stores = session.server.get("SFTPAuthorizedHostKeys")
        if not stores:
            self.st.log.write("no SFTPAuthorizedHostKeys configured")
            return False
        if session.config.main.get("UseReverseDNS"):
            name = session.remote_name
            if host.removesuffix(".").lower() != name.lower():
                self.st.log.write(f"client-sent FQDN '{host}' DOES NOT match client DNS name '{name}'")
                return False
        found = sftp_keystore.matches(session, stores, sftp_keystore.Lookup(user, host, "SFTPAuthorizedHostKeys"),
                                      blob, self.st.log.write)
        if session.closing:                 # a database error of mod_sql ends the session
            raise Closed(session.end_reason)
        if found:
            self.st.log.write(f"host key of '{host}' (client user '{host_user}') accepted for user '{user}'")
        return found

    def _refuse(self, user: str) -> bool:
        """A failed attempt: USERAUTH_FAILURE, counted against MaxLoginAttempts."""
        self._failure()
        self._failed_attempt(user)
        return False

    # -- the key stores -------------------------------------------------------------------------------------------
    def _authorized(self, user: str, blob: bytes) -> bool:
        """The key is in one of the user's SFTPAuthorizedUserKeys stores (sftp_keystore.py)."""
        stores = self.session.server.get("SFTPAuthorizedUserKeys")
        if not stores:
            self.st.log.write("no SFTPAuthorizedUserKeys configured")
            return False
        found = sftp_keystore.matches(self.session, stores, sftp_keystore.Lookup(user), blob, self.st.log.write)
        if self.session.closing:            # a database error of mod_sql ends the session
            raise Closed(self.session.end_reason)
        return found

    # -- login -----------------------------------------------------------------------------------------------------
    def _login(self, user: str, password: str | None, vouched: str | None) -> bool:
        """mod_auth's login, through its USER and PASS."""
        session = self.session
        real, anon = resolve_alias(session, user)
        if anon is not None:
            self.st.log.write(f"anonymous login of '{user}' refused: <Anonymous> is not served over SFTP")
            log.log(NOTICE, "USER %s (Login failed): anonymous logins are not supported over SFTP", user)
            return False
        st = session.state.get(AuthState)
        st.attempts = 0                 # MaxLoginAttempts is counted here, as ProFTPD's mod_sftp counts it
        # a key (or a chain) vouched for the user: USER (331), then a PASS that needs no password, each through
        # every phase and logged in that order, as ProFTPD's mod_sftp dispatches them
        # (ExtendedLog: the request's USER line is logged already, as ProFTPD's 331; PASS under AUTH and SSH)
        reply = session.dispatcher.dispatch(session, Request("USER", user, f"USER {user}", {LOG_CLASSES: frozenset()}))
        if not session.authenticated and not session.closing and reply is not None and reply.code == 331:
            self.dispatched = True
            if vouched is not None:
                st.vouched = user
                try:
                    session.dispatcher.dispatch(session, Request("PASS", "", "PASS", {LOG_CLASSES: AUTH_SSH}))
                finally:
                    st.vouched = None
            elif password is not None:
                session.dispatcher.dispatch(session, Request("PASS", password, "PASS " + password,
                                                             {LOG_CLASSES: AUTH_SSH}))
        if session.closing:
            raise Closed(session.end_reason)
        return session.authenticated

    # -- chains (SFTPAuthMethods publickey+password) ----------------------------------------------------------------
    def offered(self) -> list[str]:
        """The methods that may come next: those that continue a chain from what was done."""
        n, done = len(self.done), tuple(self.done)
        return list(dict.fromkeys(c[n] for c in self.chains if len(c) > n and c[:n] == done))

    def _completes(self, method: str) -> bool:
        return tuple(self.done) + (method,) in self.chains

    def _method_ok(self, user: str, method: str) -> bool:
        """A method succeeded: the login when it ends a chain, else a partial success and the next methods."""
        self.done.append(method)
        if tuple(self.done) not in self.chains:
            self.st.log.write(f"user '{user}' authenticated via '{method}' method, next methods: "
                              f"{','.join(self.offered())}")
            self.partial = True
            self._failure(partial=True)
            return False
        password, self.password = self.password, None
        if self._login(user, password, None if password is not None else user):
            return self._success(user, "+".join(self.done))
        self.done = []
        self._failure()
        self._failed_attempt(user)
        return False

    def _password_ok(self, user: str, password: str) -> bool:
        """A password that does not end its chain: checked by the auth chain now (the final login's PASS checks
        it again, with everything mod_auth does)."""
        real, anon = resolve_alias(self.session, user)
        if anon is not None or self.session.auth is None:
            return False
        with privs.default_privs().as_root():
            ok = self.session.auth.authenticate(real, password) is not None
        if not ok:
            log.log(NOTICE, "USER %s (Login failed): Incorrect password", user)
        return ok

    # -- keyboard-interactive (RFC 4256): mod_auth_otp's driver, then PAM's (mod_sftp_pam) --------------------------
    def _kbdint_driver(self) -> bool:
        return auth_otp.kbdint_offered(self.session) or self._pam_driver()

    def _pam_driver(self) -> bool:
        server = self.session.server
        if not server.get("SFTPPAMEngine"):
            self.st.log.write("keyboard-interactive: disabled by SFTPPAMEngine setting, no driver")
            return False
        if not server.get("AuthPAM"):       # mod_sftp_pam also honours mod_auth_pam's switch
            self.st.log.write("keyboard-interactive: disabled by AuthPAM setting, no driver")
            return False
        try:
            pam_conv.libraries()
        except pam_conv.PamUnavailable as e:
            self.st.log.write(f"keyboard-interactive: no driver: {e}")
            log.warning("%s: keyboard-interactive has no driver: %s", VERSION, e)
            return False
        return True

    def _kbdint(self, user: str, r: Reader) -> bool:
        r.string(256)                       # language (deprecated)
        r.string(1024)                      # submethods: PAM decides
        server = self.session.server
        service = server.get("SFTPPAMServiceName")
        opts = server.get("SFTPPAMOptions")
        real, anon = resolve_alias(self.session, user)
        if anon is not None:
            self.st.log.write(f"anonymous login of '{user}' refused: <Anonymous> is not served over SFTP")
            self._failure()
            self._failed_attempt(user)
            return False
        ask = lambda text, echo: self._ask(      # noqa: E731
            [pam_conv.PamMessage(pam_conv.PAM_PROMPT_ECHO_ON if echo else pam_conv.PAM_PROMPT_ECHO_OFF, text)], opts)[0]
        with privs.default_privs().as_root():
            try:        # ProFTPD tries the driver loaded last first: mod_auth_otp's (None: nothing to ask this user)
                otp = auth_otp.kbdint(self.session, real, ask)
            except _Abandoned:
                otp = False
        if otp:
            return self._method_ok(user, "keyboard-interactive")
        if self.pending is not None:
            ok, why = False, "client abandoned the keyboard-interactive exchange"
        elif self._pam_driver():
            ok, why = self._pam(user, real, service, opts)
        else:
            ok, why = False, ("wrong verification code" if otp is False else
                              "no keyboard-interactive driver for the user")
        if ok:
            return self._method_ok(user, "keyboard-interactive")
        self.st.log.write(f"keyboard-interactive authentication of '{user}' failed: {why}")
        log.log(NOTICE, "USER %s (Login failed): keyboard-interactive authentication failed", user)
        if self.pending is None:
            self._failure()
            self._failed_attempt(user)
        return False

    def _pam(self, user: str, real: str, service: str, opts) -> tuple[bool, str]:
        self.st.log.write(f"keyboard-interactive: using PAM service name '{service}'")
        tty = None if "NoTTY" in opts else f"/dev/ftpd{os.getpid():02d}"
        with privs.default_privs().as_root():
            try:
                ok, why = pam_conv.authenticate(service, real, lambda msgs: self._ask(msgs, opts),
                                                rhost=self.session.remote_addr, tty=tty)
            except _Abandoned:
                ok, why = False, "client abandoned the keyboard-interactive exchange"
        return ok, why

    def _ask(self, messages: list, opts) -> list[str]:
        """One PAM conversation round as INFO_REQUEST and INFO_RESPONSE."""
        prompts = [m for m in messages if m.prompt and not (m.style == pam_conv.PAM_RADIO_TYPE
                                                            and "NoRadioMsgs" in opts)]
        info = [m.text for m in messages if not m.prompt and not (m.style == pam_conv.PAM_TEXT_INFO
                                                                  and "NoInfoMsgs" in opts)]
        w = Writer().byte(USERAUTH_INFO_REQUEST).string(b"").string("\n".join(info)).string(b"").u32(len(prompts))
        for m in prompts:
            w.string(m.text).boolean(m.style == pam_conv.PAM_PROMPT_ECHO_ON)
        self.t.send(w.bytes())
        kind, payload = self.t.next_message()
        if kind != USERAUTH_INFO_RESPONSE:
            self.pending = (kind, payload)  # another request: this exchange is over, that one is handled next
            raise _Abandoned()
        try:
            rr = Reader(payload, 1)
            count = rr.u32()
            if count != len(prompts):
                raise Disconnect(PROTOCOL_ERROR, "bad INFO_RESPONSE", f"client sent {count} responses to "
                                 f"{len(prompts)} keyboard-interactive prompts, disconnecting")
            answers = [rr.text(MAX_PASSWORD) for _ in range(count)]
        except WireError:
            raise Disconnect(PROTOCOL_ERROR, "bad INFO_RESPONSE", "unable to read INFO_RESPONSE") from None
        out, it = [], iter(answers)
        for m in messages:
            if m in prompts:
                out.append(next(it))
            elif m.prompt:
                out.append("")
        return out

    def _success(self, user: str, method: str) -> bool:
        self.t.send(bytes((USERAUTH_SUCCESS,)))
        self.t.authenticated()
        self.st.log.write(f"user '{user}' authenticated via '{method}' method")
        return True

    def _failure(self, partial: bool = False) -> None:
        self.t.send(Writer().byte(USERAUTH_FAILURE).string(",".join(self.offered())).boolean(partial).bytes())

    def _failed_attempt(self, user: str) -> None:
        self.attempts += 1
        if self.max_attempts and self.attempts >= self.max_attempts:
            log.log(NOTICE, "Maximum login attempts (%d) exceeded, connection refused", self.max_attempts)
            self.st.log.write(f"Maximum login attempts ({self.max_attempts}) exceeded, refusing connection for "
                              f"user '{user}'")
            self.session.events.emit("mod_auth.max-login-attempts", session=self.session, user=user)
            self.maxed = True
            raise Disconnect(BY_APPLICATION, "Maximum login attempts exceeded")

    def _banner(self) -> None:
        if self.banner_sent:
            return
        self.banner_sent = True
        path = self.session.server.get("SFTPDisplayBanner")
        if not path:
            return
        lines = display.lines_for(self.session, path)
        if not lines:
            self.st.log.write(f"error opening SFTPDisplayBanner '{path}'")
            return
        text = "\r\n".join(lines) + "\r\n"
        self.t.send(Writer().byte(USERAUTH_BANNER).string(text).string(b"").bytes())
        self.st.log.write("sending userauth banner")
