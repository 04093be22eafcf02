"""Reading usage: the per-period report behind the 15 fields of the API.

Reads only the per-day totals of the current month and week (at most 38
rows) and the user's live reservations, so the cost does not depend on how
much history is stored.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, bindparam, cast, func, select
from sqlalchemy.orm import Session

from .. import clock
from ..models import Reservation, Setting, UsageDay, User
from ..periods import PERIODS, Window, format_instant, windows
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

    def plus(self, tokens: int) -> "QuotaReport":
        """Return the report after `tokens` more usage in every period."""
        periods = tuple(
            PeriodUsage(p.window, p.limit, p.system_default, p.usage + tokens)
            for p in self.periods
        )
        return QuotaReport(periods, self.held, self.tz, self.now)


def _snapshot_statement():
    """Build the one statement behind a report: defaults, usage per window, holds."""
    days, settings, holds = UsageDay.__table__.c, Setting.__table__.c, Reservation.__table__.c

    def total(column, *where):
        # The cast keeps PostgreSQL's SUM (numeric) an integer.
        return select(cast(func.coalesce(func.sum(column), 0), BigInteger)).where(*where)

    def default(period):
        value = select(settings.value).where(settings.key == f"{period}_default")
        return func.coalesce(value.scalar_subquery(), UNLIMITED)

    def used(period):
        return total(
            days.tokens, days.user_id == bindparam("user_id"),
            days.day >= bindparam(f"{period}_start"),
            days.day < bindparam(f"{period}_end"),
        ).scalar_subquery()

    held = total(
        holds.tokens, holds.user_id == bindparam("user_id"), holds.state == "active",
        holds.expires_at > bindparam("now"),
    ).scalar_subquery()
    return select(*map(default, PERIODS), *map(used, PERIODS), held)


# Built once, run on every usage, check and consume: one round trip, no ORM.
_SNAPSHOT = _snapshot_statement()


def quota_report(session: Session, user: User, tz: ZoneInfo, now: datetime | None = None):
    """Return the user's current quota report."""
    now = now or clock.now()
    wins = windows(now, tz)
    params = {"user_id": user.id, "now": now}
    for w in wins:
        params[f"{w.period}_start"], params[f"{w.period}_end"] = w.start, w.end
    row = session.connection().execute(_SNAPSHOT, params).one()  # Core: skips ORM execution
    periods = tuple(
        PeriodUsage(w, getattr(user.quota, f"{w.period}_limit"), row[i], row[i + 3])
        for i, w in enumerate(wins)
    )
    return QuotaReport(periods, row[6], tz, now)
