"""<Directory> matching as access control uses it, the command -> path rules, and the .ftpaccess cache."""

import os

import pytest

from proftpy import modules
from proftpy.access import dirs, limits
from proftpy.access.limits import Who
from proftpy.config.parser import parse_text
from proftpy.fs import FS
from proftpy.net.netaddr import ClientAddr

ALICE = Who(ClientAddr.plain("127.0.0.1"), "alice", ("staff",))


def conf(text):
    return parse_text(text, modules.registry(), file="t.conf")


def allowed(config, path, cmd="STOR", group="WRITE", anon=None, home=None, dynamic=()):
    ctx = config.main.context(anon, path, home, list(dynamic))
    return limits.check_command(ctx.limits(), cmd, group, True, ALICE).allowed


DENY = "<Limit STOR>\nDenyAll\n</Limit>\n"


@pytest.mark.parametrize("pattern,path,expected", [
    ("/srv/ftp", "/srv/ftp", False), ("/srv/ftp", "/srv/ftp/a/b", False), ("/srv/ftp", "/srv/ftpx", True),
    ("/srv/ftp/*", "/srv/ftp/a", False), ("/srv/*/upload", "/srv/x/upload/f", False),
    ("/srv/*.iso", "/srv/a.iso", False), ("/srv/*.iso", "/srv/a.txt", True),
])
def test_directory_matching(pattern, path, expected):
    config = conf(f"<Directory {pattern}>\n{DENY}</Directory>\n")
    assert allowed(config, path) is expected


def test_tilde_directory_needs_the_home():
    config = conf(f"<Directory ~/incoming>\n{DENY}</Directory>\n")
    assert not allowed(config, "/home/alice/incoming/f", home="/home/alice")
    assert allowed(config, "/home/alice/incoming/f", home=None)


def test_relative_directory_inside_anonymous():
    config = conf(f"<Anonymous /srv/anon>\n<Directory incoming>\n{DENY}</Directory>\n</Anonymous>\n")
    anon = config.main.anonymous()[0]
    assert not allowed(config, "/srv/anon/incoming/f", anon=anon)
    assert allowed(config, "/srv/anon/pub/f", anon=anon)


@pytest.mark.parametrize("name,arg,expected", [
    ("LIST", "-la /pub", ("LIST", "/pub")), ("NLST", "-a", ("NLST", "")), ("LIST", "", ("LIST", "")),
    ("RETR", "a b.txt", ("RETR", "a b.txt")), ("MFMT", "20240101000000 f.txt", ("MFMT", "f.txt")),
    ("SITE", "CHMOD 755 f.txt", ("SITE_CHMOD", "f.txt")), ("SITE", "HELP", None), ("PWD", "", None),
])
def test_path_argument(name, arg, expected):
    row, path = modules.dispatcher().path_argument(name, arg)
    assert (None if path is None else (row.limit_name, path)) == expected


def test_ftpaccess_cache_reads_changes_and_forgets(tmp_path):
    registry = modules.registry()
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    cache = dirs.FtpaccessCache(registry, lambda d: True)
    assert cache.sections(str(sub)) == []
    (tmp_path / "a" / ".ftpaccess").write_text("<Limit STOR>\nDenyAll\n</Limit>\n")
    (sub / ".ftpaccess").write_text("HideNoAccess on\n")
    found = cache.sections(str(sub))
    assert [s.args[0] for s in found] == [str(sub), str(tmp_path / "a")]
    assert all(s.dynamic and s.kind == "dir" for s in found)
    config = conf("")
    assert not allowed(config, str(sub / "f"), dynamic=found)
    (tmp_path / "a" / ".ftpaccess").write_text("<Limit STOR>\nAllowAll\n</Limit>\n")
    st = os.stat(tmp_path / "a" / ".ftpaccess")
    os.utime(tmp_path / "a" / ".ftpaccess", (st.st_atime, st.st_mtime + 5))
    assert allowed(config, str(sub / "f"), dynamic=cache.sections(str(sub)))
    (tmp_path / "a" / ".ftpaccess").unlink()
    assert [s.args[0] for s in cache.sections(str(sub))] == [str(sub)]


