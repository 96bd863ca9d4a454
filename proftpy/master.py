"""The master process (the arbiter): binds listeners, accepts, forks one child per connection, reaps children,
handles signals in its loop (never inside a handler), reloads on SIGHUP and stops on SIGTERM.

It never speaks FTP beyond a silent close and never touches user files.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import select
import signal
import socket
import time
from dataclasses import dataclass

from . import ksm, modules, proctitle
from .config.errors import ConfigError
from .config.parser import parse_file
from .config.tree import Config, Server
from .events import EventBus
from .log import NOTICE, tag_session
from .module import ModuleSet, States
from .net import inet
from .net.connection import Connection, plain_ip
from .session import Session

log = logging.getLogger("proftpy")
STOP_GRACE = 1.5        # seconds children get after SIGTERM before SIGKILL


@dataclass
class Options:
    """Command-line settings that override the configuration."""

    config_path: str
    defines: frozenset[str] = frozenset()
    ipv6: bool | None = None        # -4 / -6
    foreground: bool = False
    debug: int = 0


@dataclass
class Child:
    pid: int
    started: float
    remote: str


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
    """ProFTPD's vhost choice: a server bound to this address and port, else DefaultServer, else the main one."""
    on_port = [s for s in config.servers if s.get("Port") == local_port]
    for server in on_port:
        if local_addr in server.addresses:
            return server
    for server in on_port:
        if server.get("DefaultServer"):
            return server
    if config.main in on_port and not config.main.get("SocketBindTight"):
        return config.main
    return None


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
        self.events = EventBus()            # the master's own events
        self.watchers: dict = {}            # fileobj -> callback(): extra fds modules wait for (control socket)
        self._wake_r, self._wake_w = socket.socketpair()
        self._notifier = _systemd_notifier()

    # -- setup ---------------------------------------------------------------------------------------------------
    def bind(self) -> None:
        """Open every listener the configuration asks for; keep sockets that stay the same across reloads."""
        wanted = listen_keys(self.config, use_ipv6_for(self.config, self.opts))
        for key in list(self.listeners):
            if key not in wanted:
                self.listeners.pop(key).close()
        main = self.config.main
        for (host, port) in wanted:
            if (host, port) not in self.listeners:
                self.listeners[(host, port)] = inet.bind_listener(host, port, main.get("TCPBackLog"),
                                                                  main.get("SocketOptions"))

    def preload(self) -> None:
        """Build what every session needs before the first fork, so children share it instead of each
        building (and privately copying) its own."""
        proctitle.terse = self.config.main.get("ProcessTitles") == "terse"
        self.config.build_indexes()
        from . import fs, listing  # noqa: F401 - imported here so every child shares them
        gc.collect()
        gc.freeze()
        if self.config.main.get("MemoryMerge"):
            merge_memory()

    def install_signals(self) -> None:
        """Signals only wake the loop (set_wakeup_fd writes the signal number); the loop handles them."""
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            signal.signal(sig, lambda s, f: None)

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Start, then serve until SIGTERM/SIGINT; returns the exit status."""
        self.start()
        return self.serve()

    def start(self) -> None:
        """Everything before the first accept: signals, module setup (scoreboard, control socket), preloading.
        A module that cannot start raises SystemExit with the reason."""
        self.install_signals()
        proctitle.set(proctitle.MASTER)
        self.modules.master_start(self)
        self.preload()

    def serve(self) -> int:
        """The accept loop, until SIGTERM/SIGINT."""
        self.notify("READY=1", f"STATUS={self.status()}")
        log.log(NOTICE, "proftpy %s standalone mode STARTUP", _version())
        while self.running:
            fds = [self._wake_r] + list(self.listeners.values()) + list(self.watchers)
            try:
                ready, _, _ = select.select(fds, [], [], self.tick_interval())
            except InterruptedError:
                continue
            for fd in ready:
                if fd is self._wake_r:
                    self.handle_signals()
                elif fd in self.watchers:
                    self.run_watcher(fd)
                elif self.running and fd in self.listeners.values():
                    self.accept(fd)
            self.tick()
        self.stop()
        return 0

    def watch(self, fileobj, callback) -> None:
        """Let a module wait in the master loop: `callback()` runs when `fileobj` is readable. Forked children
        close every watched object."""
        self.watchers[fileobj] = callback

    def unwatch(self, fileobj) -> None:
        self.watchers.pop(fileobj, None)

    def run_watcher(self, fileobj) -> None:
        callback = self.watchers.get(fileobj)
        if callback is None:                # an earlier callback of this round removed it
            return
        try:
            callback()
        except Exception:
            log.exception("master: handler for fd %s failed", fileobj)
            self.unwatch(fileobj)

    def tick_interval(self) -> float:
        return 1.0

    def tick(self) -> None:
        """Periodic work between events: every module's `master_tick` (scoreboard scrub, watchdog)."""
        self.modules.master_hook("master_tick", self)

    def stop_accepting(self) -> None:
        """Close every listener (a graceful shutdown); running sessions go on."""
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()

    def handle_signals(self) -> None:
        try:
            data = self._wake_r.recv(512)
        except BlockingIOError:
            return
        for signum in data:
            if signum == signal.SIGCHLD:
                self.reap()
            elif signum == signal.SIGHUP:
                self.reload()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                log.log(NOTICE, "received signal %d, shutting down", signum)
                self.running = False
        self.reap()

    def accept(self, listener: socket.socket) -> None:
        """Accept what is waiting on one listener; enforce MaxInstances and MaxConnectionRate silently."""
        for _ in range(64):
            try:
                conn, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("accept failed: %s", e.strerror)
                return
            remote = plain_ip(addr[0])
            reason = self.refuse_reason()
            if reason:
                log.log(NOTICE, "%s reached, refused connection from %s", reason, remote)
                conn.close()
                continue
            self.spawn(conn, remote)

    def refuse_reason(self) -> str | None:
        main = self.config.main
        limit = main.get("MaxInstances")
        if limit is not None and len(self.children) >= limit:
            return "MaxInstances"
        rate = main.get("MaxConnectionRate")
        if rate is not None:
            count, interval = rate
            since = time.monotonic() - interval
            if sum(1 for c in self.children.values() if c.started >= since) + 1 > count:
                return "MaxConnectionRate"
        return None

    def spawn(self, conn: socket.socket, remote: str) -> None:
        """Fork the session child. The heap is frozen first so copy-on-write pages stay shared."""
        gc.freeze()
        try:
            pid = os.fork()
        except OSError as e:
            log.error("fork failed: %s", e.strerror)
            conn.close()
            return
        if pid == 0:
            self._child(conn)        # never returns
        conn.close()
        self.children[pid] = Child(pid, time.monotonic(), remote)

    def _child(self, conn: socket.socket) -> None:
        status = 0
        try:
            for sock in list(self.listeners.values()) + list(self.watchers):
                sock.close()
            self.watchers.clear()
            signal.set_wakeup_fd(-1)
            self._wake_r.close()
            self._wake_w.close()
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            serve_connection(conn, self.config, self.modules, self.state)
        except BaseException:
            log.exception("session ended with an internal error")
            status = 1
        finally:
            logging.shutdown()
            os._exit(status)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.pop(pid, None)
            if os.WIFSIGNALED(status):
                log.info("session process %d killed by signal %d", pid, os.WTERMSIG(status))

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
        self.notify("READY=1", f"STATUS={self.status()}")

    def stop(self) -> None:
        """Stop accepting, end the children (TERM, then KILL after a grace period), remove the PidFile."""
        self.notify("STOPPING=1")
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()
        for pid in list(self.children):
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.children and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.02)
        for pid in list(self.children):
            _kill(pid, signal.SIGKILL)
        while self.children:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            self.children.pop(pid, None)
        self.modules.master_hook("master_stop", self)
        log.log(NOTICE, "proftpy %s standalone mode SHUTDOWN", _version())

    def status(self) -> str:
        n = len(self.children)
        return f"{n} session{'s' if n != 1 else ''}"

    def notify(self, *states: str) -> None:
        if self._notifier is not None:
            self._notifier.notify("\n".join(states))


def serve_connection(sock: socket.socket, config: Config, loaded: ModuleSet, shared: States,
                     fallback: Server | None = None) -> None:
    """Run one session on a connected socket (child process, or inetd mode, where the main server is the
    fallback because inetd chose the port)."""
    try:
        conn = Connection.of(sock)
    except OSError as e:        # the client reset the connection before the session began (getpeername fails)
        log.info("client left before the session started: %s", e.strerror)
        sock.close()
        return
    server = pick_server(config, conn.local[0], conn.local[1]) or fallback
    if server is None:
        sock.sendall(f"500 Sorry, no server available to handle request on {conn.local[0]}\r\n".encode())
        sock.close()
        return
    session = Session(conn, server, config, loaded, shared)
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
