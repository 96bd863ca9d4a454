"""Process bootstrap around the master: PidFile, detaching from the terminal, and inetd mode."""

from __future__ import annotations

import logging
import os
import socket
import sys

from . import modules
from .config.tree import Config
from .master import Master, Options, connection_of, serve_connection
from .module import States

log = logging.getLogger("proftpy")


def write_pidfile(path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def remove_pidfile(path: str) -> None:
    """Remove the PidFile only if it still names this process (a newer daemon may own it)."""
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as e:
        log.error("cannot remove PidFile %s: %s", path, e.strerror)


def run_daemon(config: Config, opts: Options, inetd: bool = False) -> int:
    if inetd:
        return run_inetd(config)
    master = Master(config, opts)
    try:
        master.bind()
    except OSError as e:
        print(f"proftpy: cannot bind: {e.strerror}", file=sys.stderr)
        return 1
    pidfile = config.main.get("PidFile")
    if not opts.foreground:
        ready_r, ready_w = os.pipe()
        first = os.fork()
        if first > 0:                          # the caller's process: wait until the daemon is ready
            os.close(ready_w)
            os.waitpid(first, 0)               # the intermediate child exits at once; leave no zombie
            answer = os.read(ready_r, 512).decode(errors="replace")
            if answer != "ok":
                print(f"proftpy: {answer or 'daemon failed to start'}", file=sys.stderr)
                return 1
            sys.stdout.flush()
            os._exit(0)                        # nothing to clean up here: skip the interpreter's teardown
        os.close(ready_r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        _detach_stdio()
    master.install_signals()                   # a SIGTERM from now on is handled: the PidFile is removed
    try:
        write_pidfile(pidfile)
    except OSError as e:
        message = f"cannot write PidFile {pidfile}: {e.strerror}"
        if not opts.foreground:
            os.write(ready_w, message.encode())
            os._exit(1)
        print(f"proftpy: {message}", file=sys.stderr)
        return 1
    def ready() -> None:
        os.write(ready_w, b"ok")
        os.close(ready_w)

    try:
        try:
            master.start(ready=None if opts.foreground else ready)
        except SystemExit as e:
            message = str(e.code) if e.code not in (None, 0, 1) else "daemon failed to start"
            if not opts.foreground:
                os.write(ready_w, message.removeprefix("proftpy: ").encode())
                return 1
            print(message, file=sys.stderr)
            return 1
        return master.serve()
    finally:
        remove_pidfile(pidfile)


def run_inetd(config: Config) -> int:
    """ServerType inetd: the connection is our standard input. No master: no pre-steps, vetoes or channel."""
    conn = connection_of(socket.socket(fileno=os.dup(0)))
    if conn is not None:
        serve_connection(conn, config, modules.loaded(), States(), fallback=config.main)
    return 0


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
