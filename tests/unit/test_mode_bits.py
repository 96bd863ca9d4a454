"""ProFTPD's own access check without mod_facl (`FACLEngine off`): the mode bits that apply, pooled."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from proftpy import fs


@pytest.fixture
def ids(monkeypatch):
    """This process as uid 1000, gid 100, supplementary groups 200 and 300."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "getegid", lambda: 100)
    monkeypatch.setattr(os, "getgroups", lambda: [200, 300])


def st(uid, gid, mode):
    return SimpleNamespace(st_uid=uid, st_gid=gid, st_mode=0o100000 | mode)


@pytest.mark.parametrize("owner, group, mode, want, allowed", [
    (1000, 1, 0o600, os.R_OK | os.W_OK, True),          # the owner's bits
    (1000, 1, 0o400, os.W_OK, False),
    (1000, 1, 0o004, os.R_OK, True),                    # an owner without the bit others have: pooled, allowed
    (1, 100, 0o040, os.R_OK, True),                     # the primary group's bits
    (1, 300, 0o020, os.W_OK, True),                     # a supplementary group's
    (1, 400, 0o070, os.R_OK, False),                    # not a member: the others' bits only
    (1, 1, 0o001, os.X_OK, True),
    (1, 1, 0o006, os.R_OK | os.X_OK, False),            # every asked bit must be there
    (1, 1, 0o777, 0, True),                             # F_OK: the file exists
])
def test_pooled_bits(ids, owner, group, mode, want, allowed):
    assert fs.mode_bits_allow(st(owner, group, mode), want) is allowed


def test_root_reads_and_writes_anything_but_executes_only_with_a_bit(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert fs.mode_bits_allow(st(5, 5, 0o000), os.R_OK | os.W_OK)
    assert not fs.mode_bits_allow(st(5, 5, 0o000), os.X_OK)
    assert fs.mode_bits_allow(st(5, 5, 0o001), os.X_OK)
