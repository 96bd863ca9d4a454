"""Scoreboard: layout, validation, security refusals, and many real processes claiming at once."""
import fcntl
import os
import select
import signal
import struct
import time

import pytest

from proftpy import scoreboard as sbm
from proftpy.scoreboard import Scoreboard, ScoreboardError, ScoreboardFormatError


@pytest.fixture
def sbdir(tmp_path):
    d = tmp_path / "run"
    d.mkdir(mode=0o755)
    return d


@pytest.fixture
def sb(sbdir):
    board = Scoreboard.create(str(sbdir / "sb"), master_pid=4321, master_start=1_700_000_000, slots=4)
    yield board
    board.close()


def test_layout_is_little_endian_and_fixed():
    assert sbm.HEADER.size == 64
    assert sbm.SLOT.format.startswith("<")
    assert sbm.SLOT.size % 8 == 0
    assert sbm.SLOT.size == sum(f.size for f in sbm.SLOT_FIELDS) + (-sum(f.size for f in sbm.SLOT_FIELDS) % 8)
    sizes = {f.name: f.size for f in sbm.SLOT_FIELDS}
    assert (sizes["user"], sizes["server_addr"], sizes["client_addr"], sizes["cmd"], sizes["cmd_arg"]) == \
        (32, 80, 46, 65, 80)


def test_create_writes_header_and_mode(sb, sbdir):
    st = os.stat(sbdir / "sb")
    assert st.st_mode & 0o777 == 0o644
    assert st.st_size == sbm.HEADER.size + 4 * sbm.SLOT.size
    h = sb.header
    assert (h.version, h.master_pid, h.master_start, h.slots) == (sbm.VERSION, 4321, 1_700_000_000, 4)
    assert sb.entries() == []
    assert (sbdir / "sb.lck").exists()


def test_claim_update_release_roundtrip(sb):
    slot = sb.claim(os.getpid(), client_addr="192.0.2.7", client_name="host.example", server_port=21,
                    protocol="ftp", **{"class": "internal"})
    slot.update(user="alice", cwd="/home/alice")
    slot.command("RETR", "big.iso")
    slot.begin_transfer(size=1000)
    assert slot.update_transfer(500, 2000, force=True)
    [e] = sb.entries()
    assert (e.slot, e.pid, e.user, e.cwd, e.cmd, e.cmd_arg, e.class_) == \
        (0, os.getpid(), "alice", "/home/alice", "RETR", "big.iso", "internal")
    assert (e.xfer_size, e.xfer_done, e.xfer_len, e.xfer_elapsed_ms) == (1000, 500, 500, 2000)
    assert e.uid == os.geteuid() and e.begin_session > 0 and e.downloading and e.authenticated
    slot.idle(now=123)
    [e] = sb.entries()
    assert (e.cmd, e.cmd_arg, e.begin_idle, e.idle) == ("idle", "", 123, True)
    slot.release()
    slot.release()
    assert sb.entries() == []


def test_first_free_slot_is_reused_and_file_grows(sb):
    me = os.getpid()
    slots = [sb.claim(me) for _ in range(6)]
    assert [s.index for s in slots] == list(range(6))
    assert sb.header.slots >= 6
    slots[2].release()
    assert sb.claim(me).index == 2


def test_unknown_field_and_pid_are_refused(sb):
    with pytest.raises(TypeError):
        sb.claim(os.getpid(), colour="red")
    slot = sb.claim(os.getpid())
    with pytest.raises(TypeError):
        slot.update(pid=1)


@pytest.mark.parametrize("text,size,expected", [
    ("abc", 4, b"abc"),
    ("abcd", 4, b"abc"),
    ("é" * 20, 32, "é".encode() * 15),          # 2-byte chars: 31 bytes available, 15 whole chars
    ("a€€€", 8, "a€€".encode()),                # 3-byte chars: cut before the third one
    ("😀😀", 8, "😀".encode()),
])
def test_text_truncation_never_splits_a_character(text, size, expected):
    raw = sbm.encode_text(text, size)
    assert raw == expected
    raw.decode("utf-8")                          # strict: whole characters only


