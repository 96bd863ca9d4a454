"""inet.accept: the same socket as socket.accept() gives, without the enum conversions (issue 18)."""

import socket

import pytest

from proftpy.net import inet


def _pair(host: str, family: int):
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(2)
    listener.setblocking(False)         # as the passive listeners are
    return listener


@pytest.mark.parametrize("host,family", [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)])
def test_accept_gives_what_the_standard_library_gives(host, family):
    if family == socket.AF_INET6 and not inet.ipv6_available():
        pytest.fail("no IPv6 loopback on this machine")
    with _pair(host, family) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection((host, port)) as c1, socket.create_connection((host, port)) as c2:
            ours, peer = inet.accept(listener)
            theirs, peer2 = listener.accept()
            with ours, theirs:
                assert peer == c1.getsockname() and peer2 == c2.getsockname()
                for attr in ("family", "type", "proto"):
                    assert getattr(ours, attr) == getattr(theirs, attr)
                assert ours.family is family and ours.type is socket.SOCK_STREAM
                assert ours.gettimeout() == theirs.gettimeout() is None and ours.getblocking()
                ours.sendall(b"x")
                assert c1.recv(1) == b"x"


def test_accept_on_a_dual_stack_listener_gives_ipv4_clients_an_ipv6_socket():
    if not inet.ipv6_available():
        pytest.fail("no IPv6 on this machine")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:    # as a "::" listener, loopback only
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::ffff:127.0.0.1", 0))
        listener.listen(2)
        listener.setblocking(False)
        with socket.create_connection(("127.0.0.1", listener.getsockname()[1])):
            sock, peer = inet.accept(listener)
            with sock:
                assert sock.family is socket.AF_INET6 and peer[0] == "::ffff:127.0.0.1"


def test_nothing_to_accept_is_blocking_io_error():
    with _pair("127.0.0.1", socket.AF_INET) as listener, pytest.raises(BlockingIOError):
        inet.accept(listener)
