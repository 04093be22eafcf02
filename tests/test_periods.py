"""Pure period arithmetic: boundaries, reset instants, time zones and DST."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from chatquota.periods import bounds, day_start, format_instant, seconds_until, windows

UTC_ZONE = ZoneInfo("UTC")


def at(*args):
    return datetime(*args, tzinfo=UTC)


def reset_of(period, now, tz=UTC_ZONE):
    return next(w for w in windows(now, tz) if w.period == period).reset_at


def test_next_midnight():
    assert reset_of("daily", at(2026, 11, 30, 12, 5)) == at(2026, 12, 1)


def test_next_monday_from_midweek_and_from_monday():
    assert reset_of("weekly", at(2026, 11, 25, 9)) == at(2026, 11, 30)  # Wednesday
    assert reset_of("weekly", at(2026, 11, 30, 0)) == at(2026, 12, 7)  # Monday 00:00


def test_first_of_next_month():
    assert reset_of("monthly", at(2026, 11, 30, 23, 59)) == at(2026, 12, 1)
    assert reset_of("monthly", at(2026, 1, 31)) == at(2026, 2, 1)


def test_year_end():
    now = at(2026, 12, 31, 23, 59, 59)
    assert reset_of("daily", now) == at(2027, 1, 1)
    assert reset_of("monthly", now) == at(2027, 1, 1)
    assert bounds("weekly", date(2026, 12, 31)) == (date(2026, 12, 28), date(2027, 1, 4))


def test_leap_day():
    assert bounds("daily", date(2028, 2, 28)) == (date(2028, 2, 28), date(2028, 2, 29))
    assert bounds("monthly", date(2028, 2, 29)) == (date(2028, 2, 1), date(2028, 3, 1))
    assert reset_of("daily", at(2028, 2, 29, 10)) == at(2028, 3, 1)


def test_local_midnight_in_another_zone():
    berlin = ZoneInfo("Europe/Berlin")
    # 23:30 UTC on Nov 30 is already Dec 1 in Berlin (UTC+1).
    now = at(2026, 11, 30, 23, 30)
    assert reset_of("daily", now, berlin) == at(2026, 12, 1, 23)
    assert reset_of("monthly", now, berlin) == at(2026, 12, 31, 23)


def test_dst_spring_forward_day_is_23_hours():
    berlin = ZoneInfo("Europe/Berlin")  # 2026-03-29: 02:00 -> 03:00
    assert day_start(date(2026, 3, 29), berlin) == at(2026, 3, 28, 23)
    assert day_start(date(2026, 3, 30), berlin) == at(2026, 3, 29, 22)
    assert reset_of("daily", at(2026, 3, 29, 12), berlin) == at(2026, 3, 29, 22)


def test_dst_fall_back_day_is_25_hours():
    ny = ZoneInfo("America/New_York")  # 2026-11-01: 02:00 -> 01:00
    assert day_start(date(2026, 11, 1), ny) == at(2026, 11, 1, 4)
    assert day_start(date(2026, 11, 2), ny) == at(2026, 11, 2, 5)


def test_skipped_midnight_starts_at_first_existing_instant():
    santiago = ZoneInfo("America/Santiago")  # 2026-09-06 00:00 -04 -> 01:00 -03
    start = day_start(date(2026, 9, 6), santiago)
    assert start == at(2026, 9, 6, 4)
    assert start.astimezone(santiago).hour == 1
    # The instant before it still belongs to the previous local day.
    assert windows(at(2026, 9, 6, 3, 59), santiago)[0].start == date(2026, 9, 5)
    assert windows(at(2026, 9, 6, 4, 0), santiago)[0].start == date(2026, 9, 6)


def test_format_uses_z_for_utc_and_offset_elsewhere():
    instant = at(2026, 12, 1)
    assert format_instant(instant, UTC_ZONE) == "2026-12-01T00:00:00Z"
    for alias in ("Etc/UTC", "GMT", "Etc/GMT", "UCT", "Zulu"):
        assert format_instant(instant, ZoneInfo(alias)) == "2026-12-01T00:00:00Z"
    assert format_instant(instant, ZoneInfo("Europe/London")) == "2026-12-01T00:00:00+00:00"
    assert format_instant(instant, ZoneInfo("Asia/Kolkata")) == "2026-12-01T05:30:00+05:30"


def test_seconds_until_rounds_up():
    now = at(2026, 11, 30, 23, 59, 59, 500000)
    assert seconds_until(at(2026, 12, 1), now) == 1
    assert seconds_until(at(2026, 12, 1), at(2026, 11, 30, 23)) == 3600


def test_unknown_period_is_an_error():
    with pytest.raises(ValueError):
        bounds("hourly", date(2026, 1, 1))