def test_ftpaccess_walk_is_shared_while_the_caller_keeps_it(tmp_path):
    """With `walked` (the session's, during one command) each directory is looked at once; a new dict (the next
    command) sees what changed."""
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    (tmp_path / "a" / ".ftpaccess").write_text("HideNoAccess on\n")
    asked = []
    cache = dirs.FtpaccessCache(modules.registry(), lambda d: asked.append(d) or True)
    walked = {}
    assert [s.args[0] for s in cache.sections(str(sub), walked)] == [str(tmp_path / "a")]
    first = len(asked)
    (sub / ".ftpaccess").write_text("HideNoAccess off\n")
    assert [s.args[0] for s in cache.sections(str(sub / "c"), walked)] == [str(tmp_path / "a")]
    assert asked[first:] == [str(sub / "c")]                 # only the one directory not walked yet
    assert [s.args[0] for s in cache.sections(str(sub), {})] == [str(sub), str(tmp_path / "a")]


def test_ftpaccess_walk_stops_at_a_kernel_chroot(tmp_path):
    """Under a kernel chroot the directories above it are out of sight: none of their names is looked up inside
    the chroot, where the same name is another file (a user's own `tmp/.ftpaccess` is not the real /tmp's)."""
    jail = tmp_path / "home" / "alice"
    (jail / "pub").mkdir(parents=True)
    (jail / ".ftpaccess").write_text("HideNoAccess on\n")
    fs = FS("/", chroot=str(jail))
    mapped = []

    def to_fs(path):
        seen = fs.from_config(path)
        mapped.append((path, seen))
        return None if seen is None else str(jail) + seen if seen != "/" else str(jail)   # this test runs unjailed

    planted = jail / str(tmp_path).lstrip("/")                 # the chroot's own copy of an ancestor's path
    planted.mkdir(parents=True)
    (planted / ".ftpaccess").write_text("<Limit STOR>\nDenyAll\n</Limit>\n")
    cache = dirs.FtpaccessCache(modules.registry(), lambda d: True, to_fs)
    found = cache.sections(str(jail / "pub"))
    assert [s.args[0] for s in found] == [str(jail)]
    assert [seen for _, seen in mapped] == ["/pub", "/", None]  # one directory above the chroot asked, no more
    assert FS("/", chroot="/").from_config("/srv") == "/srv"


def test_ftpaccess_respects_allowoverride_and_rejects_wrong_contexts(tmp_path):
    (tmp_path / ".ftpaccess").write_text("<Limit STOR>\nDenyAll\n</Limit>\n")
    assert dirs.FtpaccessCache(modules.registry(), lambda d: False).sections(str(tmp_path)) == []
    (tmp_path / ".ftpaccess").write_text("MaxClients 3\n")          # not allowed in .ftpaccess: ignored
    assert dirs.FtpaccessCache(modules.registry(), lambda d: True).sections(str(tmp_path)) == []


def test_empty_ftpaccess_is_ignored(tmp_path):
    (tmp_path / ".ftpaccess").write_text("")
    assert dirs.FtpaccessCache(modules.registry(), lambda d: True).sections(str(tmp_path)) == []


def test_directory_denyall_is_found_innermost_first():
    from proftpy.access.limits import directory_rule
    config = conf("<Directory /srv>\nDenyAll\n</Directory>\n<Directory /srv/pub>\nAllowAll\n</Directory>\n")
    assert directory_rule(config.main.context(path="/srv/pub/x")).allowed
    d = directory_rule(config.main.context(path="/srv/other"))
    assert not d.allowed and d.where.line == 2
    assert directory_rule(config.main.context(path="/elsewhere")) is None
    both = conf("<Directory /a>\nAllowAll\nDenyAll\n</Directory>\n<Directory /b>\nDenyAll\nAllowAll\n</Directory>\n")
    assert directory_rule(both.main.context(path="/a")).allowed           # the first of the two lines wins
    assert not directory_rule(both.main.context(path="/b")).allowed
