"""mod_exec's `%` variables (ProFTPD 1.3.8 `exec_subst_var`), for program arguments and ExecEnviron values.

    %a client IP            %A anonymous password ("UNKNOWN")   %b bytes of the transfer ("" without one)
    %C current directory    %c connection class                 %F file as the client names it (canonical)
    %f file's full path     %g primary group                    %h client DNS name (its IP without one)
    %l RFC 1413 ident ("UNKNOWN" without one)                   %m command    %r command line (PASS hidden)
    %U name given to USER   %u logged-in user                   %V server DNS name    %v ServerName
    %w RNFR's path (RNTO only, else "-")    %{time:fmt} strftime    %{name} a session note

%f and %F are filled, as in ProFTPD, for RNTO, a transfer (RETR STOR STOU APPE, and their path already in
PRE_CMD), DELE, and (%f) MKD RMD XMKD XRMD; "" otherwise. %f is the path from the real root (a chrooted session's
root in front). `%{name}` is a session note (modules keep there what ProFTPD puts in the session's environment, e.g.
FTPS's TLS_*), else "(none)". (`%{env:NAME}` never gets here: the configuration reader replaces it with the daemon's
environment in every directive, as ProFTPD's does.)

Unlike ProFTPD, which replaces one variable after the other in the whole string, the text is read once from left
to right and a value is never expanded again: a client sending `CWD %u` gets "%u" in %r, not the user name. Where
ProFTPD has no command to take a value from (ExecOnConnect, ExecOnExit, ExecOnEvent, ExecOnRestart) it leaves
%f %F %r %w as they are written; proftpy gives "" for them (and %v, which ProFTPD leaves empty there, is the
ServerName all the same).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..dispatch import PRE_CMD, Request
from ..reply import FtpError
from .auth import AuthState
from .ident import ident_of

if TYPE_CHECKING:
    from ..session import Session

_VAR = re.compile(r"%\{([^}]*)\}|%([aAbCcFfghlmrUuVvw])")
_TRANSFERS = ("RETR", "STOR", "STOU", "APPE")
_FULL_PATH_ONLY = ("MKD", "RMD", "XMKD", "XRMD")


@dataclass
class SentUser:
    """What the client last gave to USER (ProFTPD's mod_auth.orig-user note, kept after a failed PASS)."""

    name: str | None = None


@dataclass
class Scope:
    """What the values are taken from; every part is optional (the master has no session)."""

    session: "Session | None" = None
    request: Request | None = None
    phase: str | None = None            # the dispatch phase of the hook (PRE_CMD: %f %F from the argument)
    client_ip: str | None = None        # the client where there is no session (a master event's connection)
    local_ip: str | None = None
    server_name: str = ""


def expand(text: str, scope: Scope) -> str:
    cache: dict[str, str] = {}

    def value(m: re.Match) -> str:
        key = m.group(0)
        if key not in cache:
            cache[key] = _braced(m.group(1), scope) if m.group(1) is not None else _letter(m.group(2), scope)
        return cache[key]
    return _VAR.sub(value, text)


def _braced(name: str, scope: Scope) -> str:
    if name.startswith("time:"):
        return time.strftime(name[5:], time.localtime())
    note = note_of(scope, name)
    return note if note is not None else "(none)"


def note_of(scope: Scope, name: str) -> str | None:
    """A session note with a text value (what FTPS keeps of the TLS session, a PROXY header's TLVs...)."""
    note = scope.session.notes.get(name) if scope.session is not None else None
    return note if isinstance(note, str) else None


def _letter(letter: str, scope: Scope) -> str:
    s, req = scope.session, scope.request
    if letter == "a":
        return s.remote_addr if s is not None else scope.client_ip or ""
    if letter == "h":
        return s.remote_name if s is not None else scope.client_ip or ""
    if letter == "V":
        return s.local_name if s is not None else scope.local_ip or ""
    if letter == "v":
        return s.server.name if s is not None else scope.server_name
    if letter == "l":
        return (ident_of(s) if s is not None else None) or "UNKNOWN"
    if letter == "m":
        return req.name if req is not None else ""
    if letter == "r":
        return req.display if req is not None else ""
    if s is None:
        return "UNKNOWN" if letter == "A" else ""
    return _session_letter(letter, s, req, scope.phase)


def _session_letter(letter: str, s: "Session", req: Request | None, phase: str | None) -> str:
    if letter == "A":
        password = s.state.get(AuthState).anon_password if s.anon is not None else None
        return password or "UNKNOWN"
    if letter == "C":
        return s.fs.cwd if s.fs is not None and s.authenticated else ""
    if letter == "c":
        return s.conn_class or ""
    if letter == "g":
        return s.groups[0] if s.authenticated and s.groups else ""
    if letter == "U":
        return s.user_arg or s.state.get(SentUser).name or ""
    if letter == "u":
        return s.user if s.authenticated and s.user else ""
    xfer = req.notes.get("xfer") if req is not None else None
    if letter == "b":                   # (ProFTPD's RNTO finds RNFR's transfer record: 0 bytes)
        return str(xfer["bytes"]) if xfer else ("0" if req is not None and req.name == "RNTO" else "")
    if req is None or s.fs is None:
        return ""
    if letter == "w":
        rnfr = req.notes.get("rnfr_path") if req.name == "RNTO" else None
        return s.fs.config_path(rnfr) if rnfr else "-"
    return _path(letter, s, req, phase, xfer)


def _path(letter: str, s: "Session", req: Request, phase: str | None, xfer: dict[str, Any] | None) -> str:
    """%f (full path) and %F (the client's canonical view), for the commands ProFTPD fills them for."""
    name = req.name
    if xfer is not None and name != "RNTO":
        return s.fs.config_path(xfer["path"]) if letter == "f" else xfer["vpath"]
    argument = (name == "RNTO" or name == "DELE" or (phase == PRE_CMD and name in _TRANSFERS)
                or (letter == "f" and name in _FULL_PATH_ONLY))
    if not argument or not req.arg:
        return ""
    try:
        path = s.fs.resolve(req.arg)
    except (OSError, FtpError):         # a path outside the root or that cannot be walked: no value
        return ""
    return s.fs.config_path(path.real) if letter == "f" else path.virtual
