"""mod_cap (compiled into Debian's ProFTPD): its directives are read so that a proftpd.conf loads, and `<IfModule
mod_cap.c>` holds as it does there. A proftpy session keeps no capability after login (it gives up root for good,
as ProFTPD with RootRevoke), but CAP_CHOWN where UserOwner needs it (`-CAP_CHOWN` takes that away, modules/xfer.py
`keeps_chown`), so what only removes capabilities is accepted, and what would grant one a session does not have
(`CapabilitiesSet +CAP_...`, `CapabilitiesRootRevoke off`) is refused with the reason."""

from __future__ import annotations

from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, parse_bool
from ..module import Module

NAME = "mod_cap.c"
CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_SETUID")


def _set(args: list[str]) -> tuple[str, ...]:
    if not args:
        raise ValueError("wrong number of parameters")
    for word in args:
        if word[:1] not in "+-" or not word[1:]:
            raise ValueError(f": bad option: '{word}'")
        if word[1:].upper() not in CAPS:
            raise ValueError(f"unknown capability: '{word[1:]}'")
        if word[0] == "+":
            raise ValueError(f"'{word}' cannot be given: proftpy's sessions keep no capability after login")
    return tuple(args)


def _root_revoke(args: list[str]) -> bool:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    try:
        on = parse_bool(args[0])
    except ValueError:
        raise ValueError("expecting Boolean parameter") from None
    if not on:
        raise ValueError("off is not supported: proftpy's sessions give up root for good after login")
    return on


directives = (
    Directive("CapabilitiesEngine", Flag, SVG, True, Merge.SERVER,
              "Accepted for compatibility: a session keeps no capability after login, on or off."),
    Directive("CapabilitiesSet", Custom(_set, "-CAP_CHOWN|-CAP_DAC_OVERRIDE|... (+CAP_... is refused)"), SVG, None,
              Merge.SERVER, "Accepted for the capabilities it removes (a session has none); adding one is refused."),
    Directive("CapabilitiesRootRevoke", Custom(_root_revoke, "on"), SVG, True, Merge.SERVER,
              "Accepted as on, what proftpy always does; off is refused."),
)

MODULE = Module(NAME, directives=directives)
