"""The parsed configuration: sections holding params, servers built from them, and the effective lookup.

ProFTPD keeps one set of settings per server, per `<Anonymous>` and per `<Directory>`, and merges outer values down
(reference §1f). proftpy keeps the sections as parsed and merges at lookup time instead: a `Context` is the chain of
sets that apply to one place (innermost `<Directory>` first, then `<Anonymous>`, then the server), and each
directive's declared merge rule decides how the chain answers.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from .. import trace
from .errors import ConfigError, Where
from .registry import (ANON, CLASS, DIR, FTPACCESS, GLOBAL, LIMIT, SERVER, VHOST, Directive, Merge)

KIND_CONTEXT = {"server": SERVER, "vhost": VHOST, "global": GLOBAL, "anon": ANON, "dir": DIR,
                "ftpaccess": FTPACCESS, "limit": LIMIT, "class": CLASS}
_MISSING = object()


@dataclass(eq=False)
class Param:
    """One directive line: its declaration, parsed value, raw words and place."""

    directive: Directive
    value: Any
    args: list[str]
    where: Where

    @property
    def name(self) -> str:
        return self.directive.name


@dataclass(eq=False)
class Section:
    """A context block (or the whole server config): its params and nested blocks, in file order."""

    kind: str
    args: list[str] = field(default_factory=list)
    where: Where | None = None
    parent: "Section | None" = None
    params: list[Param] = field(default_factory=list)
    sections: list["Section"] = field(default_factory=list)
    dynamic: bool = False       # read from a .ftpaccess file

    @property
    def context(self) -> int:
        return KIND_CONTEXT[self.kind]

    _index: dict[str, list[Param]] = field(default_factory=dict, repr=False)
    _indexed: int = field(default=0, repr=False)     # how many params `_index` holds

    def _by_key(self) -> dict[str, list[Param]]:
        """Params by lower-case directive name. Rebuilt when params were added (parsing, `<Global>` merge);
        the master builds it before the first fork, so a session looks a directive up without walking, and
        without touching (copying) the memory of, every param of the section."""
        if self._indexed != len(self.params):
            index: dict[str, list[Param]] = {}
            for p in self.params:
                index.setdefault(p.directive.key, []).append(p)
            self._index, self._indexed = index, len(self.params)
        return self._index

    def all(self, name: str) -> list[Param]:
        return list(self._by_key().get(name.lower(), ()))

    def first(self, name: str) -> Param | None:
        found = self._by_key().get(name.lower())
        return found[0] if found else None

    def walk(self) -> Iterator["Section"]:
        """This section and every section nested in it."""
        yield self
        for s in self.sections:
            yield from s.walk()

    def get(self, name: str, default: Any = None) -> Any:
        """This section's own value for a directive (first line wins), without merging."""
        p = self.first(name)
        return default if p is None else p.value

    def children(self, kind: str) -> list["Section"]:
        return [s for s in self.sections if s.kind == kind]

    def describe(self) -> str:
        label = {"server": "server config", "ftpaccess": ".ftpaccess"}.get(self.kind)
        return label or f"<{self.kind} {' '.join(self.args)}>".replace(" >", ">")


def dir_pattern(section: Section, anon_root: str | None, home: str | None) -> str | None:
    """The absolute path pattern of a `<Directory>`: `~` becomes the user's home, relative paths are relative to
    the `<Anonymous>` root. None when it cannot apply (a `~` path before login)."""
    path = section.args[0]
    if path.startswith("~"):
        if home is None:
            return None
        rest = path[1:]
        if rest and not rest.startswith("/"):
            return None     # ~otheruser: resolved by the auth layer when it is asked for; not supported here
        path = home.rstrip("/") + rest
    elif not path.startswith("/"):
        if anon_root is None:
            return None
        path = os.path.join(anon_root, path)
    return path.rstrip("/") or "/"


def dir_matches(pattern: str, path: str) -> bool:
    """ProFTPD's `<Directory>` match: the directory itself, anything below it, or the glob (where `*` spans `/`).
    A pattern ending in `/*` covers only what is inside."""
    if pattern == "/":
        return True
    return (path == pattern or path.startswith(pattern + "/") or fnmatch.fnmatchcase(path, pattern)
            or fnmatch.fnmatchcase(path, pattern + "/*"))


def _specificity(pattern: str) -> tuple[int, int]:
    return (pattern.count("/"), 0 if any(c in pattern for c in "*?[") else 1)


