"""What the master shares with session children beyond the configuration (scoreboard, shutdown file, TLS
contexts): set up once in the master, before any fork. Features add their setup to `install`."""

from __future__ import annotations


def install(master) -> None:
    """Called once after the listeners are bound and before the master loop starts."""
    master.services.setdefault("started", master.started)
