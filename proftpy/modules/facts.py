"""mod_facts: machine listings (RFC 3659) — MLSD over the data connection, MLST on the control connection — and
`OPTS MLST` (through `set_mlst_facts`, which mod_core's OPTS handler calls).

Facts and their order follow mod_facts.c: modify perm size type unique UNIX.group UNIX.groupname UNIX.mode
UNIX.owner UNIX.ownername. MFF/MFMT live with the other file commands (modules/files.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from .. import listing, transfer
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom, Flag, Options
from ..dispatch import DIRS, OPTIONAL, PATH, Command, Request
from ..fs import FsError
from ..listing import FACTS, FactValues
from ..module import Module
from ..reply import FtpError, Reply
from .ls import context_at, hider, named_hidden, names, target_hidden

if TYPE_CHECKING:
    from ..session import Session

NAME = "mod_facts.c"
log = logging.getLogger("proftpy")


def _default_facts(args: list[str]) -> tuple[str, ...]:
    """`FactsDefault fact ...` (any case), ProFTPD's errors."""
    if not args:
        raise ValueError("wrong number of parameters")
    facts = []
    for word in args:
        fact = listing.fact_named(word)
        if fact is None:
            raise ValueError(f"unknown fact '{word}'")
        facts.append(fact)
    return tuple(f for f in FACTS if f in facts)


directives = (
    Directive("FactsAdvertise", Flag, SVG, True, Merge.SERVER,
              "off: FEAT does not list MLST, MFF, MFMT and TVFS (the commands still work)."),
    Directive("FactsDefault", Custom(_default_facts, "fact ..."), SVG, None, Merge.SERVER,
              "The facts MLSD and MLST show until the client chooses with OPTS MLST (default: all)."),
    Directive("FactsOptions", Options(("UseSlink", "NoNames", "AdjustedSymlinks", "NoAdjustedSymlinks"),
                                      "FactsOption"), SVG, frozenset(), Merge.SERVER,
              "UseSlink: symlinks as `type=OS.unix=slink:<target>` (FileZilla); NoNames: no owner/group names."),
)


# -- per-session fact selection ------------------------------------------------------------------------------------
@dataclass
class FactsState:
    chosen: tuple[str, ...] | None = None       # what OPTS MLST chose (None: every fact)


def _options(session: "Session") -> frozenset[str]:
    return session.server.get("FactsOptions")


def _selected(session: "Session") -> tuple[str, ...]:
    """What OPTS MLST chose, else FactsDefault, else every fact."""
    chosen = session.state.get(FactsState).chosen
    return chosen if chosen is not None else session.server.get("FactsDefault") or FACTS


def enabled_facts(session: "Session") -> tuple[str, ...]:
    """The facts this session shows (`_selected`); NoNames drops the name facts."""
    facts = _selected(session)
    if "NoNames" in _options(session):
        facts = tuple(f for f in facts if f not in ("UNIX.groupname", "UNIX.ownername"))
    return tuple(facts)


def set_mlst_facts(session: "Session", arg: str) -> Reply:
    """`OPTS MLST [fact;fact;...]` (called by the OPTS handler with the text after `MLST`). Unknown facts are
    ignored; the reply lists those now shown: `200 MLST OPTS size;type;`."""
    text = arg.strip()
    if len(text.split()) > 1:
        return Reply(501, "'OPTS MLST' not understood")
    chosen = tuple(listing.parse_mlst_opts(text)) if text else ()
    session.state.get(FactsState).chosen = chosen
    if not text:
        return Reply(200, "MLST OPTS")
    return Reply(200, "MLST OPTS " + "".join(f"{f};" for f in listing.asked_mlst_facts(text)))


def advertised(session: "Session") -> bool:
    """FactsAdvertise: whether FEAT lists MLST, MFF, MFMT and TVFS."""
    return session.server.get("FactsAdvertise")


def _mlst_feat(session: "Session") -> tuple[str, ...]:
    """FEAT's MLST line stars the facts now selected (RFC 3659 7.8: it follows OPTS MLST)."""
    return (listing.mlst_feat(_selected(session)), "TVFS") if advertised(session) else ()


