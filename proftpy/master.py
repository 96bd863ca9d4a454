"""The master process (the arbiter): binds listeners, accepts, forks one child per connection, reaps children,
handles signals in its loop (never inside a handler), reloads on SIGHUP and stops on SIGTERM.

It never speaks FTP beyond a silent close and never touches user files. It knows no module: modules take part
through their declared `Module` fields (module.py), in load order.

A new connection, from accept to fork:

1. `Connection` (net/connection.py): the socket and both ends' addresses, from accept() and getsockname().
2. Pre-steps (`Module.prestep`): each reads what it needs off the raw stream (the PROXY protocol header) and may
   rewrite the addresses. The connection waits in the master's loop meanwhile (edge-triggered, with the step's
   deadline), never blocking it. Without pre-steps this costs nothing.
3. Vetoes (`Module.veto`): the first refusal is logged, announced and the connection closed without a word.
4. Hand-over or fork: with a pool of pre-forked idle children (StartServers/MinSpareServers/MaxSpareServers,
   proftpy/prefork.py), the socket and addresses go to the oldest idle child over its channel (`hand_over`);
   without one idle (no pool, a burst larger than it), a child is forked for the connection (`spawn`). Either
   child first closes the master's listeners, watched fds, waiting connections and every channel but its own
   (`_fresh_child`), then runs `serve_connection`. The master keeps its end of the channel in the `Child` record,
   waits on it, hands messages to `Module.channel_handlers` and closes it when it reaps the child. Idle
   children are no sessions (`Master.idle`, not `children`); the loop keeps their number within the directives
   (`top_up`), replaces them after a reload (`renew_idle`) and when one dies.

Master events (`master.events`; modules listen through `Module.master_events`):

- `core.connection-refused(connection, veto)`: a pre-step or a veto refused a connection (after the veto's own
  event, when it names one: `core.max-instances(connection, veto)`, `core.max-connection-rate(connection, veto)`).
- `core.child-spawned(pid, child, connection)`: a session child was forked for `connection`, or an idle child
  was handed it (its socket is the child's now: closed in the master).
- `core.child-exited(pid, status, child)`: a child was reaped (`status` as os.waitpid gives it); `child` is the
  Child record, None for a process that was not a session child (a helper, an idle child).
- `core.reloaded(config)`: SIGHUP installed a new configuration (after every `master_reload`).
"""

from __future__ import annotations

import _signal
import errno
import gc
import logging
import os
import resource
import select
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NoReturn

from . import idle_child, immortal, ksm, modules, prefork, proctitle, trace
from .config.errors import ConfigError
from .config.parser import parse_file
from .config.tree import Config, Server
from .events import EventBus
from .log import NOTICE, tag_session
from .module import Child, ModuleSet, PreStep, States, Veto
from .net import inet
from .net.channel import BadMessage, Channel, ChannelClosed, ChannelError, Message, close_fds
from .net.connection import Connection, plain_ip
from .session import Session

# The signals the master handles (through its wake-up fd); `fork()` keeps them from a child until it has its own.
MASTER_SIGNALS = frozenset((signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR2))
_sigmask = _signal.pthread_sigmask      # the C function: signal.pthread_sigmask builds a set of enum members

log = logging.getLogger("proftpy")
STOP_GRACE = 1.5        # seconds children get after SIGTERM before SIGKILL
BATCH = 64              # connections accepted (or channel messages read) per wake-up of one fd
REAP_READS = 1024       # messages a reaped child may have left in its channel
WAITING_MAX = 512       # connections waiting in their pre-steps at once (also at most a quarter of RLIMIT_NOFILE)
_IN = select.EPOLLIN
_WAITING = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET     # a connection in its pre-steps


@dataclass
class Options:
    """Command-line settings that override the configuration."""

    config_path: str
    defines: frozenset[str] = frozenset()
    ipv6: bool | None = None        # -4 / -6
    foreground: bool = False
    debug: int = 0


@dataclass
class Waiting:
    """A connection whose pre-steps are not done: which step it is in and until when."""

    conn: Connection
    step: int = 0
    deadline: float | None = None       # None: the current step has not started


@dataclass
class Idle:
    """A pre-forked child waiting for a connection: no session yet (not in `Master.children`)."""

    pid: int
    channel: Channel                    # the master's end; the connection's socket travels over it


