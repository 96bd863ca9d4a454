"""LogFormat strings (ExtendedLog): compile a format once, render it for each logged command.

The variables and their values follow ProFTPD 1.3.8's mod_log (doc/modules/mod_log.html, src/jot.c). What a
variable shows when it has nothing to say is ProFTPD's too: `UNKNOWN` for %A and %l; `-` for %b %c %f %F %g %R
%s %S %T %u %U %w, %{basename} %{file-offset} %{file-size} %{transfer-*}; nothing for %d %D %E %J %m %r and
environment variables.

Parsing is ProFTPD's as well: `%x` with an unknown letter stays as written, an unknown `%{name}` becomes `name`,
`%{NAME}e` is an environment variable and `%{format}t` a strftime(3) time. `%%` is a literal `%` (as the ProFTPD
documentation promises).

`compile_format(text)` returns tokens; `render(tokens, record)` fills them from a `Record`, a plain bag of facts
that proftpy/modules/log.py gathers from the session and the command (so this module has no session code).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

DEFAULT_FORMAT = '%h %l %u %t "%r" %s %b'
IDENT_NOTE = "mod_ident.rfc1413-ident"      # %l: the session note of mod_ident (proftpy/modules/ident.py)

# one-letter variables (ProFTPD's parse_short_id)
SHORT = frozenset("aAbcdDEfFgHhIJlLmOpPrRsStTuUvVw")
# %{name} variables (parse_long_id)
LONG = frozenset(("basename", "epoch", "file-modified", "file-offset", "file-size", "gid", "iso8601", "microsecs",
                  "millisecs", "protocol", "remote-port", "transfer-failure", "transfer-millisecs", "transfer-port",
                  "transfer-speed", "transfer-status", "transfer-type", "uid", "version"))

Token = Union[str, tuple[str, str]]     # literal text, or (variable, argument)


def compile_format(text: str, custom: bool = False) -> list[Token]:
    """Split a LogFormat string into literal text and (variable, argument) tokens. With `custom`, an unknown
    `%{name}` is the token ("custom", name) (mod_sql's named queries and `%{0}` arguments), not its name."""
    out: list[Token] = []
    lit: list[str] = []
    i, n = 0, len(text)

    def var(name: str, arg: str = "") -> None:
        if lit:
            out.append("".join(lit))
            lit.clear()
        out.append((name, arg))

    while i < n:
        ch = text[i]
        if ch != "%" or i + 1 >= n:
            lit.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "%":
            lit.append("%")
            i += 2
        elif nxt in SHORT:
            var(nxt)
            i += 2
        elif nxt == "{" and "}" in text[i + 2:]:
            end = text.index("}", i + 2)
            name = text[i + 2:end]
            after = text[end + 1] if end + 1 < n else ""
            i = end + 1
            if name in LONG or name.lower() == "iso8601":
                var(name.lower() if name.lower() == "iso8601" else name)
            elif name.startswith(("env:", "note:", "time:")):
                kind, _, arg = name.partition(":")
                var(kind, arg)
            elif after == "e":
                var("env", name)
                i += 1
            elif after == "t":
                var("time", name)
                i += 1
            elif custom:
                var("custom", name)
            else:
                lit.append(name)            # ProFTPD: an unknown %{name} leaves its name
        else:
            lit.append("%")                 # %x: not a variable, written as is
            i += 1
    if lit:
        out.append("".join(lit))
    return out


@dataclass
class Record:
    """The facts one log line may show. None means "not known for this command" (the variable's default)."""

    command: str = ""                 # %m: the command word (CONNECT/EXIT for the pseudo commands)
    arg: str = ""                     # the argument as received
    pseudo: bool = False              # CONNECT / EXIT: no %r or %J
    reply_code: int | None = None     # %s
    reply_text: str | None = None     # %S
    remote_ip: str = ""               # %a
    remote_name: str = ""             # %h
    remote_port: int = 0              # %{remote-port}
    local_ip: str = ""                # %L
    local_port: int = 0               # %p
    local_name: str = ""              # %V (the local address unless it is resolved)
    vhost_ip: str = ""                # %H
    server_name: str = ""             # %v
    pid: int = 0                      # %P
    user: str | None = None           # %u
    orig_user: str | None = None      # %U
    anon_password: str | None = None  # %A
    conn_class: str | None = None     # %c
    group: str | None = None          # %g
    uid: int = 0                      # %{uid}
    gid: int = 0                      # %{gid}
    protocol: str = "ftp"             # %{protocol}
    version: str = ""                 # %{version}
    response_ms: int | None = None    # %R
    bytes: int | None = None          # %b
    filename: str | None = None       # %f: absolute real path
    xfer_path: str | None = None      # %F: the path as the client sees it
    dir_name: str | None = None       # %d
    dir_path: str | None = None       # %D
    basename: str | None = None       # %{basename}
    rnfr_path: str | None = None      # %w
    seconds: float | None = None      # %T
    xfer_status: str | None = None    # %{transfer-status}
    xfer_failure: str | None = None   # %{transfer-failure}
    xfer_type: str | None = None      # %{transfer-type}: "ASCII" or "binary"
    xfer_ms: int | None = None        # %{transfer-millisecs}
    xfer_speed: str | None = None     # %{transfer-speed}
    xfer_port: int | None = None      # %{transfer-port}
    file_size: int | None = None      # %{file-size}
    file_offset: int | None = None    # %{file-offset}
    file_modified: bool = False       # %{file-modified}
    raw_in: int = 0                   # %I
    raw_out: int = 0                  # %O
    eos_reason: str | None = None     # %E
    now: float = field(default_factory=time.time)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    notes: Mapping[str, Any] = field(default_factory=dict)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _clf_time(rec: Record, fmt: str) -> str:
    """%t: `[02/Jan/2006:15:04:05 -0700]` (local time); %{fmt}t: strftime(fmt) of the local time."""
    tm = time.localtime(rec.now)
    if fmt:
        return time.strftime(fmt, tm)
    off = (tm.tm_gmtoff or 0) // 60
    sign = "-" if off < 0 else "+"
    off = abs(off)
    return time.strftime("[%d/%b/%Y:%H:%M:%S ", tm) + f"{sign}{off // 60:02d}{off % 60:02d}]"


def _iso8601(rec: Record, _: str) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.now)) + f",{int(rec.now % 1 * 1000):03d}"


