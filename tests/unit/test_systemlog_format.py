"""SystemLog and syslog line shapes (proftpy/log/__init__.py): ProFTPD's `<server> (<client>[<ip>])` part on a
session's lines, none on the master's; the notice level between info and warning."""

import logging
import os
import types

from proftpy import log as systemlog


def record(msg: str, origin: str | None = None) -> logging.LogRecord:
    r = logging.LogRecord("proftpy", systemlog.NOTICE, "", 0, msg, (), None)
    if origin is not None:
        r.origin = origin
    return r


def test_file_lines():
    f = systemlog.SystemLogFormat()
    pid = os.getpid()
    assert f.format(record("up")).endswith(f" proftpy[{pid}]: up")
    line = f.format(record("USER a (Login failed): Incorrect password", "srv (cl[192.0.2.7])"))
    assert line.endswith(f" proftpy[{pid}] srv (cl[192.0.2.7]): USER a (Login failed): Incorrect password")


def test_syslog_messages_use_a_dash_after_the_origin_as_proftpd_does():
    f = systemlog._SyslogFormat()
    pid = os.getpid()
    assert f.format(record("up")) == f"proftpy[{pid}]: up"
    assert f.format(record("FTP session opened.", "srv (cl[192.0.2.7])")) == \
        f"proftpy[{pid}]: srv (cl[192.0.2.7]) - FTP session opened."


def test_session_origin_reads_the_session_when_the_line_is_written():
    s = types.SimpleNamespace(local_name="192.0.2.1", remote_name="192.0.2.7", remote_addr="192.0.2.7")
    origin = systemlog.SessionOrigin(s)
    r = record("x")
    origin.filter(r)
    assert r.origin == "192.0.2.1 (192.0.2.7[192.0.2.7])"
    s.remote_name = "client.example.net"                  # UseReverseDNS resolved it meanwhile
    origin.filter(r)
    assert r.origin == "192.0.2.1 (client.example.net[192.0.2.7])"


def test_notice_is_proftpds_default_level():
    assert logging.INFO < systemlog.LEVELS["notice"] == systemlog.NOTICE < logging.WARNING
    assert logging.getLevelName(systemlog.NOTICE) == "NOTICE"


def test_debug_writes_everything_whatever_the_sysloglevel_until_it_is_set_back_to_0():
    logger = logging.getLogger("proftpy")
    saved = logger.level, systemlog.Threshold.syslog, systemlog.Threshold.debug
    try:
        systemlog.set_threshold("notice", 0)
        assert logger.level == systemlog.NOTICE
        systemlog.set_threshold(debug=1)                # -d 1, or ftpdctl's `debug level 1`
        systemlog.set_threshold("warn")                 # a session's server
        assert logger.level == logging.DEBUG
        systemlog.set_threshold(debug=0)
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(saved[0])
        systemlog.Threshold.syslog, systemlog.Threshold.debug = saved[1:]


def test_log_options_drop_fields_and_label_the_process_role():
    from proftpy.modules.log import _log_options
    s = types.SimpleNamespace(local_name="srv", remote_name="cl", remote_addr="192.0.2.7")
    f = systemlog.SystemLogFormat()
    pid = os.getpid()
    try:
        systemlog.set_line_options(_log_options(["-Timestamp", "-hostname", "+RoleBasedProcessLabels"]), "session")
        r = record("hello")
        systemlog.SessionOrigin(s).filter(r)
        assert f.format(r) == f"session[{pid}] srv (cl[192.0.2.7]): hello"
        systemlog.set_line_options(_log_options(["-VirtualHost", "-Timestamp"]), "daemon")
        systemlog.SessionOrigin(s).filter(r)
        assert f.format(r) == f"{f.host} proftpy[{pid}] (cl[192.0.2.7]): hello"
        assert f.format(record("up")) == f"{f.host} proftpy[{pid}]: up"
    finally:
        systemlog.set_line_options(systemlog.LOG_OPTIONS_DEFAULT, "daemon")
    assert f.format(record("up"))[:4].isdigit()
    for words, message in ((["Timestamp"], "bad LogOption: 'Timestamp'"), (["+Colour"], "unknown LogOption"),
                           ([], "wrong number")):
        try:
            _log_options(words)
        except ValueError as e:
            assert message in str(e)
        else:
            raise AssertionError(words)
