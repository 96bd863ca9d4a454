"""The hosts_access(5) language of TCP wrappers (`/etc/hosts.allow`, `/etc/hosts.deny`), matched in Python.

Semantics are libwrap's (Debian's libwrap0 7.6.q, the library ProFTPD's mod_wrap calls), checked against it in
tests/unit/test_hostsaccess.py case by case:

* The allow table is searched first, then the deny table; the first matching line decides; no match (or no
  table: a missing file is an empty one) grants access. A table that exists but cannot be read matches nothing
  when it is the allow table and denies when it is the deny table (libwrap plays safe there).
* A line is `daemon_list : client_list [ : options ]`; a backslash before the newline joins lines; lines whose first
  character is `#`, blank lines and lines without `:` are skipped. Colons inside
  `[...]` do not split fields. List words are separated by blanks and commas.
* Words: `ALL`, `KNOWN`, `UNKNOWN`, `LOCAL`, `PARANOID`, `.domain` (name suffix), `net.` (address prefix),
  `n.n.n.n/m.m.m.m`, `n.n.n.n/len`, `[v6]`, `[v6]/len`, `@netgroup` (innetgr(3): whatever the system's netgroups
  say), `/file` (more patterns, read from a file), `*`/`?` wildcards, `daemon@host` and `user@host`, `EXCEPT`
  (`a EXCEPT b EXCEPT c` is `a EXCEPT (b EXCEPT c)`). Comparisons ignore case (netgroups do not: innetgr decides).
* The options field: `allow` and `deny` (the hosts_options(5) keywords) turn the verdict; every other option is
  reported, never carried out: no shell command (`spawn`, `twist`) ever runs from a table here.

Nothing here resolves names by itself: a `Host` asks its `lookup` when a pattern needs the name, so the master can
decide from addresses alone and hand anything that needs DNS to the session (`NeedsName`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Callable

UNKNOWN = "unknown"
PARANOID = "paranoid"
_SEP = re.compile(r"[, \t\r\n]+")
_NUMBER = re.compile(r"\s*([+-]?\d+)")                       # what sscanf("%d") takes
_DOTTED = re.compile(r"\s*([+-]?\d+)\.([+-]?\d+)\.([+-]?\d+)\.([+-]?\d+)")


class NeedsName(Exception):
    """A pattern needs the host's DNS name, which this caller may not look up (the master)."""


