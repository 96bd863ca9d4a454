"""A module's own log file (ExecLog, WrapLog) in ProFTPD's `pr_log_writefile` shape:

    2026-01-02 03:04:05,678 mod_exec/0.9.16[1234]: ExecOnConnect '/usr/local/bin/hook' succeeded

The tag is ProFTPD 1.3.8's module name and version, so whatever reads ProFTPD's file reads this one. The file is
opened like the other logs (log/files.py `open_logfile`: no world-writable directory, no symbolic link, O_APPEND,
close-on-exec) while the process may still open it (as root, before chroot), and each line is one write(2).
"""

from __future__ import annotations

import logging
import os
import time

from ..log.files import open_logfile, write_line

log = logging.getLogger("proftpy")


class ModuleLog:
    """One module log of one process; writes nothing until `open` succeeds (and after `close`)."""

    def __init__(self, tag: str):
        self.tag = tag
        self.fd: int | None = None
        self.path: str | None = None

    def open(self, path: str | None, allow_symlinks: bool = False) -> None:
        """(Re)open at `path` (a rotated file is let go); None (the directive's `none`) closes it. A refused path
        is a SystemLog line."""
        self.close()
        if path is None:
            return
        try:
            self.fd = open_logfile(path, allow_symlinks)
        except OSError as e:
            log.warning("%s: unable to open log '%s': %s", self.tag.split("/")[0], path, e.strerror or e)
            return
        self.path = path

    def write(self, text: str, pid: int | None = None) -> None:
        if self.fd is None:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"
        write_line(self.fd, f"{stamp} {self.tag}[{pid or os.getpid()}]: {text}\n", self.tag)

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass            # already gone: nothing left to release
        self.fd = self.path = None
