"""The directive registry: every directive is declared once, and the declaration drives parsing, validation,
effective lookups and the generated reference (docs/directives.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable

# Contexts a directive may appear in (reference: S V G A D F L C).
SERVER, VHOST, GLOBAL, ANON, DIR, FTPACCESS, LIMIT, CLASS = (1 << i for i in range(8))
CONTEXT_LETTERS = {SERVER: "S", VHOST: "V", GLOBAL: "G", ANON: "A", DIR: "D", FTPACCESS: "F", LIMIT: "L", CLASS: "C"}
CONTEXT_NAMES = {SERVER: "server config", VHOST: "<VirtualHost>", GLOBAL: "<Global>", ANON: "<Anonymous>",
                 DIR: "<Directory>", FTPACCESS: ".ftpaccess", LIMIT: "<Limit>", CLASS: "<Class>"}
SVG = SERVER | VHOST | GLOBAL
SVGA = SVG | ANON
ALL_DIRS = SVGA | DIR | FTPACCESS


class Merge(enum.Enum):
    """How a value set in an outer context reaches an inner one (ProFTPD's CF_MERGEDOWN flags)."""

    SERVER = "server"          # read where it is set only (no merge into <Anonymous>/<Directory>)
    DOWN = "merge-down"        # the most specific context that sets it wins (CF_MERGEDOWN)
    MULTI = "accumulate"       # every context's values count, innermost first (CF_MERGEDOWN_MULTI)


@dataclass(frozen=True)
class Directive:
    """One configuration directive. `parse(args)` returns the stored value or raises ValueError."""

    name: str
    parse: Callable[[list[str]], Any]
    contexts: int
    default: Any = None
    merge: Merge = Merge.DOWN
    doc: str = ""
    module: str = "mod_core.c"
    repeat: bool = False       # several lines add up instead of the first one winning

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def syntax(self) -> str:
        return getattr(self.parse, "syntax", "...")

    def context_letters(self) -> str:
        return " ".join(letter for bit, letter in CONTEXT_LETTERS.items() if self.contexts & bit)


@dataclass(frozen=True)
class Block:
    """A configuration section a module adds (`<IfUser ...>` ... `</IfUser>`). What it holds is allowed where the
    block itself stands (the block inherits its parent's context); `parse(args)` checks the opening line's words
    and returns the value kept on the section (raising ValueError, reported as FILE:LINE)."""

    name: str
    parse: Callable[[list[str]], Any]
    contexts: int
    doc: str = ""
    module: str = "mod_core.c"

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass
class Registry:
    """Directives (and module sections) by lower-case name, and the module names they belong to."""

    directives: dict[str, Directive] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    blocks: dict[str, Block] = field(default_factory=dict)

    def add_block(self, block: Block) -> None:
        if block.key in self.blocks:
            raise ValueError(f"section <{block.name}> declared twice")
        self.blocks[block.key] = block

    def add(self, directive: Directive) -> None:
        if directive.key in self.directives:
            raise ValueError(f"directive {directive.name} declared twice")
        self.directives[directive.key] = directive
        if directive.module not in self.modules:
            self.modules.append(directive.module)

    def add_module(self, name: str, directives: list[Directive]) -> None:
        if name not in self.modules:
            self.modules.append(name)
        for d in directives:
            self.add(d)

    def get(self, name: str) -> Directive | None:
        return self.directives.get(name.lower())

    def has_module(self, name: str) -> bool:
        want = name if name.endswith(".c") else name + ".c"
        return want.lower() in (m.lower() for m in self.modules)
