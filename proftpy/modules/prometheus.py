"""mod_prometheus: metrics for Prometheus (names, types, labels and buckets of ProFTPD's mod_prometheus) and
proftpy's live status page, served by an exporter process of their own.

Master: `master_init` makes a private directory for prometheus-client's multiprocess files and the metrics,
then forks the exporter (modules/prometheus_exporter.py); `master_tick` restarts an exporter that died (after a
pause), `master_reload` restarts it when its settings changed (the counters stay: the directory is kept across
HUP), `master_stop` stops it and removes the directory. Connections the master refuses (MaxInstances, bans...)
and sessions killed by SIGSEGV are counted from the master's events.

Session: the session opens its metric files at connect (before chroot and the privilege drop), then counts from
session events and command hooks: connections, logins and their failures, listings, downloads, uploads,
timeouts. The `protocol` label is `session.protocol` when the event happens ("ftps" once mod_tls set it); the
gauges move with it. mod_delay's delays (`mod_delay.delay`, data `seconds`) feed proftpd_login_delay_seconds and
mod_tls's handshake failures (`mod_tls.ctrl-handshake-failed`, `mod_tls.data-handshake-failed`) and protocol
versions (`mod_tls.protocol` with `version`) their counters.
"""
from __future__ import annotations

import dataclasses
import logging
import grp
import os
import pwd
import shutil
import signal
import tempfile
import time
from typing import TYPE_CHECKING, Any

from .. import PROFTPD_COMPAT, __version__, trace
from ..config.registry import SERVER, Directive, Merge
from ..config.types import Custom, Flag, Options, Path
from ..dispatch import LOG_CMD, LOG_CMD_ERR, Hook, Request
from ..module import Listener, MasterView, Module
from ..scoreboard import is_disabled
from .prometheus_metrics import AUTH_ERRORS, LOG_LEVELS, TIMEOUTS, Metrics, use_directory
from .scoreboard import BoardState
from .trace import TraceState

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session
    from . import prometheus_exporter as exporter

NAME = "mod_prometheus.c"
log = logging.getLogger("proftpy")
DEFAULT_PORT = 9273
RESTART_PAUSE = 5.0                 # seconds before a dead exporter is started again
OPTIONS = ("EnableLogMessageMetrics",)
LISTINGS = frozenset(("LIST", "NLST", "MLSD"))
DOWNLOADS = frozenset(("RETR",))
UPLOADS = frozenset(("STOR", "STOU", "APPE"))


# -- directives -----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ExporterAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_exporter(args: list[str]) -> ExporterAddress:
    """`address[:port] [username password]`; an IPv6 address in brackets (`[::1]:9273`)."""
    if len(args) not in (1, 3):
        raise ValueError("expected address[:port] [username password]")
    text = args[0]
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address '{text}'")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"bad port '{port_text}'")
        port = int(port_text)
    if not host:
        raise ValueError("missing address")
    host = "0.0.0.0" if host == "*" else host
    return ExporterAddress(host, port, *(args[1:] if len(args) == 3 else ()))


directives = (
    Directive("PrometheusEngine", Flag, SERVER, False, Merge.SERVER, "Collect metrics and run the exporter."),
    Directive("PrometheusExporter", Custom(parse_exporter, "address[:port] [username password]"), SERVER, None,
              Merge.SERVER, "Where the exporter listens (port 9273 by default), with optional basic auth "
              "(also from PROMETHEUS_USERNAME/PROMETHEUS_PASSWORD)."),
    Directive("PrometheusLog", Path(none_ok=True), SERVER, None, Merge.SERVER,
              "The exporter's own log file (default: the SystemLog)."),
    Directive("PrometheusOptions", Options(OPTIONS, "PrometheusOption", nocase=True), SERVER, frozenset(),
              Merge.SERVER, "EnableLogMessageMetrics: count log messages by level (proftpd_log_message_total)."),
    Directive("PrometheusTables", Path(), SERVER, None, Merge.SERVER,
              "Accepted for compatibility: where the private metrics directory is made (default: beside the "
              "ScoreboardFile)."),
    Directive("PrometheusStatusPage", Flag, SERVER, False, Merge.SERVER,
              "proftpy: serve the live status page (/status, /status.json) on the exporter's address."),
)


