"""mod_auth_unix: system users and groups (/etc/passwd, /etc/shadow, /etc/group)."""

from __future__ import annotations

from ..auth.unix import UnixBackend

NAME = "mod_auth_unix.c"
directives: list = []


def backend(server) -> UnixBackend:
    return UnixBackend()
