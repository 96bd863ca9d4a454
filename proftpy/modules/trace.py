"""mod_core's trace directives: Trace, TraceLog, TraceOptions (and DebugLevel's share of `-d`).

The master opens the TraceLog as root before any session exists and keeps it open; every session inherits the
descriptor, so a session that has chrooted and dropped root still writes to it. The master traces with the main
server's settings; a session switches to its vhost's settings (ProFTPD allows Trace and TraceOptions in a
`<VirtualHost>`) and tells the trace facility its connection's addresses (TraceOptions +ConnIPs). The lines
themselves are written by proftpy/trace.py.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING

from .. import trace
from ..config.registry import GLOBAL, SERVER, SVG, Directive, Merge
from ..config.types import Custom, Path
from ..module import MasterView, Module
from ..log.files import open_logfile

if TYPE_CHECKING:
    from ..config.tree import Config, Server
    from ..session import Session

NAME = "mod_core.c"
log = logging.getLogger("proftpy")

directives = (
    Directive("Trace", Custom(trace.parse_spec, "channel:level[-level] ... | DEFAULT:level"), SVG, None,
              Merge.SERVER, "Trace channels and the levels written to the TraceLog (docs/observability.md).",
              repeat=True),
    Directive("TraceLog", Path(), SERVER | GLOBAL, None, Merge.SERVER,
              "File the Trace lines are written to (opened by the master as root)."),
    Directive("TraceOptions", Custom(trace.parse_options, "+|-ConnIPs +|-Timestamp +|-TimestampMillis"), SVG,
              None, Merge.SERVER, "What each trace line starts with (default: +Timestamp +TimestampMillis -ConnIPs)."),
)


@dataclasses.dataclass
class TraceState:
    """The master's open TraceLog (inherited by sessions); `opened`: set up (by the master, or in inetd mode by
    the session itself)."""

    path: str | None = None
    fd: int | None = None
    opened: bool = False


def specs(server: "Server") -> list[tuple[str, int, int]]:
    """Every `Trace` line of a server, in file order."""
    return [s for p in server.section.all("Trace") for s in p.value]


def _open(st: TraceState, path: str | None) -> None:
    """(Re)open the TraceLog when its path changed; a refused path is logged and tracing to a file stays off."""
    if path == st.path and st.fd is not None:
        return
    if st.fd is not None:
        os.close(st.fd)
    st.path, st.fd = path, None
    if path is None:
        return
    try:
        st.fd = open_logfile(path, mode=trace.LOG_MODE)
    except OSError as e:
        log.warning("unable to open TraceLog '%s': %s", path, e.strerror or e)


def _apply(st: TraceState, config: "Config", debug: int) -> None:
    main = config.main
    _open(st, main.get("TraceLog"))
    trace.configure(trace.levels_of(specs(main)), st.fd, main.get("TraceOptions") or trace.Options(),
                    max(debug, main.get("DebugLevel")))


def master_init(master: MasterView) -> None:
    st = master.state.get(TraceState)
    st.opened = True
    _apply(st, master.config, master.opts.debug)
    if trace.on: trace.msg("config", 1, "trace channels: %s", _describe(trace.levels()))


def master_reload(master: MasterView) -> None:
    _apply(master.state.get(TraceState), master.config, master.opts.debug)


def master_stop(master: MasterView) -> None:
    st = master.state.get(TraceState)
    trace.configure({}, None)
    if st.fd is not None:
        os.close(st.fd)
        st.fd = None


def session_init(session: "Session") -> None:
    st = session.shared.get(TraceState)
    if not st.opened:                   # inetd mode: no master opened it
        st.opened = True
        _apply(st, session.config, 0)
    server = session.server
    if server is not session.config.main:       # the vhost's own Trace / TraceOptions
        trace.configure(trace.levels_of(specs(server)), st.fd, server.get("TraceOptions") or trace.Options())
    trace.connection(session.remote_addr, session.local_addr, session.local_port)
    if trace.on: trace.msg("inet", 7, "connected - local: %s:%d, remote: %s:%d", session.local_addr, session.local_port, session.remote_addr, session.remote_port)


def _describe(levels: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{c}:{lo}-{hi}" if lo != 1 else f"{c}:{hi}" for c, (lo, hi) in sorted(levels.items())) \
        or "none"


MODULE = Module(NAME, directives=directives, session_init=session_init, master_init=master_init,
                master_reload=master_reload, master_stop=master_stop)
