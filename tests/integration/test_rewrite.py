"""mod_rewrite against the real daemon, driven by ftplib: rules on uploads, directories and listings, conditions on
%m and %u, [NC], [OR], chained conditions, int: and txt: maps, RewriteMaxReplace, RewriteEngine per server,
RewriteHome, the chroot holding against a rewritten path, the logs showing the rewritten name, and configuration
errors."""

from __future__ import annotations

import io
import os

import pytest

from conftest import make_file, refused_config
from conftest import error_reply as err

ENGINE = "RewriteEngine on\nRewriteLog {dir}/rewrite.log\n"
SPACES = (ENGINE + "RewriteMap replace int:replaceall\nRewriteCondition %m STOR\n"
          'RewriteRule ^(.*) "${replace:/$1/ /_}"\n')


def put(ftp, name: str, data: bytes = b"data\n") -> str:
    return ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def made(ftp, name: str) -> str:
    """The directory `MKD name` created, as its 257 reply names it."""
    reply = ftp.sendcmd(f"MKD {name}")
    assert reply.startswith('257 "') and reply.endswith('" - Directory successfully created'), reply
    return reply.split('"')[1]


def test_upload_with_spaces_is_stored_with_underscores(ftpd):
    d = ftpd("DefaultRoot ~\n" + SPACES)
    ftp = d.login()
    assert put(ftp, "my new file.txt").startswith("226")
    assert (d.home("alice") / "my_new_file.txt").read_bytes() == b"data\n"
    assert not (d.home("alice") / "my new file.txt").exists()
    assert "my_new_file.txt" in ftp.nlst()
    assert "RewriteRule" in (d.dir / "rewrite.log").read_text()


def test_rule_applies_only_to_the_command_its_condition_names(ftpd):
    d = ftpd("DefaultRoot ~\n" + SPACES)
    make_file(d, "a b.txt", b"x")
    ftp = d.login()
    ftp.voidcmd("TYPE I")
    assert ftp.size("a b.txt") == 1                     # SIZE is not rewritten: the real name is found


def test_tolower_map_lowercases_new_directories(ftpd):
    d = ftpd("DefaultRoot ~\n" + ENGINE + "RewriteMap lower int:tolower\nRewriteCondition %m ^X?MKD$\n"
             "RewriteRule ^(.*)$ ${lower:$1}\n")
    ftp = d.login()
    assert ftp.sendcmd("MKD MixedCase") == '257 "/mixedcase" - Directory successfully created'
    assert (d.home("alice") / "mixedcase").is_dir()


def test_txt_map_and_its_default(ftpd, tmp_path):
    mapfile = tmp_path / "names.map"
    mapfile.write_text("# renames\nreport.txt  2024-report.txt\nbad-line-without-value\n")
    d = ftpd("DefaultRoot ~\n" + ENGINE + f"RewriteMap names txt:{mapfile}\nRewriteCondition %m STOR\n"
             "RewriteRule ^(.*)$ ${names:$1|other-$1}\n")
    ftp = d.login()
    put(ftp, "report.txt")
    put(ftp, "notes.txt")
    assert sorted(ftp.nlst()) == ["2024-report.txt", "other-notes.txt"]


def test_unreadable_txt_map_gives_the_default(ftpd, tmp_path):
    d = ftpd("DefaultRoot ~\n" + ENGINE + f"RewriteMap names txt:{tmp_path}/missing.map\n"
             "RewriteCondition %m STOR\nRewriteRule ^(.*)$ ${names:$1|dflt-$1}\n")
    ftp = d.login()
    put(ftp, "x.txt")
    assert ftp.nlst() == ["dflt-x.txt"]


@pytest.mark.parametrize("rules, alice, bob", [
    ("RewriteCondition %u ^bob$\nRewriteRule ^(.*)$ bob-$1\n", "/d", "/bob-d"),
    # chained conditions; %1 is the last condition's group
    ("RewriteCondition %m ^MKD$\nRewriteCondition %u ^(a)lice$\nRewriteRule ^(.*)$ %1-$1\n", "/a-d", "/d"),
])
def test_conditions_on_the_user(ftpd, rules, alice, bob):
    d = ftpd("DefaultRoot ~\n" + ENGINE + rules)
    assert made(d.login("alice"), "d") == alice
    assert made(d.login("bob"), "d") == bob


def test_nocase_rule_and_condition(ftpd):
    d = ftpd("DefaultRoot ~\n" + ENGINE + "RewriteCondition %m mkd [NC]\nRewriteRule ^(.*)\\.TXT$ $1.text [NC]\n")
    ftp = d.login()
    assert ftp.sendcmd("MKD a.txt") == '257 "/a.text" - Directory successfully created'


def test_or_conditions(ftpd):
    d = ftpd("DefaultRoot ~\n" + ENGINE + "RewriteCondition %m ^MKD$ [OR]\nRewriteCondition %m ^STOR$\n"
             "RewriteRule ^x-(.*)$ y-$1\n")
    ftp = d.login()
    assert ftp.sendcmd("MKD x-1") == '257 "/y-1" - Directory successfully created'
    put(ftp, "x-2")
    assert sorted(ftp.nlst()) == ["y-1", "y-2"]
    assert err(ftp, "RMD x-1") == "550 x-1: No such file or directory"    # RMD: neither condition holds


def test_last_flag_stops_the_rules(ftpd):
    d = ftpd("DefaultRoot ~\n" + ENGINE + "RewriteRule ^a$ b [L]\nRewriteRule ^b$ c\n")
    ftp = d.login()
    assert ftp.sendcmd("MKD a") == '257 "/b" - Directory successfully created'
    assert ftp.sendcmd("MKD b") == '257 "/c" - Directory successfully created'


