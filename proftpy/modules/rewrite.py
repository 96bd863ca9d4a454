"""mod_rewrite: RewriteRule changes a command's argument with a regular expression before any other module sees it
(ProFTPD's mod_rewrite 1.1 runs its PRE_CMD handler for every command first), under RewriteCondition tests, with
`$N`/`%N` back-references, `%` variables, `${map:key|default}` lookups (rewrite_maps.py) and `%{ENV:NAME}`.

What the handler, `<Limit>`, the logs (TransferLog, ExtendedLog's %f %r) and the scoreboard then see is the new
argument; the path still goes through session.fs, so a rule cannot lead outside the session's root. RewriteHome
(mod_auth's directive) has a login's home directory rewritten as a made-up `REWRITE_HOME` command. The rules that
apply are those of the current directory's `<Directory>` (ProFTPD uses the one its last path check found), of the
`<Anonymous>` block and of the server, innermost first, each once; RewriteEngine, RewriteMap, RewriteMaxReplace
and RewriteLog are the server's. docs/rewrite.md has the details and where proftpy differs.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..config.registry import SVG, SVGA, DIR, Directive, Merge
from ..config.types import Custom, Flag, Path, atoi, compile_regex
from ..dispatch import PRE_CMD, Hook, Request
from ..fs import FsError
from ..module import Listener, Module
from .files import FilesState
from .modlog import ModuleLog
from .rewrite_maps import MAX_REPLACE, RewriteMap, fifo_lookup, open_fifo, parse_map, str_replace

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_rewrite.c"
TAG = "mod_rewrite/1.1"
GROUPS = 10                         # $0..$9 and %0..%9
NO_GROUPS = ("",) * GROUPS
HOME = "REWRITE_HOME"               # the command name (%m) of RewriteHome's rewriting
_FULL_PATH_COMMANDS = frozenset("APPE RETR STOR DELE MKD MDTM RMD SIZE STOU XMKD XRMD".split())
_SITE_PATHS = ("CHGRP", "CHMOD")    # SITE commands whose words after the first are the argument rewritten
_TESTS = {"-d": stat.S_ISDIR, "-f": stat.S_ISREG, "-l": stat.S_ISLNK, "-s": stat.S_ISREG}
# the variables of substitutions and conditions, replaced in this order (ProFTPD's table)
_VARIABLES = ("%a", "%c", "%F", "%f", "%G", "%g", "%h", "%m", "%P", "%p", "%t", "%U", "%u", "%v", "%w",
              "%{TIME}", "%{TIME_YEAR}", "%{TIME_MON}", "%{TIME_DAY}", "%{TIME_WDAY}", "%{TIME_HOUR}",
              "%{TIME_MIN}", "%{TIME_SEC}")
_TIME_FORMATS = {"%{TIME}": "%Y%m%d%H%M%S", "%{TIME_YEAR}": "%Y", "%{TIME_MON}": "%m", "%{TIME_DAY}": "%d",
                 "%{TIME_HOUR}": "%H", "%{TIME_MIN}": "%M", "%{TIME_SEC}": "%S"}
_COND_REF = re.compile("%[0-9]")
_ENV = "%{ENV:"


# -- the directives ----------------------------------------------------------------------------------------------
def _flags(word: str, known: dict[str, str]) -> frozenset[str]:
    """`[NC,OR]`, `[nocase]`...: the known flags' names (unknown words are passed over, as ProFTPD does)."""
    if len(word) < 2 or not (word.startswith("[") and word.endswith("]")):
        raise ValueError(f"badly formatted flags parameter: '{word}'")
    words = (w.strip('"') for w in re.split(r"[,\s]+", word[1:-1]))
    return frozenset(known[w] for w in words if w in known)


@dataclass(frozen=True, eq=False)
class Condition:
    """One RewriteCondition: the test string, and how it is tested."""

    text: str
    op: str                             # "regex", "<" ">" "=" (lexical), "-d" "-f" "-l" "-s" (file tests)
    operand: Any                        # the compiled pattern, or the string compared with
    negated: bool
    ornext: bool


@dataclass(frozen=True, eq=False)
class Rule:
    """One RewriteRule, and the conditions written just before it (paired by `rules_of`)."""

    pattern: re.Pattern
    negated: bool
    substitution: str
    last: bool
    conditions: tuple[Condition, ...] = ()


