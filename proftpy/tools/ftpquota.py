"""ftpquota: create, edit and show mod_quotatab_file's limit and tally tables, like ProFTPD's Perl tool.

Same options, default tables (./ftpquota.limittab, ./ftpquota.tallytab), record defaults, whole-table
flock() (shared to show, exclusive to edit) and --show-records text, so wrapper and cron scripts keep
working. Differences, and why:
- a bad or unknown option is an error (the Perl tool warns and goes on without it, so `--Bd 2.5`
  silently meant "unlimited"); byte values may have a fraction (`--Bd=2.5 --units=Gb`);
- --Bx and --Fx work, and --files-xfer takes a count (the Perl tool does not know --Bx/--Fx, and its
  --files-xfer takes no value and sets 1); --bytes-transfer/--files-transfer are accepted as well;
- a negative file count is stored as 0, i.e. unlimited, as the notice says (Perl stores 2^32-N), and
  that notice is given for limit tables only (in a tally 0 is simply 0 used);
- option names are case-sensitive as documented (Getopt::Long also took --bu, --NAME);
- one operation at a time, though --create-table may come with another (the Perl tool runs the first
  of its fixed order and ignores the rest); "no operations to perform" exits 1;
- errors go to stderr as one line and exit 1; a cut-off last record is ignored, and overwritten by
  --add-record (the Perl tool appended after it, shifting every later record).
"""
from __future__ import annotations

import argparse
import fcntl
import math
import os
import sys
from typing import Iterable

from proftpy import quotatab
from proftpy.quotatab import ALL, BadTable, Limit, Record, Table, Tally

PROG = "ftpquota"
DEFAULT_TABLES = {"limit": "./ftpquota.limittab", "tally": "./ftpquota.tallytab"}
UNITS = {"B": ("bytes", 1), "byte": ("bytes", 1), "Kb": ("Kb", 1024), "kilo": ("Kb", 1024),
         "Mb": ("Mb", 1024 ** 2), "mega": ("Mb", 1024 ** 2), "Gb": ("Gb", 1024 ** 3),
         "giga": ("Gb", 1024 ** 3)}
NAME_MAX = 79                       # the Perl tool's limit (one less than the record has room for)
SEPARATOR = "-" * 43
# (record field, short option, long options, what the notice calls it, what --show-records calls it)
BYTE_OPTIONS = (("bytes_in", "Bu", ("bytes-upload",), "upload bytes", "Uploaded"),
                ("bytes_out", "Bd", ("bytes-download",), "download bytes", "Downloaded"),
                ("bytes_xfer", "Bx", ("bytes-xfer", "bytes-transfer"), "transfer bytes", "Transferred"))
FILE_OPTIONS = (("files_in", "Fu", ("files-upload",), "upload files", "Uploaded"),
                ("files_out", "Fd", ("files-download",), "download files", "Downloaded"),
                ("files_xfer", "Fx", ("files-xfer", "files-transfer"), "transfer files", "Transferred"))


