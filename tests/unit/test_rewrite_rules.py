"""mod_rewrite's pure parts: rule and condition parsing, flags, back-references, the bounded replacement, the int:
functions and txt: maps (ProFTPD 1.3.8's behaviour, quirks included)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import threading
import time

import pytest

from proftpy.modules import rewrite as rw
from proftpy.modules import rewrite_maps as maps


def test_rule_flags_and_negation():
    rule = rw.parse_rule(["!^a(b)", "x", "[nocase,last]"])
    assert rule.negated and rule.last and rule.pattern.flags & re.IGNORECASE
    assert rule.pattern.pattern == "^a(b)"
    plain = rw.parse_rule(["^a", "x"])
    assert not (plain.negated or plain.last or plain.pattern.flags & re.IGNORECASE)


def test_unknown_rule_flags_are_passed_over_as_proftpd_does():
    assert not rw.parse_rule(["^a", "x", "[R=301,NC]"]).last
    assert rw.parse_rule(["^a", "x", "[R=301,NC]"]).pattern.flags & re.IGNORECASE


@pytest.mark.parametrize("parse, args, message", [
    (rw.parse_rule, ["^a"], "bad number of parameters"),
    (rw.parse_rule, ["^a", "b", "c", "d"], "bad number of parameters"),
    (rw.parse_rule, ["^a", "b", "NC"], "badly formatted flags parameter: 'NC'"),
    (rw.parse_rule, ["(", "b"], "unable to compile '(' regex"),
    (rw.parse_rule, ["[[:nosuch:]]", "b"], "unable to compile"),
    (rw.parse_condition, ["%m", "STOR", "[XX]"], "unknown RewriteCondition flags '[XX]'"),
    (rw.parse_condition, ["%m", "%P"], "illegal RewriteCondition variable used"),
    (rw.parse_condition, ["%m", "x%t"], "illegal RewriteCondition variable used"),
    (rw.parse_condition, ["%m"], "bad number of parameters"),
    (maps.parse_map, ["m", "int"], "invalid RewriteMap parameter: 'int'"),
    (maps.parse_map, ["m", "int:nosuch"], "unknown internal map function requested: 'nosuch'"),
    (maps.parse_map, ["m", "txt:rel"], "txt: absolute path required"),
    (maps.parse_map, ["m", "fifo:x"], "fifo: absolute path required"),
    (maps.parse_map, ["m", "fifo:/etc/passwd"], "fifo: error: '/etc/passwd' is not a FIFO"),
    (maps.parse_map, ["m", "dbm:/x"], "invalid RewriteMap map type: 'dbm'"),
    (maps.parse_map, ["m"], "wrong number of parameters"),
])
def test_bad_lines_are_refused_with_proftpds_messages(parse, args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(args)


def test_condition_operators():
    assert rw.parse_condition(["%m", "STOR"]).op == "regex"
    assert rw.parse_condition(["%f", "-d"]).op == "-d"
    assert rw.parse_condition(["%f", "-dx"]).op == "regex"        # only the exact word is a file test
    cond = rw.parse_condition(["%f", "!=abc", "[OR]"])
    assert (cond.op, cond.operand, cond.negated, cond.ornext) == ("=", "abc", True, True)
    assert rw.parse_condition(["%f", ">m"]).op == ">"
    assert rw.parse_condition(["%u", "^A", "[NC]"]).operand.search("alice")


def test_str_replace_bounds():
    assert maps.str_replace("a a a a", " ", "_", 2) is None
    assert maps.str_replace("a a a a", " ", "_", 3) == "a_a_a_a"
    assert maps.str_replace("abc", "x", "y") == "abc"
    assert maps.str_replace("a", "a", "b" * 9000) is None


def test_backrefs():
    groups = ("whole", "one", "") + ("",) * 7
    assert rw.backrefs("$1-$0-$2-$9", "$", groups, 8) == "one-whole--"
    assert rw.backrefs("$$1 and $1", "$", groups, 8) == "$1 and $1"      # escaped first: none is replaced
    assert rw.backrefs("%1%1", "%", groups, 1) == "%1%1"                  # more than the maximum: unchanged


def test_int_functions():
    f = maps.INTERNAL
    assert f["tolower"]("MiXeD é", 8) == "mixed é"
    assert f["toupper"]("abc", 8) == "ABC"
    assert f["replaceall"]("/a b c/ /_", 8) == "a_b_c"
    assert f["replaceall"]("/a b c/ /_", 1) is None
    assert f["replaceall"]("/abc/x/y", 8) is None                          # nothing to replace
    assert f["replaceall"]("/abc", 8) is None
    assert f["unescape"]("%41%62c", 8) == "Abc"
    assert f["unescape"]("%zz", 8) is None
    assert f["unescape"]("%2fx", 8) == "/x"            # ProFTPD looks for `/` at the wrong place: it passes
    assert f["unescape"]("%4", 8) is None
    assert f["utf8trans"]("h\u00e9", 8) == b"h\xe9".decode("utf-8", "surrogateescape")
    assert f["utf8trans"]("h", 8) is None
    assert f["idnatrans"]("b\u00fccher.example", 8) == "xn--bcher-kva.example"


def test_txt_map(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("# comment\n\n  key1   value1  extra\nkey2 value2\nonlykey\nkey2 again\nlast novalue")
    lines: list[str] = []
    txt = maps.TxtMap(str(path))
    assert txt.lookup("key1", lines.append) == "value1"
    assert txt.lookup("key2", lines.append) == "again"
    assert txt.lookup("last", lines.append) is None                       # no whitespace after the value
    assert any("bad line: 'onlykey" in line for line in lines)
    path.write_text("key1 new\n")
    os.utime(path, (txt.mtime + 5, txt.mtime + 5))
    assert txt.lookup("key1", lines.append) == "new"
    path.unlink()
    assert txt.lookup("key1", lines.append) == "new"                      # kept when the file cannot be read
    assert any("unable to stat" in line for line in lines)


def test_rules_of_pairs_conditions_with_the_next_rule():
    from proftpy.config.registry import Directive
    from proftpy.config.tree import Param, Section
    c1, c2 = rw.parse_condition(["%m", "STOR"]), rw.parse_condition(["%u", "bob"])
    r1, r2 = rw.parse_rule(["a", "b"]), rw.parse_rule(["c", "d"])
    d = Directive("RewriteRule", rw.parse_rule, 0)
    section = Section("server", params=[Param(d, v, [], None) for v in (c1, r1, c2, r2, c1)])
    rules = rw.rules_of(section)
    assert [r.conditions for r in rules] == [(c1,), (c2,)]


class _Server:
    """What the substitution reads of a server: its values and its RewriteMap lines."""

    name = "srv"

    def __init__(self, maps_):
        self._maps = maps_

    def get(self, name):
        return {"Port": 2121}[name]

    def context(self):
        return self

    def all(self, name):
        return self._maps


def _run(arg="my file", name="STOR", maps_=(), user=None):
    from types import SimpleNamespace
    session = SimpleNamespace(server=_Server(list(maps_)), remote_addr="192.0.2.1", remote_name="host.example",
                              conn_class=None, user_arg="alice", user=user, authenticated=user is not None,
                              groups=("staff", "ftp") if user else None, fs=None)
    return rw.Run(session, name, arg), rw.RewriteState()


def test_substitution_order_and_variables():
    run, st = _run()
    run.rule_groups = ("my file", "my", "file") + ("",) * 7
    st.cond_groups = ("c0", "c1") + ("",) * 8
    assert rw.substitute(run, st, "$2-%1-%m-%a-%p-%v-%U") == "file-c1-STOR-192.0.2.1-2121-srv-alice"
    assert rw.substitute(run, st, "%u|%g|%G|%c") == "%u|%g|%G|%c"          # no value: left as written
    run2, st2 = _run(user="alice")
    assert rw.substitute(run2, st2, "%u|%g|%G") == "alice|staff|staff,ftp"
    os.environ["PROFTPY_RW_TEST"] = "env"
    assert rw.substitute(run, st, "%{ENV:PROFTPY_RW_TEST}-%{ENV:PROFTPY_RW_NONE}.") == "env-."
    assert len(rw.substitute(run, st, "%{TIME}")) == 14


def test_substitution_maps():
    lower = maps.parse_map(["lower", "int:tolower"])
    first, second = maps.parse_map(["m", "int:toupper"]), maps.parse_map(["m", "int:tolower"])
    run, st = _run(maps_=[lower, first, second])
    run.rule_groups = ("AbC",) + ("",) * 9
    assert rw.substitute(run, st, "${lower:$0}") == "abc"
    assert rw.substitute(run, st, "${m:$0}") == "ABC"                      # the first map of the name wins
    assert rw.substitute(run, st, "${none:x|d}") == "${none:x|d}"
    assert rw.substitute(run, st, "${bad}${lower:X}") == "${bad}${lower:X}"   # a call without `:` ends the lookups
    assert rw.substitute(run, st, "${lower:${lower:X}}") == "${lower:x}"   # calls do not nest: the first } ends it


def test_conditions_chain_like_proftpd():
    run, st = _run()
    yes, no = rw.parse_condition(["%m", "^STOR$"]), rw.parse_condition(["%m", "^RETR$"])
    yes_or, no_or = rw.parse_condition(["%m", "^STOR$", "[OR]"]), rw.parse_condition(["%m", "^RETR$", "[OR]"])
    assert rw._conditions_hold(run, st, (yes, yes))
    assert not rw._conditions_hold(run, st, (yes, no))
    assert rw._conditions_hold(run, st, (no_or, yes))
    assert rw._conditions_hold(run, st, (yes_or, no))                      # a met [OR] ends the chain
    assert not rw._conditions_hold(run, st, (no_or, no))
    lt, gt = rw.parse_condition(["%f", ">n"]), rw.parse_condition(["%f", "<n"])
    assert rw._conditions_hold(run, st, (lt,)) and not rw._conditions_hold(run, st, (gt,))   # "my file" < "n"


def test_no_hook_without_rewrite_engine_on_anywhere():
    from proftpy import modules
    from proftpy.config.parser import parse_text

    def rewrite_hooks(text):
        config = parse_text(text, modules.registry(), file="t.conf")
        every = modules.dispatcher().for_config(config).hooks.values()
        return [h for phase in every for h in phase if h.module == "mod_rewrite.c"]

    assert rewrite_hooks("") == []
    assert rewrite_hooks("RewriteEngine off\nRewriteRule ^a b\n") == []
    assert len(rewrite_hooks("<Global>\nRewriteEngine on\n</Global>\n")) == 1


# -- fifo: maps, against a map program in a thread ------------------------------------------------------------------
def _fifo(tmp_path) -> int:
    path = tmp_path / "map.fifo"
    os.mkfifo(path)
    return maps.open_fifo(str(path))


def _answer_once(fd: int, answer: bytes) -> threading.Thread:
    """A map program's turn, as ProFTPD's sample one: wait for a line, write the answer into the same FIFO."""
    def run():
        select.select([fd], [], [], 5)
        os.read(fd, 4096)
        os.write(fd, answer)
    t = threading.Thread(target=run)
    t.start()
    return t


def test_fifo_lookup_writes_the_key_and_reads_the_answers_line(tmp_path):
    fd = _fifo(tmp_path)
    lines = []
    t = _answer_once(os.dup(fd), b"value\n")
    assert maps.fifo_lookup(fd, None, "key", lines.append) == "value"
    t.join()
    t = _answer_once(os.dup(fd), b"x" * 300)                # no newline in 256 bytes: the default
    assert maps.fifo_lookup(fd, None, "key", lines.append) is None
    t.join()
    assert "rewrite_subst_maps_fifo(): FIFO returned too long value, using default value" in lines


def test_a_silent_fifo_map_gives_the_default_in_time_and_leaves_the_fifo_clean(tmp_path):
    fd = _fifo(tmp_path)
    lines = []
    started = time.monotonic()
    assert maps.fifo_lookup(fd, None, "key", lines.append, timeout=0.3) is None
    assert time.monotonic() - started < 2
    assert lines[-1].endswith("lookup key not read within the timeout, using default value")
    t = _answer_once(os.dup(fd), b"later\n")                # the next lookup meets no stale key
    assert maps.fifo_lookup(fd, None, "next", lines.append) == "later"
    t.join()


def test_a_held_rewrite_lock_gives_the_default_in_time(tmp_path):
    fd = _fifo(tmp_path)
    holder = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    mine = os.open(tmp_path / "lock", os.O_RDWR)
    lines = []
    assert maps.fifo_lookup(fd, mine, "key", lines.append, timeout=0.3) is None
    assert lines == ["rewrite_subst_maps_fifo(): error obtaining lock: timed out"]
