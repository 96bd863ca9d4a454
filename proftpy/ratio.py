"""mod_ratio's pure parts: a ratio line's numbers, the credit they leave, the texts ProFTPD shows, the RatioFile.

A ratio is four numbers: `file-ratio file-credit byte-ratio byte-credit`. A file ratio of n > 0 earns n downloads
per upload ("1:nF"), -n earns one download per n uploads ("n:1F"), 0 counts files without limiting them; the
credit is what the user may take before uploading anything. Bytes work the same way, counted in kilobytes (each
transfer's bytes divided by 1024, the rest dropped, as ProFTPD counts them) and shown in megabytes.

The RatioFile holds one line per user, `name|files up|KB up|files down|KB down`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def cdiv(a: int, b: int) -> int:
    """C's integer division (towards zero): ProFTPD's `bytes / 1024` of a negative credit is 0 down to -1023."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def parse_number(word: str) -> int:
    """A whole number of a ratio line (a sign allowed)."""
    digits = word[1:] if word[:1] in "+-" else word
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"'{word}' is not a whole number")
    return int(word)


@dataclass(frozen=True)
class Ratio:
    """One UserRatio/GroupRatio/AnonRatio/HostRatio line's numbers (credits: files, kilobytes)."""

    files: int = 0
    file_credit: int = 0
    bytes: int = 0
    byte_credit: int = 0

    @classmethod
    def parse(cls, args: list[str]) -> tuple[str, "Ratio"]:
        """`name file-ratio file-credit byte-ratio byte-credit` -> (name, Ratio)."""
        if len(args) != 5:
            raise ValueError("expected name file-ratio file-credit byte-ratio byte-credit")
        return args[0], cls(*(parse_number(word) for word in args[1:]))

    @property
    def enforced(self) -> bool:
        return bool(self.files or self.bytes)

    @property
    def numbers(self) -> str:
        return f"{self.files} {self.file_credit} {self.bytes} {self.byte_credit}"


@dataclass
class Tally:
    """What one user moved: files and kilobytes, up and down."""

    files_up: int = 0
    kb_up: int = 0
    files_down: int = 0
    kb_down: int = 0

    def __iadd__(self, other: "Tally") -> "Tally":
        self.files_up += other.files_up
        self.kb_up += other.kb_up
        self.files_down += other.files_down
        self.kb_down += other.kb_down
        return self


def _earned(ratio: int, up: int, credit: int, down: int) -> int:
    return (ratio * up if ratio >= 0 else up // -ratio) + credit - down


def _label(ratio: int, unit: str) -> str:
    return f"1:{ratio}{unit}" if ratio >= 0 else f"{-ratio}:1{unit}"


@dataclass(frozen=True)
class Standing:
    """A tally under a ratio: the downloads (files) and kilobytes still allowed, and ProFTPD's texts for them.
    Without a ratio (a leech) nothing is computed: both credits show 0, as ProFTPD shows them."""

    ratio: Ratio | None
    tally: Tally

    @property
    def rule(self) -> Ratio:
        return self.ratio or Ratio()

    @property
    def files(self) -> int:
        r = self.ratio
        return 0 if r is None else _earned(r.files, self.tally.files_up, r.file_credit, self.tally.files_down)

    @property
    def kbytes(self) -> int:
        r = self.ratio
        return 0 if r is None else _earned(r.bytes, self.tally.kb_up, r.byte_credit, self.tally.kb_down)

    @property
    def file_label(self) -> str:
        return _label(self.rule.files, "F")

    @property
    def byte_label(self) -> str:
        return _label(self.rule.bytes, "B")

    def files_refused(self) -> bool:
        """RETR is refused: a file ratio and no download left."""
        return bool(self.rule.files) and self.files < 1

    def bytes_refused(self, size: int) -> bool:
        """RETR of a file of `size` bytes is refused: a byte ratio and fewer kilobytes left than it has."""
        return bool(self.rule.bytes) and self.kbytes - size // 1024 < 0

    def summary(self, numbers: bool = True) -> str:
        """`-down/MB +up/MB (ratio numbers) = files/MB` with ` [NO F]` (no download left) and ` [LO B]` (under
        5 MB left): SITE RATIO's and the login log line's; without the numbers, the debug log's."""
        t = self.tally
        flags = (" [NO F]" if self.rule.files and self.files < 1 else "") + \
                (" [LO B]" if self.rule.bytes and cdiv(self.kbytes, 1024) < 5 else "")
        middle = f" ({self.rule.numbers})" if numbers else ""
        return (f"-{t.files_down}/{t.kb_down // 1024} +{t.files_up}/{t.kb_up // 1024}{middle} = "
                f"{self.files}/{cdiv(self.kbytes, 1024)}{flags}")

    def status(self) -> str:
        """The line under the replies of PASS, LIST, NLST, RETR and STOR."""
        t = self.tally
        line = f"Down: {t.files_down} Files ({t.kb_down // 1024}mb)  Up: {t.files_up} Files ({t.kb_up // 1024}mb)"
        if self.rule.files:
            line += f"   {self.file_label} CR: {self.files}"
        if self.rule.bytes:
            line += f"   {self.byte_label} CR: {cdiv(self.kbytes, 1024)}"
        return line


# -- the RatioFile ---------------------------------------------------------------------------------------------------
def parse_line(line: str) -> tuple[str, Tally] | None:
    """`name|files up|KB up|files down|KB down` (empty fields skipped, as strtok does); None for a line that is
    not one."""
    fields = [f for f in line.rstrip("\n").split("|") if f]
    if len(fields) < 5:
        return None
    try:
        return fields[0], Tally(*(int(f.strip()) for f in fields[1:5]))
    except ValueError:
        return None


def format_line(name: str, tally: Tally) -> str:
    return f"{name}|{tally.files_up}|{tally.kb_up}|{tally.files_down}|{tally.kb_down}\n"


def find(lines: list[str], name: str) -> Tally | None:
    """The sum of `name`'s lines (ProFTPD adds them all up); None when there is none."""
    found = None
    for line in lines:
        parsed = parse_line(line)
        if parsed is not None and parsed[0] == name:
            found = found or Tally()
            found += parsed[1]
    return found


def replace(lines: list[str], name: str, tally: Tally) -> list[str]:
    """The file's lines with `name`'s first one rewritten to `tally` and its others left out (they were added up
    into it); every other line is kept as it is."""
    out, done = [], False
    for line in lines:
        parsed = parse_line(line)
        if parsed is not None and parsed[0] == name:
            if not done:
                out.append(format_line(name, tally))
            done = True
        else:
            out.append(line)
    return out


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.readlines()


def write_through(path: str, temp: str, lines: list[str]) -> None:
    """The new contents into the temporary file, then copied over the RatioFile (which keeps its inode, owner and
    mode), as ProFTPD writes it."""
    data = "".join(lines).encode("utf-8", "surrogateescape")
    with open(temp, "wb") as f:
        f.write(data)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
