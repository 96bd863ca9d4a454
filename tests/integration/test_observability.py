"""Seeing inside a running server: the TraceLog, the Prometheus exporter and the live status page, against the
real daemon driven by real clients (ftplib, curl, headless Chromium)."""

from __future__ import annotations

import base64
import ftplib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORDS, free_port, listening, make_file, wait_until
from tls_helpers import pki  # noqa: F401 - a fixture

TRACE_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(\d+)\] (\(client [^)]*\) )?<([a-z_]+):(\d+)>: (.*)$")


def trace_lines(d) -> list[str]:
    path = d.dir / "trace.log"
    return path.read_text().splitlines() if path.exists() else []


# -- Trace --------------------------------------------------------------------------------------------------------
def test_tracelog_shows_commands_replies_and_the_deciding_limit_line(ftpd):
    d = ftpd("DefaultRoot ~\nTraceLog {dir}/trace.log\nTrace command:7 response:1 access:5 data:6 privs:9\n"
             "TraceOptions +ConnIPs\n<Limit MKD>\nDenyAll\n</Limit>\n")
    make_file(d, "f.txt", b"x" * 1000)
    with d.login() as ftp:
        ftp.retrbinary("RETR f.txt", io.BytesIO().write)
        with pytest.raises(ftplib.error_perm):
            ftp.mkd("nope")
    assert wait_until(lambda: any("221 Goodbye" in line for line in trace_lines(d)))
    lines = trace_lines(d)
    assert all(TRACE_LINE.match(line) for line in lines), [x for x in lines if not TRACE_LINE.match(x)][:3]
    text = "\n".join(lines)
    session = [m for m in map(TRACE_LINE.match, lines) if m.group(3) == "response"]
    assert session and session[0].group(2) == f"(client 127.0.0.1, server 127.0.0.1:{d.port}) "
    assert "<response:1>: 220 " in text and "<response:1>: 230 User alice logged in" in text
    assert "<command:7>: dispatching CMD command 'PASS (hidden)' to mod_auth.c" in text
    assert "<command:7>: dispatching PRE_CMD command 'MKD nope'" in text
    assert re.search(r"<access:5>: MKD nope at \S+: denied by <Limit MKD> denies: DenyAll \(\S+proftpy.conf:6\)", text)
    assert "<data:6>: RETR: transfer ends after 1000 bytes" in text
    assert "alice-secret" not in text
    if os.geteuid() == 0:
        assert "<privs:5>: dropping privileges for good" in text


def test_trace_options_and_unlisted_channels(ftpd):
    """-Timestamp drops the date; channels not named stay silent; a level range keeps only those levels."""
    d = ftpd("TraceLog {dir}/trace.log\nTrace response:1 command:6-6\nTraceOptions -Timestamp\n")
    with d.login():
        pass
    assert wait_until(lambda: any("221" in line for line in trace_lines(d)))
    lines = trace_lines(d)
    assert lines and all(re.match(r"^\[\d+\] <(response:1|command:6)>: ", line) for line in lines), lines[:5]


def test_trace_directives_are_checked(ftpd, tmp_path):
    conf = tmp_path / "bad.conf"
    for line, message in (("Trace command", "use channel:level"), ("Trace command:x", "bad trace level"),
                          ("TraceOptions ConnIPs", "bad TraceOption: 'ConnIPs'")):
        conf.write_text(f"ServerName x\n{line}\n")
        out = subprocess.run([sys.executable, "-m", "proftpy", "-t", "-c", str(conf)], capture_output=True, text=True,
                             cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(_repo())))
        assert out.returncode == 1 and f"{conf}:2:" in out.stderr and message in out.stderr, out.stderr


def test_debug_level_sends_trace_messages_to_the_systemlog(ftpd):
    d = ftpd(args=["-d", "7"])
    with d.login():
        pass
    assert wait_until(lambda: "dispatching CMD command 'USER alice' to mod_auth.c" in d.log())


