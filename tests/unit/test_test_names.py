"""The test folders have no __init__.py, so pytest imports each test file by its bare name: two files of one name
in tests/unit and tests/integration stop the whole suite at collection ("import file mismatch")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_name():
    names = Counter(p.name for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
    assert [name for name, n in names.items() if n > 1] == []
