"""mod_log: TransferLog (xferlog), ExtendedLog with LogFormat, ServerLog, and the session's transfer totals.

When the files are opened: at session start, while the session process is still root and not chrooted, every log
the session may write is opened once (TransferLog and ExtendedLog of the server *and* of each `<Anonymous>`, like
ProFTPD's find_extendedlogs) and kept open. After login the effective ones are picked: a non-anonymous session
leaves the `<Anonymous>` logs aside; an anonymous one leaves the other `<Anonymous>` logs aside, lets its own
ExtendedLog replace an outer one of the same path, and drops its own NONE logs. Each line is one write(2) on an
O_APPEND descriptor, so lines of concurrent sessions never interleave.

A log in a world-writable directory, or one that is a symbolic link (unless `AllowLogSymlinks on`), is refused
with a message in the SystemLog, as ProFTPD refuses them.

Transfer facts come from mod_xfer (`cmd.notes["xfer"]`, fields in proftpy/modules/xfer.py), listing sizes from
`cmd.notes["list_bytes"]`, DELE sizes from `cmd.notes["deleted"]`, RNTO sources from `cmd.notes["rnfr_path"]`.
"""

from __future__ import annotations

import logging
import os
import sys
import syslog
import time
from collections import ChainMap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import __version__, transfer
from ..config.registry import GLOBAL, SERVER, SVG, SVGA, Directive, Merge
from ..config.types import Custom, Flag, Path
from ..dispatch import LOG_CMD, LOG_CMD_ERR, POST_CMD, PRE_CMD, Hook, Request
from ..auth import server_ids
from ..fs import FsError
from ..log import LOG_OPTIONS_DEFAULT, SystemLogFormat, Threshold, logformat, set_line_options, set_threshold, xferlog
from ..log.files import open_logfile, write_line
from ..module import Listener, MasterView, Module
from ..reply import Reply
from .auth import AuthState
from .ident import ident_of

if TYPE_CHECKING:
    from ..config.tree import Config, Section, Server
    from ..session import Session

NAME = "mod_log.c"
log = logging.getLogger("proftpy")

DEFAULT_XFERLOG = "/var/log/xferlog"     # ProFTPD's PR_XFERLOG_PATH
TRANSFERS = ("RETR", "STOR", "STOU", "APPE")
DATA_COMMANDS = TRANSFERS + ("LIST", "NLST", "MLSD")

# -- command classes (the cmd_class column of ProFTPD's command tables) ---------------------------------------------
ALL = frozenset(("AUTH", "INFO", "DIRS", "READ", "WRITE", "MISC", "SEC", "SSH", "SFTP"))   # not CONNECT, not EXIT
CLASS_NAMES = ALL | {"CONNECT", "EXIT"}
_CLASS_ALIASES = {"SECURE": "SEC", "DISCONNECT": "EXIT"}
COMMAND_CLASSES: dict[str, frozenset[str]] = {}
for _names, _classes in (
        ("USER PASS ACCT REIN HOST", "AUTH"),
        ("FEAT HELP MDTM QUIT SIZE STAT SYST CLNT CSID LANG", "INFO"),
        ("PWD XPWD", "INFO DIRS"),
        ("CWD XCWD CDUP XCUP LIST NLST MLSD MLST", "DIRS"),
        ("MKD XMKD RMD XRMD", "DIRS WRITE"),
        ("RETR", "READ"),
        ("STOR STOU APPE DELE MFF MFMT MFCT", "WRITE"),
        ("RNFR RNTO", "MISC WRITE"),
        ("ABOR ALLO EPRT EPSV MODE NOOP OPTS PASV PORT REST SITE SMNT STRU TYPE", "MISC"),
        ("AUTH CCC PBSZ PROT SSCN ADAT CONF ENC MIC", "SEC"),
        ("CONNECT", "CONNECT"), ("EXIT", "EXIT")):
    for _name in _names.split():
        COMMAND_CLASSES[_name] = frozenset(_classes.split())

SYSLOG_LEVELS = {"emerg": syslog.LOG_EMERG, "alert": syslog.LOG_ALERT, "crit": syslog.LOG_CRIT,
                 "error": syslog.LOG_ERR, "err": syslog.LOG_ERR, "warn": syslog.LOG_WARNING,
                 "warning": syslog.LOG_WARNING, "notice": syslog.LOG_NOTICE, "info": syslog.LOG_INFO,
                 "debug": syslog.LOG_DEBUG}


