"""What a module is: one declared shape (`Module`), read in one place (`ModuleSet`).

A module is a Python file under proftpy/modules/ ending in `MODULE = Module(...)`, the way a ProFTPD module is one
`module` struct: its directives, its command rows, its hooks for the other dispatch phases, the session events it
listens to, what it sets up per session, and what it does in the master. Nothing finds a module's parts any other
way. `modules/__init__.py` lists the modules in load order; `ModuleSet` is built from that list once, in the master
before any fork, and every session reads it.

The master side of a module sees the master through `MasterView` (declared below, implemented by `master.Master`),
so modules never import the master. Besides its lifecycle hooks, a module takes part in the master's three seams:

- `prestep`: something read off a raw connection in the master before anything else decides on it (the PROXY
  protocol header); it may rewrite the connection's addresses and notes, or refuse it.
- `veto`: refuse a connection at accept, before any fork (MaxInstances, MaxConnectionRate, bans).
- `channel_handlers` / `notice_handlers`: messages over the channel between the master and each session child
  (net/channel.py), handled in the master and in the session respectively.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, TypeVar

from .config.registry import Block, Directive, Registry
from .dispatch import AnySession, Command, Dispatcher, Hook
from .events import EventBus
from .log import NOTICE
from .net.channel import Channel, Message, close_fds
from .net.connection import Connection
from .reply import Reply

if TYPE_CHECKING:
    from .config.tree import Config

log = logging.getLogger("proftpy")
T = TypeVar("T")


class _MadeOnUse(dict):
    """States' objects by class: a class asked for the first time gets its object made (`cls()`)."""

    def __missing__(self, cls: type) -> Any:
        obj = self[cls] = cls()
        return obj


class States:
    """Typed per-module state: at most one object per class, made on first use (`get`) or put in place (`put`).
    A module declares its state as a class and reads it with `states.get(ThatClass)`; nothing is keyed by
    strings. `get` and `find` are the dictionary's own look-ups, bound once: no Python frame for some 40 asks
    per PASV+LIST."""

    def __init__(self) -> None:
        self._by_type: dict[type, Any] = _MadeOnUse()
        self.get: Callable[[type[T]], T] = self._by_type.__getitem__
        self.find: Callable[[type[T]], T | None] = self._by_type.get   # the object if one was made, else None
                                                                        # (without making one)

    def put(self, obj: T) -> T:
        self._by_type[type(obj)] = obj
        return obj

    def drop(self, cls: type) -> Any:
        return self._by_type.pop(cls, None)


ANY = "*"       # a Listener of every event: `handler(name, data)`, after the listeners of that event


@dataclass(frozen=True)
class Listener:
    """`handler(**data)` runs when the session (or, in `master_events`, the master) emits `event`; with `event`
    ANY, `handler(name, data)` runs for every event. Events and their data are listed in docs/ARCHITECTURE.md."""

    event: str
    handler: Callable[..., None]
    active: Callable[[Any], bool] | None = None    # active(config): as Hook.active, left out where False

    def wire(self, bus: EventBus) -> None:
        if self.event == ANY:
            bus.on_any(self.handler)
        else:
            bus.on(self.event, self.handler)


@dataclass
class Child:
    """A session child as the master knows it."""

    pid: int
    started: float                      # time.monotonic() at fork (MaxConnectionRate counts these)
    local: tuple[str, int]              # the address and port the client connected to (after the pre-steps)
    remote: tuple[str, int]             # the client's (after the pre-steps: the PROXY protocol's source)
    channel: Channel | None = None      # the master's end of its channel; None once closed
    peer: str = ""                      # the socket's peer address: the proxy's when a PROXY header named the
                                        # client (passive data connections come from there)


@dataclass(frozen=True)
class Veto:
    """A connection refused in the master, by a module's `veto` or `prestep`: the master logs `message` at
    `level`, emits `event` (when set) and then `core.connection-refused`, and closes the connection without a
    word."""

    message: str                        # the whole log line: "MaxInstances reached, refused connection from ..."
    event: str | None = None            # ProFTPD's event name for it ("core.max-instances"), for mod_ban & co.
    level: int = NOTICE


