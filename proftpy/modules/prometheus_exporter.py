"""The metrics exporter: a process of its own, forked by the master (`Master.spawn_helper`), serving
`/metrics` (and `/`) in Prometheus' text format and, when configured, the status page (`/status`,
`/status.json`) on PrometheusExporter's address.

Before it serves anything it binds its socket, opens the scoreboard read-only and then, when started as root,
chroots into the private metrics directory and becomes the configured User (or nobody) for good: a scraper, slow
or hostile, reaches a process that holds no root, sees no user file and cannot stall the master or a session.
Each scrape reads the per-process files of prometheus-client's multiprocess mode; every few seconds the files
of sessions that have ended are folded into `*_archive.db` files.
"""
from __future__ import annotations

import base64
import glob
import gzip
import hmac
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from prometheus_client import CollectorRegistry, exposition, multiprocess
from prometheus_client.mmap_dict import MmapedDict

from .. import privs, trace
from ..net.http import HttpServer, Request, Response
from ..scoreboard import Scoreboard, ScoreboardError
from . import status_page

log = logging.getLogger("proftpy")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COMPACT_EVERY = 5.0                     # seconds between two sweeps for the files of ended sessions


@dataclass
class Settings:
    """What the exporter needs, gathered by the master before the fork."""

    host: str
    port: int
    directory: str                      # the private metrics directory
    username: str | None = None         # basic auth (both set, or neither)
    password: str | None = None
    status: bool = False                # serve /status and /status.json
    scoreboard: str | None = None       # ScoreboardFile, for the status page
    uid: int | None = None              # who the exporter becomes (None: stays as it is: a non-root daemon)
    gid: int | None = None
    log_path: str | None = None         # PrometheusLog
    server: dict = field(default_factory=dict)        # the status page's server facts (name, version, ...)
    sections: dict[str, Callable[[], list[dict]]] = field(default_factory=dict)
    build: dict[str, str] = field(default_factory=dict)   # proftpd_build_info's labels
    started: float = 0.0
    close_fds: tuple[int, ...] = ()     # the master's descriptors the exporter must not keep


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def constants(build: dict[str, str], started: float) -> bytes:
    """proftpd_build_info and proftpd_startup_time: counters whose value never changes, named as mod_prometheus
    names them (without `_total`, which prometheus-client would add to a counter's HELP and TYPE lines)."""
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(build.items()))
    return ("# HELP proftpd_build_info ProFTPD build information.\n# TYPE proftpd_build_info counter\n"
            f"proftpd_build_info{{{labels}}} 1.0\n"
            "# HELP proftpd_startup_time Time at which the server started.\n# TYPE proftpd_startup_time counter\n"
            f"proftpd_startup_time {float(int(started))!r}\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exporter:
    def __init__(self, settings: Settings, root: str, board: Scoreboard | None):
        self.s = settings
        self.root = root                    # the metrics directory as this process sees it ("/" once chrooted)
        self.board = board
        self.registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(self.registry, path=root)
        self.constants = constants(settings.build, settings.started)
        self.archives: dict[str, MmapedDict] = {}
        self.last_compact = 0.0
        auth = None
        if settings.username is not None:
            auth = "Basic " + base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
        self.auth = auth

    # -- HTTP ------------------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if self.auth is not None and not hmac.compare_digest(req.headers.get("authorization", "").encode(),
                                                             self.auth.encode()):
            log.info("exporter: %s %s from %s: bad or missing credentials", req.method, req.path, req.peer)
            return Response(401, b"authentication required\n", headers={"WWW-Authenticate": 'Basic realm="proftpy"'})
        if req.method not in ("GET", "HEAD"):
            return Response(405, b"only GET and HEAD\n", headers={"Allow": "GET, HEAD"})
        if req.path in ("/", "/metrics"):
            return self.metrics(req)
        if self.s.status and req.path == "/status":
            return Response(200, status_page.page(self.status()).encode(), "text/html; charset=utf-8")
        if self.s.status and req.path == "/status.json":
            return Response(200, (json.dumps(self.status()) + "\n").encode(), "application/json")
        return Response(400, b"unknown URI: use /metrics\n")

    def metrics(self, req: Request) -> Response:
        self.compact()
        body = exposition.generate_latest(self.registry) + self.constants
        headers = {}
        if "gzip" in req.headers.get("accept-encoding", ""):
            body = gzip.compress(body, 6)
            headers["Content-Encoding"] = "gzip"
        return Response(200, body, CONTENT_TYPE, headers)

    def status(self) -> dict:
        entries = []
        if self.board is not None:
            try:
                entries = self.board.entries()
            except (OSError, ScoreboardError) as e:
                log.warning("exporter: cannot read the scoreboard: %s", e)
        return status_page.document(entries, self.s.server, self.s.sections)

    # -- the files of ended sessions ---------------------------------------------------------------------------------
    def tick(self) -> None:
        if time.monotonic() - self.last_compact >= COMPACT_EVERY:
            self.compact()

    def compact(self) -> None:
        """Fold the counter and histogram files of processes that are gone into the archive files (their sums
        stay the same), and drop the gauge files the master could not (it may have been restarted)."""
        self.last_compact = time.monotonic()
        for path in glob.glob(os.path.join(self.root, "*.db")):
            prefix, _, pid_text = os.path.basename(path)[:-3].rpartition("_")
            if not pid_text.isdigit() or _alive(int(pid_text)):
                continue
            try:
                if prefix in ("counter", "histogram"):
                    archive = self._archive(prefix)
                    for key, value, _, _ in MmapedDict.read_all_values_from_file(path):
                        old, _ = archive.read_value(key)
                        archive.write_value(key, old + value, 0.0)
                os.unlink(path)
            except (OSError, ValueError) as e:
                log.warning("exporter: cannot fold %s into the archive: %s", path, e)

    def _archive(self, prefix: str) -> MmapedDict:
        if prefix not in self.archives:
            self.archives[prefix] = MmapedDict(os.path.join(self.root, f"{prefix}_archive.db"))
        return self.archives[prefix]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                 # someone else's process (a session running as its user)
        return True
    return True


