"""TLSSessionCache's external caches with real clients: `openssl s_client -sess_out` on one connection, then a NEW
connection (a new session process) with `-sess_in` says `Reused` with shm:, redis: (a real redis-server) and
memcache: (a real memcached), and not with internal: (each process its own cache); TLSv1.2 by session ID and
TLSv1.3 by its (stateful) ticket. Data connections still resume the control session (ftplib, curl, lftp with PROT
P); a full shm cache evicts; an expired entry is not resumed; a cache that is down costs nothing but the reuse;
bad configurations are FILE:LINE errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PROFTPD, PASSWORDS, Daemon, configtest, fill, free_port, start_daemon, wait_until
from proftpy import tpl
from proftpy.modules import tls_cache
from tls_helpers import ftps, module_daemon, pki  # noqa: F401 - pki is a fixture

MEMCACHED = shutil.which("memcached")
REDIS = shutil.which("redis-server")

CONFIG = """\
ServerName "tlscache"
ServerType standalone
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
PidFile {dir}/proftpy.pid
SystemLog {dir}/system.log
ScoreboardFile {dir}/proftpy.scoreboard
DelayEngine off
ControlsSocket {dir}/proftpy.sock
TLSControlsACLs sesscache,info,clear allow user root
TLSECCertificateFile {pki}/server.pem
TLSECCertificateKeyFile {pki}/server.key
{cache}
<Global>
  AuthOrder mod_auth_file.c
  AuthUserFile {dir}/ftpd.passwd
  AuthGroupFile {dir}/ftpd.group
  RequireValidShell off
  UseFtpUsers off
  AllowOverwrite on
  DefaultRoot ~
  TimeoutIdle 20
  TLSEngine on
  TLSLog {dir}/tls.log
