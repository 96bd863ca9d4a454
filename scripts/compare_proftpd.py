#!/usr/bin/env python3
"""Differential conformance check: the same FTP command scripts against Debian's ProFTPD 1.3.8 and proftpy.

A developer tool, not part of `make test` (ProFTPD is not installed on fresh machines). It starts
`/usr/sbin/proftpd -n` (with the modules of PROFTPD_EXTRA loaded: Debian's, mod_ratio among them) and
`python -m proftpy -n` (run by the interpreter running this script, so a worktree's PYTHONPATH holds) on free
loopback ports with equivalent configurations (AuthUserFile users `alice` and `bob` chrooted to identical homes
under a temporary directory, the tree rebuilt before every scenario; a scenario may bring its own configuration
lines, files, links and background sessions), sends each scenario's command lines over raw sockets to both
(`A || B` sends B while A's transfer runs), opens data connections the way a client does, and prints the replies
side by side. Only what must differ is normalised: data ports, pids, times, sizes of listings, server name/version
strings. The differences kept on purpose are listed in EXPECTED/EXPECTED_ANYWHERE with their reason, the known ones
not fixed yet in PENDING.

Usage (as root, from the repository):
    .venv/bin/python scripts/compare_proftpd.py            # differing steps only
    .venv/bin/python scripts/compare_proftpd.py --all      # every step
    .venv/bin/python scripts/compare_proftpd.py -k rnfr    # scenarios whose name contains "rnfr"
    .venv/bin/python scripts/compare_proftpd.py --list     # scenario names
    .venv/bin/python scripts/compare_proftpd.py --expected # also the differences kept on purpose
Exit status: 0 when every reply matches or differs on purpose (EXPECTED) or knowingly (PENDING), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROFTPD = "/usr/sbin/proftpd"
USER, PASSWORD, UID = "alice", "alice-pw", 2300
USERS = {USER: (PASSWORD, UID, "ftpusers"), "bob": ("bob-pw", UID + 1, "others")}   # name: (password, uid, group)
GROUPS = {"ftpusers": (UID, [USER]), "others": (UID + 1, ["bob"]), "shared": (UID + 2, [USER, "bob"])}
FIXED_MTIME = 1577934245            # 2020-01-02 03:04:05 UTC, on every file of the tree
REPLY_TIMEOUT = 3.0
STALL_WAIT = 8.0                    # how long a `<<stall` step waits for the server to give up (TimeoutStalled 1)
EARLY_CLOSE_READ = 65536            # bytes a `<<close` step reads before closing the data connection
MANY_ENTRIES = 3000                 # entries of `many/`: a listing far larger than the sockets' buffers
SMALL_SENDS = "SocketOptions sndbuf 16384\n"   # data connections without megabytes of autotuned send buffer
FULL_DEVICE = "256k"                # size of the tmpfs of `full/` (xferlog-full-device)
EXTRA_WAIT = 0.03                   # how long to wait for a second, unrequested reply after each one
DATA_COMMANDS = {"LIST", "NLST", "MLSD", "RETR", "STOR", "STOU", "APPE"}
UPLOAD_COMMANDS = {"STOR", "STOU", "APPE"}
UPLOAD = b"uploaded line 1\r\nuploaded line 2\r\n"
BIG_UPLOAD = b"0123456789abcde\n" * (1 << 16)          # `STOR x <<big`: 1 MiB
LOGIN = ["USER " + USER, "PASS " + PASSWORD]

COMMON_CONF = """\
ServerName "compare"
ServerType standalone
DefaultServer on
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
UseReverseDNS off
PidFile {dir}/pid
ScoreboardFile {dir}/scoreboard
DelayTable {dir}/delay
SystemLog {dir}/system.log
TransferLog none
User nobody
Group nogroup
TimeoutIdle 30
MaxLoginAttempts 3
AuthOrder mod_auth_file.c
AuthUserFile {base}/ftpd.passwd
AuthGroupFile {base}/ftpd.group
RequireValidShell off
UseFtpUsers off
DefaultRoot ~
"""

PROFTPD_EXTRA = """\
ModulePath /usr/lib/proftpd
LoadModule mod_quotatab.c
LoadModule mod_quotatab_file.c
LoadModule mod_site_misc.c
LoadModule mod_copy.c
LoadModule mod_readme.c
LoadModule mod_load.c
LoadModule mod_deflate.c
LoadModule mod_digest.c
LoadModule mod_ifsession.c
LoadModule mod_facl.c
LoadModule mod_rewrite.c
LoadModule mod_ratio.c
LoadModule mod_shaper.c
DelayEngine off
WtmpLog off
"""

PROFTPY_EXTRA = """\
ControlsSocket {dir}/ctrls.sock
"""


# -- the scenarios ---------------------------------------------------------------------------------------------------
# Each scenario runs on a fresh connection against a freshly built tree (see build_tree). Steps are command lines
# sent as they are (trailing spaces kept). `{PORT}` / `{EPRT}` are replaced by the address of a listening socket of
# this script; a following data command is then served on it. After a 227/229 reply, the next data command connects
# to the announced port first, as clients do.
@dataclass
class Scenario:
    """Command lines sent on one connection. `conf` is added to both servers' configuration (scenarios with the
    same `conf` share a pair of servers); `tree(home, user)` adds to the tree build_tree made, for each user."""

    name: str
    steps: list[str]
    conf: str = ""
    tree: Callable[[Path], None] | None = None
    others: int = 0         # this many other sessions of alice's stay logged in while the scenario runs
    source: str = "127.0.0.1"           # the client's address
    identd: bytes | str | None = None   # an identd at source:113 while the scenario runs: the bytes it answers
                                        # (a scripted one), or OIDENTD (Debian's oidentd)
    greeting_wait: float = REPLY_TIMEOUT    # seconds the greeting may take


def scenarios() -> list[Scenario]:
    s: list[Scenario] = []
    add = lambda name, *steps: s.append(Scenario(name, list(steps)))   # noqa: E731
    add("greeting-quit", "QUIT")
    add("quit-arg", "QUIT now")
    add("unknown-command", "FOO", "FOO bar", "XYZZY", "foo")
    add("empty-and-spaces", "", "   ", "NOOP ", "NOOP  ", "SYST ")
    add("lowercase", "syst", "noop", "user " + USER, "pass " + PASSWORD, "pwd", "cwd dir", "xpwd", "cdup",
        "type i", "size file.txt", "quit")
    add("trailing-space", *LOGIN, "CWD dir ", "PWD", "CWD /", "SIZE file.txt ", "TYPE I ", "SYST  ", "NOOP ")
    add("noop-syst", "NOOP", "NOOP x", "SYST", "SYST x")
    add("feat", "FEAT", "FEAT x", *LOGIN, "FEAT")
    add("help", "HELP", "HELP USER", "HELP help", "HELP FOO", "HELP SITE", "HELP RETR", "HELP PASV", "HELP MLST",
        "HELP a b", *LOGIN, "HELP", "HELP stor")
    add("stat-prelogin", "STAT", "STAT /", "STAT file.txt")
    add("stat-login", *LOGIN, "STAT", "STAT /", "STAT file.txt", "STAT nothere", "STAT dir", "STAT -l dir",
        "STAT *.txt")

    # -- login
    add("user-noarg", "USER", "PASS", "USER " + USER, "PASS")
    add("pass-before-user", "PASS x", "USER " + USER, "PASS " + PASSWORD)
    add("login-ok", *LOGIN, "PWD", "USER bob", "PASS x", "USER " + USER, "PASS " + PASSWORD)
    add("login-bad", "USER " + USER, "PASS wrong", "PASS " + PASSWORD, "USER " + USER, "PASS " + PASSWORD)
    add("login-unknown-user", "USER nosuch", "PASS x", "USER " + USER, "PASS " + PASSWORD)
    add("login-max-attempts", "USER " + USER, "PASS a", "USER " + USER, "PASS b", "USER " + USER, "PASS c",
        "NOOP")
    add("acct-rein", "ACCT", "ACCT x", "REIN", "REIN x", *LOGIN, "ACCT x", "REIN", "PWD")
    add("prelogin-files", "PWD", "XPWD", "CWD dir", "XCWD dir", "CDUP", "XCUP", "MKD x", "XMKD x", "RMD dir",
        "XRMD dir", "DELE file.txt", "RNFR file.txt", "RNTO x", "SIZE file.txt", "MDTM file.txt",
        "MFMT 20200101000000 file.txt", "MFF modify=20200101000000; file.txt", "CSID x")
    add("prelogin-xfer", "TYPE I", "TYPE X", "MODE S", "STRU F", "ALLO 10", "PORT 127,0,0,1,1,2", "PASV",
        "EPRT |1|127.0.0.1|1000|", "EPSV", "EPSV ALL", "REST 0", "RETR file.txt", "STOR x", "STOU", "APPE x",
        "ABOR", "LIST", "NLST", "MLSD", "MLST", "SMNT x")
    add("prelogin-misc", "SITE HELP", "SITE CHMOD 644 file.txt", "OPTS UTF8 ON", "OPTS MLST type;",
        "HOST 127.0.0.1", "CLNT test client", "SITE FOO")
    # ProFTPD sends two replies (530, then 500) to these: each is the last step of its scenario
    add("prelogin-site-noarg", "SITE")
    add("prelogin-site-mkdir", "SITE MKDIR")

    # -- directories
    add("pwd", *LOGIN, "PWD", "PWD x", "XPWD", "XPWD x")
    add("cwd", *LOGIN, "CWD", "CWD dir", "PWD", "CWD nothere", "CWD /file.txt", "CWD ..", "PWD", "CWD ../..",
        "PWD", "XCWD dir", "XCWD", "XCWD nothere", "CWD link-dir", "PWD", "CWD locked", "CWD /", "CWD ~",
        "PWD", "CWD dir/sub dir", "PWD")
    add("cdup", *LOGIN, "CWD dir", "CDUP", "PWD", "CDUP", "PWD", "CWD dir", "XCUP", "PWD", "CDUP x", "XCUP x")
    add("mkd", *LOGIN, "MKD", "MKD newdir", "MKD newdir", "MKD file.txt", "MKD nothere/x", "MKD /dir/new2",
        "XMKD", "XMKD new3", "MKD locked/x", 'MKD quo"te', "MKD sp ace")
    add("rmd", *LOGIN, "RMD", "RMD empty", "RMD empty", "RMD dir", "RMD file.txt", "RMD nothere", "XRMD",
        "XMKD e2", "XRMD e2", "RMD locked")
    add("dele", *LOGIN, "DELE", "DELE file.txt", "DELE file.txt", "DELE dir", "DELE nothere", "DELE locked/ro.txt",
        "DELE link")

    # -- rename
    add("rnfr-rnto", *LOGIN, "RNFR file.txt", "RNTO moved.txt", "SIZE moved.txt", "RNFR moved.txt", "RNTO dir",
        "RNFR dir", "RNTO dir2", "CWD dir2")
    add("rnto-without-rnfr", *LOGIN, "RNTO x", "RNFR", "RNTO", "RNFR nothere", "RNTO x")
    add("rnfr-then-other", *LOGIN, "RNFR file.txt", "NOOP", "RNTO x.txt")
    add("rnto-existing", *LOGIN, "RNFR file.txt", "RNTO other.txt", "RNFR file.txt", "RNTO nothere/x",
        "RNFR file.txt", "RNTO locked/x")

    # -- file facts
    add("size", *LOGIN, "SIZE", "SIZE file.txt", "TYPE I", "SIZE file.txt", "SIZE nothere", "SIZE dir",
        "SIZE link", "SIZE empty.bin")
    add("mdtm", *LOGIN, "MDTM", "MDTM file.txt", "MDTM nothere", "MDTM dir", "MDTM link")
    add("mfmt", *LOGIN, "MFMT", "MFMT 20210203040506", "MFMT 20210203040506 file.txt", "MDTM file.txt",
        "MFMT 2021 file.txt", "MFMT abc file.txt", "MFMT 20210203040506 nothere", "MFMT 20210203040506 dir",
        "MFMT 20210203040506.123 file.txt", "MFMT 20211341000000 file.txt")
    add("mff", *LOGIN, "MFF", "MFF modify=20210203040506; file.txt", "MDTM file.txt", "MFF modify=20210203040506;",
        "MFF UNIX.mode=0600; file.txt", "MFF size=10; file.txt", "MFF modify=bad; file.txt",
        "MFF modify=20210203040506; nothere", "MFF junk file.txt")

    # -- OPTS, HOST, CLNT
    add("opts", *LOGIN, "OPTS", "OPTS UTF8", "OPTS UTF8 ON", "OPTS UTF8 OFF", "OPTS UTF8 maybe", "OPTS FOO",
        "OPTS MLST", "OPTS MLST type;size;", "OPTS MLST bogus;", "OPTS MLST type;perm;size;modify;UNIX.mode;",
        "OPTS utf8 on")
    add("host", "HOST", "HOST 127.0.0.1", "HOST [::1]", "HOST not..valid", "HOST unknown.example",
        "HOST localhost", *LOGIN, "HOST 127.0.0.1")
    add("host-twice", "HOST 127.0.0.1", "HOST 127.0.0.1")
    add("clnt", "CLNT", "CLNT myclient 1.0", *LOGIN, "CLNT other")

    # -- SITE
    add("site", *LOGIN, "SITE", "SITE HELP", "SITE HELP CHMOD", "SITE HELP FOO", "SITE FOO", "site help")
    add("site-chmod", *LOGIN, "SITE CHMOD", "SITE CHMOD 600", "SITE CHMOD 600 file.txt", "STAT file.txt",
        "SITE CHMOD xyz file.txt", "SITE CHMOD 600 nothere", "SITE CHMOD 700 dir", "SITE CHMOD 99999 file.txt",
        "SITE CHMOD 644 locked/ro.txt")
    add("site-chgrp", *LOGIN, "SITE CHGRP", "SITE CHGRP ftpusers", "SITE CHGRP ftpusers file.txt",
        "SITE CHGRP nosuchgroup file.txt", "SITE CHGRP ftpusers nothere", "SITE CHGRP 0 file.txt")
    add("site-utime", *LOGIN, "SITE UTIME", "SITE UTIME 202102030405 file.txt", "MDTM file.txt",
        "SITE UTIME 20210203040506 file.txt", "MDTM file.txt", "SITE UTIME bad file.txt",
        "SITE UTIME 202102030405 nothere", "SITE UTIME file.txt 20210203040506 20210203040506 20210203040506 UTC",
        "MDTM file.txt", "SITE UTIME 202102030405")
    add("site-misc", *LOGIN, "SITE MKDIR", "SITE MKDIR a/b/c", "CWD a/b/c", "CWD /", "SITE RMDIR a",
        "SITE RMDIR nothere", "SITE SYMLINK file.txt ln2", "SIZE ln2", "SITE SYMLINK", "SITE SYMLINK x")

    # -- transfer parameters
    add("type", *LOGIN, "TYPE", "TYPE A", "TYPE I", "TYPE L 8", "TYPE L 7", "TYPE L", "TYPE E", "TYPE X",
        "TYPE A N", "TYPE A T", "TYPE I x", "TYPE a", "type i")
    add("mode-stru-allo", *LOGIN, "MODE", "MODE S", "MODE s", "MODE B", "MODE Z", "MODE X", "STRU", "STRU F",
        "STRU R", "STRU P", "STRU X", "ALLO", "ALLO 100", "ALLO abc", "ALLO 100 R 10", "SMNT", "SMNT x")
    add("port", *LOGIN, "PORT", "PORT 1,2,3", "PORT 127,0,0,1,300,1", "PORT a,b,c,d,e,f", "PORT 127,0,0,1,0,0",
        "PORT 127,0,0,1,0,20", "PORT 10,0,0,1,100,1", "PORT 127,0,0,1,100,1,5", "PORT {PORT}", "NLST")
    add("eprt", *LOGIN, "EPRT", "EPRT |1|127.0.0.1|", "EPRT |3|127.0.0.1|2000|", "EPRT |2|::1|2000|",
        "EPRT |1|127.0.0.1|0|", "EPRT |1|127.0.0.1|70000|", "EPRT |1|1.2.3|2000|", "EPRT x127.0.0.1x2000x",
        "EPRT |1|10.0.0.1|2000|", "EPRT 127.0.0.1", "EPRT 1|127.0.0.1|5000", "EPRT |1|not-an-ip|5000|", "EPRT {EPRT}",
        "NLST")
    add("pasv", *LOGIN, "PASV", "PASV x", "PASV", "NLST", "EPSV", "NLST", "EPSV 1", "NLST", "EPSV 2", "EPSV 3",
        "EPSV x", "EPSV all")
    add("epsv-all", *LOGIN, "EPSV ALL", "PASV", "PORT {PORT}", "EPRT {EPRT}", "EPSV", "NLST", "EPSV ALL")
    add("rest", *LOGIN, "REST", "REST 5", "REST -1", "REST abc", "REST 0", "REST 99999999999999999999",
        "TYPE I", "REST 6", "PASV", "RETR file.txt", "REST 3", "TYPE A", "PASV", "RETR file.txt")
    add("rest-stor", *LOGIN, "TYPE I", "REST 5", "PASV", "STOR new.txt", "REST 5", "PASV", "APPE file.txt",
        "REST 0", "PASV", "STOR new2.txt", "SIZE new2.txt")

    add("rest-stor-new", *LOGIN, "TYPE I", "REST 5", "PASV", "STOR new.txt", "PASV", "STOR new.txt", "SIZE new.txt",
        "REST 3", "PASV", "STOR file.txt", "REST 100", "PASV", "STOR file.txt", "REST 5", "PASV", "APPE brand.txt",
        "REST 5", "PASV", "STOR dir", "REST 5", "PASV", "STOR nothere/x", "REST 5", "STOU")
    add("rest-order", *LOGIN, "TYPE A", "REST 99999999999999999999", "REST abc", "REST -1", "REST 0", "REST 5",
        "TYPE I", "REST 99999999999999999999", "REST 9223372036854775807", "REST 9223372036854775808",
        "REST 00012", "REST +5", "REST 5 6", "TYPE A", "REST 00", "REST 0x10")

    # -- transfers
    add("retr", *LOGIN, "RETR", "PASV", "RETR nothere", "PASV", "RETR dir", "PASV", "RETR file.txt", "TYPE I",
        "PASV", "RETR file.txt", "PASV", "RETR link", "PASV", "RETR locked/secret.txt", "RETR file.txt")
    add("stor", *LOGIN, "STOR", "TYPE I", "PASV", "STOR new.txt", "SIZE new.txt", "PASV", "STOR new.txt",
        "PASV", "STOR dir", "PASV", "STOR nothere/x", "PASV", "STOR locked/x", "TYPE A", "PASV", "STOR asc.txt",
        "TYPE I", "SIZE asc.txt")
    add("stou", *LOGIN, "PASV", "STOU", "PASV", "STOU x", "PASV", "STOU file.txt")
    add("appe", *LOGIN, "APPE", "TYPE I", "PASV", "APPE file.txt", "SIZE file.txt", "PASV", "APPE brand-new.txt",
        "PASV", "APPE dir", "PASV", "APPE nothere/x")
    add("stale-pasv", *LOGIN, "PASV", "RETR nothere", "RETR file.txt", "PASV", "RETR dir", "NLST", "PASV",
        "STOR nothere/x", "NLST", "PASV", "LIST nothere", "NLST", "PASV", "MLSD nothere", "NLST", "PASV",
        "MLSD file.txt", "NLST")
    add("stale-port", *LOGIN, "PORT {PORT}", "RETR nothere", "NLST", "EPRT {EPRT}", "RETR dir", "NLST",
        "PORT {PORT}", "STOR locked/x", "NLST", "PORT {PORT}", "NLST nothere", "NLST")
    add("stale-refused", *LOGIN, "PASV", "RETR", "NLST", "PASV", "REST 5", "RETR file.txt", "NLST", "TYPE I",
        "PASV", "REST 999", "RETR file.txt", "NLST", "PASV", "STOR file.txt", "NLST", "PASV", "APPE dir", "NLST")
    add("abor", *LOGIN, "ABOR", "ABOR x", "PASV", "ABOR", "NOOP")
    add("list", *LOGIN, "PASV", "LIST", "PASV", "LIST dir", "PASV", "LIST nothere", "PASV", "LIST file.txt",
        "PASV", "LIST -a", "PASV", "LIST -la dir", "PASV", "LIST *.txt", "PASV", "LIST empty", "LIST")
    add("nlst", *LOGIN, "PASV", "NLST", "PASV", "NLST dir", "PASV", "NLST nothere", "PASV", "NLST file.txt",
        "PASV", "NLST *.txt", "PASV", "NLST -a", "PASV", "NLST empty", "PASV", "NLST *.zzz")
    add("mlsd", *LOGIN, "PASV", "MLSD", "PASV", "MLSD dir", "PASV", "MLSD nothere", "PASV", "MLSD file.txt",
        "PASV", "MLSD empty", "MLSD")
    add("mlst", *LOGIN, "MLST", "MLST file.txt", "MLST dir", "MLST nothere", "MLST /", "MLST link",
        "OPTS MLST type;size;", "MLST file.txt", "MLST a b")
    add("no-argument", *LOGIN, "USER", "PASS", "ACCT", "CWD", "XCWD", "MKD", "XMKD", "RMD", "XRMD", "DELE",
        "RNFR", "RNTO", "SIZE", "MDTM", "MFMT", "MFF", "OPTS", "HOST", "CLNT", "SITE", "TYPE", "MODE", "STRU",
        "ALLO", "PORT", "EPRT", "REST", "RETR", "STOR", "APPE", "STAT", "HELP", "MLST", "CSID", "SMNT")
    add("extra-argument", *LOGIN, "NOOP x", "SYST x", "FEAT x", "PWD x", "XPWD x", "CDUP x", "XCUP x",
        "PASV x", "ABOR x", "REIN x", "STOU x y", "CSID x", "QUIT x")
    add("spacing", *LOGIN, "CWD  dir", "PWD", "CWD /", "MKD  lead", "MKD trail  ", "PASV", "NLST", " NOOP",
        "NOOP\t", "CWD\tdir", "SIZE  file.txt", "RNFR file.txt ", "RNTO sp ", "PASV", "NLST")
    add("host-forms", "HOST ::1", "HOST [127.0.0.1]", "HOST 127.0.0.1:21", "HOST a b", "HOST [::zz]", "HOST [::1")
    add("host-forms2", "HOST 10.1.2.3")
    add("host-forms3", "HOST localhost.localdomain")
    add("mlst-links", *LOGIN, "MLST link-dir", "MLST dir/", "MLST .", "MLST ..", "STAT link", "MDTM link-dir",
        "SIZE link-dir")
    add("site-help-forms", "SITE HELP UTIME", "SITE HELP HELP", "SITE HELP chgrp", "SITE HELP MKDIR x", "SITE CHMOD",
        "SITE UTIME", "SITE HELP SITE", "SITE HELP CHMOD x", *LOGIN, "SITE HELP UTIME", "SITE MKDIR", "SITE RMDIR", "SITE SYMLINK a",
        "SITE UTIME 1 2", "SITE UTIME 1 2 3", "SITE CHMOD 644", "SITE CHGRP x", "SITE chmod 644 file.txt",
        "SITE HELP SITE")
    add("type-forms", *LOGIN, "TYPE A N X", "TYPE I X Y", "TYPE L 8 X", "TYPE AB", "TYPE A B", "MODE S X",
        "STRU F X", "ALLO 1 2", "ALLO -5", "ALLO 10 x")
    add("prelogin-site-rmdir", "SITE RMDIR", "SITE SYMLINK", "SITE SYMLINK a", "SITE UTIME x", "SITE MKDIR x",
        "SITE CHGRP", "SITE FOO x")
    add("abuse", *LOGIN, "MKD " + "a" * 300, "CWD " + "b" * 600, "NOOP\x00x", "MKD caf\u00e9", "CWD caf\u00e9",
        "PWD", "CWD /", "MKD bad\udcff", "PASV", "NLST", "NOOP " + "x" * 5000, "NOOP", "\udcff\udcf4NOOP",
        "CWD ../../../../etc", "PWD", "RETR /etc/passwd", "SIZE ../../../etc/passwd")
    # Telnet: option requests are answered (IAC DONT/WONT x before the reply); IAC + another byte is kept
    add("telnet", "NO\udcff\udcfb\x01OP", "\udcff\udcfd\x03NOOP", "\udcff\udcfc\x05NOOP", "\udcff\udcfe\x06NOOP",
        "\udcff\udcf4\udcff\udcf2NOOP", *LOGIN, "MKD bad\udcff", "MKD a\udcff\udcf1b", "MKD c\udcff\udcffd",
        "MKD s\udcff\udcfa\x18\x01\udcff\udcf0e", "MKD w\udcff\udcfb", "PASV", "NLST")
    s += compat_scenarios()
    s += quota_scenarios()
    s += sql_quota_scenarios()
    s += sql_wrap_scenarios()
    s += copy_scenarios()
    s += facl_scenarios()
    s += hidden_scenarios()
    s += rewrite_scenarios()
    s += digest_scenarios()
    s += ratio_scenarios()
    s += sql_scenarios()
    s += sql_passwd_scenarios()
    s += sql_server_scenarios()
    s += otp_scenarios()
    s += shaper_scenarios()
    s += statcache_scenarios()
    s += ldap_scenarios()
    s += radius_scenarios()
    s += dnsbl_scenarios()
    s += stapling_scenarios()
    return s


def compat_scenarios() -> list[Scenario]:
    """Scenarios of the compatibility sweep (issue 17): configurations of their own, trees of their own."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None, others=0: s.append(  # noqa: E731
        Scenario(name, list(steps), conf, tree, others))

    # -- RANG (mod_xfer, draft-bryan-ftp-range)
    add("rang", "RANG 1 2", "HELP RANG", *LOGIN, "RANG", "RANG 1", "RANG 1 2 3", "RANG a b", "RANG -1 5", "RANG 5 2",
        "RANG 1 0", "RANG 0 4", "TYPE I", "RANG 0 4", "PASV", "RETR file.txt", "RANG 6 10", "PASV", "RETR file.txt",
        "RANG 3 3", "RANG 20 30", "PASV", "RETR file.txt", "RANG 0 99", "PASV", "RETR file.txt", "RANG 2 5",
        "REST 3", "PASV", "RETR file.txt", "REST 3", "RANG 0 1", "PASV", "RETR file.txt", "RANG 1 0", "PASV",
        "RETR file.txt", "RANG 0 3", "PASV", "STOR new.txt", "SIZE new.txt", "HELP RANG", "RANG 00 +5",
        "RANG 0 18446744073709551616")
    add("rang-uses", *LOGIN, "TYPE I", "RANG 0 4", "PASV", "RETR file.txt", "PASV", "RETR file.txt", "RANG 2 3",
        "PASV", "RETR nothere", "PASV", "RETR file.txt", "PASV", "RETR file.txt", "RANG 0 33", "PASV", "STOR n1.txt",
        "SIZE n1.txt", "RANG 0 99", "PASV", "STOR n2.txt", "SIZE n2.txt", "RANG 5 9", "PASV", "STOR n3.txt",
        "RANG 0 1", "PASV", "APPE file.txt", "RANG 0 1", "PASV", "STOU", "RANG 0 1", "PASV", "STOR file.txt",
        "RANG 2 3", "PASV", "RETR file.txt")
    # -- MaxRetrieveFileSize, MaxStoreFileSize (mod_xfer): file.txt has 24 bytes, an upload 34
    add("max-file-size", *LOGIN, "TYPE I", "PASV", "RETR file.txt", "PASV", "RETR other.txt", "PASV", "STOR n.txt",
        "SIZE n.txt", "PASV", "APPE file.txt", "SIZE file.txt", "PASV", "STOR x <<big", "SIZE x", "PASV", "STOU",
        "TYPE A", "PASV", "STOR a.txt", "CWD dir", "PASV", "STOR n.txt", "PASV", "RETR inner.txt",
        conf="MaxStoreFileSize 40 B\nMaxStoreFileSize 1 B user bob\nMaxRetrieveFileSize 23 B group !ftpusers\n"
             "MaxRetrieveFileSize 20 B user alice\nAllowStoreRestart on\nAllowOverwrite on\n<Directory ~/dir>\n"
             "MaxStoreFileSize 10 B\nMaxRetrieveFileSize \"*\"\n</Directory>\n")
    # -- AnonAllowRobots (off by default): an anonymous RETR of a missing /robots.txt
    anon = "<Anonymous {base}/home/bob>\nUser bob\nGroup others\nUserAlias anonymous bob\nRequireValidShell off\n"
    robots = ["USER anonymous", "PASS a@b", "TYPE I", "SIZE robots.txt", "PASV", "RETR robots.txt", "TYPE A", "PASV",
              "RETR robots.txt", "CWD dir", "PASV", "RETR robots.txt", "PASV", "RETR ../robots.txt"]
    add("anon-robots", *robots, conf=anon + "</Anonymous>\n")
    add("anon-robots-allowed", *robots, conf=anon + "AnonAllowRobots on\n</Anonymous>\n")
    # -- TransferOptions IgnoreASCII: TYPE A answered, files moved as they are, REST allowed
    add("transfer-options-ignore-ascii", *LOGIN, "TYPE A", "PASV", "STOR up.txt", "TYPE I", "SIZE up.txt", "TYPE A",
        "PASV", "RETR file.txt", "REST 5", "PASV", "RETR file.txt", "PASV", "LIST file.txt", "SIZE file.txt",
        conf="TransferOptions IgnoreASCII\nAllowOverwrite on\nAllowStoreRestart on\n")
    # -- AuthAliasOnly, in the server and in an <Anonymous> (where it refuses every other name too)
    add("auth-alias-only-server", "USER alice", "PASS alice-pw", "USER al", "PASS alice-pw", "PWD",
        conf="UserAlias al alice\nAuthAliasOnly on\n")
    anon_bob = "<Anonymous {base}/home/bob>\nUser bob\nGroup others\nUserAlias anonymous bob\nUserAlias guest bob\n"
    add("auth-alias-only-anon", "USER bob", "PASS bob-pw", "USER alice", "PASS alice-pw", "USER anonymous", "PASS x@y",
        "PWD", conf=anon_bob + "RequireValidShell off\nAuthAliasOnly on\n</Anonymous>\n")
    add("auth-alias-only-anon-password", "USER guest", "PASS bob-pw", "PWD",
        conf=anon_bob + "RequireValidShell off\nAnonRequirePassword on\nAuthAliasOnly on\n</Anonymous>\n")
    # -- UserPassword (server, <Anonymous>), AuthUsingAlias
    from proftpy.auth.crypt import crypt_hash
    other = crypt_hash("other-pw")
    add("user-again-after-login", *LOGIN, "USER alice", "USER Alice", "USER bob", "USER alice ", "PASS alice-pw",
        "USER", "PWD")
    add("user-password", "USER alice", "PASS alice-pw", "USER alice", "PASS other-pw", "PWD", "QUIT",
        conf=f"UserPassword alice {other}\nUserPassword nosuchuser {other}\n")
    add("user-password-unknown-user", "USER nosuchuser", "PASS other-pw", conf=f"UserPassword nosuchuser {other}\n")
    add("user-password-anon", "USER anonymous", "PASS bob-pw", "USER anonymous", "PASS other-pw", "PWD",
        conf=anon_bob + f"RequireValidShell off\nAnonRequirePassword on\nUserPassword bob {other}\n</Anonymous>\n")
    for using in ("on", "off"):
        add(f"auth-using-alias-{using}", "USER alice", "PASS bob-pw", "USER alice", "PASS alice-pw", "PWD",
            conf=anon_bob + f"UserAlias alice bob\nRequireValidShell off\nAnonRequirePassword on\n"
                            f"AuthUsingAlias {using}\n</Anonymous>\n")
    # -- UserDirRoot: an alias's login confined to its own subdirectory of the <Anonymous> directory
    def alias_dirs(home: Path) -> None:
        if home.name == "bob":
            (home / "alice").mkdir()
            (home / "alice" / "mine.txt").write_text("alice's\n")
    for dirroot in ("on", "off"):
        add(f"user-dir-root-{dirroot}", "USER alice", "PASS a@b", "PWD", "PASV", "NLST", "CWD ..", "PWD",
            conf=anon_bob + f"UserAlias alice bob\nRequireValidShell off\nUserDirRoot {dirroot}\n</Anonymous>\n",
            tree=alias_dirs)
    add("user-dir-root-own-name", "USER bob", "PASS a@b", "PWD", "PASV", "NLST",
        conf=anon_bob + "UserAlias alice bob\nRequireValidShell off\nUserDirRoot on\n</Anonymous>\n", tree=alias_dirs)
    # -- SetEnv, UnsetEnv: what %{env:...} shows
    def env_message(home: Path) -> None:
        (home.parent.parent / "env.msg").write_text("%{env:PROFTPY_TEST}|%{env:PATH}|%{env:TZ}|%{env:GONE}\n")
    add("set-env", *LOGIN, conf="SetEnv PROFTPY_TEST \"two words\"\nUnsetEnv PATH\nSetEnv TZ UTC\n"
                                "DisplayConnect {base}/env.msg\nDisplayLogin {base}/env.msg\n", tree=env_message)
    # -- ListStyle Windows (mod_ls, 1.3.8)
    add("list-style-windows", *LOGIN, "PASV", "LIST", "PASV", "LIST -a", "PASV", "LIST -1", "PASV", "LIST dir",
        "PASV", "LIST file.txt", "PASV", "LIST -R", "PASV", "NLST", "PASV", "LIST link-dir", "STAT .", "STAT file.txt",
        "PASV", "LIST .hidden", conf="ListStyle Windows\n",
        tree=lambda home: (home / ".hidden").write_text("dot\n"))
    # -- GroupOwner: a group alice is in (shared), one she is not in (others)
    for group in ("shared", "others"):
        add(f"group-owner-{group}", *LOGIN, "TYPE I", "PASV", "STOR new.txt", "MKD newdir", "PASV", "STOR file.txt",
            "SITE MKDIR a/b", conf=f"<Directory ~>\nGroupOwner {group}\n</Directory>\nAllowOverwrite on\n")
    # -- UserOwner: bob gets what alice makes or overwrites (STOR, APPE, MKD; not SITE MKDIR or SITE CPTO); with it
    # GroupOwner may name any group; a user that does not exist; RootRevoke on (no root to give files away);
    # in <Anonymous> (bob's logins own their uploads as alice)
    made = ("TYPE I", "PASV", "STOR new.txt", "MKD newdir", "PASV", "STOR file.txt", "PASV", "APPE other.txt",
            "SITE MKDIR a/b", "SITE CPFR file.txt", "SITE CPTO copy.txt", "PASV", "LIST", "PASV", "LIST a")
    for name, conf in (("bob", "UserOwner bob\n"), ("bob-others", "UserOwner bob\nGroupOwner others\n"),
                       ("nosuch", "UserOwner nosuch\n"), ("tilde", "UserOwner ~\n")):
        add(f"userowner-{name}", *LOGIN, *made, conf=f"<Directory ~>\n{conf}</Directory>\nAllowOverwrite on\n")
    # a UserOwner elsewhere keeps ProFTPD's root (proftpy's CAP_CHOWN); GroupOwner alone then names a group alice
    # is not in: ProFTPD gives it (root), proftpy keeps its documented rule (EXPECTED)
    add("userowner-elsewhere-groupowner", *LOGIN, "TYPE I", "PASV", "STOR new.txt", "MKD newdir", "PASV", "LIST",
        conf="<Directory ~/elsewhere>\nUserOwner bob\n</Directory>\n<Directory ~>\nGroupOwner others\n</Directory>\n")
    add("userowner-revoked", *LOGIN, *made,
        conf="<Directory ~>\nUserOwner bob\n</Directory>\nAllowOverwrite on\nRootRevoke on\n")
    add("userowner-anon", "USER anonymous", "PASS x@y", *made,
        conf=anon_bob + "RequireValidShell off\nUserOwner alice\n<Limit WRITE>\nAllowAll\n</Limit>\n"
                        "AllowOverwrite on\n</Anonymous>\n")
    # -- DisplayFileTransfer (the file is uploaded first), StoreUniquePrefix
    add("display-file-transfer", *LOGIN, "TYPE I", "PASV", "STOR xfer.msg", "PASV", "RETR file.txt", "PASV", "NLST",
        "CWD dir", "PASV", "RETR inner.txt", conf="DisplayFileTransfer xfer.msg\nAllowOverwrite on\n")
    add("store-unique-prefix", *LOGIN, "TYPE I", "PASV", "STOU", conf="StoreUniquePrefix up-\nAllowOverwrite on\n")
    # -- HiddenStores through a link: the target gets the upload, the link stays
    add("hidden-stores-link", *LOGIN, "TYPE I", "PASV", "STOR link", "SIZE link", "SIZE file.txt", "PASV",
        "STOR link-dir/new.txt", "SIZE dir/new.txt", conf="HiddenStores on\nAllowOverwrite on\n")
    # -- mod_lang: LANG before login (after it ProFTPD 1.3.8 answers 500 to every LANG: docs/commands.md),
    # LangEngine off, OPTS UTF8 under UseEncoding (the conversion itself: tests/integration/test_lang.py)
    add("lang", "LANG", "LANG fr", "LANG C.UTF-8", "LANG C", "LANG a b", "LANG", "FEAT")
    add("lang-engine-off", "FEAT", "LANG", *LOGIN, "LANG fr", "OPTS UTF8 ON", "OPTS UTF8 OFF", conf="LangEngine off\n")
    utf8 = ["OPTS UTF8 ON", "OPTS UTF8 OFF", "OPTS UTF8 ON", "OPTS UTF8", "OPTS UTF8 maybe"]
    add("use-encoding-off", *LOGIN, *utf8, conf="UseEncoding off\n")
    add("use-encoding-strict", *LOGIN, *utf8, conf="UseEncoding UTF-8 CP1251 strict\n")
    add("use-encoding-prefer-server", *LOGIN, *utf8,
        conf="UseEncoding UTF-8 CP1251\nLangOptions PreferServerEncoding RequireValidEncoding\n")
    add("use-encoding", *LOGIN, *utf8, "PWD", "MKD plain", conf="UseEncoding UTF-8 CP1251\n")
    # -- FactsAdvertise, FactsDefault (mod_facts); FEAT's MLST line follows OPTS MLST
    facts = ["MLST file.txt", "PASV", "MLSD dir", "MFMT 20200102030405 file.txt"]
    add("facts-feat-follows-opts", *LOGIN, "FEAT", "OPTS MLST type;size;", "FEAT", "OPTS MLST", "FEAT", *facts)
    add("facts-default", *LOGIN, "FEAT", *facts, "OPTS MLST modify;", "FEAT", *facts,
        conf="FactsDefault Size unix.MODE modify\n")
    add("facts-advertise-off", *LOGIN, "FEAT", *facts, conf="FactsAdvertise off\n")

    every = ["NOOP", "NOOP x", "HELP", "HELP USER", "SYST", "FEAT", "OPTS UTF8 ON", "OPTS MLST type;", "HOST 127.0.0.1",
             "CLNT x", "CSID name=x", "TYPE I", "STRU F", "MODE S", "ALLO 10", "SMNT x", "REST 0", "RANG 0 1", "ABOR",
             "STAT", "STAT file.txt", "PWD", "XPWD", "CWD dir", "XCWD dir", "CDUP", "XCUP", "MKD new", "XMKD new2",
             "RMD empty", "XRMD dir/sub dir", "DELE other.txt", "MDTM file.txt", "SIZE file.txt", "RNFR file.txt",
             "RNTO x.txt", "MFMT 20200101000000 file.txt", "MFF modify=20200101000000; file.txt", "MLST file.txt",
             "PASV", "MLSD", "PASV", "LIST", "PASV", "NLST", "PASV", "RETR file.txt", "PASV", "STOR up.txt", "PASV",
             "STOU", "PASV", "APPE file.txt", "PORT 127,0,0,1,100,1", "EPRT |1|127.0.0.1|25601|", "EPSV",
             "SITE HELP", "SITE CHMOD 644 file.txt", "SITE CHGRP ftpusers file.txt", "SITE UTIME 202001010000 file.txt",
             "SITE MKDIR m1", "SITE RMDIR empty", "SITE SYMLINK file.txt ln", "ACCT x", "REIN", "QUIT"]
    names = ("NOOP HELP SYST FEAT OPTS HOST CLNT CSID TYPE STRU MODE ALLO SMNT REST RANG ABOR STAT PWD XPWD CWD "
             "XCWD CDUP XCUP MKD XMKD RMD XRMD DELE MDTM SIZE RNFR RNTO MFMT MFF MLST MLSD LIST NLST RETR STOR STOU "
             "APPE PORT EPRT PASV EPSV SITE SITE_HELP SITE_CHMOD SITE_CHGRP SITE_UTIME SITE_MKDIR SITE_RMDIR "
             "SITE_SYMLINK ACCT REIN QUIT")
    add("limit-each", *LOGIN, *every, conf=f"<Limit {names}>\nDenyAll\n</Limit>\n")
    add("limit-all", *LOGIN, *every, conf="<Limit ALL>\nDenyAll\n</Limit>\n")
    for group in ("READ", "WRITE", "DIRS"):
        add(f"limit-{group.lower()}", *LOGIN, *every, conf=f"<Limit {group}>\nDenyAll\n</Limit>\n")
    lists = ["PASV", "LIST", "PASV", "LIST dir", "PASV", "LIST file.txt", "PASV", "LIST -la", "PASV", "NLST", "PASV",
             "NLST dir", "PASV", "NLST file.txt", "PASV", "NLST *.txt", "CWD dir", "PASV", "NLST", "PASV", "LIST",
             "PASV", "NLST inner.txt", "CWD /", "STAT", "STAT dir", "PASV", "MLSD", "PASV", "MLSD dir", "MLST dir"]
    add("limit-list", *LOGIN, *lists, conf="<Limit LIST NLST STAT MLSD MLST>\nDenyAll\n</Limit>\n")
    add("limit-stat", *LOGIN, "STAT", "STAT file.txt", "STAT dir", "STAT -l dir", "STAT nothere", "PASV", "LIST",
        conf="<Limit STAT>\nDenyAll\n</Limit>\n")
    add("limit-list-only", *LOGIN, "STAT", "STAT file.txt", "STAT dir", "PASV", "LIST", "PASV", "LIST nothere",
        "PASV", "NLST nothere", conf="<Limit LIST>\nDenyAll\n</Limit>\n")
    add("limit-rnto", *LOGIN, "RNFR file.txt", "RNTO x.txt", "RNFR file.txt", "NOOP", "RNTO y.txt", "RNFR nothere",
        "RNTO z.txt", conf="<Limit RNTO>\nDenyAll\n</Limit>\n")
    add("list-binary", *LOGIN, "TYPE I", "PASV", "LIST", "PASV", "NLST", "PASV", "MLSD", "PASV", "LIST dir", "TYPE A",
        "PASV", "LIST dir")
    add("rang-abor", *LOGIN, "TYPE I", "RANG 0 1", "ABOR", "PASV", "RETR file.txt", "REST 3", "ABOR", "PASV",
        "RETR file.txt")
    # -- <Directory> sections: which one applies (globs), what their <Limit>s and DenyAll answer
    inside = ["CWD locked", "CDUP", "PASV", "RETR locked/ro.txt", "PASV", "STOR locked/x", "PASV", "LIST locked",
              "PASV", "NLST locked", "MKD locked/x", "RMD locked", "DELE locked/ro.txt", "SIZE locked/ro.txt",
              "MDTM locked/ro.txt", "RNFR locked/ro.txt", "RNFR file.txt", "RNTO locked/y", "STAT locked",
              "MLST locked/ro.txt", "PASV", "MLSD locked", "SITE CHMOD 600 locked/ro.txt", "PASV", "APPE locked/ro.txt",
              "MFMT 20200101000000 locked/ro.txt", "CWD /", "PWD"]
    locked = "<Directory {base}/home/alice/locked>\n%s</Directory>\n"
    add("dir-limits", *LOGIN, *inside,
        conf=locked % "<Limit READ DIRS>\nDenyAll\n</Limit>\n<Limit WRITE>\nDenyAll\n</Limit>\n")
    add("dir-denyall", *LOGIN, *inside, conf=locked % "DenyAll\n")
    add("dir-limit-all", *LOGIN, *inside, conf=locked % "<Limit ALL>\nDenyAll\n</Limit>\n")
    probe = ["MKD dir/m1", "MKD empty/m2", "MKD m3", "MKD locked/m4", "PASV", "STOR up.txt", "PASV",
             "STOR dir/up.txt", "PASV", "STOR dir/sub dir/up.txt", "MKD dir/sub dir/m5"]
    deny_write = "<Limit WRITE>\nDenyAll\n</Limit>\n"
    allow_write = "<Limit WRITE>\nAllowAll\n</Limit>\n"
    add("dir-glob-contents", *LOGIN, *probe, conf=f"<Directory {{base}}/home/alice/*>\n{deny_write}</Directory>\n")
    add("dir-glob-two", *LOGIN, *probe,
        conf=f"<Directory {{base}}/home/*/dir>\n{deny_write}</Directory>\n"
             f"<Directory {{base}}/home/alice/di?>\n{allow_write}</Directory>\n")
    add("dir-glob-two-reversed", *LOGIN, *probe,
        conf=f"<Directory {{base}}/home/alice/di?>\n{allow_write}</Directory>\n"
             f"<Directory {{base}}/home/*/dir>\n{deny_write}</Directory>\n")
    add("dir-glob-and-plain", *LOGIN, *probe,
        conf=f"<Directory {{base}}/home/alice/d*>\n{deny_write}</Directory>\n"
             f"<Directory {{base}}/home/alice/dir>\n{allow_write}</Directory>\n")
    add("dir-plain-and-glob", *LOGIN, *probe,
        conf=f"<Directory {{base}}/home/alice/dir>\n{deny_write}</Directory>\n"
             f"<Directory {{base}}/home/alice/d*>\n{allow_write}</Directory>\n")
    add("dir-glob-deep", *LOGIN, *probe,
        conf=f"<Directory {{base}}/home/alice>\n{deny_write}</Directory>\n"
             f"<Directory {{base}}/home/alice/*/sub*>\n{allow_write}</Directory>\n")
    deny_stor, allow_stor = "<Limit STOR>\nDenyAll\n</Limit>\n", "<Limit STOR>\nAllowAll\n</Limit>\n"
    add("limit-order-deny-first", *LOGIN, "PASV", "STOR up.txt", conf=deny_stor + allow_stor)
    add("limit-order-allow-first", *LOGIN, "PASV", "STOR up.txt", conf=allow_stor + deny_stor)
    add("limit-order-in-dir", *LOGIN, "PASV", "STOR dir/up.txt",
        conf=f"<Directory {{base}}/home/alice/dir>\n{deny_stor}{allow_stor}</Directory>\n")
    add("limit-order-user", *LOGIN, "PASV", "STOR up.txt",
        conf="<Limit STOR>\nDenyUser alice\n</Limit>\n<Limit STOR>\nAllowUser alice\n</Limit>\n")
    add("dir-nested-glob-first", *LOGIN, *probe,
        conf=f"<Directory {{base}}/home/alice/dir/*>\n{allow_write}</Directory>\n"
             f"<Directory {{base}}/home/alice/d*>\n{deny_write}</Directory>\n")
    add("dir-home-tilde", *LOGIN, *probe, conf=f"<Directory ~/dir>\n{deny_write}</Directory>\n")
    add("limit-prelogin", "NOOP", "HELP", "SYST", "FEAT", "HOST 127.0.0.1", "CLNT x", "TYPE I", "USER alice",
        "PASS alice-pw", "PWD", "QUIT",
        conf="<Limit NOOP HELP SYST FEAT HOST CLNT TYPE USER PASS ACCT REIN QUIT>\nDenyAll\n</Limit>\n")
    # -- commands while a transfer runs (big.bin: 32 MiB, not read by the client until the commands are answered)
    def big(home: Path) -> None:
        with open(home / "big.bin", "wb") as f:
            f.truncate(32 << 20)
    add("during-transfer", *LOGIN, "TYPE I", "PASV", "RETR big.bin || RNFR file.txt || NOOP || PWD || RNTO x.txt",
        "RNTO y.txt", "PASV", "RETR big.bin || STAT || SIZE file.txt || FOO", tree=big)
    add("during-ascii", *LOGIN, "PASV", "RETR big.bin || RNFR file.txt || RNTO x.txt", "RNTO y.txt", tree=big)
    add("during-ascii-others", *LOGIN, "PASV", "RETR big.bin || NOOP || PWD || STAT", tree=big)
    add("during-ascii-more", *LOGIN, "PASV", "RETR big.bin || SIZE file.txt || CWD dir || PWD || FOO || PASV || "
        "MKD newdir || DELE other.txt || STAT file.txt || EPSV || PORT 127,0,0,1,100,1 || STOU || LIST || noop",
        "PWD", "SIZE other.txt", tree=big)
    add("during-ascii-abor", *LOGIN, "PASV", "RETR big.bin || ABOR", "NOOP", tree=big)
    add("during-ascii-active", *LOGIN, "PORT {PORT}", "RETR big.bin || STAT || NOOP", tree=big)
    add("during-ascii-quit", *LOGIN, "PASV", "RETR big.bin || QUIT", "NOOP", tree=big)
    add("during-binary-nosendfile", *LOGIN, "TYPE I", "PASV", "RETR big.bin || NOOP || STAT || RNFR file.txt",
        tree=big, conf="UseSendfile off\n")
    add("rnfr-then-others", *LOGIN, "RNFR file.txt", "PWD", "RNTO a.txt", "RNFR a.txt", "CWD dir", "RNTO b.txt",
        "RNFR file.txt", "SIZE other.txt", "RNTO c.txt", "RNFR other.txt", "TYPE I", "RNTO d.txt", "RNFR d.txt",
        "RNFR other.txt", "RNTO e.txt", "RNFR e.txt", "MKD m", "RNTO f.txt", "RNFR f.txt", "STAT", "RNTO g.txt",
        "RNFR g.txt", "PASV", "RNTO h.txt", "RNFR h.txt", "RNFR", "RNTO i.txt", "RNFR nothere", "RNTO j.txt")
    # -- paths: symbolic links inside the root, as ProFTPD follows them under chroot
    def links(home: Path) -> None:
        os.symlink("/dir", home / "abs-dir")
        os.symlink("/file.txt", home / "abs-file")
        os.symlink("../file.txt", home / "dir" / "up-file")
        os.symlink("../../dir", home / "dir" / "sub dir" / "up-dir")
        os.symlink("nothere", home / "dangling")
        os.symlink("missing/", home / "dangling-dir")
        os.symlink("loop", home / "loop")
        os.symlink("link", home / "link-link")
        os.symlink("/../../../etc", home / "escape")
        os.symlink("../../../../../etc/passwd", home / "escape-file")
        os.symlink("/new-target.txt", home / "to-create")
    add("links-read", *LOGIN, "TYPE I", "SIZE abs-file", "SIZE dir/up-file", "SIZE link-link", "SIZE dangling",
        "SIZE loop", "SIZE escape-file", "MDTM abs-file", "MDTM dangling", "MDTM abs-dir", "PASV", "RETR abs-file",
        "PASV", "RETR dir/up-file", "PASV", "RETR dangling", "PASV", "RETR loop", "PASV", "RETR escape-file",
        "PASV", "RETR abs-dir", tree=links)
    add("links-cwd", *LOGIN, "CWD abs-dir", "PWD", "CWD /", "CWD dir/sub dir/up-dir", "PWD", "CWD /", "CWD dangling",
        "CWD dangling-dir", "CWD loop", "CWD escape", "PWD", "CWD abs-file", "CWD link-dir", "PWD", "CDUP", "PWD",
        tree=links)
    add("links-write", *LOGIN, "TYPE I", "PASV", "STOR to-create", "SIZE new-target.txt", "PASV", "APPE abs-file",
        "SIZE file.txt", "PASV", "STOR dangling", "SIZE nothere", "PASV", "STOR abs-dir/in.txt", "SIZE dir/in.txt",
        "MKD abs-dir/m", "RMD abs-dir/m", "DELE abs-file", "SIZE file.txt", "PASV", "STOR escape/x",
        "RNFR dangling", "RNTO renamed-link", "MDTM renamed-link", tree=links)
    add("links-write-allow-symlink-upload", *LOGIN, "TYPE I", "PASV", "STOR to-create", "SIZE new-target.txt", "PASV",
        "APPE abs-file", "SIZE file.txt", "PASV", "STOR dangling", "SIZE nothere", "PASV", "STOR abs-dir/in.txt",
        "PASV", "STOR link", "SIZE link", tree=links,
        conf="TransferOptions AllowSymlinkUpload\nAllowOverwrite on\nAllowStoreRestart on\nHiddenStores on\n")
    add("links-write-hidden", *LOGIN, "TYPE I", "PASV", "STOR to-create", "SIZE new-target.txt", "PASV",
        "STOR dangling", "SIZE nothere", "PASV", "STOR abs-file", "SIZE file.txt", tree=links,
        conf="AllowOverwrite on\nHiddenStores on\n")
    add("links-list", *LOGIN, "PASV", "NLST abs-dir", "PASV", "NLST dir", "PASV", "NLST dangling", "MLST abs-dir",
        "MLST abs-file", "MLST dangling", "MLST dir/up-file", "PASV", "LIST abs-dir", "PASV", "LIST -la dir",
        "PASV", "MLSD abs-dir", "STAT abs-file", "STAT dangling", tree=links)
    def dir_links(home: Path) -> None:
        links(home)
        os.symlink("inner.txt", home / "dir" / "in-link")
        os.symlink("/file.txt", home / "dir" / "abs-in")
        os.symlink("./inner.txt", home / "dir" / "dot-in")
        os.symlink("sub dir", home / "dir" / "sub-link")
        os.symlink("/other.txt", home / "dir" / "other.txt")
        os.symlink("../dir/inner.txt", home / "dir" / "up-down")
        os.symlink("../empty", home / "dir" / "up-empty")
        os.symlink("../file.txt", home / "root-up")
        os.symlink("sub dir/../inner.txt", home / "dir" / "mid-up")
    add("links-nlst-dir", *LOGIN, "PASV", "NLST dir", "CWD dir", "PASV", "NLST", "PASV", "NLST .", "CWD /", "PASV",
        "NLST -1 dir", "PASV", "NLST dir/*", "PASV", "NLST", tree=dir_links)
    add("links-list-root", *LOGIN, "PASV", "LIST", "PASV", "NLST", "PASV", "LIST -L", tree=links)
    add("show-symlinks-off", *LOGIN, "CWD link-dir", "PWD", "CWD /", "PASV", "LIST", "MLST link", "STAT link",
        "PASV", "NLST", conf="ShowSymlinks off\n", tree=links)
    # -- DefaultRoot through a symbolic link (AllowChrootSymlinks)
    def home_link(home: Path) -> None:
        link = home.parent.parent / f"link-{home.name}"
        if not link.is_symlink():
            os.symlink(home, link)
    add("chroot-symlink-off", *LOGIN, "PWD", "PASV", "NLST",
        conf="DefaultRoot {base}/link-alice\nAllowChrootSymlinks off\n", tree=home_link)
    add("chroot-symlink-on", *LOGIN, "PWD", "PASV", "NLST", conf="DefaultRoot {base}/link-alice\n", tree=home_link)
    # -- ~ in paths
    add("tilde", *LOGIN, "CWD ~", "PWD", "CWD ~/dir", "PWD", "CWD ~/", "PWD", "CWD ~bob", "PWD", "CWD ~alice", "PWD",
        "CWD ~alice/dir", "PWD", "CWD ~nosuch", "SIZE ~/file.txt", "MKD ~/t1", "PASV", "NLST ~", "MLST ~/dir",
        "CWD dir", "CWD ~", "PWD")
    add("tilde-commands", *LOGIN, "TYPE I", "SIZE ~/file.txt", "MDTM ~/file.txt", "PASV", "RETR ~/file.txt", "PASV",
        "STOR ~/up.txt", "SIZE up.txt", "DELE ~/up.txt", "RNFR ~/other.txt", "RNTO ~/moved.txt", "SIZE moved.txt",
        "RMD ~/empty", "PASV", "LIST ~/dir", "PASV", "NLST ~/dir", "STAT ~/dir", "PASV", "MLSD ~/dir",
        "SITE CHMOD 600 ~/file.txt", "MFMT 20200101000000 ~/file.txt", "CWD ~/", "PWD", "XCWD ~/dir", "PWD",
        "MKD ~", "RMD ~", "SIZE ~", "PASV", "LIST ~", "PASV", "RETR ~bob/file.txt", "SIZE ~alice/file.txt")
    # -- leading whitespace in arguments, embedded CR
    def spaced(home: Path) -> None:
        (home / " file.txt").write_bytes(b"leading space\n")
        (home / "  two.txt").write_bytes(b"two spaces\n")
        (home / " dir").mkdir()
    add("leading-space", *LOGIN, "PASV", "RETR  file.txt", "SIZE  file.txt", "TYPE I", "SIZE  file.txt",
        "MDTM  file.txt", "MDTM   two.txt", "CWD  dir", "PWD", "CWD /", "DELE  file.txt", "MKD  new", "RMD  new",
        "PASV", "STOR  up.txt", "PASV", "NLST  dir", "PASV", "LIST  -la", "MLST  file.txt", "STAT  file.txt",
        "RNFR  two.txt", "RNTO  three.txt", "SITE CHMOD 600  three.txt", "MFMT 20200101000000  three.txt",
        "PASV", "LIST   -la dir", tree=spaced)
    add("list-options-spaced", *LOGIN, "PASV", "LIST  -la", "PASV", "LIST -a", "PASV", "NLST  -a",
        conf='ListOptions "-a"\n', tree=spaced)
    add("embedded-cr", *LOGIN, "MKD ab\rcd", "CWD abcd", "PWD", "CWD /", "MKD \rlead", "PASV", "NLST",
        "SIZE file.txt\r", "TYPE I\r", "SIZE fi\rle.txt", "NOOP\r\r", "DELE o\rther.txt")
    # -- RETR of what is not a regular file, REST past 2 GiB and 4 GiB, RETR from the last byte
    def specials(home: Path) -> None:
        os.mkfifo(home / "fifo")
        for name, size in (("g2.bin", (2 << 30) + 10), ("g4.bin", (4 << 30) + 10)):
            with open(home / name, "wb") as f:
                f.truncate(size)
                f.seek(size - 4)
                f.write(b"tail")
    add("retr-special", *LOGIN, "TYPE I", "SIZE fifo", "MDTM fifo", "PASV", "RETR dir", "PASV", "RETR .", "PASV",
        "RETR /", "PASV", "STOR dir", "PASV", "RETR empty.bin", "REST 1", "PASV", "RETR empty.bin", tree=specials)
    add("retr-fifo", *LOGIN, "TYPE I", "PASV", "RETR fifo", tree=specials)
    add("rest-big", *LOGIN, "TYPE I", "SIZE g2.bin", "SIZE g4.bin", "REST 2147483648", "PASV", "RETR g2.bin",
        "REST 2147483657", "PASV", "RETR g2.bin", "REST 2147483658", "PASV", "RETR g2.bin", "REST 2147483659",
        "PASV", "RETR g2.bin", "REST 4294967296", "PASV", "RETR g4.bin", "REST 4294967305", "PASV", "RETR g4.bin",
        "REST 4294967306", "PASV", "RETR g4.bin", "REST 4294967307", "PASV", "RETR g4.bin", "REST 23", "PASV",
        "RETR file.txt", "REST 24", "PASV", "RETR file.txt", "REST 25", "PASV", "RETR file.txt",
        "REST 4294967296", "PASV", "RETR g2.bin", "RANG 4294967296 4294967299", "PASV", "RETR g4.bin",
        tree=specials)
    # -- Display files and ServerIdent: variables, several lines
    variables = ("C=%C E=%E i=%i K=%K k=%k L=%L M=%M N=%N o=%o R=%R t=%t U=%U u=%u V=%V x=%x y=%y z=%z\n"
                 "braced: %{total_bytes_in} %{total_bytes_out} %{total_bytes_xfer} %{total_files_in} "
                 "%{total_files_out} %{total_files_xfer} %{bytes_xfer} %{unknown} %{env:NOSUCHVAR} %{time:%Y}\n"
                 "\n  indented line\n%% percent %Q %\nlast line\n")

    def displays(home: Path) -> None:
        base = home.parent.parent
        for name in ("connect.msg", "quit.msg"):
            (base / name).write_text(variables)
        (home / "welcome.msg").write_text(variables)
        (home / "dir" / ".message").write_text("in dir: %C\nsecond\n")
        (home / "one.msg").write_text("just one line\n")
    display_conf = ("DisplayConnect {base}/connect.msg\nDisplayLogin welcome.msg\nDisplayQuit {base}/quit.msg\n"
                    "DisplayChdir .message\n")
    add("display-files", *LOGIN, "CWD dir", "CWD /", "TYPE I", "PASV", "RETR file.txt", "QUIT",
        conf=display_conf, tree=displays)
    add("display-one-line", *LOGIN, "QUIT", conf="DisplayLogin one.msg\nDisplayQuit one.msg\n", tree=displays)
    add("display-class", "USER alice", "PASS alice-pw", "QUIT",
        conf="<Class local>\nFrom 127.0.0.1\n</Class>\nMaxClientsPerClass local 5\nMaxClients 7\n"
             "DisplayLogin welcome.msg\n", tree=displays)
    add("display-others", "USER alice", "PASS alice-pw", "QUIT",
        conf="<Class local>\nFrom 127.0.0.1\n</Class>\nDisplayLogin welcome.msg\n", tree=displays, others=2)
    for n in (1, 3):
        add(f"display-others-{n}", "USER alice", "PASS alice-pw", "QUIT",
            conf="<Class local>\nFrom 127.0.0.1\n</Class>\nDisplayLogin welcome.msg\n", tree=displays, others=n)
    add("ident-text", "QUIT", conf='ServerIdent on "Host %L version %{{version}} name %v %V %% end"\n')
    add("ident-off", "QUIT", conf="ServerIdent off\n")
    add("ident-defer", "QUIT", conf="DeferWelcome on\n")
    # -- mod_ident: RFC 1413 lookups; each identd listens on port 113 of the client's own loopback address
    ident = ("LoadModule mod_ident.c\nIdentLookups on\nTransferLog {dir}/xfer.log\nLogFormat identfmt "
             '"%a %l [%{{note:mod_ident.rfc1413-ident}}] %m %s"\nExtendedLog {dir}/ext.log ALL identfmt\n')
    ident_steps = [*LOGIN, "PASV", "RETR file.txt", "QUIT", EXTLOG_STEP, XFERLOG_STEP]
    # -- LogFormat's paths and ids around renames, directories and before login (the same values RedisLogOn* send)
    pathvars = ('LogFormat pathfmt "%m|%f|%F|%w|%b|%d|%D|%{{basename}}|%{{uid}}|%{{gid}}|'
                '%{{note:mod_auth.orig-user}}"\nExtendedLog {dir}/ext.log ALL pathfmt\n')
    add("extlog-path-vars", *LOGIN, "PWD", "RNFR file.txt", "RNTO moved.txt", "CWD dir", "PWD", "CDUP", "MKD new",
        "RNFR nothere", "RNTO x", "DELE moved.txt", "QUIT", EXTLOG_STEP, conf=pathvars)
    for name, answer in (("oidentd", OIDENTD), ("userid", b"1, 2 : USERID : UNIX , UTF-8 :  a:b c \t\r\n"),
                         ("hidden", b"1, 2 : ERROR : HIDDEN-USER\r\n"), ("no-user", b"1, 2 : ERROR : NO-USER\r\n"),
                         ("empty", b"1, 2 : USERID : UNIX\r\n"), ("garbage", b"\xff\x80junk:\x00x\r\n"),
                         ("high-bit", b"1, 2 : USERID : UNIX : b\xc3\xb6b\r\n"),
                         ("long", b"1, 2 : USERID : UNIX : " + b"A" * 2_000_000),
                         ("no-newline", b"1, 2 : USERID : UNIX : closed"), ("none", None)):
        s.append(Scenario(f"ident-rfc1413-{name}", ident_steps, conf=ident, source="127.0.0.113", identd=answer,
                          greeting_wait=IDENT_WAIT))
    s.append(Scenario("ident-rfc1413-off", ident_steps, conf=ident.replace("IdentLookups on", "IdentLookups off"),
                      source="127.0.0.114", identd=b"1, 2 : USERID : UNIX : mallory\r\n", greeting_wait=IDENT_WAIT))
    # -- mod_ifsession: <IfUser> <IfGroup> <IfClass> <IfAuthenticated>
    bob = ["USER bob", "PASS bob-pw"]
    overwrite = ["PASV", "STOR file.txt"]

    def block(kind: str, args: str, body: str) -> str:
        return f"<{kind}{' ' + args if args else ''}>\n{body}</{kind}>\n"
    ow = "AllowOverwrite on\n"
    local = "<Class local>\nFrom 127.0.0.1\n</Class>\n"
    for name, args in (("user", "alice"), ("user-not", "!alice"), ("user-list", "bob, alice"),
                       ("user-and", "AND alice, bob"), ("user-or", "OR bob alice"), ("user-regex", "regex ^al"),
                       ("user-regex-no", "regex ^AL"), ("user-and-not", "AND !bob !carol")):
        add(f"ifsess-{name}", *LOGIN, *overwrite, conf=block("IfUser", args, ow))
        add(f"ifsess-{name}-bob", *bob, *overwrite, conf=block("IfUser", args, ow))
    for name, args in (("group", "ftpusers"), ("group-shared", "shared"), ("group-and", "ftpusers, shared"),
                       ("group-or", "OR others, ftpusers"), ("group-not", "!others"), ("group-regex", "regex ^sh")):
        add(f"ifsess-{name}", *LOGIN, *overwrite, conf=block("IfGroup", args, ow))
        add(f"ifsess-{name}-bob", *bob, *overwrite, conf=block("IfGroup", args, ow))
    add("ifsess-class", *LOGIN, *overwrite, conf=local + block("IfClass", "local", ow))
    add("ifsess-class-not", *LOGIN, *overwrite, conf=local + block("IfClass", "!local", ow))
    add("ifsess-class-none", *LOGIN, *overwrite, conf=block("IfClass", "!local", ow))
    add("ifsess-authenticated", *LOGIN, *overwrite, conf=block("IfAuthenticated", "", ow))

    def msgs(home: Path) -> None:
        for n in range(1, 7):
            (home / "dir" / f"m{n}.msg").write_text(f"message {n}\n")
    chdir = "DisplayChdir m%d.msg\n"
    add("ifsess-precedence", *LOGIN, "CWD dir", tree=msgs,
        conf=chdir % 1 + block("IfUser", "alice", chdir % 2) + block("IfGroup", "ftpusers", chdir % 3)
        + local + block("IfClass", "local", chdir % 4) + block("IfAuthenticated", "", chdir % 5))
    add("ifsess-precedence-reversed", *LOGIN, "CWD dir", tree=msgs,
        conf=block("IfAuthenticated", "", chdir % 5) + local + block("IfClass", "local", chdir % 4)
        + block("IfGroup", "ftpusers", chdir % 3) + block("IfUser", "alice", chdir % 2) + chdir % 1)
    add("ifsess-precedence-login", *LOGIN, "CWD dir", tree=msgs,
        conf=block("IfUser", "alice", chdir % 2) + block("IfGroup", "ftpusers", chdir % 3)
        + block("IfAuthenticated", "", chdir % 5))
    add("ifsess-precedence-login-reversed", *LOGIN, "CWD dir", tree=msgs,
        conf=block("IfAuthenticated", "", chdir % 5) + block("IfGroup", "ftpusers", chdir % 3)
        + block("IfUser", "alice", chdir % 2))
    add("ifsess-user-over-group", *LOGIN, "CWD dir", tree=msgs,
        conf=block("IfGroup", "ftpusers", chdir % 3) + block("IfUser", "alice", chdir % 2))
    add("ifsess-two-users", *LOGIN, "CWD dir", tree=msgs,
        conf=block("IfUser", "alice", chdir % 2) + block("IfUser", "alice", chdir % 3))
    add("ifsess-two-groups", *LOGIN, "CWD dir", tree=msgs,
        conf=block("IfGroup", "ftpusers", chdir % 2) + block("IfGroup", "shared", chdir % 3))
    add("ifsess-class-only", *LOGIN, "CWD dir", tree=msgs,
        conf=local + block("IfClass", "local", chdir % 4) + chdir % 1)
    add("ifsess-limit", *LOGIN, "MKD new", "PASV", "STOR up.txt",
        conf=block("IfUser", "alice", "<Limit MKD>\nDenyAll\n</Limit>\n"))
    add("ifsess-limit-bob", *bob, "MKD new", conf=block("IfUser", "alice", "<Limit MKD>\nDenyAll\n</Limit>\n"))
    add("ifsess-directory", *LOGIN, "MKD dir/new", "MKD new", "PASV", "STOR dir/up.txt",
        conf=block("IfUser", "alice", "<Directory ~/dir>\n<Limit WRITE>\nDenyAll\n</Limit>\n</Directory>\n"))
    add("ifsess-removes-inner", *LOGIN, "PASV", "STOR dir/inner.txt", "PASV", "STOR file.txt",
        conf="<Directory ~/dir>\nAllowOverwrite on\n</Directory>\n" + block("IfUser", "alice",
                                                                                "AllowOverwrite off\n"))
    add("ifsess-defaultroot-user", *LOGIN, "PWD", "CWD /", "PASV", "NLST",
        conf=block("IfUser", "alice", "DefaultRoot ~/dir\n"))
    add("ifsess-defaultroot-class", *LOGIN, "PWD", "PASV", "NLST",
        conf=local + block("IfClass", "local", "DefaultRoot ~/dir\n"))
    add("ifsess-maxclients-user", *LOGIN, "PWD", conf=block("IfUser", "alice", "MaxClients 1\n"), others=1)
    add("ifsess-maxclients-class", *LOGIN, "PWD", conf=local + block("IfClass", "local", "MaxClients 1\n"), others=1)
    add("ifsess-login-limit", *LOGIN, "PWD", conf=block("IfUser", "alice", "<Limit LOGIN>\nDenyAll\n</Limit>\n"))
    add("ifsess-login-limit-group", *LOGIN, "PWD",
        conf=block("IfGroup", "ftpusers", "<Limit LOGIN>\nDenyAll\n</Limit>\n"))
    add("ifsess-displaylogin", *LOGIN, "PWD", tree=msgs, conf=block("IfUser", "alice", "DisplayLogin dir/m2.msg\n"))
    add("ifsess-displaylogin-abs", *LOGIN, "PWD", tree=msgs,
        conf=block("IfUser", "alice", "DisplayLogin {base}/home/alice/dir/m3.msg\n"))
    add("ifsess-ident-class", "QUIT", conf=local + block("IfClass", "local", 'ServerIdent on "class greeting"\n'))
    add("ifsess-ident-user", *LOGIN, "QUIT", conf=block("IfUser", "alice", 'ServerIdent on "user greeting"\n'))
    add("ifsess-anonymous-class", "USER ftp", "PASS x", "PWD", conf=local + block(
        "IfClass", "local", "<Anonymous {base}/home/bob>\nUser bob\nGroup others\n</Anonymous>\n"))
    add("rang-ascii", *LOGIN, "RANG 0 4", "TYPE I", "RANG 0 4", "TYPE A", "PASV", "RETR file.txt")
    # -- HOST after USER (before PASS): the name-based server HOST picks is the one whose login rules apply
    other = ('<VirtualHost 127.0.0.1>\nServerName "other"\nServerAlias other.test\nPort {port}\n'
             "AuthOrder mod_auth_file.c\nAuthUserFile {base}/ftpd.passwd\nAuthGroupFile {base}/ftpd.group\n"
             f"RequireValidShell off\n<Limit LOGIN>\nDenyUser {USER}\n</Limit>\n</VirtualHost>\n")
    add("host-after-user", "USER " + USER, "HOST other.test", "PASS " + PASSWORD, "PASS " + PASSWORD, conf=other)
    add("host-after-user-other", "USER bob", "HOST other.test", "PASS bob-pw", "HOST other.test", conf=other)
    add("host-after-user-again", "USER " + USER, "HOST other.test", "HOST other.test", "USER bob", "PASS bob-pw",
        conf=other)
    add("host-after-user-limit", "USER " + USER, "HOST other.test", "HOST 127.0.0.1", "PASS " + PASSWORD,
        "HOST other.test", conf="<Limit HOST>\nDenyAll\n</Limit>\n" + other)
    add("host-after-user-anonymous", "USER anonymous", "HOST other.test", "PASS a@b", "USER anonymous", "PASS a@b",
        conf=anon + "</Anonymous>\n" + other)
    add("host-main-alias", "HOST main.test", "USER " + USER, "HOST main.test", "PASS " + PASSWORD,
        conf="ServerAlias main.test\n" + other)
    add("host-after-user-unknown", "USER " + USER, "HOST unknown.test", "HOST 127.0.0.1", "PASS " + PASSWORD,
        conf=other)
    s += transfer_scenarios(big)
    return s


