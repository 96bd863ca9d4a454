"""Argument types for directive declarations.

Each type is a callable that takes the directive's words and returns the parsed value, or raises ValueError with a
message for the administrator. `syntax` is what the generated directive reference shows.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable

_TRUE = {"on", "yes", "true", "1"}
_FALSE = {"off", "no", "false", "0"}
INT_MAX = 2**31 - 1     # ProFTPD's numbers are C ints: larger ones are refused, never handed to poll() or listen()


def _one(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError(f"expected 1 argument, got {len(args)}")
    return args[0]


def parse_bool(word: str) -> bool:
    """ProFTPD's boolean words."""
    value = bool_word(word)
    if value is None:
        raise ValueError(f"expected on or off, got '{word}'")
    return value


def bool_word(word: str) -> bool | None:
    """What a ProFTPD boolean word says, or None when `word` is not one (a directive that takes either)."""
    low = word.lower()
    return True if low in _TRUE else False if low in _FALSE else None


class _Flag:
    syntax = "on|off"

    def __call__(self, args: list[str]) -> bool:
        return parse_bool(_one(args))


Flag = _Flag()


@dataclass(frozen=True)
class Int:
    """A whole number within bounds."""

    min: int | None = None
    max: int = INT_MAX

    @property
    def syntax(self) -> str:
        return "number"

    def __call__(self, args: list[str]) -> int:
        return parse_int(_one(args), self.min, self.max)


def parse_int(word: str, lo: int | None = None, hi: int | None = INT_MAX) -> int:
    """A whole number in ASCII digits (with strtol's optional sign); bounded by `lo` and `hi`."""
    try:
        if not word.isascii() or len(word) > 40:
            raise ValueError
        value = int(word, 10)
    except ValueError:
        raise ValueError(f"'{word[:40]}' is not a number") from None
    if lo is not None and value < lo:
        raise ValueError(f"{value} is below {lo}")
    if hi is not None and value > hi:
        raise ValueError(f"{value} is above {hi}")
    return value


def compile_regex(pattern: str, flags: int = 0) -> re.Pattern:
    """re.compile for a pattern from a configuration or a `.ftpaccess`, read as ProFTPD's PCRE2 reads it (POSIX
    classes such as `[[:digit:]]`: `posix_classes`): every way Python refuses one (a repetition count too large,
    groups nested too deep) is raised as `re.error`, which the callers word as their error."""
    try:
        return re.compile(posix_classes(pattern), flags)
    except (OverflowError, RecursionError) as e:
        raise re.error(str(e)) from None


# POSIX bracket classes as the ranges they stand for in the C locale
_POSIX_CLASSES = {"alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "ascii": "\\x00-\\x7f", "blank": " \\t",
                  "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
                  "punct": "!-/:-@\\[-`{-~", "space": " \\t\\n\\r\\f\\v", "upper": "A-Z", "word": "\\w",
                  "xdigit": "0-9A-Fa-f"}


def posix_classes(pattern: str) -> str:
    """`[[:alpha:]_-]`, `[^[:space:]]`... (which ProFTPD's PCRE2 knows and Python's re would read as a nested set,
    silently matching other names) written as Python ranges; outside a set the pattern is left as it is. A class
    name POSIX does not have is refused as PCRE2 refuses it."""
    if "[:" not in pattern:
        return pattern
    out: list[str] = []
    i, n, in_set = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i:i + 2])
            i += 2
        elif not in_set:
            out.append(c)
            i += 1
            if c == "[":
                in_set = True
                if pattern.startswith("^", i):
                    out.append("^")
                    i += 1
                if pattern.startswith("]", i):     # a `]` first in a set is one of its characters
                    out.append("\\]")
                    i += 1
        elif pattern.startswith("[:", i) and ":]" in pattern[i + 2:]:
            end = pattern.index(":]", i + 2)
            name = pattern[i + 2:end]
            if name not in _POSIX_CLASSES:
                raise re.error("unknown POSIX class name")
            out.append(_POSIX_CLASSES[name])
            i = end + 2
        else:
            out.append("\\[" if c == "[" else c)
            in_set = c != "]"
            i += 1
    return "".join(out)


