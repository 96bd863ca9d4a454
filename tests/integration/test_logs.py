"""TransferLog and ExtendedLog against the real daemon: xferlog lines of uploads, downloads and aborted uploads,
ExtendedLog classes and custom LogFormats, hidden passwords, anonymous sessions, EXIT, refused log paths, and the
transfer totals STAT shows."""

import ftplib
import io
import os
import socket
import time

import pytest

from conftest import IS_ROOT, PASSWORDS, free_port, make_file, make_users, wait_until
from proftpy.log import xferlog

BASE = "DefaultRoot ~\n"       # sessions are chrooted (as root) or jailed (non-root): logs show real paths


def wait_for(path, lines: int, timeout: float = 5.0) -> list[str]:
    """The log's lines once it has at least `lines` of them (sessions write after replying)."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        got = text.splitlines()
        if len(got) >= lines or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def wait_settled(path, timeout: float = 5.0) -> list[str]:
    """The log's lines after the writing session has ended (the file stops changing)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if text == last and text:
            return text.splitlines()
        last = text
        time.sleep(0.15)
    return (last or "").splitlines()


def test_upload_and_download_write_two_xferlog_lines(ftpd, tmp_path):
    d = ftpd(BASE + "TransferLog {dir}/xferlog")
    payload = b"0123456789" * 1000
    with d.login("alice") as ftp:
        ftp.storbinary("STOR up load.bin", io.BytesIO(payload))
        ftp.retrbinary("RETR up load.bin", io.BytesIO().write)
        ftp.sendcmd("TYPE A")
        (d.home("alice") / "text.txt").write_bytes(b"a\nb\n")
        ftp.retrlines("RETR text.txt", lambda _: None)
    lines = wait_for(tmp_path / "xferlog", 3)
    assert len(lines) == 3
    up, down, text = (xferlog.parse(line) for line in lines)
    real = os.path.realpath(d.home("alice") / "up load.bin").replace(" ", "_")
    assert up["filename"] == real and down["filename"] == real
    assert (up["direction"], down["direction"]) == ("i", "o")
    assert up["bytes"] == down["bytes"] == str(len(payload))
    assert (up["type"], down["type"], text["type"]) == ("b", "b", "a")
    for f in (up, down, text):
        assert f["remote-host"] == "127.0.0.1"
        assert f["special-action"] == "_"
        assert f["access-mode"] == "r"
        assert f["username"] == "alice"
        assert f["service"] == "ftp"
        assert (f["auth-method"], f["auth-user-id"]) == ("0", "*")
        assert f["completion"] == "c"
        assert int(f["transfer-secs"]) >= 0
        time.strptime(f["current-time"], "%a %b %d %H:%M:%S %Y")
    assert text["bytes"] == "4"                             # ASCII: the file's bytes (6 on the wire), as ProFTPD


def test_aborted_upload_is_logged_incomplete(ftpd, tmp_path):
    d = ftpd(BASE + "TransferLog {dir}/xferlog\nAllowOverwrite on")
    with d.login("alice") as ftp:
        conn = ftp.transfercmd("STOR partial.bin")
        conn.sendall(b"x" * 100_000)
        conn.close()                        # end of data: a complete upload
        ftp.voidresp()
        conn = ftp.transfercmd("STOR partial2.bin")
        conn.sendall(b"y" * 50_000)
        time.sleep(0.3)
        ftp.sock.sendall(b"ABOR\r\n")
        reply = ftp.getmultiline()
        assert reply.startswith("426"), reply
        assert ftp.getmultiline().startswith("226")
        conn.close()
    lines = wait_for(tmp_path / "xferlog", 2)
    full, aborted = (xferlog.parse(line) for line in lines)
    assert full["completion"] == "c" and full["bytes"] == "100000"
    assert aborted["filename"].endswith("/partial2.bin")
    assert aborted["completion"] == "i"
    assert aborted["direction"] == "i"