def load_config(opts: Options) -> Config:
    """Parse and check the configuration, resolving each server's addresses; raises ConfigError."""
    config = parse_file(opts.config_path, modules.registry(), set(opts.defines))
    use_ipv6 = use_ipv6_for(config, opts)
    for server in config.servers:
        names = server.section.args if server.is_vhost else (server.get("DefaultAddress")
                                                             or [socket.gethostname()])
        addrs = [plain_ip(a) for name in names for a in inet.resolve(name, use_ipv6)]
        if not addrs and server.get("Port"):
            raise ConfigError(f"cannot resolve address(es) {' '.join(names)}", server.section.where)
        server.addresses = addrs
    modules.loaded().validate(config)
    return config


def use_ipv6_for(config: Config, opts: Options) -> bool:
    wanted = opts.ipv6 if opts.ipv6 is not None else config.main.get("UseIPv6")
    return bool(wanted) and inet.ipv6_available()


def listen_keys(config: Config, use_ipv6: bool) -> dict[tuple[str, int], Server]:
    """(address, port) -> the server owning that listener. SocketBindTight off: one wildcard socket per port."""
    tight = config.main.get("SocketBindTight")
    keys: dict[tuple[str, int], Server] = {}
    for server in config.servers:
        port = server.get("Port")
        if not port:
            continue
        hosts = server.addresses if tight else [inet.WILDCARD_V6 if use_ipv6 else inet.WILDCARD_V4]
        for host in hosts:
            keys.setdefault((host, port), server)
    return keys


def pick_server(config: Config, local_addr: str, local_port: int) -> Server | None:
    """ProFTPD's vhost choice (config.tree.Config.server_for)."""
    return config.server_for(local_addr, local_port)