def copy_scenarios() -> list[Scenario]:
    """mod_copy: SITE CPFR/CPTO and SITE COPY, files, directories, links, the rules that refuse a copy."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731
    xferlog = "TransferLog {dir}/xfer.log\n"
    add("copy-prelogin", "SITE CPFR file.txt", "SITE CPTO x", "SITE COPY file.txt x", "SITE CPFR")
    add("copy-cpfr-cpto", *LOGIN, "SITE CPFR", "SITE CPTO", "SITE CPTO x", "SITE CPFR nothere", "SITE CPTO x",
        "SITE CPFR file.txt", "SITE CPTO copy.txt", "STAT -l copy.txt", "SITE CPTO again.txt",
        "SITE CPFR file.txt", "SITE CPTO copy.txt", "SITE CPFR file.txt", "SITE CPTO nothere/x",
        "SITE CPFR file.txt", "SITE CPTO locked/x", "STAT -l locked", "MKD locked/m", "SITE CPFR /file.txt",
        "SITE CPTO dir/sub dir/c.txt",
        "STAT -l dir/sub dir", "site cpfr other.txt", "site cpto o2.txt", "STAT -l o2.txt", XFERLOG_STEP,
        conf=xferlog)
    add("copy-cpfr-twice", *LOGIN, "TYPE I", "SITE CPFR file.txt", "SITE CPFR other.txt", "SITE CPTO t.txt",
        "SIZE t.txt",
        "SITE CPFR nothere", "SITE CPTO t2.txt", "SITE CPFR file.txt", "NOOP", "PWD", "CWD dir", "SITE CPTO t3.txt",
        "SIZE t3.txt")
    add("copy-dir", *LOGIN, "SITE CPFR dir", "SITE CPTO dir3", "STAT -l dir3", "STAT -l dir3/sub dir",
        "SITE CPFR dir", "SITE CPTO empty", "STAT -l empty", "SITE CPFR dir", "SITE CPTO new/a/b", "STAT -l new/a/b",
        "SITE CPFR empty", "SITE CPTO file.txt", "SITE CPFR file.txt", "SITE CPTO dir3", XFERLOG_STEP,
        conf=xferlog)
    add("copy-links", *LOGIN, "TYPE I", "SITE CPFR link", "SITE CPTO link2", "STAT -l link2", "SIZE link2",
        "SITE CPFR link-dir", "SITE CPTO ld2", "STAT -l ld2", "SITE CPFR link", "SITE CPTO other.txt",
        "SITE COPY link link3", "STAT -l link3")
    add("copy-site-copy", *LOGIN, "TYPE I", "SITE COPY", "SITE COPY file.txt", "SITE COPY file.txt c2.txt",
        "SIZE c2.txt",
        "SITE COPY file.txt c2.txt", "SITE COPY nothere x", "SITE COPY a b c", "site copy file.txt c3.txt",
        "SITE COPY dir d4", "STAT -l d4", "SITE COPY file.txt locked/x", "SITE COPY file.txt nothere/x",
        XFERLOG_STEP, conf=xferlog)
    add("copy-overwrite", *LOGIN, "TYPE I", "SITE CPFR file.txt", "SITE CPTO other.txt", "SIZE other.txt",
        "SITE COPY other.txt empty.bin", "SIZE empty.bin", conf="AllowOverwrite on\n")
    add("copy-limit", *LOGIN, "SITE CPFR file.txt", "SITE COPY file.txt x", "SITE CPFR other.txt",
        "SITE CPTO y", conf="<Limit SITE_CPFR SITE_COPY>\nDenyAll\n</Limit>\n")
    add("copy-limit-cpto", *LOGIN, "SITE CPFR file.txt", "SITE CPTO y", "SITE CPTO y", "SITE CPFR file.txt",
        conf="<Limit SITE_CPTO>\nDenyAll\n</Limit>\n")
    add("copy-limit-write", *LOGIN, "SITE CPFR file.txt", "SITE CPTO y", "SITE COPY file.txt z",
        conf="<Limit WRITE>\nDenyAll\n</Limit>\n")
    add("copy-filter", *LOGIN, "SITE CPFR file.txt", "SITE CPTO x.exe", "SITE COPY file.txt y.exe",
        "SITE CPFR a.exe", "SITE CPTO ok.txt", conf="PathDenyFilter \\.exe$\n")
    add("filter-posix-classes", *LOGIN, "MKD a b", "MKD ab", "MKD a.b-c_d", "MKD a+b", "MKD a\tb", "MKD 42",
        conf='PathDenyFilter "[[:space:]]|^[[:digit:]]+$"\nPathAllowFilter "^[[:alnum:]._-]+$"\n')
    add("filter-posix-negated", *LOGIN, "MKD abc", "MKD ABC", "MKD a1",
        conf='PathAllowFilter "^[^[:upper:][:digit:]]+$"\n')
    def readmes(home: Path) -> None:
        for name in ("README", "dir/README.txt", "dir/sub dir/README.md"):
            (home / name).write_bytes(b"read me\n")
    add("readme", *LOGIN, "CWD dir", "CDUP", "XCWD dir", "XCUP", "CWD nothere", "CWD dir/sub dir", "CWD /empty",
        conf="DisplayReadme README*\n", tree=readmes)
    add("readme-two", *LOGIN, "CWD dir", conf="DisplayReadme README\nDisplayReadme /dir/README.txt\n", tree=readmes)
    add("readme-display-login", *LOGIN, "CWD dir", conf="DisplayReadme README\nDisplayLogin welcome.msg\n",
        tree=lambda home: (readmes(home), (home / "welcome.msg").write_bytes(b"Welcome %U\n")))
    add("max-load-refused", "NOOP", conf='MaxLoad 0 "Too busy, come back later"\n')
    add("max-load-refused-default", "NOOP", conf="MaxLoad 0.0\n")
    add("max-load-none", *LOGIN, "PWD", conf='MaxLoad 1000 "busy"\nDisplayLogin welcome.msg\n',
        tree=lambda home: (home / "welcome.msg").write_bytes(b"at most %{mod_load.max_load}\n"))
    def sensitive(home: Path) -> None:
        (home / "etc").mkdir()
        (home / "etc" / "passwd").write_bytes(b"root:x:0:0::/:/bin/sh\n")
        (home / "lib").mkdir()
    guarded = (*LOGIN, "MKD etc/sub", "MKD lib/sub", "MKD etcetera", "MKD lib64", "MKD /dir/etc", "TYPE I", "PASV",
               "STOR etc/passwd", "PASV", "APPE lib/x", "DELE etc/passwd", "RNFR file.txt", "RNTO etc/x",
               "RNFR etc/passwd", "RNTO moved", "SITE CHMOD 777 etc/passwd", "MFMT 20200101000000 etc/passwd",
               "SITE UTIME 202001010000 etc/passwd", "SITE CHGRP ftpusers etc/passwd",
               "MFF UNIX.mode=0600; etc/passwd",
               "SITE SYMLINK file.txt lib/ln", "SITE COPY file.txt etc/c", "SITE MKDIR lib/a/b", "RMD lib",
               "CWD etc", "MKD here", "PASV", "RETR passwd", "SIZE passwd", "CDUP", "RNFR etc", "RNTO etc2")
    add("rlimit-chroot-guard", *guarded, tree=sensitive)
    add("rlimit-chroot-off", *guarded, conf="RLimitChroot off\n", tree=sensitive)
    mode_z = ("MODE Z", "OPTS MODE Z LEVEL 9", "OPTS MODE Z LEVEL 10", "OPTS MODE Z LEVEL x", "OPTS MODE Z LEVEL",
              "OPTS MODE Z LEVEL 1 x", "OPTS MODE Z LEVEL 8junk",
              "OPTS MODE Z BLOCKSIZE 1", "OPTS MODE Z ENGINE zlib", "OPTS MODE Z FAST 1", "OPTS MODE Z",
              "OPTS MODE S", "OPTS MODE", "mode z", "MODE S", "MODE Z", "MODE B", "MODE", "MODE Z Z")
    add("deflate-on", "FEAT", "MODE Z", *LOGIN, "FEAT", *mode_z, conf="DeflateEngine on\n")
    add("deflate-off", *LOGIN, "FEAT", *mode_z)
    add("copy-engine-off", *LOGIN, "SITE CPFR file.txt", "SITE CPTO x", "SITE COPY file.txt y", "SITE HELP",
        "FEAT", conf="CopyEngine off\n")
    add("copy-help", "SITE HELP", *LOGIN, "SITE HELP", "SITE HELP CPFR", "SITE HELP COPY", "HELP SITE", "FEAT")
    return s


def facl_scenarios() -> list[Scenario]:
    """mod_facl: an ACL that lets alice read bob's 0600 file counts in the perm fact and HideNoAccess, unless
    FACLEngine is off (the mode bits alone)."""
    bob = USERS["bob"][1], GROUPS[USERS["bob"][2]][0]

    def acl_files(home: Path) -> None:
        for name in ("acl.txt", "bob.txt"):
            (home / "locked" / name).write_bytes(b"bob's\n")
            os.chown(home / "locked" / name, *bob)
            os.chmod(home / "locked" / name, 0o600)
        subprocess.run(["setfacl", "-m", f"u:{UID}:r", str(home / "locked" / "acl.txt")], check=True)

    hide = "<Directory ~/locked>\nHideNoAccess on\n</Directory>\n"
    facts = (*LOGIN, "OPTS MLST type;perm;size;", "MLST locked/acl.txt", "MLST locked/bob.txt", "PASV",
             "RETR locked/acl.txt", "PASV", "RETR locked/bob.txt")
    listed = (*LOGIN, "OPTS MLST type;perm;", "PASV", "NLST locked", "MLST locked/acl.txt", "MLST locked/bob.txt")
    return [Scenario("facl-on", list(facts), "", acl_files),
            Scenario("facl-off", list(facts), "FACLEngine off\n", acl_files),
            Scenario("facl-on-hidenoaccess", list(listed), hide, acl_files),
            Scenario("facl-off-hidenoaccess", list(listed), "FACLEngine off\n" + hide, acl_files)]


def hidden_scenarios() -> list[Scenario]:
    """HideFiles, HideUser and IgnoreHidden: listings, a hidden name asked for on its own, links to hidden names."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="": s.append(Scenario(name, list(steps), conf))  # noqa: E731
    by_name = "<Directory ~>\nHideFiles ^(file\\.txt|dir)$\n"
    ignored = by_name + "<Limit ALL>\nIgnoreHidden on\n</Limit>\n</Directory>\n"
    add("hidden-by-name", *LOGIN, "OPTS MLST type;perm;", "MLST file.txt", "MLST dir", "STAT file.txt", "PASV",
        "LIST file.txt", "PASV", "NLST file.txt", "SIZE file.txt", "MDTM file.txt", "PASV", "RETR file.txt", "PASV",
        "MLSD", "PASV", "LIST", "PASV", "NLST", "STAT .", "STAT dir", "PASV", "LIST dir", "PASV", "NLST dir", "PASV",
        "MLSD dir", "PASV", "LIST link", "STAT link", "MLST link", "CWD dir", "PWD", "MLST", "STAT .", "PASV", "LIST",
        "PASV", "MLSD", "CWD /", "PASV", "MLSD link-dir", "PASV", "NLST *.txt", "PASV", "LIST *.txt", "PASV",
        "LIST -a", conf=by_name + "</Directory>\n")
    add("hidden-by-owner", *LOGIN, "OPTS MLST type;", "PASV", "LIST", "PASV", "NLST locked", "MLST locked",
        "STAT locked/ro.txt", "PASV", "LIST locked", "PASV", "MLSD locked", "CWD locked", "PASV", "MLSD", "PASV",
        "RETR ro.txt", conf="<Directory ~>\nHideUser root\n</Directory>\n")
    add("hidden-ignored", *LOGIN, "SIZE file.txt", "MDTM file.txt", "CWD dir", "CWD /", "PASV", "RETR file.txt",
        "DELE file.txt", "RNFR other.txt", "RNTO file.txt", "STAT file.txt", conf=ignored)
    add("hidden-ignored-overwrite", *LOGIN, "RNFR other.txt", "RNTO file.txt", "RNFR empty.bin", "RNTO dir",
        "STOR file.txt", "PASV", "STOR file.txt", "APPE dir", "PASV", "LIST", conf="AllowOverwrite on\n" + ignored)
    add("rnto-denied-existing", *LOGIN, "RNTO x", "RNFR other.txt", "RNTO file.txt", "RNFR other.txt", "RNTO new.txt",
        conf="<Limit RNTO>\nDenyAll\n</Limit>\n")
    return s


