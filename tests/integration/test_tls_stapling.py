"""OCSP stapling (`TLSStapling on`) with real clients: `openssl s_client -status` on explicit (AUTH TLS) and
implicit FTPS and on a PROT P data connection gets the response of a real responder (tests/ocsp_helpers.py:
`openssl ocsp` behind a loopback HTTP server of the test's own), good or revoked as its index says; TLSStaplingCache
fs: keeps it (responder stopped: still stapled); a responder that never answers costs TLSStaplingTimeout, then a
fake tryLater (or nothing with NoFakeTryLater); bad configurations are FILE:LINE errors. Side by side with
Debian's ProFTPD (same certificates, same responder) where it has mod_tls."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, Daemon, fill, free_port, refused_config, start_daemon, wait_until
from ocsp_helpers import Responder, TlsRelay, make_ocsp_pki
from proftpy.net import x509
from tls_helpers import FTPS

HEAD = """\
ServerType standalone
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
UseReverseDNS off
"""                                     # both daemons'
CONFIG = 'ServerName "stapling"\n' + HEAD + """\
PidFile {dir}/proftpy.pid
ScoreboardFile {dir}/proftpy.scoreboard
SystemLog {dir}/system.log
ControlsSocket {dir}/proftpy.sock
DelayEngine off
TraceLog {dir}/trace.log
Trace tls:20
AuthOrder mod_auth_file.c
AuthUserFile {dir}/ftpd.passwd
AuthGroupFile {dir}/ftpd.group
RequireValidShell off
UseFtpUsers off
TLSEngine on
TLSLog {dir}/tls.log
TLSOptions NoSessionReuseRequired{implicit}
TLSECCertificateFile {pki}/{cert}.pem
TLSECCertificateKeyFile {pki}/{cert}.key
TLSCACertificateFile {pki}/ca.pem
TLSStapling on
{extra}
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("ocsp-pki")
    d.chmod(0o755)
    port = free_port()
    make_ocsp_pki(d, port)
    for key in d.glob("*.key"):
        key.chmod(0o644)                # ProFTPD's session reads them as nobody in the side-by-side tests
    (d / "responder.port").write_text(str(port))
    return d


@pytest.fixture
def responder(pki):
    r = Responder(pki, int((pki / "responder.port").read_text())).start()
    yield r
    r.remove()


@pytest.fixture
def daemon(tmp_path, pki):
    started = []

    def start(cert: str = "good", extra: str = "", implicit: bool = False) -> Daemon:
        from conftest import make_users
        d = Daemon(dir=tmp_path, port=free_port(), conf=tmp_path / "proftpy.conf")
        tmp_path.chmod(0o755)
        if not (tmp_path / "ftpd.passwd").exists():
            d.users = make_users(tmp_path)
        d.conf.write_text(fill(CONFIG, dict(port=d.port, dir=tmp_path, pki=pki, cert=cert, extra=extra,
                                            implicit=" UseImplicitSSL" if implicit else "")))
        started.append(start_daemon(d))
        return d
    yield start
    for d in started:
        d.stop()
        assert "Traceback" not in d.log(), d.log()[-3000:]