def test_long_values_are_truncated_in_the_file(sb):
    slot = sb.claim(os.getpid(), cmd_arg="ü" * 100)
    [e] = sb.entries()
    assert e.cmd_arg == "ü" * 39
    slot.release()


def test_unchanged_slot_is_not_written_again(sb, monkeypatch):
    """A listing's transfer begins and ends with the zeros the slot holds: no write, the file is the same."""
    slot = sb.claim(os.getpid(), client_addr="192.0.2.7")
    writes = []
    real = slot._publish
    monkeypatch.setattr(slot, "_publish", lambda raw: (writes.append(raw), real(raw)))
    slot.command("LIST", "")
    slot.begin_transfer()
    slot.end_transfer()
    slot.command("LIST", "")
    assert len(writes) == 1
    assert sb.entries()[0].cmd == "LIST"
    slot.idle(now=1_700_000_000)
    slot.begin_transfer(size=5)
    assert len(writes) == 3
    assert (sb.entries()[0].cmd, sb.entries()[0].xfer_size) == ("idle", 5)


def test_packed_fields_kept_per_slot_stay_right(sb):
    """A slot keeps the bytes of the values it packed (the same commands again and again): past PACKED_KEEP
    distinct values, and back to a value packed before, the file still holds what was written last, crc intact."""
    slot = sb.claim(os.getpid())
    for i in range(sbm.PACKED_KEEP + 10):
        slot.command("RETR", f"file{i}")
        slot.idle(now=1_700_000_000 + i)
    slot.command("LIST", "-la")
    slot.command("RETR", "file3")
    [e] = sb.entries()
    assert (e.cmd, e.cmd_arg, e.begin_idle) == ("RETR", "file3", 1_700_000_000 + sbm.PACKED_KEEP + 9)
    assert len(slot._packed) <= sbm.PACKED_KEEP
    _, data = sb._read_all()
    assert sbm.intact(data[slot.index * sbm.SLOT.size:(slot.index + 1) * sbm.SLOT.size])


def test_transfer_updates_are_rate_limited(sb):
    slot = sb.claim(os.getpid())
    slot.throttle = sbm.TransferThrottle(every_buffers=10, min_interval_ms=0)
    slot.begin_transfer(size=100)
    written = [slot.update_transfer(i, i) for i in range(1, 31)]
    assert written.count(True) == 3
    slot.throttle = sbm.TransferThrottle(every_buffers=1, min_interval_ms=60_000)
    slot.begin_transfer(size=100)
    assert not any(slot.update_transfer(i, i) for i in range(50))
    assert slot.update_transfer(77, 5, force=True)
    assert sb.entries()[0].xfer_done == 77


def _write_header(path, **changes):
    with open(path, "r+b") as f:
        raw = bytearray(f.read(sbm.HEADER.size))
        values = list(sbm.HEADER.unpack(bytes(raw)))
        names = [fl.name for fl in sbm.HEADER_FIELDS]
        for k, v in changes.items():
            values[names.index(k)] = v
        f.seek(0)
        f.write(sbm.HEADER.pack(*values))


@pytest.mark.parametrize("change,message", [
    ({"magic": b"XXXXXXXX"}, "bad magic"),
    ({"version": sbm.VERSION - 1}, "too old"),
    ({"version": sbm.VERSION + 1}, "too new"),
])
def test_bad_header_is_refused_clearly(sb, sbdir, change, message):
    _write_header(sbdir / "sb", **change)
    with pytest.raises(ScoreboardFormatError, match=message):
        Scoreboard.open(str(sbdir / "sb"), readonly=True)


def test_proftpd_scoreboard_is_recognised(sbdir):
    (sbdir / "c").write_bytes(struct.pack("<QQ", 0xDEADBEEF, 0x01040003) + bytes(100))
    with pytest.raises(ScoreboardFormatError, match="ProFTPD scoreboard"):
        Scoreboard.open(str(sbdir / "c"), readonly=True)


def test_truncated_file_is_refused(sbdir):
    (sbdir / "t").write_bytes(b"PFT")
    with pytest.raises(ScoreboardFormatError, match="truncated"):
        Scoreboard.open(str(sbdir / "t"), readonly=True)


