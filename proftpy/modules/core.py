"""mod_core: the server itself — identity, listeners, process limits, runtime files, idle timeout — and the
commands every session has: QUIT NOOP SYST FEAT HELP.

MaxInstances and MaxConnectionRate are its veto in the master (`refuse`): the connection is closed silently before
any fork, as ProFTPD's main.c does, with its events `core.max-instances` and `core.max-connection-rate`."""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

from .. import __version__
from ..config.registry import (DIR, GLOBAL, SERVER, SVG, SVGA, VHOST, ALL_DIRS, Directive,
                               Merge)
from ..config.types import (Choice, Custom, Flag, Int, IntOrNone, Octal, Options, Path, Str, Text, Words, atoi,
                            parse_bool, parse_int)
from ..dispatch import NONE, OPTIONAL, Command, Request
from ..module import MasterView, Module, Veto
from ..reply import Reply

if TYPE_CHECKING:
    from ..net.connection import Connection
    from ..session import Session

NAME = "mod_core.c"


def _server_ident(args: list[str]) -> tuple[bool, str | None]:
    if not 1 <= len(args) <= 2:
        raise ValueError("expected on|off [\"text\"]")
    return parse_bool(args[0]), (args[1] if len(args) == 2 else None)


def _connection_rate(args: list[str]) -> tuple[int, int]:
    if not 1 <= len(args) <= 2:
        raise ValueError("expected count [seconds]")
    return parse_int(args[0], 1), parse_int(args[1], 1) if len(args) == 2 else 1


def _socket_options(args: list[str]) -> dict:
    opts: dict = {}
    i = 0
    while i < len(args):
        key = args[i].lower()
        if i + 1 >= len(args):
            raise ValueError(f"{args[i]} needs a value")
        value = args[i + 1]
        if key in ("maxseg", "rcvbuf", "sndbuf"):
            opts[key] = parse_int(value, 1)
        elif key in ("keepalive", "reuseport"):
            opts[key] = parse_bool(value)
        else:
            raise ValueError(f"unknown socket option '{args[i]}'")
        i += 2
    return opts


def _tcp_nodelay(args: list[str]) -> dict:
    if len(args) == 1:
        flag = parse_bool(args[0])
        return {"ctrl": flag, "data": flag}
    if len(args) not in (2, 4):
        raise ValueError("expected on|off, or ctrl on|off [data on|off]")
    out = {"ctrl": True, "data": True}
    for key, value in zip(args[::2], args[1::2]):
        if key.lower() not in out:
            raise ValueError(f"expected ctrl or data, got '{key}'")
        out[key.lower()] = parse_bool(value)
    return out


def _scrub(args: list[str]) -> int | None:
    word = Str()(args)
    try:
        return 30 if parse_bool(word) else None
    except ValueError:
        return parse_int(word, 1)


def _regex_options(args: list[str]) -> dict[str, str]:
    """ProFTPD's pairs, checked: `Engine` (PCRE, PCRE2, POSIX) and the two limits (numbers)."""
    if not args or len(args) % 2:
        raise ValueError("wrong number of parameters")
    pairs = dict(zip(args[::2], args[1::2]))
    for key, value in pairs.items():
        if key == "Engine":
            if value.upper() not in ("PCRE", "PCRE2", "POSIX"):
                raise ValueError(f"unknown regex engine '{value}'")
        elif key in ("MatchLimit", "MatchRecursionLimit"):
            parse_int(value, 1)
        else:
            raise ValueError(f"unknown RegexOptions parameter '{key}'")
    return pairs


def _env_name(word: str) -> str:
    if not word or "=" in word or "\0" in word:
        raise ValueError(f"'{word}' is not an environment variable name")
    return word


