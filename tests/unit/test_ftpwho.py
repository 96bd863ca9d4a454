"""ftpwho and ftpcount print ProFTPD's exact lines for a scoreboard with sessions in every state."""
import io
import json
import os
import sys

import pytest

from proftpy import scoreboard as sbm
from proftpy.scoreboard import Scoreboard
from proftpy.tools import common, ftpcount, ftpwho

NOW = 1_700_000_000
MASTER_START = NOW - (86400 + 2 * 3600 + 5 * 60)      # up for 1 day, 2 hrs 5 min


def clock():
    return NOW


def fill(sb):
    """alice idle, bob downloading 45%, carol uploading (class LOCAL = local), one client not logged in."""
    common_fields = dict(server_addr="10.0.0.1:21", server_port=21, server_label="Main", protocol="ftp")
    sb.claim(1001, user="alice", client_addr="192.0.2.1", client_name="a.example", cwd="/home/alice",
             cmd="idle", begin_session=NOW - 125, begin_idle=NOW - 30, **{"class": "local"}, **common_fields)
    sb.claim(1002, user="bob", client_addr="192.0.2.2", client_name="b.example", cwd="/pub", cmd="RETR",
             cmd_arg="big.iso", begin_session=NOW - 4000, begin_idle=NOW - 4000, xfer_size=1000, xfer_done=450,
             xfer_len=450 * 1024, xfer_elapsed_ms=3000, **common_fields)
    sb.claim(1003, user="carol", client_addr="2001:db8::3", client_name="c.example", cwd="/in", cmd="STOR",
             cmd_arg="up.bin", begin_session=NOW - 60, xfer_done=2048, xfer_len=2048, xfer_elapsed_ms=1000,
             **{"class": "LOCAL"}, **common_fields)
    sb.claim(1004, user="(none)", client_addr="198.51.100.4", client_name="198.51.100.4",
             begin_session=NOW - 5, server_addr="10.0.0.2:21", server_port=21, server_label="Other",
             protocol="ftp")


@pytest.fixture
def board(tmp_path):
    path = tmp_path / "run" / "proftpy.scoreboard"
    sb = Scoreboard.create(str(path), master_pid=999, master_start=MASTER_START, slots=8)
    fill(sb)
    yield str(path)
    sb.close()


def run(capsys, tool, argv, **kw):
    code = tool.main(argv, **kw)
    out, err = capsys.readouterr()
    return code, out, err


def test_default_output(board, capsys):
    code, out, err = run(capsys, ftpwho, ["-f", board], clock=clock)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "standalone FTP daemon [999], up for 1 day,  2 hrs 05 min",
        " 1001 alice    [  2m5s]  0m30s idle",
        " 1002 bob      [  1h6m] ( 45%) RETR big.iso",
        " 1003 carol    [  1m0s] (n/a) STOR up.bin",
        " 1004 (none)   [  0m5s] (authenticating)",
        "Service class local                -   2 users",
        "Service class                      -   2 users",
    ]


def test_verbose_output(board, capsys):
    _, out, _ = run(capsys, ftpwho, ["-v", "-f", board], clock=clock)
    assert out.split("\n") == [
        "standalone FTP daemon [999], up for 1 day,  2 hrs 05 min",
        " 1001 alice    [  2m5s]  0m30s idle",
        "\tclient: a.example [192.0.2.1]",
        "\tserver: 10.0.0.1:21 (Main)",
        "\tprotocol: ftp",
        "\tlocation: /home/alice",
        "\tclass: local",
        " 1002 bob      [  1h6m] ( 45%) RETR big.iso",
        "\tKB/s: 150.00",
        "\tclient: b.example [192.0.2.2]",
        "\tserver: 10.0.0.1:21 (Main)",
        "\tprotocol: ftp",
        "\tlocation: /pub",
        "",                                    # ProFTPD's blank line when there is no class to end with
        " 1003 carol    [  1m0s] (n/a) STOR up.bin",
        "\tKB/s: 2.00",
        "\tclient: c.example [2001:db8::3]",
        "\tserver: 10.0.0.1:21 (Main)",
        "\tprotocol: ftp",
        "\tlocation: /in",
        "\tclass: LOCAL",
        " 1004 (none)   [  0m5s] (authenticating)",
        "\tclient: 198.51.100.4 [198.51.100.4]",
        "\tserver: 10.0.0.2:21 (Other)",
        "\tprotocol: ftp",
        "",
        "Service class local                -   2 users",
        "Service class                      -   2 users",
        "",
    ]


