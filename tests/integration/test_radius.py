"""mod_radius against a real freeradius (Debian's, on private loopback ports, started once for the module): logins
accepted and rejected with their Reply-Message lines, RadiusUserInfo/RadiusGroupInfo from Vendor-Specific
attributes, the yes/no mode without RadiusUserInfo, RadiusRealm, fail-over past a wrong secret and dead servers,
all servers down, Session-Timeout, accounting Start/Stop records with byte counts, `QuotaLimitTable radius:`;
RequireMAC against a fake server (freeradius 3.2.1 sends no Message-Authenticator); configuration errors."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import socket
import time

import pytest

from conftest import IS_ROOT, error_reply, free_port, refused_config, wait_until
from radius_helpers import SECRET, USERS, FakeRadius, answer, start_freeradius

from proftpy import quotatab as qt
from proftpy.net import radius as rad

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="RADIUS users get their own uids: the daemon runs as root"),
              pytest.mark.skipif(not shutil.which("freeradius") and not os.path.exists("/usr/sbin/freeradius"),
                                 reason="freeradius is not installed (scripts/install-deps.sh)")]

UID = 2450
VSA_UID, VSA_GID, VSA_GID2, VSA_GID3 = 2451, 2452, 2453, 2454


@pytest.fixture(scope="module")
def radius(tmp_path_factory):
    vsa_home = tmp_path_factory.mktemp("vsa")
    os.chmod(vsa_home, 0o755)
    (vsa_home / "home").mkdir()
    os.chown(vsa_home / "home", VSA_UID, VSA_GID)
    server = start_freeradius({"uid": VSA_UID, "gid": VSA_GID, "home": vsa_home / "home", "gid2": VSA_GID2,
                               "gid3": VSA_GID3})
    server.vsa_home = vsa_home / "home"
    yield server
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


def password(user: str) -> str:
    return USERS[user][0]


USER_INFO = f"RadiusUserInfo {UID} {UID} {{dir}}/radhome /bin/sh\n"


def radius_config(srv, extra: str = "", auth: str | None = None, user_info: str = USER_INFO) -> str:
    auth = auth if auth is not None else f"RadiusAuthServer 127.0.0.1:{srv.auth_port} {SECRET} 2\n"
    return (f"AuthOrder mod_radius.c mod_auth_file.c\nDefaultRoot ~\n<IfModule mod_radius.c>\nRadiusEngine on\n"
            f"{auth}RadiusAcctServer 127.0.0.1:{srv.acct_port} {SECRET} 2\nRadiusLog {{dir}}/radius.log\n{user_info}"
            f"{extra}</IfModule>\nRequireValidShell off\n")


def start(ftpd, srv, tmp_path, extra: str = "", previous=None, **kw):
    """A daemon with mod_radius on (after stopping `previous`, which shares the directory)."""
    if previous is not None:
        previous.stop()
        previous.pidfile.unlink(missing_ok=True)
    home = tmp_path / "radhome"
    home.mkdir(exist_ok=True)
    os.chown(home, UID, UID)
    return ftpd(radius_config(srv, extra, **kw))


def radius_log(d) -> str:
    path = d.dir / "radius.log"
    return path.read_text() if path.exists() else ""


def login(d, user: str, pw: str | None = None) -> tuple[ftplib.FTP, str]:
    ftp = d.connect()
    ftp.sendcmd(f"USER {user}")
    return ftp, ftp.sendcmd(f"PASS {pw if pw is not None else password(user)}")


def records_for(srv, port: int, status: str | None = None) -> list[dict]:
    return [r for r in srv.records() if r.get("NAS-Port") == str(port)
            and (status is None or r.get("Acct-Status-Type") == status)]


def test_accept_reject_and_reply_messages(ftpd, radius, tmp_path):
    d = start(ftpd, radius, tmp_path)
    ftp, reply = login(d, "radalice")
    assert reply == "230-Welcome, radalice\n230 User radalice logged in"
    ftp.storbinary("STOR here.txt", io.BytesIO(b"x"))          # RadiusUserInfo's home and uid
    assert os.stat(tmp_path / "radhome" / "here.txt").st_uid == UID
    ftp.quit()
    ftp, reply = login(d, "radmsg")
    assert reply.splitlines() == ["230-First line", " Second line", "230 User radmsg logged in"]
    ftp.quit()
    ftp = d.connect()
    ftp.sendcmd("USER radreject")
    assert error_reply(ftp, "PASS anything") == "530-Go away\n530 Login incorrect."
    ftp.sendcmd("USER radalice")          # freeradius sends the user's reply items with an Access-Reject too
    assert error_reply(ftp, "PASS wrong") == "530-Welcome, radalice\n530 Login incorrect."
    ftp.sendcmd("USER radalice")                  # a new PASS starts afresh (ProFTPD 1.3.8 would refuse it)
    assert ftp.sendcmd(f"PASS {password('radalice')}").startswith("230")
    ftp.quit()
    text = radius_log(d)
    assert "authentication successful for user 'radalice'" in text
    assert "authentication failed for user 'radreject'" in text
    assert "no such user found" in d.log()            # a rejected user is nobody (as ProFTPD logs it)


def test_user_info_from_vendor_attributes(ftpd, radius, tmp_path):
    """$(attribute-id:default) forms: radvsa's Access-Accept carries Unix-FTP-UID/GID/Home and the group lists;
    radalice's carries none, so the defaults apply."""
    d = start(ftpd, radius, tmp_path, "RadiusGroupInfo $(13:radprime) $(14:none) $(15:1)\n",
              user_info=f"RadiusUserInfo $(10:{UID}) $(11:{UID}) $(12:{{dir}}/radhome) /bin/sh\n")
    ftp, reply = login(d, "radvsa")
    assert reply.startswith("230")
    assert ftp.pwd() == "/"
    ftp.storbinary("STOR owned.txt", io.BytesIO(b"data"))
    st = os.stat(radius.vsa_home / "owned.txt")
    assert (st.st_uid, st.st_gid) == (VSA_UID, VSA_GID)
    assert ftp.sendcmd("SITE CHGRP 2453 owned.txt").startswith("200")       # a supplementary group from RADIUS
    assert os.stat(radius.vsa_home / "owned.txt").st_gid == VSA_GID2
    assert error_reply(ftp, "SITE CHGRP 2460 owned.txt").startswith("550")
    ftp.quit()
    ftp, reply = login(d, "radalice")
    ftp.storbinary("STOR mine.txt", io.BytesIO(b"x"))
    assert os.stat(tmp_path / "radhome" / "mine.txt").st_uid == UID
    ftp.quit()