# -- state ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PromState:
    """The master's (inherited by sessions): the metrics, their directory, the exporter."""

    metrics: Metrics | None = None
    directory: str | None = None
    pid: int | None = None              # the exporter's
    settings_key: tuple | None = None   # what the running exporter was started with
    restart_at: float = 0.0
    uid: int | None = None              # the exporter's user (owns the directory)
    gid: int | None = None


@dataclasses.dataclass
class SessionMetrics:
    """A session's: the labels its gauges were raised with, and what is in progress."""

    protocol: str = "ftp"
    connected: bool = False
    logged_in: bool = False
    listing: bool = False
    transfer: str | None = None         # "download" / "upload" while one runs
    transfer_bytes: int = 0
    files_open: bool = False            # this process's metric files are made and the exporter's


def _metrics(session: "Session") -> Metrics | None:
    """The metrics, with this session's files open: a module loaded before this one may have ended the session
    in its session_init (a ban) before ours ran, and still count."""
    m = session.shared.get(PromState).metrics
    if m is not None and not session.state.get(SessionMetrics).files_open:
        session_init(session)
    return m


# -- master ---------------------------------------------------------------------------------------------------
def master_init(master: MasterView) -> None:
    main = master.config.main
    if not main.get("PrometheusEngine"):
        return
    st = master.state.get(PromState)
    st.uid, st.gid = _exporter_user(main)
    st.directory = _make_directory(main, st.uid, st.gid)
    use_directory(st.directory)
    st.metrics = Metrics()
    if "EnableLogMessageMetrics" in main.get("PrometheusOptions"):
        logging.getLogger("proftpy").addHandler(_LogCounter(st.metrics))
    _start(master, st)


def _exporter_user(main) -> tuple[int | None, int | None]:
    """The configured User (or nobody) and Group (or that user's group); None when not root (nothing to drop)."""
    if os.geteuid() != 0:
        return None, None
    name = main.get("User") or "nobody"
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        log.warning("PrometheusExporter: no user '%s', the exporter runs as nobody", name)
        pw = pwd.getpwnam("nobody")
    gid = pw.pw_gid
    group = main.get("Group")
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            log.warning("PrometheusExporter: no group '%s', using %s's", group, pw.pw_name)
    return pw.pw_uid, gid


def _make_directory(main, uid: int | None, gid: int | None) -> str:
    """A fresh private directory (0700, the exporter's) for the per-process metric files."""
    parent = main.get("PrometheusTables")
    if parent is None:
        board = main.get("ScoreboardFile")
        parent = os.path.dirname(board) if board and not is_disabled(board) else tempfile.gettempdir()
    os.makedirs(parent, 0o755, exist_ok=True)
    path = tempfile.mkdtemp(prefix="proftpy-metrics.", dir=parent)
    if uid is not None:
        os.chown(path, uid, gid if gid is not None else -1)
    return path


def _settings(master: MasterView, st: PromState) -> "exporter.Settings":
    from . import prometheus_exporter as exporter      # prometheus-client is loaded only when the engine is on
    main = master.config.main
    addr = main.get("PrometheusExporter")
    user, password = addr.username, addr.password
    if user is None and os.environ.get("PROMETHEUS_USERNAME"):
        user, password = os.environ["PROMETHEUS_USERNAME"], os.environ.get("PROMETHEUS_PASSWORD", "")
    board = master.state.get(BoardState).board
    close = [fd for fd in (board._fd, board._mutex_fd) if fd is not None] if board is not None else []
    trace_fd = master.state.get(TraceState).fd
    if trace_fd is not None:
        close.append(trace_fd)
    sections = {}
    for mod in master.modules.modules:
        if mod.status is not None:
            reader = mod.status(master)
            if reader is not None:
                sections[mod.name] = reader
    server = {"name": main.name, "version": __version__, "pid": os.getpid(), "started": master.started,
              "config_file": master.opts.config_path, "servers": [s.name for s in master.config.servers]}
    return exporter.Settings(
        addr.host, addr.port, st.directory, user, password, bool(main.get("PrometheusStatusPage")),
        board.path if board is not None else None, st.uid, st.gid, main.get("PrometheusLog"), server, sections,
        {"proftpd_version": PROFTPD_COMPAT, "mod_prometheus_version": f"proftpy/{__version__}"},
        master.started, tuple(close))


