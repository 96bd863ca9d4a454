"""LogFormat: parsing (variables, unknowns, %%), every variable's value, and ProFTPD's defaults when a value is
missing; ExtendedLog class parsing and command filtering."""

import time

import pytest

from proftpy.log.logformat import DEFAULT_FORMAT, Record, compile_format, expand
from proftpy.modules.log import ALL, classes_wanted, parse_classes, wanted

NOW = time.mktime((2024, 3, 5, 7, 8, 9, 0, 0, -1)) + 0.123456


def rec(**kw) -> Record:
    base = dict(command="RETR", arg="pub/file.txt", reply_code=226, reply_text="Transfer complete",
                remote_ip="192.0.2.7", remote_name="client.example.org", remote_port=40123, local_ip="192.0.2.1",
                local_port=2121, local_name="ftp.example.org", vhost_ip="192.0.2.1", server_name="Test Server",
                pid=4242, user="alice", orig_user="alice", conn_class="internal", group="staff", uid=2300,
                gid=2301, protocol="ftp", version="0.1.0", response_ms=17, bytes=1234,
                filename="/home/alice/pub/file.txt", xfer_path="/pub/file.txt", dir_name="/pub",
                dir_path=None, basename="file.txt", rnfr_path=None, seconds=1.5, xfer_status="success",
                xfer_failure=None, xfer_type="binary", xfer_ms=1500, xfer_speed="0.80KB/s", file_size=1234,
                file_offset=0, file_modified=False, raw_in=20, raw_out=1300, now=NOW,
                env={"HOME": "/root", "LANG": "C"}, notes={"mynote": "v"})
    base.update(kw)
    return Record(**base)


@pytest.mark.parametrize("fmt, want", [
    ("%a", "192.0.2.7"),
    ("%A", "UNKNOWN"),
    ("%b", "1234"),
    ("%c", "internal"),
    ("%d", "/pub"),
    ("%D", ""),
    ("%E", ""),
    ("%f", "/home/alice/pub/file.txt"),
    ("%F", "/pub/file.txt"),
    ("%g", "staff"),
    ("%h", "client.example.org"),
    ("%H", "192.0.2.1"),
    ("%I", "20"),
    ("%J", "pub/file.txt"),
    ("%l", "UNKNOWN"),
    ("%L", "192.0.2.1"),
    ("%m", "RETR"),
    ("%O", "1300"),
    ("%p", "2121"),
    ("%P", "4242"),
    ("%r", "RETR pub/file.txt"),
    ("%R", "17"),
    ("%s", "226"),
    ("%S", "Transfer complete"),
    ("%T", "1.500"),
    ("%u", "alice"),
    ("%U", "alice"),
    ("%v", "Test Server"),
    ("%V", "ftp.example.org"),
    ("%w", "-"),
    ("%{basename}", "file.txt"),
    ("%{epoch}", str(int(NOW))),
    ("%{file-modified}", "false"),
    ("%{file-offset}", "0"),
    ("%{file-size}", "1234"),
    ("%{gid}", "2301"),
    ("%{iso8601}", "2024-03-05 07:08:09,123"),
    ("%{ISO8601}", "2024-03-05 07:08:09,123"),
    ("%{microsecs}", "123456"),
    ("%{millisecs}", "123"),
    ("%{protocol}", "ftp"),
    ("%{remote-port}", "40123"),
    ("%{transfer-failure}", "-"),
    ("%{transfer-millisecs}", "1500"),
    ("%{transfer-port}", "-"),
    ("%{transfer-speed}", "0.80KB/s"),
    ("%{transfer-status}", "success"),
    ("%{transfer-type}", "binary"),
    ("%{uid}", "2300"),
    ("%{version}", "0.1.0"),
    ("%{HOME}e", "/root"),
    ("%{env:LANG}", "C"),
    ("%{MISSING}e", ""),
    ("%{note:mynote}", "v"),
    ("%{%Y/%m/%d}t", "2024/03/05"),
    ("%{time:%H.%M}", "07.08"),
])
def test_each_variable(fmt, want):
    assert expand(fmt, rec()) == want


def test_clf_time_has_the_local_utc_offset():
    text = expand("%t", rec())
    tm = time.localtime(NOW)
    off = tm.tm_gmtoff // 60
    sign = "-" if off < 0 else "+"
    assert text == f"[05/Mar/2024:07:08:09 {sign}{abs(off) // 60:02d}{abs(off) % 60:02d}]"


def test_default_format_is_common_log_format():
    line = expand(DEFAULT_FORMAT, rec())
    assert line.startswith('client.example.org UNKNOWN alice [05/Mar/2024:07:08:09 ')
    assert line.endswith('] "RETR pub/file.txt" 226 1234')