@dataclass(frozen=True)
class PreStep:
    """What a module reads off a raw connection in the master before the vetoes run and the session exists (the
    PROXY protocol header). The master never blocks on it: the connection waits in its loop until the step is done.

    `timeout(master, conn)`: seconds the step may take on this connection, or None when it does not apply (then
    nothing is read). `parse(master, conn, data, eof)`: called right after accept (maybe with no bytes yet) and
    then as bytes arrive, with the bytes waiting at the head of the stream (at most `peek` of them, read with
    MSG_PEEK: nothing is consumed yet; `eof` when the client closed its side). It returns None to wait for more;
    or n, the number of bytes that are its own, which the master then consumes exactly (what follows, a command
    or a TLS ClientHello, stays for the session) -- parse may have rewritten `conn.local`, `conn.remote` and
    `conn.notes`; or a Veto to refuse the connection. `expired(master, conn)`: the Veto when the timeout passes
    first. Pre-steps run one after the other, in load order."""

    timeout: Callable[["MasterView", Connection], float | None]
    parse: Callable[["MasterView", Connection, bytes, bool], "int | Veto | None"]
    expired: Callable[["MasterView", Connection], Veto]
    peek: int = 4096


@dataclass(frozen=True)
class ChannelHandler:
    """Handles the channel messages of one `type`. In `Module.channel_handlers` (the master, messages from a
    session child): `fn(master, child, message, fds)`; it may answer with `master.tell(child, answer(message,
    {...}), fds)`. In `Module.notice_handlers` (a session, messages from the master): `fn(session, message, fds)`.
    The received `fds` are the handler's: it closes what it does not keep. A session runs as its user and may be
    hostile: a master handler checks every field of what it gets. Message types are listed in
    docs/ARCHITECTURE.md."""

    type: str
    fn: Callable[..., None]


class MasterView(Protocol):
    """What a module's master hooks may use of the master (master.Master implements it)."""

    config: "Config"
    modules: "ModuleSet"
    opts: Any                       # the command line's settings (master.Options)
    started: float
    running: bool                   # set False to stop the master after this round
    children: dict[int, Child]      # pid -> Child
    idle: dict                      # pid -> a pre-forked idle child (master.Idle): no session, not in children
    listeners: dict                 # (address, port) -> listening socket
    state: States                   # the master's per-module state; sessions inherit it as `session.shared`
    events: EventBus                # the master's own event bus

    def watch(self, fileobj: Any, callback: Callable[[], None]) -> None: ...
    def unwatch(self, fileobj: Any) -> None: ...
    def notify(self, *states: str) -> None: ...
    def status(self) -> str: ...
    def reload(self) -> None: ...
    def stop_accepting(self) -> None: ...
    def tell(self, child: Child, message: Message, fds: Iterable[int] = ()) -> bool: ...
    def spawn_helper(self, title: str, run: Callable[[], None]) -> int | None: ...
    def renew_idle(self) -> None: ...         # replace the pre-forked idle children (they hold the state of before)
    def server_for(self, local: tuple[str, int]) -> Any: ...   # the Server (vhost) serving that address, or None


MasterHook = Callable[[MasterView], None]