class Fail(Exception):
    """One-line error for stderr; the exit status is 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):                 # argparse would print usage and exit 2
        raise Fail(f"{message} (see {PROG} --help)")


def number(text: str) -> float:
    """A byte value: any finite number (0 or less means unlimited in a limit table)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def count(text: str) -> int:
    """A file count; 0 or less is stored as 0, which means unlimited in a limit table."""
    value = int(text)
    if value > quotatab.UINT_MAX:
        raise ValueError(text)
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Create, edit or show the limit and tally tables of "
                                       "mod_quotatab_file (QuotaLimitTable/QuotaTallyTable file:...).")
    ops = p.add_mutually_exclusive_group()
    ops.add_argument("--add-record", dest="op", action="store_const", const="add",
                     help="add a record (needs --quota-type, and --name unless it is 'all')")
    ops.add_argument("--delete-record", dest="op", action="store_const", const="delete",
                     help="remove a record (same needs)")
    ops.add_argument("--show-records", dest="op", action="store_const", const="show",
                     help="print every record of the table")
    ops.add_argument("--update-record", dest="op", action="store_const", const="update",
                     help="replace a record's values; those not given get their default (a tally "
                          "record updated with no values is reset to 0)")
    p.add_argument("--create-table", action="store_true",
                   help="create a new, empty table (never replaces a file); may precede another operation")
    p.add_argument("--type", help="the table: 'limit' or 'tally' (required)")
    p.add_argument("--table-path", help=f"the table file (default {DEFAULT_TABLES['limit']} or "
                                        f"{DEFAULT_TABLES['tally']})")
    p.add_argument("-N", "--name", help="the user, group or class name (not needed for 'all')")
    p.add_argument("-Q", "--quota-type", help="'user', 'group', 'class' or 'all'")
    p.add_argument("-L", "--limit-type", help="'hard' (default) or 'soft'; limit tables only")
    p.add_argument("-P", "--per-session", action="store_true",
                   help="the limits apply to each session, not across sessions; limit tables only")
    for field, short, longs, what, _ in BYTE_OPTIONS:
        p.add_argument(f"--{short}", *(f"--{name}" for name in longs), dest=field, type=number,
                       metavar="N", help=f"{what} (limit default -1, unlimited; tally default 0)")
    for field, short, longs, what, _ in FILE_OPTIONS:
        p.add_argument(f"--{short}", *(f"--{name}" for name in longs), dest=field, type=count,
                       metavar="N", help=f"{what} (limit default 0, unlimited; tally default 0)")
    p.add_argument("--units", default="byte", help="byte values given and shown in 'B'/'byte' "
                   "(default), 'Kb'/'kilo', 'Mb'/'mega' or 'Gb'/'giga' (1024-based)")
    p.add_argument("--verbose", action="store_true", help="tell each step")
    return p


def say(message: str) -> None:
    print(f"{PROG}: {message}")


def pick(choices: dict, value: str, what: str):
    if value not in choices:
        raise Fail(f"unknown {what}: {value}")
    return choices[value]


# ---- the record the options describe -------------------------------------------------------------

