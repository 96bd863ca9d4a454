"""mod_prometheus's metrics: names, types, labels and buckets as mod_prometheus declares them (reference
modules.md §6a), kept with the official prometheus-client library in its multiprocess mode.

How the numbers cross processes: every process (the master, each session) writes its values into its own small
memory-mapped files in a private directory (`counter_<pid>.db`, `histogram_<pid>.db`, `gauge_livesum_<pid>.db`);
the exporter sums them when scraped. A session killed with SIGKILL leaves its files behind, so its counts survive;
the master drops the gauge file of every session it reaps (a dead session is no current connection); the exporter
folds the counter and histogram files of dead sessions into `*_archive.db` files so the directory does not grow
with every session. Measured cost (docs/performance.md): about 1 µs per counter increment and 2 µs per histogram
observation in a session, and about 1 ms once per session to open its files.
"""
from __future__ import annotations

import os
from typing import Any

PROTOCOLS = ("ftp", "ftps")
KB, MB, GB = 1024, 1024 ** 2, 1024 ** 3
BYTES_BUCKETS = (10 * KB, 50 * KB, 100 * KB, MB, 10 * MB, 50 * MB, 100 * MB, 500 * MB, GB, 100 * GB)
DURATION_BUCKETS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21600, 86400)
DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TIMEOUTS = {"core.timeout-idle": "TimeoutIdle", "core.timeout-login": "TimeoutLogin",
            "core.timeout-no-transfer": "TimeoutNoTransfer", "core.timeout-session": "TimeoutSession",
            "core.timeout-stalled": "TimeoutStalled"}
AUTH_ERRORS = ("unknown user", "bad password", "incomplete", "denied")
LOG_LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
FILE_PREFIXES = ("counter", "histogram", "gauge_livesum")


def use_directory(path: str) -> None:
    """Point prometheus-client's multiprocess mode at `path`; must run before any metric exists (the master's
    start). The environment variable is how the library finds the directory when a value opens its file."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    from prometheus_client import values
    values.ValueClass = values.MultiProcessValue()


class Metrics:
    """Every metric, made once in the master after `use_directory` (sessions inherit them through fork)."""

    def __init__(self, zeros: bool = False) -> None:
        from prometheus_client import Counter, Gauge, Histogram
        p = ("protocol",)

        def counter(name: str, doc: str, labels: tuple[str, ...] = p) -> Any:
            return Counter(name, doc, labels, registry=None)

        def gauge(name: str, doc: str) -> Any:
            return Gauge(name, doc, p, registry=None, multiprocess_mode="livesum")

        def histogram(name: str, doc: str, buckets: tuple) -> Any:
            return Histogram(name, doc, p, registry=None, buckets=buckets)

        self.connection = counter("proftpd_connection", "Number of connections.")
        self.connection_count = gauge("proftpd_connection_count", "Current count of connections.")
        self.connection_duration = histogram("proftpd_connection_duration_seconds",
                                             "Amount of time spent in a connection.", DURATION_BUCKETS)
        self.connection_refused = counter("proftpd_connection_refused", "Number of refused connections.",
                                          ("protocol", "reason"))
        self.auth = counter("proftpd_auth", "Number of successful authentications.", ("protocol", "method"))
        self.auth_error = counter("proftpd_auth_error", "Number of failed authentications.", ("protocol", "reason"))
        self.login = counter("proftpd_login", "Number of logins.")
        self.login_count = gauge("proftpd_login_count", "Current count of logged-in users.")
        self.login_delay = histogram("proftpd_login_delay_seconds", "Delay before a login (mod_delay).",
                                     DELAY_BUCKETS)
        self.login_error = counter("proftpd_login_error", "Number of failed logins.")
        self.directory_list = counter("proftpd_directory_list", "Number of directory listings.")
        self.directory_list_count = gauge("proftpd_directory_list_count", "Current count of directory listings.")
        self.directory_list_error = counter("proftpd_directory_list_error",
                                            "Number of failed directory listings.")
        self.file_download = counter("proftpd_file_download", "Number of downloaded files.")
        self.file_download_count = gauge("proftpd_file_download_count", "Current count of downloading files.")
        self.file_download_bytes = histogram("proftpd_file_download_bytes", "Amount of data downloaded.",
                                             BYTES_BUCKETS)
        self.file_download_error = counter("proftpd_file_download_error", "Number of failed file downloads.")
        self.file_upload = counter("proftpd_file_upload", "Number of uploaded files.")
        self.file_upload_count = gauge("proftpd_file_upload_count", "Current count of uploading files.")
        self.file_upload_bytes = histogram("proftpd_file_upload_bytes", "Amount of data uploaded.", BYTES_BUCKETS)
        self.file_upload_error = counter("proftpd_file_upload_error", "Number of failed file uploads.")
        self.timeout = counter("proftpd_timeout", "Number of timeouts.", ("protocol", "reason"))
        self.handshake_error = counter("proftpd_handshake_error", "Number of failed TLS handshakes.",
                                       ("protocol", "connection"))
        self.tls_protocol = counter("proftpd_tls_protocol", "Number of TLS sessions by protocol version.",
                                    ("protocol", "version"))
        self.log_message = counter("proftpd_log_message", "Number of log messages.", ("level",))
        self.segfault = counter("proftpd_segfault", "Number of sessions killed by a segmentation fault.", ())
        self.ban = counter("proftpd_ban", "Number of connections refused by a ban (mod_ban).", ("protocol",))
        if zeros:
            self.zeros()

    def zeros(self) -> None:
        """Make the series dashboards expect exist from the start, at 0 (a series that appears late breaks
        rate() for its first minutes). The exporter does this, in its own files: a series made in the master
        would be copied into the files of every session at its first event (prometheus-client re-reads every
        value it knows after a fork), which cost 3 ms per session."""
        for proto in PROTOCOLS:
            for metric in (self.connection, self.login, self.login_error, self.directory_list,
                           self.directory_list_error, self.file_download, self.file_download_error,
                           self.file_upload, self.file_upload_error, self.ban):
                metric.labels(proto)
            for metric in (self.connection_count, self.login_count, self.directory_list_count,
                           self.file_download_count, self.file_upload_count):
                metric.labels(proto)
            for metric in (self.connection_duration, self.login_delay, self.file_download_bytes,
                           self.file_upload_bytes):
                metric.labels(proto)
            for method in ("password", "anonymous"):
                self.auth.labels(proto, method)
            for reason in AUTH_ERRORS:
                self.auth_error.labels(proto, reason)
            for reason in TIMEOUTS.values():
                self.timeout.labels(proto, reason)
        self.segfault.inc(0)

    def open_files(self) -> list[str]:
        """In a fresh session: make prometheus-client open this process's three files now (before chroot and the
        privilege drop: later it could not), and return their paths. Making one series of each type does it."""
        self.connection.labels(PROTOCOLS[0])
        self.connection_count.labels(PROTOCOLS[0])
        self.connection_duration.labels(PROTOCOLS[0])
        directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        pid = os.getpid()
        return [os.path.join(directory, f"{prefix}_{pid}.db") for prefix in FILE_PREFIXES]
