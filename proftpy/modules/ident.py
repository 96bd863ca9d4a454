"""mod_ident: RFC 1413 lookups of the client's user name (`IdentLookups on`), as ProFTPD 1.3.8's mod_ident/1.0.

The session (never the master) asks the identd at the client's address, port 113, from the server's address, once,
when it starts: after the checks that may refuse the client at once (mod_ban's banned hosts, `<Limit LOGIN>`,
MaxClients...), before mod_wrap2's and mod_exec's connect checks and before the 220 greeting. The answer
(proftpy/net/ident.py reads it as ProFTPD does) is the session note `mod_ident.rfc1413-ident`; without one (no
identd, an error, a timeout, an answer that names no user) the note is `UNKNOWN`. With IdentLookups off (the
default, as ProFTPD 1.3.8's code has it) there is no note. What reads the note, as in ProFTPD:

    %l in LogFormat (ExtendedLog, SQLLog...)          the note, else `UNKNOWN`
    %{note:mod_ident.rfc1413-ident}                    the note, else nothing
    TransferLog's authentication-method and user-id    `1` and the name (`*` for UNKNOWN) with a note, else `0 *`
    %u in Display files, %l in mod_exec's commands     the note, else `UNKNOWN`
    mod_wrap2's user (`user@host` patterns)            the note, else the name sent with USER

Beyond ProFTPD: `IdentLookupTimeout` (ProFTPD's is the compile-time PR_TUNABLE_TIMEOUTIDENT, 10 seconds in
Debian's build) bounds the whole lookup, connection included. A HOST command that picks a server with IdentLookups
on makes the lookup then, if none was made (ProFTPD's core.session-reinit listener).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import trace
from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag, Int
from ..module import Listener, Module
from ..net import ident as rfc1413

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_ident.c"
VERSION = "mod_ident/1.0"
NOTE = "mod_ident.rfc1413-ident"
UNKNOWN = "UNKNOWN"
log = logging.getLogger("proftpy")

directives = (
    Directive("IdentLookups", Flag, SVG, False, Merge.SERVER,
              "Ask the client's identd (RFC 1413) who the client is, before the greeting: `%l` in LogFormat."),
    Directive("IdentLookupTimeout", Int(1, 3600), SVG, 10, Merge.SERVER,
              "Seconds an ident lookup may take in all (proftpy's; ProFTPD's is built in: 10)."),
)


def ident_of(session: "Session") -> str | None:
    """The session's RFC 1413 name: the looked-up name, `UNKNOWN` when the lookup gave none, None when no lookup
    was made (IdentLookups off)."""
    return session.notes.get(NOTE)


def session_init(session: "Session", **_: Any) -> None:
    server = session.server
    if not server.get("IdentLookups"):
        log.debug("%s: ident lookup disabled", VERSION)
        return
    if NOTE in session.notes:
        return                      # looked up already (before a HOST command)
    log.debug("%s: performing ident lookup", VERSION)
    timeout = server.get("IdentLookupTimeout")
    if trace.on: trace.msg("ident", 4, "reading response from ident server at %s", session.remote_addr)
    outcome = rfc1413.query((session.local_addr, session.local_port), (session.remote_addr, session.remote_port),
                            timeout)
    if trace.on and outcome.line: trace.msg("ident", 6, "received '%s' from ident server", outcome.line.rstrip(b"\r\n").decode("ascii", "replace"))
    if outcome.ident is not None:
        log.debug("%s: ident lookup returned '%s'", VERSION, outcome.ident)
        name = outcome.ident
    else:
        if trace.on: trace.msg("ident", 5, "%s", outcome.why)
        log.debug("%s: ident lookup failed (%s), using '%s'", VERSION, outcome.why, UNKNOWN)
        name = UNKNOWN
    session.notes[NOTE] = name


def _configured(config) -> bool:
    return any(s.get("IdentLookups") for s in config.servers)


MODULE = Module(NAME, directives=directives, session_init=session_init, session_active=_configured,
                listeners=(Listener("core.session-reinit", session_init, _configured),))
