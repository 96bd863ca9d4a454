"""proftpy: a ProFTPD-compatible FTP daemon written in Python."""

__version__ = "0.1.0"
# The ProFTPD release whose behaviour (directives, replies, tool formats) proftpy follows.
PROFTPD_COMPAT = "1.3.8"
