"""The command table and ProFTPD's dispatch phases: PRE_CMD -> CMD -> POST_CMD | POST_CMD_ERR -> LOG_CMD |
LOG_CMD_ERR.

Every command is one `Command` row (name, handler, group, login rule, argument rule, help); the table drives
dispatch, `<Limit>` groups, HELP and FEAT. Modules add `Hook`s for the other phases.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .reply import FtpError, Reply

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger("proftpy")

# Argument rules.
NONE, REQUIRED, OPTIONAL = "none", "required", "optional"
# Phases.
PRE_CMD, POST_CMD, POST_CMD_ERR, LOG_CMD, LOG_CMD_ERR = "PRE_CMD", "POST_CMD", "POST_CMD_ERR", "LOG_CMD", "LOG_CMD_ERR"


@dataclass
class Cmd:
    """One command as the client sent it."""

    name: str                   # upper-case command word ("SITE CHMOD" stays "SITE"; see `site`)
    arg: str                    # everything after the first space, unchanged
    raw: str = ""
    notes: dict[str, Any] = field(default_factory=dict)   # per-command scratch for hooks (e.g. transfer facts)
    reply: Reply | None = None

    @property
    def display(self) -> str:
        """The command line as logged: passwords hidden, as ProFTPD does."""
        if self.name == "PASS":
            return "PASS (hidden)"
        return f"{self.name} {self.arg}".rstrip()


@dataclass(frozen=True)
class Command:
    """One row of the command table."""

    name: str
    handler: Callable[["Session", Cmd], Reply | None]
    group: str | None = None        # READ, WRITE, DIRS (for <Limit>), or None
    needs_login: bool = True
    arg: str = OPTIONAL
    help: str = ""
    limited: bool = True            # checked against <Limit ALL> (ProFTPD exempts PASV/PORT/EPRT/EPSV/OPTS/PROT)
    feat: tuple[str, ...] = ()      # FEAT lines this command contributes
    module: str = "mod_core.c"
    missing: tuple[int, str] = (500, "{name}: command requires a parameter")   # reply when arg=REQUIRED lacks it
    extra: tuple[int, str] = (501, "Invalid number of parameters")              # reply when arg=NONE gets one

    def argument_error(self, cmd: "Cmd") -> "Reply | None":
        """The reply for an argument this command must have and lacks, or must not have and got. ProFTPD checks
        the count in each handler, so the reply is the command's own (see `missing`, `extra`)."""
        given = bool(cmd.arg.strip(" \t"))
        if self.arg == REQUIRED and not given:
            code, text = self.missing
        elif self.arg == NONE and given:
            code, text = self.extra
        else:
            return None
        return Reply(code, text.format(name=cmd.name, arg=cmd.arg))


@dataclass(frozen=True)
class Hook:
    """A handler for a phase other than CMD; `command` is a name or "*" for every command."""

    phase: str
    command: str
    handler: Callable[["Session", Cmd], Reply | None]


class Dispatcher:
    """Runs a command through its phases against the tables of the loaded modules."""

    def __init__(self, commands: list[Command], hooks: list[Hook]):
        self.commands = {c.name: c for c in commands}
        self.hooks: dict[str, list[Hook]] = {}
        for h in hooks:
            self.hooks.setdefault(h.phase, []).append(h)

    def _run_hooks(self, phase: str, session: "Session", cmd: Cmd) -> Reply | None:
        for hook in self.hooks.get(phase, ()):
            if hook.command in ("*", cmd.name):
                result = hook.handler(session, cmd)
                if result is not None and phase == PRE_CMD:
                    return result
        return None

    def dispatch(self, session: "Session", cmd: Cmd) -> Reply | None:
        """Run all phases; return the reply the session should send (None when the handler already replied)."""
        command = self.commands.get(cmd.name)
        reply = self._pre(session, cmd, command)
        if reply is None and command is not None:
            reply = self._call(session, cmd, command)
        cmd.reply = reply
        failed = reply is None and cmd.notes.get("failed") or (reply is not None and reply.is_error)
        self._safe_hooks(POST_CMD_ERR if failed else POST_CMD, session, cmd)
        self._safe_hooks(LOG_CMD_ERR if failed else LOG_CMD, session, cmd)
        return reply

    def _pre(self, session: "Session", cmd: Cmd, command: Command | None) -> Reply | None:
        if command is None:
            session.events.emit("core.unhandled-command", session=session, cmd=cmd)
            return Reply(500, f"{cmd.name.replace('_', ' ')} not understood")
        if command.needs_login and not session.authenticated:
            return Reply(530, "Please login with USER and PASS")
        wrong = command.argument_error(cmd)
        if wrong is not None:
            return wrong
        try:
            return self._run_hooks(PRE_CMD, session, cmd)
        except FtpError as e:
            return e.reply

    def _call(self, session: "Session", cmd: Cmd, command: Command) -> Reply | None:
        try:
            return command.handler(session, cmd)
        except FtpError as e:
            return e.reply
        except OSError as e:
            return os_error_reply(cmd.arg or cmd.name, e)

    def _safe_hooks(self, phase: str, session: "Session", cmd: Cmd) -> None:
        try:
            self._run_hooks(phase, session, cmd)
        except Exception:
            log.exception("%s hook failed for %s", phase, cmd.name)


def split_command(line: str) -> tuple[str, str]:
    """Command word and argument as ProFTPD splits them: the word ends at the first space or tab, the argument is
    everything after that one character (further spaces are part of it: `CWD  dir` names " dir")."""
    for i, ch in enumerate(line):
        if ch in " \t":
            return line[:i], line[i + 1:]
    return line, ""


def os_error_reply(what: str, e: OSError) -> Reply:
    """ProFTPD's `550 <arg>: <strerror>` for a failed filesystem call."""
    text = e.strerror or os.strerror(e.errno or errno.EIO)
    return Reply(550, f"{what}: {text}")
