"""LIST/NLST/STAT against the real daemon with real clients (ftplib, curl, lftp, wget)."""

from __future__ import annotations

import ftplib
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import IS_ROOT, PASSWORDS

OLD = 1_000_000_000          # 2001-09-09 01:46:40 UTC: more than 180 days ago, so the year shows


def own(home: Path) -> None:
    """Give everything under a home to its owner (the suite may run as root)."""
    if not IS_ROOT:
        return
    st = os.stat(home)
    for root, dirs, files in os.walk(home):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), st.st_uid, st.st_gid)


def make_tree(home: Path) -> None:
    (home / "dir" / "sub").mkdir(parents=True)
    (home / "dir" / "inner.txt").write_bytes(b"inner")
    (home / "dir" / "sub" / "deep.txt").write_bytes(b"deep")
    (home / "a.txt").write_bytes(b"hello")
    (home / "b.txt").write_bytes(b"0123456789")
    (home / "c.bin").write_bytes(b"")
    (home / ".hidden").write_bytes(b"secret")
    os.utime(home / "a.txt", (OLD, OLD))
    os.symlink("a.txt", home / "link")
    own(home)


def listing(ftp: ftplib.FTP, cmd: str) -> list[str]:
    lines: list[str] = []
    ftp.retrlines(cmd, lines.append)
    return lines


def name_of(line: str) -> str:
    return line.split(" -> ")[0].split(None, 8)[-1]


@pytest.fixture
def server(ftpd):
    def start(extra: str = ""):
        d = ftpd(extra + "\nDefaultRoot ~")
        make_tree(d.home("alice"))
        return d
    return start


# -- LIST ----------------------------------------------------------------------------------------------------------
def test_list_uses_proftpd_line_format_and_names(server):
    ftp = server().login("alice")
    lines = listing(ftp, "LIST")
    assert [name_of(l) for l in lines] == ["a.txt", "b.txt", "c.bin", "dir", "link"]
    a = next(l for l in lines if name_of(l) == "a.txt")
    fields = a.split()
    assert fields[0] == "-rw-r--r--" and fields[1] == "1"
    assert fields[2:4] == (["alice", "ftpusers"] if IS_ROOT else fields[2:4])
    assert a.endswith("        5 Sep  9  2001 a.txt")
    assert a[:14] == "-rw-r--r--   1"
    b = next(l for l in lines if name_of(l) == "b.txt")
    assert b.split()[7].count(":") == 1                      # recent file: HH:MM instead of the year


def test_list_shows_symlink_target(server):
    ftp = server().login("alice")
    link = next(l for l in listing(ftp, "LIST") if l.startswith("l"))
    assert link.endswith(" link -> a.txt")


def test_show_symlinks_off_lists_the_target(server):
    ftp = server("ShowSymlinks off").login("alice")
    link = next(l for l in listing(ftp, "LIST") if name_of(l) == "link")
    assert link.startswith("-rw-") and " -> " not in link and "Sep  9  2001" in link


def test_dotfiles_hidden_unless_a(server):
    ftp = server().login("alice")
    assert ".hidden" not in [name_of(l) for l in listing(ftp, "LIST")]
    names = [name_of(l) for l in listing(ftp, "LIST -a")]
    assert names[:3] == [".", "..", ".hidden"]


def test_list_numeric_ids(server):
    d = server()
    ftp = d.login("alice")
    line = next(l for l in listing(ftp, "LIST -n") if name_of(l) == "a.txt")
    st = os.stat(d.home("alice") / "a.txt")
    assert line.split()[2:4] == [str(st.st_uid), str(st.st_gid)]


def test_list_one_per_line(server):
    ftp = server().login("alice")
    assert listing(ftp, "LIST -1") == ["a.txt", "b.txt", "c.bin", "dir", "link"]


def test_list_of_a_file_lists_that_file(server):
    ftp = server().login("alice")
    lines = listing(ftp, "LIST dir/inner.txt")
    assert len(lines) == 1 and lines[0].endswith(" dir/inner.txt")


def test_list_of_a_directory_lists_its_contents(server):
    ftp = server().login("alice")
    assert [name_of(l) for l in listing(ftp, "LIST dir")] == ["inner.txt", "sub"]
    assert [name_of(l) for l in listing(ftp, "LIST -d dir")] == ["dir"]


