"""Turns configuration text into logical lines of words, the way ProFTPD's parser reads them.

Rules (reference §1f): blank lines and lines starting with `#` are skipped, a word starting with an unquoted `#`
ends the line, a trailing backslash joins the next line, `"quoted words"` may hold spaces and take backslash
escapes, and `%{env:VAR}` is replaced by the environment variable before the line is split.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import ConfigError, Where

_ENV = re.compile(r"%\{env:([^}]*)\}")


@dataclass(frozen=True)
class Line:
    """One logical configuration line: its words and where it starts."""

    words: list[str]
    where: Where


def quoted_word(text: str, i: int) -> tuple[str, int, bool]:
    """The word of the `"quoted string"` whose opening quote is `text[i]`, a backslash escaping the next character
    (ProFTPD's pr_str_get_word): (the word, the index just past its closing quote, whether there was one)."""
    buf: list[str] = []
    i, n = i + 1, len(text)
    while i < n and text[i] != '"':
        if text[i] == "\\" and i + 1 < n:
            i += 1
        buf.append(text[i])
        i += 1
    return "".join(buf), i + 1, i < n


def split_words(text: str, where: Where) -> list[str]:
    """Split one line into words, honouring quotes, backslash escapes and inline comments."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] == "#":
            break
        buf: list[str] = []
        if text[i] == '"':
            word, i, closed = quoted_word(text, i)
            if not closed:
                raise ConfigError("unterminated quoted string", where)
            buf.append(word)
        else:
            while i < n and text[i] not in " \t":
                buf.append(text[i])
                i += 1
        words.append("".join(buf))
    return words


def expand_env(text: str, env: dict[str, str] | None = None) -> str:
    """Replace `%{env:VAR}` with the variable's value (empty when unset, as ProFTPD does)."""
    source = os.environ if env is None else env
    return _ENV.sub(lambda m: source.get(m.group(1), ""), text)


def read_lines(text: str, file: str, env: dict[str, str] | None = None) -> list[Line]:
    """All logical lines of one file's text."""
    lines: list[Line] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        raw = raw.rstrip("\r\n")
        if not pending:
            start = number
        stripped = raw.rstrip()
        if stripped.endswith("\\") and not stripped.lstrip().startswith("#"):
            pending += stripped[:-1] + " "
            continue
        logical = pending + raw
        pending = ""
        if not logical.strip() or logical.lstrip().startswith("#"):
            continue
        where = Where(file, start)
        words = split_words(expand_env(logical, env), where)
        if words:
            lines.append(Line(words, where))
    if pending.strip():
        words = split_words(expand_env(pending, env), Where(file, start))
        if words:
            lines.append(Line(words, Where(file, start)))
    return lines