def _key(master: MasterView) -> tuple:
    main = master.config.main
    return (main.get("PrometheusExporter"), main.get("PrometheusStatusPage"), main.get("PrometheusLog"))


def _start(master: MasterView, st: PromState) -> None:
    if master.config.main.get("PrometheusExporter") is None:
        log.warning("PrometheusEngine on without PrometheusExporter: metrics are kept but not served")
        return
    from . import prometheus_exporter as exporter
    settings = _settings(master, st)
    st.settings_key = _key(master)
    st.pid = master.spawn_helper("metrics exporter", lambda: exporter.run(settings))
    if st.pid is None:
        st.restart_at = time.monotonic() + RESTART_PAUSE
    elif trace.on: trace.msg("prometheus", 3, "exporter started, pid %d", st.pid)


def master_tick(master: MasterView) -> None:
    st = master.state.get(PromState)
    if st.metrics is not None and st.pid is None and st.restart_at and time.monotonic() >= st.restart_at:
        st.restart_at = 0.0
        _start(master, st)


def master_reload(master: MasterView) -> None:
    st = master.state.get(PromState)
    main = master.config.main
    if st.metrics is None:
        if main.get("PrometheusEngine"):
            log.warning("PrometheusEngine on takes effect at the next restart")
        return
    if not main.get("PrometheusEngine"):
        log.warning("PrometheusEngine off takes effect at the next restart")
    if st.pid is not None and _key(master) != st.settings_key:
        _stop_exporter(st)                  # its exit restarts it with the new settings (child_exited)
        st.restart_at = time.monotonic()


def master_stop(master: MasterView) -> None:
    st = master.state.get(PromState)
    _stop_exporter(st)
    if st.directory is not None:
        shutil.rmtree(st.directory, ignore_errors=True)
        st.directory = None


def _stop_exporter(st: PromState) -> None:
    pid, st.pid = st.pid, None
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return                          # reaped already (the master's loop)
        if done:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass                                # reaped meanwhile


class _MasterListeners:
    """The master's event listeners get only the event's data, not the master: the module keeps the state of the
    one master of this process here (set when the master starts)."""

    state: PromState | None = None


def _on_child_exited(pid: int, status: int, child: Any = None, **_: Any) -> None:
    st = _MasterListeners.state
    if st is None or st.metrics is None:
        return
    if pid == st.pid:
        st.pid = None
        st.restart_at = st.restart_at or time.monotonic() + RESTART_PAUSE
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            log.warning("Prometheus exporter (pid %d) ended (%s); starting it again in %.0f s", pid,
                        f"exit {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else
                        f"signal {os.WTERMSIG(status)}", max(0.0, st.restart_at - time.monotonic()))
        return
    if child is None:
        return
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV:
        st.metrics.segfault.inc()
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(pid, st.directory)     # its gauges: it is no current connection any more


def _on_refused(connection: Any, veto: Any, **_: Any) -> None:
    st = _MasterListeners.state
    if st is None or st.metrics is None:
        return
    event = getattr(veto, "event", None) or ""
    if event.startswith("mod_ban."):
        st.metrics.ban.labels("ftp").inc()
    reason = {"core.max-instances": "MaxInstances", "core.max-connection-rate": "MaxConnectionRate"}.get(
        event, "banned" if event.startswith("mod_ban.") else (event or "refused"))
    st.metrics.connection_refused.labels("ftp", reason).inc()


def _init_listeners(master: MasterView) -> None:
    _MasterListeners.state = master.state.get(PromState)
    master_init(master)


class _LogCounter(logging.Handler):
    """PrometheusOptions EnableLogMessageMetrics: every log record counted by its level (syslog's names)."""

    def __init__(self, metrics: Metrics):
        super().__init__()
        self.counter = metrics.log_message

    def emit(self, record: logging.LogRecord) -> None:
        no = record.levelno
        level = ("crit" if no >= logging.CRITICAL else "error" if no >= logging.ERROR else
                 "warn" if no >= logging.WARNING else "notice" if no > logging.INFO else
                 "info" if no >= logging.INFO else "debug")
        assert level in LOG_LEVELS
        self.counter.labels(level).inc()


