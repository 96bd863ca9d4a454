"""FTP replies: a code and one or more lines, formatted the RFC 959 way."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Reply:
    code: int
    text: str = ""
    lines: list[str] = field(default_factory=list)   # extra lines before the last one (multi-line reply)

    @property
    def is_error(self) -> bool:
        return self.code >= 400

    def add_line(self, line: str) -> None:
        """A line added under the reply by a later phase (ProFTPD's R_DUP): it becomes the last line, the old last
        line moves up, indented by one space below the first as ProFTPD sends it."""
        self.lines.append(" " + self.text if self.lines else self.text)
        self.text = line

    def lead(self, line: str) -> None:
        """Put a line first (a module's line that ProFTPD sends before the handler's text: its POST_CMD handler
        runs before mod_auth's adds the 230 text)."""
        self.lines = [line] + [" " + part if i == 0 else part for i, part in enumerate(self.lines)]

    def format(self) -> bytes:
        """`123-first` ... `123 last`; continuation lines that start with a digit are indented so clients do not
        mistake them for the end."""
        if not self.lines and "\n" not in self.text:       # most replies: one line
            return f"{self.code} {self.text}\r\n".encode("utf-8", "surrogateescape")
        body = self.lines + [self.text] if self.lines else [self.text]
        body = [part for text in body for part in text.split("\n")]
        if len(body) == 1:
            return f"{self.code} {body[0]}\r\n".encode("utf-8", "surrogateescape")
        out = [f"{self.code}-{body[0]}"]
        out += [(" " + line if line[:1].isdigit() else line) for line in body[1:-1]]
        out.append(f"{self.code} {body[-1]}")
        return ("\r\n".join(out) + "\r\n").encode("utf-8", "surrogateescape")


class FtpError(Exception):
    """Raised by handlers and helpers to answer with an error reply; dispatch turns it into the Reply."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.reply = Reply(code, text)
