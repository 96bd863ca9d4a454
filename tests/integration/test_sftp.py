"""mod_sftp driven by real clients: OpenSSH's sftp (keys, and passwords through SSH_ASKPASS), curl's libssh2, and
a raw socket for hostile input. One daemon for the module: its main server speaks FTP (and must go on doing so),
its `<VirtualHost>` on another port has SFTPEngine on."""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (IS_ROOT, PASSWORDS, REPO, Daemon, configtest, fill, free_port, listening, make_users,
                      start_daemon, wait_until)

pytestmark = pytest.mark.skipif(not IS_ROOT or shutil.which("sftp") is None or shutil.which("ssh-keygen") is None,
                                reason="needs root (chroot, host keys) and OpenSSH's sftp and ssh-keygen")

CONFIG = """\
ServerName "ftp main"
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
DefaultServer on
UseIPv6 off
UseReverseDNS off
PidFile {dir}/proftpy.pid
ScoreboardFile {dir}/proftpy.scoreboard
SystemLog {dir}/system.log
ControlsSocket {dir}/proftpy.sock
DelayTable {dir}/proftpy.delay
TimeoutIdle 20
<Global>
  AuthOrder mod_auth_file.c
  AuthUserFile {dir}/ftpd.passwd
  AuthGroupFile {dir}/ftpd.group
  RequireValidShell off
  UseFtpUsers off
  DefaultRoot ~
  TransferLog {dir}/xferlog
  <IfModule mod_delay.c>
    DelayEngine off
  </IfModule>
</Global>
<IfModule mod_sftp.c>
<VirtualHost 127.0.0.1>
  ServerName "sftp"
  Port {sftp_port}
  SFTPEngine on
  SFTPLog {dir}/sftp.log
  SFTPHostKey {dir}/host_ed25519
  SFTPHostKey {dir}/host_rsa
  SFTPHostKey {dir}/host_ecdsa
  SFTPAuthMethods publickey password
  SFTPAuthorizedUserKeys file:{dir}/keys/%u
  MaxLoginAttempts 2
  TimeoutStalled 3
  SFTPCompression delayed
  SFTPDisplayBanner {dir}/banner.txt
  <Directory {dir}/home/bob/hs>
    HiddenStores on
  </Directory>
  <Directory {dir}/home/bob/small>
    MaxStoreFileSize 1000 B
  </Directory>
  <Directory {dir}/home/alice/ro>
    <Limit WRITE>
      DenyAll
    </Limit>
  </Directory>
</VirtualHost>
<VirtualHost 127.0.0.1>
  ServerName "sftp chains"
  Port {kbd_port}
  SFTPEngine on
  SFTPLog {dir}/sftp-kbd.log
  SFTPHostKey {dir}/host_ed25519
  SFTPAuthMethods keyboard-interactive publickey+password
  SFTPAuthorizedUserKeys file:{dir}/keys/%u
  SFTPPAMServiceName {pam_service}
  SFTPPAMOptions NoTTY
  MaxLoginAttempts 3
</VirtualHost>
</IfModule>
"""

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


def keygen(path: Path, kind: str, *extra: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path), *extra], check=True)
    return path


@pytest.fixture(scope="module")
def sftpd(tmp_path_factory):
    base = tmp_path_factory.mktemp("sftp")
    os.chmod(base, 0o755)
    d = Daemon(dir=base, port=free_port(), conf=base / "proftpy.conf")
    d.users = make_users(base)
    keygen(base / "host_ed25519", "ed25519")
    keygen(base / "host_rsa", "rsa", "-b", "2048")
    keygen(base / "host_ecdsa", "ecdsa")
    keys = base / "keys"
    keys.mkdir()
    keygen(base / "alice_ed25519", "ed25519")
    keygen(base / "alice_rsa", "rsa", "-b", "2048")
    keygen(base / "alice_ecdsa", "ecdsa", "-b", "384")
    keygen(base / "stranger", "ed25519")
    rfc4716 = [subprocess.run(["ssh-keygen", "-e", "-f", str(base / f"alice_{k}.pub")], check=True,
                              capture_output=True, text=True).stdout for k in ("ed25519", "rsa", "ecdsa")]
    (keys / "alice").write_text("".join(rfc4716))
    for sub in ("hs", "small"):
        (d.home("bob") / sub).mkdir()
        os.chown(d.home("bob") / sub, d.uid("bob"), d.users["bob"][1])
    ro = d.home("alice") / "ro"
    ro.mkdir()
    (ro / "kept.txt").write_text("read only\n")
    for p in (ro, ro / "kept.txt"):
        os.chown(p, d.uid("alice"), d.users["alice"][1])
    (base / "banner.txt").write_text("Welcome to %V\nAuthorized users only.\n")
    sftp_port, kbd_port = free_port(), free_port()
    # keyboard-interactive's PAM service: pam_exec asks for the password (PAM's own prompt) and a script checks it
    d.pam_service = f"proftpy-test-kbdint-{kbd_port}"
    check = base / "pam_check.sh"
    check.write_text(f'#!/bin/sh\npw=$(head -c 200 | tr -d "\\000")\n'
                     f'[ "$PAM_USER" = bob ] && [ "$pw" = "{PASSWORDS['bob']}" ]\n')
    check.chmod(0o755)
    pam_file = Path("/etc/pam.d") / d.pam_service
    pam_file.write_text(f"auth required pam_exec.so expose_authtok quiet {check}\nauth required pam_permit.so\n"
                        "account required pam_permit.so\n")
    d.conf.write_text(fill(CONFIG, {"port": d.port, "dir": base, "sftp_port": sftp_port, "kbd_port": kbd_port,
                                    "pam_service": d.pam_service}))
    start_daemon(d)
    d.sftp_port, d.kbd_port = sftp_port, kbd_port
    assert wait_until(lambda: listening(sftp_port), 10)
    try:
        yield d
    finally:
        d.stop()
        pam_file.unlink()


def sftp_batch(d: Daemon, commands: str, *opts: str, key: str = "alice_ed25519", user: str = "alice",
               check: bool = True) -> subprocess.CompletedProcess:
    batch = d.dir / "batch"
    batch.write_text(commands)
    res = subprocess.run(["sftp", "-b", str(batch), "-i", str(d.dir / key), *SSH_OPTS, *opts, "-P",
                          str(d.sftp_port), f"{user}@127.0.0.1"], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    if check:
        assert res.returncode == 0, (res.stdout, res.stderr, _tail(d / "sftp.log" if False else d.dir / "sftp.log"))
    return res


def _tail(path: Path, n: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


def curl(d: Daemon, *args: str, user: str = "alice:alice-secret") -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "-k", "-u", user, *args], capture_output=True, timeout=60)