def test_refused_transfer_writes_no_xferlog_line(ftpd, tmp_path):
    d = ftpd(BASE + "TransferLog {dir}/xferlog")
    with d.login("alice") as ftp:
        with pytest.raises(ftplib.error_perm):
            ftp.retrbinary("RETR missing.bin", io.BytesIO().write)
        (d.home("alice") / "there.bin").write_bytes(b"data")
        ftp.sendport("127.0.0.1", free_port())             # nobody listens: no data connection
        with pytest.raises(ftplib.error_temp, match="^425"):
            ftp.sendcmd("RETR there.bin")
        ftp.storbinary("STOR ok.bin", io.BytesIO(b"ok"))
    lines = wait_for(tmp_path / "xferlog", 1)
    assert len(lines) == 1 and xferlog.parse(lines[0])["filename"].endswith("/ok.bin")


def test_transferlog_none_writes_nothing(ftpd, tmp_path):
    d = ftpd(BASE + "TransferLog none\nExtendedLog {dir}/ext.log READ")
    with d.login("alice") as ftp:
        ftp.storbinary("STOR a.bin", io.BytesIO(b"abc"))
        ftp.retrbinary("RETR a.bin", io.BytesIO().write)
    assert wait_for(tmp_path / "ext.log", 1)
    assert not (tmp_path / "xferlog").exists()


def test_extendedlog_read_write_classes_with_custom_format(ftpd, tmp_path):
    d = ftpd(BASE + 'LogFormat custom "%m %f %b %s %{transfer-status} %{transfer-type} %u"\n'
             "ExtendedLog {dir}/rw.log READ,WRITE custom")
    home = os.path.realpath(d.home("alice"))
    with d.login("alice") as ftp:
        ftp.storbinary("STOR f.bin", io.BytesIO(b"12345"))
        ftp.retrbinary("RETR f.bin", io.BytesIO().write)
        ftp.mkd("sub")
        ftp.nlst()
        ftp.pwd()
        ftp.rename("f.bin", "g.bin")
        ftp.delete("g.bin")
    lines = wait_settled(tmp_path / "rw.log")
    assert lines == [
        f"STOR {home}/f.bin 5 226 success binary alice",
        f"RETR {home}/f.bin 5 226 success binary alice",
        f"MKD {home}/sub - 257 - - alice",
        f"RNFR {home}/f.bin 0 350 - - alice",              # ProFTPD keeps a rename as a transfer: path, 0 bytes
        f"RNTO {home}/g.bin 0 250 - - alice",
        f"DELE {home}/g.bin 5 250 - - alice",
    ]


def test_extendedlog_default_format_hides_the_password(ftpd, tmp_path):
    d = ftpd(BASE + "ExtendedLog {dir}/all.log")
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    lines = wait_settled(tmp_path / "all.log")
    assert PASSWORDS["alice"] not in "\n".join(lines)
    user, pw, noop, quit_ = lines
    assert user.startswith("127.0.0.1 UNKNOWN - [")
    assert user.endswith('"USER alice" 331 -')
    assert pw.startswith("127.0.0.1 UNKNOWN alice [") and pw.endswith('"PASS (hidden)" 230 -')
    assert noop.endswith('"NOOP" 200 -')
    assert quit_.endswith('"QUIT" 221 -')
    stamp = user.split("[", 1)[1].split("]", 1)[0]
    time.strptime(stamp[:-6], "%d/%b/%Y:%H:%M:%S")


def test_a_path_too_long_to_resolve_is_still_logged(ftpd, tmp_path):
    """The command answers 550 (File name too long); its ExtendedLog line is written with `-` for the path."""
    d = ftpd(BASE + 'LogFormat paths "%m %s %f"\nExtendedLog {dir}/paths.log ALL paths')
    name = "x" * 4096
    with d.login("alice") as ftp:
        ftp.voidcmd("TYPE I")
        for cmd in ("MKD", "DELE", "SIZE"):
            with pytest.raises(ftplib.error_perm, match="File name too long"):
                ftp.sendcmd(f"{cmd} {name}")
    lines = wait_settled(tmp_path / "paths.log")
    assert lines[3:6] == ["MKD 550 -", "DELE 550 -", "SIZE 550 -"]
    assert "hook failed" not in d.log()