def test_accounting_start_stop_with_byte_counts(ftpd, radius, tmp_path):
    d = start(ftpd, radius, tmp_path)
    (tmp_path / "radhome" / "down.bin").write_bytes(b"d" * 5000)
    ftp, _ = login(d, "radalice")
    ftp.storbinary("STOR up.bin", io.BytesIO(b"u" * 12345))
    got = bytearray()
    ftp.retrbinary("RETR down.bin", got.extend)
    listing: list[str] = []
    ftp.retrlines("NLST", listing.append)
    ftp.quit()
    recs = radius.wait_records(lambda recs: any(r.get("NAS-Port") == str(d.port) and
                                                r.get("Acct-Status-Type") == "Stop" for r in recs))
    start_rec = records_for(radius, d.port, "Start")[-1]
    stop_rec = records_for(radius, d.port, "Stop")[-1]
    for rec in (start_rec, stop_rec):
        assert rec["User-Name"] == "radalice" and rec["NAS-Identifier"] == "ftp"
        assert rec["NAS-IP-Address"] == "127.0.0.1" and rec["Calling-Station-Id"] == "127.0.0.1"
        assert rec["NAS-Port-Type"] == "Virtual" and rec["Acct-Authentic"] == "Local"
        assert rec["Class"] == "0x676f6c64"        # the Access-Accept's Class, unmodified
        assert len(rec["Acct-Session-Id"]) == 8 and rec["Acct-Session-Id"].isdigit()
    assert start_rec["Acct-Session-Id"] == stop_rec["Acct-Session-Id"]
    assert stop_rec["Acct-Input-Octets"] == "12345"
    assert int(stop_rec["Acct-Output-Octets"]) == 5000 + sum(len(n) + 2 for n in listing)
    assert stop_rec["Acct-Terminate-Cause"] == "User-Request"
    assert int(stop_rec["Acct-Session-Time"]) < 30
    # the server writes its detail record before it answers; the session logs after the answer
    assert wait_until(lambda: "accounting ended for user 'radalice'" in radius_log(d), 5), radius_log(d)
    assert recs