class Master:
    """Owns listeners, children and the configuration; see the module docstring."""

    def __init__(self, config: Config, opts: Options, loaded: ModuleSet | None = None):
        self.config = config
        self.opts = opts
        self.modules = loaded or modules.loaded()
        self.listeners: dict[tuple[str, int], socket.socket] = {}
        self.children: dict[int, Child] = {}
        self.started = time.time()
        self.running = True
        self.state = States()               # the modules' master state; every session inherits it (session.shared)
        self.events = EventBus()            # the master's own events (module docstring)
        self.watchers: dict = {}            # fileobj -> callback(): extra fds modules wait for (control socket)
        self.waiting: dict[int, Waiting] = {}   # fd -> a connection in its pre-steps
        self.idle: dict[int, Idle] = {}         # pid -> a pre-forked idle child, oldest first (no session)
        self.retiring: set[int] = set()         # idle children told to end (a reload, too many): not replaced
        self._pool_open = True                  # False once the listeners are closed for good
        self._pool_paused_until = 0.0           # after a failed fork or an idle child's death: refill later
        self._pool_target = 0                   # idle children aimed at (prefork.PoolSize.change)
        self.waiting_max = waiting_cap()        # beyond it a connection that must wait is refused (header flood)
        self._over_cap = 0                      # refused for that since the last log line
        self._over_cap_logged = 0.0
        self._poller = select.epoll()
        self._handlers: dict[int, Callable[[int], None]] = {}   # fd -> handler(epoll events), for the loop
        self._wake_r, self._wake_w = socket.socketpair()
        self._register(self._wake_r.fileno(), lambda _: self.handle_signals())
        self._notifier = _systemd_notifier()
        self._ticked = 0.0                  # time.monotonic() of the last tick

    # -- setup ---------------------------------------------------------------------------------------------------
    def bind(self) -> None:
        """Open every listener the configuration asks for; keep sockets that stay the same across reloads."""
        wanted = listen_keys(self.config, use_ipv6_for(self.config, self.opts))
        for key in list(self.listeners):
            if key not in wanted:
                self._close_listener(key)
        main = self.config.main
        for (host, port) in wanted:
            if (host, port) not in self.listeners:
                sock = inet.bind_listener(host, port, main.get("TCPBackLog"), main.get("SocketOptions"))
                self.listeners[(host, port)] = sock
                if trace.on: trace.msg("binding", 4, "bound address %s, port %d to socket fd %d", host, port, sock.fileno())
                self._register(sock.fileno(), lambda _, s=sock: self.running and self.accept(s))

    def _close_listener(self, key: tuple[str, int]) -> None:
        sock = self.listeners.pop(key)
        self._unregister(sock.fileno())
        sock.close()

    def preload(self) -> None:
        """Build what every session needs before the first fork, so children share it instead of each
        building (and privately copying) its own."""
        proctitle.terse = self.config.main.get("ProcessTitles") == "terse"
        self.modules.master_hook("master_preload", self)
        self.config.build_indexes()
        self.modules.dispatcher.for_config(self.config)      # the sessions' hook plans and listeners, made once
        self.modules.session_wiring(self.config)
        from . import fs, listing  # noqa: F401 - imported here so every child shares them
        immortal.immortalize()      # 3.12+: counts of shared objects are no longer written (copied) by sessions
        gc.collect()
        gc.freeze()
        if self.config.main.get("MemoryMerge"):
            merge_memory()

    def install_signals(self) -> None:
        """Signals only wake the loop (set_wakeup_fd writes the signal number); the loop handles them."""
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in MASTER_SIGNALS:
            signal.signal(sig, lambda s, f: None)

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Start, then serve until SIGTERM/SIGINT; returns the exit status."""
        self.install_signals()
        self.start()
        return self.serve()

    def start(self, ready: Callable[[], None] | None = None) -> None:
        """Everything before the first accept once the signals are ours (`install_signals`, which the caller runs
        before it writes the PidFile, so that a SIGTERM during the start still removes it): module setup
        (scoreboard, control socket), preloading. A module that cannot start raises SystemExit with the reason.
        `ready()` runs once the modules have started, before the preloading: the listeners accept already (the
        kernel queues connections until the first accept), so whoever waits for the daemon may go on."""
        proctitle.set(proctitle.MASTER)
        self.modules.master_start(self)
        if ready is not None:
            ready()
        self.preload()

    def serve(self) -> int:
        """The loop (one epoll over the signal wake-up fd, listeners, watched fds, channels and connections in
        their pre-steps), until SIGTERM/SIGINT."""
        self.notify("READY=1", f"STATUS={self.status()}")
        log.log(NOTICE, "proftpy %s standalone mode STARTUP", _version())
        self._pool_target = self.pool_size().initial()     # the loop forks them (top_up), after the preload
        while self.running:
            for fd, events in self._poller.poll(self._next_timeout()):
                handler = self._handlers.get(fd)
                if handler is not None:         # else an earlier handler of this round removed it
                    handler(events)
            if self.waiting:
                self._expire_waiting()
            if self.running:
                self.top_up()
            self.tick()
        self.stop()
        return 0

    def _register(self, fd: int, handler: Callable[[int], None], events: int = _IN) -> None:
        if fd in self._handlers:
            self._poller.modify(fd, events)
        else:
            self._poller.register(fd, events)
        self._handlers[fd] = handler

    def _unregister(self, fd: int) -> None:
        """Before the fd is closed: a forked child may still hold a copy, which would keep it in the epoll set."""
        if self._handlers.pop(fd, None) is not None:
            try:
                self._poller.unregister(fd)
            except OSError:
                pass        # closed already (the kernel dropped it from the set)

    def watch(self, fileobj, callback) -> None:
        """Let a module wait in the master loop: `callback()` runs when `fileobj` is readable. Forked children
        close every watched object."""
        self.unwatch(fileobj)
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        self.watchers[fileobj] = (fd, callback)
        self._register(fd, lambda _, f=fileobj: self.run_watcher(f))

    def unwatch(self, fileobj) -> None:
        entry = self.watchers.pop(fileobj, None)
        if entry is not None:
            self._unregister(entry[0])

    def run_watcher(self, fileobj) -> None:
        entry = self.watchers.get(fileobj)
        if entry is None:                   # an earlier callback of this round removed it
            return
        try:
            entry[1]()
        except Exception:
            log.exception("master: handler for fd %s failed", fileobj)
            self.unwatch(fileobj)

    def tick_interval(self) -> float:
        return 1.0

    def _next_timeout(self) -> float:
        timeout = self.tick_interval()
        if self._pool_short():          # fork the next idle children in the next round, unless paused
            timeout = min(timeout, max(0.0, self._pool_paused_until - time.monotonic()))
        if self.waiting:
            deadlines = [w.deadline for w in self.waiting.values() if w.deadline is not None]
            if deadlines:
                timeout = min(timeout, max(0.0, min(deadlines) - time.monotonic()))
        return timeout

    TICK_MIN = 0.05         # seconds: under a burst of connections the ticks run at most this often

    def tick(self) -> None:
        """Periodic work between events: every module's `master_tick` (scoreboard scrub, watchdog). Each loop
        round ends with one, but at most one per TICK_MIN (a login made two or three rounds, and their ticks
        were a tenth of the master's time per connection)."""
        now = time.monotonic()
        if now - self._ticked < self.TICK_MIN:
            return
        self._ticked = now
        self.modules.master_hook("master_tick", self)

    def stop_accepting(self) -> None:
        """Close every listener (a graceful shutdown); running sessions go on, idle children end."""
        for key in list(self.listeners):
            self._close_listener(key)
        self._pool_open = False
        self.renew_idle()

    def handle_signals(self) -> None:
        try:
            data = self._wake_r.recv(512)
        except BlockingIOError:
            return
        for signum in data:
            if trace.on: trace.msg("signal", 5, "handling signal %d", signum)
            if signum == signal.SIGCHLD:
                self.reap()
            elif signum == signal.SIGHUP:
                self.reload()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                log.log(NOTICE, "received signal %d, shutting down", signum)
                self.running = False
        self.reap()

    # -- a new connection: pre-steps, vetoes, fork -------------------------------------------------------------
    def accept(self, listener: socket.socket) -> None:
        """Accept what is waiting on one listener and take each connection through its pre-steps (if any
        module declares one), the vetoes and the fork."""
        for _ in range(BATCH):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("accept failed: %s", e.strerror)
                return
            conn = connection_of(sock, addr)
            if conn is None:
                continue
            if self.modules.presteps:
                self._pre_steps(Waiting(conn))
            else:
                self.admit(conn)

    def admit(self, conn: Connection) -> None:
        """The pre-steps are done: the vetoes decide, then a child serves the connection."""
        veto = self.modules.veto(self, conn)
        if veto is not None:
            self.refuse(conn, veto)
        elif not self.hand_over(conn):
            self.spawn(conn)

    def refuse(self, conn: Connection, veto: Veto) -> None:
        """Log the refusal, tell the master's listeners, close without a word."""
        if trace.on: trace.msg("inet", 4, "connection from %s refused: %s", conn.remote[0], veto.message)
        log.log(veto.level, "%s", veto.message)
        if veto.event:
            self.events.emit(veto.event, connection=conn, veto=veto)
        self.events.emit("core.connection-refused", connection=conn, veto=veto)
        conn.close()

    def _pre_steps(self, waiting: Waiting, events: int = 0) -> None:
        """Run the pre-steps as far as the bytes that arrived allow; a connection that must wait for more is
        watched edge-triggered (a peek leaves the bytes in the socket, so it would stay readable)."""
        conn = waiting.conn
        fd = conn.sock.fileno()
        steps = self.modules.presteps
        try:
            while waiting.step < len(steps):
                step = steps[waiting.step]
                if waiting.deadline is None:
                    seconds = step.timeout(self, conn)
                    if seconds is None:
                        waiting.step += 1
                        continue
                    waiting.deadline = time.monotonic() + seconds
                outcome = _read_step(self, step, conn, bool(events & select.EPOLLRDHUP))
                if outcome is None:
                    if fd not in self.waiting:
                        if len(self.waiting) >= self.waiting_max:
                            self._refuse_over_cap(conn)
                            return
                        self.waiting[fd] = waiting
                        self._register(fd, lambda ev, w=waiting: self._pre_steps(w, ev), _WAITING)
                    return
                if isinstance(outcome, Veto):
                    self._stop_waiting(fd)
                    self.refuse(conn, outcome)
                    return
                waiting.step += 1
                waiting.deadline = None
        except OSError as e:                    # the client reset the connection
            self._stop_waiting(fd)
            log.info("client left before the session started: %s", e.strerror)
            conn.close()
            return
        except Exception:
            self._stop_waiting(fd)
            log.exception("pre-step failed, connection from %s closed", conn.remote[0])
            conn.close()
            return
        self._stop_waiting(fd)
        self.admit(conn)

    def _refuse_over_cap(self, conn: Connection) -> None:
        """A connection that would wait for its pre-steps while `waiting_max` others already do (a flood of
        connections that send no header): closed at once. Logged at most once a second, with the count."""
        self._over_cap += 1
        now = time.monotonic()
        if now - self._over_cap_logged >= 1.0:
            log.warning("%d connection(s) refused (latest from %s): %d connections already wait for their "
                        "pre-steps", self._over_cap, conn.remote[0], self.waiting_max)
            self._over_cap, self._over_cap_logged = 0, now
        self.events.emit("core.connection-refused", connection=conn,
                         veto=Veto(f"too many connections in their pre-steps, refused connection from "
                                   f"{conn.remote[0]}"))
        conn.close()

    def _stop_waiting(self, fd: int) -> None:
        if self.waiting.pop(fd, None) is not None:
            self._unregister(fd)

    def _expire_waiting(self) -> None:
        now = time.monotonic()
        for fd, waiting in list(self.waiting.items()):
            if waiting.deadline is not None and waiting.deadline <= now:
                self._stop_waiting(fd)
                step = self.modules.presteps[waiting.step]
                try:
                    veto = step.expired(self, waiting.conn)
                except Exception:
                    log.exception("pre-step failed, connection from %s closed", waiting.conn.remote[0])
                    waiting.conn.close()
                    continue
                self.refuse(waiting.conn, veto)

    def spawn(self, conn: Connection) -> None:
        """Fork the session child, with a channel to it. The heap is frozen first so copy-on-write pages stay
        shared."""
        forked = self._fork_with_channel("a session")
        if forked is None:
            conn.close()
            return
        pid, ours, theirs = forked
        if pid == 0:
            self._child(conn, theirs)        # never returns
        conn.close()
        self._become_session(pid, ours, conn)
        if trace.on: trace.msg("inet", 5, "session %d spawned for %s#%d", pid, conn.remote[0], conn.remote[1])

    def _fork_with_channel(self, what: str) -> tuple[int, Channel | None, Channel | None] | None:
        """fork() with a fresh channel: (pid, master's end, None) in the master, (0, None, child's end) in the
        child; None (logged) when the channel or the fork failed."""
        gc.freeze()
        try:
            ours, theirs = Channel.pair()
        except OSError as e:
            log.error("cannot make a channel for %s: %s", what, e.strerror)
            return None
        try:
            pid = fork()
        except OSError as e:
            log.error("fork failed: %s", e.strerror)
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            ours.close()
            return 0, None, theirs
        theirs.close()
        return pid, ours, None

    def _become_session(self, pid: int, channel: Channel, conn: Connection) -> None:
        """Child `pid` serves `conn` now (forked for it or handed it): a session, counted from here on."""
        child = self.children[pid] = Child(pid, time.monotonic(), conn.local, conn.remote, channel,
                                           conn.sock_remote[0])
        self._register(channel.fileno(), lambda _, c=child: self._read_channel(c))
        self.events.emit("core.child-spawned", pid=pid, child=child, connection=conn)

    # -- the pool of pre-forked idle children (proftpy/prefork.py) -------------------------------------------------
    def pool_size(self) -> prefork.PoolSize:
        """The pool's sizes, read once per configuration (each loop round and each hand-over asks)."""
        return prefork.pool_size(self.config)

    def _pool_short(self) -> bool:
        return (self._pool_open and self.running and not self._no_pool()
                and self.pool_size().change(len(self.idle), self._pool_target) > 0)

    def _no_pool(self) -> bool:
        """No pool configured (every size 0) and no idle child left: nothing to fork or end."""
        return not self.idle and self.pool_size().ceiling == 0

    def top_up(self) -> None:
        """Keep between MinSpareServers and MaxSpareServers idle children: fork at most REFILL_BATCH per round
        (connections are accepted between rounds), end the extra ones."""
        if not self._pool_open or self._no_pool():
            return
        change = self.pool_size().change(len(self.idle), self._pool_target)
        if change < 0:
            for pid in list(self.idle)[change:]:         # the youngest
                self._retire(pid)
            return
        if change == 0 or time.monotonic() < self._pool_paused_until:
            return
        for _ in range(min(change, prefork.REFILL_BATCH)):
            if not self.fork_idle():
                self._pool_paused_until = time.monotonic() + 1.0
                return

    def fork_idle(self) -> bool:
        """Fork one idle child; False (logged) when that failed."""
        forked = self._fork_with_channel("an idle child")
        if forked is None:
            return False
        pid, ours, theirs = forked
        if pid == 0:
            self._idle_child(theirs)          # never returns
        self.idle[pid] = Idle(pid, ours)
        if trace.on: trace.msg("inet", 5, "idle child %d forked", pid)
        return True

    def hand_over(self, conn: Connection) -> bool:
        """Give the connection to the oldest idle child (the socket over its channel); False when none is idle
        or it cannot travel (the caller forks a child for it)."""
        if not self.idle:
            return False
        message = prefork.handover_message(conn.local, conn.remote, conn.sock_local, conn.sock_remote, conn.notes)
        while self.idle:
            pid = next(iter(self.idle))
            idle = self.idle[pid]
            idle_child.unnice(pid)                # it wakes up for the client at the master's priority
            try:
                idle.channel.send(message, [conn.sock.fileno()])
            except BadMessage as e:             # notes that are no JSON: the connection gets a fork
                log.warning("connection from %s not handed to an idle child: %s", conn.remote[0], e)
                return False
            except ChannelError as e:           # the child is gone (or stuck): end it, try the next
                log.warning("idle child %d cannot take a connection (%s)", pid, e)
                self._retire(pid)
                continue
            del self.idle[pid]
            self._pool_target = self.pool_size().taken(self._pool_target)
            conn.close()
            self._become_session(pid, idle.channel, conn)
            if trace.on: trace.msg("inet", 5, "session %d handed %s#%d", pid, conn.remote[0], conn.remote[1])
            return True
        return False

    def renew_idle(self) -> None:
        """End every idle child: they were forked with the configuration and master state of before (a reload,
        an ftpdctl action); the loop forks fresh ones, as many as at the start (StartServers)."""
        for pid in list(self.idle):
            self._retire(pid)
        self._pool_target = self.pool_size().initial()

    def _retire(self, pid: int) -> None:
        idle = self.idle.pop(pid)
        idle.channel.close()            # its end of the channel reads end-of-file: it exits
        self.retiring.add(pid)
        _kill(pid, signal.SIGTERM)

    def spawn_helper(self, title: str, run: Callable[[], None]) -> int | None:
        """Fork a helper process for a module (the metrics exporter): like a session child it first closes what
        belongs to the master and to the sessions, then runs `run()` and exits. It is no session: the master
        reaps it like any child (`core.child-exited` with `child` None) and the module decides what follows.
        Returns its pid, or None (logged) when fork failed."""
        gc.freeze()
        try:
            pid = fork()
        except OSError as e:
            log.error("cannot start %s: fork failed: %s", title, e.strerror)
            return None
        if pid:
            return pid
        def helper() -> None:
            self._close_inherited()
            _child_signals()
            proctitle.set(title)
            run()
        _run_then_exit(helper, title)

    def _child(self, conn: Connection, channel: Channel) -> NoReturn:
        def run() -> None:
            self._fresh_child(channel)
            conn.sock = inet.low_fd(conn.sock)
            serve_connection(conn, self.config, self.modules, self.state, channel)
        _run_then_exit(run)

    def _fresh_child(self, channel: Channel) -> None:
        """What a new child sets up before it knows its client, forked at accept or ahead of it (an idle
        child): close what belongs to the master and to other sessions, move the channel below select()'s
        limit, the signal dispositions of a session."""
        self._close_inherited()
        channel.sock = inet.low_fd(channel.sock)
        _child_signals()

    def _idle_child(self, channel: Channel) -> NoReturn:
        """An idle child: set up, then wait on the channel for a connection (HANDOVER) and serve it. The end of
        the channel (the master retired it, or is gone) or SIGTERM ends it."""
        def run() -> None:
            priority = idle_child.yield_cpu()           # first: even closing what it inherited yields
            self._fresh_child(channel)
            proctitle.set(proctitle.IDLE)
            if not idle_child.readable(channel, idle_child.WARM_AFTER):   # quiet: no burst takes them as they come
                idle_child.warm_up(self.config, self.modules, self.state, serve_connection,
                                   lambda: idle_child.readable(channel, 0))
            conn = idle_child.wait_for_connection(channel)
            if priority is not None:            # the master did it already (`idle_child.unnice`): for certain
                os.setpriority(os.PRIO_PROCESS, 0, priority)
            if conn is not None:
                serve_connection(conn, self.config, self.modules, self.state, channel)
        _run_then_exit(run)

    def _close_inherited(self) -> None:
        """In a fresh child: close what belongs to the master and to other sessions (listeners, watched fds,
        connections still in their pre-steps, other children's channels). Nothing is unregistered: the epoll set
        is the master's too, so the child only closes its own descriptor of it."""
        others = ([c.channel for c in self.children.values() if c.channel is not None]
                  + [i.channel for i in self.idle.values()])
        for obj in (list(self.listeners.values()) + list(self.watchers) + others
                    + [w.conn for w in self.waiting.values()]):
            if isinstance(obj, int):
                os.close(obj)
            else:
                obj.close()
        self.listeners.clear()
        self.watchers.clear()
        self.waiting.clear()
        self.children.clear()
        self.idle.clear()
        self.retiring.clear()
        self._handlers.clear()
        self._poller.close()
        signal.set_wakeup_fd(-1)
        self._wake_r.close()
        self._wake_w.close()

    # -- the channels ----------------------------------------------------------------------------------------------
    def _read_channel(self, child: Child, limit: int = BATCH) -> None:
        """Hand what a child sent to the modules' channel handlers (at most `limit` messages per round)."""
        for _ in range(limit):
            channel = child.channel
            if channel is None:
                return
            try:
                got = channel.recv()
            except ChannelClosed:
                self._close_channel(child)
                return
            except BadMessage as e:
                log.warning("session %d: channel message refused: %s", child.pid, e)
                continue
            if got is None:
                return
            self._dispatch(child, *got)

    def _dispatch(self, child: Child, message: Message, fds: list[int]) -> None:
        fn = self.modules.channel_handlers.get(message["type"])
        if fn is None:
            log.warning("session %d: no handler for the channel message %r, ignored", child.pid, message["type"])
            close_fds(fds)
            return
        try:
            fn(self, child, message, fds)
        except Exception:
            log.exception("session %d: handler of the channel message %r failed", child.pid, message["type"])

    def tell(self, child: Child, message: Message, fds: Iterable[int] = ()) -> bool:
        """Send a message (a notice, or an answer made with net.channel.answer) to a child without blocking;
        False, with a log line, when it cannot be sent (channel closed or full, message refused)."""
        if child.channel is None:
            return False
        try:
            child.channel.send(message, fds)
        except ChannelError as e:
            kind = message.get("type") if isinstance(message, dict) else message
            log.warning("session %d: cannot send %r over the channel: %s", child.pid, kind, e)
            return False
        return True

    def _close_channel(self, child: Child) -> None:
        if child.channel is not None:
            self._unregister(child.channel.fileno())
            child.channel.close()
            child.channel = None

    # -- children --------------------------------------------------------------------------------------------------
    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._reaped(pid, status)

    def _reaped(self, pid: int, status: int) -> None:
        """Read what the child sent before it ended, close its channel, tell the master's listeners."""
        child = self.children.pop(pid, None)
        if child is not None:
            self._read_channel(child, limit=REAP_READS)
            self._close_channel(child)
        idle = self.idle.pop(pid, None)
        if idle is not None:            # died waiting: replaced, after a pause (a child that cannot start)
            idle.channel.close()
            log.warning("idle child %d ended unexpectedly (status %d); a new one replaces it", pid, status)
            self._pool_paused_until = time.monotonic() + 1.0
        elif pid in self.retiring:
            self.retiring.discard(pid)
        elif os.WIFSIGNALED(status):
            log.info("session process %d killed by signal %d", pid, os.WTERMSIG(status))
        self.events.emit("core.child-exited", pid=pid, status=status, child=child)

    def reload(self) -> None:
        """SIGHUP: a configuration that fails to parse is refused and the old one keeps serving."""
        self.notify("RELOADING=1")
        try:
            new = load_config(self.opts)
        except ConfigError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            self.notify("READY=1")
            return
        old = self.config
        self.config = new
        try:
            self.bind()
        except OSError as e:
            log.error("reload refused, cannot bind: %s", e)
            self.config = old
            self.bind()
        else:
            log.log(NOTICE, "configuration reloaded from %s", self.opts.config_path)
        self.modules.master_hook("master_reload", self)
        self.preload()
        self.renew_idle()               # none may serve the old configuration; the loop forks new ones
        if self.config is new:
            self.events.emit("core.reloaded", config=new)
        self.notify("READY=1", f"STATUS={self.status()}")

    def stop(self) -> None:
        """Stop accepting, end the children (TERM, then KILL after a grace period), remove the PidFile."""
        self.notify("STOPPING=1")
        self.stop_accepting()
        for fd in list(self.waiting):
            waiting = self.waiting[fd]
            self._stop_waiting(fd)
            waiting.conn.close()
        self.renew_idle()
        for pid in list(self.children):
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while (self.children or self.retiring) and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.02)
        for pid in list(self.children) + list(self.retiring):
            _kill(pid, signal.SIGKILL)
        while self.children or self.retiring:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            self._reaped(pid, status)
        self.modules.master_hook("master_stop", self)
        log.log(NOTICE, "proftpy %s standalone mode SHUTDOWN", _version())

    def server_for(self, local: tuple[str, int]) -> Server | None:
        """The server (vhost) a connection to `local` belongs to (pre-steps read its directives)."""
        return pick_server(self.config, local[0], local[1])

    def status(self) -> str:
        n = len(self.children)
        idle = f", {len(self.idle)} idle" if self.idle else ""
        return f"{n} session{'s' if n != 1 else ''}{idle}"

    def notify(self, *states: str) -> None:
        if self._notifier is not None:
            self._notifier.notify("\n".join(states))


