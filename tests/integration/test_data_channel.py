"""Data-channel rules against the real daemon: FTP bounce refused, no passive port stealing, PassivePorts,
MasqueradeAddress, EPSV ALL, and no socket leak from repeated PASV."""

from __future__ import annotations

import ftplib
import io
import os
import socket

import psutil
import pytest

BASE = "DefaultRoot ~\n"


def session_pid(d) -> int:
    children = psutil.Process(d.master_pid).children()
    assert len(children) == 1, children
    return children[0].pid


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def expect(ftp: ftplib.FTP, line: str, reply: str) -> None:
    ftp.putcmd(line)
    assert ftp.getline() == reply


# -- active mode: no FTP bounce ----------------------------------------------------------------------------------
def test_port_to_another_address_is_refused(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        expect(ftp, "PORT 10,1,2,3,200,10", "500 Illegal PORT command")
        expect(ftp, "EPRT |1|10.1.2.3|51210|", "500 Illegal EPRT command")
    assert "Refused PORT 10.1.2.3" in d.log()


def test_port_below_1024_is_refused(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        expect(ftp, "PORT 127,0,0,1,0,21", "500 Illegal PORT command")
        expect(ftp, "EPRT |1|127.0.0.1|25|", "500 Illegal EPRT command")


def test_malformed_port_and_eprt(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        for bad in ("PORT 1,2,3", "PORT 127,0,0,1,300,1", "PORT a,b,c,d,e,f", "PORT 0,0,0,0,4,1"):
            expect(ftp, bad, "501 Illegal PORT command")
        expect(ftp, "EPRT |3|127.0.0.1|5000|", "522 Network protocol not supported, use (1)")
        expect(ftp, "EPRT |1|not-an-ip|5000|", "501 Illegal EPRT command")
        expect(ftp, "EPRT 1|127.0.0.1|5000", "522 Network protocol not supported, use (1)")   # '1' delimits


def test_allow_foreign_address_permits_other_ip(ftpd):
    d = ftpd(BASE + "AllowForeignAddress on\n")
    with d.login() as ftp:
        expect(ftp, "PORT 10,1,2,3,200,10", "200 PORT command successful")
        expect(ftp, "PORT 127,0,0,1,0,21", "500 Illegal PORT command")   # still no low ports


def test_active_transfer_comes_from_control_address(ftpd):
    d = ftpd(BASE)
    (d.home("alice") / "f.txt").write_bytes(b"hello")
    with socket.socket() as listener, d.login() as ftp:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        expect(ftp, f"PORT 127,0,0,1,{port >> 8},{port & 255}", "200 PORT command successful")
        ftp.voidcmd("TYPE I")
        ftp.putcmd("RETR f.txt")
        conn, peer = listener.accept()
        with conn:
            assert ftp.getline().startswith("150 ")
            assert conn.recv(100) == b"hello"
        assert ftp.getline() == "226 Transfer complete"
    assert peer[0] == "127.0.0.1"


# -- passive mode ------------------------------------------------------------------------------------------------
def test_passive_connection_from_another_ip_is_refused(ftpd):
    d = ftpd(BASE)
    (d.home("alice") / "f.txt").write_bytes(b"mine")
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        host, port = ftplib.parse227(ftp.sendcmd("PASV"))
        thief = socket.socket()
        thief.bind(("127.0.0.2", 0))
        thief.connect((host, port))          # the kernel accepts; proftpy closes it without sending
        thief.settimeout(5)
        ftp.putcmd("RETR f.txt")
        assert thief.recv(100) == b""
        thief.close()
        with socket.create_connection((host, port)) as data:
            assert ftp.getline().startswith("150 ")
            assert data.recv(100) == b"mine"
        assert ftp.getline() == "226 Transfer complete"
    assert "address mismatch" in d.log()


def test_transfer_without_port_or_pasv(ftpd):
    d = ftpd(BASE)
    (d.home("alice") / "f.txt").write_bytes(b"x")
    with d.login() as ftp:
        expect(ftp, "RETR f.txt", "425 Unable to build data connection: No PORT or PASV command issued first")


def test_pasv_is_single_use(ftpd):
    d = ftpd(BASE)
    (d.home("alice") / "f.txt").write_bytes(b"x")
    with d.login() as ftp:
        ftp.voidcmd("TYPE I")
        out = io.BytesIO()
        ftp.retrbinary("RETR f.txt", out.write)
        expect(ftp, "RETR f.txt", "425 Unable to build data connection: No PORT or PASV command issued first")


def test_repeated_pasv_leaks_no_sockets(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        ftp.sendcmd("PASV")
        pid = session_pid(d)
        before = open_fds(pid)
        ports = set()
        for _ in range(200):
            ports.add(ftplib.parse227(ftp.sendcmd("PASV"))[1])
        ftp.sendcmd("EPSV")
        after = open_fds(pid)
        assert after <= before, (before, after)
        assert ftp.sendcmd("ABOR") == "226 Abort successful"
        assert open_fds(pid) == before - 1
    assert len(ports) > 1


def test_passive_ports_range_is_respected(ftpd):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        lo = max(probe.getsockname()[1], 20000) % 60000 + 1024
    hi = lo + 4
    d = ftpd(BASE + f"PassivePorts {lo} {hi}\n")
    with d.login() as ftp:
        seen = {ftplib.parse227(ftp.sendcmd("PASV"))[1] for _ in range(30)}
        seen |= {int(ftp.sendcmd("EPSV").split("|")[3]) for _ in range(10)}
    assert seen <= set(range(lo, hi + 1))


def test_busy_passive_range_gives_425(ftpd):
    held = []
    try:
        # hold three consecutive free ports, then give them to PassivePorts
        for _ in range(50):
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            lo = first.getsockname()[1]
            group = [first]
            try:
                for p in (lo + 1, lo + 2):
                    s = socket.socket()
                    group.append(s)
                    s.bind(("127.0.0.1", p))
            except OSError:
                for s in group:
                    s.close()
                continue
            held = group
            break
        assert held, "could not find three free consecutive ports"
        for s in held:
            s.listen(1)
        d = ftpd(BASE + f"PassivePorts {lo} {lo + 2}\n")
        with d.login() as ftp:
            expect(ftp, "PASV",
                   f"425 Unable to build data connection: no free port in PassivePorts range {lo}-{lo + 2}")
            held[1].close()
            assert ftplib.parse227(ftp.sendcmd("PASV"))[1] == lo + 1
    finally:
        for s in held:
            s.close()


def test_masquerade_address_in_pasv_not_epsv(ftpd):
    d = ftpd(BASE + "MasqueradeAddress 10.9.8.7\n")
    with d.login() as ftp:
        reply = ftp.sendcmd("PASV")
        assert reply.startswith("227 Entering Passive Mode (10,9,8,7,") and reply.endswith(").")
        assert ftp.sendcmd("EPSV").startswith("229 Entering Extended Passive Mode (|||")


def test_epsv_all_locks_out_other_modes(ftpd):
    d = ftpd(BASE)
    with d.login() as ftp:
        expect(ftp, "EPSV ALL", "200 EPSV ALL command successful")
        expect(ftp, "PASV", "500 Illegal PASV command, EPSV ALL in effect")
        expect(ftp, "PORT 127,0,0,1,200,10", "500 Illegal PORT command, EPSV ALL in effect")
        expect(ftp, "EPRT |1|127.0.0.1|51210|", "500 Illegal EPRT command, EPSV ALL in effect")
        assert ftp.sendcmd("EPSV").startswith("229 ")
        expect(ftp, "EPSV 7", "522 Network protocol not supported, use (1)")
        expect(ftp, "EPSV x", "501 EPSV: unknown network protocol")


def test_data_commands_need_login(ftpd):
    d = ftpd(BASE)
    with d.connect() as ftp:
        expect(ftp, "PASV", "530 Please login with USER and PASS")
        expect(ftp, "RETR x", "530 Please login with USER and PASS")
        assert ftp.sendcmd("TYPE I") == "200 Type set to I"


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc")
def test_session_keeps_few_fds_after_transfers(ftpd):
    d = ftpd(BASE + "AllowOverwrite on\n")
    with d.login() as ftp:
        ftp.voidcmd("NOOP")
        pid = session_pid(d)
        before = open_fds(pid)
        for i in range(20):
            ftp.storbinary("STOR f.bin", io.BytesIO(b"x" * 1000))
            ftp.retrbinary("RETR f.bin", lambda b: None)
        assert open_fds(pid) == before
