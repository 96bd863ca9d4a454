"""ftpasswd: create and edit AuthUserFile/AuthGroupFile files, like ProFTPD's Perl tool.

Same options, messages, default files (./ftpd.passwd, ./ftpd.group) and exit codes for wrapper
scripts (1 no such user/other error, 2 same as current password, 4 same as system password,
8 relative home).  Differences: SHA-512 is the default hash (ProFTPD's tool defaults to MD5), files
are replaced atomically and are never world-readable, even for a moment (the Perl tool briefly
chmods them 0644), and errors go to stderr as one line.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile

from proftpy.auth.crypt import CryptError, crypt_hash, crypt_verify

PROG = "ftpasswd"
VERSION = "1.3.0 (proftpy)"
DEFAULT_PASSWD_FILE = "./ftpd.passwd"
DEFAULT_GROUP_FILE = "./ftpd.group"
SHELLS_FILE = "/etc/shells"
FILE_MODE = 0o440


class Fail(Exception):
    """One-line error for stderr; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):                 # argparse would print usage and exit 2
        raise Fail(f"{message} (see {PROG} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, allow_abbrev=False,
                description="Create or update passwd(5)/group(5) files for proftpy's "
                            "AuthUserFile/AuthGroupFile, or print a password hash.")
    mode = p.add_argument_group("mode (exactly one)")
    mode.add_argument("--passwd", action="store_true", help="edit a passwd file (AuthUserFile)")
    mode.add_argument("--group", action="store_true", help="edit a group file (AuthGroupFile)")
    mode.add_argument("--hash", action="store_true", help="print a password hash only")
    p.add_argument("--file", help=f"file to edit (default {DEFAULT_PASSWD_FILE} or "
                                  f"{DEFAULT_GROUP_FILE})")
    p.add_argument("-F", "--force", action="store_true", help="start a new file, dropping "
                                                              "existing entries")
    p.add_argument("--name", help="user or group name")
    p.add_argument("--uid", type=int, help="numeric user id")
    p.add_argument("--gid", type=int, help="numeric group id (--passwd: defaults to --uid)")
    p.add_argument("--home", help="home directory (absolute path)")
    p.add_argument("--shell", help="login shell, e.g. /bin/false")
    p.add_argument("--gecos", default="", help="full name / description")
    p.add_argument("-m", "--member", action="append", default=[],
                   help="group member (repeat, or comma-separated)")
    p.add_argument("--stdin", action="store_true", help="read the password from stdin")
    algo = p.add_mutually_exclusive_group()
    for name in ("sha512", "sha256", "md5", "bcrypt", "yescrypt"):
        algo.add_argument(f"--{name}", dest="scheme", action="store_const", const=name,
                          help=f"hash with {name}" + (" (default)" if name == "sha512" else ""))
    p.add_argument("--delete-user", action="store_true", help="remove the user's entry")
    p.add_argument("--delete-group", action="store_true", help="remove the group's entry")
    p.add_argument("--change-password", action="store_true",
                   help="change only the password of an existing user")
    p.add_argument("--lock", action="store_true", help="lock the user (prefix '!' to the hash)")
    p.add_argument("--unlock", action="store_true", help="unlock the user (remove '!')")
    p.add_argument("--not-previous-password", action="store_true",
                   help="refuse a password equal to the current one")
    p.add_argument("--not-system-password", action="store_true",
                   help="refuse a password equal to the user's system password (needs root)")
    p.add_argument("--enable-group-passwd", action="store_true",
                   help="ask for a group password (usually a bad idea)")
    p.add_argument("--version", action="version", version=VERSION)
    return p


def say(message: str) -> None:
    print(f"{PROG}: {message}")


# ---- the file ------------------------------------------------------------------------------------

def read_entries(path: str, force: bool) -> list[str]:
    if force or not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return [line for line in f.read().splitlines() if line]
    except OSError as exc:
        raise Fail(f"unable to open {path}: {exc.strerror}") from None