# -- facts of one entry --------------------------------------------------------------------------------------------
class Fakes:
    """DirFakeUser/DirFakeGroup/DirFakeMode for one directory, read once (not once per entry)."""

    def __init__(self, session: "Session", real: str | None):
        ctx = context_at(session, real)
        self.user, self.group, self.mode = ctx.get("DirFakeUser"), ctx.get("DirFakeGroup"), ctx.get("DirFakeMode")


def entry_facts(session: "Session", virtual: str, lst: os.stat_result, dent_name: str, *,
                show_symlinks: bool, cdir: bool = True, real: str | None = None,
                fakes: Fakes | None = None) -> FactValues | None:
    """The facts of one entry from its lstat (`real`: its real path when known). Links take their unique fact
    (and with ShowSymlinks off their type) from the target, resolved inside the session root; None when the
    target cannot be reached."""
    st = lst
    dev, ino = st.st_dev, st.st_ino
    if stat.S_ISLNK(st.st_mode):
        real = None
    if stat.S_ISLNK(st.st_mode):
        try:
            target_real = session.fs.resolve(virtual).real
            target = session.fs.stat(target_real)
        except (OSError, FtpError) as e:
            log.debug("MLSx: cannot follow %s: %s", virtual, e)
            return None
        dev, ino, real = target.st_dev, target.st_ino, target_real
        if show_symlinks:
            if "UseSlink" in _options(session):
                try:
                    link = session.fs.readlink(session.fs.resolve(virtual, follow_last=False).real)
                except (OSError, FtpError):
                    return None
                kind = "OS.unix=slink:" + link
            else:
                kind = "OS.unix=symlink"
        else:
            kind = "dir" if stat.S_ISDIR(target.st_mode) else "file"
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
        if cdir and dent_name == ".":
            kind = "cdir"
        elif cdir and dent_name == "..":
            kind = "pdir"
    else:
        kind = "file"
    if real is None:
        try:
            real = session.fs.resolve(virtual).real
        except FtpError:
            return None
    is_dir = stat.S_ISDIR(st.st_mode)
    if is_dir:
        readable, writable, searchable = session.fs.access_all(real, (os.R_OK, os.W_OK, os.X_OK))
    else:
        (readable, writable), searchable = session.fs.access_all(real, (os.R_OK, os.W_OK)), False
    perm = listing.perm_fact(is_dir, readable, writable, searchable)
    uid, gid, mode = st.st_uid, st.st_gid, st.st_mode
    user = group = None
    fakes = fakes or Fakes(session, real)
    fake_user, fake_group, fake_mode = fakes.user, fakes.group, fakes.mode
    account = session.account
    if fake_user and fake_user[0]:
        user, uid = _fake(session, fake_user[1], account, user=True, fallback=uid)
    if fake_group and fake_group[0]:
        group, gid = _fake(session, fake_group[1], account, user=False, fallback=gid)
    if fake_mode is not None:
        mode = fake_mode
    lookup = names(session)
    return FactValues(mtime=st.st_mtime_ns // 1_000_000_000, perm=perm, size=None if is_dir else st.st_size,
                      type=kind, dev=dev, ino=ino, uid=uid, gid=gid, user=user or lookup.user(uid),
                      group=group or lookup.group(gid), mode=mode)


def _fake(session: "Session", name: str, account, *, user: bool, fallback: int) -> tuple[str, int]:
    """DirFakeUser/DirFakeGroup for facts: the name shown and its id (`~` = the session's own)."""
    lookup = names(session)
    if name == "~":
        if account is None:
            return ("ftp", fallback)
        ident = account.uid if user else account.gid
        return (session.user if user else lookup.group(ident), ident)
    chain = lookup.chain()
    found = chain.lookup(name) if user else chain.getgrnam(name)
    if found is None:
        return (name, fallback)
    return (name, found.uid if user else found.gid)


# -- MLSD ----------------------------------------------------------------------------------------------------------
def _show_symlinks(session: "Session", real: str | None, explicit: bool) -> bool:
    """ShowSymlinks for MLSx. MLSD treats "not set" as on; MLST only shows links when it is set on (mod_facts)."""
    ctx = context_at(session, real)
    if explicit and ctx.param("ShowSymlinks") is None:
        return False
    return bool(ctx.get("ShowSymlinks"))


