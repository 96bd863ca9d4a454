"""mod_sftp_pam: mod_sftp's keyboard-interactive logins (RFC 4256) through PAM. The PAM service's own prompts
become the INFO_REQUEST the client answers (sftp_session.Auth drives the conversation, auth/pam_conv.py speaks
to libpam); once PAM says yes (authentication, account management, credentials), the login is mod_auth's, as for
a public key: USER with no password needed, then its checks, DefaultRoot's chroot and the privilege drop."""

from __future__ import annotations

from ..config.registry import SVG, Directive, Merge
from ..config.types import Flag, Options, Str
from ..module import Module

NAME = "mod_sftp_pam.c"
VERSION = "mod_sftp_pam/0.3"
PAM_OPTIONS = ("NoTTY", "NoInfoMsgs", "NoRadioMsgs")

directives = (
    Directive("SFTPPAMEngine", Flag, SVG, True, Merge.SERVER,
              "Offer PAM as mod_sftp's keyboard-interactive driver (off: the method has no driver)."),
    Directive("SFTPPAMServiceName", Str(), SVG, "sftp", Merge.SERVER,
              "The PAM service (/etc/pam.d/NAME) keyboard-interactive logins use."),
    Directive("SFTPPAMOptions", Options(PAM_OPTIONS, "SFTPPAMOption"), SVG, frozenset(), Merge.SERVER,
              "NoTTY: no PAM_TTY item; NoInfoMsgs: PAM's informational texts are not sent to the client; "
              "NoRadioMsgs: PAM's radio prompts are not sent."),
)

MODULE = Module(NAME, directives=directives)
