"""mod_ls: directory listings — LIST, NLST and STAT — in ProFTPD's formats, with ListOptions, globbing,
ShowSymlinks, TimesGMT and DirFakeUser/Group/Mode.

Listings are generated lazily (one directory at a time, one lstat per entry from `FS.scandir`) and streamed through
the data connection by `transfer.send_lines`. Every client path goes through `session.fs` (resolve, stat, lstat,
readlink, scandir); a listing never reaches outside the session root. Names travel as `str` with surrogate escapes and go out as the original bytes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import operator
import os
import posixpath
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from .. import listing, transfer
from ..config.registry import ALL_DIRS, SVGA, Directive, Merge
from ..config.types import Choice, Custom, Flag, parse_bool
from ..dispatch import DIRS, LISTED_PATH, OPTIONAL, Command, Request
from ..fs import FsError
from ..listing import ListConfig, LsOptions
from ..module import Module
from ..net.connection import plain_ip
from ..reply import FtpError, Reply
from .access import hidden, path_is_hidden

if TYPE_CHECKING:
    from ..config.tree import Config
    from ..session import Session

NAME = "mod_ls.c"
log = logging.getLogger("proftpy")

MAX_GLOB_MATCHES = 100_000     # bound the work one glob can cause
MAX_DEPTH = 256                # -R never goes deeper than this, whatever ListOptions says
_as_bytes = operator.methodcaller("encode", "utf-8", "surrogateescape")   # names sort by their bytes, as in C


def _fake_id(args: list[str]) -> tuple[bool, str | None]:
    if not 1 <= len(args) <= 2:
        raise ValueError("syntax: on|off [<id to display>]")
    on = parse_bool(args[0])
    return (True, args[1] if len(args) == 2 else "ftp") if on else (False, None)


def _fake_mode(args: list[str]) -> int:
    if len(args) != 1:
        raise ValueError("expected 1 argument")
    try:
        return int(args[0], 8)
    except ValueError:
        raise ValueError("parameter must be an octal number") from None


directives = (
    Directive("ListOptions", Custom(listing.parse_list_options,
                                    '"options" [strict] [maxdepth n] [maxfiles n] [maxdirs n] [LISTOnly] '
                                    '[NLSTOnly] [NoErrorIfAbsent] [AdjustedSymlinks] [SortedNLST]'),
              ALL_DIRS, None, Merge.DOWN,
              "Default ls options for LIST/NLST/STAT, and limits on recursive listings."),
    Directive("ShowSymlinks", Flag, SVGA, True, Merge.DOWN,
              "Show symbolic links as links (`name -> target`); off shows what they point to."),
    Directive("UseGlobbing", Flag, SVGA, True, Merge.DOWN, "Expand `*`, `?` and `[...]` in LIST/NLST paths."),
    Directive("TimesGMT", Flag, SVGA, True, Merge.DOWN, "Listing times in GMT; off uses the server's local time."),
    Directive("ListStyle", Choice(("unix", "windows")), SVGA, "unix", Merge.DOWN,
              "windows: LIST and STAT lines as `MM-DD-YY  HH:MMAM  <DIR>|size name`, dotfiles never shown (for "
              "clients that read only Windows servers' listings)."),
    Directive("DirFakeUser", Custom(_fake_id, "on|off [name]"), ALL_DIRS, None, Merge.DOWN,
              "Show this owner name in listings (`~` = the logged-in user; default `ftp`)."),
    Directive("DirFakeGroup", Custom(_fake_id, "on|off [name]"), ALL_DIRS, None, Merge.DOWN,
              "Show this group name in listings (`~` = the logged-in user's group; default `ftp`)."),
    Directive("DirFakeMode", Custom(_fake_mode, "octal-mode"), ALL_DIRS, None, Merge.DOWN,
              "Show these permission bits in listings."),
)


HEADS_KEEP = 1024        # starts of long lines a session keeps per shape (directories' link counts vary)


# -- owner and group names -----------------------------------------------------------------------------------------
class Names:
    """uid/gid -> name through the session's AuthOrder (numbers when unknown), cached for the session."""

    def __init__(self, session: "Session"):
        self.session = session
        self.users: dict[int, str] = {}
        self.groups: dict[int, str] = {}
        self.heads: dict[tuple, dict[tuple[int, int, int, int], str]] = {}   # the starts of long lines: see
                                                                            # Lister.line

    def chain(self):
        return self.session.auth

    def user(self, uid: int) -> str:
        name = self.users.get(uid)         # known already for all but the first entry of an owner
        return name if name is not None else self._look_up(self.users, uid, lambda: self.chain().getpwuid(uid))

    def group(self, gid: int) -> str:
        name = self.groups.get(gid)
        return name if name is not None else self._look_up(self.groups, gid, lambda: self.chain().getgrgid(gid))

    @staticmethod
    def _look_up(cache: dict[int, str], ident: int, lookup) -> str:
        """A uid/gid's name, now in `cache`; the number itself when no backend knows it."""
        try:
            entry = lookup()
        except (OSError, LookupError, ValueError) as e:
            log.debug("id %d lookup failed: %s", ident, e)
            entry = None
        name = cache[ident] = entry.name if entry is not None else str(ident)
        return name