def atoi(text: str) -> int:
    """C's atoi, as ProFTPD reads some numbers: leading blanks, a sign, digits; anything else ends it (`x` is 0)."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


_BYTE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}


def parse_nbytes(number: str, unit: str) -> int:
    """`number unit` as ProFTPD's pr_str_get_nbytes reads it: a whole number, B, KB, MB, GB or TB in any case;
    at most 2**64 - 1 bytes."""
    spelled = f"{number} {unit}"
    digits = number[1:] if number.startswith("+") else number
    if not digits.isascii() or not digits.isdigit() or unit.lower() not in _BYTE_UNITS:
        raise ValueError(f"unable to parse: {spelled}: Invalid argument")
    value = int(digits) * _BYTE_UNITS[unit.lower()]
    if value >= 1 << 64:
        raise ValueError(f"unable to parse: {spelled}: Numerical result out of range")
    return value


@dataclass(frozen=True)
class IntOrNone:
    """`n|none`: a positive limit, or None for no limit; extra words are kept as a message."""

    min: int = 1
    message: bool = False

    @property
    def syntax(self) -> str:
        return "number|none" + (" [message]" if self.message else "")

    def __call__(self, args: list[str]) -> Any:
        if not args or (len(args) > 1 and not self.message) or len(args) > 2:
            raise ValueError("expected a number or 'none'" + (" and an optional message" if self.message else ""))
        value = None if args[0].lower() == "none" else parse_int(args[0], self.min)
        return (value, args[1] if len(args) > 1 else None) if self.message else value


@dataclass(frozen=True)
class Str:
    """One word (quote it to include spaces)."""

    syntax: str = "text"

    def __call__(self, args: list[str]) -> str:
        return _one(args)


Text = Str()


@dataclass(frozen=True)
class Path:
    """A filesystem path; `none` allowed when `none_ok` (returns None)."""

    absolute: bool = True
    none_ok: bool = False

    @property
    def syntax(self) -> str:
        return "path" + ("|none" if self.none_ok else "")

    def __call__(self, args: list[str]) -> str | None:
        word = _one(args)
        if self.none_ok and word.lower() in ("none", "off"):
            return None
        if self.absolute and not os.path.isabs(word):
            raise ValueError(f"'{word}' is not an absolute path")
        return word


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of words (case-insensitive); returns the lower-case word."""

    choices: tuple[str, ...]

    @property
    def syntax(self) -> str:
        return "|".join(self.choices)

    def __call__(self, args: list[str]) -> str:
        word = _one(args).lower()
        if word not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got '{args[0]}'")
        return word


@dataclass(frozen=True)
class Words:
    """A list of words, with a bound on how many."""

    min: int = 1
    max: int | None = None
    syntax: str = "word ..."

    def __call__(self, args: list[str]) -> list[str]:
        if len(args) < self.min:
            raise ValueError(f"expected at least {self.min} argument{'s' if self.min > 1 else ''}")
        if self.max is not None and len(args) > self.max:
            raise ValueError(f"expected at most {self.max} argument{'s' if self.max > 1 else ''}")
        return list(args)


@dataclass(frozen=True)
class Options:
    """The option words of an `...Options` directive, returned as a frozenset of their names. ProFTPD's modules
    compare them case-sensitively (`nocase` for the ones that do not); `aliases` maps another spelling to a name;
    `what` names one option in the error, as ProFTPD's message does ("unknown TLSOption 'x'")."""

    names: tuple[str, ...]
    what: str
    nocase: bool = False
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def syntax(self) -> str:
        return "|".join(self.names) + " ..."

    def __call__(self, args: list[str]) -> frozenset[str]:
        if not args:
            raise ValueError("wrong number of parameters")
        fold = str.lower if self.nocase else str
        known = {fold(n): n for n in self.names} | {fold(a): n for a, n in self.aliases}
        for word in args:
            if fold(word) not in known:
                raise ValueError(f"unknown {self.what} '{word}'")
        return frozenset(known[fold(word)] for word in args)


@dataclass(frozen=True)
class Octal:
    """An octal number such as a umask."""

    count: int = 1
    syntax: str = "octal"

    def __call__(self, args: list[str]) -> Any:
        if not 1 <= len(args) <= self.count:
            raise ValueError(f"expected 1 to {self.count} octal numbers")
        values = []
        for word in args:
            try:
                values.append(int(word, 8))
            except ValueError:
                raise ValueError(f"'{word}' is not an octal number") from None
        return values[0] if self.count == 1 else tuple(values + [None] * (self.count - len(values)))


class _PortRange:
    syntax = "min-port max-port"

    def __call__(self, args: list[str]) -> tuple[int, int]:
        if len(args) != 2:
            raise ValueError("expected two port numbers")
        lo, hi = (parse_int(a, 1024, 65535) for a in args)
        if lo >= hi:
            raise ValueError(f"min port {lo} must be below max port {hi}")
        return lo, hi


PortRange = _PortRange()


@dataclass(frozen=True)
class Custom:
    """A parser written for one directive: `fn(args) -> value`, raising ValueError."""

    fn: Callable[[list[str]], Any]
    syntax: str

    def __call__(self, args: list[str]) -> Any:
        return self.fn(args)
