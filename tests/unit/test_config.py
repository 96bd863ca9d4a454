"""The configuration language: syntax, errors with FILE:LINE, conditionals, includes and merge rules."""

import os

import pytest

from proftpy import modules
from proftpy.config.errors import ConfigError
from proftpy.config.lexer import read_lines, split_words
from proftpy.config.parser import parse_file, parse_ftpaccess, parse_text
from proftpy.config.errors import Where

REG = modules.registry()


def parse(text, **kw):
    return parse_text(text, REG, file="test.conf", **kw)


def error_of(text, **kw):
    with pytest.raises(ConfigError) as e:
        parse(text, **kw)
    return str(e.value)


# -- lexing -------------------------------------------------------------------------------------------------------
def test_quoted_words_keep_spaces_and_escapes():
    assert split_words('ServerName "My \\"big\\" server"', Where("f", 1)) == ["ServerName", 'My "big" server']


def test_inline_comment_ends_the_line():
    assert split_words("Port 21 # the port", Where("f", 1)) == ["Port", "21"]


def test_continuation_joins_lines_and_keeps_first_line_number():
    lines = read_lines("# c\nServerName \\\n  joined\nPort 21\n", "f")
    assert [(l.words, l.where.line) for l in lines] == [(["ServerName", "joined"], 2), (["Port", "21"], 4)]


def test_env_variables_are_expanded():
    c = parse("ServerName %{env:PROFTPY_T_NAME}\n", env={"PROFTPY_T_NAME": "from-env"})
    assert c.main.name == "from-env"


def test_unterminated_quote_is_an_error():
    assert error_of('ServerName "oops\n') == "test.conf:1: unterminated quoted string"


# -- errors -------------------------------------------------------------------------------------------------------
def test_unknown_directive_reports_file_and_line():
    assert error_of("Port 21\nNoSuchThing on\n") == "test.conf:2: unknown directive 'NoSuchThing'"


def test_bad_argument_reports_the_reason():
    assert error_of("\nPort 70000\n") == "test.conf:2: Port: 70000 is above 65535"


def test_directive_in_wrong_context():
    msg = error_of("<Directory /tmp>\n  Port 21\n</Directory>\n")
    assert msg == "test.conf:2: Port is not allowed in <Directory> context"


def test_unclosed_section():
    assert error_of("<Anonymous /srv/ftp>\nUser ftp\n") == "test.conf:1: <anon /srv/ftp> is not closed"


def test_mismatched_close():
    assert error_of("<Anonymous /srv>\n</Directory>\n") == "test.conf:2: unexpected </Directory>"


def test_unknown_section():
    assert error_of("<Nope>\n</Nope>\n") == "test.conf:1: unknown configuration section <nope>"


def test_duplicate_directory_is_fatal():
    msg = error_of("<Directory /a>\n</Directory>\n<Directory /a/>\n</Directory>\n")
    assert msg == "test.conf:3: <Directory /a/> is already defined at test.conf:1"


def test_directive_names_are_case_insensitive():
    assert parse("sErVeRnAmE x\n").main.name == "x"


# -- conditionals and includes ------------------------------------------------------------------------------------
def test_ifmodule_of_a_missing_module_skips_unknown_directives():
    c = parse("<IfModule mod_nonexistent.c>\n  Bogus 1\n</IfModule>\nServerName ok\n")
    assert c.main.name == "ok"


def test_negated_ifmodule_and_present_module():
    c = parse("<IfModule !mod_nonexistent.c>\nMaxInstances 5\n</IfModule>\n"
              "<IfModule mod_core.c>\nTCPBackLog 7\n</IfModule>\n")
    assert (c.main.get("MaxInstances"), c.main.get("TCPBackLog")) == (5, 7)


def test_ifdefine_with_define_and_command_line():
    text = "<IfDefine FAST>\nTCPBackLog 9\n</IfDefine>\n<IfDefine !FAST>\nTCPBackLog 3\n</IfDefine>\n"
    assert parse(text).main.get("TCPBackLog") == 3
    assert parse(text, defines={"FAST"}).main.get("TCPBackLog") == 9
    assert parse("Define FAST\n" + text).main.get("TCPBackLog") == 9


