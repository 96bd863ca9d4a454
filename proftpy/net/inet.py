"""Socket creation and options for control listeners and data connections (SocketOptions, TCPNoDelay)."""

from __future__ import annotations

import socket

WILDCARD_V6, WILDCARD_V4 = "::", "0.0.0.0"
SELECT_LIMIT = 1024     # FD_SETSIZE: select() watches descriptors below it only


def apply_options(sock: socket.socket, options: dict, nodelay: bool | None = None) -> None:
    """Apply SocketOptions (rcvbuf, sndbuf, maxseg, keepalive) and TCPNoDelay to a TCP socket."""
    if "rcvbuf" in options:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, options["rcvbuf"])
    if "sndbuf" in options:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options["sndbuf"])
    if "maxseg" in options:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, options["maxseg"])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if options.get("keepalive", True) else 0)
    if nodelay is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if nodelay else 0)


def set_tos(sock: socket.socket, value: int) -> None:
    """IP_TOS (mod_qos's DiffServ bits) on an IPv4 connection, an IPv6 socket's IPv4-mapped peer included; IPv6
    peers are left alone (ProFTPD marks IPv4 sockets only)."""
    if value and (sock.family == socket.AF_INET or sock.getpeername()[0].startswith("::ffff:")):
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, value)


def bind_listener(host: str, port: int, backlog: int, options: dict | None = None) -> socket.socket:
    """A listening TCP socket; `::` accepts IPv4 too (dual stack)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if options and options.get("reuseport"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host == WILDCARD_V6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if options:
            for key, opt in (("rcvbuf", socket.SO_RCVBUF), ("sndbuf", socket.SO_SNDBUF)):
                if key in options:
                    sock.setsockopt(socket.SOL_SOCKET, opt, options[key])
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def resolve(name: str, use_ipv6: bool = True) -> list[str]:
    """IP addresses for an address or host name (used for DefaultAddress and <VirtualHost>)."""
    family = socket.AF_UNSPEC if use_ipv6 else socket.AF_INET
    try:
        infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    seen: list[str] = []
    for info in infos:
        addr = info[4][0]
        if addr not in seen:
            seen.append(addr)
    return seen


def low_fd(sock: socket.socket) -> socket.socket:
    """The socket on the lowest free descriptor when its own is past select()'s limit (a master with a thousand
    sessions holds a thousand channels, so what it accepts gets high numbers); the session waits with select()."""
    if sock.fileno() < SELECT_LIMIT:
        return sock
    low = sock.dup()
    sock.close()
    return low


def accept(listener: socket.socket) -> tuple[socket.socket, tuple]:
    """`listener.accept()` of a TCP listener without the standard library's conversion of the listener's family
    and type to enums (six Python calls per data connection): the family follows from the peer's address, and
    passing all three numbers spares the kernel the look-ups a bare `fileno=` would make. As the standard
    library's, the new socket has the default timeout and accept4(2)'s blocking descriptor."""
    fd, peer = listener._accept()
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    return socket.socket(family, socket.SOCK_STREAM, 0, fd), peer
