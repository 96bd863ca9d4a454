"""MemoryMerge: the master opts itself and every session into the kernel's same-page merging (KSM), and with
ksmd running an idle logged-in session then owns a fraction of the memory it owns without (under half; without
ksmd a session owns over 3 MB on Python 3.11, less on 3.12+ where the master's objects are immortal)."""

import statistics
import sys
import time

import psutil
import pytest

from conftest import IS_ROOT, REPO, heap_is_mergeable
from proftpy import immortal, ksm

sys.path.insert(0, str(REPO / "scripts"))
from bench import can_switch_ksm, ksm_settled, ksmd  # noqa: E402

pytestmark = pytest.mark.skipif(ksm.running() is None, reason="this kernel has no KSM")


def sessions(d) -> list[psutil.Process]:
    return psutil.Process(d.master_pid).children()


def wait_for_sessions(d, count: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while len(sessions(d)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return sessions(d)


def test_by_default_master_and_sessions_are_marked_mergeable_and_the_log_says_whether_ksmd_runs(ftpd):
    d = ftpd("SyslogLevel info")
    ftp = d.login()
    [session] = wait_for_sessions(d, 1)
    assert heap_is_mergeable(d.master_pid) and heap_is_mergeable(session.pid)
    state = "and ksmd is running" if ksm.running() else "but ksmd is off (/sys/kernel/mm/ksm/run is 0)"
    assert "MemoryMerge: memory marked mergeable (" in d.log() and state in d.log()
    ftp.quit()


def test_memory_merge_off_leaves_the_memory_unmarked(ftpd):
    d = ftpd("MemoryMerge off")
    ftp = d.login()
    [session] = wait_for_sessions(d, 1)
    assert not heap_is_mergeable(d.master_pid) and not heap_is_mergeable(session.pid)
    assert "MemoryMerge" not in d.log()
    ftp.quit()


def idle_uss_kb(d, count: int = 6) -> float:
    clients = [d.login() for _ in range(count)]
    kids = wait_for_sessions(d, count)
    time.sleep(0.3)
    ksm_settled()
    values = [k.memory_full_info().uss / 1024 for k in kids]
    for ftp in clients:
        ftp.quit()
    return statistics.median(values)


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT or not can_switch_ksm(), reason="switching ksmd on needs root")
def test_with_ksmd_running_an_idle_session_owns_under_a_megabyte_and_without_opting_in_over_three(ftpd,
                                                                                                  tmp_path):
    with ksmd(True):
        merged = idle_uss_kb(ftpd(""))
        (tmp_path / "proftpy.pid").unlink()
        unmerged = idle_uss_kb(ftpd("MemoryMerge off"))
    assert merged < 1024 < 2 * merged < unmerged
    if not immortal.supported():    # 3.11: every count a session changes copies a page (3.12+: see immortal.py)
        assert 3072 < unmerged