def rewrite_scenarios() -> list[Scenario]:
    """mod_rewrite: rules on uploads, directories, downloads and logins, conditions, maps, RewriteMaxReplace,
    `<Directory>` rules and RewriteHome (braces doubled: the configurations go through str.format)."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731
    maps = ("RewriteEngine on\nTransferLog {dir}/xfer.log\nRewriteMap replace int:replaceall\n"
            "RewriteMap lower int:tolower\nRewriteMap upper int:toupper\n"
            'RewriteCondition %m STOR\nRewriteRule ^(.*) "${{replace:/$1/ /_}}"\n'
            "RewriteCondition %m ^X?MKD$\nRewriteRule ^(.*)$ ${{lower:$1}}\n"
            "RewriteCondition %m ^retr$ [NC]\nRewriteCondition %f ^up- [OR]\nRewriteCondition %f ^UP-\n"
            "RewriteRule ^up-(.*)$ ${{upper:$1}}|${{nosuch:x}} [nocase]\n")
    add("rewrite-stor-spaces", *LOGIN, "TYPE I", "PASV", "STOR my new file.txt", "SIZE my_new_file.txt",
        "SIZE my new file.txt", "PASV", "NLST", "MKD MixedCase", "XMKD Other Dir", "PASV", "LIST", "RMD mixedcase",
        XFERLOG_STEP, conf=maps)
    add("rewrite-retr-upper", *LOGIN, "PASV", "RETR up-file.txt", "PASV", "RETR file.txt", "PASV", "RETR UP-x",
        "SIZE up-file.txt", XFERLOG_STEP, conf=maps,
        tree=lambda home: (home / "FILE.TXT|${nosuch:x}").write_bytes(b"upper\n"))
    conds = ("RewriteEngine on\n"
             "RewriteCondition %m ^MKD$\nRewriteCondition %u !^bob$\nRewriteRule ^a-(.*)$ b-$1-%0\n"
             "RewriteCondition %m ^MKD$\nRewriteCondition %f -d\nRewriteRule ^(.*)$ $1/sub [L]\n"
             "RewriteCondition %m ^MKD$\nRewriteCondition %f >m\nRewriteRule ^(.*)$ lt-$1\n"
             "RewriteCondition %m ^RMD$\nRewriteCondition %f <m\nRewriteRule ^(.*)$ gt-$1\n"
             "RewriteCondition %m ^USER$\nRewriteRule ^ALICE$ alice\n")
    add("rewrite-conditions", "USER ALICE", "PASS " + PASSWORD, "MKD a-x", "MKD dir", "MKD zed", "MKD abc",
        "RMD zed", "RMD abc", "MKD empty", "MKD %u-dir", "PASV", "NLST", conf=conds)
    quirks = ("RewriteEngine on\nRewriteMaxReplace 2\nRewriteMap replace int:replaceall\n"
              "RewriteMap unesc int:unescape\nRewriteMap names txt:{base}/names.map\n"
              "RewriteCondition %m \"^SITE CHMOD$\"\nRewriteRule \"^([0-7]+) (.*)$\" \"$1 c-$2\"\n"
              'RewriteCondition %m ^DELE$\nRewriteRule ^(.*)$ "${{replace:/$1/ /_}}"\n'
              "RewriteCondition %m ^RMD$\nRewriteRule ^(.*)$ ${{unesc:$1}}\n"
              "RewriteCondition %m ^MKD$\nRewriteRule !^keep $$1-%m-x\n"
              "RewriteMap services txt:/etc/services\n"
              "RewriteCondition %m ^CWD$\nRewriteRule ^(.*)$ ${{names:$1|$1}}\n"
              "RewriteCondition %m ^CWD$\nRewriteRule ^(.*)$ ${{services:$1|$1}}\n")
    def names(home: Path) -> None:
        (home / "c-file.txt").write_bytes(b"c\n")
        (home.parent.parent / "names.map").write_text("# map\nd  dir\nbad\nx empty trailing words\n")
    add("rewrite-quirks", *LOGIN, "SITE CHMOD 600 file.txt", "SITE CHMOD 600 other.txt", "DELE a b c",
        "DELE a b c d", "RMD %65mpty", "RMD %2fx", "RMD %zz", "MKD keep", "MKD new", "CWD d", "PWD", "CWD x", "PWD",
        "CWD nothere", "CWD ftp", "CWD ssh", conf=quirks, tree=names)
    # (names.map is made with the tree, after the servers read their configuration, and the sessions are
    # chrooted: both use the default; /etc/services was read when the configuration was)
    dirs = ("RewriteEngine on\n<Directory {base}/home/alice/dir>\nRewriteCondition %m ^MKD$\n"
            "RewriteRule ^(.*)$ in-dir-$1\n</Directory>\nRewriteCondition %m ^MKD$\nRewriteRule ^(.*)$ s-$1\n")
    add("rewrite-directory", *LOGIN, "MKD x", "CWD dir", "MKD y", "PASV", "NLST", "CWD /", "MKD z", "CWD dir",
        "CWD sub dir", "MKD w", conf=dirs)
    home = ("RewriteEngine on\nRewriteHome on\nRewriteCondition %m REWRITE_HOME\n"
            "RewriteRule ^(.*)/alice$ $1/alice/dir\n")
    add("rewrite-home", *LOGIN, "PWD", "PASV", "NLST", "CWD /", "TYPE I", "SIZE inner.txt", conf=home)
    return s


SQL_SCHEMA = """\
CREATE TABLE users (userid TEXT, passwd TEXT, uid INTEGER, gid INTEGER, homedir TEXT, shell TEXT,
                    count INTEGER DEFAULT 0, fstor INTEGER DEFAULT 0, fretr INTEGER DEFAULT 0,
                    bstor INTEGER DEFAULT 0, bretr INTEGER DEFAULT 0);
