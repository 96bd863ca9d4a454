"""ftpasswd: run main([...]) in a temp dir and check the files it leaves."""
import io
import os
import stat
import sys

import pytest

from proftpy.auth.crypt import crypt_verify
from proftpy.auth.file import AuthGroupFile, AuthUserFile
from proftpy.tools.ftpasswd import main


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """run(args, password=...) -> (exit code, stdout, stderr), cwd = a private temp dir."""
    os.chmod(tmp_path, 0o700)
    monkeypatch.chdir(tmp_path)

    def _run(args, password="secret"):
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        code = main(args)
        out, err = capsys.readouterr()
        return code, out, err
    return _run


ALICE = ["--passwd", "--name", "alice", "--uid", "2001", "--gid", "3001", "--home",
         "/srv/ftp/alice/", "--shell", "/bin/sh", "--gecos", "Alice A", "--stdin"]


def entries(path):
    with open(path) as f:
        return [line.split(":") for line in f.read().splitlines()]


def test_create_user_writes_default_file_with_verifiable_hash(run, tmp_path):
    code, out, err = run(ALICE, "s3cret")
    assert code == 0, err
    assert "creating passwd entry for user alice" in out and "entry created" in out
    [fields] = entries(tmp_path / "ftpd.passwd")
    assert fields[0] == "alice" and fields[2:] == ["2001", "3001", "Alice A", "/srv/ftp/alice",
                                                   "/bin/sh"]
    assert fields[1].startswith("$6$")
    assert crypt_verify("s3cret", fields[1]) and not crypt_verify("other", fields[1])
    mode = stat.S_IMODE(os.stat(tmp_path / "ftpd.passwd").st_mode)
    assert mode == 0o440
    assert AuthUserFile(str(tmp_path / "ftpd.passwd")).getpwnam("alice").uid == 2001


@pytest.mark.parametrize("flag,prefix", [("--md5", "$1$"), ("--sha256", "$5$"),
                                         ("--sha512", "$6$"), ("--bcrypt", "$2b$"),
                                         ("--yescrypt", "$y$")])
def test_hash_schemes(run, flag, prefix):
    code, out, _ = run(["--hash", "--stdin", flag], "pw")
    assert code == 0
    assert out.startswith("ftpasswd: " + prefix)
    assert crypt_verify("pw", out.split()[1])


def test_update_keeps_one_entry_sorted_by_uid(run, tmp_path):
    run(ALICE)
    run(["--passwd", "--name", "bob", "--uid", "1500", "--home", "/srv/bob", "--shell",
         "/bin/false", "--stdin", "--file", "ftpd.passwd"])
    code, out, _ = run(ALICE[:4] + ["2005"] + ALICE[5:], "new")
    assert code == 0 and "updating passwd entry for user alice" in out
    rows = entries(tmp_path / "ftpd.passwd")
    assert [(r[0], r[2], r[3]) for r in rows] == [("bob", "1500", "1500"),
                                                  ("alice", "2005", "3001")]
    assert crypt_verify("new", rows[1][1])


def test_missing_gid_defaults_to_uid_with_warning(run, tmp_path):
    code, _, err = run(["--passwd", "--name", "bob", "--uid", "1500", "--home", "/srv/bob",
                        "--shell", "/bin/sh", "--stdin"])
    assert code == 0 and "default gid set to uid" in err
    assert entries(tmp_path / "ftpd.passwd")[0][3] == "1500"


def test_change_password_lock_unlock_delete(run, tmp_path):
    run(ALICE, "one")
    path = tmp_path / "ftpd.passwd"
    code, _, err = run(["--passwd", "--name", "alice", "--change-password", "--stdin"], "one")
    assert code == 2 and "matches current password" in err
    assert run(["--passwd", "--name", "alice", "--change-password", "--stdin"], "two")[0] == 0
    assert crypt_verify("two", entries(path)[0][1])
    assert entries(path)[0][2:] == ["2001", "3001", "Alice A", "/srv/ftp/alice", "/bin/sh"]

    assert run(["--passwd", "--name", "alice", "--lock"])[0] == 0
    assert entries(path)[0][1].startswith("!$6$")
    assert AuthUserFile(str(path)).getpwnam("alice").passwd.startswith("!")
    assert not crypt_verify("two", entries(path)[0][1])
    run(["--passwd", "--name", "alice", "--lock"])
    assert entries(path)[0][1].startswith("!$6$")           # not "!!"
    assert run(["--passwd", "--name", "alice", "--unlock"])[0] == 0
    assert crypt_verify("two", entries(path)[0][1])

    code, out, _ = run(["--passwd", "--name", "alice", "--delete-user"])
    assert code == 0 and "entry deleted" in out
    assert entries(path) == []
    code, _, err = run(["--passwd", "--name", "alice", "--delete-user"])
    assert code == 1 and "no such user alice" in err


