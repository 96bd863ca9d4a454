"""Replies that ProFTPD 1.3.8 gives and proftpy now gives too: each assertion is an exact reply line seen from
Debian's proftpd with scripts/compare_proftpd.py (which needs proftpd installed; these tests do not)."""

from __future__ import annotations

import ftplib
import os
import socket

import pytest

HELP_FIRST_ROW = " CWD     XCWD    CDUP    XCUP    SMNT*   QUIT    PORT    PASV    "
SITE_HELP = [
    "214-The following SITE commands are recognized (* =>'s unimplemented)",
    " The following SITE extensions are recognized:",   # mod_ratio's (Debian loads it), first
    " RATIO -- show all ratios in effect",
    " CPFR <sp> pathname",      # mod_copy's (Debian loads it), before mod_site_misc's
    " CPTO <sp> pathname",
    " UTIME <sp> YYYYMMDDhhmm[ss] <sp> path",
    " SYMLINK <sp> source <sp> destination",
    " RMDIR <sp> path",
    " MKDIR <sp> path",
    " QUOTA",                   # mod_quotatab's, listed whether quotas are on or not (as ProFTPD's)
]


class Raw:
    """A control connection that sends lines byte for byte (tabs, leading spaces) and reads whole replies."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.read()                                     # greeting

    def read(self) -> str:
        lines = [self.file.readline().decode().rstrip("\r\n")]
        if lines[0][3:4] == "-":
            while not lines[-1].startswith(lines[0][:3] + " "):
                lines.append(self.file.readline().decode().rstrip("\r\n"))
        return "\n".join(lines)

    def cmd(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.read()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def reply(ftp: ftplib.FTP, line: str) -> str:
    """The whole reply to `line`, success or error."""
    ftp.putcmd(line)
    return ftp.getmultiline()


@pytest.fixture
def server(ftpd):
    return ftpd("DefaultRoot ~")


@pytest.fixture
def raw(server):
    conn = Raw(server.port)
    yield conn
    conn.close()


def login(raw: Raw) -> None:
    from conftest import PASSWORDS
    assert raw.cmd("USER alice").startswith("331")
    assert raw.cmd("PASS " + PASSWORDS["alice"]).startswith("230")


# -- the command line ----------------------------------------------------------------------------------------------
def test_noop_syst_quit_ignore_arguments(raw):
    assert raw.cmd("NOOP x") == "200 NOOP command successful"
    assert raw.cmd("SYST x") == "215 UNIX Type: L8"
    assert raw.cmd("NOOP  ") == "200 NOOP command successful"
    assert raw.cmd("QUIT now") == "221 Goodbye."


def test_tab_ends_the_command_word_and_leading_space_is_refused(server, raw):
    os.mkdir(server.home("alice") / "dir")
    login(raw)
    assert raw.cmd("NOOP\t") == "200 NOOP command successful"
    assert raw.cmd("CWD\tdir") == "250 CWD command successful"
    assert raw.cmd(" NOOP") == "500 Invalid command: try being more creative"


def test_missing_argument_replies_depend_on_the_command(raw):
    login(raw)
    for name in ("TYPE", "REST", "RETR", "STOR", "APPE"):
        assert raw.cmd(name) == f"500 '{name}' not understood"
    assert raw.cmd("MODE") == "501 'MODE' not understood"
    assert raw.cmd("STRU") == "501 'STRU' not understood"
    assert raw.cmd("ALLO") == "504 'ALLO' not understood"
    assert raw.cmd("PORT") == "501 Invalid number of parameters"
    assert raw.cmd("EPRT") == "501 Invalid number of parameters"
    assert raw.cmd("RETR  ") == "500 'RETR' not understood"
    assert raw.cmd("USER") == "500 USER: command requires a parameter"


def test_extra_arguments(raw):
    login(raw)
    assert raw.cmd("ABOR x") == "500 'ABOR x' not understood"
    assert raw.cmd("STOU x y") == "500 'STOU x y' not understood"
    assert raw.cmd("PWD x") == "501 Invalid number of parameters"


# -- login ---------------------------------------------------------------------------------------------------------
def test_user_after_login_is_reauthentication(raw):
    login(raw)
    assert raw.cmd("USER alice") == "230 User alice logged in"     # the same name: nothing to do (ProFTPD 1.3.8)
    assert raw.cmd("USER bob") == "501 Reauthentication not supported"
    assert raw.cmd("PASS x") == "503 You are already logged in"
    assert raw.cmd("USER alice") == "501 Reauthentication not supported"   # a failed PASS forgot the name


# -- transfer parameters -------------------------------------------------------------------------------------------
def test_type_echoes_the_code_as_sent(raw):
    assert raw.cmd("type i") == "200 Type set to i"
    assert raw.cmd("TYPE L 8") == "200 Type set to L"
    assert raw.cmd("TYPE L 7") == "200 Type set to L"
    assert raw.cmd("TYPE I x") == "200 Type set to I"
    assert raw.cmd("TYPE A N") == "200 Type set to A"
    assert raw.cmd("TYPE L") == "504 TYPE not implemented for 'L' parameter"
    assert raw.cmd("TYPE X") == "504 TYPE not implemented for 'X' parameter"
    assert raw.cmd("TYPE A N X") == "500 'TYPE A N X' not understood"


def test_mode_stru_allo_syntax(raw):
    login(raw)
    assert raw.cmd("MODE S X") == "501 'MODE S X' not understood"
    assert raw.cmd("STRU F X") == "501 'STRU F X' not understood"
    assert raw.cmd("ALLO abc") == "504 abc: Invalid ALLO argument"
    assert raw.cmd("ALLO 1 2") == "504 'ALLO 1 2' not understood"
    assert raw.cmd("ALLO 100 R 10") == "202 No storage allocation necessary"


def test_eprt_protocol_is_checked_first(raw):
    login(raw)
    assert raw.cmd("EPRT |2|::1|2000|") == "522 Network protocol not supported, use (1)"     # UseIPv6 off
    assert raw.cmd("EPRT x127.0.0.1x2000x") == "522 Network protocol not supported, use (1)"
    assert raw.cmd("EPRT |1|127.0.0.1|") == "501 Illegal EPRT command"


# -- files ---------------------------------------------------------------------------------------------------------
def test_size_without_argument_before_the_ascii_check(raw):
    login(raw)
    assert raw.cmd("SIZE") == "501 Invalid number of parameters"


def test_host_ipv6_literal_without_ipv6(raw):
    assert raw.cmd("HOST [::1]") == "501 [::1]: Invalid hostname provided"
    assert raw.cmd("HOST ::1") == "501 ::1: Invalid hostname provided"


def test_list_of_a_missing_path_opens_the_data_connection_first(server):
    ftp = server.login()
    conn, _ = ftp.ntransfercmd("LIST nothere")          # 150 first
    assert conn.recv(100) == b""
    conn.close()
    with pytest.raises(ftplib.error_temp) as e:
        ftp.voidresp()
    assert str(e.value) == "450 nothere: No such file or directory"


# -- FEAT, HELP, SITE HELP -----------------------------------------------------------------------------------------
def test_feat_offers_utf8(raw):
    assert " UTF8" in raw.cmd("FEAT").split("\n")


def test_help_lists_commands_in_proftpd_order(raw):
    lines = raw.cmd("HELP").split("\n")
    assert lines[0] == "214-The following commands are recognized (* =>'s unimplemented):"
    assert lines[1] == HELP_FIRST_ROW
    assert " ACCT*   REIN*   LIST    NLST    STAT    SITE    MLSD    MLST    " in lines
    assert lines[-1] == "214 Direct comments to root@127.0.0.1"
    assert raw.cmd("HELP SITE") == "214-HELP\n CHGRP\n214 CHMOD"


def test_site_help(raw):
    assert raw.cmd("SITE HELP").split("\n") == SITE_HELP + [" HELP", " CHGRP", " CHMOD",
                                                           "214 Direct comments to root@127.0.0.1"]
    assert raw.cmd("SITE HELP chmod").split("\n") == SITE_HELP + [" Syntax: SITE CHMOD <sp> mode <sp> pathname",
                                                                 "214 Direct comments to root@127.0.0.1"]
    assert raw.cmd("SITE HELP UTIME") == "502 Unknown command 'SITE HELP UTIME'"
    assert raw.cmd("SITE HELP SITE").split("\n")[:len(SITE_HELP)] == SITE_HELP


def test_site_argument_errors(raw):
    assert raw.cmd("SITE MKDIR") == "500 'SITE MKDIR' not understood"       # counted before the login check
    assert raw.cmd("SITE SYMLINK a") == "500 'SITE SYMLINK' not understood"
    assert raw.cmd("SITE UTIME x") == "530 Please login with USER and PASS"
    assert raw.cmd("SITE") == "500 'SITE' requires parameters"
    login(raw)
    assert raw.cmd("SITE CHMOD 644") == "500-'SITE CHMOD 644' not understood\n500 SITE not understood"
    assert raw.cmd("SITE CHGRP x") == "500-'SITE CHGRP x' not understood\n500 SITE not understood"
    assert raw.cmd("SITE RMDIR") == "500 'SITE RMDIR' not understood"


# -- MLST ----------------------------------------------------------------------------------------------------------
def test_opts_mlst_echoes_the_facts_in_the_clients_order(server):
    ftp = server.login()
    assert reply(ftp, "OPTS MLST type;size;") == "200 MLST OPTS type;size;"
    assert reply(ftp, "OPTS MLST type;perm;bogus;modify;") == "200 MLST OPTS type;perm;modify;"


def test_mlst_of_a_symlink_shows_the_link_with_its_targets_type(server):
    home = server.home("alice")
    (home / "file.txt").write_bytes(b"x" * 24)
    os.symlink("file.txt", home / "link")
    os.mkdir(home / "dir")
    os.symlink("dir", home / "link-dir")
    ftp = server.login()
    facts = dict(f.split("=", 1) for f in reply(ftp, "MLST link").split("\n")[1].split(" ")[1].split(";") if f)
    assert (facts["size"], facts["type"], facts["UNIX.mode"]) == ("8", "file", "0777")
    facts = dict(f.split("=", 1) for f in reply(ftp, "MLST link-dir").split("\n")[1].split(" ")[1].split(";")
                 if f)
    assert (facts["size"], facts["type"]) == ("3", "dir")


# -- REST, and the data channel after a refused transfer --------------------------------------------------------
def test_rest_checks_ascii_mode_before_the_number(raw):
    login(raw)
    assert raw.cmd("TYPE A") == "200 Type set to A"
    assert raw.cmd("REST 99999999999999999999") == "501 REST: Resuming transfers not allowed in ASCII mode"
    assert raw.cmd("REST abc") == "501 REST requires a value greater than or equal to 0"
    assert raw.cmd("TYPE I") == "200 Type set to I"
    assert raw.cmd("REST 99999999999999999999") == \
        "350 Restarting at 18446744073709551615. Send STORE or RETRIEVE to initiate transfer"




def test_rest_then_stor_of_a_new_file_is_refused(server):
    with server.login("alice") as ftp:
        ftp.voidcmd("TYPE I")
        assert reply(ftp, "REST 5").startswith("350 ")
        ftp.sendcmd("PASV")
        assert reply(ftp, "STOR new.bin") == "554 REST: invalid new.bin argument"
        assert reply(ftp, "REST 5").startswith("350 ")
        ftp.sendcmd("PASV")
        assert reply(ftp, "APPE brand.bin") == "554 REST: invalid brand.bin argument"
        assert reply(ftp, "REST 5").startswith("350 ")
        assert reply(ftp, "STOU") == "550 STOU incompatible with REST"
    home = server.home("alice")
    # no gap of zeros is ever written; ProFTPD 1.3.8 leaves the file it opened behind, empty
    assert (home / "new.bin").read_bytes() == b"" and (home / "brand.bin").read_bytes() == b""
    assert not [p for p in home.iterdir() if p.name.startswith("ftp")]


def test_rest_stor_of_an_existing_file_needs_allow_overwrite(ftpd):
    d = ftpd("DefaultRoot ~\nAllowStoreRestart on")
    path = d.home("alice") / "f.bin"
    path.write_bytes(b"0123456789")
    if os.geteuid() == 0:
        os.chown(path, d.uid("alice"), d.users["alice"][1])
    with d.login("alice") as ftp:
        ftp.voidcmd("TYPE I")
        assert reply(ftp, "REST 3").startswith("350 ")
        ftp.sendcmd("PASV")
        assert reply(ftp, "STOR f.bin") == "550 f.bin: Overwrite permission denied"
        assert reply(ftp, "REST 30").startswith("350 ")
        ftp.sendcmd("PASV")
        assert reply(ftp, "APPE f.bin") == "554 REST: invalid f.bin argument"
    assert (d.home("alice") / "f.bin").read_bytes() == b"0123456789"


@pytest.mark.parametrize("refused", ["RETR nothere", "RETR dir", "RETR", "STOR nothere/x", "APPE dir"])
def test_a_refused_transfer_closes_the_passive_listener(server, refused):
    """The client connected to the PASV port; the refused command drops it, so the next transfer cannot take
    that stale connection and report 226 for data nobody received."""
    home = server.home("alice")
    (home / "dir").mkdir(exist_ok=True)
    (home / "f.txt").write_bytes(b"data")
    with server.login("alice") as ftp:
        host, port = ftplib.parse227(ftp.sendcmd("PASV"))
        with socket.create_connection((host, port), timeout=10) as stale:
            assert reply(ftp, refused)[:4] in ("550 ", "500 ")
            stale.settimeout(10)
            try:
                assert stale.recv(10) == b""             # closed by the server (or reset: never accepted)
            except ConnectionResetError:
                pass
            assert reply(ftp, "RETR f.txt") == \
                "425 Unable to build data connection: No PORT or PASV command issued first"
        with pytest.raises(OSError):
            socket.create_connection((host, port), timeout=2).close()
        ftp.voidcmd("TYPE I")
        out: list[bytes] = []
        ftp.retrbinary("RETR f.txt", out.append)        # a new PASV works as usual
        assert b"".join(out) == b"data"


def test_a_refused_transfer_keeps_the_port_target(server):
    (server.home("alice") / "f.txt").write_bytes(b"data")
    with server.login("alice") as ftp:
        listener = socket.create_server(("127.0.0.1", 0))
        with listener:
            port = listener.getsockname()[1]
            assert reply(ftp, f"PORT 127,0,0,1,{port >> 8},{port & 255}") == "200 PORT command successful"
            assert reply(ftp, "RETR nothere") == "550 nothere: No such file or directory"
            ftp.putcmd("RETR f.txt")
            conn, _ = listener.accept()
            with conn:
                assert ftp.getline().startswith("150 ")
                conn.settimeout(10)
                got = b""
                while chunk := conn.recv(100):
                    got += chunk
            assert ftp.getline() == "226 Transfer complete"
        assert got == b"data"


# -- Telnet on the control connection (ProFTPD's src/netio.c) -------------------------------------------------------
def test_telnet_option_requests_are_refused_before_the_reply(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()                                                    # greeting
        sock.sendall(bytes([255, 251, 1]) + b"NOOP\r\n")                # IAC WILL ECHO
        assert f.readline() == bytes([255, 254, 1]) + b"200 NOOP command successful\r\n"     # IAC DONT ECHO
        sock.sendall(bytes([255, 253, 3]) + b"NOOP\r\n")                # IAC DO SUPPRESS-GO-AHEAD
        assert f.readline() == bytes([255, 252, 3]) + b"200 NOOP command successful\r\n"     # IAC WONT
        f.close()


def test_iac_before_an_unknown_byte_is_kept(server):
    from conftest import PASSWORDS
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        for line in (b"USER alice", b"PASS " + PASSWORDS["alice"].encode(), b"MKD bad\xff"):
            sock.sendall(line + b"\r\n")
            got = f.readline()
        assert got == b'257 "/bad\xff" - Directory successfully created\r\n'
        f.close()
    assert os.path.isdir(os.path.join(os.fsencode(server.home("alice")), b"bad\xff"))
