"""auth-otp: a new random secret for mod_auth_otp's table, base32-encoded, as ProFTPD's `auth-otp` prints it.

The verification code shown is HOTP's for counter 0 of that secret, the code mod_auth_otp accepts first for a new
HOTP row (ProFTPD's tool computes it over the base32 text instead of the secret, so its code is never accepted).
"""
from __future__ import annotations

import os
import sys

from proftpy.auth.otp import base32_decode, base32_encode, hotp
from proftpy.tools import common

SECRET_BYTES = 32
RULE = "-" * 49 + "\n"
USAGE = """usage: auth-otp [options]
  -h, --help
    display auth-otp usage
  -q, --quiet
    print only the secret
  -v, --verbose
    the full text (the default)
"""


def render(secret: str) -> str:
    return (f"{RULE}Your new secret key is: {secret}\n\n"
            "To add this key to your SQL table, you might use:\n\n"
            f"  INSERT INTO auth_otp (secret, counter) VALUES ('{secret}', 0);\n\n"
            f"Your verification code is: {hotp(base32_decode(secret), 0)}\n{RULE}")


def _main(argv: list[str] | None) -> int:
    opts, args = common.parse_options(argv, "hqv", ["help", "quiet", "verbose"])
    if args:
        raise common.ToolError(f"unexpected argument '{args[0]}' (use -h for help)")
    quiet = False
    for opt, _ in opts:
        if opt in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        quiet = opt in ("-q", "--quiet")        # the last of -q/-v wins, as in ProFTPD's tool
    secret = base32_encode(os.urandom(SECRET_BYTES))
    sys.stdout.write(f"{secret}\n" if quiet else render(secret))
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.run("auth-otp", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
