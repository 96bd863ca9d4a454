"""UseEncoding's conversion at the wire: names travel in the client's character set and are stored in the local
one (ProFTPD's mod_lang with iconv).

Inside proftpy a name is the text of its bytes on disk (UTF-8, surrogate escapes for other bytes), so the control
connection's lines are turned into that form (`from_client`) and what goes out, replies and listings, back into
the client's (`to_client`). What one character set cannot say is not lost: a line that does not convert travels
as it is, byte for byte, as ProFTPD's conversion falls back to the original bytes.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


_ASCII = "".join(map(chr, range(32, 127))) + "\r\n"


@dataclass(frozen=True)
class Charset:
    local: str                  # on disk (Python codec names)
    client: str                 # on the wire

    @classmethod
    def named(cls, local: str, client: str) -> "Charset":
        """ValueError for a name Python knows no character set by, and for one FTP cannot travel in: the protocol's
        own words and CRLF must be the same bytes as in ASCII (not UTF-16; not rot13 or base64, which are codecs
        but no character sets)."""
        for name in (local, client):
            try:
                encoded = _ASCII.encode(name)
                same = encoded == _ASCII.encode("ascii") and encoded.decode(name) == _ASCII
            except LookupError:
                raise ValueError(f"unknown character set '{name}'") from None
            except (UnicodeError, ValueError, TypeError):
                same = False
            if not same:
                raise ValueError(f"'{name}' cannot be used: FTP needs a character set where ASCII stays ASCII")
        return cls(codecs.lookup(local).name, codecs.lookup(client).name)

    @property
    def converts(self) -> bool:
        return self.local != self.client

    def from_client(self, raw: bytes) -> str:
        """A command line from the wire, as proftpy's text of the disk bytes."""
        try:
            raw = raw.decode(self.client).encode(self.local)
        except UnicodeError:
            pass                                # as it is
        return raw.decode("utf-8", "surrogateescape")

    def to_client(self, data: bytes) -> bytes:
        """Reply or listing bytes (disk bytes, CRLF lines) in the client's character set, line by line."""
        if data.isascii():
            return data
        return b"\r\n".join(self._line(line) for line in data.split(b"\r\n"))

    def _line(self, line: bytes) -> bytes:
        try:
            return line.decode(self.local).encode(self.client)
        except UnicodeError:
            return line