def write_entries(path: str, lines: list[str]) -> None:
    """Replace ``path`` atomically with a mode-0440 file (keeping its owner when root)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise Fail(f"unable to stat {path}: {exc.strerror}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ftpasswd.", dir=directory)   # created 0600
    except OSError as exc:
        raise Fail(f"unable to write in {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), FILE_MODE)
            if old is not None and os.geteuid() == 0:
                os.fchown(f.fileno(), old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise Fail(f"unable to write {path}: {exc.strerror}") from None


def find(lines: list[str], name: str) -> int | None:
    for i, line in enumerate(lines):
        if line.split(":", 1)[0] == name:
            return i
    return None


def sort_by_id(lines: list[str]) -> list[str]:
    """Entries ordered by uid/gid (third field), as ProFTPD's tool writes them."""
    def key(line: str) -> int:
        fields = line.split(":")
        return int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
    return sorted(lines, key=key)


# ---- passwords -----------------------------------------------------------------------------------

def read_password(opts, prompt_twice: bool = True) -> str:
    if opts.stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    for _ in range(3):
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Re-type password: ") if prompt_twice else first
        except (EOFError, OSError) as exc:
            raise Fail(f"unable to read the password: {exc or 'end of input'} "
                       "(use --stdin in scripts)") from None
        if first == second:
            return first
        print("Passwords do not match.  Please try again.")
    raise Fail("passwords did not match")


def system_hash(name: str) -> str | None:
    from proftpy.auth.unix import UnixBackend
    acct = UnixBackend().getpwnam(name)
    return acct.passwd if acct else None


def new_hash(opts, current: str | None = None) -> str:
    password = read_password(opts)
    if current is not None and crypt_verify(password, current.lstrip("!")):
        if opts.change_password:
            raise Fail("password matches current password", 2)
        if opts.not_previous_password:
            raise Fail("password matches previous password", 4)
    if opts.not_system_password and opts.name:
        sys_hash = system_hash(opts.name)
        if sys_hash and crypt_verify(password, sys_hash):
            raise Fail("password matches system password", 4)
    try:
        return crypt_hash(password, opts.scheme or "sha512")
    except CryptError as exc:
        raise Fail(str(exc)) from None


def check_shell(shell: str) -> None:
    """Tell (not refuse) when the shell would fail RequireValidShell."""
    from proftpy.auth.unix import valid_shell
    if not os.path.exists(SHELLS_FILE):
        print(f"{PROG}: unable to open {SHELLS_FILE}; skipping shell check", file=sys.stderr)
        return
    if not valid_shell(shell, SHELLS_FILE):
        print(f"\n{PROG}: {shell} is not among the valid system shells.  Use of\n"
              f"{PROG}: \"RequireValidShell off\" may be required, and the PAM\n"
              f"{PROG}: module configuration may need to be adjusted.\n")


# ---- modes ---------------------------------------------------------------------------------------

def _entry_file(opts, default: str, mode: str) -> str:
    """The file --passwd/--group edits, after the checks both make on --file and --name."""
    path = opts.file or default
    if opts.file:
        say(f"using alternate file: {path}")
    if not opts.name:
        raise Fail(f"{mode}: missing required argument: --name")
    if ":" in opts.name or "\n" in opts.name:
        check_field("--name", opts.name)
    return path


