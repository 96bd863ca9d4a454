"""mod_sftp's pure parts: the SSH wire types, the cryptography against published vectors, packet protection both
ways, key files, RFC 4716 files, and the transport's packet checks over a socket pair."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import struct
import subprocess

import pytest

from proftpy.net.ssh import crypto, keys
from proftpy.net.ssh.transport import Closed, Disconnect, Settings, Transport
from proftpy.net.ssh.wire import Reader, WireError, Writer, mpint_bytes

try:
    crypto.sodium()
    crypto.libcrypto()
    HAVE_LIBS = True
except crypto.CryptoUnavailable:
    HAVE_LIBS = False

needs_libs = pytest.mark.skipif(not HAVE_LIBS, reason="libsodium and libcrypto are needed")


# -- wire ----------------------------------------------------------------------------------------------------------
def test_reader_bounds():
    r = Reader(Writer().u32(5).string(b"abc").bytes())
    assert r.u32() == 5 and r.string() == b"abc"
    with pytest.raises(WireError):
        r.byte()
    with pytest.raises(WireError):
        Reader(struct.pack(">I", 0xFFFFFFFF) + b"x").string()        # a length past the payload
    with pytest.raises(WireError):
        Reader(Writer().string(b"x" * 100).bytes()).string(most=10)
    with pytest.raises(WireError):
        Reader(Writer().string(b"caf\xc3\xa9").bytes()).name_list()
    assert Reader(Writer().name_list(["a", "b"]).bytes()).name_list() == ["a", "b"]


@pytest.mark.parametrize("value, encoded", [(0, ""), (0x9a378f9b2e332a7, "09a378f9b2e332a7"), (0x80, "0080"),
                                            (-0x1234, "edcc"), (-0xdeadbeef, "ff21524111")])
def test_mpint_rfc4251_examples(value, encoded):
    assert mpint_bytes(value).hex() == encoded
    assert Reader(Writer().mpint(value).bytes()).mpint() == value


# -- published vectors ---------------------------------------------------------------------------------------------
@needs_libs
def test_chacha20_rfc8439_2_4_2():
    key = bytes(range(32))
    nonce = bytes.fromhex("0000004a00000000")       # the IETF nonce 000000000000004a00000000, djb's layout
    text = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
            b"sunscreen would be it.")
    out = crypto.chacha20_xor(key, nonce, text, 1)
    assert out.hex() == ("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62"
                         "b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab"
                         "77937365af90bbf74a35be6b40b8eedf2785e42874d")


@needs_libs
def test_poly1305_rfc8439_2_5_2():
    key = bytes.fromhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    tag = crypto.poly1305(key, b"Cryptographic Forum Research Group")
    assert tag.hex() == "a8061dc1305136c6c22b8baf0c0127a9"
    assert crypto.poly1305_verify(key, b"Cryptographic Forum Research Group", tag)
    assert not crypto.poly1305_verify(key, b"Cryptographic Forum Research Grouq", tag)


@needs_libs
def test_x25519_rfc7748_5_2_and_6_1():
    assert crypto.x25519(bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                         bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")).hex() \
        == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob_pub = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    assert crypto.x25519_base(alice).hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert crypto.x25519(alice, bob_pub).hex() == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    with pytest.raises(ValueError):
        crypto.x25519(alice, bytes(32))                 # the all-zero point: no shared secret


@needs_libs
def test_ed25519_rfc8032_test1():
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = keys.Ed25519Key(seed)
    assert key.public.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    blob = Reader(key.sign("ssh-ed25519", b""))
    assert blob.string() == b"ssh-ed25519"
    sig = blob.string()
    assert sig.hex() == ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
                         "6bd25bf5f0595bbe24655141438e7a100b")


def test_rsa_pkcs1_sign_and_verify():
    # a 1024-bit key made once with openssl (test only: the host keys refuse below 1024 bits)
    p = int("f0b9e0a7d1d5e1b6bd0a4c39a0fbf2c1c1c2a4c0f6fe37ca06fc7b27d6e0b2cbf8c2b2a7c16d1da3d3e1a1cdb1f0a1b1c"
            "7cbf51a3", 16) | 1
    # primes from Python: searching is enough for a unit test
    def next_prime(n):
        def is_prime(m):
            if m < 2:
                return False
            for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
                if m % a == 0:
                    return m == a
            d, s = m - 1, 0
            while d % 2 == 0:
                d, s = d // 2, s + 1
            for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
                x = pow(a, d, m)
                if x in (1, m - 1):
                    continue
                for _ in range(s - 1):
                    x = pow(x, 2, m)
                    if x == m - 1:
                        break
                else:
                    return False
            return True
        while not is_prime(n):
            n += 2
        return n
    p = next_prime(p)
    q = next_prime((p >> 3) | (1 << 511) | 1)
    n, e = p * q, 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    key = crypto.RsaPrivate(n, e, d, p, q)
    for digest in ("sha1", "sha256", "sha512"):
        sig = key.sign(b"message", digest)
        assert crypto.rsa_verify(n, e, b"message", sig, digest)
        assert not crypto.rsa_verify(n, e, b"messagf", sig, digest)
        assert not crypto.rsa_verify(n, e, b"message", sig[:-1] + bytes([sig[-1] ^ 1]), digest)


# -- packet protection ---------------------------------------------------------------------------------------------
CASES = [("chacha20-poly1305@openssh.com", None), ("aes128-gcm@openssh.com", None), ("aes256-gcm@openssh.com", None),
         ("aes128-ctr", "hmac-sha2-256"), ("aes192-ctr", "hmac-sha1"), ("aes256-ctr", "hmac-sha2-512"),
         ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"), ("aes256-ctr", "hmac-sha2-512-etm@openssh.com")]


@needs_libs
@pytest.mark.parametrize("cipher, mac", CASES)
def test_seal_then_open_each_way_and_tamper(cipher, mac):
    spec = crypto.CIPHERS[cipher]
    key, iv = os.urandom(spec.key_len), os.urandom(spec.iv_len)
    mac_key = os.urandom(crypto.MACS[mac].key_len) if mac else b""
    sealer = crypto.make_sealer(cipher, key, iv, mac, mac_key)
    opener = crypto.make_opener(cipher, key, iv, mac, mac_key)
    for seq, payload in enumerate([b"\x05" + b"a" * n for n in (0, 1, 31, 1000, 32768)]):
        packet = crypto.padded(payload, sealer.block, sealer.length_in_padding)
        wire = sealer.seal(packet, seq)
        length = opener.length(wire[:opener.head], seq)
        assert length == len(packet) - 4
        assert (length + (4 if opener.length_in_padding else 0)) % opener.block == 0
        assert opener.open(wire[opener.head:], seq) == packet
    tampered = bytearray(sealer.seal(crypto.padded(b"\x05hello", sealer.block, sealer.length_in_padding), 99))
    tampered[-20] ^= 0x40
    opener.length(bytes(tampered[:opener.head]), 99)
    with pytest.raises(crypto.BadMac):
        opener.open(bytes(tampered[opener.head:]), 99)


def test_padding_bounds():
    for n in range(0, 70):
        for block, with_length in ((8, True), (16, True), (8, False), (16, False)):
            p = crypto.padded(b"x" * n, block, with_length)
            pad = p[4]
            assert 4 <= pad < 4 + block
            assert (len(p) - (0 if with_length else 4)) % block == 0


# -- key files -----------------------------------------------------------------------------------------------------
needs_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is needed")


@needs_libs
@needs_keygen
@pytest.mark.parametrize("kind, extra", [("ed25519", ()), ("rsa", ("-b", "2048")), ("rsa", ("-b", "2048", "-m", "PEM")),
                                         ("rsa", ("-b", "2048", "-m", "PKCS8")), ("ecdsa", ()),
                                         ("ecdsa", ("-b", "384")), ("ecdsa", ("-b", "521")),
                                         ("ecdsa", ("-m", "PEM")), ("ecdsa", ("-m", "PKCS8"))])
def test_host_key_files_match_ssh_keygen(tmp_path, kind, extra):
    path = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path), *extra], check=True)
    key = keys.load_host_key(str(path))
    assert keys.openssh_public_line(key).split()[:2] == (tmp_path / "k.pub").read_text().split()[:2]
    public = keys.parse_public_blob(key.public_blob())
    for alg in key.algorithms:
        assert public.verify(alg, b"data", key.sign(alg, b"data"))
        assert not public.verify(alg, b"datA", key.sign(alg, b"data"))


@needs_libs
@needs_keygen
def test_unusable_host_keys(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(tmp_path / "pw")], check=True)
    if subprocess.run(["ssh-keygen", "-q", "-t", "dsa", "-N", "", "-f", str(tmp_path / "dsa")]).returncode == 0:
        with pytest.raises(keys.UnsupportedKey, match="ssh-dss"):
            keys.load_host_key(str(tmp_path / "dsa"))
    with pytest.raises(keys.UnsupportedKey, match="passphrase"):
        keys.load_host_key(str(tmp_path / "pw"))
    for junk in (b"", b"\xff" * 100, b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
                 b"-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n", b"x" * 70000):
        with pytest.raises(keys.KeyFileError):
            keys.load_host_key("junk", junk)


def test_rfc4716_file():
    text = ("ssh-ed25519 AAAA ignored openssh line\n"
            "---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"a long \\\ncomment\"\nSubject: alice\nAAAAC3Nza\n"
            "C1lZDI1NTE5\n---- END SSH2 PUBLIC KEY ----\n"
            "---- BEGIN SSH2 PUBLIC KEY ----\n!!notbase64!!\n---- END SSH2 PUBLIC KEY ----\n")
    found = keys.rfc4716_keys(text)
    assert found == [(b"\x00\x00\x00\x0bssh-ed25519", "alice")]


def test_stored_key_values():
    """An LDAP sshPublicKey value: OpenSSH's line (its type must be the blob's), a bare blob, or RFC 4716."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"k" * 32
    text = base64.b64encode(blob).decode()
    assert keys.stored_keys(f"ssh-ed25519 {text} kim@host") == [(blob, None)]
    assert keys.stored_keys(f"  {text}\n") == [(blob, None)]
    assert keys.stored_keys(f"ssh-rsa {text}") == []                   # the line says RSA, the blob Ed25519
    assert keys.stored_keys("ssh-ed25519 not-base64! x") == []
    assert keys.stored_keys("") == []
    block = f"---- BEGIN SSH2 PUBLIC KEY ----\nSubject: kim\n{text}\n---- END SSH2 PUBLIC KEY ----\n"
    assert keys.stored_keys(block) == [(blob, "kim")]


