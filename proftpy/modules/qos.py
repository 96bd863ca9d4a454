"""mod_qos: `QoSOptions ctrlqos VALUE dataqos VALUE` sets the IP header's DiffServ/TOS byte (RFC 2474) of the
control and data connections: `cs0`-`cs7`, `af11`-`af43`, `ef`, and the old TOS words `lowdelay`, `throughput`,
`reliability`, `lowcost`/`mincost`.

ProFTPD sets the control value on the server's listening socket and the data value on each data socket, for IPv4
sockets only. proftpy sets the control value on the session's socket when the session starts (listeners are shared
between servers) and the data value where the data connection opens (`transfer.connection`); both also for IPv4
clients reached through a dual-stack `::` listener, which ProFTPD leaves unmarked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.registry import SERVER, VHOST, Directive, Merge
from ..config.types import Custom
from ..module import Module
from ..net import inet

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_qos.c"
log = logging.getLogger("proftpy")
VALUES = {"cs0": 0x00, "cs1": 0x20, "cs2": 0x40, "cs3": 0x60, "cs4": 0x80, "cs5": 0xa0, "cs6": 0xc0, "cs7": 0xe0,
          "af11": 0x28, "af12": 0x30, "af13": 0x38, "af21": 0x48, "af22": 0x50, "af23": 0x58, "af31": 0x68,
          "af32": 0x70, "af33": 0x78, "af41": 0x88, "af42": 0x90, "af43": 0x98, "ef": 0xb8,
          "lowdelay": 0x10, "throughput": 0x08, "reliability": 0x04, "lowcost": 0x02, "mincost": 0x02}


@dataclass(frozen=True)
class QoS:
    ctrl: int = 0                   # 0: leave the socket as it is
    data: int = 0


def _parse(args: list[str]) -> QoS:
    if not args or len(args) % 2:
        raise ValueError("bad number of parameters")
    found: dict[str, int] = {}
    for option, value in zip(args[::2], args[1::2]):
        if option.lower() not in ("ctrlqos", "dataqos"):
            raise ValueError(f"unknown QoS option: '{option}'")
        if value.lower() not in VALUES:
            raise ValueError(f"unknown {option.lower()} parameter '{value}'")
        found[option.lower()] = VALUES[value.lower()]
    return QoS(found.get("ctrlqos", 0), found.get("dataqos", 0))


directives = (
    Directive("QoSOptions", Custom(_parse, "ctrlqos|dataqos value ..."), SERVER | VHOST, None, Merge.SERVER,
              "DiffServ/TOS bits of the control and data connections (cs0-cs7, af11-af43, ef, ...)."),
)


def session_init(session: "Session") -> None:
    """The control connection's bits, as the session starts (the data connections': transfer.connection)."""
    qos = session.server.get("QoSOptions")
    if qos is not None and qos.ctrl:
        try:
            inet.set_tos(session.ctrl.sock, qos.ctrl)
        except OSError as e:
            log.info("mod_qos: error setting control socket IP_TOS: %s", e.strerror)


MODULE = Module(NAME, directives=directives, session_init=session_init,
                session_active=lambda config: config.sets("QoSOptions"))
