"""ftpquota, run as a command in a temp dir: tables it writes are those ProFTPD's Perl ftpquota writes, byte
for byte, and --show-records prints what the Perl tool prints, both ways round; bad input is one line and
exit 1, never a traceback."""
import fcntl
import os
import subprocess
import sys
import time

import pytest

from proftpy import quotatab
from proftpy.quotatab import ALL, CLASS, GROUP, HARD, SOFT, USER, Limit, Table, Tally

PERL = "/usr/sbin/ftpquota"


def run(tool, cwd, *args):
    if tool == "perl":      # a missing oracle fails the test: `make` installs proftpd-basic as root
        assert os.access(PERL, os.X_OK), f"ProFTPD's Perl ftpquota ({PERL}, package proftpd-basic) is not installed"
    command = [PERL] if tool == "perl" else [sys.executable, "-m", "proftpy.tools.ftpquota"]
    return subprocess.run(command + list(args), cwd=cwd, capture_output=True, timeout=60)


def ours(cwd, *args):
    return run("ours", cwd, *args)


def ok(tool, cwd, *args):
    done = run(tool, cwd, *args)
    assert done.returncode == 0, (tool, args, done.stdout, done.stderr)
    return done.stdout


def records(path, kind):
    table = Table.open(str(path), kind)
    try:
        return [record for _, record in table.records()]
    finally:
        table.close()


# Commands both tools take alike (the Perl tool has no --Bx/--Fx, and its --files-xfer takes no value).
LIMIT_COMMANDS = [
    ["--create-table", "--type=limit"],
    ["--add-record", "--type=limit", "--name=bob", "--quota-type=user", "--Bu=100", "--Bd", "3",
     "--units=Kb", "--Fu=3"],
    ["--add-record", "--type=limit", "--quota-type=all", "--bytes-xfer=5000000", "-P", "-L", "soft"],
    ["--add-record", "--type=limit", "-N", "staff", "-Q", "group", "--bytes-upload=2", "--units=giga",
     "--files-download=25", "--limit-type=hard"],
    ["--add-record", "--type=limit", "--name=web", "--quota-type=class", "--Fd=0", "--Bd=0"],
]
LIMIT_RECORDS = [
    Limit("bob", USER, False, HARD, 102400.0, 3072.0, -1.0, 3, 0, 0),
    Limit("", ALL, True, SOFT, -1.0, -1.0, 5000000.0, 0, 0, 0),
    Limit("staff", GROUP, False, HARD, 2 * 1024.0 ** 3, -1.0, -1.0, 0, 25, 0),
    Limit("web", CLASS, False, HARD, -1.0, 0.0, -1.0, 0, 0, 0),
]
TALLY_COMMANDS = [
    ["--create-table", "--type=tally", "--table-path=tally.tab"],
    ["--add-record", "--type=tally", "--table-path=tally.tab", "-Q", "user", "-N", "bob", "--Bu=12345",
     "--Bd=678", "--Fu=9", "--Fd=1"],
    ["--add-record", "--type=tally", "--table-path=tally.tab", "-Q", "group", "-N", "staff", "--Bu=3",
     "--units=Mb"],
    ["--add-record", "--type=tally", "--table-path=tally.tab", "-Q", "all", "--Fd=4"],
    ["--add-record", "--type=tally", "--table-path=tally.tab", "-Q", "class", "-N", "web", "--Bd=1"],
]
TALLY_RECORDS = [
    Tally("bob", USER, 12345.0, 678.0, 0.0, 9, 1, 0),
    Tally("staff", GROUP, 3 * 1024.0 ** 2, 0.0, 0.0, 0, 0, 0),
    Tally("", ALL, 0.0, 0.0, 0.0, 0, 4, 0),
    Tally("web", CLASS, 0.0, 1.0, 0.0, 0, 0, 0),
]
SHOW_VARIANTS = [[], ["--units=Kb"], ["--units=mega"], ["--units=Gb"], ["--units=B"]]


def fill(tool, cwd):
    for command in LIMIT_COMMANDS + TALLY_COMMANDS:
        ok(tool, cwd, *command)


def shows(tool, cwd, kind, path):
    return [ok(tool, cwd, "--show-records", f"--type={kind}", f"--table-path={path}", *units)
            for units in SHOW_VARIANTS]


def test_perl_tables_read_and_shown_alike(tmp_path):
    fill("perl", tmp_path)
    assert records(tmp_path / "ftpquota.limittab", "limit") == LIMIT_RECORDS
    assert records(tmp_path / "tally.tab", "tally") == TALLY_RECORDS
    for kind, path in (("limit", "ftpquota.limittab"), ("tally", "tally.tab")):
        assert shows("ours", tmp_path, kind, path) == shows("perl", tmp_path, kind, path)
    assert b"    Uploaded Kb:\t100.00\n" in ok("ours", tmp_path, "--show-records", "--type=limit", "--units=Kb")


