"""mod_exec: the administrator's programs run at session events (ProFTPD's contrib/mod_exec.c, 1.3.8).

    ExecOnConnect        session_init, before the greeting; sendStdout lines lead the 220 greeting; again for the
                         new server after HOST chose one (its lines then 220 replies of their own)
    ExecBeforeCommand    PRE_CMD of the commands listed (names, <Limit> groups READ WRITE DIRS, ALL); never vetoes
    ExecOnCommand        POST_CMD; sendStdout lines end the command's reply (after its own text, as ProFTPD)
    ExecOnError          POST_CMD_ERR
    ExecOnExit           the session's end (core.exit)
    ExecOnEvent          any event by name, in the process that emits it: a session's events in the session, the
                         master's (MaxInstances = core.max-instances, MaxConnectionRate = core.max-connection-rate,
                         bans...) in the master; `name*` runs as root, `name~` as the logged-in user
    ExecOnRestart        in the master, after SIGHUP installed the new configuration

Every run is synchronous: the session (or the master) waits for the program, bounded by ExecTimeout. Before login
a program runs as the server's User/Group (supplementary groups dropped; the daemon's own ids without User), after
login as the logged-in user inside the session's root, as ProFTPD. How a program is started, and what proftpy does
more safely than ProFTPD, is in exec_run.py; the variables are in exec_vars.py; docs/exec.md has the whole story.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..auth import server_ids
from ..config.registry import ANON, DIR, FTPACCESS, SVG, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Options, Path
from ..dispatch import POST_CMD, POST_CMD_ERR, PRE_CMD, Hook, Request
from ..module import ANY, Listener, MasterView, Module
from . import exec_run
from .exec_run import Identity, Outcome
from .exec_vars import Scope, SentUser, expand, note_of
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..config.tree import Config, Server
    from ..session import Session

NAME = "mod_exec.c"
TAG = "mod_exec/0.9.16"         # ProFTPD 1.3.8's mod_exec, as its ExecLog lines name it
log = logging.getLogger("proftpy")
OPTIONS = ("logStdout", "logStderr", "sendStdout", "useStdin")
MASTER_EVENTS = {"maxconnectionrate": "core.max-connection-rate", "maxinstances": "core.max-instances"}
ROOT, USER, SERVER_IDS = "root", "user", "server"


# -- directive values ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Program:
    path: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Triggered:
    """ExecBeforeCommand/ExecOnCommand/ExecOnError: the commands (upper case) and the program."""

    commands: tuple[str, ...]
    program: Program


@dataclass(frozen=True)
class OnEvent:
    event: str                  # the event's name as emitted
    written: str                # as the configuration wrote it (log lines)
    run_as: str                 # SERVER_IDS, ROOT (`*`) or USER (`~`)
    program: Program


def _program(args: list[str]) -> Program:
    if not args:
        raise ValueError("wrong number of parameters")
    if not args[0].startswith("/"):
        raise ValueError(f"path to program must be a full path: '{args[0]}'")
    return Program(args[0], tuple(args[1:]))


def _triggered(args: list[str]) -> Triggered:
    if len(args) < 2:
        raise ValueError("wrong number of parameters")
    commands = tuple(c.strip().strip('"').upper() for c in args[0].split(",") if c.strip().strip('"'))
    if not commands:
        raise ValueError("expected a comma-separated list of commands")
    return Triggered(commands, _program(args[1:]))


def _event(args: list[str]) -> OnEvent:
    if len(args) < 2:
        raise ValueError("wrong number of parameters")
    written, run_as = args[0], SERVER_IDS
    if written.endswith(("*", "~")):
        written, run_as = written[:-1], ROOT if written.endswith("*") else USER
    if not written:
        raise ValueError("expected an event name")
    return OnEvent(MASTER_EVENTS.get(written.lower(), written), written, run_as, _program(args[1:]))


def _environ(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ValueError("expected a variable name and a value (or -)")
    return args[0].upper(), args[1]


def _timeout(args: list[str]) -> int | None:
    """ProFTPD's durations: seconds, `Ns`/`Nsec`, `Nm`/`Nmin`, `Nh`/`Nhr`, `hh:mm:ss`; 0 (or none) = no limit."""
    if len(args) != 1:
        raise ValueError("expected a timeout")
    word = args[0].strip().lower()
    if word == "none":
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{1,2}):(\d{1,2})", word)
    if m:
        h, mi, se = (int(g) for g in m.groups())
        return h * 3600 + mi * 60 + se or None
    m = re.fullmatch(r"(\d+)\s*(s|sec|m|min|h|hr)?", word)
    if not m:
        raise ValueError(f"error parsing timeout value '{args[0]}'")
    factor = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}[m.group(2)]
    return int(m.group(1)) * factor or None