# -- session --------------------------------------------------------------------------------------------------
def session_init(session: "Session") -> None:
    """Open this process's metric files now, while still root and outside any chroot, and hand them to the
    exporter's user."""
    st = session.shared.get(PromState)
    if st.metrics is None or session.state.get(SessionMetrics).files_open:
        return
    session.state.get(SessionMetrics).files_open = True
    try:
        paths = st.metrics.open_files()
        if os.geteuid() == 0 and st.uid is not None:
            for path in paths:
                if os.path.exists(path):
                    os.chown(path, st.uid, st.gid if st.gid is not None else -1)
    except OSError as e:
        log.warning("metrics: cannot open this session's files: %s", e.strerror or e)


def _proto(session: "Session") -> str:
    """The protocol label now; the gauges this session raised move with it when it changed (AUTH TLS)."""
    ss = session.state.get(SessionMetrics)
    if session.protocol != ss.protocol:
        m = _metrics(session)
        for up, gauge in ((ss.connected, m.connection_count), (ss.logged_in, m.login_count),
                          (ss.listing, m.directory_list_count), (ss.transfer == "download", m.file_download_count),
                          (ss.transfer == "upload", m.file_upload_count)):
            if up:
                gauge.labels(ss.protocol).dec()
                gauge.labels(session.protocol).inc()
        ss.protocol = session.protocol
    return ss.protocol


def _connected(session: "Session", **_: Any) -> None:
    m = _metrics(session)
    if m is None:
        return
    ss = session.state.get(SessionMetrics)
    ss.protocol = session.protocol
    if session.closing:                     # refused at connect (ftpshut, <Limit LOGIN>, MaxConnectionsPerHost)
        m.connection_refused.labels(ss.protocol, session.end_reason or "refused").inc()
        return
    m.connection.labels(ss.protocol).inc()
    m.connection_count.labels(ss.protocol).inc()
    ss.connected = True


def _authenticated(session: "Session", **_: Any) -> None:
    m = _metrics(session)
    if m is None:
        return
    proto = _proto(session)
    m.auth.labels(proto, "anonymous" if session.anon is not None else "password").inc()
    m.login.labels(proto).inc()
    m.login_count.labels(proto).inc()
    session.state.get(SessionMetrics).logged_in = True


def _login_failed(session: "Session", reason: str | None = None, **_: Any) -> None:
    m = _metrics(session)
    if m is None:
        return
    proto = _proto(session)
    why = "unknown user" if reason is None else "bad password" if reason == "Incorrect password" else "denied"
    assert why in AUTH_ERRORS
    m.auth_error.labels(proto, why).inc()
    m.login_error.labels(proto).inc()


def _timeout(event: str):
    def count(session: "Session", **_: Any) -> None:
        m = _metrics(session)
        if m is not None:
            m.timeout.labels(_proto(session), TIMEOUTS[event]).inc()
    return count


def _delayed(session: "Session", seconds: float = 0.0, **_: Any) -> None:
    m = _metrics(session)
    if m is not None:
        m.login_delay.labels(_proto(session)).observe(seconds)


def _banned(session: "Session", **_: Any) -> None:
    """mod_ban refused the session itself (a ban the master did not know yet, a user ban at PASS)."""
    m = _metrics(session)
    if m is not None:
        m.ban.labels(_proto(session)).inc()


def _handshake_failed(connection: str):
    """mod_tls.ctrl-handshake-failed / mod_tls.data-handshake-failed."""
    def count(session: "Session", **_: Any) -> None:
        m = _metrics(session)
        if m is not None:
            m.handshake_error.labels(_proto(session), connection).inc()
    return count


def _tls_protocol(session: "Session", version: str = "", **_: Any) -> None:
    m = _metrics(session)
    if m is not None:
        m.tls_protocol.labels(_proto(session), version).inc()


