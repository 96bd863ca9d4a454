"""mod_auth_pam: passwords checked by PAM (service "ftp"), accounts from the unix backend.

Needs the PyPI package ``python-pam`` (module ``pam``).  Without it the backend is unavailable:
``available`` is False, ``unavailable_reason`` says why, and every check fails with a logged error
(it never lets a login through).  As in ProFTPD, a wrong password makes the chain try the next
module unless the backend is authoritative (``AuthOrder mod_auth_pam.c*`` or
``authoritative=True``).

PAM modules such as pam_unix read /etc/shadow, so checks must run with root privileges
(``with privs.as_root():``) before the session revokes them.
"""
from __future__ import annotations

import logging

from proftpy.auth import MOD_AUTH_PAM, Account, Group
from proftpy.auth.unix import UnixBackend

log = logging.getLogger("proftpy.auth.pam")

try:
    import pam as _pam_module
except ImportError as exc:          # reported through .available / .unavailable_reason
    _pam_module = None
    _IMPORT_ERROR = f"PAM support needs the python-pam package (pip install python-pam): {exc}"
else:
    _IMPORT_ERROR = None


class PamBackend:
    """``mod_auth_pam.c``; lookups are delegated to ``unix`` (ProFTPD relies on mod_auth_unix)."""
    name = MOD_AUTH_PAM
    uses_crypt = False

    def __init__(self, service: str = "ftp", unix: UnixBackend | None = None,
                 authoritative: bool = False) -> None:
        self.service = service
        self.unix = unix or UnixBackend()
        self.authoritative = authoritative
        self.unavailable_reason = _IMPORT_ERROR
        self._pam = _pam_module

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    @property
    def declines_on_failure(self) -> bool:
        return not self.authoritative

    def getpwnam(self, name: str) -> Account | None:
        return self.unix.getpwnam(name) if self.available else None

    def getpwuid(self, uid: int) -> Account | None:
        return self.unix.getpwuid(uid) if self.available else None

    def getgrnam(self, name: str) -> Group | None:
        return None                     # group lookups are mod_auth_unix's job

    def getgrgid(self, gid: int) -> Group | None:
        return None

    def groups_for(self, name: str, primary_gid: int) -> list[Group]:
        return []

    def check(self, account: Account, password: str | bytes) -> bool:
        if not self.available:
            log.error("mod_auth_pam: %s", self.unavailable_reason)
            return False
        handle = self._pam.pam()
        ok = handle.authenticate(account.name, password, service=self.service)
        if not ok:
            log.info("PAM(%s) refused '%s': %s", self.service, account.name, handle.reason)
        return bool(ok)

    def sample_hash(self) -> str | None:
        return self.unix.sample_hash() if self.available else None

    def warm(self) -> list[str]:
        return self.unix.warm() + ([] if self.available else [f"mod_auth_pam: {self.unavailable_reason}"])
