"""ProFTPD's shutdown message file (/etc/shutmsg), written by ftpshut, read by the master and sessions.

Format (utils/ftpshut.c, src/support.c check_shutmsg), two lines:
    ``Y M D h m s HHMM HHMM``  shutdown time in local time, then how long before it new connections are
                             refused and existing ones disconnected (hours and minutes, 4 digits each)
    ``message``              with cookies %s %r %d (shutdown, deny, disconnect times), %T (now), %C %L %R %U %V

The file path is compiled into ProFTPD; proftpy honours PROFTPY_SHUTMSG so tests and unprivileged
installations can point somewhere else.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import re
import time

DEFAULT_PATH = "/etc/shutmsg"
ENV_PATH = "PROFTPY_SHUTMSG"
DEFAULT_MESSAGE = "going down at %s"
DEFAULT_DENY_MINUTES = 10
DEFAULT_DISCONNECT_MINUTES = 5
MAX_MINUTES = 99 * 60 + 59          # the file holds HHMM: larger offsets cannot be written
DENY_REPLY = "FTP server shut down ({}) -- please try again later"        # 500, new connections
DISCONNECT_REPLY = "FTP server shutting down - {}"                        # 421, existing sessions

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_COOKIE = re.compile(r"%([srdCLRTUV])")


class ShutmsgError(ValueError):
    """A shutdown file that exists but cannot be understood; callers log it and carry on."""


def default_path() -> str:
    return os.environ.get(ENV_PATH) or DEFAULT_PATH


def format_time(t: float) -> str:
    """ProFTPD's pr_strtime(): "Fri Nov 07 19:05:00 2025" in local time, English names whatever the locale."""
    tm = time.localtime(t)
    return (f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:02d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_year}")


def expand(message: str, values: dict[str, str]) -> str:
    """Replace %X cookies in one pass (a value containing '%' is not expanded again); unknown ones stay."""
    return _COOKIE.sub(lambda m: values.get(m.group(1), m.group(0)), message)


@dataclasses.dataclass(frozen=True)
class ShutdownState:
    shutdown_at: float
    deny_at: float
    disconnect_at: float
    message: str                 # raw, cookies not expanded
    checked_at: float            # the `now` given to check()

    @property
    def denying(self) -> bool:
        """New connections get `500 FTP server shut down (...)`."""
        return self.checked_at >= self.deny_at

    @property
    def disconnecting(self) -> bool:
        """Existing sessions get `421 FTP server shutting down - ...` and are closed."""
        return self.checked_at >= self.disconnect_at

    def cookies(self, *, cwd: str = "", local: str = "", remote: str = "", user: str = "",
                server_name: str = "") -> dict[str, str]:
        return {"s": format_time(self.shutdown_at), "r": format_time(self.deny_at),
                "d": format_time(self.disconnect_at), "T": format_time(self.checked_at),
                "C": cwd, "L": local, "R": remote, "U": user, "V": server_name}

    def expanded(self, **session_values: str) -> str:
        """The message as a client sees it; keywords as for cookies() (cwd, local, remote, user, server_name)."""
        return expand(self.message, self.cookies(**session_values))


def _offset(token: str) -> int:
    """"HHMM" -> seconds; ProFTPD treats anything that is not 4 characters as 0."""
    if len(token) != 4 or not token.isdigit():
        return 0
    return int(token[:2]) * 3600 + int(token[2:]) * 60


def parse(text: str, now: float) -> ShutdownState:
    lines = text.splitlines()
    fields = lines[0].split() if lines else []
    if len(fields) < 6:
        raise ShutmsgError("first line must be 'Y M D h m s HHMM HHMM'")
    try:
        y, mo, d, h, mi, s = (int(x) for x in fields[:6])
        shutdown = time.mktime((y, mo, d, h, mi, s, 0, 0, -1))
    except (ValueError, OverflowError) as e:
        raise ShutmsgError(f"bad shutdown time {' '.join(fields[:6])!r}: {e}") from None
    deny = shutdown - _offset(fields[6] if len(fields) > 6 else "")
    disc = shutdown - _offset(fields[7] if len(fields) > 7 else "")
    return ShutdownState(shutdown, deny, disc, lines[1] if len(lines) > 1 else "", now)


def check(path: str | None = None, now: float | None = None) -> ShutdownState | None:
    """The scheduled shutdown, or None when there is no shutdown file. Raises ShutmsgError if unreadable."""
    path = path or default_path()
    now = time.time() if now is None else now
    try:
        with open(path, "rb") as f:
            raw = f.read(64 * 1024)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ShutmsgError(f"{path}: {e.strerror}") from None
    try:
        return parse(raw.decode("utf-8", "replace"), now)
    except ShutmsgError as e:
        raise ShutmsgError(f"{path}: {e}") from None


def render(shutdown_at: float, deny_minutes: int, disconnect_minutes: int, message: str) -> str:
    for name, value in (("deny", deny_minutes), ("disconnect", disconnect_minutes)):
        if not 0 <= value <= MAX_MINUTES:
            raise ShutmsgError(f"{name} offset must be between 0 and {MAX_MINUTES} minutes, not {value}")
    tm = time.localtime(shutdown_at)
    first = (f"{tm.tm_year} {tm.tm_mon} {tm.tm_mday} {tm.tm_hour} {tm.tm_min} {tm.tm_sec}"
             f" {deny_minutes // 60:02d}{deny_minutes % 60:02d}"
             f" {disconnect_minutes // 60:02d}{disconnect_minutes % 60:02d}\n")
    return first + message.replace("\n", " ") + "\n"


def write(path: str, shutdown_at: float, deny_minutes: int = DEFAULT_DENY_MINUTES,
          disconnect_minutes: int = DEFAULT_DISCONNECT_MINUTES, message: str = DEFAULT_MESSAGE) -> None:
    """Write the file atomically (temp file + rename, mode 0644): a session never reads half of it."""
    text = render(shutdown_at, deny_minutes, disconnect_minutes, message)
    import tempfile             # only ftpshut writes the file: the daemon does not load tempfile to start
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".shutmsg.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove(path: str) -> bool:
    """Cancel a scheduled shutdown; returns whether a file was there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def parse_when(spec: str, now: float) -> float:
    """ftpshut's time argument: `now`, `+N` minutes, `HHMM` or `HH` (a time already past means tomorrow)."""
    if spec.lower() == "now":
        return now
    if spec.startswith("+"):
        minutes = spec[1:].strip()
        if not minutes.isdigit():
            raise ShutmsgError(f"invalid time interval '{spec}'")
        return now + 60 * int(minutes)
    if len(spec) not in (2, 4) or not spec.isdigit():
        raise ShutmsgError(f"invalid time '{spec}' (use now, +minutes, HHMM or HH)")
    hour, minute = int(spec[:2]), int(spec[2:] or 0)
    if hour > 23 or minute > 59:
        raise ShutmsgError(f"invalid time '{spec}' (use now, +minutes, HHMM or HH)")
    today = datetime.datetime.fromtimestamp(now)
    day = today.date()
    if (hour, minute) <= (today.hour, today.minute):
        day += datetime.timedelta(days=1)
    return time.mktime((day.year, day.month, day.day, hour, minute, 0, 0, 0, -1))