def status(port: int, implicit: bool = False, timeout: float = 30) -> str:
    """One handshake asking for the certificate's status: 'good', 'revoked', 'trylater' (a non-successful
    response's status) or 'none' (no response stapled)."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-status", "-ign_eof"]
    if not implicit:
        args[2:2] = ["-starttls", "ftp"]
    out = subprocess.run(args, input=b"QUIT\r\n", capture_output=True, timeout=timeout).stdout.decode(errors="replace")
    return read_status(out)


def read_status(out: str) -> str:
    if "OCSP response: no response sent" in out:
        return "none"
    m = re.search(r"Cert Status: (\w+)", out)
    if m:
        return m.group(1)
    m = re.search(r"OCSP Response Status: (\w+)", out)
    assert m, out
    return m.group(1)


def trace(d: Daemon) -> str:
    path = d.dir / "trace.log"
    return path.read_text() if path.exists() else ""


# == stapled: good, revoked, explicit and implicit, data connections ================================================
def test_good_certificate_is_stapled_on_explicit_and_implicit_ftps(daemon, responder):
    d = daemon()
    assert status(d.port) == "good"
    assert responder.requests() == 1
    assert status(d.port) == "good"             # no cache: asked at each handshake, as ProFTPD does
    assert responder.requests() == 2
    t = trace(d)
    assert "no cached OCSP response found (TLSStaplingCache not configured)" in t
    assert f"found OCSP responder URL 'http://127.0.0.1:{responder.port}/' in certificate" in t
    assert "found certificate status 'good' in OCSP response" in t
    assert "OCSP" not in (d.dir / "tls.log").read_text()     # ProFTPD writes none of it to TLSLog
    d.stop()
    implicit = daemon(implicit=True)
    assert status(implicit.port, implicit=True) == "good"


def test_stapling_follows_a_reload(daemon, responder):
    """SIGHUP rebuilds the contexts: stapling switched on (and its options changed) applies to the next sessions."""
    d = daemon(extra="TLSStaplingOptions NoFakeTryLater")
    text = d.conf.read_text()
    d.conf.write_text(text.replace("TLSStapling on\n", "TLSStapling off\n"))
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: status(d.port) == "none", 10)
    assert responder.requests() == 0
    d.conf.write_text(text)
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: status(d.port) == "good", 10)


def test_revoked_certificate_is_stapled_revoked(daemon, responder):
    d = daemon("revoked")
    assert status(d.port) == "revoked"
    assert "found certificate status 'revoked' in OCSP response" in trace(d)


def test_a_client_that_does_not_ask_gets_nothing_and_asks_nobody(daemon, responder, pki):
    d = daemon()
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.check_hostname = False
    ftp = FTPS(ctx)
    ftp.connect("127.0.0.1", d.port)
    ftp.auth()
    ftp.quit()
    assert responder.requests() == 0


def test_data_connection_is_stapled_too(daemon, responder):
    """A PROT P data connection that does not resume the control session (NoSessionReuseRequired) staples too;
    one that resumes it staples nothing (RFC 6066)."""
    d = daemon()
    from conftest import PASSWORDS
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ftp = FTPS(ctx)
    ftp.connect("127.0.0.1", d.port)
    ftp.login("alice", PASSWORDS["alice"])
    ftp.prot_p()
    host, port = ftp.makepasv()
    client = subprocess.Popen(["openssl", "s_client", "-connect", f"{host}:{port}", "-status"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ftp.putcmd("NLST")
    out, _ = client.communicate(b"", timeout=30)
    assert read_status(out.decode(errors="replace")) == "good"
    assert ftp.getresp().startswith("150")
    ftp.voidresp()
    ftp.quit()
    before = responder.requests()
    got = []
    ftp = FTPS(ctx)                                # resumes the control session on its data connections
    ftp.connect("127.0.0.1", d.port)
    ftp.login("alice", PASSWORDS["alice"])
    ftp.prot_p()
    ftp.retrlines("NLST", got.append)
    ftp.quit()
    assert responder.requests() == before          # Python's ssl never asks for a status: nobody asked


# == the cache ======================================================================================================
def test_fs_cache_keeps_the_response_while_the_responder_is_down(daemon, responder, tmp_path):
    cache = tmp_path / "ocsp"
    cache.mkdir()
    d = daemon(extra=f"TLSStaplingCache fs:/path={cache}")
    assert status(d.port) == "good"
    files = list(cache.glob("*.der"))
    assert len(files) == 1 and re.fullmatch(r"[0-9a-f]{40}\.der", files[0].name)
    assert responder.requests() == 1
    responder.stop()
    assert status(d.port) == "good" and status(d.port, timeout=30) == "good"
    assert "found cached OCSP response for fingerprint" in trace(d)
    files[0].unlink()                               # gone from the cache, responder down: a fake tryLater,
    assert status(d.port) == "trylater"             # cached too, as ProFTPD does
    assert files[0].read_bytes() == bytes.fromhex("30030a0103")


def test_ftpdctl_tls_ocspcache_info_clear_remove(daemon, responder, tmp_path):
    """ProFTPD's texts (its mod_tls_fscache reports 0 responses whatever it holds; proftpy counts them)."""
    from test_ban import ftpdctl
    cache = tmp_path / "ocsp"
    cache.mkdir()
    d = daemon(extra=f"TLSStaplingCache fs:/path={cache}\nTLSControlsACLs ocspcache,info,clear allow user root")
    assert status(d.port) == "good"
    rc, lines = ftpdctl(d, "tls", "ocspcache", "info")
    assert rc == 0 and lines == ["Filesystem (fs) OCSP response cache provided by mod_tls_fscache/0.0", "",
                                 "Current OCSP responses cached: 1"], lines
    rc, lines = ftpdctl(d, "tls", "ocspcache", "clear")
    assert rc == 0 and lines == ["tls ocspcache: cleared 1 response from 'fs' OCSP cache"], lines
    assert list(cache.iterdir()) == []
    rc, lines = ftpdctl(d, "tls", "ocspcache", "remove")
    assert rc == 0 and lines == ["tls sesscache: removed 'fs' OCSP cache"], lines      # sic, ProFTPD's
    for args, message in ((("bogus",), "tls ocspcache: unknown ocspcache action: 'bogus'"),
                          ((), "tls ocspcache: missing required parameters"),
                          (("info", "-x"), "tls ocspcache: unsupported parameter: '-x'")):
        rc, lines = ftpdctl(d, "tls", "ocspcache", *args)
        assert rc != 0 and lines == [message], (args, lines)


