"""mod_qos on the real daemon: the DiffServ/TOS byte of the control and data connections, read from the kernel's
socket table with iproute2's `ss --tos` while an ftplib client holds them open."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from conftest import make_file, refused_config


def tos(filter_: str) -> list[str]:
    """The tos value of each established TCP socket `filter_` (an ss filter) selects ("0x0": ss shows none)."""
    out = subprocess.run(["ss", "-tnH", "--tos", "state", "established", filter_], capture_output=True, text=True,
                         check=True).stdout
    return [(re.findall(r"tos:(0x[0-9a-f]+)", line) or ["0x0"])[0] for line in out.splitlines()]


@pytest.mark.parametrize("passive", [True, False])
def test_control_and_data_connections_carry_the_bits(ftpd, passive):
    d = ftpd("DefaultRoot ~\nQoSOptions ctrlqos af11 dataqos cs1\n")
    make_file(d, "big.bin", b"x" * (8 << 20))
    ftp = d.login()
    assert tos(f"( sport = :{d.port} )") == ["0x28"]               # the server's end of the control connection
    ftp.set_pasv(passive)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    local = conn.getsockname()[1]
    assert tos(f"( dport = :{local} )") == ["0x20"]                # the server's end of the data connection
    conn.recv(1 << 16)
    conn.close()
    ftp.getmultiline()
    ftp.quit()


def test_without_qosoptions_nothing_is_marked(ftpd):
    d = ftpd("DefaultRoot ~\n")
    ftp = d.login()
    assert tos(f"( sport = :{d.port} )") == ["0x0"]
    ftp.quit()


def test_a_vhost_has_its_own(ftpd):
    d = ftpd("QoSOptions ctrlqos ef\n<VirtualHost 127.0.0.2>\nPort {port}\nQoSOptions ctrlqos cs5\n</VirtualHost>\n")
    clients = [socket.create_connection((host, d.port), timeout=10) for host in ("127.0.0.1", "127.0.0.2")]
    for sock in clients:
        assert sock.recv(512).startswith(b"220 ")
    assert tos(f"( src 127.0.0.1 and sport = :{d.port} )") == ["0xb8"]
    assert tos(f"( src 127.0.0.2 and sport = :{d.port} )") == ["0xa0"]
    for sock in clients:
        sock.close()


@pytest.mark.parametrize("line, message", [
    ("QoSOptions", "bad number of parameters"),
    ("QoSOptions ctrlqos", "bad number of parameters"),
    ("QoSOptions dataqos af99", "unknown dataqos parameter 'af99'"),
    ("QoSOptions ctrlqos EF tos x", "unknown QoS option: 'tos'"),
    ("<Anonymous /tmp>\nQoSOptions ctrlqos ef\n</Anonymous>", "t.conf:3:"),
])
def test_configuration_errors(tmp_path, line, message):
    assert message in refused_config(tmp_path, line)
