"""mod_dso (compiled into Debian's ProFTPD): its directives are accepted so that a proftpd.conf and Debian's
modules.conf read unchanged, and `<IfModule mod_dso.c>` holds as it does there. proftpy loads no shared objects:
its modules are built in and always there (`proftpy -l`); a LoadModule of a module it lacks, LoadFile and
ModuleOrder are reported by the parser (and `-t`) and otherwise ignored."""

from __future__ import annotations

from ..config.registry import SERVER, Directive, Merge
from ..config.types import Path, Str, Words
from ..module import Module

NAME = "mod_dso.c"

directives = (
    Directive("LoadModule", Str("mod_name.c"), SERVER, None, Merge.SERVER,
              "Accepted for compatibility: built-in modules are always loaded, others are reported and ignored.",
              repeat=True),
    Directive("ModulePath", Path(), SERVER, None, Merge.SERVER, "Accepted for compatibility; has no effect."),
    Directive("LoadFile", Path(), SERVER, None, Merge.SERVER,
              "Accepted for compatibility; the library is not loaded (reported by `-t`).", repeat=True),
    Directive("ModuleOrder", Words(), SERVER, None, Merge.SERVER,
              "Accepted for compatibility; proftpy's modules keep their order (reported by `-t`)."),
    Directive("ModuleControlsACLs", Words(), SERVER, None, Merge.SERVER,
              "Accepted for compatibility; has no effect.", repeat=True),
)

MODULE = Module(NAME, directives=directives)