CREATE TABLE groups (groupname TEXT, gid INTEGER, members TEXT);
CREATE TABLE xfers (userid TEXT, cmd TEXT, file TEXT, bytes INTEGER, code TEXT);
"""


def sql_database(home: Path) -> None:
    """The SQLite database of the sql-* scenarios, {base}/sql.db (made again with alice's tree): carol (crypt),
    dave (plaintext), erin ({sha1}), frank (an empty password), gina (a uid below SQLMinID), all at alice's
    home, and hank (no home: SQLDefaultHomedir's); groups sqlstaff (carol's primary) and sqlextra (carol, dave)."""
    import sqlite3
    if home.name != USER:
        return
    path = home.parent.parent / "sql.db"
    path.unlink(missing_ok=True)
    users, groups = sql_rows(home)
    with sqlite3.connect(path) as conn:
        conn.executescript(SQL_SCHEMA)
        conn.executemany("INSERT INTO users (userid, passwd, uid, gid, homedir, shell) VALUES (?, ?, ?, ?, ?, ?)",
                         users)
        conn.executemany("INSERT INTO groups VALUES (?, ?, ?)", groups)
    conn.close()
    os.chmod(path, 0o600)


def sql_rows(home: Path) -> tuple[list[tuple], list[tuple]]:
    """The users and groups rows of the sql-* scenarios (see sql_database)."""
    import base64
    import hashlib
    from proftpy.auth.crypt import crypt_hash
    sha1 = "{sha1}" + base64.b64encode(hashlib.sha1(b"erin-pw").digest()).decode()
    users = [("carol", crypt_hash("carol-pw"), UID, UID), ("dave", "dave-pw", UID, UID), ("erin", sha1, UID, UID),
             ("frank", "", UID, UID), ("gina", crypt_hash("gina-pw"), 10, 10)]
    return ([(name, pw, uid, gid, str(home), "/bin/sh") for name, pw, uid, gid in users]
            + [("hank", crypt_hash("hank-pw"), UID, UID, None, "/bin/sh")],
            [("sqlstaff", UID, "carol"), ("sqlextra", UID + 20, "dave,carol")])


def sql_scenarios() -> list[Scenario]:
    """mod_sql with mod_sql_sqlite: SQL users logging in with each SQLAuthTypes form, wrong passwords, names that
    try to inject SQL, the AuthUserFile behind it, SQLMinID, groups in <Limit>, SQLLog statements whose effects
    SQLShowInfo lines show, SQLRatioStats, and a database that is not there (braces doubled: str.format)."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="": s.append(Scenario(name, list(steps), conf, sql_database))  # noqa: E731
    base = ("LoadModule mod_sql.c\nLoadModule mod_sql_sqlite.c\nAuthOrder mod_sql.c mod_auth_file.c\n"
            "SQLBackend sqlite3\nSQLConnectInfo {base}/sql.db\nSQLAuthTypes Crypt Plaintext OpenSSL\n"
            "SQLAuthenticate users groups\nSQLUserInfo users userid passwd uid gid homedir shell\n"
            "SQLGroupInfo groups groupname gid members\nSQLMinID 500\n")
    logged = base + ("SQLNamedQuery count UPDATE \"count = count + 1 WHERE userid = '%u'\" users\n"
                     "SQLNamedQuery getcount SELECT \"count FROM users WHERE userid = '%u'\"\n"
                     "SQLNamedQuery xfer INSERT \"'%u', '%m', '%F', %b, '%s'\" xfers\n"
                     "SQLNamedQuery xfers SELECT \"count(*) || ' ' || sum(bytes) FROM xfers WHERE userid = '%u'\"\n"
                     "SQLNamedQuery last SELECT \"file FROM xfers ORDER BY rowid DESC LIMIT 1\"\n"
                     "SQLNamedQuery nothing SELECT \"count FROM users WHERE userid = 'nobody'\"\n"
                     "SQLLog PASS count\nSQLLog STOR,RETR,ERR_RETR xfer\n"
                     "SQLShowInfo PASS \"230\" \"You have logged in %{{getcount}} times before, %u\"\n"
                     "SQLShowInfo PASS \"230\" \"not shown: %{{nothing}}\"\n"
                     "SQLShowInfo NOOP \"200\" \"transfers: %{{xfers}}, last %{{last}}\"\n"
                     "SQLShowInfo ERR_CWD \"550\" \"no such directory for %u\"\n")
    add("sql-login-crypt", "USER carol", "PASS wrong", "USER carol", "PASS carol-pw", "PWD", "PASV", "NLST",
        "PASV", "RETR file.txt", conf=base)
    add("sql-login-plaintext", "USER dave", "PASS dave", "USER dave", "PASS dave-pw", "PWD", conf=base)
    add("sql-login-openssl", "USER erin", "PASS erin", "USER erin", "PASS erin-pw", "PWD", conf=base)
    add("sql-login-empty-refused", "USER frank", "PASS ", "USER frank", "PASS x", conf=base)
    add("sql-unknown-user", "USER nobody", "PASS nobody", "USER CAROL", "PASS carol-pw", conf=base)
    add("sql-injection", "USER x' OR '1'='1", "PASS x' OR '1'='1", "USER carol' --", "PASS carol-pw", conf=base)
    add("sql-injection-pass", "USER dave", "PASS ' OR '1'='1", "USER dave", "PASS dave-pw' OR 'a'='a", conf=base)
    add("sql-fallback-authfile", *LOGIN, "PWD", conf=base)
    add("sql-min-id", "USER gina", "PASS gina-pw", "PWD", "PASV", "NLST", "MKD newdir", conf=base)
    add("sql-group-limit", "USER carol", "PASS carol-pw", "MKD x", "USER dave", "PASS dave-pw",
        conf=base + "<Limit MKD>\nDenyGroup sqlextra\n</Limit>\n")
    add("sql-group-login-denied", "USER dave", "PASS dave-pw", "USER carol", "PASS carol-pw",
        conf=base + "<Limit LOGIN>\nDenyGroup sqlextra\n</Limit>\n")
    add("sql-log-showinfo", "USER carol", "PASS carol-pw", "NOOP", "PASV", "STOR up.txt", "NOOP", "PASV",
        "RETR up.txt", "PASV", "RETR nothere", "NOOP", "CWD nothere", "CWD dir", conf=logged)
    add("sql-ratio-stats", "USER carol", "PASS carol-pw", "PASV", "STOR r.txt", "PASV", "RETR file.txt", "NOOP",
        conf=base + "SQLRatioStats on\nSQLNamedQuery stats SELECT \"fstor || '/' || fretr || '/' || bstor || '/' "
        "|| bretr FROM users WHERE userid = '%u'\"\nSQLShowInfo NOOP \"200\" \"stats %{{stats}}\"\n")
    custom = base.replace("SQLUserInfo users userid passwd uid gid homedir shell", "SQLUserInfo custom:/by-name/by-id")
    custom += ("SQLNamedQuery by-name SELECT \"userid, passwd, uid, gid, homedir, shell FROM users WHERE userid = "
               "'%{{0}}'\"\nSQLNamedQuery by-id SELECT \"userid, passwd, uid, gid, homedir, shell FROM users WHERE "
               "uid = %{{0}}\"\n")
    add("sql-custom-userinfo", "USER x' OR '1'='1", "PASS carol-pw", "USER carol", "PASS carol-pw", "PWD", "PASV",
        "LIST file.txt", conf=custom)
    add("sql-where-default-home", "USER dave", "PASS dave-pw", "USER hank", "PASS hank-pw", "PWD", "USER carol",
        conf=base + "SQLUserWhereClause \"userid != 'dave'\"\nSQLDefaultHomedir {base}/home/alice\n")
    add("sql-missing-database", "USER carol", "PASS carol-pw", conf=base.replace("{base}/sql.db", "{base}/none.db"))
    add("sql-missing-database-no-disconnect", "USER carol", "PASS carol-pw", *LOGIN, "PWD",
        conf=base.replace("{base}/sql.db", "{base}/none.db") + "SQLOptions NoDisconnectOnError\n")
    return s


# -- mod_sql_postgres (sql-pg-*), mod_sql_mysql (sql-my-*): one database server for both servers, a database each --
SQL_SERVERS: dict = {}              # "pg"/"my" -> the running server (tests/pgsql_helpers, tests/mysql_helpers),
                                    # "my8" -> MySQL 8's caching_sha2_password in front of "my" (tests/mysql8_front)
SHA2_USER, SHA2_PASSWORD = "ftp8", "sha2 secret, longer than the nonce"
PG_CONNECT = "SQLConnectInfo ftp_{srv}@127.0.0.1:{pg_port} ftp_scram scram-secret"
MY_CONNECT = "SQLConnectInfo ftp_{srv}@127.0.0.1:{my_port} ftp_native native-secret"


def start_sql_server(kind: str, tmp: Path) -> None:
    """PostgreSQL 15 (`pg`) or MariaDB (`my`), started in `tmp`, stopped by main() at the end."""
    sys.path.insert(0, str(REPO / "tests"))
    if kind == "pg":
        import pgsql_helpers
        SQL_SERVERS[kind] = pgsql_helpers.Postgres(tmp / "pg").start()
    else:
        import mysql8_front
        import mysql_helpers
        SQL_SERVERS[kind] = my = mysql_helpers.MariaDB(tmp / "my").start()
        SQL_SERVERS["my8"] = mysql8_front.Front(my.dir, free_port(), (my.port, mysql_helpers.USER,
                                                mysql_helpers.PASSWORD), {SHA2_USER: SHA2_PASSWORD})


def sql_server_tables(kind: str) -> Callable[[Path], None]:
    """The sql-* scenarios' tables and rows in the server's own database, ftp_<server dir>, made again for each
    scenario (PostgreSQL's xfers has an id column last: the rowid SQLite has)."""
    def tree(home: Path) -> None:
        if home.name != USER:
            return
        server, base = SQL_SERVERS[kind], home.parent.parent
        name = f"ftp_{base.name}"
        if not (base / f"{kind}-made").exists():
            if kind == "pg":
                server.run(f"CREATE DATABASE {name}", database="postgres")
            else:
                import mysql_helpers
                server.run(f"CREATE DATABASE {name};" + "".join(
                    mysql_helpers.MariaDB.grants(name, h) for h in mysql_helpers.HOSTS), database="")
            (base / f"{kind}-made").write_text("")

        def literal(v) -> str:
            return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"
        users, groups = sql_rows(home)
        rows = lambda table, rs: f"INSERT INTO {table} VALUES " + ", ".join(  # noqa: E731
            "(" + ", ".join(literal(v) for v in r) + ")" for r in rs) + ";"
        schema = SQL_SCHEMA.replace("code TEXT)", "code TEXT, id SERIAL)") if kind == "pg" else SQL_SCHEMA
        server.run("DROP TABLE IF EXISTS users, groups, xfers;" + schema
                   + rows("users (userid, passwd, uid, gid, homedir, shell)", users) + rows("groups", groups), name)
        if kind == "pg":
            server.grant(name)
    return tree


def sql_server_scenarios() -> list[Scenario]:
    """The sql-* scenarios over PostgreSQL 15 (sql-pg-*: Debian's proftpd-mod-pgsql, SCRAM-SHA-256 logins) and MariaDB
    10.11 (sql-my-*: proftpd-mod-mysql, mysql_native_password), proftpy with its own clients; and a server that
    refuses the password or is not there. MySQL's statements concatenate with CONCAT (its `||` is OR) and take
    MAX(file) for the last transfer (its INSERT ... VALUES fills every column: no id column)."""
    s: list[Scenario] = []
    for kind, module, backend, connect in (("pg", "mod_sql_postgres.c", "postgres", PG_CONNECT),
                                           ("my", "mod_sql_mysql.c", "mysql", MY_CONNECT)):
        def convert(conf: str) -> str:
            conf = (conf.replace("LoadModule mod_sql_sqlite.c", f"LoadModule {module}")
                    .replace("SQLBackend sqlite3", f"SQLBackend {backend}")
                    .replace("SQLConnectInfo {base}/sql.db", connect)
                    .replace("SQLConnectInfo {base}/none.db", connect.replace("ftp_{srv}@", "nosuchdb@")))
            if kind == "pg":
                return conf.replace("ORDER BY rowid", "ORDER BY id")
            return (conf.replace("count(*) || ' ' || sum(bytes)", "CONCAT(count(*), ' ', sum(bytes))")
                    .replace("file FROM xfers ORDER BY rowid DESC LIMIT 1", "MAX(file) FROM xfers")
                    .replace("fstor || '/' || fretr || '/' || bstor || '/' || bretr",
                             "CONCAT(fstor, '/', fretr, '/', bstor, '/', bretr)"))
        tree = sql_server_tables(kind)
        s += [Scenario(f"sql-{kind}-" + sc.name[len("sql-"):], sc.steps, convert(sc.conf), tree)
              for sc in sql_scenarios()]
        base = convert(sql_scenarios()[0].conf)
        password = connect.rsplit(" ", 1)[1]
        s.append(Scenario(f"sql-{kind}-wrong-db-password", ["USER carol", "PASS carol-pw"],
                          base.replace(password, "not-it"), tree))
        tls = ("CASE WHEN ssl THEN 'yes' ELSE 'no' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()" if kind == "pg"
               else "IF(VARIABLE_VALUE = '', 'no', 'yes') FROM information_schema.SESSION_STATUS "
                    "WHERE VARIABLE_NAME = 'Ssl_cipher'")
        s.append(Scenario(f"sql-{kind}-tls", ["USER carol", "PASS carol-pw", "NOOP"],
                          base.replace(password, f"{password} ssl-ca:{{{kind}_ca}}")
                          + f'SQLNamedQuery tls SELECT "{tls}"\nSQLShowInfo NOOP "200" "tls %{{{{tls}}}}"\n', tree))
        if kind == "my":           # an ed25519 account (MariaDB's auth_ed25519; libmariadb's client_ed25519)
            ed = base.replace("ftp_native native-secret", 'ftp_ed "ed-secret \u00fc"')
            s.append(Scenario("sql-my-ed25519", ["USER carol", "PASS carol-pw", "PWD"], ed,
                              tree))
            s.append(Scenario("sql-my-ed25519-wrong-db-password", ["USER carol", "PASS carol-pw"],
                              ed.replace("ed-secret \u00fc", "ed-secret"), tree))
            # MySQL 8's caching_sha2_password, full authentication without TLS: the RSA-sealed password
            sha2 = base.replace("{my_port} ftp_native native-secret", f'{{my8_port}} {SHA2_USER} "{SHA2_PASSWORD}"')
            s.append(Scenario("sql-my-sha2", ["USER carol", "PASS carol-pw", "PWD"], sha2, tree))
            s.append(Scenario("sql-my-sha2-wrong-db-password", ["USER carol", "PASS carol-pw"],
                              sha2.replace(SHA2_PASSWORD, "not-it"), tree))
        s.append(Scenario(f"sql-{kind}-server-down", ["USER carol", "PASS carol-pw", *LOGIN, "PWD"],
                          base.replace(f"{{{kind}_port}}", "{sql_closed}") + "SQLOptions NoDisconnectOnError\n", tree))
    return s


PEPPER = b"pepper"                 # the salt file of the sql-passwd-* scenarios ({base}/salt.txt, with a newline)
PASSWD_SALT32 = bytes(range(32))    # scrypt's salt ({base}/salt32.hex, hex); argon2's is the first 16 bytes


def sql_passwd_database(home: Path) -> None:
    """{base}/passwd.db and the salt files of the sql-passwd-* scenarios: one user per way of storing a hashed
    password (each user's password is `<name>-pw`), all at alice's home; the `salt` column holds per-user salts,
    `pdigest`/`piter`/`plen` per-user PBKDF2 parameters."""
    import base64
    import ctypes
    import ctypes.util
    import hashlib
    import sqlite3
    from proftpy.auth.crypt import crypt_hash
    if home.name != USER:
        return
    base = home.parent.parent
    (base / "salt.txt").write_bytes(PEPPER + b"\n")
    (base / "salt32.hex").write_text(PASSWD_SALT32.hex() + "\n")

    def h(name: str, data: bytes) -> bytes:
        return hashlib.new(name, data).digest()

    def rounds(name: str, text: bytes, n: int) -> str:
        for _ in range(n - 1):
            text = base64.b64encode(h(name, text))
        return text.decode()
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    lib.sodium_init()
    argon = ctypes.create_string_buffer(32)
    lib.crypto_pwhash_argon2i.argtypes = [ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_ulonglong,
                                          ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
    lib.crypto_pwhash_argon2i(argon, 32, b"ar-pw", 5, PASSWD_SALT32[:16], 4, 33554432, 1)
    scrypt = hashlib.scrypt(b"sc-pw", salt=PASSWD_SALT32, n=16384, r=8, p=1, dklen=32)
    hs = lambda pw, salt=b"": h("sha256", pw + salt).hex()  # noqa: E731
    users = [  # name, password column, salt column, pbkdf2 columns
        ("m5", h("md5", b"m5-pw").hex(), None), ("s1", h("sha1", b"s1-pw").hex(), None),
        ("s256", hs(b"s256-pw"), None), ("s512", h("sha512", b"s512-pw").hex(), None),
        ("upper", hs(b"upper-pw").upper(), None),
        ("b64", rounds("sha256", base64.b64encode(h("sha256", b"b64-pw")), 3), None),
        ("fs", hs(b"fs-pw", PEPPER), None), ("fp", hs(PEPPER + b"fp-pw"), None),
        ("un", hs(b"un" + b"un-pw", PEPPER), None),
        ("us", h("sha1", b"us-pw" + b"\0salt\xff").hex(), base64.b64encode(b"\0salt\xff").decode()),
        ("opt", h("sha256", h("sha256", b"opt-pw").hex().encode() + h("sha256", PEPPER).hex().encode()).hex(), None),
        ("pk", hashlib.pbkdf2_hmac("sha256", b"pk-pw", b"pk", 1000, 32).hex(), None, "sha256", 1000, 32),
        ("pq", hashlib.pbkdf2_hmac("sha1", b"pq-pw", b"rowsalt", 500, 20).hex(), "rowsalt", "sha1", 500, 20),
        ("sc", scrypt.hex(), None), ("ar", argon.raw.hex(), PASSWD_SALT32[:16].hex()),
        ("bc", crypt_hash("bc-pw", "bcrypt"), None), ("em", "", None), ("cut", hs(b"cut-pw")[:12], None)]
    path = base / "passwd.db"
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(SQL_SCHEMA + "ALTER TABLE users ADD COLUMN salt TEXT;\nALTER TABLE users ADD COLUMN "
                           "pdigest TEXT;\nALTER TABLE users ADD COLUMN piter INTEGER;\nALTER TABLE users ADD COLUMN "
                           "plen INTEGER;\n")
        conn.executemany("INSERT INTO users (userid, passwd, uid, gid, homedir, shell, salt, pdigest, piter, plen) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [(u[0], u[1], UID, UID, str(home), "/bin/sh", u[2], *(u[3:] or (None,) * 3)) for u in users])
    conn.close()
    os.chmod(path, 0o600)


def sql_passwd_scenarios() -> list[Scenario]:
    """mod_sql_passwd: each digest and encoding, the engine off, salt files appended and prepended (raw and
    hex-encoded), user salts from the name and from a query, HashEncode options, rounds, PBKDF2 with fixed and
    per-user parameters, scrypt, argon2, bcrypt, and the columns ProFTPD's prefix comparison lets in."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="": s.append(Scenario(name, list(steps), conf, sql_passwd_database))  # noqa: E731
    base = ("LoadModule mod_sql.c\nLoadModule mod_sql_sqlite.c\nLoadModule mod_sql_passwd.c\n"
            "AuthOrder mod_sql.c mod_auth_file.c\nSQLBackend sqlite3\nSQLConnectInfo {base}/passwd.db\n"
            "SQLAuthenticate users\nSQLUserInfo users userid passwd uid gid homedir shell\nSQLMinID 500\n")
    on = base + "SQLPasswordEngine on\n"
    digests = on + "SQLAuthTypes md5 sha1 sha256 sha512\n"

    def login(user: str) -> tuple[str, ...]:
        return f"USER {user}", "PASS wrong", f"USER {user}", f"PASS {user}-pw"
    add("sql-passwd-md5", *login("m5"), "PWD", conf=digests)
    add("sql-passwd-sha1", *login("s1"), conf=digests)
    add("sql-passwd-sha256", "USER upper", "PASS upper-pw", *login("s256"), conf=digests)
    add("sql-passwd-sha512", "USER s512", "PASS m5-pw", *login("s512"), conf=digests)
    add("sql-passwd-HEX", "USER s256", "PASS s256-pw", *login("upper"),
        conf=on + "SQLAuthTypes sha256\nSQLPasswordEncoding HEX\n")
    add("sql-passwd-base64-rounds", "USER s256", "PASS s256-pw", *login("b64"),
        conf=on + "SQLAuthTypes sha256\nSQLPasswordEncoding base64\nSQLPasswordRounds 3\n")
    add("sql-passwd-engine-off", "USER m5", "PASS m5-pw", "USER s1", "PASS s1-pw",
        conf=base + "SQLAuthTypes md5 sha1\n")
    salted = on + "SQLAuthTypes sha256\nSQLPasswordSaltFile {base}/salt.txt\n"
    add("sql-passwd-salt-file", "USER s256", "PASS s256-pw", *login("fs"), conf=salted)
    add("sql-passwd-salt-file-prepend", "USER fs", "PASS fs-pw", "USER fp", "PASS fp-pw",
        conf=salted.replace("salt.txt", "salt.txt Prepend"))
    add("sql-passwd-user-salt-name", "USER fs", "PASS fs-pw", *login("un"),
        conf=salted + "SQLPasswordUserSalt name Prepend\n")
    user_salt = (on + "SQLAuthTypes sha1\nSQLPasswordSaltEncoding base64\nSQLPasswordUserSalt sql:/salt\n"
                 "SQLNamedQuery salt SELECT \"salt FROM users WHERE userid = '%{{0}}'\"\n")
    add("sql-passwd-user-salt-sql", "USER nobody", "PASS s1-pw", *login("us"), conf=user_salt)
    add("sql-passwd-user-salt-null", "USER s1", "PASS s1-pw", conf=user_salt)
    add("sql-passwd-options", "USER fs", "PASS fs-pw", *login("opt"),
        conf=salted + "SQLPasswordOptions HashEncodeSalt\nSQLPasswordOptions HashEncodePassword\n")
    add("sql-passwd-pbkdf2", *login("pk"),
        conf=on + "SQLAuthTypes pbkdf2\nSQLPasswordPBKDF2 sha256 1000 32\nSQLPasswordUserSalt name\n")
    add("sql-passwd-pbkdf2-sql", *login("pq"),
        conf=on + "SQLAuthTypes pbkdf2\nSQLPasswordPBKDF2 sql:/params\nSQLPasswordUserSalt sql:/salt\n"
        "SQLNamedQuery salt SELECT \"salt FROM users WHERE userid = '%{{0}}'\"\n"
        "SQLNamedQuery params SELECT \"pdigest, piter, plen FROM users WHERE userid = '%{{0}}'\"\n")
    add("sql-passwd-pbkdf2-no-query", "USER s256", "PASS s256-pw",        # no PBKDF2 query: no user salt either
        conf=on + "SQLAuthTypes sha256\nSQLPasswordPBKDF2 sql:/nothere\nSQLPasswordUserSalt name\n")
    add("sql-passwd-scrypt", *login("sc"),
        conf=on + "SQLAuthTypes scrypt\nSQLPasswordSaltEncoding hex\nSQLPasswordSaltFile {base}/salt32.hex\n")
    add("sql-passwd-argon2", *login("ar"),
        conf=on + "SQLAuthTypes argon2\nSQLPasswordSaltEncoding hex\nSQLPasswordUserSalt sql:/salt\n"
        "SQLNamedQuery salt SELECT \"salt FROM users WHERE userid = '%{{0}}'\"\n")
    add("sql-passwd-bcrypt", *login("bc"), conf=on + "SQLAuthTypes bcrypt\n")
    add("sql-passwd-empty-column", "USER em", "PASS anything", conf=on + "SQLAuthTypes sha256\n")
    add("sql-passwd-cut-column", "USER cut", "PASS wrong", "USER cut", "PASS cut-pw", conf=on + "SQLAuthTypes sha256\n")
    return s


# mod_auth_otp's scenarios: alice has an OTP row (RFC 4226's key, counter 0), bob none; `{TOTP}`/`{TOTP-sha256}`...
# in a step is the code of OTP_SECRET at the moment the line is sent
OTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"        # base32 of b"12345678901234567890"
OTP_CODES = ["755224", "287082", "359152", "969429"]     # its HOTP codes for counters 0..3


def totp_now(digest: str) -> str:
    """OTP_SECRET's TOTP code of this moment (a `{TOTP}` step, computed when the line is sent)."""
    from proftpy.auth.otp import base32_decode, totp
    return totp(base32_decode(OTP_SECRET), time.time(), digest)


def otp_scenarios() -> list[Scenario]:
    """mod_auth_otp over mod_sql_sqlite: the 331 text (and FTPStandardResponse), HOTP codes inside and outside the
    window with the stored counter shown after login, TOTP codes of each digest, AuthOrder with and without `*`,
    RequireTableEntry, a user without a row, a bad secret, a named query that is missing, a table that is not there."""
    s: list[Scenario] = []
    rows = sql_tables("CREATE TABLE auth_otp (user TEXT PRIMARY KEY, secret TEXT, counter INTEGER);",
                      auth_otp=[("alice", OTP_SECRET, 0), ("badsecret", "not=base32", 0)])
    add = lambda name, *steps, conf: s.append(Scenario(name, list(steps), conf, rows))  # noqa: E731
    sql = SQL_USERS.replace("AuthOrder mod_sql.c mod_auth_file.c\n", "")
    queries = ("SQLNamedQuery get-otp SELECT \"secret, counter FROM auth_otp WHERE user = '%{{0}}'\"\n"
               "SQLNamedQuery set-otp UPDATE \"counter = %{{1}} WHERE user = '%{{0}}'\" auth_otp\n"
               "SQLNamedQuery otp-counter SELECT \"counter FROM auth_otp WHERE user = '%u'\"\n"
               "SQLShowInfo NOOP \"200\" \"counter %{{otp-counter}}\"\n")
    otp = "LoadModule mod_sftp.c\nLoadModule mod_auth_otp.c\nAuthOTPEngine on\nAuthOTPLog {base}/otp.log\n"
    hotp = sql + queries + otp + "AuthOTPAlgorithm hotp\nAuthOTPTable sql:/get-otp/set-otp\n"
    loose = hotp + "AuthOrder mod_auth_otp.c mod_auth_file.c\n"
    strict = hotp + "AuthOrder mod_auth_otp.c* mod_auth_file.c\n"
    c0, c1, c2, _ = OTP_CODES
    add("otp-hotp-login", "USER alice", "PASS 000000", "USER alice", f"PASS {c0}", "NOOP", "PWD", "USER alice",
        "USER bob", "PASS x", conf=loose)
    add("otp-hotp-window-ahead", "USER alice", f"PASS {c1}", "NOOP", conf=loose)
    add("otp-hotp-beyond-window", "USER alice", f"PASS {c2}", "USER alice", f"PASS {c0} ", "USER alice",
        "PASS alice-pw", "NOOP", conf=loose)
    add("otp-no-row", "USER bob", f"PASS {c0}", "USER bob", "PASS bob-pw", "NOOP", conf=loose)
    add("otp-authoritative", "USER alice", "PASS alice-pw", "USER alice", f"PASS {c0}", "NOOP", conf=strict)
    add("otp-authoritative-no-row", "USER bob", "PASS bob-pw", "NOOP", conf=strict)
    add("otp-require-table-entry", "USER bob", "PASS bob-pw", "USER badsecret", "PASS x", "USER alice",
        f"PASS {c0}", conf=strict + "AuthOTPOptions RequireTableEntry\n")
    add("otp-require-table-entry-loose", "USER bob", "PASS bob-pw", conf=loose + "AuthOTPOptions RequireTableEntry\n")
    add("otp-standard-response", "USER alice", f"PASS {c0}", conf=strict + "AuthOTPOptions FTPStandardResponse\n")
    add("otp-standard-response-short", "USER bob", "USER alice", f"PASS {c0}",
        conf=strict + "AuthOTPOptions StandardResponse DisplayVerificationCode\n")
    # (no NOOP after these logins: no OTP query opened the database before the chroot, and ProFTPD's mod_sql,
    # outside AuthOrder, would open it after, fail, and end the session)
    add("otp-not-in-authorder", "USER alice", f"PASS {c0}", "USER alice", "PASS alice-pw",
        conf=hotp + "AuthOrder mod_auth_file.c\n")
    add("otp-bad-secret", "USER badsecret", "PASS 123456", "USER alice", f"PASS {c0}", conf=strict)
    add("otp-missing-query", "USER alice", f"PASS {c0}", "USER alice", "PASS alice-pw",
        conf=strict.replace("sql:/get-otp/set-otp", "sql:/get-otp/nothere"))
    add("otp-missing-table", "USER alice", f"PASS {c0}", "USER alice", "PASS alice-pw",
        conf=strict.replace("FROM auth_otp WHERE", "FROM nothere WHERE"))
    add("otp-engine-off", "USER alice", f"PASS {c0}", "USER alice", "PASS alice-pw",
        conf=strict.replace("AuthOTPEngine on", "AuthOTPEngine off"))
    add("otp-no-table", "USER alice", f"PASS {c0}", "USER alice", "PASS alice-pw",
        conf=strict.replace("AuthOTPTable sql:/get-otp/set-otp\n", ""))
    add("otp-empty-password", "USER alice", "PASS ", "USER anonymous", conf=strict)
    totp = sql + queries + otp + "AuthOTPTable sql:/get-otp/set-otp\nAuthOrder mod_auth_otp.c* mod_auth_file.c\n"
    add("otp-totp", "USER alice", "PASS 000000", "USER alice", "PASS {TOTP}", "NOOP", conf=totp)
    for algorithm in ("totp-sha1", "totp-sha256", "totp-sha512"):
        digest = algorithm.partition("-")[2]
        add(f"otp-{algorithm}", "USER alice", "PASS {TOTP-%s}" % digest, "NOOP",
            conf=totp + f"AuthOTPAlgorithm {algorithm}\n")
    return s


def digest_scenarios() -> list[Scenario]:
    """mod_digest: HASH, OPTS HASH, XCRC, MD5, XMD5, XSHA, XSHA1, XSHA256, XSHA512, ranges, refusals, directives."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731

    def files(home: Path) -> None:
        (home / "two words.txt").write_bytes(b"spaced name\n")
        (home / "dir" / "nodigest").mkdir()
        (home / "dir" / "nodigest" / "f.txt").write_bytes(b"no digest here\n")
        os.symlink("/etc/passwd", home / "escape")
        os.symlink("nothere", home / "dangling")
    xs = ("XCRC", "XMD5", "XSHA", "XSHA1", "XSHA256", "XSHA512")
    add("digest-prelogin", "HASH file.txt", "XCRC file.txt", "MD5 file.txt", "OPTS HASH", "OPTS HASH MD5",
        "OPTS HASH")
    add("digest-each", *LOGIN, *(f"{x} file.txt" for x in xs), "MD5 file.txt", "HASH file.txt", "xcrc file.txt",
        "XSHA256 /dir/inner.txt", "XMD5 empty.bin", "HASH empty.bin", "MD5 empty.bin", "XCRC link", "HASH link")
    add("digest-ranges", *LOGIN, "XCRC file.txt 0 5", "XMD5 file.txt 6 24", "XSHA1 file.txt 0 24", "XCRC file.txt 0 25",
        "XCRC file.txt 5", "XCRC file.txt 5 5", "XCRC file.txt 6 5", "XCRC file.txt x 5", "XCRC file.txt 0 5x",
        "XCRC file.txt -1 5", "XCRC file.txt 0 -1", "XCRC file.txt +1 5", "XCRC file.txt 0 5 9",
        "XCRC file.txt 99999999999999999999 5", "XCRC file.txt 1 5 ", "XSHA512 file.txt 23 24")
    add("digest-refused", *LOGIN, "XCRC", "HASH", "MD5", "XCRC nothere", "XCRC nothere 0 5", "HASH nothere",
        "MD5 nothere", "XCRC dir", "HASH dir", "MD5 dir", "XSHA1 /", "HASH /dev/null", "XCRC /dev/null",
        "MD5 /dev/zero", "XCRC ../../../../etc/passwd", "HASH ../../../etc/passwd", "XCRC escape", "HASH dangling",
        "XCRC locked/secret.txt", "HASH locked/secret.txt", "XCRC \"two words.txt\"", "HASH two words.txt",
        "MD5 two words.txt", "XCRC two words.txt", "HASH  file.txt", "XCRC file.txt/x", tree=files)
    add("digest-opts-hash", *LOGIN, "OPTS HASH", "OPTS HASH MD5", "OPTS HASH", "HASH file.txt", "FEAT",
        "OPTS HASH sha-256", "HASH file.txt", "OPTS HASH SHA1", "OPTS HASH crc32", "HASH file.txt", "OPTS HASH SHA-512",
        "HASH file.txt", "OPTS HASH a b", "OPTS HASH FOO", "OPTS HASH")
    add("digest-help", "HELP XCRC", "HELP HASH", "HELP MD5", "HELP XSHA512", *LOGIN, "HELP XSHA")
    add("digest-engine-off", "FEAT", "HELP", *LOGIN, "HASH file.txt", "XCRC file.txt", "MD5 file.txt",
        "OPTS HASH", "OPTS HASH MD5", "FEAT", conf="DigestEngine off\n")
    add("digest-algorithms", "FEAT", "HELP", *LOGIN, "HASH file.txt", "XCRC file.txt", "XMD5 file.txt",
        "MD5 file.txt", "XSHA file.txt", "XSHA256 file.txt", "OPTS HASH", "OPTS HASH SHA-1", "OPTS HASH MD5",
        "OPTS HASH", conf="DigestAlgorithms md5 sha256\n")
    add("digest-default-algorithm", "FEAT", *LOGIN, "HASH file.txt", "OPTS HASH",
        conf="DigestDefaultAlgorithm sha512\n")
    add("digest-default-not-allowed", *LOGIN, "HASH file.txt", "OPTS HASH",
        conf="DigestAlgorithms crc32 md5\nDigestDefaultAlgorithm sha512\n")
    add("digest-max-size", *LOGIN, "XCRC file.txt", "XCRC file.txt 0 10", "XCRC file.txt 0 11", "HASH file.txt",
        "HASH other.txt", "MD5 file.txt", "MD5 other.txt", conf="DigestMaxSize 10\n")
    add("digest-max-size-units", *LOGIN, "XCRC file.txt", conf="DigestMaxSize 1 KB\n")
    add("digest-limit", *LOGIN, "XCRC file.txt", "HASH file.txt", "MD5 file.txt", "XSHA1 file.txt",
        "XCRC nothere", conf="<Limit XCRC HASH MD5>\nDenyAll\n</Limit>\n")
    add("digest-limit-read", *LOGIN, "XCRC file.txt", "HASH file.txt", "XSHA512 file.txt 0 3",
        conf="<Limit READ>\nDenyAll\n</Limit>\n")
    add("digest-enable-off", *LOGIN, "XCRC dir/nodigest/f.txt", "HASH dir/nodigest/f.txt", "MD5 dir/nodigest/f.txt",
        "XCRC dir/inner.txt", tree=files,
        conf="<Directory ~/dir/nodigest>\nDigestEnable off\n</Directory>\n")
    add("digest-enable-off-unchrooted", *LOGIN, "CWD ~", "XCRC dir/nodigest/f.txt", "HASH dir/nodigest/f.txt",
        "MD5 dir/nodigest/f.txt", "XCRC dir/inner.txt", "XCRC dir/nodigest/f.txt 0 3", tree=files,
        conf="DefaultRoot /\n<Directory ~/dir/nodigest>\nDigestEnable off\n</Directory>\n")
    add("digest-special-unchrooted", *LOGIN, "HASH /dev/null", "XCRC /dev/null", "MD5 /dev/zero",
        "XCRC /dev/urandom 0 5", "HASH /DEV/FULL", "XSHA /dev/tty", "HASH /dev", conf="DefaultRoot /\n")
    add("digest-cache-size", *LOGIN, "XCRC file.txt", "XCRC file.txt", "XMD5 file.txt", "HASH file.txt",
        "MD5 other.txt", conf="DigestCache size 1\n")
    add("digest-cache-off", *LOGIN, "XCRC file.txt", "XCRC file.txt", "XMD5 file.txt", "HASH file.txt",
        conf="DigestCache off\n")
    add("digest-cache-upload", *LOGIN, "TYPE I", "PASV", "STOR up.bin", "XCRC up.bin", "HASH up.bin",
        conf="DigestCache size 1\n")
    add("digest-cache-transfers", *LOGIN, "TYPE A", "PASV", "STOR a.txt", "XCRC a.txt", "TYPE I", "REST 1", "PASV",
        "STOR a.txt", "XCRC a.txt", "PASV", "RETR file.txt", "XCRC file.txt", "PASV", "APPE a.txt", "XCRC a.txt",
        "PASV", "APPE new.bin", "XCRC new.bin", conf="DigestCache size 2\nAllowStoreRestart on\n")
    add("digest-cache-nosendfile", *LOGIN, "TYPE I", "PASV", "RETR file.txt", "XCRC file.txt", "XCRC other.txt",
        "PASV", "STOR up.bin", "XCRC up.bin", conf="DigestCache size 1\nUseSendfile off\n")
    add("digest-cache-notransfer", *LOGIN, "TYPE I", "PASV", "STOR up.bin", "XCRC up.bin", "XCRC up.bin",
        conf="DigestCache size 1\nDigestOptions NoTransferCache\n")
    add("digest-huge", *LOGIN, "XCRC huge.bin", "HASH huge.bin", "XSHA256 huge.bin 1 170000000",
        tree=lambda home: os.truncate(home / "huge.bin", 170_000_000) if (home / "huge.bin").touch() is None else None)
    add("digest-options", *LOGIN, "XCRC file.txt", conf="DigestOptions NoTransferCache\nDigestCache maxAge 60\n")
    return s


def shaper_scenarios() -> list[Scenario]:
    """mod_shaper changes no reply: shaped transfers (and a second shaped session logged in meanwhile) answer as
    unshaped ones, with the engine on, off, or left off for want of an upload rate."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", others=0: s.append(Scenario(name, list(steps), conf, None, others))  # noqa
    table = "ShaperTable {dir}/shaper.tab\n"
    xfers = ("TYPE I", "PASV", "RETR file.txt", "PASV", "STOR up.txt", "PASV", "APPE up.txt",
             "REST 3", "PASV", "RETR file.txt", "PASV", "LIST", "NOOP")
    add("shaper-on", *LOGIN, *xfers, conf="ShaperEngine on\nShaperAll rate 200 shares 4\n" + table, others=1)
    add("shaper-session", *LOGIN, *xfers,
        conf="ShaperEngine on\nShaperAll rate 200\nShaperSession priority 3 downshares +2 upshares -1\n" + table)
    add("shaper-downrate-only", *LOGIN, *xfers, conf="ShaperEngine on\nShaperAll downrate 200\n" + table)
    add("shaper-off", *LOGIN, *xfers, conf="ShaperEngine off\nShaperAll rate 200\n" + table)
    return s


FTPDCTL_STEP = "<ftpdctl "          # a pseudo-step `<ftpdctl ARGS>`: the server's ftpdctl's lines for ARGS


def statcache_scenarios() -> list[Scenario]:
    """mod_statcache changes no reply: sizes, listings and errors with the cache on, a session's own changes seen at
    once (STOR, APPE, RNTO, DELE, MKD/RMD, SITE CHMOD), a cached failure, and `ftpdctl statcache` (info's
    counts depend on how many stat calls each server makes: `ftpdctl_lines` puts N for every number)."""
    s: list[Scenario] = []
    ctrls = "ControlsEngine on\nControlsSocket {dir}/ctrls.sock\nControlsACLs all allow user root\n"
    on = ("LoadModule mod_statcache.c\n" + ctrls + "StatCacheEngine on\nStatCacheTable {dir}/statcache.tab\n"
          "StatCacheControlsACLs all allow user root\nStatCacheCapacity 30\n")
    add = lambda name, *steps, conf=on: s.append(Scenario(name, list(steps), f"# {name}\n" + conf))  # noqa
    add("statcache-reads", *LOGIN, "TYPE I", "SIZE file.txt", "SIZE file.txt", "SIZE nope.txt", "SIZE nope.txt",
        "MDTM file.txt", "STAT file.txt", "PASV", "LIST", "PASV", "NLST dir", "CWD dir", "SIZE inner.txt", "CDUP",
        "CWD nope", "<ftpdctl statcache info>", "<ftpdctl statcache>", "<ftpdctl statcache flush>")
    add("statcache-changes", *LOGIN, "TYPE I", "SIZE file.txt", "PASV", "STOR file.txt", "SIZE file.txt", "PASV",
        "APPE file.txt", "SIZE file.txt", "RNFR file.txt", "RNTO moved.txt", "SIZE file.txt", "SIZE moved.txt",
        "SITE CHMOD 600 moved.txt", "STAT moved.txt", "DELE moved.txt", "SIZE moved.txt", "MKD new", "CWD new",
        "CDUP", "RMD new", "CWD new", "SIZE up.txt", "PASV", "STOR up.txt", "SIZE up.txt")
    add("statcache-dir-rename", *LOGIN, "TYPE I", "SIZE dir/inner.txt", "RNFR dir", "RNTO moved",
        "SIZE dir/inner.txt", "SIZE moved/inner.txt")
    add("statcache-max-age", *LOGIN, "TYPE I", "SIZE nope.txt", "SIZE file.txt", "<ftpdctl statcache info>",
        conf=on + "StatCacheMaxAge 30 0\n")
    add("statcache-dump", *LOGIN, "TYPE I", "SIZE file.txt", "<ftpdctl statcache dump>",
        conf=on.replace("StatCacheCapacity 30", "StatCacheCapacity 10"))
    add("statcache-no-acl", *LOGIN, "<ftpdctl statcache info>",
        conf=on.replace("StatCacheControlsACLs all allow user root\n", ""))
    add("statcache-off", *LOGIN, "TYPE I", "SIZE file.txt", "<ftpdctl statcache info>",
        conf=on.replace("StatCacheEngine on", "StatCacheEngine off"))
    return s


def ftpdctl_lines(server: "Server", step: str) -> list[str]:
    """`<ftpdctl ARGS>` run with the server's own ftpdctl on its ControlsSocket; numbers become N."""
    args = step[len(FTPDCTL_STEP):-1].split()
    tool = ["/usr/bin/ftpdctl"] if server.name == "proftpd" else [sys.executable, "-m", "proftpy.tools.ftpdctl"]
    out = subprocess.run(tool + ["-s", str(server.base / "ctrls.sock"), *args], capture_output=True, text=True,
                         timeout=30)
    return [re.sub(r"\d+(\.\d+)?", "N", line) for line in (out.stdout + out.stderr).splitlines()]


def ratio_scenarios() -> list[Scenario]:
    """mod_ratio: the lines it adds under PASS, LIST, NLST, RETR and STOR, RETR refused once a file or byte
    ratio is used up, ratios by user, group, host and anonymous login, its messages, SITE RATIO, SaveRatios."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731
    on = "Ratios on\n"
    xfers = ("PASV", "LIST", "PASV", "NLST dir", "PASV", "RETR file.txt", "PASV", "STOR up.txt", "PASV",
             "RETR other.txt", "SITE RATIO", "CWD dir", "PWD", "CDUP", "NOOP")
    def kilobytes(home: Path) -> None:
        (home / "4k.bin").write_bytes(b"k" * 4096)
        (home / "2k.bin").write_bytes(b"k" * 2048)
    add("ratio-leech", *LOGIN, *xfers, "SITE HELP", conf=on)
    add("ratio-prelogin", "SITE RATIO", "SITE HELP", "USER " + USER, "SITE RATIO", "PASS " + PASSWORD, conf=on)
    add("ratio-off", *LOGIN, *xfers, "SITE RATIO", conf="Ratios off\nUserRatio * 1 0 0 0\n")
    add("ratio-none", *LOGIN, "PASV", "RETR file.txt", "SITE RATIO", "SITE HELP")
    add("ratio-user-files", *LOGIN, "PASV", "RETR file.txt", "PASV", "STOR up.txt", "PASV", "RETR file.txt",
        "PASV", "RETR other.txt", "PASV", "LIST", "SITE RATIO", conf=on + "UserRatio alice 1 0 0 0\n")
    add("ratio-user-star", *LOGIN, "PASV", "RETR file.txt", "PASV", "RETR other.txt", "PASV", "RETR file.txt",
        "PASV", "STOR up.txt", "PASV", "RETR file.txt", "SITE RATIO",
        conf=on + "UserRatio bob 5 5 0 0\nUserRatio * 2 1 0 0\n")
    add("ratio-negative", *LOGIN, "PASV", "RETR file.txt", "PASV", "STOR a.txt", "PASV", "STOR b.txt", "PASV",
        "RETR file.txt", "PASV", "RETR file.txt", "SITE RATIO", conf=on + "UserRatio alice -2 0 -3 0\n")
    add("ratio-bytes", *LOGIN, "TYPE I", "PASV", "RETR file.txt", "PASV", "RETR 4k.bin", "PASV", "RETR 2k.bin",
        "PASV", "RETR file.txt", "PASV", "STOR big.bin <<big", "PASV", "RETR 4k.bin", "SITE RATIO",
        conf=on + "UserRatio alice 0 0 1 3\n", tree=kilobytes)
    add("ratio-negative-credit", *LOGIN, "PASV", "RETR file.txt", "SITE RATIO",
        conf=on + "UserRatio alice 0 0 1 -3000\n")
    add("ratio-display-login", *LOGIN, "CWD dir", conf=on + 'DisplayLogin welcome.msg\nCwdRatioMsg "ratio"\n'
        "DisplayChdir .message\n", tree=lambda home: ((home / "welcome.msg").write_bytes(b"Welcome %U\nline 2\n"),
                                                     (home / "dir" / ".message").write_bytes(b"in dir\n")))
    add("ratio-group", *LOGIN, "PASV", "RETR file.txt", "SITE RATIO", conf=on + "GroupRatio ftpusers 1 1 0 0\n")
    add("ratio-group-supplementary", *LOGIN, "PASV", "RETR file.txt", "SITE RATIO",
        conf=on + "GroupRatio shared 1 1 0 0\n")
    add("ratio-host", *LOGIN, "PASV", "RETR file.txt", "SITE RATIO",
        conf=on + "HostRatio 10.0.0.1 9 9 0 0\nHostRatio 127.0.0. 3 2 0 0\nUserRatio alice 1 0 0 0\n")
    add("ratio-host-exact", *LOGIN, "SITE RATIO", conf=on + "HostRatio 127.0.0.1 4 0 0 0\n")
    anon = ("<Anonymous {base}/home/bob>\nUser bob\nGroup others\nUserAlias anonymous bob\n"
            "RequireValidShell off\n</Anonymous>\n")
    # an anonymous session is known by the password it gave (an e-mail address), as ProFTPD's session.anon_user
    add("ratio-anon", "USER anonymous", "PASS x@y", "PASV", "RETR file.txt", "SITE RATIO",
        conf=on + "AnonRatio x@y 1 0 0 0\nUserRatio * 7 7 0 0\n" + anon)
    add("ratio-anon-other", "USER anonymous", "PASS other@y", "PASV", "RETR file.txt", "SITE RATIO",
        conf=on + "AnonRatio x@y 1 0 0 0\nUserRatio * 7 7 0 0\n" + anon)
    add("ratio-anon-star", "USER anonymous", "PASS x@y", "SITE RATIO", conf=on + "AnonRatio * 2 2 0 0\n" + anon)
    add("ratio-anon-star-user", *LOGIN, "SITE RATIO", conf=on + "AnonRatio * 2 2 0 0\n" + anon)
    add("ratio-messages", *LOGIN, "PASV", "RETR file.txt", "CWD dir", "CWD nothere", "XCWD /", "PASV",
        "RETR 4k.bin", tree=kilobytes,
        conf=on + 'UserRatio alice 1 0 1 0\nFileRatioErrMsg "Upload first"\nByteRatioErrMsg "More bytes"\n'
        'CwdRatioMsg "See the ratios"\nCwdRatioMsg "second line"\n')
    add("ratio-leech-message", *LOGIN, "PASV", "NLST", conf=on + 'LeechRatioMsg "free for all"\n')
    add("ratio-cwd-message-off", *LOGIN, "CWD dir", "CWD /", conf='CwdRatioMsg "ratios here"\n')
    ratio_file = on + "SaveRatios on\nRatioFile /ratios/ratios\nRatioTempFile /ratios/ratios.tmp\n"
    def tallies(home: Path) -> None:
        (home / "ratios").mkdir()
        (home / "ratios" / "ratios").write_bytes(b"bob|1|10|2|20\n")
    add("ratio-save", *LOGIN, "PASV", "STOR up.txt", "PASV", "RETR file.txt", "CWD ratios", "TYPE A", "PASV",
        "RETR ratios", conf=ratio_file + "UserRatio alice 3 0 0 0\n", tree=tallies)
    def known(home: Path) -> None:
        (home / "ratios").mkdir()
        (home / "ratios" / "ratios").write_bytes(b"bob|1|10|2|20\nalice|2|0|1|0\n")
    add("ratio-save-known", *LOGIN, "SITE RATIO", "PASV", "RETR file.txt", "PASV", "RETR file.txt", "PASV",
        "RETR ratios/ratios", conf=ratio_file + "UserRatio alice 1 0 0 0\n", tree=known)
    add("ratio-save-nofile", *LOGIN, "PASV", "STOR up.txt", "SITE RATIO", conf=ratio_file)
    return s


def quota_scenarios() -> list[Scenario]:
    """mod_quotatab with file tables: limits of each kind, hard and soft, what credits a tally back, SITE QUOTA."""
    from proftpy import quotatab as qt
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731

    def tables(*limits: "qt.Limit", tallies: tuple = ()) -> Callable[[Path], None]:
        """A tree callback writing fresh limit and tally tables beside the homes (`{base}/quota.limit|tally`)."""
        def tree(home: Path) -> None:
            base = home.parent.parent
            for kind, records in (("limit", limits), ("tally", tallies)):
                (base / f"quota.{kind}").unlink(missing_ok=True)
                qt.create(str(base / f"quota.{kind}"), kind, records)
        return tree

    conf = ("QuotaEngine on\nQuotaLimitTable file:{base}/quota.limit\nQuotaTallyTable file:{base}/quota.tally\n"
            "AllowOverwrite on\nAllowStoreRestart on\n")
    user = lambda **kw: qt.Limit(USER, qt.USER, **kw)  # noqa: E731
    put = lambda name: ("PASV", f"STOR {name}")  # noqa: E731
    get = lambda name: ("PASV", f"RETR {name}")  # noqa: E731
    add("quota-site", "SITE QUOTA", "SITE HELP", *LOGIN, "SITE HELP", "SITE QUOTA", "SITE QUOTA x", "site quota",
        "HELP SITE", conf=conf, tree=tables(user(bytes_in=100, files_out=3)))
    add("quota-none", "USER bob", "PASS bob-pw", "SITE QUOTA", *put("a.txt"), conf=conf,
        tree=tables(user(bytes_in=10)))
    for kind, limit_type in (("hard", qt.HARD), ("soft", qt.SOFT)):
        add(f"quota-bytes-in-{kind}", *LOGIN, *put("a.txt"), "SITE QUOTA", *put("b.txt"), "NLST", "SITE QUOTA",
            *put("c.txt"), "SITE QUOTA", conf=conf, tree=tables(user(limit_type=limit_type, bytes_in=50)))
        add(f"quota-bytes-xfer-{kind}", *LOGIN, *get("file.txt"), *put("a.txt"), "SITE QUOTA", *get("file.txt"),
            *put("b.txt"), "NLST", conf=conf, tree=tables(user(limit_type=limit_type, bytes_xfer=60)))
        add(f"quota-appe-{kind}", *LOGIN, *put("a.txt"), "PASV", "APPE a.txt", "SITE QUOTA", "NLST", conf=conf,
            tree=tables(user(limit_type=limit_type, bytes_in=60)))
    add("quota-big-upload-hard", *LOGIN, "TYPE I", "PASV", "STOR big.bin <<big", "NLST", "SITE QUOTA", conf=conf,
        tree=tables(user(bytes_in=100000)))
    add("quota-files-in", *LOGIN, *put("a.txt"), *put("b.txt"), "PASV", "STOU", "SITE QUOTA", conf=conf,
        tree=tables(user(files_in=1)))
    add("quota-files-xfer", *LOGIN, *get("file.txt"), *put("a.txt"), *get("file.txt"), *put("b.txt"), conf=conf,
        tree=tables(user(files_xfer=2)))
    add("quota-download", *LOGIN, *get("file.txt"), *get("file.txt"), *get("other.txt"), "SITE QUOTA", conf=conf,
        tree=tables(user(bytes_out=30)))
    add("quota-download-files", *LOGIN, *get("file.txt"), *get("other.txt"), "SITE QUOTA", conf=conf,
        tree=tables(user(files_out=1)))
    add("quota-dele-rnto", *LOGIN, *put("a.txt"), "SITE QUOTA", "DELE a.txt", "SITE QUOTA", "DELE file.txt",
        "SITE QUOTA", *put("b.txt"), "RNFR b.txt", "RNTO other.txt", "SITE QUOTA", "DELE nothere", "SITE QUOTA",
        conf=conf, tree=tables(user(bytes_in=1000, files_in=5, bytes_xfer=1000, files_xfer=5)))
    add("quota-rest-upload", *LOGIN, "TYPE I", "REST 5", *put("file.txt"), "SITE QUOTA", conf=conf,
        tree=tables(user(bytes_in=1000, files_in=5)))
    add("quota-per-session", *LOGIN, *put("a.txt"), "SITE QUOTA", *put("b.txt"), "SITE QUOTA", conf=conf,
        tree=tables(user(per_session=True, bytes_in=50), tallies=(qt.Tally(USER, qt.USER, bytes_in=45),)))
    add("quota-stored-tally", *LOGIN, "SITE QUOTA", *put("a.txt"), "SITE QUOTA", conf=conf,
        tree=tables(user(bytes_in=50, files_in=9), tallies=(qt.Tally(USER, qt.USER, bytes_in=45, files_in=9),)))
    for units in ("b", "Kb", "Mb", "Gb"):
        add(f"quota-units-{units.lower()}", *LOGIN, *put("a.txt"), "SITE QUOTA", *put("b.txt"), *put("c.txt"),
            conf=conf + f"QuotaDisplayUnits {units}\n",
            tree=tables(user(bytes_in=40, bytes_out=3 << 30, bytes_xfer=5 << 20, files_in=7)))
    add("quota-show-off", *LOGIN, "SITE QUOTA", "SITE HELP", conf=conf + "QuotaShowQuotas off\n",
        tree=tables(user(bytes_in=50)))
    add("quota-group", *LOGIN, *put("a.txt"), *put("b.txt"), "SITE QUOTA", conf=conf,
        tree=tables(qt.Limit("others", qt.GROUP, bytes_in=5), qt.Limit("ftpusers", qt.GROUP, bytes_in=40)))
    add("quota-supplementary-group", *LOGIN, *put("a.txt"), *put("b.txt"), "SITE QUOTA", conf=conf,
        tree=tables(qt.Limit("shared", qt.GROUP, bytes_in=40)))
    for kind, limit_type in (("hard", qt.HARD), ("soft", qt.SOFT)):
        add(f"quota-copy-{kind}", *LOGIN, "SITE CPFR file.txt", "SITE CPTO c1.txt", "SITE QUOTA",
            "SITE COPY file.txt c2.txt", "SITE QUOTA", "SITE COPY file.txt c3.txt", "PASV", "NLST", "SITE QUOTA",
            conf=conf,
            tree=tables(user(limit_type=limit_type, bytes_in=40)))
    add("quota-copy-files", *LOGIN, "SITE COPY file.txt c1.txt", "SITE COPY other.txt c1.txt",
        "SITE COPY file.txt c2.txt", "SITE QUOTA", conf=conf, tree=tables(user(files_in=1)))
    add("quota-copy-tree", *LOGIN, "SITE CPFR dir", "SITE CPTO d2", "SITE QUOTA", "SITE COPY dir d3", "SITE QUOTA",
        conf=conf, tree=tables(user(bytes_in=10, files_in=9)))
    add("quota-copy-big-hard", *LOGIN, "SITE COPY big.bin c.bin", "PASV", "NLST", "SITE QUOTA", conf=conf,
        tree=lambda home: (tables(user(bytes_in=100000))(home), (home / "big.bin").write_bytes(BIG_UPLOAD)))
    add("quota-all", *LOGIN, *put("a.txt"), *put("b.txt"), "SITE QUOTA", conf=conf,
        tree=tables(qt.Limit("", qt.ALL, limit_type=qt.SOFT, bytes_in=40)))
    add("quota-user-before-group", *LOGIN, *put("a.txt"), *put("b.txt"), "SITE QUOTA", conf=conf,
        tree=tables(qt.Limit("ftpusers", qt.GROUP, bytes_in=5), user(bytes_in=1000)))
    add("quota-default", *LOGIN, *put("a.txt"), *put("b.txt"), "SITE QUOTA", "USER bob", "PASS bob-pw",
        "SITE QUOTA", conf=conf + "QuotaDefault user false soft 50 0 0 0 0 0\n", tree=tables())
    add("quota-default-group", *LOGIN, *put("a.txt"), "SITE QUOTA", conf=conf +
        "QuotaDefault group true hard 0 0 0 1 0 0\nQuotaDefault all false hard 1 1 1 1 1 1\n", tree=tables())
    add("quota-exclude", *LOGIN, *put("a.tmp"), *put("a.txt"), *put("b.tmp"), "SITE QUOTA", "DELE a.tmp",
        "SITE QUOTA", conf=conf + "QuotaExcludeFilter \\.tmp$\n", tree=tables(user(bytes_in=40)))
    add("quota-directory-tally", *LOGIN, "MKD d1", "SITE QUOTA", "MKD d2", "MKD d3", "RMD d1", "SITE QUOTA",
        "MKD d4", conf=conf + "QuotaDirectoryTally on\n", tree=tables(user(files_in=2)))
    add("quota-directory-tally-bytes", *LOGIN, "MKD d1", "PASV", "NLST", "SITE QUOTA", conf=conf + "QuotaDirectoryTally on\n",
        tree=tables(user(bytes_in=100)))
    add("quota-no-tally-table", *LOGIN, "SITE QUOTA", *put("a.txt"), conf=(
        "QuotaEngine on\nQuotaLimitTable file:{base}/quota.limit\nQuotaTallyTable file:{base}/missing.tally\n"),
        tree=tables(user(bytes_in=10)))
    add("quota-bad-table", *LOGIN, "SITE QUOTA", conf=(
        "QuotaEngine on\nQuotaLimitTable file:{base}/quota.tally\nQuotaTallyTable file:{base}/quota.tally\n"),
        tree=tables(user(bytes_in=10)))
    for dirs in ("off", "on"):
        add(f"quota-scan-on-login-dirs-{dirs}", *LOGIN, "SITE QUOTA", *put("a.txt"), "SITE QUOTA",
            conf=conf + f"QuotaOptions ScanOnLogin\nQuotaDirectoryTally {dirs}\n",
            tree=tables(user(bytes_in=100000, files_in=100),
                        tallies=(qt.Tally(USER, qt.USER, bytes_in=7, files_in=70),)))
    add("quota-scan-on-login-group", "USER bob", "PASS bob-pw", "SITE QUOTA",
        conf=conf + "QuotaOptions ScanOnLogin\n", tree=tables(qt.Limit("others", qt.GROUP, files_in=100)))
    variables = " ".join(f"%{{mod_quotatab.{part}.{kind}_{way}}}" for part in ("limit", "tally")
                         for kind in ("bytes", "files") for way in ("in", "out", "xfer"))
    message = "DisplayLogin {base}/quota.msg\nDisplayConnect {base}/quota.msg\n"

    def with_message(tree: Callable[[Path], None]) -> Callable[[Path], None]:
        def both(home: Path) -> None:
            tree(home)
            (home.parent.parent / "quota.msg").write_text(variables + "\n")
        return both
    for units in ("b", "Mb"):
        add(f"quota-display-{units.lower()}", *LOGIN, *put("a.txt"), conf=conf + message + f"QuotaDisplayUnits {units}\n",
            tree=with_message(tables(user(bytes_in=3 << 20, files_out=4),
                                     tallies=(qt.Tally(USER, qt.USER, bytes_in=1 << 20, files_out=2),))))
    add("quota-display-no-limit", "USER bob", "PASS bob-pw", conf=conf + message,
        tree=with_message(tables(user(bytes_in=10))))
    add("quota-display-engine-off", *LOGIN, conf=message, tree=with_message(tables()))
    add("quota-failing-commands", *LOGIN, *put("a.txt"), *put("nodir/b.txt"), "PASV", "APPE a.txt", "PASV",
        "APPE nodir/c.txt", *get("nothere"), *get("file.txt"), *get("nothere"), "MKD d", "RMD d", "SITE QUOTA",
        conf=conf, tree=tables(user(files_in=1, files_xfer=3, bytes_out=10)))
    add("quota-appe-files", *LOGIN, "PASV", "APPE new.txt", "PASV", "APPE new.txt", "PASV", "APPE other.txt",
        "SITE QUOTA", conf=conf, tree=tables(user(files_in=1, bytes_in=1000)))
    add("quota-abort-delete-aborted", *LOGIN, "TYPE I", "PASV", "STOR up.bin <<stall", "SITE QUOTA",
        conf=conf + "DeleteAbortedStores on\nTimeoutStalled 1\n", tree=tables(user(bytes_in=1 << 30, files_in=9)))
    add("quota-engine-off", *LOGIN, "SITE QUOTA", *put("a.txt"), *put("b.txt"),
        conf=conf.replace("QuotaEngine on", "QuotaEngine off"), tree=tables(user(bytes_in=10)))
    return s


# mod_sql with the sql-* scenarios' users, for scenarios of modules that use its database: ProFTPD's mod_sql then
# connects before the chroot (with SQLAuthenticate off it would connect at the module's first query, after it, and
# fail to open the file)
SQL_USERS = ("LoadModule mod_sql.c\nLoadModule mod_sql_sqlite.c\nAuthOrder mod_sql.c mod_auth_file.c\n"
             "SQLBackend sqlite3\nSQLConnectInfo {base}/sql.db\nSQLAuthTypes Crypt Plaintext\n"
             "SQLAuthenticate users groups\nSQLUserInfo users userid passwd uid gid homedir shell\n"
             "SQLGroupInfo groups groupname gid members\nSQLMinID 500\n")


def sql_tables(schema: str, **rows: tuple) -> Callable[[Path], None]:
    """A tree callback: the sql-* scenarios' database ({base}/sql.db) with the tables of `schema` and their rows
    (table name -> rows)."""
    def tree(home: Path) -> None:
        import sqlite3
        if home.name != USER:
            return
        sql_database(home)
        with sqlite3.connect(home.parent.parent / "sql.db") as conn:
            conn.executescript(schema)
            for table, values in rows.items():
                if values:
                    conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values[0]))})", values)
        conn.close()
    return tree


def sql_quota_scenarios() -> list[Scenario]:
    """mod_quotatab with SQL tables (mod_quotatab_sql over mod_sql_sqlite): the named queries of ProFTPD's
    documentation, limit rows of each kind, a stored tally row, the row made at login, a query that is missing; an
    SQL user (carol) and file users (alice, bob) alike."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731

    def database(*limits: tuple, tallies: tuple = ()) -> Callable[[Path], None]:
        """Limit rows (name, type, per-session, hard/soft, 3 byte and 3 file limits) and tally rows (name, type,
        3 byte and 3 file counts)."""
        return sql_tables("CREATE TABLE quotalimits (name TEXT, quota_type TEXT, per_session TEXT, limit_type TEXT, "
                          "bytes_in_avail REAL, bytes_out_avail REAL, bytes_xfer_avail REAL, files_in_avail INTEGER, "
                          "files_out_avail INTEGER, files_xfer_avail INTEGER);"
                          "CREATE TABLE quotatallies (name TEXT, quota_type TEXT, bytes_in_used REAL, "
                          "bytes_out_used REAL, bytes_xfer_used REAL, files_in_used INTEGER, files_out_used INTEGER, "
                          "files_xfer_used INTEGER);", quotalimits=limits, quotatallies=tallies)

    conf = (SQL_USERS + "LoadModule mod_quotatab_sql.c\n"
            "SQLNamedQuery get-limit SELECT \"name, quota_type, per_session, limit_type, bytes_in_avail, "
            "bytes_out_avail, bytes_xfer_avail, files_in_avail, files_out_avail, files_xfer_avail FROM quotalimits "
            "WHERE name = '%{{0}}' AND quota_type = '%{{1}}'\"\n"
            "SQLNamedQuery get-tally SELECT \"name, quota_type, bytes_in_used, bytes_out_used, bytes_xfer_used, "
            "files_in_used, files_out_used, files_xfer_used FROM quotatallies WHERE name = '%{{0}}' AND "
            "quota_type = '%{{1}}'\"\n"
            "SQLNamedQuery update-tally UPDATE \"bytes_in_used = bytes_in_used + %{{0}}, bytes_out_used = "
            "bytes_out_used + %{{1}}, bytes_xfer_used = bytes_xfer_used + %{{2}}, files_in_used = files_in_used + "
            "%{{3}}, files_out_used = files_out_used + %{{4}}, files_xfer_used = files_xfer_used + %{{5}} WHERE "
            "name = '%{{6}}' AND quota_type = '%{{7}}'\" quotatallies\n"
            "SQLNamedQuery insert-tally INSERT \"%{{0}}, %{{1}}, %{{2}}, %{{3}}, %{{4}}, %{{5}}, %{{6}}, %{{7}}\" "
            "quotatallies\n"
            "SQLNamedQuery show-tally SELECT \"bytes_in_used || '/' || files_in_used || '/' || files_out_used || '/' "
            "|| count(*) FROM quotatallies\"\nSQLShowInfo NOOP \"200\" \"tally %{{show-tally}}\"\n"
            "QuotaEngine on\nQuotaLimitTable sql:/get-limit\nQuotaTallyTable sql:/get-tally/update-tally/insert-tally\n"
            "AllowOverwrite on\n")
    user = lambda kind="hard", per="false", b=(0, 0, 0), f=(0, 0, 0): (USER, "user", per, kind, *b, *f)  # noqa: E731
    put = lambda name: ("PASV", f"STOR {name}")  # noqa: E731
    get = lambda name: ("PASV", f"RETR {name}")  # noqa: E731
    for kind in ("hard", "soft"):
        add(f"sql-quota-bytes-in-{kind}", *LOGIN, "NOOP", *put("a.txt"), "SITE QUOTA", *put("b.txt"), "NLST",
            "SITE QUOTA", *put("c.txt"), "NOOP", conf=conf, tree=database(user(kind, b=(50, 0, 0))))
    add("sql-quota-big-upload-hard", *LOGIN, "TYPE I", "PASV", "STOR big.bin <<big", "NLST", "SITE QUOTA", "NOOP",
        conf=conf, tree=database(user(b=(100000, 0, 0))))
    add("sql-quota-files", *LOGIN, *put("a.txt"), *put("b.txt"), *get("file.txt"), *get("file.txt"), "DELE a.txt",
        "SITE QUOTA", "NOOP", conf=conf, tree=database(user(f=(2, 1, 0))))
    add("sql-quota-stored-tally", *LOGIN, "SITE QUOTA", *put("a.txt"), "SITE QUOTA", "NOOP", conf=conf,
        tree=database(user(b=(50, 0, 0), f=(9, 0, 0)), tallies=((USER, "user", 45, 0, 0, 9, 0, 0),)))
    add("sql-quota-per-session", *LOGIN, *put("a.txt"), "SITE QUOTA", *put("b.txt"), "NOOP", conf=conf,
        tree=database(user(per="true", b=(50, 0, 0)), tallies=((USER, "user", 45, 0, 0, 0, 0, 0),)))
    add("sql-quota-group", *LOGIN, *put("a.txt"), *put("b.txt"), "SITE QUOTA", "NOOP", conf=conf,
        tree=database(("others", "group", "false", "hard", 5, 0, 0, 0, 0, 0),
                      ("ftpusers", "group", "false", "hard", 40, 0, 0, 0, 0, 0)))
    add("sql-quota-all", *LOGIN, *put("a.txt"), *put("b.txt"), "SITE QUOTA", "NOOP", conf=conf,
        tree=database(("", "all", "false", "soft", 40, 0, 0, 0, 0, 0)))
    add("sql-quota-sql-user", "USER carol", "PASS carol-pw", *put("a.txt"), *put("b.txt"), "SITE QUOTA", "NOOP",
        conf=conf, tree=database(("carol", "user", "false", "hard", 0, 0, 0, 1, 0, 0)))
    add("sql-quota-none", "USER bob", "PASS bob-pw", "SITE QUOTA", *put("a.txt"), "NOOP", conf=conf,
        tree=database(user(b=(10, 0, 0))))
    add("sql-quota-odd-values", *LOGIN, "SITE QUOTA", *put("a.txt"), "SITE QUOTA", "NOOP", conf=conf,
        tree=database((USER, "USER", "maybe", "firm", "20", None, "x", "1.9", None, 0)))
    add("sql-quota-missing-query", *LOGIN, "SITE QUOTA", *put("a.txt"), "NOOP",
        conf=conf.replace("sql:/get-limit", "sql:/no-such-query"), tree=database(user(b=(10, 0, 0))))
    return s


def sql_wrap_scenarios() -> list[Scenario]:
    """mod_wrap2 with SQL tables (mod_wrap2_sql over mod_sql_sqlite): rows that admit or refuse the client before
    PASS, per user, per primary group, for everyone, at connect, and a query that is not defined."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731

    def database(allow: tuple = (), deny: tuple = ()) -> Callable[[Path], None]:
        """wrap_allow and wrap_deny rows of (name, clients)."""
        return sql_tables("CREATE TABLE wrap_allow (name TEXT, clients TEXT);"
                          "CREATE TABLE wrap_deny (name TEXT, clients TEXT);", wrap_allow=allow, wrap_deny=deny)

    conf = (SQL_USERS + "LoadModule mod_wrap2.c\nLoadModule mod_wrap2_sql.c\n"
            "SQLNamedQuery allowed SELECT \"clients FROM wrap_allow WHERE name = '%{{0}}'\"\n"
            "SQLNamedQuery denied SELECT \"clients FROM wrap_deny WHERE name = '%{{0}}'\"\n"
            "WrapEngine on\nWrapDenyMsg \"Refused: %u\"\nWrapAllowMsg \"Welcome, %u\"\n")
    users = conf + "WrapUserTables alice,carol sql:/allowed sql:/denied\n"
    add("sql-wrap-user-denied", *LOGIN, "NOOP", conf=users, tree=database(deny=((USER, "127.0.0.1"),)))
    add("sql-wrap-user-allowed", *LOGIN, "PWD", conf=users,
        tree=database(allow=((USER, "127.0.0.1, 10.0.0.1"),), deny=((USER, "ALL"),)))
    add("sql-wrap-user-no-rows", "USER carol", "PASS carol-pw", "PWD", conf=users, tree=database())
    add("sql-wrap-sql-user-denied", "USER carol", "PASS carol-pw", conf=users,
        tree=database(deny=(("carol", "ALL EXCEPT 10.0.0.0/255.0.0.0"),)))
    add("sql-wrap-group", "USER carol", "PASS carol-pw", *LOGIN, "PWD",
        conf=conf + "WrapGroupTables sqlstaff sql:/allowed sql:/denied\n",
        tree=database(deny=(("sqlstaff", "127.0.0.1"),)))
    add("sql-wrap-global", "USER bob", "PASS bob-pw", conf=conf + "WrapTables sql:/allowed sql:/denied\n",
        tree=database(allow=((USER, "127.0.0.1"),), deny=(("", "ALL"),)))
    add("sql-wrap-check-on-connect", "NOOP", *LOGIN,
        conf=conf + "WrapTables sql:/allowed sql:/denied\nWrapOptions CheckOnConnect\n",
        tree=database(deny=(("", "127.0.0.1"),)))
    add("sql-wrap-missing-query", *LOGIN, "PWD", conf=users.replace("sql:/denied", "sql:/nothing"),
        tree=database(deny=((USER, "ALL"),)))
    return s


RADIUS_STEP = "<radacct>"           # a pseudo-step: the accounting records freeradius wrote for this server so far
RADIUS: "object | None" = None      # the freeradius both servers ask (radius-* scenarios), tests/radius_helpers.py


def radius_scenarios() -> list[Scenario]:
    """mod_radius (Debian's, `LoadModule mod_radius.c`) and proftpy against one freeradius on private loopback
    ports (tests/radius_helpers.py: its users, Reply-Messages, Vendor-Specific attributes): logins accepted and
    rejected, the yes/no mode for an AuthUserFile account, RadiusRealm, servers down, and the accounting records
    each server made (`<radacct>`: Acct-Session-Id, times and timestamps left out)."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731
    head = "LoadModule mod_radius.c\nRadiusEngine on\nRadiusLog {dir}/radius.log\n"
    auth = "RadiusAuthServer 127.0.0.1:{radius_auth} {radius_secret} 2\n"
    acct = "RadiusAcctServer 127.0.0.1:{radius_acct} {radius_secret} 2\n"
    info = f"RadiusUserInfo {UID} {UID} {{base}}/home/{USER} /bin/sh\n"
    user_info = "AuthOrder mod_radius.c mod_auth_file.c\n" + head + auth + acct + info
    yes_no = "AuthOrder mod_radius.c mod_auth_file.c\n" + head + auth
    add("radius-login", "USER radwelcome", "PASS welcome-radius", "PWD", "PASV", "NLST", conf=user_info)
    add("radius-class-reply-message", "USER radalice", "PASS alice-radius", "PWD", conf=user_info)
    add("radius-reject", "USER radreject", "PASS anything", "USER nosuch", "PASS x", "USER radbob", "PASS wrong",
        conf=user_info)
    add("radius-reject-then-accept", "USER radbob", "PASS wrong", "USER radbob", "PASS bob-radius", "PWD",
        conf=user_info)
    add("radius-pass-first", "PASS x", "USER radbob", "PASS bob-radius", conf=user_info)
    add("radius-reply-messages", "USER radmsg", "PASS msg-radius", conf=user_info)
    add("radius-accounting", "USER radbob", "PASS bob-radius", "TYPE I", "PASV", "STOR up.bin", "PASV",
        "RETR file.txt", "PASV", "LIST", "QUIT", RADIUS_STEP, conf=user_info)
    add("radius-vendor-attributes", "USER radvsa", "PASS vsa-radius", "PWD", "PASV", "NLST",
        conf=user_info.replace(info, f"RadiusUserInfo $(10:{UID}) $(11:{UID}) $(12:{{base}}/home/{USER}) "
                                     "/bin/sh\nDefaultRoot ~\n"))
    add("radius-session-timeout", "USER radtimeout", "PASS timeout-radius", "PWD", conf=user_info)
    add("radius-ignore-options", "USER radwelcome", "PASS welcome-radius", "USER radtimeout", "PASS timeout-radius",
        "PWD", conf=user_info + "RadiusOptions IgnoreReplyMessage IgnoreSessionTimeout IgnoreIdleTimeout\n")
    add("radius-yes-no", "USER alice", "PASS alice-pw", "USER alice", "PASS alice-radius", "PWD", conf=yes_no)
    add("radius-realm", "USER alice", "PASS alice-radius", "USER alice", "PASS alice-realm", "PWD",
        conf=yes_no + "RadiusRealm @example.test\n")
    down = "RadiusAuthServer 127.0.0.1:{radius_closed} {radius_secret} 1\n"
    add("radius-down-yes-no", "USER alice", "PASS alice-radius", "USER alice", "PASS alice-pw", "PWD",
        conf=yes_no.replace(auth, down))
    add("radius-down-user-info", "USER radwelcome", "PASS welcome-radius", *LOGIN, "PWD",
        conf=user_info.replace(auth, down))
    add("radius-wrong-secret", "USER radwelcome", "PASS welcome-radius", *LOGIN,
        conf=user_info.replace(auth, "RadiusAuthServer 127.0.0.1:{radius_auth} not-the-secret 1\n"))
    add("radius-failover", "USER radwelcome", "PASS welcome-radius", "PWD",
        conf=user_info.replace(auth, "RadiusAuthServer 127.0.0.1:{radius_auth} not-the-secret 1\n" + auth))
    return s


def read_radacct(server: Server) -> list[str]:
    """The accounting records freeradius received from this server (by its NAS-Port), the session's Stop included:
    what must differ (Acct-Session-Id, the times) left out."""
    deadline = time.monotonic() + 5
    while True:
        records = [r for r in RADIUS.records() if r.get("NAS-Port") == str(server.port)][server.radius_mark:]
        if (records and records[-1].get("Acct-Status-Type") == "Stop") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    skip = {"Acct-Session-Id", "Event-Timestamp", "Timestamp", "Acct-Session-Time", "NAS-Port"}
    return [f"radacct: {r.get('Acct-Status-Type')}: " + ", ".join(f"{k}={v}" for k, v in r.items() if k not in skip)
            for r in records] or ["<no accounting records>"]


def start_radius(tmp: Path) -> None:
    """The freeradius of the radius-* scenarios, its files under `tmp`."""
    global RADIUS
    sys.path.insert(0, str(REPO / "tests"))
    from radius_helpers import FreeRadius
    (tmp / "radius").mkdir()
    os.chmod(tmp / "radius", 0o755)
    RADIUS = FreeRadius(tmp / "radius", {"uid": UID, "gid": UID, "home": tmp / "radius" / "vsa-home", "gid2": UID + 2,
                                         "gid3": UID + 1}).start()
    home = tmp / "radius" / "vsa-home"
    home.mkdir()
    (home / "vsa-file.txt").write_text("from the Vendor-Specific home\n")
    os.chown(home, UID, UID)


STAPLING = None                     # the OCSP PKI, responder, TLS relay and memcached of the stapling-* scenarios
OCSP_STEP = "<ocsp-status>"         # a pseudo-step: what `openssl s_client -starttls ftp -status` is stapled


DNSBL_STEP = "<dnsbllog>"           # a pseudo-step: the scenario's DNSBLLog {dir}/dnsbl.log lines so far
DNSBL: "object | None" = None       # the dnsmasq of the dnsbl-* scenarios (tests/dns_helpers.py)
DNSBL_A = {f"{x}.0.0.127.bl.test": "127.0.0.2" for x in "245"}     # listed: 127.0.0.2, .4, .5; not: .3
DNSBL_TXT = {"2.0.0.127.bl.test": [["listed for testing"]],
             "5.0.0.127.bl.test": [["two strings", "in one record"], ["and a second record"]]}


def dnsbl_scenarios() -> list[Scenario]:
    """mod_dnsbl (Debian's, `LoadModule mod_dnsbl.c`) and proftpy asking one dnsmasq: clients listed with a TXT
    reason, with two, with none, and one not listed; the DNSBLLog lines (the raw TXT data's length bytes shown as
    \\xNN). The resolver only asks port 53: these scenarios make the whole script run in a private network namespace
    (`in_private_mounts`), where 127.0.0.1:53 is dnsmasq's and nobody else's."""
    conf = ("LoadModule mod_dnsbl.c\nDNSBLEngine on\nDNSBLPolicy allow,deny\nDNSBLDomain bl.test\n"
            "DNSBLLog {dir}/dnsbl.log\n")
    return [Scenario(f"dnsbl-{name}", steps, conf, source=f"127.0.0.{x}")
            for name, x, steps in (("txt-reason", 2, [DNSBL_STEP]), ("two-txt-records", 5, [DNSBL_STEP]),
                                   ("no-txt-record", 4, [DNSBL_STEP]), ("not-listed", 3, ["QUIT", DNSBL_STEP]))]


def read_dnsbllog(server: Server) -> list[str]:
    """The DNSBLLog's lines after their stamp and pid, split at newlines only (a length byte may be \\v or \\r)."""
    path = server.base / "dnsbl.log"
    for _ in range(20):
        if path.exists() and path.read_bytes().endswith(b"\n"):
            break
        time.sleep(0.05)
    text = path.read_bytes().decode("utf-8", "replace") if path.exists() else ""
    return ["dnsbllog: " + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in re.sub(r"^.*?\]: ", "", line))
            for line in text.split("\n")[:-1]] or ["<DNSBLLog empty>"]


def start_dnsbl(tmp: Path) -> None:
    """The dnsmasq of the dnsbl-* scenarios (the script runs in its private network already), its log under `tmp`."""
    global DNSBL
    sys.path.insert(0, str(REPO / "tests"))
    from dns_helpers import Dnsmasq
    DNSBL = Dnsmasq(tmp, DNSBL_A, DNSBL_TXT)


def stapling_scenarios() -> list[Scenario]:
    """OCSP stapling (mod_tls, mod_tls_shmcache, mod_tls_memcache): what a client asking for the certificate's
    status gets (`<ocsp-status>`), from an `openssl ocsp` responder of the script's own over http:// and https://
    (a TLS relay), through the shm: and memcache: caches (the responder stopped in between would need a step of
    its own: the integration tests do that), and `ftpdctl tls ocspcache`."""
    s: list[Scenario] = []
    ctrls = ("ControlsEngine on\nControlsSocket {dir}/ctrls.sock\nControlsACLs all allow user root\n"
             "TLSControlsACLs ocspcache,info,clear allow user root\n")
    tls = ("LoadModule mod_tls.c\nLoadModule mod_tls_shmcache.c\nLoadModule mod_memcache.c\n"
           "LoadModule mod_tls_memcache.c\nTLSEngine on\nTLSLog {dir}/tls.log\nTLSECCertificateFile {ocsp_pki}/{cert}.pem\n"
           "TLSECCertificateKeyFile {ocsp_pki}/{cert}.key\nTLSCACertificateFile {ocsp_pki}/ca.pem\nTLSStapling on\n")
    add = lambda name, *steps, conf, cert="good": s.append(  # noqa: E731
        Scenario(name, list(steps), f"# {name}\n" + tls.replace("{cert}", cert) + conf))
    add("stapling-http", OCSP_STEP, OCSP_STEP, conf="")
    add("stapling-http-revoked", OCSP_STEP, conf="", cert="revoked")
    add("stapling-no-url", OCSP_STEP, conf="TLSStaplingOptions NoFakeTryLater\n", cert="noaia")
    add("stapling-https", OCSP_STEP, conf="TLSStaplingResponder https://127.0.0.1:{ocsp_relay}/\n")
    add("stapling-https-revoked", OCSP_STEP, conf="TLSStaplingResponder https://127.0.0.1:{ocsp_relay}/\n",
        cert="revoked")
    add("stapling-shm", OCSP_STEP, OCSP_STEP, "<ftpdctl tls ocspcache info>", "<ftpdctl tls ocspcache clear>",
        OCSP_STEP, conf=ctrls + "TLSStaplingCache shm:/file={dir}/ocsp.shm&size=20000\n")
    add("stapling-memcache", OCSP_STEP, OCSP_STEP, "<ftpdctl tls ocspcache info>", "<ftpdctl tls ocspcache clear>",
        conf=ctrls + "MemcacheEngine on\nMemcacheServers 127.0.0.1:{ocsp_memcached}\nTLSStaplingCache memcache:\n")
    return s


def ocsp_status(server: Server) -> list[str]:
    """`openssl s_client -starttls ftp -status` against the server: the stapled response's status."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-starttls", "ftp",
                          "-status", "-ign_eof"], input=b"QUIT\r\n", capture_output=True, timeout=60).stdout
    text = out.decode(errors="replace")
    found = re.search(r"Cert Status: (\w+)", text) or re.search(r"OCSP Response Status: (\w+)", text)
    if "OCSP response: no response sent" in text:
        return ["stapled: nothing"]
    return [f"stapled: {found.group(1)}" if found else "stapled: <unreadable s_client output>"]


def start_stapling(tmp: Path) -> None:
    """The stapling-* scenarios' PKI (tests/ocsp_helpers.py), its responder, a TLS relay in front of it, and a
    memcached, on free loopback ports."""
    global STAPLING
    sys.path.insert(0, str(REPO / "tests"))
    from ocsp_helpers import Responder, TlsRelay, make_ocsp_pki
    d = tmp / "ocsp"
    d.mkdir()
    os.chmod(d, 0o755)
    port = free_port()
    make_ocsp_pki(d, port)
    for key in d.glob("*.key"):
        os.chmod(key, 0o644)
    responder = Responder(d, port).start()
    relay = TlsRelay(d, free_port(), port).start()
    memcached = subprocess.Popen(["memcached", "-U", "0", "-l", "127.0.0.1", "-p", str(mc_port := free_port()),
                                  "-m", "16", "-u", "nobody"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_port(mc_port, 10):
        raise SystemExit("memcached did not start")
    STAPLING = {"dir": d, "responder": responder, "relay": relay, "memcached": memcached, "memcached_port": mc_port}


def stop_stapling() -> None:
    if STAPLING is not None:
        STAPLING["relay"].stop()
        STAPLING["responder"].stop()
        STAPLING["memcached"].kill()
        STAPLING["memcached"].wait()


def wait_for_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def transfer_scenarios(big: Callable[[Path], None]) -> list[Scenario]:
    """Transfers and timeouts (issue 17): TimeoutStalled, a client closing the data connection early, commands
    during a transfer, TransferLog lines (DELE, ASCII, a full device)."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="", tree=None: s.append(Scenario(name, list(steps), conf, tree))  # noqa: E731

    def many(home: Path) -> None:
        """big.bin, and a directory whose listing is larger than the sockets' buffers (LIST, NLST, MLSD)."""
        big(home)
        (home / "many").mkdir()
        for i in range(MANY_ENTRIES):
            (home / "many" / f"{i:05d}-{'x' * 100}").touch()
    stalled = "TimeoutStalled 1\nTransferLog {dir}/xfer.log\n" + SMALL_SENDS
    for sendfile in ("on", "off"):
        conf = f"{stalled}UseSendfile {sendfile}\n"
        add(f"stall-retr-binary-sendfile-{sendfile}", *LOGIN, "TYPE I", "PASV", "RETR big.bin <<stall", "NOOP", XFERLOG_STEP,
            conf=conf, tree=many)
        add(f"stall-retr-ascii-sendfile-{sendfile}", *LOGIN, "PASV", "RETR big.bin <<stall", "NOOP", XFERLOG_STEP, conf=conf,
            tree=many)
    for verb in ("STOR", "APPE"):
        add(f"stall-{verb.lower()}", *LOGIN, "TYPE I", "PASV", f"{verb} up.bin <<stall", "NOOP", XFERLOG_STEP, conf=stalled,
            tree=many)
    add("stall-stor-ascii", *LOGIN, "PASV", "STOR up.txt <<stall", "NOOP", XFERLOG_STEP, conf=stalled, tree=many)
    for verb in ("LIST", "NLST", "MLSD"):
        add(f"stall-{verb.lower()}", *LOGIN, "PASV", f"{verb} many <<stall", "NOOP", XFERLOG_STEP, conf=stalled, tree=many)
    for sendfile in ("on", "off"):
        conf = f"UseSendfile {sendfile}\n"
        add(f"close-retr-binary-sendfile-{sendfile}", *LOGIN, "TYPE I", "PASV", "RETR big.bin <<close", "ABOR",
            "NOOP", "PASV", "RETR file.txt", conf=conf, tree=many)
        add(f"close-retr-ascii-sendfile-{sendfile}", *LOGIN, "PASV", "RETR big.bin <<close", "ABOR", "NOOP",
            conf=conf, tree=many)
    for verb in ("LIST", "NLST", "MLSD"):
        add(f"close-{verb.lower()}", *LOGIN, "PASV", f"{verb} many <<close", "ABOR", "NOOP", tree=many,
            conf=SMALL_SENDS)
    add("close-then-abor-twice", *LOGIN, "TYPE I", "PASV", "RETR big.bin <<close", "ABOR", "ABOR", tree=many)
    # -- TransferLog
    xferlog = "TransferLog {dir}/xfer.log\nAllowOverwrite on\n"
    add("xferlog-dele", *LOGIN, "DELE file.txt", "DELE nothere", "DELE dir", "CWD dir", "DELE inner.txt", "CWD /",
        XFERLOG_STEP, conf=xferlog)
    add("xferlog-ascii", *LOGIN, "PASV", "RETR file.txt", "PASV", "STOR up.txt", "TYPE I", "PASV", "RETR file.txt",
        "PASV", "STOR up.bin", "TYPE A", "PASV", "APPE up.txt", "PASV", "STOU", XFERLOG_STEP, conf=xferlog)
    add("xferlog-aborted", *LOGIN, "TYPE I", "PASV", "RETR big.bin <<close", "ABOR", "TYPE A", "PASV",
        "RETR big.bin <<close", "ABOR", XFERLOG_STEP, conf=xferlog, tree=big)

    def full(home: Path) -> None:
        """`full/`: a small tmpfs of its own (the script runs in a private mount namespace), so an upload into it
        fills the device (ENOSPC)."""
        (home / "full").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FULL_DEVICE},mode=0777", "tmpfs",
                        str(home / "full")], check=True)
    add("xferlog-full-device", *LOGIN, "TYPE I", "PASV", "STOR full/up.bin <<big", "NOOP", "TYPE A", "PASV",
        "STOR full/up.txt <<big", "SIZE full/up.bin", XFERLOG_STEP, conf=xferlog, tree=full)
    return s