def test_list_recursive(server):
    ftp = server().login("alice")
    lines = listing(ftp, "LIST -R dir")
    assert [name_of(l) if l and not l.endswith(":") else l for l in lines] == [
        "inner.txt", "sub", "", "dir/sub:", "deep.txt"]


def test_list_missing_path_is_450(server):
    ftp = server().login("alice")
    with pytest.raises(ftplib.error_temp, match="^450 nothere: No such file or directory$"):
        listing(ftp, "LIST nothere")
    assert ftp.voidcmd("NOOP").startswith("200")


def test_list_glob(server):
    ftp = server().login("alice")
    assert [name_of(l) for l in listing(ftp, "LIST *.txt")] == ["a.txt", "b.txt"]
    assert [name_of(l) for l in listing(ftp, "LIST ?.bin")] == ["c.bin"]
    assert [name_of(l) for l in listing(ftp, "LIST [ab].txt")] == ["a.txt", "b.txt"]
    assert [name_of(l) for l in listing(ftp, "LIST dir/*.txt")] == ["dir/inner.txt"]


def test_use_globbing_off_takes_the_pattern_literally(server):
    ftp = server("UseGlobbing off").login("alice")
    with pytest.raises(ftplib.error_temp, match=r"^450 \*\.txt: No such file or directory"):
        listing(ftp, "LIST *.txt")


def test_list_options_default_and_strict(server):
    ftp = server('ListOptions "-a" strict').login("alice")
    names = [name_of(l) for l in listing(ftp, "LIST -1")]     # -1 ignored (strict), -a from ListOptions
    assert ".hidden" in names and "." in names
    assert all(" " in l for l in listing(ftp, "LIST -1"))


def test_list_options_maxdepth(server):
    ftp = server('ListOptions "" maxdepth 1').login("alice")
    assert listing(ftp, "LIST -R dir") == listing(ftp, "LIST dir")


def test_list_options_maxfiles(server):
    ftp = server('ListOptions "" maxfiles 2').login("alice")
    assert [name_of(l) for l in listing(ftp, "LIST")] == ["a.txt", "b.txt"]


def test_list_options_nlst_only_leaves_list_alone(server):
    ftp = server('ListOptions "-a" NLSTOnly').login("alice")
    assert ".hidden" not in [name_of(l) for l in listing(ftp, "LIST")]
    assert ".hidden" in ftp.nlst()


def test_list_options_no_error_if_absent(server):
    ftp = server('ListOptions "" NoErrorIfAbsent').login("alice")
    assert listing(ftp, "LIST nothere") == []
    assert ftp.nlst("nothere") == []


def test_listing_stays_inside_the_root(server):
    d = server()
    os.symlink("/etc", d.home("alice") / "etc")
    own(d.home("alice"))
    ftp = d.login("alice")
    assert [name_of(l) for l in listing(ftp, "LIST ../../..")] == ["a.txt", "b.txt", "c.bin", "dir", "etc", "link"]
    for path in ("etc/passwd", "etc/", "/etc/passwd"):      # /etc means <root>/etc: the link points at itself
        with pytest.raises(ftplib.error_temp, match="^450 "):
            listing(ftp, f"LIST {path}")
    assert "passwd" not in ftp.nlst("-a /")


def test_non_utf8_name_survives_list_then_retr(server):
    d = server()
    raw = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(d.home("alice")), raw), "wb") as f:
        f.write(b"latin-1 name")
    own(d.home("alice"))
    ftp = ftplib.FTP(encoding="latin-1", timeout=10)      # bytes in, same bytes out
    ftp.connect(d.host, d.port)
    ftp.login("alice", PASSWORDS["alice"])
    names = [name_of(l) for l in listing(ftp, "LIST")]
    wanted = raw.decode("latin-1")
    assert wanted in names
    got = bytearray()
    ftp.retrbinary("RETR " + wanted, got.extend)
    assert bytes(got) == b"latin-1 name"
    assert wanted in ftp.nlst()


