"""The control-socket protocol shared by the master (modules/ctrls.py) and `ftpdctl`, and the pure parts of
mod_ctrls: ACLs, the action table modules add to, request/response framing.

Why not ProFTPD's wire format: ProFTPD's ftpdctl proves who it is by binding its own socket file and letting the
server stat it (with freshness checks). Linux tells the server the peer's uid/gid directly (SO_PEERCRED), so
proftpy uses that and a simple framing instead: one JSON object per line each way, UTF-8, at most MAX_MESSAGE
bytes.

    request   {"version": 1, "argv": ["kick", "user", "alice"]}
    response  {"version": 1, "status": 0, "lines": ["kicked user 'alice'"]}

status 0 = done, negative = refused or failed (the lines say why). A connection carries one request.
"""
from __future__ import annotations

import dataclasses
import grp
import json
import os
import pwd
import socket
import struct
from typing import Any, Callable, Iterable

PROTOCOL_VERSION = 1
MAX_MESSAGE = 64 * 1024
DEFAULT_SOCKET = "/var/run/proftpy/proftpy.sock"
SOCKET_MODE = 0o666          # who may talk is decided by ControlsSocketACL and the action ACLs (as ProFTPD)
CLIENT_TIMEOUT = 10.0        # seconds a client may take to send its request (and ftpdctl waits for the answer)


class CtrlsError(Exception):
    """A refused or failed request; the message goes back to ftpdctl as the response line."""


# -- framing --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Response:
    status: int = 0
    lines: list[str] = dataclasses.field(default_factory=list)

    def encode(self) -> bytes:
        return _encode({"version": PROTOCOL_VERSION, "status": self.status, "lines": self.lines})

    @classmethod
    def error(cls, text: str) -> "Response":
        return cls(-1, [text])


def _encode(obj: dict) -> bytes:
    raw = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n"
    if len(raw) > MAX_MESSAGE:
        raise CtrlsError(f"message too long ({len(raw)} bytes, at most {MAX_MESSAGE})")
    return raw


def encode_request(argv: list[str]) -> bytes:
    return _encode({"version": PROTOCOL_VERSION, "argv": list(argv)})


def _decode(raw: bytes) -> dict:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CtrlsError("malformed message (not a JSON line)") from None
    if not isinstance(obj, dict):
        raise CtrlsError("malformed message (not an object)")
    if obj.get("version") != PROTOCOL_VERSION:
        raise CtrlsError(f"unsupported protocol version {obj.get('version')!r} (this side speaks "
                         f"{PROTOCOL_VERSION})")
    return obj


def decode_request(raw: bytes) -> list[str]:
    argv = _decode(raw).get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise CtrlsError("malformed request: argv must be a non-empty list of strings")
    return argv


def decode_response(raw: bytes) -> Response:
    obj = _decode(raw)
    status, lines = obj.get("status"), obj.get("lines")
    if not isinstance(status, int) or not isinstance(lines, list):
        raise CtrlsError("malformed response")
    return Response(status, [str(line) for line in lines])


class LineBuffer:
    """Collects bytes until the first newline; refuses more than MAX_MESSAGE."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> bytes | None:
        self._buf += data
        nl = self._buf.find(b"\n")
        if nl >= 0:
            return bytes(self._buf[:nl])
        if len(self._buf) > MAX_MESSAGE:
            raise CtrlsError(f"request too long (at most {MAX_MESSAGE} bytes)")
        return None


def call(path: str, argv: list[str], timeout: float = CLIENT_TIMEOUT) -> Response:
    """ftpdctl's side: connect, send one request, read one response. Raises OSError or CtrlsError."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        try:
            sock.sendall(encode_request(argv))
        except (BrokenPipeError, ConnectionResetError):
            pass            # refused before reading (too many clients): its answer is waiting to be read
        buf = LineBuffer()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise CtrlsError("the server closed the connection without answering")
            line = buf.feed(chunk)
            if line is not None:
                return decode_response(line)


# -- who is calling -------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Peer:
    """The process on the other end of the control socket, as the kernel reports it."""
    pid: int
    uid: int
    gid: int
    user: str
    groups: frozenset[str]

    @classmethod
    def of(cls, sock: socket.socket) -> "Peer":
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return cls.from_ids(pid, uid, gid)

    @classmethod
    def from_ids(cls, pid: int, uid: int, gid: int) -> "Peer":
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        gids = {gid}
        try:
            gids.update(os.getgrouplist(user, gid))
        except OSError:
            pass            # a uid without a passwd entry: only its primary group counts
        names = set()
        for g in gids:
            try:
                names.add(grp.getgrgid(g).gr_name)
            except KeyError:
                names.add(str(g))
        return cls(pid, uid, gid, user, frozenset(names))

    def describe(self) -> str:
        return f"{self.user} (uid {self.uid}, pid {self.pid})"