_CMDS = Custom(_triggered, "cmd[,cmd...] path [args]")
_PROGRAM = Custom(_program, "path [args]")

directives = (
    Directive("ExecEngine", Flag, SVG, False, Merge.SERVER, "Run the Exec* programs at all."),
    Directive("ExecEnable", Flag, ANON | DIR | FTPACCESS, True, Merge.DOWN,
              "off: no ExecBeforeCommand/ExecOnCommand/ExecOnError for commands in this place."),
    Directive("ExecLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_exec's own log file (`none`: no log)."),
    Directive("ExecOnConnect", _PROGRAM, SVG, None, Merge.SERVER,
              "Program run when a client connects, before the greeting, as User/Group.", repeat=True),
    Directive("ExecBeforeCommand", _CMDS, SVGA | DIR, None, Merge.MULTI,
              "Program run before the listed commands (names, READ/WRITE/DIRS, ALL); it cannot refuse them.",
              repeat=True),
    Directive("ExecOnCommand", _CMDS, SVGA | DIR, None, Merge.MULTI,
              "Program run after the listed commands succeed.", repeat=True),
    Directive("ExecOnError", _CMDS, SVGA | DIR, None, Merge.MULTI,
              "Program run after the listed commands fail.", repeat=True),
    Directive("ExecOnExit", _PROGRAM, SVG, None, Merge.SERVER, "Program run when the session ends.", repeat=True),
    Directive("ExecOnRestart", _PROGRAM, SVG, None, Merge.SERVER,
              "Program run by the master after SIGHUP reloaded the configuration.", repeat=True),
    Directive("ExecOnEvent", Custom(_event, "event[*|~] path [args]"), SVG, None, Merge.SERVER,
              "Program run on an event: MaxInstances, MaxConnectionRate or any event name; `*` as root, `~` as "
              "the logged-in user.", repeat=True),
    Directive("ExecEnviron", Custom(_environ, "NAME value|-"), SVG, None, Merge.SERVER,
              "An environment variable of the programs (their only ones); `-` copies the session's (or daemon's).",
              repeat=True),
    Directive("ExecOptions", Options(OPTIONS, "ExecOption", nocase=True), SVG, frozenset(),
              Merge.SERVER, "Log the programs' output, send their stdout to the client, pass arguments on stdin.",
              repeat=True),
    Directive("ExecTimeout", Custom(_timeout, "seconds|hh:mm:ss|none"), SVG, None, Merge.SERVER,
              "Longest run of a program: then SIGTERM, and SIGKILL to its whole process group."),
)

_PROGRAM_DIRECTIVES = ("ExecOnConnect", "ExecBeforeCommand", "ExecOnCommand", "ExecOnError", "ExecOnExit",
                       "ExecOnRestart", "ExecOnEvent")


# -- settings and state --------------------------------------------------------------------------------------------
@dataclass
class Settings:
    """A server's mod_exec settings, read once per process."""

    log: ModuleLog
    options: frozenset[str] = frozenset()
    timeout: int | None = None
    environ: tuple[tuple[str, str], ...] = ()
    identity: Identity | None = None        # User/Group, groups dropped; None when User names nobody known
    events: dict[str, list[OnEvent]] = field(default_factory=dict)


def settings_of(server: "Server", exec_log: ModuleLog, params: list[Any] | None = None) -> Settings:
    section = server.section
    options = frozenset(o for p in section.all("ExecOptions") for o in p.value)
    events: dict[str, list[OnEvent]] = {}
    for p in params if params is not None else section.all("ExecOnEvent"):
        events.setdefault(p.value.event, []).append(p.value)
    exec_log.open(server.get("ExecLog"), server.get("AllowLogSymlinks"))
    return Settings(exec_log, options, server.get("ExecTimeout"), tuple(p.value for p in section.all("ExecEnviron")),
                    server_identity(server), events)


def server_identity(server: "Server") -> Identity | None:
    """The server's User and Group as ids (Group defaults to the user's own group); the process's own ids without
    User; None (and a log line, each time it is asked) when User or Group names nobody. The names are looked up
    once per configuration (in the master, before any session: `warm_identities`)."""
    found = server_ids(server)
    if isinstance(found, KeyError):
        log.error("mod_exec: no such user or group %s: programs are not run", found)
        return None
    return Identity(*found, ())


