"""The idle child's walk (precopy.py): what it reaches from a session's entry points, that it stops when asked,
and that rewriting code objects in place leaves them working."""

from proftpy import precopy
from proftpy.modules import core
from proftpy.reply import Reply


def test_the_walk_follows_the_names_a_function_uses():
    found = precopy.reachable([core.greeting])
    assert core.greeting in found and core.greeting.__code__ in found
    assert core.expand_ident in found                   # called by name from greeting's code
    assert Reply in found and Reply.__init__ in found   # a class it names, and how it is made


def test_the_walk_stays_out_of_other_packages():
    import os.path
    found = precopy.reachable([core.greeting])
    assert os.path.join not in found and not any(getattr(o, "__module__", "") == "posixpath" for o in found
                                                 if isinstance(o, type(core.greeting)))


def test_the_walk_stops_when_interrupted():
    from proftpy.modules import loaded
    roots = [m.session_init for m in loaded().modules]
    everything = precopy.reachable(roots)
    assert len(everything) > 2 * precopy.CHECK_EVERY
    assert len(precopy.reachable(roots, lambda: True)) < precopy.CHECK_EVERY


def test_copied_code_still_runs():
    assert precopy.copy_ahead([core.expand_ident]) >= 2
    class S:  # noqa: E306 - the attributes expand_ident reads
        local_addr, local_name = "10.0.0.1", "ftp.example"
        server = type("Srv", (), {"name": "x"})()
    assert core.expand_ident("%L %V %v", S()) == "10.0.0.1 ftp.example x"
