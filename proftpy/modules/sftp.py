"""mod_sftp: a server with `SFTPEngine on` speaks SSH version 2 from the first byte, never FTP, and serves the SFTP
subsystem (docs/sftp.md).

How it plugs in: its `transport` (run before every module's session_init) marks the session as SSH's: FTP replies
are dropped (ProFTPD's pr_response_block), the protocol is "ssh2", and `Session.command_loop` is `serve`, which
Session.run calls instead of the greeting and FTP's command loop (ProFTPD's pr_cmd_set_handler). `serve` runs the
transport (proftpy/net/ssh/transport.py), the user authentication (`sftp_auth.py`: password and publickey logins
go through mod_auth's USER and PASS, so the auth chain, bans, delays, MaxLoginAttempts, DefaultRoot's chroot and
the privilege drop are the FTP ones), then the connection layer (net/ssh/channel.py) with the `sftp` subsystem
(`sftp_fxp.py`).

Host keys are read in the master (master_init, again on HUP; `proftpy -t` checks them): a file that cannot be used
stops the start with `FILE:LINE: message`, as ProFTPD refuses it when the configuration is read; a key of a kind
proftpy does not use (DSA, one with a passphrase) is skipped with a warning, and a server left without
any key refuses its SSH sessions with an SFTPLog line. Sessions inherit the keys: no key file is read after fork.

Legacy scp (the exec request `scp -t`/`scp -f`) is sftp_scp.py; keyboard-interactive logins go through PAM
(mod_sftp_pam, sftp_pam.py); SFTPAuthMethods takes chains (`publickey+password`).

The key stores of SFTPAuthorizedUserKeys (publickey) and SFTPAuthorizedHostKeys (hostbased) are sftp_keystore.py,
the `sql:` one sftp_sql.py (mod_sftp_sql).

What is not done is refused when the configuration is read (docs/sftp.md lists it): the other exec commands and
channel requests are refused to clients, SFTPPassPhraseProvider, agent: host keys, the algorithms not implemented
here.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING

from .. import privs
from ..config.registry import SERVER, SVG, Directive, Merge
from ..config.types import Custom, Flag, Options, Path, bool_word, parse_bool
from ..module import Listener, MasterView, Module
from ..net.ssh import crypto, transport as sshtransport
from . import sftp_ext, sftp_keystore
from .sftp_state import (CHANNEL_SIZES, VERSION, HostKeySpec, SftpKeys, SftpState, build_keys,
                         channel_size, engine_servers, protocol_range, utf8_version)

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session

NAME = "mod_sftp.c"
log = logging.getLogger("proftpy")

# -- directive values ----------------------------------------------------------------------------------------------
NOT_HERE = {
    "ciphers": ("aes256-cbc", "aes192-cbc", "aes128-cbc", "blowfish-ctr", "blowfish-cbc", "cast128-cbc",
                "arcfour256", "arcfour128", "3des-ctr", "3des-cbc", "none"),
    "digests": ("hmac-sha1-96", "hmac-sha1-96-etm@openssh.com", "hmac-md5", "hmac-md5-etm@openssh.com",
                "hmac-md5-96", "hmac-md5-96-etm@openssh.com", "hmac-ripemd160", "umac-64@openssh.com",
                "umac-64-etm@openssh.com", "umac-128@openssh.com", "umac-128-etm@openssh.com", "none"),
    "kex": ("diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1",
            "curve448-sha512", "rsa1024-sha1", "sntrup761x25519-sha512@openssh.com"),
}


def _algorithms(kind: str, known, label: str):
    def parse(args: list[str]) -> tuple[str, ...]:
        if not args:
            raise ValueError("Wrong number of parameters")
        words = [w for arg in args for w in arg.split(",") if w]
        for word in words:
            if word not in known:
                if word in NOT_HERE.get(kind, ()):
                    raise ValueError(f"unsupported {label} algorithm: {word} (ProFTPD's mod_sftp has it; proftpy "
                                     f"does not implement it: use one of {', '.join(known)})")
                raise ValueError(f"unsupported {label} algorithm: {word}")
        return tuple(dict.fromkeys(words))
    return Custom(parse, "algorithm ...")


_CLEAR = {"norsa": "ssh-rsa", "nodsa": "dsa", "noecdsa": "ecdsa", "noed25519": "ssh-ed25519"}


def _host_key(args: list[str]) -> HostKeySpec:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    word = args[0]
    if word.lower() in _CLEAR:
        return HostKeySpec(None, _CLEAR[word.lower()])
    if word.startswith("agent:"):
        raise ValueError(f"'{word}': host keys from an SSH agent are not supported by proftpy (use a key file)")
    if not word.startswith("/"):
        raise ValueError(f"must be an absolute path: {word}")
    return HostKeySpec(word)


AUTH_METHODS = ("publickey", "password", "keyboard-interactive", "hostbased")


def _auth_methods(args: list[str]) -> tuple[tuple[str, ...], ...]:
    """The method chains a login may complete, each a tuple (`publickey+password`: both, in that order)."""
    if not args:
        raise ValueError("Wrong number of parameters")
    out = []
    for arg in args:
        chain = tuple(arg.split("+"))
        for method in chain:
            if method not in AUTH_METHODS:
                raise ValueError(f"unsupported authentication method '{method}': Invalid argument")
        if any(chain.count(m) > 1 for m in chain if m != "publickey"):     # two keys may be asked, not two passwords
            raise ValueError(f"unsupportable chain of authentication methods '{arg}': Invalid argument")
        out.append(chain)
    return tuple(dict.fromkeys(out))


def _compression(args: list[str]) -> str:
    """`off`, `on` (zlib right after the key exchange) or `delayed` (zlib@openssh.com, after authentication)."""
    if len(args) != 1:
        raise ValueError("Wrong number of parameters")
    if args[0].lower() == "delayed":
        return "delayed"
    value = parse_bool_or_none(args[0])
    if value is None:
        raise ValueError(f"unknown compression setting: {args[0]}")
    return "on" if value else "off"


def parse_bool_or_none(word: str) -> bool | None:
    try:
        return parse_bool(word)
    except ValueError:
        return None


def _max_channels(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("wrong number of parameters")
    if not args[0].isdigit():
        raise ValueError(f"maximum channel count '{args[0]}' must be numeric")
    value = int(args[0])
    if value == 0:
        raise ValueError(f"maximum channel count '{args[0]}' must be greater than zero")
    return min(value, 1000)


REKEY_DEFAULT = (3600, 2048 << 20, 0)     # ProFTPD's when SFTPRekey is not set: an hour, 2 GiB, no timeout


def _rekey(args: list[str]) -> tuple[int, int, int] | None:
    """`SFTPRekey none|required [interval [MB [timeout]]]`: (seconds, bytes, timeout seconds or 0), None for none."""
    if not 1 <= len(args) <= 4:
        raise ValueError("wrong number of parameters")
    if args[0].lower() == "none":
        return None
    if args[0].lower() != "required":
        raise ValueError("expected either 'none' or 'required'")
    interval, size, timeout = REKEY_DEFAULT
    if len(args) > 1:
        if not args[1].isdigit() or int(args[1]) == 0:
            raise ValueError(f"rekey interval '{args[1]}' must be greater than zero")
        interval = min(int(args[1]), 1 << 31)
    if len(args) > 2:
        if not args[2].isdigit():
            raise ValueError(f"rekey MB '{args[2]}' must be numeric")
        size = min(int(args[2]), 1 << 32) << 20
    if len(args) > 3:
        if not args[3].isdigit() or int(args[3]) == 0:
            raise ValueError(f"rekey timeout '{args[3]}' must be greater than zero")
        timeout = min(int(args[3]), 1 << 31)
    return interval, size, timeout


def _client_alive(args: list[str]) -> tuple[int, int] | None:
    """`SFTPClientAlive count interval`: (count, interval), None for an interval of 0 (no checks, as ProFTPD)."""
    if len(args) != 2:
        raise ValueError("wrong number of parameters")
    for word, what in zip(args, ("max count", "interval")):
        if not word.isdigit():
            raise ValueError(f"{what} '{word}' must be equal to or greater than zero")
    count, interval = int(args[0]), int(args[1])
    return (min(count, 1 << 31), min(interval, 1 << 31)) if interval else None


def _client_match(args: list[str]) -> tuple[str, ...]:
    if len(args) < 3 or (len(args) - 1) % 2:
        raise ValueError("Wrong number of parameters")
    try:
        re.compile(args[0])
    except re.error as e:
        raise ValueError(f"'{args[0]}' failed regex compilation: {e}") from None
    for key, value in zip(args[1::2], args[2::2]):
        if key == "sftpProtocolVersion":
            protocol_range(value)
        elif key in CHANNEL_SIZES:
            channel_size(key, value)
        elif key == "pessimisticNewkeys":
            if bool_word(value) is None:
                raise ValueError("expected Boolean parameter")
        elif key == "sftpUTF8ProtocolVersion":
            utf8_version(value)
        else:
            raise ValueError(f"unknown SFTPClientMatch key: '{key}'")
    return tuple(args)


# SFTPTrafficPolicy: ProFTPD tap.c's policies, (1 in N packets, least and most bytes of the IGNORE message)
TRAFFIC_POLICIES = {"low": (1000, 64, 256), "medium": (100, 32, 768), "high": (10, 16, 2048),
                    "paranoid": (1, 0, 8192), "rogaway": (1, 64, 256)}


def _traffic_policy(args: list[str]) -> tuple[int, int, int] | None:
    if len(args) != 1:
        raise ValueError("Wrong number of parameters")
    name = args[0].lower()
    if name != "none" and name not in TRAFFIC_POLICIES:
        raise ValueError(f"'{args[0]}' is not a recognized policy")
    return TRAFFIC_POLICIES.get(name)


def _key_blacklist(args: list[str]) -> str | None:
    """`SFTPKeyBlacklist none|path`: an existing absolute path, checked as ProFTPD does (the file's format is
    looked at when a key is checked: one that cannot be read refuses no key, with an SFTPLog line)."""
    if len(args) != 1:
        raise ValueError("Wrong number of parameters")
    path = args[0]
    if path.lower() == "none":
        return None
    if not path.startswith("/"):
        raise ValueError(f"path '{path}' not an absolute path")
    if not os.path.exists(path):
        raise ValueError(f"path '{path}' not found")
    return path


def _refused(what: str):
    def parse(args: list[str]):
        raise ValueError(what)
    return Custom(parse, "...")


SFTP_OPTIONS = ("IgnoreSFTPUploadPerms", "IgnoreSFTPSetOwners", "IgnoreSFTPSetPerms", "IgnoreSFTPSetTimes",
                "IgnoreSCPUploadPerms", "IgnoreSCPUploadTimes", "OldProtocolCompat", "PessimisticKexinit",
                "MatchKeySubject", "AllowInsecureLogin", "InsecureHostKeyPerms", "IgnoreFIFOs",
                "IgnoreSFTPUploadExtendedAttributes", "IgnoreSFTPSetExtendedAttributes", "IncludeSFTPTimes",
                "NoExtensionNegotiation", "NoHostkeyRotation")


def _sftp_options(args: list[str]) -> frozenset[str]:
    if "AllowWeakDH" in args:
        raise ValueError("SFTPOption 'AllowWeakDH': proftpy has no diffie-hellman-group1-sha1 to allow")
    return Options(SFTP_OPTIONS, "SFTPOption")(args)


HOSTKEY_ALGORITHMS = sshtransport.HOSTKEY_ORDER

directives = (
    Directive("SFTPEngine", Flag, SVG, False, Merge.SERVER,
              "The server speaks SSH (and SFTP) instead of FTP, from the first byte."),
    Directive("SFTPHostKey", Custom(_host_key, "path|NoRSA|NoED25519|NoECDSA|NoDSA"), SVG, None, Merge.SERVER,
              "A host key file (OpenSSH's format with an Ed25519, ECDSA or RSA key, or PEM/PKCS#8); it must not be "
              "group- or world-accessible. NoRSA... drop the keys of that type loaded by earlier lines.",
              repeat=True),
    Directive("SFTPHostKeys", _algorithms("hostkeys", HOSTKEY_ALGORITHMS, "host key"), SVG, None, Merge.SERVER,
              "Host key signature algorithms offered (default: all the loaded keys can make)."),
    Directive("SFTPAuthMethods", Custom(_auth_methods,
                                        "publickey|hostbased|password|keyboard-interactive[+method...] ..."),
              SVG, None, Merge.SERVER,
              "Authentication methods offered (default: publickey when SFTPAuthorizedUserKeys is set, hostbased "
              "when SFTPAuthorizedHostKeys is, keyboard-interactive when it has a driver (mod_sftp_pam's "
              "SFTPPAMEngine and AuthPAM on, or mod_auth_otp's AuthOTPEngine), password); `a+b` requires both, "
              "a then b."),
    Directive("SFTPAuthorizedUserKeys", Custom(sftp_keystore.parse_stores(sftp_keystore.USER),
                                               "file:path|ldap:|sql:/query ..."), SVG, None, Merge.SERVER,
              "Where the public keys users may log in with are: RFC 4716 files (`%u`: the user name, `~`: the "
              "user's home), `ldap:` the sshPublicKey values of the user's LDAP entry, `sql:/query` the values "
              "a SELECT SQLNamedQuery returns for `%{0}`, the user (mod_sftp_sql)."),
    Directive("SFTPAuthorizedHostKeys", Custom(sftp_keystore.parse_stores(sftp_keystore.HOST),
                                               "file:path|sql:/query ..."), SVG, None, Merge.SERVER,
              "Where the host keys of the client hosts whose users may log in by `hostbased` are: RFC 4716 files "
              "(`~`: the home of the user logging in), `sql:/query` the values a SELECT SQLNamedQuery returns for "
              "`%{0}`, the host name the client sent (mod_sftp_sql)."),
    Directive("SFTPLog", Path(none_ok=True), SVG, None, Merge.SERVER, "mod_sftp's own log file (`none`: none)."),
    Directive("SFTPCiphers", _algorithms("ciphers", tuple(crypto.CIPHERS), "cipher"), SVG, None, Merge.SERVER,
              "Ciphers offered, in order."),
    Directive("SFTPDigests", _algorithms("digests", tuple(crypto.MACS), "digest"), SVG, None, Merge.SERVER,
              "MACs offered, in order."),
    Directive("SFTPKeyExchanges", _algorithms("kex", sshtransport.KEX_DEFAULT, "key exchange"), SVG, None,
              Merge.SERVER, "Key exchange algorithms offered, in order."),
    Directive("SFTPOptions", Custom(_sftp_options, "|".join(SFTP_OPTIONS) + " ..."), SVG, frozenset(),
              Merge.SERVER, "mod_sftp's options (IgnoreSCPUploadPerms and IgnoreSCPUploadTimes act on scp uploads; "
              "IgnoreSFTPSetExtendedAttributes and IgnoreSFTPUploadExtendedAttributes on the extended attributes "
              "of SETSTAT and OPEN)."),
    Directive("SFTPCompression", Custom(_compression, "on|off|delayed"), SVG, "off", Merge.SERVER,
              "zlib compression: `on` offers zlib from the key exchange on, `delayed` also OpenSSH's "
              "zlib@openssh.com, which starts only after the client authenticated."),
    Directive("SFTPMaxChannels", Custom(_max_channels, "count"), SVG, 10, Merge.SERVER,
              "Channels a client may have open at once."),
    Directive("SFTPClientMatch", Custom(_client_match, "regex key value ..."), SVG, None, Merge.SERVER,
              "Per-client settings by the client's version text: sftpProtocolVersion (1 to 6) is used, the other "
              "keys are accepted and ignored (with a warning at start).",
              repeat=True),
    Directive("SFTPDisplayBanner", Path(), SVG, None, Merge.SERVER,
              "A file sent to the client before it authenticates (USERAUTH_BANNER), with Display variables."),
    Directive("SFTPPassPhraseProvider", _refused("SFTPPassPhraseProvider is not supported by proftpy: use host keys "
                                                 "without a passphrase (ssh-keygen -p -N '')"), SERVER, None,
              Merge.SERVER, "Refused: passphrase-protected host keys are not supported."),
    Directive("SFTPRekey", Custom(_rekey, "none|required [interval [MB [timeout]]]"), SVG, REKEY_DEFAULT,
              Merge.SERVER, "When the server asks a logged-in client for new keys: after `interval` seconds "
              "(3600), or `MB` MiB received or sent (2048), the client given `timeout` seconds to finish (no "
              "limit); `none`: never (a client's own rekey is always served)."),
    Directive("SFTPTrafficPolicy", Custom(_traffic_policy, "none|low|medium|high|paranoid|rogaway"), SVG, None,
              Merge.SERVER, "Traffic analysis protection: SSH IGNORE messages of random bytes before 1 in 1000 "
              "(low), 100 (medium), 10 (high) or every (paranoid, rogaway) packet sent, as ProFTPD's."),
    Directive("SFTPKeyBlacklist", Custom(_key_blacklist, "none|path"), SVG, None, Merge.SERVER,
              "A file of partial MD5 key fingerprints (Openwall's SSH-FP00, as Debian's /etc/proftpd/blacklist.dat "
              "of weak Debian OpenSSL keys): a user's or host's key listed there is refused."),
    Directive("SFTPClientAlive", Custom(_client_alive, "count interval"), SVG, None, Merge.SERVER,
              "After `interval` seconds without a word from an authenticated client, a keepalive@proftpd.org "
              "request wanting an answer; the client is disconnected when `count` of them went unanswered (an "
              "interval of 0: never)."),
    Directive("SFTPKeyLimits", _refused("SFTPKeyLimits is not supported by proftpy (RSA keys below 1024 bits are "
                                        "always refused)"), SVG, None, Merge.SERVER, "Refused."),
    Directive("SFTPCryptoDevice", _refused("SFTPCryptoDevice is not supported by proftpy"), SVG, None, Merge.SERVER,
              "Refused."),
    Directive("SFTPExtensions", Custom(sftp_ext.parse_extensions, "+name|-name ..."), SVG, None, Merge.SERVER,
              "SFTP extensions on (+) or off (-) from ProFTPD's default set (checkFile, copyFile, fsync, hardlink, "
              "homeDirectory, posixRename, spaceAvailable, statvfs, versionSelect; vendorID and xattr off)."),
    Directive("SFTPDHParamFile", Path(), SVG, None, Merge.SERVER,
              "Accepted; diffie-hellman-group-exchange-sha256 offers the RFC 3526 groups of 2048, 4096 and 8192 "
              "bits instead of the file's."),
    Directive("SFTPAcceptEnv", Custom(lambda a: tuple(a) if a else _none("wrong number of parameters"), "name ..."),
              SVG, None, Merge.SERVER, "Accepted; environment requests are never acted on (no program runs)."),
)


def _none(message: str):
    raise ValueError(message)


def _check_libraries(config: "Config") -> list[tuple[str, bool]]:
    if not engine_servers(config):
        return []
    return [(f"{VERSION}: {lib} is needed for SFTPEngine: {why}", True)
            for lib, why in crypto.available().items() if why is not None]


NEEDS_STORE = {"publickey": "SFTPAuthorizedUserKeys", "hostbased": "SFTPAuthorizedHostKeys"}


def _method_problems(config: "Config") -> list[tuple[str, bool]]:
    """A method SFTPAuthMethods names that could never succeed (publickey, hostbased without their keys): fatal, as
    ProFTPD's mod_sftp refuses to start."""
    problems = []
    for server in engine_servers(config):
        param = server.section.first("SFTPAuthMethods")
        where = param.where if param is not None else server.section.where or config.path
        for method in dict.fromkeys(m for chain in server.get("SFTPAuthMethods") or () for m in chain):
            if method in NEEDS_STORE and not server.get(NEEDS_STORE[method]):
                problems.append((f"{where}: {VERSION}: Server '{server.name}': cannot support authentication "
                                 f"method '{method}' without {NEEDS_STORE[method]} configuration", True))
    return problems


