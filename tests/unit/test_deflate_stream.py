"""MODE Z's zlib stream (transfer/deflate.py) over a socket pair: what goes out decodes to what went in, each block
is decodable as soon as it arrives, uploads are read in bounded pieces, a socket that would block loses nothing;
and mod_deflate's reading of the level."""

import errno
import os
import socket
import zlib

import pytest

from proftpy.config.types import atoi
from proftpy.transfer.deflate import Deflated

DATA = os.urandom(5000) + b"compressible text\r\n" * 50000


def read_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while chunk := sock.recv(1 << 16):
        out += chunk
    return bytes(out)


def test_a_download_decodes_to_what_was_sent_and_reports_its_totals():
    ours, theirs = socket.socketpair()
    seen = []
    z = Deflated(ours, 7, lambda stream: seen.append((stream.wire, stream.plain, stream.received, stream.error)))
    for i in range(0, len(DATA), 100_000):
        z.send(DATA[i:i + 100_000])
    theirs.settimeout(5)
    first = zlib.decompressobj().decompress(theirs.recv(1 << 20, socket.MSG_PEEK))
    assert DATA.startswith(first) and len(first) >= 1          # a sync flush: decodable before the end
    z.unwrap()
    z.close()
    wire = read_all(theirs)
    assert zlib.decompress(wire) == DATA
    assert seen == [(len(wire), len(DATA), False, None)]


def test_an_upload_is_read_in_pieces_no_larger_than_the_buffer():
    ours, theirs = socket.socketpair()
    bomb = zlib.compress(bytes(20 << 20), 9)                  # 20 MB of zeros in some 20 KB
    theirs.sendall(bomb)
    theirs.shutdown(socket.SHUT_WR)
    z = Deflated(ours, 7)
    buf = bytearray(64 << 10)
    total = 0
    while n := z.recv_into(buf):
        assert n <= len(buf)
        total += n
    assert total == 20 << 20


def test_a_broken_upload_is_an_io_error():
    ours, theirs = socket.socketpair()
    theirs.sendall(b"not zlib at all" * 10)
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(OSError) as e:
        Deflated(ours, 7).recv_into(bytearray(1024))
    assert e.value.errno == errno.EIO and "error inflating data" in e.value.strerror


def test_a_socket_that_would_block_loses_nothing():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    z = Deflated(ours, 0)                                     # level 0: the output is as large as the input
    sent, received = 0, bytearray()
    block = os.urandom(50_000)
    decoder = zlib.decompressobj()
    for _ in range(20):
        while True:
            try:
                z.send(block)                                 # taken whole, or not at all
                sent += len(block)
                break
            except BlockingIOError:
                received += theirs.recv(1 << 20)
    while True:
        try:
            z.unwrap()
            break
        except BlockingIOError:
            received += theirs.recv(1 << 20)
    z.close()
    theirs.settimeout(5)
    received += read_all(theirs)
    assert decoder.decompress(bytes(received)) == block * 20 and sent == len(block) * 20


@pytest.mark.parametrize("text, value", [("9", 9), (" 7", 7), ("x", 0), ("8junk", 8), ("-1", -1), ("", 0)])
def test_the_level_is_read_as_atoi_reads_it(text, value):
    assert atoi(text) == value
