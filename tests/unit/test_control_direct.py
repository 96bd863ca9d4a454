"""ControlChannel on a plain socket reads and writes the descriptor directly first (os.read/os.write) and goes
through the socket, with its timeout, only when that would block: replies larger than the socket's buffer, lines
that arrive in pieces, a client that stops reading and a closed socket all behave as through the socket alone."""

from __future__ import annotations

import socket
import threading
import time

from proftpy.net.control import ControlChannel


def _pair(timeout: float = 5.0) -> tuple[socket.socket, socket.socket]:
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server.settimeout(timeout)          # as the session does (set_send_timeout): the descriptor is non-blocking
    return server, client


def test_a_reply_larger_than_the_send_buffer_arrives_whole_and_in_order():
    server, client = _pair()
    with server, client:
        ch = ControlChannel(server)
        data = b"".join(b"211-line %06d\r\n" % i for i in range(20000))
        got = bytearray()

        def reader() -> None:
            while len(got) < len(data):
                chunk = client.recv(65536)
                if not chunk:
                    break
                got.extend(chunk)
                time.sleep(0.0005)      # slower than the writer: os.write fills the buffer, sendall waits

        thread = threading.Thread(target=reader)
        thread.start()
        ch.send(data)
        thread.join(10)
        assert bytes(got) == data
        assert ch.bytes_out == len(data) and not ch.closed


def test_a_line_that_arrives_in_pieces_is_read_whole():
    server, client = _pair()
    with server, client:
        ch = ControlChannel(server)

        def writer() -> None:
            for piece in (b"RE", b"TR some", b" file\r", b"\nNOOP\r\n"):
                client.sendall(piece)
                time.sleep(0.05)

        thread = threading.Thread(target=writer)
        thread.start()
        assert ch.read_line() == "RETR some file"
        assert ch.read_line() == "NOOP"
        thread.join(5)


def test_a_client_that_reads_nothing_ends_the_session_after_the_send_timeout():
    server, client = _pair(timeout=0.3)
    with server, client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ch = ControlChannel(server)
        started = time.monotonic()
        ch.send(b"x" * (4 << 20))
        assert ch.closed
        assert time.monotonic() - started < 5
        ch.send(b"200 more\r\n")        # nothing is tried once a send failed
        assert ch.closed


def test_a_closed_socket_ends_reads_and_sends_quietly():
    server, client = _pair()
    with client:
        ch = ControlChannel(server)
        server.close()                  # fileno() is -1 now: no descriptor number is reused
        assert ch.read_line() is None and ch.closed
        ch.send(b"421 bye\r\n")
        assert ch.closed


def test_the_peer_going_away_reads_as_end_of_file():
    server, client = _pair()
    with server:
        ch = ControlChannel(server)
        client.sendall(b"QUIT\r\n")
        client.close()
        assert ch.read_line() == "QUIT"
        assert ch.read_line() is None
        ch.send(b"221 Goodbye.\r\n")    # EPIPE/ECONNRESET: closed, not raised
        ch.send(b"221 Goodbye.\r\n")
        assert ch.closed
