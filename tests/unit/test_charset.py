"""UseEncoding: the conversion between the client's and the disk's character sets, and the directive's words."""

import pytest

from proftpy import modules
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_text
from proftpy.net.charset import Charset

REG = modules.registry()


def test_names_from_the_client_become_disk_text_and_go_back():
    cs = Charset.named("UTF-8", "CP1251")
    text = cs.from_client("MKD тест".encode("cp1251"))
    assert text == "MKD тест"                                    # the disk's UTF-8, as proftpy's text
    assert cs.to_client(text.encode("utf-8")) == "MKD тест".encode("cp1251")


def test_what_does_not_convert_travels_as_it_is():
    cs = Charset.named("UTF-8", "CP1251")
    assert cs.to_client(b"ok\r\n\xff-raw\r\n\xe6\x97\xa5\r\n") == b"ok\r\n\xff-raw\r\n\xe6\x97\xa5\r\n"   # per line
    assert cs.to_client("тест\r\n日\r\n".encode()) == "тест".encode("cp1251") + "\r\n日\r\n".encode()
    assert cs.from_client(b"\x98") == "\udc98"                   # no such CP1251 character: the byte as it came


def test_a_non_utf8_disk():
    cs = Charset.named("KOI8-R", "CP1251")
    text = cs.from_client("тест".encode("cp1251"))
    assert text.encode("utf-8", "surrogateescape") == "тест".encode("koi8-r")
    assert cs.to_client(text.encode("utf-8", "surrogateescape")) == "тест".encode("cp1251")


def value(line: str):
    return parse_text(line + "\n", REG, file="test.conf").main.get("UseEncoding")


def test_use_encoding_words():
    assert value("UseEncoding on") is None
    assert value("UseEncoding off").charset is None
    enc = value("UseEncoding utf8 cp1251 strict")
    assert (enc.charset.local, enc.charset.client, enc.strict) == ("utf-8", "cp1251", True)


@pytest.mark.parametrize("line, message", [
    ("UseEncoding UTF-8", "expected Boolean parameter"),
    ("UseEncoding UTF-8 CP1251 x", "unknown UseEncoding keyword 'x'"),
    ("UseEncoding UTF-8 bogus-cs", "unknown character set 'bogus-cs'"),
    ("UseEncoding UTF-8 rot13", "unknown character set 'rot13'"),            # a codec, not a character set
    ("UseEncoding base64 UTF-8", "unknown character set 'base64'"),
    ("UseEncoding UTF-8 UTF-16", "'UTF-16' cannot be used: FTP needs a character set where ASCII stays ASCII"),
    ("UseEncoding UTF-8 idna", "'idna' cannot be used: FTP needs a character set where ASCII stays ASCII"),
    ("LangPath /nonexistent-locales", "unable to use path '/nonexistent-locales' for locale files"),
    ("LangOptions Bogus", "unknown LangOption 'Bogus'")])
def test_errors(line, message):
    with pytest.raises(ConfigError) as e:
        value(line)
    assert str(e.value) == f"test.conf:1: {line.split()[0]}: {message}"