def passwd_mode(opts) -> None:
    path = _entry_file(opts, DEFAULT_PASSWD_FILE, "--passwd")
    if opts.not_system_password and os.geteuid() != 0:
        raise Fail("must be user root for system password check")
    lines = read_entries(path, opts.force)
    index = find(lines, opts.name)
    edits = [opts.delete_user, opts.change_password, opts.lock, opts.unlock]
    if sum(map(bool, edits)) > 1:
        raise Fail("use only one of --delete-user, --change-password, --lock, --unlock")
    if any(edits):
        if index is None:
            raise Fail(f"no such user {opts.name} in {path}")
        fields = lines[index].split(":")
        if len(fields) != 7:
            raise Fail(f"{path}:{index + 1}: malformed entry for user {opts.name}")
        if opts.delete_user:
            del lines[index]
            write_entries(path, lines)
            say("entry deleted")
            return
        if opts.lock or opts.unlock:
            fields[1] = ("!" + fields[1].lstrip("!")) if opts.lock else fields[1].lstrip("!")
            lines[index] = ":".join(fields)
            write_entries(path, lines)
            say(f"entry {'locked' if opts.lock else 'unlocked'}")
            return
        say(f"updating passwd entry for user {opts.name}")
        fields[1] = new_hash(opts, current=fields[1])
        lines[index] = ":".join(fields)
        write_entries(path, lines)
        say("entry updated")
        return

    for option in ("home", "shell", "uid"):
        if getattr(opts, option) is None:
            raise Fail(f"--passwd: missing required argument: --{option}")
    home = opts.home.rstrip("/") or "/"
    if not home.startswith("/"):
        raise Fail("relative path given for home directory", 8)
    if opts.uid < 0 or (opts.gid is not None and opts.gid < 0):
        raise Fail("--uid/--gid must not be negative")
    gid = opts.gid
    if gid is None:
        gid = opts.uid
        print(f"{PROG}: --passwd: missing --gid argument: default gid set to uid",
              file=sys.stderr)
    for label, value in (("--gecos", opts.gecos), ("--home", home), ("--shell", opts.shell)):
        check_field(label, value)
    say(f"{'updating' if index is not None else 'creating'} passwd entry for user {opts.name}")
    check_shell(opts.shell)
    current = lines[index].split(":")[1] if index is not None and lines[index].count(":") == 6 \
        else None
    entry = ":".join([opts.name, new_hash(opts, current), str(opts.uid), str(gid), opts.gecos,
                      home, opts.shell])
    save_entry(path, lines, index, entry)


def check_field(label: str, value: str) -> None:
    """A value that would break the colon-separated line format is refused."""
    if ":" in value or "\n" in value:
        raise Fail(f"{label}: '{value}' must not contain ':' or a newline")


def save_entry(path: str, lines: list[str], index: int | None, entry: str) -> None:
    """Replace the entry at `index` (or add it), write the file sorted by id, and say which happened."""
    if index is None:
        lines.append(entry)
    else:
        lines[index] = entry
    write_entries(path, sort_by_id(lines))
    say("entry updated" if index is not None else "entry created")


def group_mode(opts) -> None:
    path = _entry_file(opts, DEFAULT_GROUP_FILE, "--group")
    lines = read_entries(path, opts.force)
    index = find(lines, opts.name)
    if opts.delete_group:
        if index is None:
            raise Fail(f"no such group {opts.name} in {path}")
        del lines[index]
        write_entries(path, lines)
        say("entry deleted")
        return
    if opts.gid is None:
        raise Fail("--group: missing required argument: --gid")
    if opts.gid < 0:
        raise Fail("--gid must not be negative")
    members = [m.strip() for arg in opts.member for m in arg.split(",") if m.strip()]
    for m in members:
        check_field("--member", m)
    say(f"{'updating' if index is not None else 'creating'} group entry for group {opts.name}")
    passwd = new_hash(opts) if opts.enable_group_passwd else "x"
    entry = f"{opts.name}:{passwd}:{opts.gid}:{','.join(members)}"
    save_entry(path, lines, index, entry)


def hash_mode(opts) -> None:
    say(new_hash(opts))


def main(argv: list[str] | None = None) -> int:
    try:
        opts = build_parser().parse_args(argv)
        modes = [m for m in ("passwd", "group", "hash") if getattr(opts, m)]
        if len(modes) > 1:
            raise Fail("please use *one*: --passwd, --group, or --hash")
        if not modes:
            raise Fail(f"missing required --passwd, --group or --hash (see {PROG} --help)")
        {"passwd": passwd_mode, "group": group_mode, "hash": hash_mode}[modes[0]](opts)
    except Fail as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1
    except SystemExit as exc:               # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