class Context:
    """The settings that apply at one place: a chain of sections, innermost first."""

    def __init__(self, chain: list[Section], server: "Server"):
        self.chain = chain
        self.server = server

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The effective value under the directive's merge rule, else its declared default."""
        directive = self.server.registry.get(name)
        if directive is None:
            raise KeyError(f"undeclared directive {name}")
        sets = [self.server.section] if directive.merge is Merge.SERVER else self.chain
        for section in sets:
            p = section.first(name)
            if p is not None:
                if trace.on: trace.msg("config", 9, "%s: %r from %s at %s", directive.name, p.value, section.describe(), p.where)
                return p.value
        if trace.on: trace.msg("config", 10, "%s: default %r", directive.name, directive.default)
        return directive.default if default is _MISSING else default

    def param(self, name: str) -> Param | None:
        for section in self.chain:
            p = section.first(name)
            if p is not None:
                return p
        return None

    def all(self, name: str) -> list[Any]:
        """Every value along the chain (for accumulating directives), innermost set first."""
        return [p.value for section in self.chain for p in section.all(name)]

    def limits(self) -> Iterator[tuple[Section, Section]]:
        """(owning set, `<Limit>` section) pairs, innermost set first, file order within a set."""
        for section in self.chain:
            for limit in section.children("limit"):
                yield section, limit


class Server:
    """One server: the main "server config" or a `<VirtualHost>`, with `<Global>` already merged in."""

    def __init__(self, section: Section, registry):
        self.section = section
        self.registry = registry
        self.addresses: list[str] = []      # its IP addresses, resolved when the configuration is loaded

    def get(self, name: str, default: Any = _MISSING) -> Any:
        return self.context().get(name, default)

    @property
    def is_vhost(self) -> bool:
        return self.section.kind == "vhost"

    @property
    def name(self) -> str:
        return self.get("ServerName")

    def anonymous(self) -> list[Section]:
        return self.section.children("anon")

    def context(self, anon: Section | None = None, path: str | None = None, home: str | None = None,
                dynamic: list[Section] = ()) -> Context:
        """The chain of sets for a path in this server (optionally inside an `<Anonymous>`). `dynamic` are
        `.ftpaccess` sections (kind "dir", args [directory]) found by the caller."""
        chain: list[Section] = []
        if path is not None:
            anon_root = anon.args[0] if anon is not None else None
            candidates = list(dynamic) + (anon.children("dir") if anon is not None else []) \
                + self.section.children("dir")
            matched = []
            for order, d in enumerate(candidates):
                pattern = dir_pattern(d, anon_root, home)
                if pattern is not None and dir_matches(pattern, path):
                    matched.append((_specificity(pattern), -order, d))
            matched.sort(key=lambda t: (t[0], t[1]), reverse=True)
            chain.extend(d for _, _, d in matched)
        if anon is not None:
            chain.append(anon)
        chain.append(self.section)
        return Context(chain, self)


@dataclass
class Config:
    """A whole parsed configuration."""

    path: str
    root: Section
    servers: list[Server]
    classes: list[Section]
    registry: Any
    defines: set[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def main(self) -> Server:
        return self.servers[0]

    def server_for(self, local_addr: str, local_port: int) -> "Server | None":
        """ProFTPD's vhost choice for a connection: a server bound to this address and port, else DefaultServer,
        else the main one (unless SocketBindTight)."""
        on_port = [s for s in self.servers if s.get("Port") == local_port]
        for server in on_port:
            if local_addr in server.addresses:
                return server
        for server in on_port:
            if server.get("DefaultServer"):
                return server
        if self.main in on_port and not self.main.get("SocketBindTight"):
            return self.main
        return None

    def sid(self, server: "Server") -> int:
        """ProFTPD's server id: 1 for the main server, then the <VirtualHost>s in file order."""
        return self.servers.index(server) + 1

    def build_indexes(self) -> None:
        """Index every section's params now; the master calls this before forking (see `Section._by_key`)."""
        for section in [*self.root.walk(), *(s for c in self.classes for s in c.walk())]:
            section._by_key()


def build(root: Section, registry, path: str, defines: set[str], warnings: list[str]) -> Config:
    """Copy `<Global>` into every server, check what only makes sense whole, and make the Server objects."""
    globals_ = root.children("global")
    root.sections = [s for s in root.sections if s.kind != "global"]
    servers = [root] + root.children("vhost")
    for server in servers:
        for g in globals_:
            server.params.extend(g.params)          # appended: the server's own line still wins
            for s in g.sections:
                if s.kind != "class":
                    server.sections.append(s)
    classes = [s for s in root.sections if s.kind == "class"] + [
        s for g in globals_ for s in g.sections if s.kind == "class"]
    for server in servers:
        _check_duplicate_dirs(server)
        for anon in server.children("anon"):
            _check_duplicate_dirs(anon)
    kept_classes = []
    for c in classes:
        if not c.all("From"):
            warnings.append(f"{c.where}: <Class {c.args[0]}> has no From rules and is ignored")
        else:
            kept_classes.append(c)
    return Config(path=path, root=root, servers=[Server(s, registry) for s in servers], classes=kept_classes,
                  registry=registry, defines=defines, warnings=warnings)


def _check_duplicate_dirs(section: Section) -> None:
    seen: dict[str, Where | None] = {}
    for d in section.children("dir"):
        key = d.args[0].rstrip("/") or "/"
        if key in seen and d.where != seen[key]:
            raise ConfigError(f"<Directory {d.args[0]}> is already defined at {seen[key]}", d.where)
        seen[key] = d.where