def names(session: "Session") -> Names:
    found = session.state.find(Names)
    return found if found is not None else session.state.put(Names(session))


def session_group(session: "Session") -> str:
    account = session.account
    return names(session).group(account.gid) if account is not None else "ftp"


# -- settings for one command --------------------------------------------------------------------------------------
@dataclass
class Settings:
    """What the configuration says for one listing command (read at the session's cwd, as ProFTPD does)."""

    show_symlinks: bool
    gmt: bool
    globbing: bool
    config: ListConfig
    fake_user: str | None
    fake_group: str | None
    fake_mode: int | None
    windows: bool = False               # ListStyle Windows


def list_config(chain_sections, command: str) -> ListConfig:
    """The first ListOptions (innermost context first) that applies to `command` (LISTOnly/NLSTOnly skip)."""
    for section in chain_sections:
        for p in section.all("ListOptions"):
            lc: ListConfig = p.value
            if lc.nlst_only and command != "NLST":
                continue
            if lc.list_only and command != "LIST":
                continue
            return lc
    return ListConfig()


def context_at(session: "Session", real: str | None):
    """The configuration that applies at a real path (as the config names it, also under a kernel chroot)."""
    if real is None:
        return session.context()
    return session.context(real)


_HIDING = ("HideFiles", "HideUser", "HideGroup", "HideNoAccess")


def _hides_somewhere(config: "Config") -> bool:
    """Whether any section of the configuration sets a directive that hides entries (once per configuration)."""
    return any(map(config.sets, _HIDING))


def hider(session: "Session", real_dir: str) -> Callable[[str, bool], bool] | None:
    """`(name, is_link) -> hidden?` for one directory's entries (HideFiles, HideUser, HideGroup, HideNoAccess), or
    None when nothing can be hidden, so big directories pay nothing. A symbolic link is hidden also where what it
    leads to is (ProFTPD checks an entry's real path too). A configuration that hides nothing anywhere is answered
    without a context for the entries, unless a `.ftpaccess` applies in the directory."""
    if not session.config.cached(_hides_somewhere) and \
            not any([section.dynamic for section in context_at(session, real_dir).chain]):
        return None
    ctx = context_at(session, posixpath.join(real_dir, "x"))
    here = any(ctx.all("HideFiles")) or ctx.get("HideUser") or ctx.get("HideGroup") or ctx.get("HideNoAccess")
    return lambda name, is_link: bool(here and hidden(session, real_dir, name)) or \
        (is_link and target_hidden(session, posixpath.join(real_dir, name)))


def target_hidden(session: "Session", real: str) -> bool:
    """Whether what `real` leads to (links followed inside the root) is hidden in its own directory."""
    try:
        return path_is_hidden(session, session.fs.realpath(real))
    except (OSError, FtpError):
        return False


def named_hidden(session: "Session", path: str, follow: bool = True) -> bool:
    """Whether a path the client named is hidden: by its name in its directory or, with `follow`, a symbolic
    link by what it leads to. ProFTPD answers such a file as if it had no entries (LIST, NLST, STAT, MLST)."""
    try:
        vp = session.fs.resolve(path, follow_last=False)
        is_link = follow and stat.S_ISLNK(session.fs.lstat(vp.real).st_mode)
    except (OSError, FtpError):
        return False
    hide = hider(session, posixpath.dirname(vp.real) or "/")
    return hide is not None and vp.real != "/" and hide(posixpath.basename(vp.real), is_link)


def settings(session: "Session", command: str) -> Settings:
    try:
        here = session.fs.resolve(".").real
    except FsError:
        here = None
    ctx = context_at(session, here)

    def fake(name: str, tilde: Callable[[], str]) -> str | None:
        value = ctx.get(name)
        if not value or not value[0]:
            return None
        return tilde() if value[1] == "~" else value[1]

    return Settings(
        show_symlinks=ctx.get("ShowSymlinks"), gmt=ctx.get("TimesGMT"), globbing=ctx.get("UseGlobbing"),
        config=list_config(ctx.chain, command),
        fake_user=fake("DirFakeUser", lambda: session.user or "ftp"),
        fake_group=fake("DirFakeGroup", lambda: session_group(session)),      # looked up only when shown
        fake_mode=ctx.get("DirFakeMode"), windows=session.conf("ListStyle") == "windows")


