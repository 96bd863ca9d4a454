"""Privilege switching with ProFTPD's semantics (src/privs.c).

The session keeps real uid 0 until login so it can regain root for short spans (binding port 20,
chroot, reading /etc/shadow).  Two 0/1 counters decide when ``relinquish`` acts:

    root()        root_privs 0 -> 1, euid/egid 0          (a second root() is ignored)
    user()        user_privs 0 -> 1, euid/egid = login ids (a second user() is ignored)
    relinquish()  acts only when exactly one of the counters is set; nested (both set) is ignored
    revoke()      permanent setuid/setgid to the session ids; both counters reset; no switching after

Every call is a no-op in a non-root daemon, and errors from the id calls are logged, never raised,
exactly like ProFTPD (a failed switch must not kill the session in the middle of a reply).
Prefer the scoped form, which always relinquishes, even on exceptions::

    with privs.as_root():
        sock.bind((addr, 20))
"""
from __future__ import annotations

import _signal  # CPython's C module under `signal`
import contextlib
import ctypes
import errno
import logging
import os
import signal
from typing import Iterable, Iterator

import prctl  # python-prctl; imported here, in the master, because a session calls it after chroot

from . import trace

_LIBC = ctypes.CDLL(None, use_errno=True)

log = logging.getLogger("proftpy.privs")

CAP_CHOWN = prctl.CAP_CHOWN     # what a session keeps for UserOwner (drop_to_user's `keep`)
PR_GET_DUMPABLE = 3
PR_GET_NO_NEW_PRIVS = 39


