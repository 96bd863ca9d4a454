"""One client connection's life, in its own child process: greeting, command loop, timers, exit.

All per-connection state lives on the `Session` object that every handler receives; nothing is kept in module
globals. Facts several modules share are declared attributes below (the client, the account, the session root, the
protocol...); a module's own state is a typed object in `session.state` (see module.States).
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import proctitle, trace
from .access import dirs
from .access.limits import Who
from .config.tree import Config, Context, Server
from .dispatch import Request, split_command
from .events import EventBus
from .module import ModuleSet, States
from .net.channel import BadMessage, Channel, ChannelClosed, close_fds
from .net.connection import Connection
from .net.control import TOO_LONG, ControlChannel
from .net.netaddr import ClientAddr
from .reply import FtpError, Reply

if TYPE_CHECKING:
    from .access.dirs import FtpaccessCache
    from .auth import Account, AuthChain
    from .config.tree import Section
    from .fs import FS

log = logging.getLogger("proftpy")


class Timer:
    """A session deadline: when it passes, `on_expire(session)` runs (it usually says 421 and ends the session)."""

    def __init__(self, seconds: float, on_expire: Callable[["Session"], None]):
        self.seconds = seconds
        self.on_expire = on_expire
        self.deadline = time.monotonic() + seconds

    def reset(self) -> None:
        self.deadline = time.monotonic() + self.seconds


@dataclass
class Totals:
    """What the session moved (ProFTPD's session.total_* counters); mod_log counts after each command, Display
    variables and STAT read it."""

    bytes_in: int = 0           # completed uploads
    bytes_out: int = 0          # completed downloads
    bytes_xfer: int = 0         # completed transfers either way
    files_in: int = 0
    files_out: int = 0
    files_xfer: int = 0
    bytes_moved: int = 0        # every byte over data connections: listings and broken transfers too
    moved_in: int = 0           # ... of them, those the client sent (ProFTPD's session.total_bytes_in)
    moved_out: int = 0          # ... and those it was sent (session.total_bytes_out: listings included)


class _KeptLevel(Context):
    """The session level's context: a directive's value is kept once read (the same object a new lookup finds:
    nothing under a session changes the sections of its chain), except while tracing, where each lookup is
    traced. A context at a path whose chain is the same (no `<Directory>`, no `.ftpaccess` there) is this one."""

    def __init__(self, ctx: Context, key: tuple):
        super().__init__(ctx.chain, ctx.server)
        self.key = key                          # (server, anon, home) it was built for
        self.values: dict[str, Any] = {}

    def get(self, name: str, *default: Any) -> Any:
        if default or trace.on:
            return Context.get(self, name, *default)
        try:
            return self.values[name]
        except KeyError:
            value = self.values[name] = Context.get(self, name)
            return value


class Session:
    """State of one FTP session. Created in the child right after fork (or in inetd mode)."""

    def __init__(self, conn: Connection, server: Server, config: Config, modules: ModuleSet,
                 shared: States | None = None, channel: Channel | None = None):
        self.ctrl = ControlChannel(conn.sock, server.get("CommandBufferSize"))   # the one control socket
        self.server = server
        self.config = config
        self.modules = modules
        self.dispatcher = modules.dispatcher.for_config(config)   # without the hooks this configuration idles
        self.shared = shared if shared is not None else States()   # the master's module state, inherited
        self.state = States()                   # this session's module state
        self.events = EventBus()
        self.local_addr, self.local_port = conn.local
        self.local_name = self.local_addr       # the server's DNS name (ProFTPD's ServerFQDN) once resolved
        self.client = ClientAddr.plain(conn.remote[0])   # the client as ACLs see it (mod_access resolves it)
        self.remote_port = conn.remote[1]
        self.notes = conn.notes                 # ProFTPD's session.notes: what the pre-steps learned about the
                                                # connection, the TLS facts (FTPS, TLS_PROTOCOL...); %{note:X}
        # the control socket's own addresses: they differ from local_addr/client when a PROXY header named the
        # client (and, with UseProxiedServerAddress, the address it connected to). Passive listeners bind on
        # socket_local; passive data connections through the proxy come from socket_peer.
        self.socket_local, self.socket_peer = conn.sock_local[0], conn.sock_remote[0]
        self.channel = channel                  # to the master, None in inetd mode (see read_channel)
        self.protocol = "ftp"                   # "ftps" once the control channel is encrypted (set_protocol);
                                                # "ssh2", then "sftp", on a server with SFTPEngine on (mod_sftp)
        self.command_loop: Callable[["Session"], None] | None = None   # a module's loop instead of FTP's (mod_sftp's
                                                # SSH, set by its `transport`: ProFTPD's pr_cmd_set_handler)
        self.responses_blocked = False          # FTP replies are dropped (ProFTPD's pr_response_block: mod_sftp)
        self.started = time.time()
        self.authenticated = False
        self.user: str | None = None            # the login name once authenticated
        self.user_arg: str | None = None        # what the client gave to USER (until PASS fails)
        self.auth: AuthChain | None = None      # the server's AuthOrder (mod_auth sets it)
        self.account: Account | None = None     # the account logged in as
        self.groups: tuple[str, ...] | None = None   # its group names, primary first (None: not known yet)
        self.anon: Section | None = None        # the <Anonymous> section of an anonymous session
        self.home: str | None = None            # the home directory as the configuration names it
        self.conn_class: str | None = None
        self.masquerade: str | None = None      # MasqueradeAddress, resolved
        self.ftpaccess: FtpaccessCache | None = None   # .ftpaccess files, when mod_access reads them
        self.fs: FS | None = None               # the one door for paths, once logged in
        self.totals = Totals()
        self.greeting_lines: list[str] = []   # lines modules put before the 220 greeting's text (ExecOnConnect)
        self.closing = False
        self.end_reason = ""
        self.end_cause = ""                     # ProFTPD's disconnect reason where a module asks: "module-acl" (a
                                                # module's policy: MaxLoad, mod_wrap2), "signal", "error" (an
                                                # exception ended the session); see `end`
        self.timers: dict[str, Timer] = {}
        self._contexts: dict[tuple, Any] = {}   # context() answers at a path during one command
        self._level: _KeptLevel | None = None   # the session level (no path), with the values read from it
        self._walked: dict[tuple, dict] = {}    # .ftpaccess sections by directory during one command, for each
                                                # (server, anon, home, fs, ftpaccess) they were found with

    @property
    def remote_addr(self) -> str:
        return self.client.ip

    @property
    def remote_name(self) -> str:
        return self.client.name

    @property
    def chroot(self) -> str | None:
        """The session root as the configuration names it (DefaultRoot or <Anonymous>); None when unconfined."""
        return self.fs.jail if self.fs is not None else None

    def who(self, arg: str | None = None) -> Who:
        """The facts a `<Limit>` is decided on for this session (arg: the command argument, for filters)."""
        return Who(self.client, self.user if self.authenticated else None,
                   self.groups if self.authenticated else None, self.conn_class, arg)

    # -- configuration -------------------------------------------------------------------------------------------
    def context(self, path: str | None = None):
        """The effective configuration chain for a path as this session sees it on disk (`VPath.real`), or the
        session level without one. Under a kernel chroot the path is first put back in the configuration's terms
        (the chroot directory in front), so `<Directory /home/alice/up>` still matches. Kept for the rest of the
        command (`handle_line` forgets them): a LIST asked some 30 times, each walking up the directories for
        `.ftpaccess` files. The key holds the objects themselves, so none can be freed and its id reused while
        an answer made for it is kept."""
        if path is None:
            return self._session_level()
        key = (path, self.server, self.anon, self.home, self.fs, self.ftpaccess)
        found = self._contexts.get(key)
        if found is None:
            found = self._context(path, self._walked.setdefault(key[1:], {}))
            level = self._session_level()
            if len(found.chain) == len(level.chain) and found.chain[0] is level.chain[0]:
                found = level       # no <Directory> and no .ftpaccess here: the session level, values kept
            self._contexts[key] = found
        return found

    def _session_level(self) -> _KeptLevel:
        """The context without a path: the `<Anonymous>` block and the server, no `<Directory>` and no
        `.ftpaccess`, so it depends on nothing but the objects in its key (a login or mod_ifsession replaces
        them, it does not change them). Kept across commands: every command asks for it."""
        key = (self.server, self.anon, self.home)
        level = self._level
        if level is None or level.key != key:
            level = self._level = _KeptLevel(self._context(None), key)
        return level

    def _context(self, path: str | None, walked: dict | None = None):
        dynamic = []
        if path is not None:
            if self.fs is not None:
                path = self.fs.config_path(path)
            if self.ftpaccess is not None:
                dynamic = self.ftpaccess.sections(path, walked)
        return self.server.context(self.anon, path, self.home, dynamic)

    def command_context(self, req: Request):
        """The configuration where a command acts: its path's place (as `<Limit>` sees it), else the current
        directory; the session level before login. For what a `<Directory>` may set about a command after it ran
        (mod_exec's ExecOnCommand, mod_redis's RedisLogOnCommand)."""
        if self.fs is None or not self.authenticated:
            return self.context()
        row, path = self.dispatcher.path_argument(req.name, req.arg)
        if path is not None and row is not None and row.path is not None:
            try:
                return self.context(dirs.target(self.fs, row.path.exact, path).real)
            except (OSError, FtpError):
                pass            # a bad path: the command answers for it; the current directory decides here
        return self.context(self.fs.real_of(self.fs.cwd))

    def conf(self, name: str, path: str | None = None) -> Any:
        """A directive's effective value at a path, or at the session level (whose values are kept: _KeptLevel)."""
        return (self._session_level() if path is None else self.context(path)).get(name)

    # -- replies and timers --------------------------------------------------------------------------------------
    def send(self, reply: Reply) -> None:
        if self.responses_blocked:
            return                              # another protocol speaks on this connection (mod_sftp)
        if trace.on: trace.msg("response", 1, "%s", reply.format().decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n"))
        self.ctrl.send(reply.format())

    def reply(self, code: int, text: str, lines: list[str] | None = None) -> None:
        self.send(Reply(code, text, lines or []))

    def set_protocol(self, protocol: str) -> None:
        """The session's protocol changed ("ftps" after AUTH TLS): listeners of `core.protocol` (the scoreboard)
        write it where others read it."""
        self.protocol = protocol
        self.events.emit("core.protocol", session=self, protocol=protocol)

    def greeting(self) -> Reply:
        return self.modules.greeting(self)

    def set_timer(self, name: str, seconds: float | None, on_expire: Callable[["Session"], None]) -> None:
        """Start (or restart) a named deadline; `seconds` of 0/None removes it (ProFTPD: 0 disables)."""
        if trace.on: trace.msg("timer", 7, "%s timer '%s'%s", "removed" if not seconds else "set", name, f", triggering in {seconds} seconds" if seconds else "")
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

    def end(self, reason: str, cause: str = "") -> None:
        self.end_reason = self.end_reason or reason
        self.end_cause = self.end_cause or cause
        self.closing = True

    def _next_timeout(self) -> float | None:
        if not self.timers:
            return None
        return max(0.0, min([t.deadline for t in self.timers.values()]) - time.monotonic())   # (a list: no
                                                                                # generator frame per command)

    def _fire_timers(self) -> None:
        now = time.monotonic()
        for timer in [t for t in self.timers.values() if t.deadline <= now]:
            if trace.on: trace.msg("timer", 4, "timer expired after %s seconds", timer.seconds)
            timer.on_expire(self)
            if self.closing:
                return
            timer.reset()

    def wait_readable(self, until: float | None = None) -> bool | None:
        """Wait until the control socket is readable (FTP's command loop, and a module's own: mod_sftp's), firing
        the session's timers and reading the master's notices meanwhile; False once the session is ending, None
        when `until` (a time.monotonic()) came first (mod_sftp's wait for a transfer held back by TransferRate)."""
        while not self.closing:
            if self.channel is not None and self.channel.queued:
                self.read_channel()             # notices that came while a request waited for its answer
                continue
            timeout = self._next_timeout()
            if until is not None:
                left = until - time.monotonic()
                if left <= 0:
                    return None
                timeout = left if timeout is None else min(timeout, left)
            if self.ctrl.wait(timeout):
                return not self.closing
            self._fire_timers()
        return False

    # -- the session ---------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Greeting, then commands until QUIT, EOF, a timeout or a module ends the session."""
        proctitle.set(f"connected: {self.remote_name} ({self.remote_addr}:{self.remote_port})")
        self.set_timer("idle", self.conf("TimeoutIdle"), _idle_expired)
        opened = False
        if self.channel is not None:
            self.ctrl.watch(self.channel.fileno(), self.read_channel)
        try:
            self.modules.start_session(self)
            if not self.closing:            # a connection refused at once (ftpshut, <Limit LOGIN>) is no session
                log.info("%s session opened.", "FTP" if self.command_loop is None else "SSH2")
                opened = True
            self.events.emit("core.connect", session=self)
            if self.command_loop is not None:
                if not self.closing:
                    self.command_loop(self)
                self.closing = True
            elif not self.closing:
                greeting = self.greeting()
                greeting.lines = self.greeting_lines + greeting.lines
                self.send(greeting)
            while not self.ctrl.closed and self.wait_readable():
                line = self.ctrl.read_line()
                if line is None:
                    if trace.on: trace.msg("command", 6, "client sent EOF, closing control connection")
                    self.end("disconnected")
                    break
                self.reset_timer("idle")
                self.handle_line(line)
        except Exception:
            self.end_cause = "error"        # an untimely death: core.exit listeners see it, then it is logged
            raise
        finally:
            if trace.on: trace.msg("command", 6, "session ends: %s", self.end_reason or "closed")
            self.events.emit("core.exit", session=self)
            if opened:
                log.info("%s session closed.", "FTP" if self.command_loop is None else "SSH2")

    def read_channel(self) -> None:
        """Hand the master's notices to the modules' `notice_handlers` (runs while the session waits for a
        command). A module asks the master with `session.channel.request(message, fds, timeout)`. A master that
        is gone leaves the session running, as ProFTPD's sessions outlive their master."""
        channel = self.channel
        while channel is not None and not self.closing:
            if channel.queued:
                message, fds = channel.queued.pop(0)
            else:
                try:
                    got = channel.recv()
                except BadMessage as e:
                    log.warning("channel message from the master refused: %s", e)
                    continue
                except ChannelClosed:
                    self.ctrl.unwatch(channel.fileno())
                    channel.close()
                    self.channel = None
                    return
                if got is None:
                    return
                message, fds = got
            if "re" in message:                     # the late answer to a request that gave up waiting
                close_fds(fds)
                continue
            self.modules.notice(self, message, fds)
        if self.closing:                # a notice ended the session: stop waiting for the client's next command
            try:
                self.ctrl.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass                    # the client is gone already

    def handle_line(self, line: str | object, during_transfer: bool = False) -> None:
        """Answer one command line. `during_transfer` (transfer/watch.py): the command arrived while a transfer
        runs, so the process title and the configuration contexts stay the transfer's."""
        if line is TOO_LONG:
            self.send(Reply(500, "Command line too long"))
            return
        assert isinstance(line, str)
        if "\0" in line:
            self.send(Reply(501, "Illegal character (NUL) in command"))
            return
        if not during_transfer:
            self._contexts.clear()
            self._walked.clear()
        name, arg = split_command(line)
        if not name:
            self.send(Reply(500, "Invalid command: try being more creative"))
            return
        req = Request(name.upper(), arg, line, during_transfer=during_transfer)
        if trace.on: trace.msg("command", 5, "received command '%s'", req.display)
        if not during_transfer:
            self.title_for(req)
        try:
            reply = self.dispatcher.dispatch(self, req)
        except Exception:
            log.exception("internal error handling %s%s", req.display, " during a transfer" * during_transfer)
            reply = Reply(451, "Requested action aborted: local error in processing")
        if reply is not None:
            self.send(reply)

    def title_for(self, req: Request) -> None:
        if self.authenticated:
            proctitle.set(f"{self.client.name}: {self.user}: {req.display}")
        else:
            proctitle.set(f"{self.remote_addr}:{self.remote_port}: {req.display}")


def _idle_expired(session: Session) -> None:
    seconds = int(session.timers["idle"].seconds)
    session.timeout_exit(421, f"Idle timeout ({seconds} seconds): closing control connection", "core.timeout-idle")