# -- OpenSSH's sftp ----------------------------------------------------------------------------------------------
def test_openssh_publickey_session_byte_exact_and_chrooted(sftpd, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    back = tmp_path / "back.bin"
    res = sftp_batch(sftpd, f"pwd\nput {src} big.bin\nget big.bin {back}\nmkdir sub\nrename big.bin sub/moved.bin\n"
                            "ls -l sub\ncd ..\npwd\n-get /etc/passwd {tmp_path}/p\nrm sub/moved.bin\nrmdir sub\n")
    assert back.read_bytes() == src.read_bytes()
    assert "Remote working directory: /\n" in res.stdout          # DefaultRoot ~: the home is /
    assert res.stdout.count("Remote working directory: /\n") == 2  # `cd ..` stays in the root
    assert "moved.bin" in res.stdout
    assert not (sftpd.home("alice") / "sub").exists()
    xferlog = (sftpd.dir / "xferlog").read_text()
    assert f" 5243003 {sftpd.home('alice')}/big.bin b _ i r alice sftp 0 * c" in xferlog
    assert f" 5243003 {sftpd.home('alice')}/big.bin b _ o r alice sftp 0 * c" in xferlog
    log = (sftpd.dir / "sftp.log").read_text()
    assert "user 'alice' authenticated via 'publickey' method" in log


def test_limit_write_denied_is_permission_denied(sftpd):
    res = sftp_batch(sftpd, "put /etc/hostname ro/new.txt\n", check=False)
    assert res.returncode != 0
    assert "Permission denied" in res.stderr
    assert not (sftpd.home("alice") / "ro" / "new.txt").exists()
    res = sftp_batch(sftpd, "-rm ro/kept.txt\n-mkdir ro/d\nget ro/kept.txt /dev/null\n")
    assert "Permission denied" in res.stderr
    assert (sftpd.home("alice") / "ro" / "kept.txt").exists()


@pytest.mark.parametrize("opts", [
    ("Ciphers=chacha20-poly1305@openssh.com",),
    ("Ciphers=aes128-ctr", "MACs=hmac-sha2-256"),
    ("Ciphers=aes256-ctr", "MACs=hmac-sha2-512-etm@openssh.com"),
    ("Ciphers=aes192-ctr", "MACs=hmac-sha1"),
    ("Ciphers=aes128-gcm@openssh.com",),
    ("Ciphers=aes256-gcm@openssh.com", "KexAlgorithms=curve25519-sha256@libssh.org"),
    ("KexAlgorithms=diffie-hellman-group14-sha256", "Ciphers=aes128-ctr", "MACs=hmac-sha2-256-etm@openssh.com"),
    ("KexAlgorithms=diffie-hellman-group16-sha512",),
    ("KexAlgorithms=diffie-hellman-group18-sha512",),
    ("KexAlgorithms=diffie-hellman-group-exchange-sha256", "Ciphers=aes128-ctr"),
    ("KexAlgorithms=ecdh-sha2-nistp256",),
    ("KexAlgorithms=ecdh-sha2-nistp384",),
    ("KexAlgorithms=ecdh-sha2-nistp521",),
    ("KexAlgorithms=diffie-hellman-group-exchange-sha256", "Ciphers=chacha20-poly1305@openssh.com"),
    ("HostKeyAlgorithms=rsa-sha2-512",),
    ("HostKeyAlgorithms=rsa-sha2-256",),
    ("HostKeyAlgorithms=ecdsa-sha2-nistp256",),
    ("HostKeyAlgorithms=ssh-ed25519", "KexAlgorithms=curve25519-sha256"),
], ids=lambda o: "+".join(x.split("=")[1].split("@")[0] for x in o))
def test_each_algorithm(sftpd, opts):
    args = [a for o in opts for a in ("-o", o)]
    res = sftp_batch(sftpd, "put /etc/services alg.txt\nls -l alg.txt\nrm alg.txt\n", *args)
    assert "alg.txt" in res.stdout
    want = {o.split("=")[0]: o.split("=")[1] for o in opts}
    line = [x for x in (sftpd.dir / "sftp.log").read_text().splitlines() if "keyed:" in x][-1]
    for value in want.values():
        assert value in line


@pytest.mark.parametrize("key", ["alice_rsa", "alice_ecdsa"])
def test_rsa_and_ecdsa_user_keys(sftpd, key):
    res = sftp_batch(sftpd, "pwd\n", key=key)
    assert "Remote working directory: /" in res.stdout


def test_unknown_key_refused(sftpd):
    res = sftp_batch(sftpd, "pwd\n", key="stranger", check=False)
    assert res.returncode != 0
    assert "Permission denied" in res.stderr


def test_openssh_password_through_askpass(sftpd, tmp_path):
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho {PASSWORDS['bob']}\n")
    askpass.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    # (not -b: sftp's batch mode forbids password prompts; the commands come on standard input)
    res = subprocess.run(["setsid", "-w", "sftp", "-o", "StrictHostKeyChecking=no",
                          "-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no",
                          "-o", "PreferredAuthentications=password", "-P", str(sftpd.sftp_port), "bob@127.0.0.1"],
                         capture_output=True, text=True, timeout=60, env=env, input="pwd\nput /etc/hostname h.txt\n")
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert (sftpd.home("bob") / "h.txt").read_bytes() == Path("/etc/hostname").read_bytes()


# -- curl (libssh2) ----------------------------------------------------------------------------------------------
def test_curl_upload_download_list(sftpd, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    src = tmp_path / "c.bin"
    src.write_bytes(data)
    url = f"sftp://127.0.0.1:{sftpd.sftp_port}"
    assert curl(sftpd, "-T", str(src), f"{url}/c.bin").returncode == 0
    got = curl(sftpd, f"{url}/c.bin")
    assert got.returncode == 0 and hashlib.sha256(got.stdout).digest() == hashlib.sha256(data).digest()
    listing = curl(sftpd, f"{url}/")
    assert listing.returncode == 0 and b" c.bin" in listing.stdout
    assert curl(sftpd, "-Q", "rm /c.bin", f"{url}/").returncode == 0
    assert not (sftpd.home("alice") / "c.bin").exists()


def test_curl_wrong_password_and_max_login_attempts(sftpd):
    url = f"sftp://127.0.0.1:{sftpd.sftp_port}/"
    res = curl(sftpd, url, user="alice:wrong")
    assert res.returncode == 67            # CURLE_LOGIN_DENIED
    assert "USER alice (Login failed): Incorrect password" in sftpd.log()


# -- FTP beside it ------------------------------------------------------------------------------------------------
def test_ftp_server_unaffected(sftpd):
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", sftpd.port, timeout=10)
    assert ftp.getwelcome().startswith("220")
    ftp.login("alice", PASSWORDS["alice"])
    assert ftp.pwd() == "/"
    ftp.quit()


def test_ssh_client_on_ftp_port_gets_ftp(sftpd):
    with socket.create_connection(("127.0.0.1", sftpd.port), timeout=10) as s:
        assert s.recv(100).startswith(b"220")


# -- hostile input ------------------------------------------------------------------------------------------------
def _raw(d: Daemon) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", d.sftp_port), timeout=10)
    banner = b""
    while not banner.endswith(b"\r\n"):
        banner += s.recv(1)
    assert banner == b"SSH-2.0-mod_sftp\r\n"
    return s


def _drain(s: socket.socket) -> bytes:
    out = b""
    s.settimeout(10)
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        out += chunk
    return out


def test_bad_version_line(sftpd):
    s = _raw(sftpd)
    s.sendall(b"GET / HTTP/1.0\r\n")
    assert b"Protocol mismatch." in _drain(s)
    s.close()
    s = _raw(sftpd)
    s.sendall(b"SSH-2.0-" + b"x" * 5000)                   # no end of line: bounded at 255 bytes
    assert b"Protocol mismatch." in _drain(s)
    s.close()


@pytest.mark.parametrize("packet, logged", [
    (struct.pack(">I", 0x7FFFFFFF) + b"\x04" + b"\0" * 11, "packet length too long"),
    (struct.pack(">I", 3) + b"\x01\0\0\0" + b"\0" * 8, "packet length too short"),
    (struct.pack(">I", 13) + b"\x02" + b"\x14" + b"\0" * 11, "not a multiple"),
    (struct.pack(">I", 12) + b"\x02" + b"\x14" + b"\0" * 10, "padding length too short"),
    (struct.pack(">I", 12) + b"\xf0" + b"\x14" + b"\0" * 10, "padding length too long"),
    (struct.pack(">I", 12) + b"\x04" + b"\x32" + b"\0" * 10, "before keys were exchanged"),
])
def test_hostile_packets_disconnect_with_log_line(sftpd, packet, logged):
    s = _raw(sftpd)
    s.sendall(b"SSH-2.0-hostile\r\n" + packet)
    start = time.monotonic()
    _drain(s)
    s.close()
    assert time.monotonic() - start < 8
    assert wait_until(lambda: logged in (sftpd.dir / "sftp.log").read_text(), 5)
    assert "Traceback" not in sftpd.log()


def test_bad_mac_after_key_exchange(sftpd):
    from proftpy.net.ssh import crypto
    from proftpy.net.ssh.transport import _derive, Negotiated
    from proftpy.net.ssh.wire import Reader, Writer, mpint
    s = _raw(sftpd)
    s.sendall(b"SSH-2.0-hostile\r\n")
    buf = b""

    def packet() -> bytes:
        nonlocal buf
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            buf += s.recv(65536)
        n = struct.unpack(">I", buf[:4])[0]
        pkt, buf = buf[:4 + n], buf[4 + n:]
        return pkt[5:4 + n - pkt[4]]

    server_kexinit = packet()
    ours = (Writer().byte(20).raw(os.urandom(16)).name_list(["curve25519-sha256"]).name_list(["ssh-ed25519"])
            .name_list(["aes128-ctr"]).name_list(["aes128-ctr"]).name_list(["hmac-sha2-256"])
            .name_list(["hmac-sha2-256"]).name_list(["none"]).name_list(["none"]).name_list([]).name_list([])
            .boolean(False).u32(0).bytes())
    secret = os.urandom(32)
    q_c = crypto.x25519_base(secret)
    s.sendall(crypto.padded(ours, 8, True) + crypto.padded(Writer().byte(30).string(q_c).bytes(), 8, True))
    reply = Reader(packet(), 1)
    k_s, q_s = reply.string(), reply.string()
    assert packet() == b"\x15"
    k = int.from_bytes(crypto.x25519(secret, q_s), "big")
    h = hashlib.sha256(Writer().string(b"SSH-2.0-hostile").string(b"SSH-2.0-mod_sftp").string(ours)
                       .string(server_kexinit).string(k_s).string(q_c).string(q_s).bytes() + mpint(k)).digest()
    alg = Negotiated("curve25519-sha256", "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256",
                     "hmac-sha2-256")
    keys = _derive("sha256", mpint(k), h, h, alg)
    s.sendall(crypto.padded(b"\x15", 8, True))
    sealer = crypto.make_sealer("aes128-ctr", keys["C"], keys["A"], "hmac-sha2-256", keys["E"])
    sealed = bytearray(sealer.seal(crypto.padded(Writer().byte(5).string(b"ssh-userauth").bytes(), 16, True), 3))
    sealed[-1] ^= 1                                          # one bit of the MAC
    s.sendall(bytes(sealed))
    _drain(s)
    s.close()
    assert wait_until(lambda: "unable to verify MAC" in (sftpd.dir / "sftp.log").read_text(), 5)
    assert "Traceback" not in sftpd.log()


def test_still_serving_after_hostile_clients(sftpd):
    assert "Remote working directory: /" in sftp_batch(sftpd, "pwd\n").stdout


# -- configuration -------------------------------------------------------------------------------------------------
def _refused(tmp_path: Path, lines: str) -> str:
    res = configtest(tmp_path, f"Port 0\n<IfModule mod_sftp.c>\n{lines}\n</IfModule>\n")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    return res.stderr


@pytest.mark.parametrize("line, text", [
    ("SFTPCompression maybe", "unknown compression setting: maybe"),
    ("SFTPCiphers aes256-cbc", "unsupported cipher algorithm: aes256-cbc"),
    ("SFTPDigests umac-64@openssh.com", "unsupported digest algorithm"),
    ("SFTPKeyExchanges diffie-hellman-group-exchange-sha1", "unsupported key exchange algorithm"),
    ("SFTPKeyExchanges curve448-sha512", "proftpy does not implement it"),
    ("SFTPAuthMethods hostbased+hostbased", "unsupportable chain of authentication methods 'hostbased+hostbased'"),
    ("SFTPAuthMethods password+password", "unsupportable chain of authentication methods 'password+password'"),
    ("SFTPAuthMethods publickey+", "unsupported authentication method ''"),
    ("SFTPAuthMethods gssapi-with-mic", "unsupported authentication method 'gssapi-with-mic'"),
    ("SFTPPAMOptions NoSuchOption", "unknown SFTPPAMOption 'NoSuchOption'"),
    ("SFTPOptions NoSuchOption", "unknown SFTPOption 'NoSuchOption'"),
    ("SFTPPassPhraseProvider /bin/true", "SFTPPassPhraseProvider is not supported"),
    ("SFTPHostKey agent:/tmp/x", "not supported"),
    ("SFTPHostKey relative/key", "must be an absolute path"),
    ("SFTPAuthorizedUserKeys redis:/x", "unsupported key store"),
    ("SFTPClientAlive 3", "wrong number of parameters"),
    ("SFTPClientAlive -1 5", "max count '-1' must be equal to or greater than zero"),
    ("SFTPClientAlive 3 soon", "interval 'soon' must be equal to or greater than zero"),
    ("SFTPRekey sometimes", "expected either 'none' or 'required'"),
    ("SFTPRekey required 0", "rekey interval '0' must be greater than zero"),
    ("SFTPRekey required 60 lots", "rekey MB 'lots' must be numeric"),
    ("SFTPRekey required 60 1 0", "rekey timeout '0' must be greater than zero"),
    ("SFTPRekey required 1 2 3 4", "wrong number of parameters"),
])
def test_unfinished_parts_refused_at_load(tmp_path, line, text):
    err = _refused(tmp_path, line)
    assert "t.conf:3:" in err and text in err, err


def test_host_key_files_checked_at_load(tmp_path):
    key = keygen(tmp_path / "k", "ed25519")
    os.chmod(key, 0o644)
    res = configtest(tmp_path, f"Port 0\nSFTPEngine on\nSFTPHostKey {key}\n")
    assert res.returncode == 1 and "t.conf:3: unable to use" in res.stderr and "world-accessible" in res.stderr
    res = configtest(tmp_path, f"Port 0\nSFTPEngine on\nSFTPHostKey {tmp_path}/missing\n")
    assert res.returncode == 1 and "t.conf:3: unable to check" in res.stderr
    os.chmod(key, 0o600)
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(locked)], check=True)
    ec = keygen(tmp_path / "ec", "ecdsa")
    pem = keygen(tmp_path / "pem", "rsa", "-b", "2048", "-m", "PEM")
    res = configtest(tmp_path, f"Port 0\nSFTPEngine on\nSFTPHostKey {key}\nSFTPHostKey {locked}\n"
                               f"SFTPHostKey {ec}\nSFTPHostKey {pem}\n")
    assert res.returncode == 0, res.stderr
    assert "t.conf:4:" in res.stderr and "protected by a passphrase" in res.stderr
    assert "t.conf:5" not in res.stderr and "Syntax OK" in res.stdout


