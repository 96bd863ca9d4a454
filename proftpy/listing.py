"""Pure formatting for directory listings (LIST/NLST/STAT, mod_ls) and facts (MLSD/MLST, mod_facts).

Nothing here touches the network or resolves client paths: callers hand in stat results and names, and get back the
exact text ProFTPD would send. Names are `str` with surrogate escapes for bytes that are not UTF-8; they go out as
the original bytes.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import stat
import time
from dataclasses import dataclass, field, fields

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SIX_MONTHS = 180 * 24 * 60 * 60          # older than this: show the year instead of HH:MM (mod_ls.c)
GLOB_CHARS = "*?["


# -- ls options ----------------------------------------------------------------------------------------------------
@dataclass
class LsOptions:
    """The /bin/ls flags mod_ls understands (reference §8, mod_ls.c parse_list_opts)."""

    one: bool = False       # -1: names only
    a: bool = False         # -a: dotfiles, including . and ..
    A: bool = False         # -A: dotfiles, without . and ..
    C: bool = False         # -C: names in columns
    d: bool = False         # -d: list a directory itself, not its contents
    F: bool = False         # -F: type suffix (/ @ *)
    h: bool = False         # -h: human-readable sizes
    l: bool = False         # -l: long format
    L: bool = False         # -L: follow symlinks
    n: bool = False         # -n: numeric uid/gid
    R: bool = False         # -R: recurse
    r: bool = False         # -r: reverse sort
    S: bool = False         # -S: sort by size
    t: bool = False         # -t: sort by time
    U: bool = False         # -U: unsorted
    c: bool = False         # -c: ctime
    u: bool = False         # -u: atime

    def copy(self) -> "LsOptions":
        return LsOptions(**{f.name: getattr(self, f.name) for f in fields(self)})


# Options LIST-only commands ignore when they arrive with NLST, and -1 which STAT ignores.
_NOT_FOR_NLST = set("CFhln")


def apply_flags(opts: LsOptions, letters: str, command: str, on: bool = True) -> None:
    """Apply one option word's letters (`-la` gives "la"); `on=False` is ListOptions' `+x` form (turn off)."""
    for ch in letters:
        if not ch.isalnum():
            break
        if on and command == "NLST" and ch in _NOT_FOR_NLST:
            continue
        if ch == "1":
            if not on:
                opts.one = opts.l = opts.C = False
            elif command != "STAT":
                opts.one, opts.l, opts.C = True, False, False
        elif ch == "l":
            if on:
                opts.l, opts.C, opts.one = True, False, False
            else:
                opts.l = opts.C = False
        elif ch == "C":
            if on:
                opts.l, opts.C = False, True
            else:
                opts.l = opts.C = False
        elif ch == "U":
            opts.U = on
            if on:
                opts.c = opts.S = opts.t = False
        elif ch in "aAdFhLnRrStcu":
            setattr(opts, ch, on)


def split_options(text: str) -> tuple[list[str], str]:
    """Split leading `-xyz` words off an argument: (option words without the dash, the rest = the path).
    The rest keeps inner spaces (paths may contain them)."""
    words: list[str] = []
    rest = text
    while True:
        stripped = rest.lstrip(" \t")
        if not stripped.startswith("-"):
            break
        word, sep, after = stripped.partition(" ")
        words.append(word[1:])
        rest = after if sep else ""
    if words:
        return words, rest
    return [], text


def parse_config_options(text: str, command: str, opts: LsOptions) -> None:
    """ListOptions' option string: `-x` turns on, `+x` turns off."""
    for word in text.split():
        if word.startswith("-"):
            apply_flags(opts, word[1:], command, True)
        elif word.startswith("+"):
            apply_flags(opts, word[1:], command, False)


@dataclass(frozen=True)
class ListConfig:
    """One `ListOptions "opts" [strict] [maxdepth n] [maxfiles n] [maxdirs n] [LISTOnly] [NLSTOnly]
    [NoErrorIfAbsent] [AdjustedSymlinks] [SortedNLST]` line."""

    options: str = ""
    strict: bool = False
    maxdepth: int = 0
    maxfiles: int = 0
    maxdirs: int = 0
    list_only: bool = False
    nlst_only: bool = False
    no_error_if_absent: bool = False
    adjusted_symlinks: bool = False
    sorted_nlst: bool = False


def parse_list_options(args: list[str]) -> ListConfig:
    """Parser for the ListOptions directive; raises ValueError with an administrator-facing message."""
    if not args:
        raise ValueError("wrong number of parameters")
    values: dict = {"options": args[0]}
    words = iter(args[1:])
    flags = {"strict": "strict", "listonly": "list_only", "nlstonly": "nlst_only",
             "noerrorifabsent": "no_error_if_absent", "adjustedsymlinks": "adjusted_symlinks",
             "sortednlst": "sorted_nlst"}
    for word in words:
        key = word.lower()
        if key in flags:
            values[flags[key]] = True
        elif key == "noadjustedsymlinks":
            continue
        elif key in ("maxdepth", "maxfiles", "maxdirs"):
            number = next(words, None)
            try:
                n = int(number) if number is not None else 0
            except ValueError:
                n = 0
            if n < 1:
                raise ValueError(f"{key} must be greater than 0: '{number}'")
            values[key] = n
        else:
            raise ValueError(f"unknown keyword: '{word}'")
    return ListConfig(**values)