def parse_argument(session: "Session", arg: str, command: str, cfg: Settings) -> tuple[LsOptions, str]:
    """Client options (unless `strict`), then ListOptions' own options; returns (options, path part)."""
    opts = LsOptions(l=(command in ("LIST", "STAT")))
    words, rest = listing.split_options(arg)
    if words and not rest.strip() and len(words) == 1 and _exists(session, arg.strip()):
        words, rest = [], arg          # "LIST -weird-name": an existing path, not options (mod_ls have_options)
    if command == "STAT":
        words = []                     # STAT takes no client options
    if not cfg.config.strict:
        for w in words:
            listing.apply_flags(opts, w, command)
    listing.parse_config_options(cfg.config.options, command, opts)
    return opts, rest.lstrip(" ") if words else rest


def _exists(session: "Session", path: str) -> bool:
    try:
        session.fs.stat(session.fs.resolve(path).real)
        return True
    except (OSError, FtpError):
        return False


# -- the lister ----------------------------------------------------------------------------------------------------
@dataclass
class Item:
    """One thing to show: its display name, the stat to show, the link target text when shown as a link."""

    name: str
    st: os.stat_result
    link: str | None = None
    virtual: str = ""         # client path, for recursion


class Lister:
    """Produces the lines of one LIST/NLST/STAT; counts files/dirs/depth for ListOptions limits."""

    def __init__(self, session: "Session", opts: LsOptions, cfg: Settings, command: str):
        self.session = session
        self.fs = session.fs
        self.opts = opts
        self.cfg = cfg
        self.command = command
        self.now = int(time.time())
        self.times: dict[int, str] = {}         # time field by second: entries unpacked or copied together share one
        self.names = names(session)
        shape = (cfg.fake_mode, cfg.fake_user, cfg.fake_group, opts.n)    # what else shapes a line's start
        heads = self.names.heads.get(shape)
        if heads is None:
            heads = self.names.heads[shape] = {}
        self.heads = heads                      # (mode, links, uid, gid) -> the start of a long line, this session
        self.time_field = "st_ctime_ns" if opts.c else "st_atime_ns" if opts.u else "st_mtime_ns"
        self.files = 0
        self.dirs = 0
        self.stopped = False
        self.windows = cfg.windows and command != "NLST"    # ListStyle Windows: LIST and STAT lines

    # -- stat helpers -------------------------------------------------------------------------------------------
    def follow(self, virtual: str) -> os.stat_result | None:
        """stat() of a link's target, resolved inside the session root; None when it dangles or escapes."""
        try:
            return self.fs.stat(self.fs.resolve(virtual).real)
        except (OSError, FtpError):
            return None

    def make_item(self, name: str, virtual: str, lst: os.stat_result) -> Item | None:
        """Apply ShowSymlinks/-L to one entry; None when it is to be skipped (dangling link shown as target,
        a link to `.`/`..`)."""
        if not stat.S_ISLNK(lst.st_mode):
            return Item(name, lst, None, virtual)
        try:
            target = self.fs.readlink(self.fs.resolve(virtual, follow_last=False).real)
        except (OSError, FtpError):
            return None
        if not _safe_link(target, virtual):
            return None
        if self.opts.L or not self.cfg.show_symlinks:
            st = self.follow(virtual)
            return Item(name, st, None, virtual) if st is not None else None
        return Item(name, lst, target, virtual)

    # -- formatting --------------------------------------------------------------------------------------------
    def line(self, item: Item) -> str | None:
        st, opts = item.st, self.opts
        suffix = ""
        if opts.F:
            if item.link is not None:
                target = self.follow(item.virtual)
                suffix = listing.type_suffix(target.st_mode) if target is not None else ""
            else:
                suffix = listing.type_suffix(st.st_mode)
        if self.windows:
            return listing.windows_line(st.st_mode, st.st_size, self._time(st), item.name, self.cfg.gmt)
        if not opts.l:                  # -1, -C (and NLST-style names)
            return item.name + suffix
        head_key = (st.st_mode, st.st_nlink, st.st_uid, st.st_gid)
        head = self.heads.get(head_key)
        if head is None:
            if len(self.heads) >= HEADS_KEEP:
                self.heads.clear()
            head = self.heads[head_key] = self._head(st)
        if not head:
            return None
        when = getattr(st, self.time_field) // 1_000_000_000      # once per entry: no call of _time's
        shown = self.times.get(when)
        if shown is None:
            shown = self.times[when] = listing.time_field(when, self.now, self.cfg.gmt)
        size = f"{st.st_size:8d}" if not opts.h else listing.size_field(st.st_size, True)
        text = f"{head} {size} {shown} {item.name}"                 # listing.long_line, inline: once per entry
        if item.link is not None:
            text += f" -> {item.link}"
        return text + suffix

    def _head(self, st: os.stat_result) -> str:
        """The mode, links, owner and group of a long line (`listing.long_head`); "" for a file type ls cannot
        show."""
        mode = listing.mode_string(st.st_mode, self.cfg.fake_mode)
        if mode is None:
            return ""
        if self.opts.n:
            user, group = str(st.st_uid), str(st.st_gid)
        else:
            user = self.cfg.fake_user or self.names.user(st.st_uid)
            group = self.cfg.fake_group or self.names.group(st.st_gid)
        return listing.long_head(mode, st.st_nlink, user, group)

    def _time(self, st: os.stat_result) -> int:
        return getattr(st, self.time_field) // 1_000_000_000

    def count_file(self) -> bool:
        """One more file listed; False once ListOptions maxfiles is reached."""
        limit = self.cfg.config.maxfiles
        if limit and self.files >= limit:
            self.stopped = True
            return False
        self.files += 1
        return True

    def sort(self, items: list[Item]) -> list[Item]:
        opts = self.opts
        if opts.t:
            items.sort(key=lambda i: self._time(i.st), reverse=not opts.r)
        elif opts.S:
            items.sort(key=lambda i: i.st.st_size, reverse=not opts.r)
        return items

    def render(self, items: list[Item]) -> list[str]:
        """Lines for a group of items (one directory, or the file operands): sorted, -C laid out."""
        lines = [text for text in map(self.line, self.sort(items)) if text is not None]
        if self.opts.C and not self.opts.l:
            return listing.columns(lines)
        return lines

    # -- directories -------------------------------------------------------------------------------------------
    def read_dir(self, virtual: str) -> list[Item]:
        """The entries of one directory to show (dotfiles per -a/-A, . and .. with -a), sorted by name unless -U;
        stops at maxfiles."""
        with contextlib.ExitStack() as stack:
            try:
                real = self.fs.resolve(virtual).real
                entries = list(stack.enter_context(self.fs.scandir(real)))
            except (OSError, FtpError) as e:
                log.debug("cannot read %s: %s", virtual, e)
                return []
            return self._items(virtual, real, entries)

    def _items(self, virtual: str, real: str, entries: list[os.DirEntry]) -> list[Item]:
        """read_dir's work while the directory is open (the entries' lstat is relative to it)."""
        opts = self.opts
        hide = hider(self.session, real)
        if hide is not None:
            entries = [e for e in entries if not hide(e.name, e.is_symlink())]
        if not opts.U:
            _sort_by_name(entries)
        items: list[Item] = []
        dotfiles = (opts.a or opts.A) and not self.windows
        if opts.a and dotfiles:
            for dot in (".", ".."):
                if not self.count_file():
                    return items
                try:
                    items.append(Item(dot, self.fs.stat(self.fs.resolve(posixpath.join(virtual, dot)).real), None,
                                      posixpath.join(virtual, dot)))
                except (OSError, FtpError):
                    continue
        limit = self.cfg.config.maxfiles
        prefix = virtual if not virtual or virtual.endswith("/") else virtual + "/"
        for entry in entries:             # count_file, _join and make_item's plain case inline: once per entry
            name = entry.name
            if name.startswith(".") and not dotfiles:
                continue
            if limit and self.files >= limit:
                self.stopped = True
                break
            self.files += 1
            try:
                lst = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISLNK(lst.st_mode):
                items.append(Item(name, lst, None, prefix + name))
                continue
            item = self.make_item(name, prefix + name, lst)
            if item is not None:
                items.append(item)
        if not opts.U and opts.a:
            items.sort(key=lambda i: i.name.encode("utf-8", "surrogateescape"))
        return items

    def dir_lines(self, virtual: str, label: str, depth: int = 1, seen: frozenset = frozenset()) -> Iterator[str]:
        """Lines for one directory and, with -R, its subdirectories (`\\r\\n<label>:` headers between them)."""
        cfg = self.cfg.config
        if self.stopped or (cfg.maxdepth and depth > cfg.maxdepth) or depth > MAX_DEPTH:
            return
        if cfg.maxdirs and self.dirs >= cfg.maxdirs:
            return
        self.dirs += 1
        items = self.read_dir(virtual)
        yield from self.render(items)
        if not self.opts.R:
            return
        try:
            here = self.fs.stat(self.fs.resolve(virtual).real)
            seen = seen | {(here.st_dev, here.st_ino)}
        except (OSError, FtpError):
            return
        for item in sorted(items, key=lambda i: i.name.encode("utf-8", "surrogateescape")):
            if item.name in (".", "..") or item.link is not None or not stat.S_ISDIR(item.st.st_mode):
                continue
            if (item.st.st_dev, item.st.st_ino) in seen:
                continue
            if self.stopped or (cfg.maxdirs and self.dirs >= cfg.maxdirs):
                return
            if cfg.maxdepth and depth + 1 > cfg.maxdepth:
                return
            sub_label = item.name if label == "." else posixpath.join(label, item.name)
            yield ""
            yield f"{sub_label}:"
            yield from self.dir_lines(item.virtual, sub_label, depth + 1, seen)


