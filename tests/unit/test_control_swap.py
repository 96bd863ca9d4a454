"""ControlChannel.swap: the control connection carries on over a new transport (AUTH TLS wraps the socket). What the
client pipelined behind the command that started the swap is dropped, never run (the STARTTLS command-injection
class of bugs); bytes the new transport holds ready to read count as waiting input."""

from __future__ import annotations

import socket
import threading
import time

from proftpy.net.control import ControlChannel


def test_lines_buffered_before_the_swap_are_dropped(tls):
    server, client = socket.socketpair()
    with server, client:
        ch = ControlChannel(server)
        client.sendall(b"AUTH TLS\r\nUSER x\r\n")                  # one segment: both lines arrive together
        assert ch.read_line() == "AUTH TLS"
        ctx = tls.server()
        wrapped = ctx.wrap_socket(server, server_side=True, do_handshake_on_connect=False)
        peer: dict = {}

        def client_side() -> None:
            conn = tls.client().wrap_socket(client, server_hostname="localhost")
            conn.sendall(b"PBSZ 0\r\n")
            peer["conn"] = conn

        thread = threading.Thread(target=client_side)
        thread.start()
        wrapped.settimeout(10)
        wrapped.do_handshake()
        assert ch.swap(wrapped, wrapped.pending) == len(b"USER x\r\n")
        assert not ch.pending()
        thread.join(10)
        assert ch.read_line() == "PBSZ 0"                       # USER x never comes back
        peer["conn"].close()


def test_pending_counts_the_transport_even_without_a_buffered_line():
    server, client = socket.socketpair()
    with server, client:
        ch = ControlChannel(server)
        assert not ch.pending()
        held = [5]
        ch.swap(server, lambda: held[0])                        # a transport holding 5 bytes the kernel does not
        assert ch.pending()
        started = time.monotonic()
        assert ch.wait(5)                                       # nothing is readable on the socket itself
        assert time.monotonic() - started < 1
        held[0] = 0
        assert not ch.pending()
        assert not ch.wait(0.05)


def test_wait_returns_at_once_for_decrypted_bytes_of_a_real_tls_record(tls):
    """A record longer than one read: the first line comes out, the rest of the record waits inside the TLS library
    and the socket is not readable; the channel still knows a line is waiting."""
    server, client = socket.socketpair()
    with server, client:
        wrapped = tls.server().wrap_socket(server, server_side=True, do_handshake_on_connect=False)
        peer: dict = {}

        def client_side() -> None:
            conn = tls.client().wrap_socket(client, server_hostname="localhost")
            conn.sendall(b"NOOP\r\n" + b"B" * 4090 + b"\r\n")    # one record, 4098 bytes
            peer["conn"] = conn

        thread = threading.Thread(target=client_side)
        thread.start()
        wrapped.settimeout(10)
        wrapped.do_handshake()
        ch = ControlChannel(wrapped)
        ch.swap(wrapped, wrapped.pending)
        thread.join(10)
        assert ch.read_line() == "NOOP"
        assert wrapped.pending() > 0
        assert ch.pending()
        started = time.monotonic()
        assert ch.wait(5)
        assert time.monotonic() - started < 1
        assert ch.read_line() == "B" * 4090
        peer["conn"].close()
