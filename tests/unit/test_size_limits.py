"""MaxRetrieveFileSize / MaxStoreFileSize lines: ProFTPD's `number unit` sizes and its errors, with FILE:LINE."""

import pytest

from proftpy import modules
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_text
from proftpy.config.types import parse_nbytes

REG = modules.registry()


@pytest.mark.parametrize("number, unit, size", [
    ("10", "B", 10), ("10", "b", 10), ("3", "KB", 3 << 10), ("3", "Kb", 3 << 10), ("2", "mb", 2 << 20),
    ("1", "GB", 1 << 30), ("4096", "TB", 4096 << 40), ("+5", "B", 5), ("05", "B", 5)])
def test_sizes_as_proftpd_reads_them(number, unit, size):
    assert parse_nbytes(number, unit) == size


@pytest.mark.parametrize("number, unit, why", [
    ("1.5", "KB", "Invalid argument"), ("-5", "B", "Invalid argument"), ("5", "KiB", "Invalid argument"),
    ("5", "K", "Invalid argument"), ("*", "B", "Invalid argument"), ("٥", "B", "Invalid argument"),
    ("99999999999999999999", "B", "Numerical result out of range"),
    ("16777216", "TB", "Numerical result out of range")])
def test_sizes_proftpd_refuses(number, unit, why):
    with pytest.raises(ValueError) as e:
        parse_nbytes(number, unit)
    assert str(e.value) == f"unable to parse: {number} {unit}: {why}"


def lines(text: str) -> list:
    config = parse_text(text, REG, file="test.conf")
    return [p.value for p in config.main.section.all("MaxStoreFileSize")]


def test_lines_with_and_without_a_condition():
    first, second, third = lines('MaxStoreFileSize "*"\nMaxStoreFileSize 10 KB user alice,!bob\n'
                                 'MaxStoreFileSize 1 MB class local\n')
    assert first.bytes is None and first.condition is None
    assert second.bytes == 10 << 10 and second.condition.kind == "user"
    assert third.bytes == 1 << 20 and third.condition.kind == "class"


@pytest.mark.parametrize("args, message", [
    ("10", "incorrect number of parameters"), ("0", "incorrect number of parameters"),
    ('"*" user alice', "incorrect number of parameters"), ("10 KB user", "incorrect number of parameters"),
    ("10 KB user alice bob", "incorrect number of parameters"), ("0 B", "size must be greater than zero"),
    ("10 X", "unable to parse: 10 X: Invalid argument"),
    ("10 KB foo bar", "unknown classifier 'foo'")])
def test_errors_name_the_line(args, message):
    with pytest.raises(ConfigError) as e:
        parse_text(f"ServerName x\nMaxRetrieveFileSize {args}\n", REG, file="test.conf")
    assert str(e.value).startswith("test.conf:2: ") and message in str(e.value)
