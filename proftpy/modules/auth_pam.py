"""mod_auth_pam: passwords checked by PAM (service `ftp` by default); accounts come from the system."""

from __future__ import annotations

from ..auth.pam import PamBackend
from ..auth.unix import UnixBackend
from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag, Options, Str
from ..module import Module

NAME = "mod_auth_pam.c"

directives = (
    Directive("AuthPAM", Flag, SVG, True, Merge.SERVER, "Use PAM when mod_auth_pam.c is in AuthOrder."),
    Directive("AuthPAMConfig", Str("service"), SVG, "ftp", Merge.SERVER, "PAM service name."),
    Directive("AuthPAMOptions", Options(("NoTTY",), "AuthPAMOption", nocase=True), SVG, frozenset(), Merge.SERVER,
              "NoTTY: PAM_TTY is not set; proftpy never sets it (ProFTPD sets `/dev/ftpd<pid>` without NoTTY)."),
)


def backend(server) -> PamBackend | None:
    if not server.get("AuthPAM"):
        return None
    return PamBackend(service=server.get("AuthPAMConfig"), unix=UnixBackend())


MODULE = Module(NAME, directives=directives, auth_backend=backend)
