"""The pool of pre-forked idle children: how many to keep (pure arithmetic, read by the master) and the message
that hands an accepted connection to one of them.

An idle child is forked ahead of any connection and has done the setup that does not depend on a client (closed
what belongs to the master and to other sessions, signals, process title); it waits on its channel. The master
still accepts and its pre-steps and vetoes still decide; then it sends the connection's socket and addresses in one
HANDOVER message (net/channel.py, SCM_RIGHTS) and the idle child becomes a session child like any other. Idle
children are no sessions: they are not in `master.children`, hold no scoreboard slot and count for no limit.

Sizes follow Apache's prefork MPM: StartServers idle children at start (and after each reload), then at least
MinSpareServers and at most MaxSpareServers idle ones. A session child serves one connection and exits, so idle
children never come back from a session: the pool only shrinks by handing children over (refilled up to
MinSpareServers) or when it holds more than MaxSpareServers (a reload that lowered it, StartServers above it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HANDOVER = "core.handover"      # master -> idle child, notice + 1 fd (the accepted control connection):
                                # local, remote, sock_local, sock_remote ([ip, port] each), notes (an object)
REFILL_BATCH = 2                # idle children forked per round of the master's loop (accepts come between)
LIMIT = 256                     # the most any of the three directives allows (Apache's ServerLimit)


@dataclass(frozen=True)
class PoolSize:
    """The three directives' values. All zero (the default): no pool, a child is forked at each accept."""

    start: int = 0
    min_spare: int = 0
    max_spare: int | None = None        # None: the larger of the other two

    @property
    def ceiling(self) -> int:
        """The most idle children kept: MaxSpareServers, never below MinSpareServers (Apache raises it too);
        unset, the larger of StartServers and MinSpareServers."""
        if self.max_spare is None:
            return max(self.start, self.min_spare)
        return max(self.max_spare, self.min_spare)

    @property
    def enabled(self) -> bool:
        return self.initial() > 0

    def initial(self) -> int:
        """Idle children to fork at start and after a reload."""
        return min(max(self.start, self.min_spare), self.ceiling)

    def change(self, idle: int, target: int) -> int:
        """How many idle children to fork (> 0) or end (< 0) when `idle` are waiting and the pool aims at
        `target` (`initial()` after the start or a reload, one less for each child handed a connection, never
        below MinSpareServers nor above the ceiling)."""
        floor = max(min(target, self.ceiling), self.min_spare)
        if idle < floor:
            return floor - idle
        if idle > self.ceiling:
            return self.ceiling - idle
        return 0

    def taken(self, target: int) -> int:
        """The target once an idle child was handed a connection (an idle child that died is replaced)."""
        return max(self.min_spare, target - 1)


def pool_size(config: Any) -> PoolSize:
    """The pool's sizes in a configuration, read once per configuration (the master's loop asks every round)."""
    return config.cached(_read_size)


def _read_size(config: Any) -> PoolSize:
    main = config.main                  # the directives are server-config only
    return PoolSize(main.get("StartServers"), main.get("MinSpareServers"), main.get("MaxSpareServers"))


def handover_message(local: tuple[str, int], remote: tuple[str, int], sock_local: tuple[str, int],
                     sock_remote: tuple[str, int], notes: dict) -> dict:
    """The HANDOVER message for a connection (its socket travels with it)."""
    return {"type": HANDOVER, "local": list(local), "remote": list(remote), "sock_local": list(sock_local),
            "sock_remote": list(sock_remote), "notes": notes}


def addresses(message: dict) -> tuple[tuple[str, int], ...]:
    """local, remote, sock_local, sock_remote of a HANDOVER message; ValueError when one is malformed."""
    out = []
    for key in ("local", "remote", "sock_local", "sock_remote"):
        value = message.get(key)
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
                and isinstance(value[1], int)):
            raise ValueError(f"{key}: not an [address, port] pair")
        out.append((value[0], value[1]))
    if not isinstance(message.get("notes"), dict):
        raise ValueError("notes: not an object")
    return tuple(out)
