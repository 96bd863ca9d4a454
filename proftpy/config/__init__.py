"""The configuration: lexer, parser, directive registry, effective lookup; and where it is by default."""

import os

DEFAULT_CONFIGS = ("/etc/proftpy/proftpy.conf", "/etc/proftpd/proftpd.conf")


def default_config() -> str:
    """Our own config when it exists, else an existing ProFTPD one (drop-in use)."""
    return next((p for p in DEFAULT_CONFIGS if os.path.exists(p)), DEFAULT_CONFIGS[0])