@pytest.fixture
def redis_server(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (scripts/install-deps.sh)")
    from test_ban_redis import RedisServer
    server = RedisServer(tmp_path_factory.mktemp("ocspredis"))
    server.start()
    yield server
    server.kill()


def shared_with_proftpd(d: Daemon, base: Path, pki: Path, extra: str, drop) -> None:
    """With the responder stopped and proftpy's entry in the shared cache, a ProFTPD node (`extra`: its cache
    lines) staples it; once `drop` has deleted it, ProFTPD stores its fake tryLater, which proftpy then staples."""
    proc, port = proftpd(base, pki, extra)
    try:
        assert status(port) == "good"               # from the entry proftpy wrote
        drop()
        assert status(port) == "trylater"           # ProFTPD's own entry now: its fake tryLater
        assert status(d.port) == "trylater"         # read by proftpy
    finally:
        proc.terminate()
        proc.wait(10)


def redis_lines(port: int) -> str:
    return f"RedisEngine on\nRedisServer 127.0.0.1:{port}\nRedisTimeouts 300 300\nTLSStaplingCache redis:"


def test_redis_cache_with_proftpds_keys_shared_with_proftpd(daemon, responder, redis_server, open_tmp_path, pki):
    """ProFTPD's key and JSON (mod_tls_redis): what proftpy stored, a ProFTPD node on the same Redis staples with
    the responder stopped (and the other way round); a Redis that is down costs nothing but the cache."""
    d = daemon(extra=redis_lines(redis_server.port))
    assert status(d.port) == "good" and responder.requests() == 1
    fingerprint = hashlib.sha1(x509.pem_certificates((pki / "good.pem").read_bytes())[0]).hexdigest()
    key = b'mod_tls_redis.ocsp.{"fingerprint":"' + fingerprint.encode() + b'"}\0'
    entry = json.loads(redis_server.keys()[key][:-1])
    assert set(entry) == {"expires", "response", "response_len"} and abs(entry["expires"] - time.time()) < 30
    assert redis_server.client().ttl(key) == -1                     # no TTL, as ProFTPD writes it
    assert redis_server.keys()[b"mod_tls_redis.ocsp.cache_stores"].isdigit()
    responder.stop()
    assert status(d.port) == "good"
    shared_with_proftpd(d, open_tmp_path / "proftpd", pki, "LoadModule mod_redis.c\nLoadModule mod_tls_redis.c\n"
                        + redis_lines(redis_server.port), lambda: redis_server.client().delete(key))
    redis_server.kill()
    start = time.monotonic()
    assert status(d.port) == "trylater" and time.monotonic() - start < 10
    assert "Traceback" not in d.log()


@pytest.fixture
def memcached():
    if shutil.which("memcached") is None:
        pytest.fail("memcached is not installed (scripts/install-deps.sh)")
    from test_ban_memcache import MemcachedServer
    server = MemcachedServer()
    server.start()
    yield server
    server.stop()


def memcache_lines(port: int) -> str:
    return f"MemcacheEngine on\nMemcacheServers 127.0.0.1:{port}\nTLSStaplingCache memcache:"


def test_memcache_cache_with_proftpds_keys_shared_with_proftpd(daemon, responder, memcached, open_tmp_path, pki):
    """mod_tls_memcache's key and JSON, no expiration: what proftpy stored, a ProFTPD node on the same memcached
    staples with the responder stopped (and the other way round); `ftpdctl tls ocspcache info` shows the
    counters kept in memcached; a memcached that is down costs nothing but the cache."""
    from test_ban import ftpdctl
    d = daemon(extra=memcache_lines(memcached.port) + "\nMemcacheTimeouts 300 300 300\n"
               "TLSControlsACLs ocspcache,info,clear allow user root")
    assert status(d.port) == "good" and responder.requests() == 1
    fingerprint = hashlib.sha1(x509.pem_certificates((pki / "good.pem").read_bytes())[0]).hexdigest()
    key = b'mod_tls_memcache.ocsp.{"fingerprint":"' + fingerprint.encode() + b'"}\0'
    raw = memcached.get(key)
    assert raw is not None and raw.endswith(b"\0"), memcached.metadump()
    entry = json.loads(raw[:-1])
    assert list(entry) == ["expires", "response", "response_len"] and abs(entry["expires"] - time.time()) < 30
    # no expiration, as ProFTPD writes it; memcached's metadump may miss an item the crawler has not reached yet
    assert wait_until(lambda: memcached.expiration(key) == -1, 5), memcached.metadump()
    assert memcached.get(b"mod_tls_memcache.ocsp.cache_stores") == b"1"
    responder.stop()
    assert status(d.port) == "good" and responder.requests() == 1
    rc, lines = ftpdctl(d, "tls", "ocspcache", "info")
    assert rc == 0 and lines[:3] == ["Memcache OCSP response cache provided by mod_tls_memcache/0.2", "",
                                     f"Memcache servers: 127.0.0.1:{memcached.port}"], lines
    assert "Cache lifetime hits: 1" in lines and "Cache lifetime responses stored: 1" in lines, lines
    rc, lines = ftpdctl(d, "tls", "ocspcache", "clear")
    assert rc == 0 and lines == ["tls ocspcache: cleared 0 responses from 'memcache' OCSP cache"], lines
    mc = memcached.client()
    try:
        shared_with_proftpd(d, open_tmp_path / "proftpd", pki, "LoadModule mod_memcache.c\n"
                            "LoadModule mod_tls_memcache.c\n" + memcache_lines(memcached.port), lambda: mc.delete(key))
    finally:
        mc.close()
    memcached.stop()
    start = time.monotonic()
    assert status(d.port) == "trylater" and time.monotonic() - start < 10
    assert "Traceback" not in d.log()


def test_shm_cache_is_shared_by_the_daemons_sessions(daemon, responder, tmp_path):
    """Each handshake is another session process: the second staples what the first fetched (responder stopped);
    `ftpdctl tls ocspcache` shows mod_tls_shmcache's counts, clears the table, removes its file (until a
    reload opens it again)."""
    from test_ban import ftpdctl
    path = tmp_path / "ocsp.shm"
    d = daemon(extra=f"TLSStaplingCache shm:/file={path}&size=20000\n"
               "TLSControlsACLs ocspcache,info,clear allow user root")
    assert status(d.port) == "good" and responder.requests() == 1
    responder.stop()
    assert status(d.port) == "good" and status(d.port) == "good"
    assert "found cached OCSP response for fingerprint" in trace(d)
    rc, lines = ftpdctl(d, "tls", "ocspcache", "info")
    assert rc == 0 and lines[:3] == ["Shared memory (shm) OCSP response cache provided by mod_tls_shmcache/0.2", "",
                                     f"Shared memory file: {path}"], lines
    for line in ("Max response cache size: 4", "Current response cache size: 1", "Cache lifetime hits: 2",
                 "Cache lifetime responses stored: 1", "Cache lifetime errors handling responses in cache: 0"):
        assert line in lines, (line, lines)
    rc, lines = ftpdctl(d, "tls", "ocspcache", "clear")
    assert rc == 0 and lines == ["tls ocspcache: cleared 1 response from 'shm' OCSP cache"], lines
    assert status(d.port) == "trylater"             # gone from the cache, responder down
    rc, lines = ftpdctl(d, "tls", "ocspcache", "remove")
    assert rc == 0 and lines == ["tls sesscache: removed 'shm' OCSP cache"], lines      # sic, ProFTPD's
    assert not path.exists()
    assert status(d.port) == "trylater"
    rc, lines = ftpdctl(d, "tls", "ocspcache", "info")
    assert rc == 0 and "OCSP cache file removed" in lines[2], lines
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(path.exists, 10)
    d.conf.write_text(d.conf.read_text().replace("size=20000", "size=30000"))
    os.kill(d.master_pid, signal.SIGHUP)            # another size for the open file: refused, the context kept
    assert wait_until(lambda: "is in use with another size" in d.log(), 10), d.log()[-2000:]
    assert status(d.port) == "trylater"
    assert "Traceback" not in d.log()


def test_bad_shm_and_memcache_caches_refuse_the_start(tmp_path, pki):
    from conftest import configtest
    conf = fill(CONFIG, dict(port=0, dir=tmp_path, pki=pki, cert="good", implicit="",
                             extra=f"TLSSessionCache shm:/file={tmp_path}/shared\n"
                                   f"TLSStaplingCache shm:/file={tmp_path}/shared"))
    res = configtest(tmp_path, conf)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    line = conf.splitlines().index(f"TLSStaplingCache shm:/file={tmp_path}/shared") + 1
    assert f"t.conf:{line}: TLSStaplingCache: '{tmp_path}/shared' is TLSSessionCache's file too" in res.stderr
    (tmp_path / "open").mkdir(mode=0o777)
    (tmp_path / "open").chmod(0o777)
    res = configtest(tmp_path, conf.replace(f"shm:/file={tmp_path}/shared\nTLSStaplingCache shm:/file={tmp_path}/shared",
                                            f"internal:\nTLSStaplingCache shm:/file={tmp_path}/open/x"))
    assert res.returncode == 1 and f"t.conf:{line}: TLSStaplingCache: file {tmp_path}/open/x: refusing to " \
        "use world-writable directory" in res.stderr, res.stderr
    res = configtest(tmp_path, conf.replace(f"shm:/file={tmp_path}/shared\nTLSStaplingCache shm:/file={tmp_path}/shared",
                                            f"internal:\nTLSStaplingCache shm:/file={tmp_path}/fresh"))
    assert res.returncode == 0 and not (tmp_path / "fresh").exists(), res.stderr    # -t opens no file
    res = configtest(tmp_path, conf.replace(f"shm:/file={tmp_path}/shared\nTLSStaplingCache shm:/file={tmp_path}/shared",
                                            "internal:\nTLSStaplingCache memcache:"))
    assert res.returncode == 1 and f"t.conf:{line}: TLSStaplingCache: memcache: needs MemcacheEngine on and " \
        "MemcacheServers in the server config" in res.stderr, res.stderr


# == https:// responders ============================================================================================
@pytest.fixture
def relay(pki, responder):
    r = TlsRelay(pki, free_port(), responder.port).start()
    yield r
    r.stop()


def test_https_responder_is_asked_over_tls(daemon, relay, responder):
    """POST over TLS to a responder whose certificate nobody trusts (ProFTPD verifies the answer's signature, not
    the responder's TLS certificate); a responder that is not there is a fake tryLater."""
    d = daemon(extra=f"TLSStaplingResponder https://127.0.0.1:{relay.port}/")
    assert status(d.port) == "good"
    assert relay.connections == 1 and responder.requests() == 1
    t = trace(d)
    assert f"parsed OCSP URL 'https://127.0.0.1:{relay.port}/' to get host '127.0.0.1', port '{relay.port}', " \
        "URI '/', using TLS" in t
    d.stop()
    relay.stop()
    d2 = daemon("revoked", extra=f"TLSStaplingResponder https://127.0.0.1:{relay.port}/")
    assert status(d2.port) == "trylater"


@pytest.mark.slow
def test_https_responder_side_by_side_with_proftpd(daemon, relay, responder, open_tmp_path, pki):
    """The same relay for both daemons: both staple its answer (good, then revoked); with NoVerify too."""
    for cert, extra in (("good", ""), ("revoked", "\nTLSStaplingOptions NoVerify")):
        line = f"TLSStaplingResponder https://127.0.0.1:{relay.port}/{extra}"
        proc, port = proftpd(open_tmp_path / f"proftpd-{cert}", pki, line, cert)
        try:
            d = daemon(cert, line)
            before = relay.connections
            assert (status(d.port), status(port)) == (cert, cert)
            assert relay.connections == before + 2
            d.stop()
        finally:
            proc.terminate()
            proc.wait(10)


# == no answer: fake tryLater, NoFakeTryLater, within TLSStaplingTimeout ===========================================
@pytest.fixture
def silent():
    """A responder that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", free_port()))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


@pytest.mark.slow
@pytest.mark.parametrize("options,expected", [("", "trylater"), ("TLSStaplingOptions NoFakeTryLater", "none")])
def test_a_silent_responder_costs_the_timeout_then_tryLater_or_nothing(daemon, silent, options, expected):
    d = daemon(extra=f"TLSStaplingResponder http://127.0.0.1:{silent}/\nTLSStaplingTimeout 2\n{options}")
    start = time.monotonic()
    assert status(d.port) == expected
    assert 1.5 < time.monotonic() - start < 8
    assert f"using configured OCSP responder URL 'http://127.0.0.1:{silent}/'" in trace(d)
    assert "timed out talking to OCSP responder" in trace(d)
    from conftest import PASSWORDS
    ftp = d.connect()                               # the master is not held up: a plain login goes on
    ftp.login("alice", PASSWORDS["alice"])
    ftp.quit()


def test_no_responder_url_and_no_issuer_give_tryLater(daemon, tmp_path, pki):
    d = daemon("noaia")
    assert status(d.port) == "trylater"
    assert "no OCSP responder URL found in certificate" in trace(d)


@pytest.mark.parametrize("options,expected", [("", "trylater"), ("TLSStaplingOptions NoVerify", "good")])
def test_answers_that_do_not_verify_are_refused_unless_NoVerify(daemon, pki, options, expected):
    """Answers signed by a certificate without OCSPSigning do not verify: a fake tryLater; NoVerify staples them
    as they came."""
    r = Responder(pki, int((pki / "responder.port").read_text()), signer="noaia").start()
    try:
        d = daemon(extra=options)
        assert status(d.port) == expected
        assert ("error verifying basic OCSP response data" in trace(d)) == (expected == "trylater")
    finally:
        r.remove()


def test_no_nonce_sends_none(daemon, responder):
    d = daemon(extra="TLSStaplingOptions NoNonce")
    assert status(d.port) == "good"
    assert "nonce" not in trace(d).lower()
    sizes = [int(n) for n in (responder.dir / "requests.log").read_text().split()]
    d.stop()
    d2 = daemon()
    assert status(d2.port) == "good"
    with_nonce = [int(n) for n in (responder.dir / "requests.log").read_text().split()]
    assert with_nonce[-1] > sizes[0]            # the nonce extension makes the request longer


# == configuration ==================================================================================================
def test_bad_stapling_configuration_is_a_file_line_error(tmp_path, pki):
    for line, message in (("TLSStaplingCache shm:/file=/x&size=99", "smaller than minimum size (4224 bytes)"),
                          ("TLSStaplingCache redis:/x", "unknown redis: info '/x'"),
                          ("TLSStaplingCache memcache:/x", "unknown memcache: info '/x'"),
                          ("TLSStaplingCache bogus:/x", "OCSP stapling cache type 'bogus' not available"),
                          ("TLSStaplingCache fs:/path=rel", "not an absolute path"),
                          ("TLSStapling maybe", "t.conf:2:"),
                          ("TLSStaplingOptions NoNonce Bad", "unknown TLSStaplingOption 'Bad'")):
        assert message in refused_config(tmp_path, line), line


def test_missing_cache_directory_refuses_the_start(daemon, tmp_path, pki):
    from conftest import configtest
    conf = fill(CONFIG, dict(port=0, dir=tmp_path, pki=pki, cert="good", implicit="",
                             extra=f"TLSStaplingCache fs:/path={tmp_path}/missing"))
    res = configtest(tmp_path, conf)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"TLSStaplingCache: cannot use '{tmp_path}/missing': No such file or directory" in res.stderr
    (tmp_path / "open").mkdir(mode=0o777)
    (tmp_path / "open").chmod(0o777)
    res = configtest(tmp_path, conf.replace("/missing", "/open"))
    line = conf.splitlines().index(f"TLSStaplingCache fs:/path={tmp_path}/missing") + 1
    assert res.returncode == 1
    assert f"t.conf:{line}: TLSStaplingCache: '{tmp_path}/open' is world-writable" in res.stderr
    res = configtest(tmp_path, conf.replace(f"fs:/path={tmp_path}/missing", "redis:"))
    assert res.returncode == 1
    assert f"t.conf:{line}: TLSStaplingCache: redis: needs RedisEngine on and a RedisServer" in res.stderr


# == side by side with Debian's ProFTPD =============================================================================
PROFTPD = "/usr/sbin/proftpd"


def proftpd(base: Path, pki: Path, extra: str, cert: str = "good") -> tuple[subprocess.Popen, int]:
    """Debian's ProFTPD with mod_tls (and mod_tls_fscache), stapling the same certificate."""
    if not IS_ROOT or not os.access(PROFTPD, os.X_OK) or not os.path.exists("/usr/lib/proftpd/mod_tls.so"):
        pytest.skip("needs root and Debian's /usr/sbin/proftpd with mod_tls (scripts/install-deps.sh)")
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    port = free_port()
    conf = base / "proftpd.conf"
    conf.write_text('ServerName "compare"\n' + fill(HEAD, {"port": port}) + f"""\
PidFile {base}/pid
ScoreboardFile {base}/scoreboard
SystemLog {base}/system.log
TransferLog none
WtmpLog off
User nobody
Group nogroup
ControlsEngine off
ModulePath /usr/lib/proftpd
LoadModule mod_tls.c
LoadModule mod_tls_fscache.c
TLSEngine on
TLSLog {base}/tls.log
TLSECCertificateFile {pki}/{cert}.pem
TLSECCertificateKeyFile {pki}/{cert}.key
TLSCACertificateFile {pki}/ca.pem
TLSStapling on
TraceLog {base}/trace.log
Trace tls:20 tls.fscache:20
{extra}
""")
    proc = subprocess.Popen([PROFTPD, "-n", "-q", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    from conftest import listening
    assert wait_until(lambda: listening(port), 15), "proftpd did not start"
    return proc, port


@pytest.mark.slow
def test_side_by_side_with_proftpd(daemon, responder, open_tmp_path, pki):
    """The same answers from both daemons: good, stapled from the fs cache with the responder stopped (ProFTPD's
    file name: the certificate's SHA1 fingerprint), a fake tryLater when the cache is empty and the responder
    down, nothing with NoFakeTryLater."""
    tmp_path = open_tmp_path                        # ProFTPD's session reaches its cache as nobody
    ours, theirs = tmp_path / "cache-proftpy", tmp_path / "proftpd" / "cache"
    ours.mkdir()
    (tmp_path / "proftpd").mkdir()
    theirs.mkdir()
    shutil.chown(theirs, "nobody")                  # ProFTPD's session writes it as nobody (not world-writable:
    theirs.chmod(0o700)                             # ProFTPD's session would ignore the cache)
    proc, port = proftpd(tmp_path / "proftpd", pki, f"TLSStaplingCache fs:/path={theirs}")
    second = None
    try:
        d = daemon(extra=f"TLSStaplingCache fs:/path={ours}")
        assert status(d.port) == status(port) == "good"
        assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir()), \
            (tmp_path / "proftpd" / "trace.log").read_text()
        responder.stop()
        assert status(d.port) == status(port) == "good"
        for cache in (ours, theirs):
            for p in cache.iterdir():
                p.unlink()
        assert status(d.port) == status(port) == "trylater"
        assert [p.read_bytes() for p in ours.iterdir()] == [p.read_bytes() for p in theirs.iterdir()]
        proc.terminate()
        proc.wait(10)
        second, port = proftpd(tmp_path / "proftpd2", pki, "TLSStaplingOptions NoFakeTryLater")
        d.stop()
        d2 = daemon(extra="TLSStaplingOptions NoFakeTryLater")
        assert status(d2.port) == status(port) == "none"
    finally:
        for p in (proc, second):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)


@pytest.mark.slow
def test_side_by_side_revoked_unverified_and_no_url(daemon, responder, open_tmp_path, pki):
    """Revoked as the index says; answers signed without OCSPSigning: a fake tryLater from both, stapled as they
    came with NoVerify; a certificate without AIA URL: a fake tryLater."""
    bad = Responder(pki, free_port(), signer="noaia").start()
    url = f"TLSStaplingResponder http://127.0.0.1:{bad.port}/"
    cases = [("revoked", "", "revoked"), ("good", url, "trylater"), ("good", url + "\nTLSStaplingOptions NoVerify",
             "good"), ("noaia", "", "trylater")]
    try:
        for i, (cert, extra, expected) in enumerate(cases):
            proc, port = proftpd(open_tmp_path / f"proftpd{i}", pki, extra, cert)
            try:
                d = daemon(cert, extra)
                assert (status(d.port), status(port)) == (expected, expected), (cert, extra)
                d.stop()
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        bad.remove()
