"""`<Limit>` evaluation with ProFTPD's exact semantics (reference §2; `src/dirtree.c` check_limit,
dir_check_limits, login_check_limits).

One `<Limit>` answers 1 (explicit allow), 0 (implicit allow), -1 (implicit deny) or -2 (explicit deny):

* `Order allow,deny` (the default): an allow rule that fires -> 1; else a deny rule -> -2; else 0.
* `Order deny,allow`: a deny rule -> -2; else an allow rule -> 1; else -1.
* allow rules, in order: AllowUser (before login its mere presence allows), AllowGroup (same), AllowClass,
  Allow (addresses), AllowFilter (regex on the command argument), AllowAll.
* deny rules, in order: DenyAll, DenyUser, DenyGroup (both only once the user is known), DenyClass, Deny,
  DenyFilter.

For a command, the limits naming the raw command are consulted first, then its group (READ, WRITE, DIRS), then
ALL; in each round the sets are walked innermost `<Directory>` first, up to the server; in a set, `<Limit>`s
are taken in file order. An explicit result ends the search; an implicit allow goes on; a deny ends it.
Every decision carries the deciding config line so `proftpy check-access` can show it.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from typing import Iterable

from ..config.errors import Where
from ..config.tree import Param, Section
from ..config.types import compile_regex
from ..net import netacl
from ..net.netacl import AclType, NetACL
from ..net.netaddr import ClientAddr
from . import expr as exprs

EXPLICIT_ALLOW, IMPLICIT_ALLOW, IMPLICIT_DENY, EXPLICIT_DENY = 1, 0, -1, -2
GROUPS = ("READ", "WRITE", "DIRS", "ALL", "LOGIN")
# Commands and their RFC 775 twins: a <Limit> naming one covers both (ProFTPD Bug#3077).
COUNTERPARTS = {"CDUP": "XCUP", "XCUP": "CDUP", "MKD": "XMKD", "XMKD": "MKD", "PWD": "XPWD", "XPWD": "PWD",
                "RMD": "XRMD", "XRMD": "RMD", "CWD": "XCWD", "XCWD": "CWD"}


# -- directive values ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AclLine:
    """One `Allow`/`Deny` line: its ACL entries."""

    acls: tuple[NetACL, ...]


def parse_acl_line(args: list[str]) -> AclLine:
    """`[from] all|none|acl[,acl] ...`."""
    words = list(args)
    if words and words[0].lower() == "from":
        words = words[1:]
    if not words:
        raise ValueError("expected 'all', 'none' or addresses/networks/host names")
    acls = netacl.create_list(words)
    if not acls:
        raise ValueError("expected 'all', 'none' or addresses/networks/host names")
    if acls[0].type in (AclType.ALL, AclType.NONE):
        return AclLine((acls[0],))            # as in ProFTPD: the rest of the line is ignored
    for a in acls[1:]:
        if a.type in (AclType.ALL, AclType.NONE):
            raise ValueError(f"'{a.pattern}' must come first in the list")
    return AclLine(tuple(acls))


@dataclass(frozen=True)
class Expr:
    """AllowUser/DenyUser/AllowGroup/DenyGroup/AllowClass/DenyClass: an OR list, an AND list, or a regex."""

    kind: str                   # "or" | "and" | "regex"
    items: tuple[str, ...] = ()
    regex: re.Pattern | None = None


def expr_parser(default: str):
    def parse(args: list[str]) -> Expr:
        words = list(args)
        kind = default
        if words and words[0].lower() in ("and", "or", "regex"):
            kind = words.pop(0).lower()
        if kind == "regex":
            if len(words) != 1:
                raise ValueError("regex takes exactly one pattern")
            try:
                return Expr("regex", (words[0],), compile_regex(words[0]))
            except re.error as e:
                raise ValueError(f"bad regular expression '{words[0]}': {e}") from None
        return Expr(kind, exprs.terms(words))
    parse.syntax = ("[AND|OR|regex] name[,name] ..." if default == "or"
                    else "[AND|OR|regex] group[,group] ...")
    return parse


def parse_order(args: list[str]) -> str:
    joined = "".join(args).lower().replace(" ", "")
    if joined not in ("allow,deny", "deny,allow"):
        raise ValueError("expected 'allow,deny' or 'deny,allow'")
    return joined


parse_order.syntax = "allow,deny|deny,allow"


@dataclass(frozen=True)
class Filter:
    """AllowFilter/DenyFilter/PathAllowFilter/PathDenyFilter: a regex, `!` inverts, optional nocase."""

    pattern: str
    regex: re.Pattern
    negated: bool = False

    def search(self, text: str) -> bool:
        return (self.regex.search(text) is not None) != self.negated


def parse_filter(args: list[str]) -> Filter:
    if not 1 <= len(args) <= 2:
        raise ValueError("expected a regular expression and optionally 'nocase'")
    flags = 0
    if len(args) == 2:
        if args[1].lower() not in ("nocase", "[nc]"):
            raise ValueError(f"unknown flag '{args[1]}' (only nocase)")
        flags = re.IGNORECASE
    pattern = args[0]
    negated = pattern.startswith("!")
    try:
        return Filter(pattern, compile_regex(pattern[1:] if negated else pattern, flags), negated)
    except re.error as e:
        raise ValueError(f"bad regular expression '{pattern}': {e}") from None


parse_filter.syntax = "regex [nocase]"


def parse_allowall(args: list[str]) -> bool:
    if args:
        raise ValueError("takes no arguments")
    return True


parse_allowall.syntax = ""


# -- who is asking -------------------------------------------------------------------------------------------------
@dataclass
class Who:
    """The facts a `<Limit>` is decided on. `user`/`groups` are None until known (before PASS)."""

    client: ClientAddr
    user: str | None = None
    groups: tuple[str, ...] | None = None     # primary group first
    conn_class: str | None = None
    arg: str | None = None                    # command argument; None for LOGIN (filters do not apply)


@dataclass
class Decision:
    """An answer and the line that gave it (None: nothing configured, the default applies)."""

    allowed: bool
    rule: Param | None = None
    limit: Section | None = None
    reason: str = ""
    hidden: bool = False                      # IgnoreHidden: the client is told "No such file or directory"
    trail: list[str] = field(default_factory=list)
    error: int = errno.EPERM                  # the errno of a denial: EACCES for DenyAll in a <Directory>

    @property
    def where(self) -> Where | None:
        if self.rule is not None:
            return self.rule.where
        return self.limit.where if self.limit is not None else None


# -- one <Limit> ---------------------------------------------------------------------------------------------------
def _eval_expr(expr: Expr, names: tuple[str, ...]) -> bool:
    """OR: one item holds; AND: every item holds; `!name` holds when the name is absent; regex: any name."""
    if expr.kind == "regex":
        return any(expr.regex.search(n) for n in names)
    return exprs.evaluate(expr.kind, expr.items, names)


def _expr_lines(limit: Section, name: str, values: tuple[str, ...]) -> Param | None:
    """The first line of `name` (multiple lines OR'd) that holds for `values`."""
    for p in limit.all(name):
        if _eval_expr(p.value, values):
            return p
    return None


def _ip_line_matches(line: AclLine, client: ClientAddr) -> bool:
    """ProFTPD's rule for one line: every `!acl` must hold AND at least one plain acl must match.

    Decision (docs/access.md): a `!acl` holds when the address does NOT match it (match() returns 1). ProFTPD's
    check_ip_negative treats 1 as failure, so any line with a `!` entry never matches there; proftpy implements
    the rule ProFTPD documents in that very function instead."""
    for acl in line.acls:
        if acl.negated and netacl.match(acl, client) != netacl.MATCH:
            return False
    for acl in line.acls:
        if acl.negated:
            continue
        r = netacl.match(acl, client)
        if r == netacl.MATCH:
            return True
        if r == netacl.NEGATIVE:          # `none`
            return False
    return False


def _ip_access(limit: Section, name: str, client: ClientAddr) -> Param | None:
    """Lines are OR'd; a line whose `!` part fails stops the whole check (as check_ip_access does)."""
    for p in limit.all(name):
        line: AclLine = p.value
        if any(a.negated and netacl.match(a, client) != netacl.MATCH for a in line.acls):
            return None
        if _ip_line_matches(line, client):
            return p
    return None


def _filter(limit: Section, name: str, arg: str | None) -> Param | None:
    if arg is None:
        return None
    return next((p for p in limit.all(name) if p.value.search(arg)), None)


def _allow_rule(limit: Section, who: Who) -> Param | None:
    if who.user is None:
        p = limit.first("AllowUser")
        if p is not None:
            return p
    else:
        p = _expr_lines(limit, "AllowUser", (who.user,))
        if p is not None:
            return p
    if who.groups is None:
        p = limit.first("AllowGroup")
        if p is not None:
            return p
    else:
        p = _expr_lines(limit, "AllowGroup", who.groups)
        if p is not None:
            return p
    if who.conn_class is not None:
        p = _expr_lines(limit, "AllowClass", (who.conn_class,))
        if p is not None:
            return p
    return (_ip_access(limit, "Allow", who.client) or _filter(limit, "AllowFilter", who.arg)
            or limit.first("AllowAll"))


def _deny_rule(limit: Section, who: Who) -> Param | None:
    p = limit.first("DenyAll")
    if p is not None:
        return p
    if who.user is not None:
        p = _expr_lines(limit, "DenyUser", (who.user,))
        if p is not None:
            return p
    if who.groups is not None:
        p = _expr_lines(limit, "DenyGroup", who.groups)
        if p is not None:
            return p
    if who.conn_class is not None:
        p = _expr_lines(limit, "DenyClass", (who.conn_class,))
        if p is not None:
            return p
    return _ip_access(limit, "Deny", who.client) or _filter(limit, "DenyFilter", who.arg)


def check_limit(limit: Section, who: Who) -> tuple[int, Param | None]:
    """One `<Limit>`: (1|0|-1|-2, the deciding line or the Order line for an implicit deny)."""
    order = limit.get("Order", "allow,deny")
    if order == "deny,allow":
        p = _deny_rule(limit, who)
        if p is not None:
            return EXPLICIT_DENY, p
        p = _allow_rule(limit, who)
        if p is not None:
            return EXPLICIT_ALLOW, p
        return IMPLICIT_DENY, limit.first("Order")
    p = _allow_rule(limit, who)
    if p is not None:
        return EXPLICIT_ALLOW, p
    p = _deny_rule(limit, who)
    if p is not None:
        return EXPLICIT_DENY, p
    return IMPLICIT_ALLOW, None


def limit_names(limit: Section) -> set[str]:
    names = set(limit.args)
    return names | {COUNTERPARTS[n] for n in limit.args if n in COUNTERPARTS}


# -- commands ------------------------------------------------------------------------------------------------------
def check_limits(limits: list[tuple[Section, Section]], name: str, who: Who, hidden: bool = False) -> Decision | None:
    """One round (raw command, group or ALL) over (set, <Limit>) pairs innermost set first; None = undecided."""
    ignore_hidden = None
    for _owner, limit in limits:
        if name not in limit_names(limit):
            continue
        if hidden and ignore_hidden is None:
            p = limit.first("IgnoreHidden")
            if p is not None:
                ignore_hidden = p.value
                if p.value:
                    return Decision(False, p, limit, "IgnoreHidden", hidden=True)
        result, p = check_limit(limit, who)
        if result == EXPLICIT_ALLOW:
            return Decision(True, p, limit, f"<Limit {name}> allows")
        if result in (IMPLICIT_DENY, EXPLICIT_DENY):
            how = "denies" if result == EXPLICIT_DENY else "denies (Order deny,allow, no allow rule matched)"
            return Decision(False, p, limit, f"<Limit {name}> {how}")
    return None


def check_command(limits: Iterable[tuple[Section, Section]], command: str, group: str | None, limited: bool,
                  who: Who, hidden: bool = False) -> Decision:
    """dir_check_full's order: raw command -> group -> ALL; nothing explicit -> allowed."""
    pairs = list(limits)
    if not pairs:                           # most places have no <Limit> at all
        return Decision(True, None, None, "no <Limit> decides: allowed")
    rounds = [command.upper()]
    if group:
        rounds.append(group.upper())
    if limited:
        rounds.append("ALL")
    for name in rounds:
        d = check_limits(pairs, name, who, hidden)
        if d is not None:
            return d
    return Decision(True, None, None, "no <Limit> decides: allowed")


# -- LOGIN ---------------------------------------------------------------------------------------------------------
def _login_limits(section: Section) -> list[Section]:
    return [s for s in section.children("limit") if "LOGIN" in s.args]


@dataclass
class _Login:
    result: bool
    found: int
    rule: Param | None = None
    limit: Section | None = None


def login_check(section: Section, who: Who, recurse: bool, and_: bool) -> _Login:
    """ProFTPD's login_check_limits over one set (server or `<Anonymous>`), with its `<Anonymous>` children
    when `recurse`."""
    res, found, rule, where = and_, 0, None, None
    for limit in _login_limits(section):
        r, p = check_limit(limit, who)
        if and_:
            if r == EXPLICIT_ALLOW:
                found += 1
            elif r in (IMPLICIT_DENY, EXPLICIT_DENY):
                res, found, rule, where = False, found + 1, p, limit
                break
        else:
            if r == EXPLICIT_ALLOW:
                res, found, rule, where = True, found + 1, p, limit
            elif r in (IMPLICIT_DENY, EXPLICIT_DENY):
                found += 1
                if not res and rule is None:
                    rule, where = p, limit
    if ((res and and_) or (not res and not and_ and found)) and recurse:
        for anon in section.children("anon"):
            sub = login_check(anon, who, recurse, and_)
            if and_:
                res = res and sub.result
                found += sub.found
                if not res:
                    rule, where = sub.rule, sub.limit
                    break
            else:
                if sub.found:
                    res = res or sub.result
                    if sub.result:
                        rule, where = sub.rule, sub.limit
                found += sub.found
                if res:
                    break
    if not found and not and_:
        return _Login(True, 0)
    return _Login(res, found, rule, where)


def login_at_connect(server_section: Section, who: Who) -> Decision:
    """At connect: OR over the server's LOGIN limits; denied only -> the `<Anonymous>` blocks may rescue."""
    r = login_check(server_section, who, recurse=True, and_=False)
    return Decision(r.result, r.rule, r.limit, "<Limit LOGIN>" if r.found else "no <Limit LOGIN>: allowed")


def login_at_pass(section: Section, who: Who) -> Decision:
    """At PASS: every LOGIN limit of the server (or of the `<Anonymous>` block) must not deny."""
    r = login_check(section, who, recurse=False, and_=True)
    return Decision(r.result, r.rule, r.limit, "<Limit LOGIN>" if r.found else "no <Limit LOGIN>: allowed")


def directory_rule(ctx) -> Decision | None:
    """DenyAll/AllowAll placed directly in a `<Directory>`/`<Anonymous>`/.ftpaccess: the innermost wins; a denial
    answers EACCES, as ProFTPD's dir_check_op."""
    for section in ctx.chain:
        deny, allow = section.first("DenyAll"), section.first("AllowAll")     # the section's index, not a walk
        if deny is None and allow is None:                                    # over all its lines
            continue
        if deny is None or allow is None:
            p = deny or allow
        else:                               # both in one section: the first line wins
            p = min(deny, allow, key=section.params.index)
        return Decision(p is allow, p, None, f"{p.name} in {section.describe()}", error=errno.EACCES)
    return None
