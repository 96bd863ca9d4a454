"""The pooled passive listener's switchboard: which session waits for a data connection from which address to
which port. Pure bookkeeping, no sockets (the master's mod_xfer pool uses it, modules/passive_pool.py).

A reservation holds one port for one owner (a session's pid) under one or more client addresses: the key is
(source IP, destination port), so two clients may hold the same port number at once, and a client (or everyone
behind one proxy address) can only use up the ports of its own address. A session has at most one reservation: a
new one replaces it. A reservation ends when its data connection comes (`take`), when the session gives it up
(`release`), or when the session ends (`release_owner`, also for sessions that died without a word).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Reservation:
    id: int                     # a number of the switchboard's, unique while the master runs
    owner: int                  # the session child's pid
    ips: tuple[str, ...]        # the addresses its data connection may come from (canonical IP strings)
    port: int


class Switchboard:
    def __init__(self) -> None:
        self._keys: dict[tuple[str, int], Reservation] = {}
        self._by_owner: dict[int, Reservation] = {}
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._by_owner)

    def reserve(self, owner: int, ips: Iterable[str], ports: Iterable[int]) -> Reservation | None:
        """The first of `ports` free under every one of `ips`, reserved for `owner` (whose earlier reservation
        ends first); None when each is taken under one of the addresses."""
        self.release_owner(owner)
        ips = tuple(dict.fromkeys(ips))
        for port in ports:
            if all((ip, port) not in self._keys for ip in ips):
                self._last_id += 1
                res = Reservation(self._last_id, owner, ips, port)
                for ip in ips:
                    self._keys[(ip, port)] = res
                self._by_owner[owner] = res
                return res
        return None

    def lookup(self, ip: str, port: int) -> Reservation | None:
        return self._keys.get((ip, port))

    def take(self, ip: str, port: int) -> Reservation | None:
        """The reservation a connection from `ip` to `port` is for, which it ends; None: nobody waits for it."""
        res = self._keys.get((ip, port))
        if res is not None:
            self._drop(res)
        return res

    def release(self, owner: int, res_id: int) -> bool:
        """`owner` gives up its reservation `res_id` (a stale id changes nothing)."""
        res = self._by_owner.get(owner)
        if res is None or res.id != res_id:
            return False
        self._drop(res)
        return True

    def release_owner(self, owner: int) -> Reservation | None:
        res = self._by_owner.get(owner)
        if res is not None:
            self._drop(res)
        return res

    def release_ports(self, keep: Iterable[int]) -> list[Reservation]:
        """End the reservations of every port not in `keep` (a reload closed their listeners)."""
        keep = set(keep)
        gone = [r for r in self._by_owner.values() if r.port not in keep]
        for res in gone:
            self._drop(res)
        return gone

    def owners(self) -> list[int]:
        return list(self._by_owner)

    def _drop(self, res: Reservation) -> None:
        for ip in res.ips:
            if self._keys.get((ip, res.port)) is res:
                del self._keys[(ip, res.port)]
        if self._by_owner.get(res.owner) is res:
            del self._by_owner[res.owner]
