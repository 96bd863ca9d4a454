"""auth/wire.py, the bounded socket of the PostgreSQL, MySQL and LDAP clients: a deadline bounds a whole call
whatever the per-wait timeout, a deadline already passed fails without waiting, and a failed TLS handshake is the
client's error with the socket closed."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from proftpy.auth.wire import Wire


class Error(Exception):
    def __init__(self, message: str, broken: bool = False):
        super().__init__(message)
        self.broken = broken


class Client(Wire):
    error = Error


def pair(timeout: float = 10.0) -> tuple[Client, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.settimeout(timeout)
    return Client(timeout, ours), theirs


def test_a_deadline_bounds_the_wait_below_the_timeout():
    wire, theirs = pair()
    started = time.monotonic()
    with pytest.raises(Error, match="no answer from server: timed out") as err:
        wire.recv_exact(4, time.monotonic() + 0.2)
    assert time.monotonic() - started < 2 and err.value.broken and wire.sock is None
    theirs.close()


def test_a_passed_deadline_fails_at_once_and_data_is_read_in_pieces():
    wire, theirs = pair()
    theirs.sendall(b"ab")
    theirs.sendall(b"cd")
    assert wire.recv_exact(3, time.monotonic() + 5) == b"abc" and wire.recv_exact(1) == b"d"
    with pytest.raises(Error, match="timed out"):
        wire.send(b"x", time.monotonic() - 1)
    assert wire.sock is None
    with pytest.raises(Error, match="no connection to the server"):
        wire.send(b"x")
    theirs.close()


def test_the_end_of_the_stream_is_the_clients_closed_error():
    wire, theirs = pair()
    theirs.close()
    with pytest.raises(Error, match="server closed the connection unexpectedly"):
        wire.recv_exact(1)


def test_a_failed_handshake_is_the_clients_error_and_closes():
    wire, theirs = pair()
    theirs.sendall(b"this is not TLS at all\r\n" * 4)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(Error, match="^SSL error: ") as err:
        wire.wrap(ctx, "localhost", time.monotonic() + 5)
    assert err.value.broken and wire.sock is None
    theirs.close()
