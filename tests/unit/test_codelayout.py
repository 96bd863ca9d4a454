"""codelayout.py: the functions a session runs get fresh, adjacent copies of their code before the first fork; the
copies behave the same, closures made earlier and nested code objects get them too, the old code objects stay
alive, and the shipped list still names the code it was made from. Run in a fresh interpreter: laying out is once
per process."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from proftpy import codelayout, immortal

REPO = Path(__file__).resolve().parents[2]

SAMPLE = '''
def plain(x):
    return x * 2

def outer(n):
    def inner(x):
        return x + n
    return [inner(i) for i in range(3)]

def factory(k):
    def made(x):
        return x - k
    return made

made = factory(5)
'''

SCRIPT = r"""
import gc, json, sys
import sample
from proftpy import codelayout
old = {n: getattr(sample, n).__code__ for n in ("plain", "outer", "factory")}
old_made = sample.made.__code__
copied = codelayout.lay_out(["sample:outer", "sample:plain", "sample:factory", "sample:nowhere"])
again = codelayout.lay_out(["sample:plain"])
inner_old = [c for c in old["outer"].co_consts if hasattr(c, "co_code")]
inner_new = [c for c in sample.outer.__code__.co_consts if hasattr(c, "co_code")]
print(json.dumps({
    "copied": copied, "again": again,
    "new code": [getattr(sample, n).__code__ is not old[n] for n in old],
    "same code": [getattr(sample, n).__code__ == old[n] for n in old],
    "results": [sample.plain(4), sample.outer(10), sample.factory(1)(3), sample.made(7)],
    "closure made earlier": sample.made.__code__ is not old_made,
    "nested copied": bool(inner_new) and all(a is not b for a, b in zip(inner_old, inner_new)),
    "old kept": all(any(k is c for k in codelayout._kept) for c in old.values()),
}))
"""


def test_listed_functions_get_copies_that_behave_the_same(tmp_path):
    (tmp_path / "sample.py").write_text(textwrap.dedent(SAMPLE))
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=f"{tmp_path}:{REPO}"))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    # plain, outer, inner, factory, made; 3.11 also has a code object for the list comprehension
    assert got["copied"] == (5 if sys.version_info >= (3, 12) else 6)
    assert got["again"] == 0
    assert got["new code"] == [True, True, True] and got["same code"] == [True, True, True]
    assert got["results"] == [8, [10, 11, 12], 2, 2]
    assert got["closure made earlier"] and got["nested copied"] and got["old kept"]


def test_names_skip_comments_and_blank_lines(tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text("# a comment\n\nproftpy.master:serve_connection\n  mod:f  \n")
    assert codelayout.names(listed) == ["proftpy.master:serve_connection", "mod:f"]
    assert codelayout.names(tmp_path / "missing.txt") == []


def test_shipped_list_names_proftpys_code():
    """The list is made by scripts/code_layout.py; a rename leaves stale names (harmless, but the gain fades):
    regenerate it when this fails."""
    import importlib
    import proftpy.modules  # noqa: F401 - every module loaded, as in the master
    ours = [n for n in codelayout.names() if n.startswith("proftpy.")]
    assert len(ours) > 150
    missing = []
    for name in ours:
        module, qualname = name.split(":")
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
            if obj is None or part == "<locals>":
                break
        if obj is None:
            missing.append(name)
    assert len(missing) <= len(ours) // 20, f"stale names (run scripts/code_layout.py): {missing}"


MASTER = r"""
import json
import proftpy.modules
from proftpy import codelayout, immortal
immortal.immortalize()
print(json.dumps({"copied": len(codelayout._kept) // 2}))
"""


def test_the_master_lays_out_the_shipped_list_where_objects_are_immortal():
    out = subprocess.run([sys.executable, "-c", MASTER], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    copied = json.loads(out.stdout)["copied"]
    assert copied > 150 if immortal.supported() else copied == 0
