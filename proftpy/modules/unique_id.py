"""mod_unique_id: each session gets an ID no other session of any server has had (`UniqueIDEngine`, on by default,
as ProFTPD's): 24 characters of base64 over the time (seconds and tens of microseconds), this host's address, the
client's address and the session's process id, as ProFTPD lays them out. It is the `UNIQUE_ID` environment
variable (`%{UNIQUE_ID}e` in a LogFormat, `%{env:UNIQUE_ID}` in Display files) and the `UNIQUE_ID` note
(`%{note:UNIQUE_ID}`)."""

from __future__ import annotations

import base64
import logging
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag
from ..module import MasterView, Module

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_unique_id.c"
log = logging.getLogger("proftpy")

directives = (
    Directive("UniqueIDEngine", Flag, SVG, True, Merge.SERVER,
              "Give each session a unique ID: the UNIQUE_ID environment variable and note (mod_unique_id)."),
)


@dataclass
class HostAddress:
    """The first four bytes of this host's address (its name resolved), looked up once in the master."""

    packed: bytes = b"\0\0\0\0"


def host_address() -> HostAddress:
    try:
        return HostAddress(_first_four(socket.getaddrinfo(socket.gethostname(), None)[0][4][0]))
    except (OSError, IndexError) as e:
        log.warning("mod_unique_id/0.2: unable to resolve this host's name to an IP address: %s", e)
        return HostAddress()


def _first_four(address: str) -> bytes:
    """An address's first four bytes as they sit in memory (ProFTPD copies an unsigned int's worth of them)."""
    return socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address.split("%")[0])[:4]


def unique_id(now: float, host: bytes, client: bytes, pid: int) -> str:
    seconds, micro = int(now), int((now % 1) * 1_000_000)
    raw = struct.pack("!I", seconds & 0xFFFFFFFF) + host + client + struct.pack("!IH", pid, (micro // 10) & 0xFFFF)
    return base64.b64encode(raw).decode()


def _preload(master: MasterView) -> None:
    master.state.put(host_address())


def session_init(session: "Session") -> None:
    if not session.server.get("UniqueIDEngine"):
        return
    host = session.shared.find(HostAddress) or session.shared.put(host_address())     # inetd: no master
    try:
        client = _first_four(session.remote_addr)
    except OSError:
        client = b"\0\0\0\0"
    value = unique_id(time.time(), host.packed, client, os.getpid())
    os.environ["UNIQUE_ID"] = value
    session.notes["UNIQUE_ID"] = value


MODULE = Module(NAME, directives=directives, session_init=session_init, master_preload=_preload)
