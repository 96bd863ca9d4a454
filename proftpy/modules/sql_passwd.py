"""mod_sql_passwd: the SQLAuthTypes of hashed passwords (md5, sha1, sha256, sha512, pbkdf2, scrypt, argon2, bcrypt)
and their SQLPassword* directives, as ProFTPD 1.3.8's contrib/mod_sql_passwd.c.

The computations are in proftpy/auth/sql_passwd.py, the auth types in proftpy/auth/sql.py's table (mod_sql calls
them). Here: the directives (read into the server's mod_sql settings), and the session's SQLPasswordSaltFile, read
as root when the session starts (as ProFTPD reads it) and handed to the session's mod_sql backend.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from .. import privs
from ..auth.sql import SqlBackend
from ..auth.sql_passwd import (DEFAULT_HASH_LEN, MOD_SQL_PASSWD, OPTIONS, VERSION, PasswdConfig, decode,
                               parse_encoding, parse_salt_where, pbkdf2_params, read_salt_file, sodium)
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, atoi
from ..module import Listener, Module

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")


# -- directives ----------------------------------------------------------------------------------------------------
def _options(args: list[str]) -> frozenset[str]:
    if not args:
        raise ValueError("wrong number of parameters")
    flags: set[str] = set()
    for word in args:
        if word.lower() not in OPTIONS:
            raise ValueError(f"unknown SQLPasswordOption '{word}'")
        flags.update(OPTIONS[word.lower()])
    return frozenset(flags)


def _rounds(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if atoi(args[0]) < 1:
        raise ValueError(f"insufficient number of rounds ({args[0]})")
    return atoi(args[0])


def _salt_file(args: list[str]) -> tuple[str, str]:
    if not args:
        raise ValueError("wrong number of parameters")
    return args[0], parse_salt_where(args[1:])


def _user_salt(args: list[str]) -> tuple[str, str]:
    if not args:
        raise ValueError("wrong number of parameters")
    key = args[0]
    if key.lower() not in ("name", "uid") and not key.lower().startswith("sql:/"):
        raise ValueError("badly formatted parameter")
    return key, parse_salt_where(args[1:])


def _pbkdf2(args: list[str]):
    if len(args) == 3:
        return pbkdf2_params(*args)
    if len(args) == 1:
        if not args[0].lower().startswith("sql:/"):
            raise ValueError("badly formatted parameter")
        return args[0]
    raise ValueError("wrong number of parameters")


def _cost(args: list[str]) -> str:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if args[0].lower() not in ("interactive", "sensitive"):
        raise ValueError(f"unknown/unsupported cost: '{args[0]}'")
    return args[0].lower()


def _length(needs_sodium: bool):
    def parse(args: list[str]) -> int:
        if needs_sodium and sodium() is None:
            raise ValueError("requires libsodium Argon2 support (libsodium was not found)")
        if len(args) != 1:
            raise ValueError("wrong number of parameters")
        if atoi(args[0]) <= 0:
            raise ValueError("length must be greater than 0")
        return atoi(args[0])
    return parse


directives = tuple(Directive(name, parse, SVG, default, Merge.SERVER, doc, MOD_SQL_PASSWD, repeat=repeat)
                   for name, parse, default, doc, repeat in (
    ("SQLPasswordEngine", Flag, False,
     "Let the md5/sha1/sha256/sha512/pbkdf2/scrypt/argon2/bcrypt SQLAuthTypes work (off: they refuse every "
     "password).", False),
    ("SQLPasswordEncoding", Custom(parse_encoding, "base64|hex|HEX|none"), "hex",
     "How digests are written in the password column: `hex` lower case, `HEX` upper case, `base64`.", False),
    ("SQLPasswordSaltEncoding", Custom(parse_encoding, "base64|hex|HEX|none"), "none",
     "How salts (SQLPasswordSaltFile, an `sql:/` SQLPasswordUserSalt) are written: decoded before use.", False),
    ("SQLPasswordOptions", Custom(_options, "HashPassword|HashSalt|HashEncodePassword|HashEncodeSalt ..."),
     frozenset(), "Hash the password and/or the salt before the salted digest (and encode them: HashEncode*).",
     True),
    ("SQLPasswordRounds", Custom(_rounds, "count"), 1,
     "Digest the encoded digest again, this many rounds in all.", False),
    ("SQLPasswordSaltFile", Custom(_salt_file, "path|none [Append|Prepend]"), None,
     "A salt for every user, read from this file when the session starts (a final newline dropped).", False),
    ("SQLPasswordUserSalt", Custom(_user_salt, "name|uid|sql:/named-query [Append|Prepend]"), None,
     "A salt per user: the USER name, or the one value a SELECT named query (`%{0}`: the name) returns.", False),
    ("SQLPasswordPBKDF2", Custom(_pbkdf2, "digest iterations length | sql:/named-query"), None,
     "PBKDF2's digest, iterations and key length, or a query returning those three columns for the user.",
     False),
    ("SQLPasswordCost", Custom(_cost, "interactive|sensitive"), "interactive",
     "libsodium's cost for scrypt and argon2.", False),
    ("SQLPasswordScrypt", Custom(_length(False), "length"), DEFAULT_HASH_LEN,
     "Length in bytes of the scrypt hash.", False),
    ("SQLPasswordArgon2", Custom(_length(True), "length"), DEFAULT_HASH_LEN,
     "Length in bytes of the argon2 hash (needs libsodium).", False),
))


def config(server) -> PasswdConfig:
    """A server's SQLPassword* directives (SQLPasswordOptions lines add up, as ProFTPD ORs them)."""
    return PasswdConfig(
        engine=server.get("SQLPasswordEngine"), encoding=server.get("SQLPasswordEncoding"),
        salt_encoding=server.get("SQLPasswordSaltEncoding"),
        flags=frozenset(f for p in server.section.all("SQLPasswordOptions") for f in p.value),
        rounds=server.get("SQLPasswordRounds"), salt_file=server.get("SQLPasswordSaltFile"),
        user_salt=server.get("SQLPasswordUserSalt"), pbkdf2=server.get("SQLPasswordPBKDF2"),
        cost=server.get("SQLPasswordCost"), scrypt_len=server.get("SQLPasswordScrypt"),
        argon2_len=server.get("SQLPasswordArgon2"))