def check(config: "Config") -> list[tuple[str, bool]]:
    """`proftpy -t`: the libraries, the methods, every SFTP server's host keys, each as at start."""
    problems = _check_libraries(config)
    if problems or not engine_servers(config):
        return problems
    return _method_problems(config) + build_keys(config)[1]


def master_init(master: MasterView) -> None:
    if not engine_servers(master.config):
        return
    problems = _check_libraries(master.config)
    if problems:
        raise SystemExit(f"proftpy: {problems[0][0]}")
    st = master.state.get(SftpKeys)
    st.by_server, problems = build_keys(master.config)
    st.built = True
    problems = _method_problems(master.config) + problems
    fatal = [m for m, f in problems if f]
    if fatal:
        raise SystemExit(fatal[0])
    for message, _ in problems:
        log.warning("%s", message)


def master_reload(master: MasterView) -> None:
    """After a HUP: the keys read again; a server whose keys no longer load keeps the ones it had (matched by its
    name and addresses), as a broken configuration keeps the old one."""
    st = master.state.get(SftpKeys)
    old = {(s.name, tuple(s.addresses), s.get("Port")): keys for s, keys in st.by_server.items()}
    new, problems = build_keys(master.config)
    for message, fatal in _method_problems(master.config) + problems:
        (log.error if fatal else log.warning)("%s", message)
    for server, keys in list(new.items()):
        broken = any(fatal and str(p.where) in message for message, fatal in problems
                     for p in server.section.all("SFTPHostKey"))
        if broken:
            new[server] = old.get((server.name, tuple(server.addresses), server.get("Port")), keys)
    st.by_server, st.built = new, True