def _safe_link(target: str, virtual: str) -> bool:
    """mod_ls skips links that point at `.`/`..` or at an ancestor of their own directory (Bug#3719)."""
    if target in (".", "..", "./", "../"):
        return False
    if target.startswith(".") and target.endswith(("/", ".")):
        parent = posixpath.dirname(virtual)
        resolved = posixpath.normpath(posixpath.join(parent, target))
        if parent == resolved or parent.startswith(resolved.rstrip("/") + "/"):
            return False
    return True


# -- globbing inside the root --------------------------------------------------------------------------------------
def expand_glob(session: "Session", pattern: str, sort: bool = True) -> list[str]:
    """Paths matching `pattern` (as the client would write them: relative stays relative), matched component by
    component inside the session root. Wildcards do not match a leading dot."""
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p]
    current = ["/" if absolute else ""]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        following: list[str] = []
        if listing.has_glob(part):
            match = listing.glob_matcher(part)
            for base in current:
                try:
                    real = session.fs.resolve(base or ".").real
                    with session.fs.scandir(real) as it:
                        names_ = [e.name for e in it if match(e.name) and (last or _is_dir(session.fs, real, e))]
                except (OSError, FtpError):
                    continue
                if sort:
                    names_.sort(key=_as_bytes)
                following.extend(_join(base, n) for n in names_)
                if len(following) > MAX_GLOB_MATCHES:
                    break
        else:
            following = [_join(base, part) for base in current]
            if last:
                following = [p for p in following if _lexists(session, p)]
        current = following[:MAX_GLOB_MATCHES]
        if not current:
            return []
    return current if parts else []