def test_symlinked_scoreboard_or_mutex_is_refused(sb, sbdir):
    os.symlink(sbdir / "sb", sbdir / "link")
    with pytest.raises(ScoreboardError, match="symbolic link"):
        Scoreboard.open(str(sbdir / "link"), readonly=True)
    with pytest.raises(ScoreboardError, match="symbolic link"):
        Scoreboard.create(str(sbdir / "link"), master_pid=1)
    os.symlink(sbdir / "elsewhere", sbdir / "m.lck")
    with pytest.raises(ScoreboardError, match="symbolic link"):
        Scoreboard.open(str(sbdir / "sb"), mutex_path=str(sbdir / "m.lck"))


def test_world_writable_directory_is_refused(tmp_path):
    d = tmp_path / "ww"
    d.mkdir()
    os.chmod(d, 0o1777)
    with pytest.raises(ScoreboardError, match="world-writable"):
        Scoreboard.create(str(d / "sb"), master_pid=1)


def test_readonly_cannot_claim(sb, sbdir):
    with Scoreboard.open(str(sbdir / "sb"), readonly=True) as ro:
        with pytest.raises(ScoreboardError, match="read-only"):
            ro.claim(os.getpid())


def test_open_or_create_recreates_incompatible(sb, sbdir):
    _write_header(sbdir / "sb", version=sbm.VERSION + 7)
    with Scoreboard.open_or_create(str(sbdir / "sb")) as again:
        assert again.header.version == sbm.VERSION and again.header.master_pid == 0
    with Scoreboard.open_or_create(str(sbdir / "new")) as fresh:
        assert fresh.entries() == []


def test_scrub_zeroes_dead_pids_only(sb):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    sb.claim(pid, user="ghost")
    live = sb.claim(os.getpid(), user="me")
    assert sb.scrub() == 1
    assert [e.user for e in sb.entries()] == ["me"]
    live.release()


# -- many processes --------------------------------------------------------------------------------
HOLDERS = int(os.environ.get("PROFTPY_SB_HOLDERS", "250"))
CHURNERS = int(os.environ.get("PROFTPY_SB_CHURNERS", "250"))
CRASHERS = int(os.environ.get("PROFTPY_SB_CRASHERS", "200"))
DEADLINE_S = 90


def _fork(body):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    return pid


def _reap(pids, deadline):
    """Wait for every child, bounded in time; kill (by pid) whatever is left. Returns the failures."""
    pending, failed = set(pids), []
    while pending and time.monotonic() < deadline:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.01)
            continue
        if pid in pending:
            pending.discard(pid)
            if os.waitstatus_to_exitcode(status) != 0:
                failed.append(pid)
    for pid in pending:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return failed + sorted(pending)


