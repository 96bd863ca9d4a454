"""UseLastlog's record (proftpy/auth/lastlog.py): struct lastlog at uid x 292, or a file per user in a directory."""

import os

import pytest

from proftpy.auth import lastlog


def test_record_at_the_uids_offset_leaves_the_others(tmp_path):
    path = tmp_path / "lastlog"
    path.write_bytes(b"\x07" * 292 * 3)
    lastlog.record(5, "alice", "ftpd1234", "192.0.2.7", str(path), now=1700000000)
    data = path.read_bytes()
    assert len(data) == 292 * 6
    assert data[:292 * 3] == b"\x07" * 292 * 3 and data[292 * 3:292 * 5] == b"\0" * 292 * 2
    when, line, host = lastlog.RECORD.unpack(data[292 * 5:])
    assert (when, line.rstrip(b"\0"), host.rstrip(b"\0")) == (1700000000, b"ftpd1234", b"192.0.2.7")


def test_a_directory_holds_a_file_per_user(tmp_path):
    lastlog.record(5, "alice", "ftpd1", "2001:db8::7", str(tmp_path), now=1)
    assert lastlog.RECORD.unpack((tmp_path / "alice").read_bytes())[2].rstrip(b"\0") == b"2001:db8::7"
    assert oct(os.stat(tmp_path / "alice").st_mode & 0o777) == "0o600"
    with pytest.raises(OSError):
        lastlog.record(5, "../x", "ftpd1", "h", str(tmp_path))
