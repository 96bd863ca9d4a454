"""`<IfVersion [[!]operator] version>` (mod_ifversion): whether a section applies to the ProFTPD version proftpy
follows (`PROFTPD_COMPAT`, 1.3.8), so a configuration written for several ProFTPD releases reads as it does on
ProFTPD 1.3.8.

Versions are `major[.minor[.revision[suffix]]]`: missing parts are 0, a suffix is `rcN` (before the release) or
one letter (a maintenance release after it). Operators: `=`/`==` (or none), `<`, `<=`, `>`, `>=`; `= /regex/` and
`~ regex` match the version text (case-insensitive); `!` before any of them negates it. Errors are ProFTPD's.
"""

from __future__ import annotations

import re

from .. import PROFTPD_COMPAT
from .types import compile_regex

RC, STABLE = 100, 300            # the suffix's rank: rcN = 100 + N < none = 300 < letter = 300 + (letter - 'A')


def parse_version(text: str) -> tuple[int, int, int, int] | None:
    """(major, minor, revision, suffix rank), or None when `text` is not a version."""
    match = re.fullmatch(r"(\d+)(?:\.(\d+)(?:\.(\d+)([A-Za-z]|[rR][cC]\d*)?)?)?", text)
    if match is None:
        return None
    major, minor, revision, suffix = match.groups()
    rank = STABLE
    if suffix and len(suffix) == 1:
        rank = STABLE + ord(suffix.upper()) - ord("A")
    elif suffix:
        rank = RC + int(suffix[2:] or 0)
    return int(major), int(minor or 0), int(revision or 0), rank


def matches(args: list[str], version: str = PROFTPD_COMPAT) -> bool:
    """Whether the section `<IfVersion args...>` applies; ValueError with ProFTPD's message when the words are
    wrong."""
    if not 1 <= len(args) <= 2:
        raise ValueError("wrong number of parameters")
    op, wanted = args if len(args) == 2 else ("=", args[0])
    negated = op.startswith("!") and len(op) > 1
    op = op[1:] if negated else op
    if op[0] == "=" and wanted.startswith("/"):
        if len(wanted) < 2 or not wanted.endswith("/"):
            raise ValueError("Missing terminating '/' of regular expression")
        op, wanted = "~", wanted[1:-1]
    if op[0] == "~":
        try:
            found = compile_regex(wanted, re.IGNORECASE).search(version) is not None
        except re.error as e:
            raise ValueError(f"unable to compile pattern '{wanted}': {e}") from None
    elif op[0] in "=<>":
        configured = parse_version(wanted)
        if configured is None:
            raise ValueError(f"badly formatted configured version '{wanted}'")
        ours = parse_version(version)
        assert ours is not None, version
        order = (ours > configured) - (ours < configured)
        found = {"=": order == 0, "<": order < 0 or (len(op) == 2 and order == 0),
                 ">": order > 0 or (len(op) == 2 and order == 0)}[op[0]]
    else:
        raise ValueError(f"unknown comparison operator '{op}'")
    return found != negated
