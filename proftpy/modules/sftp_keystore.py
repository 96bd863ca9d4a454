"""mod_sftp's key stores: where the public keys a `publickey` login (SFTPAuthorizedUserKeys) and a `hostbased` one
(SFTPAuthorizedHostKeys) may use are found. A store is a `type:info` word, one `KeyStore` declaration per type:

- `file:path` (user and host keys): RFC 4716 keys; `~` is the home of the user logging in, and in a user key
  file's path `%u` that user (ProFTPD does not replace `%u` in a host key file's: refused there). The file is read
  as root, never through a path the user name could lead elsewhere.
- `ldap:` (user keys only, mod_sftp_ldap): the sshPublicKey values of the user's LDAP entry (mod_ldap's backend).
- `sql:/name` (user and host keys, mod_sftp_sql: sftp_sql.py): the values a SELECT SQLNamedQuery returns for the
  user (or, for a host key, the host name the client sent).

`matches` walks the stores of a directive in order, as ProFTPD's keystore API does: the first store holding the key
wins; a store that cannot be read is logged in SFTPLog and skipped."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .. import privs
from ..net.ssh import keys as sshkeys
from . import ldap, sftp_sql
from .sftp_state import Keys, Lookup

if TYPE_CHECKING:
    from ..session import Session

USER, HOST = "user", "host"
MAX_KEYS_FILE = 1 << 20         # a key file larger than this is not read


@dataclass(frozen=True)
class KeyStore:
    """One `type:` of store: the kinds of keys it holds (USER, HOST), `check(info, holds)` at load (ValueError:
    refused), `keys(session, info, lookup, log)` -> the keys found, or None (not read: said in `log`); `where(info)`
    names the store in log lines; `formats` the formats it reads, for the "no matching key" line."""

    kind: str
    holds: tuple[str, ...]
    check: Callable[[str, str], None]
    keys: Callable[["Session", str, Lookup, Callable[[str], None]], Keys | None]
    where: Callable[[str], str]
    formats: str
    subject: bool = True        # SFTPOptions MatchKeySubject looks at the keys' Subject headers


# -- file: ---------------------------------------------------------------------------------------------------------
def _check_file(info: str, holds: str) -> None:
    if not info:
        raise ValueError("badly formatted parameter: 'file:' names no file")
    if holds == HOST and "%u" in info:
        raise ValueError(f"'file:{info}': %u is not replaced in a host key file's path (ProFTPD opens the name as "
                         "written); `~/path` is the path in the home of the user logging in")


def _key_file(session: "Session", info: str, lookup: Lookup, log: Callable[[str], None]) -> str | None:
    """The file's path: `%u` (user key files only, as ProFTPD) is the user, `~` the user's home, `~name` name's."""
    user = lookup.user
    if "/" in user or user in (".", ".."):
        log(f"user name '{user}' cannot name a key file, refusing public key")
        return None
    path = info.replace("%u", user) if lookup.host is None else info
    if path.startswith("~"):
        name, _, rest = path[1:].partition("/")
        account = session.auth.lookup(name or user) if session.auth is not None else None
        if account is None or not account.home:
            return None
        path = os.path.join(account.home, rest)
    return path


def _read(path: str, directive: str, log: Callable[[str], None]) -> str | None:
    try:
        with privs.default_privs().as_root():
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(21, "not a regular file")
            data = os.read(fd, MAX_KEYS_FILE + 1)
        finally:
            os.close(fd)
    except OSError as e:
        log(f"error opening {directive} 'file:{path}': {e.strerror or e}")
        return None
    if len(data) > MAX_KEYS_FILE:
        log(f"{directive} 'file:{path}' is larger than {MAX_KEYS_FILE} bytes: not read")
        return None
    return data.decode("utf-8", "replace")


def _file_keys(session: "Session", info: str, lookup: Lookup, log: Callable[[str], None]) -> Keys | None:
    path = _key_file(session, info, lookup, log)
    text = _read(path, lookup.directive, log) if path is not None else None
    return sshkeys.rfc4716_keys(text) if text is not None else None


# -- ldap: ---------------------------------------------------------------------------------------------------------
def _ldap_keys(session: "Session", info: str, lookup: Lookup, log: Callable[[str], None]) -> Keys | None:
    """mod_sftp_ldap's store: every sshPublicKey value of the user's entry, RFC 4716 or OpenSSH's one line."""
    backend = ldap.session_backend(session)
    if backend is None:
        log("SFTPAuthorizedUserKeys 'ldap:': mod_ldap has no LDAPUsers here, no LDAP keys")
        return None
    values = backend.ssh_keys(lookup.user)
    if not values:
        log("LDAP search returned zero results")
        return None
    log(f"LDAP search returned {len(values)} {'key' if len(values) == 1 else 'keys'}")
    keys: Keys = []
    for i, value in enumerate(values, 1):
        found = sshkeys.stored_keys(value)
        if not found:
            log(f"error obtaining SSH2 public key from LDAP data (key {i})")
        keys += found
    return keys


STORES = {store.kind: store for store in (
    KeyStore("file", (USER, HOST), _check_file, _file_keys, lambda info: f"'{info}'", "RFC4716-formatted"),
    KeyStore("ldap", (USER,), lambda info, holds: None, _ldap_keys, lambda info: "LDAP",
             "RFC4716- or OpenSSH-formatted"),
    KeyStore("sql", (USER, HOST), sftp_sql.check, sftp_sql.keys, lambda info: f"SQLNamedQuery '{info[1:]}'",
             "RFC4716-formatted", subject=False),
)}


def parse_stores(holds: str):
    """The argument parser of SFTPAuthorizedUserKeys (USER) or SFTPAuthorizedHostKeys (HOST): `type:info ...`."""
    def parse(args: list[str]) -> tuple[str, ...]:
        if not args:
            raise ValueError("wrong number of parameters")
        for arg in args:
            if ":" not in arg:
                raise ValueError(f"badly formatted parameter: '{arg}'")
            kind, _, info = arg.partition(":")
            store = STORES.get(kind)
            if store is None or holds not in store.holds:
                usable = ", ".join(f"{k}:" for k, s in STORES.items() if holds in s.holds)
                raise ValueError(f"unsupported key store: '{kind}' (proftpy reads {usable} stores of {holds} keys)")
            store.check(info, holds)
        return tuple(args)
    return parse


def matches(session: "Session", stores: tuple[str, ...], lookup: Lookup, blob: bytes,
            log: Callable[[str], None]) -> bool:
    """The key is in one of `stores`, the first that holds it deciding; with SFTPOptions MatchKeySubject a user key
    whose Subject header names another user does not count."""
    match_subject = lookup.host is None and "MatchKeySubject" in session.server.get("SFTPOptions")
    for word in stores:
        kind, _, info = word.partition(":")
        store = STORES[kind]
        found = store.keys(session, info, lookup, log)
        if found is None:
            continue
        where = store.where(info)
        for key_blob, subject in found:
            if key_blob != blob:
                continue
            if match_subject and store.subject and subject is not None and subject != lookup.user:
                log(f"found matching key for user '{lookup.user}' in {where}, but Subject header ('{subject}') "
                    "does not match, skipping key")
                continue
            return True
        who = f"host '{lookup.host}'" if lookup.host is not None else f"user '{lookup.user}'"
        log(f"no matching public key found for {who} in {where}; perhaps keys are not {store.formats}")
    return False
