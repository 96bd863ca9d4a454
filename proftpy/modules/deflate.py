"""mod_deflate: MODE Z, compressed data connections (`DeflateEngine on`; off by default, as in ProFTPD, where
Debian loads the module but leaves it off). FEAT then lists `MODE Z`; `MODE Z` answers `200 OK` and every later
transfer and listing is a zlib stream (proftpy/transfer/deflate.py), over TLS too, until `MODE S`. `OPTS MODE Z
LEVEL n` sets the compression level (0-9, default 7); `OPTS MODE Z` alone restores the defaults. DeflateLog is
the module's own log. The MODE and OPTS rows (mod_xfer, mod_core) ask this module first, as ProFTPD's mod_deflate
handles those commands before mod_xfer and mod_core do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import transfer
from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag, Path, atoi
from ..module import Listener, Module
from ..reply import Reply
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_deflate.c"
TAG = "mod_deflate/0.6"                 # ProFTPD 1.3.8's, as DeflateLog lines name it
DEFAULT_LEVEL = 7

directives = (
    Directive("DeflateEngine", Flag, SVG, False, Merge.SERVER, "Offer MODE Z: compressed transfers (mod_deflate)."),
    Directive("DeflateLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_deflate's own log."),
)


@dataclass
class DeflateState:
    engine: bool = False                 # DeflateEngine of the session's server
    on: bool = False                     # MODE Z in effect
    level: int = DEFAULT_LEVEL
    log: ModuleLog = field(default_factory=lambda: ModuleLog(TAG))      # DeflateLog


def engine_on(session: "Session") -> bool:
    st = session.state.find(DeflateState)
    return st is not None and st.engine


def session_init(session: "Session", **_: Any) -> None:
    """At connect, and again when HOST chose another server."""
    engine = bool(session.server.get("DeflateEngine"))
    st = session.state.find(DeflateState)
    if st is None and not engine:
        return                          # (most sessions: nothing made, nothing written)
    st = st or session.state.put(DeflateState())
    st.engine = engine
    st.log.close()
    if not st.engine:
        _use(session, st, False)
        return
    st.log.open(session.server.get("DeflateLog"), bool(session.server.get("AllowLogSymlinks")))
    from ..transfer import deflate, stream      # noqa: F401 - loaded now: after the chroot their source is out of
                                                # reach (a session without DeflateEngine never loads ssl for them)


def mode(session: "Session", word: str) -> Reply | None:
    """MODE: `Z` switches compression on (`200 OK`); any other mode switches it off and is mod_xfer's to answer
    (None), as is `Z` while DeflateEngine is off."""
    st = session.state.find(DeflateState)
    if st is None or not st.engine:
        return None
    _use(session, st, word == "Z")
    return Reply(200, "OK") if word == "Z" else None


def _use(session: "Session", st: DeflateState, on: bool) -> None:
    st.on = on
    transfer.state(session).codec = (lambda sock, command: _stream(st, sock, command)) if on else None


def _stream(st: DeflateState, sock: Any, command: str) -> Any:
    """A data connection in MODE Z; its totals go to DeflateLog at its end, in ProFTPD's words."""
    from ..transfer.deflate import Deflated

    def report(stream: Deflated) -> None:
        if stream.error is not None:
            st.log.write(stream.error)
        saved = (1 - stream.wire / stream.plain) * 100 if stream.plain else 0.0
        done, source, result = (("inflated", stream.wire, stream.plain) if stream.received
                                else ("deflated", stream.plain, stream.wire))
        st.log.write(f"{command}: {done} {source} bytes to {result} bytes ({saved:.2f}% compression)")
    return Deflated(sock, st.level, report)


def opts(session: "Session", words: list[str]) -> Reply | None:
    """`OPTS MODE Z LEVEL n` (`words`: what follows MODE), in ProFTPD's words (its command is OPTS_MODE); None
    (not understood) while DeflateEngine is off, for another mode, or for `Z` alone. One word after `Z` restores
    the defaults, whatever it is."""
    st = session.state.find(DeflateState)
    if st is None or not st.engine or len(words) < 2 or words[0].upper() != "Z":
        return None
    if len(words) == 2:
        st.level = DEFAULT_LEVEL
        return Reply(200, "OPTS_MODE OK")
    if len(words) % 2 == 0:
        return Reply(501, "Bad number of parameters")
    level = st.level
    for key, value in zip(words[1::2], words[2::2]):
        if key.lower() in ("blocksize", "engine"):
            return Reply(501, f"OPTS_MODE: unsupported MODE Z option: {key}")
        if key.lower() != "level":
            return Reply(501, f"OPTS_MODE: unknown MODE Z option: {key}")
        level = atoi(value)
        if not 0 <= level <= 9:
            return Reply(501, f"OPTS_MODE: bad MODE Z option value: {key} {value}")
    st.level = level
    return Reply(200, "OPTS MODE Z OK")


MODULE = Module(NAME, directives=directives, session_init=session_init,
                listeners=(Listener("core.session-reinit", session_init),))