# -- NLST ----------------------------------------------------------------------------------------------------------
def test_nlst_names(server):
    ftp = server().login("alice")
    assert sorted(ftp.nlst()) == ["a.txt", "b.txt", "c.bin", "dir", "link"]
    assert sorted(ftp.nlst("dir")) == ["dir/inner.txt", "dir/sub"]
    assert sorted(ftp.nlst("-a")) == [".", "..", ".hidden", "a.txt", "b.txt", "c.bin", "dir", "link"]
    assert ftp.nlst("a.txt") == ["a.txt"]
    assert sorted(ftp.nlst("*.txt")) == ["a.txt", "b.txt"]


def test_nlst_missing_path_is_450(server):
    ftp = server().login("alice")
    with pytest.raises(ftplib.error_temp, match="^450 nothere: No such file or directory$"):
        ftp.nlst("nothere")
    with pytest.raises(ftplib.error_temp, match="^450 No files found$"):
        ftp.nlst("*.zzz")


def test_sorted_nlst(server):
    d = server('ListOptions "" SortedNLST')
    for i in range(30):
        (d.home("alice") / f"n{i:02d}").write_bytes(b"")
    own(d.home("alice"))
    ftp = d.login("alice")
    names = ftp.nlst()
    assert names == sorted(names, key=lambda n: n.encode())


# -- STAT ----------------------------------------------------------------------------------------------------------
def test_stat_without_argument_is_server_status(server):
    ftp = server().login("alice")
    assert ftp.sendcmd("STAT").split("\n") == [
        "211-Status of 'proftpy test'",
        " Connected from 127.0.0.1 (127.0.0.1)",
        " Logged in as alice",
        " TYPE: ASCII, STRUcture: File, Mode: Stream",
        " No data connection",
        "211 End of status"]
    ftp.voidcmd("TYPE I")
    assert " TYPE: BINARY, STRUcture: File, Mode: Stream" in ftp.sendcmd("STAT").split("\n")


def test_stat_path_lists_over_the_control_connection(server):
    ftp = server().login("alice")
    lines = ftp.sendcmd("STAT a.txt").split("\n")
    assert lines[0] == "213-Status of a.txt:"
    assert lines[1].startswith(" -rw-r--r--") and lines[1].endswith(" Sep  9  2001 a.txt")
    assert lines[-1] == "213 End of status"
    lines = ftp.sendcmd("STAT dir").split("\n")
    assert lines[0] == "212-Status of dir:" and lines[-1] == "212 End of status"
    assert [name_of(l) for l in lines[1:-1]] == [".", "..", "inner.txt", "sub"]
    with pytest.raises(ftplib.error_temp, match="^450 nothere: No such file or directory"):
        ftp.sendcmd("STAT nothere")


def test_listing_needs_login(ftpd):
    d = ftpd()
    ftp = d.connect()
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp.sendcmd("STAT")


# -- other clients -------------------------------------------------------------------------------------------------
def _url(d, path=""):
    return f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{d.port}/{path}"