@pytest.mark.parametrize("fmt, want", [
    ("%b %s %S %u %U %c %f %F %g %R %T %w", "- - - - - - - - - - - -"),
    ("%{basename}|%{file-size}|%{file-offset}|%{transfer-status}|%{transfer-type}|%{transfer-failure}",
     "-|-|-|-|-|-"),
    ("%A|%l", "UNKNOWN|UNKNOWN"),
    ("[%d][%D][%E][%J][%m]", "[][][][][]"),
])
def test_missing_values_show_proftpd_defaults(fmt, want):
    empty = rec(bytes=None, reply_code=None, reply_text=None, user=None, orig_user=None, conn_class=None,
                filename=None, xfer_path=None, group=None, response_ms=None, seconds=None, rnfr_path=None,
                basename=None, file_size=None, file_offset=None, xfer_status=None, xfer_type=None,
                dir_name=None, command="", arg="")
    assert expand(fmt, empty) == want


def test_password_is_hidden():
    r = rec(command="PASS", arg="s3cret")
    assert expand("%r|%J", r) == "PASS (hidden)|(hidden)"


def test_anonymous_password_and_rename_source():
    assert expand("%A", rec(anon_password="me@example.org")) == "me@example.org"
    assert expand("%w", rec(command="RNTO", rnfr_path="/home/alice/old")) == "/home/alice/old"


def test_site_method_names_the_subcommand():
    assert expand("%m", rec(command="SITE", arg="chmod 644 f")) == "SITE CHMOD"
    assert expand("%m", rec(command="SITE", arg="")) == ""


def test_pseudo_commands_have_no_request():
    r = rec(command="EXIT", arg="", pseudo=True, eos_reason="Quit")
    assert expand('"%r" "%J" %m %E', r) == '"" "" EXIT Quit'


def test_unknown_variables_follow_proftpd():
    assert expand("%x %q", rec()) == "%x %q"             # unknown letter: written as is
    assert expand("%{nosuch}", rec()) == "nosuch"       # unknown long name: its name
    assert expand("100%% %", rec()) == "100% %"           # %% is a literal %, a trailing % stays
    assert expand("%{unclosed", rec()) == "%{unclosed"


def test_compile_splits_literals_and_variables():
    assert compile_format('a %h "%{HOME}e" %{epoch}') == [
        "a ", ("h", ""), ' "', ("env", "HOME"), '" ', ("epoch", "")]


# -- ExtendedLog classes -------------------------------------------------------------------------------------------
def test_class_parsing():
    assert parse_classes("READ,WRITE") == ({"READ", "WRITE"}, set())
    assert parse_classes("read|write") == ({"READ", "WRITE"}, set())
    assert parse_classes("ALL") == (ALL, set())
    assert parse_classes("NONE") == (set(), set())
    assert parse_classes("ALL,!INFO") == (ALL - {"INFO"}, {"INFO"})
    assert parse_classes("EXIT,SECURE") == ({"EXIT", "SEC"}, set())
    assert parse_classes("SFTP,ssh") == ({"SFTP", "SSH"}, set())         # ProFTPD 1.3.8's mod_sftp classes
    assert {"SFTP", "SSH"} <= ALL and parse_classes("ALL,!SFTP")[1] == {"SFTP"}
    with pytest.raises(ValueError, match="invalid log class in 'READ,BOGUS'"):
        parse_classes("READ,BOGUS")


@pytest.mark.parametrize("classes, command, logged", [
    ("READ", "RETR", True), ("READ", "STOR", False), ("WRITE", "STOR", True), ("WRITE", "DELE", True),
    ("WRITE", "MKD", True), ("DIRS", "MKD", True), ("DIRS", "LIST", True), ("DIRS", "PWD", True),
    ("INFO", "PWD", True), ("AUTH", "USER", True), ("AUTH", "PASS", True), ("MISC", "RNFR", True),
    ("WRITE", "RNTO", True), ("MISC", "NOOP", True), ("SEC", "AUTH", True), ("INFO", "QUIT", True),
    ("ALL", "NOOP", True), ("ALL", "EXIT", False), ("ALL", "CONNECT", False), ("EXIT", "EXIT", True),
    ("ALL", "XYZZY", True), ("READ", "XYZZY", False), ("ALL,!MISC", "NOOP", False), ("NONE", "RETR", False),
    ("ALL,!WRITE", "MKD", False),
])
def test_which_commands_a_class_list_logs(classes, command, logged):
    assert wanted(command, *parse_classes(classes)) is logged


@pytest.mark.parametrize("classes, request_classes, logged", [
    ("ALL", "READ SFTP", True), ("READ", "READ SFTP", True), ("SFTP", "MISC SFTP", True),
    ("WRITE", "MISC SFTP", False), ("ALL,!SFTP", "READ SFTP", False), ("DIRS", "INFO DIRS SFTP", True),
])
def test_which_sftp_requests_a_class_list_logs(classes, request_classes, logged):
    """mod_sftp's requests carry their own classes (fxp.c's cmd_class): logged where one is included and none
    excluded."""
    assert classes_wanted(frozenset(request_classes.split()), *parse_classes(classes)) is logged
