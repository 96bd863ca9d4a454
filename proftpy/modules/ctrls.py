"""mod_ctrls: the control socket `ftpdctl` talks to, inside the master's select loop.

The master accepts on a Unix socket (ControlsSocket), learns who the caller is from the kernel (SO_PEERCRED),
checks ControlsSocketACL, reads one request, checks the ACL directive of the action (ControlsACLs for this
module's own `help`/`lsctrl`, AdminControlsACLs for mod_ctrls_admin's, BanControlsACLs for mod_ban's...), runs
the handler and answers. Everything is non-blocking: a client that connects and says nothing is dropped after
ctrls.CLIENT_TIMEOUT seconds and at most ControlsMaxClients clients are served at once. The protocol and the ACL
rules are in proftpy/ctrls.py; actions are rows of the `ctrls_actions` tables of the modules.
"""
from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import socket
import stat
import time
from dataclasses import dataclass

from .. import ctrls, trace
from ..config.registry import SERVER, Directive, Merge
from ..config.types import Custom, Flag, Int, Path, Words
from ..ctrls import Action, ActionAcl, AclRule, CtrlsError, Peer, CtrlsRequest, Response
from ..module import MasterView, Module


NAME = "mod_ctrls.c"
log = logging.getLogger("proftpy")


def _owner(args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ValueError("expected owner-user owner-group")
    return args[0], args[1]


directives = (
    Directive("ControlsEngine", Flag, SERVER, True, Merge.SERVER, "Listen on the control socket for ftpdctl."),
    Directive("ControlsSocket", Path(), SERVER, ctrls.DEFAULT_SOCKET, Merge.SERVER,
              "Unix socket ftpdctl connects to."),
    Directive("ControlsSocketOwner", Custom(_owner, "user group"), SERVER, None, Merge.SERVER,
              "Owner and group of the control socket (default: the user running the master)."),
    Directive("ControlsSocketACL", Custom(AclRule.parse, "allow|deny user|group list"), SERVER, None,
              Merge.SERVER, "Who may connect to the control socket (default: everyone; actions have their own "
              "ACLs).", repeat=True),
    Directive("ControlsACLs", Custom(ActionAcl.parse, "actions|all allow|deny user|group list"), SERVER, None,
              Merge.SERVER, "Who may use mod_ctrls' actions (help, lsctrl); default: nobody.", repeat=True),
    Directive("ControlsMaxClients", Int(1), SERVER, 5, Merge.SERVER, "Control clients served at the same time."),
    Directive("ControlsLog", Path(none_ok=True), SERVER, None, Merge.SERVER, "File logging every control request."),
    Directive("ControlsInterval", Int(1), SERVER, 10, Merge.SERVER,
              "Accepted for compatibility: requests are handled as soon as they arrive."),
    Directive("ControlsAuthFreshness", Int(1), SERVER, 10, Merge.SERVER,
              "Accepted for compatibility: the kernel tells who the client is (SO_PEERCRED)."),
    Directive("ControlsOptions", Words(), SERVER, [], Merge.SERVER, "Accepted for compatibility; no effect."),
)


class Client:
    """One connected ftpdctl, until it has sent its request and got the answer."""

    def __init__(self, sock: socket.socket, peer: Peer):
        self.sock = sock
        self.peer = peer
        self.since = time.monotonic()
        self.buf = ctrls.LineBuffer()


class ControlServer:
    """The listening socket, the clients being served, and the action table."""

    def __init__(self, master: MasterView, path: str):
        self.master = master
        self.path = path
        self.sock: socket.socket | None = None
        self.ident: tuple[int, int] | None = None        # (dev, ino) of the socket file we created
        self.clients: dict[socket.socket, Client] = {}
        self.actions: dict[str, Action] = master.modules.actions

    # -- the listening socket ----------------------------------------------------------------------------------
    def open(self) -> None:
        """Bind the socket; refuse to take over one a live server is answering on, replace a stale one."""
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, 0o755, exist_ok=True)
        if os.stat(parent).st_mode & stat.S_IWOTH:
            raise CtrlsError(f"refusing to use world-writable directory {parent}")
        _remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o077)
            try:
                sock.bind(self.path)
            finally:
                os.umask(old)
            os.chmod(self.path, ctrls.SOCKET_MODE)
            owner = self.master.config.main.get("ControlsSocketOwner")
            if owner is not None:
                os.chown(self.path, _uid(owner[0]), _gid(owner[1]))
            sock.listen(16)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        st = os.stat(self.path)
        self.ident = (st.st_dev, st.st_ino)
        self.sock = sock
        self.master.watch(sock, self.accept)
        log.info("control socket listening on %s", self.path)

    def close(self) -> None:
        for client in list(self.clients.values()):
            self._drop(client)
        if self.sock is not None:
            self.master.unwatch(self.sock)
            self.sock.close()
            self.sock = None
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) == self.ident:
                    os.unlink(self.path)
            except OSError:
                pass            # gone already, or replaced by someone else's socket: leave it

    # -- clients -----------------------------------------------------------------------------------------------
    def accept(self) -> None:
        for _ in range(16):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.error("control socket accept failed: %s", e.strerror)
                return
            conn.setblocking(False)
            try:
                peer = Peer.of(conn)
            except OSError as e:
                log.error("control client: cannot read its credentials: %s", e.strerror)
                conn.close()
                continue
            if len(self.clients) >= self.master.config.main.get("ControlsMaxClients"):
                self._refuse(conn, peer, "too many control clients, try again later")
            else:
                self.clients[conn] = Client(conn, peer)
                self.master.watch(conn, lambda c=conn: self.readable(c))

    def _refuse(self, conn: socket.socket, peer: Peer, why: str) -> None:
        """Answer at once and close; what the client already sent is read first, so that closing does not
        reset the connection before it has read the answer."""
        log.info("control client %s refused: %s", peer.describe(), why)
        self._write_log(peer, [], why)
        try:
            conn.recv(ctrls.MAX_MESSAGE)
        except OSError:
            pass                # nothing sent yet
        _send(conn, Response.error(why))
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass                # the client is gone already
        conn.close()

    def readable(self, conn: socket.socket) -> None:
        client = self.clients.get(conn)
        if client is None:
            return
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        try:
            line = client.buf.feed(data)
            if line is None:
                return
            argv = ctrls.decode_request(line)
        except CtrlsError as e:
            self._answer(client, [], Response.error(str(e)))
            return
        if not ctrls.socket_allowed(_values(self.master, "ControlsSocketACL"), client.peer):
            log.info("control client %s refused by ControlsSocketACL", client.peer.describe())
            self._answer(client, argv, Response.error("access denied"))
            return
        self._answer(client, argv, self.handle(argv, client.peer))

    def handle(self, argv: list[str], peer: Peer) -> Response:
        """Find the action, check its engine and ACL, run it."""
        name = argv[0].lower()
        if trace.on: trace.msg("ctrls", 5, "request '%s' from %s", " ".join(argv), peer.describe())
        action = self.actions.get(name)
        if action is None:
            return Response.error(f"unsupported action: '{argv[0]}'")
        if action.engine and not engine_allows(self.master.config.main.get(action.engine), name):
            return Response.error(f"{name}: action disabled by {action.engine}")
        checked = argv[1].lower() if action.acl_by_arg and len(argv) > 1 else name
        if not ctrls.action_allowed(_values(self.master, action.acl), checked, peer):
            return Response.error("access denied")
        try:
            return ctrls.as_response(action.handler(self.master, CtrlsRequest(name, argv[1:], peer)))
        except CtrlsError as e:
            return Response.error(str(e))
        except Exception:
            log.exception("control action %s failed", name)
            return Response.error(f"{name}: internal error (see the SystemLog)")
        finally:
            if not action.read_only:        # idle children hold the master's state of before the action
                self.master.renew_idle()

    def _answer(self, client: Client, argv: list[str], response: Response) -> None:
        self._write_log(client.peer, argv, "ok" if response.status >= 0 else "; ".join(response.lines))
        _send(client.sock, response)
        self._drop(client)

    def _drop(self, client: Client) -> None:
        self.clients.pop(client.sock, None)
        self.master.unwatch(client.sock)
        client.sock.close()

    def expire(self) -> None:
        now = time.monotonic()
        for client in [c for c in self.clients.values() if now - c.since > ctrls.CLIENT_TIMEOUT]:
            log.info("control client %s sent no request in %d s, dropped", client.peer.describe(),
                     ctrls.CLIENT_TIMEOUT)
            self._drop(client)

    def _write_log(self, peer: Peer, argv: list[str], outcome: str) -> None:
        path = self.master.config.main.get("ControlsLog")
        if not path:
            return
        stamp = time.strftime("%b %d %H:%M:%S")
        line = f"{stamp} [{os.getpid()}] {peer.user} (uid {peer.uid}, pid {peer.pid}): " \
               f"'{' '.join(argv)}': {outcome}\n"
        try:
            with open(path, "a", encoding="utf-8", errors="replace") as f:
                f.write(line)
        except OSError as e:
            log.warning("ControlsLog %s: %s", path, e.strerror)