@dataclass(frozen=True)
class Module:
    """One module's declared surface. Every field but `name` is optional.

    `status(master)` runs in the master just before it forks the metrics exporter, while the module's shared
    tables are open; it returns a reader, `reader() -> rows` (a list of flat dicts), which the exporter calls for
    each request of the status page (`/status`, `/status.json`): a section titled with the module's name (mod_ban's
    bans, mod_delay's table). The reader runs in the exporter, without root: it may only read what the module
    opened before."""

    name: str                                           # the ProFTPD module it stands for: "mod_xfer.c"
    directives: tuple[Directive, ...] = ()
    blocks: tuple[Block, ...] = ()                      # configuration sections (<IfUser>): parsing, -t
    commands: tuple[Command, ...] = ()
    hooks: tuple[Hook, ...] = ()                        # PRE_CMD, POST_CMD(_ERR), LOG_CMD(_ERR) handlers
    listeners: tuple[Listener, ...] = ()                # session events
    transport: Callable[[AnySession], None] | None = None      # before any session_init: the control connection's
                                                        # transport (implicit FTPS's handshake, before the greeting)
    session_init: Callable[[AnySession], None] | None = None   # ProFTPD's sess_init: once per session, at connect
    session_active: Callable[["Config"], bool] | None = None   # as Hook.active: a configuration where this is False
                                                        # runs neither `transport` nor `session_init` of the module
    rehearse: Callable[[AnySession], None] | None = None       # a pre-forked idle child, before any client, on a
                                                        # throwaway session: session_init's work with no effect
                                                        # outside the process (its pages are then copied already)
    greeting: Callable[[AnySession], Reply] | None = None      # the 220 reply (mod_core's, exactly one module)
    check: Callable[["Config"], list[tuple[str, bool]]] | None = None   # `proftpy -t`: (message, fatal) problems
    validate: Callable[["Config"], None] | None = None  # when a configuration is loaded (start, HUP, -t): what
                                                        # needs several directives; raises ConfigError at a line
    auth_backend: Callable[[Any], Any] | None = None    # an auth module's: server -> its Backend (or None)
    master_init: MasterHook | None = None               # before the first accept (may raise SystemExit)
    master_preload: MasterHook | None = None            # after the daemon said it is ready (and after each reload),
                                                        # before any fork: what every session shares
    master_tick: MasterHook | None = None               # about once a second
    master_reload: MasterHook | None = None             # after a HUP installed the new configuration
    master_stop: MasterHook | None = None               # after the sessions ended
    master_events: tuple[Listener, ...] = ()            # the master's event bus
    ctrls_actions: tuple[Any, ...] = ()                 # ftpdctl actions (ctrls.Action rows)
    prestep: PreStep | None = None                      # read off the raw connection in the master, first
    veto: Callable[[MasterView, Connection], Veto | None] | None = None   # refuse a connection before fork
    channel_handlers: tuple[ChannelHandler, ...] = ()   # the master: messages from session children
    notice_handlers: tuple[ChannelHandler, ...] = ()    # a session: messages from the master
    status: Callable[[MasterView], Callable[[], list[dict]] | None] | None = None   # a section of /status: see below
    variables: tuple[str, Callable[[AnySession, str], str | None]] | None = None   # Display files' `%{prefix...}`:
                                                        # (prefix, fn(session, rest of the name) -> value or None)

    def __post_init__(self) -> None:
        # a row or directive declared here belongs to this module (several Python files may make up one)
        object.__setattr__(self, "commands", tuple(dataclasses.replace(c, module=self.name)
                                                   for c in self.commands))
        object.__setattr__(self, "hooks", tuple(dataclasses.replace(h, module=self.name) for h in self.hooks))
        object.__setattr__(self, "ctrls_actions", tuple(dataclasses.replace(a, module=self.name)
                                                        for a in self.ctrls_actions))


MASTER_HOOKS = ("master_init", "master_preload", "master_tick", "master_reload", "master_stop")