def test_our_tables_are_the_perl_tools_byte_for_byte(tmp_path):
    (tmp_path / "perl").mkdir()
    (tmp_path / "ours").mkdir()
    fill("perl", tmp_path / "perl")
    fill("ours", tmp_path / "ours")
    for name in ("ftpquota.limittab", "tally.tab"):
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "perl" / name).read_bytes()
    for kind, path in (("limit", "ftpquota.limittab"), ("tally", "tally.tab")):
        assert shows("perl", tmp_path / "ours", kind, path) == shows("ours", tmp_path / "ours", kind, path)


EDITS = [
    ["--update-record", "--type=tally", "--table-path=tally.tab", "-Q", "user", "-N", "bob", "--Bd=100",
     "--Fd=1"],
    ["--update-record", "--type=tally", "--table-path=tally.tab", "-Q", "group", "-N", "staff"],   # daily reset
    ["--update-record", "--type=tally", "--table-path=tally.tab", "-Q", "all", "-N", "renamed", "--Bx=7"],
    ["--delete-record", "--type=tally", "--table-path=tally.tab", "-Q", "user", "-N", "bob"],
    ["--update-record", "--type=limit", "-Q", "user", "-N", "bob", "--Fx=2"],
    ["--delete-record", "--type=limit", "-Q", "class", "-N", "web"],
    ["--delete-record", "--type=limit", "-Q", "all"],
    ["--add-record", "--type=limit", "-Q", "all", "-N", "ignored", "--Bu=1"],
]


def test_update_delete_and_reset(tmp_path):
    fill("perl", tmp_path)
    for command in EDITS:
        ok("ours", tmp_path, *command)
    assert records(tmp_path / "tally.tab", "tally") == [
        Tally("staff", GROUP),                                  # reset to 0
        Tally("", ALL, bytes_xfer=7.0),                         # the name found is kept
        Tally("web", CLASS, 0.0, 1.0),
    ]
    assert records(tmp_path / "ftpquota.limittab", "limit") == [
        Limit("bob", USER, False, HARD, -1.0, -1.0, -1.0, 0, 0, 2),   # values not given: defaults
        Limit("staff", GROUP, False, HARD, 2 * 1024.0 ** 3, -1.0, -1.0, 0, 25, 0),
        Limit("ignored", ALL, False, HARD, 1.0, -1.0, -1.0, 0, 0, 0),
    ]
    for kind, path in (("limit", "ftpquota.limittab"), ("tally", "tally.tab")):
        assert shows("perl", tmp_path, kind, path) == shows("ours", tmp_path, kind, path)


def test_perl_edits_of_our_table_match_ours(tmp_path):
    """The same edits by either tool, on tables either tool filled, leave the same bytes."""
    (tmp_path / "perl").mkdir()
    (tmp_path / "ours").mkdir()
    fill("ours", tmp_path / "perl")
    fill("perl", tmp_path / "ours")
    perl_spelling = {"--Bx=7": "--bytes-xfer=7"}
    for command in EDITS:
        if "--Fx=2" not in command:                             # the Perl tool cannot set a files-xfer count
            ok("perl", tmp_path / "perl", *(perl_spelling.get(arg, arg) for arg in command))
            ok("ours", tmp_path / "ours", *command)
    for name in ("ftpquota.limittab", "tally.tab"):
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "perl" / name).read_bytes()


def test_units_and_notices(tmp_path):
    ok("ours", tmp_path, "--create-table", "--add-record", "--type=limit", "-Q", "user", "-N", "bob",
       "--Bu=1.5", "--Bd=2", "--units=Gb")
    done = ours(tmp_path, "--add-record", "--type=limit", "-Q", "user", "-N", "ann", "--Bu=0", "--Fd=-3")
    assert done.returncode == 0
    assert done.stderr == (b"ftpquota: notice: upload bytes value '0' means 'unlimited'\n"
                           b"ftpquota: notice: download files value '-3' means 'unlimited'\n")
    assert records(tmp_path / "ftpquota.limittab", "limit") == [
        Limit("bob", bytes_in=1.5 * 1024 ** 3, bytes_out=2.0 * 1024 ** 3, bytes_xfer=-1.0),
        Limit("ann", bytes_in=0.0, bytes_out=-1.0, bytes_xfer=-1.0)]
    shown = ok("ours", tmp_path, "--show-records", "--type=limit", "--units=Mb").decode()
    assert "    Uploaded Mb:\t1536.00\n    Downloaded Mb:\t2048.00\n    Transferred Mb:\tunlimited\n" in shown
    assert ok("ours", tmp_path, "--create-table", "--show-records", "--type=tally") == \
        b"ftpquota: (empty table)\n"