def _transfer_begins(session: "Session", transfer: Any, **_: Any) -> None:
    m = _metrics(session)
    if m is None:
        return
    ss = session.state.get(SessionMetrics)
    name, proto = transfer.cmd.name, _proto(session)
    if name in LISTINGS:
        ss.listing = True
        m.directory_list_count.labels(proto).inc()
    elif name in DOWNLOADS or name in UPLOADS:
        ss.transfer = "download" if name in DOWNLOADS else "upload"
        (m.file_download_count if name in DOWNLOADS else m.file_upload_count).labels(proto).inc()


def _transfer_ends(session: "Session", transfer: Any, **_: Any) -> None:
    m = _metrics(session)
    if m is None:
        return
    ss = session.state.get(SessionMetrics)
    proto = _proto(session)
    if ss.listing:
        ss.listing = False
        m.directory_list_count.labels(proto).dec()
    elif ss.transfer is not None:
        (m.file_download_count if ss.transfer == "download" else m.file_upload_count).labels(proto).dec()
        ss.transfer = None
        ss.transfer_bytes = transfer.bytes


def _command_done(session: "Session", cmd: Request) -> None:
    _counted(session, cmd, failed=False)


def _command_failed(session: "Session", cmd: Request) -> None:
    _counted(session, cmd, failed=True)


def _counted(session: "Session", cmd: Request, failed: bool) -> None:
    """After a listing, download or upload: its total or its error counter, and the bytes of a transfer."""
    m = _metrics(session)
    name = cmd.name
    if m is None or not (name in LISTINGS or name in DOWNLOADS or name in UPLOADS):
        return
    proto = _proto(session)
    ss = session.state.get(SessionMetrics)
    if name in LISTINGS:
        (m.directory_list_error if failed else m.directory_list).labels(proto).inc()
    elif name in DOWNLOADS:
        (m.file_download_error if failed else m.file_download).labels(proto).inc()
        if not failed:
            m.file_download_bytes.labels(proto).observe(ss.transfer_bytes)
    else:
        (m.file_upload_error if failed else m.file_upload).labels(proto).inc()
        if not failed:
            m.file_upload_bytes.labels(proto).observe(ss.transfer_bytes)
    ss.transfer_bytes = 0


def _exited(session: "Session", **_: Any) -> None:
    m = _metrics(session)
    if m is None:
        return
    ss = session.state.get(SessionMetrics)
    proto = _proto(session)
    if session.user_arg is not None and not session.authenticated:
        m.auth_error.labels(proto, "incomplete").inc()     # USER without a PASS that settled it
    if ss.logged_in:
        m.login_count.labels(proto).dec()
    if ss.connected:
        m.connection_count.labels(proto).dec()
        m.connection_duration.labels(proto).observe(time.time() - session.started)
    if ss.listing:
        m.directory_list_count.labels(proto).dec()
    if ss.transfer is not None:
        (m.file_download_count if ss.transfer == "download" else m.file_upload_count).labels(proto).dec()
    ss.connected = ss.logged_in = ss.listing = False
    ss.transfer = None


def _collecting(config: "Config") -> bool:
    """Without PrometheusEngine (server config only) there are no metrics: sessions go without the hooks and
    listeners below."""
    return bool(config.main.get("PrometheusEngine"))


MODULE = Module(
    NAME, directives=directives, session_init=session_init,
    hooks=(Hook(LOG_CMD, "*", _command_done, active=_collecting),
           Hook(LOG_CMD_ERR, "*", _command_failed, active=_collecting)),
    listeners=tuple(Listener(event, handler, _collecting) for event, handler in (
        ("core.connect", _connected), ("mod_auth.authenticated", _authenticated),
        ("mod_auth.login-failed", _login_failed), *((event, _timeout(event)) for event in TIMEOUTS),
        ("mod_delay.delay", _delayed), ("mod_ban.login-denied", _banned),
        ("mod_tls.ctrl-handshake-failed", _handshake_failed("ctrl")),
        ("mod_tls.data-handshake-failed", _handshake_failed("data")), ("mod_tls.protocol", _tls_protocol),
        ("core.transfer-begin", _transfer_begins), ("core.transfer-end", _transfer_ends), ("core.exit", _exited))),
    master_init=_init_listeners, master_tick=master_tick, master_reload=master_reload, master_stop=master_stop,
    master_events=(Listener("core.child-exited", _on_child_exited), Listener("core.connection-refused", _on_refused)))
