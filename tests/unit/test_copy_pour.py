"""mod_copy's data loop: all of a file, or EDQUOT once a hard quota's room is passed (what was written stays for the
caller to remove)."""

import errno
import os

import pytest

from proftpy.modules.copy import _pour


@pytest.fixture
def files(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(3 << 20) + b"tail")
    dst = tmp_path / "dst"
    dst.write_bytes(b"old content that must go")
    a = os.open(src, os.O_RDONLY)
    b = os.open(dst, os.O_WRONLY | os.O_NONBLOCK)
    yield src, dst, a, b
    os.close(a)
    os.close(b)


def test_pour_copies_everything_over_what_was_there(files):
    src, dst, a, b = files
    assert _pour(a, b, None) == src.stat().st_size
    assert dst.read_bytes() == src.read_bytes()


def test_pour_within_room_copies_everything(files):
    src, dst, a, b = files
    assert _pour(a, b, src.stat().st_size) == src.stat().st_size
    assert dst.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("room", [0, 10, (1 << 20) + 5])
def test_pour_stops_one_byte_past_the_room(files, room):
    src, dst, a, b = files
    with pytest.raises(OSError) as e:
        _pour(a, b, room)
    assert e.value.errno == errno.EDQUOT
    assert dst.stat().st_size == room + 1