def test_extendedlog_auth_class_logs_failed_logins_before_login(ftpd, tmp_path):
    d = ftpd(BASE + 'LogFormat auth "%m %J %s %U %u"\nExtendedLog {dir}/auth.log AUTH auth')
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm):
            ftp.login("alice", "wrong")
        ftp.login("alice", PASSWORDS["alice"])
        ftp.voidcmd("NOOP")
    assert wait_settled(tmp_path / "auth.log") == [
        "USER alice 331 alice -", "PASS (hidden) 530 alice -", "USER alice 331 alice -",
        "PASS (hidden) 230 alice alice"]


def test_exit_class_logs_the_end_of_session_reason(ftpd, tmp_path):
    d = ftpd(BASE + 'LogFormat bye "%m [%E] %u"\nExtendedLog {dir}/exit.log EXIT bye')
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as sock:
        assert sock.recv(100).startswith(b"220")
    lines = wait_for(tmp_path / "exit.log", 2)
    assert sorted(lines) == ["EXIT [Client EOF] -", "EXIT [Quit] alice"]


def test_logformat_variables_in_a_live_session(ftpd, tmp_path):
    d = ftpd(BASE + 'LogFormat vars "%a|%L|%p|%P|%v|%{protocol}|%{remote-port}|%c|%A|%{uid}|%R|%d|%D|%I|%O|%T|%F|'
             '%{file-size}|%{basename}|%{file-modified}|%{transfer-millisecs}|%S|%f|%g"\n'
             "ExtendedLog {dir}/vars.log DIRS,WRITE vars\nAllowOverwrite on")
    home = os.path.realpath(d.home("alice"))
    with d.login("alice") as ftp:
        ftp.mkd("dir")
        ftp.cwd("dir")
        ftp.storbinary("STOR x.bin", io.BytesIO(b"x" * 10))
        ftp.storbinary("STOR x.bin", io.BytesIO(b"y" * 12))
        client_port = ftp.sock.getsockname()[1]
    mkd, cwd, stor, again = (line.split("|") for line in wait_settled(tmp_path / "vars.log"))
    assert mkd[:9] == ["127.0.0.1", "127.0.0.1", str(d.port), mkd[3], "proftpy test", "ftp", str(client_port),
                       "-", "UNKNOWN"]
    assert int(mkd[3]) > 0 and mkd[9] == str(d.uid("alice")) and int(mkd[10]) >= 0
    assert mkd[11:13] == ["dir", f"{home}/dir"]
    assert int(mkd[13]) == len("MKD dir\r\n")
    assert mkd[21] == '"/dir" - Directory successfully created'
    assert int(mkd[14]) == len(f"257 {mkd[21]}\r\n")
    assert mkd[15] == "-" and mkd[16] == "/dir" and mkd[17] == "-" and mkd[18] == "dir"
    assert mkd[22] == f"{home}/dir" and mkd[23] == "ftpusers"
    assert cwd[11:13] == ["dir", f"{home}/dir"] and cwd[22] == f"{home}/dir"
    assert float(stor[15]) >= 0
    assert stor[16] == "/dir/x.bin" and stor[22] == f"{home}/dir/x.bin"
    assert stor[17:20] == ["10", "x.bin", "false"] and int(stor[20]) >= 0
    assert again[17:20] == ["12", "x.bin", "true"]
    assert int(stor[13]) == len("STOR x.bin\r\n") + 10
    assert int(stor[14]) > 10 + len("150 \r\n226 Transfer complete\r\n")     # 150 + 226 + the data


def test_out_bytes_of_a_command_refused_before_pre_cmd(ftpd, tmp_path):
    """%O of a command no PRE_CMD ran for (unknown: 500) counts its own reply only, not the one before it, which
    was sent after the last command's mark was taken."""
    d = ftpd(BASE + 'LogFormat out "%m|%O"\nExtendedLog {dir}/out.log ALL out')
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
        with pytest.raises(ftplib.error_perm, match="^500"):
            ftp.sendcmd("FOO")
        ftp.voidcmd("NOOP")
    lines = dict(line.split("|") for line in wait_settled(tmp_path / "out.log") if line.startswith(("FOO", "NOOP")))
    assert lines == {"FOO": str(len("500 FOO not understood\r\n")), "NOOP": str(len("200 NOOP command successful\r\n"))}