def _send(conn: socket.socket, response: Response) -> None:
    """Answers are small (far below a Unix socket's buffer): one send, a client that left is not an error."""
    try:
        conn.setblocking(True)
        conn.settimeout(1.0)
        conn.sendall(response.encode())
    except (OSError, CtrlsError):
        pass                    # ftpdctl gave up waiting; nothing left to tell it


def _remove_stale(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise CtrlsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except OSError as e:
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)             # left behind by a server that is gone
            return
        raise CtrlsError(f"{path}: {e.strerror}") from None
    finally:
        probe.close()
    raise CtrlsError(f"{path} is in use by another running server")


def _uid(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise CtrlsError(f"ControlsSocketOwner: no such user '{name}'") from None


def _gid(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise CtrlsError(f"ControlsSocketOwner: no such group '{name}'") from None


def _values(master: MasterView, directive: str) -> list:
    return [p.value for p in master.config.main.section.all(directive)]


def engine_allows(value, action: str) -> bool:
    """An engine directive is on, off, or a set of the actions that are on."""
    if isinstance(value, (set, frozenset)):
        return action in value
    return bool(value)


# -- master hooks ---------------------------------------------------------------------------------------------
@dataclass
class CtrlsState:
    server: ControlServer | None = None         # the listening control socket, when ControlsEngine is on


def _start(master: MasterView) -> None:
    main = master.config.main
    if not main.get("ControlsEngine"):
        return
    server = ControlServer(master, main.get("ControlsSocket"))
    try:
        server.open()
    except (OSError, CtrlsError) as e:
        log.error("control socket %s disabled: %s", server.path, getattr(e, "strerror", None) or e)
        return
    master.state.get(CtrlsState).server = server


def master_tick(master: MasterView) -> None:
    server = master.state.get(CtrlsState).server
    if server is not None:
        server.expire()


def master_reload(master: MasterView) -> None:
    """A new ControlsSocket or ControlsEngine setting takes effect at once; the action table is rebuilt."""
    st = master.state.get(CtrlsState)
    main = master.config.main
    if st.server is not None and main.get("ControlsEngine") and st.server.path == main.get("ControlsSocket"):
        return
    master_stop(master)
    _start(master)


def master_stop(master: MasterView) -> None:
    st = master.state.get(CtrlsState)
    server, st.server = st.server, None
    if server is not None:
        server.close()


# -- mod_ctrls' own actions -----------------------------------------------------------------------------------
def _help(master: MasterView, req: CtrlsRequest) -> list[str]:
    return [f"{a.name}: {a.help}" if a.help else a.name for a in sorted(master.modules.actions.values(),
                                                                        key=lambda a: a.name)]


def _lsctrl(master: MasterView, req: CtrlsRequest) -> list[str]:
    return [f"{a.name} ({a.module})" for a in sorted(master.modules.actions.values(), key=lambda a: a.name)]


MODULE = Module(
    NAME, directives=directives, master_init=_start, master_tick=master_tick, master_reload=master_reload,
    master_stop=master_stop,
    ctrls_actions=(Action("help", _help, acl="ControlsACLs", read_only=True,
                          help="list the actions and what they do"),
                   Action("lsctrl", _lsctrl, acl="ControlsACLs", read_only=True,
                          help="list the actions and the modules providing them")))
