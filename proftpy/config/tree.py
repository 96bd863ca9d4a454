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
from typing import Any, Callable, Iterator

from .. import trace
from .errors import ConfigError, Where
from .registry import ANON, CLASS, DIR, FTPACCESS, GLOBAL, LIMIT, SERVER, VHOST, Directive, Merge

KIND_CONTEXT = {"server": SERVER, "vhost": VHOST, "global": GLOBAL, "anon": ANON, "dir": DIR,
                "ftpaccess": FTPACCESS, "limit": LIMIT, "class": CLASS}
_MISSING = object()
_UNSET = object()           # a directive the server's set does not hold


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
    value: Any = None           # a module section's parsed opening line (`<IfUser alice>`: its condition)
    inherit: bool = False       # a module section: what it holds is allowed where it stands itself

    @property
    def context(self) -> int:
        if self.inherit and self.parent is not None:
            return self.parent.context
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
    """ProFTPD's `<Directory>` match (dirtree.c recur_match_path): the directory itself, anything below it, or the
    glob (where `*` spans `/`). A pattern ending in `/*` covers only what is inside."""
    if pattern == path:
        return True
    suffixed = pattern
    if len(pattern) >= 2 and not pattern.endswith("/*"):
        if pattern.endswith("/"):
            pattern = suffixed = pattern[:-1]
            if pattern == path:
                return True
        suffixed = pattern + "/*"
    elif len(pattern) == 1:
        suffixed = pattern + "*"
    return fnmatch.fnmatchcase(path, suffixed) or (_is_glob(pattern) and fnmatch.fnmatchcase(path, pattern))


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@dataclass(eq=False)
class DirNode:
    """A `<Directory>` section in ProFTPD's directory tree: sections nested under the one whose path is their
    longest literal prefix (dirtree.c reorder_dirs), children in ProFTPD's set order."""

    section: Section
    pattern: str
    deferred: bool = False                  # a `~` path: resolved after login, never nested (mod_auth 1.3.8)
    parent: "DirNode | None" = None
    children: list["DirNode"] = field(default_factory=list)


def _prefix_len(pattern: str) -> int:
    """The pattern's length without trailing `*` and `/` (what find_best_dir compares)."""
    n = len(pattern)
    while n > 0 and pattern[n - 1] in "*/":
        n -= 1
    return n


def _best_parent(nodes: list[DirNode], path: str, this: DirNode) -> tuple[DirNode | None, int]:
    """ProFTPD's find_best_dir: the node (searched recursively) whose literal prefix best covers `path`."""
    best, best_len = None, 0
    for c in nodes:
        if c is this or c.deferred:
            continue
        n = _prefix_len(c.pattern)
        if len(path) > n and path[n] != "/":
            continue
        if n < len(path) and c.pattern[:n] == path[:n]:
            inner, inner_len = _best_parent(c.children, path, this)
            common = len(os.path.commonprefix([path, c.pattern]))
            if inner is None and common > best_len:
                best, best_len = c, common
            elif inner_len > best_len:
                best, best_len = inner, inner_len
    return best, best_len


def _reorder(nodes: list[DirNode]) -> None:
    """ProFTPD's reorder_dirs: move each section under its best parent (inserted first there), level by level."""
    for node in list(nodes):
        if node.deferred:
            continue
        parent, _ = _best_parent(nodes, node.pattern, node)
        if parent is not None:
            nodes.remove(node)
            parent.children.insert(0, node)
            node.parent = parent
    for node in nodes:
        _reorder(node.children)


def dir_tree(sections: list[Section], anon_root: str | None, home: str | None) -> list[DirNode]:
    """The top level of ProFTPD's tree for the `<Directory>` sections of one set, given in file order: ProFTPD
    inserts each context section at the head of its set, so the set holds them last-first."""
    nodes = []
    for d in reversed(sections):
        pattern = dir_pattern(d, anon_root, home)
        if pattern is not None:
            nodes.append(DirNode(d, pattern, deferred=d.args[0].startswith("~")))
    _reorder(nodes)
    return nodes


def match_dir(nodes: list[DirNode], path: str) -> DirNode | None:
    """ProFTPD's recur_match_path: the first node in set order that covers `path`, or a closer one among its
    children."""
    for node in nodes:
        if dir_matches(node.pattern, path):
            return match_dir(node.children, path) or node
    return None


def _memoized(memo: dict[Callable, Any], build: Callable[..., Any], *args: Any) -> Any:
    """`build(*args)` the first time `build` is asked for, from `memo` after that (Server.cached, Config.cached)."""
    try:
        return memo[build]
    except KeyError:
        value = memo[build] = build(*args)
        return value


def _declared(registry: Any, name: str) -> Any:
    directive = registry.get(name)
    if directive is None:
        raise KeyError(f"undeclared directive {name}")
    return directive