@dataclass
class Host:
    """One end of the connection: its address, and its name on demand (`lookup(addr)` gives the name, UNKNOWN or
    PARANOID, or raises NeedsName). `aliases(addr)`, when set, gives the other names of the address, which name
    patterns may match too (mod_wrap2's CheckAllNames; libwrap knows one name)."""

    addr: str = UNKNOWN
    lookup: Callable[[str], str] | None = None
    aliases: Callable[[str], tuple[str, ...]] | None = None
    _name: str | None = field(default=None, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        if self.aliases is None or not _known(self.name):
            return (self.name,)
        return (self.name, *self.aliases(self.addr))

    @property
    def name(self) -> str:
        if self._name is None:
            if self.lookup is None or self.addr == UNKNOWN:
                self._name = UNKNOWN
            else:
                self._name = self.lookup(self.addr)
        return self._name


@dataclass
class Request:
    """What the tables are asked about."""

    daemon: str                         # the service name (TCPServiceName / WrapServiceName)
    client: Host
    server: Host = field(default_factory=Host)
    user: str = UNKNOWN                 # the client's user name (RFC 1413 ident, or USER for mod_wrap2)
    netgroup: Callable[[str, str], bool] | None = None     # innetgr(group, host); None: the system's


@dataclass(frozen=True)
class Rule:
    """One line of a table."""

    daemons: tuple[str, ...]
    clients: tuple[str, ...]
    options: str | None
    line: int


@dataclass
class Table:
    """A parsed table; `problems` are libwrap's warnings (file:line: text) for the log."""

    path: str
    rules: list[Rule]
    problems: list[str]
    unreadable: str | None = None       # why a file that exists could not be read


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    table: str | None = None            # the path of the table whose line decided (None: no line matched)
    line: int | None = None
    ignored: tuple[str, ...] = ()       # options of the deciding line that were not carried out


# -- tables --------------------------------------------------------------------------------------------------------
def split_at(text: str, delimiter: str) -> tuple[str, str | None]:
    """(before, after) the first `delimiter` outside `[...]`; after is None when there is none."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == delimiter and depth == 0:
            return text[:i], text[i + 1:]
    return text, None


def parse(text: str, path: str = "-") -> Table:
    """A table's rules from its text, read as libwrap reads it (see the module docstring)."""
    rules: list[Rule] = []
    problems: list[str] = []
    pieces = text.split("\n")              # every piece but the last ended with a newline
    i = lineno = 0
    while i < len(pieces):
        start, logical, ended = lineno + 1, "", False
        while i < len(pieces):
            piece, ended = pieces[i], i < len(pieces) - 1
            i += 1
            lineno += ended
            if ended and piece.endswith("\\"):
                logical += piece[:-1]       # backslash-newline: the line goes on
                ended = False
                continue
            logical += piece
            break
        if not ended and not logical:
            break                           # nothing after the last newline
        if logical.startswith("#") or not logical.strip(" \t\r"):
            continue
        daemons, rest = split_at(logical, ":")
        if rest is None:
            problems.append(f'{path}:{start}: missing ":" separator')
            continue
        clients, options = split_at(rest, ":")
        rules.append(Rule(_words(daemons), _words(clients), options, start))
    return Table(path, rules, problems)


def _words(text: str) -> tuple[str, ...]:
    return tuple(w for w in _SEP.split(text) if w)


_loaded: dict[str, tuple[tuple[int, ...], "Table | None"]] = {}   # path -> (stat key and reader, parsed table)


def load(path: str) -> Table | None:
    """The table in a file; None when the file does not exist (no rule). Read at every check, as libwrap reads
    it, but parsed again only when the file changed (a stat per check: the master checks at each accept)."""
    try:
        st = os.stat(path)
    except OSError:
        return _read(path)
    key = (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode, os.geteuid())   # who reads may change (privs)
    known = _loaded.get(path)
    if known is not None and known[0] == key:
        return known[1]
    table = _read(path)
    if table is None or table.unreadable is None:
        _loaded[path] = (key, table)
    return table


def _read(path: str) -> Table | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return Table(path, [], [f"{path}: is a directory"])      # libwrap opens it and reads no line
    except OSError as e:
        return Table(path, [], [], unreadable=e.strerror or str(e))
    return parse(data.decode("utf-8", "surrogateescape"), path)


# -- deciding ------------------------------------------------------------------------------------------------------
def check(allow: Table | None, deny: Table | None, req: Request) -> Verdict:
    """hosts_access(): the allow table, then the deny table, then access granted."""
    if allow is not None and allow.unreadable is None:
        verdict = _table(allow, req, True)
        if verdict is not None:
            return verdict
    if deny is not None:
        if deny.unreadable is not None:
            return Verdict(False, deny.path)
        verdict = _table(deny, req, False)
        if verdict is not None:
            return verdict
    return Verdict(True)


def _table(table: Table, req: Request, allowing: bool) -> Verdict | None:
    for rule in table.rules:
        if list_match(rule.daemons, req, server_match) and list_match(rule.clients, req, client_match):
            allowed, ignored = _options(rule.options, allowing)
            return Verdict(allowed, table.path, rule.line, ignored)
    return None


def _options(options: str | None, allowing: bool) -> tuple[bool, tuple[str, ...]]:
    """hosts_options(5): `allow`/`deny` decide (they end the list); anything else is reported, not done."""
    if options is None:
        return allowing, ()
    ignored = []
    for field_ in re.split(r"(?<!\\):", options):
        word = field_.replace("\\:", ":").strip()
        key = re.split(r"[\s=]", word, maxsplit=1)[0].lower()
        if key in ("allow", "deny"):
            return key == "allow", tuple(ignored)
        if word:
            ignored.append(word)
    return allowing, tuple(ignored)


def list_match(words: tuple[str, ...], req: Request, match: Callable[[str, Request], bool]) -> bool:
    """A list with EXCEPT: the first word that matches, unless a word after the next EXCEPT matches too."""
    for i, word in enumerate(words):
        if word.upper() == "EXCEPT":
            return False
        if match(word, req):
            rest = words[i + 1:]
            for j, later in enumerate(rest):
                if later.upper() == "EXCEPT":
                    return not list_match(rest[j + 1:], req, match)
            return True
    return False


def server_match(word: str, req: Request) -> bool:
    daemon, host = split_at(word[1:], "@") if word else ("", None)
    if host is None:
        return string_match(word, req.daemon)
    return string_match(word[0] + daemon, req.daemon) and host_match(host, req.server, req)


def client_match(word: str, req: Request) -> bool:
    user, host = split_at(word[1:], "@") if word else ("", None)
    if host is None:
        return host_match(word, req.client, req)
    return host_match(host, req.client, req) and string_match(word[0] + user, req.user)


def host_match(word: str, host: Host, req: Request, nested: bool = False) -> bool:
    """One host pattern against a host (`nested`: read from a `/file`, which may not name another file)."""
    if word.startswith("@"):
        return (req.netgroup or innetgr)(word[1:], host.name)
    if word.startswith("/"):
        return not nested and _file_match(word, host, req)
    up = word.upper()
    if up == "KNOWN":
        return host.addr.lower() != UNKNOWN and _known(host.name)
    if up == "LOCAL":
        name = host.name
        return "." not in name and _known(name)
    return string_match(word, host.addr) or (_not_inaddr(word) and any(string_match(word, n) for n in host.names))


def _known(name: str) -> bool:
    return name.lower() not in (UNKNOWN, PARANOID)


def _not_inaddr(word: str) -> bool:
    """libwrap's NOT_INADDR: the word has something besides digits, dots and slashes (it may name a host)."""
    return bool(word.strip("0123456789./"))


def _file_match(path: str, host: Host, req: Request) -> bool:
    """`/file`: the patterns listed in a file (one level deep: a file named there is skipped, not followed)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            words = f.read().split()
    except OSError:
        return False
    return any(host_match(w, host, req, nested=True) for w in words)


def string_match(word: str, value: str) -> bool:
    if "*" in word or "?" in word:
        return _wildcard(word, value)
    if word.startswith("."):
        return len(value) > len(word) and value[-len(word):].lower() == word.lower()
    up = word.upper()
    if up == "ALL":
        return True
    if up == "KNOWN":
        return value.lower() != UNKNOWN
    if word.lower() == value.lower():
        return True
    return _address_match(word, value)


def _wildcard(pattern: str, value: str) -> bool:
    """`*` any run, `?` one character, case ignored."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.DOTALL | re.IGNORECASE) is not None


def _address_match(word: str, value: str) -> bool:
    """Addresses compared as numbers (IPv4 as v4-mapped IPv6): `net.`, `[v6]`, `a/m.m.m.m`, `a/len`."""
    token = word
    if token.endswith("."):
        dots = token.count(".")
        if not 1 <= dots <= 3:
            return False
        token += {1: "0.0.0/8", 2: "0.0/16", 3: "0/24"}[dots]
    prefix = 128
    token, mask = split_at(token, "/")
    if token.startswith("[") and token.endswith("]"):
        token = token[1:-1]
    if mask is not None:
        dotted = _DOTTED.match(mask)
        if "." in mask:
            if dotted is None:
                return False
            prefix = _mask_bits([int(g) for g in dotted.groups()])
        else:
            number = _NUMBER.match(mask)
            if number is None or int(number.group(1)) < 0:
                return False
            prefix = int(number.group(1))
        if _is_v4(token):
            prefix += 96
        if prefix > 128:
            return False
    pattern, address = _mapped(token), _mapped(value)
    if pattern is None or address is None:
        return False
    shift = 128 - prefix
    return pattern >> shift == address >> shift


def _mask_bits(octets: list[int]) -> int:
    """A dotted mask's length as libwrap counts it: up to its lowest set bit."""
    value = 0
    for octet in octets:
        value = value * 256 + octet
    value &= 0xFFFFFFFF
    bits = 0
    while value:
        bits += 1
        value = (value << 1) & 0xFFFFFFFF
    return bits


def _is_v4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _mapped(text: str) -> int | None:
    """The address as a 128-bit number, IPv4 as ::ffff:a.b.c.d; None when it is not an address."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return 0xFFFF << 32 | int(ip)
    return int(ip)


# -- netgroups -----------------------------------------------------------------------------------------------------
_libc = None


def innetgr(group: str, host: str) -> bool:
    """The system's innetgr(3) (glibc: NSS `netgroup`, /etc/netgroup or NIS); False where there is none."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _libc.innetgr.argtypes = [ctypes.c_char_p] * 4
        _libc.innetgr.restype = ctypes.c_int
    fn = getattr(_libc, "innetgr", None)
    if fn is None:
        return False
    return bool(fn(group.encode(), host.encode(), None, None))


def aliases(addr: str) -> tuple[str, ...]:
    """The other names the reverse lookup of `addr` gives (gethostbyaddr's aliases)."""
    import socket
    try:
        return tuple(socket.gethostbyaddr(addr)[1])
    except (OSError, UnicodeError):
        return ()


def resolve_name(addr: str, reverse=None, forward=None) -> str:
    """The confirmed DNS name of `addr`: UNKNOWN without a PTR record, PARANOID when the name does not map back to
    the address (libwrap's double-reverse check)."""
    import socket
    reverse = reverse or (lambda a: socket.gethostbyaddr(a)[0])
    forward = forward or (lambda n: {ai[4][0] for ai in socket.getaddrinfo(n, None)})
    try:
        name = reverse(addr)
    except (OSError, UnicodeError):
        return UNKNOWN
    try:
        addrs = {str(ipaddress.ip_address(a.split("%")[0])) for a in forward(name)}
    except (OSError, UnicodeError, ValueError):
        return PARANOID
    return name if str(ipaddress.ip_address(addr)) in addrs else PARANOID


