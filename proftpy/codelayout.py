"""Lay out, before the first fork, the code a session runs next to each other: fewer pages copied per session.

On CPython 3.12 and 3.13 the master's long-lived objects are immortal (immortal.py), so a session no longer writes
their reference counts; what it still writes into the master's memory is the bytecode it runs: the specialising
interpreter keeps a counter in the inline caches of each adaptive instruction and writes it on the first runs of
every code object. A logged-in session runs about 330 functions (170 KB of code objects), but they lie scattered
over about 280 pages among objects it never uses, each page copied for a few bytes (docs/performance.md, "Memory
per session, second pass").

So the master gives the functions named in codelayout.txt (the functions an idle logged-in session runs, in the
order it first runs them; scripts/code_layout.py regenerates the list) fresh copies of their code objects, made one
after another so they fill fresh pages together, nested code objects (closures, comprehensions) with them. Nothing
else changes: a copy is the same code (`code.replace()` with nothing replaced), every function that used an old
code object gets its copy, and the old code objects are kept alive, because freeing them would leave holes all over
the master's pages where a session's new objects would land and copy those pages instead. A name that is not found
(another interpreter, a module not loaded) is skipped; a session that runs other code only loses the gain.

It runs once per master, on the interpreters where immortal objects exist (on 3.11 the reference counts of the same
pages are written anyway, so moving the code gains nothing there).
"""

from __future__ import annotations

import gc
import os
import types

LIST = os.path.join(os.path.dirname(__file__), "codelayout.txt")   # (no pathlib: the master does not import it)
_kept: list[types.CodeType] = []         # the replaced code objects (see above why they stay) and their copies
                                        # (so that immortal.py reaches the nested ones too)
_done = False


def names(path: str = LIST) -> list[str]:
    """The `module:qualname` lines of the list, in order (none when it cannot be read)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _copy(code: types.CodeType, copies: dict[int, types.CodeType]) -> types.CodeType:
    """A fresh copy of `code`, its nested code objects copied first (and recorded in `copies`, by old id)."""
    consts = tuple(_copy(c, copies) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    new = code.replace(co_consts=consts)
    copies[id(code)] = new
    _kept.extend((code, new))
    return new


def lay_out(wanted: list[str]) -> int:
    """Give the functions named in `wanted` (module:qualname) fresh, adjacent code objects, in that order (the
    first call only); returns how many code objects were copied."""
    global _done
    if _done:
        return 0
    _done = True
    order = {name: i for i, name in enumerate(wanted)}
    functions = [f for f in gc.get_objects() if type(f) is types.FunctionType]
    chosen: dict[int, tuple[int, types.CodeType]] = {}
    for f in functions:
        i = order.get(f"{f.__module__}:{f.__qualname__}")
        if i is not None and id(f.__code__) not in chosen:
            chosen[id(f.__code__)] = (i, f.__code__)
    copies: dict[int, types.CodeType] = {}
    for _, code in sorted(chosen.values(), key=lambda pair: pair[0]):
        if id(code) not in copies:          # not copied already as a nested code object of an earlier one
            _copy(code, copies)
    for f in functions:
        new = copies.get(id(f.__code__))
        if new is not None:
            f.__code__ = new
    return len(copies)
