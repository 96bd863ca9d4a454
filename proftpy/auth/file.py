"""mod_auth_file: AuthUserFile (passwd(5) format) and AuthGroupFile (group(5) format).

Files are parsed on first use and again whenever they change (inode, mtime, size or mode), so an
administrator's ``ftpasswd`` edit takes effect without a restart.  ProFTPD's safety rules apply:
the file must not be world-readable or world-writable and its directory not world-writable,
unless ``AuthFileOptions InsecurePerms``.  A malformed line is skipped with a logged
``FILE:LINE: message`` warning; with ``AuthFileOptions SyntaxCheck`` any malformed line makes the
whole file unusable and ``validate()`` reports every problem (for config-time checks).
"""
from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass

from proftpy.auth import MAX_ID, MOD_AUTH_FILE, Account, CachedFile, Group
from proftpy.auth.crypt import crypt_verify, hash_is_usable
from proftpy.config.types import compile_regex

log = logging.getLogger("proftpy.auth.file")

INSECURE_PERMS = "InsecurePerms"
SYNTAX_CHECK = "SyntaxCheck"
FILE_OPTIONS = (INSECURE_PERMS, SYNTAX_CHECK)


class AuthFileError(Exception):
    """The file cannot be used; ``problems`` lists each reason (``FILE:LINE: message``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class _Filter:
    """A regex restriction; a leading ``!`` negates it (ProFTPD's af_*_regex_inverted)."""
    source: str
    regex: re.Pattern
    negated: bool

    @classmethod
    def compile(cls, what: str, source: str | None) -> "_Filter | None":
        if source is None:
            return None
        negated = source.startswith("!")
        try:
            regex = compile_regex(source[1:] if negated else source)
        except re.error as exc:
            raise ValueError(f"{what} regex '{source}' is invalid: {exc}") from None
        return cls(source, regex, negated)

    def allows(self, value: str) -> bool:
        return (self.regex.search(value) is not None) != self.negated


def parse_options(words: list[str]) -> frozenset[str]:
    """``AuthFileOptions`` words -> option set; unknown words raise ValueError."""
    opts = set()
    for word in words:
        match = [o for o in FILE_OPTIONS if o.lower() == word.lower()]
        if not match:
            raise ValueError(f"AuthFileOptions: unknown option '{word}' "
                             f"(known: {', '.join(FILE_OPTIONS)})")
        opts.add(match[0])
    return frozenset(opts)


def _parse_id_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit():
        raise ValueError(f"id range '{text}' must look like MIN-MAX")
    if int(lo) > int(hi):
        raise ValueError(f"id range '{text}': minimum is above maximum")
    return int(lo), int(hi)


def parse_directive_args(directive: str, args: list[str]) -> dict:
    """``AuthUserFile``/``AuthGroupFile`` arguments -> constructor keyword arguments.

    ``args`` are the words after the directive name: ``path [id MIN-MAX] [home RE] [name RE]``
    (``home`` only for AuthUserFile).  Errors raise ValueError with a config-ready message.
    """
    if not args:
        raise ValueError(f"{directive}: missing file path")
    path, rest = args[0], args[1:]
    if not os.path.isabs(path):
        raise ValueError(f"{directive}: '{path}' is not an absolute path")
    keys = {"id": "id_range", "name": "name_regex"}
    if directive.lower() == "authuserfile":
        keys["home"] = "home_regex"
    kwargs: dict = {"path": path}
    if len(rest) % 2:
        raise ValueError(f"{directive}: '{rest[-1]}' needs a value")
    for key, value in zip(rest[::2], rest[1::2]):
        if key.lower() not in keys:
            raise ValueError(f"{directive}: unknown restriction '{key}' "
                             f"(use {', '.join(keys)})")
        kwargs[keys[key.lower()]] = _parse_id_range(value) if key.lower() == "id" else value
    return kwargs


def _check_perms(kind: str, path: str, options: frozenset[str], st: os.stat_result) -> None:
    """Refuse files others could read or replace (mod_auth_file's af_check_file)."""
    if not stat.S_ISREG(st.st_mode):
        log.warning("%s '%s' is not a regular file", kind, path)
    if INSECURE_PERMS in options:
        return
    problems = []
    if st.st_mode & stat.S_IROTH:
        problems.append(f"unable to use world-readable {kind} '{path}'")
    if st.st_mode & stat.S_IWOTH:
        problems.append(f"unable to use world-writable {kind} '{path}'")
    directory = os.path.dirname(os.path.abspath(path))
    if os.stat(directory).st_mode & stat.S_IWOTH:
        problems.append(f"unable to use {kind} '{path}' from world-writable directory "
                        f"'{directory}'")
    if problems:
        raise AuthFileError(problems)


def _parse_id(text: str) -> int | None:
    text = text.strip()
    if not text.isdigit() or int(text) > MAX_ID:
        return None
    return int(text)


class _AuthFile:
    """Shared machinery: options, permission check, lazy cached parse, problem reporting."""
    kind = ""

    def __init__(self, path: str, id_range: tuple[int, int] | None = None,
                 name_regex: str | None = None, options: frozenset[str] | set[str] = frozenset()
                 ) -> None:
        unknown = set(options) - set(FILE_OPTIONS)
        if unknown:
            raise ValueError(f"AuthFileOptions: unknown option(s) {', '.join(sorted(unknown))}")
        if id_range is not None and id_range[0] > id_range[1]:
            raise ValueError(f"{self.kind}: id range minimum is above maximum")
        self.path = path
        self.id_range = id_range
        self.name_regex = name_regex
        self.options = frozenset(options)
        self._name_filter = _Filter.compile("name", name_regex)
        self._cache = CachedFile(path, self._parse_lines,
                                 lambda st: _check_perms(self.kind, path, self.options, st))

    def _parse_lines(self, lines: list[str]):
        problems: list[str] = []
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            record, problem = self._parse_line(line)
            if problem:
                problems.append(f"{self.path}:{number}: {problem}")
            elif record is not None:
                records.append(record)
        if problems and SYNTAX_CHECK in self.options:
            raise AuthFileError(problems)
        self._skipped = problems
        for problem in problems:
            log.warning("%s (line skipped)", problem)
        return self._index([r for r in records if self._allowed(r)])

    def _in_range(self, ident: int) -> bool:
        return self.id_range is None or self.id_range[0] <= ident <= self.id_range[1]

    def load(self):
        """The parsed index; raises AuthFileError/OSError when the file is unusable."""
        return self._cache.get()

    def validate(self) -> list[str]:
        """Every reason the file cannot be used right now (empty list = usable)."""
        try:
            self.load()
        except AuthFileError as exc:
            return list(exc.problems)
        except OSError as exc:
            return [f"unable to open {self.kind} '{self.path}': {exc.strerror}"]
        return []

    def skipped(self) -> list[str]:
        """Malformed lines the last parse skipped (``FILE:LINE: message``); the file is still usable."""
        return list(getattr(self, "_skipped", []))

    def _usable_index(self):
        """The index, or None after logging why the file cannot be used (lookup declines)."""
        try:
            return self.load()
        except AuthFileError as exc:
            for problem in exc.problems:
                log.error("%s", problem)
        except OSError as exc:
            log.error("unable to open %s '%s': %s", self.kind, self.path, exc.strerror)
        return None


class AuthUserFile(_AuthFile):
    """``AuthUserFile path [id MIN-MAX] [home RE] [name RE]``: lines are
    ``name:hash:uid:gid:gecos:home:shell``; entries outside the restrictions are ignored."""
    kind = "AuthUserFile"

    def __init__(self, path: str, id_range: tuple[int, int] | None = None,
                 home_regex: str | None = None, name_regex: str | None = None,
                 options: frozenset[str] | set[str] = frozenset()) -> None:
        super().__init__(path, id_range, name_regex, options)
        self.home_regex = home_regex
        self._home_filter = _Filter.compile("home", home_regex)

    def _parse_line(self, line: str) -> tuple[Account | None, str | None]:
        fields = line.split(":")
        if len(fields) != 7:
            return None, f"expected 7 ':'-separated fields, found {len(fields)}"
        name, passwd, uid, gid, gecos, home, shell = fields
        if not name:
            return None, "empty user name"
        uid_n, gid_n = _parse_id(uid), _parse_id(gid)
        if uid_n is None:
            return None, f"user '{name}': bad UID '{uid}'"
        if gid_n is None:
            return None, f"user '{name}': bad GID '{gid}'"
        if SYNTAX_CHECK in self.options and not home.startswith("/"):
            return None, f"user '{name}': home directory '{home}' is not an absolute path"
        return Account(name, passwd, uid_n, gid_n, gecos, home, shell, MOD_AUTH_FILE), None

    def _allowed(self, acct: Account) -> bool:
        if not self._in_range(acct.uid):
            log.debug("%s: skipping user '%s': UID %d outside %s", self.path, acct.name,
                      acct.uid, self.id_range)
            return False
        if self._name_filter and not self._name_filter.allows(acct.name):
            log.debug("%s: skipping user '%s': name does not meet filter '%s'", self.path,
                      acct.name, self.name_regex)
            return False
        if self._home_filter and not self._home_filter.allows(acct.home):
            log.debug("%s: skipping user '%s': home '%s' does not meet filter '%s'", self.path,
                      acct.name, acct.home, self.home_regex)
            return False
        return True

    @staticmethod
    def _index(accounts: list[Account]):
        by_name: dict[str, Account] = {}
        by_uid: dict[int, Account] = {}
        for acct in accounts:                   # first entry wins, as a sequential scan would
            by_name.setdefault(acct.name, acct)
            by_uid.setdefault(acct.uid, acct)
        return accounts, by_name, by_uid

    def getpwnam(self, name: str) -> Account | None:
        index = self._usable_index()
        return index[1].get(name) if index else None

    def getpwuid(self, uid: int) -> Account | None:
        index = self._usable_index()
        return index[2].get(uid) if index else None

    def accounts(self) -> list[Account]:
        index = self._usable_index()
        return list(index[0]) if index else []


class AuthGroupFile(_AuthFile):
    """``AuthGroupFile path [id MIN-MAX] [name RE]``: lines are ``name:x:gid:m1,m2``."""
    kind = "AuthGroupFile"

    def _parse_line(self, line: str) -> tuple[Group | None, str | None]:
        fields = line.split(":")
        if len(fields) != 4:
            if len(fields) != 3 or SYNTAX_CHECK in self.options:
                return None, f"expected 4 ':'-separated fields, found {len(fields)}"
            fields.append("")
        name, _passwd, gid, members = fields
        if not name:
            return None, "empty group name"
        gid_n = _parse_id(gid)
        if gid_n is None:
            return None, f"group '{name}': bad GID '{gid}'"
        names = tuple(m.strip() for m in members.split(",") if m.strip())
        return Group(name, gid_n, names), None

    def _allowed(self, group: Group) -> bool:
        if not self._in_range(group.gid):
            log.debug("%s: skipping group '%s': GID %d outside %s", self.path, group.name,
                      group.gid, self.id_range)
            return False
        if self._name_filter and not self._name_filter.allows(group.name):
            log.debug("%s: skipping group '%s': name does not meet filter '%s'", self.path,
                      group.name, self.name_regex)
            return False
        return True

    @staticmethod
    def _index(groups: list[Group]):
        by_name: dict[str, Group] = {}
        by_gid: dict[int, Group] = {}
        for group in groups:
            by_name.setdefault(group.name, group)
            by_gid.setdefault(group.gid, group)
        return groups, by_name, by_gid

    def getgrnam(self, name: str) -> Group | None:
        index = self._usable_index()
        return index[1].get(name) if index else None

    def getgrgid(self, gid: int) -> Group | None:
        index = self._usable_index()
        return index[2].get(gid) if index else None

    def groups(self) -> list[Group]:
        index = self._usable_index()
        return list(index[0]) if index else []


def groups_for(groups: list[Group], by_gid, name: str, primary_gid: int) -> list[Group]:
    """Primary group first (when known), then every group listing ``name`` as a member."""
    result = []
    primary = by_gid(primary_gid)
    if primary is not None:
        result.append(primary)
    for group in groups:
        if name in group.members and group not in result:
            result.append(group)
    return result


class FileBackend:
    """mod_auth_file: users from an AuthUserFile, groups from an AuthGroupFile (either optional).

    Without an AuthGroupFile, group lookups decline so the next module (mod_auth_unix) answers.
    """
    name = MOD_AUTH_FILE
    declines_on_failure = False
    uses_crypt = True

    def __init__(self, user_file: AuthUserFile | None = None,
                 group_file: AuthGroupFile | None = None) -> None:
        self.user_file = user_file
        self.group_file = group_file

    def getpwnam(self, name: str) -> Account | None:
        return self.user_file.getpwnam(name) if self.user_file else None

    def getpwuid(self, uid: int) -> Account | None:
        return self.user_file.getpwuid(uid) if self.user_file else None

    def getgrnam(self, name: str) -> Group | None:
        return self.group_file.getgrnam(name) if self.group_file else None

    def getgrgid(self, gid: int) -> Group | None:
        return self.group_file.getgrgid(gid) if self.group_file else None

    def groups_for(self, name: str, primary_gid: int) -> list[Group]:
        if not self.group_file:
            return []
        return groups_for(self.group_file.groups(), self.group_file.getgrgid, name, primary_gid)

    def check(self, account: Account, password: str | bytes) -> bool:
        return crypt_verify(password, account.passwd)

    def sample_hash(self) -> str | None:
        """The first usable hash, so the timing dummy uses the same scheme and cost."""
        for acct in (self.user_file.accounts() if self.user_file else []):
            if hash_is_usable(acct.passwd):
                return acct.passwd
        return None

    def validate(self) -> list[str]:
        """Config-time report over both files (``FILE:LINE: message`` lines)."""
        return [p for f in (self.user_file, self.group_file) if f for p in f.validate()]

    def warm(self) -> list[str]:
        """Load both files now (in the master, before fork and chroot); returns what is wrong with them."""
        return [p for f in (self.user_file, self.group_file) if f for p in f.validate() + f.skipped()]