def closed_port() -> int:
    """A loopback UDP port nobody listens on."""
    return free_port(kind=socket.SOCK_DGRAM)


def test_failover_past_wrong_secret_and_closed_port(ftpd, radius, tmp_path):
    dead_port = closed_port()
    servers = (f"RadiusAuthServer 127.0.0.1:{radius.auth_port} wrong-secret 1\n"
               f"RadiusAuthServer 127.0.0.1:{dead_port} {SECRET} 5\n"
               f"RadiusAuthServer 127.0.0.1:{radius.auth_port} {SECRET} 2\n")
    d = start(ftpd, radius, tmp_path, auth=servers)
    began = time.monotonic()
    ftp, reply = login(d, "radbob")
    took = time.monotonic() - began
    assert reply.startswith("230")
    assert took < 4, took                 # the wrong secret's 1 s, the closed port at once
    ftp.quit()
    text = radius_log(d)
    assert f"packet receive failed from 127.0.0.1#{radius.auth_port}" in text
    assert f"packet receive failed from 127.0.0.1#{dead_port}" in text
    assert "Connection refused" in text


def test_all_servers_down(ftpd, radius, tmp_path):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        d = start(ftpd, radius, tmp_path,
                  auth=f"RadiusAuthServer 127.0.0.1:{silent.getsockname()[1]} {SECRET} 1\n"
                       f"RadiusAuthServer 127.0.0.1:{silent.getsockname()[1]} other 1\n")
        ftp = d.connect()
        ftp.sendcmd("USER radalice")
        assert error_reply(ftp, f"PASS {password('radalice')}") == "530 Login incorrect."
        assert ftp.sendcmd("NOOP").startswith("200")      # the session goes on
        ftp.quit()
    finally:
        silent.close()
    assert "error: no auth servers responded" in radius_log(d)
    assert wait_until(lambda: "no RADIUS server answered for user 'radalice'" in d.log())
    assert "USER radalice (Login failed): No such user found" in d.log()
    assert "Traceback" not in d.log() + radius_log(d)


def test_yes_no_mode_without_user_info(ftpd, radius, tmp_path):
    """No RadiusUserInfo: RADIUS says yes or no for an account the AuthUserFile knows (alice's RADIUS password is
    not her local one); when no server answers, the local password counts."""
    d = start(ftpd, radius, tmp_path, user_info="")
    ftp, reply = login(d, "alice", password("alice"))
    assert reply == "230 User alice logged in"
    ftp.storbinary("STOR local.txt", io.BytesIO(b"x"))         # the AuthUserFile's account: home and uid
    assert os.stat(d.home("alice") / "local.txt").st_uid == d.uid("alice")
    ftp.quit()
    ftp = d.connect()
    ftp.sendcmd("USER alice")
    assert error_reply(ftp, "PASS alice-secret") == "530 Login incorrect."    # the local one: RADIUS says no
    ftp.sendcmd("USER radalice")                  # RADIUS knows radalice, no module has her account
    assert error_reply(ftp, f"PASS {password('radalice')}") == "530 Login incorrect."
    ftp.quit()
    down = start(ftpd, radius, tmp_path, previous=d, user_info="",
                 auth=f"RadiusAuthServer 127.0.0.1:{closed_port()} {SECRET} 1\n")
    ftp, reply = login(down, "alice", "alice-secret")
    assert reply.startswith("230")
    ftp.quit()


