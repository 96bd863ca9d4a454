"""The command table and ProFTPD's dispatch phases: PRE_CMD -> CMD -> POST_CMD | POST_CMD_ERR -> LOG_CMD |
LOG_CMD_ERR.

A `Request` is what the client sent; a `Command` is one row of the table, and every fact about a command lives in
its row: handler, `<Limit>` group and coverage, login and argument rules, where its path argument is, its denial
reply, HELP and FEAT lines. A SITE sub-command is a row too (`SITE CHMOD`). The table drives dispatch, `<Limit>`,
HELP, FEAT, `proftpy check-access` and docs/commands.md. Modules add `Hook`s for the other phases.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from . import trace
from .reply import FtpError, Reply

log = logging.getLogger("proftpy")

# Argument rules.
NONE, REQUIRED, OPTIONAL = "none", "required", "optional"
# <Limit> groups.
READ, WRITE, DIRS = "READ", "WRITE", "DIRS"
# Handlers take a session.Session, which stands on the floor above and is not imported here.
AnySession = Any
# Phases.
PRE_CMD, POST_CMD, POST_CMD_ERR, LOG_CMD, LOG_CMD_ERR = "PRE_CMD", "POST_CMD", "POST_CMD_ERR", "LOG_CMD", "LOG_CMD_ERR"


@dataclass
class Request:
    """One command as the client sent it."""

    name: str                   # upper-case command word ("SITE CHMOD" arrives as "SITE"; see modules/site.py)
    arg: str                    # everything after the first space, unchanged
    raw: str = ""
    notes: dict[str, Any] = field(default_factory=dict)   # per-command scratch for hooks (e.g. transfer facts)
    during_transfer: bool = False   # read by transfer/watch.py while a transfer runs: modules keeping the session's
                                    # current command (scoreboard, mod_log's %m/%r state) leave the transfer's alone
    reply: Reply | None = None

    @property
    def display(self) -> str:
        """The command line as logged: passwords hidden, as ProFTPD does."""
        if self.name == "PASS":
            return "PASS (hidden)"
        return f"{self.name} {self.arg}".rstrip()


@dataclass(frozen=True)
class PathArg:
    """Where a command's path argument is, and which path `<Limit>`/`<Directory>` decide at."""

    skip: int = 0               # words before the path (MFMT, MFF: the time or facts; SITE CHMOD: the mode)
    options: bool = False       # LIST, NLST, STAT: leading `-options` are not part of the path
    exact: bool = False         # decided at the path itself (RETR, STOR, MKD, CWD...); else at the directory it
                                # names, or the one holding the file it names
    tilde: bool = False         # a leading `~` names a home directory (the commands ProFTPD interpolates it in)


PATH, EXACT_PATH, LISTED_PATH = PathArg(), PathArg(exact=True), PathArg(options=True)
HOME_PATH, HOME_EXACT_PATH = PathArg(tilde=True), PathArg(exact=True, tilde=True)
PERMISSION_DENIED = (550, "{arg}: Permission denied")
NOT_PERMITTED = (550, "{arg}: {error}")     # ProFTPD's errno: EPERM for <Limit>, EACCES for DenyAll in <Directory>


def feat_when(shown: Callable[[AnySession], bool], *lines: str) -> Callable[[AnySession], tuple[str, ...]]:
    """A row's `feat_for`: its FEAT lines while `shown(session)` holds (FactsAdvertise, LangEngine)."""
    return lambda session: lines if shown(session) else ()


