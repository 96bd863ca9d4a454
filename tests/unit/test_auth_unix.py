"""mod_auth_unix backend (on copies of passwd/shadow/group), shell/ftpusers helpers, PAM stub."""
import logging
import os
import shutil
import tempfile
import time

import pytest

from proftpy.auth import AuthChain, Account
from proftpy.auth import pam as pam_mod
from proftpy.auth.crypt import crypt_hash
from proftpy.auth.unix import Shadow, UnixBackend, in_ftpusers, login_denial, shadow_refusal, valid_shell

TODAY = int(time.time() // 86400)
H = crypt_hash("upw")


@pytest.fixture
def system(tmp_path):
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "ursula:x:1500:1500:Ursula:/home/ursula:/bin/bash\n"
        f"inline:{H}:1501:1500::/home/inline:/bin/sh\n"
        "expired:x:1502:1500::/home/expired:/bin/bash\n"
        "noshadow:x:1503:1500::/home/n:/bin/bash\n"
        "broken line\n"
        "+nisuser::::::\n")
    (tmp_path / "shadow").write_text(
        "root:*:19000:0:99999:7:::\n"
        f"ursula:{H}:19000:0:99999:7:::\n"
        f"expired:{H}:19000:0:99999:7::{TODAY - 1}:\n")
    os.chmod(tmp_path / "shadow", 0o640)
    (tmp_path / "group").write_text(
        "root:x:0:\nusers:x:1500:\nftp:x:1600:ursula,inline\nadm:x:4:ursula\n")
    return UnixBackend(str(tmp_path / "passwd"), str(tmp_path / "shadow"),
                       str(tmp_path / "group"))


def test_passwd_and_shadow_lookup(system):
    u = system.getpwnam("ursula")
    assert u == Account("ursula", H, 1500, 1500, "Ursula", "/home/ursula", "/bin/bash",
                        "mod_auth_unix.c")
    assert system.getpwuid(1501).name == "inline"
    assert system.getpwnam("noshadow").passwd == "x"
    assert system.getpwnam("nisuser") is None
    assert system.getpwnam("missing") is None


def test_check_uses_shadow_and_expiry(system):
    assert system.check(system.getpwnam("ursula"), "upw")
    assert not system.check(system.getpwnam("ursula"), "bad")
    assert system.check(system.getpwnam("inline"), "upw")
    assert not system.check(system.getpwnam("expired"), "upw")
    assert not system.check(system.getpwnam("noshadow"), "x")
    assert not system.check(system.getpwnam("root"), "")


def test_groups(system):
    assert system.getgrnam("ftp").members == ("ursula", "inline")
    assert system.getgrgid(4).name == "adm"
    assert [g.gid for g in system.groups_for("ursula", 1500)] == [1500, 1600, 4]
    assert [g.gid for g in system.groups_for("nobody", 9999)] == []


def in_child_as_nobody(fn):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = 0 if fn() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop privileges in a child")
def test_shadow_unreadable_means_no_verification():
    d = tempfile.mkdtemp(prefix="proftpy-unix-")
    try:
        os.chmod(d, 0o755)
        for name, text, mode in (("passwd", "ursula:x:1500:1500::/h:/bin/sh\n", 0o644),
                                 ("shadow", f"ursula:{H}:19000:0:99999:7:::\n", 0o600),
                                 ("group", "users:x:1500:\n", 0o644)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(d, name), mode)
        backend = UnixBackend(*(os.path.join(d, n) for n in ("passwd", "shadow", "group")))

        def as_nobody():
            acct = backend.getpwnam("ursula")
            return acct.passwd == "x" and not backend.check(acct, "upw")
        assert in_child_as_nobody(as_nobody) == 0
        assert backend.check(backend.getpwnam("ursula"), "upw")     # root can read shadow
    finally:
        shutil.rmtree(d)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop privileges in a child")
def test_loaded_files_survive_losing_access(system):
    assert system.getpwnam("ursula").passwd == H           # loaded while root

    def as_nobody():
        # tmp_path is 0700 root: nothing can be opened now, the cached copy answers.
        return system.getpwnam("ursula").passwd == H and system.getgrgid(1600).name == "ftp"
    system.getgrgid(1600)
    assert in_child_as_nobody(as_nobody) == 0


def test_sample_hash_and_chain(system):
    assert system.sample_hash() == H
    chain = AuthChain([system])
    assert chain.authenticate("ursula", "upw").uid == 1500
    assert chain.authenticate("ursula", "nope") is None
    assert chain.authenticate("ghost", "upw") is None