def test_oneline_verbose(board, capsys):
    _, out, _ = run(capsys, ftpwho, ["-o", "oneline", "-v", "-f", board], clock=clock)
    lines = out.splitlines()
    assert lines[1] == (" 1001 alice    [  2m5s]  0m30s idle client: a.example [192.0.2.1] "
                        "server: 10.0.0.1:21 (Main) protocol: ftp location: /home/alice class: local")
    assert lines[2] == (" 1002 bob      [  1h6m] ( 45%) RETR big.iso KB/s: 150.00 client: b.example [192.0.2.2] "
                        "server: 10.0.0.1:21 (Main) protocol: ftp location: /pub")
    assert lines[4] == (" 1004 (none)   [  0m5s] (authenticating) client: 198.51.100.4 [198.51.100.4] "
                        "server: 10.0.0.2:21 (Other) protocol: ftp")
    assert len(lines) == 7


def test_compat_output(board, capsys):
    _, out, _ = run(capsys, ftpwho, ["-o", "compat", "-f", board], clock=clock)
    assert out.splitlines() == [
        "standalone FTP daemon [999], up for 1 day,  2 hrs 05 min",
        " 1001 0m30s  idle ",
        " 1002 1h6m   (45%) RETR big.iso",
        " 1003 -      STOR up.bin",                # upload of unknown size: no (n/a)
        " 1004 -       ",
        "Service class local                -   2 users",
        "Service class                      -   2 users",
    ]
    _, out, _ = run(capsys, ftpwho, ["-o", "compat", "-v", "-f", board], clock=clock)
    assert out.splitlines()[2:7] == [
        "             (host: a.example [192.0.2.1])",
        "              (protocol: ftp)",
        "              (cwd: /home/alice)",
        "              (class: local)",
        " 1002 1h6m   (45%) RETR big.iso",
    ]


def test_json_output(board, capsys):
    _, out, _ = run(capsys, ftpwho, ["-o", "json", "-f", board], clock=clock)
    doc = json.loads(out)
    assert doc["server"] == {"server_type": "standalone", "pid": 999, "started_ms": MASTER_START * 1000}
    alice, bob, carol, anon = doc["connections"]
    assert alice == {"pid": 1001, "connected_since_ms": (NOW - 125) * 1000, "remote_name": "a.example",
                     "remote_address": "192.0.2.1", "local_address": "10.0.0.1:21", "local_port": 21,
                     "authenticating": False, "user": "alice", "class": "local", "protocol": "ftp",
                     "location": "/home/alice", "idling": True, "idle_since_ms": (NOW - 30) * 1000,
                     "downloading": False, "uploading": False}
    assert (bob["command"], bob["command_args"], bob["downloading"], bob["transfer_completed"],
            bob["transfer_bytes"], bob["transfer_duration_ms"]) == ("RETR", "big.iso", True, "45", 450, 3000)
    assert carol["uploading"] is True and "transfer_completed" not in carol
    assert anon["authenticating"] is True and "user" not in anon


def test_server_filter(board, capsys):
    _, out, _ = run(capsys, ftpwho, ["-S", "Other", "-f", board], clock=clock)
    assert out.splitlines() == [
        "standalone FTP daemon [999], up for 1 day,  2 hrs 05 min",
        "ProFTPD Server 'Other'",
        " 1004 (none)   [  0m5s] (authenticating)",
        "Service class                      -   1 user",
    ]


def test_empty_inetd_scoreboard(tmp_path, capsys):
    path = str(tmp_path / "sb")
    Scoreboard.create(path, master_pid=0, master_start=0).close()
    _, out, _ = run(capsys, ftpwho, ["-f", path], clock=clock)
    assert out == "inetd FTP daemon:\nno users connected\n"
    _, out, _ = run(capsys, ftpcount, ["-f", path])
    assert out == "inetd FTP connections:\n0 users\n"


