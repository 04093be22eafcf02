"""Calendar periods in a time zone: pure arithmetic, no database, no Flask.

A period is a half-open range of local dates [start, end). Its instants run
from the first instant of the local day `start` to the first instant of `end`,
which is also when it resets. "First instant of a day" is local midnight, or
the first instant after it where a DST change skips midnight.
"""

from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("daily", "weekly", "monthly")
_UTC_KEYS = {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
             "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0",
             "Greenwich", "Etc/Greenwich"}


@dataclass(frozen=True)
class Window:
    """The current period of one kind: local dates [start, end) and its reset."""

    period: str
    start: date
    end: date
    reset_at: datetime  # aware, UTC


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    """Return the local calendar date of an aware instant."""
    return instant.astimezone(tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Return the first instant (UTC) of a local calendar day.

    A wall time skipped by DST is read with the offset before the change
    (PEP 495, fold=0), which lands on the first instant that exists.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def next_month(day: date) -> date:
    """Return the first day of the month after `day`."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def bounds(period: str, today: date) -> tuple[date, date]:
    """Return the local dates [start, end) of the period containing `today`."""
    if period == "daily":
        return today, today + timedelta(days=1)
    if period == "weekly":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    if period == "monthly":
        first = today.replace(day=1)
        return first, next_month(first)
    raise ValueError(f"unknown period {period!r}")


def windows(now: datetime, tz: ZoneInfo) -> tuple[Window, ...]:
    """Return the current daily, weekly and monthly windows at `now`."""
    return _windows_of(local_day(now, tz), tz)


@lru_cache(maxsize=64)
def _windows_of(today: date, tz: ZoneInfo) -> tuple[Window, ...]:
    # Every request needs them and they change once a day: computed once a day.
    result = []
    for period in PERIODS:
        start, end = bounds(period, today)
        result.append(Window(period, start, end, day_start(end, tz)))
    return tuple(result)


@lru_cache(maxsize=256)
def format_instant(instant: datetime, tz: ZoneInfo) -> str:
    """Format an instant in ISO 8601: `Z` in UTC, else the local numeric offset."""
    if tz.key in _UTC_KEYS:
        return instant.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    return instant.astimezone(tz).isoformat()


def seconds_until(instant: datetime, now: datetime) -> int:
    """Return whole seconds from `now` until `instant`, rounded up, at least 1."""
    delta = (instant - now).total_seconds()
    return max(1, int(-(-delta // 1)))
