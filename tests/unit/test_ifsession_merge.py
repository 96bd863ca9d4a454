"""mod_ifsession's pure parts: the sections' opening lines and the merge (config.tree.merge_block), each as
ProFTPD 1.3.8 behaves (checked against Debian's ProFTPD, scripts/compare_proftpd.py ifsess-* scenarios)."""

import pytest

from proftpy import modules
from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_text
from proftpy.config.tree import Server, copy_tree, merge_block


def conf(text):
    return parse_text(text, modules.registry(), file="t.conf")


def block(text, kind="ifuser"):
    return next(s for s in conf(text).main.section.sections if s.kind == kind)


@pytest.mark.parametrize("line, names, holds", [
    ("<IfUser alice>", ("alice",), True),
    ("<IfUser !alice>", ("alice",), False),
    ("<IfUser bob, alice>", ("alice",), True),
    ("<IfUser AND alice, bob>", ("alice",), False),
    ("<IfUser OR bob alice>", ("alice",), True),
    ("<IfUser regex ^al>", ("alice",), True),
    ("<IfUser regex ^AL>", ("alice",), False),
    ("<IfUser and alice bob>", ("alice",), True),       # AND/OR/regex are keywords only as written
    ("<IfGroup ftpusers, shared>", ("ftpusers",), False),   # groups: AND by default
    ("<IfGroup ftpusers, shared>", ("ftpusers", "shared"), True),
    ("<IfGroup OR others ftpusers>", ("ftpusers",), True),
    ("<IfClass !local>", (), True),
])
def test_conditions(line, names, holds):
    kind = line[1:].split()[0].lower()
    text = f"{line}\n  AllowOverwrite on\n</{line[1:].split()[0]}>\n"
    assert block(text, kind).value.holds(names) is holds


@pytest.mark.parametrize("text, message", [
    ("<IfUser>\n</IfUser>\n", "wrong number of parameters"),
    ("<IfUser regex a b>\n</IfUser>\n", "wrong number of parameters"),
    ("<IfUser regex (>\n</IfUser>\n", "failed regex compilation"),
    ("<IfAuthenticated x>\n</IfAuthenticated>\n", "wrong number of parameters"),
    ("<IfUser alice>\nAllowOverwrite on\n", "is not closed"),
    ("<Directory /srv>\n<IfUser alice>\n</IfUser>\n</Directory>\n", "is not allowed"),
    ("<IfUser alice>\nAuthOrder mod_auth_file.c\n</IfUser>\n<Anonymous /srv>\n<IfUser bob>\n</IfUser>\n"
     "</Anonymous>\n", "is not allowed"),
    ("<Directory /srv>\n</Directory>\n<IfUser alice>\n<Directory /srv>\n</Directory>\n</IfUser>\n",
     "already defined"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(ConfigError, match=message):
        conf(text)


def test_contents_are_allowed_where_the_section_stands():
    c = conf("<IfUser alice>\n  MaxClients 2\n  <Directory /srv>\n    <Limit WRITE>\n      DenyAll\n"
             "    </Limit>\n  </Directory>\n</IfUser>\n")
    assert c.main.get("MaxClients") is None              # not merged: not seen by the server
    with pytest.raises(ConfigError, match="not allowed"):
        conf("<IfUser alice>\n  AnonRequirePassword on\n</IfUser>\n")


def merged(text, *kinds):
    c = conf(text)
    root = copy_tree(c.main.section)
    for section in reversed([s for s in root.sections if s.kind in kinds]):
        merge_block(root, section)
    return Server(root, c.registry, base=c.main), c


def test_a_merged_directive_replaces_it_everywhere_even_in_directories():
    server, c = merged("<Directory /srv>\n  AllowOverwrite on\n</Directory>\n"
                       "<IfUser alice>\n  AllowOverwrite off\n</IfUser>\n", "ifuser")
    assert server.context(path="/srv/x").get("AllowOverwrite") is False
    assert c.main.context(path="/srv/x").get("AllowOverwrite") is True     # the master's copy is untouched


def test_of_two_matching_sections_the_later_one_wins():
    server, _ = merged("<IfUser alice>\n  DisplayLogin a.msg\n</IfUser>\n"
                       "<IfUser alice>\n  DisplayLogin b.msg\n</IfUser>\n", "ifuser")
    assert server.get("DisplayLogin") == "b.msg"


def test_accumulating_directives_add_up():
    server, _ = merged("HideFiles ^a\n<IfUser alice>\n  HideFiles ^b\n</IfUser>\n", "ifuser")
    assert [h.regex.pattern for h in server.context().all("HideFiles")] == ["^b", "^a"]


def test_merged_limits_are_consulted_first():
    server, _ = merged("<Limit MKD>\n  AllowAll\n</Limit>\n<IfUser alice>\n  <Limit MKD>\n    DenyAll\n"
                       "  </Limit>\n</IfUser>\n", "ifuser")
    first = next(iter(server.context().limits()))[1]
    assert first.first("DenyAll") is not None