# Steps where proftpy differs on purpose (docs/commands.md, "Checking against ProFTPD"): (scenario, step) -> why.
NO_PORT = "no PORT/PASV: proftpy says so instead of connecting to the client's port 20"
DOUBLE_530 = "ProFTPD answers this twice before login (two 530 lines), proftpy once"
BOUNCE = "PORT/EPRT to another address or outside 1024-65535 refused (no FTP bounce)"
CR_NUL = "a CR inside a path in a reply is sent as CR NUL (RFC 2640 3.1); ProFTPD sends it bare"
SENDFILE_WATCH = ("commands during a sendfile download are answered at once (ProFTPD leaves them unanswered until "
                  "the transfer ends, then runs them)")
DATA_BEFORE = "how much data went out before ABOR/QUIT was read depends on timing (the replies are the same)"
RADIUS_AFRESH = ("each PASS is judged afresh (ProFTPD 1.3.8's mod_radius forgets RadiusUserInfo for the rest of the "
                 "session after a failed PASS or a PASS before USER: the right password is then refused)")
RADIUS_DOWN = ("with RadiusUserInfo and no RADIUS server answering, every PASS fails as the first one does (ProFTPD "
               "1.3.8 forgets RadiusUserInfo after the first failed PASS, so the AuthUserFile's alice then logs in)")
