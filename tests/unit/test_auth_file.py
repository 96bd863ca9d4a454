"""mod_auth_file backend and the AuthOrder chain (including failed-login timing)."""
import logging
import os
import statistics
import time

import pytest

from proftpy.auth import AuthChain, Account, Group, parse_auth_order
from proftpy.auth.crypt import crypt_hash
from proftpy.auth.file import (AuthFileError, AuthGroupFile, AuthUserFile, FileBackend,
                               parse_directive_args, parse_options)

HASH = {}


def pw_hash(pw, scheme="sha512"):
    key = (pw, scheme)
    if key not in HASH:
        HASH[key] = crypt_hash(pw, scheme)
    return HASH[key]


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


@pytest.fixture
def files(tmp_path):
    os.chmod(tmp_path, 0o700)
    users = write(tmp_path / "ftpd.passwd",
                  f"# comment\n\n"
                  f"alice:{pw_hash('apw')}:2001:3001:Alice A:/srv/ftp/alice:/bin/sh\n"
                  f"bob:{pw_hash('bpw')}:2002:3001::/home/bob:/bin/false\n"
                  f"carol:!{pw_hash('cpw')}:2003:3002::/srv/ftp/carol:/bin/sh\n"
                  f"root2:{pw_hash('rpw')}:0:0::/root:/bin/sh\n")
    groups = write(tmp_path / "ftpd.group",
                   "staff:x:3001:carol\nwww:x:3002:alice, bob\nadmins:x:10:\nshort:x:3003\n")
    return users, groups


def test_lookup_by_name_and_uid(files):
    users, groups = files
    fb = FileBackend(AuthUserFile(users), AuthGroupFile(groups))
    alice = fb.getpwnam("alice")
    assert alice == Account("alice", pw_hash("apw"), 2001, 3001, "Alice A", "/srv/ftp/alice",
                            "/bin/sh", "mod_auth_file.c")
    assert fb.getpwuid(2002).name == "bob"
    assert fb.getpwnam("nobody") is None
    assert fb.getgrnam("www") == Group("www", 3002, ("alice", "bob"))
    assert fb.getgrgid(3003) == Group("short", 3003, ())
    assert [g.name for g in fb.groups_for("alice", 3001)] == ["staff", "www"]
    assert [g.name for g in fb.groups_for("carol", 3002)] == ["www", "staff"]


def test_check_password(files):
    fb = FileBackend(AuthUserFile(files[0]))
    assert fb.check(fb.getpwnam("alice"), "apw")
    assert not fb.check(fb.getpwnam("alice"), "bpw")
    assert not fb.check(fb.getpwnam("carol"), "cpw")       # locked with '!'


def test_id_range_and_regex_restrictions(files):
    users, groups = files
    f = AuthUserFile(users, id_range=(2001, 2002))
    assert f.getpwnam("alice") and f.getpwnam("bob") and not f.getpwnam("carol")
    assert not f.getpwnam("root2")
    f = AuthUserFile(users, home_regex="!^/home")
    assert f.getpwnam("alice") and not f.getpwnam("bob")
    f = AuthUserFile(users, name_regex="^(alice|carol)$", home_regex="^/srv/ftp/")
    assert [a.name for a in f.accounts()] == ["alice", "carol"]
    g = AuthGroupFile(groups, id_range=(3000, 4000), name_regex="!^short")
    assert [x.name for x in g.groups()] == ["staff", "www"]


def test_changed_file_is_reread(files):
    users, _ = files
    f = AuthUserFile(users)
    assert f.getpwnam("dave") is None
    with open(users, "a") as fh:
        fh.write(f"dave:{pw_hash('dpw')}:2004:3001::/srv/ftp/dave:/bin/sh\n")
    assert f.getpwnam("dave").uid == 2004


def test_unchanged_file_is_not_reparsed(files, monkeypatch):
    f = AuthUserFile(files[0])
    f.getpwnam("alice")
    calls = []
    monkeypatch.setattr(f._cache, "_parse", lambda lines: calls.append(1))
    f.getpwnam("alice")
    assert calls == []


