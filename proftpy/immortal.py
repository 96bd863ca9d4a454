"""Immortal objects for the sessions' sake (CPython 3.12 and 3.13, 64-bit): fewer pages copied per session.

A session is a fork of the master, and CPython writes the reference count of every object a session uses, even
one it only reads (a function it calls, a config value it looks up): each such write copies the object's 4 KiB
page into the session. Since 3.12 CPython has immortal objects (None, small ints, interned strings...), whose
count is never written: Py_INCREF and Py_DECREF return at once when the low 32 bits of the count are all ones.

Before the first fork the master marks its long-lived objects that way: code, functions, classes, modules and
their dicts, constants, and instances of proftpy's own classes (configuration, module rows), found through the
garbage collector's lists. An immortal object is never freed, so what is marked must live as long as the master
anyway, and nothing that owns a resource is marked (no files, sockets, threads, nothing with a finalizer): a
dropped socket or file is still closed by its last reference going. It runs once per master: objects a reload
makes later stay mortal (a reload's old configuration is then kept, once, rather than freed).

Two more writes every session made into shared objects are made once in the master instead: a class's type version
tag and a module's globals' keys version, which the interpreter assigns the first time it specialises a lookup there
(docs/performance.md, "Memory per session, second pass"). Both are caches: assigning them changes no behaviour.

On other interpreters (3.11, whose objects have no immortal form) `immortalize` does nothing.
"""

from __future__ import annotations

import ctypes
import enum
import gc
import sys
import types

from . import codelayout

IMMORTAL_REFCNT = 0xFFFFFFFF        # _Py_IMMORTAL_REFCNT of 64-bit CPython 3.12 and 3.13
SPECIALISE_AFTER = 4                # runs after which an instruction is specialised (2 on 3.12 and 3.13)

_SAFE_TYPES = frozenset({
    types.FunctionType, types.CodeType, types.ModuleType, types.BuiltinFunctionType, types.MethodDescriptorType,
    types.WrapperDescriptorType, types.MemberDescriptorType, types.GetSetDescriptorType,
    types.ClassMethodDescriptorType, types.MappingProxyType, types.CellType, types.MethodType,
    staticmethod, classmethod, property, type, dict, tuple, list, set, frozenset, str, bytes, int, float, bool,
})
_SAFE_MODULES = frozenset({"enum", "dataclasses", "typing", "re", "functools", "collections", "abc", "ipaddress",
                           "ctypes", "_struct"})
_SAFE_NAMES = frozenset({"logging.Logger", "logging.RootLogger", "logging.Manager", "logging.PlaceHolder"})
_done = False


def supported() -> bool:
    """CPython 3.12/3.13 on 64 bits with the GIL, where an immortal object's count is the first word of the object
    and reads back as IMMORTAL_REFCNT (a free-threaded build lays the counts out differently)."""
    return (sys.implementation.name == "cpython" and sys.version_info[:2] in ((3, 12), (3, 13))
            and getattr(sys, "_is_gil_enabled", lambda: True)()
            and sys.maxsize > 2 ** 32 and sys.getrefcount(None) == IMMORTAL_REFCNT)


def _safe(obj: object) -> bool:
    cls = type(obj)
    if cls in _SAFE_TYPES:
        return True
    if isinstance(obj, type):                   # a class made by a metaclass (Enum, ABCMeta, ...)
        return True
    if isinstance(obj, enum.Enum):              # signal.Signals, socket.AddressFamily, ...
        return True
    module = getattr(cls, "__module__", "") or ""
    return ((module.startswith("proftpy.") or module in _SAFE_MODULES
             or f"{module}.{cls.__qualname__}" in _SAFE_NAMES)
            and not hasattr(cls, "__del__") and not isinstance(obj, BaseException))


def immortalize() -> int:
    """Mark the master's long-lived objects immortal (the first call only); returns how many."""
    global _done
    if _done or not supported():
        return 0
    _done = True
    codelayout.lay_out(codelayout.names())     # first: the copies it makes are marked below
    gc.collect()
    count = 0
    ssize = ctypes.c_ssize_t
    for obj in gc.get_objects():            # no set of the objects seen: it would cost the master megabytes
        for o in (obj, *gc.get_referents(obj)):
            if sys.getrefcount(o) < IMMORTAL_REFCNT and _safe(o):
                ssize.from_address(id(o)).value = IMMORTAL_REFCNT
                count += 1
                if type(o) is types.CodeType:
                    count += _constants(o)
        if issubclass(type(obj), type):     # a class (isinstance would believe a weakref proxy's __class__)
            _version_tag(obj)
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if type(namespace) is dict and "__name__" in namespace:   # (sys.modules may hold other objects)
            _keys_version(namespace)
    return count


_CONSTANT_TYPES = frozenset({str, bytes, int, float, complex, tuple, frozenset, types.CodeType})


def _constants(code: types.CodeType) -> int:
    """Mark a code object's constants and names (and those of the code objects nested in them): LOAD_CONST writes
    the count of the constant it pushes (a message, a tuple, a number), and code objects are not among the
    garbage collector's objects, so the walk above does not reach what they hold. Constants are immutable and
    live as long as their code."""
    count = 0
    stack: list[object] = [code.co_consts, code.co_names]
    while stack:
        o = stack.pop()
        if type(o) not in _CONSTANT_TYPES or sys.getrefcount(o) >= IMMORTAL_REFCNT:
            continue
        ctypes.c_ssize_t.from_address(id(o)).value = IMMORTAL_REFCNT
        count += 1
        if type(o) in (str, bytes):
            hash(o)             # cached in the object on first use: now, not in each session that uses it
        elif type(o) is types.CodeType:
            stack += (o.co_consts, o.co_names)
        elif type(o) in (tuple, frozenset):
            stack.extend(o)
    return count


def _version_tag(cls: type) -> None:
    """Give a class its type version tag now (a lookup through the type's attribute cache assigns one), instead
    of in every session: the interpreter assigns it on the first lookup after the class was created or changed,
    writing into the class object (a copied page per class). type.__getattribute__ runs no metaclass code; the
    name is one every class resolves (object.__init__ at worst)."""
    type.__getattribute__(cls, "__init__")


def _global_name() -> str:
    return __name__             # one global lookup: the code the probes below run


def _keys_version(namespace: dict) -> None:
    """Give a module's globals their dict keys version now, instead of in every session: the interpreter assigns
    it when it first specialises a global lookup in that module (LOAD_GLOBAL), writing into the keys object. A
    throwaway function with the module's globals runs one such lookup until it is specialised (a fresh copy of the
    code for each module, so each specialises from scratch); it reads `__name__` and changes nothing."""
    probe = types.FunctionType(_global_name.__code__.replace(), namespace)
    for _ in range(SPECIALISE_AFTER):
        probe()
