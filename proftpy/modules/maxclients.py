"""The Max* limits counted from the scoreboard: MaxClients, MaxClientsPerHost/PerUser/PerClass, MaxHostsPerUser,
MaxConnectionsPerHost (mod_auth.c's directives) and MaxTransfersPerHost/PerUser (mod_xfer.c's). The counting is
in proftpy/access/connlimits.py; this module feeds it the scoreboard and this session's facts:

* session_init: MaxConnectionsPerHost at connect;
* POST_CMD PASS: the logged-in limits (the 230 turns into ProFTPD's 530 and the session ends);
* PRE_CMD of the rows marked `transfer`: MaxTransfersPer*.

A refusal emits the event mod_ban counts (connlimits.EVENTS).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..access import connlimits
from ..config.registry import ALL_DIRS, SVG, SVGA, Directive, Merge
from ..config.types import Custom, parse_int
from ..dispatch import POST_CMD, PRE_CMD, Hook, Request
from ..fs import FsError
from ..log import NOTICE
from ..module import Module
from ..reply import Reply
from ..scoreboard import NONE_USER, Entry, Scoreboard, ScoreboardError, is_disabled
from . import xfer
from .scoreboard import shared_board

if TYPE_CHECKING:
    from ..config.tree import Server
    from ..module import MasterView
    from ..session import Session

NAME = "mod_core.c"     # its directives name their ProFTPD modules (mod_auth.c, mod_xfer.c)
log = logging.getLogger("proftpy")
MAX_DIRECTIVES = ("MaxClients", "MaxClientsPerHost", "MaxClientsPerUser", "MaxClientsPerClass", "MaxHostsPerUser",
                  "MaxConnectionsPerHost", "MaxTransfersPerHost", "MaxTransfersPerUser")


def _max_n(args: list[str]) -> tuple[int, str | None] | None:
    """`n|none [message]`; 0 and none mean no limit."""
    if not 1 <= len(args) <= 2:
        raise ValueError("expected a number or 'none', and an optional message")
    if args[0].lower() == "none":
        return None
    n = parse_int(args[0], 0)
    return (n, args[1] if len(args) == 2 else None) if n else None


def _max_per_class(args: list[str]) -> tuple[str, int, str | None]:
    if not 2 <= len(args) <= 3:
        raise ValueError("expected class name, number and an optional message")
    return args[0], parse_int(args[1], 1), (args[2] if len(args) == 3 else None)


TRANSFERS = tuple(sorted(c.name for c in xfer.commands if c.transfer))
_TRANSFER_LIMIT = Custom(functools.partial(connlimits.parse_transfer_limit, commands=TRANSFERS),
                         "cmd[,cmd] count [message]")

directives = (
    Directive("MaxClients", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Logged-in clients per server (`530` + disconnect).", module="mod_auth.c"),
    Directive("MaxClientsPerHost", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Logged-in clients per client address.", module="mod_auth.c"),
    Directive("MaxClientsPerUser", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Logged-in sessions per user.", module="mod_auth.c"),
    Directive("MaxClientsPerClass", Custom(_max_per_class, "class number [message]"), SVG, None, Merge.SERVER,
              "Sessions per connection class.", module="mod_auth.c", repeat=True),
    Directive("MaxHostsPerUser", Custom(_max_n, "number|none [message]"), SVGA, None, Merge.DOWN,
              "Client hosts per user.", module="mod_auth.c"),
    Directive("MaxConnectionsPerHost", Custom(_max_n, "number|none [message]"), SVG, None, Merge.SERVER,
              "Connections (logged in or not) per client address, checked at connect.", module="mod_auth.c"),
    Directive("MaxTransfersPerHost", _TRANSFER_LIMIT,
              ALL_DIRS, None, Merge.DOWN, "Simultaneous transfers per client address (`451`).",
              module="mod_xfer.c", repeat=True),
    Directive("MaxTransfersPerUser", _TRANSFER_LIMIT,
              ALL_DIRS, None, Merge.DOWN, "Simultaneous transfers per user (`451`).",
              module="mod_xfer.c", repeat=True),
)


DISPLAY_DIRECTIVES = ("DisplayConnect", "DisplayLogin", "DisplayChdir", "DisplayQuit")


@dataclass
class CountState:
    board: Any = None                       # the Scoreboard to count from; None: no Max* limit is configured
    at_connect: tuple[int, int] | None = None   # (sessions on this server, logged-in sessions of this class) at
                                                # connect, for Display's %N and %y (counted when a file is shown)


# -- at connect ----------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    st = session.state.get(CountState)
    board = st.board = _open_scoreboard(session)
    if _uses(session).display:
        st.at_connect = _connect_counts(session, board or shared_board(session))
    if board is not None:
        refusal = connlimits.check_connect(_entries(session), _server_key(session), session.remote_addr,
                                           session.server.get("MaxConnectionsPerHost"))
        if refusal is not None:
            _refuse(session, refusal)


class _Uses:
    """Which of the module's directive groups a server sets anywhere in its sections (derived once per server,
    in the master: `preload`)."""

    def __init__(self, server: "Server"):
        self.display = _sets_any(server, DISPLAY_DIRECTIVES)
        self.max_limits = _sets_any(server, MAX_DIRECTIVES)


def _sets_any(server: "Server", names: tuple[str, ...]) -> bool:
    sections = [server.section]
    while sections:
        s = sections.pop()
        if any(s.first(name) for name in names):
            return True
        sections.extend(s.sections)
    return False


def _uses(session: "Session") -> _Uses:
    return session.server.cached(_Uses)


def preload(master: "MasterView") -> None:
    """master_preload: every server's _Uses, shared by its sessions."""
    for server in master.config.servers:
        server.cached(_Uses)


