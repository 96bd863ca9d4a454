"""mod_load: `MaxLoad number ["message"]` turns sessions away while the system's one-minute load average is at or
above the number: the session starts, says `421 System busy, try again later` (or the message) and ends, before
the greeting, as ProFTPD's mod_load does. `MaxLoad none` lifts a limit set in `<Global>`. Display files may show
`%{mod_load.curr_load}` and `%{mod_load.max_load}` (two decimals) once a limit is set."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom
from ..log import NOTICE
from ..module import Module
from ..reply import Reply

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_load.c"
log = logging.getLogger("proftpy")


def _max_load(args: list[str]) -> tuple[float | None, str | None]:
    if not 1 <= len(args) <= 2:
        raise ValueError("incorrect number of parameters")
    message = args[1] if len(args) == 2 else None
    if args[0].lower() == "none":
        return None, message
    try:
        limit = float(args[0])
    except ValueError:
        raise ValueError(f"expected a load average or none, not '{args[0]}'") from None
    if not limit >= 0.0 or limit == float("inf"):
        raise ValueError("positive load limit required")
    return limit, message


directives = (
    Directive("MaxLoad", Custom(_max_load, 'number|none ["message"]'), SVG, None, Merge.SERVER,
              "Refuse sessions (421) while the one-minute load average is at or above this number."),
)


@dataclass
class LoadState:
    current: float
    limit: float


def session_init(session: "Session") -> None:
    setting = session.server.get("MaxLoad")
    if setting is None or setting[0] is None:
        return
    limit, message = setting
    try:
        current = os.getloadavg()[0]
    except OSError as e:
        log.log(NOTICE, "notice: unable to determine system load average: %s", e.strerror)
        return
    session.state.put(LoadState(current, limit))
    if current >= limit:
        log.info("MaxLoad (%.2f) reached: connection denied", limit)
        session.send(Reply(421, message or "System busy, try again later"))
        session.end("MaxLoad", cause="module-acl")


def variable(session: "Session", name: str) -> str | None:
    st = session.state.find(LoadState)
    if st is None or name not in ("curr_load", "max_load"):
        return None
    return f"{st.current if name == 'curr_load' else st.limit:.2f}"


MODULE = Module(NAME, directives=directives, session_init=session_init, variables=("mod_load", variable))