# -- the transport's checks, over a socket pair --------------------------------------------------------------------
def _server(data: bytes) -> tuple[Transport, list[str]]:
    a, b = socket.socketpair()
    b.sendall(data)
    b.shutdown(socket.SHUT_WR)
    lines: list[str] = []
    t = Transport(a, Settings(), [], lambda: None, lines.append)
    t._peer = b          # kept open for the test's life
    return t, lines


@pytest.mark.parametrize("data, error", [
    (struct.pack(">I", 1 << 30) + b"\x04" + bytes(11), "too long"),
    (struct.pack(">I", 0) + bytes(12), "too short"),
    (struct.pack(">I", 14) + b"\x04" + bytes(13), "not a multiple"),
    (struct.pack(">I", 12) + b"\x01" + bytes(11), "padding length too short"),
    (struct.pack(">I", 12) + b"\xff" + bytes(11), "padding length too long"),
])
def test_bad_packets(data, error):
    t, _ = _server(data)
    with pytest.raises(Disconnect) as e:
        t.read_packet()
    assert error in e.value.log


def test_truncated_packet_is_closed_not_a_hang():
    t, _ = _server(struct.pack(">I", 12) + b"\x04\x14")
    with pytest.raises(Closed):
        t.read_packet()


def test_version_line_rules():
    t, lines = _server(b"SSH-2.0-client_1.0 comment\r\n")
    assert t._read_version() == "SSH-2.0-client_1.0 comment"
    for bad in (b"SSH-1.5-old\r\n", b"SSH-2.0-\r\n", b"x" * 300 + b"\n", b"SSH-2.0-a\0b\r\n"):
        t, lines = _server(bad)
        with pytest.raises(Closed):
            t._read_version()
        assert any("Bad protocol version" in line for line in lines)


