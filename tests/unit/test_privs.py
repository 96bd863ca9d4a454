"""privs: every transition of ProFTPD's table, checked on real ids inside a forked child.

Id changes are irreversible for a process, so each scenario runs in ``os.fork()``; the child
reports assertion failures through a pipe and its exit code.
"""
import os
import traceback

import pytest

from proftpy import privs as privs_mod
from proftpy.privs import Privs

IS_ROOT = os.getuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="real id switching needs root")
NOBODY = 65534
U, G = 4321, 4322          # session ids given to setup()
LU, LG = 5432, 5433        # login ids used by user()


def in_child(fn, as_nobody=False):
    """Run ``fn`` in a forked child; fail here with the child's traceback if it failed."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # child: never return into pytest
        os.close(rd)
        code = 0
        try:
            if as_nobody and os.getuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            fn()
        except BaseException:
            os.write(wr, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(wr)
    chunks = []
    while True:
        data = os.read(rd, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(rd)
    _, status = os.waitpid(pid, 0)
    report = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, "child failed:\n" + report


def ids():
    return os.getresuid(), os.getresgid()


def fresh():
    p = Privs()
    p.setup(U, G)
    p.set_login(LU, LG)
    return p


# ---- root daemon ---------------------------------------------------------------------------------

@needs_root
def test_setup_keeps_real_root_and_sets_effective_ids():
    def body():
        p = Privs()
        assert p.nonroot_daemon is False
        p.setup(U, G)
        assert ids() == ((0, U, 0), (G, G, G))
        assert (p.uid, p.gid, p.ouid) == (U, G, 0)
        assert (p.root_privs, p.user_privs) == (0, 0)
    in_child(body)


@needs_root
def test_root_then_relinquish():
    def body():
        p = fresh()
        p.root()
        assert (os.geteuid(), os.getegid()) == (0, 0)
        assert p.root_privs == 1
        p.relinquish()
        assert (os.geteuid(), os.getegid()) == (U, G)
        assert (p.root_privs, p.user_privs) == (0, 0)
    in_child(body)


@needs_root
def test_second_root_is_ignored_and_one_relinquish_drops():
    def body():
        p = fresh()
        p.root()
        p.root()
        assert p.root_privs == 1
        p.relinquish()
        assert (os.geteuid(), p.root_privs) == (U, 0)
    in_child(body)


@needs_root
def test_user_switches_to_login_ids_then_relinquish():
    def body():
        p = fresh()
        p.user()
        assert (os.geteuid(), os.getegid()) == (LU, LG)
        assert p.user_privs == 1
        p.user()
        assert p.user_privs == 1
        p.relinquish()
        assert (os.geteuid(), os.getegid()) == (U, G)
        assert (p.root_privs, p.user_privs) == (0, 0)
    in_child(body)


@needs_root
def test_user_without_login_ids_uses_session_ids():
    def body():
        p = Privs()
        p.setup(U, G)
        p.user()
        assert (os.geteuid(), os.getegid()) == (U, G)
    in_child(body)


@needs_root
def test_relinquish_without_privs_is_ignored():
    def body():
        p = fresh()
        p.relinquish()
        assert (os.geteuid(), os.getegid()) == (U, G)
        assert (p.root_privs, p.user_privs) == (0, 0)
    in_child(body)


@needs_root
def test_nested_root_user_relinquish_is_ignored():
    def body():
        p = fresh()
        p.root()
        p.user()
        assert (os.geteuid(), os.getegid()) == (LU, LG)
        p.relinquish()                      # root+user == 2: ProFTPD ignores it
        assert (os.geteuid(), os.getegid()) == (LU, LG)
        assert (p.root_privs, p.user_privs) == (1, 1)
    in_child(body)


@needs_root
def test_revoke_is_permanent():
    def body():
        p = fresh()
        p.root()
        p.revoke()
        assert ids() == ((U, U, U), (G, G, G))
        assert (p.root_privs, p.user_privs) == (0, 0)
        assert p.disable_id_switching is True
        with pytest.raises(PermissionError):
            os.seteuid(0)
        p.root()                            # switching disabled: no change, no exception
        assert os.geteuid() == U
        p.relinquish()
        p.user()
        assert os.geteuid() == U
    in_child(body)


@needs_root
def test_as_root_restores_on_exception():
    def body():
        p = fresh()
        with pytest.raises(RuntimeError):
            with p.as_root():
                assert os.geteuid() == 0
                raise RuntimeError("boom")
        assert (os.geteuid(), os.getegid()) == (U, G)
        assert p.root_privs == 0
    in_child(body)


@needs_root
def test_as_user_and_root_scope_forms():
    def body():
        p = fresh()
        with p.as_user():
            assert os.geteuid() == LU
        assert os.geteuid() == U
        with p.root():
            assert os.geteuid() == 0
        assert os.geteuid() == U
    in_child(body)


@needs_root
def test_drop_to_user_sets_groups_ids_and_hardens():
    def body():
        p = fresh()
        p.drop_to_user(LU, LG, groups=[LG, 7777])
        assert ids() == ((LU, LU, LU), (LG, LG, LG))
        assert sorted(os.getgroups()) == [LG, 7777]
        with pytest.raises(PermissionError):
            os.seteuid(0)
        assert privs_mod.process_flags() == (1, 0)
        assert p.disable_id_switching
    in_child(body)


@needs_root
def test_drop_to_user_keeping_cap_chown_raises_it_only_within_root():
    """UserOwner's session: the user's ids for good, CAP_CHOWN permitted (and nothing else, bounding set too),
    effective only between root() and relinquish()."""
    import prctl

    def body():
        p = fresh()
        p.drop_to_user(LU, LG, groups=[LG], keep=(privs_mod.CAP_CHOWN,))
        assert ids() == ((LU, LU, LU), (LG, LG, LG))
        with pytest.raises(PermissionError):
            os.seteuid(0)
        others = [n for n in prctl.ALL_CAP_NAMES if n != "chown"]
        assert prctl.cap_permitted.chown and prctl.capbset.chown
        assert not any(getattr(prctl.cap_permitted, n) or getattr(prctl.capbset, n) for n in others)
        where = f"/tmp/privs-keep-{os.getpid()}"         # the user's own directory: the file given away is removable
        os.mkdir(where)
        path = f"{where}/f"
        open(path, "w").close()
        try:
            assert not prctl.cap_effective.chown
            with pytest.raises(PermissionError):
                os.chown(path, 1234, -1)
            with p.as_root():
                assert prctl.cap_effective.chown and not prctl.cap_effective.dac_override
                os.chown(path, 1234, 4321)
            assert not prctl.cap_effective.chown and os.stat(path).st_uid == 1234
        finally:
            os.unlink(path)
            os.rmdir(where)
    in_child(body)


@needs_root
def test_signals_are_restored_after_switch():
    import signal

    def body():
        before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        p = fresh()
        p.root()
        p.relinquish()
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    in_child(body)


# ---- non-root daemon -----------------------------------------------------------------------------

def test_nonroot_every_call_is_a_noop():
    def body():
        before = ids()
        p = Privs()
        assert p.nonroot_daemon is True
        p.setup(0, 0)
        assert (p.uid, p.gid, p.ouid) == (os.getuid(), os.getgid(), os.getuid())
        p.set_login(0, 0)
        p.root()
        p.user()
        p.relinquish()
        with p.as_root():
            pass
        with p.as_user():
            pass
        p.revoke()
        assert ids() == before
        assert (p.root_privs, p.user_privs) == (0, 0)
    in_child(body, as_nobody=True)


def test_nonroot_forced_off_setup_uses_real_ids():
    def body():
        p = Privs()
        assert p.set_nonroot_daemon(False) is True
        p.setup(0, 0)
        assert (p.uid, p.gid) == (os.getuid(), os.getgid())
        for call in (p.root, p.user, p.relinquish, p.revoke):
            call()                          # failures are logged, never raised
        assert os.geteuid() == os.getuid()
    in_child(body, as_nobody=True)


def test_set_nonroot_daemon_returns_previous_and_rejects_non_bool():
    p = Privs()
    first = p.nonroot_daemon
    assert p.set_nonroot_daemon(True) is first
    assert p.set_nonroot_daemon(False) is True
    assert p.set_nonroot_daemon(False) is False
    for bad in (-1, 1, None, "yes"):
        with pytest.raises(ValueError):
            p.set_nonroot_daemon(bad)


def test_default_instance_is_shared():
    assert privs_mod.default_privs() is privs_mod.default_privs()
