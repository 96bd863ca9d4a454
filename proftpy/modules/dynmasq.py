"""mod_dynmasq (Debian loads it): in ProFTPD it resolves a MasqueradeAddress DNS name again every DynMasqRefresh
seconds (for a server behind an address that changes), and `ftpdctl dynmasq refresh` does it at once. proftpy
resolves MasqueradeAddress when each session starts, so every session uses the name's address of that moment and
there is nothing left to refresh: both are accepted with ProFTPD's checks and answers, and change nothing."""

from __future__ import annotations

from ..config.registry import SERVER, Directive, Merge
from ..config.types import Custom, atoi
from ..ctrls import Action, ActionAcl, CtrlsError, CtrlsRequest
from ..module import MasterView, Module

NAME = "mod_dynmasq.c"
ACL = "DynMasqControlsACLs"


def _refresh(args: list[str]) -> int:
    """Seconds, read as atoi reads them; at least 1."""
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    seconds = atoi(args[0])
    if seconds < 1:
        raise ValueError(f"must be greater than zero: '{args[0]}'")
    return seconds


directives = (
    Directive("DynMasqRefresh", Custom(_refresh, "seconds"), SERVER, None, Merge.SERVER,
              "Accepted for compatibility: each session resolves MasqueradeAddress when it starts."),
    Directive(ACL, Custom(ActionAcl.parser({"refresh", "all"}, "action"), "refresh|all allow|deny user|group list"),
              SERVER, None, Merge.SERVER,
              "Who may use `ftpdctl dynmasq refresh`; default: nobody.", repeat=True),
)


def dynmasq_action(master: MasterView, req: CtrlsRequest) -> str:
    if not req.args:
        raise CtrlsError("dynmasq: missing required parameters")
    if req.args[0] != "refresh":
        raise CtrlsError(f"dynmasq: unknown dynmasq action: '{req.args[0]}'")
    return "dynmasq: refreshed"                 # each session resolves the name anew: nothing is held to refresh


MODULE = Module(NAME, directives=directives,
                ctrls_actions=(Action("dynmasq", dynmasq_action, acl=ACL, acl_by_arg=True, read_only=True,
                                      help="refresh the MasqueradeAddress names (each session resolves them)"),))
