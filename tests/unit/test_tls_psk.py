"""TLSPreSharedKey's parts: the directive's words and the key files (ProFTPD 1.3.8's rules)."""

from __future__ import annotations

import pytest

from proftpy.modules.tls_directives import PreSharedKey, parse_psk
from proftpy.modules.tls_psk import PskServer, missed, read_key


def _file(tmp_path, data: bytes, mode: int = 0o600):
    path = tmp_path / "k.hex"
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def test_directive_takes_an_identity_and_a_hex_path():
    assert parse_psk(["ftp", "hex:/etc/k"]) == PreSharedKey("ftp", "/etc/k")
    for args, message in ((["ftp", "/etc/k"], "unsupported TLSPreSharedKey format"),
                          (["ftp", "hex:"], "unsupported TLSPreSharedKey format"),
                          (["ftp", "hex:k"], "not an absolute path"), (["ftp"], "wrong number")):
        with pytest.raises(ValueError, match=message):
            parse_psk(args)


def test_key_is_the_number_the_hex_digits_spell(tmp_path):
    assert read_key(_file(tmp_path, b"00" + b"ab" * 20 + b"\n")) == b"\xab" * 20       # BN_bn2bin: no leading 0
    assert read_key(_file(tmp_path, b"f" * 21)) == bytes.fromhex("0" + "f" * 21)


@pytest.mark.parametrize("data,mode,message", [
    (b"ab" * 20, 0o604, "world-readable"),
    (b"ab" * 9 + b"\n", 0o600, "read 19 bytes"),
    (b"ab" * 20 + b"\n\n", 0o600, "not a hex number"),
    (b"0x" + b"ab" * 20, 0o600, "not a hex number"),
    (b"ab" * 10 + b" " + b"ab" * 10, 0o600, "not a hex number"),
])
def test_unusable_key_files(tmp_path, data, mode, message):
    with pytest.raises(ValueError, match=message):
        read_key(_file(tmp_path, data, mode))


def test_unknown_identity_gets_a_random_key_and_a_log_line():
    psk = PskServer({"ftp": b"k" * 20})
    assert psk("ftp") == b"k" * 20
    fake = psk("who")
    assert len(fake) == 32 and fake != psk("who")
    assert missed(psk) == ["warning: requested PSK identity 'who' not configured, providing random fake PSK"] * 2
    assert missed(psk) == [] and missed(None) == []
    psk(None)
    assert missed(psk) == ["error: client did not provide PSK identity name, providing random fake PSK"]