def test_realm(ftpd, radius, tmp_path):
    d = start(ftpd, radius, tmp_path, "RadiusRealm @example.test\n", user_info="")
    ftp, reply = login(d, "alice", "alice-realm")
    assert reply.startswith("230")
    ftp.quit()
    radius.wait_records(lambda recs: records_for(radius, d.port, "Stop"))
    assert records_for(radius, d.port, "Stop")[-1]["User-Name"] == "alice@example.test"


def test_session_timeout_and_its_terminate_cause(ftpd, radius, tmp_path):
    d = start(ftpd, radius, tmp_path)
    ftp, reply = login(d, "radtimeout")
    assert reply.startswith("230")
    time.sleep(2.5)
    with pytest.raises((ftplib.Error, EOFError, OSError)) as e:
        ftp.sendcmd("NOOP")
    assert "Session Timeout (2 seconds)" in str(e.value) or isinstance(e.value, (EOFError, OSError))
    recs = radius.wait_records(lambda recs: records_for(radius, d.port, "Stop"))
    assert records_for(radius, d.port, "Stop")[-1]["Acct-Terminate-Cause"] == "Session-Timeout"
    assert recs
    ignored = start(ftpd, radius, tmp_path, "RadiusOptions IgnoreSessionTimeout IgnoreReplyMessage\n", previous=d)
    ftp, reply = login(ignored, "radtimeout")
    time.sleep(2.5)
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()
    ftp, reply = login(ignored, "radalice")
    assert reply == "230 User radalice logged in"
    ftp.quit()


def test_idle_timeout_and_its_terminate_cause(ftpd, radius, tmp_path):
    """radidle's Access-Accept says Idle-Timeout 2: the session's TimeoutIdle (20 in the base configuration)."""
    d = start(ftpd, radius, tmp_path)
    ftp, reply = login(d, "radidle")
    assert reply.startswith("230")
    assert wait_until(lambda: records_for(radius, d.port, "Stop"), timeout=6)
    assert records_for(radius, d.port, "Stop")[-1]["Acct-Terminate-Cause"] == "Idle-Timeout"
    with pytest.raises((ftplib.Error, EOFError, OSError)):
        ftp.sendcmd("NOOP")
    ftp.close()


def test_quota_limit_from_radius(ftpd, radius, tmp_path):
    """QuotaLimitTable radius: with RadiusQuotaInfo: radquota's Access-Accept gives 64 bytes in (a hard limit)."""
    qt.create(str(tmp_path / "quota.tally"), "tally")
    d = start(ftpd, radius, tmp_path, "RadiusQuotaInfo false hard $(18:1000000) 0 0 0 0 0\n"
              "</IfModule>\n<IfModule mod_quotatab.c>\nQuotaEngine on\nQuotaLimitTable radius:\n"
              "QuotaTallyTable file:{dir}/quota.tally\nQuotaLog {dir}/quota.log\n")
    ftp, reply = login(d, "radquota")
    assert reply.startswith("230")
    with pytest.raises(ftplib.Error, match="552"):
        ftp.storbinary("STOR big.bin", io.BytesIO(b"q" * 200))
    assert "Quota Type:\t\tUser" in ftp.sendcmd("SITE QUOTA") or "User" in ftp.sendcmd("SITE QUOTA")
    ftp.quit()
    ftp, reply = login(d, "radalice")            # no attribute: RadiusQuotaInfo's default, 1000000 bytes
    ftp.storbinary("STOR small.bin", io.BytesIO(b"q" * 200))
    ftp.quit()
    assert "found limit entry for user 'radquota'" in (tmp_path / "quota.log").read_text()


