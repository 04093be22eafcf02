"""Reading usage: the per-period report behind the 15 fields of the API.

Reads only the per-day totals of the current month and week (at most 38
rows) and the user's live reservations, so the cost does not depend on how
much history is stored. One prepared statement, run without the ORM.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, bindparam, cast, func, select

from .. import clock
from ..dialect import Raw, prepare
from ..models import Quota, Reservation, Setting, UsageDay, User
from ..periods import PERIODS, Window, format_instant, windows
from .alerts import thresholds_column
from .limits import UNLIMITED, effective_limit, remaining


@dataclass(frozen=True)
class PeriodUsage:
    """One period of a user's quota at a moment."""

    window: Window
    limit: int | None
    system_default: int
    usage: int

    @property
    def effective(self) -> int:
        return effective_limit(self.limit, self.system_default)

    @property
    def remaining(self) -> int | None:
        return remaining(self.effective, self.usage)


@dataclass(frozen=True)
class QuotaReport:
    """A user's three periods, plus tokens held by live reservations."""

    periods: tuple[PeriodUsage, ...]
    held: int
    tz: ZoneInfo
    now: datetime

    def fields(self) -> dict:
        """Return the 15 fields of the seed API's usage response."""
        out = {}
        for p in self.periods:
            name = p.window.period
            out[f"{name}_limit"] = p.limit
            out[f"{name}_usage"] = p.usage
            out[f"{name}_remaining"] = p.remaining
            out[f"{name}_reset_at"] = format_instant(p.window.reset_at, self.tz)
            out[f"{name}_system_default"] = p.system_default
        return out

    def plus(self, tokens: int, held: int = 0) -> "QuotaReport":
        """Return the report after `tokens` more usage in every period and `held` more held."""
        periods = tuple(
            PeriodUsage(p.window, p.limit, p.system_default, p.usage + tokens)
            for p in self.periods
        )
        return QuotaReport(periods, self.held + held, self.tz, self.now)


def _total(column, *where):
    # The cast keeps PostgreSQL's SUM (numeric) an integer.
    return select(cast(func.coalesce(func.sum(column), 0), BigInteger)).where(*where)


def snapshot_columns(user_id) -> list:
    """Return the report's columns for the user `user_id` (a bind or a column).

    Defaults (3), usage per window (3), live holds (1). The windows' bounds
    and `now` are binds: `<period>_start`, `<period>_end`, `now`.
    """
    days, settings, holds = UsageDay.__table__.c, Setting.__table__.c, Reservation.__table__.c

    def default(period):
        value = select(settings.value).where(settings.key == f"{period}_default")
        return func.coalesce(value.scalar_subquery(), UNLIMITED)

    def used(period):
        return _total(days.tokens, days.user_id == user_id,
                      days.day >= bindparam(f"{period}_start"),
                      days.day < bindparam(f"{period}_end")).scalar_subquery()

    held = _total(holds.tokens, holds.user_id == user_id, holds.state == "active",
                  holds.expires_at > bindparam("now")).scalar_subquery()
    return [*map(default, PERIODS), *map(used, PERIODS), held]


_users, _quotas = User.__table__, Quota.__table__
LIMIT_COLUMNS = tuple(f"{period}_limit" for period in PERIODS)
# Built once, run on every usage and check: one round trip, no ORM.
_REPORT = prepare(select(*snapshot_columns(bindparam("user_id"))))
# The same for the write path, which knows only a uuid: the user's id,
# whether it is active and its limits come first, the alert thresholds last.
STANDING = prepare(
    select(_users.c.id, _users.c.is_active, *(_quotas.c[c] for c in LIMIT_COLUMNS),
           *snapshot_columns(_users.c.id), thresholds_column())
    .select_from(_users.join(_quotas, _quotas.c.user_id == _users.c.id))
    .where(_users.c.uuid == bindparam("uuid"))
)


def window_params(raw: Raw, now: datetime, tz: ZoneInfo) -> tuple[tuple[Window, ...], dict]:
    """Return the current windows and the binds the snapshot columns need."""
    wins = windows(now, tz)
    params = {"now": raw.instant(now)}
    for w in wins:
        params[f"{w.period}_start"], params[f"{w.period}_end"] = raw.day(w.start), raw.day(w.end)
    return wins, params


def report_from(row, wins, limits, tz: ZoneInfo, now: datetime) -> QuotaReport:
    """Build a report from the snapshot columns in `row` (defaults, usage, held)."""
    periods = tuple(PeriodUsage(w, limits[i], row[i], row[i + 3]) for i, w in enumerate(wins))
    return QuotaReport(periods, row[6], tz, now)


def quota_report(raw: Raw, user, tz: ZoneInfo, now: datetime | None = None) -> QuotaReport:
    """Return the current quota report of `user` (anything with `id` and `quota` limits)."""
    now = now or clock.now()
    wins, params = window_params(raw, now, tz)
    params["user_id"] = user.id
    row = raw.one(_REPORT, params)
    limits = [getattr(user.quota, c) for c in LIMIT_COLUMNS]
    return report_from(row, wins, limits, tz, now)
