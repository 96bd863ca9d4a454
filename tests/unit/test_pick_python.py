"""scripts/pick-python.sh: the interpreter `make` builds the venv with. An optimised build under BUILT_PYTHONS
(default /opt/proftpy, where `make python` installs) comes first, the newest that runs; one that does not run is
passed over."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pick-python.sh"


def _fake(root: Path, version: str, runs: bool = True) -> Path:
    """An interpreter of `version` under root/python-VERSION/bin that answers the script's check with 0 or 1."""
    major_minor = ".".join(version.split(".")[:2])
    py = root / f"python-{version}" / "bin" / f"python{major_minor}"
    py.parent.mkdir(parents=True)
    py.write_text(f"#!/bin/sh\nexit {0 if runs else 1}\n")
    py.chmod(0o755)
    return py


def _pick(built: Path) -> str:
    return subprocess.run(["sh", str(SCRIPT)], env={"PATH": "/usr/bin:/bin", "BUILT_PYTHONS": str(built)},
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_newest_built_interpreter_comes_first(tmp_path):
    _fake(tmp_path, "3.12.9")
    newest = _fake(tmp_path, "3.13.10")
    _fake(tmp_path, "3.13.5")
    assert _pick(tmp_path) == str(newest)


def test_a_built_interpreter_that_does_not_run_is_passed_over(tmp_path):
    _fake(tmp_path, "3.13.5", runs=False)
    older = _fake(tmp_path, "3.12.9")
    assert _pick(tmp_path) == str(older)


def test_without_built_interpreters_a_system_one_is_picked(tmp_path):
    picked = _pick(tmp_path / "none")
    assert picked and not picked.startswith(str(tmp_path))
    assert subprocess.run([picked, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"]).returncode == 0
