"""FTP data transfers, for the modules above: the data connection that PASV/EPSV/PORT/EPRT prepared
(`connection`), the transfer that runs over it with its 150/226/426 replies while the control connection is watched
(`engine`, `watch`), and the strategies that move the bytes (`strategy`). net/ below knows sockets only; mod_xfer,
mod_ls and mod_facts decide what is transferred.

What modules use is named here: `transfer.state(session)`, `transfer.run(...)`, `transfer.send_lines(...)`.
"""

from .connection import foreign_allowed, listen_passive, passive_port, set_target
from .datastate import DataState, state
from .engine import Transfer, run, send_lines

__all__ = ["DataState", "Transfer", "foreign_allowed", "listen_passive", "passive_port", "run", "send_lines",
           "set_target", "state"]