def test_decompression_bomb_disconnects():
    import zlib
    bomb = zlib.compressobj()
    payload = bomb.compress(b"\x5e" + bytes(2 * 1024 * 1024)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    t, _ = _server(crypto.padded(payload, 8, True))
    t._inflate = zlib.decompressobj()
    with pytest.raises(Disconnect) as e:
        t.read_packet()
    assert "exceeds maximum packet length" in e.value.log
    good = zlib.compressobj()
    t, _ = _server(crypto.padded(good.compress(b"\x05hello") + good.flush(zlib.Z_SYNC_FLUSH), 8, True))
    t._inflate = zlib.decompressobj()
    assert t.read_packet() == b"\x05hello"


@needs_libs
def test_ecdsa_public_key_off_the_curve_refused():
    from proftpy.net.ssh.wire import Writer as W
    point = b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x02"            # (1, 2) is no point of P-256
    with pytest.raises(keys.KeyFileError):
        keys.parse_public_blob(W().string(b"ecdsa-sha2-nistp256").string(b"nistp256").string(point).bytes())
    with pytest.raises(keys.KeyFileError):
        keys.parse_public_blob(W().string(b"ecdsa-sha2-nistp256").string(b"nistp384").string(point).bytes())


def test_packets_without_rekey_are_bounded(monkeypatch):
    from proftpy.net.ssh import transport
    monkeypatch.setattr(transport, "MAX_PACKETS_PER_KEY", 2)
    packet = crypto.padded(b"\x02ignored", 8, True)
    t, _ = _server(packet * 3)
    t.read_packet()
    t.read_packet()
    with pytest.raises(Disconnect, match="rekey required"):
        t.read_packet()


@needs_libs
def test_ecdh_both_sides_agree_and_refuse_bad_points():
    q1, _ = crypto.ecdh("ecdh-sha2-nistp256", crypto.ecdh("ecdh-sha2-nistp256", _p256_point())[0])
    assert len(q1) == 65 and q1[0] == 4
    with pytest.raises(ValueError):
        crypto.ecdh("ecdh-sha2-nistp256", b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x02")
    with pytest.raises(ValueError):
        crypto.ecdh("ecdh-sha2-nistp384", _p256_point())           # a point of another curve


def _p256_point() -> bytes:
    # the P-256 base point, a point of the curve
    return bytes.fromhex("046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                         "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")


def test_scp_command_lines():
    from proftpy.modules.sftp_scp import parse_command
    assert parse_command("scp -t scp2.txt") == ("t", set(), ["scp2.txt"])
    assert parse_command("scp -r -p -d -t -- -dash") == ("t", {"r", "p", "d"}, ["-dash"])
    assert parse_command("/usr/bin/scp -v -f 'a b' c") == ("f", {"v"}, ["a b", "c"])
    for bad in ("scp -t", "scp -t a b", "scp -x -t a", "scp -t -f a", "ls -t a", "", "scp a", "scp -f"):
        assert parse_command(bad) is None, bad


def test_auth_method_chains():
    from proftpy.modules.sftp import _auth_methods
    assert _auth_methods(["publickey+password", "keyboard-interactive", "publickey+password"]) == (
        ("publickey", "password"), ("keyboard-interactive",))
    assert _auth_methods(["publickey+publickey"]) == (("publickey", "publickey"),)
    assert _auth_methods(["hostbased+password", "hostbased"]) == (("hostbased", "password"), ("hostbased",))
    for bad in (["password+password"], ["publickey+"], ["hostbased+hostbased"], ["gssapi-with-mic"], []):
        with pytest.raises(ValueError):
            _auth_methods(bad)