def test_world_writable_directory_and_symlink_are_refused(ftpd, tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    (tmp_path / "target.log").write_text("")
    os.symlink(tmp_path / "target.log", tmp_path / "link.log")
    d = ftpd(BASE + "ExtendedLog {dir}/open/ext.log\nExtendedLog {dir}/link.log\nExtendedLog {dir}/good.log")
    with d.login("alice") as ftp:
        ftp.voidcmd("NOOP")
    assert len(wait_settled(tmp_path / "good.log")) == 4
    assert not (open_dir / "ext.log").exists()
    assert (tmp_path / "target.log").read_text() == ""
    log = d.log()
    assert f"unable to open ExtendedLog '{open_dir}/ext.log': parent directory {open_dir} is world-writable" in log
    assert f"unable to open ExtendedLog '{tmp_path}/link.log': {tmp_path}/link.log is a symbolic link" in log


def test_allowlogsymlinks_on_follows_the_link(ftpd, tmp_path):
    (tmp_path / "target.log").write_text("")
    os.symlink(tmp_path / "target.log", tmp_path / "link.log")
    d = ftpd(BASE + "AllowLogSymlinks on\nExtendedLog {dir}/link.log AUTH")
    with d.login("alice"):
        pass
    assert len(wait_for(tmp_path / "target.log", 2)) == 2


def test_stat_shows_total_bytes_after_transfers(ftpd):
    d = ftpd(BASE)
    with d.login("alice") as ftp:
        assert "Total bytes transferred" not in ftp.sendcmd("STAT")
        ftp.storbinary("STOR t.bin", io.BytesIO(b"z" * 1234))
        ftp.retrbinary("RETR t.bin", io.BytesIO().write)
        assert " Total bytes transferred for session: 2468" in ftp.sendcmd("STAT")


def test_concurrent_sessions_never_interleave_lines(ftpd, tmp_path):
    fmt = "%u " + "%a" * 300
    d = ftpd(BASE + f'LogFormat long "{fmt}"\nExtendedLog {{dir}}/busy.log MISC long')
    clients = [d.login(name) for name in ("alice", "bob") for _ in range(3)]
    for _ in range(40):
        for ftp in clients:
            ftp.sock.sendall(b"NOOP\r\n")
        for ftp in clients:
            ftp.getmultiline()
    for ftp in clients:
        ftp.quit()
    lines = wait_for(tmp_path / "busy.log", 240)
    assert len(lines) == 240
    assert all(line in ("alice " + "127.0.0.1" * 300, "bob " + "127.0.0.1" * 300) for line in lines)


# -- anonymous -----------------------------------------------------------------------------------------------------
FTP_UID, FTP_GID = (2310, 2311) if IS_ROOT else (os.getuid(), os.getgid())


@pytest.fixture
def anon_ftpd(ftpd, tmp_path):
    from proftpy.auth.crypt import crypt_hash
    users = make_users(tmp_path)
    with open(tmp_path / "ftpd.passwd", "a") as f:
        f.write(f"ftp:{crypt_hash('x', 'sha512')}:{FTP_UID}:{FTP_UID}:anon:{tmp_path}/anon:/usr/sbin/nologin\n")
    with open(tmp_path / "ftpd.group", "a") as f:
        f.write(f"ftpanon:x:{FTP_GID}:\n")
    (tmp_path / "anon" / "pub").mkdir(parents=True)
    (tmp_path / "anon" / "pub" / "readme.txt").write_text("hello anonymous\n")

    def start(inside: str = "", outside: str = ""):
        d = ftpd(BASE + outside + f"\n<Anonymous {tmp_path}/anon>\n  User ftp\n  Group ftpanon\n"
                 f"  UserAlias anonymous ftp\n  RequireValidShell off\n{inside}\n</Anonymous>\n")
        d.users = users
        return d
    return start


def test_anonymous_download_logs_access_mode_a_and_the_password(anon_ftpd, tmp_path):
    d = anon_ftpd(outside="TransferLog {dir}/xferlog".replace("{dir}", str(tmp_path)))
    with d.connect() as ftp:
        ftp.login("anonymous", "visitor@example.org")
        ftp.retrbinary("RETR pub/readme.txt", io.BytesIO().write)
    with d.login("alice") as ftp:
        ftp.storbinary("STOR mine.txt", io.BytesIO(b"1"))
    anon, regular = (xferlog.parse(line) for line in wait_for(tmp_path / "xferlog", 2))
    assert anon["access-mode"] == "a"
    assert anon["username"] == "visitor@example.org"
    assert anon["filename"] == f"{os.path.realpath(tmp_path)}/anon/pub/readme.txt"
    assert anon["bytes"] == str(len("hello anonymous\n"))
    assert (regular["access-mode"], regular["username"]) == ("r", "alice")


def test_anonymous_extendedlog_replaces_the_outer_one(anon_ftpd, tmp_path):
    d = anon_ftpd(inside=f'  ExtendedLog {tmp_path}/anon.log READ anonfmt',
                  outside=f'LogFormat anonfmt "%u %A %m %F"\nExtendedLog {tmp_path}/server.log READ anonfmt')
    with d.connect() as ftp:
        ftp.login("anonymous", "visitor@example.org")
        ftp.retrbinary("RETR pub/readme.txt", io.BytesIO().write)
    (d.home("alice") / "h.txt").write_text("h")
    with d.login("alice") as ftp:
        ftp.retrbinary("RETR h.txt", io.BytesIO().write)
    anon_lines = wait_for(tmp_path / "anon.log", 1)
    server_lines = wait_for(tmp_path / "server.log", 2, timeout=1.0)
    assert anon_lines == ["anonymous visitor@example.org RETR /pub/readme.txt"]
    # the anonymous session also writes the server's log (a different path); alice only the server's
    assert server_lines[-1].startswith("alice UNKNOWN RETR ")
    assert "anonymous visitor@example.org RETR /pub/readme.txt" in server_lines


def test_serverlog_takes_the_session_messages(ftpd, tmp_path):
    d = ftpd(BASE + "ServerLog {dir}/server.log")
    with d.connect() as ftp:
        with pytest.raises(ftplib.error_perm):
            ftp.login("alice", "wrong")
    deadline = time.monotonic() + 5
    while "Login failed" not in ((tmp_path / "server.log").read_text() if (tmp_path / "server.log").exists()
                                 else "") and time.monotonic() < deadline:
        time.sleep(0.05)
    # the session's ProFTPD prefix travels with it to the ServerLog
    assert "127.0.0.1 (127.0.0.1[127.0.0.1]): USER alice (Login failed): Incorrect password" in \
        (tmp_path / "server.log").read_text()
    assert "Login failed" not in d.log()
    assert "STARTUP" in d.log()                  # the master still writes the SystemLog


def test_host_switches_to_the_named_servers_transfer_and_extended_logs(ftpd):
    d = ftpd('DefaultRoot ~\nTransferLog {dir}/main.xferlog\nLogFormat cmd "%r"\nExtendedLog {dir}/main.ext ALL cmd\n'
             '<VirtualHost 127.0.0.1>\nServerName "named"\nPort {port}\nServerAlias ftp.example.test\n'
             "DefaultRoot ~\nTransferLog {dir}/named.xferlog\nExtendedLog {dir}/named.ext ALL cmd\n"
             "AuthOrder mod_auth_file.c\nAuthUserFile {dir}/ftpd.passwd\nAuthGroupFile {dir}/ftpd.group\n"
             "RequireValidShell off\n</VirtualHost>\n")
    make_file(d, "f.txt", b"data\n")
    ftp = d.connect()
    ftp.sendcmd("HOST ftp.example.test")
    ftp.login("alice", PASSWORDS["alice"])
    ftp.retrbinary("RETR f.txt", lambda _: None)
    ftp.quit()
    assert wait_until(lambda: (d.dir / "named.ext").exists() and "QUIT" in (d.dir / "named.ext").read_text())
    assert "RETR f.txt" in (d.dir / "named.ext").read_text()
    assert "/home/alice/f.txt b _ o r alice " in (d.dir / "named.xferlog").read_text()
    assert "RETR" not in (d.dir / "main.ext").read_text() and not (d.dir / "main.xferlog").read_text()
