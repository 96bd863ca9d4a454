"""mod_readme's day count (whole days between the UTC dates, ProFTPD's 365.25-day years) and the nearest-context
lookup DisplayReadme's lines use."""

import calendar

from proftpy.config.parser import parse_text
from proftpy.config.tree import Context
from proftpy.modules import registry
from proftpy.modules.readme import days_between


def at(text: str) -> float:
    return calendar.timegm(tuple(int(x) for x in text.replace(":", "-").replace(" ", "-").split("-")) + (0, 0, 0))


def test_days_count_calendar_days_in_utc():
    assert days_between(at("2026-12-07 00:00:01"), at("2026-12-07 23:59:59")) == 0
    assert days_between(at("2026-12-06 23:59:59"), at("2026-12-07 00:00:01")) == 1
    assert days_between(at("2020-01-02 03:04:05"), at("2026-12-07 03:58:00")) == 2530   # as ProFTPD said
    assert days_between(at("2025-12-31 12:00:00"), at("2026-01-01 12:00:00")) == 1


def test_the_innermost_context_with_lines_gives_all_of_them():
    config = parse_text("DisplayReadme README\nDisplayReadme NEWS\n<Anonymous /srv/ftp>\nUser ftp\nGroup ftp\n"
                        "DisplayReadme WELCOME\n</Anonymous>\n", registry())
    main = config.servers[0]
    assert main.context().nearest("DisplayReadme") == ["README", "NEWS"]
    anon = next(s for s in main.section.sections if s.kind == "anon")
    assert Context([anon, main.section], main).nearest("DisplayReadme") == ["WELCOME"]     # replaces, not adds