def test_ftpdctl_trace_turns_a_channel_on_in_the_running_server(ftpd):
    d = ftpd("TraceLog {dir}/trace.log\nControlsACLs all allow user root\nAdminControlsACLs all allow user *\n")
    with d.login():
        pass
    assert not trace_lines(d)
    out = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpdctl", "-s", str(d.dir / "proftpy.sock"), "trace",
                          "response:1"], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(_repo())))
    assert "trace channel 'response' set to level 1" in out.stdout, out.stderr
    with d.login():
        pass
    assert wait_until(lambda: any("<response:1>: 230 User alice logged in" in line for line in trace_lines(d)))


def _repo():
    from conftest import REPO
    return REPO


# -- metrics ------------------------------------------------------------------------------------------------------
PROM = "DefaultRoot ~\nPrometheusEngine on\nPrometheusExporter 127.0.0.1:{mport}{auth}\nPrometheusStatusPage on\n"


def with_exporter(ftpd, extra: str = "", auth: str = "", args=()):
    mport = free_port()
    d = ftpd(PROM.replace("{mport}", str(mport)).replace("{auth}", auth) + extra, args=list(args))
    d.mport = mport
    assert wait_until(lambda: listening(mport), timeout=10), d.log()
    return d


def scrape(d, path: str = "/metrics", headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{d.mport}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def samples(d, **kw) -> dict[tuple, float]:
    status, body, _ = scrape(d, **kw)
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            labels = dict(s.labels)
            if "le" in labels:                      # "1.048576e+06" and "1048576.0" are the same bucket
                labels["le"] = str(float(labels["le"]))
            out[(s.name, tuple(sorted(labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_logins_transfers_and_failures(ftpd):
    d = with_exporter(ftpd)
    make_file(d, "f.bin", b"y" * 200_000)
    with d.login() as ftp:
        ftp.retrbinary("RETR f.bin", io.BytesIO().write)
        ftp.storbinary("STOR up.bin", io.BytesIO(b"z" * 60_000))
        ftp.nlst()
        with pytest.raises(ftplib.error_perm):
            ftp.retrbinary("RETR missing", io.BytesIO().write)
    bad = d.connect()
    with pytest.raises(ftplib.error_perm):
        bad.login("alice", "wrong")
    with pytest.raises(ftplib.error_perm):
        bad.login("nosuchuser", "x")
    bad.quit()
    assert wait_until(lambda: value(samples(d), "proftpd_connection_total", protocol="ftp") == 2)
    m = samples(d)
    assert value(m, "proftpd_login_total", protocol="ftp") == 1
    assert value(m, "proftpd_auth_total", protocol="ftp", method="password") == 1
    assert value(m, "proftpd_auth_error_total", protocol="ftp", reason="bad password") == 1
    assert value(m, "proftpd_auth_error_total", protocol="ftp", reason="unknown user") == 1
    assert value(m, "proftpd_login_error_total", protocol="ftp") == 2
    assert value(m, "proftpd_file_download_total", protocol="ftp") == 1
    assert value(m, "proftpd_file_download_error_total", protocol="ftp") == 1
    assert value(m, "proftpd_file_upload_total", protocol="ftp") == 1
    assert value(m, "proftpd_directory_list_total", protocol="ftp") == 1
    assert value(m, "proftpd_file_download_bytes_sum", protocol="ftp") == 200_000
    assert value(m, "proftpd_file_download_bytes_bucket", protocol="ftp", le="102400.0") == 0
    assert value(m, "proftpd_file_download_bytes_bucket", protocol="ftp", le="inf") == 1
    assert value(m, "proftpd_file_download_bytes_bucket", protocol="ftp", le="1048576.0") == 1
    assert value(m, "proftpd_file_upload_bytes_bucket", protocol="ftp", le="102400.0") == 1
    assert value(m, "proftpd_connection_duration_seconds_count", protocol="ftp") == 2
    assert value(m, "proftpd_connection_count", protocol="ftp") == 0
    # the parser calls a counter's sample name_total; the text has mod_prometheus's name
    assert value(m, "proftpd_build_info_total", proftpd_version="1.3.8", mod_prometheus_version=_version()) == 1
    assert re.search(rb"^proftpd_build_info\{.*\} 1.0$", scrape(d)[1], re.M)
    assert value(m, "proftpd_timeout_total", protocol="ftp", reason="TimeoutIdle") == 0


def _version() -> str:
    from proftpy import __version__
    return f"proftpy/{__version__}"


def test_gauges_count_live_sessions_and_counters_survive_sigkill_and_hup(ftpd):
    d = with_exporter(ftpd)
    ftp = d.login()
    assert wait_until(lambda: value(samples(d), "proftpd_login_count", protocol="ftp") == 1)
    assert value(samples(d), "proftpd_connection_count", protocol="ftp") == 1
    session_pid = _session_pids(d)[0]
    os.kill(session_pid, signal.SIGKILL)
    ftp.close()
    assert wait_until(lambda: value(samples(d), "proftpd_connection_count", protocol="ftp") == 0)
    m = samples(d)
    assert value(m, "proftpd_login_total", protocol="ftp") == 1       # the killed session's count stays
    assert value(m, "proftpd_login_count", protocol="ftp") == 0
    os.kill(d.master_pid, signal.SIGHUP)
    assert wait_until(lambda: "configuration reloaded" in d.log())
    with d.login():
        pass
    assert wait_until(lambda: value(samples(d), "proftpd_login_total", protocol="ftp") == 2)


def _session_pids(d) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(d.master_pid)], capture_output=True, text=True)
    exporter = _exporter_pid(d)
    return [int(p) for p in out.stdout.split() if int(p) != exporter]


def _exporter_pid(d) -> int | None:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(d.master_pid)], capture_output=True, text=True)
    return next((int(line.split()[0]) for line in out.stdout.splitlines() if "metrics exporter" in line), None)


def test_the_exporter_runs_without_root_and_apart(ftpd):
    d = with_exporter(ftpd)
    pid = _exporter_pid(d)
    status = (open(f"/proc/{pid}/status").read())
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
    if os.geteuid() == 0:
        assert set(uids) == {"65534"}                                   # nobody: no User in the test config
        assert os.readlink(f"/proc/{pid}/root") != "/"                  # chrooted into the metrics directory
    os.kill(pid, signal.SIGKILL)                                        # a dead exporter is started again
    assert wait_until(lambda: _exporter_pid(d) != pid)
    assert wait_until(lambda: _exporter_pid(d) is not None and listening(d.mport), timeout=15), d.log()
    assert "Prometheus exporter (pid %d) ended (signal 9)" % pid in d.log()
    assert scrape(d)[0] == 200


def test_basic_auth_and_bad_clients_are_answered_within_a_bound(ftpd):
    d = with_exporter(ftpd, auth=" scraper s3cret")
    good = {"Authorization": "Basic " + base64.b64encode(b"scraper:s3cret").decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"scraper:nope").decode()}
    assert scrape(d)[0] == 401
    assert scrape(d, headers=wrong)[0] == 401
    assert scrape(d, "/status", headers=wrong)[0] == 401
    silent = [socket.create_connection(("127.0.0.1", d.mport)) for _ in range(5)]   # connect, never send
    big = socket.create_connection(("127.0.0.1", d.mport))
    big.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
    assert big.recv(100).startswith(b"HTTP/1.1 431")
    started = time.monotonic()
    status, body, headers = scrape(d, headers=dict(good, **{"Accept-Encoding": "gzip"}))
    assert status == 200 and headers["Content-Encoding"] == "gzip" and time.monotonic() - started < 2
    with d.login() as ftp:                                              # the sessions never noticed
        assert ftp.pwd() == "/"
    for s in silent:
        s.settimeout(10)
        assert s.recv(100) == b""                                       # closed by the exporter's deadline
        s.close()
    junk = socket.create_connection(("127.0.0.1", d.mport))
    junk.sendall(b"\x16\x03\x01 not http\r\n\r\n")
    assert junk.recv(100).startswith(b"HTTP/1.1 400")
    assert scrape(d, "/nope", headers=good)[0] == 400
    assert samples(d, headers=good)