def parse_condition(args: list[str]) -> Condition:
    if not 2 <= len(args) <= 3:
        raise ValueError("bad number of parameters")
    if "%P" in args[1] or "%t" in args[1]:        # ProFTPD looks for them in the pattern
        raise ValueError("illegal RewriteCondition variable used")
    flags = _flags(args[2], {"nocase": "NC", "NC": "NC", "ornext": "OR", "OR": "OR"}) if len(args) == 3 else ()
    if len(args) == 3 and not flags:
        raise ValueError(f"unknown RewriteCondition flags '{args[2]}'")
    pattern = args[1]
    negated = pattern.startswith("!")
    pattern = pattern[negated:]
    op: str = pattern[:1]
    operand: Any = pattern[1:]
    if op not in ("<", ">", "="):
        op, operand = (pattern, None) if pattern in _TESTS else ("regex", _compile(pattern, "NC" in flags))
    return Condition(args[0], op, operand, negated, "OR" in flags)


def parse_rule(args: list[str]) -> Rule:
    if not 2 <= len(args) <= 3:
        raise ValueError("bad number of parameters")
    flags = _flags(args[2], {"nocase": "NC", "NC": "NC", "last": "L", "L": "L"}) if len(args) == 3 else ()
    negated = args[0].startswith("!")
    return Rule(_compile(args[0][negated:], "NC" in flags), negated, args[1], "L" in flags)


def _compile(pattern: str, nocase: bool) -> re.Pattern:
    try:
        return compile_regex(pattern, re.IGNORECASE if nocase else 0)
    except re.error as e:
        raise ValueError(f"unable to compile '{pattern}' regex: {e}") from None


