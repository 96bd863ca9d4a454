"""User, group and class expressions: the one evaluator for every directive that takes a name list.

ProFTPD (`src/expr.c`) evaluates comma lists of names, where `!name` holds when the name does *not* apply:

* an OR list holds when one term holds (users, classes: AllowUser, AllowClass, the `user`/`class` conditions of
  TransferRate, TimeoutSession and HideFiles);
* an AND list holds when every term holds (groups: AllowGroup, DefaultRoot/DefaultChdir, the `group` condition).

A session with no class (or no user, no groups) matches no name, so only `!name` terms can hold for it. (ProFTPD's
class OR list answers the first term's negation instead; for the usual one-name list that is the same.)

`TransferRate`, `TimeoutSession` and `HideFiles` take an optional `user|group|class expression` after their
value. Several lines may apply to one place; `pick` chooses among them as ProFTPD does: the line from the most
specific context wins (`.ftpaccess` > `<Directory>` > `<Anonymous>` > server > `<Global>`), and within one
context the first line (file order) whose condition holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

if TYPE_CHECKING:
    from ..config.tree import Section

KINDS = ("user", "group", "class")


class Facts(Protocol):
    """What a condition is decided on (`access.limits.Who` has these): None while not known."""

    user: str | None
    groups: tuple[str, ...] | None
    conn_class: str | None


def terms(words: Iterable[str]) -> tuple[str, ...]:
    """Every word split on commas (as ProFTPD's pr_expr_create), empty pieces dropped; `!` alone is refused."""
    out = tuple(t.strip() for w in words for t in w.split(",") if t.strip())
    if not out:
        raise ValueError("expected one or more names (a leading ! negates)")
    if any(t == "!" for t in out):
        raise ValueError("'!' must be followed by a name")
    return out


def _holds(term: str, names: Iterable[str]) -> bool:
    if term.startswith("!"):
        return term[1:] not in names
    return term in names


def eval_or(items: Iterable[str], names: Iterable[str]) -> bool:
    """One term holds (`!name`: the name is absent)."""
    names = tuple(names)
    return any(_holds(t, names) for t in items)


def eval_and(items: Iterable[str], names: Iterable[str]) -> bool:
    """Every term holds."""
    names = tuple(names)
    return all(_holds(t, names) for t in items)


def evaluate(mode: str, items: Iterable[str], names: Iterable[str]) -> bool:
    """`mode` "and" or "or"."""
    return eval_and(items, names) if mode == "and" else eval_or(items, names)


@dataclass(frozen=True)
class Condition:
    """`user|group|class expression` at the end of a directive line."""

    kind: str                   # "user" | "group" | "class"
    items: tuple[str, ...]

    def holds(self, facts: Facts) -> bool | None:
        """True/False, or None when the fact is not known yet (user and groups before login)."""
        if self.kind == "user":
            return None if facts.user is None else eval_or(self.items, (facts.user,))
        if self.kind == "group":
            return None if facts.groups is None else eval_and(self.items, facts.groups)
        return eval_or(self.items, () if facts.conn_class is None else (facts.conn_class,))

    def __str__(self) -> str:
        return f"{self.kind} {','.join(self.items)}"


def parse_condition(words: list[str]) -> Condition | None:
    """`[user|group|class expression]`: no words = no condition."""
    if not words:
        return None
    kind = words[0].lower()
    if kind not in KINDS:
        raise ValueError(f"unknown classifier '{words[0]}' (expected user, group or class)")
    if len(words) < 2:
        raise ValueError(f"'{words[0]}' needs a name list (e.g. {kind} name1,!name2)")
    return Condition(kind, terms(words[1:]))


def rank(section: "Section") -> int:
    """ProFTPD's context precedence for conditional directives (higher wins)."""
    if section.dynamic or section.kind == "ftpaccess":
        return 5
    return {"dir": 4, "anon": 3}.get(section.kind, 2)


def pick(sections: Iterable["Section"], name: str, facts: "Facts | Callable[[], Facts]",
         wanted: Callable[[Any], bool] = lambda value: True) -> Any:
    """The value of the line of `name` that applies: among the lines `wanted` accepts and whose condition (the
    value's `condition` attribute) holds, the first one of the highest-ranked context. `sections` innermost first,
    as `Context.chain`; a server's own lines come before the `<Global>` ones copied into it. None when no line
    applies; a condition not known yet (None) does not hold. `facts` may be a function, called only when a
    condition has to be decided."""
    known: list = []

    def get_facts() -> Facts:
        if not known:
            known.append(facts() if callable(facts) else facts)
        return known[0]

    best, best_rank = None, 0
    for section in sections:
        r = rank(section)
        if r <= best_rank:
            continue
        for p in section.all(name):
            value = p.value
            if value is None or not wanted(value):
                continue
            cond = getattr(value, "condition", None)
            if cond is None or cond.holds(get_facts()) is True:
                best, best_rank = value, r
                break
    return best
