"""mod_redis's logging: RedisLogOnCommand and RedisLogOnEvent push one JSON object per command or event onto a Redis
list (RPUSH), built from a LogFormat as ProFTPD's jot API builds it (proftpy/log/jot.py), with RedisLogFormatExtra's
members after the format's. Checked against Debian's ProFTPD 1.3.8 with mod_redis:

- RedisLogOnCommand takes command names only (`ALL` names no command: ProFTPD logs nothing for it either), after
  the command succeeded or failed; never CONNECT or EXIT.
- RedisLogOnEvent takes CONNECT, DISCONNECT (the session's end, as the pseudo command EXIT), command names, and
  ALL (every command, the connection and its end).
- The list's key is the third word with its LogFormat variables filled in (`ftp:%u`; a variable without a value
  leaves nothing), else the format's name.

Each session has its own Redis link (the RedisServer of its server, bounded by RedisTimeouts like mod_ban's): a
Redis that is down costs a SystemLog line once per process and the record, never the command.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..bancache import CacheDown, ProcessDown, RedisLink, json_text
from ..config.errors import ConfigError
from ..config.registry import DIR, SVGA, Directive, Merge
from ..config.types import Custom
from ..dispatch import LOG_CMD, LOG_CMD_ERR, Hook, Request
from ..log import jot, logformat
from ..module import Listener, Module
from . import redis as mod_redis
from .log import formats_of, record

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session

log = logging.getLogger("proftpy")

LOGGING = ("RedisLogOnCommand", "RedisLogOnEvent")


@dataclass(frozen=True)
class Rule:
    """One RedisLogOnCommand/RedisLogOnEvent line."""

    names: frozenset[str]               # upper-case command names; CONNECT/DISCONNECT/ALL for events
    format_name: str
    key: tuple = ()                     # the key's LogFormat tokens; () = the format's name


def _rule(events: bool):
    def parse(args: list[str]) -> Rule | None:
        if len(args) == 1 and args[0].lower() == "none":
            return None
        if len(args) not in (2, 3):
            raise ValueError("wrong number of parameters")
        names = frozenset(n.strip().upper() for n in args[0].split(",") if n.strip())
        if not names:
            raise ValueError("no command names")
        if events:
            names = frozenset("EXIT" if n == "DISCONNECT" else n for n in names)
        key = tuple(logformat.compile_format(args[2])) if len(args) == 3 else ()
        return Rule(names, args[1], key)
    return parse


def _extra(args: list[str]) -> tuple[str, tuple]:
    if len(args) != 2:
        raise ValueError("wrong number of parameters")
    try:
        obj = json.loads(args[1])
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise ValueError(f"error parsing '{args[1]}' as JSON object: invalid JSON")
    return args[0], tuple(obj.items())


directives = (
    Directive("RedisLogOnCommand", Custom(_rule(False), "none|CMD[,CMD...] format-name [key]"), SVGA | DIR, None,
              Merge.MULTI, "After these commands (done or failed), RPUSH the LogFormat's JSON object onto the key "
              "(default: the format's name; LogFormat variables allowed).", repeat=True),
    Directive("RedisLogOnEvent", Custom(_rule(True), "none|CONNECT|DISCONNECT|ALL|CMD[,...] format-name [key]"),
              SVGA | DIR, None, Merge.MULTI, "As RedisLogOnCommand, for the connection (CONNECT), its end (DISCONNECT), "
              "commands, or ALL of them.", repeat=True),
    Directive("RedisLogFormatExtra", Custom(_extra, "format-name json-object"), SVGA | DIR, None, Merge.MULTI,
              "Members added after the format's in the objects RedisLogOn* write with that format.", repeat=True),
)


def _configured(config: "Config") -> bool:
    return any(config.sets(name) for name in LOGGING)


def validate(config: "Config") -> None:
    """A rule or extra naming a format no LogFormat defines is refused at its line (ProFTPD's "no LogFormat")."""
    known = {"default"} | {p.value[0] for s in config.root.walk() for p in s.all("LogFormat")}
    for section in config.root.walk():
        for name in LOGGING + ("RedisLogFormatExtra",):
            for p in section.all(name):
                if p.value is None:
                    continue
                wanted = p.value[0] if name == "RedisLogFormatExtra" else p.value.format_name
                if wanted not in known:
                    raise ConfigError(f"{name}: no LogFormat '{wanted}' configured", p.where)


# -- session --------------------------------------------------------------------------------------------------------
@dataclass
class RedisLogState:
    link: RedisLink | None = None
    formats: dict[str, list] = field(default_factory=dict)


def session_init(session: "Session") -> None:
    _setup(session)
    _log_event(session, Request("CONNECT", ""), "CONNECT")


def _setup(session: "Session", **_: Any) -> None:
    """The server's Redis and LogFormats (again after HOST chose another server)."""
    st = session.state.get(RedisLogState)
    if st.link is not None:
        st.link.close()
        st.link = None
    settings = mod_redis.settings_for(session.server)
    if settings is not None:
        st.link = RedisLink(settings, ProcessDown())
        st.formats = session.server.cached(formats_of, session.config)


def _rules(ctx: Any, name: str) -> list[Rule]:
    return [r for r in ctx.all(name) if r is not None]


def _push(session: "Session", ctx: Any, rule: Rule, req: Request, rec: Any) -> None:
    st = session.state.get(RedisLogState)
    tokens = st.formats.get(rule.format_name)
    if tokens is None or st.link is None:
        return
    members = jot.members(tokens, rec)
    for fmt, extra in ctx.all("RedisLogFormatExtra"):
        if fmt == rule.format_name:
            members += list(extra)
    key = jot.text(list(rule.key), rec) if rule.key else rule.format_name
    try:
        st.link.push(key.encode("utf-8", "surrogateescape"), json_text(members).encode("utf-8", "surrogateescape"))
    except CacheDown as e:
        log.debug("mod_redis: %s not logged to Redis: %s", req.name, e)


def _log_event(session: "Session", req: Request, event: str) -> None:
    ctx = session.context()
    rules = [r for r in _rules(ctx, "RedisLogOnEvent") if event in r.names or "ALL" in r.names]
    if rules:
        rec = record(session, req, pseudo=True)
        if event == "CONNECT":
            rec.command = ""            # ProFTPD's CONNECT object has no "command"
        for rule in rules:
            _push(session, ctx, rule, req, rec)


def _log_cmd(session: "Session", req: Request) -> None:
    """The lines of the place the command acted on (a `<Directory>` of its path, else the session's level)."""
    name = req.name.upper()
    ctx = session.command_context(req)
    rules = [r for r in _rules(ctx, "RedisLogOnCommand") if name in r.names]
    rules += [r for r in _rules(ctx, "RedisLogOnEvent") if name in r.names or "ALL" in r.names]
    if not rules:
        return
    rec = record(session, req)
    for rule in rules:
        _push(session, ctx, rule, req, rec)


def _exit(session: "Session", **_: Any) -> None:
    _log_event(session, Request("EXIT", ""), "EXIT")
    st = session.state.get(RedisLogState)
    if st.link is not None:
        st.link.close()


MODULE = Module(mod_redis.NAME, directives=directives, validate=validate, session_init=session_init,
                session_active=_configured,
                hooks=(Hook(LOG_CMD, "*", _log_cmd, active=_configured),
                       Hook(LOG_CMD_ERR, "*", _log_cmd, active=_configured)),
                listeners=(Listener("core.session-reinit", _setup, _configured),
                           Listener("core.exit", _exit, _configured)))