def _full_command(rec: Record, _: str) -> str | None:
    if rec.pseudo:
        return None
    if rec.command == "PASS":
        return "PASS (hidden)"
    if rec.command == "ADAT":
        return "ADAT (hidden)"
    return f"{rec.command} {rec.arg}".rstrip()


def _params(rec: Record, _: str) -> str | None:
    if rec.pseudo:
        return None
    if rec.command in ("PASS", "ADAT"):
        return "(hidden)"
    return rec.arg or None


def _method(rec: Record, _: str) -> str | None:
    if rec.command == "SITE":
        sub = rec.arg.split(" ", 1)[0]
        return f"SITE {sub.upper()}" if sub else None
    return rec.command or None


_VALUES: dict[str, Callable[[Record, str], str | None]] = {
    "a": lambda r, _: r.remote_ip,
    "A": lambda r, _: r.anon_password,
    "b": lambda r, _: _opt(r.bytes),
    "c": lambda r, _: r.conn_class,
    "d": lambda r, _: r.dir_name,
    "D": lambda r, _: r.dir_path,
    "E": lambda r, _: r.eos_reason or None,
    "f": lambda r, _: r.filename,
    "F": lambda r, _: r.xfer_path,
    "g": lambda r, _: r.group,
    "h": lambda r, _: r.remote_name or r.remote_ip,
    "H": lambda r, _: r.vhost_ip,
    "I": lambda r, _: str(r.raw_in),
    "J": _params,
    "l": lambda r, _: _opt(r.notes.get(IDENT_NOTE)),
    "L": lambda r, _: r.local_ip,
    "m": _method,
    "O": lambda r, _: str(r.raw_out),
    "p": lambda r, _: str(r.local_port),
    "P": lambda r, _: str(r.pid),
    "r": _full_command,
    "R": lambda r, _: _opt(r.response_ms),
    "s": lambda r, _: _opt(r.reply_code),
    "S": lambda r, _: r.reply_text,
    "t": lambda r, _: _clf_time(r, ""),
    "T": lambda r, _: None if r.seconds is None else f"{r.seconds:0.3f}",
    "u": lambda r, _: r.user,
    "U": lambda r, _: r.orig_user,
    "v": lambda r, _: r.server_name,
    "V": lambda r, _: r.local_name or r.local_ip,
    "w": lambda r, _: r.rnfr_path,
    "basename": lambda r, _: r.basename,
    "epoch": lambda r, _: str(int(r.now)),
    "file-modified": lambda r, _: "true" if r.file_modified else "false",
    "file-offset": lambda r, _: _opt(r.file_offset),
    "file-size": lambda r, _: _opt(r.file_size),
    "gid": lambda r, _: str(r.gid),
    "iso8601": _iso8601,
    "microsecs": lambda r, _: f"{int(r.now % 1 * 1_000_000):06d}",
    "millisecs": lambda r, _: f"{int(r.now % 1 * 1000):03d}",
    "protocol": lambda r, _: r.protocol,
    "remote-port": lambda r, _: str(r.remote_port),
    "transfer-failure": lambda r, _: r.xfer_failure,
    "transfer-millisecs": lambda r, _: _opt(r.xfer_ms),
    "transfer-port": lambda r, _: _opt(r.xfer_port),
    "transfer-speed": lambda r, _: r.xfer_speed,
    "transfer-status": lambda r, _: r.xfer_status,
    "transfer-type": lambda r, _: r.xfer_type,
    "uid": lambda r, _: str(r.uid),
    "version": lambda r, _: r.version,
    "env": lambda r, name: r.env.get(name),
    "note": lambda r, name: _opt(r.notes.get(name)),
    "time": _clf_time,
}

