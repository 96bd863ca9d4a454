"""How mod_exec runs a program: synchronously, through the standard library's subprocess, and more carefully than
ProFTPD's `exec_ssystem` where that costs no compatibility:

* the program gets exactly the argv built from the configuration (argv[0] is the path's last component, every
  configured word is one argument however the client's values expanded in it; no shell ever parses them);
* its environment is exactly what ExecEnviron says (ProFTPD's rule too);
* no descriptor of the daemon reaches it: subprocess closes every descriptor but 0, 1 and 2 (close_fds), so the
  control connection, listeners, the scoreboard, log files and the master's channels stay behind;
* stdin is a pipe, closed after the arguments are written (useStdin) or at once: a script inside a chroot without
  /dev/null still starts (ProFTPD fails there with "unable to open /dev/null");
* it runs in a process group of its own; past ExecTimeout the whole group gets SIGTERM, and SIGKILL
  `KILL_GRACE` seconds later, so what it started dies with it;
* stdout and stderr are read as they come, at most `MAX_OUTPUT` bytes of each are kept, the rest is read and
  dropped (the script never blocks on a full pipe, the daemon never buffers without end); once the program has
  exited, whatever it left running no longer holds the session up.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field

from .modlog import ModuleLog

MAX_OUTPUT = 64 * 1024          # bytes kept of a program's stdout and of its stderr
KILL_GRACE = 1.0                # seconds between SIGTERM and SIGKILL past ExecTimeout
TICK = 0.1                      # how often the wait looks whether the program has exited (without a pidfd)
DRAIN_READS = 16                # reads of one pipe in a row


@dataclass(frozen=True)
class Identity:
    """Who the program runs as: None keeps the process's own id (always so in a process that is not root)."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] | None = None   # () drops supplementary groups; None keeps them


@dataclass
class Outcome:
    status: int | None = None               # exit status, when it exited
    signal: int | None = None               # the signal that ended it
    error: str | None = None                # why it could not be started
    stdout: bytes = b""
    stderr: bytes = b""
    cut: list[str] = field(default_factory=list)    # the streams that went past MAX_OUTPUT
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 0

    def reason(self) -> str:
        """What the `... failed: <reason>` log line says."""
        if self.error is not None:
            return self.error
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exit status {self.status}"


def run(path: str, args: list[str], *, env: dict[str, str], identity: Identity, cwd: str,
        stdin_args: bool, timeout: float | None, log: ModuleLog, log_output: tuple[str, ...] = ()) -> Outcome:
    """Run `path` with `args` and wait for it (see the module docstring). With `stdin_args` (useStdin) the
    arguments go to stdin one per line, then a line `.`, and argv and the environment are empty (ProFTPD's
    useStdin). `log_output` names the streams ("stdout", "stderr") whose text goes to the log (logStdout,
    logStderr)."""
    argv0 = os.path.basename(path)
    argv = [argv0] if stdin_args else [argv0, *args]
    kwargs: dict = {}
    if os.getuid() == 0:
        if identity.uid is not None:
            kwargs["user"] = identity.uid
        if identity.gid is not None:
            kwargs["group"] = identity.gid
        if identity.groups is not None:
            kwargs["extra_groups"] = list(identity.groups)
    try:
        proc = subprocess.Popen(argv, executable=path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={} if stdin_args else env, cwd=cwd, close_fds=True,
                                process_group=0, **kwargs)
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        log.write(f"error: unable to execute '{path}': {reason}")
        return Outcome(error=reason)
    uid = identity.uid if identity.uid is not None and "user" in kwargs else os.geteuid()
    gid = identity.gid if identity.gid is not None and "group" in kwargs else os.getegid()
    log.write(f"preparing to execute '{path}' with uid {uid} (euid {uid}), gid {gid} (egid {gid})", proc.pid)
    for i, arg in enumerate(args, 1):
        log.write(f" + '{path}': argv[{i}] = {arg}", proc.pid)
    feed = ("".join(a + "\n" for a in args) + ".\n").encode("utf-8", "surrogateescape") if stdin_args else b""
    return _wait(proc, path, feed, timeout, log, log_output)