class ModuleSet:
    """The loaded modules: their directive registry, command table, session setup and master hooks."""

    def __init__(self, modules: Iterable[Module]):
        self.modules = list(modules)
        self.registry = Registry()
        for mod in self.modules:
            self.registry.add_module(mod.name, [d if d.module != "mod_core.c" else dataclasses.replace(d, module=mod.name)
                                                for d in mod.directives])
            for block in mod.blocks:
                self.registry.add_block(dataclasses.replace(block, module=mod.name))
        self.dispatcher = Dispatcher([c for m in self.modules for c in m.commands],
                                     [h for m in self.modules for h in m.hooks])
        greeters = [m.greeting for m in self.modules if m.greeting is not None]
        if len(greeters) != 1:
            raise ValueError(f"exactly one module must declare the greeting, found {len(greeters)}")
        self.greeting: Callable[[AnySession], Reply] = greeters[0]
        self.actions = {a.name: a for m in self.modules for a in m.ctrls_actions}   # ftpdctl's action table
        self.presteps = [m.prestep for m in self.modules if m.prestep is not None]
        self.vetoes = [(m.name, m.veto) for m in self.modules if m.veto is not None]
        self.listeners = [lsn for m in self.modules for lsn in m.listeners]
        self.variables = dict(m.variables for m in self.modules if m.variables is not None)
        self.channel_handlers = _by_type(h for m in self.modules for h in m.channel_handlers)
        self.notice_handlers = _by_type(h for m in self.modules for h in m.notice_handlers)

    def auth_backends(self) -> dict[str, Callable[[Any], Any]]:
        """AuthOrder's names -> the backend constructor of each auth module."""
        return {m.name: m.auth_backend for m in self.modules if m.auth_backend is not None}

    def names(self) -> list[str]:
        """ProFTPD module names, once each (several Python files may make up one ProFTPD module)."""
        return list(dict.fromkeys(m.name for m in self.modules))

    def session_wiring(self, config: "Config") -> EventBus:
        """The modules' session listeners that are `active` in this configuration, wired once per configuration
        (the master does it before the first fork); each session copies them."""
        return config.cached(self._session_start)[0]

    def _session_start(self, config: "Config") -> tuple[EventBus, tuple[Callable[[AnySession], None], ...]]:
        """Once per configuration: the wired listeners, and the transport functions then the session_init
        functions, in load order, of the modules `session_active` in it."""
        bus = EventBus()
        for listener in self.listeners:
            if listener.active is None or listener.active(config):
                listener.wire(bus)
        steps = tuple(fn for step in ("transport", "session_init") for mod in self.modules
                      if (fn := getattr(mod, step)) is not None
                      and (mod.session_active is None or mod.session_active(config)))
        return bus, steps

    def start_session(self, session: AnySession) -> None:
        """Wire every module's listeners, then run the transport functions and the session_init functions in
        load order; a module that ends the session (a failed handshake, a refused client) stops the rest."""
        bus, steps = session.config.cached(self._session_start)
        session.events.add_all(bus)
        for fn in steps:
            if session.closing:
                break
            fn(session)

    def rehearse(self, session: AnySession) -> None:
        """Every module's `rehearse`, on a session that is thrown away (idle_child.warm_up). One that fails is
        logged: the idle child still serves its client (whose session start reports what is wrong)."""
        self._each("rehearse", session, "rehearsal of a session's start failed")

    def master_start(self, master: MasterView) -> None:
        """The master's event listeners, then every master_init; one that cannot start raises SystemExit, other
        failures are logged."""
        for mod in self.modules:
            for listener in mod.master_events:
                listener.wire(master.events)
        self._each("master_init", master, "master_init failed")

    def _each(self, step: str, arg: Any, failed: str) -> None:
        """`step(arg)` of every module that declares it, in load order; one that raises is logged, not fatal
        (SystemExit still ends the process)."""
        for mod in self.modules:
            fn = getattr(mod, step)
            if fn is not None:
                try:
                    fn(arg)
                except Exception:
                    log.exception("%s: %s", mod.name, failed)

    def master_hook(self, name: str, master: MasterView) -> None:
        """Run one of master_tick, master_reload, master_stop of every module; a failing hook is logged, never
        fatal to the master."""
        assert name in MASTER_HOOKS
        self._each(name, master, f"{name} failed")

    def veto(self, master: MasterView, conn: Connection) -> Veto | None:
        """The first module's refusal of a new connection, in load order (None: let it in). A veto that fails is
        logged and does not refuse."""
        for name, fn in self.vetoes:
            try:
                veto = fn(master, conn)
            except Exception:
                log.exception("%s: veto failed", name)
                continue
            if veto is not None:
                return veto
        return None

    def notice(self, session: AnySession, message: Message, fds: list[int]) -> None:
        """A message from the master to a session: its module's notice handler, or a log line (and the fds
        closed) when no module handles that type."""
        fn = self.notice_handlers.get(message["type"])
        if fn is None:
            log.warning("no handler for the master's %r message, ignored", message["type"])
            close_fds(fds)
            return
        try:
            fn(session, message, fds)
        except Exception:
            log.exception("handler of the master's %r message failed", message["type"])

    def validate(self, config: "Config") -> None:
        """Every module's checks across directives; the first ConfigError stops the load."""
        for m in self.modules:
            if m.validate is not None:
                m.validate(config)

    def check(self, config: "Config") -> list[tuple[str, bool]]:
        """Every module's `-t` problems: (message, fatal)."""
        return [p for m in self.modules if m.check is not None for p in m.check(config)]


def _by_type(handlers: Iterable[ChannelHandler]) -> dict[str, Callable[..., None]]:
    out: dict[str, Callable[..., None]] = {}
    for h in handlers:
        if h.type in out:
            raise ValueError(f"two modules handle the channel message type {h.type!r}")
        out[h.type] = h.fn
    return out
