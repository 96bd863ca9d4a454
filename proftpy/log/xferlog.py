"""The TransferLog line (xferlog(5)), exactly as ProFTPD's src/xferlog.c writes it:

    current-time transfer-secs remote-host bytes filename type special-action direction access-mode username
    service auth-method auth-user-id completion

`current-time` is `Www Mmm dd hh:mm:ss YYYY` (local time, day padded with a space), the filename has every space
and control character replaced by `_` so the line always has 14 fields, `auth-method` is 0 (no RFC 1413 ident)
and `auth-user-id` `*`. Pure functions only: the session side lives in proftpy/modules/log.py.
"""

from __future__ import annotations

import time

# ProFTPD's PR_ISSPACE/PR_ISCNTRL: C isspace() and iscntrl() in the C locale.
_SPACE_OR_CNTRL = frozenset(" \t\n\v\f\r") | frozenset(chr(c) for c in range(32)) | {"\x7f"}


def sanitize(name: str) -> str:
    """A field that must stay one word: spaces and control characters become `_`."""
    return "".join("_" if ch in _SPACE_OR_CNTRL else ch for ch in name)


def stamp(when: float) -> str:
    """ProFTPD 1.3.8's pr_strtime3() (src/xferlog.c): `Mon Jan 02 03:04:05 2006` in local time, the day as two
    digits (as Debian's ProFTPD writes it)."""
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(when))


def line(*, when: float, seconds: float, host: str, size: int, filename: str, ascii: bool, direction: str,
         anonymous: bool, user: str, completed: bool, service: str = "ftp", ident: str | None = None,
         action: str = "_") -> str:
    """One xferlog line, newline included. `direction` is "o" (download), "i" (upload) or "d" (delete);
    `user` is the login name, or the anonymous password for anonymous sessions (as ProFTPD logs it); `ident` the
    RFC 1413 name (None: no lookup; `UNKNOWN`: a lookup without an answer, logged `*`)."""
    if direction not in ("o", "i", "d"):
        raise ValueError(f"direction must be o, i or d, not {direction!r}")
    fields = [
        stamp(when),
        str(max(0, int(seconds))),               # whole seconds, cut like ProFTPD's tv_sec
        sanitize(host) or "*",
        str(max(0, int(size))),
        sanitize(filename) or "_",
        "a" if ascii else "b",
        action,
        direction,
        "a" if anonymous else "r",
        sanitize(user) or "*",                   # an empty or spaced password must not shift the columns
        service,
        "0" if ident is None else "1",             # "1": an RFC 1413 lookup was made (IdentLookups on)
        sanitize(ident) if ident and ident != "UNKNOWN" else "*",
        "c" if completed else "i",
    ]
    return " ".join(fields) + "\n"


def parse(text: str) -> dict[str, str]:
    """Split one xferlog line into named fields (for tests and tools). The time is fixed-width (24 characters)."""
    text = text.rstrip("\n")
    words = text[25:].split(" ")
    names = ("transfer-secs", "remote-host", "bytes", "filename", "type", "special-action", "direction",
             "access-mode", "username", "service", "auth-method", "auth-user-id", "completion")
    if len(text) < 25 or text[24] != " " or len(words) != len(names):
        raise ValueError(f"not an xferlog line: {text!r}")
    fields = {"current-time": text[:24]}
    fields.update(zip(names, words))
    return fields
