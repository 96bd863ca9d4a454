"""Which of several memcached servers holds a key, as ProFTPD's mod_memcache has libmemcached choose it
(MEMCACHED_DISTRIBUTION_CONSISTENT with the default hash), so that a proftpy node and a ProFTPD node sharing a
list of servers look for a ban on the same one.

Each server stands at 100 points of a circle of 32-bit values: the one-at-a-time hash of `host:port-N`
(`host-N` for memcached's port 11211, a socket path as `path:0-N`), N from 0 to 99, host as configured. A key's
hash (the key without the module's namespace prefix, which libmemcached adds when it sends the key, so
`{"ban_type_id":2,...}\\0` for mod_ban) picks the first point at or after it, past the last point the first.
Checked against the servers Debian's ProFTPD 1.3.8 wrote twenty bans to (tests/unit/test_memcache_protocol.py).

Replicas (MemcacheReplicas N, libmemcached's NUMBER_OF_REPLICAS with the binary protocol): a key's copies are on the
N servers that follow its server in the list (not on the circle), wrapping round (`copies`). A read asks them in
libmemcached's order (`read_order`): from a random first copy (RANDOMIZE_REPLICA_READ, ProFTPD's default), the next
one only when a server cannot be reached, a miss being final.
"""

from __future__ import annotations

import bisect
from typing import Sequence

POINTS_PER_SERVER = 100
DEFAULT_PORT = 11211
# the namespaces ProFTPD's modules set (MEMCACHED_CALLBACK_PREFIX_KEY): sent with the key, not hashed
NAMESPACES = (b"mod_tls_memcache.sessions.", b"mod_ban.")


def one_at_a_time(data: bytes) -> int:
    """Bob Jenkins' one-at-a-time hash, libmemcached's default."""
    h = 0
    for byte in data:
        h = (h + byte) & 0xFFFFFFFF
        h = (h + (h << 10)) & 0xFFFFFFFF
        h ^= h >> 6
    h = (h + (h << 3)) & 0xFFFFFFFF
    h ^= h >> 11
    return (h + (h << 15)) & 0xFFFFFFFF


class Ring:
    """The circle of `servers`, each `(host or socket path, port)` in the configured order."""

    def __init__(self, servers: Sequence[tuple[str, int]]):
        points = []
        for index, (host, port) in enumerate(servers):
            for n in range(POINTS_PER_SERVER):
                name = f"{host}-{n}" if port == DEFAULT_PORT else f"{host}:{port}-{n}"
                points.append((one_at_a_time(name.encode("utf-8", "surrogateescape")), index))
        points.sort()
        self._values = [v for v, _ in points]
        self._servers = [i for _, i in points]
        self._count = len(servers)
        self._single = self._count == 1

    def server_for(self, key: bytes) -> int:
        """The index of the server holding `key` (sent with its namespace prefix)."""
        if self._single:
            return 0
        for prefix in NAMESPACES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        at = bisect.bisect_left(self._values, one_at_a_time(key))
        return self._servers[at if at < len(self._values) else 0]

    def copies(self, key: bytes, replicas: int) -> list[int]:
        """The servers a SET or DELETE of `key` goes to: its own, then `replicas` more, each the next in the list
        (libmemcached's `++server_key`, wrapping; with as many replicas as servers the first comes again)."""
        first = self.server_for(key)
        return [(first + i) % self._count for i in range(replicas + 1)]

    def read_order(self, key: bytes, replicas: int, start: int = 0) -> list[int]:
        """The servers a GET of `key` tries, in order, until one can be asked (libmemcached's replication_binary_mget):
        for each round r (0..replicas) its server plus r, plus `start` while that stays within the copies. `start`:
        random in 0..replicas (randomized replica reads), else 0. A round may ask the server the one before asked."""
        first = self.server_for(key)
        order = []
        for r in range(replicas + 1):
            server = first + r
            if r + start <= replicas:
                server += start
            order.append(server % self._count)
        return order
