"""mod_sftp's state shared by its files: the host keys the master reads for each server (sessions inherit
them), the session's SSH state and SFTPLog."""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import privs
from ..net.ssh import crypto, keys as sshkeys
from .modlog import ModuleLog

if TYPE_CHECKING:
    from ..config.tree import Config, Server
    from ..session import Session

VERSION = "mod_sftp/1.1.1"
log = logging.getLogger("proftpy")


@dataclass(frozen=True)
class HostKeySpec:
    """One SFTPHostKey line: a file, or a word that drops the keys of a type loaded by earlier lines."""

    path: str | None
    clear: str | None = None        # "ssh-rsa", "ssh-ed25519", "ecdsa", "dsa": NoRSA, NoED25519, NoECDSA, NoDSA


# -- host keys (master) --------------------------------------------------------------------------------------------
@dataclass
class SftpKeys:
    """The master's host keys by server; sessions inherit them (as `session.shared`)."""

    by_server: dict = field(default_factory=dict)       # Server -> [HostKey]
    built: bool = False


def engine_servers(config: "Config") -> list["Server"]:
    return [s for s in config.servers if s.get("SFTPEngine")]


def _load_server_keys(server: "Server") -> tuple[list[sshkeys.HostKey], list[tuple[str, bool]]]:
    """The server's usable host keys and the problems found: (message, fatal). A file that cannot be read, has
    open permissions (without SFTPOptions InsecureHostKeyPerms) or does not parse is fatal, as ProFTPD refuses its
    configuration; a key of a kind not used here is a warning, and the key is skipped."""
    loaded: list[sshkeys.HostKey] = []
    problems: list[tuple[str, bool]] = []
    insecure_ok = "InsecureHostKeyPerms" in server.get("SFTPOptions")
    p = privs.default_privs()
    for param in server.section.all("SFTPHostKey"):
        spec: HostKeySpec = param.value
        if spec.clear is not None:
            loaded = [k for k in loaded if not k.kind.startswith(spec.clear)]
            continue
        path = spec.path
        try:
            with p.as_root():
                st = os.stat(path)
                if st.st_mode & 0o077 and not insecure_ok:
                    problems.append((f"{param.where}: unable to use '{path}' as host key, as it is group- or "
                                     "world-accessible", True))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    problems.append((f"{param.where}: unable to use '{path}' as host key: not a regular file", True))
                    continue
                key = sshkeys.load_host_key(path)
        except OSError as e:
            problems.append((f"{param.where}: unable to check '{path}': {e.strerror or e}", True))
            continue
        except sshkeys.UnsupportedKey as e:
            problems.append((f"{param.where}: {VERSION}: skipping host key '{path}': {e}", False))
            continue
        except sshkeys.KeyFileError as e:
            problems.append((f"{param.where}: unable to use '{path}' as host key: {e}", True))
            continue
        except crypto.CryptoUnavailable as e:
            problems.append((f"{param.where}: unable to use '{path}' as host key: {e}", True))
            continue
        if st.st_mode & 0o077:
            problems.append((f"{param.where}: {VERSION}: unable to use '{path}' as host key, as it is group- or "
                             "world-accessible (used: SFTPOptions InsecureHostKeyPerms)", False))
        loaded = [k for k in loaded if k.kind != key.kind] + [key]      # one key of each type, as ProFTPD
    return loaded, problems


def build_keys(config: "Config") -> tuple[dict, list[tuple[str, bool]]]:
    by_server, problems = {}, []
    for server in engine_servers(config):
        keys, found = _load_server_keys(server)
        problems += found
        if not keys and not any(fatal for _, fatal in found):
            where = server.section.where or config.path
            problems.append((f"{where}: {VERSION}: no usable host key (SFTPHostKey) for server "
                             f"'{server.name}': its SSH sessions will be refused", False))
        by_server[server] = keys
        for p in server.section.all("SFTPClientMatch"):
            problems += _client_match_problems(p)
    return by_server, problems


SERVED = (1, 6)                 # the SFTP versions proftpy serves, as ProFTPD's mod_sftp


