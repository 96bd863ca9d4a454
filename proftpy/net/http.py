"""A small HTTP/1.1 server for the metrics exporter: one process, one select loop, every client bounded.

Why not http.server: a scraper that connects and never sends, or sends a header without end, must cost a socket
for a few seconds, never a thread or the loop. Here each client has a deadline for its request (`head_timeout`)
and one for the answer (`write_timeout`), a request head is at most `max_head` bytes (431 past it), at most
`max_clients` are served at once (more are closed at accept), and every answer closes the connection. Nothing
here knows FTP or metrics: the `handler(request) -> Response` decides what is answered.
"""
from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, unquote, urlsplit

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]             # lower-case names
    peer: str


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, head_only: bool = False) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}",
                 f"Content-Type: {self.content_type}", f"Content-Length: {len(self.body)}", "Connection: close",
                 "Cache-Control: no-store"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else self.body)


def parse_head(raw: bytes, peer: str) -> Request | None:
    """The request line and headers (without the blank line); None when they are not HTTP."""
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    url = urlsplit(parts[1])
    return Request(parts[0].upper(), unquote(url.path) or "/", parse_qs(url.query), headers, peer)


@dataclass
class _Client:
    sock: socket.socket
    peer: str
    deadline: float
    inbuf: bytearray = field(default_factory=bytearray)
    out: memoryview | None = None       # what is left to send of the answer, once known (a view: no copies)


class HttpServer:
    """Serve `handler` on a listening socket until `stop()`; see the module docstring for the bounds."""

    def __init__(self, sock: socket.socket, handler: Callable[[Request], Response], *, max_head: int = 8192,
                 head_timeout: float = 5.0, write_timeout: float = 10.0, max_clients: int = 64,
                 on_error: Callable[[str], None] | None = None):
        self.sock = sock
        self.handler = handler
        self.max_head = max_head
        self.head_timeout = head_timeout
        self.write_timeout = write_timeout
        self.max_clients = max_clients
        self.on_error = on_error or (lambda message: None)
        self.clients: dict[int, _Client] = {}
        self.running = True
        self.sel = selectors.DefaultSelector()
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ)

    def stop(self) -> None:
        self.running = False

    def serve(self, tick: Callable[[], None] | None = None, tick_every: float = 1.0) -> None:
        """The loop; `tick()` runs about every `tick_every` seconds (the exporter's housekeeping)."""
        next_tick = time.monotonic() + tick_every
        while self.running:
            now = time.monotonic()
            wait = min([next_tick] + [c.deadline for c in self.clients.values()]) - now
            for key, events in self.sel.select(max(0.0, wait)):
                if key.fileobj is self.sock:
                    self._accept()
                else:
                    client = self.clients.get(key.fd)
                    if client is not None:
                        self._io(client, events)
            now = time.monotonic()
            for client in [c for c in self.clients.values() if c.deadline <= now]:
                self._close(client)             # too slow to ask, or to take the answer
            if now >= next_tick:
                next_tick = now + tick_every
                if tick is not None:
                    tick()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.on_error(f"accept failed: {e.strerror}")
                return
            if len(self.clients) >= self.max_clients:
                sock.close()
                continue
            sock.setblocking(False)
            client = _Client(sock, str(addr[0]), time.monotonic() + self.head_timeout)
            self.clients[sock.fileno()] = client
            self.sel.register(sock, selectors.EVENT_READ)

    def _io(self, client: _Client, events: int) -> None:
        try:
            if client.out is None and events & selectors.EVENT_READ:
                self._read(client)
            elif client.out is not None and events & selectors.EVENT_WRITE:
                self._write(client)
        except OSError:
            self._close(client)

    def _read(self, client: _Client) -> None:
        chunk = client.sock.recv(4096)
        if not chunk:
            self._close(client)
            return
        client.inbuf += chunk
        end = client.inbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(client.inbuf) > self.max_head:
                self._answer(client, Response(431, b"request head too large\n"))
            return
        if end > self.max_head:
            self._answer(client, Response(431, b"request head too large\n"))
            return
        request = parse_head(bytes(client.inbuf[:end]), client.peer)
        if request is None:
            self._answer(client, Response(400, b"bad request\n"))
            return
        try:
            response = self.handler(request)
        except Exception as e:                  # the page failed, the exporter goes on
            self.on_error(f"{request.method} {request.path}: {type(e).__name__}: {e}")
            response = Response(500, b"internal error\n")
        self._answer(client, response, head_only=request.method == "HEAD")

    def _answer(self, client: _Client, response: Response, head_only: bool = False) -> None:
        client.out = memoryview(response.encode(head_only))
        client.deadline = time.monotonic() + self.write_timeout
        self.sel.modify(client.sock, selectors.EVENT_WRITE)
        self._write(client)

    def _write(self, client: _Client) -> None:
        assert client.out is not None
        try:
            n = client.sock.send(client.out)
        except BlockingIOError:
            return
        client.out = client.out[n:]
        if not client.out:
            try:
                client.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass                            # the client left first: nothing more to say
            self._close(client)

    def _close(self, client: _Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        try:
            self.sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass                                # never registered (closed during accept)
        client.sock.close()
