"""The xferlog(5) line: field order, time format, filename sanitising, anonymous fields, completion."""

import time

import pytest

from proftpy.log import xferlog

WHEN = time.mktime((2024, 3, 5, 7, 8, 9, 0, 0, -1))     # local time: Tue Mar 05 07:08:09 2024


def make(**kw) -> str:
    args = dict(when=WHEN, seconds=2.9, host="client.example.org", size=1234, filename="/srv/ftp/a.bin",
                ascii=False, direction="o", anonymous=False, user="alice", completed=True)
    args.update(kw)
    return xferlog.line(**args)


def test_field_order_matches_proftpd():
    assert make() == ("Tue Mar 05 07:08:09 2024 2 client.example.org 1234 /srv/ftp/a.bin b _ o r alice ftp 0 * c\n")


def test_day_is_space_padded_and_two_digit_days_are_not():
    later = time.mktime((2024, 3, 15, 7, 8, 9, 0, 0, -1))
    assert make(when=later).startswith("Fri Mar 15 07:08:09 2024 ")


def test_spaces_and_control_characters_in_filenames_become_underscores():
    line = make(filename="/srv/my file\twith\nstuff\x7f.txt")
    assert " /srv/my_file_with_stuff_.txt " in line
    assert len(line.split()) == 18                  # 5 words of time + 13 fields


def test_upload_ascii_incomplete_anonymous():
    fields = xferlog.parse(make(ascii=True, direction="i", anonymous=True, user="me@example.org", completed=False,
                                seconds=0.2, size=0))
    assert fields == {"current-time": "Tue Mar 05 07:08:09 2024", "transfer-secs": "0",
                      "remote-host": "client.example.org", "bytes": "0", "filename": "/srv/ftp/a.bin",
                      "type": "a", "special-action": "_", "direction": "i", "access-mode": "a",
                      "username": "me@example.org", "service": "ftp", "auth-method": "0", "auth-user-id": "*",
                      "completion": "i"}


def test_seconds_are_cut_not_rounded():
    assert xferlog.parse(make(seconds=59.99))["transfer-secs"] == "59"


def test_empty_or_spaced_user_keeps_the_columns():
    assert xferlog.parse(make(user=""))["username"] == "*"
    assert xferlog.parse(make(user="a b"))["username"] == "a_b"


def test_ident_and_service():
    fields = xferlog.parse(make(ident="jdoe", service="ftps"))
    assert (fields["auth-method"], fields["auth-user-id"], fields["service"]) == ("1", "jdoe", "ftps")


def test_ident_lookup_without_a_name_and_no_lookup():
    for ident, want in ((None, ("0", "*")), ("UNKNOWN", ("1", "*")), ("", ("1", "*")), ("a b", ("1", "a_b"))):
        fields = xferlog.parse(make(ident=ident))
        assert (fields["auth-method"], fields["auth-user-id"]) == want, ident


def test_bad_direction_is_refused():
    with pytest.raises(ValueError):
        make(direction="x")


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        xferlog.parse("not an xferlog line")


def test_non_utf8_names_survive_as_surrogates():
    name = b"/srv/caf\xe9".decode("utf-8", "surrogateescape")
    line = make(filename=name)
    assert line.encode("utf-8", "surrogateescape").count(b"caf\xe9") == 1
