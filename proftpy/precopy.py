"""Copy ahead, in a pre-forked idle child, the memory pages a session's start would copy from the master.

A forked child shares the master's pages until it writes to one; Python writes to every object it uses (reference
counts, and the interpreter's specialising of the bytecode it runs), so a fresh session copies a few hundred pages,
each a page fault, between the client's connect and the greeting: that, far more than the Python work itself, is what
the client waits for. An idle child has time before its client comes: it walks the objects a session's start may
use -- the functions named, their code, the globals their code names, the `__init__` of the classes they name --
which writes each one's page, and rewrites each code object with its own bytes (the bytecode may span pages beyond
the object's head). Nothing is called and nothing changes but the copies. The walk overshoots what one session
touches (it cannot know which branches run), so an idle child owns more private memory than a fresh session
(docs/performance.md, "Pre-forked idle children"); kernel same-page merging (MemoryMerge) gives those identical
copies back."""

from __future__ import annotations

import ctypes
import types
from typing import Any, Callable, Iterable

PREFIX = "proftpy"              # only this package's functions are followed into the globals they name
_FOLLOWED_METHODS = ("__init__", "__post_init__", "__call__")


CHECK_EVERY = 64                # objects walked between two calls of `interrupted`


def reachable(roots: Iterable[Any], interrupted: Callable[[], bool] = lambda: False) -> list[Any]:
    """Functions, code objects and classes reachable from `roots` through the names their code uses (as far as
    the walk got when `interrupted()` said to stop)."""
    seen: dict[int, Any] = {}
    stack = [r for r in roots if r is not None]
    steps = 0
    while stack:
        steps += 1
        if steps % CHECK_EVERY == 0 and interrupted():
            break
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen[id(obj)] = obj
        if isinstance(obj, types.MethodType):
            stack.append(obj.__func__)
        elif isinstance(obj, types.FunctionType):
            stack.append(obj.__code__)
            if (obj.__module__ or "").startswith(PREFIX):
                namespace = obj.__globals__
                stack.extend(v for v in (namespace.get(n) for n in _names(obj.__code__)) if v is not None)
        elif isinstance(obj, type):
            if obj.__module__.startswith(PREFIX):
                stack.extend(v for k, v in vars(obj).items() if k in _FOLLOWED_METHODS)
        elif isinstance(obj, (staticmethod, classmethod)):
            stack.append(obj.__func__)
    return list(seen.values())


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def copy_ahead(roots: Iterable[Any], interrupted: Callable[[], bool] = lambda: False) -> int:
    """Walk from `roots` and rewrite every code object found with its own bytes; the number of objects walked.
    `interrupted()` is asked now and then: True stops the walk (a client is waiting)."""
    objects = reachable(roots, interrupted)
    for obj in objects:
        if isinstance(obj, types.CodeType):         # one contiguous object: its head and its bytecode
            ctypes.memmove(id(obj), id(obj), obj.__sizeof__())
    return len(objects)