# -- the LIST line -------------------------------------------------------------------------------------------------
_TYPE_CHAR = {stat.S_IFREG: "-", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFSOCK: "s", stat.S_IFBLK: "b",
              stat.S_IFCHR: "c", stat.S_IFIFO: "p"}


@functools.lru_cache(maxsize=512)
def mode_string(mode: int, fake_mode: int | None = None) -> str | None:
    """`drwxr-xr-x` for a st_mode; None for file types ls cannot show. DirFakeMode replaces the permission bits
    (directories get x wherever they get r). Cached: the entries of a listing share a handful of modes, and this
    was a fifth of a LIST line's cost."""
    kind = _TYPE_CHAR.get(stat.S_IFMT(mode))
    if kind is None:
        return None
    perm = mode
    if fake_mode is not None:
        perm = fake_mode
        if kind == "d":
            perm |= (perm & 0o444) >> 2
    out = [kind]
    for shift, special, on_x, on_nox in ((6, stat.S_ISUID, "s", "S"), (3, stat.S_ISGID, "s", "S"),
                                         (0, stat.S_ISVTX, "t", "T")):
        bits = (perm >> shift) & 7
        out.append("r" if bits & 4 else "-")
        out.append("w" if bits & 2 else "-")
        if perm & special:
            out.append(on_x if bits & 1 else on_nox)
        else:
            out.append("x" if bits & 1 else "-")
    return "".join(out)


def time_field(when: int, now: int, gmt: bool = True) -> str:
    """`Mon dd HH:MM`, or `Mon dd  YYYY` for anything more than 180 days old (future times show HH:MM)."""
    t = time.gmtime(when) if gmt else time.localtime(when)
    if now - when > SIX_MONTHS:
        tail = f"{t.tm_year:5d}"
    else:
        tail = f"{t.tm_hour:02d}:{t.tm_min:02d}"
    return f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {tail}"


def size_field(size: int, human: bool = False) -> str:
    """`%8llu`, or with -h `%7.1f` plus k/M/G/T/P for 1000 bytes and up."""
    if not human or size < 1000:
        return f"{size:8d}"
    units = ("", "k", "M", "G", "T", "P")
    value, i = float(size), 0
    while value >= 1024.0 and i < len(units) - 1:
        value /= 1024.0
        i += 1
    return f"{value:7.1f}{units[i]}"


def long_head(mode: str, nlink: int, user: str, group: str) -> str:
    """The start of a long line, the same for every entry of one mode, link count, owner and group (a LIST keeps
    it per such entry: modules/ls.py `Lister.line`)."""
    return f"{mode} {nlink:3d} {user:<8s} {group:<8s}"


def long_line(mode: str, nlink: int, user: str, group: str, size: str, when: str, name: str,
              link: str | None = None) -> str:
    """ProFTPD's `"%s %3d %-8s %-8s %s %s %2d %s %s"` (month, day and time come pre-joined in `when`)."""
    line = f"{long_head(mode, nlink, user, group)} {size} {when} {name}"
    return line + f" -> {link}" if link is not None else line


def windows_line(mode: int, size: int, when: int, name: str, gmt: bool = True) -> str:
    """ListStyle Windows (ProFTPD 1.3.8's mod_ls): `MM-DD-YY  HH:MMAM`, then `<DIR>` or the size, then the name."""
    t = time.gmtime(when) if gmt else time.localtime(when)
    stamp = f"{t.tm_mon:02d}-{t.tm_mday:02d}-{t.tm_year % 100:02d}  {(t.tm_hour + 11) % 12 + 1:02d}:{t.tm_min:02d}" \
            f"{'AM' if t.tm_hour < 12 else 'PM'}"
    if stat.S_ISDIR(mode):
        return f"{stamp}{'<DIR>':>12}{'':9} {name}"
    return f"{stamp}{'':12}{size:9d} {name}"


def type_suffix(mode: int) -> str:
    """-F: `/` for directories, `@` for links, `*` for executables."""
    if stat.S_ISLNK(mode):
        return "@"
    if stat.S_ISDIR(mode):
        return "/"
    if mode & 0o111:
        return "*"
    return ""