def _connect_counts(session: "Session", board) -> tuple[int, int] | None:
    """ProFTPD's sess_init count: every session on this server (this one included), and the logged-in ones of
    this session's class."""
    if board is None:
        return None
    key, entries = _server_key(session), _entries(session, board)
    mine = [e for e in entries if e.server_addr == key]
    cls = session.conn_class.lower() if session.conn_class else None
    return len(mine), sum(1 for e in mine if e.user != NONE_USER and cls is not None and e.class_.lower() == cls)


def display_counts(session: "Session") -> tuple[int, int]:
    """Display's %N and %y: recounted as at PASS when a login limit is configured (ProFTPD's
    auth_count_scoreboard), else as counted at connect; (1, 0) without a scoreboard."""
    st = session.state.get(CountState)
    if session.authenticated and st.board is not None and login_limits(session).any():
        c = connlimits.count_login(_entries(session), _server_key(session), session.remote_addr,
                                   session.user or "", session.anon is not None, session.conn_class)
        return c.clients, c.cls if session.conn_class else 0
    return st.at_connect or (1, 0)


def _open_scoreboard(session: "Session"):
    """The scoreboard to count from: the master's, else the file opened read-only now (before any chroot)."""
    if not _uses(session).max_limits:
        return None
    shared = shared_board(session)
    if shared is not None:
        return shared
    path = session.config.main.get("ScoreboardFile")
    if not path or is_disabled(path):
        log.warning("Max* limits are configured but ScoreboardFile is off: they cannot be enforced")
        return None
    try:
        return Scoreboard.open(path, readonly=True)
    except ScoreboardError as e:
        log.warning("cannot read the scoreboard for Max* limits: %s", e)
        return None


def _server_key(session: "Session") -> str:
    return connlimits.server_key(session.local_addr, session.local_port)


def _entries(session: "Session", board=None) -> list:
    """Scoreboard entries with this session's own slot as it is now (added when the slot is not there yet)."""
    board = board or session.state.get(CountState).board
    if board is None:
        return []
    try:
        entries = [e for e in board.entries() if e.pid != os.getpid()]
    except (ScoreboardError, OSError) as e:
        log.warning("cannot read the scoreboard: %s", e)
        entries = []
    now = int(time.time())
    me = Entry(slot=-1, pid=os.getpid(), uid=os.geteuid(), gid=os.getegid(),
               user=session.user if session.authenticated and session.user else NONE_USER,
               server_port=session.server.get("Port"), server_addr=_server_key(session),
               server_label=session.server.name or "", client_addr=session.remote_addr,
               client_name=session.remote_name, class_=session.conn_class or "", protocol=session.protocol,
               cwd="", cmd="", cmd_arg="", begin_idle=now, begin_session=int(session.started), xfer_size=0,
               xfer_done=0, xfer_len=0, xfer_elapsed_ms=0)
    return entries + [me]


