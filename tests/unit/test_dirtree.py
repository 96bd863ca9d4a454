"""Which `<Directory>` applies to a path: ProFTPD's tree (dirtree.c reorder_dirs, find_best_dir,
recur_match_path), each case checked against Debian's ProFTPD 1.3.8 (scripts/compare_proftpd.py, dir-* scenarios)."""

from proftpy import modules
from proftpy.config.parser import parse_text
from proftpy.config.tree import dir_matches


def chosen(sections: str, path: str, home: str | None = None) -> str | None:
    """The argument of the innermost `<Directory>` that applies to `path` (None: none)."""
    config = parse_text(sections, modules.registry(), file="t.conf")
    chain = config.main.context(path=path, home=home).chain
    dirs = [s for s in chain if s.kind == "dir"]
    return dirs[0].args[0] if dirs else None


def block(path: str) -> str:
    return f"<Directory {path}>\n  AllowOverwrite on\n</Directory>\n"


def test_glob_suffix_and_contents_only():
    assert dir_matches("/srv/a", "/srv/a") and dir_matches("/srv/a", "/srv/a/b/c")
    assert not dir_matches("/srv/a", "/srv/ab")
    assert dir_matches("/srv/a/*", "/srv/a/b") and not dir_matches("/srv/a/*", "/srv/a")
    assert dir_matches("/srv/d*", "/srv/dir/x/y")          # `*` spans `/`, as pr_fnmatch without flags
    assert dir_matches("/", "/anything")


def test_of_two_globs_at_one_level_the_later_section_applies():
    two = block("/home/*/dir") + block("/home/alice/di?")
    assert chosen(two, "/home/alice/dir/m1") == "/home/alice/di?"
    assert chosen(block("/home/alice/di?") + block("/home/*/dir"), "/home/alice/dir/m1") == "/home/*/dir"


def test_a_later_glob_wins_over_an_earlier_exact_path():
    assert chosen(block("/home/alice/dir") + block("/home/alice/d*"), "/home/alice/dir/m1") == "/home/alice/d*"
    assert chosen(block("/home/alice/d*") + block("/home/alice/dir"), "/home/alice/dir/m1") == "/home/alice/dir"


def test_sections_nest_under_their_literal_prefix():
    nested = block("/home/alice") + block("/home/alice/*/sub*")
    assert chosen(nested, "/home/alice/dir/sub dir/m5") == "/home/alice/*/sub*"
    assert chosen(nested, "/home/alice/dir/m1") == "/home/alice"
    config = parse_text(nested, modules.registry(), file="t.conf")
    chain = config.main.context(path="/home/alice/dir/sub dir").chain
    assert [s.args[0] for s in chain if s.kind == "dir"] == ["/home/alice/*/sub*", "/home/alice"]


def test_a_glob_on_a_sibling_name_is_no_parent():
    assert chosen(block("/home/alice/dir/*") + block("/home/alice/d*"), "/home/alice/dir/m1") == "/home/alice/d*"


def test_home_sections_stay_at_the_top_level():
    both = block("/home/alice/dir") + block("~")
    assert chosen(both, "/home/alice/dir/x", home="/home/alice") == "~"
    assert chosen(block("~") + block("/home/alice/dir"), "/home/alice/dir/x", home="/home/alice") == \
        "/home/alice/dir"
    assert chosen(block("~"), "/home/alice/x") is None        # before login `~` is nobody's home