@dataclass(frozen=True)
class Command:
    """One row of the command table."""

    name: str                       # "RETR"; a SITE sub-command is "SITE CHMOD"
    handler: Callable[[AnySession, Request], Reply | None] | None   # None: listed by HELP as unimplemented only
    group: str | None = None        # READ, WRITE, DIRS (for <Limit>), or None
    needs_login: bool = True
    arg: str = OPTIONAL
    help: str = ""                  # syntax shown by `HELP <cmd>` (and SITE HELP)
    help_at: int | None = None      # position in HELP's list (ProFTPD 1.3.8's order); None: not listed
    help_detail: Callable[[AnySession], Reply] | None = None   # `HELP <cmd>` answers this instead of the syntax
    help_shown: Callable[[AnySession], bool] | None = None     # HELP lists it only while this holds (mod_digest's
                                    # rows, which ProFTPD adds to HELP at session start when they are switched on)
    site_help: bool = True          # a SITE row SITE HELP lists (mod_copy's SITE COPY it does not)
    implemented: bool = True        # False: HELP marks it with `*` (SMNT ACCT REIN answer 502)
    feat: tuple[str, ...] = ()      # FEAT lines this command contributes (what docs/commands.md shows)
    feat_for: Callable[[AnySession], tuple[str, ...]] | None = None   # ... when they depend on the session
    enabled: Callable[[AnySession], bool] | None = None   # a directive switches it (and its FEAT lines) off
    limit: bool = True              # dispatch asks <Limit> (ProFTPD never checks USER, QUIT, TYPE... there); False
                                    # with a `denied` of its own: the handler asks at the file it resolved (mod_digest)
    limit_all: bool = True          # <Limit ALL> covers it (ProFTPD exempts PASV/PORT/EPRT/EPSV/OPTS)
    denied: tuple[int, str] | Callable[[AnySession, Request, str], Reply] = PERMISSION_DENIED
    # ^ reply when <Limit> denies it: ProFTPD's text ({cmd}, {arg}, {error}: the denial's strerror, {unique}: a
    #   fresh STOU name), or a function(session, request, error) that answers (LIST sends an empty listing),
    #   documented by its docstring
    path: PathArg | None = None     # the command names a path (see PathArg)
    path_filter: bool = False       # PathAllowFilter/PathDenyFilter apply to its path (names it creates)
    transfer: bool = False          # a data transfer counted by MaxTransfersPerHost/PerUser
    min_words: int = 0              # SITE sub-commands: fewer words are refused before the login check
    module: str = "mod_core.c"
    missing: tuple[int, str] = (500, "{name}: command requires a parameter")   # reply when arg=REQUIRED lacks it
    extra: tuple[int, str] = (501, "Invalid number of parameters")              # reply when arg=NONE gets one
    replies: tuple[str, ...] = ()   # the replies clients see, for docs/commands.md

    @property
    def limit_name(self) -> str:
        """The name `<Limit>` knows it by: `SITE CHMOD` is `SITE_CHMOD`."""
        return self.name.replace(" ", "_")

    def argument_error(self, req: Request) -> Reply | None:
        """The reply for an argument this command must have and lacks, or must not have and got. ProFTPD checks
        the count in each handler, so the reply is the command's own (see `missing`, `extra`)."""
        given = bool(req.arg.strip(" \t"))
        if self.arg == REQUIRED and not given:
            code, text = self.missing
        elif self.arg == NONE and given:
            code, text = self.extra
        else:
            return None
        return Reply(code, text.format(name=req.name, arg=req.arg))

    def path_of(self, arg: str) -> str | None:
        """The client path in a request's argument (after the sub-command word for SITE rows); None when the
        command names no path. `LIST -la dir` -> "dir"; `MFMT 20200101000000 f` -> "f"."""
        if self.path is None:
            return None
        rest = arg.strip() if self.path.options else arg.lstrip(" ")
        if self.path.options:
            while rest.startswith("-"):
                _, _, rest = rest.partition(" ")
                rest = rest.lstrip(" ")
            return rest
        for _ in range(self.path.skip):
            _, _, rest = rest.partition(" ")
            rest = rest.lstrip(" ")
        return rest


@dataclass(frozen=True)
class Hook:
    """A handler for a phase other than CMD; `command` is a name or "*" for every command."""

    phase: str
    command: str
    handler: Callable[[AnySession, Request], Reply | None]
    module: str = ""                # set by module.Module: the module that declares it (for trace lines)
    early: bool = False         # PRE_CMD: runs before the argument check, as ProFTPD's PRE_CMD handlers for "*"
    only: Callable[[Command], bool] | None = None   # a "*" hook that does nothing for rows where this is False
                                    # (decided from the row alone) is left out of their dispatch, and out of
                                    # unknown commands'
    active: Callable[[Any], bool] | None = None     # active(config): a hook that does nothing in a configuration
                                    # where this is False (a directive no section sets) is left out of the
                                    # plans of that configuration's sessions (Dispatcher.for_config)


class Plan(NamedTuple):
    """The hooks one command runs, per phase (early PRE_CMD, PRE_CMD, POST_CMD, POST_CMD_ERR, LOG_CMD,
    LOG_CMD_ERR)."""

    pre_early: tuple[Hook, ...]
    pre: tuple[Hook, ...]
    post: tuple[Hook, ...]
    post_err: tuple[Hook, ...]
    log: tuple[Hook, ...]
    log_err: tuple[Hook, ...]