def _wait(proc: subprocess.Popen, path: str, feed: bytes, timeout: float | None, log: ModuleLog,
          log_output: tuple[str, ...]) -> Outcome:
    out = Outcome()
    kept = {"stdout": bytearray(), "stderr": bytearray()}
    sel = selectors.DefaultSelector()
    for name in ("stdout", "stderr"):
        stream = getattr(proc, name)
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ, name)
    if feed:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
    else:
        proc.stdin.close()
    exited = _exit_watch(proc)
    if exited is not None:
        sel.register(exited, selectors.EVENT_READ, "exit")
    deadline = time.monotonic() + timeout if timeout else None
    kill_at = None
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline and kill_at is None:
                log.write(f"'{path}' has exceeded ExecTimeout ({int(timeout)} seconds), sending SIGTERM (signal "
                          f"{int(signal.SIGTERM)})")
                _signal_group(proc, signal.SIGTERM)
                out.timed_out, kill_at = True, now + KILL_GRACE
            elif kill_at is not None and now >= kill_at:
                log.write(f"'{path}' has exceeded ExecTimeout ({int(timeout)} seconds), sending SIGKILL (signal "
                          f"{int(signal.SIGKILL)})")
                _signal_group(proc, signal.SIGKILL)
                kill_at = float("inf")
            wait = TICK if exited is None else _until(deadline if kill_at is None else kill_at)
            for key, _ in sel.select(wait):
                if key.data != "exit":
                    feed = _serve(sel, key, kept, feed, log, path)
        for key in list(sel.get_map().values()):       # what it wrote just before it exited
            if key.data in kept:
                _drain(sel, key, kept)
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if not stream.closed:
                stream.close()
        sel.close()
        if exited is not None:
            os.close(exited)
    for name in log_output:
        text = bytes(kept[name][:MAX_OUTPUT]).decode("utf-8", "replace").rstrip("\r\n")
        if text:
            log.write(f"{name} from '{path}': '{text}'")
    status = proc.returncode
    if status < 0:
        out.signal = -status
        log.write(f"'{path}' died from signal {-status}")
    else:
        out.status = status
        log.write(f"'{path}' terminated normally, with exit status {status}")
    for name, data in kept.items():
        if len(data) > MAX_OUTPUT:
            out.cut.append(name)
            log.write(f"{name} of '{path}' cut at {MAX_OUTPUT} bytes")
        setattr(out, name, bytes(data[:MAX_OUTPUT]))
    return out


def _exit_watch(proc: subprocess.Popen) -> int | None:
    """A descriptor that turns readable when the program exits (pidfd), or None where the kernel has none (the
    wait then looks every TICK)."""
    try:
        return os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return None


def _until(when: float | None) -> float | None:
    return None if when is None or when == float("inf") else max(0.0, when - time.monotonic())


def _serve(sel: selectors.BaseSelector, key: selectors.SelectorKey, kept: dict, feed: bytes, log: ModuleLog,
           path: str) -> bytes:
    """One ready pipe: write more of the arguments, or read what came."""
    if key.data == "stdin":
        try:
            n = os.write(key.fd, feed)
        except BlockingIOError:
            return feed
        except OSError as e:                            # the program closed its stdin
            log.write(f"error writing arguments to '{path}' on stdin: {e.strerror}")
            n = len(feed)
        feed = feed[n:]
        if not feed:
            sel.unregister(key.fileobj)
            key.fileobj.close()
        return feed
    _drain(sel, key, kept)
    return feed


def _drain(sel: selectors.BaseSelector, key: selectors.SelectorKey, kept: dict) -> None:
    """Read what the pipe holds now (a bounded number of reads: a program writing without pause must not keep the
    wait from its deadline); keep up to MAX_OUTPUT (+1, to know it was cut), drop the rest."""
    buf = kept[key.data]
    for _ in range(DRAIN_READS):
        try:
            chunk = os.read(key.fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            sel.unregister(key.fileobj)
            return
        if len(buf) <= MAX_OUTPUT:
            buf += chunk[:MAX_OUTPUT + 1 - len(buf)]


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass            # the group is gone already
