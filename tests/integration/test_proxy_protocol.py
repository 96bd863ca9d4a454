"""PROXY protocol (mod_proxy_protocol) against the real daemon: a client whose connection starts with a header is
the client the header names, for everything (logs, scoreboard, <Limit>, classes, Max*PerHost, the master's vetoes,
reverse DNS), passive transfers work through the proxy's address, and every bad, late or unexpected header closes
the connection without a reply, with a log line. Clients: ftplib sending the header itself, and curl
--haproxy-protocol."""

from __future__ import annotations

import ftplib
import io
import json
import os
import resource
import socket
import subprocess
import sys
import time

import pytest

from conftest import PASSWORDS, REPO, make_file, wait_until
from proftpy.net import proxy
from proxyclient import ProxiedFTP, closed_without_reply, v1_as, v2_as

V1 = "DefaultRoot ~\nProxyProtocolEngine on\nProxyProtocolVersion haproxyV1\nProxyProtocolTimeout 1\nSyslogLevel info\n"
V2 = V1.replace("haproxyV1", "haproxyV2")


def login_as(d, header, user="alice", source=None) -> ftplib.FTP:
    ftp = ProxiedFTP(header, source)
    ftp.connect(d.host, d.port)
    ftp.login(user, PASSWORDS[user])
    return ftp


def ftpwho(d) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "proftpy.tools.ftpwho", "-f", str(d.dir / "proftpy.scoreboard"),
                          "-o", "json"], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), check=True).stdout
    return json.loads(out)["connections"]


def test_v1_header_names_the_client_everywhere(ftpd):
    d = ftpd(V1 + 'LogFormat who "%a %h %{remote-port} %m"\nExtendedLog {dir}/ext.log ALL who\n'
                  "TransferLog {dir}/xfer.log\n")
    make_file(d, "f.txt", b"proxied bytes")
    ftp = login_as(d, v1_as(("203.0.113.9", 40001)))
    assert "203.0.113.9" in ftp.sendcmd("STAT")                  # "Connected from ..."
    assert [c["remote_address"] for c in ftpwho(d)] == ["203.0.113.9"]
    listing = []
    ftp.retrlines("LIST", listing.append)                       # PASV: the data connection comes from the proxy
    assert any("f.txt" in line for line in listing), (listing, d.log()[-3000:])
    got = io.BytesIO()
    ftp.retrbinary("RETR f.txt", got.write)
    assert got.getvalue() == b"proxied bytes"
    ftp.quit()
    assert wait_until(lambda: "QUIT" in (d.dir / "ext.log").read_text())
    ext = (d.dir / "ext.log").read_text().splitlines()
    assert ext and all(line.startswith("203.0.113.9 203.0.113.9 40001 ") for line in ext)
    assert (d.dir / "xfer.log").read_text().split()[6] == "203.0.113.9"     # xferlog's remote-host field
    log = d.log()
    assert "UPDATED client remote address/port: 203.0.113.9#40001 (WAS 127.0.0.1#" in log
    assert "(203.0.113.9[203.0.113.9]): FTP session opened." in log
    assert "address mismatch" not in log


def test_v2_header_tlvs_are_logformat_notes(ftpd):
    d = ftpd(V2 + 'LogFormat tlv "%a %{note:mod_proxy_protocol.authority} %{note:mod_proxy_protocol.unique-id} '
                  '%{note:mod_proxy_protocol.tls.version}"\nExtendedLog {dir}/tlv.log AUTH tlv\n')
    ssl_tlv = b"\x01\0\0\0\0" + bytes([0x21]) + b"\0\x07TLSv1.3"
    ftp = login_as(d, v2_as(("2001:db8::77", 5000), ("2001:db8::1", 21), ((proxy.TLV_AUTHORITY, b"ftp.example.com"),
                                                     (proxy.TLV_UNIQUE_ID, b"req-42"), (proxy.TLV_SSL, ssl_tlv))))
    ftp.quit()
    assert wait_until(lambda: (d.dir / "tlv.log").exists() and len((d.dir / "tlv.log").read_text().splitlines()) >= 2)
    lines = (d.dir / "tlv.log").read_text().splitlines()
    assert set(lines) == {"2001:db8::77 ftp.example.com req-42 TLSv1.3"}


