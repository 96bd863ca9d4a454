"""Pure parts of the data channel: passive port choice and ASCII line-ending conversion."""

from __future__ import annotations

import errno
import random
import socket

import pytest

from proftpy.modules.xfer import Rate, _hidden, _rate
from proftpy.net import passive
from proftpy.reply import FtpError
from proftpy.transfer.ascii import AsciiDecoder, AsciiEncoder
from proftpy.transfer.connection import passive_listener


def test_candidates_cover_range_once_from_random_start():
    ports = passive.candidate_ports(5000, 5009, random.Random(3))
    assert sorted(ports) == list(range(5000, 5010))
    starts = {passive.candidate_ports(5000, 5009, random.Random(seed))[0] for seed in range(40)}
    assert len(starts) > 3


def test_bind_passive_within_range():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
    lo = 30000 + base % 20000
    sock = passive.bind_passive("127.0.0.1", (lo, lo + 50))
    try:
        assert lo <= sock.getsockname()[1] <= lo + 50
    finally:
        sock.close()


@pytest.fixture
def busy_port():
    """A port a listener holds for the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


def test_bind_passive_busy_range_raises_425(busy_port):
    port = busy_port
    # a one-port "range" cannot be expressed by PassivePorts (min < max) but the chooser handles it
    with pytest.raises(FtpError) as info:
        passive_listener("127.0.0.1", (port, port))
    assert info.value.reply.code == 425
    assert "no free port in PassivePorts range" in info.value.reply.text
    # below it net/ knows no FTP replies: an OSError that says why
    with pytest.raises(passive.RangeBusy) as busy:
        passive.bind_passive("127.0.0.1", (port, port))
    assert busy.value.errno == errno.EADDRINUSE
    assert busy.value.strerror == f"no free port in PassivePorts range {port}-{port}"


def test_bind_passive_without_range_uses_an_ephemeral_port():
    sock = passive.bind_passive("127.0.0.1", None)
    try:
        assert passive.EPHEMERAL.allows(sock.getsockname()[1])
    finally:
        sock.close()


def test_read_ephemeral(tmp_path):
    (tmp_path / "range").write_text("40000\t50000\n")
    (tmp_path / "reserved").write_text("8080,45000-45010\n")
    eph = passive.read_ephemeral(str(tmp_path / "range"), str(tmp_path / "reserved"))
    assert eph == passive.Ephemeral(40000, 50000, ((8080, 8080), (45000, 45010)))
    assert eph.allows(40000) and eph.allows(50000) and eph.allows(44999)
    assert not eph.allows(45005) and not eph.allows(39999) and not eph.allows(50001)
    (tmp_path / "reserved").write_text("\n")
    assert passive.read_ephemeral(str(tmp_path / "range"), str(tmp_path / "reserved")).reserved == ()
    assert passive.read_ephemeral(str(tmp_path / "none"), str(tmp_path / "none")) == passive.Ephemeral(32768, 60999)


def _free_pair() -> int:
    """A port p with p and p + 1 free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two adjacent free ports")


def test_bind_any_names_a_port_of_the_range_and_skips_reserved_ones():
    lo = _free_pair()
    eph = passive.Ephemeral(lo, lo + 1, reserved=((lo, lo),))
    sock = passive.bind_any("127.0.0.1", random.Random(1), eph)
    try:
        assert sock.getsockname()[1] == lo + 1
    finally:
        sock.close()


def test_bind_any_falls_back_to_the_kernels_choice_when_the_ports_it_tries_are_busy(busy_port):
    sock = passive.bind_any("127.0.0.1", random.Random(1), passive.Ephemeral(busy_port, busy_port))
    try:
        assert sock.getsockname()[1] not in (0, busy_port)
    finally:
        sock.close()


@pytest.mark.parametrize("blocks, expected", [
    ([b"a\nb\n"], b"a\r\nb\r\n"),
    ([b"a\r\nb"], b"a\r\nb"),
    ([b"a\r", b"\nb\n"], b"a\r\nb\r\n"),
    ([b"a\n", b"\n"], b"a\r\n\r\n"),
    ([b"lone\rcr"], b"lone\rcr"),
])
def test_ascii_encoder(blocks, expected):
    enc = AsciiEncoder()
    assert b"".join(enc.feed(b) for b in blocks) == expected


@pytest.mark.parametrize("blocks, expected", [
    ([b"a\r\nb\r\n"], b"a\nb\n"),
    ([b"a\r", b"\nb"], b"a\nb"),
    ([b"a\r", b"b"], b"a\rb"),
    ([b"end\r"], b"end\r"),
    ([b"x\n"], b"x\n"),
])
def test_ascii_decoder(blocks, expected):
    dec = AsciiDecoder()
    assert b"".join(dec.feed(b) for b in blocks) + dec.flush() == expected


def test_directive_parsers():
    assert _hidden(["on"]) == (".in.", ".")
    assert _hidden(["off"]) is None
    assert _hidden([".tmp.", ".part"]) == (".tmp.", ".part")
    assert _rate(["RETR,STOR", "100:2048"]) == Rate(frozenset({"RETR", "STOR"}), 100.0, 2048)
    with pytest.raises(ValueError):
        _rate(["LIST", "100"])
    with pytest.raises(ValueError):
        _rate(["RETR", "0"])