def test_exposition_is_valid_for_promtool(ftpd, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: scripts/install-deps.sh installs Debian's prometheus package")
    d = with_exporter(ftpd)
    with d.login() as ftp:
        ftp.nlst()
    _, body, _ = scrape(d)
    out = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    # promtool's lint (exit 3) objects to names mod_prometheus chose (gauges named *_count, counters without
    # _total): dashboards need those names. Anything else, and any parse error (exit 1), fails.
    named = ("non-histogram and non-summary metrics should not have \"_count\" suffix",
             "counter metrics should have \"_total\" suffix")
    problems = [line for line in (out.stdout + out.stderr).decode().splitlines()
                if line.strip() and not line.endswith(named)]
    assert out.returncode in (0, 3) and not problems, (out.returncode, problems)


# -- the status page ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_status_page_in_chromium_shows_a_running_transfer(ftpd, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: scripts/install-deps.sh installs it")
    d = with_exporter(ftpd, "TransferRate RETR 200\n")
    make_file(d, "big.bin", b"q" * 3_000_000)
    ftp = d.login()
    done = threading.Event()

    def download():
        try:
            ftp.retrbinary("RETR big.bin", lambda b: None)
        except (OSError, EOFError, ftplib.Error):
            pass                                        # the test ends the session when it has seen the row
        done.set()

    threading.Thread(target=download, daemon=True).start()
    assert wait_until(lambda: any(c.get("transfer_rate_kbps", 0) > 0 for c in
                                  json.loads(scrape(d, "/status.json")[1])["connections"]), timeout=10)
    profile = tmp_path / "chromium-profile"
    shot = tmp_path / "status.png"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--window-size=1200,700"]
    url = f"http://127.0.0.1:{d.mport}/status"
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
    subprocess.run(base + [f"--screenshot={shot}", url], capture_output=True, timeout=60)
    rows = re.findall(r'<tr class="session" data-pid="\d+">(.*?)</tr>', dom, re.S)
    assert rows, dom[:2000]
    cells = [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)]
    assert cells[1] == "alice" and cells[2] == "127.0.0.1" and cells[4] == "ftp"
    assert cells[5] == "RETR big.bin" and re.search(r"\d+% \(\d+ bytes\)", cells[6]), cells
    assert float(cells[7]) > 0
    assert "1 session(s): 1 downloading" in dom
    assert shot.exists() and shot.stat().st_size > 1000
    if os.environ.get("PROFTPY_SCREENSHOT"):                # how docs/status-page.png was made
        shutil.copy(shot, os.environ["PROFTPY_SCREENSHOT"])
    ftp.sock.shutdown(socket.SHUT_RDWR)                 # wakes the download thread; it ends before the close
    assert done.wait(10)
    ftp.close()