# -- session -------------------------------------------------------------------------------------------------------
def _salt_from_file(cfg: PasswdConfig) -> bytes | None:
    """The SQLPasswordSaltFile salt, decoded (SQLPasswordSaltEncoding); None when off, unreadable or undecodable."""
    if not cfg.engine or cfg.salt_file is None or cfg.salt_file[0].lower() == "none":
        return None
    path = cfg.salt_file[0]
    try:
        with privs.default_privs().root():
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            data = f.read()
    except OSError as e:
        log.debug("%s: unable to read SQLPasswordSaltFile '%s': %s", VERSION, path, e.strerror)
        return None
    raw = read_salt_file(data)
    salt = decode(raw, cfg.salt_encoding) if raw is not None else None
    if raw is not None and salt is None:
        log.debug("%s: error decoding salt from SQLPasswordSaltFile '%s'", VERSION, path)
    return salt


def session_init(session: "Session", **_: Any) -> None:
    """The session's mod_sql backend gets this server's salt file (again after HOST chose another server)."""
    for b, _required in session.auth.entries if session.auth is not None else ():
        if isinstance(b, SqlBackend):
            cfg = b.settings.passwd
            b.salts.file = _salt_from_file(cfg)
            b.salts.file_where = cfg.salt_file[1] if cfg.salt_file else "append"


def _configured(config) -> bool:
    return config.sets("SQLPasswordEngine")


MODULE = Module(MOD_SQL_PASSWD, directives=directives, session_init=session_init, session_active=_configured,
                listeners=(Listener("core.session-reinit", session_init, _configured),))