def test_bytes_after_the_header_stay_for_the_session(ftpd):
    """A command sent in the same packet as the header is the session's first command (as a TLS ClientHello is
    with implicit FTPS)."""
    d = ftpd(V1)
    with socket.create_connection((d.host, d.port), 10) as s:
        s.sendall(proxy.build_v1(("198.51.100.20", 1234), (d.host, d.port)) + b"NOOP\r\n")
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        assert f.readline() == b"200 NOOP command successful\r\n"


def test_limit_class_and_per_host_limits_see_the_proxied_address(ftpd):
    d = ftpd(V1 + "<Class proxied>\nFrom 198.51.100.0/24\n</Class>\nMaxConnectionsPerHost 1\n"
                  'LogFormat cls "%a %c"\nExtendedLog {dir}/cls.log AUTH cls\n'
                  "<Limit LOGIN>\nDeny from 203.0.113.0/24\n</Limit>\n")
    denied = ProxiedFTP(v1_as(("203.0.113.50", 1000)))
    with pytest.raises((EOFError, ftplib.Error, ConnectionError)):
        denied.connect(d.host, d.port)                          # <Limit LOGIN>: closed at connect, no reply
    first = login_as(d, v1_as(("198.51.100.4", 1001)))
    second = ProxiedFTP(v1_as(("198.51.100.4", 1002)))
    with pytest.raises(ftplib.Error, match="530"):
        second.connect(d.host, d.port)
        second.login("alice", PASSWORDS["alice"])               # MaxConnectionsPerHost: the same client, twice
    other = login_as(d, v1_as(("198.51.100.5", 1003)), "bob")  # another client behind the same proxy
    other.quit()
    first.quit()
    assert wait_until(lambda: len((d.dir / "cls.log").read_text().splitlines()) >= 2)
    assert "198.51.100.4 proxied" in (d.dir / "cls.log").read_text()
    assert "203.0.113.50" not in (d.dir / "cls.log").read_text()


def test_master_veto_sees_the_proxied_address(ftpd):
    d = ftpd(V1 + "MaxConnectionRate 1 30\n")
    ftp = login_as(d, v1_as(("198.51.100.61", 2000)))
    got, _ = closed_without_reply(d.host, d.port, proxy.build_v1(("198.51.100.62", 2001), (d.host, d.port)))
    assert got == b""
    ftp.quit()
    assert wait_until(lambda: "MaxConnectionRate reached, refused connection from 198.51.100.62" in d.log())


def test_reverse_dns_of_the_proxied_address(ftpd):
    d = ftpd(V1 + "UseReverseDNS on\n")
    ftp = login_as(d, v1_as(("127.0.0.1", 3000)), source="127.0.0.9")
    ftp.quit()
    name = socket.gethostbyaddr("127.0.0.1")[0]
    assert wait_until(lambda: f"({name}[127.0.0.1]): FTP session opened." in d.log())
    assert "[127.0.0.9]" not in d.log()