def test_max_replace_leaves_a_name_with_too_many_spaces(ftpd):
    d = ftpd("DefaultRoot ~\n" + SPACES + "RewriteMaxReplace 3\n")
    ftp = d.login()
    put(ftp, "a b c d")                 # three spaces: replaced
    put(ftp, "a b c d e")               # four: the map gives nothing, an empty argument is not used
    assert sorted(ftp.nlst()) == ["a b c d e", "a_b_c_d"]


def test_engine_off_in_a_virtual_host(ftpd):
    rule = "RewriteCondition %m MKD\nRewriteRule ^(.*)$ {0}-$1\n"
    d = ftpd("DefaultRoot ~\n" + ENGINE + rule.format("main") + "<VirtualHost 127.0.0.2>\nPort {port}\n"
             "RewriteEngine off\n" + rule.format("vhost") + "DefaultRoot ~\nAuthOrder mod_auth_file.c\n"
             "AuthUserFile {dir}/ftpd.passwd\nAuthGroupFile {dir}/ftpd.group\n</VirtualHost>\n")
    ftp = d.login()
    assert ftp.sendcmd("MKD d") == '257 "/main-d" - Directory successfully created'
    d.host = "127.0.0.2"
    vhost = d.login()
    assert vhost.sendcmd("MKD e") == '257 "/e" - Directory successfully created'


def test_directory_rules_apply_in_that_directory(ftpd):
    d = ftpd("DefaultRoot ~\n" + ENGINE + "<Directory {home}/alice/up>\nRewriteRule ^(.*)$ in-up-$1\n</Directory>\n")
    make_file(d, "up/.keep")
    ftp = d.login()
    assert ftp.sendcmd("MKD a") == '257 "/a" - Directory successfully created'
    ftp.cwd("up")
    assert ftp.sendcmd("MKD b") == '257 "/up/in-up-b" - Directory successfully created'


def test_rewritten_path_stays_in_the_chroot(ftpd):
    d = ftpd("DefaultRoot ~\n" + ENGINE + "RewriteCondition %m RETR\nRewriteRule ^(.*)$ ../../../../../etc/passwd\n")
    make_file(d, "etc/passwd", b"inside\n")
    ftp = d.login()
    ftp.cwd("/")
    got = io.BytesIO()
    ftp.retrbinary("RETR anything", got.write)
    assert got.getvalue() == b"inside\n"


def test_transfer_log_shows_the_rewritten_name(ftpd):
    d = ftpd("DefaultRoot ~\nTransferLog {dir}/xferlog\n"
             "LogFormat paths \"%m %f %F %r\"\nExtendedLog {dir}/ext.log ALL paths\n" + SPACES)
    ftp = d.login()
    put(ftp, "a b")
    ftp.quit()
    assert "/a_b b _ i r alice ftp 0 * c" in (d.dir / "xferlog").read_text()
    assert f"STOR {d.home('alice')}/a_b /a_b STOR a_b" in (d.dir / "ext.log").read_text()


def test_rewrite_home(ftpd, tmp_path):
    d = ftpd("DefaultRoot ~\nRewriteHome on\n" + ENGINE + "RewriteCondition %m REWRITE_HOME\n"
             "RewriteRule ^(.*)$ $1-ftp\n")
    other = tmp_path / "home" / "alice-ftp"
    other.mkdir()
    os.chown(other, d.uid("alice"), d.users["alice"][1])
    (other / "inside.txt").write_text("x")
    ftp = d.login()
    assert ftp.pwd() == "/"
    assert ftp.nlst() == ["inside.txt"]


def test_no_engine_no_rewriting(ftpd):
    d = ftpd("DefaultRoot ~\nRewriteRule ^(.*)$ x-$1\n")
    ftp = d.login()
    assert ftp.sendcmd("MKD d") == '257 "/d" - Directory successfully created'


@pytest.mark.parametrize("line, message", [
    ("RewriteRule ^a", "bad number of parameters"),
    ("RewriteRule ^a b NC", "badly formatted flags parameter"),
    ("RewriteRule (a b", "unable to compile '(a' regex"),
    ("RewriteCondition %m STOR [XX]", "unknown RewriteCondition flags '[XX]'"),
    ("RewriteCondition %m %P", "illegal RewriteCondition variable used"),
    ("RewriteMap m bogus:x", "invalid RewriteMap map type: 'bogus'"),
    ("RewriteMap m tolower", "invalid RewriteMap parameter: 'tolower'"),
    ("RewriteMap m int:nosuch", "unknown internal map function requested: 'nosuch'"),
    ("RewriteMap m txt:relative", "txt: absolute path required"),
    ("RewriteMap m fifo:relative", "fifo: absolute path required"),
    ("RewriteMap m fifo:/nonexistent/f", "fifo: error stat'ing '/nonexistent/f': No such file or directory"),
    ("RewriteMap m fifo:/etc/passwd", "fifo: error: '/etc/passwd' is not a FIFO"),
    ("RewriteMaxReplace 0", "count must be greater than zero"),
    ("RewriteLog relative.log", "absolute path required"),
    ("<Directory /x>\nRewriteEngine on\n</Directory>", "RewriteEngine"),
])
def test_bad_configuration_is_refused(tmp_path, line, message):
    stderr = refused_config(tmp_path, line)
    assert "t.conf:" in stderr and message in stderr, stderr


def test_variables_in_what_the_client_sent_are_expanded_as_proftpd_does(ftpd):
    d = ftpd("DefaultRoot ~\n" + ENGINE + "RewriteCondition %m MKD\nRewriteRule ^(.*)$ $1\n")
    assert made(d.login(), "%u-dir") == "/alice-dir"
