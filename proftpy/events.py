"""In-process event bus: modules announce what happened ("core.timeout-idle", "mod_auth.max-login-attempts", ...)
and other modules (mod_ban, logging) listen, without knowing each other."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable

from . import trace

log = logging.getLogger("proftpy")
Listener = Callable[..., None]


class EventBus:
    """Listeners by event name; one bus per process, owned by the Session or the Master."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    def on(self, name: str, listener: Listener) -> None:
        self._listeners[name].append(listener)

    def emit(self, name: str, **data: Any) -> None:
        """Call every listener; one listener failing is logged and does not stop the others or the caller."""
        if trace.on: trace.msg("event", 8, "dispatching event '%s' to %d listener(s)", name, len(self._listeners.get(name, ())))
        for listener in list(self._listeners.get(name, ())):
            try:
                listener(**data)
            except Exception:
                log.exception("event listener for %s failed", name)
