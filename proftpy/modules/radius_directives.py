"""mod_radius's directives and each server's Settings: the forms ProFTPD 1.3.8 accepts (RadiusUserInfo's
`$(attribute-id:default)` values, comma lists, C-style numbers), checked when the configuration is read. The
session's work (requests, verdicts, accounting) is proftpy/modules/radius.py's."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Callable

from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Options, Path, Str, parse_int
from ..net import radius as rad

DEFAULT_TIMEOUT = 10                    # seconds (ProFTPD's DEFAULT_RADIUS_TIMEOUT; its documentation says 30)
OPTIONS = ("IgnoreReplyMessage", "IgnoreClass", "IgnoreIdleTimeout", "IgnoreSessionTimeout", "RequireMAC")


@dataclass(frozen=True)
class RadiusServer:
    """One RadiusAuthServer/RadiusAcctServer line: the address it resolved to when the configuration was read."""

    host: str
    address: str
    port: int
    secret: bytes
    timeout: int

    @property
    def where(self) -> str:
        return f"{self.address}#{self.port}"


def parse_duration(word: str) -> int:
    """ProFTPD's pr_str_get_duration: `HH:MM:SS`, or a number of seconds with an optional unit (s/sec, m/min,
    h/hr)."""
    m = re.fullmatch(r"(\d{1,2}):(\d{1,2}):(\d{1,2})", word)
    if m:
        hours, mins, secs = (int(g) for g in m.groups())
        return hours * 3600 + mins * 60 + secs
    m = re.fullmatch(r"(\d+)\s*(s|sec|m|min|h|hr)?", word, re.IGNORECASE)
    if not m:
        raise ValueError(f"error parsing timeout value '{word}': Invalid argument")
    value = int(m.group(1)) * {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}[
        (m.group(2) or "").lower()]
    if value > 2**31 - 1:
        raise ValueError(f"error parsing timeout value '{word}': Numerical result out of range")
    return value


def _server(default_port: int) -> Callable[[list[str]], RadiusServer]:
    """`RadiusAuthServer|RadiusAcctServer host[:port] shared-secret [timeout]`, checked as ProFTPD checks it; the
    host is resolved now (an IPv4 address: ProFTPD's mod_radius speaks to IPv4 servers only)."""
    def parse(args: list[str]) -> RadiusServer:
        if not 2 <= len(args) <= 3:
            raise ValueError("missing parameters")
        host, sep, port_text = args[0].partition(":")
        port = default_port
        if sep:
            if ":" in port_text:
                raise ValueError(f"'{args[0]}': IPv6 RADIUS servers are not supported (ProFTPD's mod_radius speaks "
                                 "to IPv4 servers only)")
            port = parse_int(port_text, 0, 65535) if port_text.isdigit() else 0
            if port < 1024:
                raise ValueError("port number must be greater than 1023")
        try:
            address = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        except (OSError, UnicodeError):
            raise ValueError(f"unable to resolve server address: {host}") from None
        if not args[1]:
            raise ValueError("the shared secret must not be empty")
        timeout = parse_duration(args[2]) if len(args) == 3 else DEFAULT_TIMEOUT
        return RadiusServer(host, address, port, args[1].encode("utf-8", "surrogateescape"), timeout)
    return parse


@dataclass(frozen=True)
class Var:
    """A `$(attribute-id:default)` parameter: the value of the answer's Vendor-Specific attribute `attr`, else
    `default`."""

    attr: int
    default: str


def is_var(word: str) -> bool:
    """ProFTPD's radius_have_var: at least 7 characters, `$(` ... `)`, a `:` inside, an attribute id above 0."""
    if len(word) < 7 or not (word.startswith("$(") and word.endswith(")")):
        return False
    colon = word.find(":")
    if colon < 3 or colon > len(word) - 2:
        return False
    return _atoi(word[2:colon]) >= 1


def parse_var(word: str) -> Var:
    colon = word.find(":")
    return Var(_atoi(word[2:colon]), word[colon + 1:-1])


def _atoi(text: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def c_number(word: str) -> bool:
    """Whether C's strtoul/strtod leaves nothing behind (ProFTPD's `endp && *endp` checks)."""
    return bool(re.fullmatch(r"\s*[+-]?\d+", word))


def _c_float(word: str) -> float | None:
    m = re.fullmatch(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", word)
    return float(word) if m else None


def _user_info(args: list[str]) -> tuple[str | Var, ...]:
    """`RadiusUserInfo uid gid home shell`."""
    if len(args) != 4:
        raise ValueError("wrong number of parameters")
    uid, gid, home, shell = (parse_var(a) if is_var(a) else a for a in args)
    if not isinstance(uid, Var) and not c_number(uid):
        raise ValueError("invalid UID parameter: not a number")
    if not isinstance(gid, Var) and not c_number(gid):
        raise ValueError("invalid GID parameter: not a number")
    if not isinstance(home, Var) and not home.startswith("/"):
        raise ValueError("home relative path not allowed")
    if not isinstance(shell, Var) and not shell.startswith("/"):
        raise ValueError("shell relative path not allowed")
    return uid, gid, home, shell


def split_list(text: str) -> list[str]:
    """ProFTPD's radius_argsep over a whole string: words separated by commas or blanks, a word in double quotes
    may hold both (a backslash escapes the next character inside quotes)."""
    out, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return out
        quoted = text[at] == '"'
        at += quoted
        word = []
        while at < len(text) and text[at] != "," and (text[at] != '"' if quoted else not text[at].isspace()):
            if quoted and text[at] == "\\" and at + 1 < len(text):
                at += 1
            word.append(text[at])
            at += 1
        at += 1                 # the delimiter
        out.append("".join(word))


def parse_gids(text: str) -> list[int] | None:
    """A list of group ids (None when one is not a number)."""
    gids = []
    for word in split_list(text):
        if not word.isdigit() or int(word) > 2**32 - 2:
            return None
        gids.append(int(word))
    return gids


def _group_info(args: list[str]) -> tuple[str | Var, list[str] | Var, list[int] | Var]:
    """`RadiusGroupInfo primary-group-name suppl-group-names suppl-group-ids`."""
    if len(args) != 3:
        raise ValueError("wrong number of parameters")
    primary = parse_var(args[0]) if is_var(args[0]) else args[0]
    names: list[str] | Var = parse_var(args[1]) if is_var(args[1]) else split_list(args[1])
    if is_var(args[2]):
        gids: list[int] | Var = parse_var(args[2])
    else:
        parsed = parse_gids(args[2])
        if parsed is None:
            raise ValueError("badly formatted group IDs")
        gids = parsed
    if isinstance(names, list) and isinstance(gids, list) and names and gids and len(names) != len(gids):
        raise ValueError(f"mismatched number of group names ({len(names)}) and group IDs ({len(gids)})")
    return primary, names, gids


QUOTA_FIELDS = ("per-session", "limit type", "bytes in", "bytes out", "bytes xfer", "files in", "files out",
                "files xfer")


def _quota_info(args: list[str]) -> tuple[str | Var, ...]:
    """`RadiusQuotaInfo per-session limit-type bytes-in bytes-out bytes-xfer files-in files-out files-xfer`, for
    mod_quotatab_radius's `QuotaLimitTable radius:`."""
    if len(args) != 8:
        raise ValueError("wrong number of parameters")
    values = tuple(parse_var(a) if is_var(a) else a for a in args)
    for i, value in enumerate(values):
        if isinstance(value, Var):
            continue
        problem = _quota_problem(i, value)
        if problem:
            raise ValueError(problem)
    return values


def _quota_problem(i: int, value: str) -> str | None:
    if i == 0 and value.lower() not in ("true", "false"):
        return "invalid per-session value"
    if i == 1 and value.lower() not in ("hard", "soft"):
        return "invalid limit type value"
    if 2 <= i <= 4:
        number = _c_float(value)
        if number is None:
            return "invalid bytes parameter: not a number"
        if number < 0:
            return "negative bytes value not allowed"
    if i >= 5 and not c_number(value):
        return "invalid files parameter: not a number"
    return None


def _vendor(args: list[str]) -> tuple[str, int]:
    """`RadiusVendor name id`."""
    if len(args) != 2:
        raise ValueError("wrong number of parameters")
    if not c_number(args[1]):
        raise ValueError(f"vendor id '{args[1]}' is not a valid number")
    vid = int(args[1])
    if vid < 0:
        raise ValueError("vendor id must be a positive number")
    if vid > 2**32 - 1:
        raise ValueError(f"vendor id '{args[1]}' is out of range")
    return args[0], vid


directives = (
    Directive("RadiusEngine", Flag, SVG, False, Merge.SERVER, "Check logins with RADIUS servers and account "
              "sessions to them (mod_radius)."),
    Directive("RadiusAuthServer", Custom(_server(rad.AUTH_PORT), "host[:port] shared-secret [timeout]"), SVG, None,
              Merge.SERVER, "A RADIUS server asked about logins (port 1812 by default, timeout 10 s); several are "
              "asked in order until one answers.", repeat=True),
    Directive("RadiusAcctServer", Custom(_server(rad.ACCT_PORT), "host[:port] shared-secret [timeout]"), SVG, None,
              Merge.SERVER, "A RADIUS accounting server (port 1813 by default, timeout 10 s); several are tried in "
              "order until one answers.", repeat=True),
    Directive("RadiusNASIdentifier", Str("id"), SVG, None, Merge.SERVER,
              "The NAS-Identifier of the packets (default: the protocol, `ftp` or `ftps`)."),
    Directive("RadiusRealm", Str("realm"), SVG, None, Merge.SERVER,
              "Appended to the user name in the packets' User-Name (`@example.org`)."),
    Directive("RadiusOptions", Options(OPTIONS, "RadiusOption"), SVG, frozenset(), Merge.SERVER,
              "IgnoreReplyMessage, IgnoreClass, IgnoreIdleTimeout, IgnoreSessionTimeout: leave out what an "
              "Access-Accept carries; RequireMAC: refuse answers without a Message-Authenticator.", repeat=True),
    Directive("RadiusUserInfo", Custom(_user_info, "uid gid home shell"), SVG, None, Merge.SERVER,
              "The account of users RADIUS accepts; each value may be `$(attribute-id:default)`, a Vendor-Specific "
              "attribute of RadiusVendor in the Access-Accept. Without it RADIUS only says yes or no for accounts "
              "other modules know."),
    Directive("RadiusGroupInfo", Custom(_group_info, "primary-group-name suppl-group-names suppl-group-ids"), SVG,
              None, Merge.SERVER, "The groups of users RADIUS accepts (comma lists; `$(attribute-id:default)` "
              "forms as in RadiusUserInfo)."),
    Directive("RadiusQuotaInfo", Custom(_quota_info, "per-session limit-type bytes-in bytes-out bytes-xfer files-in "
              "files-out files-xfer"), SVG, None, Merge.SERVER,
              "The quota limit of users RADIUS accepts, for `QuotaLimitTable radius:` (mod_quotatab_radius); "
              "`$(attribute-id:default)` forms as in RadiusUserInfo."),
    Directive("RadiusVendor", Custom(_vendor, "name id"), SVG, ("Unix", 4), Merge.SERVER,
              "The vendor whose Vendor-Specific attributes the `$(attribute-id:default)` forms read."),
    Directive("RadiusLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_radius's own log file (`none`: none)."),
)


@dataclass(frozen=True)
class Settings:
    """A server's mod_radius directives."""

    engine: bool
    auth_servers: tuple[RadiusServer, ...]
    acct_servers: tuple[RadiusServer, ...]
    nas_identifier: str | None
    realm: str | None
    options: frozenset[str]
    user_info: tuple | None
    group_info: tuple | None
    quota_info: tuple | None
    vendor: tuple[str, int]
    log_path: str | None
    allow_log_symlinks: bool


def settings(server) -> Settings:
    return server.cached(_settings)


def _settings(server) -> Settings:
    section = server.section
    return Settings(bool(server.get("RadiusEngine")),
                    tuple(p.value for p in section.all("RadiusAuthServer")),
                    tuple(p.value for p in section.all("RadiusAcctServer")),
                    server.get("RadiusNASIdentifier"), server.get("RadiusRealm"),
                    frozenset(o for p in section.all("RadiusOptions") for o in p.value),
                    server.get("RadiusUserInfo"), server.get("RadiusGroupInfo"), server.get("RadiusQuotaInfo"),
                    server.get("RadiusVendor"), server.get("RadiusLog"), bool(server.get("AllowLogSymlinks")))