README_DATE = "DisplayReadme's date is shown (ProFTPD 1.3.8 overwrites it while it prints it: an empty date)"
# -- mod_ldap (ldap-*): one slapd for both servers, each server's users in a subtree of its own ----------------------
LDAP = None                         # the running slapd (tests/ldap_helpers.Slapd) when ldap-* scenarios are chosen
LDAP_UID = 2600                     # carol's uid; the other LDAP users' follow


def ldap_helpers():
    sys.path.insert(0, str(REPO / "tests"))
    import ldap_helpers as helpers
    return helpers


def start_ldap(tmp: Path) -> None:
    global LDAP
    helpers = ldap_helpers()
    LDAP = helpers.Slapd(tmp / "slapd").start(    # LDAPUseSASL's accounts
        [], [], helpers.sasl_account() + "\n" + helpers.sasl_account(helpers.UNI_NAME, helpers.UNI_PW))
    # ProFTPD 1.3.8's `ssl-ca:` reaches libldap after its TLS context exists and is not used: its libldap trusts
    # the test CA through the environment instead (proftpy reads ssl-ca:)
    os.environ["LDAPTLS_CACERT"] = str(LDAP.ca)


def ldap_tree(home: Path) -> None:
    """The LDAP users of the server whose tree this is, in ou=<server dir>,dc=example,dc=com (added once per server),
    with homes {base}/home/<name> made again for each scenario: carol ({CRYPT}, groups ldapstaff and ldapextra), dave
    (a bare password), erin ({SSHA}), frank ({SHA}, no loginShell), gina (no posixAccount), and the groups."""
    if home.name != USER:
        return
    helpers = ldap_helpers()
    base = home.parent.parent
    homes = base / "home"
    users = [helpers.User("carol", helpers.crypt("carol-pw"), LDAP_UID, LDAP_UID, str(homes / "carol")),
             helpers.User("dave", "dave-pw", LDAP_UID + 1, LDAP_UID, str(homes / "dave")),
             helpers.User("erin", helpers.ssha("erin-pw"), LDAP_UID + 2, LDAP_UID + 2, str(homes / "erin")),
             helpers.User("frank", helpers.sha("frank-pw"), LDAP_UID + 3, LDAP_UID, str(homes / "frank"), shell=None),
             helpers.User("gina", "gina-pw", posix=False),
             helpers.User("quinn", "quinn-pw", LDAP_UID + 5, LDAP_UID, str(homes / "quinn"),
                          classes=("ftpQuotaAccount",), extra={"ftpQuota": "false,hard,50,0,0,0,0,0"}),
             helpers.User("pat", "pat-pw", LDAP_UID + 6, LDAP_UID, str(homes / "pat"), classes=("ftpQuotaAccount",),
                          extra={"ftpQuotaProfileDN": f"cn=one-file,ou={base.name},{helpers.SUFFIX}"})]
    groups = [helpers.PosixGroup("ldapstaff", LDAP_UID), helpers.PosixGroup("ldapextra", LDAP_UID + 100,
                                                                            ("carol", "dave")),
              helpers.PosixGroup("ldapother", LDAP_UID + 101, ("erin",))]
    marker = base / "ldap-loaded"
    if not marker.exists():
        profile = (f"\ndn: cn=one-file,ou={base.name},{helpers.SUFFIX}\nobjectClass: ftpQuotaProfile\ncn: one-file\n"
                   "ftpQuota: false,soft,0,0,0,1,0,0\n")
        helpers.add_entries(LDAP.url, helpers.ldif(users, groups, f"ou={base.name},{helpers.SUFFIX}") + profile, base)
        marker.write_text("")
    for u in users:
        if u.home is None:
            continue
        path = Path(u.home)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        (path / "file.txt").write_bytes(b"ldap user file\n")
        (path / "shared.txt").write_bytes(b"x\n")
        os.chown(path / "file.txt", u.uid, u.gid)
        os.chown(path / "shared.txt", u.uid, LDAP_UID + 100)
        os.chown(path, u.uid, u.gid)
        for p in (path / "file.txt", path / "shared.txt", path):
            os.utime(p, (FIXED_MTIME, FIXED_MTIME))
    from proftpy import quotatab as qt
    (base / "quota.tally").unlink(missing_ok=True)           # an empty tally for the ldap-quota-* scenarios
    qt.create(str(base / "quota.tally"), "tally", [])
    for extra in ("gen", "gen-force"):
        if (base / extra).exists():
            shutil.rmtree(base / extra)
        (base / extra).mkdir()