def test_listed_as_module():
    res = subprocess.run([sys.executable, "-m", "proftpy", "-l"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert "mod_sftp.c" in res.stdout and "mod_sftp_sql.c" in res.stdout      # <IfModule mod_sftp_sql.c> holds


def test_rekey_during_transfer(sftpd, tmp_path):
    """The client asks for new keys every 256 KiB: a transfer goes on across them, byte for byte."""
    src = tmp_path / "r.bin"
    src.write_bytes(os.urandom(2 * 1024 * 1024))
    back = tmp_path / "r.back"
    log = sftpd.dir / "sftp.log"                # written from the first session on: maybe not yet
    before = log.read_text().count("rekeyed:") if log.exists() else 0
    sftp_batch(sftpd, f"put {src} r.bin\nget r.bin {back}\nrm r.bin\n", "-o", "RekeyLimit=256K",
               "-o", "Ciphers=aes256-gcm@openssh.com")
    assert back.read_bytes() == src.read_bytes()
    assert (sftpd.dir / "sftp.log").read_text().count("rekeyed:") - before >= 8


def test_max_login_attempts_disconnects(sftpd, tmp_path):
    askpass = tmp_path / "askpass.sh"
    askpass.write_text("#!/bin/sh\necho wrong-password\n")
    askpass.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    res = subprocess.run(["setsid", "-w", "sftp", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                          "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=5", "-P",
                          str(sftpd.sftp_port), "bob@127.0.0.1"], capture_output=True, text=True, timeout=60, env=env,
                         input="pwd\n")
    assert res.returncode != 0
    assert "Maximum login attempts exceeded" in res.stderr                  # the DISCONNECT's text
    assert "Maximum login attempts (2) exceeded, connection refused" in sftpd.log()
    assert "Maximum login attempts (2) exceeded, refusing connection for user 'bob'" in \
        (sftpd.dir / "sftp.log").read_text()


# -- hostile input after login (a minimal client of the tests' own: tests/ssh_client.py) ---------------------------
def _sftp_client(d: Daemon):
    from ssh_client import MiniClient
    c = MiniClient(d.sftp_port)
    assert c.login("bob", PASSWORDS["bob"])
    c.open_sftp()
    return c


def _request(c, kind: int, rid: int, body: bytes) -> tuple[int, bytes]:
    c.data(struct.pack(">IBI", 5 + len(body), kind, rid) + body)
    return c.sftp_reply()


def _s(text: bytes) -> bytes:
    return struct.pack(">I", len(text)) + text


def test_hostile_sftp_requests(sftpd):
    c = _sftp_client(sftpd)
    kind, payload = _request(c, 99, 1, b"")                               # unknown request type
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (1, 8)    # SSH_FX_OP_UNSUPPORTED
    kind, payload = _request(c, 3, 2, _s(b"a\0b") + struct.pack(">II", 1, 0))   # NUL in a path
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (2, 5)    # SSH_FX_BAD_MESSAGE
    kind, payload = _request(c, 3, 3, _s(b"x"))                            # OPEN cut short
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (3, 5)
    kind, payload = _request(c, 5, 4, _s(b"nohandle") + struct.pack(">QI", 0, 10))
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (4, 9)    # SSH_FX_INVALID_HANDLE, as ProFTPD
    kind, payload = _request(c, 3, 5, _s(b"/../../../etc/passwd") + struct.pack(">II", 1, 0))
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (5, 2)    # chrooted: no such file
    kind, payload = _request(c, 20, 6, _s(b"/etc/passwd") + _s(b"pw"))      # a link out of the root...
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (6, 0)
    kind, payload = _request(c, 3, 7, _s(b"pw") + struct.pack(">II", 1, 0))
    assert kind == 101 and struct.unpack(">II", payload[:8]) == (7, 2)    # ... leads nowhere outside it
    kind, payload = _request(c, 16, 8, _s(b"../../.."))
    assert kind == 104 and Reader_name(payload) == "/"
    c.data(struct.pack(">I", 0x7FFFFFFF) + b"\x03")                        # an SFTP length past every bound
    with pytest.raises(Exception):
        c.sftp_reply()
    c.close()
    assert wait_until(lambda: "out of bounds, closing the channel" in (sftpd.dir / "sftp.log").read_text(), 5)
    (sftpd.home("bob") / "pw").unlink()


def Reader_name(payload: bytes) -> str:
    n = struct.unpack(">I", payload[8:12])[0]
    return payload[12:12 + n].decode()


def test_oversized_channel_data_disconnects(sftpd):
    from ssh_client import ServerClosed
    c = _sftp_client(sftpd)
    c.data(b"x" * 40000)                                                   # above the packet size we announced
    with pytest.raises(ServerClosed) as e:
        c.sftp_reply()
    assert e.value.reason == 2                                              # SSH_DISCONNECT_PROTOCOL_ERROR
    c.close()


def test_exec_and_extra_channels_refused(sftpd):
    from proftpy.net.ssh.wire import Writer
    from ssh_client import MiniClient
    c = MiniClient(sftpd.sftp_port)
    assert c.login("bob", PASSWORDS["bob"])
    c.send(Writer().byte(90).string(b"session").u32(1).u32(65536).u32(32768).bytes())
    c.recv()
    c.send(Writer().byte(98).u32(0).string(b"exec").boolean(True).string(b"uname -a").bytes())
    assert c.recv()[0] == 100                                               # CHANNEL_FAILURE: only scp
    c.send(Writer().byte(98).u32(0).string(b"shell").boolean(True).bytes())
    assert c.recv()[0] == 100
    answers = []
    for i in range(2, 13):
        c.send(Writer().byte(90).string(b"session").u32(i).u32(65536).u32(32768).bytes())
        answers.append(c.recv()[0])
    assert answers.count(91) == 9 and answers[-2:] == [92, 92]             # SFTPMaxChannels 10
    c.send(Writer().byte(90).string(b"direct-tcpip").u32(99).u32(65536).u32(32768).string(b"127.0.0.1")
           .u32(22).string(b"127.0.0.1").u32(1).bytes())
    assert c.recv()[0] == 92                                                # no port forwarding
    c.close()


def test_lftp_with_key_and_password(sftpd, tmp_path):
    if shutil.which("lftp") is None:
        pytest.skip("lftp is not installed")
    ssh = (f"ssh -a -x -i {sftpd.dir}/alice_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           "-o BatchMode=yes")
    res = subprocess.run(["lftp", "-e", f"set sftp:connect-program '{ssh}'; put /etc/services -o lf.txt; "
                          f"get lf.txt -o {tmp_path}/lf.back; rm lf.txt; bye",
                          f"sftp://alice:x@127.0.0.1:{sftpd.sftp_port}"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "lf.back").read_bytes() == Path("/etc/services").read_bytes()
    ssh = "ssh -a -x -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no"
    res = subprocess.run(["lftp", "-e", f"set sftp:connect-program '{ssh}'; ls; bye",
                          f"sftp://bob:{PASSWORDS['bob']}@127.0.0.1:{sftpd.sftp_port}"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# -- side by side with Debian's ProFTPD and its mod_sftp -----------------------------------------------------------
def beside_proftpd(tmp_path: Path) -> dict:
    """The users, an ed25519 host key and alice's authorized key (RFC 4716, keys/alice) in `tmp_path`, for runs
    against Debian's ProFTPD (LoadModule mod_sftp.c) and proftpy; skipped where ProFTPD's mod_sftp is missing."""
    from conftest import PROFTPD
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp (proftpd-mod-crypto) is not installed")
    os.chmod(tmp_path, 0o755)
    users = make_users(tmp_path)
    keygen(tmp_path / "host", "ed25519")
    keygen(tmp_path / "user", "ed25519")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "alice").write_text(subprocess.run(["ssh-keygen", "-e", "-f", str(tmp_path / "user.pub")],
                                                            check=True, capture_output=True, text=True).stdout)
    return users


def beside_config(tmp_path: Path, extra: str = "") -> str:
    """The configuration both daemons get for `beside_proftpd`'s files (publickey logins, an SFTPLog, DefaultRoot),
    then `extra`; `{dir}` is each daemon's own run directory."""
    return f"""LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPAuthMethods publickey
SFTPAuthorizedUserKeys file:{tmp_path}/keys/%u
SFTPLog {{dir}}/sftp.log
DefaultRoot ~
{extra}"""


def test_same_session_as_proftpd_mod_sftp(open_tmp_path):
    """The same sftp batch against Debian's ProFTPD (LoadModule mod_sftp.c) and proftpy, with the same users, host
    key and authorized keys: the client's transcript (listings included) and the TransferLog lines match, their
    dates aside. (A directory every user may traverse: ProFTPD looks at the home as the user before the chroot.)"""
    tmp_path = open_tmp_path
    from conftest import side_by_side
    users = beside_proftpd(tmp_path)
    home = users["alice"][2]
    (home / "old.txt").write_text("old\n")
    os.utime(home / "old.txt", (1_600_000_000, 1_600_000_000))
    os.chown(home / "old.txt", users["alice"][0], users["alice"][1])
    config = f"""LoadModule mod_sftp.c
SFTPEngine on
SFTPHostKey {tmp_path}/host
SFTPAuthMethods publickey password
SFTPAuthorizedUserKeys file:{tmp_path}/keys/%u
SFTPLog {{dir}}/sftp.log
TransferLog {{dir}}/xferlog
DefaultRoot ~
"""
    batch = tmp_path / "batch"
    batch.write_text(f"pwd\nls -l\nput /etc/services s.txt\nget s.txt {tmp_path}/back\nmkdir d1\nls -l d1\n"
                     "rename s.txt d1/x.txt\nls d1\n-rm nonexistent\n-get /etc/passwd /dev/null\nrm d1/x.txt\n"
                     "rmdir d1\n-rmdir d1\nls -l\n")

    def drive(port: int, run: Path) -> tuple[str, list[str]]:
        res = subprocess.run(["sftp", "-b", str(batch), "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port),
                              "alice@127.0.0.1"], capture_output=True, text=True, timeout=60)
        xferlog = run / "xferlog"
        lines = [" ".join(x.split()[5:]) for x in xferlog.read_text().splitlines()] if xferlog.exists() else []
        transcript = res.stdout + res.stderr.replace(str(port), "PORT")
        return transcript, lines

    results = side_by_side(tmp_path, config, drive)
    assert results["proftpy"][0] == results["proftpd"][0]
    assert results["proftpy"][1] == results["proftpd"][1]


def test_timeout_stalled_while_a_file_is_open(sftpd):
    from ssh_client import ServerClosed
    (sftpd.home("bob") / "stall.txt").write_text("x")
    c = _sftp_client(sftpd)
    kind, payload = _request(c, 3, 1, _s(b"stall.txt") + struct.pack(">II", 1, 0))
    assert kind == 102                                                      # a handle: the file is open
    start = time.monotonic()
    with pytest.raises(ServerClosed) as e:
        c.sftp_reply()                                                      # nothing asked: the server ends it
    assert 2 < time.monotonic() - start < 10
    assert e.value.reason == 11 and e.value.text == "data stalled timeout reached"
    c.close()
    assert "SFTP data transfer stalled timeout (3 secs) reached" in (sftpd.dir / "sftp.log").read_text()
    assert wait_until(lambda: f"{sftpd.home('bob')}/stall.txt b _ o r bob sftp 0 * i"      # logged incomplete
                      in (sftpd.dir / "xferlog").read_text(), 5)


def test_compression(sftpd, tmp_path):
    """SFTPCompression delayed (Debian's sample): OpenSSH's zlib@openssh.com after authentication, and curl's."""
    src = tmp_path / "z.txt"
    src.write_bytes(b"compressible line of text\n" * 200000)
    back = tmp_path / "z.back"
    sftp_batch(sftpd, f"put {src} z.txt\nget z.txt {back}\n", "-C")
    assert back.read_bytes() == src.read_bytes()
    line = [x for x in (sftpd.dir / "sftp.log").read_text().splitlines() if "keyed:" in x][-1]
    assert "compression zlib@openssh.com/zlib@openssh.com" in line
    got = curl(sftpd, "--compressed-ssh", f"sftp://127.0.0.1:{sftpd.sftp_port}/z.txt")
    assert got.returncode == 0 and got.stdout == src.read_bytes()
    (sftpd.home("alice") / "z.txt").unlink()


def test_reload_keeps_serving(sftpd):
    """SIGHUP reads the host keys again; sessions go on being served with them."""
    import signal
    before = sftpd.log().count("configuration reloaded")
    os.kill(sftpd.master_pid, signal.SIGHUP)
    assert wait_until(lambda: sftpd.log().count("configuration reloaded") > before, 5)
    assert "Remote working directory: /" in sftp_batch(sftpd, "pwd\n").stdout


def test_hidden_stores_and_max_store_file_size(sftpd):
    """HiddenStores: the upload lands under its temporary name and is renamed at CLOSE, and an upload cut off
    leaves nothing; MaxStoreFileSize refuses the write that passes it."""
    c = _sftp_client(sftpd)
    kind, payload = _request(c, 3, 1, _s(b"hs/f.txt") + struct.pack(">II", 0x1A, 0))      # WRITE|CREAT|TRUNC
    assert kind == 102
    handle = payload[4:]
    assert [p.name for p in (sftpd.home("bob") / "hs").iterdir()] == [".in.f.txt."]
    kind, payload = _request(c, 6, 2, handle + struct.pack(">Q", 0) + _s(b"data"))
    assert struct.unpack(">II", payload[:8]) == (2, 0)
    kind, payload = _request(c, 4, 3, handle)
    assert struct.unpack(">II", payload[:8]) == (3, 0)
    assert [p.name for p in (sftpd.home("bob") / "hs").iterdir()] == ["f.txt"]
    assert (sftpd.home("bob") / "hs" / "f.txt").read_bytes() == b"data"
    kind, payload = _request(c, 3, 4, _s(b"hs/cut.txt") + struct.pack(">II", 0x1A, 0))
    handle = payload[4:]
    _request(c, 6, 5, handle + struct.pack(">Q", 0) + _s(b"partial"))
    kind, payload = _request(c, 3, 6, _s(b"small/big.txt") + struct.pack(">II", 0x1A, 0))
    big = payload[4:]
    kind, payload = _request(c, 6, 7, big + struct.pack(">Q", 0) + _s(b"x" * 900))
    assert struct.unpack(">II", payload[:8]) == (7, 0)
    kind, payload = _request(c, 6, 8, big + struct.pack(">Q", 900) + _s(b"x" * 200))
    assert struct.unpack(">II", payload[:8]) == (8, 4)                      # SSH_FX_FAILURE: File too large
    c.close()                                                               # the hidden upload is cut off
    assert wait_until(lambda: sorted(p.name for p in (sftpd.home("bob") / "hs").iterdir()) == ["f.txt"], 5)
    assert (sftpd.home("bob") / "small" / "big.txt").stat().st_size == 900
    assert "MaxStoreFileSize (1000 bytes) reached" in sftpd.log()


def test_openssh_scp_over_sftp_and_legacy_scp(sftpd, tmp_path):
    """OpenSSH's scp over SFTP, and `scp -O` (the exec request `scp -t`/`scp -f`) with -r and -p: trees up and
    down byte for byte, modes and times kept, TransferLog lines as SFTP's, `<Limit WRITE>` an scp error."""
    scp = ["scp", "-i", str(sftpd.dir / "alice_ed25519"), *SSH_OPTS, "-P", str(sftpd.sftp_port)]
    res = subprocess.run(scp + ["/etc/services", "alice@127.0.0.1:scp.txt"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert (sftpd.home("alice") / "scp.txt").read_bytes() == Path("/etc/services").read_bytes()
    (sftpd.home("alice") / "scp.txt").unlink()
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "a.bin").write_bytes(os.urandom(300000))
    (tree / "sub" / "b.txt").write_text("b\n")
    (tree / "sub" / "deeper" / "empty").write_bytes(b"")
    os.chmod(tree / "sub" / "b.txt", 0o640)
    os.utime(tree / "a.bin", (1000000000, 1000000000))
    res = subprocess.run(scp + ["-O", "-r", "-p", str(tree), "alice@127.0.0.1:"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, (res.stderr, _tail(sftpd.dir / "sftp.log"))
    up = sftpd.home("alice") / "tree"
    assert (up / "a.bin").read_bytes() == (tree / "a.bin").read_bytes()
    assert (up / "sub" / "deeper" / "empty").read_bytes() == b""
    assert (up / "sub" / "b.txt").stat().st_mode & 0o777 == 0o640
    assert int((up / "a.bin").stat().st_mtime) == 1000000000
    assert (up / "a.bin").stat().st_uid == sftpd.uid("alice")
    back = tmp_path / "back"
    back.mkdir()
    res = subprocess.run(scp + ["-O", "-r", "-p", "alice@127.0.0.1:tree", str(back)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, (res.stderr, _tail(sftpd.dir / "sftp.log"))
    assert (back / "tree" / "a.bin").read_bytes() == (tree / "a.bin").read_bytes()
    assert (back / "tree" / "sub" / "b.txt").read_text() == "b\n"
    assert int((back / "tree" / "a.bin").stat().st_mtime) == 1000000000
    res = subprocess.run(scp + ["-O", "alice@127.0.0.1:tree/sub/b.txt", str(tmp_path / "one.txt")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and (tmp_path / "one.txt").read_text() == "b\n"
    xferlog = (sftpd.dir / "xferlog").read_text()
    assert f" 300000 {sftpd.home('alice')}/tree/a.bin b _ i r alice scp 0 * c" in xferlog
    assert f" 300000 {sftpd.home('alice')}/tree/a.bin b _ o r alice scp 0 * c" in xferlog
    # refused and missing paths: the scp error line reaches the client, nothing is written
    res = subprocess.run(scp + ["-O", "/etc/hostname", "alice@127.0.0.1:ro/new.txt"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode != 0 and "ro/new.txt: Permission denied" in res.stderr
    assert not (sftpd.home("alice") / "ro" / "new.txt").exists()
    res = subprocess.run(scp + ["-O", "alice@127.0.0.1:nothing.txt", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode != 0 and "nothing.txt: No such file or directory" in res.stderr
    res = subprocess.run(scp + ["-O", "alice@127.0.0.1:tree", str(tmp_path / "x")], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode != 0 and "tree: Operation not permitted" in res.stderr
    shutil.rmtree(up)


def _scp_channel(d: Daemon, command: bytes):
    from proftpy.net.ssh.wire import Reader, Writer
    from ssh_client import MiniClient
    c = MiniClient(d.sftp_port)
    assert c.login("bob", PASSWORDS["bob"])
    c.send(Writer().byte(90).string(b"session").u32(7).u32(1 << 20).u32(32768).bytes())
    confirm = Reader(c.recv(), 1)
    confirm.u32()
    c.remote = confirm.u32()
    c.send(Writer().byte(98).u32(c.remote).string(b"exec").boolean(True).string(command).bytes())
    return c


def _scp_read(c, until: float = 5.0) -> tuple[bytes, int | None]:
    """What the server sent on the channel until it closed it, and the exit status."""
    from proftpy.net.ssh.wire import Reader
    out, status = b"", None
    c.sock.settimeout(until)
    while True:
        payload = c.recv()
        r = Reader(payload, 1)
        if payload[0] == 94:
            r.u32()
            out += r.string()
        elif payload[0] == 98:
            r.u32()
            if r.text() == "exit-status":
                r.boolean()
                status = r.u32()
        elif payload[0] == 97:
            return out, status


@pytest.mark.parametrize("lines, expect", [
    (b"C0644 5 ../evil.txt\nhello\0", b"\x02scp: error: unexpected filename: ../evil.txt\n"),
    (b"C0644 5 a/b\nhello\0", b"\x02scp: error: unexpected filename: a/b\n"),
    (b"C0644 5 ..\n", b"\x02scp: error: unexpected filename: ..\n"),
    (b"C0644 -5 neg.txt\n", b"\x02scp: protocol error: bad 'C' or 'D' line\n"),
    (b"C0644 99999999999999999999 big.txt\n", b"\x02scp: protocol error: bad 'C' or 'D' line\n"),
    (b"C9999 5 x.txt\n", b"\x02scp: protocol error: bad 'C' or 'D' line\n"),
    (b"Cxyz\n", b"\x02scp: protocol error: bad 'C' or 'D' line\n"),
    (b"D0755 0 dir\n", b"\x02scp: received directory without -r\n"),
    (b"E\n", b"\x02scp: protocol error: unexpected 'E' line\n"),
    (b"T12 0\n", b"\x02scp: protocol error: bad 'T' line\n"),
    (b"Q what\n", b"\x02scp: protocol error: expected control record\n"),
    (b"C0644 1 " + b"n" * 9000 + b"\n", b"\x02scp: protocol error: line too long\n"),
])
def test_hostile_scp_input(sftpd, lines, expect):
    from proftpy.net.ssh.wire import Writer
    c = _scp_channel(sftpd, b"scp -t .")
    assert c.recv()[0] == 99                                                # CHANNEL_SUCCESS
    c.data(lines)
    c.send(Writer().byte(96).u32(c.remote).bytes())                        # EOF
    out, status = _scp_read(c)
    c.close()
    assert out == b"\0" + expect and status == 1
    home = sftpd.home("bob")
    assert not (home.parent / "evil.txt").exists() and not (home / "a").exists()
    assert not any(p.name in ("neg.txt", "big.txt", "x.txt", "dir") for p in home.iterdir())


def test_scp_hidden_stores_overwrite_and_umask(sftpd):
    """An scp upload into a HiddenStores directory lands under its final name only; a second upload of an existing
    file is refused (AllowOverwrite is off by default) with the file left as it was; the C line's mode passes the
    Umask (022)."""
    from proftpy.net.ssh.wire import Writer
    for body, expect in ((b"C0777 4 up.txt\nfirs\0", b"\0\0\0"),
                         (b"C0644 6 up.txt\nsecond\0", b"\0\x01hs/up.txt: Permission denied\n")):
        c = _scp_channel(sftpd, b"scp -t hs")
        assert c.recv()[0] == 99
        c.data(body)
        c.send(Writer().byte(96).u32(c.remote).bytes())
        out, status = _scp_read(c)
        c.close()
        assert out == expect, out
    target = sftpd.home("bob") / "hs" / "up.txt"
    assert target.read_bytes() == b"firs" and target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".in.")] == []
    target.unlink()


def test_fuzzed_scp_input_never_crashes(sftpd):
    """Random C/D/T/E lines, bytes and cut-off data to `scp -t -r -p` and `scp -f`: each channel ends with an exit
    status, nothing lands outside the home, the SFTPLog has no internal error."""
    import random
    from proftpy.net.ssh.wire import Writer
    rnd = random.Random(4256)
    pieces = [b"C0644 3 f.txt\n", b"D0755 0 d\n", b"E\n", b"T1 0 1 0\n", b"\0", b"\x01oops\n", b"\x02bad\n",
              b"C0644 99 ../x\n", b"C7777 0 .hidden\n", b"abc", b"\n", b"D0000 0 ..\n", b"C0644 1 a\x00b\n"]
    for i in range(12):
        c = _scp_channel(sftpd, b"scp -r -p -t ." if i % 3 else b"scp -r -p -f .")
        assert c.recv()[0] == 99
        c.data(b"".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12))) + bytes(rnd.randrange(256)
                                                                                     for _ in range(5)))
        c.send(Writer().byte(96).u32(c.remote).bytes())
        _out, status = _scp_read(c)
        c.close()
        assert status is not None
    assert "internal error" not in (sftpd.dir / "sftp.log").read_text()
    assert "Traceback" not in sftpd.log()
    assert not (sftpd.home("bob").parent / "x").exists()


def test_scp_sizes_and_commands(sftpd):
    """A file shorter than its C line promised is cut off (and removed: DeleteAbortedStores is off, HiddenStores
    on in hs/); MaxStoreFileSize refuses by the size announced; commands other than scp stay refused."""
    from proftpy.net.ssh.wire import Writer
    c = _scp_channel(sftpd, b"scp -t hs")
    assert c.recv()[0] == 99
    c.data(b"C0644 100 short.txt\nonly a few bytes")
    c.send(Writer().byte(96).u32(c.remote).bytes())
    out, status = _scp_read(c)
    c.close()
    assert out == b"\0\0" and status == 1
    assert not any((sftpd.home("bob") / "hs").glob("*short*"))
    c = _scp_channel(sftpd, b"scp -t small/")
    assert c.recv()[0] == 99
    c.data(b"C0644 5000 huge.txt\nC0600 3 ok.txt\nabc\0")
    c.send(Writer().byte(96).u32(c.remote).bytes())
    out, status = _scp_read(c)
    c.close()
    assert out == b"\0\x01small/huge.txt: File too large\n\0\0" and status == 1
    assert (sftpd.home("bob") / "small" / "ok.txt").read_bytes() == b"abc"
    assert not (sftpd.home("bob") / "small" / "huge.txt").exists()
    (sftpd.home("bob") / "small" / "ok.txt").unlink()
    for command in (b"ls /", b"scp -x -t .", b"scp /etc/passwd", b"sh -c 'scp -t .'", b"scp -t a b"):
        c = _scp_channel(sftpd, command)
        assert c.recv()[0] == 100, command                                  # CHANNEL_FAILURE
        c.close()
    c = _scp_channel(sftpd, b"scp -f /../../etc/passwd")
    assert c.recv()[0] == 99
    c.data(b"\0")
    out, status = _scp_read(c)
    c.close()
    assert out == b"\x01/../../etc/passwd: No such file or directory\n" and status == 1


def test_max_clients_per_user_disconnects_with_protocol_text(ftpd, tmp_path):
    """A module's refusal at login (here MaxClientsPerUser) reaches an SSH client as ProFTPD's mod_sftp words it:
    SSH_DISCONNECT_TOO_MANY_CONNECTIONS, "Maximum connections for host/user reached"."""
    from ssh_client import MiniClient, ServerClosed
    keygen(tmp_path / "hostkey", "ed25519")
    d = ftpd(f"SFTPEngine on\nSFTPHostKey {tmp_path}/hostkey\nMaxClientsPerUser 1\nDefaultRoot ~\nSyslogLevel info\n")
    d.sftp_port = d.port
    first = MiniClient(d.port)
    assert first.login("bob", PASSWORDS["bob"])
    second = MiniClient(d.port)
    with pytest.raises(ServerClosed) as e:
        second.login("bob", PASSWORDS["bob"])
    assert (e.value.reason, e.value.text) == (12, "Maximum connections for host/user reached")
    first.close()
    second.close()
    assert "Connection refused (MaxClientsPerUser)" in d.log()
    assert wait_until(lambda: d.log().count("SSH2 session closed.") == 2, 5)
    assert "SSH2 session opened." in d.log() and "FTP session" not in d.log()


# -- without root: fs.py's jail instead of chroot ------------------------------------------------------------------
DEV_UID = 2397          # an ordinary user who starts the daemon (not one of the FTP users)


@contextlib.contextmanager
def jailed_daemon(extra: str = ""):
    """proftpy started by an ordinary user (DEV_UID) with DefaultRoot ~ and `extra` configuration lines, in a
    directory of its own with an `outside` directory beside the homes (its `secret.txt` holds "secret\\n"):
    the Daemon, listening."""
    import tempfile
    from conftest import AUTH_CONFIG, BASE_CONFIG, daemon_as_user
    base = Path(tempfile.mkdtemp(prefix="proftpy-sftp-jail-"))
    try:
        users = make_users(base)
        outside = base / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("secret\n")
        keygen(base / "hostkey", "ed25519")
        for path in [base / "ftpd.passwd", base / "ftpd.group", base, base / "home", outside, outside / "secret.txt",
                     base / "hostkey", *(u[2] for u in users.values())]:
            os.chown(path, DEV_UID, DEV_UID)
        d = Daemon(dir=base, port=free_port(), conf=base / "proftpy.conf",
                   users={name: (DEV_UID, DEV_UID, home) for name, (_, _, home) in users.items()})
        d.conf.write_text(fill(f"SFTPEngine on\nSFTPHostKey {base}/hostkey\nSFTPLog {base}/sftp.log\nDefaultRoot ~\n"
                               + extra + BASE_CONFIG + AUTH_CONFIG,
                               dict(port=d.port, dir=base, host="127.0.0.1", ipv6="off", home=base / "home")))
        with daemon_as_user(d, DEV_UID):
            d.sftp_port = d.port
            assert wait_until(lambda: listening(d.port), 10)
            yield d
    finally:
        shutil.rmtree(base)


def test_jail_without_root_keeps_sftp_inside():
    """proftpy started by an ordinary user with DefaultRoot ~: no kernel chroot, fs.py's jail confines every SFTP
    path (links out of the root, `..`, renames out), as it does FTP's."""
    from ssh_client import MiniClient
    with jailed_daemon() as d:
        outside = d.dir / "outside"
        c = MiniClient(d.port)
        assert c.login("bob", PASSWORDS["bob"])
        c.open_sftp()
        secret = str(outside / "secret.txt").encode()
        for rid, path in enumerate((b"../../outside/secret.txt", secret, b"/../outside/secret.txt"), 1):
            kind, payload = _request(c, 3, rid, _s(path) + struct.pack(">II", 1, 0))
            assert kind == 101 and struct.unpack(">I", payload[4:8])[0] == 2, path      # no such file
        kind, payload = _request(c, 20, 10, _s(secret) + _s(b"link"))                    # a link to it...
        assert struct.unpack(">I", payload[4:8])[0] == 0
        kind, payload = _request(c, 3, 11, _s(b"link") + struct.pack(">II", 1, 0))       # ...resolves inside
        assert kind == 101 and struct.unpack(">I", payload[4:8])[0] == 2
        kind, payload = _request(c, 16, 12, _s(b"../../.."))
        assert kind == 104 and Reader_name(payload) == "/"
        (d.home("bob") / "mine.txt").write_text("mine\n")
        kind, payload = _request(c, 200, 13, _s(b"posix-rename@openssh.com") + _s(b"mine.txt")
                                 + _s(b"../../outside/moved.txt"))
        assert not (outside / "moved.txt").exists()
        kind, payload = _request(c, 11, 14, _s(b"/"))
        handle = payload[4:]
        kind, payload = _request(c, 12, 15, handle)
        assert kind == 104 and b"outside" not in payload and b"ftpd.passwd" not in payload
        c.close()
        assert (outside / "secret.txt").read_text() == "secret\n"
        assert "Traceback" not in d.log()


def test_display_banner_before_authentication(sftpd):
    from ssh_client import MiniClient
    c = MiniClient(sftpd.sftp_port)
    assert c.login("bob", PASSWORDS["bob"])
    assert c.banner == "Welcome to sftp\r\nAuthorized users only.\r\n"
    c.close()


def test_fuzzed_sftp_requests_never_crash_the_session(sftpd):
    """Random SFTP requests (every type, random bodies; a fixed seed): each gets an answer or a clean end of the
    channel, and the SystemLog has no traceback."""
    import random
    from ssh_client import ServerClosed
    rnd = random.Random(4253)
    c = _sftp_client(sftpd)
    answered = 0
    for rid in range(1, 301):
        kind = rnd.choice(list(range(3, 21)) + [200, 99])
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((0, 3, 8, 20, 60))))
        if rnd.random() < 0.5:                          # often a plausible string first
            body = _s(rnd.choice([b".", b"/", b"..", b"x", b"ro", b"\xff\xfe", b"a" * 5000])) + body
        try:
            reply_kind, payload = _request(c, kind, rid, body)
        except ServerClosed:
            break
        assert struct.unpack(">I", payload[:4])[0] == rid
        answered += 1
    c.close()
    home = sftpd.home("bob")
    os.chmod(home, 0o755)                               # a random SETSTAT may have changed the home's mode
    os.chown(home, sftpd.uid("bob"), sftpd.users["bob"][1])
    assert answered > 250
    assert "Traceback" not in sftpd.log() and "internal error" not in sftpd.log()


def test_fuzzed_connection_messages_end_cleanly(sftpd):
    """Random connection-layer messages after login (fixed seeds): the server answers, ignores or disconnects with
    a reason; never a traceback."""
    import random
    from ssh_client import MiniClient, ServerClosed
    for seed in range(8):
        rnd = random.Random(seed)
        c = MiniClient(sftpd.sftp_port)
        assert c.login("bob", PASSWORDS["bob"])
        try:
            for _ in range(40):
                kind = rnd.choice([2, 3, 4, 5, 20, 21, 30, 50, 60, 80, 81, 90, 91, 93, 94, 95, 96, 97, 98, 99, 100,
                                   150, 255])
                body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((0, 4, 9, 16, 40))))
                c.send(bytes((kind,)) + body)
            c.send(b"\x02")                              # then wait for whatever comes back, to the end
            c.sock.settimeout(3)
            while True:
                c.recv()
        except (ServerClosed, TimeoutError, OSError):
            pass
        c.close()
    assert wait_until(lambda: "Traceback" not in sftpd.log(), 1)
    assert "internal error" not in sftpd.log()
    assert "Remote working directory: /" in sftp_batch(sftpd, "pwd\n").stdout


# -- keyboard-interactive through PAM (mod_sftp_pam), method chains -----------------------------------------------
def _askpass(tmp_path: Path, answer: str) -> dict:
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{answer}'\n")
    askpass.chmod(0o755)
    return dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")


def _interactive_sftp(d: Daemon, env: dict, user: str, *opts: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setsid", "-w", "sftp", "-o", "StrictHostKeyChecking=no", "-o",
                           "UserKnownHostsFile=/dev/null", *opts, "-P", str(d.kbd_port), f"{user}@127.0.0.1"],
                          capture_output=True, text=True, timeout=60, env=env, input="pwd\n")


def test_keyboard_interactive_through_pam(sftpd, tmp_path):
    """OpenSSH's keyboard-interactive: PAM's prompt (pam_exec's "Password: ") is the INFO_REQUEST, the answer goes
    back to PAM; a wrong answer is refused by PAM."""
    opts = ("-o", "KbdInteractiveAuthentication=yes", "-o", "PreferredAuthentications=keyboard-interactive",
            "-o", "PubkeyAuthentication=no")
    res = _interactive_sftp(sftpd, _askpass(tmp_path, PASSWORDS["bob"]), "bob", *opts)
    assert res.returncode == 0 and "Remote working directory: /" in res.stdout, (res.stderr,
                                                                                 _tail(sftpd.dir / "sftp-kbd.log"))
    log = (sftpd.dir / "sftp-kbd.log").read_text()
    assert f"using PAM service name '{sftpd.pam_service}'" in log
    assert "user 'bob' authenticated via 'keyboard-interactive' method" in log
    res = _interactive_sftp(sftpd, _askpass(tmp_path, "wrong"), "bob", *opts)
    assert res.returncode != 0 and "Permission denied" in res.stderr
    assert "keyboard-interactive authentication of 'bob' failed: PAM authentication error" in \
        (sftpd.dir / "sftp-kbd.log").read_text()


def test_publickey_plus_password_chain(sftpd, tmp_path):
    """`publickey+password`: the key alone is a partial success, the password then logs in; the password alone is
    not offered."""
    key = ("-i", str(sftpd.dir / "alice_ed25519"), "-o", "PreferredAuthentications=publickey,password")
    res = _interactive_sftp(sftpd, _askpass(tmp_path, PASSWORDS["alice"]), "alice", *key)
    assert res.returncode == 0 and "Remote working directory: /" in res.stdout, (res.stderr,
                                                                                 _tail(sftpd.dir / "sftp-kbd.log"))
    log = (sftpd.dir / "sftp-kbd.log").read_text()
    assert "user 'alice' authenticated via 'publickey' method, next methods: password" in log
    assert "user 'alice' authenticated via 'publickey+password' method" in log
    res = _interactive_sftp(sftpd, _askpass(tmp_path, "wrong"), "alice", *key)
    assert res.returncode != 0
    res = _interactive_sftp(sftpd, _askpass(tmp_path, PASSWORDS["alice"]), "alice", "-o",
                            "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no")
    assert res.returncode != 0 and "Permission denied" in res.stderr


def test_hostile_keyboard_interactive(sftpd):
    """INFO_RESPONSE with the wrong count of answers: a disconnect; a USERAUTH_REQUEST in the middle of the exchange
    ends it and is served."""
    from proftpy.net.ssh.wire import Writer
    from ssh_client import MiniClient, ServerClosed
    c = MiniClient(sftpd.kbd_port)
    c.send(Writer().byte(5).string(b"ssh-userauth").bytes())
    assert c.recv()[0] == 6
    kbd = Writer().byte(50).string(b"bob").string(b"ssh-connection").string(b"keyboard-interactive").string(b"") \
        .string(b"").bytes()
    c.send(kbd)
    assert c.recv()[0] == 60                                                # INFO_REQUEST: PAM's prompt
    c.send(Writer().byte(50).string(b"bob").string(b"ssh-connection").string(b"none").bytes())
    answer = c.recv()
    assert answer[0] == 51 and b"keyboard-interactive" in answer            # the "none" request was served
    c.send(kbd)
    assert c.recv()[0] == 60
    c.send(Writer().byte(61).u32(5).string(b"a").bytes())
    with pytest.raises(ServerClosed) as e:
        c.recv()
    assert e.value.reason == 2
    c.close()
    assert "keyboard-interactive prompts, disconnecting" in (sftpd.dir / "sftp-kbd.log").read_text()


def test_same_scp_as_proftpd_mod_sftp(open_tmp_path):
    """`scp -O` against Debian's ProFTPD (mod_sftp's scp) and proftpy: a tree up and down with -r -p, a file
    downloaded, a missing one; the client's exit codes and messages, the files and the TransferLog lines match."""
    tmp_path = open_tmp_path
    from conftest import side_by_side
    users = beside_proftpd(tmp_path)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.bin").write_bytes(os.urandom(70000))
    (tree / "sub" / "b.txt").write_text("b\n")
    os.chmod(tree / "sub" / "b.txt", 0o640)
    os.utime(tree / "a.bin", (1_500_000_000, 1_500_000_000))
    config = beside_config(tmp_path, "TransferLog {dir}/xferlog\n")
    home = users["alice"][2]

    def drive(port: int, run: Path) -> tuple:
        scp = ["scp", "-O", "-i", str(tmp_path / "user"), *SSH_OPTS, "-P", str(port)]
        back = run / "back"
        back.mkdir()
        out = []
        for args in (["-r", "-p", str(tree), "alice@127.0.0.1:"], ["-r", "-p", "alice@127.0.0.1:tree", str(back)],
                     ["alice@127.0.0.1:tree/sub/b.txt", str(back / "one.txt")],
                     ["alice@127.0.0.1:missing.txt", str(back)], ["alice@127.0.0.1:tree", str(back / "x")],
                     ["/etc/hostname", "alice@127.0.0.1:nodir/x.txt"]):
            res = subprocess.run(scp + args, capture_output=True, text=True, timeout=60)
            out.append((res.returncode, res.stderr.replace(str(port), "PORT")))
        files = sorted((str(p.relative_to(back)), p.stat().st_mode & 0o7777,     # times kept by -p (tree/) only
                        int(p.stat().st_mtime) if p.is_file() and p.parts[-2] != "back" else 0,
                        p.read_bytes() if p.is_file() else b"") for p in back.rglob("*"))
        up = sorted((str(p.relative_to(home)), p.stat().st_mode & 0o7777) for p in (home / "tree").rglob("*"))
        shutil.rmtree(home / "tree")
        xferlog = run / "xferlog"
        lines = [" ".join(x.split()[5:]) for x in xferlog.read_text().splitlines()] if xferlog.exists() else []
        return out, files, up, lines

    results = side_by_side(tmp_path, config, drive)
    for i, what in enumerate(("client", "files down", "files up", "xferlog")):
        assert results["proftpy"][i] == results["proftpd"][i], (what, results["proftpy"][i], results["proftpd"][i])


@contextlib.contextmanager
def pam_exec_service(tmp_path: Path, password: str):
    """A PAM service in /etc/pam.d whose one prompt (pam_exec's) takes `password` alone; its name, removed after."""
    service = f"proftpy-test-pam-{os.getpid()}"
    check = tmp_path / "check.sh"
    check.write_text(f'#!/bin/sh\npw=$(head -c 200 | tr -d "\\000")\n[ "$pw" = "{password}" ]\n')
    check.chmod(0o755)
    pam_file = Path("/etc/pam.d") / service
    pam_file.write_text(f"auth required pam_exec.so expose_authtok quiet {check}\nauth required pam_permit.so\n"
                        "account required pam_permit.so\nsession required pam_permit.so\n")
    try:
        yield service
    finally:
        pam_file.unlink()


def answered_sftp(port: int, run: Path, user: str, answer: str, *opts: str) -> subprocess.CompletedProcess:
    """OpenSSH's sftp (`pwd`) whose every prompt is answered `answer` (SSH_ASKPASS), once."""
    askpass = run / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{answer}'\n")
    askpass.chmod(0o755)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    return subprocess.run(["setsid", "-w", "sftp", "-o", "StrictHostKeyChecking=no", "-o",
                           "UserKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1", *opts, "-P",
                           str(port), f"{user}@127.0.0.1"], capture_output=True, text=True, timeout=60,
                          env=env, input="pwd\n")


def test_same_logins_as_proftpd_mod_sftp_pam(open_tmp_path):
    """keyboard-interactive through the same PAM service and a publickey+password chain, against Debian's ProFTPD
    (LoadModule mod_sftp_pam.c) and proftpy: who gets in and who does not."""
    tmp_path = open_tmp_path
    from conftest import PROFTPD, side_by_side
    if not os.path.exists(PROFTPD) or not os.path.exists("/usr/lib/proftpd/mod_sftp_pam.so"):
        pytest.skip("Debian's ProFTPD with mod_sftp_pam (proftpd-mod-crypto) is not installed")
    make_users(tmp_path)
    keygen(tmp_path / "host", "ed25519")
    keygen(tmp_path / "user", "ed25519")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "alice").write_text(subprocess.run(["ssh-keygen", "-e", "-f", str(tmp_path / "user.pub")],
                                                            check=True, capture_output=True, text=True).stdout)
    config = """LoadModule mod_sftp.c
LoadModule mod_sftp_pam.c
SFTPEngine on
SFTPHostKey {base}/host
SFTPAuthMethods keyboard-interactive publickey+password
SFTPAuthorizedUserKeys file:{base}/keys/%u
SFTPPAMServiceName {service}
SFTPPAMOptions NoTTY
SFTPLog {dir}/sftp.log
DefaultRoot ~
"""

    def drive(port: int, run: Path) -> list:
        out = []
        for user, answer, opts in (
                ("bob", PASSWORDS["bob"], ("-o", "PreferredAuthentications=keyboard-interactive")),
                ("bob", "wrong", ("-o", "PreferredAuthentications=keyboard-interactive")),
                ("alice", PASSWORDS["alice"], ("-i", str(tmp_path / "user"), "-o",
                                               "PreferredAuthentications=publickey,password")),
                ("alice", "wrong", ("-i", str(tmp_path / "user"), "-o",
                                    "PreferredAuthentications=publickey,password")),
                ("alice", PASSWORDS["alice"], ("-o", "PreferredAuthentications=password"))):
            res = answered_sftp(port, run, user, answer, *opts)
            out.append((user, answer == "wrong", res.returncode, res.stdout))
        return out

    with pam_exec_service(tmp_path, PASSWORDS["bob"]) as service:
        results = side_by_side(tmp_path, config.replace("{service}", service), drive)
    assert [r[2] for r in results["proftpd"]] == [0, 255, 0, 255, 255]        # the test tests something
    assert results["proftpy"] == results["proftpd"], (results["proftpy"], results["proftpd"])