def columns(names: list[str], width: int = 75) -> list[str]:
    """-C: names down then across, tab-separated, in at most `width` columns (mod_ls.c outputfiles)."""
    if not names:
        return []
    colwidth = min(width, (max(len(n) for n in names) | 7) + 1)
    per_row = max(1, width // colwidth)
    nrows = (len(names) + per_row - 1) // per_row
    lines = []
    for row in range(nrows):
        cells = names[row::nrows]
        parts = []
        for i, cell in enumerate(cells):
            if i < len(cells) - 1:
                pad = (colwidth + 7 - len(cell)) // 8
                parts.append(cell + "\t" * min(pad, 5))
            else:
                parts.append(cell)
        lines.append("".join(parts))
    return lines


# -- globbing ------------------------------------------------------------------------------------------------------
def has_glob(text: str) -> bool:
    return any(c in text for c in GLOB_CHARS)


def expand_braces(pattern: str, most: int = 1024) -> list[str]:
    """glob(3)'s GLOB_BRACE, as ProFTPD's mod_sftp globs scp paths with it: `a{b,c}d` -> `abd`, `acd`, groups nested
    or one after the other, in order; a group without a comma (`{x}`) or without its `}` stays as it is. At most
    `most` patterns."""
    out: list[str] = []
    todo = [pattern]
    while todo and len(out) < most:
        current = todo.pop(0)
        group = _brace_group(current)
        if group is None:
            out.append(current)
            continue
        start, end, alternatives = group
        todo[0:0] = [current[:start] + alt + current[end + 1:] for alt in alternatives][:most]
    return out


def _brace_group(text: str) -> tuple[int, int, list[str]] | None:
    """The first `{...}` holding a comma at its own level: (its start, its end, the alternatives)."""
    start = text.find("{")
    while start >= 0:
        depth, last, parts = 0, start + 1, []
        for i in range(start, len(text)):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "," and depth == 1:
                parts.append(text[last:i])
                last = i + 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    if parts:
                        return start, i, parts + [text[last:i]]
                    break
        else:
            return None                 # no closing brace
        start = text.find("{", start + 1)
    return None


def glob_matcher(pattern: str):
    """A compiled matcher for one path component: `*`, `?`, `[...]` (with `[!...]`); a wildcard never matches
    a leading dot, as in glob(3)."""
    regex = re.compile(fnmatch.translate(pattern), re.DOTALL)
    explicit_dot = pattern.startswith(".")

    def match(name: str) -> bool:
        if name.startswith(".") and not explicit_dot:
            return False
        return regex.match(name) is not None
    return match


# -- facts (RFC 3659) ----------------------------------------------------------------------------------------------
FACTS = ("modify", "perm", "size", "type", "unique", "UNIX.group", "UNIX.groupname", "UNIX.mode", "UNIX.owner",
         "UNIX.ownername")
_FACTS_BY_LOWER = {f.lower(): f for f in FACTS}


def fact_named(word: str) -> str | None:
    """A fact's name as mod_facts spells it, whatever the case it is written in (None: no such fact)."""
    return _FACTS_BY_LOWER.get(word.lower())


def mlst_feat(enabled: tuple[str, ...] | frozenset[str] = FACTS) -> str:
    """The FEAT line: every supported fact, `*` on those currently shown."""
    return "MLST " + "".join(f"{f}{'*' if f in enabled else ''};" for f in FACTS)


def asked_mlst_facts(text: str) -> list[str]:
    """`OPTS MLST a;b;c;`: the known facts asked for, in the client's order (ProFTPD echoes them so); unknown ones
    are ignored (RFC 3659 7.9)."""
    asked = [fact for fact in map(fact_named, text.split(";")[:-1]) if fact is not None]
    return list(dict.fromkeys(asked))


def parse_mlst_opts(text: str) -> list[str]:
    """The facts `OPTS MLST` turns on, in FACTS order (the order they are shown in)."""
    asked = set(asked_mlst_facts(text))
    return [f for f in FACTS if f in asked]


def modify_fact(mtime: int) -> str:
    t = time.gmtime(mtime)
    return f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}"


def perm_fact(is_dir: bool, readable: bool, writable: bool, executable: bool) -> str:
    """RFC 3659 perm as mod_facts computes it: files `adfr`/`dfr` + `w`; directories `fl` + `cdmp` + `e`."""
    if is_dir:
        return ("fl" if readable else "") + ("cdmp" if writable else "") + ("e" if executable else "")
    return ("adfr" if readable else "dfr") + ("w" if writable else "")


@dataclass
class FactValues:
    """The facts of one entry, before formatting."""

    mtime: int
    perm: str
    size: int | None        # None for directories (no size fact)
    type: str
    dev: int
    ino: int
    uid: int
    gid: int
    user: str
    group: str
    mode: int
    extra: dict = field(default_factory=dict)


def format_facts(v: FactValues, name: str, enabled) -> str:
    """`fact=value;...; name` with the enabled facts in mod_facts' order."""
    out = [f"{fact}={value(v)};" for fact, value in FACT_VALUES
           if fact in enabled and not (fact == "size" and v.size is None)]
    return "".join(out) + " " + name


# Each fact's value, in mod_facts' order.
FACT_VALUES = (
    ("modify", lambda v: modify_fact(v.mtime)),
    ("perm", lambda v: v.perm),
    ("size", lambda v: v.size),
    ("type", lambda v: v.type),
    ("unique", lambda v: f"{v.dev:X}U{v.ino:X}"),
    ("UNIX.group", lambda v: v.gid),
    ("UNIX.groupname", lambda v: v.group),
    ("UNIX.mode", lambda v: f"0{v.mode & 0o7777:o}"),
    ("UNIX.owner", lambda v: v.uid),
    ("UNIX.ownername", lambda v: v.user),
)