BAD = [
    ("no header in time", b"", "proxy protocol timeout (1 secs) reached, disconnecting client 127.0.0.1"),
    ("wrong signature", b"USER alice\r\n", "wrong signature"),
    ("oversize line", b"PROXY TCP4 " + b"1" * 200, "without CRLF within 107 bytes"),
    ("lone LF", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "lone LF"),
    ("leading zeros", b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", "is not an TCP4 address"),
    ("version 2 where 1 is configured", proxy.build_v2(("1.2.3.4", 1), ("5.6.7.8", 2)), "version 2 header where"),
    ("TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00", "unexpected TLS handshake bytes"),
    ("cut short", b"PROXY TCP4 1.2.3.4 5.6", "cut short"),
]


@pytest.mark.parametrize("data,logged", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_header_is_closed_without_a_reply(ftpd, data, logged):
    d = ftpd(V1)
    if logged == "cut short":
        with socket.create_connection((d.host, d.port), 10) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass            # closed with the header's bytes unread: a reset, still no reply
    else:
        got, took = closed_without_reply(d.host, d.port, data)
        assert got == b""
        assert took < 5
    assert wait_until(lambda: logged in d.log()), d.log()[-2000:]
    assert "FTP session opened" not in d.log()
    ftp = login_as(d, v1_as(("198.51.100.1", 1)))           # the master is fine
    ftp.quit()


def test_v2_bad_headers_closed_without_a_reply(ftpd):
    d = ftpd(V2)
    good = proxy.build_v2(("10.0.0.1", 1), ("10.0.0.2", 2))
    for data, logged in ((good[:12] + b"\x31" + good[13:], "version 3"),
                         (good[:12] + b"\x22" + good[13:], "unknown command 2"),
                         (good[:13] + b"\x41" + good[14:], "unknown family/transport 0x41"),
                         (good[:14] + b"\xff\xff" + good[16:], "more than the")):
        got, _ = closed_without_reply(d.host, d.port, data)
        assert got == b""
        assert wait_until(lambda: logged in d.log()), logged


def test_v2_local_is_served_with_the_real_addresses(ftpd):
    """HAProxy's health checks send LOCAL: the connection is the proxy's own, served as it is."""
    d = ftpd(V2)
    ftp = ProxiedFTP(proxy.build_v2(None, None, local=True))
    assert ftp.connect(d.host, d.port).startswith("220")
    ftp.login("alice", PASSWORDS["alice"])
    assert [c["remote_address"] for c in ftpwho(d)] == ["127.0.0.1"]
    ftp.quit()


def test_trusted_proxies(ftpd):
    """Only the listed sources send headers (and must); anyone else is a direct client, and a header from it is
    refused."""
    d = ftpd(V1 + "ProxyProtocolTrustedProxies 127.0.0.2,127.0.0.3\n")
    direct = ProxiedFTP(None, source="127.0.0.1")
    direct.connect(d.host, d.port)
    direct.login("alice", PASSWORDS["alice"])
    assert [c["remote_address"] for c in ftpwho(d)] == ["127.0.0.1"]
    direct.quit()
    proxied = login_as(d, v1_as(("198.51.100.30", 1)), "bob", source="127.0.0.2")
    assert [c["remote_address"] for c in ftpwho(d)] == ["198.51.100.30"]
    proxied.quit()
    # a trusted proxy that sends no header
    got, took = closed_without_reply(d.host, d.port, b"", source="127.0.0.3")
    assert got == b"" and 0.5 < took < 5
    assert wait_until(lambda: "timeout (1 secs) reached, disconnecting client 127.0.0.3" in d.log())
    # a header from an untrusted source: never believed, the connection closed
    got, _ = closed_without_reply(d.host, d.port, proxy.build_v1(("198.51.100.31", 1), (d.host, d.port)),
                                  source="127.0.0.4")
    assert b"230" not in got and (got == b"" or b"500 PROXY not understood" in got)
    assert wait_until(lambda: "PROXY protocol header from untrusted source 127.0.0.4 refused" in d.log())
    assert "198.51.100.31" not in d.log()


def test_proxied_server_address_picks_the_vhost(ftpd):
    d = ftpd(V1 + "ProxyProtocolOptions UseProxiedServerAddress\n"
                  "<VirtualHost 127.0.0.5>\nServerName \"front\"\nPort {port}\n"
                  + "AuthOrder mod_auth_file.c\nAuthUserFile {dir}/ftpd.passwd\nAuthGroupFile {dir}/ftpd.group\n"
                  "ProxyProtocolEngine on\n</VirtualHost>\n")
    ftp = ProxiedFTP(lambda s: proxy.build_v1(("198.51.100.40", 1), ("127.0.0.5", d.port)))
    assert "front" in ftp.connect(d.host, d.port)
    ftp.login("alice", PASSWORDS["alice"])
    assert ftp.sendcmd("PASV").startswith("227 Entering Passive Mode (127,0,0,5,")
    ftp.quit()
    unknown = ProxiedFTP(lambda s: proxy.build_v1(("198.51.100.41", 1), ("192.0.2.1", 21)))
    assert "proftpy test" in unknown.connect(d.host, d.port)      # no server there: the connection's own stays
    unknown.quit()


def test_curl_haproxy_protocol(ftpd, tmp_path):
    """curl sends its header on the data connections too: HeaderOnDataConnections reads it off them, so it never
    ends up in a listing's socket or an uploaded file."""
    d = ftpd(V1 + "ProxyProtocolOptions HeaderOnDataConnections\n")
    make_file(d, "c.txt", b"via curl")
    url = f"ftp://alice:{PASSWORDS['alice']}@{d.host}:{d.port}/"
    curl = ["curl", "-sS", "--max-time", "20", "--haproxy-protocol", "--interface", "127.0.0.7"]
    out = subprocess.run(curl + [url + "c.txt"], capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout == b"via curl", out.stderr
    out = subprocess.run(curl + [url], capture_output=True, timeout=30)
    assert out.returncode == 0 and b"c.txt" in out.stdout, out.stderr
    (tmp_path / "up.bin").write_bytes(b"uploaded through curl" * 1000)
    out = subprocess.run(curl + ["-T", str(tmp_path / "up.bin"), url + "up.bin"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert (d.home("alice") / "up.bin").read_bytes() == b"uploaded through curl" * 1000
    refused = subprocess.run(["curl", "-sS", "--max-time", "10", url], capture_output=True, timeout=30)
    assert refused.returncode != 0
    assert wait_until(lambda: "(127.0.0.7[127.0.0.7]): FTP session opened." in d.log())
    assert wait_until(lambda: "proxy protocol timeout" in d.log() or "bad PROXY protocol data" in d.log())
    assert "on the data connection" not in d.log()


def test_waiting_connections_are_capped(ftpd):
    """A flood of connections that send no header cannot take the master's descriptors: beyond the cap (here 32:
    a quarter of a 128-descriptor limit) they are closed at once, logged once a second."""
    d = ftpd("ProxyProtocolEngine on\nProxyProtocolTimeout 5\n")
    d.stop()                                # started again with fewer descriptors
    assert wait_until(lambda: not d.pidfile.exists(), 10)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    d.proc = subprocess.Popen([sys.executable, "-m", "proftpy", "-n", "-q", "-c", str(d.conf)], cwd=d.dir, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)))
    try:
        assert wait_until(lambda: d.pidfile.exists(), 15)
        flood = []
        for _ in range(48):
            flood.append(socket.create_connection((d.host, d.port), 5))
        time.sleep(0.5)
        closed = 0
        for s in flood:
            s.setblocking(False)
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass
        assert closed >= 48 - 32
        assert wait_until(lambda: "already wait for their pre-steps" in d.log())
        for s in flood:
            s.close()
        ftp = login_as(d, v1_as(("198.51.100.90", 1)))
        ftp.quit()
        assert d.proc.poll() is None
    finally:
        d.stop()


def test_ignore_reads_the_header_but_keeps_the_address(ftpd):
    d = ftpd(V1 + "ProxyProtocolIgnore on\n")
    ftp = login_as(d, v1_as(("198.51.100.70", 7000)))           # the header is still required and consumed
    assert [c["remote_address"] for c in ftpwho(d)] == ["127.0.0.1"]
    ftp.quit()
    got, _ = closed_without_reply(d.host, d.port, b"USER alice\r\n")
    assert got == b""