def mlsd_lines(session: "Session", virtual: str, real: str, entries: list[os.DirEntry]) -> Iterator[str]:
    """One line per entry; `entries` come from `FS.scandir(real)`, still open while this runs."""
    enabled = enabled_facts(session)
    show = _show_symlinks(session, real, explicit=False)
    fakes = Fakes(session, real)
    hide = hider(session, real)
    for name in (".", ".."):
        child = posixpath.join(virtual, name)
        try:
            resolved = session.fs.resolve(child).real
            st = session.fs.stat(resolved)
        except (OSError, FtpError):
            continue
        if hide is not None and target_hidden(session, resolved):
            continue                    # a hidden directory's own `.` (ProFTPD checks each entry's real path)
        facts = entry_facts(session, child, st, name, show_symlinks=show, fakes=fakes)
        if facts is not None:
            yield listing.format_facts(facts, name, enabled)
    for entry in entries:
        if hide is not None and hide(entry.name, entry.is_symlink()):
            continue
        child = posixpath.join(virtual, entry.name)
        try:
            lst = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        facts = entry_facts(session, child, lst, entry.name, show_symlinks=show, real=posixpath.join(real, entry.name),
                            fakes=fakes)
        if facts is not None:
            yield listing.format_facts(facts, entry.name, enabled)


def mlsd(session: "Session", cmd: Request) -> Reply:
    arg = cmd.arg
    shown = arg or session.fs.cwd
    try:
        vp = session.fs.resolve(arg or ".")
        st = session.fs.stat(vp.real)
    except FsError as e:
        return Reply(550, f"{shown}: {os.strerror(e.errno)}")
    except OSError as e:
        return Reply(550, f"{shown}: {os.strerror(e.errno or errno.EIO)}")
    if not stat.S_ISDIR(st.st_mode):
        return Reply(550, f"'{shown}' is not a directory")
    with contextlib.ExitStack() as stack:
        try:
            entries = list(stack.enter_context(session.fs.scandir(vp.real)))
        except OSError as e:
            return Reply(550, f"{shown}: {os.strerror(e.errno or errno.EIO)}")
        return transfer.send_lines(session, cmd, mlsd_lines(session, vp.virtual, vp.real, entries), what="MLSD",
                                   mode=transfer.state(session).mode_name)


# -- MLST ----------------------------------------------------------------------------------------------------------
def mlst(session: "Session", cmd: Request) -> Reply:
    arg = cmd.arg
    shown = arg or session.fs.cwd
    try:
        here = session.fs.resolve(".").real
    except FtpError:
        here = None
    show = _show_symlinks(session, here, explicit=True)
    try:
        # a link's own facts (size, mode, perm), its target's type unless ShowSymlinks is set on: as mod_facts
        vp = session.fs.resolve(arg or ".", follow_last=False)
        lst = session.fs.lstat(vp.real)
    except (OSError, FtpError):
        return Reply(550, f"'{shown}' cannot be listed")
    if named_hidden(session, arg or ".", follow=False):
        return Reply(250, "End of list", [f"Start of list for {shown}"])        # as mod_facts: an empty list
    facts = entry_facts(session, vp.virtual, lst, vp.virtual, show_symlinks=show, cdir=False)
    if facts is None:
        return Reply(550, f"'{shown}' cannot be listed")
    line = listing.format_facts(facts, vp.virtual, enabled_facts(session))
    return Reply(250, "End of list", [f"Start of list for {shown}", " " + line])


commands = (
    Command("MLSD", mlsd, DIRS, arg=OPTIONAL, help="[<sp> pathname]", help_at=55, path=PATH,
            denied=(550, "Unable to handle command"), replies=("150 Opening ASCII mode data connection for MLSD", "226 Transfer complete")),
    Command("MLST", mlst, DIRS, arg=OPTIONAL, help="[<sp> pathname]", help_at=56, path=PATH,
            denied=(550, "Unable to handle command"), feat=(listing.mlst_feat(), "TVFS"), feat_for=_mlst_feat, replies=("250-Start of list for <path> ... 250 End of list",)),
)

MODULE = Module(NAME, directives=directives, commands=commands)
