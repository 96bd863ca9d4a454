"""mod_delay against the real daemon: DelayOnEvent minimums (USER, PASS, FailedLogin, Connect), what the table
learns (and that one session adds at most 16 values to a row), ftpdctl delay info/reset with its ACLs, and a
DelayTable of `none`. Whether the three login outcomes take indistinguishable time is measured by
scripts/delay_timing.py (docs/ban.md), not here."""

from __future__ import annotations

import ftplib
import time

import pytest

from conftest import PASSWORDS
from test_ban import ftpdctl

ACL = "DelayControlsACLs all allow user root\n"


def timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def test_delay_on_event_minimums(ftpd):
    d = ftpd(ACL + "DelayOnEvent USER 200ms\nDelayOnEvent PASS 300\nDelayOnEvent FailedLogin 500ms\n")
    ftp = d.connect()
    assert timed(lambda: ftp.sendcmd("USER alice")) >= 0.2
    assert timed(lambda: ftp.sendcmd(f"PASS {PASSWORDS['alice']}")) >= 0.3
    ftp.close()
    ftp = d.connect()
    ftp.sendcmd("USER alice")
    with pytest.raises(ftplib.error_perm):
        start = time.monotonic()
        try:
            ftp.sendcmd("PASS wrong")
        finally:
            assert time.monotonic() - start >= 0.5
    ftp.close()


def test_delay_on_connect_waits_before_the_greeting(ftpd):
    d = ftpd("DelayOnEvent Connect 300-400ms\n")
    assert timed(lambda: d.connect().close()) >= 0.3


def test_the_table_learns_at_most_16_values_per_session_and_row(ftpd):
    d = ftpd(ACL + "MaxLoginAttempts 30\n")
    ftp = d.connect()
    for _ in range(18):
        ftp.sendcmd("USER alice")
        with pytest.raises(ftplib.error_perm):
            ftp.sendcmd("PASS wrong")
    ftp.close()
    status, lines = ftpdctl(d, "delay", "info")
    assert status == 0
    assert lines[0] == f"Address 127.0.0.1#{d.port}: USER values (usecs):"
    assert lines[1] == " + Protocol ftp, 16 values:"
    at = lines.index(f"Address 127.0.0.1#{d.port}: PASS values (usecs):")
    assert lines[at + 1] == " + Protocol ftp, 16 values:"
    assert ftpdctl(d, "delay", "reset") == (0, [f"DelayTable '{d.dir}/proftpy.delay' reset"])
    assert ftpdctl(d, "delay", "info")[1][1] == " + Protocol ftp, 0 values:"


def test_delay_actions_have_their_own_acls_and_texts(ftpd):
    d = ftpd("DelayControlsACLs info allow user root\n")
    assert ftpdctl(d, "delay", "info")[0] == 0
    assert ftpdctl(d, "delay", "reset") == (1, ["access denied"])
    assert ftpdctl(d, "delay", "bogus") == (1, ["access denied"])
    d.stop()
    d = ftpd("DelayControlsACLs info,reset allow user root\n")
    assert ftpdctl(d, "delay", "bogus") == (1, ["access denied"])


def test_unknown_delay_actions_and_a_disabled_table(ftpd):
    d = ftpd(ACL + "DelayTable none\n")
    assert ftpdctl(d, "delay", "info") == (1, ["delay: DelayTable disabled"])
    d.stop()
    d = ftpd(ACL)
    assert ftpdctl(d, "delay") == (1, ["delay: missing required parameters"])
    assert ftpdctl(d, "delay", "bogus") == (1, ["unknown delay action: 'bogus'"])
