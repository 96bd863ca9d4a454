"""mod_auth_unix: system users and groups (/etc/passwd, /etc/shadow, /etc/group)."""

from __future__ import annotations

from ..auth.unix import UnixBackend
from ..module import Module

NAME = "mod_auth_unix.c"


def backend(server) -> UnixBackend:
    return UnixBackend()


MODULE = Module(NAME, auth_backend=backend)
