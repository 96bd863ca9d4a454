"""ProFTPD's trace facility: `Trace channel:level ...`, `TraceLog`, `TraceOptions`, and `-d LEVEL`.

A call site names a channel ("command", "response", "data", "auth", ...) and a level (1: rare and important,
10: every detail), and is written so that it costs one attribute read when tracing is off:

    if trace.on: trace.msg("command", 7, "dispatching %s command '%s'", phase, req.display)

`on` is False unless some channel is traced or `-d` is set, so with tracing off nothing is formatted and no
function is called (docs/performance.md has the measurement). The arguments are %-formatted only when the line is
written.

Why process-wide state and not a Session field: trace calls sit in places that never see a session (privs, fs,
netacl, the master), as ProFTPD's pr_trace_msg() does. The master configures it from the main server; a session
reconfigures it from its vhost right after the vhost is picked (modules/trace.py), and says which connection it
serves (`connection`), for `TraceOptions +ConnIPs`.

Line format (ProFTPD's trace_write()): `2024-05-01 12:00:00,123 [pid] <channel:level>: message`; with
+ConnIPs `[pid] (client 192.0.2.7, server 192.0.2.1:21) <channel:level>: message`; -TimestampMillis drops the
`,123`, -Timestamp the date and time. Each line is one write(2) on an O_APPEND descriptor, so the lines of
concurrent sessions never interleave. With `-d N` (or DebugLevel N) the messages of every channel up to level N
also go to the SystemLog at debug level, as ProFTPD's debug messages do.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

# ProFTPD's channels (src/trace.c) and the ones proftpy's own modules use; `Trace DEFAULT:n` sets all of them.
CHANNELS = ("access", "auth", "auth_otp", "ban", "binding", "command", "config", "ctrls", "data", "delay", "dns",
            "event", "exec", "fsio", "ident", "inet", "ldap", "lock", "log", "netacl", "netio", "privs", "prometheus",
            "proxy_protocol", "radius", "response", "scoreboard", "signal", "site", "timer", "tls", "xfer")
DEFAULT = "DEFAULT"
OPTIONS = ("ConnIPs", "Timestamp", "TimestampMillis")
LOG_MODE = 0o660                    # ProFTPD opens the TraceLog with 0660

on = False                          # the only thing a call site reads when tracing is off

log = logging.getLogger("proftpy")


@dataclass
class Options:
    """TraceOptions (ProFTPD's defaults: timestamps with milliseconds, no connection addresses)."""

    conn_ips: bool = False
    timestamp: bool = True
    millis: bool = True


@dataclass
class _State:
    levels: dict[str, tuple[int, int]] = field(default_factory=dict)   # channel -> (min, max)
    fd: int | None = None           # the TraceLog
    options: Options = field(default_factory=Options)
    debug: int = 0                  # -d / DebugLevel: levels up to this go to the SystemLog too
    conn: tuple[str, str, int] | None = None   # (client ip, server ip, server port) of this process's session
    syslog: set[str] = field(default_factory=set)   # channels set by ftpdctl with no TraceLog: to the SystemLog
    tap: Callable[[int, str], None] | None = None   # mod_log_forensic's capture: (level, line) of every message
                                    # while a TraceLog is open, whatever the channels' levels (`set_tap`)


_state = _State()


def parse_levels(text: str) -> tuple[int, int]:
    """ProFTPD's pr_trace_parse_levels: `n` is 1..n (0 is 0..0: off), `lo-hi` a range; ValueError otherwise."""
    lo_text, dash, hi_text = text.partition("-")
    try:
        if not dash:
            hi = int(text)
            lo = 1 if hi != 0 else 0
        else:
            lo, hi = int(lo_text), int(hi_text)
    except ValueError:
        raise ValueError(f"bad trace level '{text}'") from None
    if lo < 0 or hi < 0 or lo > hi:
        raise ValueError(f"bad trace level '{text}'")
    return lo, hi


def parse_spec(args: list[str]) -> list[tuple[str, int, int]]:
    """`Trace` arguments: `channel:level` words (a level may be a range); DEFAULT stands for every channel."""
    if not args:
        raise ValueError("expected channel:level ...")
    out = []
    for word in args:
        channel, sep, levels = word.rpartition(":")
        if not sep or not channel:
            raise ValueError(f"bad trace setting '{word}' (use channel:level)")
        lo, hi = parse_levels(levels)
        out.append((DEFAULT if channel.upper() == DEFAULT else channel, lo, hi))
    return out


def parse_options(args: list[str]) -> Options:
    """TraceOptions `+Name`/`-Name` words (ProFTPD insists on the sign)."""
    opts = Options()
    names = {n.lower(): n for n in OPTIONS}
    for word in args:
        sign, name = word[:1], names.get(word[1:].lower())
        if sign not in "+-" or not sign or name is None:
            raise ValueError(f"bad TraceOption: '{word}'")
        value = sign == "+"
        if name == "ConnIPs":
            opts.conn_ips = value
        elif name == "Timestamp":
            opts.timestamp = value
        else:
            opts.millis = value
    return opts


def levels_of(specs: list[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
    """Channel levels from `Trace` settings in order; a later setting of a channel wins, `DEFAULT` sets every
    known channel, a level of 0 turns a channel off."""
    out: dict[str, tuple[int, int]] = {}
    for channel, lo, hi in specs:
        for name in (CHANNELS if channel == DEFAULT else (channel,)):
            if hi == 0:
                out.pop(name, None)
            else:
                out[name] = (lo, hi)
    return out


def configure(levels: dict[str, tuple[int, int]], fd: int | None, options: Options | None = None,
              debug: int | None = None) -> None:
    """Install this process's settings (the master at start and reload, a session for its vhost). The
    descriptor belongs to the caller, who keeps it open."""
    global on
    _state.levels = dict(levels)
    _state.fd = fd
    if options is not None:
        _state.options = options
    if debug is not None:
        _state.debug = debug
    on = bool((_state.levels and (_state.fd is not None or _state.syslog)) or _state.debug
              or (_state.tap is not None and _state.fd is not None))


def set_tap(tap: Callable[[int, str], None] | None) -> None:
    """mod_log_forensic: hand every message to `tap` while a TraceLog is open (None: stop), as ProFTPD's TraceLog
    log listeners get each message its channel levels would have discarded."""
    _state.tap = tap
    configure(_state.levels, _state.fd)


def set_channel(channel: str, level: int) -> None:
    """One channel's level, now (ftpdctl trace); 0 turns it off. Applies to this process (the master) and so to
    the sessions it forks from now on. Without a TraceLog the lines go to the SystemLog (logger
    `proftpy.<channel>`, debug level), so an administrator sees them without editing the configuration."""
    out = dict(_state.levels)
    for name in (CHANNELS if channel.upper() == DEFAULT else (channel,)):
        if level <= 0:
            out.pop(name, None)
            _state.syslog.discard(name)
        else:
            out[name] = (1, level)
            if _state.fd is None:
                _state.syslog.add(name)
                logging.getLogger(f"proftpy.{name}").setLevel(logging.DEBUG)
    configure(out, _state.fd)


def set_debug(level: int) -> None:
    """The `-d` level, now (ftpdctl debug level N)."""
    configure(_state.levels, _state.fd, debug=level)


def levels() -> dict[str, tuple[int, int]]:
    """The channels traced in this process and their (min, max) levels."""
    return dict(_state.levels)


def connection(client_ip: str | None, server_ip: str | None = None, server_port: int = 0) -> None:
    """The connection this process serves (+ConnIPs); None: none (the master)."""
    _state.conn = None if client_ip is None else (client_ip, server_ip or "none", server_port)


def wanted(channel: str, level: int) -> bool:
    """Would a message on `channel` at `level` be written anywhere? (For callers that must build something
    costly first; a plain message just calls msg.)"""
    if not on:
        return False
    lv = _state.levels.get(channel)
    return (lv is not None and lv[0] <= level <= lv[1]
            and (_state.fd is not None or channel in _state.syslog)) or level <= _state.debug \
        or (_state.tap is not None and _state.fd is not None)


def msg(channel: str, level: int, text: str, *args: object) -> None:
    """Write one trace line if `channel` is traced at `level` (and/or to the SystemLog under -d)."""
    lv = _state.levels.get(channel)
    traced = lv is not None and lv[0] <= level <= lv[1]
    to_file = traced and _state.fd is not None
    to_debug = level <= _state.debug or (traced and channel in _state.syslog)
    tapped = _state.tap is not None and _state.fd is not None
    if not (to_file or to_debug or tapped):
        return
    if args:
        try:
            text = text % args
        except (TypeError, ValueError):
            text = f"{text} {args!r}"
    text = text.rstrip("\n")
    if tapped:
        _state.tap(level, line(channel, level, text))     # type: ignore[misc]
    if to_file:
        _write(channel, level, text)
    if to_debug:
        logging.getLogger(f"proftpy.{channel}").debug("<%s:%d>: %s", channel, level, text)


def caller(depth: int = 2) -> str:
    """`file.py:LINE` of the code that called the caller (ProFTPD's debug lines say where privileges
    changed: `ROOT PRIVS at main.c:1136`)."""
    frame = sys._getframe(depth)
    while frame.f_code.co_filename.endswith("contextlib.py") and frame.f_back is not None:
        frame = frame.f_back                # `with privs.as_root():` -- the line of the with statement
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def line(channel: str, level: int, text: str, now: float | None = None) -> str:
    """One TraceLog line, newline included (ProFTPD's trace_write())."""
    opts = _state.options
    head = ""
    if opts.timestamp:
        now = time.time() if now is None else now
        head = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        if opts.millis:
            head += f",{int(now * 1000) % 1000:03d}"
        head += " "
    conn = _state.conn
    where = f"(client {conn[0]}, server {conn[1]}:{conn[2]}) " if opts.conn_ips and conn is not None else ""
    return f"{head}[{os.getpid()}] {where}<{channel}:{level}>: {text}\n"


def _write(channel: str, level: int, text: str) -> None:
    fd = _state.fd
    if fd is None:
        return
    try:
        data = "".join(line(channel, level, part) for part in text.split("\n"))   # a multi-line reply: a line each
        os.write(fd, data.encode("utf-8", "backslashreplace"))
    except OSError as e:            # a full disk must not stop the server; say it once and stop tracing there
        _state.fd = None
        log.error("cannot write the TraceLog, tracing to it stops: %s", e.strerror)
