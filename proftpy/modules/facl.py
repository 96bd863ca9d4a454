"""mod_facl (Debian's modules.conf loads it): `FACLEngine on|off`, server config only, on by default.

ProFTPD checks access itself where it answers without opening a file: MLSx's `perm` fact and HideNoAccess. With
mod_facl those checks honour POSIX ACLs; without it (or `FACLEngine off`) they read the mode bits alone. proftpy's
checks ask the kernel (`FS.access`), which honours ACLs: the default. `FACLEngine off` gives sessions ProFTPD's
mode-bit check instead (`FS.acls`). What a session may actually open, create or remove is always the kernel's
decision, ACLs included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config.registry import SERVER, Directive, Merge
from ..config.types import Flag
from ..dispatch import POST_CMD, Hook, Request
from ..module import Module

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session

NAME = "mod_facl.c"

directives = (
    Directive("FACLEngine", Flag, SERVER, True, Merge.SERVER,
              "Honour POSIX ACLs in the access checks of MLSx facts and HideNoAccess (off: the mode bits only)."),
)


def _mode_bits_only(config: "Config") -> bool:
    return not config.main.get("FACLEngine")


def _after_login(session: "Session", cmd: Request) -> None:
    if session.authenticated and session.fs is not None:
        session.fs.acls = False


MODULE = Module(NAME, directives=directives,
                hooks=(Hook(POST_CMD, "PASS", _after_login, active=_mode_bits_only),))
