"""The command word and its argument, split as ProFTPD splits them (dispatch.split_command)."""
import pytest

from proftpy.dispatch import split_command


@pytest.mark.parametrize("line, expected", [
    ("LIST", ("LIST", "")),
    ("TYPE A", ("TYPE", "A")),
    ("CWD  dir", ("CWD", " dir")),          # only the first space separates: the rest is the argument
    ("TYPE\tA", ("TYPE", "A")),             # a tab ends the word too
    ("STOR a b\tc ", ("STOR", "a b\tc ")),
    (" NOOP", ("", "NOOP")),
    ("", ("", "")),
])
def test_split_command(line, expected):
    assert split_command(line) == expected
