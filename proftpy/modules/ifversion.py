"""mod_ifversion: its one section, `<IfVersion>`, is a conditional the configuration parser reads itself (as
`<IfModule>`), so this module only puts its name in the registry (`<IfModule mod_ifversion.c>` holds, as on
Debian, whose modules.conf loads it). The comparison: proftpy/config/ifversion.py."""

from __future__ import annotations

from ..module import Module

MODULE = Module("mod_ifversion.c")