def check_selection(opts) -> int | None:
    """The --quota-type asked for (None if not given), after the Perl tool's checks of it and --name."""
    if opts.name is not None and len(opts.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise Fail(f"name is too long, must be less than {NAME_MAX + 1} characters")
    if opts.quota_type is None:
        return None
    quota_type = pick(quotatab.TYPE_WORDS, opts.quota_type, "quota type")
    if quota_type != ALL and opts.name is None:
        raise Fail(f'quota type "{opts.quota_type}" requires --name option')
    return quota_type


def wanted_record(opts, kind: str, quota_type: int, limit_type: int) -> Record:
    """The record --add-record/--update-record writes: the values given, defaults for the others."""
    multiplier = UNITS[opts.units][1]
    values = {}
    for field, _, _, what, _ in BYTE_OPTIONS:
        value = getattr(opts, field)
        if value is None:
            value = -1.0 if kind == "limit" else 0.0
        elif value <= 0:
            notice(kind, what, value)
        else:
            value *= multiplier
        values[field] = float(value)
    for field, _, _, what, _ in FILE_OPTIONS:
        value = getattr(opts, field)
        if value is not None and value <= 0:
            notice(kind, what, value)
        values[field] = max(0, value or 0)
    name = opts.name or ""
    if kind == "limit":
        return Limit(name, quota_type, opts.per_session, limit_type, **values)
    return Tally(name, quota_type, **values)


def notice(kind: str, what: str, value: float) -> None:
    """A limit of 0 or less is probably a mistake for a real limit: say what it means (in a tally it
    is just 0 used)."""
    if kind == "limit":
        print(f"{PROG}: notice: {what} value '{value:g}' means 'unlimited'", file=sys.stderr)


# ---- the table -----------------------------------------------------------------------------------

def create_table(path: str, kind: str, verbose: bool) -> None:
    if verbose:
        say(f"creating new table '{path}'")
    try:
        quotatab.create(path, kind)
    except FileExistsError:
        raise Fail("cannot create existing table") from None
    except OSError as exc:
        raise Fail(f"unable to create {path}: {exc.strerror}") from None


def open_table(path: str, kind: str, writable: bool, verbose: bool) -> Table:
    """The table, flock()ed for the whole run as the Perl tool does (closing it unlocks)."""
    if verbose:
        say(f"opening table '{path}'")
    try:
        table = Table.open(path, kind, writable)
    except BadTable:
        raise Fail("mismatched table header, exiting") from None
    except OSError as exc:
        raise Fail(f"unable to open {path}: {exc.strerror}") from None
    if verbose:
        say(f"{'write' if writable else 'read'}-locking table '{path}'")
    fcntl.flock(table.fd, fcntl.LOCK_EX if writable else fcntl.LOCK_SH)
    return table


def find(table: Table, record: Record, action: str) -> tuple[int, Record]:
    found = table.find(record.name, record.quota_type)
    if found is None:
        raise Fail(f"unable to {action} record: no match found")
    return found


def add_record(table: Table, record: Record) -> None:
    if table.find(record.name, record.quota_type) is not None:
        raise Fail("unable to add record: matching record already exists")
    table.append(record)


def update_record(table: Table, record: Record) -> None:
    """Everything but the name is replaced (for 'all', the name of the record found is kept)."""
    offset, current = find(table, record, "update")
    record.name = current.name
    table.write(offset, record)


def delete_record(table: Table, record: Record) -> None:
    """The records after it move up one place and the file is cut to the records left."""
    offset, _ = find(table, record, "delete")
    size = os.fstat(table.fd).st_size
    end = size - (size - quotatab.MAGIC.size) % table.size
    after = offset + table.size
    os.pwrite(table.fd, os.pread(table.fd, end - after, after), offset)
    os.ftruncate(table.fd, end - table.size)


def show_records(records: Iterable[Record], units: str) -> str:
    """The Perl tool's layout, value for value: bytes with 2 decimals in --units, 'unlimited' for bytes
    of 0 or less (in tallies too) and for a limit's file count of 0."""
    label, divisor = UNITS[units]
    lines = []
    for record in records:
        is_limit = isinstance(record, Limit)
        lines += [SEPARATOR, f"  Name: {record.name}",
                  f"  Quota Type: {quotatab.TYPE_LABELS.get(record.quota_type, record.quota_type)}"]
        if is_limit:
            lines += [f"  Per Session: {record.per_session}",
                      f"  Limit Type: {quotatab.LIMIT_LABELS.get(record.limit_type, record.limit_type)}"]
        for field, _, _, _, verb in BYTE_OPTIONS:
            value = getattr(record, field)
            lines.append(f"    {verb} {label}:\t" + ("unlimited" if value <= 0 else f"{value / divisor:.2f}"))
        for field, _, _, _, verb in FILE_OPTIONS:
            value = getattr(record, field)
            lines.append(f"    {verb} files:\t" + ("unlimited" if is_limit and value == 0 else str(value)))
    return "\n".join(lines or [f"{PROG}: (empty table)"]) + "\n"


EDITS = {"add": add_record, "delete": delete_record, "update": update_record}


def run(opts) -> None:
    if opts.type is None:
        raise Fail("missing required --type parameter")
    kind = opts.type
    if kind not in DEFAULT_TABLES:
        raise Fail(f"unknown table type: {kind}")
    path = opts.table_path or DEFAULT_TABLES[kind]
    quota_type = check_selection(opts)
    limit_type = pick(quotatab.LIMIT_WORDS, opts.limit_type or "hard", "limit type")
    pick(UNITS, opts.units, "unit type")
    if not (opts.op or opts.create_table):
        raise Fail("no operations to perform, exiting")
    edit = EDITS.get(opts.op)
    if edit:
        if quota_type is None:
            raise Fail(f"--{opts.op}-record requires --quota-type option")
        record = wanted_record(opts, kind, quota_type, limit_type)

    if opts.create_table:
        create_table(path, kind, opts.verbose)
    if opts.op is None:
        return
    table = open_table(path, kind, edit is not None, opts.verbose)
    try:
        if edit:
            if opts.verbose:
                say(f"--{opts.op}-record in table '{path}'")
            edit(table, record)
        else:
            text = show_records((r for _, r in table.records()), opts.units)
    except OSError as exc:
        raise Fail(f"unable to {'write' if edit else 'read'} {path}: {exc.strerror}") from None
    finally:
        table.close()
    if opts.verbose:
        say(f"closed and unlocked table '{path}'")
    if not edit:
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))   # names as stored
        sys.stdout.buffer.flush()


def main(argv: list[str] | None = None) -> int:
    try:
        run(build_parser().parse_args(argv))
    except Fail as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:                  # `ftpquota --show-records | head`: the reader left
        sys.stdout = open(os.devnull, "w")
        return 0
    except SystemExit as exc:               # --help
        return exc.code if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