def protocol_range(text: str) -> tuple[int, int]:
    """SFTPClientMatch's `sftpProtocolVersion` value, "3" or "3-6", as ProFTPD reads it (1 to 6); ValueError
    with ProFTPD's message."""
    low, dash, high = text.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise ValueError(f"badly formatted 'sftpProtocolVersion' value: {text}")
    versions = (int(low), int(high) if dash else int(low))
    if not all(1 <= v <= 6 for v in versions):
        raise ValueError(f"'sftpProtocolVersion' value {text} must be between 1 and 6")
    return versions


_SIZE = re.compile(r"(\d+)(GB|MB|KB|B)?", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
CHANNEL_SIZES = {"channelWindowSize": 0xFFFFFFFF, "channelPacketSize": 256 * 1024}     # the largest each may be


def channel_size(key: str, text: str) -> int:
    """SFTPClientMatch's channelWindowSize or channelPacketSize: bytes with ProFTPD's optional unit (`B`, `KB`,
    `MB`, `GB`, powers of 1024); ValueError with ProFTPD's message, or ours for 0 (a channel that could never
    carry a byte) and more than proftpy takes (a window past 2^32-1, a packet past the transport's 256 KiB)."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"error parsing '{key}' value {text}: Invalid argument")
    value = int(m.group(1)) * _UNITS[(m.group(2) or "").upper()]
    if not 0 < value <= CHANNEL_SIZES[key]:
        raise ValueError(f"'{key}' value {text} must be between 1 byte and {CHANNEL_SIZES[key]} bytes")
    return value


def utf8_version(text: str) -> int:
    """SFTPClientMatch's sftpUTF8ProtocolVersion (1 to 6), with ProFTPD's messages."""
    if not text.isdigit():
        raise ValueError(f"badly formatted 'sftpUTF8ProtocolVersion' value: {text}")
    if not 1 <= int(text) <= 6:
        raise ValueError(f"'sftpUTF8ProtocolVersion' value {text}")
    return int(text)


def _client_match_problems(param) -> list[tuple[str, bool]]:
    """SFTPClientMatch: its keys are checked when the line is read; sftpUTF8ProtocolVersion is accepted and
    ignored, with a warning that says why."""
    if "sftpUTF8ProtocolVersion" not in param.value[1::2]:
        return []
    return [(f"{param.where}: {VERSION}: SFTPClientMatch sftpUTF8ProtocolVersion: accepted but ignored: SFTP paths "
             "are UTF-8 in every version (as ProFTPD's on a UTF-8 system)", False)]


def client_match(session: "Session") -> dict[str, str]:
    """The SFTPClientMatch keys for this client: those of every line whose pattern the client's version text
    (after `SSH-2.0-`) matches, a later line's overriding an earlier one's, as ProFTPD applies them."""
    found: dict[str, str] = {}
    banner = session.notes.get("SFTP_CLIENT_BANNER") or ""
    for param in session.server.section.all("SFTPClientMatch"):
        args = param.value
        if re.search(args[0], banner):
            found.update(zip(args[1::2], args[2::2]))
    return found


def served_range(session: "Session") -> tuple[int, int]:
    """The SFTP versions this client may use (SFTPClientMatch's sftpProtocolVersion, else 1 to 6)."""
    version = client_match(session).get("sftpProtocolVersion")
    return protocol_range(version) if version is not None else SERVED


def host_keys(session: "Session") -> list[sshkeys.HostKey]:
    st = session.shared.get(SftpKeys)
    if not st.built:                    # inetd mode: no master read them
        st.by_server, problems = build_keys(session.config)
        st.built = True
        for message, fatal in problems:
            (log.error if fatal else log.warning)("%s", message)
    return st.by_server.get(session.server.base, st.by_server.get(session.server, []))


Keys = list[tuple[bytes, "str | None"]]     # a key store's keys: (key blob, its RFC 4716 Subject header or None)


@dataclass(frozen=True)
class Lookup:
    """What a store is asked about: the user logging in and, for a host key, the host the client named."""

    user: str
    host: str | None = None
    directive: str = "SFTPAuthorizedUserKeys"


@dataclass
class SftpState:
    """One SSH session's state."""

    log: ModuleLog = field(default_factory=lambda: ModuleLog(VERSION))
    disconnect: tuple[int, str] | None = None      # what a module's refusal says in SSH_MSG_DISCONNECT
