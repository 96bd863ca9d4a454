"""The channel between the master and one session child: a SOCK_SEQPACKET socketpair made at spawn.

A message is one packet holding one JSON object (UTF-8, at most MAX_MESSAGE bytes) with a `"type"` string naming
it (`"<module>.<what>"`, e.g. `"mod_xfer.passive-reserve"`), plus up to MAX_FDS file descriptors passed with it
(SCM_RIGHTS), either way. A request that wants an answer carries an `"id"` (a number the sender picks); the answer
carries `"re"` with that number (`answer()`). Anything else is a notice. What each type means and holds is
documented by the module that handles it (docs/ARCHITECTURE.md lists them).

A packet that is not such an object, is larger than MAX_MESSAGE or brings more than MAX_FDS descriptors is refused:
`recv` closes the descriptors that came with it and raises BadMessage, which the receiver logs and goes on. An
empty packet reads as the end of the channel (a message is never empty). Received descriptors are close-on-exec
and belong to whoever handles the message: it closes what it does not keep.

Sockets only: nothing here knows FTP, the session or the master. The master uses its ends without blocking
(`timeout=0`); a session may wait (`request`).
"""

from __future__ import annotations

import array
import json
import os
import socket
import time
from typing import Any, Iterable

MAX_MESSAGE = 64 * 1024         # bytes of JSON in one message
MAX_FDS = 8                     # descriptors passed with one message
_ANCILLARY = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)

Message = dict[str, Any]


class ChannelError(Exception):
    """The channel could not carry a message."""


class ChannelClosed(ChannelError):
    """The other end is gone."""


class ChannelBusy(ChannelError):
    """The message could not be sent (or no answer came) within the time allowed."""


class BadMessage(ChannelError):
    """A message refused: not a JSON object with a "type", too large, too many descriptors."""


def encode(message: Message) -> bytes:
    """The packet for `message`; BadMessage when it is not one (see the module docstring)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadMessage('a message is a JSON object with a "type" string')
    try:
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as e:
        raise BadMessage(f"not JSON: {e}") from None
    if len(data) > MAX_MESSAGE:
        raise BadMessage(f"{len(data)} bytes, more than {MAX_MESSAGE}")
    return data


def decode(data: bytes) -> Message:
    """The message in a packet; BadMessage when it is not one."""
    if len(data) > MAX_MESSAGE:
        raise BadMessage(f"more than {MAX_MESSAGE} bytes")
    try:
        message = json.loads(data.decode())
    except (ValueError, RecursionError):            # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadMessage("not a JSON text") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadMessage('not a JSON object with a "type" string')
    return message


def answer(request: Message, message: Message) -> Message:
    """`message` as the answer to `request` (it carries the request's id as "re")."""
    return {**message, "re": request.get("id")}


def _descriptors(ancillary: list) -> list[int]:
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return list(fds)


def close_fds(fds: Iterable[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass            # already closed by a handler


class Channel:
    """One end of a channel. `pair()` makes both ends."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.queued: list[tuple[Message, list[int]]] = []   # notices that arrived while `request` waited
        self._next_id = 0

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        """(master's end, child's end)."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
        for _, fds in self.queued:
            close_fds(fds)
        self.queued.clear()

    def _timeout(self, seconds: float | None) -> None:
        if self.sock.gettimeout() != seconds:       # settimeout costs a system call
            self.sock.settimeout(seconds)

    # -- one message ---------------------------------------------------------------------------------------------
    def send(self, message: Message, fds: Iterable[int] = (), timeout: float | None = 0.0) -> None:
        """Send one message with `fds` (they stay open here: the receiver gets copies). `timeout=0` never blocks.
        Raises BadMessage (not sent), ChannelBusy (the peer does not read), ChannelClosed."""
        data = encode(message)
        fds = list(fds)
        if len(fds) > MAX_FDS:
            raise BadMessage(f"{len(fds)} descriptors, more than {MAX_FDS}")
        self._timeout(timeout)
        try:
            if fds:
                self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            else:
                self.sock.send(data)
        except (BlockingIOError, TimeoutError):
            raise ChannelBusy("the other end does not read") from None
        except (BrokenPipeError, ConnectionError) as e:
            raise ChannelClosed(e.strerror) from None

    def recv(self, timeout: float | None = 0.0) -> tuple[Message, list[int]] | None:
        """The next message and its descriptors, or None when none came within `timeout` (0: do not wait).
        Raises ChannelClosed at the end of the channel, BadMessage for a refused one (its descriptors closed)."""
        self._timeout(timeout)
        try:         # (socket.recv_fds would drop the flag that makes the descriptors close-on-exec)
            data, ancillary, flags, _ = self.sock.recvmsg(MAX_MESSAGE + 1, _ANCILLARY, socket.MSG_CMSG_CLOEXEC)
        except (BlockingIOError, TimeoutError):
            return None
        except ConnectionError as e:
            raise ChannelClosed(e.strerror) from None
        fds = _descriptors(ancillary)
        if not data and not fds:
            raise ChannelClosed("end of channel")
        try:
            if flags & socket.MSG_CTRUNC:
                raise BadMessage(f"more than {MAX_FDS} descriptors")
            if flags & socket.MSG_TRUNC:
                raise BadMessage(f"more than {MAX_MESSAGE} bytes")
            return decode(data), fds
        except BadMessage:
            close_fds(fds)
            raise

    # -- a question and its answer (the session's side) ----------------------------------------------------------
    def request(self, message: Message, fds: Iterable[int] = (), timeout: float = 5.0
                ) -> tuple[Message, list[int]]:
        """Send `message` with a fresh "id" and wait up to `timeout` seconds for its answer. Notices that arrive
        meanwhile are kept in `queued`; refused messages are skipped. Raises ChannelBusy when no answer came in
        time, ChannelClosed, BadMessage (the request itself)."""
        self._next_id += 1
        wanted = self._next_id
        deadline = time.monotonic() + timeout
        self.send({**message, "id": wanted}, fds, timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelBusy(f"no answer within {timeout:g} seconds")
            try:
                got = self.recv(left)
            except BadMessage:
                continue                            # the caller's answer may still come
            if got is None:
                continue
            if got[0].get("re") == wanted:
                return got
            if "re" in got[0]:                      # the late answer to an earlier request that gave up
                close_fds(got[1])
                continue
            self.queued.append(got)