# What a variable without a value shows (ProFTPD's resolve_on_default); absent here = nothing.
_DEFAULTS = {"A": "UNKNOWN", "l": "UNKNOWN"}
_DEFAULTS.update(dict.fromkeys(("b", "c", "f", "F", "g", "R", "s", "S", "T", "u", "U", "w", "basename",
                                "file-offset", "file-size", "transfer-failure", "transfer-millisecs",
                                "transfer-port", "transfer-speed", "transfer-status", "transfer-type"), "-"))


def found(name: str, arg: str, rec: Record) -> str | None:
    """One variable's text for `rec`, or None where it has no value (no default put in its place)."""
    return _VALUES[name](rec, arg)


def value(name: str, arg: str, rec: Record, defaults: Mapping[str, str] | None = None) -> str:
    """One variable's text for `rec`: its value, else its default (`defaults` first, then mod_log's)."""
    found = _VALUES[name](rec, arg)
    if found is not None:
        return found
    if defaults is not None and name in defaults:
        return defaults[name]
    return _DEFAULTS.get(name, "")


def render(tokens: list[Token], rec: Record) -> str:
    """The log line for `rec` (without the newline)."""
    parts = []
    for tok in tokens:
        if isinstance(tok, str):
            parts.append(tok)
            continue
        name, arg = tok
        found = _VALUES[name](rec, arg)
        parts.append(_DEFAULTS.get(name, "") if found is None else found)
    return "".join(parts)


def expand(text: str, rec: Record) -> str:
    """compile + render in one step (tests, one-off use)."""
    return render(compile_format(text), rec)
