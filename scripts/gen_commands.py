#!/usr/bin/env python3
"""Write docs/commands.md: every command in proftpy's command table (module, <Limit> group, login rule, syntax,
FEAT lines) with the replies clients see. The table part comes from the `Command` rows; the reply texts are the
ProFTPD texts (reference §8) listed below, so a command added without them shows up with an empty column.

Usage: python scripts/gen_commands.py > docs/commands.md
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from proftpy import modules  # noqa: E402

REPLIES = {
    "USER": ["331 Password required for %u", "331 Anonymous login ok, send your complete email address as your "
             "password", "500 USER: command requires a parameter", "501 Reauthentication not supported (after login)"],
    "PASS": ["230 User %u logged in", "230 Anonymous access granted, restrictions apply", "530 Login incorrect.",
             "503 Login with USER first", "503 You are already logged in"],
    "ACCT": ["502 ACCT command not implemented"], "REIN": ["502 REIN command not implemented"],
    "QUIT": ["221 Goodbye. (DisplayQuit lines as 221-; arguments ignored)"],
    "NOOP": ["200 NOOP command successful (arguments ignored)"],
    "SYST": ["215 UNIX Type: L8"], "FEAT": ["211-Features: ... 211 End", "211 No features supported"],
    "HELP": ["214-The following commands are recognized ... (ProFTPD's order, * = unimplemented)",
             "214 Direct comments to <ServerAdmin, or root@<server address or its DNS name>>",
             "214 Syntax: <cmd> <syntax>", "502 Unknown command '<cmd>'"],
    "PWD": ['257 "<dir>" is the current directory'], "XPWD": ['257 "<dir>" is the current directory'],
    "CWD": ["250 CWD command successful (DisplayChdir lines as 250-)", "550 <dir>: <error>"],
    "XCWD": ["250 XCWD command successful"], "CDUP": ["250 CDUP command successful"],
    "XCUP": ["250 XCUP command successful"],
    "MKD": ['257 "<dir>" - Directory successfully created', "550 <dir>: Invalid directory name (a `*`)",
            "550 <dir>: <error>"],
    "XMKD": ['257 "<dir>" - Directory successfully created'],
    "RMD": ["250 RMD command successful", "550 <dir>: <error>"], "XRMD": ["250 XRMD command successful"],
    "DELE": ["250 DELE command successful", "550 <path>: Is a directory", "550 <path>: <error>"],
    "RNFR": ["350 File or directory exists, ready for destination name", "550 <path>: <error>"],
    "RNTO": ["250 Rename successful", "503 Bad sequence of commands", "550 <path>: Rename permission denied "
             "(AllowOverwrite off)"],
    "SIZE": ["213 <bytes>", "550 SIZE not allowed in ASCII mode", "550 <path>: not a regular file"],
    "MDTM": ["213 YYYYMMDDHHMMSS", "550 <path>: not a plain file"],
    "MFMT": ["213 Modify=YYYYMMDDHHMMSS; <path>", "501 <timestamp>: Invalid argument"],
    "MFF": ["213 <facts> <path>", "504 Cannot modify fact '<fact>'"],
    "OPTS": ["200 UTF8 set to on|off", "501 'OPTS UTF8' not understood", "500 OPTS <x> not understood",
             "OPTS MLST: see MLST"],
    "HOST": ["220 HOST command successful (IP literal)", "220 <greeting of the named server>",
             "501 <host>: Invalid hostname provided", "501 <host>: Invalid IPv6 address provided",
             "504 <host>: Unknown hostname provided", "503 Bad sequence of commands (after login)"],
    "CLNT": ["200 OK"], "CSID": ["200 name=ProFTPD;version=1.3.8;casesensitive=1;"],
    "SITE": ["200 SITE <CMD> command successful", "214 SITE HELP list", "500 'SITE <x>' not understood",
             "500 'SITE' requires parameters", "500-'SITE CHMOD <args>' not understood / 500 SITE not understood",
             "502 Unknown command 'SITE HELP <x>'", "550 '<mode>': invalid mode"],
    "TYPE": ["200 Type set to <code as sent: A, I, L>", "504 TYPE not implemented for '<x>' parameter",
             "500 'TYPE' not understood"],
    "MODE": ["200 Mode set to S", "504 '<x>' unsupported transfer mode", "501 'MODE' not understood"],
    "STRU": ["200 Structure set to F", "501 'STRU' not understood"],
    "ALLO": ["202 No storage allocation necessary", "504 <x>: Invalid ALLO argument", "504 'ALLO' not understood"],
    "PORT": ["200 PORT command successful", "501 Illegal PORT command"],
    "EPRT": ["200 EPRT command successful", "522 Network protocol not supported, use (1)",
             "501 Illegal EPRT command"], "PASV": ["227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)."],
    "EPSV": ["229 Entering Extended Passive Mode (|||<port>|)", "200 EPSV ALL command successful"],
    "REST": ["350 Restarting at <n>. Send STORE or RETRIEVE to initiate transfer"],
    "RETR": ["150 Opening <MODE> mode data connection for <path> (<n> bytes)", "226 Transfer complete"],
    "STOR": ["150 Opening <MODE> mode data connection for <path>", "226 Transfer complete",
             "550 <path>: Overwrite permission denied"],
    "APPE": ["150 ...", "226 Transfer complete"], "STOU": ["150 FILE: <name>", "226 Transfer complete"],
    "ABOR": ["226 Abort successful"],
    "LIST": ["150 Opening ASCII mode data connection for file list", "226 Transfer complete",
             "450 <path>: No such file or directory (after the 150)"],
    "NLST": ["150 Opening ASCII mode data connection for file list", "226 Transfer complete"],
    "STAT": ["211-Status of ... / 213-Status of <path>:"],
    "MLSD": ["150 Opening ASCII mode data connection for MLSD", "226 Transfer complete"],
    "MLST": ["250-Start of list for <path> ... 250 End of list"],
}


def main() -> None:
    table = modules.dispatcher().commands
    out = ["# Commands", "",
           "Generated by `scripts/gen_commands.py` from the command table (do not edit by hand). *Group* is the "
           "`<Limit>` group (READ, WRITE, DIRS); *Login* says whether the command needs a logged-in session; "
           "*FEAT* lists the lines the command adds to FEAT. SITE sub-commands are checked against `<Limit>` as "
           "`SITE_CHMOD`, `SITE_CHGRP`, `SITE_MKDIR`, `SITE_RMDIR`, `SITE_SYMLINK`, `SITE_UTIME` (group WRITE).",
           "", "| Command | Module | Group | Login | Syntax | FEAT | Replies |", "|---|---|---|---|---|---|---|"]
    for name in sorted(table):
        c = table[name]
        feat = "<br>".join(f"`{f}`" for f in c.feat)
        replies = "<br>".join(f"`{r}`" for r in REPLIES.get(name, []))
        syntax = c.help.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        out.append(f"| {name} | {c.module} | {c.group or ''} | {'yes' if c.needs_login else 'no'} | {syntax} | "
                   f"{feat} | {replies.replace('|', chr(92) + '|')} |")
    out += ["", "## SITE sub-commands", "",
            "| Sub-command | Syntax | Reply |", "|---|---|---|",
            "| HELP | `SITE HELP [command]` | `214-` list, `214 Syntax: SITE <CMD> <syntax>` |",
            "| CHMOD | `SITE CHMOD <mode> <path>` (octal, or one symbolic clause such as `go+r`) | "
            "`200 SITE CHMOD command successful` |",
            "| CHGRP | `SITE CHGRP <group or gid> <path>` | `200 SITE CHGRP command successful` |",
            "| MKDIR | `SITE MKDIR <path>` (creates parents) | `200 SITE MKDIR command successful` |",
            "| RMDIR | `SITE RMDIR <path>` (removes the tree; links are removed, not followed) | "
            "`200 SITE RMDIR command successful` |",
            "| SYMLINK | `SITE SYMLINK <source> <destination>` | `200 SITE SYMLINK command successful` |",
            "| UTIME | `SITE UTIME YYYYMMDDhhmm[ss] <path>` or `SITE UTIME <path> <atime> <mtime> <ctime> UTC` | "
            "`200 SITE UTIME command successful`, `500 ...: Invalid argument` |", "",
            "## Display files", "",
            "`DisplayConnect` (220- lines before the greeting), `DisplayLogin` (230- lines), `DisplayChdir file [on]` "
            "(250- lines on CWD/CDUP; a relative name is looked for in the new directory, `on` shows it only when it "
            "changed since the last visit) and `DisplayQuit` (221- lines). After login a path is inside the session "
            "root; absolute files configured at server level are opened at session start, so they stay readable "
            "after chroot. A missing file is skipped silently.", "",
            "Variables: `%C` current directory (`(none)` before login), `%E` ServerAdmin, `%F`/`%f` free space in KB "
            "/ scaled (`05KB`, `120MB`), `%i` `%o` `%t` files in/out/total, `%K`/`%k` bytes transferred "
            "(KB / `B` or `kB`), `%L` server name (MasqueradeAddress first), `%M` MaxClients (0 = none), `%N` "
            "sessions counted for MaxClients (1 when unknown), `%R` client name, `%T` local time, `%U` name given "
            "to USER, `%u` ident (`UNKNOWN`), `%V` ServerName, `%x` class (`(unknown)`), `%y` class sessions, `%z` "
            "class limit; `%{total_bytes_in}` `%{total_bytes_out}` `%{total_bytes_xfer}` `%{total_files_in}` "
            "`%{total_files_out}` `%{total_files_xfer}` `%{bytes_xfer}`, `%{env:NAME}`, `%{time:strftime-format}`. "
            "Unknown `%{...}` names and unset environment variables read `(none)`, as in ProFTPD. The transfer "
            "counters are kept by mod_log.", "",
            "## Checking against ProFTPD", "",
            "`scripts/compare_proftpd.py` is a developer tool (not run by `make test`): on a machine with Debian's "
            "ProFTPD 1.3.8 (`apt-get install proftpd-basic`; its service need not run), run as root "
            "`.venv/bin/python scripts/compare_proftpd.py`. It starts `/usr/sbin/proftpd -n` and proftpy on free "
            "loopback ports with equivalent configurations (an AuthUserFile user chrooted to identical homes under a "
            "temporary directory, rebuilt before every scenario), sends the same command scripts to both over raw "
            "sockets (every command before login, without an argument, with bad arguments, on missing files and on "
            "directories; lower case, tabs, trailing spaces, PORT/EPRT/EPSV ALL, REST then STOR, transfers), and "
            "prints the differing replies side by side. Only ports, times, the version, STOU names and the "
            "directory order of NLST/MLSD are normalised. `--all` shows matching steps too, `-k NAME` picks "
            "scenarios, `--list` names them, `--keep` keeps the configurations and logs; the exit status is 1 "
            "while any reply differs.", "",
            "Differences kept on purpose: FEAT has no `LANG` and `RANG STREAM` (neither command is implemented; "
            "HELP marks RANG with `*`); PORT/EPRT to another host or with a port outside 1024-65535 are refused "
            "(`500 Illegal PORT command`: no FTP bounce; ProFTPD 1.3.8 accepts some); STOU works without "
            "AllowOverwrite (ProFTPD answers `550 <name>: Overwrite permission denied`); a transfer without "
            "PORT/PASV answers `425 Unable to build data connection: No PORT or PASV command issued first` "
            "(ProFTPD tries the client's port and reports its error); a PORT/EPRT target serves one transfer "
            "(ProFTPD connects to it again for later ones); a NUL in a command line is refused with "
            "`501`; an over-long line gets `500 Command line too long` (ProFTPD says nothing); ProFTPD answers a "
            "few commands twice before login (`RNTO`, `SITE CHMOD`, `SITE CHGRP`: two `530` lines), proftpy once.",
            ""]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
