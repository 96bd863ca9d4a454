"""Authentication: account records, the backend protocol and ProFTPD's AuthOrder chain.

Backends (``file``, ``unix``, ``pam``) answer lookups for the names they know and decline (None)
the rest, like ProFTPD's auth modules return DECLINED.  ``AuthChain`` asks them in AuthOrder; a
module listed with a trailing ``*`` is authoritative: its answer, even "unknown", ends the search.
A backend with a ``vouch(name, password)`` method is also one of ProFTPD's "auth-only" modules (mod_radius
without RadiusUserInfo, mod_auth_otp): asked before any password is checked, its yes or no decides for an account
another backend knows; None lets the usual checks run. One whose ``auth_only`` is true takes no other part (it
knows no account, and its `*` in AuthOrder is about its own verdict only).

A failed login costs the same whether or not the user exists: for unknown users (and users whose
hash is locked or empty) the chain verifies the password against a dummy hash made at startup with
the scheme and cost of a real account's hash.
"""
from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from proftpy import trace
from proftpy.auth.crypt import crypt_verify, hash_is_usable, hash_like

log = logging.getLogger("proftpy.auth")

MOD_AUTH_FILE = "mod_auth_file.c"
MOD_AUTH_UNIX = "mod_auth_unix.c"
MOD_AUTH_PAM = "mod_auth_pam.c"
MAX_ID = 2**32 - 2          # (uid_t)-1 is "no change" for setuid; never a valid id


@dataclass(frozen=True)
class Account:
    """One passwd(5) entry; ``source`` is the ProFTPD module name that supplied it."""
    name: str
    passwd: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str
    source: str


@dataclass(frozen=True)
class Group:
    """One group(5) entry."""
    name: str
    gid: int
    members: tuple[str, ...] = field(default_factory=tuple)


class Backend(Protocol):
    """What AuthChain needs from a backend.  Lookups return None for "not mine" (DECLINED)."""
    name: str
    #: True when a wrong password lets the next module try (ProFTPD mod_auth_pam when not
    #: authoritative); False when it ends the login (mod_auth_file, mod_auth_unix).
    declines_on_failure: bool
    #: True when ``check`` runs crypt over ``account.passwd`` (so the chain can equalise timing).
    uses_crypt: bool

    def getpwnam(self, name: str) -> Account | None: ...
    def getpwuid(self, uid: int) -> Account | None: ...
    def getgrnam(self, name: str) -> Group | None: ...
    def getgrgid(self, gid: int) -> Group | None: ...
    def groups_for(self, name: str, primary_gid: int) -> list[Group]: ...
    def check(self, account: Account, password: str | bytes) -> bool: ...
    def sample_hash(self) -> str | None: ...


class AuthChain:
    """ProFTPD's AuthOrder: ask backends in order; ``required`` names end the search.

    ``backends`` is a sequence of backends or of ``(backend, required)`` pairs; use
    :func:`parse_auth_order` to turn ``AuthOrder`` words into that shape.
    """

    def __init__(self, backends: Sequence[Backend | tuple[Backend, bool]],
                 dummy_reference: str | None = None) -> None:
        self.entries: list[tuple[Backend, bool]] = [
            b if isinstance(b, tuple) else (b, False) for b in backends]
        self.refusal: str | None = None     # why the last authenticate() failed, when a backend says (mod_auth logs it)
        # ProFTPD's auth-only modules, with their AuthOrder `*`
        self.vouchers = [(b, required) for b, required in self.entries if hasattr(b, "vouch")]
        self.entries = [e for e in self.entries if not getattr(e[0], "auth_only", False)]
        reference = dummy_reference or self._first_sample()
        # Made once, at startup (the master still can read /etc/shadow then).
        self.dummy_hash = hash_like(os.urandom(16).hex(), reference or "")

    def _first_sample(self) -> str | None:
        for backend, _ in self.entries:
            sample = backend.sample_hash()
            if sample and hash_is_usable(sample):
                return sample
        return None

    def warm(self) -> list[str]:
        """Load every backend's files now (master, before fork); returns the problems found."""
        problems: list[str] = []
        for backend, _ in self.entries:
            warm = getattr(backend, "warm", None)
            if warm is not None:
                problems.extend(warm())
        return problems

    def _ask(self, call: Callable[[Backend], object]):
        for backend, required in self.entries:
            if trace.on: trace.msg("auth", 6, "dispatching auth request to module %s", getattr(backend, "name", type(backend).__name__))
            answer = call(backend)
            if answer is not None or required:
                return backend, answer
        return None, None

    def lookup(self, name: str) -> Account | None:
        """The account for ``name`` from the first backend that knows it."""
        return self._ask(lambda b: b.getpwnam(name))[1]

    def getpwuid(self, uid: int) -> Account | None:
        return self._ask(lambda b: b.getpwuid(uid))[1]

    def getgrnam(self, name: str) -> Group | None:
        return self._ask(lambda b: b.getgrnam(name))[1]

    def getgrgid(self, gid: int) -> Group | None:
        return self._ask(lambda b: b.getgrgid(gid))[1]

    def gid_of(self, name: str) -> int:
        """A gid from a number or a group name the backends know (SITE CHGRP, MFF, GroupOwner); ValueError when
        unknown or out of range (a number no gid_t holds would make chown(2) itself fail)."""
        if name.isascii() and name.isdigit():
            if len(name) > 10 or int(name) > MAX_ID:
                raise ValueError(name)
            return int(name)
        group = self.getgrnam(name)
        if group is None:
            raise ValueError(name)
        return group.gid

    def groups_for(self, account: Account) -> list[Group]:
        """Primary group first, then supplementary groups, from the first backend with any."""
        return self._ask(lambda b: b.groups_for(account.name, account.gid) or None)[1] or []

    def authenticate(self, name: str, password: str | bytes) -> Account | None:
        """The account when ``password`` is right for ``name``, else None (same cost either way)."""
        self.refusal = None
        for backend, _ in self.vouchers:
            verdict = backend.vouch(name, password)
            if verdict is not None:
                if trace.on: trace.msg("auth", 5, "auth-only module %s %s user '%s'", backend.name, "accepted" if verdict else "refused", name)
                if not verdict:
                    self.refusal = getattr(backend, "refusal", None)
                    return None
                return self.lookup(name)
        for backend, required in self.entries:
            account = backend.getpwnam(name)
            if trace.on: trace.msg("auth", 6, "auth request \"getpwnam\" for '%s' to module %s: %s", name, getattr(backend, "name", type(backend).__name__), "found" if account else "unknown")
            if account is None:
                if required:
                    break
                continue
            if backend.check(account, password):
                if trace.on: trace.msg("auth", 5, "user '%s' authenticated by %s", name, getattr(backend, "name", type(backend).__name__))
                return account
            if trace.on: trace.msg("auth", 5, "bad password for user '%s' (%s)", name, getattr(backend, "name", type(backend).__name__))
            self.refusal = getattr(backend, "refusal", None)
            if backend.uses_crypt and not hash_is_usable(account.passwd):
                self._burn(password)
            if required or not backend.declines_on_failure:
                return None
        else:
            self._burn(password)
            return None
        self._burn(password)
        return None

    def _burn(self, password: str | bytes) -> None:
        """Spend what a real verification costs, so the reply time does not reveal the user."""
        crypt_verify(password, self.dummy_hash)