def test_status_page_is_off_unless_configured(ftpd):
    mport = free_port()
    d = ftpd(f"PrometheusEngine on\nPrometheusExporter 127.0.0.1:{mport}\n")
    d.mport = mport
    assert wait_until(lambda: listening(mport), timeout=10)
    assert scrape(d, "/status")[0] == 400 and scrape(d, "/status.json")[0] == 400
    assert scrape(d)[0] == 200


def test_status_json_shares_ftpwhos_fields(ftpd):
    d = with_exporter(ftpd)
    with d.login() as ftp:
        ftp.cwd("/")
        time.sleep(0.3)         # the session writes its "idle" 0.1 s after a command: both read it then
        doc = json.loads(scrape(d, "/status.json")[1])
        who = json.loads(subprocess.run([sys.executable, "-m", "proftpy.tools.ftpwho", "-f", str(d.dir / "proftpy.scoreboard"),
                                         "-o", "json"], capture_output=True, text=True,
                                        env=dict(os.environ, PYTHONPATH=str(_repo()))).stdout)
    mine = doc["connections"][0]
    assert set(who["connections"][0]) <= set(mine)
    assert mine["user"] == "alice" and doc["classes"] == [{"class": "(none)", "sessions": 1}]
    assert doc["server"]["config_file"] == str(d.conf) and doc["totals"]["sessions"] == 1