@pytest.mark.parametrize("mode,needle", [(0o644, "world-readable"), (0o602, "world-writable")])
def test_insecure_file_refused_unless_insecureperms(files, mode, needle, caplog):
    users, _ = files
    os.chmod(users, mode)
    f = AuthUserFile(users)
    with caplog.at_level(logging.ERROR):
        assert f.getpwnam("alice") is None
    assert needle in caplog.text
    assert any(needle in p for p in f.validate())
    assert AuthUserFile(users, options={"InsecurePerms"}).getpwnam("alice")


def test_world_writable_directory_refused(files, tmp_path):
    users, groups = files
    os.chmod(tmp_path, 0o777)
    try:
        assert AuthGroupFile(groups).getgrnam("www") is None
        assert "world-writable directory" in AuthUserFile(users).validate()[0]
    finally:
        os.chmod(tmp_path, 0o700)


def test_malformed_lines_are_skipped_with_a_warning(tmp_path, caplog):
    os.chmod(tmp_path, 0o700)
    path = write(tmp_path / "p", f"ok:{pw_hash('x')}:2001:2001::/srv:/bin/sh\n"
                                 "short:line\n"
                                 "baduid:x:abc:1::/srv:/bin/sh\n"
                                 "rel:x:2005:1::relative:/bin/sh\n")
    with caplog.at_level(logging.WARNING):
        f = AuthUserFile(path)
        assert [a.name for a in f.accounts()] == ["ok", "rel"]
    assert f"{path}:2: expected 7" in caplog.text
    assert f"{path}:3: user 'baduid': bad UID 'abc'" in caplog.text
    assert f.validate() == []


def test_syntaxcheck_reports_every_bad_line(tmp_path):
    os.chmod(tmp_path, 0o700)
    path = write(tmp_path / "p", "ok:x:2001:2001::/srv:/bin/sh\nshort:line\n"
                                 "rel:x:2005:1::relative:/bin/sh\n")
    f = AuthUserFile(path, options=parse_options(["SyntaxCheck"]))
    assert f.validate() == [f"{path}:2: expected 7 ':'-separated fields, found 2",
                            f"{path}:3: user 'rel': home directory 'relative' is not an "
                            "absolute path"]
    assert f.getpwnam("ok") is None
    with pytest.raises(AuthFileError):
        f.load()


def test_missing_file_declines_and_validates(tmp_path):
    f = AuthUserFile(str(tmp_path / "nope"))
    assert f.getpwnam("x") is None
    assert "unable to open AuthUserFile" in f.validate()[0]


def test_directive_argument_parsing():
    assert parse_directive_args("AuthUserFile", ["/etc/ftpd/passwd", "name", "^ftp", "home",
                                                 "!^/home", "id", "500-1000"]) == {
        "path": "/etc/ftpd/passwd", "name_regex": "^ftp", "home_regex": "!^/home",
        "id_range": (500, 1000)}
    assert parse_directive_args("AuthGroupFile", ["/g", "id", "2000-4000"]) == {
        "path": "/g", "id_range": (2000, 4000)}
    for bad in (["rel/path"], ["/g", "home", "x"], ["/g", "id", "5-1"], ["/g", "id"],
                ["/g", "id", "a-b"], []):
        with pytest.raises(ValueError):
            parse_directive_args("AuthGroupFile", bad)
    with pytest.raises(ValueError):
        AuthUserFile("/x", name_regex="(unclosed")
    with pytest.raises(ValueError):
        parse_options(["Bogus"])
    assert parse_options(["insecureperms", "SyntaxCheck"]) == {"InsecurePerms", "SyntaxCheck"}


# ---- AuthChain -----------------------------------------------------------------------------------

class FakeBackend:
    """A backend answering from a dict; records which calls reached it."""
    declines_on_failure = False
    uses_crypt = True

    def __init__(self, name, users, decline=False):
        self.name, self.users, self.calls = name, users, []
        self.declines_on_failure = decline

    def getpwnam(self, name):
        self.calls.append(name)
        return self.users.get(name)

    getpwuid = getgrnam = getgrgid = lambda self, x: None

    def groups_for(self, name, gid):
        return []

    def check(self, account, password):
        return password == account.passwd

    def sample_hash(self):
        return None


def acct(name, pw, source):
    return Account(name, pw, 2000, 2000, "", "/srv", "/bin/sh", source)