def test_ftpcount(board, capsys):
    code, out, _ = run(capsys, ftpcount, ["-f", board])
    assert code == 0
    assert out.splitlines() == [
        "Master proftpd process 999:",
        "Service class local                -   2 users",
        "Service class                      -   2 users",
    ]
    _, out, _ = run(capsys, ftpcount, ["-S", "Other", "-f", board])
    assert out.splitlines() == ["Master proftpd process 999:", "ProFTPD Server 'Other'",
                                "Service class                      -   1 user"]


# -- finding the scoreboard, errors ------------------------------------------------------------------
def test_config_scan_finds_first_scoreboardfile(board, tmp_path, capsys):
    conf = tmp_path / "proftpy.conf"
    conf.write_text(f'# ScoreboardFile /nope\n  scoreboardFILE   "{board}"\nScoreboardFile /second\n')
    code, out, _ = run(capsys, ftpcount, ["-c", str(conf)])
    assert code == 0 and out.startswith("Master proftpd process 999:")


def test_config_with_scoreboard_disabled(tmp_path, capsys):
    conf = tmp_path / "c.conf"
    conf.write_text("ScoreboardFile none\n")
    code, out, err = run(capsys, ftpwho, ["-c", str(conf)])
    assert (code, out) == (1, "")
    assert err == f"ftpwho: scoreboarding is disabled (ScoreboardFile none in {conf})\n"


def test_missing_scoreboard_is_one_clear_line(tmp_path, capsys):
    code, out, err = run(capsys, ftpwho, ["-f", str(tmp_path / "absent")])
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "No such file or directory" in err and "-f" in err


def test_bad_option_and_outform(board, capsys):
    assert run(capsys, ftpwho, ["-x"])[0:2] == (1, "")
    code, _, err = run(capsys, ftpwho, ["-o", "xml", "-f", board])
    assert code == 1 and err.startswith("ftpwho: unknown outform value: 'xml'")


def test_corrupt_scoreboard_is_reported(tmp_path, capsys):
    path = tmp_path / "sb"
    path.write_bytes(b"\0" * 200)
    code, _, err = run(capsys, ftpcount, ["-f", str(path)])
    assert code == 1 and "bad magic" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged uid")
def test_unreadable_scoreboard_as_non_root_says_so(board, capsys):
    os.chmod(board, 0o600)
    pid = os.fork()
    if pid == 0:                                   # the child becomes nobody and runs the tool
        code = 9
        try:
            os.setgid(65534)
            os.setuid(65534)
            sys.stderr = io.StringIO()
            rc = ftpwho.main(["-f", board])
            msg = sys.stderr.getvalue()
            code = 0 if rc == 1 and "Permission denied" in msg and "run as root" in msg else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_formatters_match_proftpd():
    assert common.format_age(0, NOW) == "-"
    assert common.format_age(NOW - 59, NOW) == "0m59s"
    assert common.format_age(NOW - 3599, NOW) == "59m59s"
    assert common.format_age(NOW - 7260, NOW) == "2h1m"
    assert common.format_uptime(NOW - 59, NOW) == "0 min"
    assert common.format_uptime(NOW - 3600, NOW) == " 1 hr 00 min"
    assert common.format_uptime(NOW - 2 * 86400 - 600, NOW) == "2 days, 10 min"
    assert [common.percent_complete(s, d) for s, d in [(10, 0), (0, 5), (10, 10), (10, 12), (3, 1)]] == \
        ["0", "Inf", "100", "100", "33"]
    assert common.kbps(2048, 0) == 0.0 and common.kbps(2048, 2000) == 1.0


def test_scan_config_quoting(tmp_path):
    conf = tmp_path / "q.conf"
    conf.write_text('ScoreboardFile "/var/run/a b\\"c"\n')
    assert common.scan_config(str(conf)) == '/var/run/a b"c'
    conf.write_text("ServerName x\n")
    assert common.scan_config(str(conf)) is None
    assert sbm.is_disabled("OFF") and sbm.is_disabled("/dev/null") and not sbm.is_disabled("/run/x")