class Dispatcher:
    """Runs a command through its phases against the tables of the loaded modules."""

    def __init__(self, commands: list[Command], hooks: list[Hook]):
        self.commands: dict[str, Command] = {}
        for c in commands:
            if c.name in self.commands:
                raise ValueError(f"command {c.name} is declared twice ({self.commands[c.name].module}, {c.module})")
            self.commands[c.name] = c
        self.hooks: dict[str, list[Hook]] = {}
        for h in hooks:
            self.hooks.setdefault(h.phase, []).append(h)
        # the hooks that run for each command name, per phase, in declaration order, made once in the master
        # (a command no hook or row names runs the "*" hooks): one dict look-up per command instead of one per phase
        names = set(self.commands) | {h.command for h in hooks} - {"*"}
        self._plans: dict[str, Plan] = {name: self._plan(hooks, name, self.row(name)) for name in names}
        self._any = self._plan(hooks, "*", None)

    def for_config(self, config: Any) -> "Dispatcher":
        """The dispatcher of a configuration's sessions: without the hooks that are not `active` in it. Made
        once per configuration (`config.cached`; the master makes it before the first fork)."""
        return config.cached(self._configured)

    def _configured(self, config: Any) -> "Dispatcher":
        every = [h for phase in self.hooks.values() for h in phase]
        hooks = [h for h in every if h.active is None or h.active(config)]
        return self if len(hooks) == len(every) else Dispatcher(list(self.commands.values()), hooks)

    @staticmethod
    def _plan(hooks: list[Hook], name: str, row: Command | None) -> "Plan":
        def run(phase: str, early: bool = False) -> tuple[Hook, ...]:
            return tuple(h for h in hooks if h.phase == phase and h.early == early and h.command in ("*", name)
                         and (h.only is None or h.command != "*" or (row is not None and h.only(row))))
        return Plan(run(PRE_CMD, True), run(PRE_CMD), run(POST_CMD), run(POST_CMD_ERR), run(LOG_CMD),
                    run(LOG_CMD_ERR))

    def row(self, name: str) -> Command | None:
        """The row that handles `name` (None for an unknown command or a HELP-only entry)."""
        command = self.commands.get(name)
        return command if command is not None and command.handler is not None else None

    def site_row(self, arg: str) -> Command | None:
        """The SITE sub-command row a SITE request's argument names."""
        return self.row("SITE " + arg.strip().partition(" ")[0].upper())

    def path_argument(self, name: str, arg: str) -> tuple[Command | None, str | None]:
        """(the row that says where the path is, the client path) of a request; the path is None when the
        command names none. `SITE CHMOD 755 f` -> (the SITE CHMOD row, "f"); `LIST -la dir` -> (LIST, "dir")."""
        row = self.row(name)
        if name == "SITE":
            row = self.site_row(arg)
            arg = arg.strip().partition(" ")[2]
        return row, (row.path_of(arg) if row is not None else None)

    @staticmethod
    def _run(phase: str, run: tuple[Hook, ...], session: AnySession, req: Request) -> Reply | None:
        for hook in run:
            if trace.on: trace.msg("command", 7, "dispatching %s command '%s' to %s", phase, req.display, hook.module)
            result = hook.handler(session, req)
            if result is not None and phase == PRE_CMD:
                return result
        return None

    def dispatch(self, session: AnySession, req: Request) -> Reply | None:
        """Run all phases; return the reply the session should send (None when the handler already replied)."""
        command = self.row(req.name)
        plan = self._plans.get(req.name, self._any)
        reply = self._pre(session, req, command, plan)
        if reply is None and command is not None:
            reply = self._call(session, req, command)
        req.reply = reply
        self._after(session, req, plan, reply is None and req.notes.get("failed") or (reply is not None and
                                                                                     reply.code >= 400))   # is_error
        return req.reply                # a POST_CMD hook may have changed it, or withheld it (None)

    def _after(self, session: AnySession, req: Request, plan: "Plan", failed: bool) -> None:
        """POST_CMD and LOG_CMD, or their _ERR twins when the command failed (a phase without hooks is not called:
        most commands have no POST_CMD hook)."""
        if failed:
            if plan.post_err:
                self._safe_hooks(POST_CMD_ERR, plan.post_err, session, req)
            if plan.log_err:
                self._safe_hooks(LOG_CMD_ERR, plan.log_err, session, req)
        else:
            if plan.post:
                self._safe_hooks(POST_CMD, plan.post, session, req)
            if plan.log:
                self._safe_hooks(LOG_CMD, plan.log, session, req)

    def _pre(self, session: AnySession, req: Request, command: Command | None, plan: "Plan") -> Reply | None:
        if command is None:
            if trace.on: trace.msg("command", 5, "no handler for command '%s'", req.display)
            protocol = other_protocol(req)
            if protocol is not None:        # ProFTPD's Bug#4143: no FTP server for other protocols' clients
                log.warning("client sent %s command '%s', disconnecting", protocol, req.raw.split(" ")[0])
                session.events.emit("core.bad-protocol", session=session, cmd=req, protocol=protocol)
                try:
                    session.ctrl.sock.shutdown(socket.SHUT_RDWR)    # dropped without a reply, as ProFTPD
                except OSError:
                    pass                                            # the client is gone already
                session.end("bad protocol")
                return None
            session.events.emit("core.unhandled-command", session=session, cmd=req)
            return Reply(500, f"{req.name.replace('_', ' ')} not understood")
        if command.needs_login and not session.authenticated:
            return Reply(530, "Please login with USER and PASS")
        try:
            reply = self._run(PRE_CMD, plan.pre_early, session, req)
            if reply is None:
                reply = command.argument_error(req) or self._run(PRE_CMD, plan.pre, session, req)
            return reply
        except FtpError as e:
            return e.reply

    def _call(self, session: AnySession, req: Request, command: Command) -> Reply | None:
        if trace.on: trace.msg("command", 7, "dispatching CMD command '%s' to %s", req.display, command.module)
        try:
            return command.handler(session, req)
        except FtpError as e:
            return e.reply
        except OSError as e:
            return os_error_reply(req.arg or req.name, e)

    def pre(self, session: AnySession, req: Request) -> Reply | None:
        """Only the PRE_CMD phase of a command another protocol performs itself (mod_sftp: an SFTP OPEN runs
        STOR's or RETR's, and its CLOSE then `after`, as ProFTPD's mod_sftp dispatches them): `<Limit>`, filters,
        the other modules' checks. Their refusal is returned."""
        plan = self._plans.get(req.name, self._any)
        try:
            return self._run(PRE_CMD, plan.pre_early, session, req) or self._run(PRE_CMD, plan.pre, session, req)
        except FtpError as e:
            return e.reply

    def after(self, session: AnySession, req: Request, reply: Reply) -> None:
        """POST_CMD and LOG_CMD (or their _ERR twins, for an error reply) of such a command: logs, quotas."""
        req.reply = reply
        self._after(session, req, self._plans.get(req.name, self._any), reply.is_error)

    def made_up(self, session: AnySession, req: Request, action: Callable[[], Reply]) -> Reply:
        """Run a command the server makes up, with `action` as its CMD phase, the way ProFTPD's modules dispatch
        one (mod_copy's MKD and SITE COPY for each directory and file of a copied tree): the other modules' hooks
        see it (`<Limit>` decides, quotas count, logs write it) and nothing reaches the client. A PRE_CMD
        refusal is returned without running `action`."""
        plan = self._plans.get(req.name, self._any)
        try:
            reply = self._run(PRE_CMD, plan.pre_early, session, req) or self._run(PRE_CMD, plan.pre, session, req)
        except FtpError as e:
            reply = e.reply
        if reply is None:
            reply = action()
        req.reply = reply
        self._after(session, req, plan, reply.is_error)
        return reply

    def _safe_hooks(self, phase: str, run: tuple[Hook, ...], session: AnySession, req: Request) -> None:
        """POST_CMD/LOG_CMD hooks: each runs even when one before it failed, so one module's fault cannot skip
        another's check (mod_tls refuses a login after PASS that mod_delay's POST_CMD precedes)."""
        for hook in run:
            if trace.on: trace.msg("command", 7, "dispatching %s command '%s' to %s", phase, req.display, hook.module)
            try:
                hook.handler(session, req)
            except Exception:
                log.exception("%s hook of %s failed for %s", phase, hook.module or "?", req.name)


