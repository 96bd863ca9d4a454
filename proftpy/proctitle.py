"""Process titles in ProFTPD's formats (`proftpy: (accepting connections)`), via setproctitle when installed."""

from __future__ import annotations

try:
    from setproctitle import setproctitle as _set
except ImportError:          # titles are cosmetic: without the package, ps shows the command line
    _set = None

PREFIX = "proftpy: "
terse = False


def set(text: str) -> None:  # noqa: A001 - mirrors pr_proctitle_set
    if _set is not None:
        # file names that are not UTF-8 arrive as surrogate escapes, which setproctitle cannot encode
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        _set(PREFIX + ("processing connection" if terse and text != "(accepting connections)" else text))