def _max_replace(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    count = atoi(args[0])
    if count <= 0:
        raise ValueError("count must be greater than zero")
    return count


def _log_path(args: list[str]) -> str | None:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if args[0].lower() == "none":
        return None
    if not args[0].startswith("/"):
        raise ValueError("absolute path required")
    return args[0]


directives = (
    Directive("RewriteEngine", Flag, SVG, False, Merge.SERVER, "Rewrite command arguments (mod_rewrite)."),
    Directive("RewriteRule", Custom(parse_rule, "[!]pattern substitution [flags]"), SVGA | DIR, None, Merge.MULTI,
              "Replace a matching command argument by the substitution (flags: nocase|NC, last|L)."),
    Directive("RewriteCondition", Custom(parse_condition, "condition [!]pattern [flags]"), SVGA | DIR, None,
              Merge.MULTI, "A test the next RewriteRule needs (flags: nocase|NC, ornext|OR)."),
    Directive("RewriteMap", Custom(parse_map, "name txt:/path|int:function|fifo:/path"), SVG, None, Merge.SERVER,
              "A map for `${name:key|default}` in substitutions.", repeat=True),
    Directive("RewriteMaxReplace", Custom(_max_replace, "count"), SVG, MAX_REPLACE, Merge.SERVER,
              "At most this many replacements of one text in a string (more: the string stays as it is)."),
    Directive("RewriteLog", Custom(_log_path, "path|none"), SVG, None, Merge.SERVER,
              "mod_rewrite's own log (debugging)."),
    Directive("RewriteLock", Path(), SVG, None, Merge.SERVER,
              "A file locked around each fifo: map lookup, so that sessions take turns on the FIFO."),
)


def rules_of(section: Any) -> tuple[Rule, ...]:
    """A section's rules in file order, each with the conditions written since the rule before it."""
    rules: list[Rule] = []
    pending: list[Condition] = []
    for param in section.params:
        if isinstance(param.value, Condition):
            pending.append(param.value)
        elif isinstance(param.value, Rule):
            rules.append(Rule(param.value.pattern, param.value.negated, param.value.substitution, param.value.last,
                              tuple(pending)))
            pending = []
    return tuple(rules)


# -- a session's rewriting ---------------------------------------------------------------------------------------
@dataclass
class RewriteState:
    log: ModuleLog = field(default_factory=lambda: ModuleLog(TAG))
    cond_groups: tuple[str, ...] = NO_GROUPS    # the last condition pattern's groups (%N), kept as ProFTPD keeps
    rules: dict[int, tuple[Any, tuple[Rule, ...]]] = field(default_factory=dict)   # by section id (the section
                                                # held too, so its id is not reused)
    fifos: dict[str, int] = field(default_factory=dict)   # the server's fifo: maps' descriptors, by path
    lock_fd: int | None = None                  # RewriteLock, open while there are fifo: maps


@dataclass
class Run:
    """One command being rewritten."""

    session: "Session"
    name: str                           # %m: "STOR", "SITE CHMOD", "REWRITE_HOME"
    arg: str
    rule_groups: tuple[str, ...] = NO_GROUPS
    max_replace: int = MAX_REPLACE
    note: Callable[[str], None] = lambda text: None


def _groups(match: re.Match | None) -> tuple[str, ...]:
    if match is None:
        return NO_GROUPS
    found = [match.group(0)] + [g or "" for g in match.groups()[:GROUPS - 1]]
    return tuple(found + [""] * (GROUPS - len(found)))


def rewrite(session: "Session", req: Request) -> None:
    """The PRE_CMD handler: run the rules on the argument and put the result in the request."""
    if not session.server.get("RewriteEngine") or not req.arg.strip():
        return None
    name, arg, site_word = req.name, req.arg, None
    if name == "SITE":
        words = req.arg.split()
        if words and words[0].upper() in _SITE_PATHS:
            if len(words) < 2:
                return None
            site_word, name, arg = words[0], f"{name} {words[0]}", " ".join(words[1:])
    new = apply(session, name, arg)
    if new != arg:
        req.arg = new if site_word is None else f"{site_word} {new}"
    return None


def apply(session: "Session", name: str, arg: str) -> str:
    """`arg` after the rules that apply in the session's current place; `name` is what %m gives."""
    st = session.state.get(RewriteState)
    run = Run(session, name, arg, max_replace=session.server.get("RewriteMaxReplace"),
              note=st.log.write if st.log.fd is not None else Run.note)
    seen: set[int] = set()
    for rule in _rules(session, st):
        if id(rule) in seen:
            continue
        seen.add(id(rule))
        run.note("rewrite_fixup(): found RewriteRule")
        match = rule.pattern.search(run.arg)
        run.rule_groups = _groups(match)
        if (match is None) != rule.negated:
            run.note(f"rewrite_fixup(): {name} arg '{run.arg}' does not match RewriteRule regex")
            continue
        if not _conditions_hold(run, st, rule.conditions):
            continue
        run.note("rewrite_fixup(): executing RewriteRule")
        new = substitute(run, st, rule.substitution)
        if new:
            run.arg = new
            run.note(f"rewrite_fixup(): {name} arg now '{new}'")
        else:
            run.note("rewrite_fixup(): error processing RewriteRule: generated empty command argument, which is "
                     "not allowed")
        if rule.last:
            run.note("rewrite_fixup(): Rule marked as 'last', done processing Rules")
            break
    return run.arg


def _rules(session: "Session", st: RewriteState) -> list[Rule]:
    """The rules of the current directory's `<Directory>`, the `<Anonymous>` block and the server (innermost
    first; a rule merged into several of them is one rule)."""
    fs = session.fs
    ctx = session.context(fs.real_of(fs.cwd)) if fs is not None and session.authenticated else session.context()
    found: list[Rule] = []
    for section in ctx.chain:
        if section.first("RewriteRule") is None:
            continue
        kept = st.rules.get(id(section))
        if kept is None or kept[0] is not section:
            kept = st.rules[id(section)] = (section, rules_of(section))
        found.extend(kept[1])
    return found


def _conditions_hold(run: Run, st: RewriteState, conditions: tuple[Condition, ...]) -> bool:
    """ProFTPD's chain: a condition that fails ends it unless it is [OR]'d with the next; one that holds with
    [OR] ends it (the rest is not looked at)."""
    if conditions:
        run.note("rewrite_fixup(): examining RewriteRule conditions")
    holds = True
    for i, cond in enumerate(conditions):
        if not _test(run, st, cond):
            if i == len(conditions) - 1:
                run.note("rewrite_fixup(): last condition not met, skipping this RewriteRule")
                return False
            if cond.ornext:
                continue
            run.note("rewrite_fixup(): condition not met, skipping this RewriteRule")
            return False
        run.note("rewrite_fixup(): condition met")
        holds = True
        if cond.ornext:
            break
    return holds


def _test(run: Run, st: RewriteState, cond: Condition) -> bool:
    text = substitute(run, st, cond.text)
    run.note(f"rewrite_match_cond: subst'd cond: '{text}'")
    if cond.op == "regex":
        match = cond.operand.search(text)
        st.cond_groups = _groups(match)
        return (match is not None) != cond.negated
    if cond.op in ("<", ">", "="):
        # ProFTPD's `>pattern` holds when the string sorts before the pattern, `<pattern` when after
        a, b = text.encode("utf-8", "surrogateescape"), cond.operand.encode("utf-8", "surrogateescape")
        result = {"<": a > b, ">": a < b, "=": a == b}[cond.op]
        return result != cond.negated
    return _file_test(run.session, text, cond.op) != cond.negated


def _file_test(session: "Session", path: str, op: str) -> bool:
    """-d -f -l -s on a path as the session sees it (through session.fs: nothing outside its root)."""
    try:
        if session.fs is not None:
            st = session.fs.lstat(session.fs.resolve(path, follow_last=False).real)
        else:
            st = os.lstat(path)
    except (OSError, FsError):
        return False
    return _TESTS[op](st.st_mode) and (op != "-s" or st.st_size > 0)


# -- substitution ------------------------------------------------------------------------------------------------
def substitute(run: Run, st: RewriteState, pattern: str) -> str:
    """ProFTPD's order: the rule's `$N`, the conditions' `%N` (when the pattern had any), the variables, the
    maps, the environment. Each step sees what the one before made."""
    cond_refs = _COND_REF.search(pattern) is not None
    text = backrefs(pattern, "$", run.rule_groups, run.max_replace)
    if cond_refs:
        text = backrefs(text, "%", st.cond_groups, run.max_replace)
    text = _variables(run, text)
    text = _maps(run, text)
    return _environment(run, text)


def backrefs(text: str, sigil: str, groups: tuple[str, ...], max_replace: int) -> str:
    """`$N` (or `%N`) made the group's text; where the first one is written `$$N`, every `$$N` becomes `$N`
    instead (and no `$N` is replaced)."""
    for i in range(GROUPS):
        ref = f"{sigil}{i}"
        at = text.find(ref)
        if at < 0:
            continue
        if at > 0 and text[at - 1] == sigil:
            text = str_replace(text, sigil + ref, ref, max_replace) or text
        else:
            replaced = str_replace(text, ref, groups[i], max_replace)
            text = text if replaced is None else replaced
    return text


def _variables(run: Run, text: str) -> str:
    for var in _VARIABLES:
        if var in text:
            value = variable(run, var)
            if value is None:
                run.note(f"rewrite_expand_var(): {var} expands to NULL")
                continue
            replaced = str_replace(text, var, value, run.max_replace)
            text = text if replaced is None else replaced
    return text


def variable(run: Run, var: str) -> str | None:
    """A variable's value; None where ProFTPD has none (it is then left as written)."""
    if var in _TIME_FORMATS:
        return time.strftime(_TIME_FORMATS[var], time.localtime())
    return _VALUES[var](run, run.session)


def _rnfr_path(run: Run, s: "Session") -> str | None:
    """%w: RNTO's source, as the configuration names paths."""
    rnfr = s.state.get(FilesState).rnfr if run.name == "RNTO" and s.fs is not None else None
    return s.fs.config_path(rnfr.real) if rnfr is not None else None


_VALUES: dict[str, Callable[[Run, "Session"], str | None]] = {
    "%a": lambda run, s: s.remote_addr, "%c": lambda run, s: s.conn_class, "%h": lambda run, s: s.remote_name,
    "%m": lambda run, s: run.name, "%f": lambda run, s: run.arg, "%P": lambda run, s: str(os.getpid()),
    "%p": lambda run, s: str(s.server.get("Port")), "%t": lambda run, s: str(int(time.time())),
    "%U": lambda run, s: s.user_arg, "%u": lambda run, s: s.user if s.authenticated else None,
    "%v": lambda run, s: s.server.name,
    "%g": lambda run, s: s.groups[0] if s.authenticated and s.groups else None,
    "%G": lambda run, s: ",".join(s.groups) if s.authenticated and s.groups is not None else None,
    "%{TIME_WDAY}": lambda run, s: f"{int(time.strftime('%w', time.localtime())):02d}",
    "%F": lambda run, s: _full_path(run), "%w": _rnfr_path,
}


def _full_path(run: Run) -> str | None:
    """%F: the argument as an absolute path from the real root (a chrooted session's root in front), for the
    commands that name one."""
    fs = run.session.fs
    if fs is None or (run.name.upper() not in _FULL_PATH_COMMANDS
                      and run.name.upper() not in {f"SITE {name}" for name in _SITE_PATHS}):
        run.note(f"rewrite_expand_var(): %F not valid for this command ('{run.name}')")
        return None
    return fs.config_path(fs.real_of(fs.virtual(run.arg)))


_MAP_CALL = re.compile(r"\$\{([^}]*)\}")


def _maps(run: Run, text: str) -> str:
    """`${name:key|default}`: the server's maps of that name (each one found replaces what the one before left);
    a call without `:` ends the lookups, one naming no map is left as written."""
    maps: list[RewriteMap] = run.session.server.context().all("RewriteMap")
    result = text
    for call in _MAP_CALL.finditer(text):
        name, colon, rest = call.group(1).partition(":")
        if not colon:
            run.note("rewrite_parse_mapstr(): notice: badly formatted map string")
            break
        key, _, default = rest.partition("|")
        found = [m for m in maps if m.name == name]
        if not found:
            run.note(f"rewrite_subst_maps(): warning: no such RewriteMap '{name}'")
        for m in found:
            value = _fifo(run, m, key) if m.kind == "fifo" else m.lookup(key, run.max_replace, run.note)
            value = default if value is None else value
            run.note(f"rewrite_subst_maps(): {m.kind} map '{name}' returned '{value}'")
            replaced = str_replace(result, call.group(0), value, run.max_replace)
            result = result if replaced is None else replaced
    return result


def _fifo(run: Run, m: RewriteMap, key: str) -> str | None:
    st = run.session.state.get(RewriteState)
    fd = st.fifos.get(m.source)
    if fd is None:
        run.note(f"rewrite_subst_maps_fifo(): missing necessary FIFO file descriptor for '{m.source}'")
        return None
    return fifo_lookup(fd, st.lock_fd, key, run.note)


def _environment(run: Run, text: str) -> str:
    start = text.find(_ENV)
    result = text
    while start >= 0:
        end = text.find("}", start)
        if end < 0:
            break
        key = text[start:end + 1]
        if len(key) > 7:
            replaced = str_replace(result, key, os.environ.get(key[6:-1], ""), run.max_replace)
            result = result if replaced is None else replaced
        start = text.find(_ENV, end + 1)
    return result


# -- RewriteHome and the session ---------------------------------------------------------------------------------
def _rewrite_home(session: "Session", **_: Any) -> None:
    """mod_auth's `mod_auth.rewrite-home`: the home directory in the `mod_auth.home-dir` note, rewritten."""
    home = session.notes.get("mod_auth.home-dir")
    if not session.server.get("RewriteEngine") or not isinstance(home, str):
        return
    new = apply(session, HOME, home)
    log = session.state.get(RewriteState).log
    if new != home:
        log.write(f"rewrote home to be '{new}'")
        session.notes["mod_auth.home-dir"] = new
    else:
        log.write(f"home directory '{home}' not changed by RewriteHome")


def _open_log(session: "Session", **_: Any) -> None:
    """At connect (still root, before any chroot), and again when HOST chose another server: the RewriteLog, and
    the fifo: maps' FIFOs and RewriteLock's file (the old server's closed)."""
    st = session.state.get(RewriteState)
    on = session.server.get("RewriteEngine")
    st.log.open(session.server.get("RewriteLog") if on else None, session.server.get("AllowLogSymlinks"))
    for fd in [*st.fifos.values(), *([st.lock_fd] if st.lock_fd is not None else [])]:
        os.close(fd)
    st.fifos, st.lock_fd = {}, None
    paths = [m.source for m in session.server.context().all("RewriteMap") if m.kind == "fifo"] if on else []
    for path in paths:
        try:
            st.fifos[path] = open_fifo(path)
        except OSError as e:
            st.log.write(f"rewrite_open_fifo(): unable to open FIFO '{path}': {e.strerror}")
            st.log.write("error preparing FIFO RewriteMap")
    lock = session.server.get("RewriteLock")
    if st.fifos and lock is not None:
        try:
            st.lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            st.log.write(f"rewrite_subst_maps_fifo(): error creating '{lock}': {e.strerror}")


def _engine_anywhere(config: Any) -> bool:
    """Without RewriteEngine on anywhere, sessions go without the hook (it would look and return)."""
    return config.sets("RewriteEngine")


MODULE = Module(NAME, directives=directives,
                hooks=(Hook(PRE_CMD, "*", rewrite, early=True, active=_engine_anywhere),),
                listeners=(Listener("core.connect", _open_log, _engine_anywhere),
                           Listener("core.session-reinit", _open_log, _engine_anywhere),
                           Listener("mod_auth.rewrite-home", _rewrite_home, _engine_anywhere)))