def warm_identities(config: "Config") -> None:
    """Each server's User/Group ids, looked up now in the master so that no session asks pwd/grp again."""
    for server in config.servers:
        if server.get("ExecEngine"):
            server_ids(server)


@dataclass
class ExecState:
    """A session's: its server's settings while ExecEngine is on."""

    settings: Settings | None = None
    connected_to: "Server | None" = None    # the server the client connected to: its User/Group are the process's
                                            # ids before login, kept across HOST (ProFTPD's geteuid())


@dataclass
class ExecMaster:
    """The master's: the main server's settings and every server's ExecOnEvent lines."""

    settings: Settings | None = None
    log: ModuleLog = field(default_factory=lambda: ModuleLog(TAG))


def run(settings: Settings, program: Program, scope: Scope, identity: Identity, cwd: str) -> Outcome:
    """One program with the variables expanded in its arguments and environment."""
    env: dict[str, str] = {}
    for key, value in settings.environ:
        if key not in env:          # the first line of a name wins, as getenv(3) reads ProFTPD's list
            env[key] = _inherited(key, scope) if value == "-" else expand(value, scope)
    args = [expand(a, scope) for a in program.args]
    logged = tuple(name for name, option in (("stdout", "logStdout"), ("stderr", "logStderr"))
                   if option in settings.options)
    return exec_run.run(program.path, args, env=env, identity=identity, cwd=cwd,
                        stdin_args="useStdin" in settings.options, timeout=settings.timeout, log=settings.log,
                        log_output=logged)


def _inherited(key: str, scope: Scope) -> str:
    """`ExecEnviron KEY -`: the session's value (a note: what ProFTPD keeps in the session's environment, like
    mod_tls's TLS_*), else the daemon's, else empty."""
    note = note_of(scope, key)
    return note if note is not None else os.environ.get(key, "")


def _report(settings: Settings, what: str, program: Program, out: Outcome) -> None:
    verdict = "succeeded" if out.ok else f"failed: {out.reason()}"
    settings.log.write(f"{what} '{program.path}' {verdict}")


