"""A PAM conversation driven by the caller (mod_sftp_pam's keyboard-interactive logins): libpam through ctypes,
whose conversation function hands each batch of PAM messages to `ask` and returns what it answers.

python-pam (mod_auth_pam's) answers every prompt with one password; keyboard-interactive needs PAM's own prompts
to reach the client (RFC 4256's INFO_REQUEST) and the client's answers to come back, possibly several rounds.
`ask` may block (it reads from the client); an exception it raises ends the conversation (PAM_CONV_ERR) and is
raised again by `authenticate` once libpam has returned."""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from typing import Callable

PAM_SUCCESS, PAM_CONV_ERR = 0, 19
PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG, PAM_TEXT_INFO, PAM_RADIO_TYPE = 1, 2, 3, 4, 5
PAM_TTY, PAM_RHOST = 3, 4
PAM_ESTABLISH_CRED = 0x2
MAX_MESSAGES = 32               # prompts in one conversation call (PAM_MAX_NUM_MSG)


class _Message(ctypes.Structure):
    _fields_ = [("msg_style", ctypes.c_int), ("msg", ctypes.c_char_p)]


class _Response(ctypes.Structure):
    _fields_ = [("resp", ctypes.c_void_p), ("resp_retcode", ctypes.c_int)]


_CONV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.POINTER(_Message)),
                         ctypes.POINTER(ctypes.POINTER(_Response)), ctypes.c_void_p)


class _Conv(ctypes.Structure):
    _fields_ = [("conv", _CONV), ("appdata_ptr", ctypes.c_void_p)]


@dataclass(frozen=True)
class PamMessage:
    style: int                  # PAM_PROMPT_ECHO_OFF, ..._ON, PAM_ERROR_MSG, PAM_TEXT_INFO, PAM_RADIO_TYPE
    text: str

    @property
    def prompt(self) -> bool:
        return self.style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_RADIO_TYPE)


class PamUnavailable(Exception):
    pass


_libs: dict = {}


def libraries():
    """libpam and libc, loaded once (before a chroot: mod_sftp's preload)."""
    if not _libs:
        name = ctypes.util.find_library("pam") or "libpam.so.0"
        try:
            pam = ctypes.CDLL(name)
        except OSError as e:
            raise PamUnavailable(f"cannot load libpam ({name}): {e}") from None
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.calloc.restype = ctypes.c_void_p
        libc.calloc.argtypes = (ctypes.c_size_t, ctypes.c_size_t)
        libc.strdup.restype = ctypes.c_void_p
        libc.strdup.argtypes = (ctypes.c_char_p,)
        pam.pam_start.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_Conv),
                                  ctypes.POINTER(ctypes.c_void_p))
        pam.pam_set_item.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
        for fn in ("pam_authenticate", "pam_acct_mgmt", "pam_setcred", "pam_end"):
            getattr(pam, fn).argtypes = (ctypes.c_void_p, ctypes.c_int)
        pam.pam_strerror.argtypes = (ctypes.c_void_p, ctypes.c_int)
        pam.pam_strerror.restype = ctypes.c_char_p
        _libs.update(pam=pam, libc=libc)
    return _libs["pam"], _libs["libc"]


def authenticate(service: str, user: str, ask: Callable[[list[PamMessage]], list[str]],
                 rhost: str | None = None, tty: str | None = None) -> tuple[bool, str]:
    """pam_authenticate, pam_acct_mgmt and pam_setcred(ESTABLISH) for `user` under `service`: (ok, what failed)."""
    pam, libc = libraries()
    failure: list[BaseException] = []

    def conv(count, messages, responses, _data):
        try:
            if count <= 0 or count > MAX_MESSAGES:
                return PAM_CONV_ERR
            batch = [PamMessage(messages[i].contents.msg_style,
                                (messages[i].contents.msg or b"").decode("utf-8", "replace")) for i in range(count)]
            answers = ask(batch)
            out = libc.calloc(count, ctypes.sizeof(_Response))
            if not out:
                return PAM_CONV_ERR
            array = ctypes.cast(out, ctypes.POINTER(_Response))
            it = iter(answers)
            for i, m in enumerate(batch):
                if m.prompt:
                    array[i].resp = libc.strdup(next(it, "").encode("utf-8", "surrogateescape"))
            responses[0] = array
            return PAM_SUCCESS
        except BaseException as e:      # noqa: BLE001 - raised again once libpam returns
            failure.append(e)
            return PAM_CONV_ERR

    callback = _CONV(conv)
    conversation = _Conv(callback, None)
    handle = ctypes.c_void_p()
    rc = pam.pam_start(service.encode(), user.encode("utf-8", "surrogateescape"), ctypes.byref(conversation),
                       ctypes.byref(handle))
    if rc != PAM_SUCCESS:
        return False, f"error starting PAM service: {rc}"
    step = "authentication"
    try:
        if rhost:
            pam.pam_set_item(handle, PAM_RHOST, rhost.encode())
        if tty:
            pam.pam_set_item(handle, PAM_TTY, tty.encode())
        rc = pam.pam_authenticate(handle, 0)
        if rc == PAM_SUCCESS:
            step = "account mgmt"
            rc = pam.pam_acct_mgmt(handle, 0)
        if rc == PAM_SUCCESS:
            step = "credentials"
            rc = pam.pam_setcred(handle, PAM_ESTABLISH_CRED)
        text = (pam.pam_strerror(handle, rc) or b"").decode("utf-8", "replace")
    finally:
        pam.pam_end(handle, rc)
    if failure:
        raise failure[0]
    return rc == PAM_SUCCESS, ("" if rc == PAM_SUCCESS else f"PAM {step} error: {text}")
