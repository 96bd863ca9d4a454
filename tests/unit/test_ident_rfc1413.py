"""RFC 1413 answers read as ProFTPD 1.3.8's mod_ident reads them, and queries bounded in time and bytes (against
small scripted identds on this machine's loopback, on a free port: the daemon's own lookups, on port 113, are in
tests/integration/test_ident.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from proftpy.net import ident


@pytest.mark.parametrize("line, name", [
    (b"6193, 23 : USERID : UNIX : stjohns\r\n", "stjohns"),
    (b"6193,23:USERID:UNIX:stjohns", "stjohns"),
    (b"6193, 23 : USERID : UNIX , US-ASCII : a:b:c  \t\r\n", "a:b:c"),      # the rest of the line, inner colons
    (b"1, 2 : userid : OTHER :  spaced name \n", "spaced name"),
    (b"1, 2 : USERID : UNIX\r\n", ""),                     # no third colon: ProFTPD's empty name
    (b"1, 2 : USERID\r\n", None),
    (b"1, 2 : ERROR : HIDDEN-USER\r\n", "HIDDEN-USER"),
    (b"1, 2 : ERROR : hidden-user \r\n", "HIDDEN-USER"),
    (b"1, 2 : ERROR : NO-USER\r\n", None),
    (b"1, 2 : ERROR : UNKNOWN-ERROR\r\n", None),
    (b"1, 2 : PONY : x : y\r\n", None),
    (b"garbage without colons\r\n", None),
    (b"", None),
    (b"\r\n", None),
    (b"1, 2 : USERID : UNIX : bob\0evil\r\n", "bob"),       # a C string ends at NUL
])
def test_parse_reads_answers_as_proftpd(line, name):
    assert ident.parse(line) == name


def test_keep_drops_high_bit_bytes_and_stops_at_the_newline_or_255():
    assert ident.keep(b"1,2:USERID:UNIX:j\xc3\xa9r\xf4me\r\nmore") == (b"1,2:USERID:UNIX:jrme\r\n", True)
    assert ident.keep(b"x" * 1000) == (b"x" * 255, True)
    assert ident.keep(b"\xff" * 1000 + b"abc") == (b"abc", False)


class FakeIdentd:
    """A scripted identd on 127.0.0.1:<free port>: `answer(request) -> bytes | None` (None: say nothing and hold
    the connection until the test ends); `delay` seconds before answering."""

    def __init__(self, answer, delay: float = 0.0):
        self.answer, self.delay = answer, delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(5)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                self.requests.append(conn.recv(100))
                time.sleep(self.delay)
                reply = self.answer(self.requests[-1])
                if reply is not None:
                    conn.sendall(reply)
                else:
                    self.done.wait(10)
            except OSError:
                pass                    # the server gave up: what the test checks

    def close(self) -> None:
        self.done.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def identd():
    made = []

    def make(answer, delay=0.0):
        made.append(FakeIdentd(answer, delay))
        return made[-1]
    yield make
    for d in made:
        d.close()


def test_query_sends_client_port_then_server_port(identd):
    d = identd(lambda req: b"4242, 21 : USERID : UNIX : alice\r\n")
    got = ident.query(("127.0.0.1", 21), ("127.0.0.1", 4242), 3, port=d.port)
    assert got.ident == "alice"
    assert d.requests == [b"4242, 21\r\n"]


def test_no_identd_is_no_name_at_once():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]           # bound, never listening: refused
        start = time.monotonic()
        got = ident.query(("127.0.0.1", 21), ("127.0.0.1", 4242), 3, port=port)
    assert got.ident is None and "failed" in got.why
    assert time.monotonic() - start < 1


def test_silent_identd_costs_the_timeout_only(identd):
    d = identd(lambda req: None)
    start = time.monotonic()
    got = ident.query(("127.0.0.1", 21), ("127.0.0.1", 4242), 1, port=d.port)
    assert got.ident is None and "timed out" in got.why
    assert 0.9 < time.monotonic() - start < 2


def test_partial_line_before_the_timeout_counts_as_proftpd(identd):
    d = identd(lambda req: b"4242, 21 : USERID : UNIX : slowpoke")
    got = ident.query(("127.0.0.1", 21), ("127.0.0.1", 4242), 1, port=d.port)
    assert got.ident == "slowpoke"


def test_endless_answer_is_cut_at_255_bytes(identd):
    d = identd(lambda req: b"4242, 21 : USERID : UNIX : " + b"A" * 1_000_000)
    start = time.monotonic()
    got = ident.query(("127.0.0.1", 21), ("127.0.0.1", 4242), 3, port=d.port)
    assert got.ident == "A" * (255 - len(b"4242, 21 : USERID : UNIX : "))
    assert time.monotonic() - start < 1


def test_binary_flood_is_bounded_in_bytes(identd):
    d = identd(lambda req: b"\xff" * 200_000)
    start = time.monotonic()
    got = ident.query(("127.0.0.1", 21), ("127.0.0.1", 4242), 3, port=d.port)
    assert got.ident is None
    assert time.monotonic() - start < 2


def test_slow_identd_past_the_timeout(identd):
    d = identd(lambda req: b"4242, 21 : USERID : UNIX : late\r\n", delay=1.5)
    got = ident.query(("127.0.0.1", 21), ("127.0.0.1", 4242), 0.5, port=d.port)
    assert got.ident is None