def _refuse(session: "Session", refusal: connlimits.Refusal) -> Reply:
    """Say why, tell mod_ban, and end the session (ProFTPD: 530 + disconnect)."""
    log.log(NOTICE, "Connection refused (%s)", refusal.directive)
    session.send(Reply(refusal.code, refusal.text))
    session.events.emit(refusal.event, session=session)
    session.end(f"Denied by {refusal.directive}")
    return Reply(refusal.code, refusal.text)


# -- PASS ----------------------------------------------------------------------------------------------------------
def login_limits(session: "Session") -> connlimits.LoginLimits:
    ctx = session.context()
    per_class = {}
    for p in session.server.section.all("MaxClientsPerClass"):
        name, n, msg = p.value
        per_class.setdefault(name, (n, msg))
    return connlimits.LoginLimits(ctx.get("MaxClients"), ctx.get("MaxClientsPerHost"),
                                  ctx.get("MaxClientsPerUser"), ctx.get("MaxHostsPerUser"), per_class)


def login_refusal(session: "Session") -> connlimits.Refusal | None:
    """The Max* limit a just-authenticated session exceeds, if any."""
    if session.state.get(CountState).board is None:
        return None
    lims = login_limits(session)
    if not lims.any():
        return None
    counts = connlimits.count_login(_entries(session), _server_key(session), session.remote_addr,
                                    session.user or "", session.anon is not None, session.conn_class)
    return connlimits.check_login(counts, lims, session.conn_class)


def post_pass(session: "Session", cmd: Request) -> None:
    """ProFTPD counts at POST_CMD PASS and sends 530 before its queued 230 is flushed: the client sees only the
    530. Here the 230 reply object is still unsent, so it is turned into the 530."""
    if not session.authenticated or cmd.reply is None or cmd.reply.code != 230:
        return None
    refusal = login_refusal(session)
    if refusal is None:
        return None
    log.log(NOTICE, "Connection refused (%s)", refusal.directive)
    cmd.reply.code, cmd.reply.text, cmd.reply.lines = refusal.code, refusal.text, []
    session.events.emit(refusal.event, session=session)
    session.end(f"Denied by {refusal.directive}")
    return None


# -- transfers -----------------------------------------------------------------------------------------------------
def pre_transfer(session: "Session", cmd: Request) -> Reply | None:
    """MaxTransfersPerHost/PerUser before a transfer row runs (after mod_access allowed it)."""
    row = session.dispatcher.row(cmd.name)
    if not row.transfer or not session.authenticated:
        return None
    path = row.path_of(cmd.arg)
    try:
        ctx = session.context(session.fs.resolve(path).real if path and session.fs is not None else None)
    except FsError:
        return None                           # the command answers with the same error
    per_host, per_user = ctx.all("MaxTransfersPerHost"), ctx.all("MaxTransfersPerUser")
    if not per_host and not per_user:
        return None
    refusal = connlimits.check_transfer(_entries(session), _server_key(session), cmd.name, session.remote_addr,
                                        session.user, per_host, per_user, self_pid=os.getpid())
    if refusal is None:
        return None
    session.events.emit(refusal.event, session=session)
    log.log(NOTICE, "%s exceeded for %s from %s", refusal.directive, cmd.name, session.remote_addr)
    return Reply(refusal.code, refusal.text)


MODULE = Module(NAME, directives=directives, session_init=session_init, master_preload=preload,
                hooks=(Hook(POST_CMD, "PASS", post_pass),
                       Hook(PRE_CMD, "*", pre_transfer, only=lambda row: row.transfer)))
