"""Reads ProFTPD configuration files into a Section tree, validating every directive against the registry.

Parse-time features handled here, not by directives: `<IfModule [!]mod_x.c>`, `<IfDefine [!]NAME>`, `Define`,
`Include` (file, glob or directory; no match is not an error, as in ProFTPD) and block nesting.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass, field

from . import ifversion
from .errors import ConfigError, Where
from .lexer import Line, read_lines
from .registry import ANON, DIR, FTPACCESS, GLOBAL, LIMIT, SERVER, VHOST, CONTEXT_NAMES, Registry
from .tree import Config, Param, Section, build

# Block name -> (section kind, contexts it may open in, number of arguments: (min, max or None)).
BLOCKS = {
    "global": ("global", SERVER, (0, 0)),
    "virtualhost": ("vhost", SERVER, (1, None)),
    "anonymous": ("anon", SERVER | VHOST | GLOBAL, (1, 1)),
    "directory": ("dir", SERVER | VHOST | GLOBAL | ANON, (1, 1)),
    "limit": ("limit", SERVER | VHOST | GLOBAL | ANON | DIR | FTPACCESS, (1, None)),
    "class": ("class", SERVER | GLOBAL, (1, 1)),
}
CONDITIONALS = ("ifmodule", "ifdefine", "ifversion")
INCLUDE_CONTEXTS = SERVER | VHOST | GLOBAL | ANON | LIMIT | DIR
MAX_INCLUDE_DEPTH = 32


@dataclass
class _State:
    registry: Registry
    defines: set[str]
    env: dict[str, str] | None
    warnings: list[str] = field(default_factory=list)
    dynamic: bool = False
    include_options: frozenset[str] = frozenset()   # IncludeOptions, for the Include lines after it


def parse_file(path: str, registry: Registry, defines: set[str] | None = None,
               env: dict[str, str] | None = None) -> Config:
    """Parse a whole configuration file; raises ConfigError with `FILE:LINE: message`."""
    state = _State(registry, set(defines or ()), env)
    root = Section("server", where=Where(path, 1))
    stack = [root]
    _read_into(path, state, stack, depth=0)
    _close_check(stack)
    return build(root, registry, path, state.defines, state.warnings)


def parse_text(text: str, registry: Registry, file: str = "<text>", defines: set[str] | None = None,
               env: dict[str, str] | None = None) -> Config:
    """Parse configuration text (tests, `-t` of a string)."""
    state = _State(registry, set(defines or ()), env)
    root = Section("server", where=Where(file, 1))
    stack = [root]
    _feed(read_lines(text, file, env), state, stack, depth=0)
    _close_check(stack)
    return build(root, registry, file, state.defines, state.warnings)


def parse_ftpaccess(text: str, file: str, directory: str, registry: Registry) -> Section:
    """Parse a `.ftpaccess` file into a dynamic `<Directory>`-like section for `directory`."""
    state = _State(registry, set(), None, dynamic=True)
    section = Section("ftpaccess", args=[directory], where=Where(file, 1), dynamic=True)
    stack = [section]
    _feed(read_lines(text, file), state, stack, depth=0)
    _close_check(stack)
    section.kind = "dir"    # from here on it is matched like a <Directory>
    return section


def _read_into(path: str, state: _State, stack: list[Section], depth: int, where: Where | None = None) -> None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}", where) from None
    _feed(read_lines(text, path, state.env), state, stack, depth)


def _close_check(stack: list[Section]) -> None:
    if len(stack) > 1:
        open_ = stack[-1]
        raise ConfigError(f"{open_.describe()} is not closed", open_.where)


def _block_words(words: list[str]) -> tuple[str, list[str]]:
    """`<Limit READ WRITE>` -> ("limit", ["READ", "WRITE"]); the closing `>` may stand alone after a quote."""
    words = list(words)
    if words[-1] == ">":
        words.pop()
    elif words[-1].endswith(">"):
        words[-1] = words[-1][:-1]
    name = words[0][1:]
    args = [w for w in words[1:] if w != ""]
    return name.lower(), args


def _condition(name: str, args: list[str], state: _State, where: Where) -> bool:
    if name == "ifversion":
        try:
            return ifversion.matches(args)
        except ValueError as e:
            raise ConfigError(f"<IfVersion>: {e}", where) from None
    if len(args) != 1:
        raise ConfigError(f"<{name}> takes exactly one argument", where)
    arg = args[0]
    negate = arg.startswith("!")
    arg = arg[1:] if negate else arg
    if name == "ifmodule":
        present = state.registry.has_module(arg)
    else:
        present = arg in state.defines
    return present != negate


def _skip_block(lines: list[Line], i: int, name: str) -> int:
    """Index of the line closing the conditional opened at lines[i]."""
    depth = 0
    for j in range(i, len(lines)):
        first = lines[j].words[0].lower().rstrip(">")
        if first == "<" + name:
            depth += 1
        elif first == "</" + name:
            depth -= 1
            if depth == 0:
                return j
    raise ConfigError(f"<{name}> is not closed", lines[i].where)


def _feed(lines: list[Line], state: _State, stack: list[Section], depth: int) -> None:
    i = 0
    while i < len(lines):
        line = lines[i]
        first = line.words[0]
        if first.startswith("</"):
            _close(first, line, stack)
        elif first.startswith("<"):
            name, args = _block_words(line.words)
            if name in CONDITIONALS:
                if not _condition(name, args, state, line.where):
                    i = _skip_block(lines, i, name)
                else:
                    # a conditional is not a context: what it holds goes to the enclosing section
                    stack.append(Section("cond:" + name, args, line.where))
            else:
                _open(name, args, line, state, stack)
        else:
            _directive(line, state, stack, depth)
        i += 1


def _effective(stack: list[Section]) -> Section:
    """The innermost real section (conditionals are transparent)."""
    for s in reversed(stack):
        if not s.kind.startswith("cond:"):
            return s
    raise AssertionError("no section")


def _close(first: str, line: Line, stack: list[Section]) -> None:
    name = first[2:].rstrip(">").lower()
    top = stack[-1]
    expected = top.kind[5:] if top.kind.startswith("cond:") else _block_name(top.kind)
    if len(stack) == 1 or name != expected:
        raise ConfigError(f"unexpected </{first[2:].rstrip('>')}>", line.where)
    stack.pop()


def _block_name(kind: str) -> str:
    return next((n for n, (k, _, _) in BLOCKS.items() if k == kind), kind)


def _open(name: str, args: list[str], line: Line, state: _State, stack: list[Section]) -> None:
    if name in state.registry.blocks:
        _open_module_block(name, args, line, state, stack)
        return
    if name not in BLOCKS:
        raise ConfigError(f"unknown configuration section <{name}>", line.where)
    kind, allowed, (lo, hi) = BLOCKS[name]
    parent = _effective(stack)
    if not parent.context & allowed:
        raise ConfigError(f"<{name}> is not allowed in {parent.describe()}", line.where)
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise ConfigError(f"<{name}> takes {'no' if hi == 0 else 'one' if hi == 1 else 'at least one'} "
                          f"argument{'s' if hi != 1 else ''}", line.where)
    if kind == "limit":
        args = [a.upper() for w in args for a in w.split(",") if a]
    section = Section(kind, args, line.where, parent, dynamic=state.dynamic)
    parent.sections.append(section)
    stack.append(section)


def _open_module_block(name: str, args: list[str], line: Line, state: _State, stack: list[Section]) -> None:
    """A section a module declared (`Block`): its words checked by the module, its body allowed where it
    stands."""
    block = state.registry.blocks[name]
    parent = _effective(stack)
    if not parent.context & block.contexts or state.dynamic:
        raise ConfigError(f"<{block.name}> is not allowed in {parent.describe()}", line.where)
    try:
        value = block.parse(args)
    except ValueError as e:
        raise ConfigError(f"<{block.name}>: {e}", line.where) from None
    section = Section(name, args, line.where, parent, value=value, inherit=True)
    parent.sections.append(section)
    stack.append(section)


def _directive(line: Line, state: _State, stack: list[Section], depth: int) -> None:
    name, args = line.words[0], line.words[1:]
    section = _effective(stack)
    low = name.lower()
    if low == "define":
        if not args:
            raise ConfigError("Define needs a name", line.where)
        state.defines.add(args[0])
        return
    if low == "include":
        if state.dynamic:
            raise ConfigError("Include is not allowed in .ftpaccess", line.where)
        if not section.context & INCLUDE_CONTEXTS:
            raise ConfigError(f"Include is not allowed in {section.describe()}", line.where)
        if depth >= MAX_INCLUDE_DEPTH:
            raise ConfigError("Include nested too deeply (a loop?)", line.where)
        for path in _include_paths(args, line.where, state):
            _read_into(path, state, stack, depth + 1, line.where)
        return
    directive = state.registry.get(name)
    if directive is None:
        raise ConfigError(f"unknown directive '{name}'", line.where)
    if not directive.contexts & section.context:
        raise ConfigError(f"{directive.name} is not allowed in {CONTEXT_NAMES[section.context]} context",
                          line.where)
    try:
        value = directive.parse(args)
    except ValueError as e:
        raise ConfigError(f"{directive.name}: {e}", line.where) from None
    if low == "loadmodule" and not state.registry.has_module(value):
        state.warnings.append(f"{line.where}: LoadModule {value}: proftpy has no such module; ignored")
    elif low in ("loadfile", "moduleorder"):
        state.warnings.append(f"{line.where}: {directive.name}: proftpy loads no shared objects; ignored")
    if low == "includeoptions":
        state.include_options = value
    section.params.append(Param(directive, value, args, line.where))


TEMP_FILES = ("*~", "*.sw?")      # what IncludeOptions IgnoreTempFiles leaves out (ProFTPD's list)


def _include_paths(args: list[str], where: Where, state: _State) -> list[str]:
    """The files an Include names: one file, every file of a directory, or the files a wildcard matches (also in
    directory names), sorted, with ProFTPD 1.3.8's IncludeOptions: without AllowSymlinks a directory that is a
    symbolic link gives nothing (a warning), IgnoreTempFiles leaves editor leftovers out, IgnoreWildcards refuses
    a wildcard in a directory name."""
    if len(args) != 1:
        raise ConfigError("Include takes one path", where)
    options = state.include_options
    pattern = os.path.join(os.path.dirname(where.file), args[0]) if not os.path.isabs(args[0]) else args[0]
    if os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*")
    directory = os.path.dirname(pattern)
    if glob.has_magic(directory) and "IgnoreWildcards" in options:
        raise ConfigError(f"wildcard patterns not allowed in configuration directory name '{directory}'", where)
    missing = pattern if not glob.has_magic(pattern) else directory if not glob.has_magic(directory) else None
    if missing is not None and not os.path.lexists(missing):
        state.warnings.append(f"{where}: unable to include '{args[0]}': No such file or directory")
        return []
    if not glob.has_magic(pattern):
        return [pattern]                            # one file, whatever its name
    paths = []
    for path in sorted(glob.glob(pattern)):
        if os.path.islink(os.path.dirname(path)) and "AllowSymlinks" not in options:
            state.warnings.append(f"{where}: cannot read configuration path '{path}': Symbolic link; not included")
            continue
        name = os.path.basename(path)
        if "IgnoreTempFiles" in options and any(fnmatch.fnmatchcase(name, t) for t in TEMP_FILES):
            continue
        if os.path.isfile(path):
            paths.append(path)
    return paths
