"""ksm.py: which mappings are offered to the kernel's same-page merging, and that opting in really marks them."""

import ctypes
import os

import pytest

from conftest import heap_is_mergeable
from proftpy import ksm

MAPS = """\
55d0c8a00000-55d0c8a21000 r--p 00000000 fd:01 1234   /usr/bin/python3.11
55d0c8c21000-55d0c8c5e000 rw-p 00221000 fd:01 1234   /usr/bin/python3.11
55d0ca1d2000-55d0ca6b3000 rw-p 00000000 00:00 0      [heap]
7f2a10000000-7f2a10100000 rw-p 00000000 00:00 0
7f2a10100000-7f2a10200000 ---p 00000000 00:00 0
7f2a20000000-7f2a20001000 rw-s 00000000 00:05 99     /dev/zero (deleted)
7ffd5d1e0000-7ffd5d201000 rw-p 00000000 00:00 0      [stack]
"""


def test_only_private_writable_anonymous_mappings_and_the_heap_are_offered(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(MAPS)
    assert ksm.anonymous_mappings(str(maps)) == [(0x55d0ca1d2000, 0x4E1000), (0x7f2a10000000, 0x100000)]


def test_running_reads_the_ksmd_switch(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.write_text("1\n")
    monkeypatch.setattr(ksm, "RUN_FILE", str(run))
    assert ksm.running() is True
    run.write_text("0\n")
    assert ksm.running() is False
    monkeypatch.setattr(ksm, "RUN_FILE", str(tmp_path / "missing"))
    assert ksm.running() is None


def _in_child(fn) -> int:
    """Run fn() in a forked child (opting in cannot be undone by a test) and return its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn())
        finally:
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(ksm.running() is None, reason="this kernel has no KSM")
def test_enable_marks_the_heap_mergeable_in_the_process_and_its_children():
    def child() -> int:
        if heap_is_mergeable():
            return 2                          # already marked: the test could not tell anything
        how = ksm.enable()
        if how == "prctl" and ctypes.CDLL(None).prctl(ksm.PR_GET_MEMORY_MERGE, 0, 0, 0, 0) != 1:
            return 3
        grandchild = _in_child(lambda: 0 if heap_is_mergeable() else 5)
        return 0 if heap_is_mergeable() and grandchild == 0 else 4
    assert _in_child(child) == 0


@pytest.mark.skipif(ksm.running() is None, reason="this kernel has no KSM")
def test_before_linux_6_4_the_existing_anonymous_mappings_are_marked_with_madvise(monkeypatch):
    def old_kernel_prctl(*args) -> int:
        ctypes.set_errno(22)                  # EINVAL: PR_SET_MEMORY_MERGE is unknown before 6.4
        return -1
    monkeypatch.setattr(ksm._libc, "prctl", old_kernel_prctl)

    def child() -> int:
        if heap_is_mergeable():
            return 2
        return 0 if ksm.enable() == "madvise" and heap_is_mergeable() else 3
    assert _in_child(child) == 0
