"""SSH's transport layer, the server's side (RFC 4253): the version exchange, binary packets with their sequence
numbers and protection, the key exchange and rekeying.

Every length a client sends is bounded before anything is allocated for it: a version line of at most 255 bytes, a
packet of at most 256 KiB (ProFTPD's mod_sftp's SFTP_MAX_PACKET_LEN), a length that is not a multiple of the
cipher's block, padding under 4 bytes or past the packet, a MAC that does not match, a message the state does not
allow: `Disconnect`, which the caller answers with SSH_MSG_DISCONNECT (when the keys still allow it) and a log line.

The transport blocks only in `wait` (the session's: it waits for the socket with the session's timers and the
master's channel, and raises `Closed` once the session ends) and in sendall (the socket's send timeout,
TimeoutIdle). Keys are exchanged synchronously: when a KEXINIT arrives (the client's at the start, or a rekey),
`next_message` runs the whole exchange before it returns the next message of the layers above, so nothing of
theirs is sent meanwhile. A rekey the server asks for (`request_rekey`: SFTPRekey's interval, or `rekey_size`
bytes received or sent since the last exchange, as ProFTPD counts them) sends our KEXINIT at once; until the
client's KEXINIT comes its messages are served as usual, and from our KEXINIT to our NEWKEYS whatever the layers
above send waits (`_held`, RFC 4253 section 7.1), then goes out under the new keys.

Key exchanges: curve25519-sha256 (and @libssh.org), ecdh-sha2-nistp256/384/521 (libcrypto),
diffie-hellman-group14-sha256, -group16-sha512, -group18-sha512, diffie-hellman-group-exchange-sha256 (RFC 4419,
over those fixed groups). Host keys:
ssh-ed25519, ecdsa-sha2-nistp256/384/521, rsa-sha2-512, rsa-sha2-256, ssh-rsa. Ciphers and MACs: crypto.CIPHERS,
crypto.MACS. OpenSSH's strict key exchange (kex-strict-s-v00@openssh.com, the Terrapin fix) when the client asks
for it, and RFC 8308's EXT_INFO with server-sig-algs after the first NEWKEYS when the client sent ext-info-c."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import struct
import zlib
from dataclasses import dataclass, field
from typing import Callable

from . import crypto
from .keys import HostKey
from .wire import Reader, WireError, Writer, mpint

# message numbers
DISCONNECT, IGNORE, UNIMPLEMENTED, DEBUG, SERVICE_REQUEST, SERVICE_ACCEPT, EXT_INFO = 1, 2, 3, 4, 5, 6, 7
KEXINIT, NEWKEYS, KEXDH_INIT, KEXDH_REPLY = 20, 21, 30, 31
GEX_GROUP, GEX_INIT, GEX_REPLY, GEX_REQUEST = 31, 32, 33, 34     # RFC 4419

# disconnect reasons
PROTOCOL_ERROR, KEY_EXCHANGE_FAILED, MAC_ERROR, SERVICE_NOT_AVAILABLE = 2, 3, 5, 7
PROTOCOL_VERSION_NOT_SUPPORTED, BY_APPLICATION, NO_MORE_AUTH_METHODS, ILLEGAL_USER_NAME = 8, 11, 14, 15

MAX_PACKET = 256 * 1024             # ProFTPD's SFTP_MAX_PACKET_LEN
MAX_VERSION_LINE = 255              # RFC 4253 section 4.2, with its CR LF
MAX_HELD = 4 * 1024 * 1024          # bytes of messages held back during a rekey of ours (then the client is dropped)
MAX_PACKETS_PER_KEY = 1 << 31       # then the keys must have been renewed (OpenSSH rekeys before this; a client that
                                    # does not is disconnected: a nonce or IV must never come round again)
STRICT_C, STRICT_S = "kex-strict-c-v00@openssh.com", "kex-strict-s-v00@openssh.com"
EXT_INFO_C, EXT_INFO_S = "ext-info-c", "ext-info-s"
_U32 = struct.Struct(">I")

GEX = "diffie-hellman-group-exchange-sha256"
KEX_DEFAULT = ("curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp521", "ecdh-sha2-nistp384",
               "ecdh-sha2-nistp256", "diffie-hellman-group18-sha512", "diffie-hellman-group16-sha512",
               "diffie-hellman-group14-sha256", GEX)
KEX_ALL = frozenset(KEX_DEFAULT)
CIPHER_DEFAULT = ("chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr",
                  "aes256-gcm@openssh.com", "aes128-gcm@openssh.com")
MAC_DEFAULT = ("hmac-sha2-256", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512", "hmac-sha2-512-etm@openssh.com",
               "hmac-sha1", "hmac-sha1-etm@openssh.com")
HOSTKEY_ORDER = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512",
                 "rsa-sha2-256", "ssh-rsa")
SERVER_SIG_ALGS = ("ssh-ed25519,rsa-sha2-256,rsa-sha2-512,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
                   "ssh-rsa")
KEX_NAMES = {KEXINIT: "KEXINIT", NEWKEYS: "NEWKEYS", KEXDH_INIT: "KEXDH_INIT", GEX_INIT: "KEX_DH_GEX_INIT",
             GEX_REQUEST: "KEX_DH_GEX_REQUEST"}

Note = Callable[[str, str], None]      # an SSH message handled: its name and argument as ProFTPD's mod_sftp logs them


class Disconnect(Exception):
    """The connection ends: `reason` (a disconnect reason code) and `description` go to the client, `log` (when
    set) to the SFTPLog."""

    def __init__(self, reason: int, description: str, log: str | None = None):
        super().__init__(description)
        self.reason, self.description, self.log = reason, description, log


class Closed(Exception):
    """The client went away, or the session ended (a timeout, a module): nothing more can be said."""


@dataclass
class Settings:
    """What one server offers (mod_sftp makes it from SFTPKeyExchanges, SFTPCiphers, SFTPDigests, SFTPOptions and
    ServerIdent)."""

    version: str = "SSH-2.0-mod_sftp"
    kex: tuple[str, ...] = KEX_DEFAULT
    ciphers: tuple[str, ...] = CIPHER_DEFAULT
    macs: tuple[str, ...] = MAC_DEFAULT
    pessimistic: bool = False           # SFTPOptions PessimisticKexinit: our KEXINIT only after the client's version
    old_protocol: bool = False          # SFTPOptions OldProtocolCompat: accept "SSH-1.99-" clients
    ext_info: bool = True               # off: SFTPOptions NoExtensionNegotiation
    compression: tuple[str, ...] = ("none",)
    chaff: tuple[int, int, int] | None = None   # SFTPTrafficPolicy: (1 in N, min, max bytes) of IGNORE messages


@dataclass
class Negotiated:
    kex: str = ""
    hostkey: str = ""
    cipher_in: str = "none"
    cipher_out: str = "none"
    mac_in: str = "none"
    mac_out: str = "none"
    comp_in: str = "none"
    comp_out: str = "none"


@dataclass
class _Kex:
    """One key exchange in progress."""

    ours: bytes = b""                   # our KEXINIT payload (I_S)
    theirs: bytes = b""                 # the client's (I_C)
    algorithms: Negotiated = field(default_factory=Negotiated)
    skip_guess: bool = False            # the client guessed a wrong first kex packet: ignore it
    gex: tuple[int, int, int, int] | None = None   # group exchange: the client's min, n, max and the prime sent


class Transport:
    """The server's end of one SSH connection."""

    def __init__(self, sock: socket.socket, settings: Settings, host_keys: list[HostKey],
                 wait: Callable[[], None], log: Callable[[str], None], on_packet: Callable[[], None] = lambda: None):
        self.sock = sock
        self.settings = settings
        self.host_keys = {alg: key for key in host_keys for alg in key.algorithms}
        self.wait = wait                # blocks until the socket is readable; raises Closed when the session ends
        self.log = log                  # a line in the SFTPLog
        self.on_packet = on_packet      # each packet received (the session's idle timer)
        self.note: Note | None = None   # set when an ExtendedLog takes the SSH messages' lines
        self.rekey_size = 0             # SFTPRekey: bytes each way after which we ask for new keys (0: never)
        self.rekey_in = self.rekey_out = 0      # packet lengths received and sent since the last key exchange
        self.on_rekey_sent: Callable[[], None] | None = None   # our KEXINIT of a rekey went out
        self.on_rekeyed: Callable[[], None] | None = None      # a key exchange after the first one completed
        self.user_ok = False            # the client has authenticated (no rekey of ours before: ProFTPD's Bug#4254)
        self._held: list[bytes] = []    # messages of the layers above during our rekey, sent after our NEWKEYS
        self._held_bytes = 0
        self._holding = False
        self._ext_info_sent = False
        self.pessimistic_newkeys = False    # SFTPClientMatch pessimisticNewkeys: our NEWKEYS after the client's
        self._newkeys_out: tuple | None = None  # (keys, negotiated) of the NEWKEYS we wait to send
        self._buf = bytearray()
        self.sealer: crypto.Sealer = crypto.Sealer()
        self.opener: crypto.Opener = crypto.Opener()
        self.send_seq = self.recv_seq = 0
        self.client_version = ""
        self.session_id: bytes | None = None
        self.negotiated = Negotiated()
        self.strict = False
        self.ext_info_c = False         # the client takes EXT_INFO
        self._kex: _Kex | None = None
        self.kex_count = 0
        self.bytes_in = self.bytes_out = 0
        self.packets_in = self.packets_out = 0      # since the keys in use were made
        self.closed = False
        self._deflate: "zlib._Compress | None" = None      # zlib: outgoing payloads compressed
        self._inflate: "zlib._Decompress | None" = None    # zlib: incoming payloads decompressed

    # -- version exchange ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Send our version (and, unless PessimisticKexinit, our KEXINIT at once), read the client's."""
        self._send_raw(self.settings.version.encode("ascii", "replace") + b"\r\n")
        if not self.settings.pessimistic:
            self.send_kexinit()
        self.client_version = self._read_version()
        self.log(f"received client version '{self.client_version}'")
        if self.settings.pessimistic:
            self.send_kexinit()

    def _read_version(self) -> str:
        """The client's version line, read byte by byte: what follows it (the client's KEXINIT) stays unread."""
        line = bytearray()
        while True:
            while not self._buf:
                self._fill()
            nl = self._buf.find(b"\n")
            take = len(self._buf) if nl < 0 else nl + 1
            take = min(take, MAX_VERSION_LINE + 1 - len(line))
            line += self._buf[:take]
            del self._buf[:take]
            if line.endswith(b"\n"):
                break
            if len(line) > MAX_VERSION_LINE:
                self._mismatch(bytes(line))
        text = bytes(line).rstrip(b"\r\n").replace(b"\r", b"")
        ok = text.startswith(b"SSH-2.0-") and len(text) > 8
        if not ok and self.settings.old_protocol and text.startswith(b"SSH-1.99-") and len(text) > 9:
            ok = True
        if not ok or b"\0" in text:
            self._mismatch(text)
        return text.decode("utf-8", "replace")

    def _mismatch(self, text: bytes) -> None:
        shown = text[:100].decode("utf-8", "replace").rstrip("\r\n")
        self.log(f"Bad protocol version '{shown}' from the client")
        try:
            self.sock.sendall(b"Protocol mismatch.\n")
        except OSError:
            pass                        # the client is gone already
        raise Closed("protocol mismatch")

    # -- packets ---------------------------------------------------------------------------------------------------
    def _fill(self) -> None:
        """More bytes from the client (at least one), waiting through the session's `wait`."""
        self.wait()
        try:
            chunk = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            raise Closed(f"read error: {e.strerror or e}") from None
        if not chunk:
            raise Closed("client closed the connection")
        self._buf += chunk

    @property
    def holding(self) -> bool:
        """Our KEXINIT of a rekey went out and our NEWKEYS not yet: the layers above had better wait."""
        return self._holding

    @property
    def rekeying(self) -> bool:
        """A key exchange after the first is under way."""
        return self._kex is not None and self.session_id is not None

    @property
    def buffered(self) -> bool:
        """Bytes of the client's are read and not yet taken: the next message needs no wait to begin."""
        return bool(self._buf)

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def read_packet(self) -> bytes:
        """The next packet's payload, checked and authenticated."""
        op = self.opener
        seq = self.recv_seq
        head = self._read(op.head)
        length = op.length(head, seq)
        if length < 5:
            raise self._bad(f"packet length too short ({length}), less than minimum packet length (5)")
        if length > MAX_PACKET:
            raise self._bad(f"packet length too long ({length}), exceeds maximum packet length ({MAX_PACKET})")
        covered = length + (4 if op.length_in_padding else 0)
        if covered % op.block != 0 or length + 4 < op.head:
            raise self._bad(f"packet length ({covered}) not a multiple of the required block size ({op.block})")
        rest = self._read(4 + length - op.head + op.mac_len)
        try:
            packet = op.open(rest, seq)
        except crypto.BadMac:
            raise Disconnect(MAC_ERROR, "MAC error", "unable to verify MAC (bad packet), disconnecting") from None
        pad = packet[4]
        if pad < 4:
            raise self._bad(f"padding length too short ({pad}), less than minimum padding length (4)")
        if pad + 1 >= length:
            raise self._bad(f"padding length too long ({pad}), exceeds packet length ({length})")
        self.recv_seq = (seq + 1) & 0xFFFFFFFF
        self.packets_in += 1
        if self.packets_in > MAX_PACKETS_PER_KEY:
            raise Disconnect(PROTOCOL_ERROR, "rekey required", f"{self.packets_in} packets received without a key "
                             "exchange, disconnecting")
        self.bytes_in += 4 + length
        if self.rekey_size:
            self.rekey_in += length
            if self.rekey_in >= self.rekey_size and self._kex is None:
                self.log(f"client packet bytes ({self.rekey_in}) reached rekey bytes limit ({self.rekey_size}), "
                         "requesting rekey")
                self.request_rekey()
        self.on_packet()
        payload = packet[5:4 + length - pad]
        if self._inflate is not None:
            try:
                payload = self._inflate.decompress(payload, MAX_PACKET)
            except zlib.error as e:
                raise Disconnect(PROTOCOL_ERROR, "bad compressed data", f"unable to decompress packet: {e}") from None
            if self._inflate.unconsumed_tail:
                raise Disconnect(PROTOCOL_ERROR, "packet too large", "decompressed packet exceeds maximum packet "
                                 f"length ({MAX_PACKET})")
            if not payload:
                raise self._bad("empty payload after decompression")
        return payload

    @staticmethod
    def _bad(message: str) -> Disconnect:
        return Disconnect(PROTOCOL_ERROR, "bad packet", message)

    def send(self, payload: bytes) -> None:
        """One message (its payload); under SFTPTrafficPolicy, once the keys are in use and outside a key exchange,
        an IGNORE message of random bytes goes before it by the policy's chance (ProFTPD's tap.c)."""
        kind = payload[0]
        chaff = self.settings.chaff
        if chaff is not None and kind > 49 and self.kex_count and self._kex is None and not self._holding \
                and random.randrange(chaff[0]) == 0:
            noise = os.urandom(chaff[1] + random.randrange(chaff[2] - chaff[1]))
            self._send_message(Writer().byte(IGNORE).string(noise).bytes())
        self._send_message(payload)

    def _send_message(self, payload: bytes) -> None:
        sealer = self.sealer
        kind = payload[0]
        if self._holding and not (KEXINIT <= kind <= 49 or kind in (DISCONNECT, IGNORE, DEBUG)):
            self._held.append(payload)
            self._held_bytes += len(payload)
            if self._held_bytes > MAX_HELD:
                raise Disconnect(KEY_EXCHANGE_FAILED, "Key exchange failed", f"more than {MAX_HELD} bytes waiting "
                                 "for the client to finish the key exchange, disconnecting")
            return
        if self._deflate is not None:
            payload = self._deflate.compress(payload) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        packet = crypto.padded(payload, sealer.block, sealer.length_in_padding)
        data = sealer.seal(packet, self.send_seq)
        self.send_seq = (self.send_seq + 1) & 0xFFFFFFFF
        self.packets_out += 1
        if self.packets_out > MAX_PACKETS_PER_KEY and kind > 49:
            raise Disconnect(PROTOCOL_ERROR, "rekey required", f"{self.packets_out} packets sent without a key "
                             "exchange, disconnecting")
        self.bytes_out += len(packet)
        self._send_raw(data)
        if self.rekey_size:
            self.rekey_out += len(packet) - 4
            if self.rekey_out >= self.rekey_size and self._kex is None:
                self.log(f"server packet bytes ({self.rekey_out}) reached rekey bytes limit ({self.rekey_size}), "
                         "requesting rekey")
                self.request_rekey()

    def request_rekey(self) -> bool:
        """Ask the client for new keys (our KEXINIT), unless an exchange runs or the client has not logged in."""
        if self._kex is not None or self.session_id is None or not self.user_ok or self.closed:
            return False
        self.send_kexinit()
        if self.on_rekey_sent is not None:
            self.on_rekey_sent()
        return True

    def _send_raw(self, data: bytes) -> None:
        if self.closed:
            raise Closed("connection closed")
        try:
            self.sock.sendall(data)
        except TimeoutError:
            self.closed = True
            raise Closed("the client read nothing for the send timeout (TimeoutIdle)") from None
        except OSError as e:
            self.closed = True
            raise Closed(f"write error: {e.strerror or e}") from None

    def disconnect(self, reason: int, description: str) -> None:
        """SSH_MSG_DISCONNECT, if anything can still be sent."""
        if self.closed:
            return
        try:
            self.send(Writer().byte(DISCONNECT).u32(reason).string(description).string(b"").bytes())
        except (Closed, OSError):
            pass                        # the client is gone: nothing more to tell it
        self.closed = True

    # -- messages --------------------------------------------------------------------------------------------------
    def authenticated(self) -> None:
        """USERAUTH_SUCCESS was sent: zlib@openssh.com compression starts now, both ways (OpenSSH's "delayed"
        compression: nothing an unauthenticated client sends is ever decompressed)."""
        self.user_ok = True
        if self.negotiated.comp_out == "zlib@openssh.com" and self._deflate is None:
            self._deflate = zlib.compressobj()
        if self.negotiated.comp_in == "zlib@openssh.com" and self._inflate is None:
            self._inflate = zlib.decompressobj()

    @property
    def authenticated_keys(self) -> bool:
        """The first key exchange is done: the layers above may talk."""
        return self.session_id is not None and self._kex is None

    def next_message(self) -> tuple[int, bytes]:
        """The next message for the layers above (user authentication, connection), after handling the
        transport's own: IGNORE, DEBUG, UNIMPLEMENTED, DISCONNECT and key exchanges."""
        while True:
            payload = self.read_packet()
            kind = payload[0]
            if self._kex is not None or self.session_id is None:
                if self._in_kex(kind, payload):
                    if kind == NEWKEYS and self.user_ok:
                        return kind, payload    # a rekey after login is over: the channels' work goes on
                    continue
            if kind == KEXINIT:
                self.send_kexinit()
                self._in_kex(kind, payload)
                continue
            if kind in (IGNORE, DEBUG, UNIMPLEMENTED):
                continue
            if kind == DISCONNECT:
                self._peer_disconnect(payload)
            return kind, payload

    def _peer_disconnect(self, payload: bytes) -> None:
        try:
            r = Reader(payload, 1)
            code, text = r.u32(), r.text(1024)
        except WireError:
            code, text = 0, ""
        self.closed = True
        self.log(f"client sent DISCONNECT message: {text} (reason {code})" if text
                 else f"client sent DISCONNECT message (reason {code})")
        raise Closed("client disconnected")

    def _in_kex(self, kind: int, payload: bytes) -> bool:
        """Handle a message while keys are (first) exchanged: True when it was the exchange's."""
        first = self.session_id is None
        if kind == KEXINIT:
            if self._kex is not None and self._kex.theirs:
                raise Disconnect(PROTOCOL_ERROR, "unexpected KEXINIT", "client sent a second KEXINIT during a key "
                                 "exchange, disconnecting")
            if first and self.recv_seq != 1 and self._client_strict(payload):
                raise Disconnect(PROTOCOL_ERROR, "strict KEX violation", "strict KEX: KEXINIT was not the first "
                                 "packet, disconnecting")
            self._receive_kexinit(payload)
            return True
        if kind in (KEXDH_INIT, NEWKEYS, GEX_INIT, GEX_REQUEST):
            if self._kex is None or not self._kex.theirs:
                raise Disconnect(PROTOCOL_ERROR, "unexpected key exchange message",
                                 f"client sent {KEX_NAMES[kind]} before KEXINIT, disconnecting")
            if self._kex.skip_guess and kind in (KEXDH_INIT, GEX_REQUEST):
                self._kex.skip_guess = False
                return True
            gex = self._kex.algorithms.kex == GEX
            if kind == NEWKEYS:
                self._newkeys()
            elif kind == GEX_REQUEST and gex and self._kex.gex is None:
                self._gex_request(payload)
            elif (kind == KEXDH_INIT and not gex) or (kind == GEX_INIT and gex and self._kex.gex is not None):
                self._kexdh_init(payload)
            else:
                raise Disconnect(PROTOCOL_ERROR, "unexpected key exchange message",
                                 f"client sent {KEX_NAMES[kind]} out of turn for {self._kex.algorithms.kex}, "
                                 "disconnecting")
            return True
        if first and (self.strict or kind not in (IGNORE, DEBUG, UNIMPLEMENTED, DISCONNECT)):
            if kind == DISCONNECT:
                self._peer_disconnect(payload)
            raise Disconnect(PROTOCOL_ERROR, "unexpected message before key exchange",
                             f"client sent message type {kind} before keys were exchanged, disconnecting")
        if not first and self._kex is not None and not self._kex.theirs:
            return False                # our rekey, the client's KEXINIT still to come: its messages are served
        if not first and not 1 <= kind <= 49:
            raise Disconnect(PROTOCOL_ERROR, "unexpected message during key exchange",
                             f"client sent message type {kind} during a key exchange, disconnecting")
        if kind in (SERVICE_REQUEST, SERVICE_ACCEPT):
            raise Disconnect(PROTOCOL_ERROR, "unexpected message during key exchange",
                             f"client sent message type {kind} during a key exchange, disconnecting")
        return False

    # -- key exchange ----------------------------------------------------------------------------------------------
    def _hostkey_algorithms(self) -> list[str]:
        return [alg for alg in HOSTKEY_ORDER if alg in self.host_keys]

    def send_kexinit(self) -> None:
        if self._kex is not None and self._kex.ours:
            return
        kex_names = list(self.settings.kex)
        if self.session_id is None:
            if self.settings.ext_info:
                kex_names.append(EXT_INFO_S)
            kex_names.append(STRICT_S)
        w = Writer().byte(KEXINIT).raw(os.urandom(16))
        w.name_list(kex_names).name_list(self._hostkey_algorithms())
        w.name_list(self.settings.ciphers).name_list(self.settings.ciphers)
        w.name_list(self.settings.macs).name_list(self.settings.macs)
        w.name_list(self.settings.compression).name_list(self.settings.compression)
        w.name_list([]).name_list([]).boolean(False).u32(0)
        if self._kex is None:
            self._kex = _Kex()
        self._kex.ours = w.bytes()
        self.send(self._kex.ours)
        self._holding = self.session_id is not None     # a rekey: nothing but its messages until our NEWKEYS

    @staticmethod
    def _client_strict(payload: bytes) -> bool:
        try:
            r = Reader(payload, 17)
            return STRICT_C in r.name_list(65536)
        except WireError:
            return False

    def _receive_kexinit(self, payload: bytes) -> None:
        if self._kex is None or not self._kex.ours:
            self.send_kexinit()
        kex = self._kex
        assert kex is not None
        kex.theirs = payload
        try:
            r = Reader(payload, 17)
            lists = [r.name_list(65536) for _ in range(10)]
            follows = r.boolean()
            r.u32()
        except WireError as e:
            raise Disconnect(PROTOCOL_ERROR, "bad KEXINIT", f"unable to read client KEXINIT: {e}") from None
        c_kex, c_hostkey, c_enc_cs, c_enc_sc, c_mac_cs, c_mac_sc, c_comp_cs, c_comp_sc = lists[:8]
        if self.session_id is None:
            self.strict = STRICT_C in c_kex
            self.ext_info_c = EXT_INFO_C in c_kex
        alg = kex.algorithms
        alg.kex = self._choose("key exchange", c_kex, self.settings.kex)
        alg.hostkey = self._choose("host key", c_hostkey, self._hostkey_algorithms())
        alg.cipher_in = self._choose("client-to-server cipher", c_enc_cs, self.settings.ciphers)
        alg.cipher_out = self._choose("server-to-client cipher", c_enc_sc, self.settings.ciphers)
        alg.mac_in = ("<implicit>" if crypto.CIPHERS[alg.cipher_in].aead
                      else self._choose("client-to-server MAC", c_mac_cs, self.settings.macs))
        alg.mac_out = ("<implicit>" if crypto.CIPHERS[alg.cipher_out].aead
                       else self._choose("server-to-client MAC", c_mac_sc, self.settings.macs))
        alg.comp_in = self._choose("client-to-server compression", c_comp_cs, self.settings.compression)
        alg.comp_out = self._choose("server-to-client compression", c_comp_sc, self.settings.compression)
        if follows and (c_kex[:1] != [alg.kex] or c_hostkey[:1] != [alg.hostkey]):
            kex.skip_guess = True
        if self.note is not None:
            self.note("KEXINIT", "")

    def _choose(self, what: str, client: list[str], server: tuple[str, ...] | list[str]) -> str:
        """RFC 4253 section 7.1: the first of the client's names the server also has."""
        for name in client:
            if name in server:
                return name
        raise Disconnect(KEY_EXCHANGE_FAILED, f"no matching {what} algorithm",
                         f"no shared {what} algorithm found (client sent '{','.join(client)[:1000]}', server sent "
                         f"'{','.join(server)}')")

    def _gex_request(self, payload: bytes) -> None:
        """RFC 4419: the client's bounds on the group's size; the group answered is one of the fixed ones (2048,
        4096, 8192 bits: the smallest that reaches the preferred size, else the largest the bounds allow), as
        OpenSSH does without a moduli file."""
        try:
            r = Reader(payload, 1)
            lo, n, hi = r.u32(), r.u32(), r.u32()
        except WireError as e:
            raise Disconnect(PROTOCOL_ERROR, "bad group exchange request", f"unable to read GEX_REQUEST: {e}") from None
        if not lo <= n <= hi:
            raise Disconnect(KEY_EXCHANGE_FAILED, "bad group exchange request",
                             f"client sent GEX_REQUEST with min {lo}, preferred {n}, max {hi}, disconnecting")
        sizes = sorted((p.bit_length(), p) for p, _ in crypto.DH_GROUPS.values())
        fitting = [(bits, p) for bits, p in sizes if lo <= bits <= hi]
        if not fitting:
            raise Disconnect(KEY_EXCHANGE_FAILED, "no group of the requested size",
                             f"no DH group between {lo} and {hi} bits for the client, disconnecting")
        bits, prime = next(((b, p) for b, p in fitting if b >= n), fitting[-1])
        assert self._kex is not None
        self._kex.gex = (lo, n, hi, prime)
        if self.note is not None:
            self.note("DH_GEX_REQUEST", "")
        self.send(Writer().byte(GEX_GROUP).mpint(prime).mpint(2).bytes())

    def _kexdh_init(self, payload: bytes) -> None:
        kex = self._kex
        assert kex is not None
        alg = kex.algorithms
        r = Reader(payload, 1)
        host_key = self.host_keys[alg.hostkey]
        k_s = host_key.public_blob()
        try:
            if alg.kex in crypto.CURVE25519:
                q_c = r.string(64)
                if len(q_c) != 32:
                    raise Disconnect(KEY_EXCHANGE_FAILED, "bad curve25519 key",
                                     f"client curve25519 public key is {len(q_c)} bytes (32 expected)")
                secret = os.urandom(32)
                q_s = crypto.x25519_base(secret)
                try:
                    shared = crypto.x25519(secret, q_c)
                except ValueError:
                    raise Disconnect(KEY_EXCHANGE_FAILED, "bad curve25519 key",
                                     "client curve25519 public key gives no shared secret") from None
                k = int.from_bytes(shared, "big")
                digest = crypto.CURVE25519[alg.kex]
                exchange = Writer().string(q_c).string(q_s).bytes()
                reply_value = Writer().string(q_s).bytes()
            elif alg.kex in crypto.ECDH:
                q_c = r.string(256)
                try:
                    q_s, shared = crypto.ecdh(alg.kex, q_c)
                except ValueError as e_:
                    raise Disconnect(KEY_EXCHANGE_FAILED, "bad ECDH key", f"client ECDH public key refused: {e_}") \
                        from None
                k = int.from_bytes(shared, "big")
                digest = crypto.ECDH[alg.kex][2]
                exchange = Writer().string(q_c).string(q_s).bytes()
                reply_value = Writer().string(q_s).bytes()
            else:
                if kex.gex is not None:
                    prime, digest = kex.gex[3], "sha256"
                else:
                    prime, digest = crypto.DH_GROUPS[alg.kex]
                e = r.mpint(len(prime.to_bytes((prime.bit_length() + 7) // 8, "big")) + 1)
                if not crypto.dh_check(prime, e):
                    raise Disconnect(KEY_EXCHANGE_FAILED, "bad DH value", "client DH public value out of range")
                x = crypto.dh_private(prime)
                f = pow(2, x, prime)
                k = pow(e, x, prime)
                exchange = mpint(e) + mpint(f)
                if kex.gex is not None:
                    lo, n, hi, _ = kex.gex
                    exchange = Writer().u32(lo).u32(n).u32(hi).mpint(prime).mpint(2).bytes() + exchange
                reply_value = mpint(f)
        except WireError as e_:
            raise Disconnect(PROTOCOL_ERROR, "bad key exchange message", f"unable to read KEXDH_INIT: {e_}") from None
        if self.note is not None:       # ProFTPD's names: ECDH_INIT for the curves, DH_INIT, DH_GEX_INIT
            self.note("DH_GEX_INIT" if kex.gex is not None else "DH_INIT" if alg.kex in crypto.DH_GROUPS
                      else "ECDH_INIT", "")
        h_data = (Writer().string(self.client_version.encode("utf-8", "replace"))
                  .string(self.settings.version.encode("ascii", "replace"))
                  .string(kex.theirs).string(kex.ours).string(k_s).bytes() + exchange + mpint(k))
        h = hashlib.new(digest, h_data).digest()
        if self.session_id is None:
            self.session_id = h
        signature = host_key.sign(alg.hostkey, h)
        reply = GEX_REPLY if kex.gex is not None else KEXDH_REPLY
        self.send(Writer().byte(reply).string(k_s).raw(reply_value).string(signature).bytes())
        keys = _derive(digest, mpint(k), h, self.session_id, alg)
        self._pending_in = (keys, alg)
        if self.pessimistic_newkeys:    # ours once the client's came (`_newkeys`)
            self._newkeys_out = (keys, alg)
        else:
            self._send_newkeys(keys, alg)

    def _send_newkeys(self, keys: dict, alg: Negotiated) -> None:
        """Our NEWKEYS, then our side under the new keys: what the layers above said meanwhile, EXT_INFO."""
        self.send(bytes((NEWKEYS,)))
        self.sealer = crypto.make_sealer(alg.cipher_out, keys["D"], keys["B"], _mac(alg.mac_out), keys["F"])
        self.packets_out = 0
        if alg.comp_out == "zlib" and self._deflate is None:
            self._deflate = zlib.compressobj()
        if self.strict:
            self.send_seq = 0
        self.negotiated = alg
        self._holding = False
        held, self._held, self._held_bytes = self._held, [], 0
        for payload in held:            # what the layers above said meanwhile, under the new keys
            self.send(payload)
        if self.kex_count == 0 and self.ext_info_c and self.settings.ext_info:
            self.send(Writer().byte(EXT_INFO).u32(1).string(b"server-sig-algs").string(SERVER_SIG_ALGS).bytes())
            self._ext_info_sent = True

    def _newkeys(self) -> None:
        pending = getattr(self, "_pending_in", None)
        if pending is None:
            raise Disconnect(PROTOCOL_ERROR, "unexpected NEWKEYS", "client sent NEWKEYS before KEXDH_INIT, "
                             "disconnecting")
        keys, alg = pending
        self._pending_in = None
        if self._newkeys_out is not None:
            out, self._newkeys_out = self._newkeys_out, None
            self._send_newkeys(*out)
        self.opener = crypto.make_opener(alg.cipher_in, keys["C"], keys["A"], _mac(alg.mac_in), keys["E"])
        self.packets_in = 0
        if alg.comp_in == "zlib" and self._inflate is None:
            self._inflate = zlib.decompressobj()
        if self.strict:
            self.recv_seq = 0
        self._kex = None
        self.kex_count += 1
        self.rekey_in = self.rekey_out = 0
        if self.note is not None:       # ProFTPD sends EXT_INFO after the client's NEWKEYS, and logs it then
            self.note("NEWKEYS", "")
            if self._ext_info_sent and self.kex_count == 1:
                self.note("EXT_INFO", "")
        if self.kex_count > 1 and self.on_rekeyed is not None:
            self.on_rekeyed()
        self.log(f"{'' if self.kex_count == 1 else 're'}keyed: {alg.kex}, host key {alg.hostkey}, client-to-server "
                 f"{alg.cipher_in}/{alg.mac_in}, server-to-client {alg.cipher_out}/{alg.mac_out}"
                 + (f", compression {alg.comp_in}/{alg.comp_out}" if (alg.comp_in, alg.comp_out) != ("none", "none")
                    else ""))


def _mac(name: str) -> str | None:
    return None if name == "<implicit>" else name


def _derive(digest: str, k: bytes, h: bytes, session_id: bytes, alg: Negotiated) -> dict[str, bytes]:
    """RFC 4253 section 7.2: the IVs (A, B), encryption keys (C, D) and MAC keys (E, F), each as long as its
    algorithm needs."""
    cin, cout = crypto.CIPHERS[alg.cipher_in], crypto.CIPHERS[alg.cipher_out]
    sizes = {"A": cin.iv_len, "B": cout.iv_len, "C": cin.key_len, "D": cout.key_len,
             "E": crypto.MACS[alg.mac_in].key_len if alg.mac_in in crypto.MACS else 0,
             "F": crypto.MACS[alg.mac_out].key_len if alg.mac_out in crypto.MACS else 0}
    out = {}
    for letter, size in sizes.items():
        key = hashlib.new(digest, k + h + letter.encode() + session_id).digest()
        while len(key) < size:
            key += hashlib.new(digest, k + h + key).digest()
        out[letter] = key[:size]
    return out
