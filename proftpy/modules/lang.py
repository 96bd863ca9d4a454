"""mod_lang: UseEncoding (names in another character set on the wire than on disk), OPTS UTF8's effect on it, and
the LANG command (RFC 2640) with ProFTPD 1.3.8's replies.

proftpy's replies are English only: the one language LANG offers is ProFTPD's default, `C.UTF-8`. The conversion
itself happens where bytes become text and back (net/charset.py, on the control connection and in listings).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Options, Str, parse_bool
from ..dispatch import OPTIONAL, Command, Request, feat_when
from ..module import Module
from ..net.charset import Charset
from ..reply import Reply

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_lang.c"
log = logging.getLogger("proftpy")

LANGUAGE = "C.UTF-8"            # the only one: no translated replies


@dataclass(frozen=True)
class Encoding:
    """One UseEncoding line: off (`charset` None, OPTS UTF8 refused), or a conversion; `strict`: OPTS UTF8 ON
    may not switch it off."""

    charset: Charset | None
    strict: bool = False


def _use_encoding(args: list[str]) -> Encoding | None:
    """`UseEncoding on|off|local-charset client-charset ["strict"]` (None: on, names as they are)."""
    if len(args) == 1:
        try:
            return None if parse_bool(args[0]) else Encoding(None)
        except ValueError:
            raise ValueError("expected Boolean parameter") from None
    if len(args) not in (2, 3):
        raise ValueError("wrong number of parameters")
    if len(args) == 3 and args[2].lower() != "strict":
        raise ValueError(f"unknown UseEncoding keyword '{args[2]}'")
    return Encoding(Charset.named(args[0], args[1]), len(args) == 3)


def _lang_path(args: list[str]) -> str:
    path = Str()(args)
    if not os.path.isdir(path):
        raise ValueError(f"unable to use path '{path}' for locale files")
    return path


directives = (
    Directive("LangEngine", Flag, SVG, True, Merge.SERVER, "off: no LANG command, no LANG line in FEAT."),
    Directive("LangDefault", Str(), SVG, None, Merge.SERVER,
              "The session's language; proftpy answers in English only, so anything but C.UTF-8 is logged and "
              "C.UTF-8 used."),
    Directive("LangPath", Custom(_lang_path, "directory"), SVG, None, Merge.SERVER,
              "Where ProFTPD looks for translated replies; checked to be a directory, not used (no translations)."),
    Directive("LangOptions", Options(("PreferServerEncoding", "RequireValidEncoding"), "LangOption"), SVG,
              frozenset(), Merge.SERVER, "PreferServerEncoding: OPTS UTF8 ON does not switch UseEncoding off; "
              "RequireValidEncoding: accepted (ProFTPD 1.3.8 was seen to store names that do not convert as sent)."),
    Directive("UseEncoding", Custom(_use_encoding, 'on|off|local-charset client-charset ["strict"]'), SVG, None,
              Merge.SERVER, "Names in `client-charset` on the wire, stored in `local-charset` (e.g. `UTF-8 CP1251`); "
              "OPTS UTF8 ON switches it off unless `strict`; off: OPTS UTF8 ON is refused."),
)


def session_init(session: "Session") -> None:
    chosen = session.server.get("LangDefault")
    if chosen is not None and chosen != LANGUAGE:
        log.info("LangDefault '%s' is not supported (replies are in English only); using %s", chosen, LANGUAGE)
    encoding = session.server.get("UseEncoding")
    if encoding is not None and encoding.charset is not None and encoding.charset.converts:
        session.ctrl.charset = encoding.charset


def opts_utf8(session: "Session", on: bool) -> Reply:
    """OPTS UTF8 ON|OFF under UseEncoding: ON (the client speaks UTF-8) stops the conversion, OFF starts it
    again; ON is refused with UseEncoding off, `strict` or PreferServerEncoding."""
    encoding = session.server.get("UseEncoding")
    if on and encoding is not None and (encoding.charset is None or encoding.strict
                                        or "PreferServerEncoding" in session.server.get("LangOptions")):
        return Reply(451, "Unable to accept OPTS UTF8")
    if encoding is not None and encoding.charset is not None and encoding.charset.converts:
        session.ctrl.charset = None if on else encoding.charset
    return Reply(200, f"UTF8 set to {'on' if on else 'off'}")


def lang(session: "Session", cmd: Request) -> Reply:
    if not engine_on(session):
        return Reply(500, "LANG not understood")
    words = cmd.arg.split()
    if len(words) > 1:
        return Reply(501, "Invalid number of parameters")
    if not words:
        return Reply(200, f"Using default language {LANGUAGE}")
    if words[0] != LANGUAGE:
        return Reply(504, f"Language {words[0]} not supported")
    return Reply(200, f"Using language {LANGUAGE}")


def engine_on(session: "Session") -> bool:
    """LangEngine: off removes LANG and FEAT's LANG and UTF8 lines (OPTS UTF8 is still answered)."""
    return session.server.get("LangEngine")


commands = (
    Command("LANG", lang, needs_login=False, arg=OPTIONAL, limit=False, limit_all=False, feat=(f"LANG {LANGUAGE}*",),
            feat_for=feat_when(engine_on, f"LANG {LANGUAGE}*"),
            replies=(f"200 Using default language {LANGUAGE}", f"200 Using language {LANGUAGE}",
                     "504 Language <x> not supported", "500 LANG not understood (LangEngine off)")),
)

MODULE = Module(NAME, directives=directives, commands=commands, session_init=session_init)