def test_shadow_refusal_rules():
    assert shadow_refusal(Shadow("a", "h", 100, 10, 5, None), today=116) is not None
    assert shadow_refusal(Shadow("a", "h", 100, 10, 5, None), today=115) is None
    assert shadow_refusal(Shadow("a", "h", None, None, None, 50), today=50) == "account expired"
    assert shadow_refusal(Shadow("a", "h", 100, 99999, None, None), today=TODAY) is None


def test_valid_shell(tmp_path):
    shells = tmp_path / "shells"
    shells.write_text("# comment\n/bin/sh\n/bin/bash\n")
    assert valid_shell("/bin/bash", str(shells))
    assert not valid_shell("/bin/false", str(shells))
    assert valid_shell("", str(shells))                      # empty shell = /bin/sh
    assert valid_shell("/bin/sh", str(tmp_path / "missing"))
    assert not valid_shell("/bin/bash", str(tmp_path / "missing"))


def test_ftpusers(tmp_path):
    f = tmp_path / "ftpusers"
    f.write_text("# users refused\nroot\n  daemon  \nbin # trailing comment\n")
    assert in_ftpusers("root", str(f)) and in_ftpusers("daemon", str(f))
    assert in_ftpusers("bin", str(f))
    assert not in_ftpusers("alice", str(f)) and not in_ftpusers("#", str(f))
    assert not in_ftpusers("root", str(tmp_path / "missing"))


def test_login_denial_policies(tmp_path):
    shells = tmp_path / "shells"
    shells.write_text("/bin/sh\n")
    ftpusers = tmp_path / "ftpusers"
    ftpusers.write_text("banned\n")
    kw = dict(shells_file=str(shells), ftpusers_file=str(ftpusers))

    def a(name, uid=1000, shell="/bin/sh"):
        return Account(name, "h", uid, uid, "", "/h", shell, "mod_auth_unix.c")

    assert login_denial(a("ok"), **kw) is None
    assert login_denial(a("banned"), **kw) == f"User in {ftpusers}"      # ProFTPD's SystemLog texts
    assert login_denial(a("banned"), use_ftpusers=False, **kw) is None
    assert login_denial(a("x", shell="/bin/false"), **kw) == "Invalid shell: '/bin/false'"
    assert login_denial(a("x", shell="/bin/false"), require_valid_shell=False, **kw) is None
    assert login_denial(a("toor", uid=0), **kw) == "Root login attempted"
    assert login_denial(a("toor", uid=0), root_login=True, **kw) is None


def test_pam_unavailable_never_lets_a_login_through(system, caplog):
    backend = pam_mod.PamBackend(unix=system)
    backend.unavailable_reason = "PAM support needs the python-pam package"
    assert not backend.available
    with caplog.at_level(logging.ERROR):
        assert not backend.check(system.getpwnam("ursula"), "upw")
    assert "python-pam" in caplog.text
    assert backend.getpwnam("ursula") is None
    assert AuthChain([backend, system]).authenticate("ursula", "upw").source == "mod_auth_unix.c"


def test_pam_backend_delegates_lookups_and_declines(system):
    backend = pam_mod.PamBackend(service="ftp", unix=system)
    if not backend.available:
        pytest.skip(backend.unavailable_reason)
    assert backend.name == "mod_auth_pam.c"
    assert backend.getpwnam("ursula").uid == 1500
    assert backend.declines_on_failure
    assert not pam_mod.PamBackend(unix=system, authoritative=True).declines_on_failure


@pytest.mark.skipif(os.getuid() != 0, reason="chroot needs root")
def test_files_planted_inside_a_chroot_are_never_read(tmp_path):
    """After chroot, /etc/group inside the jail must not replace the real one."""
    jail = tmp_path / "jail"
    (jail / "etc").mkdir(parents=True)
    (jail / "etc" / "group").write_text("admins:x:10:mallory\n")
    real = tmp_path / "group"
    real.write_text("admins:x:10:alice\n")
    planted = UnixBackend(group_path="/etc/group")       # path as seen inside the jail
    loaded = UnixBackend(group_path=str(real))
    loaded.getgrgid(10)

    def in_jail():
        os.chroot(str(jail))
        os.chdir("/")
        return (planted.getgrnam("admins") is None
                and loaded.getgrnam("admins").members == ("alice",))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if in_jail() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