def fork() -> int:
    """os.fork() with MASTER_SIGNALS blocked across it, and in the child until it has its own dispositions
    (`_child_signals`).
    Until then a new child has the master's handlers and wake-up fd: a SIGTERM sent to it (an idle child retired
    right after its fork) would be written to the master's wake-up fd, and the master would take it for its own
    and shut down. A signal sent meanwhile waits, and then acts as the child's disposition says."""
    _sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
    try:
        pid = os.fork()
    except BaseException:
        _sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
        raise
    if pid:
        _sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
    return pid


def _child_signals() -> None:
    """A forked child's signal dispositions (session, idle or helper): the defaults, SIGHUP ignored (a reload is
    the master's); then the signals `fork()` blocked may come (the wake-up fd is gone: `_close_inherited`)."""
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)


def waiting_cap() -> int:
    """How many connections may wait in their pre-steps: WAITING_MAX, and no more than a quarter of the
    descriptors the master may open (the rest are for listeners, channels and what sessions need)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return WAITING_MAX
    return max(16, min(WAITING_MAX, soft // 4))


def _read_step(master: Master, step: PreStep, conn: Connection, hung_up: bool) -> int | Veto | None:
    """One try of a pre-step: peek, let it parse, consume exactly the bytes it claims. None: wait for more."""
    try:
        data = conn.sock.recv(step.peek, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        data = b""
    else:
        hung_up = hung_up or not data
    outcome = step.parse(master, conn, data, hung_up)
    if outcome is None or isinstance(outcome, Veto):
        return outcome
    if not 0 <= outcome <= len(data):
        raise ValueError(f"pre-step claims {outcome} of the {len(data)} bytes it saw")
    left = outcome
    while left:
        chunk = conn.sock.recv(left, socket.MSG_DONTWAIT)     # bytes already seen: they are there
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "connection closed during a pre-step")
        left -= len(chunk)
    return outcome


def connection_of(sock: socket.socket, peer: Any = None) -> Connection | None:
    """The accepted (or inetd's) socket as a Connection; None, with a log line and the socket closed, when the
    client is already gone."""
    try:
        return Connection.of(sock, peer)
    except OSError as e:        # the client reset the connection before the session began
        log.info("client left before the session started: %s", e.strerror)
        sock.close()
        return None


def serve_connection(conn: Connection, config: Config, loaded: ModuleSet, shared: States,
                     channel: Channel | None = None, fallback: Server | None = None) -> None:
    """Run one session on a connection (child process, or inetd mode, where the main server is the fallback
    because inetd chose the port, and where there is no master and so no channel)."""
    server = pick_server(config, conn.local[0], conn.local[1]) or fallback
    if server is None:
        conn.sock.sendall(f"500 Sorry, no server available to handle request on {conn.local[0]}\r\n".encode())
        conn.close()
        return
    session = Session(conn, server, config, loaded, shared, channel)
    tag_session(session)
    session.run()
    try:
        session.ctrl.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass        # the client may already be gone; nothing left to tell it
    session.ctrl.sock.close()


def merge_memory() -> None:
    """MemoryMerge: let ksmd give back the pages each session copies from the master (see ksm.py)."""
    try:
        how = ksm.enable()
    except OSError as e:
        log.warning("MemoryMerge: no kernel same-page merging here (%s); every session keeps its own copies",
                    e.strerror)
        return
    if ksm.running():
        log.info("MemoryMerge: memory marked mergeable (%s) and ksmd is running", how)
    else:
        log.info("MemoryMerge: memory marked mergeable (%s), but ksmd is off (%s is 0)", how, ksm.RUN_FILE)


def _run_then_exit(body: Callable[[], None], what: str = "session") -> NoReturn:
    """A forked child's whole life: `body()`, then exit without running the master's cleanup (os._exit); an
    exception is logged as an internal error, SystemExit keeps its status."""
    status = 0
    try:
        body()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
    except BaseException:
        log.exception("%s ended with an internal error", what)
        status = 1
    finally:
        logging.shutdown()
        os._exit(status)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass        # already gone: reaping will notice


def _systemd_notifier():
    if not os.environ.get("NOTIFY_SOCKET"):
        return None
    import sdnotify             # only under systemd: a master started otherwise does not load it
    return sdnotify.SystemdNotifier()


def _version() -> str:
    from . import __version__
    return __version__
