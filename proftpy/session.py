"""One client connection's life, in its own child process: greeting, command loop, timers, exit.

All per-connection state lives on the `Session` object that every handler receives; nothing is kept in module
globals. Modules keep their own per-session state in `session.state[<module name>]`.
"""

from __future__ import annotations

import logging
import posixpath
import socket
import time
from typing import Any, Callable

from . import proctitle
from .config.tree import Config, Server
from .dispatch import Cmd, Dispatcher, split_command
from .events import EventBus
from .net.control import TOO_LONG, ControlChannel
from .reply import Reply

log = logging.getLogger("proftpy")


def normalize_ip(addr: str) -> str:
    """`::ffff:1.2.3.4` -> `1.2.3.4`, so IPv4 clients look the same on dual-stack listeners."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


class Timer:
    """A session deadline: when it passes, `on_expire(session)` runs (it usually says 421 and ends the session)."""

    def __init__(self, seconds: float, on_expire: Callable[["Session"], None]):
        self.seconds = seconds
        self.on_expire = on_expire
        self.deadline = time.monotonic() + seconds

    def reset(self) -> None:
        self.deadline = time.monotonic() + self.seconds


class Session:
    """State of one FTP session. Created in the child right after fork (or in inetd mode)."""

    def __init__(self, sock: socket.socket, server: Server, config: Config, dispatcher: Dispatcher,
                 modules: list[Any] = (), services: dict[str, Any] | None = None):
        self.sock = sock
        self.server = server
        self.config = config
        self.dispatcher = dispatcher
        self.modules = list(modules)
        self.services = services or {}       # what the master shares with children (scoreboard path, TLS ctx)
        self.events = EventBus()
        local, remote = sock.getsockname(), sock.getpeername()
        self.local_addr, self.local_port = normalize_ip(local[0]), local[1]
        self.remote_addr, self.remote_port = normalize_ip(remote[0]), remote[1]
        self.remote_name = self.remote_addr
        self.local_name = self.local_addr      # the server's DNS name (ProFTPD's ServerFQDN) once UseReverseDNS is known
        self.ctrl = ControlChannel(sock, server.get("CommandBufferSize"))
        self.started = time.time()
        self.authenticated = False
        self.user: str | None = None          # the login name once authenticated
        self.anon = None                      # the <Anonymous> section of an anonymous session
        self.conn_class: str | None = None
        self.closing = False
        self.end_reason = ""
        self.timers: dict[str, Timer] = {}
        self.state: dict[str, Any] = {}       # per-module session state, keyed by module name
        self.cwd = "/"
        self.fs = None                        # fs.FS once logged in

    # -- configuration -------------------------------------------------------------------------------------------
    def context(self, path: str | None = None):
        """The effective configuration chain for a path as this session sees it on disk (`VPath.real`), or the
        session level without one. Under a kernel chroot the path is first put back in the configuration's terms
        (the chroot directory in front), so `<Directory /home/alice/up>` still matches."""
        if path is not None:
            path = self.config_path(path)
        home = self.state.get("home")
        dynamic = self.state.get("ftpaccess", lambda p: [])(path) if path is not None else []
        return self.server.context(self.anon, path, home, dynamic)

    def config_path(self, real: str) -> str:
        """A path as the configuration names it: with the chroot directory in front under a kernel chroot."""
        root = self.state.get("chroot_path")
        if not root or self.fs is None or not getattr(self.fs, "_kernel_chroot", False):
            return real
        return posixpath.normpath(root.rstrip("/") + "/" + real.lstrip("/")) if real != "/" else root

    def conf(self, name: str, path: str | None = None) -> Any:
        return self.context(path).get(name)

    def masquerade_address(self) -> str | None:
        return self.state.get("masquerade")

    def feature_enabled(self, command, line: str) -> bool:
        check = self.state.get("feat_filter")
        return check(command, line) if check else True

    # -- replies and timers --------------------------------------------------------------------------------------
    def send(self, reply: Reply) -> None:
        self.ctrl.send(reply)

    def reply(self, code: int, text: str, lines: list[str] | None = None) -> None:
        self.send(Reply(code, text, lines or []))

    def set_timer(self, name: str, seconds: float | None, on_expire: Callable[["Session"], None]) -> None:
        """Start (or restart) a named deadline; `seconds` of 0/None removes it (ProFTPD: 0 disables)."""
        if not seconds:
            self.timers.pop(name, None)
        else:
            self.timers[name] = Timer(seconds, on_expire)

    def reset_timer(self, name: str) -> None:
        timer = self.timers.get(name)
        if timer:
            timer.reset()

    def timeout_exit(self, code: int, text: str, event: str) -> None:
        """Say why, tell listeners (mod_ban), and end the session."""
        self.send(Reply(code, text))
        self.events.emit(event, session=self)
        self.end(event)

    def end(self, reason: str) -> None:
        self.end_reason = self.end_reason or reason
        self.closing = True

    def _next_timeout(self) -> float | None:
        if not self.timers:
            return None
        return max(0.0, min(t.deadline for t in self.timers.values()) - time.monotonic())

    def _fire_timers(self) -> None:
        now = time.monotonic()
        for timer in [t for t in self.timers.values() if t.deadline <= now]:
            timer.on_expire(self)
            if self.closing:
                return
            timer.reset()

    # -- the session ---------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Greeting, then commands until QUIT, EOF, a timeout or a module ends the session."""
        proctitle.set(f"connected: {self.remote_name} ({self.remote_addr}:{self.remote_port})")
        self.set_timer("idle", self.conf("TimeoutIdle"), _idle_expired)
        opened = False
        try:
            for mod in self.modules:
                init = getattr(mod, "session_init", None)
                if init is not None and not self.closing:
                    init(self)
            if not self.closing:            # a connection refused at once (ftpshut, <Limit LOGIN>) is no session
                log.info("FTP session opened.")
                opened = True
            self.events.emit("core.connect", session=self)
            if not self.closing:
                self.send(self.greeting())
            while not self.closing and not self.ctrl.closed:
                if not self.ctrl.wait(self._next_timeout()):
                    self._fire_timers()
                    continue
                line = self.ctrl.read_line()
                if line is None:
                    self.end("disconnected")
                    break
                self.reset_timer("idle")
                self.handle_line(line)
        finally:
            self.events.emit("core.exit", session=self)
            if opened:
                log.info("FTP session closed.")

    def greeting(self) -> Reply:
        from .modules.core import greeting
        return greeting(self)

    def handle_line(self, line: str | object) -> None:
        if line is TOO_LONG:
            self.send(Reply(500, "Command line too long"))
            return
        assert isinstance(line, str)
        if "\0" in line:
            self.send(Reply(501, "Illegal character (NUL) in command"))
            return
        name, arg = split_command(line)
        if not name:
            self.send(Reply(500, "Invalid command: try being more creative"))
            return
        cmd = Cmd(name.upper(), arg, line)
        self.title_for(cmd)
        try:
            reply = self.dispatcher.dispatch(self, cmd)
        except Exception:
            log.exception("internal error handling %s", cmd.display)
            reply = Reply(451, "Requested action aborted: local error in processing")
        if reply is not None:
            self.send(reply)

    def title_for(self, cmd: Cmd) -> None:
        if self.authenticated:
            proctitle.set(f"{self.remote_name}: {self.user}: {cmd.display}")
        else:
            proctitle.set(f"{self.remote_addr}:{self.remote_port}: {cmd.display}")


def _idle_expired(session: Session) -> None:
    seconds = int(session.timers["idle"].seconds)
    session.timeout_exit(421, f"Idle timeout ({seconds} seconds): closing control connection", "core.timeout-idle")