def _log_to(path: str | None) -> None:
    """PrometheusLog: the exporter's own lines go there (opened before the privilege drop), else to the
    SystemLog handlers it inherited."""
    if path is None:
        return
    from ..log import SystemLogFormat
    handler = logging.FileHandler(path)
    handler.setFormatter(SystemLogFormat())
    logger = logging.getLogger("proftpy")
    for h in list(logger.handlers):
        logger.removeHandler(h)
    logger.addHandler(handler)


def run(s: Settings) -> None:
    """The exporter process's body (never returns while it serves)."""
    trace.configure({}, None, debug=0)      # the TraceLog is the master's and the sessions': closed below
    for fd in s.close_fds:
        try:
            os.close(fd)
        except OSError:
            pass                            # not open in this process
    _log_to(s.log_path)
    try:
        sock = bind(s.host, s.port)
    except OSError as e:
        log.error("PrometheusExporter: cannot listen on %s:%d: %s", s.host, s.port, e.strerror)
        raise SystemExit(2)
    board = None
    if s.status and s.scoreboard:
        try:
            board = Scoreboard.open(s.scoreboard, readonly=True)
        except ScoreboardError as e:
            log.warning("exporter: no sessions on the status page: %s", e)
    root = s.directory
    if os.geteuid() == 0 and s.uid is not None:
        os.chroot(s.directory)
        os.chdir("/")
        root = "/"
        os.setgroups([])
        os.setgid(s.gid if s.gid is not None else s.uid)
        os.setuid(s.uid)
        privs.harden_process()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = root
    from .prometheus_metrics import Metrics
    Metrics(zeros=True)                     # every expected series at 0, in the exporter's own files
    exporter = Exporter(s, root, board)
    log.info("Prometheus exporter listening on %s:%d (pid %d)", s.host, s.port, os.getpid())
    server = HttpServer(sock, exporter.handle, on_error=lambda m: log.warning("exporter: %s", m))
    server.serve(tick=exporter.tick)
