"""SSH's connection layer, the server's side (RFC 4254): session channels, their windows and packet sizes, their
requests, and global requests.

Only `session` channels open, at most `max_channels` (SFTPMaxChannels) at once; of their requests only
`subsystem` for a name `subsystems` knows succeeds (mod_sftp: "sftp"), and `exec` for a command `commands`
knows (mod_sftp: scp); other commands, `shell`, `pty-req`, `x11-req`... are refused, `env`, `window-change`, `signal` and what is unknown are answered with a failure when a reply is
wanted (ProFTPD treats the last as ignored). Global requests are refused (`keepalive@openssh.com` too: a failure
is the answer OpenSSH expects).

Flow control bounds the memory a client can make the session hold: a channel's window towards the client is
`WINDOW` bytes (or SFTPClientMatch's channelWindowSize: `Connection.window`), and is opened again only as the
subsystem consumes what arrived (`Channel.consumed`); data beyond the window, or a data packet larger than the
packet size we announced (`Connection.packet`), ends the connection. What the subsystem
writes goes out within the client's window and packet size; the rest waits in `Channel.pending`, and the
subsystem is given no further input while anything waits (`Channel.ready`), so its output never piles up."""

from __future__ import annotations

from typing import Callable, Protocol

from .transport import PROTOCOL_ERROR, Disconnect, Note, Transport
from .wire import Reader, WireError, Writer

GLOBAL_REQUEST, REQUEST_SUCCESS, REQUEST_FAILURE = 80, 81, 82
CHANNEL_OPEN, OPEN_CONFIRMATION, OPEN_FAILURE, WINDOW_ADJUST = 90, 91, 92, 93
CHANNEL_DATA, EXTENDED_DATA, CHANNEL_EOF, CHANNEL_CLOSE = 94, 95, 96, 97
CHANNEL_REQUEST, CHANNEL_SUCCESS, CHANNEL_FAILURE = 98, 99, 100
ADMINISTRATIVELY_PROHIBITED, UNKNOWN_CHANNEL_TYPE, RESOURCE_SHORTAGE = 1, 3, 4

WINDOW = 2 * 1024 * 1024            # what a client may send ahead of what the subsystem consumed (OpenSSH's 2 MiB)
PACKET = 32768 + 1024               # the largest data packet we accept (SFTP's 32 KiB writes and their headers)
MAX_WINDOW = 0xFFFFFFFF


class Subsystem(Protocol):
    """What runs on a channel once its `subsystem` request succeeded."""

    resume: float | None                                 # a time.monotonic() before which `step` takes no
                                                         # request though one is complete (TransferRate), or None
    def data(self, chunk: bytes) -> None: ...             # bytes from the client, kept until `step`
    def step(self) -> bool: ...                          # handle one complete request; False: none is complete
    def eof(self) -> None: ...                           # the client sent EOF or closed the channel
    def close(self) -> None: ...                         # the channel is gone: release everything


class Channel:
    def __init__(self, conn: "Connection", local: int, remote: int, window: int, packet: int):
        self.conn = conn
        self.local, self.remote = local, remote
        self.remote_window = window             # bytes we may still send
        self.remote_packet = max(1, min(packet, 256 * 1024))
        self.local_window = conn.window         # bytes the client may still send
        self.unacked = 0                        # bytes consumed since the last WINDOW_ADJUST
        self.pending = bytearray()              # written, waiting for window
        self.subsystem: Subsystem | None = None
        self.got_eof = self.sent_eof = self.sent_close = self.got_close = False

    # -- out -------------------------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Subsystem output: sent within the client's window, the rest kept for the next WINDOW_ADJUST."""
        if self.sent_close or self.sent_eof:
            return
        if self.pending:
            self.pending += data
        else:
            rest = self._send(data)
            if rest:
                self.pending += rest

    def _send(self, data: bytes | bytearray) -> bytes:
        t = self.conn.transport
        view = memoryview(data)
        pos = 0
        while pos < len(view) and self.remote_window > 0:
            n = min(len(view) - pos, self.remote_window, self.remote_packet)
            t.send(Writer().byte(CHANNEL_DATA).u32(self.remote).string(bytes(view[pos:pos + n])).bytes())
            self.remote_window -= n
            pos += n
        return bytes(view[pos:])

    def flush(self) -> None:
        if self.pending and self.remote_window > 0:
            data = bytes(self.pending)
            self.pending.clear()
            rest = self._send(data)
            if rest:
                self.pending += rest

    @property
    def ready(self) -> bool:
        """The subsystem may take another request: nothing of its output waits for window."""
        return not self.pending

    # -- in --------------------------------------------------------------------------------------------------------
    def consumed(self, n: int) -> None:
        """The subsystem used `n` bytes of input: open the window again once half of it is used."""
        self.unacked += n
        if self.unacked >= self.conn.window // 2 and not self.got_close:
            self.conn.transport.send(Writer().byte(WINDOW_ADJUST).u32(self.remote).u32(self.unacked).bytes())
            self.local_window += self.unacked
            self.unacked = 0

    def finish(self, status: int = 0) -> None:
        """The subsystem is done: exit-status, EOF, CLOSE (as a server does when the program exits)."""
        t = self.conn.transport
        if not self.sent_close:
            if not self.sent_eof:
                t.send(Writer().byte(CHANNEL_REQUEST).u32(self.remote).string(b"exit-status").boolean(False)
                       .u32(status).bytes())
                t.send(Writer().byte(CHANNEL_EOF).u32(self.remote).bytes())
                self.sent_eof = True
            t.send(Writer().byte(CHANNEL_CLOSE).u32(self.remote).bytes())
            self.sent_close = True


