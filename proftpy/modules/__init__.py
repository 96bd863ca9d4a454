"""The built-in modules, in ProFTPD's load order. Each module is a plain Python module with declarative tables:

- `NAME`: the ProFTPD module it stands for (`mod_core.c`), listed by `proftpy -l` and tested by `<IfModule>`;
- `directives`: `Directive` declarations; `commands`: `Command` rows; `hooks`: `Hook`s for the other phases;
- optionally `listeners` [(event name, fn)] and `session_init(session)` (ProFTPD's sess_init).
"""

from __future__ import annotations

import dataclasses
import functools

from ..config.registry import Registry
from ..dispatch import Dispatcher
from . import access, auth, auth_file, auth_pam, auth_unix, core, ctrls, ctrls_admin, facts, files, log, ls, scoreboard, shutdown, site, xfer

MODULES = [core, shutdown, access, scoreboard, files, xfer, auth_file, auth_unix, auth_pam, auth, ls, log, site, facts, ctrls, ctrls_admin]


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    """All directives of all built-in modules (declared once each)."""
    reg = Registry()
    for mod in MODULES:
        # a declaration that names another ProFTPD module keeps it (one Python module may serve several)
        reg.add_module(mod.NAME, [d if d.module != "mod_core.c" else dataclasses.replace(d, module=mod.NAME)
                                  for d in getattr(mod, "directives", [])])
    return reg


@functools.lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    """The command table and hooks of all modules; built once (in the master, before any fork)."""
    commands = [dataclasses.replace(c, module=m.NAME) for m in MODULES for c in getattr(m, "commands", [])]
    hooks = [h for m in MODULES for h in getattr(m, "hooks", [])]
    return Dispatcher(commands, hooks)


def module_names() -> list[str]:
    """ProFTPD module names, once each (several Python modules may make up one ProFTPD module)."""
    return list(dict.fromkeys(m.NAME for m in MODULES))