def test_nested_conditionals_are_skipped_whole():
    c = parse("<IfModule mod_x.c>\n<IfModule mod_y.c>\nBogus\n</IfModule>\nBogus2\n</IfModule>\nPort 5\n")
    assert c.main.get("Port") == 5


def test_include_file_glob_and_directory(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("ServerName included\n")
    (tmp_path / "conf.d" / "b.conf").write_text("TCPBackLog 11\n")
    (tmp_path / "extra.conf").write_text("MaxInstances 4\n")
    main = tmp_path / "main.conf"
    main.write_text("Include conf.d\nInclude extra.*\nInclude /nonexistent/*.conf\n")
    c = parse_file(str(main), REG)
    assert (c.main.name, c.main.get("TCPBackLog"), c.main.get("MaxInstances")) == ("included", 11, 4)


def test_include_options_as_proftpd(tmp_path):
    """Editor leftovers are read unless IgnoreTempFiles; a wildcard's symlinked directory gives nothing (a warning)
    unless AllowSymlinks; IgnoreWildcards refuses a wildcard in a directory name; a missing file is a warning."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.conf").write_text("ServerName A\n")
    (d / "a.conf~").write_text("TCPBackLog 7\n")
    (d / ".a.conf.swp").write_text("bogus\n")            # hidden: never matched by a wildcard
    (d / "b.swo").write_text("MaxInstances 3\n")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "r.conf").write_text("TimeoutIdle 99\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    main = tmp_path / "main.conf"

    def parsed(text: str):
        main.write_text(text)
        return parse_file(str(main), REG)
    c = parsed(f"Include {d}\nInclude {tmp_path}/link/*.conf\nInclude {tmp_path}/missing.conf\n")
    assert (c.main.name, c.main.get("TCPBackLog"), c.main.get("MaxInstances")) == ("A", 7, 3)
    assert c.main.get("TimeoutIdle") == 600
    assert any("Symbolic link; not included" in w for w in c.warnings)
    assert any("unable to include" in w and "missing.conf" in w for w in c.warnings)
    c = parsed(f"IncludeOptions IgnoreTempFiles AllowSymlinks\nInclude {d}\nInclude {tmp_path}/link/*.conf\n")
    assert (c.main.get("TCPBackLog"), c.main.get("MaxInstances"), c.main.get("TimeoutIdle")) == (128, None, 99)
    c = parsed(f"Include {d}/a.conf~\nIncludeOptions IgnoreTempFiles\nInclude {d}/a.conf~\n")
    assert c.main.get("TCPBackLog") == 7                   # a file named on its own is read, whatever its name
    with pytest.raises(ConfigError, match="wildcard patterns not allowed"):
        parsed(f"IncludeOptions IgnoreWildcards\nInclude {tmp_path}/*/*.conf\n")


def test_error_in_included_file_names_that_file(tmp_path):
    (tmp_path / "bad.conf").write_text("\n\nPort x\n")
    main = tmp_path / "main.conf"
    main.write_text("Include bad.conf\n")
    with pytest.raises(ConfigError) as e:
        parse_file(str(main), REG)
    assert str(e.value) == f"{tmp_path}/bad.conf:3: Port: 'x' is not a number"


def test_include_loop_is_reported(tmp_path):
    loop = tmp_path / "loop.conf"
    loop.write_text(f"Include {loop}\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_file(str(loop), REG)


# -- merging ------------------------------------------------------------------------------------------------------
def test_global_is_copied_into_every_server():
    c = parse("<Global>\nTimeoutIdle 42\n</Global>\n<VirtualHost 127.0.0.2>\nPort 2\n</VirtualHost>\n")
    assert [s.get("TimeoutIdle") for s in c.servers] == [42, 42]


def test_server_own_value_beats_global():
    c = parse("TimeoutIdle 10\n<Global>\nTimeoutIdle 42\n</Global>\n")
    assert c.main.get("TimeoutIdle") == 10


def test_virtual_hosts_do_not_inherit_the_main_server():
    c = parse("TimeoutIdle 10\nServerName main\n<VirtualHost 127.0.0.2>\n</VirtualHost>\n")
    assert (c.servers[1].get("TimeoutIdle"), c.servers[1].name) == (600, "ProFTPD")


def test_most_specific_directory_wins_for_merge_down():
    c = parse("Umask 022\n<Directory /srv>\nUmask 077\n</Directory>\n<Directory /srv/pub>\nUmask 002\n"
              "</Directory>\n")
    s = c.main
    assert s.context(path="/srv/pub/x").get("Umask")[0] == 0o002
    assert s.context(path="/srv/other").get("Umask")[0] == 0o077
    assert s.context(path="/elsewhere").get("Umask")[0] == 0o022


def test_directory_glob_and_contents_only():
    c = parse("<Directory /home/*/pub>\nUmask 077\n</Directory>\n<Directory /data/*>\nUmask 070\n</Directory>\n")
    s = c.main
    assert s.context(path="/home/alice/pub/f").get("Umask")[0] == 0o077
    assert s.context(path="/data/x").get("Umask")[0] == 0o070
    assert s.context(path="/data").get("Umask")[0] == 0o022


def test_tilde_directory_uses_home():
    c = parse("<Directory ~/up>\nUmask 077\n</Directory>\n")
    assert c.main.context(path="/home/bob/up/f", home="/home/bob").get("Umask")[0] == 0o077
    assert c.main.context(path="/home/bob/up/f").get("Umask")[0] == 0o022


def test_anonymous_settings_apply_inside_and_merge_down_from_server():
    c = parse("TimeoutIdle 50\n<Anonymous /srv/ftp>\nUser ftp\nUmask 077\n"
              "<Directory incoming>\nUmask 007\n</Directory>\n</Anonymous>\n")
    anon = c.main.anonymous()[0]
    ctx = c.main.context(anon=anon, path="/srv/ftp/incoming/f")
    assert ctx.get("Umask")[0] == 0o007
    assert ctx.get("TimeoutIdle") == 50
    assert c.main.context(anon=anon, path="/srv/ftp/f").get("Umask")[0] == 0o077


def test_server_only_directives_ignore_inner_contexts():
    c = parse("<Anonymous /srv/ftp>\nUser ftp\n</Anonymous>\nUser daemon\n")
    anon = c.main.anonymous()[0]
    assert c.main.context(anon=anon).get("User") == "daemon"
    assert anon.get("User") == "ftp"


def test_first_line_wins_within_one_context():
    assert parse("TimeoutIdle 1\nTimeoutIdle 2\n").main.get("TimeoutIdle") == 1


def test_limits_are_listed_innermost_first():
    c = parse("<Limit WRITE>\nDenyAll\n</Limit>\n<Directory /srv>\n<Limit STOR,RETR>\nAllowAll\n</Limit>\n"
              "</Directory>\n") if REG.get("DenyAll") else None
    if c is None:
        pytest.skip("Allow/Deny directives not registered")
    limits = [lim.args for _, lim in c.main.context(path="/srv/f").limits()]
    assert limits == [["STOR", "RETR"], ["WRITE"]]


def test_ftpaccess_section_matches_like_a_directory(tmp_path):
    dyn = parse_ftpaccess("Umask 077\n", str(tmp_path / ".ftpaccess"), "/srv/up", REG)
    c = parse("Umask 022\n")
    assert c.main.context(path="/srv/up/f", dynamic=[dyn]).get("Umask")[0] == 0o077
    assert c.main.context(path="/srv/down/f", dynamic=[dyn]).get("Umask")[0] == 0o022


def test_ftpaccess_refuses_server_directives(tmp_path):
    with pytest.raises(ConfigError, match=r"\.ftpaccess:1: Port is not allowed in \.ftpaccess context"):
        parse_ftpaccess("Port 21\n", str(tmp_path / ".ftpaccess"), "/srv", REG)


def test_sample_config_parses():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "conf")
    for name in ("proftpy.conf", "proftpy-dev.conf"):
        parse_file(os.path.join(root, name), REG, env={"PROFTPY_RUN": "/tmp"})
