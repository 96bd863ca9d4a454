"""In-process event bus: modules announce what happened ("core.timeout-idle", "mod_auth.max-login-attempts", ...)
and other modules (mod_ban, logging) listen, without knowing each other. A listener of every event (`on_any`) gets
the name too: mod_exec's ExecOnEvent runs scripts on events named only in the configuration."""

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
        self._any: list[Callable[[str, dict[str, Any]], None]] = []

    def on(self, name: str, listener: Listener) -> None:
        self._listeners[name].append(listener)

    def on_any(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """`listener(name, data)` after the listeners of each event, whatever its name."""
        self._any.append(listener)

    def add_all(self, other: "EventBus") -> None:
        """Every listener of `other` after this bus's own, in order (a session copies the modules' wiring)."""
        for name, listeners in other._listeners.items():
            self._listeners[name].extend(listeners)
        self._any.extend(other._any)

    def emit(self, name: str, **data: Any) -> None:
        """Call every listener; one listener failing is logged and does not stop the others or the caller."""
        if trace.on: trace.msg("event", 8, "dispatching event '%s' to %d listener(s)", name, len(self._listeners.get(name, ())))
        for listener in list(self._listeners.get(name, ())):
            try:
                listener(**data)
            except Exception:
                log.exception("event listener for %s failed", name)
        for any_listener in self._any:
            try:
                any_listener(name, data)
            except Exception:
                log.exception("event listener of every event failed on %s", name)
