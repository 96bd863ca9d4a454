"""A minimal SSH client for mod_sftp's hostile-input tests: it exchanges keys (curve25519-sha256, aes128-ctr,
hmac-sha2-256), logs in with a password and opens the sftp subsystem, and then sends whatever a test wants,
including what a real client never would. Built on proftpy's own primitives (tests only; the host key's signature
is not checked)."""

from __future__ import annotations

import hashlib
import os
import select
import socket
import struct
from pathlib import Path

from proftpy.net.ssh import blacklist, crypto
from proftpy.net.ssh.transport import Negotiated, _derive
from proftpy.net.ssh.wire import Reader, Writer, mpint


class ServerClosed(Exception):
    """The server ended the connection (its DISCONNECT's reason and text, when it sent one)."""

    def __init__(self, reason: int | None = None, text: str = ""):
        super().__init__(f"{reason}: {text}")
        self.reason, self.text = reason, text


class MiniClient:
    def __init__(self, port: int, version: bytes = b"SSH-2.0-minitest", newkeys_first: bool = False):
        """`newkeys_first`: send our NEWKEYS before reading the server's, noting in `early_newkeys` whether the
        server's came within a second of its KEXDH_REPLY (SFTPClientMatch pessimisticNewkeys: it waits for ours)."""
        self.newkeys_first = newkeys_first
        self.early_newkeys: bool | None = None
        self.ignored = 0                                    # IGNORE messages received (SFTPTrafficPolicy's chaff)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.sealer: crypto.Sealer = crypto.Sealer()
        self.opener: crypto.Opener = crypto.Opener()
        self.send_seq = self.recv_seq = 0
        self.version = version
        line = b""
        while not line.endswith(b"\r\n"):
            line += self.sock.recv(1)
        self.server_version = line.rstrip(b"\r\n")
        self.sock.sendall(version + b"\r\n")
        self._kex()

    # -- packets ---------------------------------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ServerClosed()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self) -> bytes:
        op = self.opener
        head = self._read(op.head)
        length = op.length(head, self.recv_seq)
        packet = op.open(self._read(4 + length - op.head + op.mac_len), self.recv_seq)
        self.recv_seq += 1
        payload = packet[5:4 + length - packet[4]]
        if payload[:1] == b"\x01":
            r = Reader(payload, 1)
            raise ServerClosed(r.u32(), r.text())
        if payload[:1] in (b"\x02", b"\x04", b"\x07"):          # IGNORE, DEBUG, EXT_INFO
            self.ignored += payload[:1] == b"\x02"
            return self.recv()
        return payload

    def send(self, payload: bytes) -> None:
        self.sock.sendall(self.sealer.seal(crypto.padded(payload, self.sealer.block, self.sealer.length_in_padding),
                                           self.send_seq))
        self.send_seq += 1

    def _kex(self) -> None:
        server_kexinit = self.recv()
        ours = (Writer().byte(20).raw(os.urandom(16)).name_list(["curve25519-sha256"]).name_list(["ssh-ed25519"])
                .name_list(["aes128-ctr"]).name_list(["aes128-ctr"]).name_list(["hmac-sha2-256"])
                .name_list(["hmac-sha2-256"]).name_list(["none"]).name_list(["none"]).name_list([]).name_list([])
                .boolean(False).u32(0).bytes())
        self.send(ours)
        secret = os.urandom(32)
        q_c = crypto.x25519_base(secret)
        self.send(Writer().byte(30).string(q_c).bytes())
        reply = Reader(self.recv(), 1)
        k_s, q_s = reply.string(), reply.string()
        if self.newkeys_first:
            self.early_newkeys = bool(self.buf) or bool(select.select([self.sock], [], [], 1.0)[0])
        else:
            assert self.recv() == b"\x15"
        k = int.from_bytes(crypto.x25519(secret, q_s), "big")
        h = hashlib.sha256(Writer().string(self.version).string(self.server_version).string(ours)
                           .string(server_kexinit).string(k_s).string(q_c).string(q_s).bytes() + mpint(k)).digest()
        alg = Negotiated("curve25519-sha256", "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256",
                         "hmac-sha2-256")
        keys = _derive("sha256", mpint(k), h, h, alg)          # the server's view: "in" is client-to-server
        self.send(b"\x15")
        if self.newkeys_first:
            assert self.recv() == b"\x15"
        self.sealer = crypto.make_sealer("aes128-ctr", keys["C"], keys["A"], "hmac-sha2-256", keys["E"])
        self.opener = crypto.make_opener("aes128-ctr", keys["D"], keys["B"], "hmac-sha2-256", keys["F"])
        self.session_id = h

    # -- the layers above ------------------------------------------------------------------------------------------
    def login(self, user: str, password: str) -> bool:
        self.send(Writer().byte(5).string(b"ssh-userauth").bytes())
        assert self.recv()[0] == 6
        self.send(Writer().byte(50).string(user).string(b"ssh-connection").string(b"password").boolean(False)
                  .string(password).bytes())
        answer = self.recv()
        while answer[0] == 53:                                      # USERAUTH_BANNER
            self.banner = Reader(answer, 1).text()
            answer = self.recv()
        return answer[0] == 52

    def hostbased(self, user: str, key, host: str = "localhost.", host_user: str = "root", algorithm: str | None = None,
                  blob: bytes | None = None, signer=None, signed_host: str | None = None) -> bytes:
        """A `hostbased` request signed with the host key `key` (a proftpy HostKey); `blob`, `signer` (another
        key) and `signed_host` (the host name in the signed data) make it lie. The server's answer (its first byte:
        52 success, 51 failure)."""
        if not getattr(self, "service_accepted", False):
            self.send(Writer().byte(5).string(b"ssh-userauth").bytes())
            assert self.recv()[0] == 6
            self.service_accepted = True
        algorithm = algorithm or key.algorithms[0]
        blob = key.public_blob() if blob is None else blob

        def fields(w: Writer, name: str) -> Writer:
            return (w.byte(50).string(user).string(b"ssh-connection").string(b"hostbased").string(algorithm)
                    .string(blob).string(name).string(host_user))
        signed = fields(Writer().string(self.session_id), signed_host or host).bytes()
        self.send(fields(Writer(), host).string((signer or key).sign(algorithm, signed)).bytes())
        answer = self.recv()
        while answer[0] == 53:                                      # USERAUTH_BANNER
            answer = self.recv()
        return answer

    def open_sftp(self) -> int:
        self.send(Writer().byte(90).string(b"session").u32(7).u32(1 << 20).u32(32768).bytes())
        confirm = Reader(self.recv(), 1)
        assert confirm.u32() == 7
        self.remote = confirm.u32()
        self.send(Writer().byte(98).u32(self.remote).string(b"subsystem").boolean(True).string(b"sftp").bytes())
        assert self.recv()[0] == 99
        self.data(struct.pack(">IBI", 5, 1, 3))
        kind, payload = self.sftp_reply()
        assert kind == 2
        return self.remote

    def data(self, data: bytes) -> None:
        self.send(Writer().byte(94).u32(self.remote).string(data).bytes())

    def sftp_reply(self) -> tuple[int, bytes]:
        """The next SFTP packet from the server (channel data reassembled)."""
        acc = getattr(self, "_sftp", b"")
        while len(acc) < 4 or len(acc) < 4 + struct.unpack(">I", acc[:4])[0]:
            payload = self.recv()
            if payload[0] == 94:
                r = Reader(payload, 1)
                r.u32()
                acc += r.string()
            elif payload[0] in (93, 98, 96, 97):            # window adjust, exit-status, EOF, CLOSE
                if payload[0] == 97:
                    raise ServerClosed(None, "channel closed")
        n = struct.unpack(">I", acc[:4])[0]
        self._sftp = acc[4 + n:]
        return acc[4], acc[5:4 + n]

    def close(self) -> None:
        self.sock.close()


def write_blacklist(path: Path, fingerprints: list[bytes], width: int = 4) -> None:
    """An SSH-FP00 file (SFTPKeyBlacklist) listing these MD5 fingerprints (their 16-bit index, then `width` bytes
    each), as ProFTPD's mod_sftp reads it (test_sftp_compat.py has ProFTPD refuse the same key)."""
    records = sorted((int.from_bytes(fp[:2], "big"), fp[2:2 + width]) for fp in fingerprints)
    count = len(records)
    shift = count                               # keeps every stored offset positive
    index = b"".join(struct.pack(">H", sum(1 for i, _ in records if i < idx) - ((idx * count) >> 16) + shift)
                     for idx in range(0x10000))
    head = blacklist.HEADER.pack(b"SSH-FP00", 16, 16, (width + 2) * 8, count.to_bytes(3, "big"), shift)
    path.write_bytes(head + index + b"".join(rest for _, rest in records))