def test_group_create_update_delete(run, tmp_path):
    code, out, _ = run(["--group", "--name", "www", "--gid", "3002", "--member", "alice",
                        "-m", "bob,carol"])
    assert code == 0 and "creating group entry for group www" in out
    run(["--group", "--name", "staff", "--gid", "3001"])
    path = tmp_path / "ftpd.group"
    assert path.read_text() == "staff:x:3001:\nwww:x:3002:alice,bob,carol\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o440
    g = AuthGroupFile(str(path)).getgrnam("www")
    assert g.members == ("alice", "bob", "carol")
    run(["--group", "--name", "www", "--gid", "3002", "-m", "dave"])
    assert path.read_text() == "staff:x:3001:\nwww:x:3002:dave\n"
    assert run(["--group", "--name", "staff", "--delete-group"])[0] == 0
    assert path.read_text() == "www:x:3002:dave\n"


def test_force_starts_a_new_file(run, tmp_path):
    run(ALICE)
    run(["--passwd", "--name", "bob", "--uid", "1500", "--home", "/srv/bob", "--shell",
         "/bin/sh", "--stdin", "-F"])
    assert [r[0] for r in entries(tmp_path / "ftpd.passwd")] == ["bob"]


@pytest.mark.parametrize("args,code,needle", [
    ([], 1, "missing required --passwd"),
    (["--passwd", "--group"], 1, "please use *one*"),
    (["--passwd", "--uid", "1"], 1, "missing required argument: --name"),
    (["--passwd", "--name", "x", "--uid", "1", "--shell", "/bin/sh", "--stdin"], 1, "--home"),
    (["--passwd", "--name", "x", "--uid", "1", "--home", "rel/dir", "--shell", "/bin/sh",
      "--stdin"], 8, "relative path given for home directory"),
    (["--passwd", "--name", "x", "--uid", "abc"], 1, "invalid int value"),
    (["--group", "--name", "g"], 1, "missing required argument: --gid"),
    (["--passwd", "--bogus"], 1, "unrecognized arguments"),
    (["--hash", "--md5", "--sha512"], 1, "not allowed with"),
    (["--passwd", "--name", "a:b", "--uid", "1"], 1, "must not contain ':'"),
])
def test_errors_are_one_line_on_stderr(run, args, code, needle):
    rc, out, err = run(args)
    assert rc == code
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unwritable_directory_is_a_clean_error(run, tmp_path):
    if os.getuid() == 0:
        target = "/proc/ftpd.passwd"            # not writable even for root
    else:
        os.chmod(tmp_path, 0o500)
        target = str(tmp_path / "x")
    rc, _, err = run(ALICE + ["--file", target])
    assert rc == 1 and "unable to" in err and "Traceback" not in err


def test_help_and_version_exit_zero(run):
    rc, out, _ = run(["--help"])
    assert rc == 0 and "--passwd" in out
    rc, out, _ = run(["--version"])
    assert rc == 0 and "proftpy" in out


def test_not_system_password(run, monkeypatch):
    import proftpy.tools.ftpasswd as tool
    from proftpy.auth.crypt import crypt_hash
    monkeypatch.setattr(tool, "system_hash", lambda name: crypt_hash("sys"))
    if os.geteuid() != 0:
        assert run(ALICE + ["--not-system-password"], "sys")[0] == 1
        return
    rc, _, err = run(ALICE + ["--not-system-password"], "sys")
    assert rc == 4 and "matches system password" in err
    assert run(ALICE + ["--not-system-password"], "different")[0] == 0