# -- the session ---------------------------------------------------------------------------------------------------
def session_active(config: "Config") -> bool:
    return config.sets("SFTPEngine")


def transport(session: "Session") -> None:
    """Before any other module's session_init: this connection speaks SSH (ProFTPD's mod_sftp: the replies of
    FTP are blocked, its own command loop replaces FTP's)."""
    if not session.server.get("SFTPEngine"):
        return
    session.responses_blocked = True
    session.command_loop = _serve
    st = session.state.get(SftpState)
    path = session.server.get("SFTPLog")
    if path:
        with privs.default_privs().as_root():
            st.log.open(path)
    session.set_protocol("ssh2")


def _serve(session: "Session") -> None:
    from .sftp_session import serve      # the SSH session itself: imported in the master (`preload`) where used
    serve(session)


def preload(master: MasterView) -> None:
    """Before the first fork: the SSH session's code and the libraries it calls, so sessions share them (and a
    chrooted session never imports anything)."""
    servers = engine_servers(master.config)
    if servers:
        from . import sftp_session  # noqa: F401
        crypto.sodium()
        crypto.libcrypto()
        if any(s.get("SFTPAuthMethods") is None or any("keyboard-interactive" in c for c in s.get("SFTPAuthMethods"))
               for s in servers):          # offered by default, as with ProFTPD's mod_sftp_pam
            from ..auth import pam_conv
            try:
                pam_conv.libraries()
            except pam_conv.PamUnavailable as e:
                log.warning("%s: keyboard-interactive has no driver: %s", VERSION, e)


def _refusal(reason: int, text: str):
    def listener(session: "Session", **_) -> None:
        if session.command_loop is not None:
            session.state.get(SftpState).disconnect = (reason, text)
    return listener


def _exit(session: "Session", **_) -> None:
    if session.command_loop is not None:
        session.state.get(SftpState).log.close()


TOO_MANY = 12
_MAX = _refusal(TOO_MANY, "Maximum connections for host/user reached")
listeners = tuple(Listener(event, _MAX, active=session_active) for event in (
    "mod_auth.max-clients", "mod_auth.max-clients-per-class", "mod_auth.max-clients-per-host",
    "mod_auth.max-clients-per-user", "mod_auth.max-connections-per-host", "mod_auth.max-hosts-per-user")) + (
    Listener("mod_ban.login-denied", _refusal(sshtransport.BY_APPLICATION, "Banned"), active=session_active),
    Listener("core.exit", _exit, active=session_active),
)

MODULE = Module(NAME, directives=directives, transport=transport, session_active=session_active,
                listeners=listeners, check=check, master_init=master_init, master_reload=master_reload,
                master_preload=preload)