def parse_classes(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """`READ,WRITE`, `ALL,!INFO`, `NONE`, `EXIT` ... (commas or `|`) -> (included, excluded) class sets."""
    include: set[str] = set()
    exclude: set[str] = set()
    for word in text.replace("|", ",").split(","):
        negate = word.startswith("!")
        name = word[1:].upper() if negate else word.upper()
        name = _CLASS_ALIASES.get(name, name)
        if name == "ALL":
            targets = set(ALL)
        elif name == "NONE":
            targets = set()
            if not negate:
                include.clear()
                continue
            targets = set(ALL)
            negate = False
        elif name in CLASS_NAMES:
            targets = {name}
        else:
            raise ValueError(f"invalid log class in '{text}': unknown class '{word}' (use ALL, NONE, AUTH, "
                             "INFO, DIRS, READ, WRITE, MISC, SEC, SSH, SFTP, CONNECT, EXIT)")
        if negate:
            include -= targets
            exclude |= targets
        else:
            include |= targets
    return frozenset(include), frozenset(exclude)


def wanted(command: str, include: frozenset[str], exclude: frozenset[str]) -> bool:
    """Does an ExtendedLog with these classes log `command`? A command without a class (unknown, or not in the
    table) is logged only by logs that take every class, as ProFTPD does (Bug#4313)."""
    classes = COMMAND_CLASSES.get(command)
    if not classes:
        return ALL <= include
    return classes_wanted(classes, include, exclude)


def classes_wanted(classes: frozenset[str], include: frozenset[str], exclude: frozenset[str]) -> bool:
    """A command of these classes is logged: one of them is included, none excluded."""
    return bool(classes & include) and not classes & exclude


@dataclass(frozen=True)
class ExtendedLogSpec:
    """One ExtendedLog line."""

    path: str                              # file path, or "syslog:<level>"
    include: frozenset[str] = ALL
    exclude: frozenset[str] = frozenset()
    format_name: str = "default"

    @property
    def syslog_level(self) -> int | None:
        return SYSLOG_LEVELS[self.path[7:].lower()] if self.path.lower().startswith("syslog:") else None


def _extended_log(args: list[str]) -> ExtendedLogSpec:
    if not 1 <= len(args) <= 3:
        raise ValueError("expected path|syslog:level [classes [format-name]]")
    path = args[0]
    if path.lower().startswith("syslog:"):
        if path[7:].lower() not in SYSLOG_LEVELS:
            raise ValueError(f"unknown syslog level: '{path[7:]}'")
    elif not path.startswith("/"):
        raise ValueError(f"relative paths not allowed: '{path}'")
    include, exclude = parse_classes(args[1]) if len(args) > 1 else (ALL, frozenset())
    return ExtendedLogSpec(path, include, exclude, args[2] if len(args) > 2 else "default")


def _log_format(args: list[str]) -> tuple[str, list[logformat.Token]]:
    if len(args) != 2:
        raise ValueError('expected name "format"')
    if not args[0]:
        raise ValueError("missing required name parameter")
    return args[0], logformat.compile_format(args[1])


def _server_log(args: list[str]) -> str:
    """`ServerLog path|none`: keeps "none" (it switches file logging off for the vhost)."""
    if len(args) != 1:
        raise ValueError("expected a path or none")
    if args[0].lower() == "none":
        return "none"
    if not args[0].startswith("/"):
        raise ValueError(f"'{args[0]}' is not an absolute path")
    return args[0]


LOG_OPTIONS = {name.lower(): name for name in ("Timestamp", "Hostname", "VirtualHost", "RoleBasedProcessLabels")}


def _log_options(args: list[str]) -> frozenset[str]:
    """`LogOptions +Name -Name ...`: the SystemLog line's fields that are on, from ProFTPD's defaults (each line
    starts from them, as ProFTPD's)."""
    if not args:
        raise ValueError("wrong number of parameters")
    on = set(LOG_OPTIONS_DEFAULT)
    for word in args:
        if word[:1] not in ("+", "-"):
            raise ValueError(f"bad LogOption: '{word}'")
        name = LOG_OPTIONS.get(word[1:].lower())
        if name is None:
            raise ValueError(f"unknown LogOption: '{word[1:]}'")
        (on.add if word[0] == "+" else on.discard)(name)
    return frozenset(on)


directives = (
    Directive("LogOptions", Custom(_log_options, "+|-Timestamp +|-Hostname +|-VirtualHost +|-RoleBasedProcessLabels"),
              SVG, LOG_OPTIONS_DEFAULT, Merge.SERVER,
              "SystemLog line fields: the time, the host name, the server's name (on by default), and "
              "`daemon`/`session` for `proftpy` as the process's label (off), e.g. `LogOptions -Timestamp "
              "-Hostname +RoleBasedProcessLabels` under systemd's journal."),
    Directive("TransferLog", Path(none_ok=True), SVGA, DEFAULT_XFERLOG, Merge.DOWN,
              "xferlog(5) file with one line per RETR/STOR/STOU/APPE and DELE (`none` disables)."),
    Directive("ExtendedLog", Custom(_extended_log, "path|syslog:level [classes [format-name]]"), SVGA, None,
              Merge.MULTI, "Log file written in a LogFormat for the given command classes (default ALL).",
              repeat=True),
    Directive("LogFormat", Custom(_log_format, 'name "format"'), SERVER | GLOBAL, None, Merge.SERVER,
              'Named format for ExtendedLog (built in: default "%h %l %u %t \\"%r\\" %s %b").', repeat=True),
    Directive("ServerLog", Custom(_server_log, "path|none"), SVG, None, Merge.SERVER,
              "Per-server log file that takes the place of SystemLog for this server's sessions."),
    Directive("AllowLogSymlinks", Flag, SVG, False, Merge.SERVER,
              "Allow log paths that are symbolic links (refused by default)."),
)


# -- opening log files ---------------------------------------------------------------------------------------------
def _open(st: "LogState", path: str, what: str, allow_symlinks: bool, quiet: bool = False) -> int | None:
    """Open (once per session) or reuse; a failure is logged and the log is left out."""
    if path in st.fds:
        return st.fds[path]
    try:
        fd = open_logfile(path, allow_symlinks)
    except OSError as e:
        reason = e.strerror or str(e)
        (log.debug if quiet else log.warning)("unable to open %s '%s': %s", what, path, reason)
        fd = None
    st.fds[path] = fd
    return fd


# -- session state -------------------------------------------------------------------------------------------------
@dataclass
class ExtLog:
    spec: ExtendedLogSpec
    tokens: list[logformat.Token]
    owner: "Section | None"                 # the <Anonymous> it was set in, None for the server
    fd: int | None = None


@dataclass
class LogState:
    fds: dict[str, int | None] = field(default_factory=dict)     # path -> open descriptor (None: refused)
    xferlogs: dict[int, int | None] = field(default_factory=dict)  # id(anon section or 0) -> TransferLog fd
    extlogs: list[ExtLog] = field(default_factory=list)
    active: list[ExtLog] = field(default_factory=list)
    started: float | None = None            # PRE_CMD time of the current command (%R)
    out_mark: int = 0                       # control bytes sent before the current command (%O)
    mark_reply: Reply | None = None         # a reply sent after out_mark was taken: its length is added when
                                            # the mark is read (most marks are replaced unread by the next PRE_CMD)
    orig_user: str | None = None            # %U
    group: str | None = None                # %g
    file_modified: bool = False             # STOR/APPE target existed (%{file-modified})
    syslog_open: bool = False


def _state(session: "Session") -> LogState:
    return session.state.get(LogState)


def formats_of(server: "Server", config: "Config") -> dict[str, list[logformat.Token]]:
    """LogFormat names: the built-in "default", then the main server's, then this server's (last wins). Once per
    server (`server.cached`), in the master (`preload`)."""
    formats = {"default": logformat.compile_format(logformat.DEFAULT_FORMAT)}
    for section in (config.main.section, server.section):
        for p in reversed(section.all("LogFormat")):       # first line of a name wins, as for directives
            name, tokens = p.value
            formats[name] = tokens
    return formats


def preload(master: "MasterView") -> None:
    """master_preload: every server's LogFormats compiled once, shared by its sessions."""
    for server in master.config.servers:
        server.cached(formats_of, master.config)


def _master_line_options(master: MasterView) -> None:
    set_line_options(master.config.main.get("LogOptions"), "daemon")


def _system_log_settings(session: "Session", **_: Any) -> None:
    """The session's SystemLog lines take its server's LogOptions and SyslogLevel: at connect (the level is the
    server's already, from log.tag_session) and again when HOST or TLS SNI picks another server
    (core.session-reinit), as ProFTPD's mod_log reads LogOptions again and its log_write reads main_server's
    SyslogLevel."""
    set_line_options(session.server.get("LogOptions"), "session")
    set_threshold(session.server.get("SyslogLevel"))


def _after_login(session: "Session", cmd: Request) -> None:
    """POST_CMD PASS, after mod_ifsession's merge: an `<IfUser>`/`<IfGroup>`/`<IfClass>` SyslogLevel or LogOptions
    counts from now on (ProFTPD's log_write reads the merged server)."""
    _system_log_settings(session)


def _ifsession_sets_log(config: "Config") -> bool:
    """Whether any mod_ifsession section sets SyslogLevel or LogOptions (else the hook has nothing to do)."""
    return any(p.directive.name in ("SyslogLevel", "LogOptions")
               for section in config.root.walk() if section.kind.startswith("if") for p in section.params)


def session_init(session: "Session") -> None:
    _system_log_settings(session)
    st = _state(session)
    _server_log_init(session)
    symlinks = bool(session.server.get("AllowLogSymlinks"))
    scopes: list[Section | None] = [None] + list(session.server.anonymous())
    # TransferLog: the server's and each <Anonymous>'s (an unset one inherits the server's).
    for anon in scopes:
        path = session.server.context(anon).get("TransferLog")
        if path:
            st.xferlogs[id(anon) if anon is not None else 0] = _open(
                st, path, "TransferLog", symlinks, quiet=path == DEFAULT_XFERLOG)
    # ExtendedLog: every line of the server and of each <Anonymous>.
    formats = session.server.cached(formats_of, session.config)
    for anon in scopes:
        section = anon if anon is not None else session.server.section
        for p in section.all("ExtendedLog"):
            spec: ExtendedLogSpec = p.value
            tokens = formats.get(spec.format_name)
            if tokens is None:
                log.warning("ExtendedLog '%s' uses unknown format name '%s'", spec.path, spec.format_name)
                continue
            entry = ExtLog(spec, tokens, anon)
            if spec.syslog_level is None:
                entry.fd = _open(st, spec.path, "ExtendedLog", symlinks)
                if entry.fd is None:
                    continue
            st.extlogs.append(entry)
    st.active = _active(st.extlogs, None)


def _server_log_init(session: "Session") -> None:
    """ServerLog: this server's sessions log to their own file instead of the SystemLog (stderr with -n stays)."""
    path = session.server.get("ServerLog")
    if path is None:
        return
    logger = logging.getLogger("proftpy")
    keep = [h for h in logger.handlers
            if type(h) is logging.StreamHandler or isinstance(h, _FdHandler) or h is Threshold.capture]
    fmt = next((h.formatter for h in logger.handlers if h.formatter and not _is_syslog(h)), None)
    handler = None
    if path != "none":
        try:
            fd = open_logfile(path, bool(session.server.get("AllowLogSymlinks")), 0o640)
        except OSError as e:
            log.warning("unable to open ServerLog '%s': %s", path, e.strerror or e)
            return
        handler = _FdHandler(fd)
        handler.setFormatter(fmt or SystemLogFormat())        # SystemLog syslog: no file line format yet
        for f in {f for h in logger.handlers for f in h.filters}:     # the session's origin (log.tag_session)
            handler.addFilter(f)
    for h in list(logger.handlers):
        if h not in keep:
            logger.removeHandler(h)
            h.close()
    if handler is not None:
        logger.addHandler(handler)


def _is_syslog(h: logging.Handler) -> bool:
    handlers = sys.modules.get("logging.handlers")     # loaded by log.setup only for SystemLog syslog
    return handlers is not None and isinstance(h, handlers.SysLogHandler)


class _FdHandler(logging.Handler):
    """Writes each record with one write(2) on an O_APPEND descriptor opened before the chroot."""

    def __init__(self, fd: int):
        super().__init__()
        self.fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            os.write(self.fd, (self.format(record) + "\n").encode("utf-8", "replace"))
        except OSError:
            self.handleError(record)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass            # already closed: nothing more to release
        super().close()


def _active(entries: list[ExtLog], anon: "Section | None") -> list[ExtLog]:
    """The ExtendedLogs a session writes: ProFTPD's log_post_pass rules."""
    if anon is None:
        return [e for e in entries if e.owner is None]
    own = [e for e in entries if e.owner is anon]
    own_paths = {e.spec.path for e in own}
    outer = [e for e in entries if e.owner is None and e.spec.path not in own_paths]
    return outer + [e for e in own if e.spec.include]


def _connected(session: "Session", **_: Any) -> None:
    _extended(session, Request("CONNECT", ""), pseudo=True)


def _authenticated(session: "Session", **_: Any) -> None:
    st = _state(session)
    st.active = _active(st.extlogs, session.anon)
    account = session.account
    if account is not None:
        try:
            groups = session.auth.groups_for(account)
        except OSError as e:
            log.debug("mod_log: group of %s unknown (%s)", account.name, e.strerror or e)
            groups = []
        st.group = next((g.name for g in groups if g.gid == account.gid), None)


def _exited(session: "Session", **_: Any) -> None:
    _extended(session, Request("EXIT", ""), pseudo=True)
    _close(_state(session))


def _close(st: LogState) -> None:
    for fd in {fd for fd in st.fds.values() if fd is not None}:
        os.close(fd)
    st.fds.clear()
    st.xferlogs.clear()
    st.extlogs.clear()
    st.active = []


def _reinit(session: "Session", **_: Any) -> None:
    """core.session-reinit (HOST or TLS SNI picked another server, before login): the logs of that server, as
    ProFTPD's mod_log opens them again: its TransferLog, ExtendedLogs, ServerLog, LogOptions, SyslogLevel."""
    _close(_state(session))
    session_init(session)


# -- hooks ---------------------------------------------------------------------------------------------------------
def pre_cmd(session: "Session", cmd: Request) -> None:
    st = session.state.get(LogState)        # (not _state: the command hooks ask without a Python call between)
    if cmd.during_transfer:
        return None         # a command answered while a transfer runs: the transfer's facts stay
    st.started = time.time()
    st.out_mark = session.ctrl.bytes_out
    st.mark_reply = None
    if cmd.name in ("STOR", "APPE") and session.fs is not None:
        try:
            st.file_modified = session.fs.lexists(session.fs.resolve(cmd.arg).real)
        except OSError:
            st.file_modified = False
    return None


def log_cmd(session: "Session", cmd: Request) -> None:
    """LOG_CMD and LOG_CMD_ERR: totals first (Display files and STAT read them), then TransferLog, ExtendedLog."""
    st = session.state.get(LogState)
    if cmd.name == "USER":
        st.orig_user = cmd.arg
    _count(session, cmd)
    xfer = cmd.notes.get("xfer")
    if xfer is not None and cmd.name in TRANSFERS:
        _transferlog(session, xfer)
    done = cmd.notes.get("deleted") if cmd.name == "DELE" else cmd.notes.get("copied")
    if done is not None:
        _transferlog(session, _no_transfer(session, done))
    _extended(session, cmd)
    if cmd.during_transfer:
        return None
    st.started = None
    st.file_modified = False
    st.out_mark = session.ctrl.bytes_out     # ... plus this reply, sent next: counted only if the mark is read
    st.mark_reply = cmd.reply
    return None


def _count(session: "Session", cmd: Request) -> None:
    """session.totals (Display variables, STAT, mod_radius's accounting): completed transfers by direction, and
    every byte moved (by direction too)."""
    totals = session.totals
    listed = int(cmd.notes.get("list_bytes") or 0)
    totals.bytes_moved += listed
    totals.moved_out += listed
    xfer = cmd.notes.get("xfer")
    if xfer is not None:
        totals.bytes_moved += int(xfer["bytes"])
        if xfer["direction"] == "i":
            totals.moved_in += int(xfer["bytes"])
        else:
            totals.moved_out += int(xfer["bytes"])
        if xfer["completed"]:
            if xfer["direction"] == "i":
                totals.bytes_in += int(xfer["bytes"])
                totals.files_in += 1
            else:
                totals.bytes_out += int(xfer["bytes"])
                totals.files_out += 1
            totals.bytes_xfer += int(xfer["bytes"])
            totals.files_xfer += 1


def _prefix(session: "Session") -> str:
    """Under a kernel chroot real paths are relative to the chroot; logs show them from the real root."""
    root = session.chroot
    if root and root != "/" and session.fs.root == "/":
        return root.rstrip("/")
    return ""


def _no_transfer(session: "Session", done: dict) -> dict:
    """The TransferLog line ProFTPD writes for a DELE, and mod_copy for each file it copies: direction `d` (`i` for
    SFTP's copy-file, as mod_sftp writes it), the file's size, the session's TYPE."""
    return {"path": done["path"], "bytes": done["size"], "seconds": 0.0, "completed": True,
            "direction": done.get("direction", "d"),
            "type": "a" if transfer.state(session).ascii else "b"}


def _transferlog(session: "Session", xfer: dict) -> None:
    st = _state(session)
    if xfer["bytes"] == 0 and xfer["seconds"] == 0.0 and not xfer["completed"]:
        return              # no data connection was made (425): not a transfer, as in ProFTPD
    anon = session.anon
    path = session.conf("TransferLog")
    fd = st.xferlogs.get(id(anon) if anon is not None else 0)
    if not path or fd is None:
        return
    if anon is not None:
        user = session.state.get(AuthState).anon_password or ""
    else:
        user = session.user or ""
    text = xferlog.line(when=time.time(), seconds=xfer["seconds"], host=session.remote_name,
                        size=xfer["bytes"], filename=_prefix(session) + xfer["path"], ascii=xfer["type"] == "a",
                        direction=xfer["direction"], anonymous=anon is not None, user=user,
                        completed=bool(xfer["completed"]), service=session.protocol, ident=ident_of(session))
    write_line(fd, text, f"TransferLog '{path}'")


LOG_CLASSES = "log_classes"     # a Request's note: the classes it is logged under instead of its table's (mod_sftp's
                                # USER and PASS are AUTH and SSH, as ProFTPD's mod_sftp marks them)


def _extended(session: "Session", cmd: Request, pseudo: bool = False) -> None:
    st = session.state.get(LogState)
    classes = cmd.notes.get(LOG_CLASSES)
    if classes is not None:
        todo = [e for e in st.active if classes_wanted(classes, e.spec.include, e.spec.exclude)]
    else:
        todo = [e for e in st.active if wanted(cmd.name, e.spec.include, e.spec.exclude)]
    if todo:
        _write(session, st, todo, record(session, cmd, pseudo))


def logs_requests(session: "Session") -> bool:
    """Does this session write an ExtendedLog (after login)? Another protocol's loop asks once, so that its
    requests cost nothing more when none does."""
    st = session.state.find(LogState)
    return bool(st is not None and st.active)


def logs_classes(session: "Session", classes: frozenset[str] | None) -> bool:
    """Does an ExtendedLog of this session take a line of these classes (None: a name outside ProFTPD's command
    table, which only a log of every class takes, Bug#4313)? Asked once per session by another protocol's loop."""
    st = session.state.find(LogState)
    return st is not None and any(_takes(e, classes) for e in st.active)


def _takes(entry: ExtLog, classes: frozenset[str] | None) -> bool:
    if classes is None:
        return ALL <= entry.spec.include
    return classes_wanted(classes, entry.spec.include, entry.spec.exclude)


def log_request(session: "Session", cmd: Request, classes: frozenset[str] | None,
                status: tuple[int, str] | None = None, real: str | None = None, virtual: str | None = None,
                nbytes: int | None = None) -> None:
    """The ExtendedLog line of a request of another protocol that runs no FTP phase (mod_sftp's OPEN, READ,
    CLOSE..., as ProFTPD's mod_sftp logs them; `classes` None: a name outside ProFTPD's command table (an SSH
    message's, an SFTP request's but STAT), logged only where every class is): `%s`/`%S` the status it was
    answered with (None: the answer was no status), `%f`/`%F` the file it works on, `%b` the bytes moved through
    it."""
    st = _state(session)
    todo = [e for e in st.active if _takes(e, classes)]
    if not todo:
        return
    rec = record(session, cmd)
    rec.reply_code, rec.reply_text = status if status is not None else (None, None)
    rec.bytes = nbytes
    if real is not None:
        rec.filename = _prefix(session) + real
        rec.xfer_path = virtual
        rec.basename = _last_component(real)
    _write(session, st, todo, rec)


def _write(session: "Session", st: LogState, todo: list[ExtLog], rec: logformat.Record) -> None:
    for entry in todo:
        text = logformat.render(entry.tokens, rec).replace("\n", " ")
        level = entry.spec.syslog_level
        if level is not None:
            if not st.syslog_open:
                syslog.openlog("proftpy", syslog.LOG_PID, _facility(session))
                st.syslog_open = True
            syslog.syslog(level, text)
        elif entry.fd is not None:
            write_line(entry.fd, text + "\n", f"ExtendedLog '{entry.spec.path}'")


def _facility(session: "Session") -> int:
    name = str(session.config.main.get("SyslogFacility") or "daemon").upper()
    return getattr(syslog, f"LOG_{name}", syslog.LOG_DAEMON)


# -- the facts of one log line -------------------------------------------------------------------------------------
_DIR_ARG = frozenset(("CDUP", "CWD", "LIST", "MKD", "MLSD", "NLST", "RMD", "XCWD", "XCUP", "XMKD", "XRMD"))
_PATH_ARG = frozenset(("DELE", "LIST", "MDTM", "MKD", "MLSD", "MLST", "NLST", "RMD", "XMKD", "XRMD"))
_EOS = {"": "Quit", "disconnected": "Client EOF", "core.timeout-idle": "Timeout: TimeoutIdle",
        "core.timeout-login": "Timeout: TimeoutLogin", "core.timeout-session": "Timeout: TimeoutSession",
        "core.timeout-no-transfer": "Timeout: TimeoutNoTransfer", "stalled": "Timeout: TimeoutStalled",
        "max login attempts": "Configured policy: Denied by MaxLoginAttempts",
        "server shut down": "Server shutting down", "server shutting down": "Server shutting down",
        "terminated by signal": "Terminated by signal"}


def _last_component(path: str) -> str:
    """ProFTPD's dir name / basename: what follows the last `/` (the path itself when that is the only `/`)."""
    cut = path.rfind("/")
    if cut < 0:
        return path
    if cut > 0 or path[cut + 1:]:
        return path[cut + 1:]
    return path


def _true_path(session: "Session", arg: str) -> str | None:
    """The absolute path of a client path from the real root (None before login or for bad paths)."""
    if session.fs is None:
        return None
    try:
        return _prefix(session) + session.fs.resolve(arg or ".").real
    except (OSError, FsError):         # too long, NUL...: the command answered 550; its line is still written
        return None


def _daemon_ids(session: "Session") -> tuple[int, int]:
    """Before a login ProFTPD's session runs as the server's User and Group (proftpy's keeps root until then)."""
    found = server_ids(session.server)
    uid, gid = (None, None) if isinstance(found, KeyError) else found
    return (os.geteuid() if uid is None else uid), (os.getegid() if gid is None else gid)


def _cwd_true(session: "Session") -> str | None:
    if session.fs is None:
        return None
    return _prefix(session) + session.fs.real_of(session.fs.cwd)


def record(session: "Session", cmd: Request, pseudo: bool = False) -> logformat.Record:
    """Gather what a LogFormat may show about `cmd` in this session."""
    st = _state(session)
    now = time.time()
    name, arg = cmd.name, cmd.arg
    reply = cmd.reply
    xfer = cmd.notes.get("xfer")
    account = session.account if session.authenticated else None
    ids = (account.uid, account.gid) if account is not None else _daemon_ids(session)
    rec = logformat.Record(
        command=name, arg=arg, pseudo=pseudo,
        reply_code=reply.code if reply is not None else (221 if name == "QUIT" else None),
        reply_text=reply.text if reply is not None else None,
        remote_ip=session.remote_addr, remote_name=session.remote_name, remote_port=session.remote_port,
        local_ip=session.local_addr, local_port=session.local_port, local_name=session.local_addr,
        vhost_ip=session.local_addr, server_name=session.server.name or "", pid=os.getpid(),
        user=session.user if session.authenticated else None, orig_user=st.orig_user,
        anon_password=session.state.get(AuthState).anon_password if session.anon is not None else None,
        conn_class=session.conn_class, group=st.group if session.authenticated else None,
        uid=ids[0], gid=ids[1],
        protocol=session.protocol, version=__version__,
        response_ms=int((now - st.started) * 1000) if st.started is not None else 0,
        file_modified=st.file_modified if name in ("STOR", "APPE") else False,
        now=now, notes=ChainMap(cmd.notes, session.notes))   # %{note:x}: the command's, then the session's
    if pseudo:
        rec.response_ms = None
        rec.eos_reason = _EOS.get(session.end_reason, session.end_reason) if name == "EXIT" else None
        return rec
    # bytes: transfers and listings; DELE: the size of the deleted file; a rename's 0 (ProFTPD's transfer record)
    if name in ("RNFR", "RNTO") and "rnfr_path" in cmd.notes:
        rec.bytes = 0
    elif xfer is not None:
        rec.bytes = int(xfer["bytes"])
    elif "list_bytes" in cmd.notes:
        rec.bytes = int(cmd.notes["list_bytes"])
    elif name == "DELE" and cmd.notes.get("deleted"):
        rec.bytes = int(cmd.notes["deleted"].get("size", 0))
    raw_data = rec.bytes if rec.bytes is not None and name in DATA_COMMANDS else 0
    data_in = raw_data if name in ("STOR", "STOU", "APPE") else 0
    rec.raw_in = len(cmd.raw.encode("utf-8", "surrogateescape")) + 2 + data_in
    if st.mark_reply is not None:           # no PRE_CMD since the last command: its reply came after the mark
        st.out_mark += len(st.mark_reply.format())
        st.mark_reply = None
    rec.raw_out = (session.ctrl.bytes_out - st.out_mark + (len(reply.format()) if reply is not None else 0)
                   + raw_data - data_in)
    _paths(session, cmd, rec, xfer)
    _transfer_facts(session, cmd, rec, xfer)
    return rec


def _paths(session: "Session", cmd: Request, rec: logformat.Record, xfer: dict | None) -> None:
    name, arg = cmd.name, cmd.arg
    prefix = _prefix(session)
    # %d / %D
    if name in _DIR_ARG:
        rec.dir_name = _last_component(arg)
    else:
        rec.dir_name = session.fs.cwd if session.fs is not None else "/"
    if name in ("CWD", "XCWD"):
        rec.dir_path = _cwd_true(session)
    elif name in _DIR_ARG:
        rec.dir_path = _true_path(session, arg)
    # %f (absolute real path) / %F (client view)
    if name == "RNTO":
        rec.filename = _true_path(session, arg)
        rec.xfer_path = session.fs.virtual(arg) if session.fs is not None else None
        rec.rnfr_path = cmd.notes.get("rnfr_path")     # as the session sees it (ProFTPD: inside its chroot)
    elif name == "RNFR" and "rnfr_path" in cmd.notes and session.fs is not None:
        rec.filename = _true_path(session, arg)        # ProFTPD keeps the source as the transfer's path
        rec.xfer_path = session.fs.virtual(arg)
    elif xfer is not None:
        rec.filename = prefix + xfer["path"]
        rec.xfer_path = xfer["vpath"]
    elif name in ("CDUP", "XCUP", "PWD", "XPWD", "CWD", "XCWD"):
        rec.filename = _cwd_true(session)
    elif name == "SITE" and session.fs is not None:
        words = arg.split()
        if len(words) > 2 and words[0].upper() in ("CHGRP", "CHMOD", "UTIME"):
            rec.filename = _true_path(session, " ".join(words[2:]))
    elif name in _PATH_ARG:
        rec.filename = _true_path(session, arg)
    elif name == "MFMT" and " " in arg:
        rec.filename = _true_path(session, arg.split(" ", 1)[1])
    if rec.xfer_path is None and name in ("DELE", "MKD", "XMKD", "RMD", "XRMD") and session.fs is not None:
        rec.xfer_path = session.fs.virtual(arg)
    # %{basename}
    base_of = rec.filename if (xfer is not None or name in ("RNTO", "RNFR")) else None
    if base_of is None:
        if name in ("CDUP", "XCUP", "PWD", "XPWD"):
            base_of = session.fs.real_of(session.fs.cwd) if session.fs is not None else None
        elif name in ("CWD", "XCWD"):
            base_of = rec.filename
        elif name in _PATH_ARG or name == "SITE":
            base_of = arg if name != "SITE" else (rec.filename or None)
    rec.basename = _last_component(base_of) if base_of else None


def _transfer_facts(session: "Session", cmd: Request, rec: logformat.Record, xfer: dict | None) -> None:
    name = cmd.name
    reply = cmd.reply
    if xfer is not None:
        rec.seconds = float(xfer["seconds"])
        rec.xfer_ms = int(xfer["seconds"] * 1000)
        rec.file_offset = int(xfer.get("offset") or 0)
        size = xfer.get("size")
        if size is None and session.fs is not None:
            try:
                size = session.fs.stat(xfer["path"]).st_size
            except OSError:
                size = None
        rec.file_size = size
        if size is not None:
            ms = max(rec.xfer_ms, 0.1)
            rec.xfer_speed = f"{(size / 1024) / (ms / 1000):.2f}KB/s" if size > 0 else "0.00KB/s"
    if name in DATA_COMMANDS or name == "ABOR":
        code = reply.code if reply is not None else None
        aborted = bool(xfer and xfer.get("aborted"))
        if xfer is not None:
            rec.xfer_status = xfer["status"]
        elif name == "ABOR":
            rec.xfer_status = "cancelled" if code is not None and code < 300 else "failed"
        elif code is None or 200 <= code < 300:
            rec.xfer_status = "success"
        else:
            rec.xfer_status = "timeout" if code < 200 else "failed"
        if name != "ABOR":
            if aborted:
                rec.xfer_failure = "aborted"
            elif code is not None and code >= 300 and reply is not None:
                text = reply.text
                dot = text.find(".")
                rec.xfer_failure = text[dot + 2:] if 0 <= dot < len(text) - 2 else text
            ascii = xfer["type"] == "a" if xfer is not None else True     # listings are always ASCII
            rec.xfer_type = "ASCII" if ascii else "binary"


MODULE = Module(NAME, directives=directives, session_init=session_init, master_preload=preload,
                master_init=_master_line_options, master_reload=_master_line_options,
                hooks=(Hook(PRE_CMD, "*", pre_cmd), Hook(LOG_CMD, "*", log_cmd), Hook(LOG_CMD_ERR, "*", log_cmd),
                       Hook(POST_CMD, "PASS", _after_login, active=_ifsession_sets_log)),
                listeners=(Listener("core.connect", _connected), Listener("mod_auth.authenticated", _authenticated),
                           Listener("core.session-reinit", _reinit), Listener("core.exit", _exited)))
