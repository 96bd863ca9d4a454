"""ExtendedLog lines of an SSH session's own messages, as ProFTPD 1.3.8's mod_sftp writes them.

ProFTPD logs KEXINIT, ECDH_INIT (DH_INIT, DH_GEX_REQUEST, DH_GEX_INIT), NEWKEYS, EXT_INFO, SERVICE_REQUEST,
USERAUTH_REQUEST (`user method`), CHANNEL_OPEN (the type), CHANNEL_REQUEST (the request), CHANNEL_WINDOW_ADJUST,
CHANNEL_EOF and CHANNEL_CLOSE under the AUTH or MISC class and SSH; their names are not FTP commands, so only a log
of every class (`ALL`) takes them (ProFTPD's Bug#4313 rule). Each USERAUTH_REQUEST also has its USER line (331)
and, for an attempt that failed (a key query included), a PASS line (530), under AUTH and SSH; a login's own USER
and PASS are mod_auth's, dispatched with those classes. Which logs take what is decided once per session: a
session whose logs take none of it writes nothing and adds nothing per message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..dispatch import Request
from .log import LogState, log_request, logs_classes

if TYPE_CHECKING:
    from ..session import Session

AUTH_SSH = frozenset(("AUTH", "SSH"))


class SshLog:
    def __init__(self, session: "Session"):
        self.session = session
        self.messages = logs_classes(session, None)         # KEXINIT, CHANNEL_OPEN...
        self.auth = logs_classes(session, AUTH_SSH)         # the USER and PASS lines of each USERAUTH_REQUEST

    def message(self, name: str, arg: str) -> None:
        log_request(self.session, Request(name, arg, f"{name} {arg}".rstrip()), None)

    def user(self, user: str) -> None:
        log_request(self.session, Request("USER", user, f"USER {user}"), AUTH_SSH,
                    (331, f"Password required for {user}"))

    def failed_pass(self) -> None:
        log_request(self.session, Request("PASS", "", "PASS"), AUTH_SSH, (530, "Login incorrect."))

    def forget_user(self) -> None:
        """After a failed attempt `%U` is unset until the next request, as ProFTPD's PASS error handlers leave it."""
        self.session.state.get(LogState).orig_user = None
