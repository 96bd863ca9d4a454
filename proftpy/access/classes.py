"""Connection classes (`<Class name>` with `From` rules and `Satisfy any|all`).

A connection belongs to the first class, in configuration order, whose rules it satisfies (ProFTPD's
`pr_class_match_addr`). The class name is what AllowClass/DenyClass, MaxClientsPerClass, the scoreboard, the logs
(`%c`) and mod_ban see.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.errors import Where
from ..net import netacl
from ..net.netacl import NetACL
from ..net.netaddr import ClientAddr


@dataclass(frozen=True)
class ConnClass:
    name: str
    rules: tuple[NetACL, ...]
    satisfy: str = "any"
    where: Where | None = None


def parse_from(args: list[str]) -> list[NetACL]:
    """`From acl[,acl] ...`; `all`/`none` may only come first and then stand for the whole line."""
    acls = netacl.create_list(args)
    if not acls:
        raise ValueError("expected at least one address, network or host name")
    special = [a for a in acls if a.type in (netacl.AclType.ALL, netacl.AclType.NONE)]
    if special and acls[0] is special[0]:
        return [acls[0]]
    if special:
        raise ValueError(f"'{special[0].pattern}' must be the first (and only) entry")
    return acls


def from_sections(sections) -> list[ConnClass]:
    """ConnClass objects from the parsed `<Class>` sections (config.classes), in configuration order."""
    out = []
    for s in sections:
        rules = tuple(acl for value in s.all("From") for acl in value.value)
        if not rules:
            continue            # ProFTPD discards a class with no From
        out.append(ConnClass(s.args[0], rules, s.get("Satisfy", "any"), s.where))
    return out


def satisfied(cls: ConnClass, client: ClientAddr) -> bool:
    """any: the first rule that matches (1) satisfies; all: every rule must match."""
    results = (netacl.match(acl, client) for acl in cls.rules)
    if cls.satisfy == "all":
        return all(r == netacl.MATCH for r in results)
    return any(r == netacl.MATCH for r in results)


def match_class(classes: list[ConnClass], client: ClientAddr) -> ConnClass | None:
    """The first satisfied class in definition order, or None."""
    return next((c for c in classes if satisfied(c, client)), None)


def find(classes: list[ConnClass], name: str) -> ConnClass | None:
    return next((c for c in classes if c.name == name), None)