def test_show_waits_for_an_exclusive_flock(tmp_path):
    ok("ours", tmp_path, "--create-table", "--type=tally")
    with open(tmp_path / "ftpquota.tallytab", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        show = subprocess.Popen([sys.executable, "-m", "proftpy.tools.ftpquota", "--show-records",
                                 "--type=tally"], cwd=tmp_path, stdout=subprocess.PIPE)
        time.sleep(1.0)
        assert show.poll() is None, "showed the table while another ftpquota had it write-locked"
        fcntl.flock(held, fcntl.LOCK_UN)
        assert show.communicate(timeout=30)[0] == b"ftpquota: (empty table)\n"


@pytest.mark.parametrize("args,message", [
    ([], "missing required --type parameter"),
    (["--show-records", "--type=quota"], "unknown table type: quota"),
    (["--type=limit"], "no operations to perform, exiting"),
    (["--show-records", "--type=limit"], "unable to open ./ftpquota.limittab: No such file or directory"),
    (["--show-records", "--type=limit", "--table-path=ftpquota.tallytab"], "mismatched table header, exiting"),
    (["--show-records", "--type=tally", "--table-path=notatable"], "mismatched table header, exiting"),
    (["--show-records", "--type=tally", "--table-path=."], "unable to open .: Is a directory"),
    (["--create-table", "--type=tally"], "cannot create existing table"),
    (["--create-table", "--type=tally", "--table-path=no/such/dir"], "unable to create no/such/dir"),
    (["--add-record", "--type=tally", "-N", "bob"], "--add-record requires --quota-type option"),
    (["--delete-record", "--type=tally", "-Q", "user"], 'quota type "user" requires --name option'),
    (["--update-record", "--type=tally", "-Q", "users", "-N", "bob"], "unknown quota type: users"),
    (["--add-record", "--type=limit", "-Q", "all", "-L", "medium"], "unknown limit type: medium"),
    (["--show-records", "--type=tally", "--units=kb"], "unknown unit type: kb"),
    (["--add-record", "--type=tally", "-Q", "user", "-N", "x" * 80], "name is too long"),
    (["--add-record", "--type=tally", "-Q", "all", "--Bu=lots"], "invalid number value: 'lots'"),
    (["--add-record", "--type=tally", "-Q", "all", "--Bu=inf"], "invalid number value: 'inf'"),
    (["--add-record", "--type=tally", "-Q", "all", "--Fu=2.5"], "invalid count value: '2.5'"),
    (["--add-record", "--type=tally", "-Q", "all", "--Fu=4294967296"], "invalid count value"),
    (["--add-record", "--type=tally", "-Q", "all", "--Bt=1"], "unrecognized arguments: --Bt=1"),
    (["--add-record", "--show-records", "--type=tally"], "not allowed with argument"),
    (["--add-record", "--type=tally", "-Q", "user", "-N", "bob"], "matching record already exists"),
    (["--update-record", "--type=tally", "-Q", "class", "-N", "bob"], "unable to update record: no match found"),
    (["--delete-record", "--type=tally", "-Q", "group", "-N", "bob"], "unable to delete record: no match found"),
])
def test_errors_are_one_line_and_exit_1(tmp_path, args, message):
    ok("ours", tmp_path, "--create-table", "--add-record", "--type=tally", "-Q", "user", "-N", "bob")
    (tmp_path / "notatable").write_bytes(quotatab.MAGIC.pack(quotatab.LIMIT_MAGIC) + bytes(200))
    done = ours(tmp_path, *args)
    assert done.returncode == 1 and done.stdout == b""
    err = done.stderr.decode()
    assert err.startswith("ftpquota: ") and message in err and err.count("\n") == 1, err
    assert (tmp_path / "ftpquota.tallytab").stat().st_size == 4 + quotatab.TALLY.size   # untouched


def test_help_and_console_script(tmp_path):
    assert b"--show-records" in ok("ours", tmp_path, "--help")
    script = os.path.join(os.path.dirname(sys.executable), "ftpquota")
    assert os.path.exists(script), f"console script not installed next to {sys.executable} (make: pip install -e .)"
    done = subprocess.run([script, "--create-table", "--type=limit"], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0 and (tmp_path / "ftpquota.limittab").stat().st_size == 4