def test_login_delays_and_bans_are_counted(ftpd):
    """mod_delay's waits feed proftpd_login_delay_seconds; a banned client's refusals feed proftpd_ban (refused
    by the master or, before the master knows the ban, by the session)."""
    from test_ban import refused
    d = with_exporter(ftpd, "DelayEngine on\nDelayOnEvent PASS 50ms\nBanEngine on\nBanTable {dir}/ban.tab\n"
                            "BanMessage \"banned %a\"\n"
                            "MaxLoginAttempts 1\nBanOnEvent MaxLoginAttempts 1/00:01:00 00:01:00\n")
    with d.login():
        pass
    bad = d.connect()
    with pytest.raises((ftplib.error_perm, EOFError)):
        bad.login("alice", "wrong")
    bad.close()
    # the ban is made just after the 530 (a session that started meanwhile is ended quietly by the master)
    assert wait_until(lambda: refused(d) == "530 banned 127.0.0.1")
    assert wait_until(lambda: value(samples(d), "proftpd_login_delay_seconds_count", protocol="ftp") >= 1)
    assert value(samples(d), "proftpd_login_delay_seconds_sum", protocol="ftp") >= 0.05
    assert wait_until(lambda: value(samples(d), "proftpd_ban_total", protocol="ftp") >= 1)
    assert "internal error" not in d.log()


def test_status_page_shows_bans_and_the_delay_table(ftpd):
    from test_ban import ftpdctl
    d = with_exporter(ftpd, "DelayEngine on\nBanEngine on\nBanTable {dir}/ban.tab\n"
                            "BanControlsACLs all allow user root\n")
    with d.login():
        pass
    assert ftpdctl(d, "ban", "host", "192.0.2.9")[1] == ["host 192.0.2.9 banned"]

    def sections() -> dict:
        status, body, _ = scrape(d, "/status.json")
        assert status == 200
        return json.loads(body)["sections"]

    assert wait_until(lambda: any(r["name"] == "192.0.2.9" and r["type"] == "host"
                                  for r in sections().get("mod_ban.c", [])))
    rows = sections()["mod_delay.c"]
    assert {(r["command"], r["protocol"]) for r in rows} == {("USER", "ftp"), ("PASS", "ftp")}
    assert all(r["values"] == 1 for r in rows)


def test_ftps_sessions_have_the_ftps_label_and_tls_counters(ftpd, pki):
    """mod_tls's events feed the metrics: the protocol label turns ftps, each handshake counts its TLS version,
    a failed control handshake counts as a handshake error."""
    import ssl
    from tls_helpers import ftps
    d = with_exporter(ftpd, f"TLSEngine on\nTLSECCertificateFile {pki.path('server.pem')}\n"
                            f"TLSECCertificateKeyFile {pki.path('server.key')}\n")
    client = ftps(d.port, pki.client(ssl.TLSVersion.TLSv1_3))
    client.nlst()
    client.quit()
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    raw.recv(200)
    raw.sendall(b"AUTH TLS\r\n")
    raw.recv(200)
    raw.sendall(b"this is no ClientHello\r\n" * 10)
    assert raw.recv(200).startswith(b"421 ")
    raw.close()
    assert wait_until(lambda: value(samples(d), "proftpd_handshake_error_total", protocol="ftps",
                                    connection="ctrl") + value(samples(d), "proftpd_handshake_error_total",
                                                               protocol="ftp", connection="ctrl") == 1)
    m = samples(d)
    assert value(m, "proftpd_tls_protocol_total", protocol="ftps", version="TLSv1.3") == 1
    assert value(m, "proftpd_login_total", protocol="ftps") == 1
    assert value(m, "proftpd_directory_list_total", protocol="ftps") == 1