def test_chain_first_backend_that_knows_the_user_answers():
    a = FakeBackend("mod_auth_file.c", {"alice": acct("alice", "one", "a")})
    b = FakeBackend("mod_auth_unix.c", {"alice": acct("alice", "two", "b"),
                                        "bob": acct("bob", "bpw", "b")})
    chain = AuthChain(parse_auth_order(["mod_auth_file.c", "mod_auth_unix.c"],
                                       {a.name: a, b.name: b}))
    assert chain.authenticate("alice", "one").source == "a"
    assert chain.authenticate("alice", "two") is None      # file module's answer is final
    assert chain.authenticate("bob", "bpw").source == "b"
    assert chain.lookup("bob").source == "b"


def test_chain_required_module_stops_even_when_user_unknown():
    a = FakeBackend("mod_auth_file.c", {})
    b = FakeBackend("mod_auth_unix.c", {"bob": acct("bob", "bpw", "b")})
    chain = AuthChain(parse_auth_order(["mod_auth_file.c*", "mod_auth_unix.c"],
                                       {a.name: a, b.name: b}))
    assert chain.authenticate("bob", "bpw") is None
    assert chain.lookup("bob") is None
    assert b.calls == []


def test_chain_declining_module_lets_next_try_unless_required():
    a = FakeBackend("mod_auth_pam.c", {"bob": acct("bob", "pam", "a")}, decline=True)
    b = FakeBackend("mod_auth_unix.c", {"bob": acct("bob", "unix", "b")})
    chain = AuthChain([a, b])
    assert chain.authenticate("bob", "unix").source == "b"
    chain = AuthChain([(a, True), b])
    assert chain.authenticate("bob", "unix") is None


def test_auth_order_rejects_unknown_module():
    with pytest.raises(ValueError, match="mod_sql.c"):
        parse_auth_order(["mod_sql.c"], {})


def test_dummy_hash_follows_first_real_account(files, tmp_path):
    path = write(tmp_path / "y.passwd", f"y:{pw_hash('x', 'yescrypt')}:2001:1::/srv:/bin/sh\n")
    chain = AuthChain([FileBackend(AuthUserFile(path))])
    assert chain.dummy_hash.startswith("$y$")
    assert AuthChain([FileBackend(AuthUserFile(files[0]))]).dummy_hash.startswith("$6$")
    assert AuthChain([FakeBackend("x", {})]).dummy_hash.startswith("$6$")


def _medians_ms(n, *fns):
    """The median time of each function, measured in turns (a busy moment of the machine falls on all of them)."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(n):
        for fn, out in zip(fns, samples):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
    return [statistics.median(s) for s in samples]


def test_failed_login_costs_the_same_for_unknown_users(files):
    """Existing user + wrong password vs unknown user vs locked user: medians within 2x.

    Without the dummy verification the unknown-user case is ~100x faster (a dict miss).
    """
    chain = AuthChain([FileBackend(AuthUserFile(files[0]))])
    assert chain.authenticate("alice", "apw") is not None
    for _ in range(3):
        chain.authenticate("alice", "bad")
    wrong, unknown, locked = _medians_ms(41, lambda: chain.authenticate("alice", "bad"),
                                         lambda: chain.authenticate("nosuchuser", "bad"),
                                         lambda: chain.authenticate("carol", "cpw"))
    print(f"\nsha512 medians: wrong password {wrong:.3f} ms, unknown user {unknown:.3f} ms, "
          f"locked {locked:.3f} ms")
    assert 0.5 < unknown / wrong < 2.0
    assert 0.5 < locked / wrong < 2.0


def test_failed_login_timing_with_yescrypt(tmp_path):
    os.chmod(tmp_path, 0o700)
    path = write(tmp_path / "y", f"y:{pw_hash('ypw', 'yescrypt')}:2001:1::/srv:/bin/sh\n")
    chain = AuthChain([FileBackend(AuthUserFile(path))])
    wrong, unknown = _medians_ms(15, lambda: chain.authenticate("y", "bad"),
                                 lambda: chain.authenticate("nosuchuser", "bad"))
    print(f"\nyescrypt medians: wrong password {wrong:.3f} ms, unknown user {unknown:.3f} ms")
    assert 0.5 < unknown / wrong < 2.0
