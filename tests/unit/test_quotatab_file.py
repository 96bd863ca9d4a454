"""proftpy.quotatab: mod_quotatab_file's record layouts and magic numbers byte for byte, how records are
found, appended and read past a torn tail, and the tally rules ProFTPD's quotatab_write() applies."""
import struct

import pytest

from proftpy import quotatab
from proftpy.quotatab import ALL, CLASS, GROUP, SOFT, USER, BadTable, Limit, Table, Tally


def new_table(tmp_path, kind, *records):
    path = str(tmp_path / f"{kind}.tab")
    quotatab.create(path, kind)
    table = Table.open(path, kind, writable=True)
    for record in records:
        table.append(record)
    return path, table


def test_record_sizes_are_proftpds_unpadded_structs():
    assert quotatab.LIMIT.size == 126 and quotatab.TALLY.size == 121
    assert len(Limit("bob").pack()) == 126 and len(Tally("bob").pack()) == 121


def test_limit_layout_field_by_field():
    raw = Limit("bob", GROUP, True, SOFT, 1.5, -1.0, 3.0, 4, 0, 6).pack()
    assert raw[:81] == b"bob" + b"\0" * 78
    assert struct.unpack("=iBi3d3I", raw[81:]) == (GROUP, 1, SOFT, 1.5, -1.0, 3.0, 4, 0, 6)
    assert Limit.unpack(raw) == Limit("bob", GROUP, True, SOFT, 1.5, -1.0, 3.0, 4, 0, 6)


def test_tally_layout_field_by_field():
    raw = Tally("staff", CLASS, 10.0, 20.0, 30.0, 1, 2, 3).pack()
    assert raw[:81] == b"staff" + b"\0" * 76
    assert struct.unpack("=i3d3I", raw[81:]) == (CLASS, 10.0, 20.0, 30.0, 1, 2, 3)
    assert Tally.unpack(raw) == Tally("staff", CLASS, 10.0, 20.0, 30.0, 1, 2, 3)


def test_name_must_leave_room_for_the_nul():
    assert Limit.unpack(Limit("x" * 80).pack()).name == "x" * 80
    with pytest.raises(ValueError):
        Limit("x" * 81).pack()


@pytest.mark.parametrize("kind,magic", [("limit", 0x7626), ("tally", 0x7644)])
def test_create_writes_only_the_magic_number(tmp_path, kind, magic):
    path = tmp_path / "t"
    quotatab.create(str(path), kind)
    assert path.read_bytes() == struct.pack("=I", magic)
    assert list(Table.open(str(path), kind).records()) == []
    with pytest.raises(FileExistsError):
        quotatab.create(str(path), kind)


def test_wrong_magic_is_bad_table(tmp_path):
    path, table = new_table(tmp_path, "tally")
    table.close()
    with pytest.raises(BadTable):
        Table.open(path, "limit")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(BadTable):
        Table.open(str(empty), "tally")


def test_append_then_find(tmp_path):
    _, table = new_table(tmp_path, "limit")
    assert table.append(Limit("bob", bytes_in=100.0)) == 4
    assert table.append(Limit("ann", files_out=7)) == 4 + 126
    assert table.find("ann", USER) == (130, Limit("ann", files_out=7))
    assert table.find("carl", USER) is None
    assert table.read(4) == Limit("bob", bytes_in=100.0)


def test_find_user_by_name_all_by_type_only(tmp_path):
    _, table = new_table(tmp_path, "tally", Tally("bob", GROUP, files_in=1), Tally("bob", USER, files_in=2),
                         Tally("", ALL, files_in=3), Tally("other", ALL, files_in=4))
    assert table.find("bob", USER)[1].files_in == 2
    assert table.find("bob", GROUP)[1].files_in == 1
    assert table.find(None, ALL)[1].files_in == 3          # the first 'all' record, whatever its name
    assert table.find("other", ALL)[1].files_in == 3
    assert table.find("bob", CLASS) is None


def test_torn_tail_is_ignored_and_overwritten_by_append(tmp_path):
    path, table = new_table(tmp_path, "tally", Tally("bob"))
    with open(path, "ab") as f:
        f.write(Tally("half").pack()[:50])
    assert [r.name for _, r in table.records()] == ["bob"]
    with pytest.raises(BadTable):
        table.read(4 + 121)
    assert table.append(Tally("ann")) == 4 + 121
    assert [r.name for _, r in table.records()] == ["bob", "ann"]


def test_tally_add_counts_only_limited_values():
    limit = Limit("bob", bytes_in=1000.0, files_out=5)     # the rest unlimited
    tally = Tally("bob")
    tally.add(limit, bytes_in=300, bytes_out=300, bytes_xfer=300, files_in=1, files_out=1, files_xfer=1)
    assert tally == Tally("bob", bytes_in=300.0, files_out=1)


def test_tally_add_never_goes_negative_nor_past_uint32():
    limit = Limit("bob", bytes_in=1.0, bytes_out=1.0, bytes_xfer=1.0, files_in=1, files_out=1, files_xfer=1)
    tally = Tally("bob", bytes_in=10.0, files_in=2, files_xfer=quotatab.UINT_MAX)
    tally.add(limit, bytes_in=-50, bytes_out=-1, files_in=-3, files_out=-1, files_xfer=1)
    assert (tally.bytes_in, tally.bytes_out, tally.files_in, tally.files_out) == (0.0, 0.0, 0, 0)
    assert tally.files_xfer == quotatab.UINT_MAX
    Tally.unpack(tally.pack())                              # still packable


def test_byte_values_that_are_not_numbers_read_as_unlimited(tmp_path):
    path = str(tmp_path / "limit")
    quotatab.create(path, "limit", (quotatab.Limit("a", bytes_in=float("nan"), bytes_out=float("inf"),
                                                   bytes_xfer=-float("inf"), files_in=3),))
    table = quotatab.Table.open(path, "limit")
    limit = table.find("a", quotatab.USER)[1]
    table.close()
    assert (limit.bytes_in, limit.bytes_out, limit.bytes_xfer, limit.files_in) == (0.0, 0.0, 0.0, 3)


def test_sessions_adding_the_same_record_at_once_add_one(tmp_path):
    """Processes that look the same tally record up and add it when missing, released together, make one record
    (twenty rounds of eight: without the lock some round makes two)."""
    import multiprocessing
    fork = multiprocessing.get_context("fork")
    for round_ in range(20):
        path = str(tmp_path / f"tally{round_}")
        quotatab.create(path, "tally")
        start = fork.Barrier(8)

        def login() -> None:
            table = quotatab.Table.open(path, "tally", writable=True)
            start.wait(10)
            table.find_or_add(quotatab.Tally("alice", quotatab.USER))
            os._exit(0)
        children = [fork.Process(target=login) for _ in range(8)]
        for child in children:
            child.start()
        for child in children:
            child.join(20)
        table = quotatab.Table.open(path, "tally")
        assert [r.name for _, r in table.records()] == ["alice"], round_
        table.close()
