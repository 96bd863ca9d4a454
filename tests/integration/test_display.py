"""Display files on the wire: DisplayConnect before the banner, DisplayLogin with 230, DisplayChdir with 250
(relative to the new directory, optionally once), DisplayQuit with 221."""

from __future__ import annotations

import os
import time

from conftest import PASSWORDS, error_reply


def own(d, path):
    os.chown(path, d.uid("alice"), d.users["alice"][1])


def test_display_connect_comes_before_the_banner(ftpd, tmp_path):
    msg = tmp_path / "connect.msg"
    msg.write_text("Welcome to %V\nBe nice\n")
    d = ftpd(f"DisplayConnect {msg}\n")
    welcome = d.connect().getwelcome()
    assert welcome.splitlines() == ["220-Welcome to proftpy test", " Be nice",
                                    "220 ProFTPD Server (proftpy test) [127.0.0.1]"]


def test_display_login_lines_lead_the_230(ftpd):
    d = ftpd("DefaultRoot ~\nDisplayLogin /welcome.msg\n")
    (d.home("alice") / "welcome.msg").write_text("Hello %U, you are in %C\n")
    ftp = d.connect()
    reply = ftp.login("alice", PASSWORDS["alice"])
    assert reply.splitlines() == ["230-Hello alice, you are in /", "230 User alice logged in"]


def test_display_chdir_is_read_in_the_new_directory(ftpd):
    d = ftpd("DefaultRoot ~\nDisplayChdir .message\n")
    sub = d.home("alice") / "sub"
    sub.mkdir()
    (sub / ".message").write_text("This is %C\n")
    ftp = d.login()
    assert ftp.sendcmd("CWD sub").splitlines() == ["250-This is /sub", "250 CWD command successful"]
    assert ftp.sendcmd("CWD /") == "250 CWD command successful"                  # no .message there
    assert ftp.sendcmd("CWD sub").splitlines()[0] == "250-This is /sub"         # shown every time


def test_display_chdir_once_shows_only_changes(ftpd):
    d = ftpd("DefaultRoot ~\nDisplayChdir .message on\n")
    sub = d.home("alice") / "sub"
    sub.mkdir()
    msg = sub / ".message"
    msg.write_text("news\n")
    ftp = d.login()
    assert ftp.sendcmd("CWD sub").splitlines()[0] == "250-news"
    ftp.sendcmd("CDUP")
    assert ftp.sendcmd("CWD sub") == "250 CWD command successful"
    ftp.sendcmd("CDUP")
    msg.write_text("more news\n")
    future = time.time() + 5
    os.utime(msg, (future, future))
    assert ftp.sendcmd("CWD sub").splitlines()[0] == "250-more news"


def test_display_quit_lines_are_the_221(ftpd, tmp_path):
    """As ProFTPD 1.3.8 sends them: the file replaces `221 Goodbye.`, its last line ends the reply."""
    msg = tmp_path / "bye.msg"
    msg.write_text("Goodbye %U\nsee you\n")
    d = ftpd(f"DisplayQuit {msg}\n")
    ftp = d.login()
    assert ftp.quit().splitlines() == ["221-Goodbye alice", "221 see you"]


def test_missing_display_file_is_silently_skipped(ftpd):
    d = ftpd("DisplayConnect /nonexistent/file\nDisplayQuit /nonexistent/bye\n")
    ftp = d.connect()
    assert ftp.getwelcome().startswith("220 ProFTPD Server")
    ftp.login("alice", PASSWORDS["alice"])
    assert ftp.quit() == "221 Goodbye."


def test_display_readme_names_the_files_after_login_and_each_cwd(ftpd):
    d = ftpd("DefaultRoot ~\nDisplayReadme README*\nDisplayReadme /NEWS\n")
    home = d.home("alice")
    (home / "sub").mkdir()
    for name in ("README", "sub/README.md", "NEWS"):
        (home / name).write_text("x\n")
    os.symlink("nowhere", home / "README.dangling")
    os.symlink("README.loop", home / "README.loop")
    week_ago = time.time() - 7 * 86400
    os.utime(home / "sub/README.md", (week_ago, week_ago))
    ftp = d.connect()
    lines = login = ftp.login("alice", PASSWORDS["alice"]).splitlines()
    assert lines[:3] == ["230-User alice logged in", " ", " Please read the file README"]   # as ProFTPD sends it
    assert lines[-2:] == [" Please read the file /NEWS", "230    it was last modified on "
                          f"{time.ctime((home / 'NEWS').stat().st_mtime)} - 0 days ago"]
    lines = ftp.sendcmd("CWD sub").splitlines()
    assert lines[:2] == ["250-CWD command successful", " Please read the file README.md"]
    assert lines[2] in (f"    it was last modified on {time.ctime(week_ago)} - {n} days ago" for n in (7, 8))
    assert lines[-1].startswith("250    it was last modified on ")          # /NEWS, from any directory
    assert ftp.sendcmd("CDUP").splitlines()[1] == " Please read the file README"
    assert error_reply(ftp, "CWD nothere") == "550 nothere: No such file or directory"   # nothing after a failure
    assert "Traceback" not in d.log() and "README.dangling" not in " ".join(login)     # nothing to stat: left out

