"""mod_auth_unix: system users and groups (/etc/passwd, /etc/shadow and /etc/group, read by proftpy itself before
any chroot: what ProFTPD's `PersistentPasswd on` does), and AuthUnixOptions' MagicTokenChroot: a home such as
`/srv/ftp/./home/alice` (wu-ftpd's convention) confines the user to `/srv/ftp` and starts it in `/home/alice`, in
place of DefaultRoot and DefaultChdir."""

from __future__ import annotations

from ..auth import MOD_AUTH_UNIX, Account
from ..auth.unix import UnixBackend
from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag, Options
from ..module import Module

NAME = "mod_auth_unix.c"
TOKEN = "/./"

directives = (
    Directive("AuthUnixOptions", Options(("AIXNoRLogin", "AIXNoAuthenticate", "MagicTokenChroot", "NoGetgrouplist",
                                          "NoInitgroups"), "AuthUnixOption", nocase=True),
              SVG, frozenset(), Merge.SERVER,
              "MagicTokenChroot: a home with `/./` in it is chroot (before) and start directory (after). The others "
              "(AIX options; NoGetgrouplist, NoInitgroups: proftpy reads /etc/group itself) change nothing.",
              repeat=True),
    Directive("PersistentPasswd", Flag, SVG, False, Merge.SERVER,
              "Accepted for compatibility: proftpy always reads /etc/passwd and /etc/group itself, before the "
              "chroot (ProFTPD's `on`); NSS lookups (`off`: LDAP, NIS users) are not available."),
)


def backend(server) -> UnixBackend:
    return UnixBackend()


def magic_token(server, account: Account) -> tuple[str, str] | None:
    """(chroot directory, start directory inside it) when MagicTokenChroot is on and the system account's home has
    the token after at least one directory; else None."""
    if account.source != MOD_AUTH_UNIX or not any("MagicTokenChroot" in p.value
                                                   for p in server.section.all("AuthUnixOptions")):
        return None
    at = account.home.find(TOKEN, 1)
    if at < 1:
        return None
    return account.home[:at], account.home[at + 2:]


MODULE = Module(NAME, directives=directives, auth_backend=backend)