def ldap_scenarios() -> list[Scenario]:
    """mod_ldap: logins with auth binds and with userPassword compared, names that try to change the filter, groups
    in <Limit>, names in listings, generated homes, LDAPDefaultUID, a URL searching the base only, a server that is
    down, StartTLS (braces doubled: str.format)."""
    s: list[Scenario] = []
    add = lambda name, *steps, conf="": s.append(Scenario(name, list(steps), conf, ldap_tree))  # noqa: E731
    base = ("LoadModule mod_ldap.c\nAuthOrder mod_ldap.c mod_auth_file.c\n"
            "LDAPServer 127.0.0.1:{ldap_port}\nLDAPUsers ou=people,ou={srv},dc=example,dc=com\n"
            "LDAPGroups ou=groups,ou={srv},dc=example,dc=com\nLDAPLog {dir}/ldap.log\n")
    compared = base + "LDAPAuthBinds off\nLDAPBindDN cn=admin,dc=example,dc=com admin-secret\n"
    add("ldap-login-bind", "USER carol", "PASS wrong", "USER carol", "PASS carol-pw", "PWD", "PASV", "NLST",
        "PASV", "RETR file.txt", conf=base)
    add("ldap-unknown-user", "USER nobody", "PASS x", "USER CAROL", "PASS carol-pw", "PWD", conf=base)
    add("ldap-empty-password", "USER carol", "PASS ", "USER dave", "PASS dave-pw", conf=base)
    add("ldap-injection", "USER *", "PASS carol-pw", "USER carol)(uid=*", "PASS carol-pw", "USER *)(|(uid=*",
        "PASS x", conf=base)
    add("ldap-injection-compare", "USER *", "PASS carol-pw", "USER c*", "PASS carol-pw", "USER carol\\",
        "PASS carol-pw", conf=compared)
    add("ldap-fallback-authfile", *LOGIN, "PWD", conf=base)
    add("ldap-authbinds-off", "USER carol", "PASS wrong", "USER carol", "PASS carol-pw", "PWD", conf=compared)
    add("ldap-authbinds-off-bare-crypt", "USER dave", "PASS dave-pw", "USER carol", "PASS carol-pw", conf=compared)
    add("ldap-authbinds-off-clear", "USER dave", "PASS dave-pw", "PWD",
        conf=compared + "LDAPDefaultAuthScheme clear\n")
    add("ldap-authbinds-off-ssha", "USER erin", "PASS erin-pw", conf=compared)
    add("ldap-groups-limit", "USER carol", "PASS carol-pw", "MKD made", "USER erin", "PASS erin-pw",
        conf=base + "<Limit MKD>\nAllowGroup ldapextra\nDenyAll\n</Limit>\n")
    add("ldap-groups-login-denied", "USER dave", "PASS dave-pw", "USER carol", "PASS carol-pw",
        conf=base + "<Limit LOGIN>\nDenyGroup ldapother\n</Limit>\n")
    add("ldap-list-names", "USER carol", "PASS carol-pw", "PASV", "LIST", "STAT file.txt", conf=base)
    add("ldap-site-chgrp", "USER carol", "PASS carol-pw", "SITE CHGRP ldapextra file.txt", "STAT file.txt",
        "SITE CHGRP ldapother file.txt", conf=base)
    add("ldap-no-shell", "USER frank", "PASS frank-pw", "PWD", conf=base)
    add("ldap-no-shell-required", "USER frank", "PASS frank-pw", conf=base + "RequireValidShell on\n")
    add("ldap-generated-home", "USER carol", "PASS carol-pw", "PWD", "PASV", "NLST",
        conf=base + "LDAPGenerateHomedir on\nLDAPGenerateHomedirPrefix {base}/gen\n"
                    "LDAPForceGeneratedHomedir on\nCreateHome on\nDefaultRoot {base}\n")
    add("ldap-default-ids", "USER gina", "PASS gina-pw", "PWD", "MKD mine", "PASV", "LIST",
        conf=base.replace("LDAPUsers ou=people,ou={srv},dc=example,dc=com",
                          "LDAPUsers ou=people,ou={srv},dc=example,dc=com (&(uid=%u)(objectclass=inetOrgPerson))")
        + f"LDAPDefaultUID {LDAP_UID + 50}\nLDAPDefaultGID {LDAP_UID + 50}\nLDAPGenerateHomedir on\n"
          "LDAPGenerateHomedirPrefix {base}/gen\nCreateHome on\n")
    add("ldap-no-default-uid", "USER gina", "PASS gina-pw",
        conf=base.replace("LDAPUsers ou=people,ou={srv},dc=example,dc=com",
                          "LDAPUsers ou=people,ou={srv},dc=example,dc=com (&(uid=%u)(objectclass=inetOrgPerson))"))
    add("ldap-url-base-scope", "USER carol", "PASS carol-pw", *LOGIN,
        conf=base.replace("LDAPServer 127.0.0.1:{ldap_port}", "LDAPServer ldap://127.0.0.1:{ldap_port}"))
    add("ldap-url-sub-scope", "USER carol", "PASS carol-pw", "PWD",
        conf=base.replace("LDAPServer 127.0.0.1:{ldap_port}", "LDAPServer ldap://127.0.0.1:{ldap_port}/??sub"))
    add("ldap-server-down", "USER carol", "PASS carol-pw", "NOOP", *LOGIN, "PWD",
        conf=base.replace("LDAPServer 127.0.0.1:{ldap_port}", "LDAPServer 127.0.0.1:1"))
    add("ldap-failover", "USER carol", "PASS carol-pw", "PWD",
        conf=base.replace("LDAPServer 127.0.0.1:{ldap_port}", "LDAPServer 127.0.0.1:1 127.0.0.1:{ldap_port}"))
    add("ldap-dn-template", "USER carol", "PASS carol-pw", "PWD", "USER dave", "PASS dave-pw",
        conf=base.replace("LDAPUsers ou=people,ou={srv},dc=example,dc=com",
                          'LDAPUsers "uid=%u,ou=people,ou={srv},dc=example,dc=com" (objectclass=posixAccount)')
        + "LDAPSearchScope base\n")
    add("ldap-protocol-v2", "USER carol", "PASS carol-pw", conf=base + "LDAPProtocolVersion 2\n")
    add("ldap-starttls", "USER carol", "PASS carol-pw", "PWD",
        conf=base.replace("LDAPServer 127.0.0.1:{ldap_port}", "LDAPServer localhost:{ldap_port} ssl-ca:{ldap_ca}")
        + "LDAPUseTLS on\n")
    quota = (base + "LoadModule mod_quotatab_ldap.c\nQuotaEngine on\nQuotaLimitTable ldap:\n"
             "QuotaTallyTable file:{base}/quota.tally\nAllowOverwrite on\n")
    put = ("PASV", "STOR a.txt", "PASV", "STOR b.txt", "SITE QUOTA", "PASV", "NLST")
    add("ldap-quota-hard", "USER quinn", "PASS quinn-pw", "SITE QUOTA", *put, conf=quota)
    add("ldap-quota-profile", "USER pat", "PASS pat-pw", *put, conf=quota)
    add("ldap-quota-default", "USER dave", "PASS dave-pw", *put,
        conf=quota + 'LDAPDefaultQuota "false,hard,0,0,0,1,0,0"\n')
    add("ldap-quota-none", "USER dave", "PASS dave-pw", *put, conf=quota)
    add("ldap-quota-bad-value", "USER dave", "PASS dave-pw", "SITE QUOTA",
        conf=quota + 'LDAPDefaultQuota "false,hard,5"\n')
    add("ldap-quota-not-users", "USER alice", "PASS alice-pw", "SITE QUOTA", conf=quota)
    add("ldap-ldaps", "USER carol", "PASS carol-pw", "PWD",
        conf=base.replace("LDAPServer 127.0.0.1:{ldap_port}",
                          "LDAPServer ldaps://localhost:{ldap_tls_port}/??sub ssl-ca:{ldap_ca}"))
    # LDAPUseSASL: a bind DN no entry has (a simple bind with it fails), whose cn is the SASL account's name
    def sasl(mechs: str | None, password: str = "ftpbind-secret", ldaps: bool = False) -> str:
        conf = base + f'LDAPBindDN "cn=ftpbind,ou=nowhere,dc=example,dc=com" {password}\n'
        conf += f"LDAPUseSASL {mechs}\n" if mechs else ""
        return conf.replace("LDAPServer 127.0.0.1:{ldap_port}",
                            "LDAPServer ldaps://localhost:{ldap_tls_port}/??sub ssl-ca:{ldap_ca}") if ldaps else conf
    sasl_login = ("USER carol", "PASS wrong", "USER carol", "PASS carol-pw", "PWD")
    for mechs in ("SCRAM-SHA-256", "SCRAM-SHA-1", "DIGEST-MD5", "CRAM-MD5"):
        add("ldap-sasl-" + mechs.lower(), *sasl_login, conf=sasl(mechs))
    add("ldap-sasl-list", *sasl_login, conf=sasl("PLAIN CRAM-MD5 SCRAM-SHA-1"))
    add("ldap-sasl-wrong-password", "USER carol", "PASS carol-pw", conf=sasl("SCRAM-SHA-256", "not-it"))
    add("ldap-sasl-simple-bind", "USER carol", "PASS carol-pw", conf=sasl(None))
    add("ldap-sasl-plain-cleartext", "USER carol", "PASS carol-pw", conf=sasl("PLAIN LOGIN"))
    add("ldap-sasl-plain-ldaps", *sasl_login, conf=sasl("PLAIN", ldaps=True))
    add("ldap-sasl-login-ldaps", *sasl_login, conf=sasl("LOGIN", ldaps=True))
    add("ldap-sasl-plain-ldaps-wrong-password", "USER carol", "PASS carol-pw",
        conf=sasl("PLAIN", "not-it", ldaps=True))
    # a non-ASCII password SASLprep would change (its soft hyphen): libsasl2 sends it as typed, so does proftpy
    uni = sasl("SCRAM-SHA-256", ldap_helpers().UNI_PW).replace("cn=ftpbind,", "cn=ftpuni,")
    add("ldap-sasl-scram-non-ascii", *sasl_login, conf=uni)
    add("ldap-sasl-digest-non-ascii", *sasl_login, conf=uni.replace("SCRAM-SHA-256", "DIGEST-MD5"))
    return s


_SHA2_CLEAR = ("MySQL 8's caching_sha2_password full authentication on a connection without TLS (tests/mysql8_front.py, "
               "as MySQL 8 does, opens only an RSA-sealed password): proftpy asks for the server's key and seals the "
               "password (docs/sql.md); Debian's ProFTPD 1.3.8 calls mysql_ssl_set, which makes its libmariadb count "
               "the plain connection as a secure one and send the password in clear, and the server refuses it")
EXPECTED: dict[tuple[str, str], str] = {
    ("stapling-shm", "<ftpdctl tls ocspcache info>"): ("proftpy's shm: OCSP cache is a file mapped by its sessions "
                                                      "(its path and size shown), not a SysV segment (its ID, "
                                                      "creation time, attach count); the counts are the same"),
    ("stapling-memcache", "<ftpdctl tls ocspcache info>"): ("proftpy names the memcached servers (ProFTPD leaves the "
                                                           "line empty); ProFTPD's master loses its first GET on the "
                                                           "connection it made before forking (its trace: `error "
                                                           "getting data for key 'cache_hits': Transport endpoint is "
                                                           "not connected`), so its hit count is missing"),
    ("sql-my-sha2", "PASS carol-pw"): _SHA2_CLEAR,
    ("sql-my-sha2", "PWD"): _SHA2_CLEAR,
    ("statcache-dump", "<ftpdctl statcache dump>"): "mod_statcache's entries are keyed by the path on disk (the "
    "chroot directory in front; ProFTPD keys by the path inside the chroot, so two users' chroots would share "
    "entries), and ProFTPD also stats the home directory and .ftpaccess files through its cache",
    ("userowner-elsewhere-groupowner", "LIST"): ("GroupOwner without a UserOwner in its place gives a group the user "
                                                 "is a member of only (ProFTPD's documented rule, docs/transfers.md); "
                                                 "ProFTPD 1.3.8, root kept for the UserOwner elsewhere, gives any"),
    ("sql-pg-tls", "NOOP"): ("SQLConnectInfo's ssl-ca: makes proftpy's PostgreSQL connection TLS, the server's certificate "
                             "verified (docs/sql.md); Debian's ProFTPD 1.3.8 mod_sql_postgres logs the CA file and then "
                             "connects in plain text (its SQLLogFile: `Postgres SSL connection: false`)"),
    ("ldap-authbinds-off-ssha", "PASS erin-pw"): ("{SSHA} (and {MD5}, {SMD5}, {SHA}, {SHA256}...) userPassword values are "
                                                 "checked (ProFTPD 1.3.8's mod_ldap knows {crypt} and {clear} only)"),
    ("ldap-no-shell-required", "PASS frank-pw"): ("an entry without loginShell has an empty shell, which RequireValidShell "
                                                 "counts as /bin/sh (docs/auth.md; ProFTPD 1.3.8 refuses it)"),
    ("ident-rfc1413-userid", "<xferlog>"): ("the ident name's space is written `_` as in every other field, so the "
                                            "line keeps its 14 fields (ProFTPD 1.3.8 writes it as it came)"),
    ("ident-rfc1413-empty", "<xferlog>"): ("an empty ident name is written `*` (ProFTPD 1.3.8 writes nothing: the "
                                           "line loses a field)"),
    ("ratio-group-supplementary", "PASS alice-pw"): ("GroupRatio counts every group of the user (ProFTPD 1.3.8 skips "
                                                     "the last of the list: alice's 'shared')"),
    ("ratio-group-supplementary", "RETR file.txt"): "(the group ratio above)",
    ("ratio-group-supplementary", "SITE RATIO"): "(the group ratio above)",
    ("ratio-negative-credit", "PASS alice-pw"): ("a negative byte credit is shown as a negative number of megabytes "
                                                 "(ProFTPD 1.3.8 prints it unsigned: 18446744073709551614)"),
    ("ratio-negative-credit", "SITE RATIO"): "(the negative credit above)",
    ("ratio-anon-star-user", "PASS alice-pw"): ("AnonRatio * is for anonymous logins (ProFTPD 1.3.8 gives it to every "
                                                "user, before UserRatio and GroupRatio)"),
    ("ratio-anon-star-user", "SITE RATIO"): "(the anonymous ratio above)",
    ("ratio-save", "STOR up.txt"): ("a user new to the RatioFile counts the first upload once (ProFTPD 1.3.8 reads "
                                    "back the line it has just written and adds it again: 2 files)"),
    ("ratio-save", "RETR file.txt"): "(the upload counted once above)",
    ("ratio-save", "RETR ratios"): ("(the upload counted once above) and the other lines of the RatioFile keep their "
                                    "kilobytes (ProFTPD 1.3.8 never parses them and rewrites 'bob|1|10|2|20' as "
                                    "'bob|1|0|2|0')"),
    ("list-style-windows", "STAT ."): "STAT answers with Windows lines (ProFTPD 1.3.8 sends no reply at all)",
    ("list-style-windows", "STAT file.txt"): "(as STAT .)",
    ("quota-display-no-limit", "PASS bob-pw"): ("with no limit for the user the %{mod_quotatab.limit.*} variables "
                                                "say (unlimited) (ProFTPD 1.3.8 shows the values of the last limit "
                                                "record its search read: alice's)"),
    ("quota-files-xfer", "RETR file.txt"): ("a RETR refused because the transfer-files limit is used up is answered "
                                            "(ProFTPD 1.3.8 puts its 451 on the wrong reply list and says nothing: "
                                            "the client waits)"),
    ("auth-alias-only-anon-password", "PASS bob-pw"): ("an alias of an <Anonymous> with AnonRequirePassword logs in "
                                                       "with its User's password (ProFTPD 1.3.8 looks the alias itself "
                                                       "up as an account: No such user found)"),
    ("auth-alias-only-anon-password", "PWD"): "(the login above)",
    ("prelogin-files", "RNTO x"): DOUBLE_530,
    ("prelogin-misc", "SITE CHMOD 644 file.txt"): DOUBLE_530,
    ("site-help-forms", "SITE CHMOD"): DOUBLE_530,
    ("prelogin-site-rmdir", "SITE CHGRP"): DOUBLE_530,
    ("port", "PORT 10,0,0,1,100,1"): BOUNCE,
    ("port", "PORT 127,0,0,1,100,1,5"): BOUNCE,
    ("eprt", "EPRT |1|127.0.0.1|70000|"): BOUNCE,
    ("eprt", "EPRT |1|10.0.0.1|2000|"): BOUNCE,
    ("stou", "STOU"): "STOU creates a new name, so it does not need AllowOverwrite",
    ("stou", "STOU x"): "STOU creates a new name, so it does not need AllowOverwrite",
    ("stou", "STOU file.txt"): "STOU creates a new name, so it does not need AllowOverwrite",
    ("retr", "RETR file.txt"): NO_PORT,
    ("stale-pasv", "RETR file.txt"): NO_PORT,
    ("stale-pasv", "NLST"): NO_PORT,
    ("stale-port", "NLST"): NO_PORT,
    ("stale-refused", "NLST"): NO_PORT,
    ("list", "LIST"): NO_PORT,
    ("mlsd", "MLSD"): NO_PORT,
    ("abuse", "NOOP\x00x"): "a NUL in a command line is refused with 501",
    ("dir-denyall", "STOR locked/x"): "DenyAll in a <Directory> refuses new names too (ProFTPD lets STOR create one)",
    ("dir-denyall", "RNTO locked/y"): "DenyAll in a <Directory> refuses new names too (ProFTPD lets RNTO create one)",
    ("during-transfer", "RETR big.bin || RNFR file.txt || NOOP || PWD || RNTO x.txt"): SENDFILE_WATCH,
    ("during-transfer", "RETR big.bin || STAT || SIZE file.txt || FOO"): SENDFILE_WATCH,
    ("retr-fifo", "RETR fifo"): "RETR of a FIFO is refused (ProFTPD opens it and the session hangs until a writer "
                                "comes)",
    ("embedded-cr", "MKD ab\rcd"): CR_NUL,
    ("embedded-cr", "MKD \rlead"): CR_NUL,
    ("embedded-cr", "SIZE fi\rle.txt"): CR_NUL,
    ("embedded-cr", "DELE o\rther.txt"): CR_NUL,
    ("tilde-commands", "LIST ~/dir"): "LIST does not expand ~ (ProFTPD's 450 names the home's real path outside the "
                                      "chroot)",
    ("tilde-commands", "LIST ~"): "LIST does not expand ~ (ProFTPD's 450 names the home's real path outside the chroot)",
    ("ident-text", "<connect>"): "ServerIdent's %{version} is proftpy's own version",
    ("abuse", "NOOP " + "x" * 5000): "an over-long line gets 500 Command line too long (ProFTPD says nothing)",
    ("close-nlst", "NLST many <<close"): "an NLST whose data connection the client closed gets 426 as LIST and MLSD "
                                         "do (ProFTPD 1.3.8 sends no final reply at all: the client waits for ever)",
    ("during-ascii-abor", "RETR big.bin || ABOR"): DATA_BEFORE,
    ("during-ascii-quit", "RETR big.bin || QUIT"): DATA_BEFORE,
    **{(scenario, step): README_DATE for scenario, steps in (
        ("readme", ("PASS alice-pw", "CWD dir", "CDUP", "XCWD dir", "XCUP", "CWD dir/sub dir")),
        ("readme-two", ("PASS alice-pw", "CWD dir")), ("readme-display-login", ("PASS alice-pw",)))
       for step in steps},
    ("rlimit-chroot-guard", "MFMT 20200101000000 etc/passwd"): ("RLimitChroot's guard covers MFMT and MFF too "
                                                                 "(ProFTPD's mod_facts goes around it)"),
    ("rlimit-chroot-guard", "MFF UNIX.mode=0600; etc/passwd"): "(as MFMT)",
    ("deflate-on", "MODE Z"): "MODE Z before login gets 530 as any MODE (ProFTPD's mod_deflate answers 200 OK)",
    ("copy-prelogin", "SITE CPTO x"): "SITE CPTO before login: 530 as every SITE command (ProFTPD's mod_quotatab "
                                      "answers 503 before mod_copy's login check)",
    ("copy-cpfr-twice", "SIZE t.txt"): ("a second SITE CPFR replaces the first, as RNFR does (ProFTPD keeps the "
                                        "first: its note is never replaced)"),
    ("copy-cpfr-cpto", "SITE CPTO"): "ProFTPD sends a second reply (503) after the 500 to a CPTO without a path",
    ("copy-dir", "SITE CPTO file.txt"): "a directory copied onto a file: ENOTDIR (ProFTPD 1.3.8's errno is 0)",
    ("copy-limit", "SITE CPFR file.txt"): "<Limit SITE_CPFR> denial names the path (ProFTPD prints a null pointer)",
    ("copy-limit", "SITE CPFR other.txt"): "(as the SITE CPFR before)",
    **{("digest-enable-off", f"{cmd} dir/nodigest/f.txt"): (
        "DigestEnable off applies under DefaultRoot too (ProFTPD 1.3.8 matches the path seen inside the chroot "
        "against the <Directory> names, so it never applies there)") for cmd in ("XCRC", "HASH", "MD5")},
    ("sql-passwd-empty-column", "PASS anything"): (
        "an empty password column matches no password under mod_sql_passwd's types (ProFTPD 1.3.8 compares only as "
        "many characters as the column holds, none here, and lets any password in)"),
    ("sql-passwd-cut-column", "PASS cut-pw"): (
        "a column holding the first 12 hex digits of the digest does not match (ProFTPD 1.3.8 compares only the "
        "column's length: a cut column lets in any password whose digest starts the same way)"),
    ("sql-passwd-user-salt-null", "PASS s1-pw"): (
        "a NULL salt from the SQLPasswordUserSalt query is no salt, so the unsalted digest logs in (ProFTPD 1.3.8's "
        "session process dies on the NULL: the connection closes)"),
    ("copy-engine-off", "SITE CPTO x"): ("with CopyEngine off SITE CPTO is not understood (ProFTPD's mod_quotatab "
                                         "still answers 503)"),
    ("radius-class-reply-message", "PASS alice-radius"): (
        "an Access-Accept whose Reply-Message follows another attribute (a Class) is answered (ProFTPD 1.3.8's "
        "session never answers that PASS)"),
    ("radius-class-reply-message", "PWD"): "(the PASS above)",
    ("radius-reject-then-accept", "PASS bob-radius"): RADIUS_AFRESH,
    ("radius-reject-then-accept", "PWD"): RADIUS_AFRESH,
    ("radius-pass-first", "PASS bob-radius"): RADIUS_AFRESH,
    ("radius-down-user-info", "PASS alice-pw"): RADIUS_DOWN,
    ("radius-down-user-info", "PWD"): RADIUS_DOWN,
    ("radius-wrong-secret", "PASS alice-pw"): RADIUS_DOWN,
    ("radius-reply-messages", "PASS msg-radius"): (
        "every Reply-Message is a line of the reply (ProFTPD 1.3.8 shows the first one only, followed by the next "
        "attribute's two header bytes)"),
    ("radius-session-timeout", "PASS timeout-radius"): (
        "an Access-Accept's Session-Timeout (and Idle-Timeout) is applied (Debian's ProFTPD 1.3.8 dies with SIGSEGV "
        "on either)"),
    ("radius-session-timeout", "PWD"): "(the PASS above)",
}
# Known differences not fixed yet, and why (not counted as failures; the summary counts them).
PENDING: dict[tuple[str, str], str] = {
    ("host-main-alias", "HOST main.test"): "ProFTPD 1.3.8 binds the ServerAlias names of <VirtualHost>s only "
    "(bindings.c runs process_serveralias for the servers after the main one): HOST naming the main server's alias "
    "is 504 there, and that name in a TLS SNI is refused; proftpy's main server answers to its ServerAlias",
}
# The same differences wherever they show: (step pattern, pattern of ProFTPD's first reply line) -> why.
EXPECTED_ANYWHERE: list[tuple[str, str, str]] = [
    (r"STOU\b", r"550 \S+: Overwrite permission denied", "STOU creates a new name, so it does not need AllowOverwrite"),
    (r"(LIST|NLST|MLSD|RETR|STOR|APPE|STOU)\b", r"425 Unable to build data connection: Connection refused", NO_PORT),
    (r"(?i)SITE CPTO\b", r"503-Bad sequence of commands", "one line (ProFTPD's mod_quotatab adds the same line twice, "
     "before and after mod_copy)"),
]


