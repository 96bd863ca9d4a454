"""PassivePortPool, the session's side: PASV/EPSV ask the master for a port instead of binding one, and the data
connection arrives over the session's channel (SCM_RIGHTS) once the master accepted it on the pool. The master's
side (listeners on every PassivePorts port, the switchboard, the scavenger) is modules/passive_pool.py.

The channel messages (net/channel.py; docs/ARCHITECTURE.md lists them):

- `mod_xfer.passive-reserve` (session -> master, a request): `ports` [lo, hi] (the session's PassivePorts range),
  `address` (the control socket's local address: where the data connection will arrive). Answer
  `mod_xfer.passive-reserved` with `reservation` (a number) and `port`, or with `error` (why no port: the 425
  text). The master takes the client's address from its own record of the session, never from the message.
- `mod_xfer.passive-release` (session -> master, a notice): `reservation`: the session no longer waits for it
  (PORT, ABOR, a refused transfer, the next PASV).
- `mod_xfer.passive-accepted` (master -> session, a notice with one descriptor: the data connection):
  `reservation`, `port`, `peer` [ip, port]. A connection for a reservation the session gave up is closed.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..net.channel import Channel, ChannelError, close_fds
from ..reply import FtpError
from .datastate import state
from .errors import unable
from .watch import until_readable

if TYPE_CHECKING:
    from ..session import Session

log = logging.getLogger("proftpy")
RESERVE, RESERVED = "mod_xfer.passive-reserve", "mod_xfer.passive-reserved"
RELEASE, ACCEPTED = "mod_xfer.passive-release", "mod_xfer.passive-accepted"
REQUEST_TIMEOUT = 5.0           # seconds the master may take to answer a reservation


@dataclass
class Reservation:
    """A port the master holds for this session until the data connection comes."""

    id: int
    port: int
    channel: Channel

    def release(self) -> None:
        """Tell the master the session no longer waits (never blocks; a lost notice only leaves the reservation
        to the next PASV or to the session's end)."""
        try:
            self.channel.send({"type": RELEASE, "reservation": self.id})
        except ChannelError as e:
            log.debug("passive-release not sent: %s", e)


def enabled(session: "Session") -> bool:
    """PassivePortPool applies: on for this server, a PassivePorts range, and a master to ask (not inetd)."""
    return (session.channel is not None and bool(session.conf("PassivePortPool"))
            and session.conf("PassivePorts") is not None)


def reserve(session: "Session") -> int:
    """PASV/EPSV: a port of the pool for this client, from the master. Raises FtpError(425) when the client's
    keys are all taken (or the master does not answer)."""
    st = state(session)
    lo, hi = session.conf("PassivePorts")
    try:
        got, fds = session.channel.request({"type": RESERVE, "ports": [lo, hi], "address": session.socket_local},
                                           timeout=REQUEST_TIMEOUT)
    except ChannelError as e:
        raise unable(f"no answer from the master: {e}") from None
    close_fds(fds)
    if got.get("type") != RESERVED or "error" in got:
        raise unable(str(got.get("error", "no passive port")))
    st.reservation = Reservation(int(got["reservation"]), int(got["port"]), session.channel)
    return st.reservation.port


def accepted(session: "Session", message: dict[str, Any], fds: list[int]) -> None:
    """The master's `mod_xfer.passive-accepted`: keep the connection if the session still waits for it."""
    st = state(session)
    res = st.reservation
    if res is None or message.get("reservation") != res.id or len(fds) != 1 or st.accepted is not None:
        log.debug("passive connection for reservation %s arrived too late, closed", message.get("reservation"))
        close_fds(fds)
        return
    st.reservation = None               # the master ended it when it handed the connection over
    st.accepted = socket.socket(fileno=fds[0])


def wait(session: "Session", timeout: float) -> socket.socket:
    """The data connection of the pending reservation: the master's notices are read (they go to `accepted`)
    while the control connection is answered (ABOR gives up). Raises FtpError(425) after `timeout`, (426) on
    ABOR."""
    st = state(session)
    deadline = time.monotonic() + timeout
    try:
        while st.accepted is None:
            channel = session.channel
            if channel is None or session.closing or st.reservation is None:
                raise unable("the passive data connection was lost")
            until_readable(session, channel, deadline, lambda: bool(channel.queued))
            session.read_channel()          # the master's notices: `accepted` takes the connection
    except FtpError:
        st.drop_passive()
        raise
    sock, st.accepted = st.accepted, None
    return sock