def _first(directive: Any, sections: list[Section]) -> Param | None:
    """The line that sets `directive` in the first of `sections` that has one (traced as ProFTPD's config
    channel shows a lookup), None for its default."""
    for section in sections:
        p = section.first(directive.name)
        if p is not None:
            if trace.on: trace.msg("config", 9, "%s: %r from %s at %s", directive.name, p.value, section.describe(), p.where)
            return p
    if trace.on: trace.msg("config", 10, "%s: default %r", directive.name, directive.default)
    return None


class Context:
    """The settings that apply at one place: a chain of sections, innermost first."""

    def __init__(self, chain: list[Section], server: "Server"):
        self.chain = chain
        self.server = server

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The effective value under the directive's merge rule, else its declared default."""
        directive = _declared(self.server.registry, name)
        p = _first(directive, [self.server.section] if directive.merge is Merge.SERVER else self.chain)
        if p is not None:
            return p.value
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

    def nearest(self, name: str) -> list[Any]:
        """Every value of the innermost set that has the directive, in file order: lines that add up within one
        context while an inner context replaces them all (ProFTPD's CF_MERGEDOWN read with find_config_next)."""
        for section in self.chain:
            found = section.all(name)
            if found:
                return [p.value for p in found]
        return []

    def limits(self) -> Iterator[tuple[Section, Section]]:
        """(owning set, `<Limit>` section) pairs, innermost set first; within a set the last one in the file
        first, as ProFTPD inserts each context section at the head of its set."""
        for section in self.chain:
            for limit in reversed(section.children("limit")):
                yield section, limit


class _OwnSet(Context):
    """A server's own set as a context (`Server.context()` without `<Anonymous>` or path): it answers from the
    server's resolved values."""

    def get(self, name: str, default: Any = _MISSING) -> Any:
        return self.server.get(name, default)


class Server:
    """One server: the main "server config" or a `<VirtualHost>`, with `<Global>` already merged in."""

    def __init__(self, section: Section, registry, base: "Server | None" = None):
        self.section = section
        self.registry = registry
        self.addresses: list[str] = base.addresses if base is not None else []   # its IP addresses, resolved
                                                                                   # when the configuration loads
        self.base: Server = base.base if base is not None else self   # the configured server a session's merged
                                                                       # copy (mod_ifsession) comes from
        self._trees: dict = {}              # (anon, home, .ftpaccess sections) -> its <Directory> trees
        self._values: dict[str, tuple[Any, Any]] = {}   # name as asked -> (own value or _UNSET, declared default)
        self._memo: dict[Callable, Any] = {}     # what modules derive from this server's settings (`cached`)
        self._plain: Context | None = None  # context(): the server's own set (a Context is never changed)

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The server's value (its own set, `<Global>` merged in), else the declared default. Resolved once per
        name: a Server's section does not change once built (mod_ifsession merges into a copy, a new Server)."""
        hit = self._values.get(name)
        if hit is None or trace.on:
            hit = self._resolve(name)
        value, fallback = hit
        if value is _UNSET:
            return fallback if default is _MISSING else default
        return value

    def _resolve(self, name: str) -> tuple[Any, Any]:
        directive = _declared(self.registry, name)
        p = _first(directive, [self.section])
        hit = self._values[name] = (_UNSET if p is None else p.value, directive.default)
        return hit

    def resolve_all(self) -> None:
        """Resolve every declared directive now (the master, before forking: sessions share the answers)."""
        for directive in self.registry.directives.values():
            self._resolve(directive.name)

    def cached(self, build: Callable[..., Any], *args: Any) -> Any:
        """`build(self, *args)`, once per server and `build` (the function is the key): a module's settings
        derived from this server's directives. A reload makes new Servers, so nothing derived from an old
        configuration survives it."""
        return _memoized(self._memo, build, self, *args)

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
        if anon is None and path is None:
            if self._plain is None:
                self._plain = _OwnSet([self.section], self)
            return self._plain
        chain: list[Section] = []
        if path is not None:
            node = self._match(anon, path, home, tuple(dynamic))
            while node is not None:
                chain.append(node.section)
                node = node.parent
        if anon is not None:
            chain.append(anon)
        chain.append(self.section)
        return Context(chain, self)

    def _match(self, anon: Section | None, path: str, home: str | None, dynamic: tuple[Section, ...]):
        """The `<Directory>` (or `.ftpaccess`) node for a path, as ProFTPD's dir_match_path finds it: the
        `<Anonymous>` block's sections first, then the server's (with the `.ftpaccess` ones, newest first)."""
        path = path[:-1] if path.endswith("*") else path
        path = path.rstrip("/") or "/"
        key = (id(anon), home, tuple(id(d) for d in dynamic))
        trees = self._trees.get(key)
        if trees is None:
            if len(self._trees) > 64:
                self._trees.clear()
            anon_root = anon.args[0] if anon is not None else None
            trees = self._trees[key] = (dir_tree(anon.children("dir"), anon_root, home) if anon is not None else [],
                                        dir_tree(self.section.children("dir") + list(reversed(dynamic)), None, home))
        return (match_dir(trees[0], path) if anon is not None else None) or match_dir(trees[1], path)


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
    _chosen: dict[tuple[str, int], "Server | None"] = field(default_factory=dict, repr=False, compare=False)
    _memo: dict[Callable, Any] = field(default_factory=dict, repr=False, compare=False)
    _sets: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)

    @property
    def main(self) -> Server:
        return self.servers[0]

    def cached(self, build: Callable[["Config"], Any]) -> Any:
        """`build(self)`, once per configuration and `build` (the function is the key; a reload parses a new
        Config, so it is built again)."""
        return _memoized(self._memo, build, self)

    def sets(self, name: str) -> bool:
        """Whether any section of the configuration (any server, `<Global>`, `<Anonymous>`, `<Directory>`,
        mod_ifsession's blocks) sets `name` to a true value: where none does, what the directive switches on
        cannot happen in any session of this configuration. Walked once per name (several hooks ask)."""
        found = self._sets.get(name)
        if found is None:
            found = self._sets[name] = any(section.get(name) for section in self.root.walk())
        return found

    def server_for(self, local_addr: str, local_port: int) -> "Server | None":
        """ProFTPD's vhost choice for a connection: a server bound to this address and port, else DefaultServer,
        else the main one (unless SocketBindTight). Chosen once per local address and port (the master's veto,
        its modules and the session ask for the same one); the servers' addresses are resolved at load."""
        key = (local_addr, local_port)
        try:
            return self._chosen[key]
        except KeyError:
            pass
        if len(self._chosen) >= 256:
            self._chosen.clear()
        chosen = self._chosen[key] = self._choose(local_addr, local_port)
        return chosen

    def _choose(self, local_addr: str, local_port: int) -> "Server | None":
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
        """ProFTPD's server id: 1 for the main server, then the <VirtualHost>s in file order (a session's
        mod_ifsession copy has the id of the server it copies)."""
        return self.servers.index(server.base) + 1

    def build_indexes(self) -> None:
        """Index every section's params now; the master calls this before forking (see `Section._by_key`)."""
        for section in [*self.root.walk(), *(s for c in self.classes for s in c.walk())]:
            section._by_key()
        for server in self.servers:
            server.resolve_all()
            server.context()


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
    """One `<Directory>` per path in a server (or `<Anonymous>`), those of module sections (`<IfUser>`) included,
    as ProFTPD checks."""
    seen: dict[str, Where | None] = {}
    dirs = section.children("dir") + [d for s in section.sections if s.inherit for d in s.children("dir")]
    for d in dirs:
        key = d.args[0].rstrip("/") or "/"
        if key in seen and d.where != seen[key]:
            raise ConfigError(f"<Directory {d.args[0]}> is already defined at {seen[key]}", d.where)
        seen[key] = d.where