class Connection:
    """The channels of one connection."""

    def __init__(self, transport: Transport, subsystems: Callable[[str, Channel], Subsystem | None],
                 log: Callable[[str], None], max_channels: int = 10,
                 refuse: Callable[[str, str], None] = lambda request, why: None,
                 commands: Callable[[str, Channel], Subsystem | None] | None = None,
                 idle: Callable[[], None] = lambda: None, answered: Callable[[], None] = lambda: None,
                 window: int = WINDOW, packet: int = PACKET):
        self.transport = transport
        self.window, self.packet = window, packet   # what each channel offers the client (SFTPClientMatch's)
        self.subsystems = subsystems            # name, channel -> a running subsystem, or None to refuse
        self.log = log
        self.max_channels = max_channels
        self.refuse = refuse                    # a channel request refused (exec, shell...): for the logs
        self.commands = commands                # exec's command, channel -> a running program, or None to refuse
        self.idle = idle                        # the last channel with a subsystem or program closed
        self.answered = answered                # the client answered a request of ours (SFTPClientAlive's)
        self.channels: dict[int, Channel] = {}
        self._next_id = 0
        self.opened = 0
        self.resume: float | None = None
        self.note: Note | None = transport.note     # the messages' ExtendedLog lines (ProFTPD's names)

    def work(self) -> bool:
        """Let every ready subsystem handle one buffered request; True when one did. A channel whose client sent
        EOF is finished once its requests are handled and its output is sent. `resume` is then the earliest time
        a subsystem holding a request back waits for (None: none does), for the connection's wait."""
        did = False
        self.resume = None
        if self.transport.holding:
            return False                        # a rekey of ours: replies would only pile up until it is over
        for chan in list(self.channels.values()):
            if chan.sent_close:
                continue
            sub = chan.subsystem
            if sub is not None and chan.ready and sub.step():
                did = True
            elif sub is not None and sub.resume is not None:
                if self.resume is None or sub.resume < self.resume:
                    self.resume = sub.resume
            elif chan.got_eof and not chan.pending:
                chan.finish()
        return did

    def handle(self, kind: int, payload: bytes) -> None:
        try:
            r = Reader(payload, 1)
            if kind == CHANNEL_DATA:
                self._data(r)
            elif kind == WINDOW_ADJUST:
                chan = self._channel(r.u32())
                add = r.u32()
                if chan.remote_window + add > MAX_WINDOW:
                    raise Disconnect(PROTOCOL_ERROR, "window too large",
                                     f"client sent a window adjustment past 2^32-1 for channel {chan.local}")
                chan.remote_window += add
                chan.flush()
                if self.note is not None:
                    self.note("CHANNEL_WINDOW_ADJUST", "")
            elif kind == CHANNEL_OPEN:
                name = self._open(r)
                if self.note is not None:
                    self.note("CHANNEL_OPEN", name)
            elif kind == CHANNEL_REQUEST:
                name = self._request(r)
                if self.note is not None:
                    self.note("CHANNEL_REQUEST", name)
            elif kind == CHANNEL_EOF:
                chan = self._channel(r.u32())
                chan.got_eof = True
                if chan.subsystem is not None:
                    chan.subsystem.eof()
                if self.note is not None:
                    self.note("CHANNEL_EOF", "")
            elif kind == CHANNEL_CLOSE:
                chan = self._channel(r.u32())
                chan.got_close = True
                if not chan.sent_close:
                    chan.pending.clear()
                    chan.sent_eof = True            # no EOF after the client's CLOSE: just our CLOSE
                    self.transport.send(Writer().byte(CHANNEL_CLOSE).u32(chan.remote).bytes())
                    chan.sent_close = True
                self._drop(chan)
                if self.note is not None:
                    self.note("CHANNEL_CLOSE", "")
            elif kind == EXTENDED_DATA:
                chan = self._channel(r.u32())
                r.u32()
                self._take(chan, len(r.string(self.packet)))
                chan.consumed(len(payload))      # stderr from a client: ignored, but window given back
            elif kind == GLOBAL_REQUEST:
                name = r.text(256)
                if r.boolean():
                    self.transport.send(bytes((REQUEST_FAILURE,)))
                self.log(f"global request '{name}' refused") if name != "keepalive@openssh.com" else None
            elif kind in (CHANNEL_SUCCESS, CHANNEL_FAILURE, REQUEST_SUCCESS, REQUEST_FAILURE):
                self.answered()                 # a keepalive's answer (else ignored: nothing else asks one)
            elif kind in (OPEN_CONFIRMATION, OPEN_FAILURE):
                raise Disconnect(PROTOCOL_ERROR, "unexpected channel message",
                                 f"client sent message type {kind}, but the server opens no channels")
            else:
                self.transport.send(Writer().byte(3).u32((self.transport.recv_seq - 1) & 0xFFFFFFFF).bytes())
                self.log(f"unsupported message type {kind} received, sent UNIMPLEMENTED")
        except WireError as e:
            raise Disconnect(PROTOCOL_ERROR, "bad message", f"unable to read channel message {kind}: {e}") from None

    def _channel(self, local: int) -> Channel:
        chan = self.channels.get(local)
        if chan is None:
            raise Disconnect(PROTOCOL_ERROR, "no such channel", f"no open channel for channel ID {local}")
        return chan

    def _take(self, chan: Channel, n: int) -> None:
        if chan.got_eof or chan.got_close:
            raise Disconnect(PROTOCOL_ERROR, "data after EOF", f"client sent data on channel {chan.local} after EOF")
        if n > chan.local_window:
            raise Disconnect(PROTOCOL_ERROR, "window exceeded",
                             f"client sent {n} bytes on channel {chan.local}, window is {chan.local_window}")
        chan.local_window -= n

    def _data(self, r: Reader) -> None:
        chan = self._channel(r.u32())
        data = r.string(self.packet)
        self._take(chan, len(data))
        if chan.subsystem is None:
            chan.consumed(len(data))            # no subsystem yet: nothing reads it
            return
        chan.subsystem.data(data)

    def _open(self, r: Reader) -> str:
        kind = r.text(64)
        remote, window, packet = r.u32(), r.u32(), r.u32()
        reason, text = 0, ""
        if kind != "session":
            reason, text = UNKNOWN_CHANNEL_TYPE, "Unsupported channel type"
            self.log(f"unsupported channel type '{kind}' requested, denying")
        elif len(self.channels) >= self.max_channels:
            reason, text = RESOURCE_SHORTAGE, "Maximum channels reached"
            self.log(f"maximum number of channels ({len(self.channels)}) open, denying request to open "
                     f"'{kind}' channel")
        if reason:
            self.transport.send(Writer().byte(OPEN_FAILURE).u32(remote).u32(reason).string(text).string(b"")
                                .bytes())
            return kind
        local = self._next_id
        self._next_id += 1
        chan = self.channels[local] = Channel(self, local, remote, window, packet)
        self.opened += 1
        self.transport.send(Writer().byte(OPEN_CONFIRMATION).u32(remote).u32(local).u32(chan.local_window)
                            .u32(self.packet).bytes())
        return kind

    def _request(self, r: Reader) -> str:
        chan = self._channel(r.u32())
        request = r.text(64)
        want_reply = r.boolean()
        ok = False
        if request == "subsystem":
            name = r.text(256)
            self.log(f"'subsystem' channel request for '{name}' subsystem")
            if chan.subsystem is None and not chan.sent_close:
                sub = self.subsystems(name, chan)
                if sub is not None:
                    chan.subsystem = sub
                    ok = True
                else:
                    self.log(f"subsystem '{name}' unsupported")
        elif request == "exec" and self.commands is not None:
            command = r.text(4096)
            self.log(f"'exec' channel request: command = '{command[:512]}'")
            sub = self.commands(command, chan) if chan.subsystem is None and not chan.sent_close else None
            if sub is not None:
                chan.subsystem = sub
                ok = True
            else:
                self.log(f"unsupported exec command '{command[:512]}'")
                self.refuse(request, command)
        elif request in ("exec", "shell", "pty-req", "x11-req", "auth-agent-req@openssh.com"):
            detail = r.text(1024) if request == "exec" else ""
            self.log(f"unsupported exec command '{detail}'" if request == "exec"
                     else f"unsupported '{request}' channel requested, ignoring")
            self.refuse(request, detail)
        elif request not in ("env", "window-change", "signal", "break", "keepalive@openssh.com"):
            self.log(f"unsupported '{request}' channel requested, ignoring")
        if want_reply:
            self.transport.send(Writer().byte(CHANNEL_SUCCESS if ok else CHANNEL_FAILURE).u32(chan.remote).bytes())
        return request

    def _drop(self, chan: Channel) -> None:
        self.channels.pop(chan.local, None)
        if chan.subsystem is not None:
            sub, chan.subsystem = chan.subsystem, None
            sub.close()
            if not any(c.subsystem is not None for c in self.channels.values()):
                self.idle()

    def keepalive(self, name: str) -> None:
        """A request wanting an answer, on an open channel (CHANNEL_REQUEST) or else a GLOBAL_REQUEST."""
        chan = next((c for c in self.channels.values() if not c.sent_close), None)
        w = Writer()
        if chan is not None:
            w.byte(CHANNEL_REQUEST).u32(chan.remote)
        else:
            w.byte(GLOBAL_REQUEST)
        self.transport.send(w.string(name).boolean(True).bytes())

    def close_all(self) -> None:
        for chan in list(self.channels.values()):
            self._drop(chan)