def parse_auth_order(words: Iterable[str], available: dict[str, Backend]
                     ) -> list[tuple[Backend, bool]]:
    """``AuthOrder mod_auth_file.c* mod_auth_unix.c`` -> [(backend, required), ...].

    ``available`` maps module names to backends; an unknown name raises ValueError with the
    text a config error should show.
    """
    order = []
    for word in words:
        required = word.endswith("*")
        module = word[:-1] if required else word
        if module not in available:
            known = ", ".join(sorted(available))
            raise ValueError(f"AuthOrder: no such auth module '{module}' (known: {known})")
        order.append((available[module], required))
    return order


def configured_ids(user: str | None, group: str | None) -> tuple[int | None, int | None]:
    """The ids of a `User`/`Group` pair (names or numbers; None where not set); KeyError for an unknown name."""
    import grp
    import pwd
    uid = gid = None
    if user is not None:
        if user.isdigit():
            uid = int(user)
            try:
                gid = pwd.getpwuid(uid).pw_gid
            except KeyError:
                gid = None
        else:
            pw = pwd.getpwnam(user)
            uid, gid = pw.pw_uid, pw.pw_gid
    if group is not None:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid


def server_ids(server) -> tuple[int | None, int | None] | KeyError:
    """A server's `User`/`Group` as ids (configured_ids), looked up once per configured server; the KeyError of a
    name nobody has, for the caller to report."""
    return server.cached(_lookup_server_ids)


def _lookup_server_ids(server) -> tuple[int | None, int | None] | KeyError:
    try:
        return configured_ids(server.get("User"), server.get("Group"))
    except KeyError as e:
        return e


def _root_identity() -> tuple[int, int]:
    st = os.stat("/")
    return st.st_dev, st.st_ino


class CachedFile:
    """A text file parsed on first use and re-parsed when its (inode, mtime, size) changes.

    ``parse(lines)`` returns the parsed value; ``check(st)`` may raise OSError-like errors for
    files that must not be used (permissions).  Errors are kept so a bad file is reported once
    per change, not on every lookup.

    The file is never opened after the process has chrooted (the root directory differs from
    the one at construction): a user could otherwise plant their own ``etc/passwd`` or
    ``etc/group`` in the directory they were jailed to and fake group memberships.
    """

    def __init__(self, path: str, parse: Callable[[list[str]], object],
                 check: Callable[[os.stat_result], None] | None = None) -> None:
        self.path = path
        self._parse = parse
        self._check = check
        self._root = _root_identity()
        self._key: tuple | None = None
        self._value: object = None
        self._error: Exception | None = None

    def get(self):
        """The parsed value; raises the load error (OSError, AuthFileError...) if unusable.

        Once loaded, a file that can no longer be opened (after chroot or a privilege drop)
        keeps serving its last good contents, as ProFTPD keeps its auth files open.
        """
        loaded = self._key is not None and self._error is None
        if _root_identity() != self._root:
            if loaded:
                return self._value
            raise PermissionError(errno.EACCES, "not read after chroot", self.path)
        if loaded:                      # unchanged since the last parse: a stat, without opening the file
            try:
                st = os.stat(self.path)
            except OSError:
                return self._value
            if (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode) == self._key:
                return self._value
        try:
            f = open(self.path, encoding="utf-8", errors="surrogateescape")
        except OSError:
            if loaded:
                return self._value
            raise
        with f:
            st = os.fstat(f.fileno())
            key = (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)
            if key != self._key:
                self._key, self._value, self._error = key, None, None
                try:
                    if self._check is not None:
                        self._check(st)
                    self._value = self._parse(f.read().splitlines())
                except Exception as exc:             # remembered, re-raised below and on reuse
                    self._error = exc
        if self._error is not None:
            raise self._error
        return self._value