# -- mod_ifsession's merge -----------------------------------------------------------------------------------------
def copy_tree(section: Section, parent: Section | None = None, copies: dict[int, Section] | None = None) -> Section:
    """A copy of a section and every section below it (params shared), for a session to change; `copies` maps
    each original's id to its copy."""
    new = Section(section.kind, section.args, section.where, parent, list(section.params), [], section.dynamic,
                  section.value, section.inherit)
    new.sections = [copy_tree(s, new, copies) for s in section.sections]
    if copies is not None:
        copies[id(section)] = new
    return new


def _accumulates(directive: Directive) -> bool:
    """ProFTPD's CF_MULTI / CF_MERGEDOWN_MULTI: several lines add up, so a merged line does not replace them."""
    return directive.repeat or directive.merge is Merge.MULTI


def _remove_param(section: Section, key: str) -> None:
    section.params = [p for p in section.params if p.directive.key != key]
    for s in section.sections:
        _remove_param(s, key)


def _remove_dir(section: Section, path: str) -> None:
    section.sections = [s for s in section.sections
                        if not (s.kind == "dir" and (s.args[0].rstrip("/") or "/") == path)]
    for s in section.sections:
        _remove_dir(s, path)


def merge_block(root: Section, block: Section) -> None:
    """mod_ifsession's ifsess_dup_set, on a session's own copy of its server's section (`copy_tree`): what the
    block holds goes to the head of the server's set, in ProFTPD's set order (the block's sections last-first,
    then its directives). A directive that takes one value first removes that directive everywhere in the
    server's tree (inside `<Directory>`, `<Anonymous>` and the other blocks still waiting too), so the merged
    line is the one that applies; a merged `<Directory X>` replaces the existing `<Directory X>`."""
    for section in reversed(list(block.sections)):
        if section.kind == "dir":
            _remove_dir(root, section.args[0].rstrip("/") or "/")
        section.parent = root
        root.sections.append(section)           # file order here is ProFTPD's set order reversed: the head
    for param in list(block.params):
        if not _accumulates(param.directive):
            _remove_param(root, param.directive.key)
        root.params.insert(0, param)
