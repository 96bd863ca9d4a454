"""The package's floors stay true: every import (at the top, inside a function or under TYPE_CHECKING) goes to the
same floor or a lower one, and no files import each other in a loop. docs/ARCHITECTURE.md draws the floors."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "proftpy"

# Lowest first. A module is on the floor of the longest prefix listed here.
FLOORS = [
    ("base", ["proftpy", "proftpy.config", "proftpy.trace", "proftpy.who", "proftpy.privs", "proftpy.fs", "proftpy.auth", "proftpy.log",
              "proftpy.reply", "proftpy.scoreboard", "proftpy.shutmsg", "proftpy.events", "proftpy.listing",
              "proftpy.proctitle", "proftpy.ksm", "proftpy.ctrls"]),
    ("net", ["proftpy.net"]),
    ("access", ["proftpy.access"]),
    ("dispatch", ["proftpy.dispatch", "proftpy.module"]),
    ("session", ["proftpy.session"]),
    ("transfer", ["proftpy.transfer"]),
    ("modules", ["proftpy.modules"]),
    ("top", ["proftpy.master", "proftpy.idle_child", "proftpy.runtime", "proftpy.cli", "proftpy.check_access", "proftpy.__main__"]),
]
TOOLS = "proftpy.tools"          # beside the floors: they read shared state and the configuration only
TOOLS_MAY_USE = ("base", "tools")


def module_names() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module of the package that `name` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            if len(subs) < len(node.names) and target in known:
                found.add(target)
            found.update(subs)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    found.discard(name)
    return found


def floor_of(name: str) -> str:
    if name == TOOLS or name.startswith(TOOLS + "."):
        return "tools"
    best, floor = "", None
    for floor_name, prefixes in FLOORS:
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
                best, floor = prefix, floor_name
    assert floor is not None, f"{name} is on no floor: add it to FLOORS"
    return floor


def graph() -> dict[str, set[str]]:
    known = module_names()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_import_goes_down_or_stays_on_its_floor():
    rank = {floor: i for i, (floor, _) in enumerate(FLOORS)}
    broken = []
    for name, targets in graph().items():
        mine = floor_of(name)
        for target in targets:
            theirs = floor_of(target)
            if mine == "tools":
                ok = theirs in TOOLS_MAY_USE
            elif theirs == "tools":
                ok = False
            else:
                ok = rank[theirs] <= rank[mine]
            if not ok:
                broken.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert broken == []


def test_no_import_loops():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops = []

    def visit(v: str) -> None:          # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert loops == []


def test_the_scan_sees_imports_inside_functions_and_type_checking(tmp_path):
    """The scanner itself: an import in a function body and one under TYPE_CHECKING both count."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from proftpy import session\n"
                   "def f():\n    from proftpy.master import Master\n")
    known = {"proftpy.session": Path(), "proftpy.master": Path(), "proftpy": Path()}
    assert imports("proftpy.fs", src, known) == {"proftpy.session", "proftpy.master"}


def test_floors_name_every_module_once():
    edges = defaultdict(set)
    for name in module_names():
        edges[floor_of(name)].add(name)
    assert set(edges) <= {f for f, _ in FLOORS} | {"tools"}
