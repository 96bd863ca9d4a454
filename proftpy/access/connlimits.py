"""Connection and transfer limits counted from the scoreboard (ProFTPD's mod_auth auth_count_scoreboard,
auth_scan_scoreboard and mod_xfer xfer_check_limit), plus MaxCommandRate.

The counting is pure: it takes scoreboard entries and the facts of this session and returns the reply to send
(with the event mod_ban listens to) or None. Counts include this session's own slot, as in ProFTPD, so
`MaxClients 1` admits one client and refuses the second.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

from ..scoreboard import NONE_USER, Entry

DEFAULT_TEXTS = {
    "MaxClients": "Sorry, the maximum number of allowed clients (%m) are already connected.",
    "MaxClientsPerHost": "Sorry, the maximum number of clients (%m) from your host are already connected.",
    "MaxClientsPerUser": "Sorry, the maximum number of clients (%m) for this user are already connected.",
    "MaxClientsPerClass": "Sorry, the maximum number of clients (%m) from your class are already connected.",
    "MaxHostsPerUser": "Sorry, the maximum number of hosts (%m) for this user are already connected.",
    "MaxConnectionsPerHost": "Sorry, the maximum number of connections (%m) for your host are already "
                             "connected.",
    "MaxTransfersPerHost": "Sorry, the maximum number of data transfers (%m) from your host are currently "
                           "being used.",
    "MaxTransfersPerUser": "Sorry, the maximum number of data transfers (%m) from this user are currently "
                           "being used.",
}
EVENTS = {
    "MaxClients": "mod_auth.max-clients",
    "MaxClientsPerHost": "mod_auth.max-clients-per-host",
    "MaxClientsPerUser": "mod_auth.max-clients-per-user",
    "MaxClientsPerClass": "mod_auth.max-clients-per-class",
    "MaxHostsPerUser": "mod_auth.max-hosts-per-user",
    "MaxConnectionsPerHost": "mod_auth.max-connections-per-host",
    "MaxTransfersPerHost": "mod_xfer.max-transfers-per-host",
    "MaxTransfersPerUser": "mod_xfer.max-transfers-per-user",
}
@dataclass(frozen=True)
class Refusal:
    """A limit was reached: the directive, its reply code and text, and the event to emit."""

    directive: str
    code: int
    text: str
    event: str


def refusal(directive: str, limit: int, message: str | None, code: int = 530) -> Refusal:
    text = (message or DEFAULT_TEXTS[directive]).replace("%m", str(limit))
    return Refusal(directive, code, text, EVENTS[directive])


def server_key(local_addr: str, port: int) -> str:
    """How the scoreboard names the server a session is on (`IP:port`, as ProFTPD's sce_server_addr)."""
    return f"{local_addr}:{port}"


# -- at connect ----------------------------------------------------------------------------------------------------
def check_connect(entries: Iterable[Entry], server: str, client_addr: str,
                  max_per_host: tuple[int, str | None] | None) -> Refusal | None:
    """MaxConnectionsPerHost: every session from this address on this server, logged in or not."""
    if not max_per_host or not max_per_host[0]:
        return None
    limit, msg = max_per_host
    count = sum(1 for e in entries if e.server_addr == server and e.client_addr == client_addr)
    return refusal("MaxConnectionsPerHost", limit, msg) if count > limit else None


# -- at login ------------------------------------------------------------------------------------------------------
@dataclass
class LoginCounts:
    clients: int = 0          # authenticated sessions on this server (anonymous: of this anonymous user)
    host: int = 0             # ... of them from this address
    user: int = 0             # sessions of this user
    hosts_per_user: int = 1   # distinct other hosts this user is on, plus this one
    cls: int = 0              # sessions of this session's class


def count_login(entries: Iterable[Entry], server: str, client_addr: str, user: str, anonymous: bool,
                conn_class: str | None) -> LoginCounts:
    """ProFTPD's auth_count_scoreboard loop, including its quirks (hosts are counted per entry not on this
    host, so two other sessions from one other host count as two hosts)."""
    c = LoginCounts()
    for e in entries:
        if e.server_addr != server:
            continue
        if not anonymous or e.user == user:
            if e.user != NONE_USER:
                c.clients += 1
                same_host = e.client_addr == client_addr
                if same_host:
                    c.host += 1
                if e.user == user:
                    c.user += 1
                    if not same_host:
                        c.hosts_per_user += 1
        if conn_class is not None and e.class_.lower() == conn_class.lower():
            c.cls += 1
    return c


@dataclass
class LoginLimits:
    """The Max* values that apply (each `(n, message)` or None); per-class limits by class name."""

    max_clients: tuple[int, str | None] | None = None
    per_host: tuple[int, str | None] | None = None
    per_user: tuple[int, str | None] | None = None
    hosts_per_user: tuple[int, str | None] | None = None
    per_class: dict[str, tuple[int, str | None]] = field(default_factory=dict)

    def any(self) -> bool:
        return bool(self.max_clients or self.per_host or self.per_user or self.hosts_per_user or self.per_class)


def check_login(counts: LoginCounts, limits: LoginLimits, conn_class: str | None) -> Refusal | None:
    """In ProFTPD's order: per class, per host, per user, clients, hosts per user; a limit is exceeded when the
    count (which includes this session) is above it."""
    if conn_class is not None and conn_class in limits.per_class:
        n, msg = limits.per_class[conn_class]
        if n and counts.cls > n:
            return refusal("MaxClientsPerClass", n, msg)
    for directive, value, count in (("MaxClientsPerHost", limits.per_host, counts.host),
                                    ("MaxClientsPerUser", limits.per_user, counts.user),
                                    ("MaxClients", limits.max_clients, counts.clients),
                                    ("MaxHostsPerUser", limits.hosts_per_user, counts.hosts_per_user)):
        if value and value[0] and count > value[0]:
            return refusal(directive, value[0], value[1])
    return None


# -- transfers -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferLimit:
    """`MaxTransfersPerHost|PerUser cmd[,cmd] n [message]`."""

    commands: tuple[str, ...]
    count: int
    message: str | None = None


def parse_transfer_limit(args: list[str], commands: tuple[str, ...]) -> TransferLimit:
    """`cmd[,cmd] count [message]`, each cmd one of `commands` (the transfer rows of the command table)."""
    if not 2 <= len(args) <= 3:
        raise ValueError("expected cmd[,cmd...] count [\"message\"]")
    cmds = tuple(c.upper() for c in args[0].split(",") if c)
    bad = [c for c in cmds if c not in commands]
    if not cmds or bad:
        raise ValueError(f"invalid command '{bad[0] if bad else args[0]}' ({', '.join(commands)})")
    try:
        n = int(args[1])
    except ValueError:
        raise ValueError(f"'{args[1]}' is not a number") from None
    if n < 1:
        raise ValueError("count must be at least 1")
    return TransferLimit(cmds, n, args[2] if len(args) == 3 else None)




def check_transfer(entries: list[Entry], server: str, command: str, client_addr: str, user: str | None,
                   per_host: list[TransferLimit], per_user: list[TransferLimit], self_pid: int = 0
                   ) -> Refusal | None:
    """Other sessions of this host (user) already running `command`; refused when that count reaches n."""
    others = [e for e in entries if e.server_addr == server and e.pid != self_pid]
    for lim in per_host:
        if command in lim.commands:
            busy = sum(1 for e in others if e.client_addr == client_addr and e.cmd == command)
            if busy >= lim.count:
                return refusal("MaxTransfersPerHost", lim.count, lim.message, 451)
    if user is not None:
        for lim in per_user:
            if command in lim.commands:
                busy = sum(1 for e in others if e.user == user and e.cmd == command)
                if busy >= lim.count:
                    return refusal("MaxTransfersPerUser", lim.count, lim.message, 451)
    return None


# -- MaxCommandRate ------------------------------------------------------------------------------------------------
class CommandRate:
    """Commands in the last `interval` seconds; above `count`, ProFTPD delays the command (it does not refuse
    it) and emits `core.max-command-rate`. The delay grows with the excess, capped at 5 seconds."""

    MAX_DELAY = 5.0

    def __init__(self, count: int, interval: int, clock=time.monotonic):
        self.count, self.interval, self.clock = count, interval, clock
        self.times: deque[float] = deque()

    def delay(self) -> float:
        """Record one command; the seconds to wait before handling it (0 when under the rate)."""
        now = self.clock()
        self.times.append(now)
        while self.times and self.times[0] <= now - self.interval:
            self.times.popleft()
        excess = len(self.times) - self.count
        if excess <= 0:
            return 0.0
        return min(self.MAX_DELAY, 0.1 * excess)
