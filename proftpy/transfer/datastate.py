"""A session's data-connection settings: what TYPE, REST and EPSV ALL set, and what the last PASV/EPSV or
PORT/EPRT prepared (ProFTPD's SF_PASSIVE/SF_PORT/SF_EPSV_ALL flags and restart_pos). One per session, read with
`state(session)`.

A data connection is used once: every transfer consumes the PASV/PORT that prepared it, and a listener that is
never used is closed when the next PASV/EPSV/PORT/EPRT/ABOR comes, or when RETR/STOR/STOU/APPE is refused
(ProFTPD; `drop_passive`), so a client cannot make the session hoard sockets. With PassivePortPool the
"listener" is a reservation of the master's (transfer/pool.py), given back the same way.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..net.control import ControlChannel
    from ..session import Session


@dataclass
class DataState:
    """Per-session data-connection settings."""

    ascii: bool = True                              # TYPE A (True) or TYPE I / L 8 (False)
    rest: int = 0                                   # REST offset for the next RETR/STOR
    epsv_all: bool = False
    listener: socket.socket | None = None           # PASV/EPSV
    accepted: socket.socket | None = None           # the client's connection to the listener, taken early
    reservation: Any = None                         # PassivePortPool: the master's pool.Reservation, pending
    on_passive: Callable[[socket.socket], None] | None = None   # runs on every passive data connection before
                                                    # use (mod_proxy_protocol: its PROXY header); OSError refuses
    target: tuple[str, int] | None = None           # PORT/EPRT (address, port)
    transfer: Any = None                            # the engine.Transfer running now (for STAT)
    wrap: list[Callable[[socket.socket], Any]] = field(default_factory=list)   # after the 150: TLS (PROT P)
    codec: Callable[[Any, str], Any] | None = None  # (connection, command) -> what goes over it last: MODE Z's zlib
                                                    # stream
    ctrl: "ControlChannel | None" = None            # the control channel that watches the listener
    upload_quota: int | None = None                 # bytes the next upload may write before a hard quota is
                                                    # crossed (mod_quotatab's PRE_CMD hook sets it; the upload
                                                    # takes it: engine.Transfer.wrote; so does a mod_copy copy)
    shaping: "Shaping | None" = None                # mod_shaper: this session's share of the daemon's rates

    def reset(self) -> None:
        """Forget the prepared connection: close an unused passive listener (and a connection taken early)."""
        self.drop_passive()
        self.target = None

    def drop_passive(self) -> None:
        """Close the passive listener (or give the pooled reservation back) and a connection taken early from
        it; a PORT/EPRT target stays."""
        if self.reservation is not None:
            self.reservation.release()
            self.reservation = None
        if self.listener is not None:
            if self.ctrl is not None:
                self.ctrl.unwatch(self.listener.fileno())
            self.listener.close()
            self.listener = None
        if self.accepted is not None:
            self.accepted.close()
            self.accepted = None

    @property
    def mode_name(self) -> str:
        return "ASCII" if self.ascii else "BINARY"


def state(session: "Session") -> DataState:
    """The session's DataState, made on first use with DefaultTransferMode."""
    st = session.state.find(DataState)
    if st is None:
        st = session.state.put(DataState(ascii=session.conf("DefaultTransferMode") != "binary", ctrl=session.ctrl))
    return st


@dataclass
class Shaping:
    """A shaped session's rates (bytes/s; 0: none) and the priority they have against TransferRate lines (a
    line wins when its context ranks at least as high: access/expr.py `rank`). mod_shaper keeps them current;
    `governs` says the running transfer paces at the shaper's rate (so a new rate reaches it)."""
    priority: int
    down: float
    up: float
    governs: bool = False

    def rate(self, command: str) -> float:
        return self.down if command == "RETR" else self.up
