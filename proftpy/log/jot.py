"""LogFormat variables as JSON members, as ProFTPD's jot API makes them for mod_redis's RedisLogOnCommand and
RedisLogOnEvent: each variable that has a value becomes one member, in the format's order, named and typed as
ProFTPD 1.3.8 names them (`%a` -> "remote_ip", `%b` -> "bytes_sent" as a number...); a variable without a value
(mod_log's `-`) is left out, and so is the text between the variables.

Where ProFTPD's own output is odd, proftpy writes what its names say: `%{note:NAME}` is "NOTE:NAME" and
`%{env:NAME}` "ENV:NAME" (ProFTPD 1.3.8 writes "NOTE:<the value>" and no ENV member at all); `%{transfer-speed}`
has no member in ProFTPD's table and none here; `%t` is "local_time" as `2026-12-07 12:29:03 +0000`, and
`%{time:FMT}` a member named FMT.
"""

from __future__ import annotations

import time

from .logformat import Record, Token, found

STRING, NUMBER, BOOL = "s", "n", "b"

# variable -> (member name, JSON type)
KEYS: dict[str, tuple[str, str]] = {
    "a": ("remote_ip", STRING), "A": ("anon_password", STRING), "b": ("bytes_sent", NUMBER),
    "c": ("connection_class", STRING), "d": ("dir_name", STRING), "D": ("dir_path", STRING),
    "E": ("session_end_reason", STRING), "f": ("file", STRING), "F": ("transfer_path", STRING),
    "g": ("group", STRING), "h": ("remote_dns", STRING), "H": ("server_ip", STRING),
    "I": ("session_bytes_rcvd", NUMBER), "J": ("command_params", STRING), "l": ("identd_user", STRING),
    "L": ("local_ip", STRING), "m": ("command", STRING), "O": ("session_bytes_sent", NUMBER),
    "p": ("local_port", NUMBER), "P": ("pid", NUMBER), "r": ("raw_command", STRING),
    "R": ("response_millis", NUMBER), "s": ("response_code", NUMBER), "S": ("response_msg", STRING),
    "t": ("local_time", STRING), "T": ("transfer_secs", NUMBER), "u": ("user", STRING),
    "U": ("original_user", STRING), "v": ("server_name", STRING), "V": ("server_dns", STRING),
    "w": ("rename_from", STRING), "basename": ("basename", STRING), "epoch": ("epoch", NUMBER),
    "file-modified": ("file_modified", BOOL), "file-offset": ("file_offset", NUMBER),
    "file-size": ("file_size", NUMBER), "gid": ("gid", NUMBER), "iso8601": ("timestamp", STRING),
    "microsecs": ("microsecs", NUMBER), "millisecs": ("millisecs", NUMBER), "protocol": ("protocol", STRING),
    "remote-port": ("remote_port", NUMBER), "transfer-failure": ("transfer_failure", STRING),
    "transfer-millisecs": ("transfer_millis", NUMBER), "transfer-port": ("transfer_port", NUMBER),
    "transfer-status": ("transfer_status", STRING), "transfer-type": ("transfer_type", STRING),
    "uid": ("uid", NUMBER), "version": ("server_version", STRING),
}


def _number(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def members(tokens: list[Token], rec: Record) -> list[tuple[str, str | int | float | bool]]:
    """The (name, value) members of one record, in the format's order."""
    out: dict[str, str | int | float | bool] = {}
    for tok in tokens:
        if isinstance(tok, str):
            continue
        name, arg = tok
        if name == "t":
            tm = time.localtime(rec.now)
            out["local_time"] = time.strftime("%Y-%m-%d %H:%M:%S %z", tm)
            continue
        text = found(name, arg, rec)
        if text is None:
            continue
        if name == "time":
            out[arg] = text
        elif name in ("note", "env"):
            out[f"{name.upper()}:{arg}"] = text
        elif name in KEYS:
            key, kind = KEYS[name]
            if kind == NUMBER:
                number = _number(text)
                if number is not None:
                    out[key] = number
            elif kind == BOOL:
                out[key] = text == "true"
            else:
                out[key] = text
    return list(out.items())


def text(tokens: list[Token], rec: Record) -> str:
    """A format as text with the variables that have no value left empty (a RedisLogOn* key such as `ftp:%u`)."""
    parts = []
    for tok in tokens:
        if isinstance(tok, str):
            parts.append(tok)
        else:
            parts.append(found(tok[0], tok[1], rec) or "")
    return "".join(parts)
