"""What the master shares with session children beyond the configuration (scoreboard, shutdown file, TLS
contexts): set up once in the master, before any fork. Features add their setup to `install`.

Authentication is prepared here too: every server's AuthChain (with its timing dummy hash, which costs as much as
one real password check) is built while the master is still root, and the auth files (AuthUserFile,
/etc/passwd, /etc/group, /etc/shadow) are read into their caches. Children inherit both through fork, so no
session pays for the dummy hash and a chrooted session never needs to open an auth file again.
"""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger("proftpy")


def install(master) -> None:
    """Called once after the listeners are bound and before the master loop starts."""
    master.services.setdefault("started", master.started)
    prepare_auth(master.config)
    _add_hook(master, "reloaded", lambda m: prepare_auth(m.config))


def prepare_auth(config) -> None:
    """Build each server's AuthChain and warm its file caches; problems go to the log (the daemon still starts,
    as ProFTPD does: a login against an unusable file just fails)."""
    from .modules.auth import auth_chain
    for server in config.servers:
        try:
            chain = auth_chain(server)
        except ValueError as e:                 # AuthOrder naming a module that does not exist
            log.error("%s: %s", server.name, e)
            continue
        for problem in chain.warm():
            log.warning("%s", problem)


def config_problems(config) -> list[tuple[str, bool]]:
    """For `proftpy -t`: (message, fatal) for every AuthUserFile/AuthGroupFile problem. Only files with
    `AuthFileOptions SyntaxCheck` make a problem fatal; the rest are warnings (the file or line is skipped)."""
    from .auth.file import SYNTAX_CHECK
    from .modules import auth_file
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for server in config.servers:
        backend = auth_file.backend(server)
        for f in (backend.user_file, backend.group_file) if backend else ():
            if f is None or f.path in seen:
                continue
            seen.add(f.path)
            fatal = SYNTAX_CHECK in f.options
            out += [(p, fatal) for p in f.validate()] + [(p, False) for p in f.skipped()]
    return out


def _add_hook(master, name: str, fn: Callable) -> None:
    """Chain `fn` after a hook another feature may already have installed."""
    previous = master.services.get(name)
    if previous is None:
        master.services[name] = fn
        return

    def both(m) -> None:
        previous(m)
        fn(m)
    master.services[name] = both
