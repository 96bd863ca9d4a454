"""What Python itself would refuse deep inside the daemon is refused where the configuration is read, with
FILE:LINE: regular expressions re.compile rejects with other errors than re.error, numbers no C int holds (poll(),
listen(), setsockopt() take ints), and waits longer than poll() can."""

import pytest

from proftpy import modules
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_ftpaccess, parse_text
from proftpy.net import POLL_MAX_MS, poll_ms

REG = modules.registry()
TOO_MANY = "a{99999999999}"                 # OverflowError in re.compile
TOO_DEEP = "(" * 2000 + ")" * 2000          # RecursionError in re.compile


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_text(text, REG, file="test.conf")
    return str(e.value)


@pytest.mark.parametrize("pattern", [TOO_MANY, TOO_DEEP])
@pytest.mark.parametrize("line", ["PathDenyFilter {}", "AllowFilter {}", "HideFiles {}",
                                  "<Limit LOGIN>\nAllowUser regex {}\n</Limit>",
                                  "<IfUser regex {}>\nMaxClients 1\n</IfUser>",
                                  "<Anonymous /srv/ftp>\nAnonRejectPasswords {}\n</Anonymous>"])
def test_a_regex_python_cannot_compile_is_a_configuration_error(line, pattern):
    message = error_of("ServerName x\n" + line.format(pattern) + "\n")
    assert message.startswith("test.conf:2: ") or message.startswith("test.conf:3: ")
    assert "repetition number is too large" in message or "recursion" in message


def test_a_broken_ftpaccess_regex_is_an_error_of_that_file():
    with pytest.raises(ConfigError, match=r"^/srv/sub/\.ftpaccess:1: HideFiles: bad regular expression"):
        parse_ftpaccess(f"HideFiles {TOO_MANY}\n", "/srv/sub/.ftpaccess", "/srv/sub", REG)


@pytest.mark.parametrize("line, message", [
    ("TimeoutIdle 9300000000", "TimeoutIdle: 9300000000 is above 2147483647"),
    ("TimeoutStalled 2147483648", "TimeoutStalled: 2147483648 is above 2147483647"),
    ("TimeoutSession 9300000000", "TimeoutSession: 9300000000 is above 2147483647"),
    ("TCPBackLog 2147483648", "TCPBackLog: 2147483648 is above 2147483647"),
    ("SocketOptions rcvbuf 2147483648", "SocketOptions: 2147483648 is above 2147483647"),
    ("TLSTimeoutHandshake 9300000000",
     "TLSTimeoutHandshake: error parsing timeout value '9300000000': Numerical result out of range")])
def test_numbers_no_c_int_holds_are_refused(line, message):
    assert error_of(f"ServerName x\n{line}\n") == f"test.conf:2: {message}"


def test_the_largest_int_and_offsets_beyond_it_are_fine():
    parse_text("TimeoutIdle 2147483647\nTimeoutStalled 2147483647\nTransferRate RETR 10:4294967296\n", REG,
               file="test.conf")


def test_poll_waits_are_capped():
    assert poll_ms(0.0001) == 1 and poll_ms(2) == 2001
    assert poll_ms(2147483647) == POLL_MAX_MS


@pytest.mark.parametrize("word", ["\u0663", "1" * 5000])
def test_numbers_are_ascii_digits_of_a_sane_length(word):
    assert error_of(f"MaxPasswordSize {word}\n") == f"test.conf:1: MaxPasswordSize: '{word[:40]}' is not a number"