def test_curl_lists_directory_and_uses_nlst_for_list_only(server):
    d = server()
    out = subprocess.run(["curl", "-sS", "--max-time", "20", _url(d, "dir/")], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert [name_of(l) for l in out.stdout.splitlines()] == ["inner.txt", "sub"]
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "--list-only", "-v", _url(d)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "NLST" in out.stderr
    assert sorted(out.stdout.split()) == ["a.txt", "b.txt", "c.bin", "dir", "link"]


def _lftp(d, script):
    cmd = ["lftp", "-c", f"set net:max-retries 1; set net:timeout 10; set cmd:interactive false; "
           f"open -u alice,{PASSWORDS['alice']} -p {d.port} 127.0.0.1; {script}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_lftp_ls_and_cls(server):
    d = server()
    out = _lftp(d, "set ftp:use-mlsd off; ls dir")
    assert out.returncode == 0, out.stderr
    assert [name_of(l) for l in out.stdout.splitlines()] == ["inner.txt", "sub"]
    out = _lftp(d, "set ftp:use-mlsd off; cls -1")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == ["a.txt", "b.txt", "c.bin", "dir/", "link@"] or \
        sorted(out.stdout.split()) == ["a.txt", "b.txt", "c.bin", "dir/", "link"]


def test_wget_mirrors_a_small_tree(server, tmp_path):
    d = server()
    dest = tmp_path / "mirror"
    dest.mkdir()
    out = subprocess.run(["wget", "-q", "-r", "-nH", "--no-remove-listing", "-P", str(dest), "--tries=1",
                          "--timeout=20", _url(d, "dir/")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (dest / "dir" / "inner.txt").read_bytes() == b"inner"
    assert (dest / "dir" / "sub" / "deep.txt").read_bytes() == b"deep"
    assert (dest / "dir" / ".listing").exists()


# -- per-directory configuration -----------------------------------------------------------------------------------
def test_hide_files_hides_from_all_listings(server):
    ftp = server("<Directory {home}/alice>\nHideFiles \\.txt$\n</Directory>").login("alice")
    # `link` leads to a.txt: hidden with it, as ProFTPD checks where an entry leads too
    assert [name_of(l) for l in listing(ftp, "LIST")] == ["c.bin", "dir"]
    assert sorted(ftp.nlst()) == ["c.bin", "dir"]
    assert "a.txt" not in dict(ftp.mlsd()) and "link" not in dict(ftp.mlsd())
    # named, a hidden file has no entries (ProFTPD's answer); hiding is not a permission: RETR still works
    assert listing(ftp, "LIST a.txt") == [] and listing(ftp, "LIST link") == [] and ftp.nlst("a.txt") == []
    assert ftp.sendcmd("STAT a.txt").splitlines() == ["213-Status of a.txt:", "213 End of status"]
    assert ftp.sendcmd("MLST a.txt").splitlines() == ["250-Start of list for a.txt", "250 End of list"]
    assert "; /link" in ftp.sendcmd("MLST link")                 # MLST looks at the name only (mod_facts)
    assert ftp.retrbinary("RETR a.txt", lambda b: None).startswith("226")
    assert [name_of(l) for l in listing(ftp, "LIST dir")] == ["sub"]          # <Directory> covers subdirectories


def test_list_options_in_a_directory_block(server):
    ftp = server('<Directory {home}/alice/dir>\nListOptions "-a"\n</Directory>').login("alice")
    assert ".hidden" not in [name_of(l) for l in listing(ftp, "LIST")]
    ftp.cwd("dir")
    assert [name_of(l) for l in listing(ftp, "LIST")][:2] == [".", ".."]


def test_dir_fake_user_group_mode(server):
    ftp = server("DirFakeUser on ftp\nDirFakeGroup on ~\nDirFakeMode 0600").login("alice")
    line = next(l for l in listing(ftp, "LIST") if name_of(l) == "a.txt")
    assert line.startswith("-rw-------") and line.split()[2] == "ftp"
    d = next(l for l in listing(ftp, "LIST") if name_of(l) == "dir")
    assert d.startswith("drwx------")


def test_list_style_windows_is_read_by_real_clients(ftpd, tmp_path):
    """ListStyle Windows: curl shows IIS-style lines, lftp's mirror reads them (names, sizes, directories) and
    fetches the tree; dotfiles are never listed; NLST is unchanged."""
    d = ftpd("ListStyle Windows\nDefaultRoot ~\n")
    home = d.home("alice")
    (home / "sub dir").mkdir()
    (home / "sub dir" / "inner.bin").write_bytes(b"i" * 3000)
    (home / "top.txt").write_bytes(b"hello\n")
    (home / ".secret").write_bytes(b"x")
    url = f"ftp://alice:{PASSWORDS['alice']}@127.0.0.1:{d.port}/"
    listed = subprocess.run(["curl", "-sS", url], capture_output=True, text=True, timeout=30).stdout.splitlines()
    assert len(listed) == 2, listed
    assert listed[0].endswith("       <DIR>          sub dir") and listed[0][17:18] == " "
    assert re.fullmatch(r"\d\d-\d\d-\d\d  \d\d:\d\d[AP]M {20}6 top\.txt", listed[1]), listed[1]
    names = subprocess.run(["curl", "-sS", "-l", url], capture_output=True, text=True, timeout=30).stdout
    assert sorted(names.splitlines()) == ["sub dir", "top.txt"]
    out = tmp_path / "mirror"
    script = (f"set cmd:fail-exit yes; set ftp:use-mlsd no; open -u alice,{PASSWORDS['alice']} "   # LIST, not MLSD
              f"ftp://127.0.0.1:{d.port}; mirror / {out}")
    res = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (out / "sub dir" / "inner.bin").read_bytes() == b"i" * 3000
    assert (out / "top.txt").read_bytes() == b"hello\n"
    assert not (out / ".secret").exists()