def _set_env(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ValueError("expected a name and a value")
    if "\0" in args[1]:
        raise ValueError("a value cannot hold a NUL character")
    return _env_name(args[0]), args[1]


def _unset_env(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("expected a name")
    return _env_name(args[0])


def _fs_cache_policy(args: list[str]) -> str:
    """ProFTPD's checks: a boolean, or `size n maxAge n` (n >= 1, read as atoi reads it)."""
    if len(args) == 1:
        return "on" if parse_bool(args[0]) else "off"
    if len(args) != 4:
        raise ValueError("wrong number of parameters")
    for key, value in zip(args[::2], args[1::2]):
        if key.lower() not in ("size", "maxage"):
            raise ValueError(f"unknown FSCachePolicy: {key}")
        if atoi(value) < 1:
            raise ValueError(f"{'size' if key.lower() == 'size' else 'maxAge'} parameter must be greater than 1")
    return " ".join(args)


directives = [
    Directive("ServerName", Text, SERVER | VHOST, "ProFTPD", Merge.SERVER,
              "Server label: greeting, scoreboard and `ftpwho -S`."),
    Directive("ServerType", Choice(("standalone", "inetd")), SERVER, "standalone", Merge.SERVER,
              "standalone: the master listens; inetd: serve one session on standard input."),
    Directive("ServerIdent", Custom(_server_ident, 'on|off ["text"]'), SVG, (True, None), Merge.SERVER,
              "Greeting text: on shows `ProFTPD Server (name) [addr]`, a custom text may use %L %V %v."),
    Directive("DeferWelcome", Flag, SVG, False, Merge.SERVER, "Hide the server name until login."),
    Directive("ServerAdmin", Text, SVG, None, Merge.SERVER, "Address shown at the end of HELP."),
    Directive("Port", Int(0, 65535), SVG, 21, Merge.SERVER, "Control port; `Port 0` disables that server."),
    Directive("DefaultAddress", Words(), SERVER, None, Merge.SERVER,
              "Address(es) of the main server (default: the host name's address)."),
    Directive("SocketBindTight", Flag, SERVER, False, Merge.SERVER,
              "on: one listener per server address; off: one wildcard listener per port."),
    Directive("DefaultServer", Flag, SERVER | VHOST, False, Merge.SERVER,
              "Serve connections to addresses no server claims."),
    Directive("ServerAlias", Words(), SERVER | VHOST, None, Merge.SERVER, "Names the HOST command accepts.",
              repeat=True),
    Directive("UseIPv6", Flag, SERVER, True, Merge.SERVER, "Listen and connect over IPv6 as well."),
    Directive("MaxInstances", IntOrNone(), SERVER, None, Merge.SERVER,
              "Most session processes at once; more connections are closed silently."),
    Directive("MaxConnectionRate", Custom(_connection_rate, "count [seconds]"), SERVER, None, Merge.SERVER,
              "Most new connections per interval; more are closed silently."),
    Directive("CommandBufferSize", Int(512, 65536), SVG, 4103, Merge.SERVER,
              "Longest command line accepted; longer lines get `500 Command line too long`."),
    Directive("TCPBackLog", Int(1), SERVER, 128, Merge.SERVER, "listen() backlog of the control sockets."),
    Directive("SocketOptions", Custom(_socket_options, "[maxseg n] [rcvbuf n] [sndbuf n] [keepalive on|off] "
                                      "[reuseport on|off]"), SERVER | VHOST, {}, Merge.SERVER,
              "Socket tuning for control and data connections."),
    Directive("TCPNoDelay", Custom(_tcp_nodelay, "on|off | ctrl on|off [data on|off]"), SVG,
              {"ctrl": True, "data": True}, Merge.SERVER, "Disable Nagle's algorithm."),
    Directive("PidFile", Path(), SERVER, "/var/run/proftpy.pid", Merge.SERVER, "Where the master writes its pid."),
    Directive("MemoryMerge", Flag, SERVER, True, Merge.SERVER,
              "proftpy: let the kernel's KSM merge identical memory pages of the master and its sessions "
              "(takes effect when ksmd runs; docs/performance.md)."),
    Directive("ScoreboardFile", Path(none_ok=True), SERVER, "/var/run/proftpy/proftpy.scoreboard", Merge.SERVER,
              "Shared session table read by ftpwho/ftptop; `none` disables it."),
    Directive("ScoreboardMutex", Path(), SERVER, None, Merge.SERVER,
              "Lock file for claiming scoreboard slots (default: ScoreboardFile + `.lck`)."),
    Directive("ScoreboardScrub", Custom(_scrub, "on|off|seconds"), SERVER, 30, Merge.SERVER,
              "How often the master clears slots of dead sessions."),
    Directive("ScoreboardOptions", Words(), SVG, [], Merge.SERVER,
              "AllowMissingEntry: a session goes on when it cannot get a slot."),
    Directive("SystemLog", Path(none_ok=True), SERVER | GLOBAL, "syslog", Merge.SERVER,
              "Daemon log file (default: syslog; `none` disables)."),
    Directive("SyslogLevel", Choice(("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")),
              SVG, "notice", Merge.SERVER,
              "Lowest level written to the system log (a `<VirtualHost>`'s sessions: the vhost's own)."),
    Directive("SyslogFacility", Str("facility"), SERVER, "daemon", Merge.SERVER, "syslog facility."),
    Directive("DebugLevel", Int(0, 10), SVG, 0, Merge.SERVER, "Debug verbosity (also -d)."),
    Directive("ProcessTitles", Choice(("terse", "verbose")), SERVER, "verbose", Merge.SERVER,
              "verbose: a session's title shows its client, user and command; terse: only "
              "`proftpy: processing connection`."),
    Directive("User", Text, SVGA, None, Merge.SERVER,
              "Runtime user of the server; inside <Anonymous>, the anonymous account."),
    Directive("Group", Text, SVGA, None, Merge.SERVER, "Runtime group; inside <Anonymous>, the anonymous group."),
    Directive("Umask", Octal(2), ALL_DIRS, (0o022, None), Merge.DOWN,
              "File (and optional directory) creation mask.", ),
    Directive("TimeoutIdle", Int(0), SVGA, 600, Merge.DOWN,
              "Seconds without a command before `421 Idle timeout`."),
    Directive("TimeoutLinger", Int(0), SVG, 10, Merge.SERVER, "Seconds to linger on closing a data connection."),
    Directive("AllowOverride", Flag, SVGA | DIR, True, Merge.DOWN, "Honour .ftpaccess files."),
    Directive("FSCachePolicy", Custom(_fs_cache_policy, "on|off | size count maxAge secs"), SVG, None, Merge.SERVER,
              "Accepted for compatibility: proftpy keeps no cache of file facts, every command looks at the disk "
              "(as `FSCachePolicy off`)."),
    Directive("FSOptions", Options(("IgnoreExtendedAttributes",), "FSOption"), SVG, None, Merge.SERVER,
              "IgnoreExtendedAttributes: mod_sftp sends and sets no extended attributes (its xattr@proftpd.org "
              "requests are unsupported), as ProFTPD; nothing else in proftpy touches them."),
    Directive("UseReverseDNS", Flag, SERVER, True, Merge.SERVER,
              "Look up client host names; off uses the IP address as the name and skips DNS ACLs."),
    Directive("WtmpLog", Flag, SVGA, False, Merge.DOWN, "Accepted for compatibility; wtmp is not written."),
    Directive("MultilineRFC2228", Flag, SVG, False, Merge.SERVER, "Accepted for compatibility."),
    Directive("Protocols", Words(), SVG, None, Merge.SERVER,
              "Protocols a login may use (`ftp`, `ftps`); any other is refused after PASS: `530 Login incorrect.`"),
    Directive("IncludeOptions", Options(("AllowSymlinks", "IgnoreTempFiles", "IgnoreWildcards"), "IncludeOption"),
              SERVER, frozenset(), Merge.SERVER,
              "How the Include lines after it read files: AllowSymlinks (a wildcard's directory may be a symbolic "
              "link), IgnoreTempFiles (leave `*~` and `*.sw?` out), IgnoreWildcards (no wildcard in directory "
              "names)."),
    Directive("RegexOptions", Custom(_regex_options, "[Engine PCRE|PCRE2|POSIX] [MatchLimit n] "
                                                     "[MatchRecursionLimit n]"), SVG, None, Merge.SERVER,
              "Accepted for compatibility: PCRE's limits; proftpy's regular expressions are Python's (`re`)."),
    Directive("SetEnv", Custom(_set_env, "name value"), SVG, None, Merge.SERVER,
              "Set an environment variable for the sessions (in the server config: for the daemon too), e.g. "
              "`SetEnv TZ UTC` for the times in logs and listings.", repeat=True),
    Directive("UnsetEnv", Custom(_unset_env, "name"), SVG, None, Merge.SERVER,
              "Remove an environment variable for the sessions (in the server config: for the daemon too).",
              repeat=True),
]


def refuse(master: MasterView, conn: "Connection") -> Veto | None:
    """MaxInstances (sessions running), then MaxConnectionRate (sessions forked within the interval, this one
    included)."""
    main = master.config.main
    limit = main.get("MaxInstances")
    if limit is not None and len(master.children) >= limit:
        return _refused("MaxInstances", conn, "core.max-instances")
    rate = main.get("MaxConnectionRate")
    if rate is not None:
        count, interval = rate
        since = time.monotonic() - interval
        if sum(1 for c in master.children.values() if c.started >= since) + 1 > count:
            return _refused("MaxConnectionRate", conn, "core.max-connection-rate")
    return None


def _refused(directive: str, conn: "Connection", event: str) -> Veto:
    return Veto(f"{directive} reached, refused connection from {conn.remote[0]}", event)


def greeting(session: "Session") -> Reply:
    """The 220 line, per ServerIdent/DeferWelcome (reference §1d)."""
    server = session.server
    ident_on, text = server.get("ServerIdent")
    addr = session.masquerade or session.local_addr
    if not ident_on:
        return Reply(220, f"{addr} FTP server ready")
    if text is not None:
        return Reply(220, expand_ident(text, session))
    if server.get("DeferWelcome"):
        return Reply(220, "ProFTPD Server ready.")
    return Reply(220, f"ProFTPD Server ({server.name}) [{addr}]")


def expand_ident(text: str, session: "Session") -> str:
    """ServerIdent's variables: %L the address connected to, %V the server's DNS name (its address with
    UseReverseDNS off, as ProFTPD's ServerFQDN), %v ServerName, %{version} proftpy's version."""
    values = {"%L": session.local_addr, "%V": session.local_name, "%v": session.server.name,
              "%{version}": __version__}
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def quit_(session: "Session", cmd: Request) -> Reply:
    session.closing = True
    return Reply(221, "Goodbye.")


def noop(session: "Session", cmd: Request) -> Reply:
    return Reply(200, "NOOP command successful")


def syst(session: "Session", cmd: Request) -> Reply:
    return Reply(215, "UNIX Type: L8")


def feat(session: "Session", cmd: Request) -> Reply:
    lines = sorted({line for c in session.dispatcher.commands.values()
                    for line in (c.feat if c.feat_for is None else c.feat_for(session))
                    if c.enabled is None or c.enabled(session)})
    if not lines:
        return Reply(211, "No features supported")
    return Reply(211, "End", ["Features:"] + [" " + line for line in lines])


def admin_address(session: "Session") -> str:
    """ServerAdmin, or ProFTPD's default `root@<server name>`: the server address's DNS name (its IP address with
    UseReverseDNS off)."""
    admin = session.server.get("ServerAdmin")
    if admin:
        return admin
    host = session.local_addr
    if session.server.get("UseReverseDNS"):
        try:
            host = socket.gethostbyaddr(host)[0]
        except OSError:
            pass
    return f"root@{host}"


def help_(session: "Session", cmd: Request) -> Reply:
    """HELP lists the rows with a `help_at` place in ProFTPD 1.3.8's order, `*` marking the unimplemented ones
    (and those a directive switched off: AUTH without TLSEngine);
    `HELP <cmd>` gives one row's syntax."""
    dispatcher = session.dispatcher
    if cmd.arg.strip():
        name = cmd.arg.split()[0].upper()
        command = dispatcher.row(name)
        if command is None:
            return Reply(502, f"Unknown command '{name}'")
        if command.help_detail is not None:
            return command.help_detail(session)
        return Reply(214, f"Syntax: {name} {command.help}".rstrip())
    listed = sorted((c for c in dispatcher.commands.values()
                     if c.help_at is not None and (c.help_shown is None or c.help_shown(session))),
                    key=lambda c: c.help_at)
    names = [c.name if c.handler is not None and c.implemented and (c.enabled is None or c.enabled(session))
             else c.name + "*" for c in listed]
    rows = [" " + "".join(f"{n:<8}" for n in names[i:i + 8]) for i in range(0, len(names), 8)]
    return Reply(214, f"Direct comments to {admin_address(session)}",
                 ["The following commands are recognized (* =>'s unimplemented):"] + rows)


def _not_implemented(names: str, first: int) -> tuple[Command, ...]:
    """Commands ProFTPD's HELP lists as unimplemented (marked `*`) that proftpy has no row for: rows without a
    handler, so they are still `500 <CMD> not understood`. `first` is the first one's place in HELP."""
    return tuple(Command(name, None, help_at=first + i, limit=False) for i, name in enumerate(names.split()))


# ProFTPD ignores arguments to QUIT, NOOP and SYST; <Limit> never refuses QUIT or SYST, and refuses NOOP, FEAT and
# HELP even before login
commands = (
    Command("QUIT", quit_, needs_login=False, arg=OPTIONAL, help="(close control connection)", help_at=6,
            limit=False, limit_all=False, replies=("221 Goodbye. (DisplayQuit lines as 221-; arguments ignored)",)),
    Command("NOOP", noop, needs_login=False, arg=OPTIONAL, help="", help_at=25,
            denied=(550, "Operation not permitted"), replies=("200 NOOP command successful (arguments ignored)",)),
    Command("SYST", syst, needs_login=False, arg=OPTIONAL, help="", help_at=23, limit=False,
            replies=("215 UNIX Type: L8",)),
    Command("FEAT", feat, needs_login=False, arg=NONE, help="", help_at=26,
            denied=(550, "{cmd}: Operation not permitted"), replies=("211-Features: ... 211 End", "211 No features supported")),
    Command("HELP", help_, needs_login=False, arg=OPTIONAL, help="[<sp> command]", help_at=24,
            denied=(501, "{cmd}: Permission denied"), replies=("214-The following commands are recognized ... (ProFTPD's order, * = unimplemented)",
                     "214 Direct comments to <ServerAdmin, or root@<server address or its DNS name>>",
                     "214 Syntax: <cmd> <syntax>", "502 Unknown command '<cmd>'")),
) + _not_implemented("CONF ENC MIC", 32)


def _environment(server) -> tuple[tuple[str, str | None], ...]:
    """A server's SetEnv (name, value) and UnsetEnv (name, None) lines, in configuration order."""
    return tuple((p.value[0], p.value[1]) if p.directive.name == "SetEnv" else (p.value, None)
                 for p in server.section.params if p.directive.name in ("SetEnv", "UnsetEnv"))


def apply_environment(server) -> None:
    """SetEnv and UnsetEnv of one server; TZ takes effect for the times the process formats from now on."""
    changes = server.cached(_environment)
    for name, value in changes:
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if changes:
        time.tzset()


def _master_environment(master: MasterView) -> None:
    apply_environment(master.config.main)


MODULE = Module(NAME, directives=tuple(directives), commands=commands, greeting=greeting, veto=refuse,
                master_init=_master_environment, master_reload=_master_environment,
                session_init=lambda session: apply_environment(session.server))
