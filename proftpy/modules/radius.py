"""mod_radius: logins checked by RADIUS servers (RFC 2865) and sessions accounted to them (RFC 2866), as ProFTPD
1.3.8's contrib/mod_radius (0.9.3) does it. The packets themselves are proftpy/net/radius.py's.

When a client sends PASS (a PRE_CMD hook, before mod_auth's handler, so that what the server answers can shape the
login) the session sends an Access-Request to each RadiusAuthServer in turn until one answers: User-Name (the USER
name, with RadiusRealm appended), User-Password (hidden with the shared secret), NAS-Identifier (RadiusNASIdentifier,
else the protocol: `ftp` or `ftps`), NAS-IP-Address or NAS-IPv6-Address (the address the client connected to),
NAS-Port (the server's Port), NAS-Port-Type Virtual, Calling-Station-Id (the client's address), Service-Type (Login
when RadiusUserInfo, RadiusGroupInfo or RadiusQuotaInfo expect attributes back, else Authenticate-Only),
Acct-Session-Id (the session's pid, `%08u`) and a Message-Authenticator. The answer must carry the request's
identifier and the right Response Authenticator (and Message-Authenticator, when it has one or RequireMAC asks for
it); a datagram that does not is logged and discarded, and the wait for the real answer goes on.

The `mod_radius.c` auth module (AuthOrder) then reports that verdict, in one of ProFTPD's two ways:

- with RadiusUserInfo (and a RadiusAuthServer), it is an account source: the user who is logging in is the account
  RadiusUserInfo describes (`$(attribute-id:default)` values taken from the answer's Vendor-Specific attributes of
  RadiusVendor), accepted when the server accepted; when no server answered it stays that account and the login
  fails (`No such user found`); after an Access-Reject it knows nobody, so a later auth module may still know the
  name;
- without it, it only says yes or no ("auth-only", as ProFTPD's pr_auth_add_auth_only_module): before any other
  module checks the password, for an account another module knows; when no server answered, the other modules
  check the password as usual.

Access-Accept: its Reply-Message lines lead the 230 (unless IgnoreReplyMessage), Idle-Timeout becomes the session's
TimeoutIdle and Session-Timeout its TimeoutSession (unless IgnoreIdleTimeout / IgnoreSessionTimeout), Class values
(unless IgnoreClass) and a User-Name go back in the Accounting-Requests. Access-Reject: its Reply-Message lines lead
the 530. With RadiusAcctServer, a logged-in session (however it logged in) sends Accounting-Request Start after PASS
and Stop when it ends, with ProFTPD's attributes and values (Acct-Authentic Local, as ProFTPD always says;
Acct-Input/Output-Octets every byte the data connections moved in that direction, listings included; the
Acct-Terminate-Cause of how the session ended).

Where proftpy does better than ProFTPD 1.3.8 (docs/auth.md#radius-mod_radius lists them): the attributes are read
with their own lengths (ProFTPD adds the next attribute's two header bytes to a Reply-Message, a Class and a
User-Name, and shows only the first of several Reply-Messages), an Access-Accept with Idle-Timeout or
Session-Timeout is applied (Debian's ProFTPD 1.3.8 dies on it with SIGSEGV), each PASS starts afresh (ProFTPD forgets
RadiusUserInfo for the rest of the session after one Access-Reject or a PASS before USER), every answer is checked
the same way and a closed server port fails over at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .. import privs, trace
from ..auth import Account, Group
from ..dispatch import POST_CMD, POST_CMD_ERR, PRE_CMD, Hook, Request
from ..log import NOTICE
from ..module import Listener, Module
from ..net import radius as rad
from ..session import _idle_expired
from .auth import _session_expired, resolve_alias
from .modlog import ModuleLog
from .radius_directives import RadiusServer, Settings, Var, c_number, directives, parse_gids, settings, split_list

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")

NAME = "mod_radius.c"
TAG = "mod_radius/0.9.3"                # ProFTPD 1.3.8's mod_radius, as its RadiusLog lines name it
NO_SUCH_USER = "No such user found"


# -- what the configuration and the answer say about the user --------------------------------------------------------
@dataclass
class UserInfo:
    uid: int
    gid: int
    home: str
    shell: str


@dataclass
class GroupInfo:
    primary: str
    names: list[str]
    gids: list[int]


@dataclass
class Info:
    """RadiusUserInfo/RadiusGroupInfo/RadiusQuotaInfo as a login offers them (None: not offered), and the
    Vendor-Specific attributes an Access-Accept may replace them with."""

    user: UserInfo | None = None
    user_attrs: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: GroupInfo | None = None
    group_attrs: tuple[int, int, int] = (0, 0, 0)
    quota: list[str] | None = None
    quota_attrs: tuple[int, ...] = (0,) * 8

    def copy(self) -> "Info":
        return Info(dataclasses.replace(self.user) if self.user else None, self.user_attrs,
                    GroupInfo(self.groups.primary, list(self.groups.names), list(self.groups.gids))
                    if self.groups else None, self.group_attrs, list(self.quota) if self.quota else None,
                    self.quota_attrs)

    @property
    def expects_attributes(self) -> bool:
        return bool(self.user or self.groups or self.quota)


def _value(param: str | Var) -> tuple[int, str]:
    return (param.attr, param.default) if isinstance(param, Var) else (0, param)


def configured_info(st: Settings, write: Callable[[str], None]) -> Info:
    """What the configuration offers, its `$(...)` defaults checked as ProFTPD checks them when a session starts (a
    bad one is logged and the directive ignored). Nothing is offered without a RadiusAuthServer."""
    info = Info()
    if not st.auth_servers:
        return info
    if st.user_info is not None:
        info.user, info.user_attrs = _process_user_info(st.user_info, write)
    if st.group_info is not None:
        info.groups, info.group_attrs = _process_group_info(st.group_info, write)
    if st.quota_info is not None:
        info.quota, info.quota_attrs = _process_quota_info(st.quota_info, write)
    return info


def _process_user_info(params: tuple, write: Callable[[str], None]) -> tuple[UserInfo | None, tuple]:
    (uid_attr, uid), (gid_attr, gid), (home_attr, home), (shell_attr, shell) = (_value(p) for p in params)
    bad = False
    ids = []
    for what, attr, text in (("UID", uid_attr, uid), ("GID", gid_attr, gid)):
        kind = "default " if attr else ""
        if not c_number(text):
            write(f"illegal RadiusUserInfo {kind}{what} value: '{text}' not a number")
            bad = True
            ids.append(0)
            continue
        number = int(text) & 0xFFFFFFFF          # strtoul's wrap of a negative number, then (uid_t)
        if number == 0xFFFFFFFF:
            write(f"illegal RadiusUserInfo {kind}{what} value: -1 not allowed")
            bad = True
        ids.append(number)
    for what, attr, text in (("home", home_attr, home), ("shell", shell_attr, shell)):
        if attr and not text.startswith("/"):
            write(f"illegal RadiusUserInfo default {what} value: '{text}' not an absolute path")
            bad = True
    if bad:
        write("error with RadiusUserInfo parameters, ignoring them")
        return None, (0, 0, 0, 0)
    return UserInfo(ids[0], ids[1], home, shell), (uid_attr, gid_attr, home_attr, shell_attr)


def _process_group_info(params: tuple, write: Callable[[str], None]) -> tuple[GroupInfo | None, tuple]:
    primary_attr, primary = _value(params[0])
    bad = False
    names_attr = gids_attr = 0
    if isinstance(params[1], Var):
        names_attr, names = params[1].attr, split_list(params[1].default)
    else:
        names = list(params[1])
    if isinstance(params[2], Var):
        gids_attr = params[2].attr
        parsed = parse_gids(params[2].default)
        if parsed is None:
            write("badly formatted RadiusGroupInfo default additional group IDs")
            bad, parsed = True, []
        gids = parsed
    else:
        gids = list(params[2])
    if not bad and len(names) != len(gids):
        write(f"mismatched number of RadiusGroupInfo default additional group names ({len(names)}) and IDs "
              f"({len(gids)})")
        bad = True
    if bad:
        write("error with RadiusGroupInfo parameters, ignoring them")
        return None, (0, 0, 0)
    return GroupInfo(primary, names, gids), (primary_attr, names_attr, gids_attr)


def _process_quota_info(params: tuple, write: Callable[[str], None]) -> tuple[list[str] | None, tuple]:
    values, attrs = [], []
    for param in params:
        attr, text = _value(param)
        values.append(text)
        attrs.append(attr)
    return values, tuple(attrs)


def _vendor_text(packet: rad.Packet, vendor: int, attr: int) -> str | None:
    data = packet.vendor(vendor, attr)
    return None if data is None else _text(data)


def _text(data: bytes) -> str:
    """A string attribute as ProFTPD reads it (up to the first NUL)."""
    return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def apply_answer(info: Info, packet: rad.Packet, vendor: tuple[str, int], write: Callable[[str], None]) -> None:
    """The Access-Accept's Vendor-Specific attributes for the `$(...)` parameters, over the defaults; a value that
    is not usable is logged and the default kept, as ProFTPD does."""
    name, vid = vendor
    if info.user is not None:
        uid_attr, gid_attr, home_attr, shell_attr = info.user_attrs
        for what, attr, field_name in (("user ID", uid_attr, "uid"), ("group ID", gid_attr, "gid")):
            data = packet.vendor(vid, attr) if attr else None
            if data is None:
                continue
            number = rad.as_integer(data)
            if number is None:
                write(f"invalid attribute length ({len(data)}) for {what}, ignoring it")
            elif number >= 2**31:           # a negative int, as ProFTPD reads it
                write(f"packet includes '{name}' Vendor-Specific Attribute {attr} for illegal {what}: "
                      f"{number - 2**32}")
            else:
                setattr(info.user, field_name, number)
                if trace.on: trace.msg("radius", 3, "packet includes '%s' Vendor-Specific Attribute %d for %s: %d", name, attr, what, number)
        for what, attr, field_name in (("home", home_attr, "home"), ("shell", shell_attr, "shell")):
            text = _vendor_text(packet, vid, attr) if attr else None
            if text is None:
                continue
            if not text.startswith("/"):
                write(f"packet includes '{name}' Vendor-Specific Attribute {attr} for illegal {what}: '{text}'")
            else:
                setattr(info.user, field_name, text)
    if info.groups is not None:
        primary_attr, names_attr, gids_attr = info.group_attrs
        primary = _vendor_text(packet, vid, primary_attr) if primary_attr else None
        if primary is not None:
            info.groups.primary = primary
        names, gids = list(info.groups.names), list(info.groups.gids)
        text = _vendor_text(packet, vid, names_attr) if names_attr else None
        if text is not None:
            names = split_list(text)
        text = _vendor_text(packet, vid, gids_attr) if gids_attr else None
        if text is not None:
            parsed = parse_gids(text)
            if parsed is None:
                write(f"packet includes '{name}' Vendor-Specific Attribute {gids_attr} for illegal additional group "
                      f"IDs: '{text}'")
            else:
                gids = parsed
        if len(names) == len(gids):
            info.groups.names, info.groups.gids = names, gids
        else:
            write(f"server provided mismatched number of group names ({len(names)}) and group IDs ({len(gids)}), "
                  "ignoring them")
    if info.quota is not None:
        for i, attr in enumerate(info.quota_attrs):
            text = _vendor_text(packet, vid, attr) if attr else None
            if text is not None:
                info.quota[i] = text


# -- the session ---------------------------------------------------------------------------------------------------
@dataclass
class Attempt:
    """One PASS: the names it is for, what it offers the auth chain and what the server said."""

    sent: str                           # the USER name (what the Access-Request named)
    name: str                           # the account name the auth chain looks up (after UserAlias)
    info: Info
    verdict: bool | None = None         # accepted, rejected, or no usable answer
    messages: list[str] = field(default_factory=list)     # Reply-Message lines for the reply
    idle_timeout: int | None = None
    session_timeout: int | None = None
    classes: list[bytes] = field(default_factory=list)
    user_name: bytes | None = None      # a User-Name the Access-Accept gave (RFC 2865 5.1)


@dataclass
class RadiusState:
    settings: Settings
    log: ModuleLog = field(default_factory=lambda: ModuleLog(TAG))
    started: float = 0.0
    configured: Info = field(default_factory=Info)
    attempt: Attempt | None = None
    accounted: Attempt | None = None    # the login the session's accounting speaks of

    def write(self, text: str) -> None:
        self.log.write(text)


def session_init(session: "Session") -> None:
    """At connect, and again when HOST chose another server (the session's start time stays)."""
    old = session.state.find(RadiusState)
    if old is not None:
        old.log.close()
        session.state.drop(RadiusState)
    st = settings(session.server)
    if st.engine:
        state = session.state.put(RadiusState(st, started=old.started if old else time.time()))
        with privs.default_privs().root():
            state.log.open(st.log_path, st.allow_log_symlinks)
        if not st.acct_servers:
            state.write("notice: no configured RadiusAcctServers, no accounting")
        if not st.auth_servers:
            state.write("notice: no configured RadiusAuthServers, no authentication")
        state.configured = configured_info(st, state.write)
        if st.realm and trace.on: trace.msg("radius", 3, "using RadiusRealm '%s'", st.realm)
    _bind(session)


def _bind(session: "Session") -> None:
    """The server's `mod_radius.c` backend (in the session's auth chain) reads this session's state."""
    state = session.state.find(RadiusState)
    for backend, _ in session.auth.entries if session.auth is not None else ():
        if isinstance(backend, RadiusBackend):
            backend.state = state


def _state(session: "Session") -> RadiusState | None:
    return session.state.find(RadiusState)


def _with_realm(st: Settings, name: str) -> str:
    return name + st.realm if st.realm else name


def _common_attributes(session: "Session", st: Settings, name: str) -> list[tuple[int, bytes]]:
    """What every packet carries, in ProFTPD's order (User-Password goes second in an Access-Request)."""
    attrs = [(rad.USER_NAME, _with_realm(st, name).encode("utf-8", "surrogateescape")),
             (rad.NAS_IDENTIFIER, (st.nas_identifier or session.protocol).encode("utf-8", "surrogateescape"))]
    nas = rad.nas_address(session.local_addr)
    if nas is not None:
        attrs.append(nas)
    attrs += [(rad.NAS_PORT, rad.integer(session.server.get("Port") or session.local_port)),
              (rad.NAS_PORT_TYPE, rad.integer(rad.PORT_TYPE_VIRTUAL)),
              (rad.CALLING_STATION_ID, session.remote_addr.encode())]
    return attrs


def _session_id() -> bytes:
    return b"%08u" % os.getpid()


def _ask(state: RadiusState, servers: tuple[RadiusServer, ...], make: Callable[[RadiusServer], tuple[bytes, Any]],
         what: str, require_mac: bool) -> tuple[RadiusServer, rad.Packet] | None:
    """Each server in turn until one answers; the server and its answer. A server is passed over when it does not
    answer within its timeout, when its port is closed, and when its answer fails the Message-Authenticator check
    (other answers that fail their checks are discarded while the wait goes on). PacketError: the request cannot
    be made (a value too long)."""
    for server in servers:
        raw, request = make(server)
        state.write(f"sending {what} request packet to {server.where}")

        def check(data: bytes, server: RadiusServer = server, request: rad.Packet = request) -> rad.Packet:
            return rad.check_answer(data, request, server.secret, require_mac)

        def discard(reason: str) -> None:
            state.write(f"packet verification failed: {reason}")
        try:
            answer = rad.Exchange(server.address, server.port, server.timeout).run(raw, check, discard)
        except rad.BadMac as e:
            state.write(f"packet verification failed: {e}")
            log.log(NOTICE, "%s: DISCARDING %s answer from %s due to failed Message-Authenticator check; is the "
                    "shared secret correct?", TAG, what, server.where)
            continue
        except TimeoutError as e:
            state.write(str(e))
            state.write(f"packet receive failed from {server.where}")
            continue
        except OSError as e:
            state.write(f"error: unable to receive response: {e.strerror or e}")
            state.write(f"packet receive failed from {server.where}")
            continue
        state.write(f"packet receive succeeded from {server.where}")
        if trace.on: trace.msg("radius", 9, "received %s from %s", rad.CODE_NAMES.get(answer.code, answer.code), server.where)
        return server, answer
    return None


def before_pass(session: "Session", cmd: Request) -> Request | None:
    """PRE_CMD PASS: the Access-Request, and what its answer means for this login."""
    state = _state(session)
    if state is None or not state.settings.auth_servers or session.authenticated:
        return None
    st = state.settings
    sent = session.user_arg
    state.attempt = None
    if sent is None:
        state.write("missing prerequisite USER command, declining to handle PASS")
        return None                     # mod_auth answers `503 Login with USER first`, as mod_radius would
    attempt = state.attempt = Attempt(sent, resolve_alias(session, sent)[0], state.configured.copy())
    service = rad.SERVICE_LOGIN if attempt.info.expects_attributes else rad.SERVICE_AUTHENTICATE_ONLY
    password = cmd.arg.encode("utf-8", "surrogateescape")

    def request(server: RadiusServer) -> tuple[bytes, rad.Packet]:
        attrs = _common_attributes(session, st, sent) + [(rad.SERVICE_TYPE, rad.integer(service)),
                                                         (rad.ACCT_SESSION_ID, _session_id())]
        return rad.access_request(int.from_bytes(os.urandom(1), "big"), server.secret, attrs, password)

    try:
        found = _ask(state, st.auth_servers, request, "auth", "RequireMAC" in st.options)
    except rad.PacketError as e:
        state.write(f"error: unable to send an Access-Request for user '{sent}': {e}")
        return None
    if found is None:
        state.write("error: no auth servers responded")
        log.log(NOTICE, "%s: no RADIUS server answered for user '%s'", TAG, sent)
        return None
    _, answer = found
    if answer.code == rad.ACCESS_ACCEPT:
        _accepted(state, attempt, answer)
        state.write(f"authentication successful for user '{sent}'")
    elif answer.code == rad.ACCESS_REJECT:
        attempt.verdict = False
        attempt.info = Info()
        if "IgnoreReplyMessage" not in st.options:
            attempt.messages = _reply_messages(answer)
        state.write(f"authentication failed for user '{sent}'")
    elif answer.code == rad.ACCESS_CHALLENGE:
        attempt.info = Info()
        state.write(f"authentication challenged for user '{sent}'")
    else:
        attempt.info = Info()
        state.write(f"notice: server returned unknown response code: {answer.code:02x}")
    return None


def _accepted(state: RadiusState, attempt: Attempt, answer: rad.Packet) -> None:
    st = state.settings
    attempt.verdict = True
    options = st.options
    if "IgnoreClass" not in options:
        attempt.classes = answer.all(rad.CLASS)
    attempt.user_name = answer.get(rad.USER_NAME)
    if "IgnoreReplyMessage" not in options:
        attempt.messages = _reply_messages(answer)
    for option, kind, what in (("IgnoreIdleTimeout", rad.IDLE_TIMEOUT, "idle_timeout"),
                               ("IgnoreSessionTimeout", rad.SESSION_TIMEOUT, "session_timeout")):
        data = answer.get(kind)
        if option in options or data is None:
            continue
        seconds = rad.as_integer(data)
        label = "Idle-Timeout" if kind == rad.IDLE_TIMEOUT else "Session-Timeout"
        if seconds is None or seconds >= 2**31:
            state.write(f"packet includes {label} attribute {kind} for illegal timeout: "
                        f"{data.hex() if seconds is None else seconds - 2**32}")
            continue
        state.write(f"packet includes {label} attribute {kind} for timeout: {seconds}")
        setattr(attempt, what, seconds)
    apply_answer(attempt.info, answer, st.vendor, state.write)


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _reply_messages(answer: rad.Packet) -> list[str]:
    """Every Reply-Message, as reply lines: up to a NUL (as ProFTPD reads a string), a message with line breaks
    giving several lines, other control characters left out."""
    lines = []
    for data in answer.all(rad.REPLY_MESSAGE):
        text = _text(data).replace("\r\n", "\n")
        lines += [CONTROL.sub("", line) for line in text.split("\n")]
    return lines


def after_pass(session: "Session", cmd: Request) -> None:
    """POST_CMD PASS: the Access-Accept's Reply-Message lines lead the 230, its timeouts apply, and accounting
    starts."""
    state = _state(session)
    if state is None or not session.authenticated:
        return None
    attempt = state.attempt
    if attempt is not None and attempt.verdict:
        if cmd.reply is not None:
            for line in reversed(attempt.messages):
                cmd.reply.lead(line)
        if attempt.idle_timeout is not None:
            session.set_timer("idle", attempt.idle_timeout, _idle_expired)
        if attempt.session_timeout is not None:
            session.set_timer("session", attempt.session_timeout, _session_expired)
    if state.settings.acct_servers and state.accounted is None:
        state.accounted = attempt if attempt is not None and attempt.verdict else Attempt("", "", Info())
        _account(session, state, rad.STATUS_START)
    return None


def after_failed_pass(session: "Session", cmd: Request) -> None:
    """POST_CMD_ERR PASS: an Access-Reject's Reply-Message lines lead the 530; the attempt is over."""
    state = _state(session)
    if state is None:
        return None
    attempt, state.attempt = state.attempt, None
    if attempt is not None and attempt.verdict is False and cmd.reply is not None and cmd.reply.code == 530:
        for line in reversed(attempt.messages):
            cmd.reply.lead(line)
    return None


# -- accounting ----------------------------------------------------------------------------------------------------
CAUSES = {"": rad.CAUSE_USER_REQUEST, "disconnected": rad.CAUSE_LOST_SERVICE,
          "core.timeout-idle": rad.CAUSE_IDLE_TIMEOUT, "core.timeout-session": rad.CAUSE_SESSION_TIMEOUT,
          "terminated by signal": rad.CAUSE_ADMIN_RESET, "server shut down": rad.CAUSE_ADMIN_REBOOT,
          "server shutting down": rad.CAUSE_ADMIN_REBOOT}


def terminate_cause(session: "Session") -> int:
    """ProFTPD's map from how a session ended to Acct-Terminate-Cause (Service-Unavailable for the rest)."""
    return CAUSES.get(session.end_reason, rad.CAUSE_SERVICE_UNAVAILABLE)


def _account(session: "Session", state: RadiusState, status: int) -> None:
    st = state.settings
    accounted = state.accounted
    now = int(time.time())
    name = session.user or ""
    what = "start acct" if status == rad.STATUS_START else "stop acct"

    def request(server: RadiusServer) -> tuple[bytes, rad.Packet]:
        attrs = _common_attributes(session, st, name)
        if accounted is not None and accounted.user_name is not None:
            attrs[0] = (rad.USER_NAME, accounted.user_name)     # RFC 2865 5.1: the name the Access-Accept gave
        attrs += [(rad.ACCT_STATUS_TYPE, rad.integer(status)), (rad.ACCT_SESSION_ID, _session_id()),
                  (rad.ACCT_AUTHENTIC, rad.integer(rad.AUTHENTIC_LOCAL))]
        if status == rad.STATUS_STOP:
            totals = session.totals
            attrs += [(rad.ACCT_SESSION_TIME, rad.integer(max(0, now - int(state.started)))),
                      (rad.ACCT_INPUT_OCTETS, rad.integer(totals.moved_in)),
                      (rad.ACCT_OUTPUT_OCTETS, rad.integer(totals.moved_out))]
            if totals.moved_in >> 32:
                attrs.append((rad.ACCT_INPUT_GIGAWORDS, rad.integer(totals.moved_in >> 32)))
            if totals.moved_out >> 32:
                attrs.append((rad.ACCT_OUTPUT_GIGAWORDS, rad.integer(totals.moved_out >> 32)))
            attrs.append((rad.ACCT_TERMINATE_CAUSE, rad.integer(terminate_cause(session))))
        attrs.append((rad.EVENT_TIMESTAMP, rad.integer(now)))
        attrs += [(rad.CLASS, value) for value in (accounted.classes if accounted is not None else ())]
        return rad.accounting_request(int.from_bytes(os.urandom(1), "big"), server.secret, attrs)

    try:
        found = _ask(state, st.acct_servers, request, what, False)
    except rad.PacketError as e:
        state.write(f"error: unable to send an Accounting-Request: {e}")
        return
    if found is None:
        state.write("error: no accounting servers responded" if status == rad.STATUS_STOP else
                    "error: no acct servers responded")
        state.write(f"error: unable to {'start' if status == rad.STATUS_START else 'stop'} accounting")
        return
    _, answer = found
    if answer.code != rad.ACCOUNTING_RESPONSE:
        state.write(f"notice: server returned unknown response code: {answer.code:02x}")
        return
    state.write(f"accounting {'started' if status == rad.STATUS_START else 'ended'} for user '{name}'")


def _exit(session: "Session", **_: Any) -> None:
    """core.exit: accounting Stop for a session that logged in."""
    state = _state(session)
    if state is None:
        return
    try:
        if state.settings.acct_servers and state.accounted is not None and session.authenticated:
            _account(session, state, rad.STATUS_STOP)
    finally:
        state.log.close()


def _reinit(session: "Session", **_: Any) -> None:
    session_init(session)


# -- the auth module -------------------------------------------------------------------------------------------------
class RadiusBackend:
    """AuthOrder's `mod_radius.c`: it reports the verdict of the RADIUS exchange the PASS hook made. With
    RadiusUserInfo it is the account of the user logging in (`getpwnam` answers for that name only) and `check`
    says whether the server accepted; without, it knows no account and `vouch` says yes or no (or None: no answer)
    before any other module checks a password (ProFTPD's auth-only modules)."""

    name = NAME
    declines_on_failure = False         # its verdict is final for the account it gave (ProFTPD's authcache)
    uses_crypt = False

    def __init__(self) -> None:
        self.state: RadiusState | None = None

    def _attempt(self) -> Attempt | None:
        return self.state.attempt if self.state is not None else None

    def _offered(self, name: str) -> Attempt | None:
        attempt = self._attempt()
        return attempt if attempt is not None and attempt.info.user is not None and attempt.name == name else None

    def _account(self, attempt: Attempt) -> Account:
        user = attempt.info.user
        assert user is not None
        return Account(attempt.name, "", user.uid, user.gid, "", user.home, user.shell, NAME)

    def getpwnam(self, name: str) -> Account | None:
        attempt = self._offered(name)
        return self._account(attempt) if attempt is not None else None

    def getpwuid(self, uid: int) -> Account | None:
        attempt = self._attempt()
        if attempt is not None and attempt.info.user is not None and attempt.info.user.uid == uid:
            return self._account(attempt)
        return None

    def getgrnam(self, name: str) -> Group | None:
        return None

    def getgrgid(self, gid: int) -> Group | None:
        return None

    def groups_for(self, name: str, primary_gid: int) -> list[Group]:
        """RadiusGroupInfo's groups (the primary group first, with RadiusUserInfo), for the accepted user only."""
        attempt = self._attempt()
        if attempt is None or attempt.info.groups is None or not attempt.verdict or name != attempt.name:
            return []
        groups = attempt.info.groups
        out = [Group(groups.primary, attempt.info.user.gid)] if attempt.info.user is not None else []
        return out + [Group(n, g) for n, g in zip(groups.names, groups.gids)]

    def check(self, account: Account, password: str | bytes) -> bool:
        attempt = self._offered(account.name)
        return attempt is not None and attempt.verdict is True

    @property
    def refusal(self) -> str | None:
        """Why `check` said no, in mod_auth's words: no server gave a verdict (ProFTPD's PR_AUTH_NOPWD)."""
        attempt = self._attempt()
        return NO_SUCH_USER if attempt is not None and attempt.verdict is None else None

    def vouch(self, name: str, password: str | bytes = "") -> bool | None:
        """Without RadiusUserInfo: the server's yes or no for `name`, None when it gave none."""
        if self.state is None or self.state.configured.user is not None:
            return None
        attempt = self._attempt()
        if attempt is None or name not in (attempt.sent, attempt.name):
            return None
        return attempt.verdict

    def sample_hash(self) -> str | None:
        return None


def backend(server) -> RadiusBackend | None:
    """AuthOrder's `mod_radius.c`: offered where RadiusEngine is on with a RadiusAuthServer."""
    st = settings(server)
    return RadiusBackend() if st.engine and st.auth_servers else None


def quota_values(session: "Session", name: str) -> list[str] | None:
    """ProFTPD's `radius_quota_lookup` hook, for mod_quotatab_radius: the name and RadiusQuotaInfo's eight values
    (per-session, limit type, bytes in/out/xfer, files in/out/xfer) as this login has them, or None."""
    state = _state(session)
    attempt = state.attempt if state is not None else None
    if attempt is None or attempt.info.quota is None:
        return None
    return [name, *attempt.info.quota]


def _configured(config) -> bool:
    return config.sets("RadiusEngine")


def problems(config) -> list[tuple[str, bool]]:
    """`proftpy -t`: what a session would ignore (ProFTPD logs it to the RadiusLog when a session starts)."""
    out: list[tuple[str, bool]] = []
    for server in config.servers:
        st = settings(server)
        if not st.engine:
            continue
        lines: list[str] = []
        configured_info(st, lines.append)
        for line in lines:
            message = f"{server.name}: mod_radius: {line}"
            if (message, False) not in out:
                out.append((message, False))
    return out


MODULE = Module(NAME, directives=directives, auth_backend=backend, session_init=session_init,
                session_active=_configured, check=problems,
                hooks=(Hook(PRE_CMD, "PASS", before_pass, active=_configured),
                       Hook(POST_CMD, "PASS", after_pass, active=_configured),
                       Hook(POST_CMD_ERR, "PASS", after_failed_pass, active=_configured)),
                listeners=(Listener("core.session-reinit", _reinit, _configured),
                           Listener("core.exit", _exit, _configured)))