# -- ACLs -----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AclRule:
    """One `allow|deny user|group name,name,...` (`*` = everyone)."""
    allow: bool
    kind: str                       # "user" | "group"
    names: frozenset[str]

    def permits(self, names: Iterable[str]) -> bool:
        hit = "*" in self.names or any(n in self.names for n in names)
        return hit if self.allow else not hit

    @classmethod
    def parse(cls, words: list[str]) -> "AclRule":
        if len(words) != 3:
            raise ValueError("expected allow|deny user|group name[,name...]")
        verb, kind, names = words[0].lower(), words[1].lower(), words[2]
        if verb not in ("allow", "deny"):
            raise ValueError(f"expected allow or deny, not '{words[0]}'")
        if kind not in ("user", "group"):
            raise ValueError(f"expected user or group, not '{words[1]}'")
        listed = frozenset(n.strip() for n in names.split(",") if n.strip())
        if not listed:
            raise ValueError("empty user/group list")
        return cls(verb == "allow", kind, listed)


@dataclasses.dataclass(frozen=True)
class ActionAcl:
    """`ControlsACLs actions|all allow|deny user|group list` (and AdminControlsACLs, BanControlsACLs...)."""
    actions: frozenset[str]         # lower-case names, or {"all"}
    rule: AclRule

    def covers(self, action: str) -> bool:
        return "all" in self.actions or action.lower() in self.actions

    @classmethod
    def parse(cls, words: list[str]) -> "ActionAcl":
        if len(words) != 4:
            raise ValueError("expected actions|all allow|deny user|group name[,name...]")
        actions = frozenset(a.strip().lower() for a in words[0].split(",") if a.strip())
        if not actions:
            raise ValueError("empty action list")
        return cls(actions, AclRule.parse(words[1:]))

    @classmethod
    def parser(cls, known: set[str], what: str = "action") -> Callable[[list[str]], "ActionAcl"]:
        """A module's `...ControlsACLs` parser: parse, refusing an action not in `known` ("unknown <what>")."""
        def parse(words: list[str]) -> "ActionAcl":
            acl = cls.parse(words)
            unknown = acl.actions - known
            if unknown:
                raise ValueError(f"unknown {what}: '{sorted(unknown)[0]}'")
            return acl
        return parse


def _allowed(rules: list[AclRule], peer: Peer, default: bool) -> bool:
    """ProFTPD's pr_ctrls_check_acl: the last user rule and the last group rule that apply; either one
    permitting is enough. With no rule at all, `default`."""
    user_rule = next((r for r in reversed(rules) if r.kind == "user"), None)
    group_rule = next((r for r in reversed(rules) if r.kind == "group"), None)
    if user_rule is None and group_rule is None:
        return default
    return bool((user_rule and user_rule.permits([peer.user]))
                or (group_rule and group_rule.permits(peer.groups)))


def action_allowed(acls: list[ActionAcl], action: str, peer: Peer) -> bool:
    """Actions are denied to everyone unless an ACL allows them (as in ProFTPD)."""
    return _allowed([a.rule for a in acls if a.covers(action)], peer, default=False)


def socket_allowed(rules: list[AclRule], peer: Peer) -> bool:
    """ControlsSocketACL: everyone may connect unless a rule says otherwise."""
    return _allowed(rules, peer, default=True)


# -- actions --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class CtrlsRequest:
    """One ftpdctl call as an action handler sees it."""
    action: str
    args: list[str]
    peer: Peer

    def usage(self, text: str) -> CtrlsError:
        return CtrlsError(f"{self.action}: usage: {self.action} {text}")


Handler = Callable[[Any, CtrlsRequest], "Response | list[str] | str"]     # (module.MasterView, request)


@dataclasses.dataclass(frozen=True)
class Action:
    """One row of the action table. A module lists its rows in its Module's `ctrls_actions`; `acl` names the directive
    whose ACLs guard it (mod_ban will add `ban`/`permit` with acl="BanControlsACLs"), `engine` an optional
    directive that must be on (AdminControlsEngine, BanEngine...). The handler runs in the master's loop:
    it must not block."""
    name: str
    handler: Handler
    acl: str
    help: str = ""
    engine: str | None = None
    module: str = ""
    acl_by_arg: bool = False        # the ACL names sub-actions: checked for the first argument (`delay info`)
    read_only: bool = False         # changes nothing in the master: pre-forked idle children are kept after it
                                    # (after any other action they are replaced, as they hold the master's state)


def as_response(result: "Response | list[str] | str | None") -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response()
    if isinstance(result, str):
        return Response(0, [result])
    return Response(0, list(result))