def output_lines(data: bytes) -> list[str]:
    """A program's stdout as reply lines (CR/LF and NUL removed, empty trailing lines dropped)."""
    lines = [line.rstrip("\r").replace("\0", "") for line in data.decode("utf-8", "surrogateescape").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# -- in a session --------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    session.state.get(ExecState).connected_to = session.server
    _setup(session)
    _on_connect(session, session.greeting_lines.extend)


def _reinit(session: "Session", **_: Any) -> None:
    """HOST (or TLS SNI) chose another server: its settings, and its ExecOnConnect programs run, as ProFTPD's
    mod_exec runs its whole sess_init again. sendStdout lines go out at once, each as a `220` reply of its own
    ahead of HOST's (ProFTPD's pr_response_send)."""
    _setup(session)
    st = session.state.get(ExecState)
    if st.settings is not None and st.settings.identity is not None and st.connected_to is not None:
        st.settings.identity = _kept_ids(st.settings.identity, server_identity(st.connected_to))

    def send(lines: list[str]) -> None:
        for line in lines:
            session.reply(220, line)
    _on_connect(session, send)


def _kept_ids(new: Identity, connected: Identity | None) -> Identity:
    """The new server's User and Group where it names them, else the ids the session process has had since the
    connection (its first server's), as ProFTPD's mod_exec falls back to geteuid()/getegid()."""
    if connected is None:
        return new
    return Identity(connected.uid if new.uid is None else new.uid, connected.gid if new.gid is None else new.gid,
                    new.groups)


def _on_connect(session: "Session", send: "Callable[[list[str]], None]") -> None:
    settings = session.state.get(ExecState).settings
    if settings is None:
        return
    for p in session.server.section.all("ExecOnConnect"):
        out = _run_in_session(session, settings, p.value, Scope(session=session))
        if out is None:
            continue
        _report(settings, "ExecOnConnect", p.value, out)
        if "sendStdout" in settings.options and out.stdout:
            send(output_lines(out.stdout))


def _setup(session: "Session") -> None:
    """A server's settings: at connect, and again when HOST chose another server."""
    st = session.state.get(ExecState)
    old = st.settings.log if st.settings is not None else ModuleLog(TAG)
    if not session.server.get("ExecEngine"):
        old.close()
        st.settings = None
        return
    st.settings = settings_of(session.server, old)


def _identity(session: "Session", settings: Settings, run_as: str, what: str) -> Identity | None:
    """Before login: the server's User/Group (ROOT: root); after login the process is the user for good, so a
    program runs as the user whatever it asks (a log line says so for ROOT)."""
    if session.authenticated:
        if run_as == ROOT:
            settings.log.write(f"{what}: cannot run as root after login (root was given up for good); running as "
                               f"the logged-in user")
        return Identity()
    if run_as == ROOT:
        return Identity(0, 0, ())
    return settings.identity


def _cwd(session: "Session") -> str:
    """After login the session's current directory (as this process sees it), else the daemon's."""
    if session.authenticated and session.fs is not None:
        real = session.fs.real_of(session.fs.cwd)
        if os.path.isdir(real):
            return real
    try:
        return os.getcwd()
    except OSError:
        return "/"


def _run_in_session(session: "Session", settings: Settings, program: Program, scope: Scope,
                    run_as: str = SERVER_IDS, what: str = "") -> Outcome | None:
    identity = _identity(session, settings, run_as, what or program.path)
    if identity is None:
        return None
    return run(settings, program, scope, identity, _cwd(session))


def _matches(commands: tuple[str, ...], session: "Session", req: Request) -> bool:
    row = session.dispatcher.row(req.name)
    group = row.group if row is not None else None
    return any(c == "ALL" or c == req.name or (group is not None and c == group) for c in commands)


def _on_command(session: "Session", req: Request, directive: str, phase: str) -> list[tuple[Program, Outcome]]:
    settings = session.state.get(ExecState).settings
    if settings is None:
        return []
    ctx = session.command_context(req)
    if not ctx.get("ExecEnable"):
        return []
    ran: list[tuple[Program, Outcome]] = []
    seen: set[int] = set()
    for line in ctx.all(directive):
        if id(line) in seen or not _matches(line.commands, session, req):
            continue
        seen.add(id(line))
        out = _run_in_session(session, settings, line.program, Scope(session, req, phase))
        if out is not None:
            _report(settings, f"{req.name} {directive}", line.program, out)
            ran.append((line.program, out))
    return ran


def _before(session: "Session", req: Request) -> None:
    """ExecBeforeCommand: whatever the program says, the command goes on (ProFTPD's rule)."""
    if req.name == "USER" and session.state.get(ExecState).settings is not None:
        session.state.get(SentUser).name = req.arg
    for _, out in _on_command(session, req, "ExecBeforeCommand", PRE_CMD):
        _not_sent(session, out)
    return None


def _after(session: "Session", req: Request) -> None:
    """ExecOnCommand; with sendStdout the output ends the reply: ProFTPD adds it after the command's own text."""
    for _, out in _on_command(session, req, "ExecOnCommand", POST_CMD):
        settings = session.state.get(ExecState).settings
        lines = output_lines(out.stdout) if "sendStdout" in settings.options else []
        if not lines:
            continue
        if req.reply is None:
            _not_sent(session, out)
            continue
        reply = req.reply
        reply.lines, reply.text = reply.lines + [reply.text] + lines[:-1], lines[-1]
    return None


def _error(session: "Session", req: Request) -> None:
    for _, out in _on_command(session, req, "ExecOnError", POST_CMD_ERR):
        _not_sent(session, out)
    return None


def _not_sent(session: "Session", out: Outcome) -> None:
    settings = session.state.get(ExecState).settings
    if "sendStdout" in settings.options and out.stdout:
        settings.log.write("not appropriate to send stdout to client at this time")


def _exit(session: "Session", **_: Any) -> None:
    settings = session.state.get(ExecState).settings
    if settings is None:
        return
    for p in session.server.section.all("ExecOnExit"):
        out = _run_in_session(session, settings, p.value, Scope(session=session))
        if out is not None:
            _report(settings, "ExecOnExit", p.value, out)


def _session_event(name: str, data: dict[str, Any]) -> None:
    session = data.get("session")
    if session is None:
        return                  # (every session event carries its session; see docs/ARCHITECTURE.md)
    settings = session.state.get(ExecState).settings
    if settings is None or name not in settings.events:
        return
    for line in settings.events[name]:
        out = _run_in_session(session, settings, line.program, Scope(session=session), line.run_as,
                              f"ExecOnEvent '{line.written}'")
        if out is not None:
            _report(settings, f"ExecOnEvent '{line.written}' for", line.program, out)


# -- in the master -------------------------------------------------------------------------------------------------
def _master_setup(master: MasterView) -> None:
    """The main server's settings, and the ExecOnEvent lines of every server whose ExecEngine is on (each line
    once: <Global> lines are in every server)."""
    st = master.state.get(ExecMaster)
    main = master.config.main
    lines, seen = [], set()
    for server in master.config.servers:
        if server.get("ExecEngine"):
            for p in server.section.all("ExecOnEvent"):
                if id(p) not in seen:
                    seen.add(id(p))
                    lines.append(p)
    st.settings = settings_of(main, st.log, lines) if lines or main.get("ExecEngine") else None
    if st.settings is None:
        st.log.close()


def master_init(master: MasterView) -> None:
    warm_identities(master.config)
    _master_setup(master)
    master.events.on_any(lambda name, data: _master_event(master, name, data))


def master_reload(master: MasterView) -> None:
    """SIGHUP: the new configuration's settings, then its ExecOnRestart programs (main server)."""
    warm_identities(master.config)
    _master_setup(master)
    st = master.state.get(ExecMaster)
    if st.settings is None or not master.config.main.get("ExecEngine"):
        return
    for p in master.config.main.section.all("ExecOnRestart"):
        out = _run_in_master(master, st.settings, p.value, Scope(server_name=master.config.main.name), SERVER_IDS)
        if out is not None:
            _report(st.settings, "ExecOnRestart", p.value, out)


def master_stop(master: MasterView) -> None:
    master.state.get(ExecMaster).log.close()


def _master_event(master: MasterView, name: str, data: dict[str, Any]) -> None:
    settings = master.state.get(ExecMaster).settings
    if settings is None or name not in settings.events:
        return
    conn, child = data.get("connection"), data.get("child")
    remote = conn.remote if conn is not None else (child.remote if child is not None else None)
    local = conn.local if conn is not None else (child.local if child is not None else None)
    scope = Scope(client_ip=remote[0] if remote else None, local_ip=local[0] if local else None,
                  server_name=master.config.main.name)
    for line in settings.events[name]:
        out = _run_in_master(master, settings, line.program, scope, line.run_as)
        if out is not None:
            _report(settings, f"ExecOnEvent '{line.written}' for", line.program, out)


def _run_in_master(master: MasterView, settings: Settings, program: Program, scope: Scope,
                   run_as: str) -> Outcome | None:
    """In the master (no login there: `~` is the server's User/Group too)."""
    identity = Identity(0, 0, ()) if run_as == ROOT else settings.identity
    if identity is None:
        return None
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    return run(settings, program, scope, identity, cwd)


# -- proftpy -t ----------------------------------------------------------------------------------------------------
def check(config: "Config") -> list[tuple[str, bool]]:
    """Every program must be an executable file (an error at `proftpy -t`, with the line that names it)."""
    problems: list[tuple[str, bool]] = []
    seen: set[int] = set()
    for server in config.servers:
        for section in server.section.walk():
            for name in _PROGRAM_DIRECTIVES:
                for p in section.all(name):
                    if id(p) in seen:
                        continue
                    seen.add(id(p))
                    path = p.value.program.path if hasattr(p.value, "program") else p.value.path
                    if not os.path.isfile(path) or not os.access(path, os.X_OK):
                        why = "does not exist" if not os.path.exists(path) else "is not an executable file"
                        problems.append((f"{p.where}: {name}: '{path}' {why}", True))
    return problems


def _engine_anywhere(config: "Config") -> bool:
    """A configuration where no section switches ExecEngine on runs nothing: its sessions go without the hooks
    and listeners below (each would look and return)."""
    return config.sets("ExecEngine")


MODULE = Module(NAME, directives=directives,
                hooks=(Hook(PRE_CMD, "*", _before, active=_engine_anywhere),
                       Hook(POST_CMD, "*", _after, active=_engine_anywhere),
                       Hook(POST_CMD_ERR, "*", _error, active=_engine_anywhere)),
                listeners=(Listener("core.exit", _exit, _engine_anywhere),
                           Listener("core.session-reinit", _reinit, _engine_anywhere),
                           Listener(ANY, _session_event, _engine_anywhere)),
                session_init=session_init, master_init=master_init, master_reload=master_reload,
                master_stop=master_stop, check=check)