</Global>
"""


def start(tmp_path_factory, pki, name: str, cache: str) -> Daemon:
    d = module_daemon(tmp_path_factory, name)
    d.conf.write_text(fill(CONFIG, dict(port=d.port, dir=d.dir, pki=pki.dir, cache=cache)))
    start_daemon(d)
    return d


def stop(d: Daemon) -> None:
    d.stop()
    log = d.log()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]


def s_client(port: int, sess: Path, *, out: bool, version: str = "-tls1_2", extra: tuple[str, ...] = ()) -> str:
    """One connection: AUTH TLS, then QUIT; `-sess_out` (out) or `-sess_in` the session file. Its output."""
    args = ["openssl", "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{port}", version, "-crlf", "-ign_eof",
            "-sess_out" if out else "-sess_in", str(sess), *extra]
    res = subprocess.run(args, input=b"QUIT\r\n", capture_output=True, timeout=20)
    return res.stdout.decode(errors="replace")


def resumes(port: int, tmp: Path, version: str = "-tls1_2", wait: float = 0.0) -> tuple[bool, bool]:
    """(the first connection was new, the second, a new process, resumed it)."""
    sess = tmp / f"sess{time.monotonic_ns()}.pem"
    first = s_client(port, sess, out=True, version=version)
    assert "New, " in first, first
    if wait:
        time.sleep(wait)
    second = s_client(port, sess, out=False, version=version)
    assert "221 Goodbye." in second or "Reused" in second or "New, " in second, second
    return "New, " in first, "Reused, " in second


def transfers(port: int, pki, tmp: Path) -> None:
    """PROT P with ftplib (resuming), curl and lftp: data connections resume the control session."""
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ftp = ftps(port, pki.client(version))
        ftp.storbinary("STOR f.bin", io.BytesIO(b"x" * 100_000))
        got = bytearray()
        ftp.retrbinary("RETR f.bin", got.extend)
        assert bytes(got) == b"x" * 100_000 and "f.bin" in ftp.nlst()
        ftp.quit()
    url = f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{port}"
    res = subprocess.run(["curl", "-sS", "--max-time", "20", "--ssl-reqd", "-k", f"{url}/f.bin"], capture_output=True,
                         timeout=30)
    assert res.returncode == 0 and res.stdout == b"x" * 100_000, res.stderr
    script = (f"set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; "
              f"set net:max-retries 1; open -u alice,{PASSWORDS['alice']} ftp://127.0.0.1:{port}; "
              f"get f.bin -o {tmp / 'lftp.bin'}; cls; bye")
    res = subprocess.run(["lftp", "-c", script], capture_output=True, timeout=60)
    assert res.returncode == 0 and (tmp / "lftp.bin").read_bytes() == b"x" * 100_000, res.stderr


# == internal: no reuse across connections (each session process its own cache) ==================================
def test_internal_cache_does_not_resume_across_connections(tmp_path_factory, pki, tmp_path):
    d = start(tmp_path_factory, pki, "internal", "TLSSessionCache internal: 600")
    try:
        assert resumes(d.port, tmp_path) == (True, False)
        assert resumes(d.port, tmp_path, "-tls1_3") == (True, False)
        transfers(d.port, pki, tmp_path)
    finally:
        stop(d)


# == shm: ==========================================================================================================
@pytest.fixture(scope="module")
def shm(tmp_path_factory, pki):
    base = tmp_path_factory.mktemp("shmcache")
    d = start(tmp_path_factory, pki, "shm", f"TLSSessionCache shm:/file={base}/sesscache&size=40000 600")
    d.cache_file = base / "sesscache"
    yield d
    stop(d)


def test_shm_resumes_tls12_and_tls13_across_connections(shm, tmp_path):
    assert resumes(shm.port, tmp_path) == (True, True)
    assert resumes(shm.port, tmp_path, "-tls1_3") == (True, True)
    assert shm.cache_file.stat().st_size < 40000


def test_shm_data_connections_still_resume_the_control_session(shm, pki, tmp_path):
    transfers(shm.port, pki, tmp_path)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_shm_a_session_from_the_shared_cache_is_refused_on_a_data_connection(shm, pki, version):
    """Another FTP session's TLS session is in the shared cache, and a control connection could resume it; a data
    connection presenting it is still refused (150, then 425): data connections never ask the shared cache."""
    from test_tls import assert_foreign_session_refused
    ctx = pki.client(version)
    other = ftps(shm.port, ctx, user="bob")
    ftp = ftps(shm.port, ctx)
    log = shm.dir / "tls.log"
    before = len(log.read_text())
    assert_foreign_session_refused(ftp, other, ctx)
    ftp.quit()
    other.quit()
    # not resumed at all (the shared cache was not asked), rather than resumed and then found to be another's
    assert "client did not reuse TLS session, rejecting data connection" in log.read_text()[before:]


def test_shm_survives_a_reload(shm, tmp_path):
    sess = tmp_path / "before.pem"
    assert "New, " in s_client(shm.port, sess, out=True)
    os.kill(shm.proc.pid, signal.SIGHUP)
    time.sleep(1)
    assert "Reused, " in s_client(shm.port, sess, out=False)


def test_shm_full_cache_evicts_the_oldest(shm, tmp_path):
    from proftpy.tlscachetable import slots_for
    slots = slots_for(40000)
    first = tmp_path / "first.pem"
    assert "New, " in s_client(shm.port, first, out=True)
    for i in range(slots):                      # as many new sessions as there are slots: the first one goes
        assert "New, " in s_client(shm.port, tmp_path / f"s{i}.pem", out=True)
    assert "Reused, " not in s_client(shm.port, first, out=False)
    assert "Reused, " in s_client(shm.port, tmp_path / f"s{slots - 1}.pem", out=False)


def test_ftpdctl_tls_sesscache_info_clear_remove(shm, tmp_path):
    from test_ban import ftpdctl
    sess = tmp_path / "s.pem"
    assert "New, " in s_client(shm.port, sess, out=True)
    rc, lines = ftpdctl(shm, "tls", "sesscache", "info", "-v")
    assert rc == 0 and lines[0] == "Shared memory (shm) SSL session cache provided by mod_tls_shmcache/0.2", lines
    assert "Max session cache size: 3" in lines and "    Session ID: " in "\n".join(lines), lines
    assert any(line.startswith("Cache lifetime sessions stored: ") and int(line.split()[-1]) > 0 for line in lines)
    rc, lines = ftpdctl(shm, "tls", "sesscache", "clear")
    assert rc == 0 and lines[0].startswith("tls sesscache: cleared ") and "from 'shm' session cache" in lines[0]
    assert "Reused, " not in s_client(shm.port, sess, out=False)         # cleared: a full handshake
    rc, lines = ftpdctl(shm, "tls", "sesscache", "bogus")
    assert rc != 0 and lines == ["tls sesscache: unknown sesscache action: 'bogus'"], lines
    rc, lines = ftpdctl(shm, "tls", "frobnicate")
    assert rc != 0 and lines == ["access denied"], lines                  # not an action the ACL names
    assert "Current session cache size: " in "\n".join(ftpdctl(shm, "tls", "sesscache", "info")[1])


def test_remove_goes_with_the_cache_acl_and_is_no_acl_word_as_in_proftpd(tmp_path_factory, pki, tmp_path):
    """ProFTPD's action table has no `remove`: TLSControlsACLs naming it is fatal, and its check of `remove`
    passes for whoever may use the cache."""
    text = f"ServerName x\nPort {free_port()}\nTLSControlsACLs sesscache,remove allow user root\n"
    ours = configtest(tmp_path, text)
    assert ours.returncode != 0 and f"{tmp_path}/t.conf:3" in ours.stderr + ours.stdout
    assert "unknown action: 'remove'" in ours.stderr + ours.stdout
    conf = tmp_path / "p.conf"
    conf.write_text("ModulePath /usr/lib/proftpd\nLoadModule mod_tls.c\n" + text)
    theirs = subprocess.run([PROFTPD, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert theirs.returncode != 0 and "unknown action: 'remove' on line 5" in theirs.stderr + theirs.stdout
    base = tmp_path_factory.mktemp("removeacl")
    d = start(tmp_path_factory, pki, "removeacl", f"TLSSessionCache shm:/file={base}/sesscache")
    d.conf.write_text(d.conf.read_text().replace("TLSControlsACLs sesscache,info,clear allow",
                                                 "TLSControlsACLs sesscache allow"))
    os.kill(d.proc.pid, signal.SIGHUP)
    from test_ban import ftpdctl
    try:
        assert wait_until(lambda: ftpdctl(d, "tls", "sesscache", "info") == (1, ["access denied"]), 10)
        assert ftpdctl(d, "tls", "sesscache", "remove") == (0, ["tls sesscache: removed 'shm' session cache"])
        assert not (base / "sesscache").exists()
    finally:
        stop(d)


def test_shm_bad_configuration_is_file_line(tmp_path):
    for cache, why in (("shm:", "needs /file=PATH"), ("shm:/file=/tmp/x&size=10", "smaller than minimum"),
                       ("shm:/file=/tmp/x&size=big", "badly formatted size"),
                       ("shm:/file=relative", "not an absolute path"), ("memcache:", "MemcacheServers"),
                       ("redis:", "RedisServer"), ("fscache:/dir", "not available"),
                       ("shm:/file=/tmp/x abc", "not a valid timeout")):
        conf = tmp_path / "bad.conf"
        conf.write_text(f"ServerName x\nPort {free_port()}\nTLSEngine on\nTLSSessionCache {cache}\n")
        res = subprocess.run([os.sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], capture_output=True,
                             timeout=30, env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))
        out = (res.stdout + res.stderr).decode()
        assert res.returncode != 0 and f"{conf}:4" in out and why in out, (cache, out)


# == expiry ========================================================================================================
def test_expired_entries_are_not_resumed(tmp_path_factory, pki, tmp_path):
    base = tmp_path_factory.mktemp("shmexpiry")
    d = start(tmp_path_factory, pki, "expiry", f"TLSSessionCache shm:/file={base}/sesscache 1")
    try:
        assert resumes(d.port, tmp_path, wait=2.2) == (True, False)
        from test_ban import ftpdctl
        assert ftpdctl(d, "tls", "sesscache", "remove") == (0, ["tls sesscache: removed 'shm' session cache"])
        assert not (base / "sesscache").exists()
        assert resumes(d.port, tmp_path) == (True, False)          # each process its own cache again
        assert ftpdctl(d, "tls", "sesscache", "info")[1][-1].startswith("Session cache file removed")
        os.kill(d.proc.pid, signal.SIGHUP)                          # a reload makes it anew
        assert wait_until(lambda: (base / "sesscache").exists(), 10)
        assert ftpdctl(d, "tls", "sesscache", "info")[1][2] == f"Shared memory file: {base}/sesscache"
    finally:
        stop(d)


def through_an_outage(d: Daemon, pki, tmp: Path, down, up) -> None:
    """The external cache down: handshakes and transfers go on, nothing is resumed, no traceback; back: resumed."""
    down()
    try:
        assert resumes(d.port, tmp) == (True, False)
        transfers(d.port, pki, tmp)
    finally:
        up()
    assert resumes(d.port, tmp) == (True, True)


# == redis: ========================================================================================================
@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    if REDIS is None:
        pytest.skip("redis-server is not installed (scripts/install-deps.sh)")
    from test_ban_redis import RedisServer
    server = RedisServer(tmp_path_factory.mktemp("tlsredis"))
    server.start()
    yield server
    server.kill()


def test_redis_resumes_across_connections_with_proftpds_keys(tmp_path_factory, pki, tmp_path, redis_server):
    d = start(tmp_path_factory, pki, "redis", f"RedisEngine on\nRedisServer 127.0.0.1:{redis_server.port}\n"
              "RedisTimeouts 300 300\nTLSSessionCache redis: 600")
    try:
        assert resumes(d.port, tmp_path) == (True, True)
        assert resumes(d.port, tmp_path, "-tls1_3") == (True, True)
        keys = {k: v for k, v in redis_server.keys().items() if k.startswith(b"mod_tls_redis.sessions.{")}
        assert keys and redis_server.keys()[b"mod_tls_redis.sessions.cache_stores"].isdigit()   # the statistics
        for key, value in keys.items():
            assert key.endswith(b"\0") and json.loads(key[23:-1])["id"]
            entry = json.loads(value[:-1])
            assert set(entry) == {"expires", "data", "data_len"} and entry["expires"] > time.time() + 500
            assert 0 < redis_server.client().ttl(key) <= 600
        transfers(d.port, pki, tmp_path)
        through_an_outage(d, pki, tmp_path, redis_server.kill, redis_server.start)
    finally:
        stop(d)


# == memcache: =====================================================================================================
@pytest.fixture(scope="module")
def memcached():
    if MEMCACHED is None:
        pytest.skip("memcached is not installed (scripts/install-deps.sh)")
    from test_ban_memcache import MemcachedServer
    server = MemcachedServer()
    server.start()
    yield server
    server.stop()


def test_memcache_resumes_across_connections(tmp_path_factory, pki, tmp_path, memcached):
    d = start(tmp_path_factory, pki, "memcache", f"MemcacheEngine on\nMemcacheServers 127.0.0.1:{memcached.port}\n"
              "MemcacheTimeouts 300 300 300\nTLSSessionCache memcache:/json 600")
    try:
        assert resumes(d.port, tmp_path) == (True, True)
        assert resumes(d.port, tmp_path, "-tls1_3") == (True, True)
        transfers(d.port, pki, tmp_path)
        through_an_outage(d, pki, tmp_path, memcached.stop, memcached.start)
    finally:
        stop(d)


def test_memcache_without_json_writes_proftpds_tpl_images(tmp_path_factory, pki, tmp_path, memcached):
    d = start(tmp_path_factory, pki, "memcache-tpl", f"MemcacheEngine on\nMemcacheServers 127.0.0.1:{memcached.port}\n"
              "MemcacheTimeouts 300 300 300\nTLSSessionCache memcache: 600")
    try:
        assert resumes(d.port, tmp_path) == (True, True)
        assert resumes(d.port, tmp_path, "-tls1_3") == (True, True)
    finally:
        stop(d)
    keys = [k for k in memcached.metadump() if k.startswith(tls_cache.MEMCACHE_PREFIX + b"tpl")]
    assert keys
    expires, size, data = tpl.fields(memcached.get(keys[0]), tls_cache.TPL_VALUE)
    assert 0 < size < len(data) == 10240 and data[size:] == bytes(10240 - size) and expires > time.time()


# == side by side with Debian's ProFTPD 1.3.8 (mod_tls_shmcache, mod_tls_redis, mod_tls_memcache) =================
def proftpd(tmp_path: Path, pki, cache: str) -> Daemon:
    """Debian's ProFTPD with mod_tls and `cache` (LoadModule lines and TLSSessionCache), the same certificate."""
    from conftest import PROFTPD, SIDE_BY_SIDE_CONFIG, listening, make_users
    if os.geteuid() != 0 or not os.access(PROFTPD, os.X_OK) or not os.path.exists("/usr/lib/proftpd/mod_tls.so"):
        pytest.skip("needs root and Debian's /usr/sbin/proftpd with mod_tls (scripts/install-deps.sh)")
    base = tmp_path / "proftpd"
    base.mkdir()
    base.chmod(0o755)
    make_users(base)
    for name in ("server.pem", "server.key"):
        shutil.copy(pki.path(name), base / name)
    (base / "server.key").chmod(0o600)
    d = Daemon(dir=base, port=free_port(), conf=base / "proftpd.conf")
    d.conf.write_text(fill(SIDE_BY_SIDE_CONFIG, {"port": d.port, "dir": base, "base": base}) + f"""\
ControlsEngine off
LoadModule mod_tls.c
{cache}
TLSEngine on
TLSLog {base}/tls.log
TLSECCertificateFile {base}/server.pem
TLSECCertificateKeyFile {base}/server.key
""")
    d.proc = subprocess.Popen([PROFTPD, "-n", "-q", "-c", str(d.conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    assert wait_until(lambda: listening(d.port), 15), "proftpd did not start"
    return d


def test_proftpd_shmcache_resumes_as_proftpy(shm, pki, tmp_path):
    d = proftpd(tmp_path, pki, f"LoadModule mod_tls_shmcache.c\nTLSSessionCache shm:/file={tmp_path}/pcache 600")
    try:
        for version in ("-tls1_2", "-tls1_3"):
            assert resumes(d.port, tmp_path, version) == resumes(shm.port, tmp_path, version) == (True, True)
    finally:
        d.proc.kill()
        d.proc.wait()
        st = os.stat(tmp_path / "pcache")               # ProFTPD's SysV segment outlives it: ftok(path, 247)
        key = (247 << 24) | ((st.st_dev & 0xFF) << 16) | (st.st_ino & 0xFFFF)
        subprocess.run(["ipcrm", "-M", hex(key)], capture_output=True)


def test_a_proftpy_session_resumes_at_a_proftpd_node_on_the_same_redis(tmp_path_factory, pki, tmp_path,
                                                                      redis_server):
    """Same keys, same JSON, ProFTPD's session id context (the server's id): a TLSv1.2 session proftpy stored
    resumes at ProFTPD. (ProFTPD 1.3.8 resumes its own TLSv1.2 sessions by ticket, with keys of its own, so the
    other way round a client presents a ticket proftpy cannot read: a full handshake.)"""
    redis = f"RedisEngine on\nRedisServer 127.0.0.1:{redis_server.port}\n"
    d = proftpd(tmp_path, pki, f"LoadModule mod_redis.c\nLoadModule mod_tls_redis.c\n{redis}"
                f"RedisLog {tmp_path}/redis.log\nTLSSessionCache redis: 600")
    ours = start(tmp_path_factory, pki, "redis2", redis + "TLSSessionCache redis: 600")
    try:
        sess = tmp_path / "ours.pem"
        assert "New, " in s_client(ours.port, sess, out=True)
        assert "Reused, " in s_client(d.port, sess, out=False)
    finally:
        stop(ours)
        d.proc.kill()
        d.proc.wait()


@pytest.mark.parametrize("json", [False, True], ids=["tpl", "json"])
def test_sessions_shared_with_a_proftpd_node_on_the_same_memcached(tmp_path_factory, pki, tmp_path, memcached, json):
    """memcache: (tpl images) and memcache:/json: a TLSv1.2 session ID (the client sends no ticket) stored by
    either server resumes at the other."""
    spec = "memcache:/json" if json else "memcache:"
    mc = f"MemcacheEngine on\nMemcacheServers 127.0.0.1:{memcached.port}\n"
    d = proftpd(tmp_path, pki, f"LoadModule mod_memcache.c\nLoadModule mod_tls_memcache.c\n{mc}"
                f"TLSSessionCache {spec} 600")
    ours = start(tmp_path_factory, pki, f"memcache-side-{json}", mc + f"TLSSessionCache {spec} 600")
    try:
        for first, second, name in ((ours, d, "ours"), (d, ours, "theirs")):
            sess = tmp_path / f"{name}.pem"
            assert "New, " in s_client(first.port, sess, out=True, extra=("-no_ticket",))
            assert "Reused, " in s_client(second.port, sess, out=False, extra=("-no_ticket",)), name
    finally:
        stop(ours)
        d.proc.kill()
        d.proc.wait()


# == statistics in the cache itself (mod_tls_redis, mod_tls_memcache), shared with ProFTPD nodes ===================
def stats(d: Daemon) -> dict[str, int]:
    from test_ban import ftpdctl
    rc, lines = ftpdctl(d, "tls", "sesscache", "info")
    assert rc == 0, lines
    return {k: int(v) for k, _, v in (line.rpartition(": ") for line in lines) if k.startswith("Cache lifetime")}


def some_sessions(d: Daemon, tmp: Path, n: int = 2) -> None:
    """n new TLSv1.2 sessions by ID, each resumed once by a new connection."""
    for i in range(n):
        sess = tmp / f"st{time.monotonic_ns()}.pem"
        assert "New, " in s_client(d.port, sess, out=True, extra=("-no_ticket",))
        assert "Reused, " in s_client(d.port, sess, out=False, extra=("-no_ticket",))


def test_redis_statistics_are_counted_in_redis_and_shared_with_proftpd(tmp_path_factory, pki, tmp_path,
                                                                       redis_server):
    """proftpy counts as mod_tls_redis does, in the same keys (INCRBY, no TTL): a ProFTPD node's sessions add
    to the counts proftpy's ftpdctl shows. (ProFTPD's own ftpdctl prints the bytes of each count's text as a
    number: "3" as 51; proftpy prints 3.)"""
    redis = f"RedisEngine on\nRedisServer 127.0.0.1:{redis_server.port}\n"
    ours = start(tmp_path_factory, pki, "redis-stats", redis + "RedisTimeouts 300 300\nTLSSessionCache redis: 600")
    d = proftpd(tmp_path, pki, f"LoadModule mod_redis.c\nLoadModule mod_tls_redis.c\n{redis}"
                f"RedisLog {tmp_path}/redis.log\nTLSSessionCache redis: 600")
    try:
        before = stats(ours)
        some_sessions(ours, tmp_path)
        after = stats(ours)
        assert after["Cache lifetime sessions stored"] >= before.get("Cache lifetime sessions stored", 0) + 2
        assert after["Cache lifetime hits"] >= before.get("Cache lifetime hits", 0) + 2
        key = b"mod_tls_redis.sessions.cache_stores"
        assert redis_server.client().ttl(key) == -1 and redis_server.keys()[key].isdigit()
        some_sessions(d, tmp_path)                   # ProFTPD's sessions, counted in the same keys
        assert stats(ours)["Cache lifetime sessions stored"] >= after["Cache lifetime sessions stored"] + 2
    finally:
        stop(ours)
        d.proc.kill()
        d.proc.wait()


def test_memcache_statistics_shared_with_proftpd(tmp_path_factory, pki, tmp_path, memcached):
    """ProFTPD's mod_tls_memcache makes each counter as 4 binary bytes, which memcached then refuses to increment
    (its counts stay at 1); proftpy reads that as 1 and writes the next count as text, which memcached, and so
    ProFTPD's next increments, carry on from."""
    mc = f"MemcacheEngine on\nMemcacheServers 127.0.0.1:{memcached.port}\n"
    key = tls_cache.MEMCACHE_PREFIX + b"cache_stores"
    mc_client = memcached.client()
    mc_client.delete(key)
    d = proftpd(tmp_path, pki, f"LoadModule mod_memcache.c\nLoadModule mod_tls_memcache.c\n{mc}"
                f"TLSSessionCache memcache:/json 600")
    ours = start(tmp_path_factory, pki, "memcache-stats", mc + "MemcacheTimeouts 300 300 300\n"
                 "TLSSessionCache memcache:/json 600")
    try:
        some_sessions(d, tmp_path)
        assert memcached.get(key) == b"\x01\x00\x00\x00"            # ProFTPD's: stuck at its first count
        assert stats(ours)["Cache lifetime sessions stored"] == 1
        some_sessions(ours, tmp_path)
        assert memcached.get(key) == b"3" and stats(ours)["Cache lifetime sessions stored"] == 3
        some_sessions(d, tmp_path, 1)                # ProFTPD's increment works on the text
        assert wait_until(lambda: memcached.get(key) == b"4", 5)
        assert stats(ours)["Cache lifetime hits"] >= 3
    finally:
        mc_client.close()
        stop(ours)
        d.proc.kill()
        d.proc.wait()
