"""mod_ifsession: `<IfUser>`, `<IfGroup>`, `<IfClass>` and `<IfAuthenticated>` sections, merged over the session's
server configuration the way ProFTPD 1.3.8's contrib/mod_ifsession.c merges them.

* `<IfClass>` sections are merged when the client connects (right after mod_access knows the class), so they can
  change almost anything of the session, MaxClients and DefaultRoot included.
* After a successful PASS (a POST_CMD hook that runs before the other modules' PASS work: the Max* counts and
  DisplayLogin): every `<IfAuthenticated>`, then the matching `<IfGroup>`, then the matching `<IfUser>` sections.
  What mod_auth used while logging in (DefaultRoot, the shell and ftpusers checks, AuthOrder) is used already, so
  those directives have no effect there, as in ProFTPD; MaxClients and friends, `<Limit>`, `<Directory>`,
  TransferRate, HideFiles, DisplayLogin and the Display files of later commands do. A merged `<Limit LOGIN>` is
  checked again: when it refuses, the session ends without its 230 (`Limit access denies login.` in the log), as
  ProFTPD does.

The merge itself (`config.tree.merge_block`) works on the session's own copy of its server's section tree, so the
master's configuration (shared by every session) is never touched. Names: `user[,user] ...` with `!` negating a
name; the first word may be `AND`, `OR` (case matters) or `regex` (one pattern, searched case-sensitively). Lists
are OR'd for users and classes, AND'd for groups.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..access import expr as exprs
from ..access import limits
from ..access.limits import Who
from ..config.registry import GLOBAL, SERVER, VHOST, Block
from ..config.types import compile_regex
from ..config.tree import Server, copy_tree, merge_block
from ..dispatch import POST_CMD, Hook, Request
from ..log import NOTICE
from ..module import Listener, Module
from . import display

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_ifsession.c"
log = logging.getLogger("proftpy")
KINDS = ("ifclass", "ifauthenticated", "ifgroup", "ifuser")


@dataclass(frozen=True)
class Condition:
    """The opening line of an `<If...>` section: an AND or OR list of names (`!name` negates), or a regex."""

    mode: str                               # "and" | "or" | "regex" | "always" (<IfAuthenticated>)
    items: tuple[str, ...] = ()
    regex: re.Pattern | None = None

    def holds(self, names: tuple[str, ...]) -> bool:
        if self.mode == "always":
            return True
        if self.mode == "regex":
            return any(self.regex.search(n) for n in names)
        return exprs.evaluate(self.mode, self.items, names)


def _parser(default: str):
    def parse(args: list[str]) -> Condition:
        if not args:
            raise ValueError("wrong number of parameters")
        mode, words = default, list(args)
        if len(words) > 1 and words[0] in ("AND", "OR", "regex"):        # only as the first word, case matters
            mode = words.pop(0).lower()
        if mode == "regex":
            if len(words) != 1:
                raise ValueError("wrong number of parameters")
            try:
                return Condition("regex", (words[0],), compile_regex(words[0]))
            except re.error as e:
                raise ValueError(f"'{words[0]}' failed regex compilation: {e}") from None
        return Condition(mode, exprs.terms(words))
    return parse


def _authenticated(args: list[str]) -> Condition:
    if args:
        raise ValueError("wrong number of parameters")
    return Condition("always")


SVG = SERVER | VHOST | GLOBAL
blocks = (
    Block("IfClass", _parser("or"), SVG, "Directives for the sessions of these connection classes (merged at "
                                         "connect)."),
    Block("IfGroup", _parser("and"), SVG, "Directives for users in these groups (AND list; merged after login)."),
    Block("IfUser", _parser("or"), SVG, "Directives for these users (merged after login)."),
    Block("IfAuthenticated", _authenticated, SVG, "Directives for every logged-in session (merged after login, "
                                                  "before <IfGroup> and <IfUser>)."),
)


@dataclass
class IfSessionState:
    merged: bool = False                    # a section was merged into this session's configuration


# -- merging -------------------------------------------------------------------------------------------------------
def _names(session: "Session", kind: str) -> tuple[str, ...]:
    if kind == "ifclass":
        return (session.conn_class,) if session.conn_class else ()
    if kind == "ifuser":
        name = session.account.name if session.account is not None else session.user
        return (name,) if name else ()
    if kind == "ifgroup":
        return session.groups or ()
    return ()


def merge(session: "Session", kinds: tuple[str, ...]) -> bool:
    """Merge the matching sections of these kinds, in this order, into the session's configuration; within a
    kind ProFTPD takes them in its set order (last in the file first), and a later merge's directives remove the
    same directives of the sections still waiting, so the last matching section in the file wins."""
    waiting = [s for s in session.server.section.sections if s.kind in kinds]
    if not waiting:
        return False
    copies: dict[int, Any] = {}
    root = copy_tree(session.server.section, None, copies)
    done = False
    for kind in kinds:
        matched = []
        for section in reversed([s for s in root.sections if s.kind == kind]):
            if section.value.holds(_names(session, kind)):
                log.debug("merging <%s %s> from %s", kind, " ".join(section.args), section.where)
                merge_block(root, section)
                matched.append(section)
        root.sections = [s for s in root.sections if not any(s is m for m in matched)]
        done = done or bool(matched)
    if not done:
        return False
    session.server = Server(root, session.server.registry, base=session.server)
    if session.anon is not None:
        session.anon = copies.get(id(session.anon), session.anon)
    session.state.get(IfSessionState).merged = True
    return True


def _chroot(session: "Session", **_: Any) -> None:
    """core.chroot: an absolute DisplayLogin of a matching `<IfGroup>`/`<IfUser>` is opened now, before the
    root changes, so the 230 can show it (ProFTPD's ifsess_chroot_ev, Bug#3882)."""
    for section in session.server.section.sections:
        if section.kind in ("ifgroup", "ifuser") and section.value.holds(_names(session, section.kind)):
            path = section.get("DisplayLogin")
            if path and path.startswith("/"):
                display.preopen(session, path)


def session_init(session: "Session") -> None:
    """`<IfClass>` at connect (ProFTPD's sess_init)."""
    merge(session, ("ifclass",))


def _reinit(session: "Session", **_: Any) -> None:
    """HOST chose another server: its own `<IfClass>` sections apply."""
    merge(session, ("ifclass",))


def post_pass(session: "Session", cmd: Request) -> None:
    """After a successful login: `<IfAuthenticated>`, `<IfGroup>`, `<IfUser>`; then `<Limit LOGIN>` again."""
    if not session.authenticated or cmd.reply is None or cmd.reply.code != 230:
        return None
    if not merge(session, ("ifauthenticated", "ifgroup", "ifuser")):
        return None
    section = session.anon if session.anon is not None else session.server.section
    decision = limits.login_at_pass(section, Who(session.client, session.user, session.groups, session.conn_class))
    if not decision.allowed:
        log.log(NOTICE, "%s %s: Limit access denies login.", "ANON" if session.anon is not None else "USER",
                session.user)
        cmd.reply = None                        # ProFTPD ends the session before its 230 is sent
        session.end("Denied by <Limit LOGIN>")
    return None


MODULE = Module(NAME, blocks=blocks, session_init=session_init, hooks=(Hook(POST_CMD, "PASS", post_pass),),
                listeners=(Listener("core.session-reinit", _reinit), Listener("core.chroot", _chroot)))