def _sort_by_name(entries: list[os.DirEntry]) -> None:
    """In the order of the names' bytes, as ProFTPD sorts. UTF-8 keeps code point order, so the names themselves
    sort the same unless one holds an undecodable byte (a surrogate, which strict encoding refuses)."""
    try:
        "/".join([e.name for e in entries]).encode()
    except UnicodeEncodeError:
        entries.sort(key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        return
    entries.sort(key=_BY_NAME)


_BY_NAME = operator.attrgetter("name")


def _join(base: str, name: str) -> str:
    if not base:
        return name
    return base + name if base.endswith("/") else base + "/" + name


def _is_dir(fs, real_dir: str, entry: os.DirEntry) -> bool:
    """A directory, or a symbolic link to one (followed inside the root)."""
    try:
        if entry.is_symlink():
            return stat.S_ISDIR(fs.stat(posixpath.join(real_dir, entry.name)).st_mode)
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _lexists(session: "Session", path: str) -> bool:
    try:
        return session.fs.lexists(session.fs.resolve(path, follow_last=False).real)
    except FtpError:
        return False


# -- LIST ----------------------------------------------------------------------------------------------------------
def _send(session: "Session", cmd: Request, lines: Iterable[str]) -> Reply:
    """A listing: its 150 names the current TYPE, as ProFTPD's (the lines end in CRLF either way)."""
    return transfer.send_lines(session, cmd, lines, mode=transfer_type(session))


def _list_denied(session: "Session", cmd: Request, error: str) -> Reply:
    """LIST with every entry left out (ProFTPD checks each entry against <Limit>): an empty listing, or 450."""
    return list_(session, cmd, empty=True)


def _nlst_denied(session: "Session", cmd: Request, error: str) -> Reply:
    """`450 <path or cwd>: No such file or directory`; a glob gets an empty listing."""
    cfg = settings(session, "NLST")
    _, target = parse_argument(session, cmd.arg, "NLST", cfg)
    if target and cfg.globbing and listing.has_glob(target):
        return _send(session, cmd, iter(()))
    return Reply(450, f"{target or session.fs.cwd}: {os.strerror(errno.ENOENT)}")


def _fail_after_opening(session: "Session", cmd: Request, error: FtpError) -> Reply:
    """LIST of a missing path: ProFTPD opens the data connection (150) before it looks, then answers 450 and
    closes it; without a data connection the 425 comes first."""

    def body(_: transfer.Transfer) -> None:
        raise error

    reply, _, _ = transfer.run(session, cmd, f"Opening {transfer_type(session)} mode data connection for file list",
                               body)
    return reply


def _missing(target: str, err: int) -> FtpError:
    return FtpError(450, f"{target}: {os.strerror(err)}")


def list_lines(session: "Session", lister: Lister, target: str) -> Iterator[str]:
    """LIST/STAT output for a target already checked to exist (or a glob, or "" for the cwd). The current
    directory's lines come straight from `dir_lines` (lazily, as the rest): no generator around it to resume
    once per line."""
    if not target and not lister.opts.d:
        return lister.dir_lines(session.fs.cwd, ".")
    return _target_lines(session, lister, target)


def _target_lines(session: "Session", lister: Lister, target: str) -> Iterator[str]:
    opts = lister.opts
    if not target:                              # -d: the current directory itself
        item = _item_for(lister, ".", follow_last=True)
        if item is not None:
            lister.count_file()
            yield from lister.render([item])
        return
    if lister.cfg.globbing and listing.has_glob(target):
        paths = expand_glob(session, target) or [target]
    else:
        paths = [target]
    files: list[Item] = []
    dirs: list[str] = []
    for path in paths:
        item = _item_for(lister, path, follow_last=False)
        if item is None:
            continue
        target_mode = item.st.st_mode
        if item.link is not None:
            followed = lister.follow(item.virtual)
            if followed is not None:
                target_mode = followed.st_mode
        if opts.d or not stat.S_ISDIR(target_mode) or (not opts.R and path != target):
            if not stat.S_ISDIR(target_mode) and named_hidden(session, path):
                continue
            if lister.windows and posixpath.basename(item.name).startswith("."):
                continue                        # ListStyle Windows shows no dotfile, named or not (ProFTPD)
            if lister.count_file():
                files.append(item)
        else:
            dirs.append(path)
    yield from lister.render(files)
    for path in dirs:
        if lister.stopped:
            return
        if len(paths) > 1:
            yield ""
            yield f"{path}:"
        yield from lister.dir_lines(session.fs.virtual(path), path)


def _item_for(lister: Lister, path: str, follow_last: bool) -> Item | None:
    """The Item for one operand (a path the client named, or a glob match)."""
    try:
        vp = lister.fs.resolve(path, follow_last=follow_last)
        lst = lister.fs.lstat(vp.real)
    except (OSError, FtpError):
        return None
    name = path.rstrip("/") or path
    if stat.S_ISLNK(lst.st_mode) and (lister.opts.L or not lister.cfg.show_symlinks):
        st = lister.follow(vp.virtual)
        return Item(name, st, None, vp.virtual) if st is not None else None
    if stat.S_ISLNK(lst.st_mode):
        try:
            return Item(name, lst, lister.fs.readlink(vp.real), vp.virtual)
        except OSError:
            return None
    return Item(name, lst, None, vp.virtual)


def check_target(session: "Session", target: str, cfg: Settings, follow: bool = True) -> bool:
    """True when a non-glob target exists; raises ProFTPD's 450 otherwise (False with NoErrorIfAbsent)."""
    if not target or (cfg.globbing and listing.has_glob(target)):
        return True
    try:
        real = session.fs.resolve(target, follow_last=follow).real
        session.fs.stat(real) if follow else session.fs.lstat(real)
        return True
    except FsError as e:
        err = e.errno
    except OSError as e:
        err = e.errno or errno.EIO
    if err == errno.ENOENT and cfg.config.no_error_if_absent:
        return False
    raise _missing(target, err)


def list_(session: "Session", cmd: Request, empty: bool = False) -> Reply:
    cfg = settings(session, "LIST")
    opts, target = parse_argument(session, cmd.arg, "LIST", cfg)
    try:
        exists = check_target(session, target, cfg)
    except FtpError as e:
        return _fail_after_opening(session, cmd, e)
    if not exists or empty:
        return _send(session, cmd, iter(()))
    lister = Lister(session, opts, cfg, "LIST")
    return _send(session, cmd, list_lines(session, lister, target))


# -- NLST ----------------------------------------------------------------------------------------------------------
def nlst(session: "Session", cmd: Request) -> Reply:
    cfg = settings(session, "NLST")
    opts, target = parse_argument(session, cmd.arg, "NLST", cfg)
    target = target or "."
    lister = Lister(session, opts, cfg, "NLST")
    if cfg.globbing and listing.has_glob(target):
        paths = expand_glob(session, target, sort=cfg.config.sorted_nlst)
        if not paths:
            if _exists(session, target):
                paths = [target]
            elif cfg.config.no_error_if_absent:
                return _send(session, cmd, iter(()))
            else:
                raise FtpError(450, "No files found")
        return _send(session, cmd, nlst_glob_lines(session, lister, paths))
    clean = _clean(target)
    try:
        st = session.fs.stat(session.fs.resolve(clean).real)
    except (OSError, FsError) as e:
        err = e.errno or errno.EIO
        if err == errno.ENOENT and cfg.config.no_error_if_absent:
            return _send(session, cmd, iter(()))
        raise FtpError(450, f"{cmd.arg or clean}: {os.strerror(err)}") from None
    if stat.S_ISREG(st.st_mode):
        return _send(session, cmd, iter([] if named_hidden(session, clean) else [_nlst_name(clean, opts)]))
    if not stat.S_ISDIR(st.st_mode):
        raise FtpError(450, f"{cmd.arg}: Not a regular file")
    if not session.fs.access(session.fs.resolve(clean).real, os.R_OK):
        raise FtpError(450, f"{cmd.arg or clean}: {os.strerror(errno.EACCES)}")
    return _send(session, cmd, nlst_dir_lines(session, lister, clean))


def _clean(target: str) -> str:
    if target in (".", "./"):
        return "."
    clean = posixpath.normpath(target)
    if target.startswith("//"):
        clean = "/" + clean.lstrip("/")
    return clean


def _nlst_name(path: str, opts: LsOptions) -> str:
    if opts.one and "/" in path and len(path) > 1:
        return path.rsplit("/", 1)[1]
    return path


def nlst_dir_lines(session: "Session", lister: Lister, directory: str) -> Iterator[str]:
    """One directory's names, readdir order (SortedNLST sorts); `dir/name` unless it is the cwd or -1."""
    cfg, opts = lister.cfg.config, lister.opts
    if cfg.maxdirs and lister.dirs >= cfg.maxdirs:
        return
    lister.dirs += 1
    curdir = directory in ("", ".", "./")
    virtual = session.fs.virtual(directory or ".")
    try:
        real = session.fs.resolve(virtual).real
        with session.fs.scandir(real) as it:
            entries = [(e.name, e.is_symlink()) for e in it]
    except (OSError, FtpError) as e:
        log.debug("NLST cannot read %s: %s", directory, e)
        return
    hide = hider(session, real)
    if hide is not None:
        entries = [e for e in entries if not hide(*e)]
    names_ = [name for name, _ in entries]
    if opts.a:
        names_ = [".", ".."] + names_
    if cfg.sorted_nlst:
        names_.sort(key=_as_bytes)
    links = {name for name, is_link in entries if is_link}
    for name in names_:
        if name.startswith(".") and not (opts.a or (opts.A and name not in (".", ".."))):
            continue
        if name in links and not _nlst_link_kept(session, virtual, name):
            continue
        if curdir or opts.one:
            yield name
        else:
            yield posixpath.join(directory, name)
        if not lister.count_file():
            return


def _nlst_link_kept(session: "Session", directory: str, name: str) -> bool:
    """Whether NLST names a link of a directory listing, as mod_ls 1.3.8 decides (checked against Debian's
    ProFTPD): a link that dangles or leads out of the root is left out, a loop is kept, and so is a link
    whose target climbs with `../` only in the session root."""
    path = posixpath.join(directory, name)
    try:
        target = session.fs.readlink(session.fs.resolve(path, follow_last=False).real)
        if target.startswith("../") and directory != "/":
            return False
        session.fs.stat(session.fs.resolve(path).real)
    except (OSError, FsError) as e:
        return e.errno == errno.ELOOP
    return True


def nlst_glob_lines(session: "Session", lister: Lister, paths: list[str]) -> Iterator[str]:
    opts = lister.opts
    for path in paths:
        base = path.rstrip("/").rsplit("/", 1)[-1]
        if base.startswith(".") and (not opts.A or base in (".", "..")):
            continue
        try:
            st = session.fs.stat(session.fs.resolve(path).real)
        except (OSError, FtpError):
            continue
        if stat.S_ISDIR(st.st_mode):
            if opts.R:
                yield from nlst_dir_lines(session, lister, path)
            else:
                yield _nlst_name(path, opts)
        elif stat.S_ISREG(st.st_mode) and not named_hidden(session, path):
            yield _nlst_name(path, opts)


# -- STAT ----------------------------------------------------------------------------------------------------------
def transfer_type(session: "Session") -> str:
    """ASCII or BINARY, as TYPE last set it (mod_xfer keeps it in the data state)."""
    return transfer.state(session).mode_name


def server_status(session: "Session") -> Reply:
    lines = [f"Status of '{session.server.name}'",
             f" Connected from {session.remote_name} ({session.remote_addr})",
             f" Logged in as {session.user}",
             f" TYPE: {transfer_type(session)}, STRUcture: File, Mode: Stream"]
    running = transfer.state(session).transfer          # STAT while a transfer runs (answered during it)
    total = session.totals.bytes_moved + (running.file_bytes if running is not None else 0)
    if total:
        lines.append(f" Total bytes transferred for session: {total}")
    if running is None:
        lines.append(" No data connection")
    else:
        lines += _transfer_status(running)
    return Reply(211, "End of status", lines)


def _transfer_status(running: transfer.Transfer) -> list[str]:
    """ProFTPD's two lines about the running transfer, its doubled word included (`%s from %s port %u` after
    "Passive data transfer from"): the data connection's peer, then `RETR|STOR <path> (<size>/<bytes>)`."""
    try:
        peer_ip, peer_port = running.sock.getpeername()[:2]
    except OSError:
        peer_ip, peer_port = "", 0
    kind = "Active data transfer to" if running.active else "Passive data transfer from"
    verb = "STOR" if running.cmd.name in ("STOR", "STOU", "APPE") else "RETR"
    done = f"{running.size}/{running.file_bytes}" if running.size else f"{running.file_bytes}"
    return [f" {kind} from {plain_ip(peer_ip)} port {peer_port}", f" {verb} {running.path} ({done})"]


def _stat_denied(session: "Session", cmd: Request, error: str) -> Reply:
    """`500 STAT: Operation not permitted`; STAT of a path gets its status without entries (or 450)."""
    if not cmd.arg.strip():
        return Reply(500, f"{cmd.name}: {error}")
    return stat_(session, cmd, empty=True)


def stat_(session: "Session", cmd: Request, empty: bool = False) -> Reply:
    if not cmd.arg.strip():
        return server_status(session)
    cfg = settings(session, "STAT")
    arg = cmd.arg
    if arg.startswith("-"):
        _, _, arg = arg.partition(" ")
    path = arg.lstrip(" ") or "."
    try:
        vp = session.fs.resolve(path, follow_last=not cfg.show_symlinks)
        st = session.fs.lstat(vp.real) if cfg.show_symlinks else session.fs.stat(vp.real)
        if stat.S_ISLNK(st.st_mode):
            session.fs.stat(session.fs.resolve(path).real)      # a dangling link is 450, as in mod_ls
    except FsError as e:
        raise _missing(path, e.errno) from None
    except OSError as e:
        raise _missing(path, e.errno or errno.EIO) from None
    code = 212 if stat.S_ISDIR(st.st_mode) else 213
    opts = LsOptions(l=True, a=True)
    listing.parse_config_options(cfg.config.options, "STAT", opts)
    opts.C = opts.d = opts.F = opts.R = False
    opts.a = opts.l = True
    lister = Lister(session, opts, cfg, "STAT")
    body = [] if empty else [" " + line for line in list_lines(session, lister, path)]
    return Reply(code, "End of status", [f"Status of {path}:"] + body)


commands = (
    Command("LIST", list_, DIRS, arg=OPTIONAL, help="[<sp> pathname]", help_at=51, path=LISTED_PATH,
            denied=_list_denied, replies=("150 Opening ASCII mode data connection for file list", "226 Transfer complete",
                     "450 <path>: No such file or directory (after the 150)")),
    Command("NLST", nlst, DIRS, arg=OPTIONAL, help="[<sp> (pathname)]", help_at=52, path=LISTED_PATH,
            denied=_nlst_denied, replies=("150 Opening ASCII mode data connection for file list", "226 Transfer complete")),
    Command("STAT", stat_, DIRS, arg=OPTIONAL, help="[<sp> pathname]", help_at=53, path=LISTED_PATH,
            denied=_stat_denied, replies=("211-Status of ... / 213-Status of <path>:",)),
)

MODULE = Module(NAME, directives=directives, commands=commands)