HTTP_WORDS = frozenset("CONNECT DELETE GET HEAD OPTIONS PATCH POST PUT".split())
SMTP_WORDS = frozenset("DATA EHLO HELO MAIL RCPT RSET VRFY".split())


def other_protocol(req: Request) -> str | None:
    """"HTTP", "SSH2" or "SMTP" when an unknown command is another protocol's (ProFTPD compares the word as
    sent, case and all)."""
    word = split_command(req.raw)[0] if req.raw else req.name
    if word in HTTP_WORDS:
        return "HTTP"
    if word.startswith(("SSH-2.0-", "SSH-1.99-")):
        return "SSH2"
    if word in SMTP_WORDS:
        return "SMTP"
    return None


_WORD_END = re.compile("[ \t]")


def split_command(line: str) -> tuple[str, str]:
    """Command word and argument as ProFTPD splits them: the word ends at the first space or tab, the argument is
    everything after that one character (further spaces are part of it: `CWD  dir` names " dir")."""
    end = _WORD_END.search(line)
    return (line[:end.start()], line[end.start() + 1:]) if end else (line, "")


def os_error_reply(what: str, e: OSError) -> Reply:
    """ProFTPD's `550 <arg>: <strerror>` for a failed filesystem call."""
    text = e.strerror or os.strerror(e.errno or errno.EIO)
    return Reply(550, f"{what}: {text}")
