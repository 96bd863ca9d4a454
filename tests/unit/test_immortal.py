"""immortal.py: on CPython 3.12/3.13 the master's long-lived objects get the immortal count (sessions then never
write it), objects that own a resource do not and are still freed; on 3.11 nothing changes. Run in a fresh
interpreter, since marking is for the whole process and once only."""

import json
import os
import subprocess
import sys
from pathlib import Path

from proftpy import immortal

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, os, socket, sys
from proftpy import dispatch, immortal, master
names_before = sorted(vars(master))
kept = socket.socket()
dropped = socket.socket()
fd = dropped.fileno()
marked = immortal.immortalize()
again = immortal.immortalize()
is_immortal = lambda o: sys.getrefcount(o) == immortal.IMMORTAL_REFCNT
facts = {"marked": marked, "again": again, "function": is_immortal(master.serve_connection),
         "code": is_immortal(master.serve_connection.__code__), "class": is_immortal(dispatch.Dispatcher),
         "module": is_immortal(master), "module dict": is_immortal(vars(master)),
         "socket": is_immortal(kept),
         "constants": [is_immortal(c) for c in master.Master.preload.__code__.co_consts if type(c) in (str, tuple)],
         "module names unchanged": sorted(vars(master)) == names_before,
         "class lookups": [dispatch.Dispatcher.__name__, type(kept).__name__, master.Master.preload.__name__]}
del dropped                             # its last reference: the socket is closed, as before
try:
    os.fstat(fd)
    facts["dropped socket closed"] = False
except OSError:
    facts["dropped socket closed"] = True
print(json.dumps(facts))
"""


def facts() -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_long_lived_objects_become_immortal_once_and_resources_stay_mortal():
    got = facts()
    assert got["dropped socket closed"] and not got["socket"]
    assert got["module names unchanged"]        # the probes that give modules their keys version add no name
    assert got["class lookups"] == ["Dispatcher", "socket", "preload"]
    if immortal.supported():
        assert got["marked"] > 10000 and got["again"] == 0
        assert got["function"] and got["code"] and got["class"] and got["module"] and got["module dict"]
        assert got["constants"] and all(got["constants"])      # the docstring and other constants of the code
    else:
        assert got["marked"] == got["again"] == 0
        assert not (got["function"] or got["code"] or got["class"] or got["module"] or got["module dict"])


def test_supported_only_where_counts_have_the_immortal_form():
    expected = (sys.implementation.name == "cpython" and sys.version_info[:2] in ((3, 12), (3, 13))
                and getattr(sys, "_is_gil_enabled", lambda: True)())
    assert immortal.supported() == expected
