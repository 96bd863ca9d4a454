"""Who is connected, as data: ftpwho's JSON (`ftpwho -o json`) and the status page's JSON view share it.

The field names and shapes are ProFTPD's ftpwho JSON (utils/ftpwho.c): scripts written for `ftpwho -o json`
read the status page's `/status.json` sessions unchanged. The status page adds a few fields of its own to each
connection (`idle_seconds`, `transfer_rate_kbps`, `transfer_size`); ftpwho prints exactly ProFTPD's.
"""
from __future__ import annotations

import json
from typing import Iterable

from .scoreboard import Entry, Header


def percent_complete(size: int, done: int) -> str:
    """ftpwho's percentage: "0" before any byte, "Inf" without a known size, at most "100"."""
    if done == 0:
        return "0"
    if size == 0:
        return "Inf"
    if done >= size:
        return "100"
    return f"{done / size * 100:.0f}"


def kbps(length: int, elapsed_ms: int) -> float:
    """Transfer rate in KB/s; 0 before the first millisecond (ProFTPD would print inf there)."""
    return (length / 1024.0) / (elapsed_ms / 1000.0) if elapsed_ms > 0 else 0.0


def class_counts(entries: Iterable[Entry]) -> list[tuple[str, int]]:
    """Sessions per class in order of first appearance; class names compare case-insensitively."""
    counts: dict[str, list] = {}
    for e in entries:
        counts.setdefault(e.class_.lower(), [e.class_, 0])[1] += 1
    return [(name, n) for name, n in counts.values()]


def connection(e: Entry) -> dict:
    """One session as ftpwho's JSON shows it."""
    conn: dict = {"pid": e.pid, "connected_since_ms": e.begin_session * 1000, "remote_name": e.client_name,
                  "remote_address": e.client_addr, "local_address": e.server_addr, "local_port": e.server_port,
                  "authenticating": not e.authenticated}
    if e.authenticated:
        conn["user"] = e.user
    for key, value in (("class", e.class_), ("protocol", e.protocol), ("location", e.cwd)):
        if value:
            conn[key] = value
    conn["idling"] = e.idle
    if e.idle:
        conn["idle_since_ms"] = e.begin_idle * 1000
    elif e.cmd:
        conn["command"] = e.cmd
        conn["command_args"] = e.cmd_arg
    conn["downloading"] = e.downloading
    conn["uploading"] = e.uploading
    if e.downloading:
        conn["transfer_completed"] = percent_complete(e.xfer_size, e.xfer_done)
    if e.downloading or e.uploading:
        conn["transfer_bytes"] = e.xfer_done
        conn["transfer_duration_ms"] = e.xfer_elapsed_ms
    return conn


def server(header: Header) -> dict:
    out: dict = {"server_type": "standalone" if header.standalone else "inetd"}
    if header.standalone:
        out.update(pid=header.master_pid, started_ms=header.master_start * 1000)
    return out


def document(header: Header, entries: list[Entry]) -> dict:
    """ftpwho's whole JSON document."""
    return {"server": server(header), "connections": [connection(e) for e in entries]}


def render_json(header: Header, entries: list[Entry]) -> str:
    return json.dumps(document(header, entries)) + "\n"


def live_connection(e: Entry, now: float) -> dict:
    """ftpwho's fields plus what a live page shows: idle seconds, the transfer's rate and expected size, the
    server's name."""
    conn = connection(e)
    conn["server_name"] = e.server_label
    conn["idle_seconds"] = max(0, int(now) - e.begin_idle) if e.idle and e.begin_idle else 0
    conn["session_seconds"] = max(0, int(now) - e.begin_session) if e.begin_session else 0
    if e.downloading or e.uploading:
        conn["transfer_rate_kbps"] = round(kbps(e.xfer_len, e.xfer_elapsed_ms), 2)
        conn["transfer_size"] = e.xfer_size
    return conn