_ALL_SIGNALS = frozenset(int(s) for s in signal.valid_signals())   # built once, as plain numbers
# The C function: signal.pthread_sigmask wraps it and turns every signal of the old mask into an enum member
# (some 60 of them per call, a tenth of a login's CPU); the numbers are all we give back.
_sigmask = _signal.pthread_sigmask


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Block signals so no handler runs with half-switched ids (ProFTPD's pr_signals_block)."""
    old = _sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
    try:
        yield
    finally:
        _sigmask(signal.SIG_SETMASK, old)


class Privs:
    """Explicit privilege state for one process (ProFTPD keeps this in statics + ``session``).

    Attributes mirror ProFTPD: ``uid``/``gid`` are ``session.uid/gid`` (what relinquish returns
    to), ``ouid`` the original real uid, ``login_uid``/``login_gid`` what ``user()`` switches to
    (default: the session ids), ``root_privs``/``user_privs`` the two 0/1 counters.
    """

    def __init__(self) -> None:
        self.nonroot_daemon: bool = os.getuid() != 0
        self.root_privs = 0
        self.user_privs = 0
        self.ouid = os.getuid()
        self.uid = os.geteuid()
        self.gid = os.getegid()
        self.login_uid: int | None = None
        self.login_gid: int | None = None
        self.disable_id_switching = False
        self.kept_caps: tuple[int, ...] = ()   # what root() raises after drop_to_user(keep=...): UserOwner's chown

    # -- configuration -------------------------------------------------------------------------
    def set_nonroot_daemon(self, flag: bool) -> bool:
        """Force non-root mode on/off; returns the previous value.  Non-bool -> ValueError."""
        if not isinstance(flag, bool):
            raise ValueError(f"set_nonroot_daemon expects True or False, not {flag!r}")
        previous, self.nonroot_daemon = self.nonroot_daemon, flag
        return previous

    def set_login(self, uid: int, gid: int) -> None:
        """Record the logged-in user's ids (ProFTPD's session.login_uid/gid) for ``user()``."""
        self.login_uid, self.login_gid = uid, gid

    # -- the five operations ---------------------------------------------------------------------
    def setup(self, uid: int, gid: int) -> None:
        """Become ``uid``/``gid`` effectively while keeping real uid 0 (PRIVS_SETUP)."""
        if self.nonroot_daemon:
            self.ouid = self.uid = os.getuid()
            self.gid = os.getgid()
            return
        self.root_privs = self.user_privs = 0
        with _signals_blocked():
            if os.getuid() != 0:
                self.ouid = self.uid = os.getuid()
                self.gid = os.getgid()
                self._call("setgid", os.setgid, self.gid)
                self._call("setuid", os.setuid, self.uid)
                self._call("seteuid", os.seteuid, self.uid)
                return
            self.ouid = os.getuid()
            self.uid, self.gid = uid, gid
            self._call("setuid", os.setuid, 0)
            self._call("setgid", os.setgid, gid)
            self._call("seteuid", os.seteuid, uid)

    def root(self) -> "_Scope":
        """Switch euid/egid to 0 (PRIVS_ROOT).  Usable as ``with privs.root():`` too."""
        if self.nonroot_daemon:
            return _Scope(self)
        if self.root_privs > 0:
            log.debug("root(): root privs already held, ignoring")
            return _Scope(self)
        self.root_privs += 1
        if trace.on: trace.msg("privs", 9, "ROOT PRIVS at %s", trace.caller())
        if self.kept_caps:
            _effective(self.kept_caps, True)
            return _Scope(self)
        if self.disable_id_switching:
            log.debug("root(): id switching disabled")
            return _Scope(self)
        with _signals_blocked():
            self._call("seteuid", os.seteuid, 0)
            self._call("setegid", os.setegid, 0)
        return _Scope(self)

    def user(self) -> "_Scope":
        """Switch euid/egid to the login ids (PRIVS_USER).  Usable as ``with privs.user():``."""
        if self.nonroot_daemon:
            return _Scope(self)
        if self.user_privs > 0:
            log.debug("user(): user privs already held, ignoring")
            return _Scope(self)
        self.user_privs += 1
        if trace.on: trace.msg("privs", 9, "USER PRIVS at %s", trace.caller())
        uid = self.uid if self.login_uid is None else self.login_uid
        gid = self.gid if self.login_gid is None else self.login_gid
        with _signals_blocked():
            self._call("seteuid", os.seteuid, 0)
            self._call("setegid", os.setegid, gid)
            self._call("seteuid", os.seteuid, uid)
        return _Scope(self)

    def relinquish(self) -> None:
        """Return to the session ids, but only at nesting depth 1 (PRIVS_RELINQUISH)."""
        if self.nonroot_daemon:
            return
        depth = self.root_privs + self.user_privs
        if depth == 0:
            log.debug("relinquish(): no privs held, ignoring")
            return
        if depth > 1:
            log.debug("relinquish(): nested root+user privs, ignoring")
            return
        if self.kept_caps:
            if self.root_privs:
                self.root_privs -= 1
            else:
                self.user_privs -= 1
            _effective(self.kept_caps, False)
            return
        if self.disable_id_switching:
            log.debug("relinquish(): id switching disabled")
            return
        if trace.on: trace.msg("privs", 9, "RELINQUISH PRIVS at %s", trace.caller())
        with _signals_blocked():
            if os.geteuid() != 0:
                self._call("seteuid", os.seteuid, 0)
                self.user_privs -= 1
            else:
                self.root_privs -= 1
            self._call("setegid", os.setegid, self.gid)
            self._call("seteuid", os.seteuid, self.uid)

    def revoke(self) -> None:
        """Permanently become the session ids; root can never come back (PRIVS_REVOKE)."""
        if self.nonroot_daemon:
            return
        self.root_privs = self.user_privs = 0
        if trace.on: trace.msg("privs", 5, "REVOKE PRIVS at %s (uid %d, gid %d)", trace.caller(), self.uid, self.gid)
        with _signals_blocked():
            self._call("seteuid", os.seteuid, 0)
            self._call("setgid", os.setgid, self.gid)
            self._call("setuid", os.setuid, self.uid)
        self.disable_id_switching = True

    # -- scoped forms ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def as_root(self) -> Iterator[None]:
        """``root()`` for the span of a ``with`` block; relinquishes even on exceptions."""
        self.root()
        try:
            yield
        finally:
            self.relinquish()

    @contextlib.contextmanager
    def as_user(self) -> Iterator[None]:
        """``user()`` for the span of a ``with`` block; relinquishes even on exceptions."""
        self.user()
        try:
            yield
        finally:
            self.relinquish()

    def drop_to_user(self, uid: int, gid: int, groups: Iterable[int] | None = None,
                     name: str | None = None, keep: tuple[int, ...] = ()) -> None:
        """Post-login: become uid/gid for good, then forbid regaining privileges.

        Order matters: supplementary groups and gid must change while we are still root.
        ``groups`` is the list of supplementary gids; with ``groups=None`` and a ``name``,
        initgroups(3) computes them.  Raises OSError when a step fails: a half-dropped session
        must not go on serving files.
        ``keep``: capabilities (prctl.CAP_*) the process keeps in its permitted set across the
        setuid, none effective; ``root()`` raises them for its span (UserOwner's CAP_CHOWN, where
        ProFTPD keeps root itself). Every other capability leaves the bounding set too.
        """
        if trace.on: trace.msg("privs", 5, "dropping privileges for good to uid %d, gid %d (%s)", uid, gid, name or "")
        if not self.nonroot_daemon:
            with _signals_blocked():
                if os.geteuid() != 0:
                    os.seteuid(0)
                if groups is not None:
                    os.setgroups(sorted(set(groups)))
                elif name is not None:
                    os.initgroups(name, gid)
                else:
                    os.setgroups([gid])
                os.setgid(gid)
                if keep:
                    _keep_only(keep, uid)
                else:
                    os.setuid(uid)
            if uid != 0 and _can_regain_root():
                raise PermissionError(errno.EPERM, "privileges could be regained after setuid")
            self.uid, self.gid = uid, gid
            self.login_uid, self.login_gid = uid, gid
            self.root_privs = self.user_privs = 0
            self.disable_id_switching = True
            self.kept_caps = tuple(keep)
        harden_process()

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _call(what: str, fn, arg: int) -> None:
        """Run one id call; log failures as ProFTPD does (EPERM quietly, others as errors)."""
        try:
            fn(arg)
        except OSError as exc:
            level = logging.DEBUG if exc.errno == errno.EPERM else logging.ERROR
            log.log(level, "%s(%d) failed: %s", what, arg, exc.strerror)


class _Scope:
    """Returned by ``root()``/``user()`` so ``with privs.root():`` relinquishes on exit."""

    __slots__ = ("_privs",)

    def __init__(self, privs: Privs) -> None:
        self._privs = privs

    def __enter__(self) -> Privs:
        return self._privs

    def __exit__(self, *exc) -> None:
        self._privs.relinquish()


def _keep_only(keep: tuple[int, ...], uid: int) -> None:
    """setuid(uid) keeping `keep` permitted (PR_SET_KEEPCAPS), nothing else anywhere (bounding, inheritable,
    effective); PermissionError when the kernel left more."""
    prctl.capbset.limit(*keep)
    prctl.set_keepcaps(True)
    try:
        os.setuid(uid)
    finally:
        prctl.set_keepcaps(False)
    prctl.cap_inheritable.limit()
    prctl.cap_effective.limit()
    prctl.cap_permitted.limit(*keep)
    left = [name for cap, name in zip(prctl.ALL_CAPS, prctl.ALL_CAP_NAMES)
            if cap not in keep and getattr(prctl.cap_permitted, name)]
    if left:
        raise PermissionError(errno.EPERM, f"capabilities {left} kept after setuid")


def _effective(caps: tuple[int, ...], on: bool) -> None:
    """Raise or lower kept capabilities in the effective set; a failure is logged as an id call's is."""
    try:
        prctl.set_caps((caps, prctl.CAP_EFFECTIVE, on))
    except OSError as exc:
        log.error("capset(%s %s) failed: %s", "raise" if on else "lower", caps, exc.strerror)


def _can_regain_root() -> bool:
    try:
        os.seteuid(0)
    except PermissionError:
        return False
    return True


def regain_refusal() -> str | None:
    """Try seteuid(0): the kernel's reason for refusing it (what a session reports after revoke), or None when it
    succeeded, i.e. this process can still become root."""
    try:
        os.seteuid(0)
    except PermissionError as exc:
        return exc.strerror
    return None


def _libc_prctl(option: int, arg: int) -> int:
    res = _LIBC.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0),
                     ctypes.c_ulong(0), ctypes.c_ulong(0))
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")
    return res


def harden_process() -> None:
    """Set no_new_privs (setuid binaries cannot raise privileges) and make the process
    non-dumpable (no core files with password hashes; other users cannot ptrace it)."""
    prctl.set_no_new_privs(1)
    prctl.set_dumpable(False)


def process_flags() -> tuple[int, int]:
    """(no_new_privs, dumpable) of the calling process, for tests and diagnostics."""
    return _libc_prctl(PR_GET_NO_NEW_PRIVS, 0), _libc_prctl(PR_GET_DUMPABLE, 0)


_default: Privs | None = None


def default_privs() -> Privs:
    """The process-wide instance (created on first use, after any fork that matters)."""
    global _default
    if _default is None:
        _default = Privs()
    return _default


def drop_to_user(uid: int, gid: int, groups: Iterable[int] | None = None,
                 name: str | None = None, privs: Privs | None = None) -> None:
    """Module-level form of ``Privs.drop_to_user`` on ``privs`` or the default instance."""
    (privs or default_privs()).drop_to_user(uid, gid, groups, name)
