"""mod_auth_unix: system accounts from /etc/passwd, /etc/shadow and /etc/group.

The files are parsed here (no ``spwd``, gone in Python 3.13; no NSS) and cached until they change.
/etc/shadow is readable by root only: the master (or a session before login, with root privileges)
reads it; without access, shadowed accounts simply fail to verify.  Also the two policy helpers
mod_auth uses for every login: RequireValidShell (/etc/shells) and UseFtpUsers (/etc/ftpusers).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from proftpy.auth import MOD_AUTH_UNIX, Account, CachedFile, Group
from proftpy.auth.crypt import crypt_verify, hash_is_usable
from proftpy.auth.file import groups_for

log = logging.getLogger("proftpy.auth.unix")

# getusershell(3) falls back to these when /etc/shells does not exist.
DEFAULT_SHELLS = ("/bin/sh", "/bin/csh")


@dataclass(frozen=True)
class Shadow:
    """The fields of a shadow(5) entry that decide whether a login may proceed."""
    name: str
    passwd: str
    lastchg: int | None
    max_days: int | None
    inactive: int | None
    expire: int | None


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _parse_passwd(path: str, lines: list[str]) -> dict:
    by_name: dict[str, Account] = {}
    by_uid: dict[int, Account] = {}
    for number, line in enumerate(lines, 1):
        if not line or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) != 7 or not fields[0] or not fields[2].isdigit() or not fields[3].isdigit():
            log.warning("%s:%d: malformed passwd entry (line skipped)", path, number)
            continue
        name, passwd, uid, gid, gecos, home, shell = fields
        acct = Account(name, passwd, int(uid), int(gid), gecos, home, shell, MOD_AUTH_UNIX)
        by_name.setdefault(name, acct)
        by_uid.setdefault(acct.uid, acct)
    return {"name": by_name, "uid": by_uid}


def _parse_shadow(path: str, lines: list[str]) -> dict[str, Shadow]:
    entries: dict[str, Shadow] = {}
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            log.warning("%s:%d: malformed shadow entry (line skipped)", path, number)
            continue
        fields += [""] * (9 - len(fields))
        entries.setdefault(fields[0], Shadow(fields[0], fields[1], _int_or_none(fields[2]),
                                             _int_or_none(fields[4]), _int_or_none(fields[6]),
                                             _int_or_none(fields[7])))
    return entries


def _parse_group(path: str, lines: list[str]) -> dict:
    groups: list[Group] = []
    by_name: dict[str, Group] = {}
    by_gid: dict[int, Group] = {}
    for number, line in enumerate(lines, 1):
        if not line or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) != 4 or not fields[0] or not fields[2].isdigit():
            log.warning("%s:%d: malformed group entry (line skipped)", path, number)
            continue
        members = tuple(m.strip() for m in fields[3].split(",") if m.strip())
        group = Group(fields[0], int(fields[2]), members)
        groups.append(group)
        by_name.setdefault(group.name, group)
        by_gid.setdefault(group.gid, group)
    return {"all": groups, "name": by_name, "gid": by_gid}


def shadow_refusal(entry: Shadow, today: int | None = None) -> str | None:
    """Why shadow aging/expiry refuses the login (mod_auth_unix's checks), or None."""
    today = int(time.time() // 86400) if today is None else today
    if entry.expire is not None and entry.expire > 0 and today >= entry.expire:
        return "account expired"
    if (entry.lastchg is not None and entry.max_days is not None and entry.inactive is not None
            and entry.lastchg > 0 and entry.max_days >= 0 and entry.inactive >= 0
            and today > entry.lastchg + entry.max_days + entry.inactive):
        return "password expired and inactive period passed"
    return None


class UnixBackend:
    """System users and groups (``mod_auth_unix.c``)."""
    name = MOD_AUTH_UNIX
    declines_on_failure = False
    uses_crypt = True

    def __init__(self, passwd_path: str = "/etc/passwd", shadow_path: str = "/etc/shadow",
                 group_path: str = "/etc/group") -> None:
        self.passwd_path = passwd_path
        self.shadow_path = shadow_path
        self.group_path = group_path
        self._passwd = CachedFile(passwd_path, lambda lines: _parse_passwd(passwd_path, lines))
        self._shadow = CachedFile(shadow_path, lambda lines: _parse_shadow(shadow_path, lines))
        self._group = CachedFile(group_path, lambda lines: _parse_group(group_path, lines))

    def _load(self, cached: CachedFile, what: str):
        try:
            return cached.get()
        except OSError as exc:
            log.error("unable to read %s '%s': %s", what, cached.path, exc.strerror)
            return None

    def shadow_entry(self, name: str) -> Shadow | None:
        try:
            return self._shadow.get().get(name)
        except PermissionError:
            log.debug("no access to '%s'; shadowed passwords cannot be checked", self.shadow_path)
        except OSError as exc:
            log.debug("unable to read '%s': %s", self.shadow_path, exc.strerror)
        return None

    def _with_shadow(self, acct: Account | None) -> Account | None:
        """Fill the real hash in from shadow when passwd says ``x``."""
        if acct is None or acct.passwd != "x":
            return acct
        entry = self.shadow_entry(acct.name)
        if entry is None:
            return acct
        return Account(acct.name, entry.passwd, acct.uid, acct.gid, acct.gecos, acct.home,
                       acct.shell, acct.source)

    def getpwnam(self, name: str) -> Account | None:
        data = self._load(self._passwd, "passwd file")
        return self._with_shadow(data["name"].get(name)) if data else None

    def getpwuid(self, uid: int) -> Account | None:
        data = self._load(self._passwd, "passwd file")
        return self._with_shadow(data["uid"].get(uid)) if data else None

    def getgrnam(self, name: str) -> Group | None:
        data = self._load(self._group, "group file")
        return data["name"].get(name) if data else None

    def getgrgid(self, gid: int) -> Group | None:
        data = self._load(self._group, "group file")
        return data["gid"].get(gid) if data else None

    def groups_for(self, name: str, primary_gid: int) -> list[Group]:
        data = self._load(self._group, "group file")
        if not data:
            return []
        return groups_for(data["all"], data["gid"].get, name, primary_gid)

    def check(self, account: Account, password: str | bytes) -> bool:
        """Verify the password first (constant cost), then shadow expiry/aging."""
        ok = crypt_verify(password, account.passwd)
        if not ok:
            return False
        entry = self.shadow_entry(account.name)
        reason = shadow_refusal(entry) if entry else None
        if reason:
            log.info("login refused for '%s': %s", account.name, reason)
            return False
        return True

    def warm(self) -> list[str]:
        """Read passwd, group and shadow now (the master is still root: shadow is readable)."""
        problems = []
        for cached, what in ((self._passwd, "passwd file"), (self._group, "group file")):
            try:
                cached.get()
            except OSError as exc:
                problems.append(f"unable to read {what} '{cached.path}': {exc.strerror}")
        self.shadow_entry("")           # a non-root daemon cannot read it: logged at debug, not a problem
        return problems

    def sample_hash(self) -> str | None:
        """The first usable shadow hash (needs root), for the timing dummy."""
        try:
            entries = self._shadow.get()
        except OSError:
            return None
        for entry in entries.values():
            if hash_is_usable(entry.passwd):
                return entry.passwd
        return None


def _read_lines(path: str) -> list[str] | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None


def valid_shell(shell: str, shells_file: str = "/etc/shells") -> bool:
    """RequireValidShell: is ``shell`` listed in /etc/shells?  An empty shell field means
    /bin/sh (passwd(5)); a missing shells file means getusershell(3)'s defaults."""
    shell = shell or "/bin/sh"
    lines = _read_lines(shells_file)
    if lines is None:
        return shell in DEFAULT_SHELLS
    return any(line.strip() == shell for line in lines if not line.lstrip().startswith("#"))


def in_ftpusers(name: str, path: str = "/etc/ftpusers") -> bool:
    """UseFtpUsers: is ``name`` listed (one name per line, ``#`` comments) in /etc/ftpusers?
    A missing file bans nobody."""
    lines = _read_lines(path)
    if lines is None:
        return False
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry and entry == name:
            return True
    return False


def login_denial(account: Account, *, root_login: bool = False,
                 require_valid_shell: bool = True, shells_file: str = "/etc/shells",
                 use_ftpusers: bool = True, ftpusers_file: str = "/etc/ftpusers") -> str | None:
    """Why RootLogin/RequireValidShell/UseFtpUsers refuse ``account``, or None when allowed.

    The reason is ProFTPD's text for the SystemLog line ``USER x (Login failed): <reason>``; the client always
    gets ``530 Login incorrect.``.
    """
    if use_ftpusers and in_ftpusers(account.name, ftpusers_file):
        return f"User in {ftpusers_file}"
    if require_valid_shell and not valid_shell(account.shell, shells_file):
        return f"Invalid shell: '{account.shell}'"
    if account.uid == 0 and not root_login:
        return "Root login attempted"
    return None
