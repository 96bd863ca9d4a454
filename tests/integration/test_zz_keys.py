import socket
from urllib.parse import unquote


def keys(m):
    with socket.create_connection(("127.0.0.1", m.port), timeout=2) as s:
        s.sendall(b"lru_crawler metadump all\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            c = s.recv(65536)
            if not c:
                break
            data += c
    out = []
    for line in data.decode().splitlines():
        f = dict(x.split("=", 1) for x in line.split() if "=" in x)
        if "key" in f:
            out.append((f["key"], f))
    return out
