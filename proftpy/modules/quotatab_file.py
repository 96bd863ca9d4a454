"""mod_quotatab_file: the `file:` source of QuotaLimitTable and QuotaTallyTable (proftpy/quotatab.py reads and
writes them; mod_quotatab uses them). A module of its own so that `<IfModule mod_quotatab_file.c>` holds."""

from __future__ import annotations

from ..module import Module

MODULE = Module("mod_quotatab_file.c")
