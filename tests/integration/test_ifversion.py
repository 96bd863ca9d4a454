"""<IfVersion> sections read by `proftpy -t` as Debian's ProFTPD 1.3.8 (with mod_ifversion, as its modules.conf
loads it) reads them: a section that applies holds an unknown directive, so each server's `-t` says whether it
read it; and the same mistakes refused by both."""

from __future__ import annotations

import subprocess

import pytest

from conftest import PROFTPD, configtest

CASES = [">= 1.3", "= 1.3.8", "> 1.3.8rc4", "< 1.3.8a", "< 1.3.8b", "1.3.8", "!= 1.3.8", "= /^1\\.3\\.8$/",
         "~ ^1.3", "~ ^1\\.3\\.[[:digit:]]$", "=< 1.3.8", ">> 1", "<= 1.2.10", "> 1.3.7z", "!> 1.3.9"]
MISTAKES = ["x 1.3", "= 1.3.x", "= /abc", "1.3.8 x y", "~ ("]


def section(words: str) -> str:
    return f"Port 0\n<IfVersion {words}>\nNoSuchDirective x\n</IfVersion>\n"


def proftpd(tmp_path, words: str) -> subprocess.CompletedProcess:
    conf = tmp_path / "p.conf"
    conf.write_text("ModulePath /usr/lib/proftpd\nLoadModule mod_ifversion.c\n" + section(words))
    return subprocess.run([PROFTPD, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("words", CASES)
def test_a_section_applies_where_it_does_on_proftpd(tmp_path, words):
    theirs = proftpd(tmp_path, words)
    ours = configtest(tmp_path, section(words))
    assert ("NoSuchDirective" in theirs.stderr) == ("unknown directive 'NoSuchDirective'" in ours.stderr), (
        theirs.stderr, ours.stderr)
    assert (ours.returncode == 0) == (theirs.returncode == 0)


@pytest.mark.parametrize("words", MISTAKES)
def test_mistakes_are_refused_by_both(tmp_path, words):
    theirs = proftpd(tmp_path, words)
    ours = configtest(tmp_path, section(words))
    assert theirs.returncode != 0 and "<IfVersion>:" in theirs.stderr
    assert ours.returncode == 1 and "t.conf:2: <IfVersion>: " in ours.stderr and "Traceback" not in ours.stderr
    reason = theirs.stderr.split("<IfVersion>: ")[1].split(" on line")[0]
    assert ours.stderr.split("<IfVersion>: ")[1].startswith(reason.split(":")[0]), (theirs.stderr, ours.stderr)


@pytest.mark.parametrize("words", ["~ ^1\\.2", "!~ ^1\\.2", "= /rc/"])
def test_a_pattern_that_does_not_match_skips_the_section(tmp_path, words):
    """ProFTPD 1.3.8 refuses the whole configuration there (`failed to match pattern`), even after `!`."""
    assert "failed to match pattern" in proftpd(tmp_path, words).stderr
    ours = configtest(tmp_path, section(words))
    assert ("unknown directive" in ours.stderr) is words.startswith("!"), ours.stderr


def test_if_module_mod_ifversion_holds(tmp_path):
    ours = configtest(tmp_path, "Port 0\n<IfModule mod_ifversion.c>\nNoSuchDirective x\n</IfModule>\n")
    assert "unknown directive 'NoSuchDirective'" in ours.stderr