def expected(scenario: str, step: str, left: list[str], right: list[str]) -> str | None:
    """Why this step differs on purpose (EXPECTED, EXPECTED_ANYWHERE), or None."""
    why = EXPECTED.get((scenario, step))
    if why is None and (scenario, step) in PENDING:
        why = "PENDING: " + PENDING[(scenario, step)]
    if why is None and left:
        why = next((reason for step_re, left_re, reason in EXPECTED_ANYWHERE
                    if re.match(step_re, step) and re.match(left_re, left[0])), None)
    return why


# -- the two servers -------------------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    base: Path                      # the server's own directory: config, pid, logs, home
    port: int = 0
    proc: subprocess.Popen | None = None
    radius_mark: int = 0            # accounting records of this server before the scenario (radius-* scenarios)

    @property
    def home(self) -> Path:
        return self.base / "home" / USER

    def homes(self) -> list[Path]:
        return [self.base / "home" / name for name in USERS]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_auth_files(base: Path) -> None:
    from proftpy.auth.crypt import crypt_hash
    (base / "ftpd.passwd").write_text("".join(
        f"{name}:{crypt_hash(password, 'sha512')}:{uid}:{GROUPS[group][0]}:{name}:{base / 'home' / name}:/bin/sh\n"
        for name, (password, uid, group) in USERS.items()))
    (base / "ftpd.group").write_text("".join(f"{name}:x:{gid}:{','.join(members)}\n"
                                             for name, (gid, members) in GROUPS.items()))
    for name in ("ftpd.passwd", "ftpd.group"):
        os.chmod(base / name, 0o600)


def build_tree(home: Path, extra: Callable[[Path], None] | None = None) -> None:
    """The same small tree for both servers: files, directories, a symlink, a root-owned directory; then what the
    scenario adds (`extra`)."""
    uid = USERS[home.name][1]
    gid = GROUPS[USERS[home.name][2]][0]
    if home.exists():
        unmount_under(home)
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / "file.txt").write_bytes(b"hello world\nsecond line\n")
    (home / "other.txt").write_bytes(b"other\n")
    (home / "empty.bin").write_bytes(b"")
    (home / "dir" / "sub dir").mkdir(parents=True)
    (home / "dir" / "inner.txt").write_bytes(b"inner\n")
    (home / "empty").mkdir()
    (home / "locked").mkdir()
    (home / "locked" / "ro.txt").write_bytes(b"read only\n")
    (home / "locked" / "secret.txt").write_bytes(b"secret\n")
    os.symlink("file.txt", home / "link")
    os.symlink("dir", home / "link-dir")
    if extra is not None:
        extra(home)
    for root, dirs, files in os.walk(home, topdown=False):
        for name in files + dirs:
            path = os.path.join(root, name)
            if not (root.endswith("locked")):
                os.lchown(path, uid, gid)
            if not os.path.islink(path):
                os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    os.chown(home, uid, gid)
    os.chmod(home / "locked" / "secret.txt", 0o600)
    os.utime(home, (FIXED_MTIME, FIXED_MTIME))


def unmount_under(path: Path) -> None:
    """Unmount what a scenario mounted below `path` (a tmpfs of xferlog-full-device), deepest first."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", point], check=True)


def in_private_mounts(network: bool = False) -> None:
    """Run the rest of the script in a private mount namespace (`unshare -m`): scenarios may mount a small tmpfs
    (a full device), which then is seen by the two servers (our children) and by nobody else, and is gone with
    the namespace when the script ends. With `network` (dnsbl-* scenarios), in a private network namespace too:
    its own loopback, and /etc/resolv.conf saying `nameserver 127.0.0.1` (its port 53 is the namespace's own)."""
    if os.environ.get("COMPARE_PRIVATE_MOUNTS") or not shutil.which("unshare"):
        return
    os.environ["COMPARE_PRIVATE_MOUNTS"] = "1"
    if not network:
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv])
    fd, resolv = tempfile.mkstemp(prefix="compare-resolv-")
    os.write(fd, b"nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    os.close(fd)
    os.chmod(resolv, 0o644)
    os.environ["COMPARE_RESOLV"] = resolv           # removed once mounted (main)
    setup = f'ip link set lo up && mount --bind "{resolv}" /etc/resolv.conf && exec "$@"'
    os.execvp("unshare", ["unshare", "-n", "-m", "--propagation", "private", "sh", "-c", setup, "sh",
                          sys.executable, *sys.argv])


def start(server: Server, argv: list[str], extra: str) -> None:
    server.base.mkdir(parents=True, exist_ok=True)
    os.chmod(server.base, 0o755)
    (server.base / "home").mkdir(exist_ok=True)
    os.chmod(server.base / "home", 0o755)
    write_auth_files(server.base)
    for home in server.homes():
        build_tree(home)
    server.port = free_port()
    values = {"port": server.port, "dir": server.base, "base": server.base, "srv": server.base.name,
              "ldap_port": LDAP.port if LDAP is not None else 0, "ldap_tls_port": LDAP.tls_port if LDAP is not None
              else 0, "ldap_ca": LDAP.ca if LDAP is not None else ""}
    if SQL_SERVERS:
        values.update(sql_closed=free_port(), **{f"{kind}_port": server.port for kind, server in SQL_SERVERS.items()},
                      **{f"{kind}_ca": server.cert for kind, server in SQL_SERVERS.items()})
    if RADIUS is not None:
        from radius_helpers import SECRET
        values.update(radius_auth=RADIUS.auth_port, radius_acct=RADIUS.acct_port, radius_secret=SECRET,
                      radius_closed=free_port())
    if STAPLING is not None:
        values.update(ocsp_pki=STAPLING["dir"], ocsp_relay=STAPLING["relay"].port,
                      ocsp_memcached=STAPLING["memcached_port"])
    conf = server.base / "server.conf"
    common = COMMON_CONF
    if re.search(r"^AuthOrder ", extra, re.M):     # a second AuthOrder is fatal to ProFTPD: the scenario's replaces
        common = re.sub(r"^AuthOrder .*\n", "", common, flags=re.M)
    conf.write_text((extra + common).format(**values))
    log = open(server.base / "stderr.log", "wb")
    env = None
    if argv == [PROFTPD] and "mod_dnsbl.c" in extra:     # Debian's mod_dnsbl.so needs libresolv, not linked in
        env = dict(os.environ, LD_PRELOAD="/lib/x86_64-linux-gnu/libresolv.so.2")
    server.proc = subprocess.Popen(argv + ["-n", "-c", str(conf)], cwd=server.base, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    if not wait_for_greeting(server.port, 15, server.proc):
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited: {(server.base / 'stderr.log').read_text(errors='replace')}")
        server.stop()
        raise SystemExit(f"{server.name} did not start within 15 s")


def wait_for_greeting(port: int, seconds: float, proc: subprocess.Popen | None = None) -> bool:
    """Connect until a greeting arrives (one probe connection); False after `seconds` or when `proc` exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(5)
                s.recv(1024)
            return True
        except OSError:
            time.sleep(0.05)
    return False


# -- a raw FTP client ------------------------------------------------------------------------------------------------
class Client:
    """Just enough of a client to send a line, read one reply (multi-line aware) and serve a data connection."""

    def __init__(self, port: int, source: str = "127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT, source_address=(source, 0))
        self.source = source
        self.buf = b""
        self.passive: tuple[str, int] | None = None
        self.listener: socket.socket | None = None
        self.stalled: socket.socket | None = None     # a data connection left unread (`<<stall`)

    def close(self) -> None:
        for s in (self.sock, self.listener, self.stalled):
            if s is not None:
                s.close()

    def _line(self) -> str | None:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self) -> list[str]:
        try:
            first = self._line()
            if first is None:
                return ["<no reply>"]
            lines = [first]
            if re.match(r"\d{3}-", first):
                while True:
                    line = self._line()
                    if line is None:
                        return lines + ["<no end of reply>"]
                    lines.append(line)
                    if re.match(rf"{first[:3]} ", line):
                        break
            return lines
        except EOFError:
            return ["<connection closed>"]

    def listen(self) -> tuple[str, int]:
        if self.listener is not None:
            self.listener.close()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(REPLY_TIMEOUT)
        return self.listener.getsockname()

    def step(self, line: str) -> tuple[list[str], list[str]]:
        """Send one line; return its reply lines and the data-connection lines (if a transfer took place).
        `RETR big.bin || RNFR x || NOOP`: the commands after `||` are sent once the transfer's 150 has come, while
        the data is not read yet (so the transfer is still running), each reply shown after an `(during)` mark.
        `RETR big.bin <<stall`: the data connection is made but nothing is read or sent on it (TimeoutStalled);
        `RETR big.bin <<close`: the client reads a little and closes the data connection before the end."""
        line, _, how = line.partition(" <<")
        line, *during = line.split(" || ")
        if "{PORT}" in line:
            host, port = self.listen()
            line = line.replace("{PORT}", host.replace(".", ",") + f",{port >> 8},{port & 255}")
        if "{TOTP" in line:
            line = re.sub(r"\{TOTP(?:-(sha\d+))?\}", lambda m: totp_now(m.group(1) or "sha1"), line)
        if "{EPRT}" in line:
            host, port = self.listen()
            line = line.replace("{EPRT}", f"|1|{host}|{port}|")
        verb = line.strip().split(" ")[0].upper()
        data_sock = None
        if verb in DATA_COMMANDS and self.passive:
            try:
                data_sock = socket.socket()
                data_sock.bind((self.source, 0))
                if how == "stall":
                    data_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)     # a zero window soon
                data_sock.settimeout(REPLY_TIMEOUT)
                data_sock.connect(self.passive)
            except OSError as e:
                data_sock = None
                print(f"  (data connect to {self.passive} failed: {e})", file=sys.stderr)
            self.passive = None
        try:
            self.sock.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")
        except OSError:
            return ["<connection closed>"], []
        lines = self.reply()
        data: list[str] = []
        if verb in DATA_COMMANDS and lines[0][:1] == "1":
            for other in during:
                self.sock.sendall(other.encode("utf-8", "surrogateescape") + b"\r\n")
                lines += [f"(during) {other}"] + self.reply()
            data = self._transfer(verb, data_sock, how)
            if verb in ("NLST", "MLSD"):
                data.sort()             # directory (readdir) order depends on the file system, not the server
            data_sock = None
            lines += self.reply()
            self.sock.settimeout(REPLY_TIMEOUT)
        if data_sock is not None:
            data_sock.close()
        self._note_passive(lines)
        return lines + self._extra(), data

    def _extra(self) -> list[str]:
        """Replies nobody asked for (a server answering one command twice) are shown with the step."""
        extra: list[str] = []
        for _ in range(5):
            if b"\n" not in self.buf and not select.select([self.sock], [], [], EXTRA_WAIT)[0]:
                break
            more = self.reply()
            extra += ["(extra) " + line for line in more]
            if more == ["<connection closed>"]:
                break
        return extra

    def _transfer(self, verb: str, data_sock: socket.socket | None, how: str = "") -> list[str]:
        if data_sock is None and self.listener is not None:
            try:
                data_sock, _ = self.listener.accept()
            except OSError as e:
                return [f"<no data connection: {e}>"]
        if data_sock is None:
            return ["<no data connection>"]
        if how == "stall":
            self.stalled = data_sock            # kept open, unread, until the server gives up
            self.sock.settimeout(STALL_WAIT)
            return ["<data connection left stalled>"]
        if how == "close":
            data_sock.settimeout(REPLY_TIMEOUT)
            if verb not in UPLOAD_COMMANDS:
                try:
                    data_sock.recv(EARLY_CLOSE_READ)
                except OSError:
                    pass                        # closed already: what matters is the server's reply
            data_sock.close()
            return ["<data connection closed early>"]
        with data_sock:
            data_sock.settimeout(REPLY_TIMEOUT)
            if verb in UPLOAD_COMMANDS:
                body = BIG_UPLOAD if how == "big" else UPLOAD
                try:
                    data_sock.sendall(body)
                except OSError as e:
                    return [f"<upload failed: {e.strerror}>"]
                return [f"<sent {len(body)} bytes>"]
            chunks = []
            try:
                while chunk := data_sock.recv(65536):
                    chunks.append(chunk)
            except OSError as e:
                chunks.append(f"<data error: {e}>".encode())
        if sum(len(c) for c in chunks) > 65536:
            return [f"data: <{sum(len(c) for c in chunks)} bytes>"]
        text = b"".join(chunks).decode("utf-8", "replace")
        return [f"data: {line!r}" for line in text.splitlines(keepends=True)] or ["data: <empty>"]

    def _note_passive(self, lines: list[str]) -> None:
        last = lines[-1]
        m = re.match(r"227 .*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", last)
        if m:
            n = [int(x) for x in m.groups()]
            self.passive = (".".join(map(str, n[:4])), n[4] * 256 + n[5])
        m = re.match(r"229 .*\(\|\|\|(\d+)\|\)", last)
        if m:
            self.passive = ("127.0.0.1", int(m.group(1)))


# -- normalising and comparing ---------------------------------------------------------------------------------------
NORMALISE = [
    (re.compile(r"\(\d+,\d+,\d+,\d+,\d+,\d+\)"), "(h1,h2,h3,h4,p1,p2)"),
    (re.compile(r"\(\|\|\|\d+\|\)"), "(|||port|)"),
    (re.compile(r"ProFTPD \d[\w.]*( Server)?"), r"ProFTPD\1"),
    (re.compile(r"proftpy \d[\w.]*( Server)?"), r"ProFTPD\1"),
    (re.compile(r"version=[\w.]+"), "version=V"),
    # ListStyle Windows: proftpy's times end in AM/PM as IIS's do; ProFTPD 1.3.8's strftime buffer is two bytes
    # short and drops them (its hours are ambiguous); docs/listing.md
    (re.compile(r"(\d{2}-\d{2}-\d{2}  \d{2}:\d{2})[AP]M"), r"\1"),
    (re.compile(r"\b\d{2}:\d{2}(:\d{2})?\b"), "HH:MM"),
    (re.compile(r"(modify|UNIX\.ctime|UNIX\.atime)=\d{14}(\.\d+)?"), r"\1=TIME"),
    (re.compile(r"unique=[0-9a-fA-F]+U[0-9a-fA-F]+"), "unique=ID"),
    (re.compile(r"\b(ftp|stou|up-)\w{6,8}\b"), "STOUNAME"),    # 6 random characters (mkstemp), proftpy 8
    (re.compile(r"\bpid \d+"), "pid N"),
]


# Counts that depend on how far a transfer got when a command came during it (`RETR x || STAT`).
DURING = [
    (re.compile(r"^( Total bytes transferred for session:) \d+$"), r"\1 N"),
    (re.compile(r"^( (Passive data transfer from|Active data transfer to) from \S+ port) \d+$"), r"\1 N"),
    (re.compile(r"^( (RETR|STOR) \S+ \((\d+/)?)\d+\)$"), r"\1N)"),
]


def normalise(line: str, patterns: list[tuple[re.Pattern, str]] = NORMALISE) -> str:
    for pattern, repl in patterns:
        line = pattern.sub(repl, line)
    return line


@dataclass
class Outcome:
    step: str
    left: list[str] = field(default_factory=list)
    right: list[str] = field(default_factory=list)
    expected: str | None = None         # why this step differs on purpose (EXPECTED)

    @property
    def same(self) -> bool:
        return self.left == self.right


def run_scenario(server: Server, scenario: Scenario) -> list[list[str]]:
    for home in server.homes():
        build_tree(home, scenario.tree)
    if RADIUS_STEP in scenario.steps:          # the records of this scenario's sessions only
        server.radius_mark = len([r for r in RADIUS.records() if r.get("NAS-Port") == str(server.port)])
    for log in ("xfer.log", "ext.log", "dnsbl.log"):
        if (server.base / log).exists():
            os.truncate(server.base / log, 0)           # each scenario shows its own log lines
    others = []
    for _ in range(scenario.others):
        other = Client(server.port)
        other.reply()
        for line in LOGIN:
            other.step(line)
        others.append(other)
    identd = Identd(scenario.source, scenario.identd) if scenario.identd is not None else None
    client = Client(server.port, scenario.source)
    try:
        client.sock.settimeout(scenario.greeting_wait)
        out = [[normalise(x) for x in client.reply()]]
        client.sock.settimeout(REPLY_TIMEOUT)
        for step in scenario.steps:
            if step == XFERLOG_STEP:
                out.append(read_xferlog(server))
                continue
            if step == EXTLOG_STEP:
                out.append(read_extlog(server))
            if step == RADIUS_STEP:
                out.append(read_radacct(server))
                continue
            if step == DNSBL_STEP:
                out.append(read_dnsbllog(server))
                continue
            if step == OCSP_STEP:
                out.append(ocsp_status(server))
                continue
            if step.startswith(FTPDCTL_STEP):
                out.append(ftpdctl_lines(server, step))
                continue
            lines, data = client.step(step)
            if " || " in step:
                lines = [normalise(x, DURING) for x in lines]
            out.append([normalise(x) for x in lines + data])
        return out
    finally:
        client.close()
        for other in others:
            other.close()
        if identd is not None:
            identd.stop()


XFERLOG_STEP = "<xferlog>"          # a pseudo-step: the lines of the scenario's TransferLog {dir}/xfer.log so far
EXTLOG_STEP = "<extlog>"            # a pseudo-step: the lines of the scenario's ExtendedLog {dir}/ext.log so far
OIDENTD = "oidentd"                 # Scenario.identd: Debian's oidentd (it names the script's user, root)
IDENT_WAIT = 12.0                   # ProFTPD 1.3.8 sends its ident query some 5 s after connecting (it waits for the
                                    # socket to be readable, until an unrelated timer interrupts), 10 s at most


def read_extlog(server: Server) -> list[str]:
    """The ExtendedLog's lines (the scenario's LogFormat has nothing that must differ)."""
    path = server.base / "ext.log"
    for _ in range(20):
        if path.exists() and path.read_text(errors="replace").endswith("\n"):
            break
        time.sleep(0.05)
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [normalise("extlog: " + line.replace(str(server.base), "BASE")) for line in lines] or \
        ["<ExtendedLog empty>"]


class Identd:
    """An identd on addr:113 for one scenario: Debian's oidentd in the foreground (stopped by its pid), or a thread
    that answers every query with the scenario's bytes."""

    def __init__(self, addr: str, answer: bytes | str):
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        if answer == OIDENTD:
            self.proc = subprocess.Popen(["/usr/sbin/oidentd", "-i", "-S", "-q", "-a", addr, "-p", "113", "-C",
                                          "/dev/null", "-t", "15"], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    socket.create_connection((addr, 113), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)
            return
        self.sock = socket.create_server((addr, 113))
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(answer,), daemon=True)
        self.thread.start()

    def _serve(self, answer: bytes) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(IDENT_WAIT)
                try:
                    conn.recv(100)
                    conn.sendall(answer)
                except OSError:
                    pass            # the server stopped reading (a long answer): what the scenario is about

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sock is not None:
            self.stopping.set()
            self.sock.close()
            self.thread.join(5)


def read_xferlog(server: Server) -> list[str]:
    """The TransferLog's lines with what must differ made equal: the time's digits, the seconds, the server's
    directory."""
    path = server.base / "xfer.log"
    for _ in range(20):                 # a line is written after the transfer's reply: give it a moment
        if path.exists() and path.read_text().endswith("\n"):
            break
        time.sleep(0.05)
    if not path.exists():
        return ["<no TransferLog>"]
    lines = []
    for line in path.read_text().splitlines():
        fields = line[25:].split(" ")
        fields[0] = "SECS"
        if fields[-1] == "i":
            fields[2] = "BYTES"         # an incomplete transfer's count depends on the sockets' buffers
        when = re.sub(r"\d", "N", line[:24])    # the date's layout stays compared (ProFTPD writes `Dec 07`)
        lines.append(normalise(f"xferlog: {when} " + " ".join(fields).replace(str(server.base), "{dir}")))
    return lines or ["<TransferLog empty>"]


def show(name: str, outcomes: list[Outcome], show_all: bool, show_expected: bool, width: int) -> None:
    col = max(30, (width - 5) // 2)
    printed_header = False
    for o in outcomes:
        if (o.same and not show_all) or (not o.same and o.expected and not (show_all or show_expected)):
            continue
        if not printed_header:
            print(f"== {name}")
            printed_header = True
        mark = " " if o.same else "~" if o.expected else "!"
        print(f"{mark} > {o.step!r}" + (f"    (expected: {o.expected})" if o.expected and not o.same else ""))
        rows = max(len(o.left), len(o.right))
        for i in range(rows):
            left = o.left[i] if i < len(o.left) else ""
            right = o.right[i] if i < len(o.right) else ""
            sep = " " if left == right else "|"
            lw = textwrap.wrap(left, col) or [""]
            rw = textwrap.wrap(right, col) or [""]
            for j in range(max(len(lw), len(rw))):
                a = lw[j] if j < len(lw) else ""
                b = rw[j] if j < len(rw) else ""
                print(f"    {a:<{col}} {sep} {b}")


def by_conf(chosen: list[Scenario]) -> list[tuple[str, list[Scenario]]]:
    """Scenarios grouped by their configuration (first appearance order): one pair of servers per group."""
    groups: dict[str, list[Scenario]] = {}
    for sc in chosen:
        groups.setdefault(sc.conf, []).append(sc)
    return list(groups.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="print matching steps too")
    parser.add_argument("--expected", action="store_true", help="print the differences kept on purpose too")
    parser.add_argument("-k", dest="select", action="append", default=[], help="run scenarios whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the scenario names and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    parser.add_argument("--width", type=int, default=shutil.get_terminal_size((160, 40)).columns)
    args = parser.parse_args()
    chosen = [sc for sc in scenarios() if not args.select or any(k in sc.name for k in args.select)]
    if args.list:
        print("\n".join(sc.name for sc in chosen))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("run as root: both servers switch to the test user's uid after login")
    if not os.path.exists(PROFTPD):
        raise SystemExit(f"{PROFTPD} is not installed (apt-get install proftpd-basic)")
    in_private_mounts(network=any(sc.name.startswith("dnsbl-") for sc in chosen))
    if os.environ.get("COMPARE_RESOLV"):
        os.unlink(os.environ.pop("COMPARE_RESOLV"))       # the bind mount keeps it for the namespace
    tmp = Path(tempfile.mkdtemp(prefix="compare-proftpd-"))
    os.chmod(tmp, 0o755)
    differing = kept = 0
    if any(sc.name.startswith("ldap-") for sc in chosen):
        start_ldap(tmp)
    try:
        for kind in ("pg", "my"):
            if any(sc.name.startswith(f"sql-{kind}-") for sc in chosen):
                start_sql_server(kind, tmp)
        if any(sc.name.startswith("radius-") for sc in chosen):
            start_radius(tmp)
        if any(sc.name.startswith("stapling-") for sc in chosen):
            start_stapling(tmp)
        if any(sc.name.startswith("dnsbl-") for sc in chosen):
            start_dnsbl(tmp)
        for n, (conf, group) in enumerate(by_conf(chosen)):
            oracle = Server("proftpd", tmp / f"proftpd{n}")
            ours = Server("proftpy", tmp / f"proftpy{n}")
            try:
                # the scenario's lines come before the common ones: the first DefaultRoot that applies wins
                start(oracle, [PROFTPD], PROFTPD_EXTRA + conf)
                start(ours, [sys.executable, "-m", "proftpy"], PROFTPY_EXTRA + conf)
                if n == 0:
                    print(f"{'proftpd':<{max(30, (args.width - 5) // 2) + 4}}   proftpy")
                for sc in group:
                    left = run_scenario(oracle, sc)
                    right = run_scenario(ours, sc)
                    outcomes = [Outcome(step, a, b, expected(sc.name, step, a, b))
                                for step, a, b in zip(["<connect>"] + sc.steps, left, right)]
                    differing += sum(not o.same and not o.expected for o in outcomes)
                    kept += sum(not o.same and bool(o.expected) for o in outcomes)
                    show(sc.name, outcomes, args.all, args.expected, args.width)
            finally:
                ours.stop()
                oracle.stop()
        print(f"\n{len(chosen)} scenarios, {differing} differing steps, {kept} expected differences"
              + ("" if args.expected or not kept else " (--expected shows them)"))
    finally:
        if LDAP is not None:
            LDAP.stop()
        if RADIUS is not None:
            RADIUS.stop()
        if DNSBL is not None:
            DNSBL.stop()
        stop_stapling()
        for server in SQL_SERVERS.values():
            server.stop()
        unmount_under(tmp)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