def test_hundreds_of_processes_never_lose_or_share_a_slot(sb):
    deadline = time.monotonic() + DEADLINE_S
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def holder():
        os.close(go_w)
        me = os.getpid()
        slot = sb.claim(me, user=f"u{me}")
        slot.command("RETR", str(me))
        mine = [e for e in sb.entries() if e.slot == slot.index]
        ok = len(mine) == 1 and mine[0].pid == me and mine[0].cmd_arg == str(me)
        os.write(ready_w, b"1" if ok else b"0")
        select.select([go_r], [], [], DEADLINE_S)      # parent closes go_w: EOF wakes everyone
        slot.release()
        return 0 if ok else 3

    holders = [_fork(holder) for _ in range(HOLDERS)]
    os.close(go_r)
    got = b""
    while len(got) < HOLDERS and time.monotonic() < deadline:
        got += os.read(ready_r, HOLDERS)
    assert got == b"1" * HOLDERS
    live = sb.entries()
    assert len(live) == HOLDERS
    assert sorted(e.pid for e in live) == sorted(holders)
    assert len({e.slot for e in live}) == HOLDERS
    assert all(e.cmd_arg == str(e.pid) and e.user == f"u{e.pid}" for e in live)

    def churner():
        me = os.getpid()
        for i in range(5):
            slot = sb.claim(me)
            slot.update(user="churn", cmd_arg=f"{me}-{i}")
            slot.release()
        return 0

    def crasher():
        sb.claim(os.getpid(), user="crash")
        return 0                                        # exits without release()

    os.close(go_w)                                      # holders release while the others run
    kids = [_fork(churner) for _ in range(CHURNERS)] + [_fork(crasher) for _ in range(CRASHERS)]
    assert _reap(holders + kids, deadline) == []
    os.close(ready_r)
    os.close(ready_w)

    left = sb.entries()
    assert len(left) == CRASHERS and {e.user for e in left} == {"crash"}
    assert len({e.slot for e in left}) == CRASHERS
    assert sb.scrub() == CRASHERS
    assert sb.entries() == []
    assert sb.header.slots <= HOLDERS + CHURNERS + CRASHERS + max(16, (HOLDERS + CHURNERS + CRASHERS) // 2)


def test_readers_never_see_a_torn_slot(sb):
    """A writer flips a slot between two consistent states as fast as it can; a reader checks every read."""
    stop_r, stop_w = os.pipe()

    def writer():
        os.close(stop_w)
        slot = sb.claim(os.getpid())
        n = 0
        while not select.select([stop_r], [], [], 0)[0]:
            c = "AB"[n % 2]
            slot.update(user=c * 31, cmd_arg=c * 79, cwd=c * 79, xfer_done=n % 2)
            n += 1
        slot.release()
        return 0

    pid = _fork(writer)
    os.close(stop_r)
    reads, end = 0, time.monotonic() + 1.5
    try:
        while time.monotonic() < end:
            for e in sb.entries():
                if e.user != sbm.NONE_USER:            # claimed, first update not yet written
                    c = e.user[0]
                    assert (e.user, e.cmd_arg, e.cwd, e.xfer_done) == (c * 31, c * 79, c * 79, "AB".index(c))
                    reads += 1
    finally:
        os.close(stop_w)
        assert _reap([pid], time.monotonic() + 10) == []
    assert reads > 50


def test_a_reader_holding_its_lock_stalls_no_command(sb, sbdir):
    """Any local user can hold a read lock on the world-readable file: a session's per-command updates take no
    lock, so they go on (claims and releases still wait, as in ProFTPD)."""
    slot = sb.claim(os.getpid())
    locked_r, locked_w = os.pipe()
    done_r, done_w = os.pipe()

    def reader():
        fd = os.open(sbdir / "sb", os.O_RDONLY)
        fcntl.lockf(fd, fcntl.LOCK_SH)
        os.write(locked_w, b"x")
        select.select([done_r], [], [], 10)
        return 0

    pid = _fork(reader)
    try:
        assert select.select([locked_r], [], [], 10)[0]
        signal.signal(signal.SIGALRM, lambda *_: pytest.fail("an update waited for the reader's lock"))
        signal.setitimer(signal.ITIMER_REAL, 2)
        try:
            slot.command("RETR", "big.iso")
            slot.begin_transfer(size=10)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        os.write(done_w, b"x")
        assert _reap([pid], time.monotonic() + 10) == []
    [e] = sb.entries()
    assert (e.cmd, e.cmd_arg, e.xfer_size) == ("RETR", "big.iso", 10)
    slot.release()


def test_updates_are_pwritten_where_the_file_cannot_be_mapped(sb, monkeypatch):
    monkeypatch.setattr(Scoreboard, "_slot_view", lambda self, index: None)
    slot = sb.claim(os.getpid())
    slot.command("STOR", "up.bin")
    [e] = sb.entries()
    assert (e.cmd, e.cmd_arg) == ("STOR", "up.bin")
    slot.release()
    assert sb.entries() == []


def test_a_slot_that_stays_torn_is_read_as_it_is(sb, sbdir):
    """A crc that never matches (a writer killed in the middle of its copy) costs a reader READ_TRIES reads."""
    slot = sb.claim(os.getpid(), user="alice")
    raw = bytearray((sbdir / "sb").read_bytes()[sbm.HEADER.size:sbm.HEADER.size + sbm.SLOT.size])
    assert sbm.intact(bytes(raw))
    raw[sbm._CRC_AT] ^= 0xFF
    assert not sbm.intact(bytes(raw))
    with open(sbdir / "sb", "r+b") as f:
        f.seek(sbm.HEADER.size)
        f.write(raw)
    start = time.monotonic()
    [e] = sb.entries()
    assert e.user == "alice" and time.monotonic() - start < 1
    slot.release()


def test_docs_describe_the_current_layout():
    """docs/scoreboard.md's tables must list every field at its real offset, with the real struct formats."""
    import pathlib
    import re
    doc = (pathlib.Path(__file__).parents[2] / "docs" / "scoreboard.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| `(\w+)` \|", doc, re.M)
    expected = []
    for fields in (sbm.HEADER_FIELDS, sbm.SLOT_FIELDS):
        off = 0
        for f in fields:
            expected.append((str(off), f.name, f.fmt))
            off += f.size
    assert rows == expected
    assert f"`{sbm.HEADER.format}`" in doc and f"`{sbm.SLOT.format}`" in doc
    assert f"## Binary layout (version {sbm.VERSION})" in doc


def test_remove_unlinks_only_files_still_ours(sbdir):
    sb = Scoreboard.create(str(sbdir / "sb"), master_pid=1)
    sb.remove()
    assert not (sbdir / "sb").exists() and not (sbdir / "sb.lck").exists()
    old = Scoreboard.create(str(sbdir / "sb"), master_pid=1)
    new = Scoreboard.create(str(sbdir / "sb"), master_pid=2)     # a newer master recreated the file
    old.remove()
    assert (sbdir / "sb").exists()
    new.close()


def test_a_rehearsed_claim_reads_and_packs_but_writes_nothing(sb, sbdir):
    before = (sbdir / "sb").read_bytes()
    sb.rehearse_claim(os.getpid(), user="alice", client_addr="127.0.0.1", cmd=sbm.IDLE_CMD)
    assert (sbdir / "sb").read_bytes() == before and sb.entries() == []
    with pytest.raises(TypeError):                  # the same checks as a real claim
        sb.rehearse_claim(os.getpid(), colour="red")
    with pytest.raises(ValueError):
        sb.rehearse_claim(0)
    slot = sb.claim(os.getpid(), user="alice")      # and the real one still takes the first slot
    assert slot.index == 0 and [e.user for e in sb.entries()] == ["alice"]


class TimedSession:
    """What mod_core's scoreboard hooks use of a session: its typed state and named timers."""

    def __init__(self, slot):
        from proftpy.module import States
        from proftpy.modules.scoreboard import SlotState
        self.state = States()
        self.state.get(SlotState).slot = slot
        self.timers = {}

    def set_timer(self, name, seconds, on_expire):
        from proftpy.session import Timer
        if seconds:
            self.timers[name] = Timer(seconds, on_expire)
        else:
            self.timers.pop(name, None)


def test_idle_is_written_only_when_no_command_came_within_idle_after(sb, monkeypatch):
    from proftpy.dispatch import Request
    from proftpy.modules import scoreboard as mod
    session = TimedSession(sb.claim(os.getpid(), user="alice"))
    clock = [1_700_000_000.0]
    monkeypatch.setattr(mod.time, "time", lambda: clock[0])
    mod._record_command(session, Request("LIST", ""))
    mod._back_to_idle(session, Request("LIST", ""))
    assert sb.entries()[0].cmd == "LIST" and mod.IDLE_TIMER in session.timers
    mod._record_command(session, Request("PASV", ""))   # the next command came first: no "idle" in between
    assert sb.entries()[0].cmd == "PASV" and mod.IDLE_TIMER not in session.timers
    mod._back_to_idle(session, Request("PASV", ""))     # the command ends at 1_700_000_000
    clock[0] += 5
    session.timers[mod.IDLE_TIMER].on_expire(session)   # IDLE_AFTER (here 5 s) passed without a command
    (e,) = sb.entries()
    assert (e.cmd, e.cmd_arg, e.begin_idle) == ("idle", "", 1_700_000_000)   # idle since the end, not the write
    assert mod.IDLE_TIMER not in session.timers
