"""lftp mirrors a tree of ~100 files (empty, large, non-ASCII names) to and from the server, byte for byte."""

import filecmp
import os
import subprocess
from pathlib import Path


from conftest import IS_ROOT, PASSWORDS

NAMES = ["empty.txt", "café.txt", "日本語.bin", "with space.dat", "ünïcödé/ß.txt"]


def make_tree(root: Path) -> None:
    for i in range(90):
        d = root / f"dir{i % 6}" / (f"sub{i % 3}" if i % 2 else "")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:03}.txt").write_bytes(os.urandom(i * 97))
    for name in NAMES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"" if name == "empty.txt" else name.encode() * 50)
    (root / "large.bin").write_bytes(os.urandom(6 * 1024 * 1024 + 13))


def same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def lftp(d, script: str, cwd: Path) -> None:
    cmd = ["lftp", "-u", f"alice,{PASSWORDS['alice']}", "-p", str(d.port), "-e",
           "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; " + script + "; quit", d.host]
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_lftp_mirror_up_and_down(ftpd, tmp_path):
    d = ftpd("DefaultRoot ~\nAllowOverwrite on\n")
    local = tmp_path / "local"
    make_tree(local)
    lftp(d, "mirror -R local up", tmp_path)
    same_tree(local, d.home("alice") / "up")
    if IS_ROOT:
        assert all(p.stat().st_uid == d.uid("alice") for p in (d.home("alice") / "up").rglob("*"))
    back = tmp_path / "back"
    lftp(d, "mirror up back", tmp_path)
    same_tree(local, back)