@pytest.mark.parametrize("mac", ["none", "good", "bad"])
def test_require_mac(ftpd, radius, tmp_path, mac):
    """RequireMAC against a fake server: an Access-Accept without a Message-Authenticator, or with a wrong one, is
    not believed (the login fails, the NOTICE names the shared secret); a right one is."""
    fake = FakeRadius(lambda req, raw: answer(req, rad.ACCESS_ACCEPT, b"fake-secret", mac=mac))
    try:
        d = start(ftpd, radius, tmp_path, "RadiusOptions RequireMAC\n",
                  auth=f"RadiusAuthServer 127.0.0.1:{fake.port} fake-secret 2\n")
        ftp = d.connect()
        ftp.sendcmd("USER someone")
        if mac == "good":
            assert ftp.sendcmd("PASS pw").startswith("230")
        else:
            assert error_reply(ftp, "PASS pw") == "530 Login incorrect."
            assert wait_until(lambda: "due to failed Message-Authenticator check" in d.log())
        ftp.quit()
        req = fake.requests[0]
        assert req.get(rad.USER_NAME) == b"someone"
        assert rad.unhide_password(req.get(rad.USER_PASSWORD), b"fake-secret", req.authenticator) == b"pw"
        assert rad.as_integer(req.get(rad.SERVICE_TYPE)) == rad.SERVICE_LOGIN
        assert rad.as_integer(req.get(rad.NAS_PORT)) == d.port
        assert req.get(rad.NAS_IDENTIFIER) == b"ftp" and req.get(rad.CALLING_STATION_ID) == b"127.0.0.1"
    finally:
        fake.close()


def test_challenge_and_forged_answers(ftpd, radius, tmp_path):
    """An Access-Challenge is no verdict (logged); an answer signed with another secret is discarded and the wait
    for the real one goes on."""
    def respond(req, raw):
        if req.get(rad.USER_NAME) == b"challenged":
            return answer(req, rad.ACCESS_CHALLENGE, b"k")
        fake.sock.sendto(answer(req, rad.ACCESS_REJECT, b"forger"), fake.peers[id(req)])
        return answer(req, rad.ACCESS_ACCEPT, b"k")
    fake = FakeRadius(respond)
    try:
        d = start(ftpd, radius, tmp_path, auth=f"RadiusAuthServer 127.0.0.1:{fake.port} k 2\n")
        ftp = d.connect()
        ftp.sendcmd("USER challenged")
        assert error_reply(ftp, "PASS pw") == "530 Login incorrect."
        ftp.sendcmd("USER anyone")
        assert ftp.sendcmd("PASS pw").startswith("230")
        ftp.quit()
        assert "authentication challenged for user 'challenged'" in radius_log(d)
        assert "packet verification failed: mismatched digests" in radius_log(d)
    finally:
        fake.close()


@pytest.mark.parametrize("line, message", [
    ("RadiusAuthServer 127.0.0.1:99 secret", "port number must be greater than 1023"),
    ("RadiusAcctServer no-such-host.invalid secret", "unable to resolve server address"),
    ("RadiusAuthServer 127.0.0.1 secret soon", "error parsing timeout value 'soon'"),
    ("RadiusOptions IgnoreEverything", "unknown RadiusOption 'IgnoreEverything'"),
    ("RadiusUserInfo 1000 1000 home /bin/sh", "home relative path not allowed"),
    ("RadiusGroupInfo ftp a,b 1", "mismatched number of group names (2) and group IDs (1)"),
    ("RadiusQuotaInfo maybe hard 1 1 1 1 1 1", "invalid per-session value"),
    ("RadiusVendor Acme x", "vendor id 'x' is not a valid number"),
    ("QuotaTallyTable radius:", "QuotaLimitTable source only"),
])
def test_configuration_errors(tmp_path, line, message):
    err = refused_config(tmp_path, line)
    assert "t.conf:2:" in err and message in err
